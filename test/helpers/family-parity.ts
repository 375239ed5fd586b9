// The checks every model family's fixture gets (test/fixtures/<family>, made by its make_<family>.py with
// real transformers 5 and peft 0.21; see test/fixtures/family_parity_fixture.py): base logits (safetensors, and
// sharded / .bin where the fixture has them), the printed tree, names and counts, greedy generate() with
// the KV cache, a LoRA adapter from .safetensors and .bin (logits, merged logits, greedy ids), a DoRA
// adapter, savePretrained writing what transformers wrote, fromConfig on 'meta', and gradient
// checkpointing. Each family's test file calls familyParityTests(family) and adds what is its own.
//
// Tolerance: 1e-4 on float32 logits, the bar. Our kernels (fused RMSNorm, rotary, SDPA on
// libtorch 1.13) round differently from transformers' composites by ~1e-6 per op; a few layers over
// |logits| ~ 1 stay well inside 1e-4.
import * as fs from 'fs';
import * as path from 'path';
import { AutoModelForCausalLM, getPeftModel, loadSafetensorsSync, LoraConfig, manualSeed, memory, noGrad, PeftModel, scope, tensor, Tensor } from '../../lib';
import { settleGarbage } from './gc';
import type { CausalLM } from '../../lib';
import { numParameters, readConfig } from '../../lib/models';
import { FIXTURES } from './models';
import { maxAbsDiff } from './tensors';
import { expectCheckpointingMatchesPlain } from './train';
import { tmpDir } from './tmp-dir';

export const TOL = 1e-4;

export interface FamilyFixture {
  dir: string;
  meta: {
    params: number;
    lora: { trainable: number; all: number };
    dora: { trainable: number; all: number };
    full_size?: Record<string, { config: string; params: number; lora_r16_all_linear: { trainable: number; all: number } }>;
  };
}

export function familyFixture(family: string): FamilyFixture {
  const dir = path.join(FIXTURES, family);
  return { dir, meta: JSON.parse(fs.readFileSync(path.join(dir, 'meta.json'), 'utf8')) };
}

function logitsOf(model: { forward(i: { inputIds: Tensor }): { logits: Tensor } }, ids: Tensor): Tensor {
  return noGrad(() => model.forward({ inputIds: ids }).logits);
}

const ids = (t: Tensor) => JSON.stringify(t.tolist());

/**
 * defaultTargets: PEFT 0.21's default LoRA target modules for the family's model_type, or null where PEFT
 * has none (phi3: target_modules must be given).
 */
