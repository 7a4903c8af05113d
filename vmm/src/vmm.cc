#include "cloister/vmm/vmm.h"

#include <linux/kvm.h>
#include <signal.h>
#include <sys/eventfd.h>

#include <algorithm>

#include "cloister/common/hex.h"
#include "cloister/vmm/format.h"
#include "cloister/vmm/migration/page_tracker.h"
#include "cloister/vmm/migration/transport.h"
#include "cloister/vmm/seccomp/seccomp.h"
#include "cloister/vmm/snapshot/snapshot.h"
#include "cloister/vmm/version.h"

namespace cloister::vmm {
namespace {

// The signal that kicks a vCPU thread out of KVM_RUN; its handler does nothing, the EINTR is
// the point.
int kick_signal() {
  return SIGRTMIN;
}

void install_kick_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
    sigaction(kick_signal(), &sa, nullptr);
  });
}

constexpr unsigned kMaxLoggedUnassigned = 20;

// How long a migration source waits on a destination that stops reading or answering.
constexpr std::chrono::milliseconds kMigrationTimeout{10000};

// Pre-copy passes stop once a pass sends at most this much (what the guest dirtied during the
// previous pass: the stop-and-copy will send about as much while the VM is paused), or after
// kMigrationMaxPrecopyPasses when the guest dirties memory faster than it is sent.
constexpr std::uint64_t kPrecopyConvergedBytes = 1u << 20;

// A fault message with the hypervisor's own account appended, when it gives one.
std::string with_detail(std::string what, const VcpuExit& exit) {
  return exit.detail.empty() ? what : what + ": " + exit.detail;
}

}  // namespace

std::string_view vm_state_name(VmState state) {
  switch (state) {
    case VmState::kCreated:
      return "created";
    case VmState::kRunning:
      return "running";
    case VmState::kPaused:
      return "paused";
    case VmState::kStopping:
      return "stopping";
    case VmState::kStopped:
      return "stopped";
  }
  return "unknown";
}

Vmm::Vmm(Parts parts, Logger& log, Metrics& metrics)
    : parts_(std::move(parts)),
      log_(log),
      metrics_(metrics),
      stop_event_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  parked_.assign(parts_.vcpus.size(), false);
  parts_.stop_relay->set_target(this);
  install_kick_handler();  // here, while rt_sigaction is allowed: no filter permits it
}

Vmm::~Vmm() {
  parts_.stop_relay->set_target(nullptr);
  request_stop({StopKind::kRequested, 0, "VMM destroyed"});
  parts_.threads->join();
}

VmState Vmm::state() const {
  std::lock_guard lock(mutex_);
  return state_;
}

Status Vmm::start() {
  if (!stop_event_.valid()) return os_error("eventfd for stop notifications");
  {
    std::lock_guard lock(mutex_);
    if (state_ != VmState::kCreated)
      return Error("start: the VM is " + std::string(vm_state_name(state_)));
  }
  CLOISTER_CHECK_OK(
      parts_.threads->sandbox([this](std::size_t index) { return sandbox_vcpu_thread(index); }));
  std::lock_guard lock(mutex_);
  state_ = VmState::kRunning;
  started_at_ = std::chrono::steady_clock::now();
  running_threads_ = parts_.vcpus.size();
  parts_.threads->run([this](std::size_t index) { vcpu_thread(index); });
  log_.info("vm.started", "VM running", {{"vcpus", parts_.vcpus.size()}});
  return {};
}

Status Vmm::sandbox_vcpu_thread(std::size_t index) {
  if (!parts_.config.seccomp || !seccomp_available()) return {};
  SeccompScope scope;
  scope.ioctls = parts_.vcpus[index]->run_ioctls();
  for (const Ioctl& irq : parts_.vm->irq_ioctls()) scope.ioctls.push_back(irq);
  // The first vCPU thread also saves the VM's state for snapshots.
  if (index == 0)
    for (const Ioctl& state : parts_.vm->state_ioctls()) scope.ioctls.push_back(state);
  return install_seccomp(ThreadClass::kVcpu, scope);
}

