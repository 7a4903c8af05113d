// The VM controller: owns a built VM (hypervisor objects, guest memory, devices, vCPUs) and
// its lifecycle. One vCPU thread runs each vCPU's KVM_RUN loop and handles its exits; the
// API thread and the main thread drive the lifecycle through start/pause/resume/request_stop.
//
//   created --start--> running --pause--> paused --resume--> running
//   running|paused --request_stop (guest, API, signal, error)--> stopping --wait--> stopped
//   running|paused --snapshot--> paused (Firecracker's behaviour: resume or stop it afterwards)
//   running|paused --migrate, accepted by the destination--> stopping (the guest runs there);
//                  a failed migrate leaves it as it was
#pragma once

#include <pthread.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "cloister/vmm/boot/boot.h"
#include "cloister/vmm/config/config.h"
#include "cloister/vmm/devices/bus.h"
#include "cloister/vmm/devices/legacy.h"
#include "cloister/vmm/devices/net.h"
#include "cloister/vmm/fd.h"
#include "cloister/vmm/hypervisor/hypervisor.h"
#include "cloister/vmm/log.h"
#include "cloister/vmm/memory/guest_memory.h"
#include "cloister/vmm/metrics.h"
#include "cloister/vmm/snapshot/snapshot.h"
#include "cloister/vmm/tee/tee.h"
#include "cloister/vmm/vstate/stop.h"
#include "cloister/vmm/vstate/vcpu_threads.h"

namespace cloister::vmm {

enum class VmState { kCreated, kRunning, kPaused, kStopping, kStopped };
std::string_view vm_state_name(VmState state);

class Vmm final : public StopSink {
 public:
  // Everything a built VM consists of; see build_vmm() in builder.h, the only producer.
  struct Parts {
    VmConfig config;
    BootKind boot_kind = BootKind::kFirmware;
    std::unique_ptr<StopRelay> stop_relay = std::make_unique<StopRelay>();
    std::unique_ptr<Hypervisor> hypervisor;
    std::unique_ptr<Vm> vm;
    std::unique_ptr<GuestMemory> memory;
    // After the memory it writes into (a GetQuote answer still on its way is written, or
    // dropped, before the memory goes), before the buses whose doorbells call it.
    std::unique_ptr<TeeBackend> tee;
    Bus pio{"pio"};
    Bus mmio{"mmio"};
    std::shared_ptr<Serial> serial;
    // Readable fd whose bytes are console input (the console socket), or -1.
    int console_input_fd = -1;
    std::vector<std::unique_ptr<Vcpu>> vcpus;
    // One per vCPU, started before the VM was built; start() sandboxes them.
    std::unique_ptr<VcpuThreads> threads;
    // The virtio-net devices, in config order; owned by their transports on the MMIO bus.
    std::vector<VirtioNet*> nets;
    // Every virtio-mmio transport, in slot order (disks, nets, vsock), for snapshots.
    std::vector<std::shared_ptr<VirtioMmio>> virtio;
  };

  // Why `operation` (vm.snapshot, vm.migrate) cannot serve a guest with `tee`: its memory and
  // vCPU state (VMSA, TD state) are encrypted under a key the host never sees, and the vendors'
  // migration paths (an SEV-SNP migration agent, a TDX MigTD) are not supported. An
  // ErrorCode::kFailedPrecondition error for a confidential `tee`, nothing for tee none.
  static Status confidential_refusal(std::string_view operation, TeeKind tee);

  Vmm(Parts parts, Logger& log, Metrics& metrics);
  ~Vmm() override;
  Vmm(const Vmm&) = delete;
  Vmm& operator=(const Vmm&) = delete;

