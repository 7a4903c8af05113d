// The SEV-SNP backend on the mainline KVM interface (research/vmm.md §a.4-§a.6), in QEMU's
// order: KVM_SEV_INIT2 and SNP_LAUNCH_START before any vCPU; each plan page made private and
// measured with SNP_LAUNCH_UPDATE; the vCPUs' state set from the plan's VMSAs; SNP_LAUNCH_FINISH.
// It has not run on SEV-SNP hardware (none was available); tests drive it through a recording
// double of the ioctl layer.
#include "backends.h"
#include "cloister/common/file.h"
#include "cloister/common/hex.h"
#include "cloister/measure/snp_digest.h"
#include "cloister/vmm/hypervisor/kvm_abi.h"
#include "launch_ops.h"

namespace cloister::vmm::tee {
namespace {

constexpr std::uint64_t kSevFeatureSnpActive = 1;  // SEV_FEATURES bit 0, implied by an SNP VM
// The certificate table served to extended guest requests: Linux guests offer at most
// SEV_FW_BLOB_MAX_SIZE (16 KiB) for it.
constexpr FileLimit kCertificateTableFileLimit{
    16u << 10, "a GHCB certificate table can be (Linux guests accept at most 16 KiB)"};

// "leaf 0x1.0 EAX: 0x… -> 0x…" for every CPUID-page value the firmware corrected.
std::string cpuid_corrections(ByteView ours, ByteView firmware) {
  std::string out;
  const char* regs[] = {"EAX", "EBX", "ECX", "EDX"};
  const std::uint32_t count = std::min<std::uint32_t>(load_le32(ours, 0), 64);
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::size_t at = 16 + i * 48;
    for (std::size_t r = 0; r < 4; ++r) {
      const std::uint32_t a = load_le32(ours, at + 24 + 4 * r);
      const std::uint32_t b = load_le32(firmware, at + 24 + 4 * r);
      if (a == b) continue;
      if (!out.empty()) out += "; ";
      out += "leaf " + hex_number(load_le32(ours, at)) + "." +
             std::to_string(load_le32(ours, at + 4)) + " " + regs[r] + ": " + hex_number(a) +
             " -> " + hex_number(b);
    }
  }
  return out;
}

class SnpBackend final : public TeeBackend {
 public:
  SnpBackend(fw::LaunchPlan plan, SnpSettings settings, std::optional<Bytes> certificates,
             Sha384Digest expected)
      : plan_(std::move(plan)),
        settings_(std::move(settings)),
        certificates_(std::move(certificates)),
        expected_(expected) {}

  TeeKind kind() const override { return TeeKind::kSnp; }
  unsigned long machine_type() const override { return kvm_abi::kX86SnpVm; }
  bool needs_private_memory() const override { return true; }
  const fw::LaunchPlan* plan() const override { return &plan_; }

  Status init_vm(Vm& vm) override {
    CLOISTER_CHECK_OK(vm.sev_init2({plan_.snp().vmsa_features & ~kSevFeatureSnpActive, 2}));
    CLOISTER_CHECK_OK(vm.enable_private_memory_conversions());
    if (certificates_) CLOISTER_CHECK_OK(vm.snp_enable_certificate_requests());
    return vm.snp_launch_start({settings_.policy});
  }

