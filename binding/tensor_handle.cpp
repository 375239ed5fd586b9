#include "binding/tensor_handle.h"
#include <algorithm>
#include <mutex>
#include "binding/env_state.h"
#include "binding/op_bridge.h"

namespace tl {

namespace {

constexpr uint64_t kHandleBit = uint64_t{1} << 63;
constexpr uint32_t kGenMask = 0xffffff;

int64_t bytesOf(const at::Tensor& t) {
  if (t.device().is_meta()) return 0;  // meta tensors hold no memory
  return static_cast<int64_t>(t.numel()) * static_cast<int64_t>(t.element_size());
}

// Reads a BigInt that has the handle bit; false for anything else (numbers, objects, small BigInts).
// (No napi_typeof first: the read itself fails, cheaply and without a JS exception, on a non-BigInt.)
bool keyOf(napi_env env, napi_value v, uint64_t* key) {
  bool lossless;
  if (napi_get_value_bigint_uint64(env, v, key, &lossless) != napi_ok || !lossless) return false;
  return (*key & kHandleBit) != 0;
}

// Every live table (one per environment), for liveCounts(). Never destroyed: a table may outlive
// static destruction at exit.
struct Tables {
  std::mutex mutex;
  std::vector<const TensorTable*> all;
};
Tables& tables() {
  static Tables* t = new Tables();
  return *t;
}

}  // namespace

LiveCounts liveCounts() {
  LiveCounts c;
  std::lock_guard<std::mutex> lock(tables().mutex);
  for (const TensorTable* t : tables().all) {
    c.tensors += t->tensors_.load(std::memory_order_relaxed);
    c.bytes += t->bytes_.load(std::memory_order_relaxed);
    c.cudaBytes += t->cudaBytes_.load(std::memory_order_relaxed);
  }
  return c;
}

TensorTable::TensorTable(napi_env env) : env_(env) {
  static std::atomic<uint64_t> nextTag{0};
  tag_ = kHandleBit | ((nextTag.fetch_add(1) & 0x7f) << 56);
  std::lock_guard<std::mutex> lock(tables().mutex);
  tables().all.push_back(this);
}

TensorTable::~TensorTable() {
  {
    std::lock_guard<std::mutex> lock(tables().mutex);
    auto& all = tables().all;
    all.erase(std::remove(all.begin(), all.end(), this), all.end());
  }
  // Frees what JS left undisposed; the counts went with the table, and the environment's external
  // memory goes with the environment (no call into it while it is torn down).
  slots_.clear();
}

void TensorTable::count(int64_t tensors, int64_t bytes, bool cuda) {
  tensors_.store(tensors_.load(std::memory_order_relaxed) + tensors, std::memory_order_relaxed);
  if (bytes == 0) return;
  bytes_.store(bytes_.load(std::memory_order_relaxed) + bytes, std::memory_order_relaxed);
  if (cuda) cudaBytes_.store(cudaBytes_.load(std::memory_order_relaxed) + bytes, std::memory_order_relaxed);
  // GPU bytes too: forgotten GPU tensors must make the GC run as well. (A view reports the bytes it
  // views, as memory() does; that overstates shared storage, which only makes collection come sooner.)
  int64_t unused;
  napi_adjust_external_memory(env_, bytes, &unused);
}

uint64_t TensorTable::add(at::Tensor t) {
  uint32_t index;
  if (!free_.empty()) {
    index = free_.back();
    free_.pop_back();
  } else {
    index = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& s = slots_[index];
  s.bytes = bytesOf(t);
  s.cuda = t.is_cuda();
  s.t = std::move(t);
  count(1, s.bytes, s.cuda);
  return tag_ | (static_cast<uint64_t>(s.gen) << 32) | index;
}

HandleState TensorTable::find(uint64_t key, at::Tensor** out) {
  if ((key & (uint64_t{0xff} << 56)) != tag_) return HandleState::kNotAHandle;
  uint32_t index = static_cast<uint32_t>(key);
  if (index >= slots_.size()) return HandleState::kNotAHandle;
  Slot& s = slots_[index];
  if (s.gen != ((key >> 32) & kGenMask) || !s.t.defined()) return HandleState::kDisposed;
  *out = &s.t;
  return HandleState::kLive;
}

bool TensorTable::release(uint64_t key) {
  at::Tensor* t;
  if (find(key, &t) != HandleState::kLive) return false;
  Slot& s = slots_[static_cast<uint32_t>(key)];
  count(-1, -s.bytes, s.cuda);
  s.bytes = 0;
  s.gen = (s.gen + 1) & kGenMask;  // the old key now reads as disposed
  free_.push_back(static_cast<uint32_t>(key));
  s.t = at::Tensor();  // last: freeing may run arbitrary destructors
  return true;
}

Napi::Value TensorHandle::Wrap(Napi::Env env, at::Tensor t) {
  if (!t.defined()) return env.Undefined();
  uint64_t key = envState(env).tensors.add(std::move(t));
  napi_value v;
  NAPI_THROW_IF_FAILED(env, napi_create_bigint_uint64(env, key, &v), Napi::Value());
  return Napi::Value(env, v);
}

HandleState TensorHandle::Find(napi_env env, napi_value v, at::Tensor** out) {
  uint64_t key;
  if (!keyOf(env, v, &key)) return HandleState::kNotAHandle;
  return envState(Napi::Env(env)).tensors.find(key, out);
}

bool TensorHandle::IsHandle(napi_env env, napi_value v) {
  uint64_t key;
  return keyOf(env, v, &key);
}

void registerTensorHandles(Napi::Env env, Napi::Object e) {
  // Frees the tensor now; idempotent (a disposed handle is left alone).
  def(env, e, "dispose", [](Args& a) {
    uint64_t key;
    if (!keyOf(a.env(), a.raw(0), &key)) throw ArgError("argument 0 must be a Tensor");
    envState(a.env()).tensors.release(key);
  });
  def(env, e, "isDisposed", [](Args& a) {
    at::Tensor* t;
    HandleState s = TensorHandle::Find(a.env(), a.raw(0), &t);
    if (s == HandleState::kNotAHandle) throw ArgError("argument 0 must be a Tensor");
    return s == HandleState::kDisposed;
  });
}

}  // namespace tl
