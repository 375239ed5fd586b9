// File reads and writes of tensor bytes, sync and async (a worker thread, a Promise).
#include "binding/op_bridge.h"
#include "binding/promise_worker.h"
#include "src/tensor_file_io.h"

namespace tl {

namespace {

// specs: [{ dtype, shape, offset, nbytes }]
std::vector<TensorSpec> readSpecs(const Args& a, size_t i) {
  if (!a.raw(i).IsArray()) throw ArgError("argument " + std::to_string(i) + " must be an array of tensor specs");
  Napi::Array arr = a.raw(i).As<Napi::Array>();
  std::vector<TensorSpec> specs;
  specs.reserve(arr.Length());
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    Napi::Object o = arr.Get(k).As<Napi::Object>();
    TensorSpec s;
    s.dtype = static_cast<at::ScalarType>(o.Get("dtype").As<Napi::Number>().Int32Value());
    Napi::Array shape = o.Get("shape").As<Napi::Array>();
    for (uint32_t d = 0; d < shape.Length(); ++d) s.shape.push_back(shape.Get(d).As<Napi::Number>().Int64Value());
    s.offset = static_cast<uint64_t>(o.Get("offset").As<Napi::Number>().Int64Value());
    s.nbytes = static_cast<uint64_t>(o.Get("nbytes").As<Napi::Number>().Int64Value());
    specs.push_back(std::move(s));
  }
  return specs;
}

std::string bytesArg(const Args& a, size_t i) {
  if (!a.raw(i).IsTypedArray()) throw ArgError("argument " + std::to_string(i) + " must be a Uint8Array");
  auto ta = a.raw(i).As<Napi::TypedArray>();
  const char* p = static_cast<const char*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  return std::string(p, ta.ByteLength());
}

}  // namespace

void registerIo(Napi::Env env, Napi::Object e) {
  // (path, specs, device?)
  def(env, e, "readTensors", [](Args& a) { return readTensors(a.str(0), readSpecs(a, 1), a.device(2)); });
  def(env, e, "readTensorsAsync", [](Args& a) -> Napi::Value {
    auto out = std::make_shared<std::vector<at::Tensor>>();
    auto path = a.str(0);
    auto specs = readSpecs(a, 1);
    auto device = a.device(2);
    return PromiseWorker::start(
        a.env(), "readTensorsAsync", [=] { *out = readTensors(path, specs, device); },
        [out](Napi::Env env) { return toJs(env, *out); });
  });
  // (path, prefixBytes, tensors): each tensor is copied out on its own, so they may sit on any devices
  // (a meta one fails when its turn comes).
  def(env, e, "writeFileAtomic", [](Args& a) {
    a.allowMetaMix();
    writeFileAtomic(a.str(0), bytesArg(a, 1), a.tensors(2));
  });
  def(env, e, "writeFileAtomicAsync", [](Args& a) -> Napi::Value {
    a.allowMetaMix();
    auto path = a.str(0);
    auto prefix = bytesArg(a, 1);
    // A snapshot, taken now on the JS thread: the caller may change the tensors in place (an optimizer
    // step) before the Promise settles, and the worker reading them meanwhile wrote torn files. The
    // price is a copy of the tensors for the length of the write.
    auto tensors = a.tensors(2);
    for (auto& t : tensors) {
      if (t.is_meta()) continue;  // fails with its own message when its turn comes
      t = t.is_cpu() ? t.detach().clone(at::MemoryFormat::Contiguous) : t.detach().to(at::kCPU);  // (a copy already)
    }
    return PromiseWorker::start(
        a.env(), "writeFileAtomicAsync", [=] { writeFileAtomic(path, prefix, tensors); },
        [](Napi::Env env) { return env.Undefined(); });
  });
}

}  // namespace tl
