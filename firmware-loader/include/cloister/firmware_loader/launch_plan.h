// The LaunchPlan: one ordered description of how a confidential guest's initial memory and
// vCPU state are put in place, executed by the VMM and folded into the expected measurement
// by `measure` (DESIGN.md, "The LaunchPlan").
//
// Contract for a backend (KVM SNP, KVM TDX, the simulator):
//   * Execute ops() in order. Every op covers [gpa, gpa + size) in 4 KiB pages; its initial
//     contents are `data` followed by zeros up to `size` (for_each_page() yields exactly those
//     bytes). Non-VMSA ops never overlap.
//   * SEV-SNP (tee() == Tee::kSevSnp): an op is one KVM_SEV_SNP_LAUNCH_UPDATE of
//     snp_page_type_code(type) over the range, except kVmsa ops: those are the vCPUs' initial
//     VMSAs, one per vCPU in vCPU order, always after every page op, at kSnpVmsaGpa - KVM
//     builds them from the vCPU registers and measures them in KVM_SEV_SNP_LAUNCH_FINISH, so
//     a backend sets each vCPU's registers so that its VMSA equals `data` (decode_vmsa() in
//     vmsa.h gives the registers). A kCpuid page without data is filled by the VMM from its
//     CPUID configuration; with data (IGVM) it is the CPUID table the guest expects, which
//     the firmware checks. The firmware initializes kSecrets pages. snp() gives the
//     KVM_SEV_INIT2 vmsa_features, a measured direct boot's kernel hashes and, from IGVM
//     files, the guest policy and ID block.
//   * TDX (tee() == Tee::kTdx): an op is one KVM_TDX_INIT_MEM_REGION of its contents over
//     the range, with KVM_TDX_MEASURE_MEMORY_REGION iff tdx_extend. The kTdHob op holds the TD
//     HOB (tdx.h) and its GPA is the KVM_TDX_INIT_VCPU RCX; kZero ops are zero-filled memory;
//     kUnmeasured ops are never extended. tdx_page_order() says in which order the TDX module
//     saw the PAGE.ADD/MR.EXTEND steps; upstream KVM always does kSinglePass, so a KVM
//     backend rejects kTwoPass plans. vcpu_count() is the number of vCPUs to create; tdx()
//     gives an IGVM file's TDX policy.
//   * IGVM plans may also carry parameter areas: an op with `parameter_area` set is an
//     unmeasured copy of that area, into which the VMM first writes the parameters() it
//     supports (vCPU count, memory map, ...), and required_memory() ranges the VMM must back.
// Contents are views into buffers the plan shares ownership of (the firmware image is not
// copied); they stay valid for as long as any copy of the plan lives. A plan is immutable.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"
#include "cloister/common/sha.h"

namespace cloister::fw {

inline constexpr std::uint64_t kPageSize = 0x1000;

// KVM measures every VMSA at this GPA: (u64)-1, page aligned, bits 63:52 cleared (Linux
// arch/x86/kvm/svm/sev.c INITIAL_VMSA_GPA; sev-snp-measure gctx.py VMSA_GPA).
inline constexpr std::uint64_t kSnpVmsaGpa = 0xFFFFFFFFF000;

// Guest-physical addresses are at most 52 bits wide on both TEEs.
inline constexpr std::uint64_t kMaxGpa = 1ull << 52;

// The most memory one plan's ops may put in place before the guest runs (VMSAs aside). Every
// page costs the loader a copy or a zeroing and the measurement a hash, so a small file that
// declares a huge range (an IGVM parameter area, a TDVF TempMem section) must not turn into
// minutes of hashing. Real plans stay far below: OVMF and TDVF add a few MiB, IGVM files with
// an embedded kernel tens of MiB.
inline constexpr std::uint64_t kMaxLaunchMemory = 1ull << 30;

enum class Tee { kSevSnp, kTdx };
std::string_view to_string(Tee tee);  // "snp", "tdx"

enum class PageType : std::uint8_t {
  kNormal,      // SNP NORMAL; TDX PAGE.ADD of the contents (MR.EXTEND iff tdx_extend)
  kZero,        // SNP ZERO (firmware zero-fills, measures the type only); TDX zeroed PAGE.ADD
                // (MR.EXTEND iff tdx_extend)
  kUnmeasured,  // contents loaded, not measured: SNP UNMEASURED; TDX PAGE.ADD, no MR.EXTEND
  kSecrets,     // SNP SECRETS page
  kCpuid,       // SNP CPUID page
  kVmsa,        // SNP VMSA of vCPU `vcpu`
  kTdHob,       // TDX TD HOB (`data`, tdx.h): PAGE.ADD (MR.EXTEND iff tdx_extend)
};
std::string_view to_string(PageType type);  // "normal", "zero", ..., "td-hob"

// SNP_LAUNCH_UPDATE PAGE_TYPE (SNP ABI spec Table 67; = KVM_SEV_SNP_PAGE_TYPE_* and 2 for
// VMSA). Returns 0 for kTdHob, which SNP plans never contain.
std::uint8_t snp_page_type_code(PageType type);

// Order in which the TDX module saw each section's TDH.MEM.PAGE.ADD and TDH.MR.EXTEND steps.
enum class TdxPageOrder {
  kSinglePass,  // per page: PAGE.ADD, then its 16 MR.EXTENDs (upstream KVM + QEMU >= 10.1)
  kTwoPass,     // per section: all PAGE.ADDs, then all MR.EXTENDs (Canonical QEMU 8.2.2)
};
std::string_view to_string(TdxPageOrder order);  // "single-pass", "two-pass"

struct LaunchOp {
  std::uint64_t gpa = 0;   // 4 KiB aligned
  std::uint64_t size = 0;  // bytes, a non-zero multiple of 4 KiB
  PageType type = PageType::kNormal;
  ByteView data{};          // initial contents (at most `size` bytes; the rest is zero)
  std::uint32_t vcpu = 0;   // kVmsa: the vCPU index
  bool tdx_extend = false;  // TDX: TDH.MR.EXTEND the pages' contents into MRTD
  // SNP: this op's pages are already covered by the plan's snp_seed() (sev-snp-measure's
  // --snp-ovmf-hash). The VMM still executes it; measure starts from the seed and skips it.
  bool seeded = false;
  std::optional<std::uint32_t> parameter_area{};  // IGVM: the op is this parameter area
  std::string label{};  // where the op comes from, for messages and --json output

