// Building SEV-SNP LaunchPlans from OVMF (and COCONUT-SVSM) images, the way QEMU/KVM and the
// VMMs sev-snp-measure models launch them (research/snp.md §a).
//
// Launch order for mode kSnp (QEMU): the whole firmware as NORMAL pages ending at 4 GiB; the
// firmware's SEV metadata sections in metadata order (SNP_SEC_MEM and SVSM_CAA as ZERO pages,
// SNP_SECRETS, CPUID, SNP_KERNEL_HASHES as one NORMAL page holding the SEV hashes table when a
// kernel is given, ZERO pages otherwise); then one VMSA per vCPU. VMM profiles change the VMSA
// registers and two ordering details, and are data (VmmProfile), not code paths.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"
#include "cloister/common/sha.h"
#include "cloister/firmware_loader/launch_plan.h"
#include "cloister/firmware_loader/ovmf.h"

namespace cloister::fw {

// --- vCPU models ------------------------------------------------------------------------------

// A QEMU CPU model and its CPUID Fn0000_0001_EAX family/model/stepping (the EPYC family table
// of sev-snp-measure vcpu_types.py, QEMU target/i386/cpu.c builtin_x86_defs).
struct VcpuModel {
  std::string_view name;
  std::uint32_t family;
  std::uint32_t model;
  std::uint32_t stepping;
};

std::span<const VcpuModel> vcpu_models();

// CPUID Fn0000_0001_EAX encoding (AMD CPUID spec #25481): extended family in 27:20, extended
// model 19:16, base family 11:8 (0xF when family > 0xF), base model 7:4, stepping 3:0.
std::uint32_t vcpu_signature(std::uint32_t family, std::uint32_t model, std::uint32_t stepping);

// The signature of a named model ("EPYC-Milan"); fails with the list of known models.
Result<std::uint32_t> vcpu_signature(std::string_view model_name);

// --- VMM profiles -----------------------------------------------------------------------------

// How a VMM sets up an SNP launch, as far as the measurement can see: the initial VMSA
// registers (snp.md §a.4 table) and how metadata sections are measured.
struct VmmProfile {
  // sev-snp-measure's --vmm-type spelling: "QEMU", "ec2", "gce"; and "cloister"
  std::string_view name;
  std::uint16_t cs_attrib;
  // CS attributes of a vCPU starting at the reset vector 0xfffffff0 (ec2: 0x9a, not 0x9b), as
  // sev-snp-measure chooses them: by EIP, so an AP whose reset block names that EIP gets them too.
  std::uint16_t cs_attrib_reset_vector;
  std::uint16_t ss_attrib;
  std::uint16_t tr_attrib;
  // RDX at reset: the vCPU signature when true (QEMU), otherwise `rdx`.
  bool rdx_is_vcpu_signature;
  std::uint64_t rdx;
  std::uint64_t g_pat;
  std::uint32_t mxcsr;
  std::uint16_t x87_fcw;
  PageType sec_mem_page_type;  // SNP_SEC_MEM pages: kZero, or kUnmeasured (gce)
  bool cpuid_page_last;        // ec2 measures the CPUID page after all other sections
};

// QEMU (SnpLaunchOptions' default), ec2, gce (sev-snp-measure's models) and cloister.
std::span<const VmmProfile> vmm_profiles();

// The registers cloister-vmm sets ("cloister"): exactly QEMU's, so an image measured for QEMU
// and for cloister-vmm agrees. cloister-vmm sets each vCPU's registers from the plan's VMSAs,
// so it launches whatever profile a plan was built with.
const VmmProfile& cloister_vmm_profile();

// Case-insensitive lookup by name; fails with the list of known profiles.
Result<VmmProfile> find_vmm_profile(std::string_view name);

// --- SEV hashes table (measured direct boot) ----------------------------------------------------

// SevHashes (launch_plan.h) in the layout OVMF reads: the 168-byte table {GUID, u16 length, 3 x
// {GUID, u16 50, SHA-256}}, zero-padded to 176.
inline constexpr std::size_t kSevHashTableSize = 176;
std::array<std::uint8_t, kSevHashTableSize> sev_hash_table(const SevHashes& hashes);

// --- Plans ------------------------------------------------------------------------------------

enum class SnpMode {
  kSnp,           // "snp": firmware, metadata sections, VMSAs
  kFirmwareOnly,  // "snp:ovmf-hash": the firmware pages only (the seed for kSnp's
                  // firmware_digest); such a plan has no VMSAs and cannot be launched
  kSvsm,          // "snp:svsm": OVMF, then the SVSM below OVMF_VARS, the SVSM's metadata, and
                  // the SVSM's VMSAs (QEMU only)
};

std::string_view to_string(SnpMode mode);  // "snp", "snp:ovmf-hash", "snp:svsm"

struct SnpLaunchOptions {
  SnpMode mode = SnpMode::kSnp;
  std::uint32_t vcpus = 0;  // >= 1 except in kFirmwareOnly
  // CPUID(1).EAX of the vCPUs. Required when the profile puts it in RDX (QEMU) and in kSvsm.
  std::optional<std::uint32_t> vcpu_signature;
  VmmProfile vmm = vmm_profiles()[0];
  std::uint64_t guest_features = 0x1;      // VMSA SEV_FEATURES (kSvsm always uses 0x1)
  std::optional<SevHashes> kernel_hashes;  // measured direct boot (kSnp)
  // kSnp: a precomputed digest of the firmware pages (sev-snp-measure --snp-ovmf-hash). The
  // firmware op is then marked seeded; the image is still needed for its metadata.
  std::optional<Sha384Digest> firmware_digest;
  const OvmfImage* svsm = nullptr;  // kSvsm: the SVSM image
  std::uint64_t vars_size = 0;      // kSvsm: bytes of OVMF_VARS between the SVSM and OVMF
};

// Builds the plan. Fails, with a sentence that names the fix, on: no SEV metadata; a kernel
// without an SNP_KERNEL_HASHES section or without a usable SEV hash table entry; no (or a
// zero) AP reset EIP when there is more than one vCPU; zero vCPUs; a profile that needs a
// vCPU signature without one; metadata sections overlapping the firmware; firmware sizes
// that are not a non-zero multiple of 4 KiB or exceed 4 GiB; kSvsm without an SVSM image or
// its entry point, with another VMM profile, or with a vars size that is zero, not a
// multiple of 4 KiB, or leaves no room below OVMF for the SVSM.
Result<LaunchPlan> build_snp_plan(const OvmfImage& firmware, const SnpLaunchOptions& options);

}  // namespace cloister::fw
