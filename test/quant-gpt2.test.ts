// GPT-2's Conv1D projections (c_attn, c_proj, c_fc; weight stored [in, out]) under bitsandbytes, as
// transformers does it: each becomes a Linear4bit / Linear8bitLt holding the Conv1D weight TRANSPOSED to
// Linear's [out, in], then quantized; lm_head (tied to wte) stays in float. Against
// test/fixtures/quant/make_bnb_gpt2.py: transformers' logits with each Conv1D weight replaced by its round
// trip through that layout, the folders transformers saves for such a model, and real PEFT's LoRA adapter
// (test/fixtures/gpt2-conv1d, fan_in_fan_out true) applied on the 4-bit base.
import * as fs from 'fs';
import * as path from 'path';
import { BitsAndBytesConfig, Linear4bit, LoraConfig, loadSafetensorsSync, memory, noGrad, PeftModel, saveSafetensorsSync, scope, tensor, Tensor } from '../lib';
import { AutoModelForCausalLM, CausalLM } from '../lib/models';
import { Conv1D, Linear } from '../lib/nn';
import { LoraLinear } from '../lib/peft/layers/linear';
import { dequantizeModel } from '../lib/quant';
import { Linear8bit } from '../lib/quant/linear-8bit';
import { cli, makeDataFile, makeModelDir } from './helpers/cli';
import { FIXTURES, GPT2_DIR } from './helpers/models';
import { bytesOf, maxAbsDiff } from './helpers/tensors';
import { tmpDir } from './helpers/tmp-dir';

const QDIR = path.join(FIXTURES, 'quant');
const NF4_DQ_DIR = path.join(QDIR, 'gpt2-nf4-dq');
const INT8_DIR = path.join(QDIR, 'gpt2-int8');
const ADAPTER = path.join(FIXTURES, 'gpt2-conv1d');
const EXPECT = loadSafetensorsSync(path.join(QDIR, 'expect-gpt2-4bit.safetensors'));
afterAll(() => Object.values(EXPECT).forEach((t) => t.dispose()));

const NF4_DQ = new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true, bnb4bitComputeDtype: 'float32' });
const FP4 = new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'fp4', bnb4bitComputeDtype: 'float32' });
const INT8 = new BitsAndBytesConfig({ loadIn8bit: true });
// The same weights (bit for bit) through transformers' kernels and ours: float32 summation order only.
const TOL = 1e-4;

const CONVS = ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'];
function logitsOf(model: { forward(i: { inputIds: Tensor }): unknown }): Tensor {
  return noGrad(() => (model.forward({ inputIds: EXPECT.input_ids }) as { logits: Tensor }).logits);
}
function kinds(model: CausalLM): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, m] of model.namedModules())
    if (m instanceof Linear || m instanceof Conv1D || m instanceof Linear4bit || m instanceof Linear8bit) out[name] = m.reprName();
  return out;
}
function expectStateDictOf(model: CausalLM, file: string): void {
  const saved = loadSafetensorsSync(file);
  const mine = model.stateDict();
  // lm_head.weight is wte's (tied): neither transformers nor we save it
  expect(Object.keys(mine).filter((k) => k !== 'lm_head.weight').sort()).toEqual(Object.keys(saved).sort());
  for (const [name, t] of Object.entries(saved)) {
    expect([name, mine[name].dtype, mine[name].shape]).toEqual([name, t.dtype, t.shape]);
    expect([name, bytesOf(mine[name]).equals(bytesOf(t))]).toEqual([name, true]);
    t.dispose();
  }
}

