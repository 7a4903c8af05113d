#include "cloister/firmware_loader/igvm.h"

#include <algorithm>
#include <array>
#include <bit>
#include <map>

#include "cloister/common/hex.h"
#include "cloister/firmware_loader/machine.h"
#include "crc32.h"
#include "igvm_defs.h"
#include "snp_abi_defs.h"

namespace cloister::fw {
namespace {

enum class Section { kPlatform = 0, kInitialization = 1, kDirective = 2 };

std::string_view section_name(Section s) {
  switch (s) {
    case Section::kPlatform:
      return "platform";
    case Section::kInitialization:
      return "initialization";
    case Section::kDirective:
      return "directive";
  }
  return "unknown";
}

std::optional<Section> section_of(std::uint32_t type) {
  if (type >= igvm::kRangePlatformFirst && type <= igvm::kRangePlatformLast)
    return Section::kPlatform;
  if (type >= igvm::kRangeInitFirst && type <= igvm::kRangeInitLast)
    return Section::kInitialization;
  if (type >= igvm::kRangeDirectiveFirst && type <= igvm::kRangeDirectiveLast)
    return Section::kDirective;
  return std::nullopt;
}

std::optional<IgvmParameterKind> parameter_kind(std::uint32_t type) {
  switch (type) {
    case 0x307:
      return IgvmParameterKind::kVpCount;
    case 0x308:
      return IgvmParameterKind::kSrat;
    case 0x309:
      return IgvmParameterKind::kMadt;
    case 0x30A:
      return IgvmParameterKind::kMmioRanges;
    case 0x30C:
      return IgvmParameterKind::kMemoryMap;
    case 0x30E:
      return IgvmParameterKind::kCommandLine;
    case 0x30F:
      return IgvmParameterKind::kSlit;
    case 0x310:
      return IgvmParameterKind::kPptt;
    case 0x312:
      return IgvmParameterKind::kDeviceTree;
    case 0x313:
      return IgvmParameterKind::kEnvironmentInfo;
    default:
      return std::nullopt;
  }
}

// The structure size of each supported header type.
std::optional<std::size_t> expected_size(std::uint32_t type) {
  switch (type) {
    case igvm::kSupportedPlatform:
      return igvm::kSupportedPlatformSize;
    case igvm::kGuestPolicy:
      return igvm::kGuestPolicySize;
    case igvm::kRelocatableRegion:
      return igvm::kRelocatableRegionSize;
    case igvm::kPageTableRelocation:
      return igvm::kPageTableRelocationSize;
    case igvm::kCorimDocument:
    case igvm::kCorimSignature:
      return igvm::kCorimDataSize;
    case igvm::kParameterArea:
      return igvm::kParameterAreaSize;
    case igvm::kPageData:
      return igvm::kPageDataSize;
    case igvm::kParameterInsert:
      return igvm::kParameterInsertSize;
    case igvm::kVpContext:
      return igvm::kVpContextSize;
    case igvm::kRequiredMemory:
      return igvm::kRequiredMemorySize;
    case igvm::kSnpIdBlock:
      return igvm::kSnpIdBlockSize;
    case igvm::kErrorRange:
      return igvm::kErrorRangeSize;
    case igvm::kVbsMeasurement:
      return igvm::kVbsMeasurementSize;
    default:
      if (parameter_kind(type)) return igvm::kParameterSize;
      return std::nullopt;
  }
}

// Parses the headers of one file into platforms, policies and directives; fail() prefixes
// errors with the header's index, type and offset.
class Parser {
 public:
  explicit Parser(ByteView file) : b_(file) {}

  Status run();

  std::vector<IgvmPlatform> platforms;
  std::vector<IgvmGuestPolicy> policies;
  std::vector<IgvmDirective> directives;

 private:
  Error fail(const std::string& reason) const {
    return Error("IGVM variable header " + std::to_string(index_) + " (type " + hex_number(type_) +
                 ") at offset " + hex_number(at_) + ": " + reason);
  }
  Result<ByteView> file_data(std::uint32_t file_offset, std::uint64_t size,
                             std::string_view field) const;
  std::optional<std::uint8_t> platform_of(std::uint32_t mask) const;
  Status header(ByteView content);