void Vmm::kick_all_locked() {
  for (std::size_t i = 0; i < parts_.vcpus.size(); ++i) {
    parts_.vcpus[i]->request_exit();
    if (state_ != VmState::kCreated) pthread_kill(parts_.threads->handle(i), kick_signal());
  }
}

Status Vmm::pause() {
  std::unique_lock lock(mutex_);
  return pause_locked(lock);
}

Status Vmm::pause_locked(std::unique_lock<std::mutex>& lock) {
  if (state_ != VmState::kRunning)
    return Error(ErrorCode::kFailedPrecondition,
                 "pause: the VM is " + std::string(vm_state_name(state_)));
  state_ = VmState::kPaused;
  kick_all_locked();
  cv_.wait(lock, [&] {
    if (state_ != VmState::kPaused) return true;
    std::size_t parked = static_cast<std::size_t>(std::count(parked_.begin(), parked_.end(), true));
    return parked == running_threads_;
  });
  if (state_ != VmState::kPaused) return Error("pause: the VM stopped while pausing");
  log_.info("vm.paused", "every vCPU parked");
  return {};
}

Status Vmm::resume() {
  std::lock_guard lock(mutex_);
  if (state_ != VmState::kPaused)
    return Error(ErrorCode::kFailedPrecondition,
                 "resume: the VM is " + std::string(vm_state_name(state_)));
  for (const auto& transport : parts_.virtio) transport->resume_device();
  state_ = VmState::kRunning;
  cv_.notify_all();
  log_.info("vm.resumed", "vCPUs running again");
  return {};
}

Status Vmm::confidential_refusal(std::string_view operation, TeeKind tee) {
  if (tee == TeeKind::kNone) return {};
  const std::string head = std::string(operation) + ": refused for a confidential guest (tee " +
                           std::string(tee_name(tee)) + "): ";
  const std::string tail =
      "; re-launch the guest and re-attest it instead (docs/confidential-lifecycle.md)";
  if (is_snp(tee))
    return Error(ErrorCode::kFailedPrecondition,
                 head +
                     "its memory and VMSAs are encrypted under a key the host never sees, so the "
                     "host can neither save nor restore them, and SEV-SNP migration needs a "
                     "migration agent in the guest (SEV-SNP ABI, guest migration), which Cloister "
                     "does not support" +
                     tail);
  return Error(ErrorCode::kFailedPrecondition,
               head +
                   "its memory and TD state are encrypted under a key the host never sees, so the "
                   "host can neither save nor restore them, and TDX migration needs a migration "
                   "TD (MigTD, Intel TDX Migration specification), which Cloister does not "
                   "support" +
                   tail);
}

