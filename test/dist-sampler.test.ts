// The DistributedSampler's shards (PyTorch's layout: rank r reads order[r], order[r+N], ...) and the
// gradient buckets, without processes: what makes N ranks of batch b see what one process of batch N·b sees.
import { DataLoader, Dataset, DistributedSampler } from '../lib/data';
import { GradientSync } from '../lib/distributed';
import { nn, zeros } from '../lib';
import { readTorchrunEnv } from '../lib/distributed/env';

const ds = (n: number) => new Dataset(Array.from({ length: n }, (_, i) => ({ inputIds: Int32Array.from([i + 1, i + 2]), labels: Int32Array.from([i + 1, i + 2]) })));

test('shards are disjoint, cover the order, and batch k of every rank is batch k of N·b', () => {
  const order = Array.from({ length: 24 }, (_, i) => (i * 7) % 24);
  for (const n of [2, 3, 4]) {
    const shards = [...Array(n).keys()].map((rank) => new DistributedSampler({ numReplicas: n, rank }).shard(order));
    expect(shards.flat().sort((a, b) => a - b)).toEqual([...Array(24).keys()]);
    const b = 2;
    for (let k = 0; k < 24 / (n * b); k++) {
      const union = shards.flatMap((s) => s.slice(k * b, (k + 1) * b)).sort((x, y) => x - y);
      expect(union).toEqual(order.slice(k * n * b, (k + 1) * n * b).sort((x, y) => x - y));
    }
  }
});

test('an order N does not divide is padded from its start (PyTorch), or cut with dropLast', () => {
  const order = [5, 3, 1, 0, 2, 4, 6];
  expect([0, 1, 2].map((rank) => new DistributedSampler({ numReplicas: 3, rank }).shard(order))).toEqual([
    [5, 0, 6],
    [3, 2, 5],
    [1, 4, 3],
  ]);
  expect([0, 1, 2].map((rank) => new DistributedSampler({ numReplicas: 3, rank, dropLast: true }).shard(order))).toEqual([
    [5, 0],
    [3, 2],
    [1, 4],
  ]);
  expect(new DistributedSampler({ numReplicas: 3, rank: 0 }).numSamples(7)).toBe(3);
});

test('a DataLoader with a sampler: the same seeded order on every rank, each its share', () => {
  const data = ds(10);
  const loaders = [0, 1].map((rank) => new DataLoader(data, { batchSize: 2, shuffle: true, seed: 3, sampler: new DistributedSampler({ numReplicas: 2, rank }) }));
  const whole = new DataLoader(data, { batchSize: 4, shuffle: true, seed: 3 });
  expect(loaders.map((l) => l.length)).toEqual([3, 3]);
  for (const epoch of [0, 1]) {
    const all = whole.order(epoch);
    expect(loaders[0].order(epoch)).toEqual(all.filter((_, i) => i % 2 === 0));
    expect(loaders[1].order(epoch)).toEqual(all.filter((_, i) => i % 2 === 1));
  }
  expect(loaders[0].order(0)).not.toEqual(loaders[0].order(1));
});

test('bad sampler options are clear errors', () => {
  expect(() => new DistributedSampler({ numReplicas: 0, rank: 0 })).toThrow(/numReplicas must be a positive integer, got 0/);
  expect(() => new DistributedSampler({ numReplicas: 2, rank: 2 })).toThrow(/rank must be an integer in \[0, 2\), got 2/);
  expect(() => new DataLoader(ds(4), { sampler: {} as DistributedSampler })).toThrow(/`sampler` must be a DistributedSampler/);
});

test('gradient buckets: trainable parameters only, by dtype, at most bucketCapMb each', () => {
  const a = new nn.Parameter(zeros([256, 256])); // 256 KiB
  const b = new nn.Parameter(zeros([256, 256]));
  const c = new nn.Parameter(zeros([10], { dtype: 'float64' }));
  const s = new GradientSync([a, b, c], { bucketCapMb: 0.3 });
  expect(s.bytesPerStep).toBe(2 * 256 * 256 * 4 + 80);
  // reverse order (as backward produces gradients): c alone (float64), b, then a in a new bucket
  const names = (g: GradientSync) => g.buckets.map((k) => k.map((p) => (p === a ? 'a' : p === b ? 'b' : 'c')));
  expect(names(s)).toEqual([['b'], ['c'], ['a']]);
  expect(names(new GradientSync([a, b, c]))).toEqual([['c'], ['b', 'a']]);
  [a, b, c].forEach((p) => p.dispose());
});

test('torchrun variables are read as numbers and checked', () => {
  expect(readTorchrunEnv({ RANK: '1', WORLD_SIZE: '4', LOCAL_RANK: '1', LOCAL_WORLD_SIZE: '2', MASTER_ADDR: 'h', MASTER_PORT: '29500' })).toEqual({
    rank: 1, worldSize: 4, localRank: 1, localWorldSize: 2, masterAddr: 'h', masterPort: 29500,
  }); // prettier-ignore
  expect(() => readTorchrunEnv({ RANK: 'x' })).toThrow(/RANK=x is not a non-negative integer/);
  expect(() => readTorchrunEnv({ MASTER_PORT: '0' })).toThrow(/MASTER_PORT=0 is not a port/);
});
