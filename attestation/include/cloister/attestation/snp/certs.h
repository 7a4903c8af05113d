// AMD SEV-SNP certificates: the VCEK/VLEK extensions, certificate roles, the embedded AMD CAs,
// and the checks on the chain ARK -> ASK/ASVK -> VCEK/VLEK (research/snp.md §c).
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "cloister/attestation/snp/product.h"
#include "cloister/attestation/snp/report.h"
#include "cloister/attestation/verdict.h"
#include "cloister/attestation/x509.h"

namespace cloister::attestation::snp {

// Versioned Chip Endorsement Key (per chip and TCB) or Versioned Loaded Endorsement Key (per
// cloud provider).
enum class VekKind { kVcek, kVlek };
std::string_view to_string(VekKind kind);

// KDS certificate extensions (AMD pub. 57230 "VCEK Certificate and KDS Interface", §3).
namespace oid {
inline constexpr const char kAmdArc[] = "1.3.6.1.4.1.3704.";
inline constexpr const char kStructVersion[] = "1.3.6.1.4.1.3704.1.1";
inline constexpr const char kProductName[] = "1.3.6.1.4.1.3704.1.2";
inline constexpr const char kBlSpl[] = "1.3.6.1.4.1.3704.1.3.1";
inline constexpr const char kTeeSpl[] = "1.3.6.1.4.1.3704.1.3.2";
inline constexpr const char kSnpSpl[] = "1.3.6.1.4.1.3704.1.3.3";
inline constexpr const char kSpl4[] = "1.3.6.1.4.1.3704.1.3.4";
inline constexpr const char kSpl5[] = "1.3.6.1.4.1.3704.1.3.5";
inline constexpr const char kSpl6[] = "1.3.6.1.4.1.3704.1.3.6";
inline constexpr const char kSpl7[] = "1.3.6.1.4.1.3704.1.3.7";
inline constexpr const char kUcodeSpl[] = "1.3.6.1.4.1.3704.1.3.8";
inline constexpr const char kFmcSpl[] = "1.3.6.1.4.1.3704.1.3.9";
inline constexpr const char kHwId[] = "1.3.6.1.4.1.3704.1.4";
inline constexpr const char kCspId[] = "1.3.6.1.4.1.3704.1.5";
}  // namespace oid

struct VekExtensions {
  long struct_version = 0;
  std::string product_name;  // "Milan-B0", "Genoa", "Turin", "Milan" (VLEK)
  std::uint8_t bl_spl = 0;
  std::uint8_t tee_spl = 0;
  std::uint8_t snp_spl = 0;
  std::uint8_t ucode_spl = 0;
  std::optional<std::uint8_t> fmc_spl;                   // Turin
  std::array<std::optional<std::uint8_t>, 4> spl_4_7{};  // reserved SPLs, when present
  std::optional<Bytes> hw_id;           // VCEK: 64 bytes (Milan, Genoa) or 8 bytes (Turin)
  bool hw_id_der_octet_string = false;  // true when encoded as OCTET STRING, not raw bytes
  std::optional<std::string> csp_id;    // VLEK: e.g. "CN=cc-us-east-2.amazonaws.com"

  // The TCB these extensions certify, in `product`'s layout terms.
  TcbParts tcb() const;
};

// Decodes the AMD extensions of a VCEK or VLEK. Unknown or duplicate AMD OIDs, missing required
// extensions, values that are not INTEGER 0..255 / IA5String, and hwIDs that are neither the raw
// 64- or 8-byte form AMD issues nor a DER OCTET STRING of those sizes are rejected.
Result<VekExtensions> parse_vek_extensions(const Certificate& vek);

enum class AmdCertRole { kArk, kAsk, kAsvk, kVcek, kVlek, kOther };
std::string_view to_string(AmdCertRole role);

struct AmdCertIdentity {
  AmdCertRole role = AmdCertRole::kOther;
  std::optional<Product> product;  // from the CN for CAs; from productName for VCEK/VLEK
};

// Classifies by subject CN: ARK-<P>, SEV-<P> (ASK), SEV-VLEK-<P> (ASVK), SEV-VCEK, SEV-VLEK.
AmdCertIdentity identify_amd_cert(const Certificate& cert);

// Expected CNs: "ARK-Milan", "SEV-Milan" / "SEV-VLEK-Milan", "SEV-VCEK" / "SEV-VLEK".
std::string ark_cn(Product product);
std::string ica_cn(Product product, VekKind kind);
std::string vek_cn(VekKind kind);

// AMD's certificate authorities for one product: the pinned ARK and the ASK and ASVK it signed.
struct AmdCa {
  Product product;
  Certificate ark;
  Certificate ask;
  Certificate asvk;
  const Certificate& ica(VekKind kind) const { return kind == VekKind::kVcek ? ask : asvk; }
};

// The CAs embedded in the library (Milan, Genoa, Turin); nullptr for a product without one.
// Each certificate is parsed on first use.
const AmdCa* builtin_amd_ca(Product product);
// One embedded certificate: the ARK, or the intermediate for `kind` (ASK or ASVK).
const Certificate* builtin_amd_ark(Product product);
const Certificate* builtin_amd_ica(Product product, VekKind kind);

// Checks of the chain ark -> ica -> vek that do not depend on time, appended as
// "snp.chain.ark", "snp.chain.ica" and "snp.chain.vek": signatures (RSASSA-PSS, SHA-384,
// MGF1-SHA-384, salt 48), AMD's CNs for `product` and `kind`, the other subject and issuer
// attributes equal to the anchor's (for AMD's ARKs: OU=Engineering, C=US, L=Santa Clara, ST=CA,
// O=Advanced Micro Devices; a simulated root carries its own OU), X.509 v3, key types (ARK/ICA
// RSA-4096, VEK EC P-384), and that the ARK is `anchor` (same public key).
// Serial number 0 is accepted for the VEK only (AMD issues every VCEK/VLEK with serial 0).
void check_vek_chain(const Certificate& anchor, const Certificate& ark, const Certificate& ica,
                     const Certificate& vek, Product product, VekKind kind, Checks& out);

// "snp.chain.validity": every certificate valid at `time`.
void check_chain_validity(const std::vector<const Certificate*>& chain, UnixTime time, Checks& out);

}  // namespace cloister::attestation::snp
