// Explicit memory: dispose(), `using`, scope(), keep(), and a 1,000-step training loop that leaves
// memory().tensors and memory().bytes exactly where they started.
import * as torch from '../lib';
import { F, keep, memory, noGrad, scope, Tensor } from '../lib';
import * as path from 'path';
import { settleGarbage } from './helpers/gc';
import { tsProcess } from './helpers/ts-process';

// Once per file: after it, every tensor alive is this file's, and this file frees what it makes.
beforeAll(settleGarbage);

describe('dispose and using', () => {
  test('dispose() frees at once and is idempotent; bytes are numel × itemsize', () => {
    const before = memory();
    const t = torch.zeros([10, 10]);
    const h = torch.zeros([10, 10], { dtype: 'float16' });
    expect(memory()).toEqual({ ...before, tensors: before.tensors + 2, bytes: before.bytes + 600, cpuBytes: before.cpuBytes + 600 });
    t.dispose();
    t.dispose();
    t[Symbol.dispose]();
    expect(memory()).toEqual({ ...before, tensors: before.tensors + 1, bytes: before.bytes + 200, cpuBytes: before.cpuBytes + 200 });
    h.dispose();
    expect(memory()).toEqual(before);
  });

  test('`using` disposes at the end of the block (TS 5.2 using declarations -> Symbol.dispose)', () => {
    const before = memory();
    let seen: Tensor;
    {
      using t = torch.ones([3, 3]);
      using u = t.mul(2);
      seen = u;
      expect(memory().tensors).toBe(before.tensors + 2);
      expect(u.sum().item()).toBe(18); // this sum is not `using`: dispose it below
    }
    expect(seen.isDisposed).toBe(true);
    expect(memory().tensors).toBe(before.tensors + 1);
    // the one left is the sum's result; a throw inside a using block disposes too
    const leftover = memory().tensors;
    expect(() => {
      using t = torch.ones([2]);
      seen = t;
      throw new Error('boom');
    }).toThrow('boom');
    expect(seen.isDisposed).toBe(true);
    expect(memory().tensors).toBe(leftover);
  });

  test('torch.dispose(value) frees tensors inside arrays, Maps and plain objects', () => {
    const before = memory();
    const value = { a: torch.ones([2]), list: [torch.ones([3]), { deep: torch.ones([4]) }], m: new Map([['k', torch.ones([1])]]) };
    expect(memory().tensors).toBe(before.tensors + 4);
    torch.dispose(value);
    expect(memory()).toEqual(before);
  });
});

describe('scope', () => {
  test('frees everything made inside but what it returns', () => {
    const before = memory();
    const out = scope(() => {
      const a = torch.ones([4]);
      const b = a.mul(3).add(1);
      return b.sum();
    });
    expect(out.item()).toBe(16);
    expect(memory().tensors).toBe(before.tensors + 1);
    out.dispose();
    expect(memory()).toEqual(before);
  });

  test('returned arrays, plain objects and Maps of tensors survive; other values pass through', () => {
    const before = memory();
    const r = scope(() => {
      const x = torch.arange(6, { dtype: 'float32' });
      const [p, q] = x.split(3);
      return { parts: [p, q], sum: x.sum(), map: new Map([['x', x]]), n: 5, s: 'text' };
    });
    expect(r.n).toBe(5);
    expect(r.s).toBe('text');
    expect(r.parts.map((t) => t.tolist())).toEqual([[0, 1, 2], [3, 4, 5]]);
    expect(r.sum.item()).toBe(15);
    expect(memory().tensors).toBe(before.tensors + 4);
    torch.dispose(r);
    expect(memory()).toEqual(before);
  });

  test('nested scopes: the inner result moves to the outer scope and is freed with it', () => {
    const before = memory();
    let inner: Tensor | undefined;
    const outer = scope(() => {
      inner = scope(() => torch.ones([2]).add(1));
      expect(inner.isDisposed).toBe(false);
      const kept = inner.mul(2);
      return kept;
    });
    expect(inner!.isDisposed).toBe(true);
    expect(outer.tolist()).toEqual([4, 4]);
    outer.dispose();
    expect(memory()).toEqual(before);
  });

  test('a throw inside frees what was made and propagates', () => {
    const before = memory();
    expect(() =>
      scope(() => {
        torch.ones([8]);
        scope(() => {
          torch.ones([8]).mul(2);
          throw new Error('inner failure');
        });
      }),
    ).toThrow('inner failure');
    expect(memory()).toEqual(before);
    // a libtorch error inside a scope, too
    expect(() => scope(() => torch.ones([2]).add(torch.ones([3])))).toThrow(/size of tensor/);
    expect(memory()).toEqual(before);
  });

  test('keep() lets a tensor outlive its scope; tensors made outside are untouched', () => {
    const before = memory();
    const outside = torch.ones([3]);
    let kept: Tensor | undefined;
    scope(() => {
      kept = keep(outside.mul(5));
      outside.add(1); // freed
    });
    expect(outside.isDisposed).toBe(false);
    expect(kept!.tolist()).toEqual([5, 5, 5]);
    expect(memory().tensors).toBe(before.tensors + 2);
    kept!.dispose();
    outside.dispose();
    expect(memory()).toEqual(before);
  });

  test('a scope function that returns a Promise is refused (and what it made is freed)', () => {
    const before = memory();
    expect(() =>
      scope(() => {
        torch.ones([2]);
        return Promise.resolve(1);
      }),
    ).toThrow(/Promise/);
    expect(memory()).toEqual(before);
  });
});

