// The JavaScript handle of one at::Tensor: a BigInt key into its environment's table of tensors.
//
// Why not an object (ObjectWrap or External): every such object costs V8 a weak global handle and a
// finalizer, created with the object and run after it is collected; that was most of the cost of a small
// op. A BigInt is a plain value. The key says which slot of the table owns the tensor and which
// generation of that slot it is, so a key used after dispose() (its slot since reused) is recognised as
// disposed, never as another tensor. The table owns each tensor until dispose() or, as a safety net, until
// lib/memory.ts's FinalizationRegistry sees the owning JS Tensor collected; what is left when the
// environment ends is freed with it.
//
// Key layout: bit 63 set (so a handle is never an int64 scalar), bits 56-62 the environment's tag
// (worker threads have their own tables), bits 32-55 the slot's generation, bits 0-31 the slot index.
#pragma once
#include <napi.h>
#include <ATen/ATen.h>
#include <atomic>
#include <cstdint>
#include <deque>
#include <vector>

namespace tl {

// Live tensors and the bytes they view, over every environment's table (what memory() reports), with
// the bytes on CUDA devices apart from the rest (CPU; meta tensors count 0).
struct LiveCounts {
  int64_t tensors = 0;
  int64_t bytes = 0;
  int64_t cudaBytes = 0;
};
LiveCounts liveCounts();

enum class HandleState { kLive, kDisposed, kNotAHandle };

// The tensors one JavaScript environment (the main thread, or one worker) holds handles to.
class TensorTable {
 public:
  // Registers with liveCounts(); the bytes of its tensors are reported to `env`'s garbage collector as
  // external memory, so that tensors JS forgot (freed only when the GC finalizes their owners) push V8
  // to collect: without it a loop of undisposed tensors grew to gigabytes while V8 saw a small heap.
  explicit TensorTable(napi_env env);
  ~TensorTable();  // the environment is going away: frees what is left
  TensorTable(const TensorTable&) = delete;
  TensorTable& operator=(const TensorTable&) = delete;

  // Takes ownership of a defined tensor; returns its key.
  uint64_t add(at::Tensor t);
  // kLive sets *out to the tensor (valid until the key is released; slots never move).
  HandleState find(uint64_t key, at::Tensor** out);
  // Frees the tensor of a live key; a disposed or foreign key is left alone. True if it freed one.
  bool release(uint64_t key);

 private:
  struct Slot {
    at::Tensor t;
    int64_t bytes = 0;
    uint32_t gen = 0;  // 24 bits used
    bool cuda = false;
  };
  void count(int64_t tensors, int64_t bytes, bool cuda);

  std::deque<Slot> slots_;  // a deque: references to slots stay valid as it grows
  std::vector<uint32_t> free_;
  uint64_t tag_;
  napi_env env_;
  // Written only by the table's own thread (plain stores, no locked read-modify-write on every op);
  // atomic so that liveCounts() may read them from any thread.
  std::atomic<int64_t> tensors_{0};
  std::atomic<int64_t> bytes_{0};
  std::atomic<int64_t> cudaBytes_{0};
  friend LiveCounts liveCounts();
};

class TensorHandle {
 public:
  // A new JS handle that owns `t`; an undefined tensor becomes `undefined` (PyTorch's None).
  static Napi::Value Wrap(Napi::Env env, at::Tensor t);
  // What `v` is: a live handle (then *out is its tensor), a disposed one, or no handle of this
  // environment at all. Cheap: this is the unwrap of every tensor argument.
  static HandleState Find(napi_env env, napi_value v, at::Tensor** out);
  // Is `v` a tensor handle (live or disposed)? Tells Tensor arguments from scalars.
  static bool IsHandle(napi_env env, napi_value v);
};

// native.dispose(handle), native.isDisposed(handle).
void registerTensorHandles(Napi::Env env, Napi::Object exports);

}  // namespace tl
