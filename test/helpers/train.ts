// Shared by the test/train-*.test.ts files: a tiny LoRA model from the tiny-llama fixture, made the
// same way from a seed, and small datasets of token ids whose lengths and label masks vary.
import * as path from 'path';
import { AutoModelForCausalLM, Dataset, getPeftModel, loadSafetensorsSync, LoraConfig, manualSeed, PeftModel, scope, Tensor } from '../../lib';
import { Example } from '../../lib/data';
import { rng } from '../../lib/data/random';
import { LoraConfigOptions } from '../../lib/peft';
import { checkpointedForwardBackward } from '../../lib/train';

export { tmpDir } from './tmp-dir';

export const FIXTURES = path.join(__dirname, '..', 'fixtures');
export const TINY_LLAMA = path.join(FIXTURES, 'tiny-llama');

/** tiny-llama with a fresh LoRA adapter; `seed` decides the adapter's initial weights. */
export async function tinyLoraModel(seed = 0, lora: LoraConfigOptions = {}): Promise<PeftModel> {
  const base = await AutoModelForCausalLM.fromPretrained(TINY_LLAMA);
  manualSeed(seed);
  return getPeftModel(
    base,
    new LoraConfig({ r: 4, loraAlpha: 8, targetModules: ['q_proj', 'v_proj', 'down_proj'], initLoraWeights: false, ...lora }),
  );
}

/**
 * `n` examples of random token ids (1..127) of lengths in [minLen, maxLen]; the first few labels of
 * some examples are -100 (a prompt without loss), so examples carry different numbers of label tokens.
 */
export function randomExamples(n: number, seed: number, minLen = 5, maxLen = 14): Dataset<Example> {
  const next = rng(seed);
  const out: Example[] = [];
  for (let i = 0; i < n; i++) {
    const len = minLen + Math.floor(next() * (maxLen - minLen + 1));
    const ids = Int32Array.from({ length: len }, () => 1 + Math.floor(next() * 127));
    const labels = Int32Array.from(ids);
    const masked = Math.floor(next() * Math.min(4, len - 2));
    labels.fill(-100, 0, masked);
    out.push({ inputIds: ids, labels });
  }
  return new Dataset(out);
}


/** Largest |a - b| over the tensors of two .safetensors files with the same keys (throws if keys differ). */
export function maxFileDiff(fileA: string, fileB: string): number {
  const a = loadSafetensorsSync(fileA);
  const b = loadSafetensorsSync(fileB);
  try {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    if (JSON.stringify(ka) !== JSON.stringify(kb)) throw new Error(`different keys: ${ka.join(',')} vs ${kb.join(',')}`);
    let worst = 0;
    for (const k of ka) worst = Math.max(worst, scope(() => a[k].sub(b[k]).abs().max().item() as number));
    return worst;
  } finally {
    for (const t of [...Object.values(a), ...Object.values(b)]) t.dispose();
  }
}

/** The trainable parameters' gradients, by name, as plain arrays. */
export function gradients(model: PeftModel): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, p] of model.namedParameters()) {
    if (!p.requiresGrad) continue;
    const g: Tensor | undefined = p.grad;
    if (g === undefined) throw new Error(`no gradient for ${name}`);
    out.set(name, Float32Array.from(g.data() as Float32Array));
    g.dispose();
  }
  return out;
}

/**
 * Gradient checkpointing (one segment per decoder layer) gives the loss and the trainable gradients of a
 * plain forward and backward on `input`: the same ops recomputed in the same order, equal up to float32
 * summation order (~1e-7 on the fixtures; bound 1e-6). Every gradient is non-zero, so none was dropped.
 */
export function expectCheckpointingMatchesPlain(peft: PeftModel, input: { inputIds: Tensor; attentionMask?: Tensor; labels: Tensor }): void {
  peft.train();
  const core = peft.getBaseModel() as unknown as { forwardLoss(i: typeof input): Tensor };
  const plain = scope(() => {
    const loss = core.forwardLoss(input);
    loss.backward();
    return loss.item() as number;
  });
  const g1 = gradients(peft);
  peft.zeroGrad();
  const loss = checkpointedForwardBackward(peft.getBaseModel() as never, input, 1);
  const ckpt = loss.item() as number;
  loss.dispose();
  const g2 = gradients(peft);
  expect(Math.abs(plain - ckpt)).toBeLessThan(1e-6);
  expect([...g1.keys()].sort()).toEqual([...g2.keys()].sort());
  expect(g1.size).toBeGreaterThan(0);
  expect([...g1].filter(([, g]) => g.every((v) => v === 0)).map(([k]) => k)).toEqual([]);
  let worst = 0;
  for (const [k, a] of g1) {
    const b = g2.get(k)!;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  }
  expect(worst).toBeLessThan(1e-6);
}
