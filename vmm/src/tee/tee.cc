#include "cloister/vmm/tee/tee.h"

#include "backends.h"
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

Result<std::unique_ptr<TeeBackend>> make_tee_backend(const TeeConfig& config,
                                                     std::optional<fw::LaunchPlan> plan) {
  if (config.kind == TeeKind::kNone) {
    if (plan) return Error("tee none: a plain VM has no launch plan");
    return std::unique_ptr<TeeBackend>(new NoTee());
  }
  if (!plan) return Error("tee " + std::string(tee_name(config.kind)) + ": needs a launch plan");
  if (is_snp(config.kind) != (plan->tee() == fw::Tee::kSevSnp))
    return Error("tee " + std::string(tee_name(config.kind)) + ": the launch plan is for " +
                 std::string(fw::to_string(plan->tee())));
  switch (config.kind) {
    case TeeKind::kSnp:
      return tee::make_snp_backend(config, std::move(*plan));
    case TeeKind::kTdx:
      return tee::make_tdx_backend(config, std::move(*plan));
    case TeeKind::kSimSnp:
      return tee::make_sim_snp_backend(config, std::move(*plan));
    case TeeKind::kSimTdx:
      return tee::make_sim_tdx_backend(config, std::move(*plan));
    case TeeKind::kNone:
      break;
  }
  return Error("tee: unknown kind");
}

}  // namespace cloister::vmm
