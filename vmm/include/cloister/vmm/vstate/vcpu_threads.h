// The vCPU threads, created before the VM is built so that thread creation overlaps with the
// KVM set-up on the main thread. Once the VM exists each thread installs its seccomp filter,
// whose ioctl rules name the VM's and its vCPU's descriptors, and only when every thread has
// done so does any of them run its vCPU: no vCPU runs guest code beside an unfiltered one.
#pragma once

#include <pthread.h>

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "cloister/common/result.h"

namespace cloister::vmm {

class VcpuThreads {
 public:
  // What each thread runs to sandbox itself, and then its work; both get the thread's index.
  using Sandbox = std::function<Status(std::size_t index)>;
  using Body = std::function<void(std::size_t index)>;

  // Starts `count` threads, which wait for sandbox().
  explicit VcpuThreads(std::size_t count);
  // Joins every thread (see join()).
  ~VcpuThreads();
  VcpuThreads(const VcpuThreads&) = delete;
  VcpuThreads& operator=(const VcpuThreads&) = delete;

  // Runs `sandbox` on every thread and waits for all of them. On success every thread waits for
  // run(); otherwise the first failure is returned with the thread's index, and the threads end
  // without running anything. Once only: a second call fails.
  Status sandbox(Sandbox sandbox);
  // Runs `body` on every thread, after sandbox() succeeded (otherwise, or a second time, nothing
  // happens).
  void run(Body body);
  // Waits for every thread: threads running a body finish it; threads still waiting end
  // without running anything.
  void join();
  std::size_t size() const { return threads_.size(); }
  pthread_t handle(std::size_t index) { return threads_[index].native_handle(); }

 private:
  void main(std::size_t index);

  std::mutex mutex_;
  std::condition_variable cv_;
  Sandbox sandbox_;
  std::vector<std::optional<Status>> sandboxed_;  // each thread's outcome
  Body body_;
  bool ended_ = false;  // join() or a failed sandbox(): threads still waiting end
  std::vector<std::thread> threads_;
};

}  // namespace cloister::vmm
