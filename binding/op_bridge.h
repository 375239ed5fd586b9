// The one path from JavaScript to ATen: `def(exports, "name", [](Args& a) { return at::op(...); })`
// registers an op. Args converts the arguments, toJs() the result, and every C++ exception becomes a
// JS Error carrying libtorch's message without its C++ backtrace.
#pragma once
#include <napi.h>
#include <ATen/ATen.h>
#include <cmath>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>
#include "binding/tensor_handle.h"

namespace tl {

// A JS-side argument error: the op name is added when it reaches JavaScript.
struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A JS number where PyTorch takes an int: NaN, infinities, fractions and values outside int64 are
// refused as PyTorch refuses them (N-API's own conversion would make NaN 0 and truncate 1.5 to 1).
inline int64_t intOf(double d, const std::string& where) {
  if (!std::isfinite(d) || d != std::floor(d)) {
    std::ostringstream os;
    os << where << " must be an integer, got " << d;
    throw ArgError(os.str());
  }
  // [-2^63, 2^63): both bounds are exact doubles
  if (d < -9223372036854775808.0 || d >= 9223372036854775808.0) {
    std::ostringstream os;
    os << where << " = " << d << " does not fit in int64";
    throw ArgError(os.str());
  }
  return static_cast<int64_t>(d);
}

class Args {
 public:
  explicit Args(const Napi::CallbackInfo& info) : info_(info) {}
  Napi::Env env() const { return info_.Env(); }
  size_t size() const { return info_.Length(); }
  bool has(size_t i) const {
    if (i >= info_.Length()) return false;
    napi_valuetype type = info_[i].Type();
    return type != napi_undefined && type != napi_null;
  }
  Napi::Value raw(size_t i) const { return info_[i]; }

