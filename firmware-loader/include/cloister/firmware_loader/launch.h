// From launch inputs to the LaunchPlan, in one function both cloister-measure and cloister-vmm
// call (DESIGN.md, "The LaunchPlan"): what a tenant expects to be measured and what the VMM
// loads come from one description, so they cannot drift apart.
//
// plan_launch() owns every check of the inputs: which ones apply to which TEE, mode and
// firmware kind, which are required, the limits of cloister-vmm (machine.h), and then the
// parsers' and plan builders' own (ovmf.h, igvm.h, snp.h, tdx.h). Its messages name inputs the
// way cloister-measure's options do ("--vcpus", "--igvm"), and the files by LaunchFile::name.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"
#include "cloister/common/sha.h"
#include "cloister/firmware_loader/igvm.h"
#include "cloister/firmware_loader/launch_plan.h"
#include "cloister/firmware_loader/machine.h"
#include "cloister/firmware_loader/snp.h"

namespace cloister::fw {

// An input file: how messages name it ("--ovmf OVMF.fd", "firmware /srv/OVMF.fd") and its bytes,
// which the plan shares instead of copying.
struct LaunchFile {
  std::string name{};
  std::shared_ptr<const Bytes> bytes{};
};

// The vCPUs' CPUID(1).EAX signature, given one way at most: a QEMU model name (vcpu_models()),
// the signature itself, or family, model and stepping together.
struct VcpuSignatureSpec {
  std::optional<std::string> type{};
  std::optional<std::uint32_t> signature{};
  std::optional<std::uint32_t> family{}, model{}, stepping{};
};

// The signature `spec` gives, or none. Fails when it is given more than one way, when only
// some of family/model/stepping are given or they are out of range (family 0..270, model
// 0..255, stepping 0..15), and for an unknown model name.
Result<std::optional<std::uint32_t>> resolve_vcpu_signature(const VcpuSignatureSpec& spec);

// SEV-SNP measured direct boot: the plan measures the SEV hashes of these, and the VMM must
// hand OVMF exactly these bytes. `cmdline` unset and empty hash alike ("\0").
struct DirectBoot {
  std::optional<LaunchFile> kernel{};
  std::optional<LaunchFile> initrd{};
  std::optional<std::string> cmdline{};
};

struct LaunchInputs {
  Tee tee = Tee::kSevSnp;
  // Exactly one of: a firmware image (OVMF, TDVF or OVMF-shaped, such as COCONUT-SVSM's
  // companion OVMF) or an IGVM file.
  std::optional<LaunchFile> firmware;
  std::optional<LaunchFile> igvm;
  // 1..kMaxVcpus. SEV-SNP firmware: required in modes snp and snp:svsm (one VMSA each);
  // IGVM: if given, must equal the file's VP contexts (SNP) or is the TD's (TDX, default 1);
  // TDX firmware: announced in the TD HOB, default 1.
  std::optional<std::uint32_t> vcpus;

  // SEV-SNP only. With an IGVM file, which fixes them itself, only `snp_mode` kSnp and
  // `igvm_zero_pages` apply.
  SnpMode snp_mode = SnpMode::kSnp;
  VcpuSignatureSpec vcpu_signature;
  std::optional<VmmProfile> vmm;                // default: cloister_vmm_profile()
  std::optional<std::uint64_t> guest_features;  // VMSA SEV_FEATURES; default 0x1
  DirectBoot direct_boot;                       // mode snp
  std::optional<Sha384Digest> firmware_digest;  // mode snp: sev-snp-measure --snp-ovmf-hash
  std::optional<LaunchFile> svsm;               // mode snp:svsm, required
  std::optional<std::uint64_t> vars_size;       // mode snp:svsm, required
  IgvmZeroPages igvm_zero_pages = IgvmZeroPages::kSnpZero;

  // TDX only.
  TdxPageOrder page_order = TdxPageOrder::kSinglePass;
  // Guest RAM, which the TD HOB describes: TDVF firmware only (SEV-SNP plans and IGVM files
  // have no TD HOB); default kDefaultGuestMemory.
  std::optional<std::uint64_t> memory_bytes;
};

// The checks of plan_launch() that need no file contents, so that a caller can refuse a bad
// combination before reading files; the LaunchFiles' bytes may still be unset here.
Status check_launch_inputs(const LaunchInputs& inputs);

// The plan for `inputs`: check_launch_inputs(), then the firmware or IGVM file parsed (errors
// prefixed with the file's name) and the TEE's plan built from it. Also fails when a given
// file has no bytes, and when an IGVM file's VP contexts disagree with `vcpus` or exceed
// kMaxVcpus.
Result<LaunchPlan> plan_launch(const LaunchInputs& inputs);

}  // namespace cloister::fw
