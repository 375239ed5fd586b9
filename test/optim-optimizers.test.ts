// AdamW and SGD against torch.optim (1.13, foreach=False) on fixed parameters and gradients: several
// steps, two parameter groups, a parameter without a gradient at one step, weight decay, amsgrad,
// maximize, momentum with dampening, Nesterov. Tolerance: 1e-6 relative (+1e-7 absolute).
import { AdamW, memory, nn, scope, SGD, tensor, Tensor } from '../lib';
import { errorMessage } from './helpers/errors';
import { expectClose } from './helpers/reference';
import { loadOptimReference, makeOptimizer } from './helpers/optim-reference';

const R = loadOptimReference();
afterAll(() => R.dispose());
const TOL = { rtol: 1e-6, atol: 1e-7 };

function initParams(): nn.Parameter[] {
  return [0, 1, 2].map((i) => {
    const c = R.ref(`init.p${i}`).clone();
    const p = new nn.Parameter(c);
    c.dispose();
    return p;
  });
}

/** Sets step k's gradients from the fixture (none where PyTorch had None). */
function setGrads(params: nn.Parameter[], k: number): void {
  params.forEach((p, i) => {
    const key = `grad.step${k}.p${i}`;
    if (R.has(key)) {
      const g = R.ref(key).clone();
      p.grad = g;
      g.dispose();
    }
  });
}

describe.each(Object.keys(R.config.optimizers))('%s matches torch.optim', (name) => {
  test('parameters after every step, and the final state', () => {
    const c = R.config.optimizers[name];
    const params = initParams();
    const opt = makeOptimizer(c, params);
    for (let k = 1; k <= R.config.steps; k++) {
      opt.zeroGrad();
      setGrads(params, k);
      opt.step();
      params.forEach((p, i) => expectClose(p, R.ref(`${name}.step${k}.p${i}`), TOL));
    }
    params.forEach((p, i) => {
      const s = opt.state.get(p)!;
      for (const key of ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq', 'momentum_buffer']) {
        const refKey = `${name}.state.p${i}.${key}`;
        if (R.has(refKey)) expectClose(s[key] as Tensor, R.ref(refKey), TOL);
        else expect(s?.[key]).toBeUndefined();
      }
    });
    if (c.class === 'AdamW') {
      // Parameter 1 had no gradient at one step: its step count is one behind.
      const skipped = R.config.skip.filter(([, i]) => i === 1).length;
      expect(params.map((p) => opt.state.get(p)!.step)).toEqual([R.config.steps, R.config.steps - skipped, R.config.steps]);
    }
    opt.dispose();
    params.forEach((p) => p.dispose());
  });
});

test('step() uses the gradient accumulated over several backward() calls', () => {
  const xs = [tensor([1, -2, 0.5]), tensor([0.25, 3, -1]), tensor([2, 0.5, 0.5])];
  const init = tensor([0.3, -0.7, 1.1]);
  const a = new nn.Parameter(init.clone());
  const b = new nn.Parameter(init.clone());
  const optA = new AdamW([a], { lr: 0.1 });
  const optB = new AdamW([b], { lr: 0.1 });
  // a: three micro-batches, each its own backward; b: the summed gradient set directly.
  scope(() => xs.forEach((x) => a.mul(x).sum().backward()));
  b.grad = scope(() => xs[0].add(xs[1]).add(xs[2]));
  expectClose(a.grad!, b.grad!, { rtol: 1e-7 });
  optA.step();
  optB.step();
  expectClose(a, b, { rtol: 1e-7 });
  // and not only the last micro-batch's: one step on it alone lands elsewhere
  const c = new nn.Parameter(init.clone());
  c.grad = xs[2].clone();
  new AdamW([c], { lr: 0.1 }).step();
  expect(Math.max(...(a.sub(c).abs().data() as Float32Array))).toBeGreaterThan(1e-3);
  [optA, optB].forEach((o) => o.dispose());
  [a, b, c, init, ...xs].forEach((t) => t.dispose());
});

