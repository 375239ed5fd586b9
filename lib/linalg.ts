// torch.linalg: matrix decompositions (one native call each).
import { native } from './native';
import { Tensor } from './tensor';

/**
 * The singular value decomposition A = U·diag(S)·Vh, as torch.linalg.svd. fullMatrices false gives the
 * reduced form (U [m, k], S [k], Vh [k, n] with k = min(m, n)).
 */
export function svd(a: Tensor, opts: { fullMatrices?: boolean } = {}): [Tensor, Tensor, Tensor] {
  const [u, s, vh] = native.linalgSvd(a.handle, opts.fullMatrices ?? true);
  return [Tensor.wrap(u), Tensor.wrap(s), Tensor.wrap(vh)];
}

/** The QR decomposition A = Q·R, as torch.linalg.qr; mode 'reduced' (default), 'complete' or 'r'. */
export function qr(a: Tensor, opts: { mode?: 'reduced' | 'complete' | 'r' } = {}): [Tensor, Tensor] {
  const [q, r] = native.linalgQr(a.handle, opts.mode ?? 'reduced');
  return [Tensor.wrap(q), Tensor.wrap(r)];
}

/**
 * The Cholesky factor L (A = L·Lᵀ, lower-triangular) and info, as torch.linalg.cholesky_ex: info is 0 where A
 * is positive-definite (torch.distributions' positive_definite check), else the order of the failing minor.
 */
export function linalgCholeskyEx(a: Tensor): [Tensor, Tensor] {
  const [l, info] = native.linalgCholeskyEx(a.handle);
  return [Tensor.wrap(l), Tensor.wrap(info)];
}
