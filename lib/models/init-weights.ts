// transformers' _init_weights for the Llama-built families: N(0, initializer_range²) for Linear and
// Embedding weights, zero biases and padding row, and the RMSNorm weights set to the value the family's
// norm treats as identity (1 for Llama's `weight * x`, 0 for Gemma's `(1 + weight) * x`).
import { noGrad } from '../autograd';
import { Embedding, init, Linear, Module, RMSNorm } from '../nn';

/** Initializes every module of `model` not on 'meta'; norms of class `norm` are filled with `normValue`. */
export function initDecoderWeights(
  model: Module,
  std: number,
  norm: abstract new (...args: never[]) => RMSNorm,
  normValue: 0 | 1,
): void {
  // A weight shared by two modules (a tied lm_head) is drawn once: drawing it again as the Linear would
  // overwrite the Embedding's zeroed padding row (transformers leaves it zero).
  const drawn = new Set<object>();
  noGrad(() => {
    for (const m of model.modules()) {
      if ((m instanceof Linear || m instanceof Embedding) && drawn.has(m.weight)) continue;
      if (m instanceof Linear || m instanceof Embedding) drawn.add(m.weight);
      if (m instanceof Linear) {
        if (m.weight.device === 'meta') continue;
        init.normal_(m.weight, 0, std);
        if (m.bias) init.zeros_(m.bias);
      } else if (m instanceof Embedding) {
        if (m.weight.device === 'meta') continue;
        init.normal_(m.weight, 0, std);
        if (m.paddingIdx !== undefined) {
          const row = m.weight.select(0, m.paddingIdx);
          row.zero_();
          row.dispose();
        }
      } else if (m instanceof norm) {
        if (m.weight.device !== 'meta') (normValue === 1 ? init.ones_ : init.zeros_)(m.weight);
      }
    }
  });
}
