// The LoRA layers checked against math identities in float64: the forward equals the base layer with the
// merged weight W + s·B·A (no ΔW formed in forward), gradients equal finite differences, DoRA's output is
// m·(W+sBA)/‖W+sBA‖, merge/unmerge restore W, PiSSA/OLoRA leave the layer's output unchanged.
import { linear } from '../lib/functional';
import { getPeftModel, LoraConfig, manualSeed, nn, noGrad, PeftModel, peft as P, randn, randint, scope, Tensor, memory, tensor } from '../lib';
import { svd } from '../lib/linalg';
import { loadedSimpleMLP } from './helpers/simple-mlp';
import { tmpDir } from './helpers/tmp-dir';
import type { AdapterSpec } from '../lib/peft';
import { maxAbsDiff, maxAbs } from './helpers/tensors';

function spec(opts: ConstructorParameters<typeof LoraConfig>[0] = {}): AdapterSpec {
  const config = new LoraConfig({ r: 2, loraAlpha: 3, initLoraWeights: false, ...opts });
  return { r: config.r, loraAlpha: config.loraAlpha, config };
}
function linear64(inF: number, outF: number, bias = true): nn.Linear {
  return new nn.Linear(inF, outF, { bias, dtype: 'float64' });
}

/** d(Σ wᵢ·outᵢ)/dθ by central differences, θ one element of `param`. */
function numericGrad(f: () => Tensor, param: Tensor, index: number, eps = 1e-6): number {
  return noGrad(() =>
    scope(() => {
      const flat = param.view(-1);
      const orig = flat.narrow(0, index, 1).clone();
      const eval_ = (delta: number) => {
        flat.narrow(0, index, 1).copy_(orig.add(delta));
        const out = f();
        const w = tensor(Array.from({ length: out.numel() }, (_, i) => Math.sin(1 + 0.7 * i) + 0.1), { dtype: 'float64' }).view(out.shape);
        return out.mul(w).sum().item() as number;
      };
      const up = eval_(eps);
      const down = eval_(-eps);
      flat.narrow(0, index, 1).copy_(orig);
      return (up - down) / (2 * eps);
    }),
  );
}
function analyticGrads(f: () => Tensor, params: Tensor[]): Tensor[] {
  for (const p of params) p.grad = undefined;
  scope(() => {
    const out = f();
    const w = tensor(Array.from({ length: out.numel() }, (_, i) => Math.sin(1 + 0.7 * i) + 0.1), { dtype: 'float64' }).view(out.shape);
    out.mul(w).sum().backward();
  });
  return params.map((p) => p.grad!);
}

beforeEach(() => manualSeed(0));