describe('quantize on load', () => {
  test.each([
    ['nf4 + double quant', NF4_DQ, 'logits_nf4_dq', 'Linear4bit'],
    ['fp4', FP4, 'logits_fp4', 'Linear4bit'],
    ['int8', INT8, 'logits_int8', 'Linear8bitLt'],
  ] as const)("%s: every Conv1D is quantized transposed to [out, in], lm_head stays float; logits as transformers'", async (_n, cfg, key, kind) => {
    const model = await AutoModelForCausalLM.fromPretrained(GPT2_DIR, { quantizationConfig: cfg });
    try {
      const k = kinds(model);
      expect(k.lm_head).toBe('Linear');
      for (const l of [0, 1])
        for (const c of CONVS) {
          const m = model.getSubmodule(`transformer.h.${l}.${c}`) as Linear4bit | Linear8bit;
          expect([c, m.reprName(), m.fromConv1D]).toEqual([c, kind, true]);
        }
      const cAttn = model.getSubmodule('transformer.h.0.attn.c_attn') as Linear4bit | Linear8bit;
      expect([cAttn.inFeatures, cAttn.outFeatures]).toEqual([48, 144]);
      if (cAttn instanceof Linear4bit) expect(cAttn.quantState.shape).toEqual([144, 48]);
      else expect(cAttn.weight.shape).toEqual([144, 48]);
      scope(() => expect(maxAbsDiff(logitsOf(model), EXPECT[key])).toBeLessThan(TOL));
      // the tied head still shares wte's tensor
      expect((model.getSubmodule('lm_head') as Linear).weight).toBe((model.getSubmodule('transformer.wte') as Linear).weight);
      if (cfg === NF4_DQ) expectStateDictOf(model, path.join(NF4_DQ_DIR, 'model.safetensors'));
      if (cfg === INT8) expectStateDictOf(model, path.join(INT8_DIR, 'model.safetensors'));
    } finally {
      model.dispose();
    }
  });

  test("a 'meta' load sizes the Conv1D layers in 4 bits", async () => {
    const f32 = await AutoModelForCausalLM.fromPretrained(GPT2_DIR, { device: 'meta' });
    const q = await AutoModelForCausalLM.fromPretrained(GPT2_DIR, { device: 'meta', quantizationConfig: NF4_DQ });
    try {
      const c = q.getSubmodule('transformer.h.1.mlp.c_proj') as Linear4bit;
      expect([c.reprName(), c.fromConv1D, c.quantState.shape, c.weight.shape]).toEqual(['Linear4bit', true, [48, 192], [4608, 1]]);
      expect(q.getMemoryFootprint()).toBeLessThan(f32.getMemoryFootprint());
    } finally {
      f32.dispose();
      q.dispose();
    }
  });

  test('no tensor is left behind by a quantized GPT-2 load and dispose', async () => {
    (await AutoModelForCausalLM.fromPretrained(GPT2_DIR, { quantizationConfig: NF4_DQ })).dispose();
    const before = memory();
    for (const cfg of [NF4_DQ, INT8]) (await AutoModelForCausalLM.fromPretrained(GPT2_DIR, { quantizationConfig: cfg })).dispose();
    expect(memory()).toEqual(before);
  });
});

