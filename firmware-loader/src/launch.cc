#include "cloister/firmware_loader/launch.h"

#include "cloister/firmware_loader/ovmf.h"
#include "cloister/firmware_loader/tdx.h"

namespace cloister::fw {
namespace {

constexpr std::uint32_t kMaxFamily = 0x10e, kMaxModel = 0xff, kMaxStepping = 0xf;

bool any(const VcpuSignatureSpec& s) {
  return s.type || s.signature || s.family || s.model || s.stepping;
}

bool any(const DirectBoot& d) {
  return d.kernel || d.initrd || d.cmdline;
}

// An IGVM file fixes everything the SNP firmware inputs would.
Status check_igvm_inputs(const LaunchInputs& in) {
  const bool snp = in.tee == Tee::kSevSnp;
  const std::pair<bool, const char*> not_for_igvm[] = {
      {in.firmware.has_value(), "--ovmf"},
      {snp && any(in.direct_boot), "--kernel/--initrd/--append"},
      {snp && any(in.vcpu_signature), "--vcpu-type/--vcpu-sig/--vcpu-family"},
      {snp && in.vmm.has_value(), "--vmm-type"},
      {snp && in.guest_features.has_value(), "--guest-features"},
      {snp && in.firmware_digest.has_value(), "--snp-ovmf-hash"},
      {snp && (in.svsm || in.vars_size), "--svsm/--vars-size/--vars-file"},
      {!snp && in.memory_bytes.has_value(), "--memory"},
  };
  for (const auto& [given, name] : not_for_igvm) {
    if (given) {
      return Error(std::string(name) +
                   " does not apply to --igvm: the IGVM file itself fixes the pages" +
                   (snp ? " and VMSAs" : " and carries no TD HOB") + "; drop it");
    }
  }
  if (snp && in.snp_mode != SnpMode::kSnp)
    return Error("--igvm is measured in mode snp, not " + std::string(to_string(in.snp_mode)));
  return {};
}

Status check_snp_firmware_inputs(const LaunchInputs& in) {
  if (in.snp_mode == SnpMode::kFirmwareOnly) return {};
  const DirectBoot& boot = in.direct_boot;
  if ((boot.initrd || (boot.cmdline && !boot.cmdline->empty())) && !boot.kernel)
    return Error("--initrd and --append need --kernel: give the kernel they boot with");
  if (!in.vcpus)
    return Error("missing --vcpus N in guest mode '" + std::string(to_string(in.snp_mode)) + "'");
  CLOISTER_CHECK_OK(resolve_vcpu_signature(in.vcpu_signature));
  if (in.firmware_digest && in.snp_mode != SnpMode::kSnp)
    return Error("--snp-ovmf-hash only works with --mode snp");
  if (in.snp_mode == SnpMode::kSvsm) {
    if (!in.svsm) return Error("snp:svsm mode needs --svsm PATH (the COCONUT-SVSM binary)");
    if (!in.vars_size)
      return Error("snp:svsm mode needs --vars-size SIZE or --vars-file PATH (OVMF_VARS)");
  }
  return {};
}

// A TD has none of SEV-SNP's inputs.
Status check_tdx_inputs(const LaunchInputs& in) {
  const std::pair<bool, const char*> snp_only[] = {
      {in.snp_mode != SnpMode::kSnp, "--mode"},
      {any(in.vcpu_signature), "--vcpu-type/--vcpu-sig/--vcpu-family"},
      {in.vmm.has_value(), "--vmm-type"},
      {in.guest_features.has_value(), "--guest-features"},
      {any(in.direct_boot), "--kernel/--initrd/--append (TDVF measures a kernel into RTMRs)"},
      {in.firmware_digest.has_value(), "--snp-ovmf-hash"},
      {in.svsm || in.vars_size, "--svsm/--vars-size/--vars-file"},
      {in.igvm_zero_pages != IgvmZeroPages::kSnpZero, "--igvm-zero-pages"},
  };
  for (const auto& [given, name] : snp_only) {
    if (given) return Error(std::string(name) + " applies to SEV-SNP only; drop it for TDX");
  }
  return {};
}

Result<std::shared_ptr<const Bytes>> contents(const LaunchFile& file) {
  if (!file.bytes) return Error(file.name + ": no contents given; read the file first");
  return file.bytes;
}

Result<OvmfImage> parse_image(const LaunchFile& file) {
  CLOISTER_TRY(auto bytes, contents(file));
  auto image = OvmfImage::parse(std::move(bytes));
  if (!image) return image.error().with_context(file.name);
  return image;
}

Result<IgvmFile> parse_igvm(const LaunchFile& file) {
  CLOISTER_TRY(auto bytes, contents(file));
  auto igvm = IgvmFile::parse(std::move(bytes));
  if (!igvm) return igvm.error().with_context(file.name);
  return igvm;
}

Result<SevHashes> direct_boot_hashes(const DirectBoot& boot) {
  CLOISTER_TRY(const auto kernel, contents(*boot.kernel));
  std::shared_ptr<const Bytes> initrd = std::make_shared<const Bytes>();
  if (boot.initrd) {
    CLOISTER_TRY(initrd, contents(*boot.initrd));
  }
  return SevHashes::compute(*kernel, *initrd, boot.cmdline.value_or(""));
}

Result<LaunchPlan> plan_snp_firmware(const LaunchInputs& in) {
  CLOISTER_TRY(const OvmfImage ovmf, parse_image(*in.firmware));
  SnpLaunchOptions o;
  o.mode = in.snp_mode;
  std::optional<OvmfImage> svsm;
  if (o.mode != SnpMode::kFirmwareOnly) {
    o.vcpus = *in.vcpus;
    CLOISTER_TRY(o.vcpu_signature, resolve_vcpu_signature(in.vcpu_signature));
    o.vmm = in.vmm.value_or(cloister_vmm_profile());
    o.guest_features = in.guest_features.value_or(o.guest_features);
    o.firmware_digest = in.firmware_digest;
    if (in.direct_boot.kernel) {
      CLOISTER_TRY(o.kernel_hashes, direct_boot_hashes(in.direct_boot));
    }
    if (o.mode == SnpMode::kSvsm) {
      CLOISTER_TRY(svsm, parse_image(*in.svsm));
      o.svsm = &*svsm;
      o.vars_size = *in.vars_size;
    }
  }
  return build_snp_plan(ovmf, o);
}

Result<LaunchPlan> plan_snp_igvm(const LaunchInputs& in) {
  CLOISTER_TRY(const IgvmFile file, parse_igvm(*in.igvm));
  auto plan = build_snp_plan(file, {in.igvm_zero_pages});
  if (!plan) return plan.error().with_context(in.igvm->name);
  const std::uint32_t vcpus = plan->vcpu_count();
  if (in.vcpus && *in.vcpus != vcpus) {
    return Error("--vcpus " + std::to_string(*in.vcpus) +
                 " but the IGVM file has VP contexts for " + std::to_string(vcpus) +
                 " vCPUs: drop --vcpus or rebuild the file");
  }
  if (vcpus > kMaxVcpus) {
    return Error(in.igvm->name + ": VP contexts for " + std::to_string(vcpus) +
                 " vCPUs, more than the " + std::to_string(kMaxVcpus) +
                 " cloister-vmm runs (xAPIC IDs are 8 bits): rebuild the file for fewer");
  }
  return plan;
}

Result<LaunchPlan> plan_tdx_firmware(const LaunchInputs& in) {
  CLOISTER_TRY(const OvmfImage image, parse_image(*in.firmware));
  TdxLaunchOptions o{.page_order = in.page_order};
  o.ram_bytes = in.memory_bytes.value_or(o.ram_bytes);
  o.vcpus = in.vcpus.value_or(o.vcpus);
  auto plan = build_tdx_plan(image, o);
  if (!plan) return plan.error().with_context(in.firmware->name);
  return plan;
}

Result<LaunchPlan> plan_tdx_igvm(const LaunchInputs& in) {
  CLOISTER_TRY(const IgvmFile file, parse_igvm(*in.igvm));
  IgvmTdxOptions o{.page_order = in.page_order};
  o.vcpus = in.vcpus.value_or(o.vcpus);
  auto plan = build_tdx_plan(file, o);
  if (!plan) return plan.error().with_context(in.igvm->name);
  return plan;
}

}  // namespace

Result<std::optional<std::uint32_t>> resolve_vcpu_signature(const VcpuSignatureSpec& s) {
  const bool fms = s.family || s.model || s.stepping;
  if ((s.type ? 1 : 0) + (s.signature ? 1 : 0) + (fms ? 1 : 0) > 1) {
    return Error(
        "give the vCPU signature one way only: --vcpu-type, --vcpu-sig, or "
        "--vcpu-family/--vcpu-model/--vcpu-stepping");
  }
  if (s.type) {
    CLOISTER_TRY(const std::uint32_t sig, vcpu_signature(*s.type));
    return std::optional<std::uint32_t>(sig);
  }
  if (s.signature) return s.signature;
  if (!fms) return std::optional<std::uint32_t>();
  if (!s.family || !s.model || !s.stepping)
    return Error("--vcpu-family, --vcpu-model and --vcpu-stepping go together: give all three");
  if (*s.family > kMaxFamily || *s.model > kMaxModel || *s.stepping > kMaxStepping) {
    return Error(
        "--vcpu-family/--vcpu-model/--vcpu-stepping out of range (family 0..270, "
        "model 0..255, stepping 0..15)");
  }
  return std::optional<std::uint32_t>(vcpu_signature(*s.family, *s.model, *s.stepping));
}

Status check_launch_inputs(const LaunchInputs& in) {
  const bool snp = in.tee == Tee::kSevSnp;
  if (in.igvm) {
    CLOISTER_CHECK_OK(check_igvm_inputs(in));
  } else if (!in.firmware) {
    return Error(std::string("missing --ovmf PATH (or --igvm PATH): the ") +
                 (snp ? "firmware" : "TDVF firmware") + " to measure");
  }
  if (in.vcpus && *in.vcpus > kMaxVcpus) {
    return Error("--vcpus " + std::to_string(*in.vcpus) + " is more than the " +
                 std::to_string(kMaxVcpus) + " vCPUs cloister-vmm runs (xAPIC IDs are 8 bits)");
  }
  if (!snp) return check_tdx_inputs(in);
  if (in.page_order != TdxPageOrder::kSinglePass)
    return Error("--page-order applies to TDX only; drop it for SEV-SNP");
  if (in.memory_bytes)
    return Error("--memory applies to TDX only (the TD HOB); drop it for SEV-SNP");
  return in.igvm ? Status() : check_snp_firmware_inputs(in);
}

Result<LaunchPlan> plan_launch(const LaunchInputs& in) {
  CLOISTER_CHECK_OK(check_launch_inputs(in));
  if (in.tee == Tee::kTdx) return in.igvm ? plan_tdx_igvm(in) : plan_tdx_firmware(in);
  return in.igvm ? plan_snp_igvm(in) : plan_snp_firmware(in);
}

}  // namespace cloister::fw
