// What a computeMetrics hook gets, as transformers' EvalPrediction: the model's predictions (the logits, or
// what preprocessLogitsForMetrics made of them) and the labels of the whole evaluation set, each batch's
// padded along the sequence with -100 to the longest batch and concatenated (transformers' nested_concat).
import { pad } from '../functional';
import { cat } from '../ops';
import { Tensor } from '../tensor';

export interface EvalPrediction {
  /** [examples, length, vocab] logits (unshifted: position j predicts token j+1), or preprocessLogitsForMetrics' output. */
  predictions: Tensor;
  /** [examples, length] int64 labels, -100 where there is no loss (and in the padding). */
  labelIds: Tensor;
}

/** Turns an evaluation's predictions into named metrics ({ accuracy: 0.93 }); logged with the 'eval_' prefix. */
export type ComputeMetrics = (p: EvalPrediction) => Record<string, number>;

/**
 * Runs on each evaluation batch's logits and labels (on the model's device) before they are kept, e.g. to
 * keep logits.argmax(-1) instead of the [batch, length, vocab] logits (transformers' preprocess_logits_for_metrics).
 */
export type PreprocessLogitsForMetrics = (logits: Tensor, labels: Tensor) => Tensor;

/** Concatenates along dim 0, padding dim 1 (when there is one) to the longest with -100. Leaves its inputs. */
export function concatPadded(parts: Tensor[]): Tensor {
  if (parts.length === 0) throw new Error('concatPadded: no batches');
  const rank = parts[0].shape.length;
  if (rank < 2 || parts.every((t) => t.shape[1] === parts[0].shape[1])) return cat(parts, 0);
  const longest = Math.max(...parts.map((t) => t.shape[1]));
  const padded = parts.map((t) => {
    if (t.shape[1] === longest) return t;
    const padding = new Array<number>(2 * (rank - 1)).fill(0); // torch's order: the last dim first
    padding[padding.length - 1] = longest - t.shape[1];
    return pad(t, padding, -100);
  });
  try {
    return cat(padded, 0);
  } finally {
    padded.forEach((t, i) => t !== parts[i] && t.dispose());
  }
}