describe('leak check', () => {
  test('1,000 forward/backward/SGD steps of a small MLP leave the live-tensor and byte counts unchanged', () => {
    const start = memory();
    torch.manualSeed(0);
    // leaves, made outside any scope: input [32, 8], labels [32], a 8-16-4 MLP
    const x = torch.randn([32, 8]);
    const y = torch.randint(0, 4, [32]);
    const w1 = torch.randn([8, 16]).mul_(0.3).requiresGrad_();
    const b1 = torch.zeros([16], { requiresGrad: true });
    const w2 = torch.randn([16, 4]).mul_(0.3).requiresGrad_();
    const b2 = torch.zeros([4], { requiresGrad: true });
    const params = [w1, b1, w2, b2];
    const before = memory();
    expect(before.tensors).toBe(start.tensors + 6);

    const losses: number[] = [];
    for (let step = 0; step < 1000; step++) {
      scope(() => {
        const h = F.dropout(x.matmul(w1).add(b1).relu(), 0.1, true);
        const logits = h.matmul(w2).add(b2);
        const loss = F.crossEntropy(logits, y, { labelSmoothing: 0.05 });
        loss.backward();
        noGrad(() => {
          for (const p of params) {
            const g = p.grad!;
            p.sub_(g, 0.1);
            g.zero_();
          }
        });
        if (step % 100 === 0 || step === 999) losses.push(loss.item() as number);
      });
      if (step === 0) expect(memory()).toEqual(before);
    }
    expect(memory()).toEqual(before);
    // it did train
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] * 0.7);
    for (const t of [x, y, ...params]) t.dispose();
    expect(memory()).toEqual(start);
  });
});

describe('native memory is reported to V8 (napi_adjust_external_memory)', () => {
  test('cpuBytes and cudaBytes keep host and device bytes apart (on the CPU: all host); meta counts nothing', () => {
    const before = memory();
    expect(before.cpuBytes + before.cudaBytes).toBe(before.bytes);
    const t = torch.zeros([25]);
    const m = torch.empty([1000], { device: 'meta' });
    expect(memory()).toEqual({ tensors: before.tensors + 2, bytes: before.bytes + 100, cpuBytes: before.cpuBytes + 100, cudaBytes: before.cudaBytes });
    t.dispose();
    m.dispose();
    expect(memory()).toEqual(before);
  });

  test('a loop that never disposes its tensors stays bounded: the GC runs because V8 sees their bytes', () => {
    // 150 steps of 3 × 4 MiB: 1.8 GB made. Before V8 was told, nearly all of it stayed alive (the GC saw
    // only small JS objects); now V8 collects each time external memory grows by its limit (64 MiB on
    // Node 20), so a few hundred MiB at most are alive at once. (Bound with room for a slow machine.)
    const r = tsProcess(path.join(__dirname, 'helpers', 'forgotten-tensors-child.ts'), ['150', '4']);
    expect(r.err).toBe('');
    const out = JSON.parse(r.out);
    expect(out.made).toBe(150 * 3 * 4 * 2 ** 20);
    expect(out.peakBytes).toBeLessThan(768 * 2 ** 20);
    expect(out.peakRss - out.rssBefore).toBeLessThan(1024 * 2 ** 20);
  });
});

