// Layers against PyTorch (values and reprs from test/fixtures/make_nn_reference.py, torch 1.13):
// default initialisation under manualSeed, each forward, and what each prints.
import { F, manualSeed, memory, noGrad, ones, randn, scope, Tensor, nn } from '../lib';
import { loadNnReference, NN_INFO } from './helpers/nn-reference';
import { expectClose } from './helpers/reference';

const reprs = NN_INFO.reprs;
const { ref: r, dispose } = loadNnReference();
afterAll(dispose);

/** Copies a reference tensor into a parameter. */
function setParam(p: Tensor, v: Tensor): void {
  noGrad(() => p.copy_(v));
}

/** transformers' LlamaRMSNorm is RMSNorm under its own class name. */
class LlamaRMSNorm extends nn.RMSNorm {}

describe('default initialisation follows manualSeed as PyTorch', () => {
  test('Linear(10, 20): kaiming_uniform(a=√5) weight, uniform bias', () => {
    manualSeed(0);
    const l = new nn.Linear(10, 20);
    expectClose(l.weight, r('init.linear.weight'));
    expectClose(l.bias!, r('init.linear.bias'));
    l.dispose();
  });

  test('Embedding(16, 8): N(0, 1); padding row zeroed', () => {
    manualSeed(0);
    const e = new nn.Embedding(16, 8);
    expectClose(e.weight, r('init.embedding.weight'));
    manualSeed(0);
    const p = new nn.Embedding(16, 8, { paddingIdx: 3 });
    expectClose(p.weight, r('init.embedding_pad.weight'));
    expect(scope(() => p.weight.select(0, 3).abs().sum().item())).toBe(0);
    e.dispose();
    p.dispose();
  });

  test("Conv1D(12, 8): transformers' N(0, 0.02) weight, zero bias", () => {
    manualSeed(0);
    const c = new nn.Conv1D(12, 8);
    expect(c.weight.shape).toEqual([8, 12]);
    expectClose(c.weight, r('init.conv1d.weight'));
    expect(c.bias.tolist()).toEqual(new Array(12).fill(0));
    c.dispose();
  });

  test('a chain of constructors draws exactly what PyTorch draws from one seed', () => {
    manualSeed(42);
    const mods: Record<string, nn.Module> = {
      a: new nn.Linear(10, 20),
      e: new nn.Embedding(16, 8),
      ln: new nn.LayerNorm(8),
      b: new nn.Linear(8, 4, { bias: false }),
      c: new nn.Conv1D(12, 8),
      d: new nn.Linear(8, 3),
    };
    for (const [name, m] of Object.entries(mods))
      for (const [pn, p] of m.namedParameters()) expectClose(p, r(`chain.${name}.${pn}`));
    for (const m of Object.values(mods)) m.dispose();
  });

  test("factory options: dtype, and 'meta' allocates nothing and draws nothing", () => {
    const l = new nn.Linear(4, 3, { dtype: 'float64' });
    expect(l.weight.dtype).toBe('float64');
    const before = memory().bytes;
    manualSeed(0);
    const big = [new nn.Linear(4096, 4096, { device: 'meta' }), new nn.Embedding(32000, 4096, { device: 'meta' }),
      new nn.LayerNorm(4096, { device: 'meta' }), new nn.RMSNorm(4096, { device: 'meta' }), new nn.Conv1D(4096, 4096, { device: 'meta' })];
    expect(memory().bytes).toBe(before);
    expect(big[1].parameters().next().value!.shape).toEqual([32000, 4096]);
    // The generator was not advanced: the next Linear equals a fresh seed-0 Linear(10, 20).
    const after = new nn.Linear(10, 20);
    expectClose(after.weight, r('init.linear.weight'));
    for (const m of [l, after, ...big]) m.dispose();
  });
});

