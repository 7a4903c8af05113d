#include "cloister/vmm/vstate/stop.h"

namespace cloister::vmm {

std::string_view stop_kind_name(StopKind kind) {
  switch (kind) {
    case StopKind::kPowerOff:
      return "power_off";
    case StopKind::kReset:
      return "reset";
    case StopKind::kDebugExit:
      return "debug_exit";
    case StopKind::kGuestFault:
      return "guest_fault";
    case StopKind::kHostError:
      return "host_error";
    case StopKind::kRequested:
      return "requested";
  }
  return "unknown";
}

int exit_code_for(const StopReason& reason) {
  switch (reason.kind) {
    case StopKind::kPowerOff:
    case StopKind::kReset:
    case StopKind::kRequested:
      return 0;
    case StopKind::kDebugExit:
      return reason.guest_status == 0 ? 0 : 4;
    case StopKind::kGuestFault:
      return 3;
    case StopKind::kHostError:
      return 1;
  }
  return 1;
}

}  // namespace cloister::vmm
