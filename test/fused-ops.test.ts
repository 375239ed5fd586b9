// The fused training ops (src/lora_linear.cpp, rotary.cpp, causal_lm_loss.cpp, swiglu.cpp) against the
// unfused composite of existing ops: forwards within 1e-6 (float32) / 1e-12 (float64), gradients equal
// the composite's, float64 central finite differences (test/helpers/gradcheck.ts: eps 1e-6,
// |autograd - numeric| <= 1e-6 + 1e-5·|numeric|), frozen weights without gradients, dropout masks from
// the same generator as F.dropout, errors naming shapes, and no tensors left over a loop.
import * as torch from '../lib';
import { F, memory, noGrad, scope, Tensor } from '../lib';
import { AutoModelForCausalLM, CausalLM, causalLMLoss } from '../lib/models';
import { errorMessage } from './helpers/errors';
import { gradcheck } from './helpers/gradcheck';
import { GPT2_DIR, LLAMA_DIR } from './helpers/models';

const f64 = { dtype: 'float64' as const };
function rnd(shape: number[], dtype: 'float32' | 'float64' = 'float64'): Tensor {
  return torch.randn(shape, { dtype });
}
/** max |a - b| (a, b of one shape). */
function maxDiff(a: Tensor, b: Tensor): number {
  expect(a.shape).toEqual(b.shape);
  return scope(() => a.double().sub(b.double()).abs().max().item() as number);
}
/** max |a - b| relative to max(1, max |b|): float32 gradients summed over many terms round at that scale. */
function relDiff(a: Tensor, b: Tensor): number {
  return maxDiff(a, b) / Math.max(1, scope(() => b.double().abs().max().item() as number));
}
/** Leaves (detached copies requiring grad) of the given tensors. */
function leaves(...ts: Tensor[]): Tensor[] {
  return ts.map((t) => t.detach().clone().requiresGrad_(true));
}
/** The gradients of fn's output weighted by w, for fresh leaves of xs. */
function gradsOf(fn: (...xs: Tensor[]) => Tensor, xs: Tensor[], w?: Tensor): { out: Tensor; grads: Tensor[] } {
  const ls = leaves(...xs);
  const out = fn(...ls);
  (w ? out.mul(w).sum() : out.sum()).backward();
  return { out: out.detach(), grads: ls.map((l) => l.grad!) };
}

beforeEach(() => torch.manualSeed(1234));

