// forward() cut into embeddings, decoder layers and LM-head loss, shared by every decoder-only model:
// what gradient checkpointing (lib/train/gradient-checkpointing.ts) recomputes layer by layer.
import { scope } from '../memory';
import { Tensor } from '../tensor';
import { CausalLMInput, DecoderSegments } from './causal-lm';
import { lmHeadLoss } from './lm-head-loss';

interface Layer<C> {
  forward(hidden: Tensor, ctx: C): Tensor;
}

export function decoderSegments<C>(
  input: CausalLMInput,
  parts: {
    embed: (input: CausalLMInput) => { hidden: Tensor; ctx: C };
    layers: Iterable<Layer<C>>;
    finalNorm: { forward(x: Tensor): Tensor };
    lmHead: Parameters<typeof lmHeadLoss>[0];
  },
): DecoderSegments {
  if (input.pastKeyValues !== undefined || input.useCache) throw new Error('segments(): a key/value cache is for generation, not for training');
  let ctx: C | undefined;
  return {
    embed: () => {
      const e = parts.embed(input);
      ctx = e.ctx;
      return e.hidden;
    },
    layers: [...parts.layers].map((layer, i) => (hidden: Tensor) => {
      if (ctx === undefined) throw new Error(`segments(): layer ${i} ran before embed()`);
      return layer.forward(hidden, ctx);
    }),
    loss: (hidden: Tensor) => {
      if (input.labels === undefined) throw new Error('segments(): loss() needs input.labels');
      const labels = input.labels;
      return scope(() => lmHeadLoss(parts.lmHead, parts.finalNorm.forward(hidden), labels));
    },
  };
}
