#include "src/distributed.h"

#include <mutex>
#include <stdexcept>
#include <sstream>

#include "src/torch_version.h"

// TL_HAVE_C10D: CMake found c10d's headers and the gloo headers ProcessGroupGloo.hpp includes (Debian ships
// them apart from libtorch, in libgloo-dev). USE_C10D_GLOO / USE_C10D_NCCL come from libtorch's own CMake
// targets: what its library was built with. TL_HAVE_NCCL_H: CMake found nccl.h (TL_NCCL below).
#if defined(TL_HAVE_C10D) && defined(USE_C10D_GLOO)
#define TL_DIST 1
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if defined(USE_C10D_NCCL) && defined(TL_HAVE_NCCL_H)
#define TL_NCCL 1
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#else
#define TL_NCCL 0
#endif
#if TL_TORCH_AT_LEAST(2, 0)
#include <torch/csrc/distributed/c10d/Backend.hpp>
#endif
#else
#define TL_DIST 0
#endif

namespace tl {

#if TL_DIST

namespace {

// 2.x split the ProcessGroup of 1.13 into a ProcessGroup front and the Backend that runs collectives;
// Gloo and NCCL are Backends there, and their collectives keep 1.13's signatures.
#if TL_TORCH_AT_LEAST(2, 0)
using BackendBase = c10d::Backend;
#else
using BackendBase = c10d::ProcessGroup;
#endif

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<BackendBase> backend;
  std::string backendName;
  int rank = 0;
  int worldSize = 1;
  int64_t timeoutMs = 0;
};

std::mutex mu;
std::shared_ptr<Group> group;  // the process's group; shared so that work in flight outlives destroy()

std::shared_ptr<Group> current(const char* op) {
  std::lock_guard<std::mutex> lock(mu);
  if (!group)
    throw std::runtime_error(std::string(op) + ": no process group; call dist.initProcessGroup() first");
  return group;
}

// One collective per tensor, issued in order; wait() waits for all of them.
class C10dWork : public DistWork {
 public:
  C10dWork(std::shared_ptr<Group> g, std::vector<c10::intrusive_ptr<c10d::Work>> w, std::string op)
      : g_(std::move(g)), w_(std::move(w)), op_(std::move(op)) {}
  void wait() override {
    for (auto& w : w_) {
      try {
        w->wait();
      } catch (const std::exception& e) {
        std::string what = e.what();
        if (auto* ce = dynamic_cast<const c10::Error*>(&e)) what = ce->what_without_backtrace();
        std::ostringstream os;
        os << op_ << " failed on rank " << g_->rank << " of " << g_->worldSize << " (" << g_->backendName
           << "): " << what << " -- another rank has probably exited or stopped answering (collective timeout "
           << g_->timeoutMs / 1000.0 << " s)";
        throw std::runtime_error(os.str());
      }
    }
  }

 private:
  std::shared_ptr<Group> g_;
  std::vector<c10::intrusive_ptr<c10d::Work>> w_;
  std::string op_;
};

bool isLoopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

}  // namespace

std::vector<std::string> distBackends() {
  std::vector<std::string> out{"gloo"};
#if TL_NCCL
  out.push_back("nccl");
#endif
  return out;
}
std::string distUnavailableReason() { return ""; }

void distInit(const DistInitOptions& o) {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (group) throw std::runtime_error("initProcessGroup: a process group is initialized already; call destroyProcessGroup() first");
  }
  if (o.worldSize < 1) throw std::runtime_error("initProcessGroup: worldSize must be >= 1, got " + std::to_string(o.worldSize));
  if (o.rank < 0 || o.rank >= o.worldSize)
    throw std::runtime_error("initProcessGroup: rank must be in [0, worldSize=" + std::to_string(o.worldSize) +
                             "), got " + std::to_string(o.rank));
  if (o.timeoutMs <= 0) throw std::runtime_error("initProcessGroup: timeout must be > 0 ms");
  auto timeout = std::chrono::milliseconds(o.timeoutMs);
  auto g = std::make_shared<Group>();
  g->rank = o.rank;
  g->worldSize = o.worldSize;
  g->timeoutMs = o.timeoutMs;
  g->backendName = o.backend;

  if (o.storeKind == "tcp") {
    if (o.port <= 0 || o.port > 65535)
      throw std::runtime_error("initProcessGroup: MASTER_PORT must be a port in 1..65535, got " + std::to_string(o.port));
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(o.port);
    so.isServer = o.rank == 0;  // rank 0 hosts the store, as init_method env:// does
    so.numWorkers = static_cast<std::size_t>(o.worldSize);
    so.waitWorkers = true;
    so.timeout = timeout;
    try {
      g->store = c10::make_intrusive<c10d::TCPStore>(o.host, so);
    } catch (const std::exception& e) {
      std::string what = e.what();
      if (auto* ce = dynamic_cast<const c10::Error*>(&e)) what = ce->what_without_backtrace();
      throw std::runtime_error("initProcessGroup: the TCP store at " + o.host + ":" + std::to_string(o.port) +
                               " (rank " + std::to_string(o.rank) + " of " + std::to_string(o.worldSize) +
                               (o.rank == 0 ? ", hosting it" : ", joining it") + ") failed: " + what);
    }
  } else if (o.storeKind == "file") {
    g->store = c10::make_intrusive<c10d::FileStore>(o.path, o.worldSize);
    g->store->setTimeout(timeout);
  } else {
    throw std::runtime_error("initProcessGroup: unknown store '" + o.storeKind + "' (tcp or file)");
  }

  if (o.backend == "gloo") {
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    if (!o.ifname.empty())
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(o.ifname));
    else if (o.storeKind == "tcp" && isLoopback(o.host))
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    g->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(g->store, o.rank, o.worldSize, opts);
  } else if (o.backend == "nccl") {
#if TL_NCCL
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    g->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(g->store, o.rank, o.worldSize, opts);
#else
    throw std::runtime_error("initProcessGroup: backend 'nccl' needs a libtorch built with CUDA and NCCL, and nccl.h at "
                             "build time (NCCL_HOME, or the nvidia-nccl pip wheel); this build has none (use backend 'gloo')");
#endif
  } else {
    throw std::runtime_error("initProcessGroup: unknown backend '" + o.backend + "' (gloo or nccl)");
  }
  std::lock_guard<std::mutex> lock(mu);
  if (group) throw std::runtime_error("initProcessGroup: a process group was initialized meanwhile");
  group = std::move(g);
}

