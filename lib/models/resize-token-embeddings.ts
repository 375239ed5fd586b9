// resize_token_embeddings as transformers 5 does it: the input embedding gets new rows at the end (or loses
// rows from the end), an untied LM head is resized with it, config.vocab_size follows. New rows are
// sampled from a normal with the old rows' mean and 1e-9 times their covariance (meanResizing, the
// default: new tokens start near the average token, so next-token probabilities barely move), or from
// N(0, initializer_range²). The random draws are made in transformers' order (a fresh Embedding's init,
// then the sample; a fresh Linear's init, then the sample), so a seeded run gives transformers' rows.
import { noGrad } from '../autograd';
import { randn } from '../creation';
import { linalgCholeskyEx } from '../linalg';
import { scope } from '../memory';
import { Embedding, Linear, Module, Parameter } from '../nn';
import { normal_ } from '../nn/init';
import { Tensor } from '../tensor';

export interface ResizeTokenEmbeddingsOptions {
  /**
   * true (default): new rows from N(mean of the old rows, 1e-9·their covariance), or the mean itself where
   * the covariance is not positive-definite (fewer old rows than the embedding size); false: N(0, σ²) with
   * σ = config.initializer_range.
   */
  meanResizing?: boolean;
  /** Round the new size up to a multiple of this (e.g. 64 for Tensor Cores); alone, pads the current size. */
  padToMultipleOf?: number;
}

/** What resizeTokenEmbeddings needs of a model: its config and where the embedding and LM head sit. */
export interface ResizableLM extends Module {
  config: { vocabSize: number; initializerRange?: number; tieWordEmbeddings: boolean };
  getInputEmbeddings(): Module;
  getOutputEmbeddings(): Module | undefined;
  setOutputEmbeddings(head: Linear): void;
}

