// Intel DCAP collateral for TDX: TCB Info v3 and the TD_QE Identity v2 (Intel PCS API v4
// appendix A/B as served by api.trustedservices.intel.com), their signing chain, and the root
// and PCK CRLs; parsed from the forms tenants hold them in (research/tdx.md §b).
//
// TCB Info and QE Identity are signed over the exact bytes of the "tcbInfo" /
// "enclaveIdentity" JSON value as served; the parsers keep that text (SignedCollateral::body)
// and decode the fields from it, never from a re-serialisation. Documents with duplicate keys
// are rejected. SVNs above 255 (PCESVN and QE ISVSVN above 65535) are rejected, as are
// statuses outside the set Intel's QVL accepts for each structure.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cloister/attestation/sourced.h"
#include "cloister/attestation/tdx/quote.h"
#include "cloister/attestation/x509.h"
#include "cloister/common/time.h"

namespace cloister::attestation::tdx {

// TCB statuses: those TCB Info and QE Identity levels carry, the outcomes Intel's QVL
// derives from them (TD relaunch), and the two outcomes that are no status at all.
enum class TcbStatus {
  kUpToDate,
  kSwHardeningNeeded,
  kConfigurationNeeded,
  kConfigurationAndSwHardeningNeeded,
  kOutOfDate,
  kOutOfDateConfigurationNeeded,
  kRevoked,
  kTdRelaunchAdvised,
  kTdRelaunchAdvisedConfigurationNeeded,
  kNotSupported,       // no level matches the platform (QVL STATUS_TCB_NOT_SUPPORTED)
  kTdxModuleMismatch,  // no TDX module identity for the module (QVL STATUS_TDX_MODULE_MISMATCH)
};
// Intel's spelling for collateral statuses ("UpToDate", "SWHardeningNeeded", …), and
// "TDRelaunchAdvised", "TDRelaunchAdvisedConfigurationNeeded", "NotSupported",
// "TdxModuleMismatch" for the rest.
std::string_view to_string(TcbStatus status);
std::optional<TcbStatus> tcb_status_from_string(std::string_view text);

struct TcbComponent {
  std::uint8_t svn = 0;
  std::string category;  // optional in the JSON: empty when absent
  std::string type;
};

struct TcbLevel {
  std::array<TcbComponent, 16> sgx_components;
  std::uint16_t pcesvn = 0;
  std::array<TcbComponent, 16> tdx_components;
  UnixTime tcb_date = 0;
  TcbStatus status = TcbStatus::kUpToDate;
  std::vector<std::string> advisory_ids;

