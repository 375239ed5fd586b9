// GradientSync's reducer in one process (a 1-rank Gloo group over a FileStore, where the all-reduce sum is
// the identity): which buckets a backward issues itself and in what order, no_sync, parameters without a
// gradient, a parameter accumulated twice, and that hooks go with dispose(). The multi-rank sums are
// dist-train.test.ts's.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { dist, memory, nn, randn, scope, tensor, Tensor } from '../lib';
import { resolveTrainingArguments } from '../lib/train';

const maybe = dist.isAvailable('gloo') ? describe : describe.skip;
const grads = (ps: nn.Parameter[]) => ps.map((p) => (p.grad === undefined ? undefined : Array.from(p.grad.data() as Float32Array)));

maybe('GradientSync with overlap (1 rank)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tl-gradsync-'));
    await dist.initProcessGroup({ rank: 0, worldSize: 1, initMethod: `file://${dir}/store`, timeout: 10000 });
  });
  afterAll(() => {
    dist.destroyProcessGroup();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  // y = sum(w2 * (w1 * x)) with w0 unused: backward makes w2's gradient, then w1's; w0 gets none.
  function params(): nn.Parameter[] {
    return [new nn.Parameter(tensor([1, 2])), new nn.Parameter(tensor([3, 4])), new nn.Parameter(tensor([5, 6]))];
  }
  function backward([, w1, w2]: nn.Parameter[]): void {
    scope(() => w2.mul(w1.mul(tensor([0.5, -1]))).sum().backward());
  }

  // The gradients of a plain backward, without any GradientSync (a 1-rank sum leaves them as they are).
  function plainGrads(): (number[] | undefined)[] {
    const ps = params();
    backward(ps);
    const g = grads(ps);
    for (const p of ps) p.dispose();
    return g;
  }

  test.each([
    // one parameter per bucket, buckets in reverse registration order; w0 never gets a gradient
    ['each complete bucket goes out from backward, in bucket order; w0 (last) blocks nothing', [0, 1, 2], [2, 1, 0], 2],
    ['an unused parameter in the first bucket holds the later ones back until finish', [1, 2, 0], [0, 2, 1], 0],
  ])('%s; the sums land in .grad', async (_what, order, bucketOrder, issued) => {
    const ps = params();
    const sync = new dist.GradientSync(order.map((i) => ps[i]), { bucketCapMb: 1e-6 });
    expect(sync.buckets).toEqual(bucketOrder.map((i) => [ps[i]]));
    sync.prepareForBackward(true);
    backward(ps);
    expect(sync.bucketsIssuedDuringBackward).toBe(issued);
    await sync.allReduceGradients();
    // d/dw1 sum(w2·w1·x) = w2·x, d/dw2 = w1·x; w0 gets zeros, as DDP gives an unused parameter
    expect(grads(ps)).toEqual([[0, 0], [2.5, -6], [1.5, -4]]);
    expect(grads(ps).slice(1)).toEqual(plainGrads().slice(1));
    sync.dispose();
    for (const p of ps) p.dispose();
  });

  test('no_sync micro-batches accumulate; only the synced one issues; a second synced backward is an error', async () => {
    const ps = params();
    const sync = new dist.GradientSync(ps);
    expect(sync.buckets).toHaveLength(1);
    sync.prepareForBackward(false);
    backward(ps);
    expect(sync.bucketsIssuedDuringBackward).toBe(0);
    sync.prepareForBackward(true);
    backward(ps);
    expect(sync.bucketsIssuedDuringBackward).toBe(0); // w0 has no gradient: the one bucket waits for finish
    await sync.allReduceGradients();
    expect(grads(ps)).toEqual([[0, 0], [5, -12], [3, -8]]);

    // twice in one synced backward phase: the first may have gone out with a part of the gradient
    const [, w1, w2] = ps;
    const only = new dist.GradientSync([w1, w2], { bucketCapMb: 1e-6 });
    only.prepareForBackward(true);
    backward(ps);
    expect(only.bucketsIssuedDuringBackward).toBe(2);
    backward(ps);
    await expect(only.allReduceGradients()).rejects.toThrow(/accumulated twice in the synced backward .* overlap: false/);
    only.dispose();
    sync.dispose();
    for (const p of ps) p.dispose();
  });

  test('a step loop leaves no tensors behind; after dispose a later step makes the hooks again', async () => {
    const ps = params();
    const sync = new dist.GradientSync(ps, { bucketCapMb: 1e-6 });
    const step = async () => {
      sync.prepareForBackward(true);
      backward(ps);
      const issued = sync.bucketsIssuedDuringBackward;
      await sync.allReduceGradients();
      for (const p of ps) p.grad = undefined;
      return issued;
    };
    expect(await step()).toBe(2);
    const before = memory().tensors;
    for (let i = 0; i < 5; i++) await step();
    expect(memory().tensors).toBe(before);
    sync.dispose();
    backward(ps); // (a backward between trainings, without hooks)
    for (const p of ps) p.grad = undefined;
    expect(await step()).toBe(2);
    sync.dispose();
    for (const p of ps) p.dispose();
  });

  test('overlap false sends everything after backward, with the same sums', async () => {
    const ps = params();
    const sync = new dist.GradientSync(ps, { overlap: false });
    sync.prepareForBackward(true);
    backward(ps);
    expect(sync.bucketsIssuedDuringBackward).toBe(0);
    await sync.allReduceGradients();
    expect(grads(ps)).toEqual([[0, 0], [2.5, -6], [1.5, -4]]);
    for (const p of ps) p.dispose();
    // (a parameter that is not a leaf needing grad cannot be hooked)
    const t = randn([2]) as Tensor;
    expect(() => new dist.GradientSync([t as nn.Parameter]).prepareForBackward(true)).toThrow(/not a leaf tensor that requires grad/);
    t.dispose();
  });
});

test('bucket sizes: ddpBucketCapMb and bucketCapMb must be positive', () => {
  for (const bad of [0, -1, NaN, Infinity])
    expect(() => resolveTrainingArguments({ outputDir: 'out', ddpBucketCapMb: bad })).toThrow(`TrainingArguments: ddpBucketCapMb must be a positive number of MB, got ${JSON.stringify(bad)}`);
  expect(resolveTrainingArguments({ outputDir: 'out', ddpBucketCapMb: 0.5 }).ddpBucketCapMb).toBe(0.5);
  const p = new nn.Parameter(tensor([1]));
  expect(() => new dist.GradientSync([p], { bucketCapMb: 0 })).toThrow('GradientSync: bucketCapMb must be positive, got 0');
  p.dispose();
});