describe('LoRA Linear', () => {
  test('forward = x·(W + s·B·A)ᵀ + b, and merge/unmerge restore W exactly enough (float64)', () => {
    const base = linear64(5, 4);
    const W0 = base.weight.clone();
    const layer = new P.LoraLinear(base, 'default', spec());
    const x = randn([3, 5], { dtype: 'float64' });
    const y = noGrad(() => layer.forward(x));
    const delta = layer.getDeltaWeight('default');
    const s = 3 / 2;
    const A = layer.loraAWeight('default');
    const B = layer.loraBWeight('default');
    expect(maxAbsDiff(delta, B.matmul(A).mul(s))).toBeLessThan(1e-15);
    const expected = linear(x, base.weight.add(delta), base.bias);
    expect(maxAbsDiff(y, expected)).toBeLessThan(1e-12);
    layer.merge({ safeMerge: true });
    expect(layer.merged).toBe(true);
    expect(maxAbsDiff(noGrad(() => layer.forward(x)), expected)).toBeLessThan(1e-12);
    layer.unmerge();
    expect(maxAbsDiff(base.weight, W0)).toBeLessThan(1e-14);
    layer.dispose();
  });

  test('loraBias: forward adds s·lora_B.bias; merge adds s·b to the base bias, unmerge restores it (float64)', () => {
    const base = linear64(5, 4);
    const W0 = base.weight.clone();
    const b0 = base.bias!.clone();
    const layer = new P.LoraLinear(base, 'default', spec({ loraBias: true }));
    const loraB = layer.lora_B.get('default') as nn.Linear;
    expect(loraB.bias).toBeDefined();
    noGrad(() => loraB.bias!.copy_(randn([4], { dtype: 'float64' })));
    const s = 3 / 2;
    const x = randn([3, 5], { dtype: 'float64' });
    const y = noGrad(() => layer.forward(x));
    const delta = layer.getDeltaWeight('default');
    const expected = linear(x, W0.add(delta), b0.add(loraB.bias!.mul(s)));
    expect(maxAbsDiff(y, expected)).toBeLessThan(1e-12);
    // Without the bias term the output would differ by s·b, which is not small.
    expect(maxAbsDiff(y, linear(x, W0.add(delta), b0))).toBeGreaterThan(1e-3);
    layer.merge();
    expect(maxAbsDiff(base.bias!, b0.add(loraB.bias!.mul(s)))).toBeLessThan(1e-15);
    expect(maxAbsDiff(noGrad(() => layer.forward(x)), expected)).toBeLessThan(1e-12);
    layer.unmerge();
    expect(maxAbsDiff(base.bias!, b0)).toBeLessThan(1e-15);
    expect(maxAbsDiff(base.weight, W0)).toBeLessThan(1e-14);
    // safeMerge takes the same path through the NaN/Inf check.
    layer.merge({ safeMerge: true });
    expect(maxAbsDiff(base.bias!, b0.add(loraB.bias!.mul(s)))).toBeLessThan(1e-15);
    layer.unmerge();
    layer.dispose();
  });

  test('loraBias on a base layer without bias: a warning at creation, a clear error on merge (nothing changed)', () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const base = linear64(5, 4, false);
    const W0 = base.weight.clone();
    const layer = new P.LoraLinear(base, 'default', spec({ loraBias: true }));
    expect(warn).toHaveBeenCalledWith(expect.stringContaining("`lora_bias=True` was passed but the targeted layer of type Linear has no bias"), expect.anything());
    for (const safeMerge of [false, true])
      expect(() => layer.merge({ safeMerge })).toThrow('Impossible to merge LoRA with `lora_bias=True` because the base layer has no bias.');
    expect(layer.merged).toBe(false);
    expect(base.weight.equal(W0)).toBe(true);
    // The unmerged forward still works: x·Wᵀ + s·(B(A x) + b_B).
    const x = randn([2, 5], { dtype: 'float64' });
    const loraB = layer.lora_B.get('default') as nn.Linear;
    const expected = linear(x, W0.add(layer.getDeltaWeight('default'))).add(loraB.bias!.mul(3 / 2));
    expect(maxAbsDiff(noGrad(() => layer.forward(x)), expected)).toBeLessThan(1e-12);
    layer.dispose();
    warn.mockRestore();
  });

  test('loraBias: saved as <module>.lora_B.bias, and a save -> load round trip restores it exactly', async () => {
    const cfg = () => new LoraConfig({ r: 2, loraAlpha: 4, targetModules: ['fc1', 'fc2'], loraBias: true, initLoraWeights: false });
    const peft = getPeftModel(loadedSimpleMLP(), cfg());
    const bias = (m: PeftModel, name: string) => ((m.getBaseModel().getSubmodule(name) as P.LoraLinear).lora_B.get('default') as nn.Linear).bias!;
    noGrad(() => {
      bias(peft, 'fc1').copy_(randn([20]));
      bias(peft, 'fc2').copy_(randn([2]));
    });
    const keys = [...P.getPeftModelStateDict(peft).keys()];
    expect(keys).toEqual([
      'base_model.model.fc1.lora_A.weight',
      'base_model.model.fc1.lora_B.weight',
      'base_model.model.fc1.lora_B.bias',
      'base_model.model.fc2.lora_A.weight',
      'base_model.model.fc2.lora_B.weight',
      'base_model.model.fc2.lora_B.bias',
    ]);
    const x = randn([3, 10]);
    const y = noGrad(() => peft.forward(x) as Tensor);
    for (const safeSerialization of [true, false]) {
      const dir = tmpDir('lora-bias');
      await peft.savePretrained(dir, { safeSerialization });
      const again = await PeftModel.fromPretrained(loadedSimpleMLP(), dir);
      for (const name of ['fc1', 'fc2']) expect(bias(again, name).equal(bias(peft, name))).toBe(true);
      expect(noGrad(() => (again.forward(x) as Tensor).equal(y))).toBe(true);
      again.dispose();
    }
    peft.dispose();
  });

  test('gradients of A, B and x equal finite differences; a frozen base weight gets none', () => {
    const base = linear64(4, 3);
    const layer = new P.LoraLinear(base, 'default', spec());
    const x = randn([2, 4], { dtype: 'float64' }).requiresGrad_(true);
    const A = layer.loraAWeight('default');
    const B = layer.loraBWeight('default');
    const f = () => layer.forward(x);
    const [gA, gB, gx] = analyticGrads(f, [A, B, x]);
    for (const [p, g] of [[A, gA], [B, gB], [x, gx]] as const) {
      const gv = g.data();
      for (let i = 0; i < p.numel(); i++) expect(Math.abs(gv[i] as number - numericGrad(f, p, i))).toBeLessThan(1e-7);
    }
    expect(base.weight.requiresGrad).toBe(true); // frozen by the injector, not by the layer
    // Frozen (as the injector does), the base weight gets no gradient; A and B get the same ones.
    base.weight.requiresGrad_(false);
    base.weight.grad = undefined;
    const [gA2, gB2] = analyticGrads(f, [A, B]);
    expect(base.weight.grad).toBeUndefined();
    expect(gA2).toBeDefined();
    expect(gB2).toBeDefined();
    expect(maxAbsDiff(gA2, gA)).toBeLessThan(1e-15);
    expect(maxAbsDiff(gB2, gB)).toBeLessThan(1e-15);
    layer.dispose();
  });

  test('rsLoRA scales by α/√r; setScale rescales', () => {
    const layer = new P.LoraLinear(linear64(4, 4), 'default', spec({ r: 4, loraAlpha: 8, useRslora: true }));
    expect(layer.scaling.get('default')).toBe(4);
    layer.setScale('default', 0.5);
    expect(layer.scaling.get('default')).toBe(2);
    layer.dispose();
  });

  test('initLoraWeights: true gives A ~ kaiming-uniform(a=√5) and B = 0; gaussian gives A ~ N(0, 1/r²)', () => {
    const l1 = new P.LoraLinear(new nn.Linear(400, 8), 'default', spec({ r: 64, initLoraWeights: true }));
    const A = l1.loraAWeight('default');
    expect(scope(() => l1.loraBWeight('default').abs().max().item())).toBe(0);
    const bound = 1 / Math.sqrt(400);
    expect(scope(() => A.abs().max().item() as number)).toBeLessThanOrEqual(bound);
    expect(scope(() => A.abs().max().item() as number)).toBeGreaterThan(0.95 * bound);
    const l2 = new P.LoraLinear(new nn.Linear(400, 8), 'default', spec({ r: 64, initLoraWeights: 'gaussian' }));
    const std = scope(() => l2.loraAWeight('default').std().item() as number);
    expect(Math.abs(std - 1 / 64)).toBeLessThan(0.05 / 64);
    l1.dispose();
    l2.dispose();
  });

  test('safe merge refuses NaN/Inf and leaves the weight as it was', () => {
    const base = linear64(3, 3);
    const W0 = base.weight.clone();
    const layer = new P.LoraLinear(base, 'default', spec());
    noGrad(() => layer.loraBWeight('default').fill_(Number.POSITIVE_INFINITY));
    expect(() => layer.merge({ safeMerge: true })).toThrow(/NaNs detected in the merged weights. The adapter default seems to be broken/);
    expect(layer.merged).toBe(false);
    expect(base.weight.equal(W0)).toBe(true);
    layer.dispose();
  });

  test('a forward inside a scope leaks nothing', () => {
    const layer = new P.LoraLinear(new nn.Linear(8, 8), 'default', spec({ loraDropout: 0.5 }));
    layer.train();
    const x = randn([4, 8]);
    const before = memory().tensors;
    for (let i = 0; i < 3; i++) layer.forward(x).dispose();
    expect(memory().tensors).toBe(before);
    layer.dispose();
  });

  test("PiSSA: A, B from W's top singular vectors, W replaced by the residual, output unchanged", () => {
    const base = new nn.Linear(12, 10);
    const W = base.weight.clone();
    const x = randn([3, 12]);
    const y0 = noGrad(() => base.forward(x));
    const layer = new P.LoraLinear(base, 'default', spec({ r: 4, loraAlpha: 8, initLoraWeights: 'pissa' }));
    const A = layer.loraAWeight('default');
    const B = layer.loraBWeight('default');
    expect(maxAbsDiff(base.weight.add(B.matmul(A).mul(2)), W)).toBeLessThan(1e-5);
    expect(maxAbsDiff(noGrad(() => layer.forward(x)), y0)).toBeLessThan(1e-5);
    // A·Aᵀ and Bᵀ·B are both diag(S_r)/s (√S split evenly), so they are equal and diagonal.
    const aat = A.matmul(A.t());
    expect(maxAbsDiff(aat, B.t().matmul(B))).toBeLessThan(1e-5);
    expect(maxAbsDiff(aat, diag(aat.diagonal()))).toBeLessThan(1e-5);
    // The TOP r triplets went into the adapter: the residual's singular values are W's from index r on,
    // so its largest is S[r] (any other r triplets would leave a larger one, S[0] or one before r).
    const [, S] = svd(W, { fullMatrices: false });
    const [, Sres] = svd(base.weight, { fullMatrices: false });
    expect(Math.abs((Sres.narrow(0, 0, 1).item() as number) - (S.narrow(0, 4, 1).item() as number))).toBeLessThan(1e-5);
    expect(maxAbsDiff(Sres.narrow(0, 0, 6), S.narrow(0, 4, 6))).toBeLessThan(1e-5);
    expect(maxAbs(Sres.narrow(0, 6, 4))).toBeLessThan(1e-5);
    // s·B·A is then the best rank-r approximation: its singular values are S[0..r).
    const [, Sba] = svd(B.matmul(A).mul(2), { fullMatrices: false });
    expect(maxAbsDiff(Sba.narrow(0, 0, 4), S.narrow(0, 0, 4))).toBeLessThan(1e-5);
    layer.dispose();
  });

  test('OLoRA: B has orthonormal columns (Q), A = R[:r], W replaced by W − s·B·A, output unchanged', () => {
    const base = new nn.Linear(12, 10);
    const W = base.weight.clone();
    const x = randn([3, 12]);
    const y0 = noGrad(() => base.forward(x));
    const layer = new P.LoraLinear(base, 'default', spec({ r: 4, loraAlpha: 8, initLoraWeights: 'olora' }));
    const A = layer.loraAWeight('default');
    const B = layer.loraBWeight('default');
    expect(A.shape).toEqual([4, 12]);
    expect(B.shape).toEqual([10, 4]);
    const eye4 = noGrad(() => B.t().matmul(B));
    expect(maxAbsDiff(eye4, identity(4))).toBeLessThan(1e-5);
    expect(maxAbsDiff(base.weight.add(B.matmul(A).mul(2)), W)).toBeLessThan(1e-5);
    expect(maxAbsDiff(noGrad(() => layer.forward(x)), y0)).toBeLessThan(1e-5);
    layer.dispose();
  });
});

