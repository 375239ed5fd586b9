// One rank of the collectives test: each collective on values that depend on the rank, results printed as
// JSON for the test to check against the sums it knows.
import { exitWithLauncher } from '../../../lib/distributed/launch';
import { dist, tensor, zeros, memory } from '../../../lib';

async function main(): Promise<void> {
  const timeout = Number(process.argv[2] ?? 30000);
  exitWithLauncher(); // (no worker outlives a test runner that was killed)
  await dist.initProcessGroup({ backend: 'gloo', timeout });
  const rank = dist.getRank();
  const world = dist.getWorldSize();
  const r: Record<string, unknown> = { rank, world, initialized: dist.isInitialized(), backend: dist.getBackend() };

  const a = tensor([rank + 1, 10 * (rank + 1), -rank], { dtype: 'float32' });
  await dist.allReduce(a);
  r.sum = Array.from(a.data() as Float32Array);
  const m = tensor([rank, -rank], { dtype: 'float64' });
  await dist.allReduce(m, 'max');
  r.max = Array.from(m.data() as Float64Array);
  const mn = tensor([rank + 5], { dtype: 'int64' });
  await dist.allReduce(mn, 'min');
  r.min = (mn.data() as BigInt64Array)[0].toString();
  const p = tensor([rank + 2], { dtype: 'float64' });
  await dist.allReduce(p, 'product');
  r.product = (p.data() as Float64Array)[0];
  const av = tensor([2 * rank], { dtype: 'float32' });
  await dist.allReduce(av, 'avg');
  r.avg = (av.data() as Float32Array)[0];
  // several tensors in one call: each reduced on its own
  const xs = [tensor([rank], { dtype: 'float32' }), tensor([1, 2, 3, 4].map((v) => v * rank), { dtype: 'float32' })];
  await dist.allReduce(xs);
  r.several = xs.map((x) => Array.from(x.data() as Float32Array));

  const b = rank === 1 ? tensor([7, 8, 9], { dtype: 'float32' }) : zeros([3]);
  await dist.broadcast(b, 1);
  r.broadcast = Array.from(b.data() as Float32Array);

  const outs = Array.from({ length: world }, () => zeros([2], { dtype: 'int64' }));
  await dist.allGather(outs, tensor([rank, rank * rank], { dtype: 'int64' }));
  r.allGather = outs.map((o) => Array.from(o.data() as BigInt64Array).map(Number));

  // The event loop runs while a collective waits: a timer fires before the barrier completes on rank 0,
  // whose peers join it 300 ms late.
  if (rank !== 0) await new Promise((res) => setTimeout(res, 300));
  let ticks = 0;
  const timer = setInterval(() => ticks++, 20);
  await dist.barrier();
  clearInterval(timer);
  r.ticksDuringBarrier = ticks;

  // bad calls are errors, not crashes
  const errors: string[] = [];
  for (const f of [
    () => dist.broadcast(zeros([1]), world),
    () => dist.allGather([zeros([1])], zeros([1])),
    () => dist.allReduce(zeros([1]), 'mean' as never),
    () => dist.allReduce(zeros([4, 4]).t()),
    () => dist.initProcessGroup({ backend: 'gloo' }),
  ]) {
    try {
      await f();
      errors.push('no error');
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  r.errors = errors;

  // a loop of collectives leaves no tensors behind
  const before = memory().tensors;
  for (let i = 0; i < 20; i++) {
    const t = tensor([i]);
    await dist.allReduce(t);
    t.dispose();
  }
  r.leaked = memory().tensors - before;
  for (const t of [a, m, mn, p, av, ...xs, b, ...outs]) t.dispose();
  dist.destroyProcessGroup();
  r.afterDestroy = dist.isInitialized();
  console.log('RESULT ' + JSON.stringify(r));
}

main().catch((e) => {
  console.error((e as Error).message);
  process.exit(1);
});