// ---------------------------------------------------------------------------------------------------
describe('F.loraLinear', () => {
  const s = 0.75;
  /** The unfused LoRA layer: linear(x, W, b) + s·linear(linear(dropout(x), A), B). */
  function composite(x: Tensor, w: Tensor, b: Tensor | undefined, a: Tensor, bb: Tensor, xd: Tensor = x): Tensor {
    return F.linear(x, w, b).add(F.linear(F.linear(xd, a), bb).mul(s));
  }

  test('forward equals the composite for any leading batch dims (float32 within 2γ_K·Σ|products|, float64 1e-12)', () =>
    scope(() => {
      for (const dtype of ['float32', 'float64'] as const) {
        const tol = dtype === 'float32' ? 1e-6 : 1e-12;
        for (const lead of [[], [5], [2, 3], [2, 1, 3]]) {
          const x = rnd([...lead, 6], dtype);
          const w = rnd([4, 6], dtype);
          const b = rnd([4], dtype);
          const a = rnd([3, 6], dtype);
          const bb = rnd([4, 3], dtype);
          const y = F.loraLinear(x, w, b, a, bb, s);
          expect(y.shape).toEqual([...lead, 4]);
          expect(y.dtype).toBe(dtype);
          if (dtype === 'float64') {
            expect(maxDiff(y, composite(x, w, b, a, bb))).toBeLessThan(tol);
            expect(maxDiff(F.loraLinear(x, w, undefined, a, bb, s), composite(x, w, undefined, a, bb))).toBeLessThan(tol);
          } else {
            // float32: the fused op sums in another order (src/lora_cpu_kernels.cpp); each result is within
            // γ_K·Σ|products| of the exact one (γ_K = K·u/(1-K·u), u = 2^-24, K = in + r + 2 for the chain
            // x·Aᵀ·Bᵀ plus the base and bias), so the two within twice that; Σ|products| = the composite at |inputs|.
            const gamma = (9 * 2 ** -24) / (1 - 9 * 2 ** -24);
            const [xa, wa, ba, aa, bba] = [x, w, b, a, bb].map((t) => t.double().abs());
            for (const [yy, ref, bound] of [
              [y, composite(x, w, b, a, bb), composite(xa, wa, ba, aa, bba)],
              [F.loraLinear(x, w, undefined, a, bb, s), composite(x, w, undefined, a, bb), composite(xa, wa, undefined, aa, bba)],
            ])
              expect(scope(() => yy.double().sub(ref).abs().sub(bound.mul(2 * gamma)).max().item() as number)).toBeLessThanOrEqual(0);
          }
        }
      }
    }));

  test('gradients of x, W, bias, A and B equal the composite (float64, 1e-12)', () =>
    scope(() => {
      const xs = [rnd([2, 3, 6]), rnd([4, 6]), rnd([4]), rnd([3, 6]), rnd([4, 3])];
      const wOut = rnd([2, 3, 4]);
      const fused = gradsOf((x, w, b, a, bb) => F.loraLinear(x, w, b, a, bb, s), xs, wOut);
      const ref = gradsOf((x, w, b, a, bb) => composite(x, w, b, a, bb), xs, wOut);
      expect(maxDiff(fused.out, ref.out)).toBeLessThan(1e-12);
      fused.grads.forEach((g, i) => expect(maxDiff(g, ref.grads[i])).toBeLessThan(1e-12));
    }));

  test('float64 finite differences: x, W, bias, A, B (with and without bias)', () =>
    scope(() => {
      gradcheck((x, w, b, a, bb) => F.loraLinear(x, w, b, a, bb, s), [rnd([2, 3, 5]), rnd([4, 5]), rnd([4]), rnd([2, 5]), rnd([4, 2])]);
      gradcheck((x, w, a, bb) => F.loraLinear(x, w, undefined, a, bb, 2), [rnd([3, 5]), rnd([4, 5]), rnd([2, 5]), rnd([4, 2])]);
    }));

  test('a frozen W gets no gradient; x without grad gets none either', () =>
    scope(() => {
      const [a, bb] = leaves(rnd([2, 5]), rnd([4, 2]));
      const w = rnd([4, 5]);
      const x = rnd([3, 5]);
      F.loraLinear(x, w, undefined, a, bb, s).sum().backward();
      expect(w.grad).toBeUndefined();
      expect(x.grad).toBeUndefined();
      expect(a.grad).toBeDefined();
      expect(bb.grad).toBeDefined();
      // and the adapters' gradients are still the composite's
      const [a2, b2] = leaves(a, bb);
      composite(x, w, undefined, a2, b2).sum().backward();
      expect(maxDiff(a.grad!, a2.grad!)).toBeLessThan(1e-12);
      expect(maxDiff(bb.grad!, b2.grad!)).toBeLessThan(1e-12);
    }));

  test('fanInFanOut: a weight stored [in, out] (GPT-2 Conv1D) equals the composite with Wᵀ', () =>
    scope(() => {
      const xs = [rnd([2, 3, 6]), rnd([6, 4]), rnd([4]), rnd([3, 6]), rnd([4, 3])];
      const fused = gradsOf((x, w, b, a, bb) => F.loraLinear(x, w, b, a, bb, s, { fanInFanOut: true }), xs);
      const ref = gradsOf((x, w, b, a, bb) => composite(x, w.t(), b, a, bb), xs);
      expect(maxDiff(fused.out, ref.out)).toBeLessThan(1e-12);
      fused.grads.forEach((g, i) => expect(maxDiff(g, ref.grads[i])).toBeLessThan(1e-12));
      gradcheck((x, w, a, bb) => F.loraLinear(x, w, undefined, a, bb, s, { fanInFanOut: true }), [rnd([3, 5]), rnd([5, 4]), rnd([2, 5]), rnd([4, 2])]);
    }));

  test('dropout: the same seed draws the same mask as F.dropout; the gradients follow the mask', () =>
    scope(() => {
      const p = 0.4;
      for (const dtype of ['float32', 'float64'] as const) {
        const tol = dtype === 'float32' ? 1e-6 : 1e-12;
        const xs = [rnd([4, 3, 16], dtype), rnd([5, 16], dtype), rnd([5], dtype), rnd([3, 16], dtype), rnd([5, 3], dtype)];
        torch.manualSeed(7);
        const fused = gradsOf((x, w, b, a, bb) => F.loraLinear(x, w, b, a, bb, s, { dropoutP: p }), xs);
        torch.manualSeed(7);
        const ref = gradsOf((x, w, b, a, bb) => composite(x, w, b, a, bb, F.dropout(x, p, true)), xs);
        if (dtype === 'float64') {
          expect(maxDiff(fused.out, ref.out)).toBeLessThan(tol);
          fused.grads.forEach((g, i) => expect(relDiff(g, ref.grads[i])).toBeLessThan(tol));
        } else {
          // float32: the two sum in different orders (the fused op in src/lora_cpu_kernels.cpp). Each is
          // within γ_K·Σ|products| of the exact gradient (γ_K = K·u/(1-K·u), u = 2^-24, K = every reduction
          // length of the chain: in + r + out + rows), so they are within twice that of each other; Σ|products|
          // is the same gradient of the composite taken at |inputs| (the mask and 1/(1-p) are >= 0).
          const k = 16 + 3 + 5 + 12;
          const gamma = (k * 2 ** -24) / (1 - k * 2 ** -24);
          torch.manualSeed(7);
          const abs = gradsOf((x, w, b, a, bb) => composite(x, w, b, a, bb, F.dropout(x, p, true)), xs.map((t) => t.double().abs()));
          [[fused.out, ref.out, abs.out], ...fused.grads.map((g, i) => [g, ref.grads[i], abs.grads[i]])].forEach(([got, want, sumAbs]) =>
            expect(scope(() => got.double().sub(want).abs().sub(sumAbs.mul(2 * gamma)).max().item() as number)).toBeLessThanOrEqual(0),
          );
        }
        // the mask really dropped something, and a different seed draws another one
        const noDrop = F.loraLinear(xs[0], xs[1], xs[2], xs[3], xs[4], s);
        expect(maxDiff(fused.out, noDrop)).toBeGreaterThan(1e-3);
        torch.manualSeed(8);
        expect(maxDiff(F.loraLinear(xs[0], xs[1], xs[2], xs[3], xs[4], s, { dropoutP: p }), fused.out)).toBeGreaterThan(1e-3);
      }
    }));

  test('dropout: kept inputs are scaled by 1/(1-p); eval mode and p = 0 are the plain layer', () =>
    scope(() => {
      // With W = 0, no bias, A = ones row and B = ones: y = s·Σ dropout(x), so with x = 1 every output
      // is s·(kept count)/(1-p).
      const p = 0.25;
      const n = 4000;
      const x = torch.ones([1, n], f64);
      const y = F.loraLinear(x, torch.zeros([1, n], f64), undefined, torch.ones([1, n], f64), torch.ones([1, 1], f64), 1, { dropoutP: p });
      const kept = (y.item() as number) * (1 - p);
      expect(Math.abs(kept - Math.round(kept))).toBeLessThan(1e-9); // an integer count of kept inputs
      expect(kept / n).toBeGreaterThan(0.7);
      expect(kept / n).toBeLessThan(0.8);
      const xs = [rnd([3, 6]), rnd([4, 6]), rnd([4]), rnd([2, 6]), rnd([4, 2])] as const;
      const plain = F.loraLinear(...xs, s);
      expect(maxDiff(F.loraLinear(...xs, s, { dropoutP: 0.9, training: false }), plain)).toBe(0);
      expect(maxDiff(F.loraLinear(...xs, s, { dropoutP: 0, training: true }), plain)).toBe(0);
      // p = 1 drops the whole LoRA path
      expect(maxDiff(F.loraLinear(...xs, s, { dropoutP: 1 }), F.linear(xs[0], xs[1], xs[2]))).toBeLessThan(1e-12);
    }));

  test('adapters in float64 on a float32 base: the LoRA sum in the adapters dtype, then cast back (as PEFT)', () =>
    scope(() => {
      const x = rnd([2, 3, 6], 'float32');
      const w = rnd([4, 6], 'float32');
      const b = rnd([4], 'float32');
      const [a, bb] = leaves(rnd([3, 6]), rnd([4, 3]));
      const xl = x.detach().clone().requiresGrad_(true);
      const y = F.loraLinear(xl, w, b, a, bb, s);
      expect(y.dtype).toBe('float32');
      y.sum().backward();
      const [a2, b2] = leaves(a, bb);
      const x2 = x.detach().clone().requiresGrad_(true);
      const ref = F.linear(x2, w, b).add(F.linear(F.linear(x2.double(), a2), b2).mul(s)).float();
      ref.sum().backward();
      expect(maxDiff(y, ref)).toBe(0);
      expect(xl.grad!.dtype).toBe('float32');
      expect(maxDiff(xl.grad!, x2.grad!)).toBeLessThan(1e-6);
      expect(maxDiff(a.grad!, a2.grad!)).toBeLessThan(1e-12);
      expect(maxDiff(bb.grad!, b2.grad!)).toBeLessThan(1e-12);
    }));

  test('shape and dtype errors name the shapes', () =>
    scope(() => {
      const x = rnd([2, 6]);
      const w = rnd([4, 6]);
      const a = rnd([3, 6]);
      const bb = rnd([4, 3]);
      expect(errorMessage(() => F.loraLinear(rnd([2, 5]), w, undefined, a, bb, s))).toMatch(/loraLinear: the input \[2, 5\] has 5 features but weight \[4, 6\]/);
      expect(errorMessage(() => F.loraLinear(x, w, undefined, rnd([3, 5]), bb, s))).toMatch(/loraA must be \[r, 6\], got \[3, 5\]/);
      expect(errorMessage(() => F.loraLinear(x, w, undefined, a, rnd([4, 2]), s))).toMatch(/loraB must be \[4, 3\] .* got \[4, 2\]/);
      expect(errorMessage(() => F.loraLinear(x, w, rnd([5]), a, bb, s))).toMatch(/bias must be \[4\]/);
      expect(errorMessage(() => F.loraLinear(x, w, undefined, a, bb, s, { fanInFanOut: true }))).toMatch(/the input \[2, 6\] has 6 features but weight \[4, 6\] \(\[in, out\], fanInFanOut\) takes 4/);
      expect(errorMessage(() => F.loraLinear(x.float(), w, undefined, a, bb, s))).toMatch(/input is Float but weight is Double/);
      expect(() => F.loraLinear(x, w, undefined, a, bb, s, { dropoutP: 1.5 })).toThrow(/dropoutP must be in \[0, 1\]/);
    }));
});

