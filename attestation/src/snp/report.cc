#include "cloister/attestation/snp/report.h"

#include <algorithm>

#include "cloister/common/hex.h"

namespace cloister::attestation::snp {
namespace {

template <std::size_t N>
std::array<std::uint8_t, N> copy_field(ByteView raw, std::size_t offset) {
  std::array<std::uint8_t, N> out{};
  std::copy_n(raw.begin() + static_cast<std::ptrdiff_t>(offset), N, out.begin());
  return out;
}

void put_field(Bytes& out, std::size_t offset, ByteView field) {
  std::copy(field.begin(), field.end(), out.begin() + static_cast<std::ptrdiff_t>(offset));
}

// Which optional fields a version's layout carries (an unknown version: none).
bool layout_has_cpuid(std::uint32_t version) {
  return version >= 3 && version <= kMaxReportVersion;
}
bool layout_has_mit_vectors(std::uint32_t version) {
  return version == 5;
}

bool bit(std::uint64_t value, unsigned n) {
  return (value >> n) & 1;
}

void require_zero(const SnpReport& r, std::size_t begin, std::size_t end, const char* field,
                  std::vector<std::string>& problems) {
  ByteView range = ByteView(r.raw).subspan(begin, end - begin);
  if (is_all_zero(range)) return;
  for (std::size_t i = 0; i < range.size(); ++i) {
    if (range[i] != 0) {
      problems.push_back(std::string(field) + " (bytes " + hex_number(begin) + "-" +
                         hex_number(end - 1) + ") must be zero, found " + hex_number(range[i]) +
                         " at " + hex_number(begin + i));
      return;
    }
  }
}

}  // namespace

std::string TcbParts::to_string() const {
  std::string out;
  if (fmc) out += "fmc " + std::to_string(*fmc) + ", ";
  out += "bl " + std::to_string(bl) + ", tee " + std::to_string(tee) + ", snp " +
         std::to_string(snp) + ", ucode " + std::to_string(ucode);
  return out;
}

bool TcbParts::at_least(const TcbParts& m) const {
  if (fmc && m.fmc && *fmc < *m.fmc) return false;
  return bl >= m.bl && tee >= m.tee && snp >= m.snp && ucode >= m.ucode;
}

std::array<std::uint8_t, 8> TcbVersion::bytes() const {
  std::array<std::uint8_t, 8> out{};
  store_le64(out, 0, raw_);
  return out;
}

std::string TcbVersion::to_hex() const {
  return cloister::to_hex(bytes());
}

Result<TcbVersion> TcbVersion::from_parts(Product product, const TcbParts& p) {
  std::array<std::uint8_t, 8> b{};
  if (uses_fmc_tcb_layout(product)) {
    if (!p.fmc) {
      return Error("TCB for " + std::string(product_name(product)) +
                   ": the FMC SPL is missing (this product's TCB_VERSION starts with it)");
    }
    b = {*p.fmc, p.bl, p.tee, p.snp, 0, 0, 0, p.ucode};
  } else {
    if (p.fmc) {
      return Error("TCB for " + std::string(product_name(product)) +
                   ": an FMC SPL was given, but this product's TCB_VERSION has none");
    }
    b = {p.bl, p.tee, 0, 0, 0, 0, p.snp, p.ucode};
  }
  return TcbVersion(load_le64(b, 0));
}

TcbParts TcbVersion::parts(Product product) const {
  auto b = bytes();
  TcbParts p;
  if (uses_fmc_tcb_layout(product)) {
    p.fmc = b[0];
    p.bl = b[1];
    p.tee = b[2];
    p.snp = b[3];
  } else {
    p.bl = b[0];
    p.tee = b[1];
    p.snp = b[6];
  }
  p.ucode = b[7];
  return p;
}

bool TcbVersion::reserved_bytes_zero(Product product) const {
  auto b = bytes();
  if (uses_fmc_tcb_layout(product)) return b[4] == 0 && b[5] == 0 && b[6] == 0;
  return b[2] == 0 && b[3] == 0 && b[4] == 0 && b[5] == 0;
}

std::string FirmwareVersion::to_string() const {
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(build);
}

std::string_view to_string(SigningKey key) {
  switch (key) {
    case SigningKey::kVcek:
      return "VCEK";
    case SigningKey::kVlek:
      return "VLEK";
    case SigningKey::kNone:
      return "NONE";
    case SigningKey::kReserved:
      return "reserved";
  }
  return "reserved";
}

GuestPolicy SnpReport::guest_policy() const {
  GuestPolicy p;
  p.abi_minor = static_cast<std::uint8_t>(policy & 0xff);
  p.abi_major = static_cast<std::uint8_t>((policy >> 8) & 0xff);
  p.smt = bit(policy, policy_bit::kSmt);
  p.reserved_bit17 = bit(policy, policy_bit::kReservedMustBeOne);
  p.migrate_ma = bit(policy, policy_bit::kMigrateMa);
  p.debug = bit(policy, policy_bit::kDebug);
  p.single_socket = bit(policy, policy_bit::kSingleSocket);
  p.cxl_allow = bit(policy, policy_bit::kCxlAllow);
  p.mem_aes_256_xts = bit(policy, policy_bit::kMemAes256Xts);
  p.rapl_dis = bit(policy, policy_bit::kRaplDis);
  p.ciphertext_hiding = bit(policy, policy_bit::kCiphertextHiding);
  p.page_swap_disable = bit(policy, policy_bit::kPageSwapDisable);
  return p;
}

PlatformInfo SnpReport::platform_info_bits() const {
  PlatformInfo p;
  p.smt_en = bit(platform_info, platform_bit::kSmtEn);
  p.tsme_en = bit(platform_info, platform_bit::kTsmeEn);
  p.ecc_en = bit(platform_info, platform_bit::kEccEn);
  p.rapl_dis = bit(platform_info, platform_bit::kRaplDis);
  p.ciphertext_hiding_en = bit(platform_info, platform_bit::kCiphertextHidingEn);
  p.alias_check_complete = bit(platform_info, platform_bit::kAliasCheckComplete);
  p.unknown_bit6 = bit(platform_info, platform_bit::kUnknown6);
  p.tio_en = bit(platform_info, platform_bit::kTioEn);
  return p;
}

SignerInfo SnpReport::signer() const {
  SignerInfo s;
  s.author_key_en = signer_info & kSignerInfoAuthorKeyEn;
  s.mask_chip_key = signer_info & kSignerInfoMaskChipKey;
  s.signing_key_raw = (signer_info >> kSignerInfoSigningKeyShift) & kSignerInfoSigningKeyMask;
  switch (s.signing_key_raw) {
    case 0:
      s.signing_key = SigningKey::kVcek;
      break;
    case 1:
      s.signing_key = SigningKey::kVlek;
      break;
    case 7:
      s.signing_key = SigningKey::kNone;
      break;
    default:
      s.signing_key = SigningKey::kReserved;
      break;
  }
  return s;
}

std::optional<Product> SnpReport::cpuid_product() const {
  if (!cpuid) return std::nullopt;
  return product_from_cpuid(cpuid->family, cpuid->model);
}

Result<SnpReport> decode_snp_report(ByteView bytes) {
  if (bytes.size() != kReportSize) {
    return Error("report is " + std::to_string(bytes.size()) + " bytes, expected " +
                 std::to_string(kReportSize) + " (SEV-SNP ATTESTATION_REPORT)");
  }
  SnpReport r;
  std::copy(bytes.begin(), bytes.end(), r.raw.begin());
  ByteView raw(r.raw);
  auto& problems = r.format_problems;

  r.version = load_le32(raw, offset::kVersion);
  r.guest_svn = load_le32(raw, offset::kGuestSvn);
  r.policy = load_le64(raw, offset::kPolicy);
  r.family_id = copy_field<16>(raw, offset::kFamilyId);
  r.image_id = copy_field<16>(raw, offset::kImageId);
  r.vmpl = load_le32(raw, offset::kVmpl);
  r.signature_algo = load_le32(raw, offset::kSignatureAlgo);
  r.current_tcb = TcbVersion(load_le64(raw, offset::kCurrentTcb));
  r.platform_info = load_le64(raw, offset::kPlatformInfo);
  r.signer_info = load_le32(raw, offset::kSignerInfo);
  r.report_data = copy_field<64>(raw, offset::kReportData);
  r.measurement = copy_field<48>(raw, offset::kMeasurement);
  r.host_data = copy_field<32>(raw, offset::kHostData);
  r.id_key_digest = copy_field<48>(raw, offset::kIdKeyDigest);
  r.author_key_digest = copy_field<48>(raw, offset::kAuthorKeyDigest);
  r.report_id = copy_field<32>(raw, offset::kReportId);
  r.report_id_ma = copy_field<32>(raw, offset::kReportIdMa);
  r.reported_tcb = TcbVersion(load_le64(raw, offset::kReportedTcb));
  r.chip_id = copy_field<64>(raw, offset::kChipId);
  r.committed_tcb = TcbVersion(load_le64(raw, offset::kCommittedTcb));
  r.current_version = {raw[offset::kCurrentMajor], raw[offset::kCurrentMinor],
                       raw[offset::kCurrentBuild]};
  r.committed_version = {raw[offset::kCommittedMajor], raw[offset::kCommittedMinor],
                         raw[offset::kCommittedBuild]};
  r.launch_tcb = TcbVersion(load_le64(raw, offset::kLaunchTcb));
  r.signature_r = copy_field<kSignatureComponentSize>(raw, offset::kSignatureR);
  r.signature_s = copy_field<kSignatureComponentSize>(raw, offset::kSignatureS);

  const bool known_version = r.version >= kMinReportVersion && r.version <= kMaxReportVersion;
  if (!known_version) {
    problems.push_back("VERSION: expected 2, 3, 4 or 5, found " + std::to_string(r.version));
  }
  // Layout: v3 and v4 add the CPUID fields, v5 the mitigation vectors. An unknown version is
  // decoded with the v2 layout (nothing optional is read from it).
  const bool has_cpuid = layout_has_cpuid(r.version);
  const bool has_mit_vectors = layout_has_mit_vectors(r.version);
  if (has_cpuid) {
    r.cpuid =
        CpuidInfo{raw[offset::kCpuidFamId], raw[offset::kCpuidModId], raw[offset::kCpuidStep]};
  }
  if (has_mit_vectors) {
    r.launch_mit_vector = load_le64(raw, offset::kLaunchMitVector);
    r.current_mit_vector = load_le64(raw, offset::kCurrentMitVector);
  }

  if (r.signature_algo != kSignatureAlgoEcdsaP384Sha384) {
    problems.push_back("SIGNATURE_ALGO: expected 1 (ECDSA P-384 with SHA-384), found " +
                       std::to_string(r.signature_algo));
  }
  if (!bit(r.policy, policy_bit::kReservedMustBeOne)) {
    problems.push_back("POLICY bit 17 (reserved, must be one): found 0 in policy " +
                       hex_number(r.policy));
  }
  if (r.policy >> policy_bit::kFirstReserved) {
    problems.push_back("POLICY bits 63:26 (reserved) must be zero, found policy " +
                       hex_number(r.policy));
  }
  if (r.signer_info & kSignerInfoReservedMask) {
    problems.push_back("SIGNER_INFO bits 31:5 (reserved) must be zero, found " +
                       hex_number(r.signer_info));
  }
  if (r.signer().signing_key == SigningKey::kReserved) {
    problems.push_back("SIGNER_INFO.SIGNING_KEY: expected 0 (VCEK), 1 (VLEK) or 7 (none), found " +
                       std::to_string(r.signer().signing_key_raw));
  }
  require_zero(r, offset::kReserved04C, offset::kReportData, "reserved field", problems);
  require_zero(r, has_cpuid ? offset::kCpuidStep + 1 : offset::kCpuidFamId, offset::kChipId,
               "reserved field after REPORTED_TCB", problems);
  require_zero(r, offset::kReserved1EB, offset::kReserved1EB + 1, "reserved field", problems);
  require_zero(r, offset::kReserved1EF, offset::kReserved1EF + 1, "reserved field", problems);
  require_zero(r, has_mit_vectors ? offset::kCurrentMitVector + 8 : offset::kLaunchMitVector,
               offset::kSignature, "reserved field before SIGNATURE", problems);
  require_zero(r, offset::kSignatureR + kP384ScalarSize,
               offset::kSignatureR + kSignatureComponentSize, "SIGNATURE.R high bytes", problems);
  require_zero(r, offset::kSignatureS + kP384ScalarSize,
               offset::kSignatureS + kSignatureComponentSize, "SIGNATURE.S high bytes", problems);
  require_zero(r, offset::kSignatureReserved, kReportSize, "reserved field after SIGNATURE",
               problems);
  return r;
}

Result<SnpReport> parse_snp_report(ByteView bytes) {
  CLOISTER_TRY(SnpReport report, decode_snp_report(bytes));
  if (!report.format_problems.empty()) return Error(report.format_problems.front());
  return report;
}

Result<Bytes> encode_snp_report(const SnpReport& r) {
  const std::string version = "version " + std::to_string(r.version);
  if (r.cpuid.has_value() != layout_has_cpuid(r.version)) {
    return Error("CPUID_FAM_ID/CPUID_MOD_ID/CPUID_STEP: a " + version + " report " +
                 (r.cpuid ? "has no CPUID fields, found them set" : "carries them, found none"));
  }
  const bool mit = layout_has_mit_vectors(r.version);
  if (r.launch_mit_vector.has_value() != mit || r.current_mit_vector.has_value() != mit) {
    return Error("LAUNCH_MIT_VECTOR/CURRENT_MIT_VECTOR: a " + version + " report " +
                 (mit ? "carries both" : "has neither") + ", found LAUNCH_MIT_VECTOR " +
                 (r.launch_mit_vector ? "set" : "unset") + " and CURRENT_MIT_VECTOR " +
                 (r.current_mit_vector ? "set" : "unset"));
  }
  Bytes out(kReportSize, 0);
  store_le32(out, offset::kVersion, r.version);
  store_le32(out, offset::kGuestSvn, r.guest_svn);
  store_le64(out, offset::kPolicy, r.policy);
  put_field(out, offset::kFamilyId, r.family_id);
  put_field(out, offset::kImageId, r.image_id);
  store_le32(out, offset::kVmpl, r.vmpl);
  store_le32(out, offset::kSignatureAlgo, r.signature_algo);
  store_le64(out, offset::kCurrentTcb, r.current_tcb.raw());
  store_le64(out, offset::kPlatformInfo, r.platform_info);
  store_le32(out, offset::kSignerInfo, r.signer_info);
  put_field(out, offset::kReportData, r.report_data);
  put_field(out, offset::kMeasurement, r.measurement);
  put_field(out, offset::kHostData, r.host_data);
  put_field(out, offset::kIdKeyDigest, r.id_key_digest);
  put_field(out, offset::kAuthorKeyDigest, r.author_key_digest);
  put_field(out, offset::kReportId, r.report_id);
  put_field(out, offset::kReportIdMa, r.report_id_ma);
  store_le64(out, offset::kReportedTcb, r.reported_tcb.raw());
  if (r.cpuid) {
    out[offset::kCpuidFamId] = r.cpuid->family;
    out[offset::kCpuidModId] = r.cpuid->model;
    out[offset::kCpuidStep] = r.cpuid->stepping;
  }
  put_field(out, offset::kChipId, r.chip_id);
  store_le64(out, offset::kCommittedTcb, r.committed_tcb.raw());
  out[offset::kCurrentBuild] = r.current_version.build;
  out[offset::kCurrentMinor] = r.current_version.minor;
  out[offset::kCurrentMajor] = r.current_version.major;
  out[offset::kCommittedBuild] = r.committed_version.build;
  out[offset::kCommittedMinor] = r.committed_version.minor;
  out[offset::kCommittedMajor] = r.committed_version.major;
  store_le64(out, offset::kLaunchTcb, r.launch_tcb.raw());
  if (r.launch_mit_vector) {
    store_le64(out, offset::kLaunchMitVector, *r.launch_mit_vector);
    store_le64(out, offset::kCurrentMitVector, *r.current_mit_vector);
  }
  put_field(out, offset::kSignatureR, r.signature_r);
  put_field(out, offset::kSignatureS, r.signature_s);
  return out;
}

}  // namespace cloister::attestation::snp
