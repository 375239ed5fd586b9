// getScheduler against transformers' schedule formulas applied by torch's LambdaLR (the fixture's
// generator writes the formulas out, citing transformers/optimization.py, and lets torch 1.13's
// LambdaLR step them). Learning rates agree to 1e-12 relative (double arithmetic, libm's cos).
import { nn, optim, SGD, tensor, getScheduler } from '../lib';
import { errorMessage } from './helpers/errors';
import { loadOptimReference } from './helpers/optim-reference';

const R = loadOptimReference();
afterAll(() => R.dispose());

function twoGroupSgd(): { opt: SGD; params: nn.Parameter[] } {
  const params = R.config.sched.base_lrs.map(() => new nn.Parameter(tensor([0])));
  const opt = new SGD(
    params.map((p, i) => ({ params: [p], lr: R.config.sched.base_lrs[i] })),
    { lr: 1 },
  );
  return { opt, params };
}

function expectLrs(actual: number[], expected: number[]): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((a, i) => expect(Math.abs(a - expected[i])).toBeLessThanOrEqual(1e-12 * Math.abs(expected[i])));
}

describe.each(Object.keys(R.config.sched.cases))('%s', (name) => {
  test('getLastLr() after construction and each step, and the groups\' lr, as LambdaLR with transformers\' lambda', () => {
    const c = R.config.sched.cases[name];
    const { opt, params } = twoGroupSgd();
    const sched = getScheduler(c.name, opt, {
      numWarmupSteps: c.num_warmup_steps ?? undefined,
      numTrainingSteps: c.num_training_steps ?? undefined,
    });
    const rows = R.ref(`sched.${name}`);
    const expected = Array.from(rows.data() as Float64Array);
    const groups = R.config.sched.base_lrs.length;
    for (let s = 0; s <= R.config.sched.steps; s++) {
      if (s > 0) {
        opt.step();
        sched.step();
      }
      const want = expected.slice(s * groups, (s + 1) * groups);
      expectLrs(sched.getLastLr(), want);
      expectLrs(opt.paramGroups.map((g) => g.lr), want);
    }
    params.forEach((p) => p.dispose());
  });
});

test('stateDict()/loadStateDict() resume the schedule where it was (with the optimizer\'s state)', () => {
  const a = twoGroupSgd();
  const sa = getScheduler('cosine', a.opt, { numWarmupSteps: 2, numTrainingSteps: 9 });
  for (let i = 0; i < 4; i++) sa.step();
  const saved = JSON.parse(JSON.stringify({ opt: a.opt.stateDict(), sched: sa.stateDict() }));
  // As Hugging Face's Trainer resumes: build both, then load the optimizer's state, then the scheduler's.
  const b = twoGroupSgd();
  const sb = getScheduler('cosine', b.opt, { numWarmupSteps: 2, numTrainingSteps: 9 });
  b.opt.loadStateDict(saved.opt);
  sb.loadStateDict(saved.sched);
  expect(b.opt.paramGroups.map((g) => g.lr)).toEqual(a.opt.paramGroups.map((g) => g.lr));
  expect(sb.getLastLr()).toEqual(sa.getLastLr());
  for (let i = 0; i < 6; i++) {
    sa.step();
    sb.step();
    expect(sb.getLastLr()).toEqual(sa.getLastLr());
  }
  expect(sb.stateDict()).toEqual(sa.stateDict());
  [...a.params, ...b.params].forEach((p) => p.dispose());
});

test('a LambdaLR with one lambda per group, and a resumed one needing initialLr', () => {
  const { opt, params } = twoGroupSgd();
  const s = new optim.LambdaLR(opt, [(e) => e, (e) => 2 * e]);
  s.step();
  expect(s.getLastLr()).toEqual([R.config.sched.base_lrs[0], 2 * R.config.sched.base_lrs[1]]);
  expect(opt.paramGroups.map((g) => g.initialLr)).toEqual(R.config.sched.base_lrs);
  const fresh = twoGroupSgd();
  expect(errorMessage(() => new optim.LambdaLR(fresh.opt, () => 1, 5))).toMatch(/param group 0 has no initialLr/);
  expect(errorMessage(() => new optim.LambdaLR(opt, [() => 1]))).toMatch(/expected 2 lr lambdas/);
  [...params, ...fresh.params].forEach((p) => p.dispose());
});

test('getScheduler names what is missing or unknown', () => {
  const { opt, params } = twoGroupSgd();
  expect(errorMessage(() => getScheduler('linear', opt, { numWarmupSteps: 2 }))).toMatch(/'linear' requires `numTrainingSteps`/);
  expect(errorMessage(() => getScheduler('constant_with_warmup', opt))).toMatch(/requires `numWarmupSteps`/);
  expect(errorMessage(() => getScheduler('step' as never, opt))).toMatch(/unknown scheduler 'step'; expected one of constant, constant_with_warmup, linear, cosine/);
  params.forEach((p) => p.dispose());
});
