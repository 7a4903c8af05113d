// Why a VM stops, and the sink devices and vCPUs report it to. The first reason reported wins;
// later ones are ignored (a VM stops once).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace cloister::vmm {

enum class StopKind {
  kPowerOff,    // guest powered off (KVM_SYSTEM_EVENT_SHUTDOWN)
  kReset,       // guest asked for a reset (i8042, KVM_SYSTEM_EVENT_RESET): this VMM stops
  kDebugExit,   // guest wrote its exit status to the debug-exit port
  kGuestFault,  // triple fault, emulation failure, failed entry: the guest is dead
  kHostError,   // the VMM or KVM failed
  kRequested,   // operator: API shutdown or a signal
};

std::string_view stop_kind_name(StopKind kind);

struct StopReason {
  StopKind kind = StopKind::kRequested;
  std::uint32_t guest_status = 0;  // kDebugExit: the value written
  std::string message;
};

// Process exit code for a stop reason (docs/operator.md "Exit status"): 0 clean stop or
// debug-exit 0; 3 guest fault; 4 debug-exit with a non-zero status; 1 host error.
int exit_code_for(const StopReason& reason);

class StopSink {
 public:
  virtual ~StopSink() = default;
  virtual void request_stop(StopReason reason) = 0;
};

// Forwards to a sink set later: devices are built before the controller that owns them.
class StopRelay final : public StopSink {
 public:
  void set_target(StopSink* target) { target_.store(target, std::memory_order_release); }
  void request_stop(StopReason reason) override {
    if (auto* t = target_.load(std::memory_order_acquire)) t->request_stop(std::move(reason));
  }

 private:
  std::atomic<StopSink*> target_{nullptr};
};

}  // namespace cloister::vmm
