// Fused training ops (src/): one autograd node each, where the composite would make several.
#include "binding/op_bridge.h"
#include "src/causal_lm_loss.h"
#include "src/lora_linear.h"
#include "src/rotary.h"
#include "src/swiglu.h"

namespace tl {

void registerFusedOps(Napi::Env env, Napi::Object e) {
  // (x, weight, bias?, loraA, loraB, scaling, dropoutP, training, fanInFanOut)
  def(env, e, "loraLinear", [](Args& a) {
    return loraLinear(a.t(0), a.t(1), a.optT(2), a.t(3), a.t(4), a.f64(5), a.f64(6, 0.0), a.b(7), a.b(8));
  });
  // (q, k, cos, sin) -> [q', k']
  def(env, e, "applyRotaryPosEmb", [](Args& a) { return applyRotaryPosEmb(a.t(0), a.t(1), a.t(2), a.t(3)); });
  // (hidden, lmHeadWeight, labels, ignoreIndex, chunkSize (0: automatic), reduction 'mean' | 'sum', recompute)
  def(env, e, "causalLmLoss", [](Args& a) {
    const std::string r = a.str(5, "mean");
    if (r != "mean" && r != "sum") throw ArgError("reduction must be 'mean' or 'sum', got '" + r + "'");
    return causalLmLoss(a.t(0), a.t(1), a.t(2), a.i64(3, -100), a.i64(4, 0), r == "mean", a.b(6));
  });
  def(env, e, "swiglu", [](Args& a) { return swiglu(a.t(0), a.t(1)); });
}

}  // namespace tl
