// The Trainer against PEFT (fixture llama-train): the adapter init/ on tiny-llama, 5 steps of AdamW
// (lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.01, constant lr, no clipping) on the one batch
// of batch.safetensors with labels = input_ids. Computing the loss from the logits as transformers does,
// the five logged losses equal PEFT's (meta.json) within 1e-5, in float32 on the CPU, and the adapter the
// Trainer writes equals final/ within the float32 rounding bound of its sums (adapterTolerances below:
// the BLAS libtorch uses, reference or OpenBLAS, and the LoRA kernels of src/lora_cpu_kernels.cpp sum in
// another order than PEFT's MKL). The default chunked loss (no [tokens, vocab] logits held) sums the loss
// in another order too, and is held to the same bound.
import * as fs from 'fs';
import * as path from 'path';
import { loadSafetensorsSync, scope, Tensor } from '../lib';
import { FIXTURES, TINY_LLAMA } from './helpers/train';
import { trainFixture } from './helpers/train-parity';

/** The square root of the sum of squares, in float64. */
function frobenius(t: Tensor): number {
  return scope(() => t.double().pow(2).sum().sqrt().item() as number);
}

/**
 * Per adapter tensor: ||ours - PEFT's|| (Frobenius) and the bound it must stay under, which float32
 * rounding of the step's sums gives (no number picked to pass). A dot product of K float32 terms summed
 * in another order (OpenBLAS blocks and vectorizes its GEMM differently from PEFT's MKL) differs by up to
 * K*u relative to it, u = 2^-24 (Higham's gamma_K, first order); a chain of such sums adds its K's. From a
 * LoRA weight to the loss and back, the chain of sums one after another is per decoder layer: the
 * input RMSNorm, q/k/v (side by side: one link), o_proj, the post-attention RMSNorm and gate/up (one link)
 * over hidden (5), the scores over head_dim, the attention-weighted values over seq, down_proj over
 * intermediate; then the final norm and lm_head (hidden),
 * the log-softmax (vocab) and the token mean (tokens); the backward pass runs the same sums transposed
 * (2x), and the weight gradient sums over the tokens once more. So each gradient carries a relative
 * error rho = K_chain * u. AdamW's step lr * m/sqrt(v) is a ratio of two such sums (m carries rho, the
 * root of v rho), so the steps' total ||theta - theta_init|| carries 2 rho on each side: 4 rho between
 * two implementations. AdamW then rounds the parameter itself once a step (u * ||theta|| a step, on each
 * side). Norm-wise, because one entry whose gradient cancels to the rounding level of its own sum gets a
 * visibly different normalized step (AdamW divides by the root of its tiny second moment): elementwise
 * that entry is off by 1.5e-5 on OpenBLAS while the tensor is within a fifth of this bound.
 */
function adapterTolerances(outFile: string, steps: number, tokens: number, seq: number): { key: string; diff: number; bound: number }[] {
  const c = JSON.parse(fs.readFileSync(path.join(TINY_LLAMA, 'config.json'), 'utf8'));
  const u = 2 ** -24;
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  const perLayer = 5 * c.hidden_size + headDim + seq + c.intermediate_size;
  const kChain = 2 * (c.num_hidden_layers * perLayer + 2 * c.hidden_size + c.vocab_size + tokens) + tokens;
  const rho = kChain * u;
  const ours = loadSafetensorsSync(outFile);
  const peft = loadSafetensorsSync(path.join(FIX, 'final', 'adapter_model.safetensors'));
  const init = loadSafetensorsSync(path.join(FIX, 'init', 'adapter_model.safetensors'));
  try {
    expect(Object.keys(ours).sort()).toEqual(Object.keys(peft).sort());
    return Object.keys(peft).sort().map((key) => {
      const diff = scope(() => frobenius(ours[key].sub(peft[key])));
      const moved = scope(() => frobenius(peft[key].sub(init[key])));
      return { key, diff, bound: 4 * rho * moved + 2 * steps * u * frobenius(peft[key]) };
    });
  } finally {
    for (const t of [...Object.values(ours), ...Object.values(peft), ...Object.values(init)]) t.dispose();
  }
}

const meta = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'meta.json'), 'utf8'));
const FIX = path.join(FIXTURES, 'llama-train');

const trainLlama = (chunkedLoss: boolean) => trainFixture(TINY_LLAMA, FIX, { chunkedLoss });

const want: number[] = meta['llama-train'].losses;

test("Trainer (loss from the logits): PEFT's five losses within 1e-5, the final adapter within float32 rounding of its sums", async () => {
  const { losses, out } = await trainLlama(false);
  expect(losses).toHaveLength(5);
  losses.forEach((l, i) => expect(Math.abs(l - want[i])).toBeLessThan(1e-5));
  const batch = loadSafetensorsSync(path.join(FIX, 'batch.safetensors'));
  const [rows, seq] = batch.input_ids.shape;
  batch.input_ids.dispose();
  const tensors = adapterTolerances(path.join(out, 'adapter_model.safetensors'), losses.length, rows * seq, seq);
  expect(tensors.length).toBeGreaterThan(0);
  for (const { key, diff, bound } of tensors) expect({ key, diff, within: diff <= bound }).toEqual({ key, diff, within: true });
  // The adapter's config is PEFT's (the same keys and values as final/, which PEFT wrote).
  const cfg = JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8'));
  const ref = JSON.parse(fs.readFileSync(path.join(FIX, 'final', 'adapter_config.json'), 'utf8'));
  for (const k of ['r', 'lora_alpha', 'lora_dropout', 'target_modules', 'peft_type', 'bias', 'use_rslora', 'use_dora']) expect([k, cfg[k]]).toEqual([k, ref[k]]);
});

test('Trainer (default chunked loss): the same losses within 1e-5, the adapter within float32 rounding of its sums', async () => {
  const { losses, out } = await trainLlama(true);
  expect(want).toHaveLength(5);
  expect(losses).toHaveLength(want.length);
  losses.forEach((l, i) => expect(Math.abs(l - want[i])).toBeLessThan(1e-5));
  // The chunked loss sums the same log-softmax terms (vocab) and token mean (tokens) in another order:
  // the same chain of sums as above, so the same bound.
  const batch = loadSafetensorsSync(path.join(FIX, 'batch.safetensors'));
  const [rows, seq] = batch.input_ids.shape;
  batch.input_ids.dispose();
  for (const { key, diff, bound } of adapterTolerances(path.join(out, 'adapter_model.safetensors'), losses.length, rows * seq, seq))
    expect({ key, diff, within: diff <= bound }).toEqual({ key, diff, within: true });
});
