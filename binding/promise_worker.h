// Long native work off the JS thread: `work` runs on a libuv worker, `result` turns what it left into a
// JS value back on the JS thread, and the Promise settles with it (or with the error's text, no backtrace).
#pragma once
#include <napi.h>
#include <c10/util/Exception.h>
#include <functional>

namespace tl {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, const char* name, std::function<void()> work,
                std::function<Napi::Value(Napi::Env)> result)
      : Napi::AsyncWorker(env, "torch-lora:io"),
        name_(name),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        result_(std::move(result)) {}

  // Queues the work and hands back its Promise (the worker deletes itself when done).
  static Napi::Promise start(Napi::Env env, const char* name, std::function<void()> work,
                             std::function<Napi::Value(Napi::Env)> result) {
    auto* w = new PromiseWorker(env, name, std::move(work), std::move(result));
    Napi::Promise p = w->deferred_.Promise();
    w->Queue();
    return p;
  }

  void Execute() override {
    try {
      work_();
    } catch (const c10::Error& e) {
      SetError(name_ + ": " + e.what_without_backtrace());
    } catch (const std::exception& e) {
      SetError(name_ + ": " + e.what());
    }
  }
  void OnOK() override {
    try {
      deferred_.Resolve(result_(Env()));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::string name_;
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> result_;
};

}  // namespace tl