// ---------------------------------------------------------------------------------------------------
describe('F.applyRotaryPosEmb', () => {
  /** transformers' rotate_half composite, as lib/models/llama.ts computed it before. */
  function rotateHalf(x: Tensor): Tensor {
    const d = x.shape[x.ndim - 1] / 2;
    return torch.cat([x.narrow(-1, d, d).neg(), x.narrow(-1, 0, d)], -1);
  }
  function composite(q: Tensor, k: Tensor, cos: Tensor, sin: Tensor): Tensor[] {
    const c = cos.unsqueeze(1);
    const sn = sin.unsqueeze(1);
    return [q.mul(c).add(rotateHalf(q).mul(sn)), k.mul(c).add(rotateHalf(k).mul(sn))];
  }
  /** cos/sin tables as the rotary embedding makes them. */
  function tables(b: number, sq: number, d: number, dtype: 'float32' | 'float64'): [Tensor, Tensor] {
    const pos = torch.arange(0, sq, 1, { dtype }).unsqueeze(-1);
    const inv = torch.arange(0, d / 2, 1, { dtype }).mul(-2 / d).exp();
    const freqs = pos.mul(inv);
    const emb = torch.cat([freqs, freqs], -1).unsqueeze(0).expand([b, sq, d]).contiguous();
    return [emb.cos(), emb.sin()];
  }

  test('forward is bitwise the composite (float32 and bfloat16), grouped-query k, batch-1 tables', () =>
    scope(() => {
      for (const [b, hq, hk, cb] of [[2, 4, 2, 2], [2, 3, 3, 1], [1, 2, 1, 1]]) {
        const q = rnd([b, hq, 5, 8], 'float32');
        const k = rnd([b, hk, 5, 8], 'float32');
        const [cos, sin] = tables(cb, 5, 8, 'float32');
        const [qe, ke] = F.applyRotaryPosEmb(q, k, cos, sin);
        const [qr, kr] = composite(q, k, cos, sin);
        expect(qe.shape).toEqual(q.shape);
        expect(ke.shape).toEqual(k.shape);
        expect(maxDiff(qe, qr)).toBe(0);
        expect(maxDiff(ke, kr)).toBe(0);
        const bf = (t: Tensor) => t.to('bfloat16');
        const [qb, kb] = F.applyRotaryPosEmb(bf(q), bf(k), bf(cos), bf(sin));
        const [qbr, kbr] = composite(bf(q), bf(k), bf(cos), bf(sin));
        expect(maxDiff(qb, qbr)).toBe(0);
        expect(maxDiff(kb, kbr)).toBe(0);
      }
    }));

  test('gradients of q and k (and of cos, sin) equal the composite (float64, 1e-12)', () =>
    scope(() => {
      const [cos, sin] = tables(2, 5, 8, 'float64');
      const xs = [rnd([2, 4, 5, 8]), rnd([2, 2, 5, 8]), cos, sin];
      const wq = rnd([2, 4, 5, 8]);
      const wk = rnd([2, 2, 5, 8]);
      const run = (fn: (...t: Tensor[]) => Tensor[]) => {
        const ls = leaves(...xs);
        const [qe, ke] = fn(...ls);
        qe.mul(wq).sum().add(ke.mul(wk).sum()).backward();
        return [qe, ke, ...ls.map((l) => l.grad!)];
      };
      const fused = run((q, k, c, sn) => F.applyRotaryPosEmb(q, k, c, sn));
      const ref = run(composite);
      fused.forEach((t, i) => expect(maxDiff(t, ref[i])).toBeLessThan(1e-12));
    }));

  test('float64 finite differences for q, k, cos and sin', () =>
    scope(() => {
      const [cos, sin] = tables(1, 3, 4, 'float64');
      gradcheck((q, k, c, sn) => F.applyRotaryPosEmb(q, k, c, sn)[0], [rnd([2, 2, 3, 4]), rnd([2, 1, 3, 4]), cos, sin]);
      gradcheck((q, k, c, sn) => F.applyRotaryPosEmb(q, k, c, sn)[1], [rnd([2, 2, 3, 4]), rnd([2, 1, 3, 4]), cos, sin]);
    }));

  test('tables without grad get none; errors name the shapes', () =>
    scope(() => {
      const [cos, sin] = tables(1, 3, 4, 'float64');
      const [q, k] = leaves(rnd([1, 2, 3, 4]), rnd([1, 2, 3, 4]));
      const [qe, ke] = F.applyRotaryPosEmb(q, k, cos, sin);
      qe.sum().add(ke.sum()).backward();
      expect(cos.grad).toBeUndefined();
      expect(q.grad!.shape).toEqual([1, 2, 3, 4]);
      expect(errorMessage(() => F.applyRotaryPosEmb(rnd([1, 2, 3]), k, cos, sin))).toMatch(/q and k must be \[batch, heads, seq, headDim\], got \[1, 2, 3\]/);
      expect(errorMessage(() => F.applyRotaryPosEmb(rnd([1, 2, 4, 4]), rnd([1, 2, 4, 4]), cos, sin))).toMatch(/cos\/sin \[1, 3, 4\] do not match .* q \[1, 2, 4, 4\]/);
      expect(errorMessage(() => F.applyRotaryPosEmb(rnd([1, 2, 3, 6]), rnd([1, 2, 3, 6]), cos, sin))).toMatch(/q \[1, 2, 3, 6\], k \[1, 2, 3, 6\] and cos \[1, 3, 4\]/);
      expect(errorMessage(() => F.applyRotaryPosEmb(q, k, cos.float(), sin.float()))).toMatch(/need one dtype/);
    }));
});

