#include "cloister/attestation/snp/certs.h"

#include <openssl/asn1.h>
#include <openssl/obj_mac.h>

#include <map>
#include <mutex>
#include <set>

#include "cloister/common/hex.h"
#include "snp/amd_certs.h"

namespace cloister::attestation::snp {
namespace {

Result<std::uint8_t> der_spl(const Bytes& value, const char* name) {
  const unsigned char* p = value.data();
  ASN1_INTEGER* integer = d2i_ASN1_INTEGER(nullptr, &p, static_cast<long>(value.size()));
  if (integer == nullptr || p != value.data() + value.size()) {
    ASN1_INTEGER_free(integer);
    return Error(std::string(name) + ": extension value is not a DER INTEGER (" + to_hex(value) +
                 ")");
  }
  std::int64_t v = -1;
  int ok = ASN1_INTEGER_get_int64(&v, integer);
  ASN1_INTEGER_free(integer);
  if (ok != 1 || v < 0 || v > 255)
    return Error(std::string(name) + ": expected an SPL in 0..255, found " + std::to_string(v));
  return static_cast<std::uint8_t>(v);
}

Result<std::string> der_ia5(const Bytes& value, const char* name) {
  const unsigned char* p = value.data();
  ASN1_IA5STRING* s = d2i_ASN1_IA5STRING(nullptr, &p, static_cast<long>(value.size()));
  if (s == nullptr || p != value.data() + value.size()) {
    ASN1_IA5STRING_free(s);
    return Error(std::string(name) + ": extension value is not a DER IA5String");
  }
  std::string out(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                  static_cast<std::size_t>(ASN1_STRING_length(s)));
  ASN1_IA5STRING_free(s);
  return out;
}

// KDS certificates carry the hwID as raw bytes (64, or 8 on Turin) without an inner DER tag;
// some tooling emits a DER OCTET STRING. Both are distinguished by length alone, so a chip ID
// that happens to start with 0x04 is never misread.
Result<Bytes> decode_hw_id(const Bytes& value, bool& octet_string) {
  octet_string = false;
  if (value.size() == 64 || value.size() == 8) return value;
  if ((value.size() == 66 && value[0] == 0x04 && value[1] == 64) ||
      (value.size() == 10 && value[0] == 0x04 && value[1] == 8)) {
    octet_string = true;
    return Bytes(value.begin() + 2, value.end());
  }
  return Error("hwID: expected 64 or 8 raw bytes or a DER OCTET STRING of that size, found " +
               std::to_string(value.size()) + " bytes");
}

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// The subject and issuer attributes besides CN every certificate of a chain shares with its
// pinned ARK (AMD's: OU=Engineering, C=US, L=Santa Clara, ST=CA, O=Advanced Micro Devices).
std::string name_problem(const Certificate& c, const Certificate& anchor) {
  for (const char* field : {"OU", "C", "L", "ST", "O"}) {
    const std::string want = anchor.subject_attribute(field);
    if (c.subject_attribute(field) != want)
      return std::string("subject ") + field + " is '" + c.subject_attribute(field) +
             "', expected '" + want + "'";
    if (c.issuer_attribute(field) != want)
      return std::string("issuer ") + field + " is '" + c.issuer_attribute(field) +
             "', expected '" + want + "'";
  }
  return {};
}

std::string pss_problem(const Certificate& c) {
  auto pss = c.rsa_pss_params();
  if (!pss) return "signature algorithm is " + c.signature_algorithm() + ", expected RSASSA-PSS";
  if (pss->hash != "SHA384" || pss->mgf1_hash != "SHA384" || pss->salt_length != 48) {
    return "RSASSA-PSS parameters are hash " + pss->hash + ", MGF1 " + pss->mgf1_hash + ", salt " +
           std::to_string(pss->salt_length) + "; expected SHA384, SHA384, 48";
  }
  return {};
}

// Appends one check for a certificate: pass, or fail with the first problem found.
void cert_check(Checks& out, const std::string& name, const Certificate& cert,
                const std::string& expected, const std::vector<std::string>& problems) {
  std::string found = "'" + cert.subject_cn() + "' serial " + cert.serial_hex() + " (" +
                      cert.public_key().describe() + ")";
  for (const auto& problem : problems) {
    if (!problem.empty()) {
      out.fail(name, expected, found, problem);
      return;
    }
  }
  out.pass(name, expected, found);
}

std::string signature_problem(const Certificate& cert, const Certificate& issuer) {
  auto ok = cert.verify_signed_by(issuer.public_key());
  return ok ? std::string() : ok.error().message();
}

}  // namespace

std::string_view to_string(VekKind kind) {
  return kind == VekKind::kVcek ? "VCEK" : "VLEK";
}

TcbParts VekExtensions::tcb() const {
  TcbParts p;
  p.fmc = fmc_spl;
  p.bl = bl_spl;
  p.tee = tee_spl;
  p.snp = snp_spl;
  p.ucode = ucode_spl;
  return p;
}

Result<VekExtensions> parse_vek_extensions(const Certificate& vek) {
  static const std::set<std::string> kKnown = {
      oid::kStructVersion, oid::kProductName, oid::kBlSpl, oid::kTeeSpl, oid::kSnpSpl,
      oid::kSpl4,          oid::kSpl5,        oid::kSpl6,  oid::kSpl7,   oid::kUcodeSpl,
      oid::kFmcSpl,        oid::kHwId,        oid::kCspId};
  std::set<std::string> seen;
  for (const auto& o : vek.extension_oids()) {
    if (!starts_with(o, oid::kAmdArc)) continue;
    if (!kKnown.count(o)) return Error("unknown AMD certificate extension " + o);
    if (!seen.insert(o).second) return Error("duplicate AMD certificate extension " + o);
  }
  auto require = [&](const char* id, const char* name) -> Result<Bytes> {
    auto value = vek.extension_value(id);
    if (!value) return Error(std::string("missing extension ") + name + " (" + id + ")");
    return std::move(*value);
  };
  auto spl = [&](const char* id, const char* name) -> Result<std::uint8_t> {
    CLOISTER_TRY(Bytes value, require(id, name));
    return der_spl(value, name);
  };

  VekExtensions ext;
  {
    CLOISTER_TRY(Bytes value, require(oid::kStructVersion, "structVersion"));
    const unsigned char* p = value.data();
    ASN1_INTEGER* integer = d2i_ASN1_INTEGER(nullptr, &p, static_cast<long>(value.size()));
    bool whole = integer != nullptr && p == value.data() + value.size();
    std::int64_t v = -1;
    if (whole) ASN1_INTEGER_get_int64(&v, integer);
    ASN1_INTEGER_free(integer);
    if (!whole || v < 0) return Error("structVersion: extension value is not a DER INTEGER >= 0");
    ext.struct_version = static_cast<long>(v);
  }
  {
    CLOISTER_TRY(Bytes value, require(oid::kProductName, "productName"));
    CLOISTER_TRY(ext.product_name, der_ia5(value, "productName"));
  }
  CLOISTER_TRY(ext.bl_spl, spl(oid::kBlSpl, "blSPL"));
  CLOISTER_TRY(ext.tee_spl, spl(oid::kTeeSpl, "teeSPL"));
  CLOISTER_TRY(ext.snp_spl, spl(oid::kSnpSpl, "snpSPL"));
  CLOISTER_TRY(ext.ucode_spl, spl(oid::kUcodeSpl, "ucodeSPL"));
  const char* reserved[] = {oid::kSpl4, oid::kSpl5, oid::kSpl6, oid::kSpl7};
  for (std::size_t i = 0; i < 4; ++i) {
    if (vek.extension_value(reserved[i])) {
      std::string name = "spl_" + std::to_string(i + 4);
      CLOISTER_TRY(ext.spl_4_7[i], spl(reserved[i], name.c_str()));
    }
  }
  if (vek.extension_value(oid::kFmcSpl)) {
    CLOISTER_TRY(ext.fmc_spl, spl(oid::kFmcSpl, "fmcSPL"));
  }
  if (auto hw = vek.extension_value(oid::kHwId)) {
    CLOISTER_TRY(ext.hw_id, decode_hw_id(*hw, ext.hw_id_der_octet_string));
  }
  if (auto csp = vek.extension_value(oid::kCspId)) {
    CLOISTER_TRY(ext.csp_id, der_ia5(*csp, "cspID"));
  }
  return ext;
}

std::string_view to_string(AmdCertRole role) {
  switch (role) {
    case AmdCertRole::kArk:
      return "ARK";
    case AmdCertRole::kAsk:
      return "ASK";
    case AmdCertRole::kAsvk:
      return "ASVK";
    case AmdCertRole::kVcek:
      return "VCEK";
    case AmdCertRole::kVlek:
      return "VLEK";
    case AmdCertRole::kOther:
      return "other";
  }
  return "other";
}

AmdCertIdentity identify_amd_cert(const Certificate& cert) {
  const std::string cn = cert.subject_cn();
  AmdCertIdentity id;
  auto product_after = [&](std::string_view prefix) -> std::optional<Product> {
    auto p = product_from_name(std::string_view(cn).substr(prefix.size()));
    if (!p) return std::nullopt;
    return *p;
  };
  if (cn == "SEV-VCEK" || cn == "SEV-VLEK") {
    id.role = cn == "SEV-VCEK" ? AmdCertRole::kVcek : AmdCertRole::kVlek;
    if (auto value = cert.extension_value(oid::kProductName)) {
      if (auto name = der_ia5(*value, "productName")) {
        if (auto p = product_from_vek_product_name(*name)) id.product = *p;
      }
    }
  } else if (starts_with(cn, "ARK-")) {
    id.product = product_after("ARK-");
    if (id.product) id.role = AmdCertRole::kArk;
  } else if (starts_with(cn, "SEV-VLEK-")) {
    id.product = product_after("SEV-VLEK-");
    if (id.product) id.role = AmdCertRole::kAsvk;
  } else if (starts_with(cn, "SEV-")) {
    id.product = product_after("SEV-");
    if (id.product) id.role = AmdCertRole::kAsk;
  }
  return id;
}

std::string ark_cn(Product product) {
  return "ARK-" + std::string(product_name(product));
}

std::string ica_cn(Product product, VekKind kind) {
  return (kind == VekKind::kVcek ? "SEV-" : "SEV-VLEK-") + std::string(product_name(product));
}

std::string vek_cn(VekKind kind) {
  return kind == VekKind::kVcek ? "SEV-VCEK" : "SEV-VLEK";
}

namespace {

// The embedded certificates, each parsed on first use: decoding a certificate's key costs about
// as much as verifying a report, and a verification needs one product's ARK and one
// intermediate.
enum class EmbeddedRole { kArk, kAsk, kAsvk };

const Certificate* embedded(Product product, EmbeddedRole role) {
  constexpr std::size_t kProducts = detail::kAmdCaPems.size();
  static std::array<std::array<std::once_flag, 3>, kProducts> once;
  static std::array<std::array<std::optional<Certificate>, 3>, kProducts> certs;
  for (std::size_t i = 0; i < kProducts; ++i) {
    const auto& pem = detail::kAmdCaPems[i];
    if (pem.product != product) continue;
    const auto r = static_cast<std::size_t>(role);
    std::call_once(once[i][r], [&] {
      const char* text = role == EmbeddedRole::kArk   ? pem.ark
                         : role == EmbeddedRole::kAsk ? pem.ask
                                                      : pem.asvk;
      auto parsed = parse_certificates(as_bytes(text));
      if (!parsed || parsed->size() != 1)
        cloister::detail::result_misuse("embedded AMD certificate", "does not parse");
      certs[i][r] = parsed->front();
    });
    return &*certs[i][r];
  }
  return nullptr;
}

}  // namespace

const Certificate* builtin_amd_ark(Product product) {
  return embedded(product, EmbeddedRole::kArk);
}

const Certificate* builtin_amd_ica(Product product, VekKind kind) {
  return embedded(product, kind == VekKind::kVcek ? EmbeddedRole::kAsk : EmbeddedRole::kAsvk);
}

const AmdCa* builtin_amd_ca(Product product) {
  static std::mutex mutex;
  static std::map<Product, AmdCa> cas;
  const Certificate* ark = builtin_amd_ark(product);
  if (ark == nullptr) return nullptr;
  std::lock_guard lock(mutex);
  auto it = cas.find(product);
  if (it == cas.end()) {
    it = cas.emplace(product, AmdCa{product, *ark, *builtin_amd_ica(product, VekKind::kVcek),
                                    *builtin_amd_ica(product, VekKind::kVlek)})
             .first;
  }
  return &it->second;
}

void check_vek_chain(const Certificate& anchor, const Certificate& ark, const Certificate& ica,
                     const Certificate& vek, Product product, VekKind kind, Checks& out) {
  const std::string want_ark = ark_cn(product);
  const std::string want_ica = ica_cn(product, kind);
  const std::string want_vek = vek_cn(kind);

  std::vector<std::string> ark_problems;
  if (!ark.public_key().equals(anchor.public_key()))
    ark_problems.push_back("public key is not AMD's pinned " + want_ark + " key");
  if (ark.subject_cn() != want_ark) ark_problems.push_back("subject CN is not " + want_ark);
  if (ark.issuer_cn() != want_ark) ark_problems.push_back("not self-issued");
  if (ark.version() != 3) ark_problems.push_back("not an X.509 v3 certificate");
  if (!ark.public_key().is_rsa(4096)) ark_problems.push_back("key is not RSA-4096");
  ark_problems.push_back(name_problem(ark, anchor));
  ark_problems.push_back(pss_problem(ark));
  // The pinned certificate itself is trusted by being pinned; its self-signature adds nothing.
  // Any other ARK (same key, other bytes) must carry a valid self-signature.
  if (ark.fingerprint() != anchor.fingerprint())
    ark_problems.push_back(signature_problem(ark, anchor));
  if (ark.serial().empty()) ark_problems.push_back("serial number is 0");
  cert_check(out, "snp.chain.ark", ark, want_ark + " (AMD root, pinned)", ark_problems);

  std::vector<std::string> ica_problems;
  if (ica.subject_cn() != want_ica) ica_problems.push_back("subject CN is not " + want_ica);
  if (ica.issuer_cn() != want_ark) ica_problems.push_back("issuer CN is not " + want_ark);
  if (ica.version() != 3) ica_problems.push_back("not an X.509 v3 certificate");
  if (!ica.public_key().is_rsa(4096)) ica_problems.push_back("key is not RSA-4096");
  ica_problems.push_back(name_problem(ica, anchor));
  ica_problems.push_back(pss_problem(ica));
  ica_problems.push_back(signature_problem(ica, anchor));
  if (ica.serial().empty()) ica_problems.push_back("serial number is 0");
  cert_check(out, "snp.chain.ica", ica, want_ica + " signed by " + want_ark, ica_problems);

  std::vector<std::string> vek_problems;
  if (vek.subject_cn() != want_vek) vek_problems.push_back("subject CN is not " + want_vek);
  if (vek.issuer_cn() != want_ica) vek_problems.push_back("issuer CN is not " + want_ica);
  if (vek.version() != 3) vek_problems.push_back("not an X.509 v3 certificate");
  if (!vek.public_key().is_ec_curve(NID_secp384r1)) vek_problems.push_back("key is not EC P-384");
  vek_problems.push_back(name_problem(vek, anchor));
  vek_problems.push_back(pss_problem(vek));
  vek_problems.push_back(signature_problem(vek, ica));
  cert_check(out, "snp.chain.vek", vek, want_vek + " signed by " + want_ica, vek_problems);
}

void check_chain_validity(const std::vector<const Certificate*>& chain, UnixTime time,
                          Checks& out) {
  std::string found;
  for (const Certificate* cert : chain) {
    if (auto ok = cert->check_validity(time); !ok) {
      out.fail("snp.chain.validity", "every certificate valid at " + format_rfc3339(time),
               format_rfc3339(cert->not_before()) + ".." + format_rfc3339(cert->not_after()),
               ok.error().message());
      return;
    }
    if (!found.empty()) found += ", ";
    found += cert->subject_cn() + " until " + format_rfc3339(cert->not_after());
  }
  out.pass("snp.chain.validity", "every certificate valid at " + format_rfc3339(time), found);
}

}  // namespace cloister::attestation::snp