Status Vmm::migrate(const std::string& destination) {
  const auto began = std::chrono::steady_clock::now();
  CLOISTER_CHECK_OK(confidential_refusal("vm.migrate", parts_.config.tee.kind));
  {
    std::lock_guard lock(mutex_);
    if (state_ != VmState::kRunning && state_ != VmState::kPaused)
      return Error(ErrorCode::kFailedPrecondition,
                   "vm.migrate: the VM is " + std::string(vm_state_name(state_)) +
                       "; only a running or paused VM can be migrated");
  }
  // Set once the VMM is asked to stop (SIGTERM, the guest powering off): the sender gives up
  // its waits on the destination, so this API handler never holds the VMM's exit.
  const auto stopping = [this] {
    std::lock_guard lock(mutex_);
    return stop_reason_.has_value();
  };
  // `may_run_there`: the destination had the whole stream and its answer is unknown, so the
  // guest stays paused here (resuming could run it twice, on one disk).
  auto failed = [&](const Error& error, bool paused_here, bool may_run_there = false) {
    const bool resumed = paused_here && !may_run_there && !stopping() && resume().ok();
    log_.warn("vm.migration_failed", error.message(), {{"destination", destination}});
    return Error(error.code(),
                 "vm.migrate: " + error.message() +
                     (stopping()      ? "; the VMM stops"
                      : resumed       ? "; the VM was resumed here"
                      : may_run_there ? "; the VM stays paused here: the destination may be "
                                        "running it (check there before vm.resume here)"
                      : paused_here   ? "; the VM stays paused here"
                                      : "; the VM runs on here"));
  };
  auto sender = MigrationSender::connect(destination, kMigrationTimeout, stopping);
  if (!sender) return failed(sender.error(), false);
  const std::vector<SnapshotRegion> layout = memory_layout(*parts_.memory);
  const std::uint64_t memory_bytes =
      layout.empty() ? 0 : layout.back().file_offset + layout.back().size;

  if (auto st = sender->send_header(memory_bytes); !st) return failed(st.error(), false);
  auto tracker = make_page_tracker(*parts_.vm, *parts_.memory);
  if (!tracker) return failed(tracker.error(), false);
  const auto send = [&](std::uint64_t offset, const std::uint8_t* pages, std::uint64_t size) {
    return sender->send_pages(offset, pages, size);
  };

  // Pre-copy while the guest runs: each pass sends what changed since the previous one.
  int passes = 0;
  std::uint64_t precopy_bytes = 0;
  while (state() == VmState::kRunning && passes < kMigrationMaxPrecopyPasses) {
    auto sent = (*tracker)->pass(send);
    if (!sent) return failed(sent.error(), false);
    ++passes;
    precopy_bytes += *sent;
    if (*sent <= kPrecopyConvergedBytes) break;
  }

  // Stop-and-copy: pause, send the rest and the state, and wait for the destination.
  bool paused_here = false;
  SnapshotState state;
  const auto stopped_at = std::chrono::steady_clock::now();
  {
    std::unique_lock lock(mutex_);
    if (state_ == VmState::kRunning) {
      if (auto st = pause_locked(lock); !st) {
        lock.unlock();  // failed() takes mutex_ to ask whether the VMM stops
        return failed(st.error(), false);
      }
      paused_here = true;
    }
    auto saved = save_paused_locked(lock, "vm.migrate");
    if (!saved) {
      lock.unlock();
      return failed(saved.error(), paused_here);
    }
    state = std::move(*saved);
  }
  state.memory = layout;
  state.memory_file_bytes = memory_bytes;
  auto final_bytes = (*tracker)->pass(send);
  if (!final_bytes) return failed(final_bytes.error(), paused_here);
  if (auto st = sender->send_state(serialize_state(state)); !st)
    return failed(st.error(), paused_here);
  if (auto st = sender->await_accepted(); !st)
    return failed(st.error(), paused_here, !sender->refused());
  const auto now = std::chrono::steady_clock::now();
  const auto ms = [](auto d) { return std::chrono::duration<double, std::milli>(d).count(); };
  log_.info("vm.migrated", "the guest runs on the destination; this VMM stops",
            {{"destination", destination},
             {"tracker", std::string((*tracker)->name())},
             {"bytes_sent", sender->bytes_sent()},
             {"precopy_passes", passes},
             {"precopy_bytes", precopy_bytes},
             {"stop_and_copy_bytes", *final_bytes},
             {"total_ms", ms(now - began)},
             {"downtime_ms", ms(now - stopped_at)}});
  request_stop({StopKind::kRequested, 0, "migrated to " + destination});
  return {};
}

std::vector<Ioctl> Vmm::migration_ioctls() const {
  return parts_.vm->dirty_log_ioctls();
}

void Vmm::save_parked_vcpu(std::size_t index) {
  if (!save_requested_ || saved_vcpus_[index]) return;
  saved_vcpus_[index] = parts_.vcpus[index]->save_state();
  if (index == 0) saved_vm_ = parts_.vm->save_state();
  cv_.notify_all();
}

