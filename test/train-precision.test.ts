// Mixed precision: the base in bfloat16 with float32 adapters (PEFT's autocast_adapter_dtype), or all
// bfloat16; and the float16 loss scaler's bookkeeping. bfloat16 keeps 8 bits of mantissa, so its losses
// are compared with float32's at bfloat16's resolution.
import * as path from 'path';
import { F, ones, readSafetensorsHeader, scope, tensor, torchVersion, Trainer } from '../lib';
import { nn } from '../lib';
import { castForTraining, CpuFloat16Error, GradScaler, resolveCpuDType } from '../lib/train';
import { float16FlagError } from '../lib/cli/load-model';
import { randomExamples, tinyLoraModel, tmpDir } from './helpers/train';

async function run(extra: Record<string, unknown>) {
  const out = tmpDir('prec');
  const model = await tinyLoraModel(0);
  const trainer = new Trainer({
    model,
    trainDataset: randomExamples(12, 6),
    args: { outputDir: out, maxSteps: 3, perDeviceTrainBatchSize: 4, learningRate: 1e-2, loggingSteps: 1, report: 'none', ...extra },
  });
  const dtypes = new Map<string, string>();
  for (const [name, p] of model.namedParameters()) dtypes.set(name, p.dtype);
  const result = await trainer.train();
  model.dispose();
  const losses = result.logHistory.filter((e) => e.loss !== undefined).map((e) => e.loss!);
  const saved = [...readSafetensorsHeader(path.join(out, 'adapter_model.safetensors')).tensors.values()].map((e) => e.dtype);
  return { dtypes, losses, saved };
}

test('bfloat16 base with float32 adapters, and all bfloat16, train like float32', async () => {
  const f32 = await run({});
  const mixed = await run({ dtype: 'bfloat16' });
  const all = await run({ dtype: 'bfloat16', trainableDtype: 'same' });
  for (const [name, d] of mixed.dtypes) expect([name, d]).toEqual([name, name.includes('lora_') ? 'float32' : 'bfloat16']);
  for (const [name, d] of all.dtypes) expect([name, d]).toEqual([name, 'bfloat16']);
  expect(new Set(mixed.saved)).toEqual(new Set(['float32']));
  expect(new Set(all.saved)).toEqual(new Set(['bfloat16']));
  for (const r of [mixed, all]) {
    expect(r.losses).toHaveLength(3);
    // bfloat16's relative resolution is 2^-8; the loss (~4.9) is a mean of many such terms.
    r.losses.forEach((l, i) => expect(Math.abs(l - f32.losses[i])).toBeLessThan(0.05));
  }
});

test('GradScaler: unscales gradients, backs off on overflow, grows after growthInterval good steps', () => {
  const lin = new nn.Linear(2, 1);
  const x = tensor([[1, 2]]);
  const y = lin.forward(x).sum().mul(1024);
  y.backward();
  const before = Array.from(lin.weight.grad!.data() as Float32Array);
  const s = new GradScaler({ initScale: 1024, growthInterval: 2 });
  s.unscale(lin.parameters());
  expect(Array.from(lin.weight.grad!.data() as Float32Array)).toEqual(before.map((v) => v / 1024));
  s.update(true);
  expect(s.scale).toBe(512);
  s.update(false);
  s.update(false);
  expect(s.scale).toBe(1024);
  const state = s.stateDict();
  const t = new GradScaler();
  t.loadStateDict(state);
  expect(t.stateDict()).toEqual(state);
  [x, y].forEach((v) => v.dispose());
  lin.dispose();
});