describe('forward equals PyTorch', () => {
  test('Embedding: lookup, and no gradient into the padding row', () => {
    const e = new nn.Embedding(16, 8, { paddingIdx: 3 });
    setParam(e.weight, r('embedding.weight'));
    scope(() => {
      const y = e.forward(r('embedding.ids'));
      expectClose(y, r('embedding.y'));
      y.sum().backward();
      expectClose(e.weight.grad!, r('embedding.grad'));
    });
    e.dispose();
  });

  test('LayerNorm: affine over the last dim, and no-affine over the last two', () => {
    const ln = new nn.LayerNorm(8);
    expect(ln.weight!.tolist()).toEqual(new Array(8).fill(1));
    expect(ln.bias!.tolist()).toEqual(new Array(8).fill(0));
    setParam(ln.weight!, r('layernorm.weight'));
    setParam(ln.bias!, r('layernorm.bias'));
    const ln2 = new nn.LayerNorm([3, 8], { elementwiseAffine: false, eps: 1e-6 });
    expect([...ln2.parameters()]).toHaveLength(0);
    const ln3 = new nn.LayerNorm(8, { bias: false });
    expect([...ln3.namedParameters()].map(([k]) => k)).toEqual(['weight']);
    scope(() => {
      expectClose(ln.forward(r('layernorm.x')), r('layernorm.y'), { atol: 1e-6, rtol: 1e-5 });
      expectClose(ln2.forward(r('layernorm.x')), r('layernorm.y_noaffine_3x8'), { atol: 1e-6, rtol: 1e-5 });
    });
    for (const m of [ln, ln2, ln3]) m.dispose();
  });

  test("RMSNorm: Hugging Face's LlamaRMSNorm in float32 and bfloat16", () => {
    const n = new LlamaRMSNorm(8);
    expect(n.weight.tolist()).toEqual(new Array(8).fill(1));
    setParam(n.weight, r('rmsnorm.weight'));
    scope(() => {
      expectClose(n.forward(r('rmsnorm.x')), r('rmsnorm.y'), { atol: 1e-6, rtol: 1e-5 });
      n.to('bfloat16');
      const y = n.forward(r('rmsnorm.x').bfloat16());
      expect(y.dtype).toBe('bfloat16');
      // Same ops in the same dtypes: bfloat16 results agree to a bfloat16 rounding step.
      expectClose(y.float(), r('rmsnorm.y_bf16'), { atol: 1e-2, rtol: 8e-3 });
    });
    n.dispose();
  });

  test('Conv1D: x·W + b with W stored [in, out]', () => {
    const c = new nn.Conv1D(12, 8);
    setParam(c.weight, r('conv1d.weight'));
    setParam(c.bias, r('conv1d.bias'));
    scope(() => {
      expectClose(c.forward(r('conv1d.x')), r('conv1d.y'), { atol: 1e-6, rtol: 1e-5 });
      expect(() => c.forward(ones([2, 7]))).toThrow(/last dimension is 7, expected 8/);
    });
    c.dispose();
  });

  test('Dropout in training (useAtenDropout) draws the same mask as PyTorch after the same seed', () => {
    const d = new nn.Dropout(0.3);
    scope(() => {
      const x = ones([4, 25]);
      F.useAtenDropout(true);
      try {
        manualSeed(123);
        expectClose(d.forward(x), r('dropout.y_train'), { atol: 1e-6 });
      } finally {
        F.useAtenDropout(false);
      }
      d.eval();
      expect(d.forward(x).equal(x)).toBe(true);
    });
    expect(() => new nn.Dropout(1.5)).toThrow(/\[0, 1\]/);
  });

  test('Sequential chains its modules and frees the intermediates', () => {
    const s = new nn.Sequential(new nn.Linear(8, 6), new nn.GELU(), new nn.Linear(6, 2));
    s.loadStateDict(Object.fromEntries(['0.weight', '0.bias', '2.weight', '2.bias'].map((k) => [k, r(`sequential.${k}`)])));
    scope(() => {
      const before = memory().tensors;
      const y = s.forward(r('sequential.x'));
      expect(memory().tensors).toBe(before + 1); // only the output is left
      expectClose(y, r('sequential.y'), { atol: 1e-6, rtol: 1e-5 });
    });
    s.dispose();
  });
});

