// nn.Module behaviour against PyTorch: the seed's SimpleMLP (262 parameters) loaded from
// mlp-base.safetensors prints, names and computes as PyTorch's (values from make_nn_reference.py);
// state-dict errors, modes, to(), apply, gradients, and no leak over a training-style loop.
import * as path from 'path';
import { loadSafetensorsSync, memory, noGrad, randn, scope, tensor, Tensor, zeros, nn } from '../lib';
import { catchError } from './helpers/errors';
import { loadNnReference, NN_INFO } from './helpers/nn-reference';
import { expectClose } from './helpers/reference';
import { loadedSimpleMLP, SimpleMLP } from './helpers/simple-mlp';

const FIX = path.join(__dirname, 'fixtures');
const { ref: r, dispose } = loadNnReference();
afterAll(dispose);

describe('SimpleMLP from mlp-base.safetensors', () => {
  test('262 parameters, PyTorch state-dict keys and repr', () => {
    const m = loadedSimpleMLP();
    const n = [...m.parameters()].reduce((s, p) => s + p.numel(), 0);
    expect(n).toBe(262);
    expect(n).toBe(NN_INFO['SimpleMLP.numParameters']);
    expect(Object.keys(m.stateDict())).toEqual(NN_INFO['SimpleMLP.stateDictKeys']);
    expect([...m.namedParameters()].map(([k]) => k)).toEqual(NN_INFO['SimpleMLP.stateDictKeys']);
    expect(m.toString()).toBe(NN_INFO.reprs.SimpleMLP);
    expect(`${m}`).toBe(NN_INFO.reprs.SimpleMLP);
    m.dispose();
  });

  test('output, loss and gradients equal PyTorch', () => {
    const m = loadedSimpleMLP();
    scope(() => {
      const y = m.forward(r('mlp.x'));
      expectClose(y, r('mlp.y'), { atol: 1e-6, rtol: 1e-6 });
      const loss = y.pow(2).mean();
      expectClose(loss.reshape(1), r('mlp.loss'), { atol: 1e-7, rtol: 1e-6 });
      loss.backward();
      for (const [name, p] of m.namedParameters()) expectClose(p.grad!, r(`mlp.grad.${name}`), { atol: 1e-6, rtol: 1e-5 });
    });
    m.zeroGrad();
    expect([...m.parameters()].every((p) => p.grad === undefined)).toBe(true);
    m.dispose();
  });
});

describe('children and namedChildren (values from make_nn_reference.py)', () => {
  /** The generator's Nested: a module held under a second name (act2) is a child once, under its first. */
  class Nested extends nn.Module {
    body = new SimpleMLP();
    act = new nn.GELU();
    head = new nn.Linear(2, 3);
    act2 = this.act;
  }

  test('SimpleMLP: its direct children in registration order, the same objects', () => {
    const m = new SimpleMLP();
    expect([...m.namedChildren()].map(([k]) => k)).toEqual(NN_INFO['SimpleMLP.namedChildren']);
    expect([...m.namedChildren()].map(([, c]) => c)).toEqual([m.fc1, m.relu, m.fc2]);
    const kids = [...m.children()];
    expect(kids.length).toBe(3);
    [m.fc1, m.relu, m.fc2].forEach((c, i) => expect(kids[i]).toBe(c));
    // leaves have none
    expect([...m.fc1.children()]).toEqual([]);
    m.dispose();
  });

  test('no grandchildren, a shared module once, a reassigned field keeps its place', () => {
    const m = new Nested();
    const named = [...m.namedChildren()];
    expect(named.map(([k]) => k)).toEqual(NN_INFO['Nested.namedChildren']);
    expect(named.map(([, c]) => c)).toEqual([m.body, m.act, m.head]);
    expect([...m.children()].length).toBe(NN_INFO['Nested.namedChildren'].length);
    expect([...m.children()].includes(m.body.fc1)).toBe(false);
    // named_modules goes down the tree (each module once); repr lists the shared one under both names
    expect([...m.namedModules()].map(([k]) => k)).toEqual(NN_INFO['Nested.namedModules']);
    expect(m.toString()).toBe(NN_INFO['Nested.repr']);
    m.body.dispose();
    (m as unknown as { body: nn.Module }).body = new nn.Linear(10, 2);
    (m as unknown as { tail: nn.Module }).tail = new nn.ReLU();
    expect([...m.namedChildren()].map(([k]) => k)).toEqual(NN_INFO['Nested.namedChildren.reassigned']);
    m.dispose();
  });

  test('a container holding one module twice: len, iteration and repr count it twice, children once', () => {
    const relu = new nn.ReLU();
    const s = new nn.Sequential(relu, new nn.Linear(2, 2), relu);
    expect(s.length).toBe(NN_INFO['SequentialShared.len']);
    expect([...s.namedChildren()].map(([k]) => k)).toEqual(NN_INFO['SequentialShared.namedChildren']);
    expect([...s].map((c) => c.reprName())).toEqual(NN_INFO['SequentialShared.iter']);
    expect(s.toString()).toBe(NN_INFO['SequentialShared.repr']);
    expect(s.at(2)).toBe(relu);
    const x = tensor([[-1, 2]]);
    expect(s.forward(x).shape).toEqual([1, 2]);
    x.dispose();
    s.dispose();
  });
});