Result<SnapshotState> Vmm::save_paused_locked(std::unique_lock<std::mutex>& lock,
                                              std::string_view operation) {
  const std::string op(operation);
  SnapshotState state;
  saved_vcpus_.assign(parts_.vcpus.size(), std::nullopt);
  saved_vm_.reset();
  save_requested_ = true;
  cv_.notify_all();
  cv_.wait(lock, [&] {
    return state_ != VmState::kPaused ||
           std::all_of(saved_vcpus_.begin(), saved_vcpus_.end(),
                       [](const auto& saved) { return saved.has_value(); });
  });
  save_requested_ = false;
  if (state_ != VmState::kPaused)
    return Error(ErrorCode::kFailedPrecondition, op + ": the VM stopped while saving");
  for (std::size_t i = 0; i < saved_vcpus_.size(); ++i) {
    if (!*saved_vcpus_[i])
      return saved_vcpus_[i]->error().with_context(op + ": vCPU " + std::to_string(i));
    state.vcpus.push_back(std::move(**saved_vcpus_[i]));
  }
  if (!saved_vm_ || !*saved_vm_)
    return saved_vm_ ? saved_vm_->error().with_context(op + ": VM state")
                     : Error(ErrorCode::kInternal, op + ": the VM state was not saved");
  state.vm = std::move(**saved_vm_);
  state.config = parts_.config;
  // Memory and devices stay still from here on: every vCPU is parked, so is every virtio device
  // thread once saved, and resume() arrives through the API thread, which is the one saving.
  for (std::size_t slot = 0; slot < parts_.virtio.size(); ++slot)
    state.virtio.push_back(parts_.virtio[slot]->save(static_cast<std::uint32_t>(slot)));
  state.vmm_version = kVmmVersion;
  state.hypervisor = std::string(parts_.hypervisor->name());
  state.boot_kind = parts_.boot_kind;
  state.serial = parts_.serial->save();
  return state;
}

Status Vmm::snapshot(const std::filesystem::path& dir) {
  const auto began = std::chrono::steady_clock::now();
  CLOISTER_CHECK_OK(confidential_refusal("vm.snapshot", parts_.config.tee.kind));
  SnapshotState state;
  {
    std::unique_lock lock(mutex_);
    if (state_ == VmState::kRunning) {
      CLOISTER_CHECK_OK(pause_locked(lock));
    } else if (state_ != VmState::kPaused) {
      return Error(ErrorCode::kFailedPrecondition,
                   "vm.snapshot: the VM is " + std::string(vm_state_name(state_)) +
                       "; only a running or paused VM can be snapshotted");
    }
    CLOISTER_TRY(state, save_paused_locked(lock, "vm.snapshot"));
  }
  if (auto written = write_snapshot(dir, *parts_.memory, state); !written)
    return written.error().with_context("vm.snapshot");
  log_.info("vm.snapshot", "snapshot written; the VM stays paused",
            {{"dir", dir.string()},
             {"memory_file_bytes", state.memory_file_bytes},
             {"ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - began)
                        .count()}});
  return {};
}

void Vmm::request_stop(StopReason reason) {
  std::lock_guard lock(mutex_);
  if (stop_reason_) return;
  stop_reason_ = std::move(reason);
  if (state_ == VmState::kCreated) {
    state_ = VmState::kStopped;
  } else if (state_ != VmState::kStopped) {
    state_ = VmState::kStopping;
    kick_all_locked();
  }
  cv_.notify_all();
  if (stop_event_.valid()) {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(stop_event_.get(), &one, sizeof one);
  }
}

StopReason Vmm::wait() {
  {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return stop_reason_.has_value() && running_threads_ == 0; });
  }
  parts_.threads->join();
  std::lock_guard lock(mutex_);
  state_ = VmState::kStopped;
  return *stop_reason_;
}

void Vmm::guest_fault(Vcpu& vcpu, const std::string& what) {
  std::string dump;
  auto regs = vcpu.regs();
  auto sregs = vcpu.sregs();
  if (regs && sregs)
    dump = x86::format_registers(*regs, *sregs);
  else
    dump = "registers unavailable: " + (regs ? sregs.error() : regs.error()).message();
  log_.error("vcpu.fault", what, {{"vcpu", vcpu.id()}, {"registers", dump}});
  request_stop({StopKind::kGuestFault, 0,
                what + " on vCPU " + std::to_string(vcpu.id()) + " (" + dump + ")"});
}