function identity(n: number): Tensor {
  return tensor(Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))));
}
/** diag(v) of a vector. */
function diag(v: Tensor): Tensor {
  return identity(v.shape[0]).to(v.dtype).mul(v.unsqueeze(0));
}

describe('DoRA', () => {
  test("forward = x·(m·(W+sBA)/‖W+sBA‖)ᵀ + b per output row, PEFT's formula; merge/unmerge restore W", () => {
    const base = linear64(6, 5);
    const W0 = base.weight.clone();
    const layer = new P.LoraLinear(base, 'default', spec({ useDora: true }));
    const dora = layer.lora_magnitude_vector.get('default') as P.DoraLinearLayer;
    expect(dora.reprName()).toBe('lora.dora.DoraLinearLayer');
    const s = 1.5;
    const V = base.weight.add(layer.loraBWeight('default').matmul(layer.loraAWeight('default')).mul(s));
    // m starts as ‖W + sBA‖ per row: DoRA starts equal to LoRA.
    expect(maxAbsDiff(dora.weight, V.norm(2, 1))).toBeLessThan(1e-12);
    noGrad(() => dora.weight.mul_(tensor([1.1, 0.9, 1.3, 0.7, 1.0], { dtype: 'float64' })));
    const merged = dora.weight.div(V.norm(2, 1)).unsqueeze(1).mul(V);
    const x = randn([3, 6], { dtype: 'float64' });
    const y = noGrad(() => layer.forward(x));
    expect(maxAbsDiff(y, linear(x, merged, base.bias))).toBeLessThan(1e-12);
    layer.merge();
    expect(maxAbsDiff(base.weight, merged)).toBeLessThan(1e-12);
    layer.unmerge();
    expect(maxAbsDiff(base.weight, W0)).toBeLessThan(1e-12);
    layer.dispose();
  });

  test("the magnitude's gradient equals finite differences (the norm is a constant, as PEFT)", () => {
    const layer = new P.LoraLinear(linear64(4, 3), 'default', spec({ useDora: true }));
    const m = (layer.lora_magnitude_vector.get('default') as P.DoraLinearLayer).weight;
    const x = randn([2, 4], { dtype: 'float64' });
    const f = () => layer.forward(x);
    const [g] = analyticGrads(f, [m]);
    const gv = g.data();
    for (let i = 0; i < m.numel(); i++) expect(Math.abs((gv[i] as number) - numericGrad(f, m, i))).toBeLessThan(1e-7);
    layer.dispose();
  });
});

