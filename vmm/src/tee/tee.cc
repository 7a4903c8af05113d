#include "cloister/vmm/tee/tee.h"

#include "cloister/vmm/hypervisor/kvm_abi.h"

namespace cloister::vmm {
namespace {

class NoTee final : public TeeBackend {
 public:
  TeeKind kind() const override { return TeeKind::kNone; }
  unsigned long machine_type() const override { return kvm_abi::kX86DefaultVm; }
  bool needs_private_memory() const override { return false; }
  const fw::LaunchPlan* plan() const override { return nullptr; }
  Status init_vm(Vm&) override { return {}; }
  Status launch(LaunchContext&) override { return {}; }
  std::vector<TeeDevice> devices(const GuestMemory&, Logger&) override { return {}; }
  Status handle_exit(Vcpu&, const VcpuExit& exit) override {
    return Error("tee none: unexpected " + std::string(exit_reason_name(exit.reason)) +
                 " exit from a plain VM");
  }
  std::optional<LaunchMeasurement> measurement() const override { return std::nullopt; }
  std::string measurement_note() const override {
    return "tee=none launches a plain VM: nothing measures its launch, so there is no launch "
           "measurement to report";
  }
  nlohmann::json describe() const override { return nlohmann::json::object(); }
};

}  // namespace

Result<std::unique_ptr<TeeBackend>> make_tee_backend(TeeKind kind) {
  switch (kind) {
    case TeeKind::kNone:
      return std::unique_ptr<TeeBackend>(new NoTee());
    case TeeKind::kSimSnp:
    case TeeKind::kSimTdx:
      return Error("tee " + std::string(tee_name(kind)) +
                   ": backend not implemented yet (the simulated secure processor, which would "
                   "execute the firmware-loader LaunchPlan and sign reports, is not built); use "
                   "tee none");
    case TeeKind::kSnp:
    case TeeKind::kTdx:
      return Error("tee " + std::string(tee_name(kind)) +
                   ": backend not implemented yet (the KVM " +
                   (kind == TeeKind::kSnp ? "SEV-SNP" : "TDX") +
                   " launch sequence, which would execute the firmware-loader LaunchPlan, is not "
                   "built, and no host here has the hardware to test it); use tee none");
  }
  return Error("tee: unknown kind");
}

}  // namespace cloister::vmm