bool distIsInitialized() {
  std::lock_guard<std::mutex> lock(mu);
  return group != nullptr;
}
int distRank() { return current("getRank")->rank; }
int distWorldSize() { return current("getWorldSize")->worldSize; }
std::string distBackend() { return current("getBackend")->backendName; }

void distDestroy() {
  std::shared_ptr<Group> g;
  {
    std::lock_guard<std::mutex> lock(mu);
    g.swap(group);
  }
}

std::unique_ptr<DistWork> distAllReduce(std::vector<at::Tensor> tensors, const std::string& op) {
  auto g = current("allReduce");
  c10d::AllreduceOptions opts;
  if (op == "sum") opts.reduceOp = c10d::ReduceOp::SUM;
  else if (op == "product") opts.reduceOp = c10d::ReduceOp::PRODUCT;
  else if (op == "min") opts.reduceOp = c10d::ReduceOp::MIN;
  else if (op == "max") opts.reduceOp = c10d::ReduceOp::MAX;
  else throw std::runtime_error("allReduce: unknown op '" + op + "' (sum, product, min, max or avg)");
  // (a vector given to c10d's allreduce is one input per local device, not several inputs: one call each)
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  for (auto& t : tensors) {
    std::vector<at::Tensor> one{t};
    works.push_back(g->backend->allreduce(one, opts));
  }
  return std::make_unique<C10dWork>(g, std::move(works), "allReduce");
}

std::unique_ptr<DistWork> distBroadcast(std::vector<at::Tensor> tensors, int64_t root) {
  auto g = current("broadcast");
  if (root < 0 || root >= g->worldSize)
    throw std::runtime_error("broadcast: src must be a rank in [0, " + std::to_string(g->worldSize) + "), got " +
                             std::to_string(root));
  c10d::BroadcastOptions opts;
  opts.rootRank = root;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  for (auto& t : tensors) {
    std::vector<at::Tensor> one{t};
    works.push_back(g->backend->broadcast(one, opts));
  }
  return std::make_unique<C10dWork>(g, std::move(works), "broadcast");
}

std::unique_ptr<DistWork> distAllGather(std::vector<at::Tensor> outputs, at::Tensor input) {
  auto g = current("allGather");
  if (static_cast<int64_t>(outputs.size()) != g->worldSize)
    throw std::runtime_error("allGather: needs one output tensor per rank (" + std::to_string(g->worldSize) + "), got " +
                             std::to_string(outputs.size()));
  for (size_t i = 0; i < outputs.size(); ++i)
    if (outputs[i].sizes() != input.sizes() || outputs[i].scalar_type() != input.scalar_type())
      throw std::runtime_error("allGather: output " + std::to_string(i) + " must have the input's shape and dtype");
  std::vector<std::vector<at::Tensor>> outs{std::move(outputs)};
  std::vector<at::Tensor> ins{std::move(input)};
  std::vector<c10::intrusive_ptr<c10d::Work>> works{g->backend->allgather(outs, ins)};
  return std::make_unique<C10dWork>(g, std::move(works), "allGather");
}

std::unique_ptr<DistWork> distBarrier() {
  auto g = current("barrier");
  std::vector<c10::intrusive_ptr<c10d::Work>> works{g->backend->barrier()};
  return std::make_unique<C10dWork>(g, std::move(works), "barrier");
}

#else  // no c10d in this build

namespace {
[[noreturn]] void unavailable(const char* op) {
  throw std::runtime_error(std::string(op) + ": " + distUnavailableReason());
}
}  // namespace

std::vector<std::string> distBackends() { return {}; }
std::string distUnavailableReason() {
  return "torch-lora was built without distributed support: its libtorch has no c10d Gloo backend, or the gloo "
         "headers were missing at build time (on Debian: apt-get install libgloo-dev, then npm run build:native)";
}
void distInit(const DistInitOptions&) { unavailable("initProcessGroup"); }
bool distIsInitialized() { return false; }
int distRank() { unavailable("getRank"); }
int distWorldSize() { unavailable("getWorldSize"); }
std::string distBackend() { unavailable("getBackend"); }
void distDestroy() {}
std::unique_ptr<DistWork> distAllReduce(std::vector<at::Tensor>, const std::string&) { unavailable("allReduce"); }
std::unique_ptr<DistWork> distBroadcast(std::vector<at::Tensor>, int64_t) { unavailable("broadcast"); }
std::unique_ptr<DistWork> distAllGather(std::vector<at::Tensor>, at::Tensor) { unavailable("allGather"); }
std::unique_ptr<DistWork> distBarrier() { unavailable("barrier"); }

#endif

}  // namespace tl
