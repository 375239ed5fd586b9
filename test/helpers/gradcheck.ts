// A float64 gradient check: the gradients autograd computes against central finite differences.
// The function's output is reduced to a scalar with fixed, non-uniform weights, so every output
// element's gradient path is checked (not only their sum).
import { noGrad, scope, tensor, Tensor } from '../../lib';

export interface GradcheckOptions {
  /** Central-difference step (default 1e-6). */
  eps?: number;
  /** Allowed |analytic - numeric| <= atol + rtol * |numeric| (defaults 1e-6 and 1e-5). */
  atol?: number;
  rtol?: number;
  /** Indices of the inputs to differentiate (default: every float64 input). */
  wrt?: number[];
}

/** Weights w_i = sin(1 + 0.7 i) + 0.1: deterministic, of both signs, never all equal. */
function weightsLike(out: Tensor): Tensor {
  const n = out.numel();
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) w[i] = Math.sin(1 + 0.7 * i) + 0.1;
  return tensor(w, { shape: out.shape });
}

function scalarOf(fn: (...xs: Tensor[]) => Tensor, xs: Tensor[]): Tensor {
  const out = fn(...xs);
  if (out.dtype !== 'float64') throw new Error(`gradcheck: the function must return float64, got ${out.dtype}`);
  return out.mul(weightsLike(out)).sum();
}

/**
 * Checks the gradient of fn at `inputs` (float64 tensors; others, e.g. int64 indices, pass through).
 * Returns the largest absolute difference seen; throws naming the input and element that differ.
 */
export function gradcheck(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: GradcheckOptions = {}): number {
  const { eps = 1e-6, atol = 1e-6, rtol = 1e-5 } = opts;
  const wrt = opts.wrt ?? inputs.flatMap((x, i) => (x.dtype === 'float64' ? [i] : []));
  return scope(() => {
    const leaves = inputs.map((x, i) => (wrt.includes(i) ? x.detach().clone().requiresGrad_(true) : x));
    scalarOf(fn, leaves).backward();
    let maxDiff = 0;
    for (const i of wrt) {
      const g = leaves[i].grad;
      if (g === undefined) throw new Error(`gradcheck: input ${i} got no gradient`);
      const analytic = g.data() as Float64Array;
      const base = inputs[i].data() as Float64Array;
      const shape = inputs[i].shape;
      const at = (j: number, delta: number): number =>
        scope(() =>
          noGrad(() => {
            const p = Float64Array.from(base);
            p[j] += delta;
            const xs = inputs.slice();
            xs[i] = tensor(p, { shape });
            return scalarOf(fn, xs).item() as number;
          }),
        );
      for (let j = 0; j < base.length; j++) {
        const numeric = (at(j, eps) - at(j, -eps)) / (2 * eps);
        const diff = Math.abs(analytic[j] - numeric);
        maxDiff = Math.max(maxDiff, diff);
        if (!(diff <= atol + rtol * Math.abs(numeric)))
          throw new Error(
            `gradcheck: input ${i} element ${j}: autograd ${analytic[j]} vs finite difference ${numeric} ` +
              `(|diff| ${diff}, eps ${eps}, atol ${atol}, rtol ${rtol})`,
          );
      }
    }
    return maxDiff;
  });
}