  std::uint64_t page_count() const { return size / kPageSize; }
};

struct GpaRange {
  std::uint64_t gpa = 0;
  std::uint64_t size = 0;

  friend bool operator==(const GpaRange&, const GpaRange&) = default;
};

// IGVM parameter kinds (igvm_defs IgvmVariableHeaderType values).
enum class IgvmParameterKind : std::uint32_t {
  kVpCount = 0x307,
  kSrat = 0x308,
  kMadt = 0x309,
  kMmioRanges = 0x30A,
  kMemoryMap = 0x30C,
  kCommandLine = 0x30E,
  kSlit = 0x30F,
  kPptt = 0x310,
  kDeviceTree = 0x312,
  kEnvironmentInfo = 0x313,
};
std::string_view to_string(IgvmParameterKind kind);  // "vp_count", "memory_map", ...

struct ParameterArea {
  std::uint32_t index = 0;
  std::uint64_t size = 0;  // bytes, a multiple of 4 KiB
  ByteView initial;        // initial contents (rest zero)
};

// "Write parameter `kind` at `byte_offset` of parameter area `area`."
struct Parameter {
  IgvmParameterKind kind = IgvmParameterKind::kVpCount;
  std::uint32_t area = 0;
  std::uint32_t byte_offset = 0;
};

// The SNP ID block and its authentication structure in KVM_SEV_SNP_LAUNCH_FINISH layout
// (SNP ABI spec Tables 75 and 76), and the launch digest the ID block's author expects.
struct SnpIdBlock {
  std::array<std::uint8_t, 96> id_block{};
  std::array<std::uint8_t, 4096> id_auth{};
  Sha384Digest expected_launch_digest{};
  bool author_key_enabled = false;
};

// SHA-256 of the kernel, initrd and command line that OVMF compares with what fw_cfg delivers
// (QEMU target/i386/sev.c SevHashTable; sev-snp-measure sev_hashes.py). QEMU hashes the kernel
// as setup || payload the way its x86 loader splits a bzImage, with the setup header left
// unpatched under SEV: together, the file as given.
struct SevHashes {
  Sha256Digest kernel{};
  Sha256Digest initrd{};   // of the empty string when there is no initrd
  Sha256Digest cmdline{};  // of the UTF-8 command line plus its NUL ("\0" when none)