  ByteView b_;
  std::size_t data_start_ = 0;
  std::size_t index_ = 0;
  std::size_t at_ = 0;
  std::uint32_t type_ = 0;
};

Result<ByteView> Parser::file_data(std::uint32_t file_offset, std::uint64_t size,
                                   std::string_view field) const {
  if (file_offset == 0) return ByteView{};
  // size is up to 64 bits from the file: compared with what is left, never added to.
  if (file_offset < data_start_ || file_offset > b_.size() || size > b_.size() - file_offset) {
    return fail(std::string(field) + " file_offset " + hex_number(file_offset) + " with " +
                hex_number(size) + " bytes lies outside the file data [" + hex_number(data_start_) +
                ", " + hex_number(b_.size()) + ")");
  }
  return b_.subspan(file_offset, static_cast<std::size_t>(size));
}

std::optional<std::uint8_t> Parser::platform_of(std::uint32_t mask) const {
  for (const IgvmPlatform& p : platforms)
    if ((p.compatibility_mask & mask) != 0) return p.platform_type;
  return std::nullopt;
}

Status Parser::run() {
  const std::size_t n = b_.size();
  if (n < igvm::kFixedHeaderSize) {
    return Error("IGVM file is " + std::to_string(n) +
                 " bytes, smaller than the 24-byte "
                 "fixed header");
  }
  if (load_le32(b_, 0) != igvm::kMagic) {
    return Error("IGVM fixed header: expected magic \"IGVM\" (0x4d564749), found " +
                 hex_number(load_le32(b_, 0)));
  }
  const std::uint32_t version = load_le32(b_, 4);
  if (version != igvm::kFormatVersion1) {
    return Error("IGVM fixed header: format_version " + std::to_string(version) +
                 " is not supported (expected 1; version 2 is unstable)");
  }
  const std::uint32_t var_offset = load_le32(b_, 8);
  const std::uint32_t var_size = load_le32(b_, 12);
  const std::uint32_t total = load_le32(b_, 16);
  const std::uint32_t checksum = load_le32(b_, igvm::kChecksumOffset);
  if (total != n) {
    return Error("IGVM fixed header: total_file_size " + hex_number(total) +
                 " does not match the " + hex_number(n) + "-byte file");
  }
  if (var_offset < igvm::kFixedHeaderSize || var_offset % 8 != 0) {
    return Error("IGVM fixed header: variable_header_offset " + hex_number(var_offset) +
                 " must be 8-byte aligned and not inside the 24-byte fixed header");
  }
  if (std::uint64_t{var_offset} + var_size > n) {
    return Error("IGVM fixed header: variable headers [" + hex_number(var_offset) + ", +" +
                 hex_number(var_size) + ") run past the end of the " + hex_number(n) +
                 "-byte file");
  }
  data_start_ = var_offset + var_size;

  std::array<std::uint8_t, igvm::kFixedHeaderSize> fixed{};
  std::copy_n(b_.begin(), fixed.size(), fixed.begin());
  store_le32(fixed, igvm::kChecksumOffset, 0);
  Crc32 crc;
  crc.update(fixed);
  crc.update(b_.subspan(var_offset, var_size));
  if (crc.value() != checksum) {
    return Error("IGVM fixed header: checksum " + hex_number(checksum) +
                 " does not match the CRC-32 " + hex_number(crc.value()) +
                 " of the fixed and variable headers");
  }

  Section stage = Section::kPlatform;
  for (at_ = var_offset; at_ < data_start_; ++index_) {
    type_ = 0;
    if (index_ == kMaxIgvmHeaders) {
      return fail("a file has at most " + std::to_string(kMaxIgvmHeaders) +
                  " variable headers (one per 4 KiB page of the at most " +
                  size_in_words(kMaxLaunchMemory) + " a launch populates)");
    }
    if (data_start_ - at_ < igvm::kVariableHeaderSize) {
      return fail("truncated: " + std::to_string(data_start_ - at_) +
                  " bytes left in the variable header section, a header needs 8");
    }
    const std::uint32_t raw_type = load_le32(b_, at_);
    const std::uint32_t length = load_le32(b_, at_ + 4);
    type_ = raw_type;
    const std::uint64_t content_end = std::uint64_t{at_} + igvm::kVariableHeaderSize + length;
    const std::uint64_t padded_end = (content_end + 7) & ~std::uint64_t{7};
    if (padded_end > data_start_) {
      return fail("length " + hex_number(length) +
                  " runs past the end of the variable header section "
                  "at offset " +
                  hex_number(data_start_));
    }
    for (std::uint64_t i = content_end; i < padded_end; ++i) {
      if (b_[i] != 0)
        return fail("alignment padding byte at offset " + hex_number(i) + " is not zero");
    }
    const bool ignorable = (raw_type & igvm::kIgnorableTypeBit) != 0;
    const std::uint32_t type = raw_type & ~igvm::kIgnorableTypeBit;
    const auto section = section_of(type);
    if (!section) {
      if (!ignorable) return fail("unknown header type outside every section range");
    } else {
      if (*section < stage) {
        return fail("a " + std::string(section_name(*section)) + " header after " +
                    std::string(section_name(stage)) +
                    " headers; the sections must come in "
                    "the order platform, initialization, directive");
      }
      stage = *section;
      const auto want = expected_size(type);
      if (!want) {
        if (!ignorable) return fail("unsupported header type (see docs/measure.md, IGVM)");
      } else if (length != *want) {
        return fail("length " + std::to_string(length) + ", expected " + std::to_string(*want));
      } else {
        CLOISTER_CHECK_OK(header(b_.subspan(at_ + igvm::kVariableHeaderSize, length)));
      }
    }
    at_ = static_cast<std::size_t>(padded_end);
  }
  return {};
}

Status Parser::header(ByteView c) {
  const std::uint32_t type = type_ & ~igvm::kIgnorableTypeBit;
  switch (type) {
    case igvm::kSupportedPlatform: {
      IgvmPlatform p{load_le32(c, 0), c[4], c[5], load_le16(c, 6), load_le64(c, 8)};
      if (std::popcount(p.compatibility_mask) != 1)
        return fail("compatibility_mask " + hex_number(p.compatibility_mask) +
                    " must have one bit set");
      if (p.platform_type > igvm::kPlatformCca)
        return fail("unknown platform_type " + std::to_string(p.platform_type));
      if (platform_of(p.compatibility_mask))
        return fail("compatibility_mask " + hex_number(p.compatibility_mask) + " is used twice");
      platforms.push_back(p);
      return {};
    }
    case igvm::kGuestPolicy:
      if (load_le32(c, 12) != 0) return fail("reserved field is not zero");
      policies.push_back({load_le64(c, 0), load_le32(c, 8)});
      return {};
    case igvm::kRelocatableRegion:
    case igvm::kPageTableRelocation:
      return {};
    case igvm::kCorimDocument:
    case igvm::kCorimSignature: {
      if (load_le32(c, 12) != 0) return fail("reserved field is not zero");
      if (auto data = file_data(load_le32(c, 4), load_le32(c, 8), "CoRIM data"); !data)
        return data.error();
      return {};
    }
    case igvm::kPageData: {
      IgvmPageData p;
      p.gpa = load_le64(c, 0);
      p.compatibility_mask = load_le32(c, 8);
      const std::uint32_t file_offset = load_le32(c, 12);
      p.flags = load_le32(c, 16);
      p.data_type = load_le16(c, 20);
      if (load_le16(c, 22) != 0) return fail("reserved field is not zero");
      const std::uint32_t known =
          igvm::kPageFlag2Mb | igvm::kPageFlagUnmeasured | igvm::kPageFlagShared;
      if ((p.flags & ~known) != 0)
        return fail("unknown page flag bits " + hex_number(p.flags & ~known));
      if (p.data_type > igvm::kDataCpuidXf)
        return fail("unknown page data_type " + std::to_string(p.data_type));
      CLOISTER_TRY(p.data, file_data(file_offset, kPageSize, "PAGE_DATA"));
      directives.push_back(p);
      return {};
    }
    case igvm::kVpContext: {
      IgvmVpContext v;
      v.gpa = load_le64(c, 0);
      v.compatibility_mask = load_le32(c, 8);
      const std::uint32_t file_offset = load_le32(c, 12);
      v.vp_index = load_le16(c, 16);
      if (load_le16(c, 18) != 0) return fail("reserved field is not zero");
      // A VP context is one platform's register state (the igvm crate asks the same): a mask
      // naming two would have its VMSA read, or not, by whichever platform came first.
      const auto platform = platform_of(v.compatibility_mask);
      if (!platform || std::none_of(platforms.begin(), platforms.end(), [&](const auto& p) {
            return p.compatibility_mask == v.compatibility_mask;
          }))
        return fail("compatibility mask " + hex_number(v.compatibility_mask) +
                    ": expected exactly one declared platform's mask");
      if (platform == igvm::kPlatformSevSnp || platform == igvm::kPlatformSev ||
          platform == igvm::kPlatformSevEs) {
        if (file_offset == 0) return fail("an SEV VP context needs its VMSA in the file data");
        CLOISTER_TRY(v.vmsa, file_data(file_offset, kPageSize, "VP_CONTEXT"));
      }
      directives.push_back(v);
      return {};
    }
    case igvm::kParameterArea: {
      IgvmParameterAreaHeader a;
      a.size = load_le64(c, 0);
      a.index = load_le32(c, 8);
      CLOISTER_TRY(a.initial, file_data(load_le32(c, 12), a.size, "PARAMETER_AREA"));
      directives.push_back(a);
      return {};
    }
    case igvm::kParameterInsert:
      directives.push_back(IgvmParameterInsert{load_le64(c, 0), load_le32(c, 8), load_le32(c, 12)});
      return {};
    case igvm::kRequiredMemory: {
      if (load_le32(c, 20) != 0) return fail("reserved field is not zero");
      if ((load_le32(c, 16) & ~1u) != 0)
        return fail("unknown REQUIRED_MEMORY flag bits " + hex_number(load_le32(c, 16) & ~1u));
      directives.push_back(
          IgvmRequiredMemory{load_le64(c, 0), load_le32(c, 8), load_le32(c, 12), false});
      return {};
    }
    case igvm::kErrorRange:
      directives.push_back(
          IgvmRequiredMemory{load_le64(c, 0), load_le32(c, 8), load_le32(c, 12), true});
      return {};
    case igvm::kSnpIdBlock:
      if (c[igvm::kIdReserved] != 0 || c[igvm::kIdReserved + 1] != 0 ||
          c[igvm::kIdReserved + 2] != 0) {
        return fail("reserved field is not zero");
      }
      if (c[igvm::kIdAuthorKeyEnabled] > 1)
        return fail("author_key_enabled is " + std::to_string(c[igvm::kIdAuthorKeyEnabled]) +
                    ", expected 0 or 1");
      directives.push_back(IgvmSnpIdBlock{load_le32(c, igvm::kIdMask), c});
      return {};
    case igvm::kVbsMeasurement:
      directives.push_back(IgvmOtherPlatformDirective{type, load_le32(c, 0)});
      return {};
    default:
      if (const auto kind = parameter_kind(type)) {
        directives.push_back(IgvmParameterUse{*kind, load_le32(c, 0), load_le32(c, 4)});
        return {};
      }
      return fail("unsupported header type");
  }
}

// KVM_SEV_SNP_LAUNCH_FINISH's ID block and ID auth from the IGVM structure, as QEMU's
// backends/igvm.c does: version 1, the guest policy, keys in the SNP ABI public key layout.
SnpIdBlock convert_id_block(ByteView raw, std::uint64_t policy) {
  SnpIdBlock out;
  auto copy = [](ByteView from, std::size_t at, std::size_t size, std::span<std::uint8_t> to,
                 std::size_t to_at) {
    std::copy_n(from.begin() + static_cast<std::ptrdiff_t>(at), size,
                to.begin() + static_cast<std::ptrdiff_t>(to_at));
  };
  copy(raw, igvm::kIdLd, 48, out.id_block, snp_abi::kIdBlockLd);
  copy(raw, igvm::kIdFamilyId, 16, out.id_block, snp_abi::kIdBlockFamilyId);
  copy(raw, igvm::kIdImageId, 16, out.id_block, snp_abi::kIdBlockImageId);
  store_le32(out.id_block, snp_abi::kIdBlockVersion, snp_abi::kIdBlockVersionValue);
  store_le32(out.id_block, snp_abi::kIdBlockGuestSvn, load_le32(raw, igvm::kIdGuestSvn));
  store_le64(out.id_block, snp_abi::kIdBlockPolicy, policy);

  store_le32(out.id_auth, snp_abi::kIdAuthIdKeyAlgo, load_le32(raw, igvm::kIdIdKeyAlgorithm));
  store_le32(out.id_auth, snp_abi::kIdAuthAuthorKeyAlgo,
             load_le32(raw, igvm::kIdAuthorKeyAlgorithm));
  copy(raw, igvm::kIdIdKeySignature, igvm::kIdSignatureSize, out.id_auth,
       snp_abi::kIdAuthIdBlockSig);
  copy(raw, igvm::kIdAuthorKeySignature, igvm::kIdSignatureSize, out.id_auth,
       snp_abi::kIdAuthIdKeySig);
  // IGVM public key: {u32 curve, u32 reserved, qx[72], qy[72]}.
  for (const auto& [from, to] : {std::pair{igvm::kIdIdPublicKey, snp_abi::kIdAuthIdKey},
                                 std::pair{igvm::kIdAuthorPublicKey, snp_abi::kIdAuthAuthorKey}}) {
    store_le32(out.id_auth, to, load_le32(raw, from));
    copy(raw, from + 8, snp_abi::kEcdsaComponentSize, out.id_auth, to + snp_abi::kPublicKeyQx);
    copy(raw, from + 8 + snp_abi::kEcdsaComponentSize, snp_abi::kEcdsaComponentSize, out.id_auth,
         to + snp_abi::kPublicKeyQy);
  }
  std::copy_n(raw.begin() + igvm::kIdLd, out.expected_launch_digest.size(),
              out.expected_launch_digest.begin());
  out.author_key_enabled = raw[igvm::kIdAuthorKeyEnabled] == 1;
  return out;
}

// How messages name a platform, and why only VTL 0 is launched.
struct PlatformWords {
  std::uint8_t type;
  std::uint16_t version;
  std::string_view header_name;  // "SEV_SNP", as igvm_defs names the platform type
  std::string_view tee;          // "SEV-SNP"
  std::string_view rebuild;      // "an SNP target"
  std::string_view vtl_reason;
};
constexpr PlatformWords kSnpWords{
    igvm::kPlatformSevSnp, igvm::kSevSnpPlatformVersion,   "SEV_SNP", "SEV-SNP",
    "an SNP target",       "KVM launches no VMPL layering"};
constexpr PlatformWords kTdxWords{
    igvm::kPlatformTdx, igvm::kTdxPlatformVersion,         "TDX", "TDX",
    "a TDX target",     "TD partitioning is not supported"};

// The one SUPPORTED_PLATFORM header of the platform, at its igvm_defs version and VTL 0.
Result<const IgvmPlatform*> select_platform(const IgvmFile& file, const PlatformWords& w) {
  const IgvmPlatform* found = nullptr;
  for (const IgvmPlatform& p : file.platforms()) {
    if (p.platform_type != w.type) continue;
    if (found != nullptr)
      return Error("IGVM file declares two " + std::string(w.header_name) + " platforms");
    found = &p;
  }
  if (found == nullptr) {
    return Error("IGVM file has no " + std::string(w.header_name) +
                 " SUPPORTED_PLATFORM header: it was not built for " + std::string(w.tee) +
                 " (rebuild it with " + std::string(w.rebuild) + ")");
  }
  if (found->platform_version != w.version || found->highest_vtl != 0) {
    return Error("IGVM " + std::string(w.header_name) + " platform: version " +
                 std::to_string(found->platform_version) + " and highest VTL " +
                 std::to_string(found->highest_vtl) + " are not supported (expected version " +
                 std::to_string(w.version) + ", VTL 0: " + std::string(w.vtl_reason) + ")");
  }
  return found;
}

// The GUEST_POLICY of the platform with `mask`, if the file has one.
Result<std::optional<std::uint64_t>> select_policy(const IgvmFile& file, std::uint32_t mask,
                                                   std::string_view name) {
  std::optional<std::uint64_t> policy;
  for (const IgvmGuestPolicy& p : file.guest_policies()) {
    if ((p.compatibility_mask & mask) == 0) continue;
    if (policy) return Error("IGVM file has two GUEST_POLICY headers for " + std::string(name));
    policy = p.policy;
  }
  return policy;
}

// The page flags neither platform launches.
Status check_page_flags(const IgvmPageData& page, const std::string& what) {
  if (page.flags & igvm::kPageFlag2Mb)
    return Error(what + ": 2 MiB pages are not supported; rebuild with 4 KiB pages");
  if (page.flags & igvm::kPageFlagShared)
    return Error(what + ": shared (host-visible) pages are not supported");
  return {};
}

// What both platform builders do alike while walking the directives: parameter areas, their
// insertion and parameters, required memory, and the bound on declared guest memory.
class DirectiveWalk {
 public:
  DirectiveWalk(LaunchPlanBuilder& builder, std::uint32_t mask) : builder_(builder), mask_(mask) {}

