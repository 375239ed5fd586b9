// Reading torch.save files (pytorch_model.bin, adapter_model.bin) into named tensors, sync and async.
#include "binding/op_bridge.h"
#include "binding/promise_worker.h"
#include "src/torch_load.h"

namespace tl {

namespace {

// [names, tensors]
Napi::Value namedToJs(Napi::Env env, const NamedTensors& r) {
  Napi::Array names = Napi::Array::New(env, r.names.size());
  for (uint32_t k = 0; k < r.names.size(); ++k) names.Set(k, Napi::String::New(env, r.names[k]));
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, names);
  out.Set(1u, toJs(env, r.tensors));
  return out;
}

}  // namespace

void registerTorchLoad(Napi::Env env, Napi::Object e) {
  // (path, device?) -> [names, tensors]
  def(env, e, "loadTorchBin", [](Args& a) { return namedToJs(a.env(), loadTorchStateDict(a.str(0), a.device(1))); });
  def(env, e, "loadTorchBinAsync", [](Args& a) -> Napi::Value {
    auto path = a.str(0);
    auto device = a.device(1);
    auto out = std::make_shared<NamedTensors>();
    return PromiseWorker::start(
        a.env(), "loadTorchBinAsync", [=] { *out = loadTorchStateDict(path, device); },
        [out](Napi::Env env) { return namedToJs(env, *out); });
  });
}

}  // namespace tl