export function familyParityTests(family: string, className: string, defaultTargets: string[] | null): void {
  const fx = familyFixture(family);
  const base = path.join(fx.dir, 'base');
  let exp: Record<string, Tensor>;
  beforeAll(() => {
    exp = loadSafetensorsSync(path.join(fx.dir, 'expect.safetensors'));
  });
  afterAll(() => Object.values(exp).forEach((t) => t.dispose()));

  const folders = ['base', 'base-sharded', 'base-bin'].filter((f) => fs.existsSync(path.join(fx.dir, f)));
  for (const folder of folders) {
    test(`${folder}: logits equal transformers' within 1e-4 (float32)`, async () => {
      const model = await AutoModelForCausalLM.fromPretrained(path.join(fx.dir, folder));
      expect(model.reprName()).toBe(className);
      const logits = logitsOf(model, exp.input_ids);
      expect(logits.shape).toEqual(exp.logits.shape);
      expect(maxAbsDiff(logits, exp.logits)).toBeLessThan(TOL);
      logits.dispose();
      model.dispose();
    });
  }

  test('left padding with an attention mask gives the unpadded logits at the real positions (sliding windows included)', async () => {
    const model = await AutoModelForCausalLM.fromPretrained(base);
    scope(() => {
      const rows = exp.input_ids.tolist() as number[][];
      const n = rows[1].length;
      const padded = tensor([rows[0], [0, 0, ...rows[1].slice(2)]], { dtype: 'int64' });
      const mask = tensor([rows[0].map(() => 1), [0, 0, ...rows[1].slice(2).map(() => 1)]], { dtype: 'int64' });
      const alone = tensor([rows[1].slice(2)], { dtype: 'int64' });
      noGrad(() => {
        const both = model.forward({ inputIds: padded, attentionMask: mask }).logits;
        const single = model.forward({ inputIds: alone }).logits;
        expect(both.isfinite().all().item()).toBe(true); // fully masked padding rows must not give NaN
        expect(maxAbsDiff(both.select(0, 0), exp.logits.select(0, 0))).toBeLessThan(TOL);
        // RoPE sees relative positions only: the shifted row computes the same (float32 rounding of the angles aside)
        expect(maxAbsDiff(both.select(0, 1).narrow(0, 2, n - 2), single.select(0, 0))).toBeLessThan(TOL);
      });
    });
    model.dispose();
  });

  test('bfloat16: the model runs in bfloat16 and stays close to the float32 logits', async () => {
    const model = await AutoModelForCausalLM.fromPretrained(base, { dtype: 'bfloat16' });
    scope(() => {
      const logits = noGrad(() => model.forward({ inputIds: exp.input_ids }).logits);
      expect(logits.dtype).toBe('bfloat16');
      // bfloat16 keeps 8 bits of mantissa; over 2-3 layers the fixtures' logits (|x| < 3.2) drift by
      // 0.011-0.029 (measured, 2026-12-02): twice the largest.
      expect(maxAbsDiff(logits.float(), exp.logits)).toBeLessThan(0.06);
    });
    model.dispose();
  });

  test("printed tree, names and parameter count are transformers'", async () => {
    const model = await AutoModelForCausalLM.fromPretrained(base);
    expect(model.toString() + '\n').toBe(fs.readFileSync(path.join(fx.dir, 'repr.txt'), 'utf8'));
    expect(numParameters(model)).toBe(fx.meta.params);
    const file = loadSafetensorsSync(path.join(base, 'model.safetensors'));
    const saved = Object.keys(file).sort();
    for (const t of Object.values(file)) t.dispose();
    // transformers writes tied weights once: the state dict less lm_head.weight when tied.
    const own = Object.keys(model.stateDict()).filter((k) => !(model.config.tieWordEmbeddings && k === 'lm_head.weight'));
    expect(own.sort()).toEqual(saved);
    model.dispose();
  });

  test("generate(): greedy ids with the KV cache equal transformers'", async () => {
    const model = await AutoModelForCausalLM.fromPretrained(base);
    const out = model.generate(exp.prompt, { maxNewTokens: 8, doSample: false });
    expect(ids(out)).toBe(ids(exp.generated));
    out.dispose();
    model.dispose();
  });

  for (const sub of ['', 'bin']) {
    test(`LoRA adapter (${sub || 'safetensors'}): logits, merged logits and greedy ids equal PEFT's`, async () => {
      const peft = await PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(base), path.join(fx.dir, 'lora', sub));
      const logits = logitsOf(peft as never, exp.input_ids);
      expect(maxAbsDiff(logits, exp.lora_logits)).toBeLessThan(TOL);
      logits.dispose();
      const gen = (peft.getBaseModel() as unknown as CausalLM).generate(exp.prompt, { maxNewTokens: 8, doSample: false });
      expect(ids(gen)).toBe(ids(exp.lora_generated));
      gen.dispose();
      if (sub === '') expect(peft.toString() + '\n').toBe(fs.readFileSync(path.join(fx.dir, 'peft_repr.txt'), 'utf8'));
      const merged = peft.mergeAndUnload() as CausalLM;
      const ml = logitsOf(merged, exp.input_ids);
      expect(maxAbsDiff(ml, exp.lora_merged_logits)).toBeLessThan(TOL);
      ml.dispose();
      merged.dispose();
    });
  }

  test("LoRA and DoRA trainable counts equal PEFT's; DoRA logits and merged logits too", async () => {
    const lora = await PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(base), path.join(fx.dir, 'lora'), { isTrainable: true });
    expect(lora.getNbTrainableParameters()).toEqual([fx.meta.lora.trainable, fx.meta.lora.all]);
    lora.dispose();
    const dora = await PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(base), path.join(fx.dir, 'dora'), { isTrainable: true });
    expect(dora.getNbTrainableParameters()).toEqual([fx.meta.dora.trainable, fx.meta.dora.all]);
    dora.eval();
    const logits = logitsOf(dora as never, exp.input_ids);
    expect(maxAbsDiff(logits, exp.dora_logits)).toBeLessThan(TOL);
    logits.dispose();
    const merged = dora.mergeAndUnload() as CausalLM;
    const ml = logitsOf(merged, exp.input_ids);
    expect(maxAbsDiff(ml, exp.dora_merged_logits)).toBeLessThan(TOL);
    ml.dispose();
    merged.dispose();
  });

  test(defaultTargets ? `PEFT's default target modules: ${defaultTargets.join(', ')}` : 'no PEFT default target modules: a clear error asks for targetModules', async () => {
    const model = await AutoModelForCausalLM.fromPretrained(base);
    if (defaultTargets === null) {
      expect(() => getPeftModel(model, new LoraConfig({ r: 2 }))).toThrow(/Please specify `targetModules`.*model_type '/);
      model.dispose();
      return;
    }
    const peft = getPeftModel(model, new LoraConfig({ r: 2 }));
    const adapted = new Set([...peft.namedModules()].filter(([n]) => n.endsWith('.lora_A')).map(([n]) => n.split('.').slice(-2, -1)[0]));
    expect([...adapted].sort()).toEqual([...defaultTargets].sort());
    peft.dispose();
  });

  test('savePretrained writes the config text and weights transformers wrote; the folder loads back', async () => {
    const model = await AutoModelForCausalLM.fromPretrained(base);
    const out = tmpDir(`${family}-save`);
    await model.savePretrained(out);
    expect(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).toBe(fs.readFileSync(path.join(base, 'config.json'), 'utf8'));
    const mine = loadSafetensorsSync(path.join(out, 'model.safetensors'));
    const theirs = loadSafetensorsSync(path.join(base, 'model.safetensors'));
    expect(Object.keys(mine).sort()).toEqual(Object.keys(theirs).sort());
    for (const k of Object.keys(theirs)) expect([k, maxAbsDiff(mine[k], theirs[k])]).toEqual([k, 0]);
    for (const t of [...Object.values(mine), ...Object.values(theirs)]) t.dispose();
    const back = await AutoModelForCausalLM.fromPretrained(out);
    const logits = logitsOf(back, exp.input_ids);
    expect(maxAbsDiff(logits, exp.logits)).toBeLessThan(TOL);
    logits.dispose();
    back.dispose();
    model.dispose();
  });

  test("fromConfig on 'meta' allocates nothing and counts transformers' parameters; on the CPU it runs", () => {
    const raw = readConfig(base);
    const meta = AutoModelForCausalLM.fromConfig(raw, { device: 'meta' });
    expect(meta.reprName()).toBe(className);
    expect(numParameters(meta)).toBe(fx.meta.params);
    expect([...meta.parameters()].every((p) => p.device === 'meta')).toBe(true);
    meta.dispose();
    manualSeed(0);
    const cpu = AutoModelForCausalLM.fromConfig(raw);
    scope(() => {
      const logits = logitsOf(cpu, exp.input_ids);
      expect(logits.isfinite().all().item()).toBe(true);
    });
    cpu.dispose();
  });

  for (const [name, full] of Object.entries(fx.meta.full_size ?? {})) {
    test(`${name} (published config.json) on 'meta': transformers' ${full.params} parameters, PEFT's r=16 all-linear trainable ${full.lora_r16_all_linear.trainable}`, () => {
      const model = AutoModelForCausalLM.fromConfig(readConfig(path.join(fx.dir, full.config)), { device: 'meta' });
      expect(numParameters(model)).toBe(full.params);
      const peft = getPeftModel(model, new LoraConfig({ r: 16, loraAlpha: 32, targetModules: 'all-linear' }));
      expect(peft.getNbTrainableParameters()).toEqual([full.lora_r16_all_linear.trainable, full.lora_r16_all_linear.all]);
      peft.dispose();
    });
  }

  test('training steps, cached generation and the forward loss in a loop hold no native memory', async () => {
    const peft = await PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(base), path.join(fx.dir, 'lora'), { isTrainable: true });
    const core = peft.getBaseModel() as unknown as CausalLM & { forwardLoss(i: { inputIds: Tensor; labels: Tensor }): Tensor };
    const step = () => {
      peft.train();
      scope(() => core.forwardLoss({ inputIds: exp.input_ids, labels: exp.input_ids }).backward());
      scope(() => (peft.forward({ inputIds: exp.input_ids, labels: exp.input_ids }) as { loss: Tensor }).loss.backward());
      peft.zeroGrad();
      peft.eval();
      core.generate(exp.prompt, { maxNewTokens: 4, doSample: false }).dispose();
    };
    step(); // a first step, so that anything made once (gradient buffers) exists before counting
    await settleGarbage();
    const counts: number[] = [];
    const bytes: number[] = [];
    for (let i = 0; i < 3; i++) {
      step();
      counts.push(memory().tensors);
      bytes.push(memory().bytes);
    }
    expect(new Set(counts).size).toBe(1);
    expect(new Set(bytes).size).toBe(1);
    peft.dispose();
  });

  test('gradient checkpointing gives the LoRA gradients of a plain backward', async () => {
    const peft = await PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(base), path.join(fx.dir, 'lora'), { isTrainable: true });
    expectCheckpointingMatchesPlain(peft, { inputIds: exp.input_ids, labels: exp.input_ids });
    peft.dispose();
  });
}
