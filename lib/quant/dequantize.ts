// transformers' model.dequantize() for bitsandbytes 4-bit layers: each Linear4bit becomes a float Linear
// holding its dequantized weight (in the dtype it was quantized from), and the model forgets its
// quantization config. A layer that was a GPT-2 Conv1D becomes a Conv1D again (its weight transposed back
// to [in, out]), where transformers makes an nn.Linear: so that the model's state dict keeps GPT-2's
// layout and a savePretrained of it loads as GPT-2 again.
import { noGrad } from '../autograd';
import { scope } from '../memory';
import { Conv1D } from '../nn/conv1d';
import { Linear } from '../nn/linear';
import { Module } from '../nn/module';
import { Parameter } from '../nn/parameter';
import { Linear4bit } from './linear-4bit';
import { Linear8bit } from './linear-8bit';

/**
 * A float Linear with `q`'s dequantized weight (a Conv1D, weight [in, out], when q replaced one); takes
 * over q's bias (q is left without it).
 */
export function dequantizedLinear(q: Linear4bit | Linear8bit): Linear | Conv1D {
  const w = noGrad(() => q.dequantize());
  let lin: Linear | Conv1D;
  if (q.fromConv1D) {
    lin = new Conv1D(q.outFeatures, q.inFeatures, { device: 'meta', dtype: w.dtype });
    lin.bias.dispose();
    const wt = noGrad(() => scope(() => w.t().contiguous()));
    lin.weight.dispose();
    lin.weight = new Parameter(wt, false);
    wt.dispose();
  } else {
    lin = new Linear(q.inFeatures, q.outFeatures, { bias: false, device: 'meta', dtype: w.dtype });
    lin.weight.dispose();
    lin.weight = new Parameter(w, false);
  }
  w.dispose();
  if (q.bias) lin.bias = q.bias;
  q.bias = undefined;
  lin.training = q.training;
  return lin;
}

/** Replaces every Linear4bit in `model` (in place) by its dequantized float Linear; returns how many. */
export function dequantizeModel(model: Module): number {
  const found: [Module, string, Linear4bit | Linear8bit][] = [];
  for (const m of model.modules())
    for (const [field, child] of m.moduleFields()) if (child instanceof Linear4bit || child instanceof Linear8bit) found.push([m, field, child]);
  for (const [parent, field, q] of found) {
    (parent as unknown as Record<string, unknown>)[field] = dequantizedLinear(q);
    q.dispose();
  }
  (model as { quantizationConfig?: unknown }).quantizationConfig = undefined;
  return found.length;
}