  const at::Tensor& t(size_t i) const { return tensorIn(info_[i], i, -1); }
  // The one lookup of a tensor argument: a handle of argument `arg` (element `elem` of an array argument,
  // or -1), live, checked against the op's other tensors (noteDevice). Every tensor an op reads comes here.
  const at::Tensor& tensorIn(Napi::Value v, size_t arg, int64_t elem) const {
    at::Tensor* out;
    HandleState s = TensorHandle::Find(info_.Env(), v, &out);
    if (s == HandleState::kLive) {
      noteDevice(*out, arg, elem);
      return *out;
    }
    std::string where = "argument " + std::to_string(arg) + (elem >= 0 ? "[" + std::to_string(elem) + "]" : std::string());
    if (s == HandleState::kDisposed) throw ArgError("a Tensor was used after dispose() (" + where + ")");
    throw ArgError(where + " must be a Tensor" +
                   (elem >= 0 ? " (argument " + std::to_string(arg) + " is an array of Tensors)" : std::string()));
  }
  c10::optional<at::Tensor> optT(size_t i) const {
    if (!has(i)) return c10::nullopt;
    return t(i);
  }
  std::vector<at::Tensor> tensors(size_t i) const {
    if (!info_[i].IsArray()) throw ArgError("argument " + std::to_string(i) + " must be an array of Tensors");
    Napi::Array arr = info_[i].As<Napi::Array>();
    std::vector<at::Tensor> out;
    out.reserve(arr.Length());
    for (uint32_t k = 0; k < arr.Length(); ++k) out.push_back(tensorIn(arr.Get(k), i, k));
    return out;
  }
  int64_t i64(size_t i) const {
    Napi::Value v = info_[i];
    if (v.IsBigInt()) {
      bool lossless;
      int64_t r = v.As<Napi::BigInt>().Int64Value(&lossless);
      // (a Tensor handle is a BigInt outside the int64 range: it lands here too)
      if (!lossless) throw ArgError("argument " + std::to_string(i) + " must be an integer in the int64 range");
      return r;
    }
    if (!v.IsNumber()) throw ArgError("argument " + std::to_string(i) + " must be an integer");
    return intOf(v.As<Napi::Number>().DoubleValue(), "argument " + std::to_string(i));
  }
  int64_t i64(size_t i, int64_t dflt) const { return has(i) ? i64(i) : dflt; }
  c10::optional<int64_t> optI64(size_t i) const {
    if (!has(i)) return c10::nullopt;
    return i64(i);
  }
  double f64(size_t i) const {
    if (!info_[i].IsNumber()) throw ArgError("argument " + std::to_string(i) + " must be a number");
    return info_[i].As<Napi::Number>().DoubleValue();
  }
  double f64(size_t i, double dflt) const { return has(i) ? f64(i) : dflt; }
  c10::optional<double> optF64(size_t i) const {
    if (!has(i)) return c10::nullopt;
    return f64(i);
  }
  bool b(size_t i, bool dflt = false) const { return has(i) ? info_[i].ToBoolean().Value() : dflt; }
  std::string str(size_t i) const {
    if (!info_[i].IsString()) throw ArgError("argument " + std::to_string(i) + " must be a string");
    return info_[i].As<Napi::String>().Utf8Value();
  }
  std::string str(size_t i, const std::string& dflt) const { return has(i) ? str(i) : dflt; }
  // Python-like scalars: an integral JS number is an int (so int tensors stay int), else a double.
  at::Scalar scalar(size_t i) const {
    Napi::Value v = info_[i];
    if (v.IsBoolean()) return at::Scalar(v.As<Napi::Boolean>().Value());
    if (v.IsBigInt()) return at::Scalar(i64(i));
    if (!v.IsNumber()) throw ArgError("argument " + std::to_string(i) + " must be a number");
    double d = v.As<Napi::Number>().DoubleValue();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.007199254740992e15)
      return at::Scalar(static_cast<int64_t>(d));
    return at::Scalar(d);
  }
  at::Scalar scalar(size_t i, const at::Scalar& dflt) const { return has(i) ? scalar(i) : dflt; }
  c10::optional<at::Scalar> optScalar(size_t i) const {
    if (!has(i)) return c10::nullopt;
    return scalar(i);
  }
  std::vector<int64_t> dims(size_t i) const {
    Napi::Value v = info_[i];
    if (v.IsNumber() || v.IsBigInt()) return {i64(i)};
    if (!v.IsArray()) throw ArgError("argument " + std::to_string(i) + " must be an array of integers");
    Napi::Array arr = v.As<Napi::Array>();
    std::vector<int64_t> out(arr.Length());
    for (uint32_t k = 0; k < arr.Length(); ++k) {
      Napi::Value e = arr.Get(k);
      if (!e.IsNumber()) throw ArgError("argument " + std::to_string(i) + " must be an array of integers");
      out[k] = intOf(e.As<Napi::Number>().DoubleValue(),
                     "argument " + std::to_string(i) + "[" + std::to_string(k) + "]");
    }
    return out;
  }
  c10::optional<std::vector<int64_t>> optDims(size_t i) const {
    if (!has(i)) return c10::nullopt;
    return dims(i);
  }
  at::ScalarType dtype(size_t i) const { return static_cast<at::ScalarType>(i64(i)); }
  c10::optional<at::ScalarType> optDtype(size_t i) const {
    if (!has(i)) return c10::nullopt;
    return dtype(i);
  }
  at::Device device(size_t i) const {
    if (!has(i)) return at::Device(at::kCPU);
    at::Device d(str(i));
    // libtorch's own error for a missing CUDA backend is a dispatcher table; say what is wrong instead.
    if (d.is_cuda() && !at::hasCUDA())
      throw std::runtime_error("device '" + d.str() +
                               "' is not available: this libtorch was built without CUDA or sees no GPU "
                               "(cuda.isAvailable() is false); use 'cpu', or build against a CUDA libtorch");
    if (d.is_cuda() && d.has_index() && d.index() >= at::getNumGPUs())
      throw std::runtime_error("device '" + d.str() + "' does not exist: " + std::to_string(at::getNumGPUs()) +
                               " CUDA device(s) are visible");
    return d;
  }
  at::TensorOptions options(size_t dtypeIdx, size_t deviceIdx) const {
    auto o = at::TensorOptions().device(device(deviceIdx));
    if (has(dtypeIdx)) o = o.dtype(dtype(dtypeIdx));
    return o;
  }