// ---------------------------------------------------------------------------------------------------
describe('F.causalLmLoss', () => {
  /** Labels with some -100 scattered in (never all). */
  function labelsFor(b: number, s: number, vocab: number): Tensor {
    const l = torch.randint(0, vocab, [b, s], { dtype: 'int64' });
    const drop = torch.rand([b, s]).lt(0.3);
    return l.maskedFill(drop, -100);
  }
  /** The unfused loss in float64: logits, shifted labels, crossEntropy mean over non-ignored. */
  function composite64(h: Tensor, w: Tensor, labels: Tensor): Tensor {
    const [b, s] = labels.shape;
    const shifted = torch.cat([labels.narrow(1, 1, s - 1), torch.full([b, 1], -100, { dtype: 'int64' })], 1);
    return F.crossEntropy(F.linear(h, w).reshape(b * s, -1), shifted.reshape(-1));
  }

  test('float32 forward equals causalLMLoss(hidden·Wᵀ) for chunk sizes 1, 3, all and automatic', () =>
    scope(() => {
      const h = rnd([3, 7, 16], 'float32');
      const w = rnd([50, 16], 'float32');
      const labels = labelsFor(3, 7, 50);
      const ref = causalLMLoss(F.linear(h, w), labels);
      for (const chunkSize of [1, 3, 21, 1000, undefined]) {
        const loss = F.causalLmLoss(h, w, labels, { chunkSize });
        expect(loss.dtype).toBe('float32');
        expect(loss.shape).toEqual([]);
        expect(Math.abs((loss.item() as number) - (ref.item() as number))).toBeLessThan(1e-6 * Math.max(1, Math.abs(ref.item() as number)));
      }
    }));

  // The loss matches the composite to float32 rounding. The gradients are compared with the float64 truth
  // on the same bf16 values: within 2% of their largest element (libtorch 1.13's CPU bf16 matmul
  // accumulates in bf16, so the composite's own error is of that order too).
  test('bfloat16 hidden and weight: the loss of the composite (float32 logits); gradients near the truth', () =>
    scope(() => {
      const [h, w] = leaves(rnd([2, 6, 16]).to('bfloat16'), rnd([40, 16]).to('bfloat16'));
      const labels = labelsFor(2, 6, 40);
      const loss = F.causalLmLoss(h, w, labels, { chunkSize: 5 });
      loss.backward();
      const [h4, w4] = leaves(h, w);
      F.causalLmLoss(h4, w4, labels, { chunkSize: 5, recompute: true }).backward();
      expect(maxDiff(h4.grad!, h.grad!)).toBe(0); // the same chunk products either way
      expect(maxDiff(w4.grad!, w.grad!)).toBe(0);
      const [h2, w2] = leaves(h, w);
      const ref = causalLMLoss(F.linear(h2, w2), labels);
      ref.backward();
      expect(loss.dtype).toBe('float32');
      expect(Math.abs((loss.item() as number) - (ref.item() as number))).toBeLessThan(1e-6 * Math.abs(ref.item() as number));
      expect(h.grad!.dtype).toBe('bfloat16');
      expect(w.grad!.dtype).toBe('bfloat16');
      const [h3, w3] = leaves(h.double(), w.double());
      causalLMLoss(F.linear(h3, w3), labels).backward();
      const rel = (g: Tensor, r: Tensor) => maxDiff(g, r) / scope(() => r.abs().max().item() as number);
      expect(rel(h.grad!, h3.grad!)).toBeLessThan(2e-2);
      expect(rel(w.grad!, w3.grad!)).toBeLessThan(2e-2);
      expect(rel(h2.grad!, h3.grad!)).toBeLessThan(2e-2); // the composite, for scale
    }));

  test('float64: forward 1e-12 and gradients of hidden and W equal the composite, any chunking, both modes', () =>
    scope(() => {
      const xs = [rnd([2, 5, 8]), rnd([11, 8])];
      const labels = labelsFor(2, 5, 11);
      const wOut = torch.tensor(0.37, f64); // an upstream gradient other than 1
      const ref = gradsOf((h, w) => composite64(h, w, labels), xs, wOut);
      for (const [chunkSize, recompute] of [[1, false], [4, false], [10, false], [1, true], [4, true], [10, true]] as const) {
        const fused = gradsOf((h, w) => F.causalLmLoss(h, w, labels, { chunkSize, recompute }), xs, wOut);
        expect(fused.out.dtype).toBe('float64');
        expect(maxDiff(fused.out, ref.out)).toBeLessThan(1e-12);
        fused.grads.forEach((g, i) => expect(maxDiff(g, ref.grads[i])).toBeLessThan(1e-12));
      }
    }));

  test('float64 finite differences of hidden and W; reduction sum', () =>
    scope(() => {
      const labels = labelsFor(2, 3, 5);
      gradcheck((h, w) => F.causalLmLoss(h, w, labels, { chunkSize: 2 }), [rnd([2, 3, 4]), rnd([5, 4])]);
      gradcheck((h, w) => F.causalLmLoss(h, w, labels, { chunkSize: 4, reduction: 'sum' }), [rnd([2, 3, 4]), rnd([5, 4])]);
      gradcheck((h, w) => F.causalLmLoss(h, w, labels, { chunkSize: 2, recompute: true }), [rnd([2, 3, 4]), rnd([5, 4])]);
      gradcheck((h, w) => F.causalLmLoss(h, w, labels, { chunkSize: 4, reduction: 'sum', recompute: true }), [rnd([2, 3, 4]), rnd([5, 4])]);
      const h = rnd([2, 3, 4]);
      const w = rnd([5, 4]);
      const count = scope(() => labels.narrow(1, 1, 2).ne(-100).sum().item() as number);
      const mean = F.causalLmLoss(h, w, labels).item() as number;
      const sum = F.causalLmLoss(h, w, labels, { reduction: 'sum' }).item() as number;
      expect(Math.abs(sum - mean * count)).toBeLessThan(1e-12 * Math.abs(sum));
    }));

  test('a frozen LM head gets no gradient; ignoreIndex other than -100', () =>
    scope(() => {
      const w = rnd([9, 6]);
      for (const recompute of [false, true]) {
        const [h] = leaves(rnd([2, 4, 6]));
        F.causalLmLoss(h, w, labelsFor(2, 4, 9), { chunkSize: 3, recompute }).backward();
        expect(w.grad).toBeUndefined();
        expect(h.grad!.shape).toEqual([2, 4, 6]);
      }
      // without grad mode the eager path computes no gradients: the same loss either way
      const [h2, w2] = leaves(rnd([2, 4, 6]), w);
      const l = labelsFor(2, 4, 9);
      const plain = noGrad(() => F.causalLmLoss(h2, w2, l, { chunkSize: 3 }));
      expect(plain.requiresGrad).toBe(false);
      expect(plain.item()).toBe(F.causalLmLoss(h2, w2, l, { chunkSize: 3 }).item());
      const labels = torch.tensor([[1, 2, 7, 3]], { dtype: 'int64' });
      const h1 = rnd([1, 4, 6]);
      const viaSeven = F.causalLmLoss(h1, w, labels, { ignoreIndex: 7 }).item() as number;
      const via100 = F.causalLmLoss(h1, w, torch.tensor([[1, 2, -100, 3]], { dtype: 'int64' })).item() as number;
      expect(viaSeven).toBe(via100);
    }));

  test('errors name the shapes and the bad label', () =>
    scope(() => {
      const h = rnd([2, 4, 6]);
      const w = rnd([9, 6]);
      const labels = labelsFor(2, 4, 9);
      expect(errorMessage(() => F.causalLmLoss(rnd([8, 6]), w, labels))).toMatch(/hidden must be \[batch, seq, hidden\], got \[8, 6\]/);
      expect(errorMessage(() => F.causalLmLoss(h, rnd([9, 5]), labels))).toMatch(/weight must be \[vocab, 6\] for hidden \[2, 4, 6\], got \[9, 5\]/);
      expect(errorMessage(() => F.causalLmLoss(h, w, labelsFor(2, 3, 9)))).toMatch(/labels must be \[batch, seq\] = \[2, 4\], got \[2, 3\]/);
      const bad = torch.tensor([[1, 2, 3, 4], [5, 9, 0, 1]], { dtype: 'int64' });
      expect(errorMessage(() => F.causalLmLoss(h, w, bad))).toMatch(/label 9 \(batch 1, position 1\) is outside the vocabulary \[0, 9\)/);
      expect(() => F.causalLmLoss(h, w, labels, { chunkSize: 1.5 })).toThrow(/chunkSize must be a positive integer/);
    }));
});

