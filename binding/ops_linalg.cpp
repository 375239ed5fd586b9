// torch.linalg decompositions: the SVD and QR that LoRA's PiSSA/OLoRA inits and SVD adapter merging use,
// and the Cholesky factor resizeTokenEmbeddings samples new rows with.
#include "binding/op_bridge.h"

namespace tl {

void registerLinalgOps(Napi::Env env, Napi::Object e) {
  // (A, fullMatrices) -> [U, S, Vh]
  def(env, e, "linalgSvd", [](Args& a) { return at::linalg_svd(a.t(0), a.b(1, true)); });
  // (A) -> [L, info]: info 0 where A is positive-definite (torch's constraints.positive_definite check)
  def(env, e, "linalgCholeskyEx", [](Args& a) { return at::linalg_cholesky_ex(a.t(0), false, false); });
  // (A, mode: 'reduced' | 'complete' | 'r') -> [Q, R]
  def(env, e, "linalgQr", [](Args& a) {
    std::string mode = a.str(1, "reduced");
    return at::linalg_qr(a.t(0), mode);
  });
}

}  // namespace tl
