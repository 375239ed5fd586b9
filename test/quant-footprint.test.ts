// getMemoryFootprint (transformers' get_memory_footprint: parameters + buffers) of 4-bit models, computed
// on 'meta': Llama-2-7B in NF4 with double quantization is about 3.9 GB (3.24 GB of packed weights, 0.52 GB
// of float16 embeddings and head, 0.1 GB of 8-bit absmax), and a meta 4-bit model has exactly the sizes of
// the real one.
import { BitsAndBytesConfig, Linear4bit } from '../lib';
import { AutoModelForCausalLM, getMemoryFootprint } from '../lib/models';
import { quantizeModel } from '../lib/quant';
import { LLAMA2_7B_CONFIG } from './helpers/llama2-7b';
import { LLAMA_DIR } from './helpers/models';

const NF4_DQ = new BitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true, bnb4bitComputeDtype: 'float16' });

test("Llama-2-7B's 4-bit footprint on 'meta': ~3.9 GB with double quantization (13.5 GB in float16)", () => {
  const model = AutoModelForCausalLM.fromConfig(LLAMA2_7B_CONFIG, { device: 'meta', dtype: 'float16' });
  try {
    const f16 = getMemoryFootprint(model);
    expect(f16).toBe(6_738_415_616 * 2 + 64 * 4); // + the rotary inv_freq buffer (64 float32)
    expect(quantizeModel(model, NF4_DQ)).toBe(32 * 7);
    expect([...model.modules()].filter((m) => m instanceof Linear4bit)).toHaveLength(224);
    // parameters: 6,476,005,376 linear weights packed two to a byte, embeddings and head and norms in float16
    expect(model.getMemoryFootprint({ returnBuffers: false })).toBe(6_476_005_376 / 2 + 2 * 32000 * 4096 * 2 + 65 * 4096 * 2);
    const total = model.getMemoryFootprint();
    // + 8-bit absmax (1 byte per 64 weights), float32 nested absmax (per 256 blocks), code books, JSON states
    const known = 6_476_005_376 / 2 + 2 * 32000 * 4096 * 2 + 65 * 4096 * 2 + 6_476_005_376 / 64 + 32 * (4 * 4096 + 3 * 11008) + 224 * (16 + 256) * 4 + 64 * 4;
    expect(total - known).toBeGreaterThan(0); // the quant-state JSON bytes
    expect(total - known).toBeLessThan(224 * 200);
    expect(total / 1e9).toBeCloseTo(3.87, 2);
  } finally {
    model.dispose();
  }
});

test("fromPretrained({ device: 'meta', quantizationConfig }) sizes the model as the real 4-bit load does", async () => {
  const meta = await AutoModelForCausalLM.fromPretrained(LLAMA_DIR, { device: 'meta', quantizationConfig: NF4_DQ });
  const real = await AutoModelForCausalLM.fromPretrained(LLAMA_DIR, { quantizationConfig: NF4_DQ });
  try {
    expect(meta.getSubmodule('model.layers.0.mlp.up_proj')).toBeInstanceOf(Linear4bit);
    expect(getMemoryFootprint(meta, { returnBuffers: false })).toBe(getMemoryFootprint(real, { returnBuffers: false }));
    const shapes = (m: typeof meta) => Object.entries(m.stateDict()).filter(([k]) => !k.includes('quant_state')).map(([k, t]) => [k, t.dtype, t.shape]);
    expect(shapes(meta)).toEqual(shapes(real));
  } finally {
    meta.dispose();
    real.dispose();
  }
});
