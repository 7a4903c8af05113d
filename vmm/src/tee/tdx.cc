// The TDX backend on the mainline KVM interface (research/vmm.md §a.7-§a.8), in QEMU's order:
// KVM_TDX_CAPABILITIES and KVM_TDX_INIT_VM before any vCPU; KVM_TDX_INIT_VCPU with the TD HOB's
// GPA on every vCPU; each plan section made private and added with KVM_TDX_INIT_MEM_REGION
// (MR.EXTEND where the section says so); KVM_TDX_FINALIZE_VM. GetQuote is served
// asynchronously through a quote provider (Intel QGS). It has not run on TDX hardware (none was
// available); tests drive it through a recording double of the ioctl layer.
#include "backends.h"
#include "cloister/common/hex.h"
#include "cloister/measure/tdx_mrtd.h"
#include "cloister/vmm/hypervisor/kvm_abi.h"
#include "cloister/vmm/tee/quote.h"
#include "launch_ops.h"

namespace cloister::vmm::tee {
namespace {

using CpuidRow = std::array<std::uint32_t, 6>;

// XCR0 and IA32_XSS components the host can give a guest (CPUID leaf 0xD, SDM vol. 1 §13.2).
std::uint64_t host_xsave_components(const std::vector<CpuidRow>& cpuid) {
  std::uint64_t bits = 0;
  for (const CpuidRow& e : cpuid) {
    if (e[0] != 0xd) continue;
    if (e[1] == 0) bits |= e[2] | static_cast<std::uint64_t>(e[5]) << 32;
    if (e[1] == 1) bits |= e[4] | static_cast<std::uint64_t>(e[5]) << 32;
  }
  return bits;
}

// The TD's CPUID configuration: for each bit the TDX module lets a TD configure, the host's
// value (KVM refuses bits outside the configurable mask).
std::vector<CpuidRow> td_cpuid(const std::vector<CpuidRow>& configurable,
                               const std::vector<CpuidRow>& host) {
  std::vector<CpuidRow> out;
  for (const CpuidRow& mask : configurable) {
    for (const CpuidRow& h : host) {
      if (h[0] != mask[0] || h[1] != mask[1]) continue;
      out.push_back({h[0], h[1], h[2] & mask[2], h[3] & mask[3], h[4] & mask[4], h[5] & mask[5]});
    }
  }
  return out;
}

class TdxBackend final : public TeeBackend {
 public:
  TdxBackend(fw::LaunchPlan plan, TdxSettings settings, std::unique_ptr<QuoteProvider> provider,
             Sha384Digest mrtd)
      : plan_(std::move(plan)), settings_(settings), provider_(std::move(provider)), mrtd_(mrtd) {}

  TeeKind kind() const override { return TeeKind::kTdx; }
  unsigned long machine_type() const override { return kvm_abi::kX86TdxVm; }
  bool needs_private_memory() const override { return true; }
  const fw::LaunchPlan* plan() const override { return &plan_; }

  Status init_vm(Vm& vm) override {
    CLOISTER_TRY(const TdxCapabilities caps, vm.tdx_capabilities());
    if (settings_.attributes & ~caps.supported_attributes)
      return Error("tee.td_attributes " + hex_number(settings_.attributes) + ": bits " +
                   hex_number(settings_.attributes & ~caps.supported_attributes) +
                   " are not supported by this TDX module (supported " +
                   hex_number(caps.supported_attributes) + ")");
    const auto host = vm.cpuid();
    xfam_ = caps.supported_xfam & host_xsave_components(host);
    CLOISTER_CHECK_OK(vm.enable_private_memory_conversions());
    TdxInitVmParams params;
    params.attributes = settings_.attributes;
    params.xfam = xfam_;
    params.mr_config_id = settings_.mr_config_id;
    params.mr_owner = settings_.mr_owner;
    params.mr_owner_config = settings_.mr_owner_config;
    params.cpuid = td_cpuid(caps.configurable_cpuid, host);
    return vm.tdx_init_vm(params);
  }