void Vmm::handle_io(const VcpuExit& exit) {
  metrics_.exits_io.fetch_add(1, std::memory_order_relaxed);
  if (exit.is_write && exit.count > 1) {
    if (!parts_.pio.write_burst(exit.address, exit.data, exit.size)) {
      auto n = metrics_.pio_unassigned.fetch_add(exit.count, std::memory_order_relaxed);
      if (n < kMaxLoggedUnassigned)
        log_.debug("io.unassigned", "guest accessed a port no device owns",
                   {{"port", hex(exit.address)}, {"size", exit.size}, {"write", true}});
    }
    return;
  }
  for (std::uint32_t i = 0; i < exit.count; ++i) {
    auto chunk = exit.data.subspan(std::size_t{i} * exit.size, exit.size);
    bool handled;
    if (exit.is_write) {
      handled = parts_.pio.write(exit.address, chunk);
    } else {
      std::fill(chunk.begin(), chunk.end(), 0xff);  // an unassigned port floats high
      handled = parts_.pio.read(exit.address, chunk);
    }
    if (!handled) {
      auto n = metrics_.pio_unassigned.fetch_add(1, std::memory_order_relaxed);
      if (n < kMaxLoggedUnassigned)
        log_.debug("io.unassigned", "guest accessed a port no device owns",
                   {{"port", hex(exit.address)}, {"size", exit.size}, {"write", exit.is_write}});
    }
  }
}

void Vmm::handle_mmio(const VcpuExit& exit) {
  metrics_.exits_mmio.fetch_add(1, std::memory_order_relaxed);
  bool handled;
  if (exit.is_write) {
    handled = parts_.mmio.write(exit.address, exit.data);
  } else {
    std::fill(exit.data.begin(), exit.data.end(), 0xff);
    handled = parts_.mmio.read(exit.address, exit.data);
  }
  if (!handled) {
    auto n = metrics_.mmio_unassigned.fetch_add(1, std::memory_order_relaxed);
    if (n < kMaxLoggedUnassigned)
      log_.debug("mmio.unassigned", "guest accessed an address nothing backs",
                 {{"gpa", hex(exit.address)}, {"size", exit.size}, {"write", exit.is_write}});
  }
}