  Status launch(LaunchContext& ctx) override {
    const auto vcpus = static_cast<std::uint32_t>(ctx.vcpus.size());
    for (const fw::LaunchOp& op : plan_.ops()) {
      if (op.type == fw::PageType::kVmsa) continue;  // measured by LAUNCH_FINISH
      CLOISTER_TRY(PageBuffer pages, op_pages(plan_, op, ctx.vm, vcpus, ctx.memory));
      CLOISTER_CHECK_OK(ctx.vm.set_memory_private(op.gpa, op.size, true));
      const std::uint8_t type = fw::snp_page_type_code(op.type);
      const Bytes ours(pages.view().begin(), pages.view().end());
      auto updated = ctx.vm.snp_launch_update(op.gpa, pages.bytes(), type);
      if (!updated && op.type == fw::PageType::kCpuid &&
          ours != Bytes(pages.view().begin(), pages.view().end())) {
        // The firmware rejected our CPUID page and wrote the values it accepts into it: report
        // the differences and launch with the firmware's page, as the kernel's interface
        // intends (the CPUID page's contents are not part of the measurement).
        ctx.log.warn(
            "snp.cpuid_corrected", "the SEV firmware corrected the CPUID page",
            {{"gpa", hex_number(op.gpa)}, {"corrections", cpuid_corrections(ours, pages.view())}});
        updated = ctx.vm.snp_launch_update(op.gpa, pages.bytes(), type);
      }
      if (!updated) return updated.error().with_context("launch op " + op.label);
    }
    CLOISTER_CHECK_OK(apply_vmsas(plan_, ctx.vcpus));
    SnpLaunchFinishParams finish;
    finish.id_block = settings_.id_block;
    finish.id_auth = settings_.id_auth;
    finish.author_key_enabled = settings_.author_key;
    finish.host_data = settings_.host_data;
    CLOISTER_CHECK_OK(ctx.vm.snp_launch_finish(finish));
    memory_ = &ctx.memory;
    return {};
  }

  std::vector<TeeDevice> devices(const GuestMemory&, Logger&) override { return {}; }

  Status handle_exit(Vcpu& vcpu, const VcpuExit& exit) override {
    if (exit.reason != ExitReason::kSnpCertificates || !certificates_ || memory_ == nullptr)
      return Error("tee snp: unexpected " + std::string(exit_reason_name(exit.reason)) + " exit");
    // KVM_EXIT_SNP_REQ_CERTS (research/vmm.md §a.5): the table goes into the guest's shared
    // pages, or the guest learns how many pages it needs.
    const std::uint64_t needed = (certificates_->size() + 4095) / 4096;
    if (exit.snp_certificates.npages < needed) return vcpu.complete_exit(ENOSPC, needed);
    if (auto written =
            memory_->write(exit.snp_certificates.gpa, *certificates_, "SNP certificate buffer");
        !written)
      return vcpu.complete_exit(EIO);
    return vcpu.complete_exit(0);
  }

  std::optional<LaunchMeasurement> measurement() const override {
    return LaunchMeasurement{"sha384", "measurement", Bytes(expected_.begin(), expected_.end())};
  }

  std::string measurement_note() const override {
    return "the launch digest the SEV firmware computes from this launch plan (SNP_LAUNCH_UPDATE "
           "pages and the VMSAs LAUNCH_FINISH measures), computed by the VMM from the same plan; "
           "the host cannot read the firmware's value, which the guest's reports carry";
  }

  nlohmann::json describe() const override {
    nlohmann::json out = tee::describe(settings_);
    out["vmsa_features"] = hex_number(plan_.snp().vmsa_features);
    out["vcpus"] = plan_.vcpu_count();
    out["certificates"] = certificates_.has_value();
    return out;
  }

 private:
  fw::LaunchPlan plan_;
  SnpSettings settings_;
  std::optional<Bytes> certificates_;
  Sha384Digest expected_;
  const GuestMemory* memory_ = nullptr;
};

}  // namespace

Result<std::unique_ptr<TeeBackend>> make_snp_backend(const TeeConfig& config, fw::LaunchPlan plan) {
  CLOISTER_TRY(auto settings, resolve_snp_settings(config, plan));
  std::optional<Bytes> certificates;
  if (config.certificates) {
    auto table = read_file(*config.certificates, kCertificateTableFileLimit);
    if (!table) return table.error().with_context("tee.certificates");
    if (table->empty())
      return Error("tee.certificates " + *config.certificates + ": the file is empty");
    certificates = std::move(*table);
  }
  CLOISTER_TRY(const Sha384Digest expected, measure::snp_launch_digest(plan));
  return std::unique_ptr<TeeBackend>(
      new SnpBackend(std::move(plan), std::move(settings), std::move(certificates), expected));
}

}  // namespace cloister::vmm::tee