/** libtorch's own answer: does a float16 Linear run on the CPU? (1.x: no addmm kernel for Half; 2.x: yes.) */
function cpuHalfLinearError(): string | undefined {
  try {
    scope(() => F.linear(ones([2, 3], { dtype: 'float16' }), ones([4, 3], { dtype: 'float16' })));
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

test('float16 on the CPU: refused when the Trainer is made if this libtorch cannot multiply float16 there, else it trains', async () => {
  const why = cpuHalfLinearError();
  const make = async (how: 'args' | 'model') => {
    const model = await tinyLoraModel(0);
    if (how === 'model') castForTraining(model, 'float16'); // a model already in float16, no dtype setting
    const args = { outputDir: tmpDir('f16'), maxSteps: 1, perDeviceTrainBatchSize: 4, report: 'none' as const, ...(how === 'args' ? { dtype: 'float16' as const } : {}) };
    return { model, create: () => new Trainer({ model, trainDataset: randomExamples(4, 6), args }) };
  };
  for (const how of ['args', 'model'] as const) {
    const { model, create } = await make(how);
    if (why !== undefined) {
      // libtorch 1.13 here: the clear error up front, not addmm_impl_cpu_'s at the first step.
      expect(why).toMatch(/not implemented for 'Half'/);
      expect(create).toThrow(
        `Trainer: float16 weights cannot be trained on the CPU with libtorch ${torchVersion} (${why}); use dtype 'bfloat16' on the CPU, or float16 on a CUDA device`,
      );
      // Nothing was cast or moved before the refusal.
      if (how === 'args') for (const p of model.parameters()) expect(p.dtype).toBe('float32');
    } else {
      // A libtorch with CPU float16 matmul (2.x) is not refused: a step runs and its loss is a number.
      const r = await create().train();
      expect(Number.isFinite(r.trainingLoss)).toBe(true);
    }
    model.dispose();
  }
  // bfloat16 on the CPU is never refused by this check.
  const model = await tinyLoraModel(0);
  expect(() => new Trainer({ model, trainDataset: randomExamples(4, 6), args: { outputDir: tmpDir('bf16'), maxSteps: 1, dtype: 'bfloat16', report: 'none' } })).not.toThrow();
  model.dispose();
});

test('resolveCpuDType: what float16 on the CPU becomes, decided from the probe before anything is loaded', () => {
  const why = cpuHalfLinearError();
  let reads = 0;
  const half = () => (reads++, 'float16' as const);
  // Other devices and dtypes are kept as asked, without reading the checkpoint's dtype.
  for (const [dtype, device] of [['float16', 'cuda'], ['auto', 'cuda:1'], ['bfloat16', 'cpu'], ['float32', 'cpu']] as const)
    expect(resolveCpuDType(dtype, half, device)).toEqual({ dtype });
  expect(reads).toBe(0);
  expect(resolveCpuDType('auto', 'bfloat16', 'cpu')).toEqual({ dtype: 'auto' });
  expect(resolveCpuDType('auto', undefined, 'cpu')).toEqual({ dtype: 'auto' });
  if (why !== undefined) {
    // 'auto' on a float16 checkpoint: float32, with a note; float16 asked for: the error, worded for who asked.
    expect(resolveCpuDType('auto', half, 'cpu')).toEqual({
      dtype: 'float32',
      note: `the checkpoint is float16, which libtorch ${torchVersion} cannot run on the CPU; loading it as float32`,
    });
    expect(reads).toBe(1);
    const err = (opts: Parameters<typeof resolveCpuDType>[3]) => {
      try {
        resolveCpuDType('float16', undefined, 'cpu', opts);
      } catch (e) {
        expect(e).toBeInstanceOf(CpuFloat16Error);
        return (e as Error).message;
      }
      throw new Error('no error');
    };
    expect(err({})).toBe(`Trainer: float16 weights cannot be trained on the CPU with libtorch ${torchVersion} (${why}); use dtype 'bfloat16' on the CPU, or float16 on a CUDA device`);
    expect(err({ purpose: 'inference' })).toBe(`libtorch ${torchVersion} cannot multiply float16 matrices on the CPU (${why}); use dtype 'bfloat16' or 'float32' on the CPU, or a CUDA device`);
    // The CLI words the same facts in its flags (the Trainer's module writes no CLI text).
    const flagText = (purpose: 'training' | 'inference') => {
      try {
        resolveCpuDType('float16', undefined, 'cpu', { purpose });
      } catch (e) {
        return float16FlagError(e as CpuFloat16Error).message;
      }
      throw new Error('no error');
    };
    expect(flagText('training')).toBe(`--dtype float16: float16 weights cannot be trained on the CPU with libtorch ${torchVersion} (${why}); use --dtype bfloat16 or float32, or --device cuda`);
    expect(flagText('inference')).toBe(`--dtype float16: libtorch ${torchVersion} cannot multiply float16 matrices on the CPU (${why}); use --dtype bfloat16 or float32, or --device cuda`);
  } else {
    // A libtorch with CPU float16 matmul (2.x): nothing changes.
    expect(resolveCpuDType('auto', half, 'cpu')).toEqual({ dtype: 'auto' });
    expect(resolveCpuDType('float16', undefined, 'cpu', { purpose: 'inference' })).toEqual({ dtype: 'float16' });
  }
});
