// c10d collectives across real worker processes (Gloo over 127.0.0.1): each result against the value the
// ranks' inputs give, for 2 and 3 ranks.
import { dist } from '../lib';
import { runDistJob } from './helpers/dist-job';

const haveGloo = dist.isAvailable('gloo');
const maybe = haveGloo ? describe : describe.skip;

function results(out: string[]): Record<string, any>[] {
  return out.map((o, r) => {
    const line = o.split('\n').find((l) => l.startsWith('RESULT '));
    if (line === undefined) throw new Error(`rank ${r} printed no result: ${o}`);
    return JSON.parse(line.slice(7));
  });
}

maybe.each([2, 3])('collectives over %i Gloo ranks', (n) => {
  let res: Record<string, any>[];
  beforeAll(async () => {
    const job = await runDistJob('test/helpers/ddp/collectives-worker.ts', n, ['30000'], { timeoutMs: 90000 });
    if (job.error) throw new Error(`${job.error.message}\n${job.err.join('\n')}`);
    res = results(job.out);
  }, 120000);

  test('rank, world size, backend', () => {
    expect(res.map((r) => r.rank)).toEqual([...Array(n).keys()]);
    for (const r of res) expect([r.world, r.initialized, r.backend, r.afterDestroy]).toEqual([n, true, 'gloo', false]);
  });

  test('allReduce sum, max, min, product, avg; several tensors', () => {
    const ranks = [...Array(n).keys()];
    const sum = (f: (r: number) => number) => ranks.reduce((s, r) => s + f(r), 0);
    for (const r of res) {
      expect(r.sum).toEqual([sum((k) => k + 1), sum((k) => 10 * (k + 1)), sum((k) => -k)]);
      expect(r.max).toEqual([n - 1, 0]);
      expect(r.min).toBe('5');
      expect(r.product).toBe(ranks.reduce((p, k) => p * (k + 2), 1));
      expect(r.avg).toBeCloseTo(sum((k) => 2 * k) / n, 6);
      expect(r.several).toEqual([[sum((k) => k)], [1, 2, 3, 4].map((v) => v * sum((k) => k))]);
    }
  });

  test('broadcast from rank 1 and allGather', () => {
    for (const r of res) {
      expect(r.broadcast).toEqual([7, 8, 9]);
      expect(r.allGather).toEqual([...Array(n).keys()].map((k) => [k, k * k]));
    }
  });

  test('the event loop runs while a collective waits', () => {
    expect(res[0].ticksDuringBarrier).toBeGreaterThanOrEqual(5);
  });

  test('bad calls are clear errors', () => {
    for (const r of res) {
      expect(r.errors[0]).toMatch(new RegExp(`broadcast: src must be a rank in \\[0, ${n}\\), got ${n}`));
      expect(r.errors[1]).toMatch(new RegExp(`allGather: needs one output tensor per rank \\(${n}\\), got 1`));
      expect(r.errors[2]).toMatch(/allReduce: unknown op 'mean'/);
      expect(r.errors[3]).toMatch(/must be dense and contiguous/);
      expect(r.errors[4]).toMatch(/a process group is initialized already/);
    }
  });

  test('collectives in a loop leave no tensors behind', () => {
    for (const r of res) expect(r.leaked).toBe(0);
  });
});

maybe('initProcessGroup errors', () => {
  test('missing environment and bad options say what to set', async () => {
    const saved = { ...process.env };
    try {
      delete process.env.RANK;
      delete process.env.WORLD_SIZE;
      await expect(dist.initProcessGroup()).rejects.toThrow(/no rank: pass \{ rank \} or set RANK/);
      await expect(dist.initProcessGroup({ rank: 0, worldSize: 2, initMethod: 'http://x' })).rejects.toThrow(/is not one of env:\/\/, tcp:\/\/host:port, file:\/\/\/path/);
      await expect(dist.initProcessGroup({ rank: 2, worldSize: 2, initMethod: 'tcp://127.0.0.1:1' })).rejects.toThrow(/rank 2 is not below worldSize 2/);
      await expect(dist.initProcessGroup({ rank: 0, worldSize: 1, backend: 'mpi' as never })).rejects.toThrow(/backend must be 'gloo' or 'nccl'/);
      delete process.env.MASTER_ADDR;
      await expect(dist.initProcessGroup({ rank: 0, worldSize: 1 })).rejects.toThrow(/needs MASTER_ADDR and MASTER_PORT/);
      expect(() => dist.getRank()).toThrow(/no process group; call dist.initProcessGroup\(\) first/);
    } finally {
      process.env = saved;
    }
  });

  test('a single rank with a FileStore', async () => {
    const fs = await import('fs');
    const os = await import('os');
    const path = await import('path');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tl-filestore-'));
    try {
      await dist.initProcessGroup({ rank: 0, worldSize: 1, initMethod: `file://${dir}/store`, timeout: 10000 });
      const { tensor } = await import('../lib');
      const t = tensor([1, 2]);
      await dist.allReduce(t);
      expect(Array.from(t.data() as Float32Array)).toEqual([1, 2]);
      t.dispose();
      await dist.barrier();
    } finally {
      dist.destroyProcessGroup();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