  std::array<std::uint8_t, 16> sgx_svns() const;
  std::array<std::uint8_t, 16> tdx_svns() const;
};

struct TdxModule {
  Bytes48 mrsigner{};
  std::array<std::uint8_t, 8> attributes{};
  std::array<std::uint8_t, 8> attributes_mask{};
};

struct ModuleTcbLevel {
  std::uint8_t isvsvn = 0;
  UnixTime tcb_date = 0;
  TcbStatus status = TcbStatus::kUpToDate;  // UpToDate, OutOfDate or Revoked
  std::vector<std::string> advisory_ids;
};

struct TdxModuleIdentity {
  std::string id;  // "TDX_01", "TDX_03", …
  TdxModule module;
  std::vector<ModuleTcbLevel> tcb_levels;  // JSON order
};

struct TcbInfo {
  std::string id;  // "TDX" (or "SGX": parsed so it can be rejected by name)
  std::uint32_t version = 0;
  UnixTime issue_date = 0;
  UnixTime next_update = 0;
  std::array<std::uint8_t, 6> fmspc{};
  std::array<std::uint8_t, 2> pce_id{};
  std::uint32_t tcb_type = 0;
  std::uint32_t tcb_evaluation_data_number = 0;
  std::optional<TdxModule> tdx_module;
  std::vector<TdxModuleIdentity> tdx_module_identities;
  std::vector<TcbLevel> tcb_levels;  // JSON order
};

struct QeTcbLevel {
  std::uint16_t isvsvn = 0;
  UnixTime tcb_date = 0;
  TcbStatus status = TcbStatus::kUpToDate;
  std::vector<std::string> advisory_ids;
};

struct QeIdentity {
  std::string id;  // "TD_QE"
  std::uint32_t version = 0;
  UnixTime issue_date = 0;
  UnixTime next_update = 0;
  std::uint32_t tcb_evaluation_data_number = 0;
  std::array<std::uint8_t, 4> miscselect{};  // QE report byte order
  std::array<std::uint8_t, 4> miscselect_mask{};
  std::array<std::uint8_t, 16> attributes{};
  std::array<std::uint8_t, 16> attributes_mask{};
  std::array<std::uint8_t, 32> mrsigner{};
  std::uint16_t isvprodid = 0;
  std::vector<QeTcbLevel> tcb_levels;  // JSON order
};

// A collateral structure with the exact text its signature covers.
template <typename T>
struct SignedCollateral {
  T value;
  std::string body;                          // the signed JSON text, byte for byte
  std::array<std::uint8_t, 64> signature{};  // ECDSA P-256 r||s over SHA-256(body)
};
using SignedTcbInfo = SignedCollateral<TcbInfo>;
using SignedQeIdentity = SignedCollateral<QeIdentity>;

// The signed structures from their JSON text (`body` is the "tcbInfo" / "enclaveIdentity" value).
Result<TcbInfo> parse_tcb_info(std::string_view body);
Result<QeIdentity> parse_qe_identity(std::string_view body);

// Intel PCS response bodies: {"tcbInfo": {...}, "signature": "<128 hex>"} and
// {"enclaveIdentity": {...}, "signature": "<128 hex>"}.
Result<SignedTcbInfo> parse_tcb_info_response(std::string_view json);
Result<SignedQeIdentity> parse_qe_identity_response(std::string_view json);

// Checks an ECDSA P-256/SHA-256 signature given as raw r||s (64 bytes).
Status verify_p256_signature(const PublicKey& key, ByteView message, ByteView raw_signature);

// Everything a TDX quote is checked against besides the quote itself. Certificates are the
// issuer chains (TCB Signing, Root CA, PCK CAs) in any order; CRLs are the Root CA CRL and the
// PCK CRLs, told apart by issuer.
struct TdxCollateral {
  std::vector<Sourced<SignedTcbInfo>> tcb_infos;
  std::vector<Sourced<SignedQeIdentity>> qe_identities;
  std::vector<Sourced<Certificate>> certificates;
  std::vector<Sourced<Crl>> crls;
  // PCK certificate chains a collateral bundle carries ("pck_certificate_chain"): a copy of the
  // quote's own chain, checked to be equal to it ("tdx.collateral.pck_chain").
  std::vector<Sourced<std::vector<Certificate>>> pck_chains;

  bool empty() const {
    return tcb_infos.empty() && qe_identities.empty() && certificates.empty() && crls.empty() &&
           pck_chains.empty();
  }
};

// One collateral input (file, cache entry or fetched body). The limit is what the HTTP client
// takes from PCS (HttpClientOptions::max_body_bytes), so cached collateral always reads back.
inline constexpr FileLimit kCollateralFileLimit{
    4u << 20,
    "TDX collateral can be (a TCB Info is about 10 KiB, a whole collateral bundle about 30 KiB; "
    "4 MiB is what cloister fetches)"};

// Adds one collateral input, recognised by content: a PCS TCB Info or QE Identity response
// (JSON), a collateral bundle (JSON with the keys tcb_info, tcb_info_signature,
// tcb_info_issuer_chain, qe_identity, qe_identity_signature, qe_identity_issuer_chain, pck_crl,
// pck_crl_issuer_chain, root_ca_crl, and optionally pck_certificate_chain: CRLs as hex DER,
// chains as PEM, signed structures as the verbatim JSON string — the shape Phala's dcap-qvl and
// shared/vectors/tdx/phala use), PEM
// certificates (issuer chains), or a CRL (DER or PEM). `source` names the input in the
// collateral's Sourced entries and in errors. Inputs larger than kCollateralFileLimit are refused
// before they are parsed.
Status add_collateral(ByteView data, const std::string& source, TdxCollateral& out);

}  // namespace cloister::attestation::tdx
