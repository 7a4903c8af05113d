// The vCPU threads, created and sandboxed before the VM is built: each thread installs the vCPU
// seccomp filter as soon as it starts and then waits for its vCPU, so thread creation and
// filter compilation overlap with the KVM set-up on the main thread instead of delaying the
// first guest instruction.
#pragma once

#include <pthread.h>

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "cloister/common/result.h"

namespace cloister::vmm {

class VcpuThreads {
 public:
  // What a thread runs once dispatched: its index and whether its sandbox is in place (the
  // error of install_seccomp otherwise).
  using Body = std::function<void(std::size_t index, const Status& sandbox)>;

  // Starts `count` threads; with `seccomp` each installs the vCPU filter first.
  VcpuThreads(std::size_t count, bool seccomp);
  // Threads never dispatched end without running anything; all are joined.
  ~VcpuThreads();
  VcpuThreads(const VcpuThreads&) = delete;
  VcpuThreads& operator=(const VcpuThreads&) = delete;

  // Runs `body` on every thread (once; later calls do nothing).
  void dispatch(Body body);
  // Waits for every thread; threads not yet dispatched end without running anything.
  void join();
  std::size_t size() const { return threads_.size(); }
  pthread_t handle(std::size_t index) { return threads_[index].native_handle(); }

 private:
  void run(std::size_t index, bool seccomp);

  std::mutex mutex_;
  std::condition_variable cv_;
  bool released_ = false;
  Body body_;
  std::vector<std::thread> threads_;
};

}  // namespace cloister::vmm
