// Quantized-weight ops (src/quant_*.cpp, matmul_4bit.cpp): bitsandbytes' blockwise 4-bit and 8-bit formats.
#include "binding/op_bridge.h"
#include "src/matmul_4bit.h"
#include "src/quant_blockwise.h"
#include "src/quant_codes.h"

namespace tl {

void registerQuantOps(Napi::Env env, Napi::Object e) {
  // (quantType) -> float32 [16]; () -> float32 [256]
  def(env, e, "fourBitCode", [](Args& a) { return fourBitCode(a.str(0)); });
  def(env, e, "dynamicMap", [](Args&) { return dynamicMap(); });
  // (a, code, blocksize) -> [q uint8, absmax float32]
  def(env, e, "quantizeBlockwise", [](Args& a) { return quantizeBlockwise(a.t(0), a.t(1), a.i64(2)); });
  // (q, absmax, code, blocksize, dtype)
  def(env, e, "dequantizeBlockwise", [](Args& a) {
    return dequantizeBlockwise(a.t(0), a.t(1), a.t(2), a.i64(3), a.dtype(4));
  });
  // (a, blocksize, quantType) -> [packed uint8 [(n+1)/2, 1], absmax float32]
  def(env, e, "quantize4bit", [](Args& a) { return quantize4bit(a.t(0), a.i64(1), a.str(2)); });
  // (packed, absmax, blocksize, quantType, shape, dtype)
  def(env, e, "dequantize4bit", [](Args& a) {
    return dequantize4bit(a.t(0), a.t(1), a.i64(2), a.str(3), a.dims(4), a.dtype(5));
  });
  // (packed, absmax, blocksize, quantType, shape, dtype): the generic ATen path (the fused CPU loop's reference)
  def(env, e, "dequantize4bitGeneric", [](Args& a) {
    return dequantize4bitGeneric(a.t(0), a.t(1), a.i64(2), a.str(3), a.dims(4), a.dtype(5));
  });
  // (absmax) -> [qabsmax uint8, nestedAbsmax float32, offset]
  def(env, e, "quantizeNestedAbsmax", [](Args& a) {
    auto [q, nested, offset] = quantizeNestedAbsmax(a.t(0));
    Napi::Array r = Napi::Array::New(a.env(), 3);
    r.Set(0u, toJs(a.env(), q));
    r.Set(1u, toJs(a.env(), nested));
    r.Set(2u, Napi::Number::New(a.env(), offset));
    return r;
  });
  // (qabsmax, nestedAbsmax, nestedCode, nestedBlocksize, offset) -> absmax float32
  def(env, e, "dequantizeNestedAbsmax", [](Args& a) {
    return dequantizeNestedAbsmax(a.t(0), a.t(1), a.t(2), a.i64(3), a.f64(4));
  });
  // (x, packed, absmax, blocksize, quantType, outFeatures, inFeatures, bias?)
  def(env, e, "matmul4bit", [](Args& a) {
    return matmul4bit(a.t(0), a.t(1), a.t(2), a.i64(3), a.str(4), a.i64(5), a.i64(6), a.optT(7));
  });
}

}  // namespace tl
