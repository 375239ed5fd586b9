// c10d glue: one process group per process (torch.distributed's default group) over libtorch's own Store
// (TCPStore, FileStore) and backends (Gloo; NCCL where the libtorch has CUDA). No N-API here: the binding
// enqueues collectives on the JS thread (so every rank issues them in the same order) and waits for them
// on a worker thread.
#pragma once
#include <ATen/ATen.h>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <vector>

namespace tl {

struct DistInitOptions {
  std::string backend;     // "gloo" | "nccl"
  std::string storeKind;   // "tcp" | "file"
  std::string host;        // tcp: MASTER_ADDR
  int port = 0;            // tcp: MASTER_PORT
  std::string path;        // file: the FileStore's file
  int rank = 0;
  int worldSize = 1;
  int64_t timeoutMs = 1800000;  // store waits and every collective (PyTorch's default: 30 min)
  std::string ifname;      // gloo: the network interface to bind (GLOO_SOCKET_IFNAME); empty: from host
};

// A collective in flight: wait() blocks until it completes and throws its error (a peer that died or a
// timeout) with the op's name, this rank and the world size in the message.
class DistWork {
 public:
  virtual ~DistWork() = default;
  virtual void wait() = 0;
};

// An exception's message, without the C++ backtrace a c10::Error carries.
std::string errorText(const std::exception& e);

// Which backends this build can create ("gloo", "nccl"), and why not when empty.
std::vector<std::string> distBackends();
std::string distUnavailableReason();

// Creates the process's group (blocks: the store's rendezvous and the backend's connections to every peer).
void distInit(const DistInitOptions& o);
bool distIsInitialized();
int distRank();
int distWorldSize();
std::string distBackend();
// Drops the group (its threads end once in-flight work is done).
void distDestroy();

// op: "sum" | "product" | "min" | "max"; each tensor reduced in place by its own collective, issued in order.
std::unique_ptr<DistWork> distAllReduce(std::vector<at::Tensor> tensors, const std::string& op);
// Each tensor its own broadcast, issued in order.
std::unique_ptr<DistWork> distBroadcast(std::vector<at::Tensor> tensors, int64_t root);
// outputs: worldSize tensors shaped like input.
std::unique_ptr<DistWork> distAllGather(std::vector<at::Tensor> outputs, at::Tensor input);
std::unique_ptr<DistWork> distBarrier();

}  // namespace tl
