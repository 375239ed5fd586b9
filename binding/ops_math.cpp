// Elementwise math, comparisons, matrix products, reductions and the in-place ops optimizers use.
#include "binding/op_bridge.h"

namespace tl {

static bool isTensorArg(const Args& a, size_t i) { return isTensorArgAt(a, i); }

// A binary op whose second operand is a Tensor or a JS number (a Python-style wrapped scalar).
#define BINARY(jsName, fn)                                                                    \
  def(env, e, jsName, [](Args& a) {                                                           \
    return isTensorArg(a, 1) ? at::fn(a.t(0), a.t(1)) : at::fn(a.t(0), a.scalar(1));          \
  })
// The same for ops that ATen only defines on two tensors.
#define BINARY_T(jsName, fn)                                                                  \
  def(env, e, jsName, [](Args& a) {                                                           \
    const at::Tensor& x = a.t(0);                                                             \
    return isTensorArg(a, 1) ? at::fn(x, a.t(1))                                              \
                             : at::fn(x, at::scalar_tensor(a.scalar(1), x.options()));        \
  })
#define UNARY(jsName, fn) def(env, e, jsName, [](Args& a) { return at::fn(a.t(0)); })
#define INPLACE_UNARY(jsName, method) def(env, e, jsName, [](Args& a) { a.t(0).method(); })

static at::IntArrayRef asRef(const std::vector<int64_t>& v) { return at::IntArrayRef(v); }

void registerMathOps(Napi::Env env, Napi::Object e) {
  // (a, b, alpha?)
  def(env, e, "add", [](Args& a) {
    return isTensorArg(a, 1) ? at::add(a.t(0), a.t(1), a.scalar(2, 1)) : at::add(a.t(0), a.scalar(1), a.scalar(2, 1));
  });
  def(env, e, "sub", [](Args& a) {
    return isTensorArg(a, 1) ? at::sub(a.t(0), a.t(1), a.scalar(2, 1)) : at::sub(a.t(0), a.scalar(1), a.scalar(2, 1));
  });
  def(env, e, "rsub", [](Args& a) { return at::rsub(a.t(0), a.scalar(1)); });
  BINARY("mul", mul);
  def(env, e, "div", [](Args& a) {
    c10::optional<c10::string_view> mode;
    std::string m = a.str(2, "");
    if (!m.empty()) mode = m;
    return isTensorArg(a, 1) ? at::div(a.t(0), a.t(1), mode) : at::div(a.t(0), a.scalar(1), mode);
  });
  BINARY("pow", pow);
  def(env, e, "rpow", [](Args& a) { return at::pow(a.scalar(1), a.t(0)); });
  BINARY("remainder", remainder);
  BINARY("fmod", fmod);
  BINARY_T("maximum", maximum);
  BINARY_T("minimum", minimum);
  BINARY_T("atan2", atan2);
  BINARY("eq", eq);
  BINARY("ne", ne);
  BINARY("lt", lt);
  BINARY("le", le);
  BINARY("gt", gt);
  BINARY("ge", ge);
  BINARY_T("logicalAnd", logical_and);
  BINARY_T("logicalOr", logical_or);
  BINARY_T("logicalXor", logical_xor);
  BINARY("bitwiseAnd", bitwise_and);
  BINARY("bitwiseOr", bitwise_or);

  UNARY("neg", neg);
  UNARY("abs", abs);
  UNARY("exp", exp);
  UNARY("log", log);
  UNARY("log2", log2);
  UNARY("log1p", log1p);
  UNARY("expm1", expm1);
  UNARY("sqrt", sqrt);
  UNARY("rsqrt", rsqrt);
  UNARY("square", square);
  UNARY("reciprocal", reciprocal);
  UNARY("sin", sin);
  UNARY("cos", cos);
  UNARY("tan", tan);
  UNARY("tanh", tanh);
  UNARY("sigmoid", sigmoid);
  UNARY("erf", erf);
  UNARY("sign", sign);
  UNARY("floor", floor);
  UNARY("ceil", ceil);
  UNARY("round", round);
  UNARY("trunc", trunc);
  UNARY("isnan", isnan);
  UNARY("isinf", isinf);
  UNARY("isfinite", isfinite);
  UNARY("logicalNot", logical_not);
  UNARY("relu", relu);
  UNARY("silu", silu);
  UNARY("logsigmoid", log_sigmoid);
  UNARY("softplus", softplus);
  UNARY("nanToNum", nan_to_num);
  def(env, e, "gelu", [](Args& a) { return at::gelu(a.t(0), a.str(1, "none")); });
  def(env, e, "leakyRelu", [](Args& a) { return at::leaky_relu(a.t(0), a.scalar(1, 0.01)); });
  def(env, e, "clamp", [](Args& a) { return at::clamp(a.t(0), a.optScalar(1), a.optScalar(2)); });
  def(env, e, "lerp", [](Args& a) {
    return isTensorArg(a, 2) ? at::lerp(a.t(0), a.t(1), a.t(2)) : at::lerp(a.t(0), a.t(1), a.scalar(2));
  });
  def(env, e, "where", [](Args& a) {
    // (condition, x, y): x and y may each be a Tensor or a number
    const at::Tensor& c = a.t(0);
    bool xt = isTensorArg(a, 1), yt = isTensorArg(a, 2);
    if (xt && yt) return at::where(c, a.t(1), a.t(2));
    if (xt) return at::where(c, a.t(1), a.scalar(2));
    if (yt) return at::where(c, a.scalar(1), a.t(2));
    return at::where(c, a.scalar(1), a.scalar(2));
  });
  def(env, e, "addcmul", [](Args& a) { return at::addcmul(a.t(0), a.t(1), a.t(2), a.scalar(3, 1)); });
  def(env, e, "addcdiv", [](Args& a) { return at::addcdiv(a.t(0), a.t(1), a.t(2), a.scalar(3, 1)); });

  // Matrix products.
  def(env, e, "matmul", [](Args& a) { return at::matmul(a.t(0), a.t(1)); });
  def(env, e, "mm", [](Args& a) { return at::mm(a.t(0), a.t(1)); });
  def(env, e, "bmm", [](Args& a) { return at::bmm(a.t(0), a.t(1)); });
  def(env, e, "outer", [](Args& a) { return at::outer(a.t(0), a.t(1)); });
  def(env, e, "linear", [](Args& a) { return at::linear(a.t(0), a.t(1), a.optT(2)); });
  def(env, e, "addmm", [](Args& a) {
    return at::addmm(a.t(0), a.t(1), a.t(2), a.scalar(3, 1), a.scalar(4, 1));
  });
  def(env, e, "baddbmm", [](Args& a) {
    return at::baddbmm(a.t(0), a.t(1), a.t(2), a.scalar(3, 1), a.scalar(4, 1));
  });
  def(env, e, "einsum", [](Args& a) { return at::einsum(a.str(0), a.tensors(1)); });

  // Reductions: (t, dims?, keepdim?, dtype?). No dims: over every element.
  def(env, e, "sum", [](Args& a) {
    if (!a.has(1)) return at::sum(a.t(0), a.optDtype(3));
    auto d = a.dims(1);
    return at::sum(a.t(0), asRef(d), a.b(2), a.optDtype(3));
  });
  def(env, e, "mean", [](Args& a) {
    if (!a.has(1)) return at::mean(a.t(0), a.optDtype(3));
    auto d = a.dims(1);
    return at::mean(a.t(0), asRef(d), a.b(2), a.optDtype(3));
  });
  def(env, e, "prod", [](Args& a) {
    if (!a.has(1)) return at::prod(a.t(0), a.optDtype(3));
    return at::prod(a.t(0), a.i64(1), a.b(2), a.optDtype(3));
  });
  // (t, dims?, unbiased, keepdim)
  def(env, e, "std", [](Args& a) {
    if (!a.has(1)) return at::std(a.t(0), a.b(2, true));
    auto d = a.dims(1);
    return at::std(a.t(0), at::OptionalIntArrayRef(asRef(d)), a.b(2, true), a.b(3));
  });
  def(env, e, "var", [](Args& a) {
    if (!a.has(1)) return at::var(a.t(0), a.b(2, true));
    auto d = a.dims(1);
    return at::var(a.t(0), at::OptionalIntArrayRef(asRef(d)), a.b(2, true), a.b(3));
  });
  // (t, ord, dims?, keepdim, dtype?)
  def(env, e, "norm", [](Args& a) {
    auto d = a.optDims(2);
    at::OptionalIntArrayRef od = d ? at::OptionalIntArrayRef(asRef(*d)) : at::OptionalIntArrayRef();
    return at::linalg_vector_norm(a.t(0), a.scalar(1, 2), od, a.b(3), a.optDtype(4));
  });
  def(env, e, "logsumexp", [](Args& a) {
    auto d = a.dims(1);
    return at::logsumexp(a.t(0), asRef(d), a.b(2));
  });
  // max/min: no dim -> the value; with dim -> [values, indices]
  def(env, e, "maxAll", [](Args& a) { return at::max(a.t(0)); });
  def(env, e, "minAll", [](Args& a) { return at::min(a.t(0)); });
  def(env, e, "maxDim", [](Args& a) { return at::max(a.t(0), a.i64(1), a.b(2)); });
  def(env, e, "minDim", [](Args& a) { return at::min(a.t(0), a.i64(1), a.b(2)); });
  def(env, e, "amax", [](Args& a) { auto d = a.dims(1); return at::amax(a.t(0), asRef(d), a.b(2)); });
  def(env, e, "amin", [](Args& a) { auto d = a.dims(1); return at::amin(a.t(0), asRef(d), a.b(2)); });
  def(env, e, "argmax", [](Args& a) { return at::argmax(a.t(0), a.optI64(1), a.b(2)); });
  def(env, e, "argmin", [](Args& a) { return at::argmin(a.t(0), a.optI64(1), a.b(2)); });
  def(env, e, "cumsum", [](Args& a) { return at::cumsum(a.t(0), a.i64(1), a.optDtype(2)); });
  def(env, e, "all", [](Args& a) { return a.has(1) ? at::all(a.t(0), a.i64(1), a.b(2)) : at::all(a.t(0)); });
  def(env, e, "any", [](Args& a) { return a.has(1) ? at::any(a.t(0), a.i64(1), a.b(2)) : at::any(a.t(0)); });
  // (t, k, dim, largest, sorted) -> [values, indices]
  def(env, e, "topk", [](Args& a) { return at::topk(a.t(0), a.i64(1), a.i64(2, -1), a.b(3, true), a.b(4, true)); });
  def(env, e, "sort", [](Args& a) { return at::sort(a.t(0), a.i64(1, -1), a.b(2)); });
  def(env, e, "argsort", [](Args& a) { return at::argsort(a.t(0), a.i64(1, -1), a.b(2)); });
  def(env, e, "allclose", [](Args& a) { return at::allclose(a.t(0), a.t(1), a.f64(2, 1e-5), a.f64(3, 1e-8), a.b(4)); });
  def(env, e, "equal", [](Args& a) { return at::equal(a.t(0), a.t(1)); });

  // In place (return nothing: the JS side returns the same Tensor object).
  def(env, e, "add_", [](Args& a) {
    if (isTensorArg(a, 1)) a.t(0).add_(a.t(1), a.scalar(2, 1)); else a.t(0).add_(a.scalar(1), a.scalar(2, 1));
  });
  def(env, e, "sub_", [](Args& a) {
    if (isTensorArg(a, 1)) a.t(0).sub_(a.t(1), a.scalar(2, 1)); else a.t(0).sub_(a.scalar(1), a.scalar(2, 1));
  });
  def(env, e, "mul_", [](Args& a) { if (isTensorArg(a, 1)) a.t(0).mul_(a.t(1)); else a.t(0).mul_(a.scalar(1)); });
  def(env, e, "div_", [](Args& a) { if (isTensorArg(a, 1)) a.t(0).div_(a.t(1)); else a.t(0).div_(a.scalar(1)); });
  def(env, e, "pow_", [](Args& a) { if (isTensorArg(a, 1)) a.t(0).pow_(a.t(1)); else a.t(0).pow_(a.scalar(1)); });
  def(env, e, "addcmul_", [](Args& a) { a.t(0).addcmul_(a.t(1), a.t(2), a.scalar(3, 1)); });
  def(env, e, "addcdiv_", [](Args& a) { a.t(0).addcdiv_(a.t(1), a.t(2), a.scalar(3, 1)); });
  def(env, e, "lerp_", [](Args& a) {
    if (isTensorArg(a, 2)) a.t(0).lerp_(a.t(1), a.t(2)); else a.t(0).lerp_(a.t(1), a.scalar(2));
  });
  // (meta.copy_(cpu) is allowed, as in PyTorch: the meta tensor stays without data)
  def(env, e, "copy_", [](Args& a) {
    a.allowMetaMix();
    a.t(0).copy_(a.t(1));
  });
  def(env, e, "fill_", [](Args& a) { a.t(0).fill_(a.scalar(1)); });
  def(env, e, "clamp_", [](Args& a) { a.t(0).clamp_(a.optScalar(1), a.optScalar(2)); });
  def(env, e, "maskedFill_", [](Args& a) { a.t(0).masked_fill_(boolMask(a.t(1), "masked_fill_"), a.scalar(2)); });
  def(env, e, "uniform_", [](Args& a) { a.t(0).uniform_(a.f64(1, 0), a.f64(2, 1)); });
  def(env, e, "normal_", [](Args& a) { a.t(0).normal_(a.f64(1, 0), a.f64(2, 1)); });
  INPLACE_UNARY("zero_", zero_);
  INPLACE_UNARY("sqrt_", sqrt_);
  INPLACE_UNARY("exp_", exp_);
  INPLACE_UNARY("neg_", neg_);
  INPLACE_UNARY("relu_", relu_);
}

}  // namespace tl