  // An op may mix a meta tensor (shapes only) with tensors that hold data only after calling this: ops
  // that do no math across their tensors (copy_ into a meta tensor, setData, file writes, grad
  // bookkeeping); see noteDevice.
  void allowMetaMix() { metaMixOk_ = true; }

 private:
  // A meta tensor next to one with data is refused before the op runs. libtorch lets several such mixes
  // through without a word (matmul, mm, linear, addmm, embedding; cpu.add_(meta) on 2.x) and returns a
  // meta tensor on 1.13 but, on 2.x, often a CPU/CUDA tensor of uninitialized memory or an unchanged
  // in-place target: a silently wrong result, and one that differs between the two majors we build on.
  void noteDevice(const at::Tensor& t, size_t arg, int64_t elem) const {
    if (metaMixOk_ || !t.defined()) return;
    const int8_t meta = t.is_meta() ? 1 : 0;
    if (seenMeta_ < 0) {
      seenMeta_ = meta;
      firstDevice_ = t.device();
      firstArg_ = arg;
      firstElem_ = elem;
      return;
    }
    if (seenMeta_ == meta) return;
    auto where = [](size_t a, int64_t e, const at::Device& d) {
      return "argument " + std::to_string(a) + (e >= 0 ? "[" + std::to_string(e) + "]" : std::string()) +
             " is on " + d.str();
    };
    // (arguments are read in no fixed order: name the lower one first)
    std::string one = where(firstArg_, firstElem_, firstDevice_), other = where(arg, elem, t.device());
    if (std::make_pair(arg, elem) < std::make_pair(firstArg_, firstElem_)) std::swap(one, other);
    throw std::runtime_error("expected all tensors on the same device, but " + one + " and " + other +
                             ": a meta tensor has shapes but no data, so it cannot be combined with tensors "
                             "that have data (move them to one device first)");
  }
  mutable int8_t seenMeta_ = -1;  // -1: no tensor yet; else whether the first one was on meta
  mutable at::Device firstDevice_{at::kCPU};
  mutable size_t firstArg_ = 0;
  mutable int64_t firstElem_ = -1;
  bool metaMixOk_ = false;

  const Napi::CallbackInfo& info_;
};

// A Tensor argument (a handle; any other object too, so that t(i) reports it) rather than a scalar.
inline bool isTensorArgAt(const Args& a, size_t i) {
  if (i >= a.size()) return false;
  Napi::Value v = a.raw(i);
  return TensorHandle::IsHandle(a.env(), v) || v.IsObject();
}

// A mask argument: bool only, as PyTorch 2.x requires (1.13 took a float mask without a word and filled
// nothing, a uint8 one with a deprecation warning).
inline const at::Tensor& boolMask(const at::Tensor& m, const char* op) {
  TORCH_CHECK(m.scalar_type() == at::kBool, op, " only supports boolean masks, but got mask with dtype ",
              m.scalar_type(), " (compare to make one, e.g. mask.ne(0))");
  return m;
}

