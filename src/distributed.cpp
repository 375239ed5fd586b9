#include "src/distributed.h"

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <stdexcept>
#include <sstream>
#include <thread>

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

std::string errorText(const std::exception& e) {
  auto* ce = dynamic_cast<const c10::Error*>(&e);
  return ce ? ce->what_without_backtrace() : e.what();
}

#if TL_DIST

namespace {

// 2.x split the ProcessGroup of 1.13 into a ProcessGroup front and the Backend that runs collectives;
// Gloo and NCCL are Backends there, and their collectives keep 1.13's signatures.
#if TL_TORCH_AT_LEAST(2, 0)
using BackendBase = c10d::Backend;
#else
using BackendBase = c10d::ProcessGroup;
#endif

// Each rank's progress, in the store, so that a rank whose collective failed can name the peer that is
// behind or silent: "<collectives issued> <heartbeat> <last op>" under torch_lora/progress/<rank>, written
// by a thread of its own when the count changes (at most every 5 ms; every second on a FileStore, which
// appends every write to its file) and at least every second.
struct Progress {
  c10::intrusive_ptr<c10d::Store> store;
  std::string key;
  std::atomic<int64_t> seq{0};
  std::mutex mu;
  std::condition_variable cv;
  std::string lastOp;
  bool stop = false;
  std::chrono::milliseconds minGap{5};  // between two writes

  int64_t next(const char* op) {
    int64_t s;
    {
      std::lock_guard<std::mutex> lock(mu);
      lastOp = op;
      s = ++seq;
    }
    cv.notify_one();  // published at once (the publisher coalesces a burst), so a rank that stops is not seen behind
    return s;
  }
};

constexpr auto kHeartbeat = std::chrono::milliseconds(1000);

// Detached: a store that does not answer (its host hung) must not hold up the process's exit.
void publishProgress(std::shared_ptr<Progress> p) {
  int64_t published = -1;
  int64_t beat = 0;
  auto last = std::chrono::steady_clock::now() - kHeartbeat;
  std::unique_lock<std::mutex> lock(p->mu);
  while (!p->stop) {
    int64_t s = p->seq.load();
    auto now = std::chrono::steady_clock::now();
    if (s != published || now - last >= kHeartbeat) {
      std::string v = std::to_string(s) + " " + std::to_string(++beat) + " " + p->lastOp;
      lock.unlock();
      try {
        p->store->set(p->key, std::vector<uint8_t>(v.begin(), v.end()));
      } catch (...) {
        return;  // the store is gone (its host exited): nothing left to tell
      }
      lock.lock();
      published = s;
      last = now;
      if (p->cv.wait_for(lock, p->minGap, [&] { return p->stop; })) break;
    }
    p->cv.wait_for(lock, kHeartbeat, [&] { return p->stop || p->seq.load() != published; });
  }
}

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<BackendBase> backend;
  std::string backendName;
  int rank = 0;
  int worldSize = 1;
  int64_t timeoutMs = 0;
  std::shared_ptr<Progress> progress = std::make_shared<Progress>();

  ~Group() {
    {
      std::lock_guard<std::mutex> lock(progress->mu);
      progress->stop = true;
    }
    progress->cv.notify_all();
  }
};

constexpr auto kSilentFor = std::chrono::milliseconds(2500);
constexpr auto kDiagnoseWithin = std::chrono::milliseconds(7000);

std::string progressKey(int rank) { return "torch_lora/progress/" + std::to_string(rank); }

struct Seen {
  bool present = false;
  int64_t seq = 0;
  int64_t beat = 0;
  std::string op;
};

std::vector<Seen> readProgress(c10d::Store& store, int worldSize, int self) {
  std::vector<Seen> out(worldSize);
  for (int r = 0; r < worldSize; ++r) {
    if (r == self || !store.check({progressKey(r)})) continue;
    auto raw = store.get(progressKey(r));
    std::istringstream is(std::string(raw.begin(), raw.end()));
    Seen s;
    s.present = static_cast<bool>(is >> s.seq >> s.beat);
    std::getline(is >> std::ws, s.op);
    out[r] = s;
  }
  return out;
}