  // Has every vCPU thread install its seccomp filter (when the config asks for it), with the
  // ioctls of its vCPU and of the VM's interrupt lines, then hands each vCPU to its thread:
  // guest code runs from here on, and only when every vCPU thread is filtered. The other threads
  // (devices, API, quote worker, emu engines) filtered themselves when they started; the caller
  // filters its own thread before this (ThreadClass::kVmm with irq_ioctls()).
  Status start();
  // Parks every vCPU outside KVM_RUN; returns once all are parked.
  Status pause();
  // Runs the vCPUs again, and the virtio device threads a snapshot or migration parked.
  Status resume();
  // Writes a snapshot of the VM into `dir` (snapshot/snapshot.h): pauses the VM when it runs
  // (it stays paused afterwards), has every parked vCPU thread save its own state (the first
  // also the VM's interrupt controllers and clock), saves the UART, parks every virtio device
  // thread (a block request in flight completes first) and saves each virtio-mmio slot, then
  // writes the memory and state files from the calling thread. The device threads stay parked
  // until resume(). Refused with ErrorCode::kFailedPrecondition before anything is paused or
  // written for a confidential guest (confidential_refusal()) and for a VM that is not running
  // or paused.
  Status snapshot(const std::filesystem::path& dir);
  // Live migration to a `cloister-vmm receive` at `destination` ("unix:PATH" or
  // "tcp:HOST:PORT"; migration/stream.h is the stream). Refused as snapshot() is
  // (kFailedPrecondition) before anything is sent. Sends the memory the guest has touched, then
  // what it wrote since (migration/page_tracker.h), pauses the VM (stop-and-copy),
  // sends the pages and the snapshot state, and waits for the destination to accept: then this
  // VM stops (the guest runs on the destination) and the call succeeds. Any failure before the
  // destination accepted (no destination, the stream cut, a refusal) resumes a VM this call
  // paused and names the reason; kUnavailable for the destination's failures.
  Status migrate(const std::string& destination);
  // The hypervisor ioctls migrate() issues (the dirty log's), for the seccomp filter of the
  // thread that calls it; empty when migration uses no dirty log.
  std::vector<Ioctl> migration_ioctls() const;
  // Thread-safe; the first reason wins. Kicks every vCPU out of KVM_RUN.
  void request_stop(StopReason reason) override;
  // Blocks until a stop was requested and every vCPU thread has ended, then returns the reason.
  StopReason wait();
  // Readable (an eventfd) once a stop has been requested; for the main thread's poll loop.
  int stop_fd() const { return stop_event_.get(); }

  VmState state() const;
  // The config the VM was built from (for a restored VM: the snapshot's, with the restoring
  // process's API socket, console, logs and seccomp setting). Only the nets' rate limiters
  // change afterwards (set_net_rate_limiters), under the VM's lock: read the other keys.
  const VmConfig& config() const { return parts_.config; }
  nlohmann::json info() const;
  // The virtio-net devices: [{tap, mac, rx_rate_limiter, tx_rate_limiter}].
  nlohmann::json nets() const;
  // Replaces the rate limiters of the net on `tap` (unset: kept); false when there is none.
  bool set_net_rate_limiters(const std::string& tap, const std::optional<RateLimiterConfig>& rx,
                             const std::optional<RateLimiterConfig>& tx);
  Serial* serial() { return parts_.serial.get(); }
  // What raising a device interrupt issues (Vm::irq_ioctls): console input on the main thread
  // raises the UART's.
  std::vector<Ioctl> irq_ioctls() const { return parts_.vm->irq_ioctls(); }
  int console_input_fd() const { return parts_.console_input_fd; }
  Logger& log() { return log_; }
  Metrics& metrics() { return metrics_; }

 private:
  Status pause_locked(std::unique_lock<std::mutex>& lock);
  // mutex_ held, VM paused: has every parked vCPU thread save its state, parks and saves every
  // virtio device, then fills the rest of a SnapshotState but its memory fields.
  Result<SnapshotState> save_paused_locked(std::unique_lock<std::mutex>& lock,
                                           std::string_view operation);
  Status sandbox_vcpu_thread(std::size_t index);
  // mutex_ held, vCPU thread `index` parked: saves its state when a snapshot asked for it.
  void save_parked_vcpu(std::size_t index);
  void vcpu_thread(std::size_t index);
  void handle_io(const VcpuExit& exit);
  void handle_mmio(const VcpuExit& exit);
  void guest_fault(Vcpu& vcpu, const std::string& what);
  void kick_all_locked();

  Parts parts_;
  Logger& log_;
  Metrics& metrics_;
  Fd stop_event_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  VmState state_ = VmState::kCreated;
  std::optional<StopReason> stop_reason_;
  std::vector<bool> parked_;
  // A snapshot in progress asks every parked vCPU thread to save its state here.
  bool save_requested_ = false;
  std::vector<std::optional<Result<VcpuState>>> saved_vcpus_;
  std::optional<Result<VmPlatformState>> saved_vm_;
  std::size_t running_threads_ = 0;
  std::chrono::steady_clock::time_point started_at_;
};

}  // namespace cloister::vmm
