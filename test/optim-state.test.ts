// Optimizer state dicts: saved through saveSafetensors + JSON and loaded into a fresh optimizer, the
// run continues exactly as the unbroken one (and as PyTorch's). And no leak over 1,000 steps.
import * as fs from 'fs';
import * as path from 'path';
import {
  AdamW,
  clipGradNorm,
  getScheduler,
  loadSafetensorsSync,
  memory,
  nn,
  optim,
  randn,
  saveSafetensorsSync,
  scope,
  Tensor,
} from '../lib';
import { errorMessage } from './helpers/errors';
import { expectClose } from './helpers/reference';
import { loadOptimReference, makeOptimizer } from './helpers/optim-reference';
import { tmpDir } from './helpers/tmp-dir';

const R = loadOptimReference();
afterAll(() => R.dispose());

function params(from: (i: number) => Tensor): nn.Parameter[] {
  return [0, 1, 2].map((i) => {
    const c = from(i).clone();
    const p = new nn.Parameter(c);
    c.dispose();
    return p;
  });
}
function setGrads(ps: nn.Parameter[], k: number): void {
  ps.forEach((p, i) => {
    const key = `grad.step${k}.p${i}`;
    p.grad = undefined;
    if (R.has(key)) {
      const g = R.ref(key).clone();
      p.grad = g;
      g.dispose();
    }
  });
}

describe.each(['adamw_groups', 'adamw_amsgrad', 'sgd_momentum', 'sgd_nesterov'])('%s', (name) => {
  test('a state dict saved to disk and loaded into a fresh optimizer continues identically', () => {
    const c = R.config.optimizers[name];
    const split = 2;
    const a = params((i) => R.ref(`init.p${i}`));
    const optA = makeOptimizer(c, a);
    for (let k = 1; k <= split; k++) {
      setGrads(a, k);
      optA.step();
    }
    const dir = tmpDir('optim-state');
    const { tensors, meta } = optim.flattenOptimizerState(optA.stateDict());
    saveSafetensorsSync(tensors, path.join(dir, 'optimizer.safetensors'));
    fs.writeFileSync(path.join(dir, 'optimizer.json'), JSON.stringify(meta));

    // A fresh optimizer with other hyperparameters: loading brings the saved ones back.
    const b = params((i) => a[i]);
    const optB = makeOptimizer({ ...c, defaults: { ...c.defaults, lr: 0.5 }, groups: c.groups.map((g) => ({ params: g.params })) }, b);
    const loaded = loadSafetensorsSync(path.join(dir, 'optimizer.safetensors'));
    optB.loadStateDict(optim.unflattenOptimizerState(loaded, JSON.parse(fs.readFileSync(path.join(dir, 'optimizer.json'), 'utf8'))));
    Object.values(loaded).forEach((t) => t.dispose()); // loadStateDict copied them
    expect(optB.paramGroups.map(({ params: _p, ...h }) => h)).toEqual(optA.paramGroups.map(({ params: _p, ...h }) => h));

    for (let k = split + 1; k <= R.config.steps; k++) {
      setGrads(a, k);
      setGrads(b, k);
      optA.step();
      optB.step();
      b.forEach((p, i) => {
        expectClose(p, a[i]); // exactly the unbroken run
        expectClose(p, R.ref(`${name}.step${k}.p${i}`), { rtol: 1e-6, atol: 1e-7 });
      });
    }
    [optA, optB].forEach((o) => o.dispose());
    [...a, ...b].forEach((p) => p.dispose());
  });
});

test('stateDict() has PyTorch\'s shape: state by parameter index, groups with indices', () => {
  const c = R.config.optimizers.adamw_groups;
  const ps = params((i) => R.ref(`init.p${i}`));
  const opt = makeOptimizer(c, ps);
  setGrads(ps, 1);
  ps[1].grad = undefined; // parameter 1 gets no state
  opt.step();
  const sd = opt.stateDict();
  expect(Object.keys(sd.state)).toEqual(['0', '2']);
  expect(Object.keys(sd.state[0]).sort()).toEqual(['exp_avg', 'exp_avg_sq', 'step']);
  expect(sd.state[0].step).toBe(1);
  expect(sd.paramGroups.map((g) => g.params)).toEqual([[0, 1], [2]]);
  expect(sd.paramGroups[0]).toMatchObject({ lr: 1e-2, weightDecay: 0.1, betas: [0.9, 0.95], eps: 1e-7, amsgrad: false });
  const { tensors, meta } = optim.flattenOptimizerState(sd);
  expect(Object.keys(tensors).sort()).toEqual(['state.0.exp_avg', 'state.0.exp_avg_sq', 'state.2.exp_avg', 'state.2.exp_avg_sq']);
  expect(meta.state).toEqual({ 0: { step: 1 }, 2: { step: 1 } });

  const other = params((i) => R.ref(`init.p${i}`));
  const wrong = new AdamW([other[0]]);
  expect(errorMessage(() => wrong.loadStateDict(sd))).toMatch(/has 2 parameter groups, the optimizer 1/);
  const narrow = new AdamW([{ params: [other[0]] }, { params: [other[1]] }]);
  expect(errorMessage(() => narrow.loadStateDict(sd))).toMatch(/parameter group 0 has 2 parameters in the state dict and 1 in the optimizer/);
  const swapped = new AdamW([{ params: [other[2], other[1]] }, { params: [other[0]] }]);
  expect(errorMessage(() => swapped.loadStateDict(sd))).toMatch(/state\[0\]\.exp_avg has shape \[3, 4\] but its parameter has shape \[2, 3\]/);
  expect(swapped.state.size).toBe(0); // a failed load changes nothing
  [opt, wrong, narrow, swapped].forEach((o) => o.dispose());
  [...ps, ...other].forEach((p) => p.dispose());
});

test('no leak over 1,000 training steps (backward, clip, AdamW, schedule, zeroGrad)', () => {
  const lin = new nn.Linear(8, 4);
  const x = randn([5, 8]);
  const opt = new AdamW(lin.parameters(), { lr: 1e-3 });
  const sched = getScheduler('linear', opt, { numWarmupSteps: 10, numTrainingSteps: 1000 });
  const train = () =>
    scope(() => {
      lin.forward(x).square().mean().backward();
      clipGradNorm(lin.parameters(), 1.0);
      opt.step();
      sched.step();
      opt.zeroGrad();
    });
  train(); // the first step makes the state
  const before = memory();
  for (let i = 0; i < 1000; i++) train();
  expect(memory()).toEqual(before);
  expect(opt.state.get(lin.weight)!.step).toBe(1001);
  opt.dispose();
  lin.dispose();
  x.dispose();
});