// Which peers are behind collective `seq` or silent (no heartbeat for kSilentFor), read from the store;
// bounded in time, as the store's host may be the hung rank.
std::string diagnosePeers(const std::shared_ptr<Group>& g, int64_t seq) {
  auto report = std::make_shared<std::promise<std::string>>();
  auto answer = report->get_future();
  c10::intrusive_ptr<c10d::Store> store = g->store;
  int world = g->worldSize, self = g->rank;
  std::thread([report, store, world, self, seq] {
    try {
      auto first = readProgress(*store, world, self);
      std::this_thread::sleep_for(kSilentFor);
      auto then = readProgress(*store, world, self);
      std::ostringstream os;
      int named = 0;
      for (int r = 0; r < world; ++r) {
        if (r == self) continue;
        const Seen& s = then[r];
        bool silent = !s.present || !first[r].present || s.beat == first[r].beat;
        if (!s.present) {
          os << (named++ ? "; " : "") << "rank " << r << " never reported progress (it died or hung at the start)";
        } else if (s.seq < seq) {
          os << (named++ ? "; " : "") << "rank " << r << " has not reached this collective (#" << seq << "; its last is #"
             << s.seq << (s.op.empty() ? "" : ", " + s.op) << ")"
             << (silent ? " and has stopped answering: it is hung or dead" : ": it is stuck before it");
        } else if (silent) {
          os << (named++ ? "; " : "") << "rank " << r << " has stopped answering (no heartbeat for "
             << std::chrono::duration_cast<std::chrono::milliseconds>(kSilentFor).count() / 1000.0 << " s): it is hung or dead";
        }
      }
      report->set_value(named ? os.str() : "every other rank is alive and past this collective (a network failure?)");
    } catch (const std::exception& e) {
      report->set_value("the store (hosted by rank 0) failed: " + errorText(e) + " -- rank 0 has probably exited or hung");
    }
  }).detach();
  if (answer.wait_for(kDiagnoseWithin) != std::future_status::ready)
    return "the store (hosted by rank 0) did not answer within " +
           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(kDiagnoseWithin).count()) +
           " s: rank 0 is probably hung";
  return answer.get();
}

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
  C10dWork(std::shared_ptr<Group> g, std::string op) : g_(std::move(g)), op_(std::move(op)) {}
  // Issues one collective (numbered in this rank's sequence).
  template <class F>
  void add(F&& issue) {
    seq_.push_back(g_->progress->next(op_.c_str()));
    w_.push_back(issue());
  }
  void wait() override {
    for (size_t i = 0; i < w_.size(); ++i) {
      try {
        w_[i]->wait();
      } catch (const std::exception& e) {
        std::ostringstream os;
        os << op_ << " failed on rank " << g_->rank << " of " << g_->worldSize << " (" << g_->backendName
           << ", collective #" << seq_[i] << ", timeout " << g_->timeoutMs / 1000.0 << " s): " << errorText(e) << " -- "
           << diagnosePeers(g_, seq_[i]);
        throw std::runtime_error(os.str());
      }
    }
  }

 private:
  std::shared_ptr<Group> g_;
  std::string op_;
  std::vector<c10::intrusive_ptr<c10d::Work>> w_;
  std::vector<int64_t> seq_;
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
      throw std::runtime_error("initProcessGroup: the TCP store at " + o.host + ":" + std::to_string(o.port) +
                               " (rank " + std::to_string(o.rank) + " of " + std::to_string(o.worldSize) +
                               (o.rank == 0 ? ", hosting it" : ", joining it") + ") failed: " + errorText(e));
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
  g->progress->store = g->store;
  g->progress->key = progressKey(o.rank);
  if (o.storeKind == "file") g->progress->minGap = kHeartbeat;
  std::lock_guard<std::mutex> lock(mu);
  if (group) throw std::runtime_error("initProcessGroup: a process group was initialized meanwhile");
  std::thread(publishProgress, g->progress).detach();
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
  auto work = std::make_unique<C10dWork>(g, "allReduce");
  for (auto& t : tensors) {
    std::vector<at::Tensor> one{t};
    work->add([&] { return g->backend->allreduce(one, opts); });
  }
  return work;
}

std::unique_ptr<DistWork> distBroadcast(std::vector<at::Tensor> tensors, int64_t root) {
  auto g = current("broadcast");
  if (root < 0 || root >= g->worldSize)
    throw std::runtime_error("broadcast: src must be a rank in [0, " + std::to_string(g->worldSize) + "), got " +
                             std::to_string(root));
  c10d::BroadcastOptions opts;
  opts.rootRank = root;
  auto work = std::make_unique<C10dWork>(g, "broadcast");
  for (auto& t : tensors) {
    std::vector<at::Tensor> one{t};
    work->add([&] { return g->backend->broadcast(one, opts); });
  }
  return work;
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
  auto work = std::make_unique<C10dWork>(g, "allGather");
  work->add([&] { return g->backend->allgather(outs, ins); });
  return work;
}

std::unique_ptr<DistWork> distBarrier() {
  auto g = current("barrier");
  auto work = std::make_unique<C10dWork>(g, "barrier");
  work->add([&] { return g->backend->barrier(); });
  return work;
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
