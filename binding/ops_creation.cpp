// Factories and the two host copies (into a tensor from JS bytes, out of a tensor to JS bytes).
#include <cstring>
#include "binding/op_bridge.h"

namespace tl {

static at::Tensor fromBytes(Args& a) {
  // (typedArray, dtype, shape, device)
  Napi::Value v = a.raw(0);
  if (!v.IsTypedArray()) throw ArgError("argument 0 must be a typed array");
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  auto buf = ta.ArrayBuffer();
  const uint8_t* src = static_cast<const uint8_t*>(buf.Data()) + ta.ByteOffset();
  size_t nbytes = ta.ByteLength();
  at::ScalarType dt = a.dtype(1);
  std::vector<int64_t> shape = a.dims(2);
  at::Tensor out = at::empty(shape, at::TensorOptions().dtype(dt));
  size_t want = static_cast<size_t>(out.numel()) * out.element_size();
  if (want != nbytes)
    throw ArgError("data has " + std::to_string(nbytes) + " bytes but shape " + c10::str(at::IntArrayRef(shape)) +
                   " of " + c10::toString(dt) + " needs " + std::to_string(want));
  if (nbytes) std::memcpy(out.data_ptr(), src, nbytes);
  at::Device dev = a.device(3);
  if (dev != out.device()) out = out.to(dev);
  return out;
}

static Napi::Value toBytes(Args& a) {
  at::Tensor t = a.t(0).detach();
  if (!t.device().is_cpu()) t = t.to(at::kCPU);
  t = t.contiguous();
  size_t nbytes = static_cast<size_t>(t.numel()) * t.element_size();
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(a.env(), nbytes);
  if (nbytes) std::memcpy(ab.Data(), t.data_ptr(), nbytes);
  return ab;
}

void registerCreationOps(Napi::Env env, Napi::Object e) {
  def(env, e, "fromBytes", fromBytes);
  def(env, e, "toBytes", toBytes);
  // (shape, dtype, device)
  def(env, e, "empty", [](Args& a) { return at::empty(a.dims(0), a.options(1, 2)); });
  def(env, e, "zeros", [](Args& a) { return at::zeros(a.dims(0), a.options(1, 2)); });
  def(env, e, "ones", [](Args& a) { return at::ones(a.dims(0), a.options(1, 2)); });
  def(env, e, "full", [](Args& a) { return at::full(a.dims(0), a.scalar(1), a.options(2, 3)); });
  def(env, e, "randn", [](Args& a) { return at::randn(a.dims(0), a.options(1, 2)); });
  def(env, e, "rand", [](Args& a) { return at::rand(a.dims(0), a.options(1, 2)); });
  // (low, high, shape, dtype, device)
  def(env, e, "randint", [](Args& a) { return at::randint(a.i64(0), a.i64(1), a.dims(2), a.options(3, 4)); });
  // (start, end, step, dtype, device)
  def(env, e, "arange", [](Args& a) { return at::arange(a.scalar(0), a.scalar(1), a.scalar(2), a.options(3, 4)); });
  def(env, e, "linspace", [](Args& a) { return at::linspace(a.scalar(0), a.scalar(1), a.i64(2), a.options(3, 4)); });
  def(env, e, "eye", [](Args& a) { return at::eye(a.i64(0), a.i64(1), a.options(2, 3)); });
  def(env, e, "scalarTensor", [](Args& a) { return at::scalar_tensor(a.scalar(0), a.options(1, 2)); });
  // (like, dtype?, device?)
  def(env, e, "zerosLike", [](Args& a) {
    auto o = a.t(0).options();
    if (a.has(1)) o = o.dtype(a.dtype(1));
    if (a.has(2)) o = o.device(a.device(2));
    return at::zeros_like(a.t(0), o);
  });
  def(env, e, "onesLike", [](Args& a) {
    auto o = a.t(0).options();
    if (a.has(1)) o = o.dtype(a.dtype(1));
    return at::ones_like(a.t(0), o);
  });
  def(env, e, "fullLike", [](Args& a) { return at::full_like(a.t(0), a.scalar(1)); });
  def(env, e, "randnLike", [](Args& a) { return at::randn_like(a.t(0)); });
  def(env, e, "randLike", [](Args& a) { return at::rand_like(a.t(0)); });
  def(env, e, "multinomial", [](Args& a) { return at::multinomial(a.t(0), a.i64(1), a.b(2)); });
  def(env, e, "randperm", [](Args& a) { return at::randperm(a.i64(0), a.options(1, 2)); });
}

}  // namespace tl