// ---------------------------------------------------------------------------------------------------
describe('models: forwardLoss (chunked LM-head loss) equals forward().loss', () => {
  for (const [name, dir] of [['tiny-llama', LLAMA_DIR], ['tiny-gpt2', GPT2_DIR]]) {
    test(`${name}: loss within 1e-6 and every parameter's gradient within 1e-6 of the composite's`, async () => {
      const model = (await AutoModelForCausalLM.fromPretrained(dir)) as CausalLM & {
        forwardLoss(input: { inputIds: Tensor; labels: Tensor }, opts?: { chunkSize?: number }): Tensor;
      };
      try {
        scope(() => {
          const inputIds = torch.randint(0, model.config.vocabSize, [2, 7], { dtype: 'int64' });
          const labels = inputIds.maskedFill(torch.tensor([[0, 0, 1, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0, 0]], { dtype: 'bool' }), -100);
          const gradsAfter = (run: () => Tensor): [number, Tensor[]] => {
            for (const p of model.parameters()) p.requiresGrad_(true);
            const loss = run();
            loss.backward();
            const grads = [...model.parameters()].map((p) => p.grad!.clone());
            for (const p of model.parameters()) p.grad!.zero_();
            return [loss.item() as number, grads];
          };
          const [ref, refGrads] = gradsAfter(() => model.forward({ inputIds, labels }).loss!);
          const [fused, fusedGrads] = gradsAfter(() => model.forwardLoss({ inputIds, labels }, { chunkSize: 5 }));
          expect(Math.abs(fused - ref)).toBeLessThan(1e-6 * Math.abs(ref));
          expect(fusedGrads.length).toBe(refGrads.length);
          fusedGrads.forEach((g, i) => expect(relDiff(g, refGrads[i])).toBeLessThan(1e-6));
        });
      } finally {
        model.dispose();
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------------
describe('F.swiglu', () => {
  test('forward is bitwise silu(gate)·up; gradients equal the composite; finite differences', () =>
    scope(() => {
      const g32 = rnd([3, 4, 10], 'float32');
      const u32 = rnd([3, 4, 10], 'float32');
      expect(maxDiff(F.swiglu(g32, u32), F.silu(g32).mul(u32))).toBe(0);
      const xs = [rnd([3, 4, 10]), rnd([3, 4, 10])];
      const wOut = rnd([3, 4, 10]);
      const fused = gradsOf((g, u) => F.swiglu(g, u), xs, wOut);
      const ref = gradsOf((g, u) => F.silu(g).mul(u), xs, wOut);
      expect(maxDiff(fused.out, ref.out)).toBe(0);
      fused.grads.forEach((g, i) => expect(maxDiff(g, ref.grads[i])).toBeLessThan(1e-12));
      gradcheck((g, u) => F.swiglu(g, u), [rnd([2, 5]), rnd([2, 5])]);
      expect(errorMessage(() => F.swiglu(rnd([2, 5]), rnd([2, 4])))).toMatch(/gate \[2, 5\] and up \[2, 4\] must have one shape/);
    }));
});

// ---------------------------------------------------------------------------------------------------
test('no tensors left over a training-like loop of every fused op', () => {
  const [a, bb, w] = leaves(rnd([4, 16], 'float32'), rnd([8, 4], 'float32'), rnd([30, 8], 'float32'));
  const step = () =>
    scope(() => {
      const x = rnd([2, 6, 16], 'float32');
      const h = F.loraLinear(x, rnd([8, 16], 'float32'), undefined, a, bb, 2, { dropoutP: 0.1 });
      const q = h.view(2, 6, 2, 4).transpose(1, 2);
      const cos = rnd([1, 6, 4], 'float32');
      const [qe, ke] = F.applyRotaryPosEmb(q, q, cos, cos);
      const m = F.swiglu(qe, ke).transpose(1, 2).reshape(2, 6, 8);
      F.causalLmLoss(m, w, torch.randint(0, 30, [2, 6], { dtype: 'int64' }), { chunkSize: 5 }).backward();
    });
  step();
  noGrad(() => undefined);
  const before = memory();
  for (let i = 0; i < 50; i++) step();
  expect(memory()).toEqual(before);
  for (const p of [a, bb, w]) expect(p.grad).toBeDefined();
});