describe('stateDict / loadStateDict', () => {
  test('strict load lists missing, unexpected and shape-mismatched keys in one error', () => {
    const m = new SimpleMLP();
    const sd = scope(() => ({
      'fc1.weight': zeros([20, 11]),
      'fc1.bias': zeros([20]),
      'fc2.weight': zeros([2, 20]),
      'fc3.bias': zeros([2]),
    }));
    const before = m.fc1.weight.clone();
    const msg = catchError(() => m.loadStateDict(sd)).message;
    expect(msg).toContain('SimpleMLP');
    expect(msg).toMatch(/missing keys: fc2\.bias/);
    expect(msg).toMatch(/unexpected keys: fc3\.bias/);
    expect(msg).toMatch(/fc1\.weight: the checkpoint has shape \[20, 11\], the model \[20, 10\]/);
    // Nothing was copied when the load failed.
    expect(m.fc1.weight.equal(before)).toBe(true);
    // Non-strict: missing/unexpected are reported, a shape mismatch still fails.
    expect(() => m.loadStateDict(sd, { strict: false })).toThrow(/shape mismatches/);
    const ok = scope(() => ({ 'fc2.bias': tensor([1, 2]), extra: zeros([1]) }));
    const res = m.loadStateDict(ok, { strict: false });
    expect(res.missingKeys).toEqual(['fc1.weight', 'fc1.bias', 'fc2.weight']);
    expect(res.unexpectedKeys).toEqual(['extra']);
    expect(m.fc2.bias!.tolist()).toEqual([1, 2]);
    // Keys that are Object.prototype's names are keys like any other.
    expect(() => m.loadStateDict({ constructor: zeros([1]) } as never)).toThrow(/unexpected keys: constructor/);
    for (const t of [...Object.values(sd), ...Object.values(ok), before]) t.dispose();
    m.dispose();
  });

  test('loading converts dtype; stateDict returns the module tensors themselves; assign shares', () => {
    const m = new SimpleMLP();
    const sd = scope(() => {
      const src = loadSafetensorsSync(path.join(FIX, 'mlp-base.safetensors'));
      return Object.fromEntries(Object.entries(src).map(([k, t]) => [k, t.double()]));
    });
    m.loadStateDict(sd);
    expect(m.fc1.weight.dtype).toBe('float32');
    expectClose(m.fc1.weight, sd['fc1.weight'].float(), {});
    expect(m.stateDict()['fc1.weight']).toBe(m.fc1.weight);
    const w = m.fc1.weight;
    m.loadStateDict(sd, { assign: true });
    expect(m.fc1.weight).toBe(w); // same Parameter object, new data
    expect(m.fc1.weight.dtype).toBe('float64');
    expect(m.fc1.weight.requiresGrad).toBe(true);
    for (const t of Object.values(sd)) t.dispose();
    m.dispose();
  });
});

