#include "cloister/attestation/tdx/pck.h"

#include <openssl/evp.h>
#include <openssl/objects.h>

#include <algorithm>
#include <map>

#include "cloister/common/hex.h"
#include "der.h"

namespace cloister::attestation::tdx {
namespace {

template <std::size_t N>
Result<std::array<std::uint8_t, N>> octets(const der::Tlv& tlv, const std::string& what) {
  if (tlv.value.size() != N) {
    return Error(what + ": expected an OCTET STRING of " + std::to_string(N) + " bytes, found " +
                 std::to_string(tlv.value.size()));
  }
  std::array<std::uint8_t, N> out{};
  std::copy(tlv.value.begin(), tlv.value.end(), out.begin());
  return out;
}

// Reads SEQUENCE { SEQUENCE { OID, value } ... } into (dotted OID -> value), rejecting
// duplicates.
Result<std::vector<std::pair<std::string, der::Tlv>>> read_pairs(
    const der::Tlv& sequence, const std::string& what,
    const std::map<std::string, std::uint8_t>& expected_tags) {
  std::vector<std::pair<std::string, der::Tlv>> out;
  der::Reader reader(sequence);
  while (!reader.at_end()) {
    CLOISTER_TRY(der::Tlv pair, reader.next(der::kSequence, what + " entry"));
    der::Reader inner(pair);
    CLOISTER_TRY(der::Tlv oid_tlv, inner.next(der::kOid, what + " entry OID"));
    std::string dotted = der::oid_to_string(oid_tlv.value);
    auto tag = expected_tags.find(dotted);
    if (tag == expected_tags.end()) return Error(what + ": unknown member " + dotted);
    for (const auto& [seen, unused] : out)
      if (seen == dotted) return Error(what + ": duplicate member " + dotted);
    CLOISTER_TRY(der::Tlv value, inner.next(tag->second, what + " member " + dotted));
    if (!inner.at_end()) return Error(what + " member " + dotted + ": unexpected data after value");
    out.emplace_back(dotted, value);
  }
  return out;
}

const der::Tlv* find(const std::vector<std::pair<std::string, der::Tlv>>& pairs,
                     const std::string& oid) {
  for (const auto& [k, v] : pairs)
    if (k == oid) return &v;
  return nullptr;
}

std::string tcb_oid(int n) {
  return std::string(oid::kTcb) + "." + std::to_string(n);
}

// Intel SGX Root CA public key (uncompressed point without the 0x04 prefix).
constexpr std::array<std::uint8_t, 64> kIntelRootKey = {
    0x0b, 0xa9, 0xc4, 0xc0, 0xc0, 0xc8, 0x61, 0x93, 0xa3, 0xfe, 0x23, 0xd6, 0xb0, 0x2c, 0xda, 0x10,
    0xa8, 0xbb, 0xd4, 0xe8, 0x8e, 0x48, 0xb4, 0x45, 0x85, 0x61, 0xa3, 0x6e, 0x70, 0x55, 0x25, 0xf5,
    0x67, 0x91, 0x8e, 0x2e, 0xdc, 0x88, 0xe4, 0x0d, 0x86, 0x0b, 0xd0, 0xcc, 0x4e, 0xe2, 0x6a, 0xac,
    0xc9, 0x88, 0xe5, 0x05, 0xa9, 0x53, 0x55, 0x8c, 0x45, 0x3f, 0x6b, 0x09, 0x04, 0xae, 0x73, 0x94};

}  // namespace

std::string_view to_string(PckCaType type) {
  return type == PckCaType::kPlatform ? "platform" : "processor";
}

std::string_view to_string(SgxType type) {
  switch (type) {
    case SgxType::kStandard:
      return "Standard";
    case SgxType::kScalable:
      return "Scalable";
    case SgxType::kScalableWithIntegrity:
      return "ScalableWithIntegrity";
  }
  return "unknown";
}

Result<PckExtensions> parse_pck_extensions(ByteView sgx_extension) {
  const std::string what = "SGX extension";
  der::Reader outer(sgx_extension);
  CLOISTER_TRY(der::Tlv seq, outer.next(der::kSequence, what));
  if (!outer.at_end()) return Error(what + ": unexpected data after the SEQUENCE");
  CLOISTER_TRY(auto members, read_pairs(seq, what,
                                        {{oid::kPpid, der::kOctetString},
                                         {oid::kTcb, der::kSequence},
                                         {oid::kPceId, der::kOctetString},
                                         {oid::kFmspc, der::kOctetString},
                                         {oid::kSgxType, der::kEnumerated},
                                         {oid::kPlatformInstanceId, der::kOctetString},
                                         {oid::kConfiguration, der::kSequence}}));
  PckExtensions out;
  auto required = [&](const char* oid, const char* name) -> Result<const der::Tlv*> {
    const der::Tlv* v = find(members, oid);
    if (v == nullptr) return Error(what + ": missing " + name + " (" + oid + ")");
    return v;
  };
  CLOISTER_TRY(const der::Tlv* ppid, required(oid::kPpid, "PPID"));
  CLOISTER_TRY(out.ppid, octets<16>(*ppid, "PPID"));
  CLOISTER_TRY(const der::Tlv* pce_id, required(oid::kPceId, "PCE-ID"));
  CLOISTER_TRY(out.pce_id, octets<2>(*pce_id, "PCE-ID"));
  CLOISTER_TRY(const der::Tlv* fmspc, required(oid::kFmspc, "FMSPC"));
  CLOISTER_TRY(out.fmspc, octets<6>(*fmspc, "FMSPC"));
  CLOISTER_TRY(const der::Tlv* type, required(oid::kSgxType, "SGX type"));
  CLOISTER_TRY(std::uint64_t sgx_type, der::unsigned_integer(*type, 2, "SGX type"));
  out.sgx_type = static_cast<SgxType>(sgx_type);

  CLOISTER_TRY(const der::Tlv* tcb, required(oid::kTcb, "TCB"));
  std::map<std::string, std::uint8_t> tcb_tags;
  for (int i = 1; i <= 17; ++i) tcb_tags[tcb_oid(i)] = der::kInteger;
  tcb_tags[tcb_oid(18)] = der::kOctetString;
  CLOISTER_TRY(auto tcb_members, read_pairs(*tcb, "SGX extension TCB", tcb_tags));
  for (int i = 1; i <= 18; ++i) {
    const der::Tlv* v = find(tcb_members, tcb_oid(i));
    const std::string name =
        i <= 16   ? "SGX TCB COMP" + std::string(i < 10 ? "0" : "") + std::to_string(i) + " SVN"
        : i == 17 ? std::string("PCESVN")
                  : std::string("CPUSVN");
    if (v == nullptr) return Error("SGX extension TCB: missing " + name + " (" + tcb_oid(i) + ")");
    if (i <= 16) {
      CLOISTER_TRY(std::uint64_t svn, der::unsigned_integer(*v, 255, name));
      out.tcb_components[static_cast<std::size_t>(i - 1)] = static_cast<std::uint8_t>(svn);
    } else if (i == 17) {
      CLOISTER_TRY(std::uint64_t svn, der::unsigned_integer(*v, 65535, name));
      out.pcesvn = static_cast<std::uint16_t>(svn);
    } else {
      CLOISTER_TRY(out.cpusvn, octets<16>(*v, name));
    }
  }

  if (const der::Tlv* id = find(members, oid::kPlatformInstanceId)) {
    CLOISTER_TRY(auto value, octets<16>(*id, "platform instance ID"));
    out.platform_instance_id = value;
  }
  if (const der::Tlv* config = find(members, oid::kConfiguration)) {
    const std::string base = oid::kConfiguration;
    CLOISTER_TRY(auto entries, read_pairs(*config, "SGX extension configuration",
                                          {{base + ".1", der::kBoolean},
                                           {base + ".2", der::kBoolean},
                                           {base + ".3", der::kBoolean}}));
    PckConfiguration c;
    std::optional<bool>* fields[] = {&c.dynamic_platform, &c.cached_keys, &c.smt_enabled};
    const char* names[] = {"dynamic platform", "cached keys", "SMT enabled"};
    for (int i = 0; i < 3; ++i) {
      if (const der::Tlv* v = find(entries, base + "." + std::to_string(i + 1))) {
        CLOISTER_TRY(bool b, der::boolean(*v, names[i]));
        *fields[i] = b;
      }
    }
    out.configuration = c;
  }
  return out;
}

Result<PckExtensions> pck_extensions(const Certificate& pck) {
  auto value = pck.extension_value(oid::kSgxExtension);
  if (!value)
    return Error("'" + pck.subject_cn() + "' has no SGX extension (" + oid::kSgxExtension + ")");
  return parse_pck_extensions(*value);
}

const std::array<std::uint8_t, 64>& intel_sgx_root_public_key() {
  return kIntelRootKey;
}

const PublicKey& intel_sgx_root_key() {
  static const PublicKey key = *PublicKey::from_ec_point(NID_X9_62_prime256v1, kIntelRootKey);
  return key;
}

Result<PckChain> identify_pck_chain(const std::vector<Certificate>& certs) {
  std::optional<Certificate> leaf, intermediate, root;
  std::optional<PckCaType> ca;
  std::vector<std::string> names;
  for (const auto& c : certs) {
    const std::string cn = c.subject_cn();
    names.push_back("'" + cn + "'");
    std::optional<Certificate>* slot = nullptr;
    if (cn == kPckLeafCn) {
      slot = &leaf;
    } else if (cn == kPlatformCaCn || cn == kProcessorCaCn) {
      slot = &intermediate;
      ca = cn == kPlatformCaCn ? PckCaType::kPlatform : PckCaType::kProcessor;
    } else if (cn == kRootCaCn) {
      slot = &root;
    } else {
      return Error("unexpected certificate '" + cn + "' in the PCK chain");
    }
    if (*slot) return Error("two certificates named '" + cn + "' in the PCK chain");
    *slot = c;
  }
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  if (certs.size() != 3 || !leaf || !intermediate || !root) {
    return Error("expected 3 certificates ('" + std::string(kPckLeafCn) +
                 "', a PCK Platform or Processor CA, '" + kRootCaCn + "'), found " +
                 std::to_string(certs.size()) + (list.empty() ? "" : " (" + list + ")"));
  }
  return PckChain{*leaf, *intermediate, *root, *ca};
}

Result<std::vector<Certificate>> parse_pem_chain(ByteView pem, const std::string& what) {
  std::string_view text(reinterpret_cast<const char*>(pem.data()), pem.size());
  if (!text.empty() && text.back() == '\0') text.remove_suffix(1);
  static constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  static constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
  auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  std::size_t pos = 0;
  int block = 0;
  while (true) {
    while (pos < text.size() && is_space(text[pos])) ++pos;
    if (pos == text.size()) break;
    if (text.substr(pos, kBegin.size()) != kBegin) {
      return Error(what + ": unexpected data at byte " + std::to_string(pos) +
                   " (expected a PEM CERTIFICATE block" + (block ? " or the end" : "") + ")");
    }
    std::size_t end = text.find(kEnd, pos);
    if (end == std::string_view::npos)
      return Error(what + ": PEM block " + std::to_string(block + 1) + " has no END line");
    pos = end + kEnd.size();
    ++block;
  }
  if (block == 0) return Error(what + ": no PEM CERTIFICATE block");
  auto parsed = parse_certificates(as_bytes(text));
  if (!parsed) return parsed.error().with_context(what);
  std::vector<Certificate> certs = std::move(parsed).value();
  if (certs.size() != static_cast<std::size_t>(block))
    return Error(what + ": " + std::to_string(block) + " PEM blocks but " +
                 std::to_string(certs.size()) + " certificates");
  return certs;
}

void check_pck_chain(const PckChain& chain, const PublicKey& trusted_root, Checks& out) {
  const Certificate* certs[] = {&chain.leaf, &chain.intermediate, &chain.root};
  const std::string intermediate_cn =
      chain.ca == PckCaType::kPlatform ? kPlatformCaCn : kProcessorCaCn;

  // The anchor: the root is the pinned Intel root (same public key) and signs itself.
  const std::string root_expected = "trusted root key (SPKI SHA-256 " +
                                    to_hex(sha256(trusted_root.spki_der())).substr(0, 16) + "…)";
  const std::string root_found = chain.root.subject_cn() + " " + chain.root.serial_hex();
  if (!chain.root.public_key().equals(trusted_root)) {
    out.fail("tdx.pck.chain.root", root_expected, root_found,
             "the PCK chain ends in a root whose public key is not the trusted Intel SGX Root CA "
             "key");
  } else if (auto self = chain.root.verify_signed_by(chain.root.public_key()); !self) {
    out.fail("tdx.pck.chain.root", root_expected, root_found,
             "the root certificate's self-signature does not verify");
  } else {
    out.pass("tdx.pck.chain.root", root_expected, root_found);
  }

  std::vector<std::string> problems;
  const char* issuers[] = {intermediate_cn.c_str(), kRootCaCn, kRootCaCn};
  for (int i = 0; i < 3; ++i) {
    const Certificate& c = *certs[i];
    const std::string cn = c.subject_cn();
    if (c.subject_attribute("O") != "Intel Corporation")
      problems.push_back("'" + cn + "' subject O is not 'Intel Corporation'");
    if (c.issuer_cn() != issuers[i])
      problems.push_back("'" + cn + "' issuer is '" + c.issuer_cn() + "', expected '" + issuers[i] +
                         "'");
    if (c.version() != 3) problems.push_back("'" + cn + "' is not X.509 v3");
    if (c.signature_algorithm() != "ecdsa-with-SHA256")
      problems.push_back("'" + cn + "' is signed with " + c.signature_algorithm() +
                         ", expected ecdsa-with-SHA256");
    if (!c.public_key().is_ec_curve(NID_X9_62_prime256v1))
      problems.push_back("'" + cn + "' key is " + c.public_key().describe() +
                         ", expected EC P-256");
  }
  if (auto ok = chain.leaf.verify_signed_by(chain.intermediate.public_key()); !ok)
    problems.push_back(ok.error().message());
  if (auto ok = chain.intermediate.verify_signed_by(chain.root.public_key()); !ok)
    problems.push_back(ok.error().message());
  const std::string expected = std::string(kPckLeafCn) + " <- " + intermediate_cn + " <- " +
                               kRootCaCn + ", ECDSA P-256/SHA-256";
  const std::string found = "leaf " + chain.leaf.serial_hex() + " <- " +
                            chain.intermediate.subject_cn() + " " + chain.intermediate.serial_hex();
  if (problems.empty()) {
    out.pass("tdx.pck.chain", expected, found);
  } else {
    std::string why;
    for (const auto& p : problems) why += (why.empty() ? "" : "; ") + p;
    out.fail("tdx.pck.chain", expected, found, why);
  }
}

void check_pck_extensions(const PckChain& chain, const Result<PckExtensions>& extensions,
                          Checks& out) {
  const std::string expected =
      chain.ca == PckCaType::kPlatform
          ? "SGX extension with PPID, TCB, PCE-ID, FMSPC, SGX type, instance ID, configuration"
          : "SGX extension with PPID, TCB, PCE-ID, FMSPC, SGX type";
  if (!extensions) {
    out.fail("tdx.pck.extensions", expected, "invalid", extensions.error().message());
    return;
  }
  const PckExtensions& e = *extensions;
  const std::string found = "FMSPC " + to_hex(e.fmspc) + ", PCE-ID " + to_hex(e.pce_id) +
                            ", PCESVN " + std::to_string(e.pcesvn) + ", SGX type " +
                            std::string(to_string(e.sgx_type));
  const bool platform_fields = e.platform_instance_id && e.configuration;
  const bool any_platform_field = e.platform_instance_id || e.configuration;
  if (chain.ca == PckCaType::kPlatform && !platform_fields) {
    out.fail("tdx.pck.extensions", expected, found,
             "a PCK certificate from the Platform CA lacks the platform instance ID or "
             "configuration");
  } else if (chain.ca == PckCaType::kProcessor && any_platform_field) {
    out.fail("tdx.pck.extensions", expected, found,
             "a PCK certificate from the Processor CA carries platform-only members");
  } else {
    out.pass("tdx.pck.extensions", expected, found);
  }
}

}  // namespace cloister::attestation::tdx
