// 4-bit bases from AutoModelForCausalLM.fromPretrained: quantized on load from a float checkpoint (every
// Linear but lm_head and the skip modules, a decoder layer at a time), and read from a folder in
// bitsandbytes' saved format, against test/fixtures/quant/make_bnb_llama.py: transformers' logits with each
// Linear's weight replaced by its 4-bit round trip (bitsandbytes' definitions written out), and the folders
// bitsandbytes' Linear4bit saves. savePretrained writes that format back: the same tensors, and a second
// save of what it loads is byte-identical.
import * as fs from 'fs';
import * as path from 'path';
import { BitsAndBytesConfig, Linear4bit, loadSafetensorsSync, memory, noGrad, saveSafetensorsSync, scope, tensor, Tensor } from '../lib';
import { AutoModelForCausalLM, CausalLM } from '../lib/models';
import { Linear } from '../lib/nn';
import { FIXTURES, LLAMA_DIR } from './helpers/models';
import { bytesOf, maxAbsDiff } from './helpers/tensors';
import { tmpDir } from './helpers/tmp-dir';

const QDIR = path.join(FIXTURES, 'quant');
const NF4_DQ_DIR = path.join(QDIR, 'llama-nf4-dq');
const FP4_DIR = path.join(QDIR, 'llama-fp4');
const EXPECT = loadSafetensorsSync(path.join(QDIR, 'expect-4bit.safetensors'));
afterAll(() => Object.values(EXPECT).forEach((t) => t.dispose()));

const NF4_DQ = new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true, bnb4bitComputeDtype: 'float32' });
const FP4 = new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'fp4', bnb4bitComputeDtype: 'float32' });

function logitsOf(model: CausalLM): Tensor {
  return noGrad(() => model.forward({ inputIds: EXPECT.input_ids }).logits);
}

const LINEARS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
function kinds(model: CausalLM): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, m] of model.namedModules()) if (m instanceof Linear || m instanceof Linear4bit) out[name] = m.reprName();
  return out;
}

// The float32 logits of two models whose weights are bit-identical, computed by different kernels
// (transformers' vs ours): float32 summation order differs, |logits| ~ 1, so 1e-4 is ample (the issue's bar).
const TOL = 1e-4;

describe('quantize on load', () => {
  test.each([
    ['nf4 + double quant', NF4_DQ, 'logits_nf4_dq', NF4_DQ_DIR],
    ['fp4', FP4, 'logits_fp4', FP4_DIR],
  ] as const)('%s: every Linear but lm_head is a Linear4bit, codes as bitsandbytes\', logits as transformers\' on the dequantized weights', async (_n, cfg, key, dir) => {
    const model = await AutoModelForCausalLM.fromPretrained(LLAMA_DIR, { quantizationConfig: cfg });
    try {
      const k = kinds(model);
      for (const [name, kind] of Object.entries(k)) expect([name, kind]).toEqual([name, name === 'lm_head' ? 'Linear' : 'Linear4bit']);
      expect(Object.keys(k).filter((n) => LINEARS.some((l) => n.endsWith(l)))).toHaveLength(3 * 7);
      // the state dict is bitsandbytes' own, key for key and byte for byte
      const saved = loadSafetensorsSync(path.join(dir, 'model.safetensors'));
      const mine = model.stateDict();
      expect(Object.keys(mine).sort()).toEqual(Object.keys(saved).sort());
      for (const [name, t] of Object.entries(saved)) {
        expect([name, mine[name].dtype, mine[name].shape]).toEqual([name, t.dtype, t.shape]);
        expect([name, bytesOf(mine[name]).equals(bytesOf(t))]).toEqual([name, true]);
        t.dispose();
      }
      scope(() => expect(maxAbsDiff(logitsOf(model), EXPECT[key])).toBeLessThan(TOL));
      expect(model.quantizationConfig).toBe(cfg);
    } finally {
      model.dispose();
    }
  });

  test('llmInt8SkipModules keeps those modules in float (and then, as transformers, lm_head is quantized too)', async () => {
    const cfg = new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', llmInt8SkipModules: ['down_proj', 'model.layers.1.self_attn'] });
    const model = await AutoModelForCausalLM.fromPretrained(LLAMA_DIR, { quantizationConfig: cfg });
    try {
      const k = kinds(model);
      expect(k['model.layers.0.mlp.down_proj']).toBe('Linear');
      expect(k['model.layers.1.self_attn.q_proj']).toBe('Linear');
      expect(k['model.layers.1.mlp.up_proj']).toBe('Linear4bit');
      expect(k['model.layers.0.self_attn.q_proj']).toBe('Linear4bit');
      expect(k.lm_head).toBe('Linear4bit');
    } finally {
      model.dispose();
    }
  });

  test('bfloat16 compute dtype: the output keeps the input dtype, close to the float32 compute', async () => {
    const bf = new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true, bnb4bitComputeDtype: 'bfloat16' });
    const model = await AutoModelForCausalLM.fromPretrained(LLAMA_DIR, { quantizationConfig: bf });
    try {
      scope(() => {
        const logits = logitsOf(model);
        expect(logits.dtype).toBe('float32');
        // bfloat16 keeps 8 bits of mantissa: each product rounds at ~4e-3 relative; over 3 layers of
        // 48-wide sums the logits (|x| ~ 1) move by a few 1e-2 at most
        expect(maxAbsDiff(logits, EXPECT.logits_nf4_dq)).toBeLessThan(0.1);
      });
    } finally {
      model.dispose();
    }
  });

  test('no tensor is left behind by a quantized load and dispose', async () => {
    (await AutoModelForCausalLM.fromPretrained(LLAMA_DIR, { quantizationConfig: NF4_DQ })).dispose();
    const before = memory();
    (await AutoModelForCausalLM.fromPretrained(LLAMA_DIR, { quantizationConfig: NF4_DQ })).dispose();
    expect(memory()).toEqual(before);
  });
});

