#include "cloister/vmm/hypervisor/select.h"

#include "cloister/vmm/hypervisor/emu.h"
#include "cloister/vmm/hypervisor/kvm.h"

namespace cloister::vmm {

Result<std::unique_ptr<Hypervisor>> open_hypervisor(HypervisorKind kind,
                                                    const std::string& kvm_device, bool seccomp,
                                                    Logger& log) {
  EmuOptions emu;
  emu.seccomp = seccomp;
  auto selected = [&](std::unique_ptr<Hypervisor> hv, const std::string& why) {
    log.info("hypervisor.selected", std::string(hv->name()) + ": " + why,
             {{"hypervisor", hv->name()}});
    return hv;
  };
  switch (kind) {
    case HypervisorKind::kKvm: {
      CLOISTER_TRY(auto kvm, open_kvm(kvm_device));
      return selected(std::move(kvm), "configured");
    }
    case HypervisorKind::kEmu: {
      CLOISTER_TRY(auto emulator, open_emulator(emu));
      return selected(std::move(emulator), "configured");
    }
    case HypervisorKind::kAuto:
      break;
  }
  auto kvm = open_kvm(kvm_device);
  if (kvm) return selected(std::move(*kvm), kvm_device + " opened");
  CLOISTER_TRY(auto emulator, open_emulator(emu));
  return selected(std::move(emulator), "KVM unavailable (" + kvm.error().message() + ")");
}

}  // namespace cloister::vmm
