#include "cloister/vmm/vstate/vcpu_threads.h"

#include <algorithm>
#include <string>

namespace cloister::vmm {

VcpuThreads::VcpuThreads(std::size_t count) : sandboxed_(count) {
  threads_.reserve(count);
  for (std::size_t i = 0; i < count; ++i) threads_.emplace_back([this, i] { main(i); });
}

VcpuThreads::~VcpuThreads() {
  join();
}

void VcpuThreads::main(std::size_t index) {
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] { return sandbox_ || ended_; });
  if (!sandbox_) return;
  Sandbox sandbox = sandbox_;
  lock.unlock();
  Status sandboxed = sandbox(index);
  lock.lock();
  sandboxed_[index] = std::move(sandboxed);
  cv_.notify_all();
  cv_.wait(lock, [&] { return body_ || ended_; });
  if (!body_) return;
  Body body = body_;
  lock.unlock();
  body(index);
}

Status VcpuThreads::sandbox(Sandbox sandbox) {
  std::unique_lock lock(mutex_);
  if (sandbox_ || ended_) return Error("vCPU threads: sandbox() after sandbox() or join()");
  sandbox_ = std::move(sandbox);
  cv_.notify_all();
  cv_.wait(lock, [&] {
    return std::all_of(sandboxed_.begin(), sandboxed_.end(), [](const auto& s) { return s; });
  });
  for (std::size_t i = 0; i < sandboxed_.size(); ++i) {
    if (sandboxed_[i]->ok()) continue;
    ended_ = true;
    cv_.notify_all();
    return sandboxed_[i]->error().with_context("vCPU " + std::to_string(i));
  }
  return {};
}

void VcpuThreads::run(Body body) {
  {
    std::lock_guard lock(mutex_);
    if (!sandbox_ || body_ || ended_) return;
    body_ = std::move(body);
  }
  cv_.notify_all();
}

void VcpuThreads::join() {
  {
    std::lock_guard lock(mutex_);
    ended_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

}  // namespace cloister::vmm
