#include "cloister/vmm/vstate/vcpu_threads.h"

#include "cloister/vmm/seccomp/seccomp.h"

namespace cloister::vmm {

VcpuThreads::VcpuThreads(std::size_t count, bool seccomp) {
  threads_.reserve(count);
  for (std::size_t i = 0; i < count; ++i)
    threads_.emplace_back([this, i, seccomp] { run(i, seccomp); });
}

VcpuThreads::~VcpuThreads() {
  join();
}

void VcpuThreads::run(std::size_t index, bool seccomp) {
  Status sandbox;
  if (seccomp && seccomp_available()) sandbox = install_seccomp(ThreadClass::kVcpu);
  Body body;
  {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return released_; });
    body = body_;
  }
  if (body) body(index, sandbox);
}

void VcpuThreads::dispatch(Body body) {
  {
    std::lock_guard lock(mutex_);
    if (released_) return;
    body_ = std::move(body);
    released_ = true;
  }
  cv_.notify_all();
}

void VcpuThreads::join() {
  {
    std::lock_guard lock(mutex_);
    released_ = true;  // threads never dispatched end without running anything
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

}  // namespace cloister::vmm