function checkCount(name: string, v: unknown): number {
  if (!Number.isInteger(v) || (v as number) < 1) throw new RangeError(`resizeTokenEmbeddings: ${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return v as number;
}

/**
 * Rows [old, new) of `fresh` (a [new, dim] weight) from N(mean, 1e-9·cov) of `old`'s rows, or the mean
 * where 1e-9·cov is not positive-definite (transformers' _init_added_embeddings_weights_with_mean).
 */
function initAddedRowsWithMean(old: Tensor, fresh: Tensor, added: number): void {
  scope(() => {
    const [oldRows] = old.shape;
    const w = old.to('float32');
    const mean = w.mean([0]);
    const centered = w.sub(mean);
    const cov = centered.t().matmul(centered).div(oldRows).mul(1e-9);
    const [l, info] = linalgCholeskyEx(cov);
    let rows: Tensor;
    if ((info.item() as number) === 0) {
      // MultivariateNormal.sample: loc + L·ε, ε ~ N(0, I) drawn as one [added, dim] tensor.
      const eps = randn([added, mean.shape[0]], { dtype: 'float32', device: mean.device });
      rows = eps.matmul(l.t()).add(mean);
    } else rows = mean.unsqueeze(0).expand([added, mean.shape[0]]);
    noGrad(() => fresh.narrow(0, fresh.shape[0] - added, added).copy_(rows.to(fresh.dtype)));
  });
}

/** A [new, dim] weight: a fresh init (meanResizing or N(0, σ²)), then the first min(old, new) rows copied from `old`. */
function resizedRows(
  old: Tensor,
  fresh: Tensor,
  newRows: number,
  meanResizing: boolean,
  std: number,
): void {
  const oldRows = old.shape[0];
  if (newRows > oldRows) {
    if (meanResizing) initAddedRowsWithMean(old, fresh, newRows - oldRows);
    else noGrad(() => normal_(fresh, 0, std));
  }
  const n = Math.min(oldRows, newRows);
  scope(() => noGrad(() => fresh.narrow(0, 0, n).copy_(old.narrow(0, 0, n))));
}

/**
 * Resizes the model's token embedding to `newNumTokens` rows (transformers' resize_token_embeddings) and
 * returns the input embedding. Without newNumTokens and padToMultipleOf it changes nothing.
 */
export function resizeTokenEmbeddings(model: ResizableLM, newNumTokens?: number | null, opts: ResizeTokenEmbeddingsOptions = {}): Module {
  const meanResizing = opts.meanResizing ?? true;
  if (typeof meanResizing !== 'boolean') throw new TypeError(`resizeTokenEmbeddings: meanResizing must be true or false, got ${JSON.stringify(meanResizing)}`);
  const multiple = opts.padToMultipleOf === undefined || opts.padToMultipleOf === null ? undefined : checkCount('padToMultipleOf', opts.padToMultipleOf);
  let target = newNumTokens === undefined || newNumTokens === null ? undefined : checkCount('newNumTokens', newNumTokens);
  const embed = model.getInputEmbeddings();
  if (target === undefined && multiple === undefined) return embed;
  if (!(embed instanceof Embedding))
    throw new TypeError(
      `resizeTokenEmbeddings: the input embedding is a ${embed.reprName()}, not an Embedding; resize the base model before getPeftModel (or before loading an adapter)`,
    );
  const oldRows = embed.weight.shape[0];
  if (multiple !== undefined) target = Math.ceil((target ?? oldRows) / multiple) * multiple;
  const newRows = target!;
  const std = model.config.initializerRange ?? 0.02;

  // Input embedding: a fresh table (nn.Embedding's own N(0, 1) init runs, as in transformers), its rows
  // initialised, the old rows copied; the module keeps its identity (and a tied head its shared weight).
  if (newRows !== oldRows) {
    const fresh = new Embedding(newRows, embed.embeddingDim, { dtype: embed.weight.dtype, device: embed.weight.device });
    resizedRows(embed.weight, fresh.weight, newRows, meanResizing, std);
    const requiresGrad = embed.weight.requiresGrad;
    noGrad(() => embed.weight.setData_(fresh.weight));
    embed.weight.requiresGrad_(requiresGrad);
    fresh.dispose();
    const mutable = embed as unknown as { numEmbeddings: number; paddingIdx?: number };
    mutable.numEmbeddings = newRows;
    if (embed.paddingIdx !== undefined && newRows - 1 < embed.paddingIdx) mutable.paddingIdx = undefined;
  }

  // An untied LM head: a new Linear (its kaiming init runs), rows initialised the same way, old rows copied.
  const head = model.getOutputEmbeddings();
  if (head !== undefined) {
    if (head instanceof Linear && head.weight.shape[0] !== newRows) {
      const [headRows, dim] = head.weight.shape;
      const bias = head.bias !== undefined;
      const fresh = new Linear(dim, newRows, { bias, dtype: head.weight.dtype, device: head.weight.device });
      if (newRows > headRows && !meanResizing && bias) noGrad(() => fresh.bias!.zero_());
      resizedRows(head.weight, fresh.weight, newRows, meanResizing, std);
      if (bias) resizeHeadBias(head.bias!, fresh.bias!, newRows, meanResizing);
      fresh.weight.requiresGrad_(head.weight.requiresGrad);
      fresh.bias?.requiresGrad_(head.bias!.requiresGrad);
      model.setOutputEmbeddings(fresh);
      head.dispose();
    } else if (!(head instanceof Linear) && !(head instanceof Embedding && head.weight === embed.weight)) {
      throw new TypeError(`resizeTokenEmbeddings: the output embedding is a ${head.reprName()}, not a Linear; resize the base model before getPeftModel`);
    } else if (head instanceof Linear) (head as unknown as { outFeatures: number }).outFeatures = newRows;
  }
  model.config.vocabSize = newRows;
  return embed;
}

/** The head's bias: new entries from N(mean, (1e-9·std)²) of the old ones (meanResizing), zeros otherwise; old entries copied. */
function resizeHeadBias(old: Parameter, fresh: Parameter, newRows: number, meanResizing: boolean): void {
  const oldRows = old.shape[0];
  scope(() =>
    noGrad(() => {
      if (newRows > oldRows && meanResizing) {
        const f = old.to('float32');
        const mean = f.mean().item() as number;
        const std = f.std().item() as number;
        normal_(fresh.narrow(0, oldRows, newRows - oldRows), mean, 1e-9 * std);
      } else if (newRows > oldRows) fresh.zero_();
      const n = Math.min(oldRows, newRows);
      fresh.narrow(0, 0, n).copy_(old.narrow(0, 0, n));
    }),
  );
}