test('parameters come as an array, a module.parameters() iterable, or groups that override defaults', () => {
  const lin = new nn.Linear(4, 3);
  const opt = new AdamW(lin.parameters(), { lr: 0.01, betas: [0.8, 0.9] });
  expect(opt.paramGroups).toHaveLength(1);
  expect(opt.paramGroups[0].params).toEqual([lin.weight, lin.bias]);
  expect(opt.paramGroups[0]).toMatchObject({ lr: 0.01, betas: [0.8, 0.9], eps: 1e-8, weightDecay: 1e-2, amsgrad: false });
  const grouped = new AdamW([{ params: [lin.weight] }, { params: [lin.bias!], weightDecay: 0, lr: 0.1 }], { lr: 0.01 });
  expect(grouped.paramGroups.map((g) => [g.lr, g.weightDecay])).toEqual([
    [0.01, 0.01],
    [0.1, 0],
  ]);
  const sgd = new SGD(lin.parameters(), { lr: 0.1, momentum: 0.9 });
  expect(sgd.paramGroups[0]).toMatchObject({ lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false });
  lin.dispose();
});

test('zeroGrad() drops gradients (or zeroes them), in one call for all groups', () => {
  const p = new nn.Parameter(tensor([1, 2]));
  const q = new nn.Parameter(tensor([3]));
  const opt = new SGD([{ params: [p] }, { params: [q] }], { lr: 0.1 });
  scope(() => p.sum().add(q.sum()).backward());
  opt.zeroGrad(false);
  expect(Array.from(p.grad!.data() as Float32Array)).toEqual([0, 0]);
  opt.zeroGrad();
  expect(p.grad).toBeUndefined();
  expect(q.grad).toBeUndefined();
  // a step without gradients changes nothing and makes no state
  opt.step();
  expect(Array.from(p.data() as Float32Array)).toEqual([1, 2]);
  expect(opt.state.size).toBe(0);
  [p, q].forEach((t) => t.dispose());
});

test('state made inside a scope outlives it; dispose() frees it', () => {
  const p = new nn.Parameter(tensor([1, 2, 3]));
  const opt = new AdamW([p], { amsgrad: true });
  const before = memory().tensors;
  scope(() => {
    p.grad = tensor([0.1, 0.2, 0.3]);
    opt.step();
  });
  expect(memory().tensors).toBe(before + 3); // exp_avg, exp_avg_sq, max_exp_avg_sq
  expect((opt.state.get(p)!.exp_avg as Tensor).isDisposed).toBe(false);
  opt.dispose();
  expect(memory().tensors).toBe(before);
  p.dispose();
});

test('clear errors for wrong arguments', () => {
  const p = new nn.Parameter(tensor([1, 2]));
  expect(errorMessage(() => new AdamW([]))).toMatch(/empty parameter list/);
  expect(errorMessage(() => new AdamW(p as never))).toMatch(/single Tensor/);
  expect(errorMessage(() => new AdamW([p], { lr: -1 }))).toMatch(/invalid learning rate: -1/);
  expect(errorMessage(() => new AdamW([p], { betas: [0.9, 1] }))).toMatch(/beta parameter at index 1: 1/);
  expect(errorMessage(() => new AdamW([{ params: [p] }, { params: [p] }]))).toMatch(/more than one parameter group/);
  const nonLeaf = scope(() => {
    const q = new nn.Parameter(tensor([1]));
    const y = q.mul(2);
    return errorMessage(() => new AdamW([y]));
  });
  expect(nonLeaf).toMatch(/non-leaf/);
  expect(errorMessage(() => new SGD([p], { lr: 0.1, nesterov: true }))).toMatch(/Nesterov momentum requires a momentum and zero dampening/);
  expect(errorMessage(() => new SGD([p], undefined as never))).toMatch(/`lr` is required/);
  p.dispose();
});
