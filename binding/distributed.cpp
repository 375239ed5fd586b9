// c10d process group and collectives: enqueued here on the JS thread (every rank issues them in program
// order), awaited on a libuv worker so the event loop keeps running while the peers catch up.
#include "binding/op_bridge.h"
#include "binding/promise_worker.h"
#include "src/distributed.h"

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
  def(env, e, "distBarrierAsync", [](Args& a) -> Napi::Value { return awaitWork(a.env(), "barrier", distBarrier()); });
}

}  // namespace tl