void Vmm::vcpu_thread(std::size_t index) {
  Vcpu& vcpu = *parts_.vcpus[index];
  // Whether the last exit is complete. An I/O or MMIO access finishes only on the next run()
  // (KVM_RUN with immediate_exit completes it, then returns kInterrupted; emu does the same), so
  // a pausing vCPU runs once more before it parks: parked vCPUs sit on instruction boundaries,
  // which is what a snapshot must save.
  bool settled = true;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      while (state_ == VmState::kPaused && settled) {
        save_parked_vcpu(index);
        parked_[index] = true;
        cv_.notify_all();
        cv_.wait(lock);
      }
      parked_[index] = false;
      if (state_ != VmState::kRunning && state_ != VmState::kPaused) break;
    }
    auto exit = vcpu.run();
    if (!exit) {
      request_stop({StopKind::kHostError, 0, exit.error().message()});
      break;
    }
    settled = exit->reason == ExitReason::kInterrupted;
    switch (exit->reason) {
      case ExitReason::kInterrupted:
        metrics_.exits_interrupted.fetch_add(1, std::memory_order_relaxed);
        vcpu.clear_exit_request();
        break;
      case ExitReason::kIo:
        handle_io(*exit);
        break;
      case ExitReason::kMmio:
        handle_mmio(*exit);
        break;
      case ExitReason::kHalt:
        // Only without an in-kernel irqchip, which this VMM always creates.
        metrics_.exits_hlt.fetch_add(1, std::memory_order_relaxed);
        guest_fault(vcpu, "KVM_EXIT_HLT without an in-kernel interrupt controller");
        break;
      case ExitReason::kShutdown:
        guest_fault(vcpu, with_detail("guest triple fault (KVM_EXIT_SHUTDOWN)", *exit));
        break;
      case ExitReason::kSystemEvent:
        if (exit->system_event == SystemEvent::kShutdown)
          request_stop({StopKind::kPowerOff, 0, "guest powered off"});
        else if (exit->system_event == SystemEvent::kReset)
          request_stop({StopKind::kReset, 0, "guest requested a reset"});
        else
          guest_fault(vcpu, "system event " + std::string(system_event_name(exit->system_event)) +
                                " (KVM_EXIT_SYSTEM_EVENT type " +
                                std::to_string(exit->system_event_type) + ")");
        break;
      case ExitReason::kInternalError:
        guest_fault(
            vcpu,
            with_detail(
                "KVM_EXIT_INTERNAL_ERROR suberror " + std::to_string(exit->suberror) +
                    (exit->suberror == KVM_INTERNAL_ERROR_EMULATION ? " (emulation failure)" : ""),
                *exit));
        break;
      case ExitReason::kFailEntry:
        guest_fault(vcpu, "KVM_EXIT_FAIL_ENTRY hardware reason " + hex(exit->hardware_reason));
        break;
      case ExitReason::kTdxVmcall:
      case ExitReason::kSnpCertificates:
        if (auto served = parts_.tee->handle_exit(vcpu, *exit); !served)
          request_stop({StopKind::kHostError, 0, served.error().message()});
        break;
      case ExitReason::kOther:
        metrics_.exits_other.fetch_add(1, std::memory_order_relaxed);
        guest_fault(vcpu, "unhandled KVM exit reason " + std::to_string(exit->raw_reason));
        break;
    }
  }
  std::lock_guard lock(mutex_);
  --running_threads_;
  cv_.notify_all();
}

nlohmann::json Vmm::nets() const {
  std::lock_guard lock(mutex_);
  return to_json(parts_.config).value("nets", nlohmann::json::array());
}

bool Vmm::set_net_rate_limiters(const std::string& tap, const std::optional<RateLimiterConfig>& rx,
                                const std::optional<RateLimiterConfig>& tx) {
  std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < parts_.nets.size(); ++i) {
    if (parts_.nets[i]->tap() != tap) continue;
    NetConfig& config = parts_.config.nets[i];
    if (rx) config.rx_rate_limiter = *rx;
    if (tx) config.tx_rate_limiter = *tx;
    parts_.nets[i]->set_rate_limiters(config.rx_rate_limiter, config.tx_rate_limiter);
    return true;
  }
  return false;
}

nlohmann::json Vmm::info() const {
  std::lock_guard lock(mutex_);
  nlohmann::json out = {{"state", vm_state_name(state_)},
                        {"vcpus", parts_.vcpus.size()},
                        {"memory_bytes", parts_.config.memory_bytes},
                        {"boot", boot_kind_name(parts_.boot_kind)},
                        {"tee", tee_name(parts_.config.tee.kind)},
                        {"hypervisor", parts_.hypervisor->name()},
                        {"config", to_json(parts_.config)}};
  if (auto m = parts_.tee->measurement())
    out["measurement"] = {
        {"algorithm", m->algorithm}, {"name", m->name}, {"digest", to_hex(m->digest)}};
  else
    out["measurement"] = nullptr;
  if (auto launch = parts_.tee->describe(); !launch.empty()) out["launch"] = std::move(launch);
  out["measurement_note"] = parts_.tee->measurement_note();
  if (state_ != VmState::kCreated)
    out["uptime_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - started_at_)
                           .count();
  if (stop_reason_)
    out["stop_reason"] = {{"kind", stop_kind_name(stop_reason_->kind)},
                          {"guest_status", stop_reason_->guest_status},
                          {"message", stop_reason_->message}};
  return out;
}

}  // namespace cloister::vmm
