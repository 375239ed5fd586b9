// c10d process group and collectives: enqueued here on the JS thread (every rank issues them in program
// order), awaited on a libuv worker so the event loop keeps running while the peers catch up.
#include "binding/op_bridge.h"
#include "binding/promise_worker.h"
#include "src/distributed.h"
#include "src/grad_reducer.h"

#include <map>
#include <mutex>

namespace tl {

namespace {

Napi::Value strings(Napi::Env env, const std::vector<std::string>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (uint32_t i = 0; i < v.size(); ++i) a.Set(i, Napi::String::New(env, v[i]));
  return a;
}

DistInitOptions initOptions(const Args& a, size_t i) {
  if (!a.raw(i).IsObject()) throw ArgError("argument " + std::to_string(i) + " must be an options object");
  Napi::Object o = a.raw(i).As<Napi::Object>();
  auto str = [&](const char* k) { return o.Has(k) && o.Get(k).IsString() ? o.Get(k).As<Napi::String>().Utf8Value() : std::string(); };
  auto num = [&](const char* k, double d) { return o.Has(k) && o.Get(k).IsNumber() ? o.Get(k).As<Napi::Number>().DoubleValue() : d; };
  DistInitOptions r;
  r.backend = str("backend");
  r.storeKind = str("store");
  r.host = str("host");
  r.path = str("path");
  r.ifname = str("ifname");
  r.port = static_cast<int>(intOf(num("port", 0), "port"));
  r.rank = static_cast<int>(intOf(num("rank", 0), "rank"));
  r.worldSize = static_cast<int>(intOf(num("worldSize", 1), "worldSize"));
  r.timeoutMs = intOf(num("timeoutMs", 1800000), "timeoutMs");
  return r;
}

// Gloo and NCCL read tensors as flat dense memory.
std::vector<at::Tensor> dense(std::vector<at::Tensor> ts, const char* op) {
  for (size_t i = 0; i < ts.size(); ++i)
    if (!ts[i].is_contiguous() || ts[i].is_sparse())
      throw ArgError(std::string(op) + ": tensor " + std::to_string(i) + " must be dense and contiguous (call contiguous() first)");
  return ts;
}

// Argument i: an array of arrays of tensors (a GradientSync's buckets).
std::vector<std::vector<at::Tensor>> tensorBuckets(const Args& a, size_t i) {
  if (!a.raw(i).IsArray()) throw ArgError("argument " + std::to_string(i) + " must be an array of arrays of Tensors");
  Napi::Array outer = a.raw(i).As<Napi::Array>();
  std::vector<std::vector<at::Tensor>> out;
  for (uint32_t b = 0; b < outer.Length(); ++b) {
    Napi::Value inner = outer.Get(b);
    if (!inner.IsArray()) throw ArgError("argument " + std::to_string(i) + "[" + std::to_string(b) + "] must be an array of Tensors");
    Napi::Array arr = inner.As<Napi::Array>();
    std::vector<at::Tensor> bucket;
    for (uint32_t k = 0; k < arr.Length(); ++k) bucket.push_back(a.tensorIn(arr.Get(k), i, b));
    out.push_back(std::move(bucket));
  }
  return out;
}

// GradReducers by id: the JS GradientSync holds the id and frees it.
std::mutex reducersMu;
std::map<int64_t, std::shared_ptr<GradReducer>> reducers;
int64_t nextReducer = 1;

std::shared_ptr<GradReducer> reducer(int64_t id) {
  std::lock_guard<std::mutex> lock(reducersMu);
  auto it = reducers.find(id);
  if (it == reducers.end()) throw ArgError("GradientSync: this gradient reducer was disposed");
  return it->second;
}

Napi::Promise awaitWork(Napi::Env env, const char* name, std::unique_ptr<DistWork> w) {
  std::shared_ptr<DistWork> work(std::move(w));
  return PromiseWorker::start(env, name, [work] { work->wait(); }, [](Napi::Env e) { return e.Undefined(); });
}

}  // namespace

void registerDistributed(Napi::Env env, Napi::Object e) {
  def(env, e, "distBackends", [](Args& a) { return strings(a.env(), distBackends()); });
  def(env, e, "distUnavailableReason", [](Args&) { return distUnavailableReason(); });
  // ({ backend, store, host, port, path, rank, worldSize, timeoutMs, ifname })
  def(env, e, "distInitAsync", [](Args& a) -> Napi::Value {
    auto o = initOptions(a, 0);
    return PromiseWorker::start(a.env(), "initProcessGroup", [o] { distInit(o); }, [](Napi::Env e) { return e.Undefined(); });
  });
  def(env, e, "distIsInitialized", [](Args&) { return distIsInitialized(); });
  def(env, e, "distRank", [](Args&) { return static_cast<int64_t>(distRank()); });
  def(env, e, "distWorldSize", [](Args&) { return static_cast<int64_t>(distWorldSize()); });
  def(env, e, "distBackend", [](Args&) { return distBackend(); });
  def(env, e, "distDestroy", [](Args&) { distDestroy(); });
  // (tensors, op)
  def(env, e, "distAllReduceAsync", [](Args& a) -> Napi::Value {
    return awaitWork(a.env(), "allReduce", distAllReduce(dense(a.tensors(0), "allReduce"), a.str(1)));
  });
  // (tensors, src)
  def(env, e, "distBroadcastAsync", [](Args& a) -> Napi::Value {
    return awaitWork(a.env(), "broadcast", distBroadcast(dense(a.tensors(0), "broadcast"), a.i64(1)));
  });
  // (outputs, input)
  def(env, e, "distAllGatherAsync", [](Args& a) -> Napi::Value {
    return awaitWork(a.env(), "allGather", distAllGather(dense(a.tensors(0), "allGather"), dense({a.t(1)}, "allGather")[0]));
  });
  // (buckets) -> id: hooks on the parameters' gradient accumulators (DDP's reducer)
  def(env, e, "distReducerNew", [](Args& a) -> int64_t {
    auto r = std::make_shared<GradReducer>(tensorBuckets(a, 0));
    std::lock_guard<std::mutex> lock(reducersMu);
    reducers[nextReducer] = std::move(r);
    return nextReducer++;
  });
  // (id, sync): before each backward of a step; sync for the last
  def(env, e, "distReducerPrepare", [](Args& a) { reducer(a.i64(0))->prepare(a.b(1)); });
  // (id): the buckets backward left issued, then every sum written into .grad
  def(env, e, "distReducerFinishAsync", [](Args& a) -> Napi::Value {
    return awaitWork(a.env(), "allReduce", reducer(a.i64(0))->finish());
  });
  def(env, e, "distReducerIssuedDuringBackward", [](Args& a) { return reducer(a.i64(0))->issuedDuringBackward(); });
  def(env, e, "distReducerFree", [](Args& a) {
    std::lock_guard<std::mutex> lock(reducersMu);
    reducers.erase(a.i64(0));
  });
  def(env, e, "distBarrierAsync", [](Args& a) -> Napi::Value { return awaitWork(a.env(), "barrier", distBarrier()); });
}

}  // namespace tl