// --- results to JS ---
inline Napi::Value toJs(Napi::Env env, const at::Tensor& t) { return TensorHandle::Wrap(env, t); }
inline Napi::Value toJs(Napi::Env env, at::Tensor&& t) { return TensorHandle::Wrap(env, std::move(t)); }
inline Napi::Value toJs(Napi::Env env, const std::vector<at::Tensor>& ts) {
  Napi::Array arr = Napi::Array::New(env, ts.size());
  for (uint32_t k = 0; k < ts.size(); ++k) arr.Set(k, TensorHandle::Wrap(env, ts[k]));
  return arr;
}
inline Napi::Value toJs(Napi::Env env, double v) { return Napi::Number::New(env, v); }
inline Napi::Value toJs(Napi::Env env, int64_t v) { return Napi::Number::New(env, static_cast<double>(v)); }
inline Napi::Value toJs(Napi::Env env, bool v) { return Napi::Boolean::New(env, v); }
inline Napi::Value toJs(Napi::Env env, const std::string& v) { return Napi::String::New(env, v); }
inline Napi::Value toJs(Napi::Env env, const std::vector<int64_t>& v) {
  Napi::Array arr = Napi::Array::New(env, v.size());
  for (uint32_t k = 0; k < v.size(); ++k) arr.Set(k, Napi::Number::New(env, static_cast<double>(v[k])));
  return arr;
}
inline Napi::Value toJs(Napi::Env, Napi::Value v) { return v; }
template <class A, class B>
Napi::Value toJs(Napi::Env env, const std::tuple<A, B>& r) {
  Napi::Array arr = Napi::Array::New(env, 2);
  arr.Set(0u, toJs(env, std::get<0>(r)));
  arr.Set(1u, toJs(env, std::get<1>(r)));
  return arr;
}
template <class A, class B, class C>
Napi::Value toJs(Napi::Env env, const std::tuple<A, B, C>& r) {
  Napi::Array arr = Napi::Array::New(env, 3);
  arr.Set(0u, toJs(env, std::get<0>(r)));
  arr.Set(1u, toJs(env, std::get<1>(r)));
  arr.Set(2u, toJs(env, std::get<2>(r)));
  return arr;
}

// "name: message", once: the core's own checks (src/) already start with the op's name, so that they read
// well when called from C++ too.
inline std::string withOpName(const char* name, const std::string& msg) {
  const std::string prefix = std::string(name) + ": ";
  return msg.compare(0, prefix.size(), prefix) == 0 ? msg : prefix + msg;
}

// Runs f and turns every C++ exception into a JS Error (libtorch's text, no C++ backtrace).
template <class F>
Napi::Value guarded(Napi::Env env, const char* name, F&& f) {
  try {
    return f();
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, withOpName(name, e.what_without_backtrace()));
  } catch (const ArgError& e) {
    throw Napi::TypeError::New(env, withOpName(name, e.what()));
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, withOpName(name, e.what()));
  }
}

template <class F>
void def(Napi::Env env, Napi::Object exports, const char* name, F f) {
  exports.Set(name, Napi::Function::New(
                        env,
                        [f, name](const Napi::CallbackInfo& info) -> Napi::Value {
                          return guarded(info.Env(), name, [&]() -> Napi::Value {
                            Args a(info);
                            if constexpr (std::is_void_v<decltype(f(a))>) {
                              f(a);
                              return info.Env().Undefined();
                            } else {
                              return toJs(info.Env(), f(a));
                            }
                          });
                        },
                        name));
}

// Each group of ops registers itself from its own file (kept apart for compile time).
void registerCreationOps(Napi::Env env, Napi::Object exports);
void registerMathOps(Napi::Env env, Napi::Object exports);
void registerShapeOps(Napi::Env env, Napi::Object exports);
void registerTensorOps(Napi::Env env, Napi::Object exports);
void registerNnOps(Napi::Env env, Napi::Object exports);
void registerRuntime(Napi::Env env, Napi::Object exports);
void registerCuda(Napi::Env env, Napi::Object exports);
void registerIo(Napi::Env env, Napi::Object exports);
void registerTorchLoad(Napi::Env env, Napi::Object exports);
void registerOptimOps(Napi::Env env, Napi::Object exports);
void registerLinalgOps(Napi::Env env, Napi::Object exports);
void registerFusedOps(Napi::Env env, Napi::Object exports);
void registerQuantOps(Napi::Env env, Napi::Object exports);
void registerDistributed(Napi::Env env, Napi::Object exports);

}  // namespace tl