describe('bitsandbytes-format GPT-2 folders', () => {
  test.each([
    ['4-bit', NF4_DQ_DIR, 'logits_nf4_dq', 'Linear4bit'],
    ['8-bit', INT8_DIR, 'logits_int8', 'Linear8bitLt'],
  ] as const)("%s: loads as it is, the Conv1D names holding [out, in] weights; logits as transformers'", async (_n, dir, key, kind) => {
    const model = await AutoModelForCausalLM.fromPretrained(dir);
    try {
      const m = model.getSubmodule('transformer.h.0.mlp.c_fc') as Linear4bit | Linear8bit;
      expect([m.reprName(), m.fromConv1D, m.inFeatures, m.outFeatures]).toEqual([kind, true, 48, 192]);
      scope(() => expect(maxAbsDiff(logitsOf(model), EXPECT[key])).toBeLessThan(TOL));
    } finally {
      model.dispose();
    }
  });

  test('savePretrained writes the folder back: the same tensors, and a second round trip is byte-identical', async () => {
    const tmp = tmpDir('quant-gpt2-save');
    const [a, b] = [path.join(tmp, 'a'), path.join(tmp, 'b')];
    const model = await AutoModelForCausalLM.fromPretrained(NF4_DQ_DIR);
    try {
      await model.savePretrained(a);
    } finally {
      model.dispose();
    }
    const fixture = loadSafetensorsSync(path.join(NF4_DQ_DIR, 'model.safetensors'));
    const ours = loadSafetensorsSync(path.join(a, 'model.safetensors'));
    expect(Object.keys(ours).sort()).toEqual(Object.keys(fixture).sort());
    for (const [name, t] of Object.entries(fixture)) expect([name, bytesOf(ours[name]).equals(bytesOf(t))]).toEqual([name, true]);
    [...Object.values(fixture), ...Object.values(ours)].forEach((t) => t.dispose());
    const again = await AutoModelForCausalLM.fromPretrained(a);
    try {
      await again.savePretrained(b);
    } finally {
      again.dispose();
    }
    for (const f of ['config.json', 'model.safetensors']) expect([f, fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f)))]).toEqual([f, true]);
  });

  test("a 4-bit state quantized in Conv1D's own [in, out] layout, or an 8-bit weight left [in, out], is refused, naming the file, module and shapes", async () => {
    const tmp = tmpDir('quant-gpt2-bad');
    const variants: [string, string, (t: Record<string, Tensor>) => void, RegExp][] = [
      [
        '4bit',
        NF4_DQ_DIR,
        (t) => {
          const key = 'transformer.h.0.mlp.c_fc.weight.quant_state.bitsandbytes__nf4';
          const info = JSON.parse(Buffer.from(t[key].data() as Uint8Array).toString('utf8'));
          t[key] = tensor(Array.from(Buffer.from(JSON.stringify({ ...info, shape: [48, 192] }), 'utf8')), { dtype: 'uint8' });
        },
        /model\.safetensors', module 'transformer\.h\.0\.mlp\.c_fc': the saved weight shape \[48,192\] is not the model's \[192, 48\]/,
      ],
      [
        '8bit',
        INT8_DIR,
        (t) => (t['transformer.h.0.mlp.c_fc.weight'] = t['transformer.h.0.mlp.c_fc.weight'].t().contiguous()),
        /module 'transformer\.h\.0\.mlp\.c_fc': weight must be int8 \[192, 48\], got int8 \[48, 192\]/,
      ],
    ];
    for (const [name, src, edit, msg] of variants) {
      const d = path.join(tmp, name);
      fs.mkdirSync(d);
      fs.copyFileSync(path.join(src, 'config.json'), path.join(d, 'config.json'));
      const t = loadSafetensorsSync(path.join(src, 'model.safetensors'));
      const all = Object.values(t);
      edit(t);
      saveSafetensorsSync(t, path.join(d, 'model.safetensors'));
      [...all, ...Object.values(t)].forEach((x) => x.dispose());
      const before = memory().tensors;
      await expect(AutoModelForCausalLM.fromPretrained(d)).rejects.toThrow(msg);
      expect(memory().tensors).toBe(before);
    }
  });
});