describe('activations', () => {
  const cases: [string, () => nn.Module][] = [
    ['relu', () => new nn.ReLU()],
    ['gelu', () => new nn.GELU()],
    ['gelu_tanh', () => new nn.GELU({ approximate: 'tanh' })],
    ['silu', () => new nn.SiLU()],
    ['tanh', () => new nn.Tanh()],
    ['sigmoid', () => new nn.Sigmoid()],
    ['relu6', () => new nn.ReLU6()],
  ];
  test.each(cases)('%s module equals PyTorch', (name, make) => {
    scope(() => expectClose(make().forward(r('act.x')), r(`act.${name}`), { atol: 1e-6, rtol: 1e-6 }));
  });

  // config name -> the reference output (transformers' formula, computed by PyTorch) and the class name
  const hf: [string, string, string][] = [
    ['silu', 'silu', 'SiLUActivation'],
    ['swish', 'silu', 'SiLU'],
    ['gelu', 'gelu', 'GELUActivation'],
    ['gelu_python', 'gelu_python', 'GELUActivation'],
    ['gelu_new', 'gelu_new', 'NewGELUActivation'],
    ['gelu_pytorch_tanh', 'gelu_tanh', 'GELUTanh'],
    ['gelu_python_tanh', 'gelu_new', 'GELUTanh'],
    ['gelu_accurate', 'gelu_new', 'AccurateGELUActivation'],
    ['gelu_fast', 'gelu_fast', 'FastGELUActivation'],
    ['quick_gelu', 'quick_gelu', 'QuickGELUActivation'],
    ['gelu_10', 'gelu_10', 'ClippedGELUActivation'],
    ['relu', 'relu', 'ReLU'],
    ['relu2', 'relu2', 'ReLUSquaredActivation'],
    ['relu6', 'relu6', 'ReLU6'],
    ['tanh', 'tanh', 'Tanh'],
    ['sigmoid', 'sigmoid', 'Sigmoid'],
  ];
  test.each(hf)("getActivation('%s') equals transformers' formula", (name, refKey, cls) => {
    const act = nn.getActivation(name);
    expect(act.toString()).toBe(`${cls}()`);
    scope(() => expectClose(act.forward(r('act.x')), r(`act.${refKey}`), { atol: 2e-6, rtol: 1e-6 }));
  });

  test("'linear' is the identity; an unknown name lists the known ones", () => {
    scope(() => {
      const x = r('act.x');
      expect(nn.getActivation('linear').forward(x)).toBe(x);
    });
    expect(() => nn.getActivation('gelu_neww')).toThrow(/unknown activation function 'gelu_neww'; known: .*gelu_new.*silu/);
    expect(() => nn.getActivation('toString')).toThrow(/unknown activation/);
    expect(nn.getActivation('silu')).not.toBe(nn.getActivation('silu')); // a fresh module each time
  });

  test('the formula activations leave no intermediates behind', () => {
    scope(() => {
      const x = randn([64]);
      for (const name of ['gelu_new', 'gelu_fast', 'quick_gelu', 'gelu_python', 'relu2', 'gelu_10']) {
        const before = memory().tensors;
        nn.getActivation(name).forward(x);
        expect(memory().tensors).toBe(before + 1);
      }
    });
  });
});

describe('reprs equal what PyTorch prints', () => {
  const cases: [string, () => nn.Module][] = [
    ['Linear', () => new nn.Linear(10, 20, { device: 'meta' })],
    ['LinearNoBias', () => new nn.Linear(4, 2, { bias: false })],
    ['Embedding', () => new nn.Embedding(128, 48, { device: 'meta' })],
    ['EmbeddingPad', () => new nn.Embedding(128, 48, { paddingIdx: 0, device: 'meta' })],
    ['EmbeddingPadNegative', () => new nn.Embedding(10, 3, { paddingIdx: -1 })],
    ['LayerNorm', () => new nn.LayerNorm(48)],
    ['LayerNormShape', () => new nn.LayerNorm([4, 5], { elementwiseAffine: false })],
    ['LayerNormEps', () => new nn.LayerNorm(48, { eps: 1e-12 })],
    ['Dropout', () => new nn.Dropout(0.1)],
    ['DropoutDefault', () => new nn.Dropout()],
    ['ReLU', () => new nn.ReLU()],
    ['GELU', () => new nn.GELU()],
    ['GELUTanhApprox', () => new nn.GELU({ approximate: 'tanh' })],
    ['SiLU', () => new nn.SiLU()],
    ['Tanh', () => new nn.Tanh()],
    ['Sigmoid', () => new nn.Sigmoid()],
    ['ReLU6', () => new nn.ReLU6()],
    ['LlamaRMSNorm', () => new LlamaRMSNorm(48)],
    ['Conv1D', () => new nn.Conv1D(144, 48, { device: 'meta' })],
  ];
  test.each(cases)('%s', (key, make) => {
    const m = make();
    expect(m.toString()).toBe(reprs[key]);
    m.dispose();
  });

  test('Python float spelling', () => {
    const cases: [number, string][] = [[1e-5, '1e-05'], [1e-6, '1e-06'], [0.1, '0.1'], [0.5, '0.5'], [1, '1.0'], [0, '0.0'],
      [1e-4, '0.0001'], [1.5e-7, '1.5e-07'], [1e16, '1e+16'], [123456.0, '123456.0'], [0.30000000000000004, '0.30000000000000004']];
    for (const [x, s] of cases) expect(nn.pyFloat(x)).toBe(s);
    expect(nn.pyTuple([48])).toBe('(48,)');
    expect(nn.pyTuple([4, 5])).toBe('(4, 5)');
  });

  test('constructor checks', () => {
    expect(() => new nn.Embedding(10, 3, { paddingIdx: 10 })).toThrow(/paddingIdx must be an integer in \[-10, 10\)/);
    expect(() => new nn.ClippedGELUActivation(1, -1)).toThrow(/min should be < max/);
  });
});
