// IGVM (Independent Guest Virtual Machine) files, format version 1 (microsoft/igvm igvm_defs),
// parsed and turned into an SEV-SNP or a TDX LaunchPlan for KVM.
//
// IgvmFile::parse is the one parser of the format: fixed header (magic, version, sizes, CRC-32
// checksum), the 8-byte aligned variable headers in their three sections (platform,
// initialization, directive; no going back), and file data references. Rejections name the
// header index, its file offset and the reason.
//
// Supported for SEV-SNP (docs/measure.md lists the same table):
//   SUPPORTED_PLATFORM   exactly one SEV_SNP platform (version 1, highest VTL 0) selects the
//                        compatibility mask; headers for other platforms are skipped
//   GUEST_POLICY         -> LaunchPlan::snp().policy
//   CORIM_DOCUMENT/SIGNATURE, RELOCATABLE_REGION, PAGE_TABLE_RELOCATION
//                        validated and ignored (the file is loaded at its default addresses,
//                        which every relocatable file allows)
//   PAGE_DATA            4 KiB pages: data -> NORMAL; file_offset 0 -> ZERO (QEMU/KVM) or a
//                        NORMAL zero page (IGVM spec), see IgvmZeroPages; UNMEASURED flag ->
//                        UNMEASURED; SECRETS / CPUID_DATA / CPUID_XF -> SECRETS / CPUID.
//                        2 MiB and shared pages are rejected.
//   PARAMETER_AREA, PARAMETER_INSERT -> parameter areas, inserted as UNMEASURED pages
//   VP_COUNT, SRAT, MADT, MMIO_RANGES, MEMORY_MAP, COMMAND_LINE, SLIT, PPTT, DEVICE_TREE,
//   ENVIRONMENT_INFO     -> LaunchPlan::parameters() for the VMM to fill
//   VP_CONTEXT           one VMSA per vp_index (0..n-1), at GPA 0xFFFFFFFFF000 (the only
//                        VMSA GPA KVM measures); measured after all pages, as KVM does
//   REQUIRED_MEMORY      -> LaunchPlan::required_memory()
//   ERROR_RANGE          -> required memory (the guest reports errors there; unmeasured)
//   SNP_ID_BLOCK         -> LaunchPlan::snp().id_block in KVM LAUNCH_FINISH layout (ID block
//                        version 1 and the GUEST_POLICY policy, as QEMU fills them)
//   any other type       rejected, unless its "ignorable" bit 31 is set
//
// Supported for TDX (the same file may also target SEV-SNP; each builder reads only the
// headers with its platform's compatibility mask):
//   SUPPORTED_PLATFORM   exactly one TDX platform (version 1, highest VTL 0)
//   GUEST_POLICY         igvm_defs TdxPolicy (kIgvmTdxPolicy* below) -> LaunchPlan::tdx().policy
//   PAGE_DATA            4 KiB pages, each one TDH.MEM.PAGE.ADD: data -> kNormal, file_offset 0
//                        -> kZero (a page of zeros), both MR.EXTENDed; the UNMEASURED flag ->
//                        kUnmeasured (PAGE.ADD only). SECRETS / CPUID data types, 2 MiB and
//                        shared pages are rejected.
//   PARAMETER_AREA, PARAMETER_INSERT, the parameters, REQUIRED_MEMORY, ERROR_RANGE
//                        as for SEV-SNP (inserted areas are kUnmeasured)
//   VP_CONTEXT           rejected: a TD's vCPUs start in the architectural reset state
//   SNP_ID_BLOCK, VBS_MEASUREMENT   rejected when they name the TDX platform
//
// Both builders refuse a file whose pages, parameter areas and required memory for the
// platform add up to more than kMaxGuestMemory (machine.h), the most cloister-vmm backs.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <variant>
#include <vector>

#include "cloister/common/bytes.h"
#include "cloister/common/file.h"
#include "cloister/common/result.h"
#include "cloister/firmware_loader/launch_plan.h"