  // Handles `d` if it is one of the directives above; returns whether it was.
  Result<bool> common(const IgvmDirective& d, const std::string& where);

  // Counts `bytes` more guest memory declared by `what`; fails beyond kMaxGuestMemory, so a
  // small file cannot make a loader back (or a plan list) more than cloister-vmm runs.
  Status declare(std::uint64_t bytes, const std::string& what);

 private:
  struct AreaState {
    std::uint64_t size;
    ByteView initial;
    bool inserted;
  };
  LaunchPlanBuilder& builder_;
  std::uint32_t mask_;
  std::map<std::uint32_t, AreaState> areas_;
  std::size_t parameters_ = 0;
  std::uint64_t declared_ = 0;
};

Status DirectiveWalk::declare(std::uint64_t bytes, const std::string& what) {
  if (bytes > kMaxGuestMemory - declared_) {
    return Error(what + ": the file declares more than " + hex_number(kMaxGuestMemory) +
                 " bytes (1 TiB) of guest memory, the most cloister-vmm backs");
  }
  declared_ += bytes;
  return {};
}

Result<bool> DirectiveWalk::common(const IgvmDirective& d, const std::string& where) {
  if (const auto* area = std::get_if<IgvmParameterAreaHeader>(&d)) {
    const std::string what = where + " (PARAMETER_AREA " + std::to_string(area->index) + ")";
    if (areas_.size() == kMaxIgvmParameterAreas)
      return Error(what + ": a file declares at most " + std::to_string(kMaxIgvmParameterAreas) +
                   " parameter areas");
    if (!areas_.emplace(area->index, AreaState{area->size, area->initial, false}).second)
      return Error(what + ": the index is declared twice");
    CLOISTER_CHECK_OK(declare(area->size, what));
    builder_.add_parameter_area({area->index, area->size, area->initial});
    return true;
  }
  if (const auto* insert = std::get_if<IgvmParameterInsert>(&d)) {
    if ((insert->compatibility_mask & mask_) == 0) return true;
    auto it = areas_.find(insert->index);
    if (it == areas_.end() || it->second.inserted) {
      return Error(where + " (PARAMETER_INSERT of area " + std::to_string(insert->index) +
                   " at GPA " + hex_number(insert->gpa) + "): " +
                   (it == areas_.end() ? "the area is not declared before"
                                       : "the area was inserted already"));
    }
    it->second.inserted = true;
    builder_.add({.gpa = insert->gpa,
                  .size = it->second.size,
                  .type = PageType::kUnmeasured,
                  .data = it->second.initial,
                  .parameter_area = insert->index,
                  .label = where + " (parameter area " + std::to_string(insert->index) + ")"});
    return true;
  }
  if (const auto* use = std::get_if<IgvmParameterUse>(&d)) {
    auto it = areas_.find(use->index);
    if (it == areas_.end() || it->second.inserted) {
      return Error(where + " (" + std::string(to_string(use->kind)) + " parameter): area " +
                   std::to_string(use->index) +
                   (it == areas_.end() ? " is not declared before"
                                       : " was inserted already and can no longer change"));
    }
    if (++parameters_ > kMaxIgvmParameters)
      return Error(where + " (" + std::string(to_string(use->kind)) +
                   " parameter): a file fills at most " + std::to_string(kMaxIgvmParameters) +
                   " parameters");
    builder_.add_parameter({use->kind, use->index, use->byte_offset});
    return true;
  }
  if (const auto* mem = std::get_if<IgvmRequiredMemory>(&d)) {
    if ((mem->compatibility_mask & mask_) == 0) return true;
    CLOISTER_CHECK_OK(
        declare(mem->size, where + " (REQUIRED_MEMORY at GPA " + hex_number(mem->gpa) + ")"));
    builder_.add_required_memory({mem->gpa, mem->size});
    return true;
  }
  return false;
}

}  // namespace

Result<IgvmFile> IgvmFile::parse(std::shared_ptr<const Bytes> file) {
  Parser parser(*file);
  CLOISTER_CHECK_OK(parser.run());
  IgvmFile out;
  out.file_ = std::move(file);
  out.platforms_ = std::move(parser.platforms);
  out.policies_ = std::move(parser.policies);
  out.directives_ = std::move(parser.directives);
  return out;
}

Result<LaunchPlan> build_snp_plan(const IgvmFile& file, const IgvmLoadOptions& options) {
  CLOISTER_TRY(const IgvmPlatform* snp, select_platform(file, kSnpWords));
  const std::uint32_t mask = snp->compatibility_mask;

  LaunchPlanBuilder builder(Tee::kSevSnp);
  builder.keep(file.shared_bytes());
  CLOISTER_TRY(const auto policy, select_policy(file, mask, "SEV_SNP"));
  if (policy) {
    if ((*policy & snp_abi::kPolicyMustBeOne) == 0) {
      return Error("IGVM GUEST_POLICY " + hex_number(*policy) +
                   ": bit 17 (reserved, must be one) is clear; KVM rejects such a policy");
    }
    builder.set_snp_policy(*policy);
  }

  DirectiveWalk walk(builder, mask);
  std::map<std::uint16_t, ByteView> vmsas;
  std::optional<ByteView> id_block;
  for (std::size_t i = 0; i < file.directives().size(); ++i) {
    const IgvmDirective& d = file.directives()[i];
    const std::string where = "IGVM directive " + std::to_string(i);
    CLOISTER_TRY(const bool handled, walk.common(d, where));
    if (handled) continue;
    if (const auto* page = std::get_if<IgvmPageData>(&d)) {
      if ((page->compatibility_mask & mask) == 0) continue;
      const std::string what = where + " (PAGE_DATA at GPA " + hex_number(page->gpa) + ")";
      CLOISTER_CHECK_OK(check_page_flags(*page, what));
      CLOISTER_CHECK_OK(walk.declare(kPageSize, what));
      LaunchOp op{.gpa = page->gpa, .size = kPageSize, .data = page->data, .label = what};
      switch (page->data_type) {
        case igvm::kDataSecrets:
          op.type = PageType::kSecrets;
          break;
        case igvm::kDataCpuid:
        case igvm::kDataCpuidXf:
          op.type = PageType::kCpuid;
          break;
        default:
          if (page->flags & igvm::kPageFlagUnmeasured) {
            op.type = PageType::kUnmeasured;
          } else if (page->data.empty() && options.zero_pages == IgvmZeroPages::kSnpZero) {
            op.type = PageType::kZero;
          } else {
            op.type = PageType::kNormal;
          }
      }
      builder.add(std::move(op));
    } else if (const auto* vp = std::get_if<IgvmVpContext>(&d)) {
      if ((vp->compatibility_mask & mask) == 0) continue;
      const std::string what = where + " (VP_CONTEXT of VP " + std::to_string(vp->vp_index) + ")";
      if (vp->gpa != kSnpVmsaGpa) {
        return Error(what + ": VMSA GPA " + hex_number(vp->gpa) + "; KVM measures every VMSA at " +
                     hex_number(kSnpVmsaGpa) +
                     ", so this file's digest cannot be reproduced under "
                     "KVM: rebuild the IGVM file for KVM/QEMU");
      }
      if (!vmsas.emplace(vp->vp_index, vp->vmsa).second)
        return Error(what + ": a second VP context for the same VP");
    } else if (const auto* id = std::get_if<IgvmSnpIdBlock>(&d)) {
      if ((id->compatibility_mask & mask) == 0) continue;
      if (id_block) return Error(where + " (SNP_ID_BLOCK): a second ID block");
      id_block = id->raw;
    } else if (const auto* other = std::get_if<IgvmOtherPlatformDirective>(&d)) {
      if ((other->compatibility_mask & mask) != 0) {
        return Error(where + " (type " + hex_number(other->type) +
                     "): this directive does not apply to SEV-SNP");
      }
    }
  }
  std::uint32_t expected = 0;
  for (const auto& [vp_index, vmsa] : vmsas) {
    if (vp_index != expected) {
      return Error("IGVM VP contexts: VP " + std::to_string(expected) +
                   " has none (VP indices must be 0.." + std::to_string(vmsas.size() - 1) + ")");
    }
    builder.add({.gpa = kSnpVmsaGpa,
                 .size = kPageSize,
                 .type = PageType::kVmsa,
                 .data = vmsa,
                 .vcpu = expected,
                 .label = "IGVM VP context of VP " + std::to_string(expected)});
    ++expected;
  }
  if (id_block) builder.set_snp_id_block(convert_id_block(*id_block, policy.value_or(0)));
  return std::move(builder).build();
}

Result<LaunchPlan> build_tdx_plan(const IgvmFile& file, const IgvmTdxOptions& options) {
  CLOISTER_TRY(const IgvmPlatform* tdx, select_platform(file, kTdxWords));
  const std::uint32_t mask = tdx->compatibility_mask;
  if (options.vcpus == 0)
    return Error("zero vCPUs: a TD needs at least one; give --vcpus N (N >= 1)");

  LaunchPlanBuilder builder(Tee::kTdx);
  builder.keep(file.shared_bytes());
  builder.set_tdx_page_order(options.page_order);
  builder.set_tdx_vcpu_count(options.vcpus);
  CLOISTER_TRY(const auto policy, select_policy(file, mask, "TDX"));
  if (policy) {
    if ((*policy & ~kIgvmTdxPolicyKnownBits) != 0) {
      return Error("IGVM GUEST_POLICY " + hex_number(*policy) + " for TDX: bits " +
                   hex_number(*policy & ~kIgvmTdxPolicyKnownBits) +
                   " are reserved (igvm_defs TdxPolicy defines debug_allowed, sept_ve_disable "
                   "and migratable in bits 0-2) and must be zero");
    }
    builder.set_tdx_policy(*policy);
  }

  DirectiveWalk walk(builder, mask);
  for (std::size_t i = 0; i < file.directives().size(); ++i) {
    const IgvmDirective& d = file.directives()[i];
    const std::string where = "IGVM directive " + std::to_string(i);
    CLOISTER_TRY(const bool handled, walk.common(d, where));
    if (handled) continue;
    if (const auto* page = std::get_if<IgvmPageData>(&d)) {
      if ((page->compatibility_mask & mask) == 0) continue;
      const std::string what = where + " (PAGE_DATA at GPA " + hex_number(page->gpa) + ")";
      CLOISTER_CHECK_OK(check_page_flags(*page, what));
      if (page->data_type != igvm::kDataNormal) {
        return Error(what + ": data_type " + std::to_string(page->data_type) +
                     " (SECRETS / CPUID) is an SEV-SNP page type; a TD has no such pages");
      }
      CLOISTER_CHECK_OK(walk.declare(kPageSize, what));
      const bool measured = (page->flags & igvm::kPageFlagUnmeasured) == 0;
      builder.add({.gpa = page->gpa,
                   .size = kPageSize,
                   .type = !measured            ? PageType::kUnmeasured
                           : page->data.empty() ? PageType::kZero
                                                : PageType::kNormal,
                   .data = page->data,
                   .tdx_extend = measured,
                   .label = what});
    } else if (const auto* vp = std::get_if<IgvmVpContext>(&d)) {
      if ((vp->compatibility_mask & mask) == 0) continue;
      return Error(where + " (VP_CONTEXT of VP " + std::to_string(vp->vp_index) +
                   "): a TD's vCPUs start in the architectural reset state the TDX module sets "
                   "(TDH.VP.INIT), so a file cannot give them a context; rebuild the file "
                   "without a TDX VP_CONTEXT");
    } else if (const auto* id = std::get_if<IgvmSnpIdBlock>(&d)) {
      if ((id->compatibility_mask & mask) != 0)
        return Error(where + " (SNP_ID_BLOCK): an SEV-SNP ID block does not apply to TDX");
    } else if (const auto* other = std::get_if<IgvmOtherPlatformDirective>(&d)) {
      if ((other->compatibility_mask & mask) != 0) {
        return Error(where + " (type " + hex_number(other->type) +
                     "): this directive does not apply to TDX");
      }
    }
  }
  return std::move(builder).build();
}

}  // namespace cloister::fw