describe('bitsandbytes-format folders', () => {
  test.each([
    ['nf4 + double quant', NF4_DQ_DIR, 'logits_nf4_dq', 'nf4'],
    ['fp4', FP4_DIR, 'logits_fp4', 'fp4'],
  ] as const)('%s: loads as it is (config.json quantization_config), logits as transformers\'', async (_n, dir, key, qt) => {
    const model = await AutoModelForCausalLM.fromPretrained(dir);
    try {
      expect(model.quantizationConfig?.loadIn4bit).toBe(true);
      expect(model.quantizationConfig?.bnb4bitQuantType).toBe(qt);
      expect((model.getSubmodule('model.layers.2.mlp.down_proj') as Linear4bit).quantState.quantType).toBe(qt);
      expect(model.getSubmodule('lm_head')).toBeInstanceOf(Linear);
      scope(() => expect(maxAbsDiff(logitsOf(model), EXPECT[key])).toBeLessThan(TOL));
    } finally {
      model.dispose();
    }
  });

  test('savePretrained writes the same tensors and quantization_config; a second round trip is byte-identical', async () => {
    const tmp = tmpDir('quant-save');
    const model = await AutoModelForCausalLM.fromPretrained(NF4_DQ_DIR);
    const a = path.join(tmp, 'a');
    const b = path.join(tmp, 'b');
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
    const config = JSON.parse(fs.readFileSync(path.join(a, 'config.json'), 'utf8'));
    const original = JSON.parse(fs.readFileSync(path.join(NF4_DQ_DIR, 'config.json'), 'utf8'));
    expect(config.quantization_config).toEqual(original.quantization_config);
    expect(fs.readFileSync(path.join(a, 'config.json'), 'utf8')).toContain('"llm_int8_threshold": 6.0');

    const again = await AutoModelForCausalLM.fromPretrained(a);
    try {
      await again.savePretrained(b);
    } finally {
      again.dispose();
    }
    for (const f of ['config.json', 'model.safetensors']) expect([f, fs.readFileSync(path.join(a, f)).equals(fs.readFileSync(path.join(b, f)))]).toEqual([f, true]);
  });

  test("'meta' loads read only the headers", async () => {
    const model = await AutoModelForCausalLM.fromPretrained(NF4_DQ_DIR, { device: 'meta' });
    expect((model.getSubmodule('lm_head') as Linear).weight.device).toBe('meta');
    model.dispose();
  });

  test('a corrupt quant state, a wrong shape and a missing absmax are errors naming the file and the module', async () => {
    const tmp = tmpDir('quant-bad');
    const src = loadSafetensorsSync(path.join(NF4_DQ_DIR, 'model.safetensors'));
    const variants: [string, (t: Record<string, Tensor>) => void, RegExp][] = [
      ['json', (t) => (t['model.layers.0.self_attn.q_proj.weight.quant_state.bitsandbytes__nf4'] = bytes('{oops')), /q_proj'.*is not JSON/],
      ['shape', (t) => (t['model.layers.0.self_attn.q_proj.weight.quant_state.bitsandbytes__nf4'] = bytes(JSON.stringify({ quant_type: 'nf4', blocksize: 64, dtype: 'float32', shape: [48, 24], nested_blocksize: 256, nested_dtype: 'float32', nested_offset: 0.01 }))), /saved weight shape \[48,24\] is not the model's \[48, 48\]/],
      ['absmax', (t) => delete t['model.layers.0.self_attn.q_proj.weight.absmax'], /entry weight.absmax is missing/],
    ];
    for (const [name, edit, msg] of variants) {
      const d = path.join(tmp, name);
      fs.mkdirSync(d);
      fs.copyFileSync(path.join(NF4_DQ_DIR, 'config.json'), path.join(d, 'config.json'));
      const t = { ...src };
      edit(t);
      saveSafetensorsSync(t, path.join(d, 'model.safetensors'));
      const before = memory().tensors;
      await expect(AutoModelForCausalLM.fromPretrained(d)).rejects.toThrow(msg);
      expect(memory().tensors).toBe(before);
    }
    Object.values(src).forEach((t) => t.dispose());
  });
});

/** A string's UTF-8 bytes as a uint8 tensor (how bitsandbytes stores the quant state's JSON). */
function bytes(s: string): Tensor {
  return tensor(Array.from(Buffer.from(s, 'utf8')), { dtype: 'uint8' });
}

test("a 4-bit model refuses to('bfloat16') (its quant state would be cast), as transformers; moving is fine", async () => {
  const model = await AutoModelForCausalLM.fromPretrained(LLAMA_DIR, { quantizationConfig: NF4_DQ });
  try {
    expect(() => model.to('bfloat16')).toThrow(/\.to\('bfloat16'\) is not supported for 4-bit bitsandbytes models/);
    const q = model.getSubmodule('model.layers.0.self_attn.q_proj') as Linear4bit;
    expect(q.quantState.nested!.absmax.dtype).toBe('float32');
    model.to('cpu');
    scope(() => expect(maxAbsDiff(logitsOf(model), EXPECT.logits_nf4_dq)).toBeLessThan(TOL));
  } finally {
    model.dispose();
  }
});