describe('LoRA on a 4-bit GPT-2', () => {
  test("PEFT's adapter (fan_in_fan_out true) on the 4-bit base: lora.Linear4bit layers, logits as PEFT's, no warning, config kept", async () => {
    const warnings: string[] = [];
    const onWarn = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarn);
    const peft = await PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(GPT2_DIR, { quantizationConfig: NF4_DQ }), ADAPTER);
    try {
      await new Promise((r) => setImmediate(r));
      expect(warnings.filter((w) => /fan_in_fan_out/.test(w))).toEqual([]);
      const layer = peft.getSubmodule('base_model.model.transformer.h.0.attn.c_attn') as LoraLinear;
      expect([layer.reprName(), layer.fanInFanOut]).toEqual(['lora.Linear4bit', false]);
      expect((peft.peftConfig.get('default') as LoraConfig).fanInFanOut).toBe(true);
      scope(() => expect(maxAbsDiff(logitsOf(peft), EXPECT.lora_logits)).toBeLessThan(TOL));
    } finally {
      process.off('warning', onWarn);
      peft.dispose();
    }
  });

  test('mergeAndUnload on the 4-bit base: Conv1D layers holding dequantized + ΔW ([in, out]), logits as the unmerged model; the save loads as a float GPT-2', async () => {
    const tmp = tmpDir('quant-gpt2-merge');
    const peft = await PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(GPT2_DIR, { quantizationConfig: NF4_DQ }), ADAPTER);
    const onWarn = () => undefined;
    process.on('warning', onWarn);
    let merged: CausalLM;
    try {
      merged = peft.mergeAndUnload();
    } finally {
      process.off('warning', onWarn);
    }
    try {
      // c_proj is square (48x48): a ΔW added untransposed would fit, silently wrong
      for (const c of ['attn.c_attn', 'attn.c_proj', 'mlp.c_proj'])
        expect([c, merged.getSubmodule(`transformer.h.1.${c}`).reprName()]).toEqual([c, 'Conv1D']);
      expect(merged.getSubmodule('transformer.h.1.mlp.c_fc').reprName()).toBe('Linear4bit'); // not targeted
      scope(() => expect(maxAbsDiff(logitsOf(merged), EXPECT.lora_logits)).toBeLessThan(TOL));
      dequantizeModel(merged);
      await merged.savePretrained(tmp);
    } finally {
      merged.dispose();
    }
    const plain = await AutoModelForCausalLM.fromPretrained(tmp);
    try {
      scope(() => expect(maxAbsDiff(logitsOf(plain), EXPECT.lora_logits)).toBeLessThan(TOL));
    } finally {
      plain.dispose();
    }
  });

  test('dequantizeModel gives the Conv1D layers back ([in, out] weights): same logits, and a save loads as a float GPT-2', async () => {
    const tmp = tmpDir('quant-gpt2-deq');
    const model = await AutoModelForCausalLM.fromPretrained(NF4_DQ_DIR);
    try {
      expect(dequantizeModel(model)).toBe(8);
      const c = model.getSubmodule('transformer.h.0.attn.c_attn') as Conv1D;
      expect([c.reprName(), c.weight.shape, c.bias.shape]).toEqual(['Conv1D', [48, 144], [144]]);
      scope(() => expect(maxAbsDiff(logitsOf(model), EXPECT.logits_nf4_dq)).toBeLessThan(TOL));
      await model.savePretrained(tmp);
    } finally {
      model.dispose();
    }
    expect(JSON.parse(fs.readFileSync(path.join(tmp, 'config.json'), 'utf8')).quantization_config).toBeUndefined();
    const plain = await AutoModelForCausalLM.fromPretrained(tmp);
    try {
      expect(plain.getSubmodule('transformer.h.1.mlp.c_fc')).toBeInstanceOf(Conv1D);
      scope(() => expect(maxAbsDiff(logitsOf(plain), EXPECT.logits_nf4_dq)).toBeLessThan(TOL));
    } finally {
      plain.dispose();
    }
  });

  test('CLI train --load-in-4bit on a GPT-2 base: the Conv1D layers train as 4-bit bases, the loss falls, the adapter loads on the float base', async () => {
    const dir = tmpDir('cli-qlora-gpt2');
    const model = makeModelDir(dir, GPT2_DIR);
    const data = makeDataFile(dir, 24);
    const out = path.join(dir, 'run');
    const r = await cli('train', '--model', model, '--data', data, '--output', out, '--load-in-4bit', '--r', '4', '--lora-alpha', '8',
      '--target-modules', 'c_attn,c_fc', '--lr', '0.01', '--batch-size', '4', '--max-steps', '12', '--logging-steps', '1', '--report', 'plain', '--seed', '1');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const l = [...r.out.matchAll(/\| loss ([\d.]+)/g)].map((m) => Number(m[1]));
    expect(l.length).toBeGreaterThanOrEqual(12);
    expect(Math.min(...l.slice(-3))).toBeLessThan(l[0] - 0.1);
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8'));
    expect(saved.target_modules.sort()).toEqual(['c_attn', 'c_fc']);
    const adapter = loadSafetensorsSync(path.join(out, 'adapter_model.safetensors'));
    // lora_A [r, in], lora_B [out, r]: the same layout whatever the base's
    expect(adapter['base_model.model.transformer.h.0.mlp.c_fc.lora_B.weight'].shape).toEqual([192, 4]);
    Object.values(adapter).forEach((t) => t.dispose());
    const f = await PeftModel.fromPretrained(await AutoModelForCausalLM.fromPretrained(model), out);
    try {
      expect((f.getSubmodule('base_model.model.transformer.h.0.mlp.c_fc') as LoraLinear).getBaseLayer()).toBeInstanceOf(Conv1D);
    } finally {
      f.dispose();
    }
  });
});