describe('LoRA Embedding', () => {
  test('lookup of A then B equals the lookup in W + s·(BA)ᵀ; merge/unmerge restore the table', () => {
    const base = new nn.Embedding(11, 5, { dtype: 'float64' });
    const W0 = base.weight.clone();
    const layer = new P.LoraEmbedding(base, 'default', spec());
    expect(layer.lora_embedding_A.get('default')!.shape).toEqual([2, 11]);
    expect(layer.lora_embedding_B.get('default')!.shape).toEqual([5, 2]);
    const ids = randint(0, 11, [2, 4]);
    const y = noGrad(() => layer.forward(ids));
    const table = base.weight.add(layer.getDeltaWeight('default'));
    const expected = table.indexSelect(0, ids.view(-1)).view(2, 4, 5);
    expect(maxAbsDiff(y, expected)).toBeLessThan(1e-12);
    layer.merge();
    expect(maxAbsDiff(noGrad(() => layer.forward(ids)), expected)).toBeLessThan(1e-12);
    layer.unmerge();
    expect(maxAbsDiff(base.weight, W0)).toBeLessThan(1e-14);
    layer.dispose();
  });

  test('DoRA on a table: lookup = m/‖W + s·(BA)ᵀ‖ · (W + s·(BA)ᵀ) per dimension; merge/unmerge restore it', () => {
    const base = new nn.Embedding(11, 5, { dtype: 'float64' });
    const W0 = base.weight.clone();
    const layer = new P.LoraEmbedding(base, 'default', spec({ useDora: true }));
    const dora = layer.lora_magnitude_vector.get('default') as P.DoraEmbeddingLayer;
    expect(dora.reprName()).toBe('lora.dora.DoraEmbeddingLayer');
    expect(dora.weight.shape).toEqual([5]);
    const V = base.weight.add(layer.getDeltaWeight('default'));
    expect(maxAbsDiff(dora.weight, V.norm(2, 0))).toBeLessThan(1e-12);
    noGrad(() => dora.weight.mul_(tensor([1.2, 0.8, 1.0, 0.9, 1.1], { dtype: 'float64' })));
    const merged = dora.weight.div(V.norm(2, 0)).unsqueeze(0).mul(V);
    const ids = randint(0, 11, [2, 3]);
    const expected = merged.indexSelect(0, ids.view(-1)).view(2, 3, 5);
    expect(maxAbsDiff(noGrad(() => layer.forward(ids)), expected)).toBeLessThan(1e-12);
    layer.merge({ safeMerge: true });
    expect(maxAbsDiff(base.weight, merged)).toBeLessThan(1e-12);
    layer.unmerge();
    expect(maxAbsDiff(base.weight, W0)).toBeLessThan(1e-12);
    layer.dispose();
  });

  test('initLoraWeights true: A = 0, so the adapter starts as a no-op', () => {
    const base = new nn.Embedding(11, 5);
    const layer = new P.LoraEmbedding(base, 'default', spec({ initLoraWeights: true }));
    const ids = randint(0, 11, [3]);
    expect(maxAbsDiff(noGrad(() => layer.forward(ids)), noGrad(() => base.forward(ids)))).toBe(0);
    // PyTorch prints a one-entry ParameterDict on one line.
    expect(layer.toString()).toContain('(lora_embedding_A): ParameterDict(  (default): Parameter containing: [torch.FloatTensor of size 2x11])');
    layer.dispose();
  });
});

