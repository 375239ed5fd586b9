// Views, joins, splits and indexing.
#include "binding/op_bridge.h"

namespace tl {

static at::IntArrayRef asRef(const std::vector<int64_t>& v) { return at::IntArrayRef(v); }

void registerShapeOps(Napi::Env env, Napi::Object e) {
  def(env, e, "view", [](Args& a) { auto s = a.dims(1); return a.t(0).view(asRef(s)); });
  def(env, e, "reshape", [](Args& a) { auto s = a.dims(1); return a.t(0).reshape(asRef(s)); });
  def(env, e, "permute", [](Args& a) { auto s = a.dims(1); return a.t(0).permute(asRef(s)); });
  def(env, e, "transpose", [](Args& a) { return a.t(0).transpose(a.i64(1), a.i64(2)); });
  def(env, e, "t", [](Args& a) { return a.t(0).t(); });
  def(env, e, "contiguous", [](Args& a) { return a.t(0).contiguous(); });
  def(env, e, "expand", [](Args& a) { auto s = a.dims(1); return a.t(0).expand(asRef(s)); });
  def(env, e, "repeat", [](Args& a) { auto s = a.dims(1); return a.t(0).repeat(asRef(s)); });
  def(env, e, "repeatInterleave", [](Args& a) { return at::repeat_interleave(a.t(0), a.i64(1), a.optI64(2)); });
  def(env, e, "squeeze", [](Args& a) { return a.has(1) ? a.t(0).squeeze(a.i64(1)) : a.t(0).squeeze(); });
  def(env, e, "unsqueeze", [](Args& a) { return a.t(0).unsqueeze(a.i64(1)); });
  def(env, e, "flatten", [](Args& a) { return a.t(0).flatten(a.i64(1, 0), a.i64(2, -1)); });
  def(env, e, "unflatten", [](Args& a) { auto s = a.dims(2); return a.t(0).unflatten(a.i64(1), asRef(s)); });
  def(env, e, "movedim", [](Args& a) { return a.t(0).movedim(a.i64(1), a.i64(2)); });
  def(env, e, "cat", [](Args& a) { return at::cat(a.tensors(0), a.i64(1, 0)); });
  def(env, e, "stack", [](Args& a) { return at::stack(a.tensors(0), a.i64(1, 0)); });
  // (t, sizeOrSizes, dim)
  def(env, e, "split", [](Args& a) {
    if (a.raw(1).IsArray()) { auto s = a.dims(1); return at::split_with_sizes(a.t(0), asRef(s), a.i64(2, 0)); }
    return at::split(a.t(0), a.i64(1), a.i64(2, 0));
  });
  def(env, e, "chunk", [](Args& a) { return at::chunk(a.t(0), a.i64(1), a.i64(2, 0)); });
  def(env, e, "unbind", [](Args& a) { return at::unbind(a.t(0), a.i64(1, 0)); });
  def(env, e, "narrow", [](Args& a) { return a.t(0).narrow(a.i64(1), a.i64(2), a.i64(3)); });
  def(env, e, "select", [](Args& a) { return a.t(0).select(a.i64(1), a.i64(2)); });
  // (t, dim, start?, end?, step)
  def(env, e, "slice", [](Args& a) { return a.t(0).slice(a.i64(1), a.optI64(2), a.optI64(3), a.i64(4, 1)); });
  def(env, e, "indexSelect", [](Args& a) { return a.t(0).index_select(a.i64(1), a.t(2)); });
  // (self, dim, index, source) -> self with rows `index` replaced by source (differentiable in both)
  def(env, e, "indexCopy", [](Args& a) { return at::index_copy(a.t(0), a.i64(1), a.t(2), a.t(3)); });
  def(env, e, "gather", [](Args& a) { return a.t(0).gather(a.i64(1), a.t(2)); });
  def(env, e, "scatter", [](Args& a) {
    return isTensorArgAt(a, 3) ? a.t(0).scatter(a.i64(1), a.t(2), a.t(3)) : a.t(0).scatter(a.i64(1), a.t(2), a.scalar(3));
  });
  def(env, e, "scatterAdd", [](Args& a) { return a.t(0).scatter_add(a.i64(1), a.t(2), a.t(3)); });
  // (t, [index tensors or null per leading dim])
  def(env, e, "index", [](Args& a) {
    Napi::Array arr = a.raw(1).As<Napi::Array>();
    c10::List<c10::optional<at::Tensor>> idx;
    for (uint32_t k = 0; k < arr.Length(); ++k) {
      Napi::Value v = arr.Get(k);
      if (v.IsNull() || v.IsUndefined()) idx.push_back(c10::nullopt);
      else idx.push_back(a.tensorIn(v, 1, k));
    }
    return at::index(a.t(0), idx);
  });
  def(env, e, "maskedFill", [](Args& a) {
    const at::Tensor& mask = boolMask(a.t(1), "masked_fill");
    return isTensorArgAt(a, 2) ? a.t(0).masked_fill(mask, a.t(2)) : a.t(0).masked_fill(mask, a.scalar(2));
  });
  def(env, e, "maskedSelect", [](Args& a) { return a.t(0).masked_select(boolMask(a.t(1), "masked_select")); });
  def(env, e, "tril", [](Args& a) { return a.t(0).tril(a.i64(1, 0)); });
  def(env, e, "triu", [](Args& a) { return a.t(0).triu(a.i64(1, 0)); });
  def(env, e, "flip", [](Args& a) { auto s = a.dims(1); return a.t(0).flip(asRef(s)); });
  def(env, e, "roll", [](Args& a) { auto s = a.dims(1); auto d = a.dims(2); return a.t(0).roll(asRef(s), asRef(d)); });
  def(env, e, "diagonal", [](Args& a) { return a.t(0).diagonal(a.i64(1, 0), a.i64(2, 0), a.i64(3, 1)); });
  def(env, e, "pad", [](Args& a) {
    auto p = a.dims(1);
    return at::constant_pad_nd(a.t(0), asRef(p), a.scalar(2, 0));
  });
}

}  // namespace tl