  Status launch(LaunchContext& ctx) override {
    if (plan_.tdx_page_order() != fw::TdxPageOrder::kSinglePass)
      return Error(
          "launch plan: page order two-pass, but KVM adds and extends each page in "
          "turn (single-pass); measure with --page-order single-pass");
    std::uint64_t hob = 0;
    for (const fw::LaunchOp& op : plan_.ops())
      if (op.type == fw::PageType::kTdHob) hob = op.gpa;
    for (Vcpu* vcpu : ctx.vcpus) CLOISTER_CHECK_OK(vcpu->tdx_init_vcpu(hob));
    const auto vcpus = static_cast<std::uint32_t>(ctx.vcpus.size());
    for (const fw::LaunchOp& op : plan_.ops()) {
      CLOISTER_TRY(PageBuffer pages, op_pages(plan_, op, ctx.vm, vcpus, ctx.memory));
      CLOISTER_CHECK_OK(ctx.vm.set_memory_private(op.gpa, op.size, true));
      if (auto added = ctx.vcpus.front()->tdx_init_mem_region(op.gpa, pages.view(), op.tdx_extend);
          !added)
        return added.error().with_context("launch op " + op.label);
    }
    CLOISTER_CHECK_OK(ctx.vm.tdx_finalize_vm());
    memory_ = &ctx.memory;
    if (provider_) {
      CLOISTER_TRY(quotes_,
                   GetQuoteService::start(ctx.memory, std::move(provider_), ctx.log, ctx.sandbox));
    }
    return {};
  }

  std::vector<TeeDevice> devices(const GuestMemory&, Logger&) override { return {}; }

  Status handle_exit(Vcpu& vcpu, const VcpuExit& exit) override {
    if (exit.reason != ExitReason::kTdxVmcall ||
        exit.tdx_vmcall.subfunction != kvm_abi::kTdvmcallGetQuote || memory_ == nullptr)
      return Error("tee tdx: unexpected " + std::string(exit_reason_name(exit.reason)) + " exit");
    if (quotes_)
      return vcpu.complete_exit(quotes_->submit(exit.tdx_vmcall.gpa, exit.tdx_vmcall.size));
    // No quote generation service configured: the request is valid but cannot be served.
    if (!read_get_quote_request(*memory_, exit.tdx_vmcall.gpa, exit.tdx_vmcall.size))
      return vcpu.complete_exit(kTdvmcallInvalidOperand);
    write_get_quote_result(*memory_, exit.tdx_vmcall.gpa, exit.tdx_vmcall.size,
                           Error("no quote generation service"), kGetQuoteStatusServiceUnavailable);
    return vcpu.complete_exit(kTdvmcallSuccess);
  }

  std::optional<LaunchMeasurement> measurement() const override {
    return LaunchMeasurement{"sha384", "mrtd", Bytes(mrtd_.begin(), mrtd_.end())};
  }

  std::string measurement_note() const override {
    return "the MRTD the TDX module computes from this launch plan (TDH.MEM.PAGE.ADD and "
           "TDH.MR.EXTEND per section), computed by the VMM from the same plan; the host cannot "
           "read the module's value, which the guest's quotes carry";
  }

  nlohmann::json describe() const override {
    nlohmann::json out = tee::describe(settings_);
    out["xfam"] = hex_number(xfam_);
    out["quote_provider"] = quotes_ ? quotes_->provider().describe() : "none";
    return out;
  }

 private:
  fw::LaunchPlan plan_;
  TdxSettings settings_;
  std::unique_ptr<QuoteProvider> provider_;
  Sha384Digest mrtd_;
  std::uint64_t xfam_ = 0;
  const GuestMemory* memory_ = nullptr;
  std::unique_ptr<GetQuoteService> quotes_;
};

}  // namespace

Result<std::unique_ptr<TeeBackend>> make_tdx_backend(const TeeConfig& config, fw::LaunchPlan plan) {
  CLOISTER_TRY(auto settings, resolve_tdx_settings(config, plan));
  std::unique_ptr<QuoteProvider> provider;
  if (config.quote_generation_socket) {
    CLOISTER_TRY(provider, qgs_quote_provider(*config.quote_generation_socket));
  }
  CLOISTER_TRY(const Sha384Digest mrtd, measure::tdx_mrtd(plan));
  return std::unique_ptr<TeeBackend>(
      new TdxBackend(std::move(plan), settings, std::move(provider), mrtd));
}

}  // namespace cloister::vmm::tee