describe('modes, to(), apply', () => {
  test('train()/eval() reach every submodule and switch Dropout', () => {
    class Net extends nn.Module {
      body = new nn.Sequential(new nn.Linear(4, 4), new nn.Dropout(0.5));
    }
    const m = new Net();
    expect([...m.modules()].every((x) => x.training)).toBe(true);
    expect(m.eval()).toBe(m);
    expect([...m.modules()].every((x) => !x.training)).toBe(true);
    const drop = m.body.at(1) as nn.Dropout;
    scope(() => {
      const x = randn([8, 16]);
      expect(drop.forward(x).equal(x)).toBe(true); // eval: identity
      m.train();
      const y = drop.forward(x);
      const zerosCount = y.eq(0).sum().item() as number;
      expect(zerosCount).toBeGreaterThan(20); // p=0.5 over 128 elements
      // Survivors are scaled by 1/(1-p).
      const kept = y.ne(0);
      expectClose(y.maskedSelect(kept), x.maskedSelect(kept).mul(2), { atol: 1e-6 });
    });
    m.dispose();
  });

  test("to('float64') casts parameters and buffers in place (same objects) and the model runs in float64", () => {
    const m = loadedSimpleMLP();
    m.registerBuffer('counter', tensor([3], { dtype: 'int64' }));
    const p = m.fc1.weight;
    scope(() => {
      m.forward(r('mlp.x')).sum().backward(); // a float32 gradient exists before the cast
    });
    expect(m.to('float64')).toBe(m);
    expect(m.fc1.weight).toBe(p);
    expect([...m.parameters()].every((q) => q.dtype === 'float64' && q.requiresGrad && q.isLeaf)).toBe(true);
    expect(m.fc1.weight.grad!.dtype).toBe('float64');
    expect((m as unknown as { counter: Tensor }).counter.dtype).toBe('int64'); // integer buffers keep their dtype
    scope(() => {
      const y = m.forward(r('mlp.x').double());
      expect(y.dtype).toBe('float64');
      expectClose(y.float(), r('mlp.y'), { atol: 1e-6, rtol: 1e-5 });
      y.sum().backward(); // accumulates into the float64 gradient
    });
    m.to({ dtype: 'float32' });
    expect(m.fc2.bias!.dtype).toBe('float32');
    m.dispose();
  });

  test('apply visits children first, then the module; requiresGrad_ freezes all', () => {
    const m = new SimpleMLP();
    const seen: string[] = [];
    m.apply((x) => seen.push(x.reprName()));
    expect(seen).toEqual(['Linear', 'ReLU', 'Linear', 'SimpleMLP']);
    m.requiresGrad_(false);
    expect([...m.parameters()].some((p) => p.requiresGrad)).toBe(false);
    m.requiresGrad_();
    expect([...m.parameters()].every((p) => p.requiresGrad)).toBe(true);
    expect(m.getSubmodule('fc2')).toBe(m.fc2);
    expect(() => m.getSubmodule('fc3')).toThrow(/no submodule 'fc3'/);
    m.dispose();
    expect(m.fc1.weight.isDisposed).toBe(true);
  });

  test('tied weights are listed once by parameters() and under each name by stateDict()', () => {
    class Tied extends nn.Module {
      wte = new nn.Embedding(10, 4);
      lm_head = new nn.Linear(4, 10, { bias: false });
      constructor() {
        super();
        this.lm_head.weight.dispose();
        this.lm_head.weight = this.wte.weight;
      }
    }
    const m = new Tied();
    expect([...m.namedParameters()].map(([k]) => k)).toEqual(['wte.weight']);
    expect(Object.keys(m.stateDict())).toEqual(['wte.weight', 'lm_head.weight']);
    m.to('float64');
    expect(m.lm_head.weight.dtype).toBe('float64');
    m.dispose();
  });
});

test('no leak over a forward/backward loop', () => {
  const m = loadedSimpleMLP();
  const step = () =>
    scope(() => {
      const x = randn([4, 10]);
      const loss = m.forward(x).pow(2).mean();
      loss.backward();
      noGrad(() => {
        for (const p of m.parameters()) p.sub_(p.grad!.mul(0.01));
      });
      m.zeroGrad();
    });
  step();
  const before = memory();
  for (let i = 0; i < 20; i++) step();
  const after = memory();
  expect(after.tensors).toBe(before.tensors);
  expect(after.bytes).toBe(before.bytes);
  m.dispose();
});