describe("GPT-2's Conv1D (fanInFanOut)", () => {
  test('forward = x·(W + s·(BA)ᵀ) + b with W stored [in, out]; the config learns fanInFanOut', () => {
    const base = new nn.Conv1D(4, 6, { dtype: 'float64' });
    const cfg = spec();
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const layer = new P.LoraLinear(base, 'default', cfg);
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('Setting fan_in_fan_out to True'), expect.anything());
    warn.mockRestore();
    expect(cfg.config.fanInFanOut).toBe(true);
    expect(layer.loraAWeight('default').shape).toEqual([2, 6]);
    expect(layer.loraBWeight('default').shape).toEqual([4, 2]);
    const delta = layer.getDeltaWeight('default');
    expect(delta.shape).toEqual([6, 4]);
    const x = randn([3, 6], { dtype: 'float64' });
    const expected = x.matmul(base.weight.add(delta)).add(base.bias);
    expect(maxAbsDiff(noGrad(() => layer.forward(x)), expected)).toBeLessThan(1e-12);
    layer.dispose();
  });
});

describe('MergedLinear (a fused qkv)', () => {
  test('only the enabled blocks change; forward = x·(W + ΔW)ᵀ with ΔW block-diagonal in the rank', () => {
    const base = linear64(4, 9, false);
    const layer = new P.LoraMergedLinear(base, 'default', { ...spec(), enableLora: [true, false, true] });
    expect(layer.loraAWeight('default').shape).toEqual([4, 4]);
    expect(layer.loraBWeight('default').shape).toEqual([6, 2]);
    const x = randn([3, 4], { dtype: 'float64' });
    const y = noGrad(() => layer.forward(x));
    const y0 = noGrad(() => base.forward(x));
    const delta = layer.getDeltaWeight('default');
    expect(maxAbsDiff(y, linear(x, base.weight.add(delta)))).toBeLessThan(1e-12);
    expect(maxAbsDiff(y.narrow(1, 3, 3), y0.narrow(1, 3, 3))).toBe(0);
    expect(maxAbsDiff(y.narrow(1, 0, 3), y0.narrow(1, 0, 3))).toBeGreaterThan(0);
    // Block 0 uses A rows 0..1 and B rows 0..2, block 2 A rows 2..3 and B rows 3..5.
    const A = layer.loraAWeight('default');
    const B = layer.loraBWeight('default');
    const q = B.narrow(0, 0, 3).matmul(A.narrow(0, 0, 2)).mul(1.5);
    const v = B.narrow(0, 3, 3).matmul(A.narrow(0, 2, 2)).mul(1.5);
    expect(maxAbsDiff(delta.narrow(0, 0, 3), q)).toBeLessThan(1e-15);
    expect(maxAbsDiff(delta.narrow(0, 6, 3), v)).toBeLessThan(1e-15);
    layer.merge();
    expect(maxAbsDiff(noGrad(() => layer.forward(x)), y)).toBeLessThan(1e-12);
    layer.unmerge();
    expect(layer.toString()).toMatch(/^lora\.MergedLinear\(\n  enable_lora=\[True, False, True\]\n  \(base_layer\): Linear/);
    layer.dispose();
  });
});

describe('dtypes', () => {
  test('a bfloat16 base gets float32 adapters (PEFT autocast); the LoRA path runs in float32, the output stays bfloat16', () => {
    class Tiny extends nn.Module {
      fc = new nn.Linear(8, 4, { dtype: 'bfloat16' });
      forward(x: Tensor): Tensor {
        return this.fc.forward(x);
      }
    }
    const m = new Tiny();
    const p = P.getPeftModel(m, new LoraConfig({ r: 2, targetModules: ['fc'], initLoraWeights: false }));
    const layer = p.getBaseModel().getSubmodule('fc') as P.LoraLinear;
    expect(layer.loraAWeight('default').dtype).toBe('float32');
    expect(layer.baseWeight.dtype).toBe('bfloat16');
    const x = randn([3, 8]).to('bfloat16');
    const y = noGrad(() => p.forward(x)) as Tensor;
    expect(y.dtype).toBe('bfloat16');
    const want = scope(() => {
      const base = linear(x, layer.baseWeight, layer.baseBias);
      const lora = x.float().matmul(layer.loraAWeight('default').t()).matmul(layer.loraBWeight('default').t()).mul(layer.scaling.get('default')!);
      return base.add(lora).to('bfloat16');
    });
    expect(maxAbsDiff(y.float(), want.float())).toBeLessThan(2e-2);
    p.dispose();
  });
});