namespace cloister::fw {

struct IgvmPlatform {
  std::uint32_t compatibility_mask = 0;
  std::uint8_t highest_vtl = 0;
  std::uint8_t platform_type = 0;  // 2 = SEV_SNP
  std::uint16_t platform_version = 0;
  std::uint64_t shared_gpa_boundary = 0;
};

struct IgvmGuestPolicy {
  std::uint64_t policy = 0;
  std::uint32_t compatibility_mask = 0;
};

struct IgvmPageData {
  std::uint64_t gpa = 0;
  std::uint32_t compatibility_mask = 0;
  std::uint32_t flags = 0;      // bit 0 2 MiB, bit 1 unmeasured, bit 2 shared
  std::uint16_t data_type = 0;  // 0 NORMAL, 1 SECRETS, 2 CPUID_DATA, 3 CPUID_XF
  ByteView data;                // 4096 bytes, or empty for file_offset 0
};

struct IgvmVpContext {
  std::uint64_t gpa = 0;
  std::uint32_t compatibility_mask = 0;
  std::uint16_t vp_index = 0;
  ByteView vmsa;  // 4096 bytes
};

struct IgvmParameterAreaHeader {
  std::uint64_t size = 0;
  std::uint32_t index = 0;
  ByteView initial;  // `size` bytes, or empty for file_offset 0
};

struct IgvmParameterInsert {
  std::uint64_t gpa = 0;
  std::uint32_t compatibility_mask = 0;
  std::uint32_t index = 0;
};

struct IgvmParameterUse {
  IgvmParameterKind kind = IgvmParameterKind::kVpCount;
  std::uint32_t index = 0;
  std::uint32_t byte_offset = 0;
};

struct IgvmRequiredMemory {
  std::uint64_t gpa = 0;
  std::uint32_t compatibility_mask = 0;
  std::uint32_t size = 0;
  bool error_range = false;  // from ERROR_RANGE rather than REQUIRED_MEMORY
};

struct IgvmSnpIdBlock {
  std::uint32_t compatibility_mask = 0;
  ByteView raw;  // the 696-byte IGVM_VHS_SNP_ID_BLOCK
};

// A directive that only matters to other platforms (VBS_MEASUREMENT).
struct IgvmOtherPlatformDirective {
  std::uint32_t type = 0;
  std::uint32_t compatibility_mask = 0;
};

using IgvmDirective =
    std::variant<IgvmPageData, IgvmVpContext, IgvmParameterAreaHeader, IgvmParameterInsert,
                 IgvmParameterUse, IgvmRequiredMemory, IgvmSnpIdBlock, IgvmOtherPlatformDirective>;

// An IGVM file as cloister-vmm and cloister-measure load it (the format allows 4 GiB).
inline constexpr FileLimit kIgvmFileLimit{
    256u << 20,
    "an IGVM file can be (a launch populates at most 1 GiB; COCONUT-SVSM's files are a few MiB)"};

// The most variable headers a file may have. Nearly all are PAGE_DATA, one 4 KiB page each, and
// a launch populates at most kMaxLaunchMemory (launch_plan.h): 262144 pages.
inline constexpr std::size_t kMaxIgvmHeaders = kMaxLaunchMemory / kPageSize;
// The most PARAMETER_AREA headers a platform's plan may declare, and the most parameters
// (VP_COUNT, MEMORY_MAP, …) it may fill: files have a handful of each, and the plan and the VMM
// look areas up per parameter and per insertion.
inline constexpr std::size_t kMaxIgvmParameterAreas = 1024;
inline constexpr std::size_t kMaxIgvmParameters = 1024;

class IgvmFile {
 public:
  // Parses a file (see the top of this header); also fails beyond kMaxIgvmHeaders headers.
  static Result<IgvmFile> parse(std::shared_ptr<const Bytes> file);

  std::span<const IgvmPlatform> platforms() const { return platforms_; }
  std::span<const IgvmGuestPolicy> guest_policies() const { return policies_; }
  std::span<const IgvmDirective> directives() const { return directives_; }
  const std::shared_ptr<const Bytes>& shared_bytes() const { return file_; }

 private:
  std::shared_ptr<const Bytes> file_;
  std::vector<IgvmPlatform> platforms_;
  std::vector<IgvmGuestPolicy> policies_;
  std::vector<IgvmDirective> directives_;
};

// How a PAGE_DATA page without file data (file_offset 0) is launched.
enum class IgvmZeroPages {
  kSnpZero,     // SNP ZERO page type, as QEMU's IGVM loader on KVM does (the default)
  kNormalZero,  // a NORMAL page of zeros, as the IGVM spec words it and the igvm crate measures
};

struct IgvmLoadOptions {
  IgvmZeroPages zero_pages = IgvmZeroPages::kSnpZero;
};

// The SEV-SNP plan of the file's SEV_SNP platform. Fails (naming the directive) when there is
// no such platform, on unsupported page flags or types, VP contexts at a GPA other than
// 0xFFFFFFFFF000, missing or duplicate vp_index values, unknown or reused parameter areas,
// more than one ID block or guest policy, a guest policy without the must-be-one bit 17, more
// declared memory than kMaxGuestMemory, more than kMaxIgvmParameterAreas parameter areas or
// kMaxIgvmParameters parameters, and on anything LaunchPlanBuilder rejects
// (overlapping pages, ...).
Result<LaunchPlan> build_snp_plan(const IgvmFile& file, const IgvmLoadOptions& options = {});

// igvm_defs TdxPolicy, the GUEST_POLICY of a TDX platform: which TD attributes the guest
// allows or needs. debug_allowed: the TD may be a debug TD (ATTRIBUTES.DEBUG, bit 0);
// sept_ve_disable: the TD expects ATTRIBUTES.SEPT_VE_DISABLE (bit 28); migratable: the TD may
// migrate (ATTRIBUTES.MIGRATABLE, TD migration spec). Bits 63:3 are reserved, zero.
inline constexpr std::uint64_t kIgvmTdxPolicyDebugAllowed = 1ull << 0;
inline constexpr std::uint64_t kIgvmTdxPolicySeptVeDisable = 1ull << 1;
inline constexpr std::uint64_t kIgvmTdxPolicyMigratable = 1ull << 2;
inline constexpr std::uint64_t kIgvmTdxPolicyKnownBits =
    kIgvmTdxPolicyDebugAllowed | kIgvmTdxPolicySeptVeDisable | kIgvmTdxPolicyMigratable;

struct IgvmTdxOptions {
  TdxPageOrder page_order = TdxPageOrder::kSinglePass;
  std::uint32_t vcpus = 1;  // LaunchPlan::vcpu_count(); the file's VP_COUNT is the VMM's to fill
};

// The TDX plan of the file's TDX platform. Fails (naming the directive) when there is no such
// platform, on a VP context for it, on SNP page types, 2 MiB or shared pages, SNP ID blocks or
// VBS measurements for TDX, a guest policy with reserved bits set, zero vCPUs, the parameter
// area errors and the memory bound of build_snp_plan, and on anything LaunchPlanBuilder
// rejects.
Result<LaunchPlan> build_tdx_plan(const IgvmFile& file, const IgvmTdxOptions& options = {});

}  // namespace cloister::fw