  static SevHashes compute(ByteView kernel, ByteView initrd, std::string_view cmdline);
};

struct SnpGuestConfig {
  // SEV_FEATURES of the plan's VMSAs (all equal): KVM_SEV_INIT2 vmsa_features.
  std::uint64_t vmsa_features = 0;
  std::optional<std::uint64_t> policy;  // from an IGVM GUEST_POLICY header
  std::optional<SnpIdBlock> id_block;   // from an IGVM SNP_ID_BLOCK header
  // Measured direct boot: the hashes in the plan's SEV hashes page, which the kernel, initrd
  // and command line the VMM hands OVMF must match.
  std::optional<SevHashes> kernel_hashes;
};

struct TdxGuestConfig {
  // From an IGVM GUEST_POLICY header: igvm_defs TdxPolicy (bit 0 debug_allowed, bit 1
  // sept_ve_disable, bit 2 migratable; the rest zero), igvm.h.
  std::optional<std::uint64_t> policy;
};

class LaunchPlan {
 public:
  Tee tee() const { return tee_; }
  std::span<const LaunchOp> ops() const { return ops_; }
  // SNP: the number of VMSAs (0 for a firmware-only plan, which cannot be launched).
  // TDX: the vCPUs the TD is built for (announced in the TD HOB).
  std::uint32_t vcpu_count() const { return vcpu_count_; }
  // SNP: the launch digest the seeded ops are already folded into.
  const std::optional<Sha384Digest>& snp_seed() const { return snp_seed_; }
  const SnpGuestConfig& snp() const { return snp_; }
  const TdxGuestConfig& tdx() const { return tdx_; }
  TdxPageOrder tdx_page_order() const { return tdx_page_order_; }
  std::span<const ParameterArea> parameter_areas() const { return parameter_areas_; }
  std::span<const Parameter> parameters() const { return parameters_; }
  std::span<const GpaRange> required_memory() const { return required_memory_; }

 private:
  friend class LaunchPlanBuilder;
  explicit LaunchPlan(Tee tee) : tee_(tee) {}

  Tee tee_;
  std::vector<std::shared_ptr<const Bytes>> storage_;
  std::vector<LaunchOp> ops_;
  std::uint32_t vcpu_count_ = 0;
  std::optional<Sha384Digest> snp_seed_;
  SnpGuestConfig snp_;
  TdxGuestConfig tdx_;
  TdxPageOrder tdx_page_order_ = TdxPageOrder::kSinglePass;
  std::vector<ParameterArea> parameter_areas_;
  std::vector<Parameter> parameters_;
  std::vector<GpaRange> required_memory_;
};

// Assembles a plan; build() checks it against the contract above and names the offending op
// (index and label) with the expected and found values when it does not hold, and refuses ops
// adding up to more than kMaxLaunchMemory. The firmware builders (snp.h, tdx.h, igvm.h) use it,
// and so can a VMM with a guest of its own.
class LaunchPlanBuilder {
 public:
  explicit LaunchPlanBuilder(Tee tee) : plan_(tee) {}

  // Shares ownership of `bytes` with the plan and returns a view of them for LaunchOp::data
  // or ParameterArea::initial.
  ByteView keep(std::shared_ptr<const Bytes> bytes);
  ByteView keep(Bytes bytes);

  LaunchPlanBuilder& add(LaunchOp op);
  LaunchPlanBuilder& set_snp_seed(const Sha384Digest& seed);
  LaunchPlanBuilder& set_snp_policy(std::uint64_t policy);
  LaunchPlanBuilder& set_snp_id_block(const SnpIdBlock& id_block);
  LaunchPlanBuilder& set_snp_kernel_hashes(const SevHashes& hashes);
  LaunchPlanBuilder& set_tdx_page_order(TdxPageOrder order);
  LaunchPlanBuilder& set_tdx_vcpu_count(std::uint32_t vcpus);
  LaunchPlanBuilder& set_tdx_policy(std::uint64_t policy);
  LaunchPlanBuilder& add_parameter_area(const ParameterArea& area);
  LaunchPlanBuilder& add_parameter(const Parameter& parameter);
  LaunchPlanBuilder& add_required_memory(const GpaRange& range);

  Result<LaunchPlan> build() &&;

 private:
  LaunchPlan plan_;
};

namespace detail {
inline constexpr std::array<std::uint8_t, kPageSize> kZeroPage{};
}  // namespace detail

// Calls fn(gpa, page) for each 4 KiB page of `op` in ascending GPA order. `page` is exactly
// 4096 bytes: a view into the plan's storage where `data` covers the whole page, otherwise
// zero-padded bytes that are only valid during the call.
template <typename Fn>
void for_each_page(const LaunchOp& op, Fn&& fn) {
  std::array<std::uint8_t, kPageSize> partial;
  for (std::uint64_t i = 0; i < op.page_count(); ++i) {
    const std::uint64_t offset = i * kPageSize;
    const std::uint64_t gpa = op.gpa + offset;
    if (offset + kPageSize <= op.data.size()) {
      fn(gpa, op.data.subspan(offset, kPageSize));
    } else if (offset >= op.data.size()) {
      fn(gpa, ByteView(detail::kZeroPage));
    } else {
      const auto head = op.data.subspan(offset);
      std::copy(head.begin(), head.end(), partial.begin());
      std::fill(partial.begin() + static_cast<std::ptrdiff_t>(head.size()), partial.end(), 0);
      fn(gpa, ByteView(partial));
    }
  }
}

}  // namespace cloister::fw
