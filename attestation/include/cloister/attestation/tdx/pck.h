// Intel SGX/TDX Provisioning Certification Keys: the PCK certificate's SGX extensions, the
// chain PCK leaf -> PCK Platform/Processor CA -> Intel SGX Root CA, and the Intel root this
// library pins (research/tdx.md §b; Intel "SGX PCK Certificate and CRL Profile").
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "cloister/attestation/verdict.h"
#include "cloister/attestation/x509.h"

namespace cloister::attestation::tdx {

// Subject CNs Intel issues (QVL X509Constants.h, PckCertVerifier.cpp).
inline constexpr char kRootCaCn[] = "Intel SGX Root CA";
inline constexpr char kPlatformCaCn[] = "Intel SGX PCK Platform CA";
inline constexpr char kProcessorCaCn[] = "Intel SGX PCK Processor CA";
inline constexpr char kPckLeafCn[] = "Intel SGX PCK Certificate";
inline constexpr char kTcbSigningCn[] = "Intel SGX TCB Signing";

// The SGX extension (a SEQUENCE of {OID, value} pairs) and its members.
namespace oid {
inline constexpr char kSgxExtension[] = "1.2.840.113741.1.13.1";
inline constexpr char kPpid[] = "1.2.840.113741.1.13.1.1";
inline constexpr char kTcb[] =
    "1.2.840.113741.1.13.1.2";  // .1-.16 components, .17 PCESVN, .18 CPUSVN
inline constexpr char kPceId[] = "1.2.840.113741.1.13.1.3";
inline constexpr char kFmspc[] = "1.2.840.113741.1.13.1.4";
inline constexpr char kSgxType[] = "1.2.840.113741.1.13.1.5";
inline constexpr char kPlatformInstanceId[] = "1.2.840.113741.1.13.1.6";
inline constexpr char kConfiguration[] =
    "1.2.840.113741.1.13.1.7";  // .1 dynamic, .2 cached, .3 SMT
}  // namespace oid

enum class PckCaType { kPlatform, kProcessor };
std::string_view to_string(PckCaType type);  // "platform", "processor" (PCS's ca= values)

enum class SgxType : std::uint8_t { kStandard = 0, kScalable = 1, kScalableWithIntegrity = 2 };
std::string_view to_string(SgxType type);

struct PckConfiguration {
  std::optional<bool> dynamic_platform;
  std::optional<bool> cached_keys;
  std::optional<bool> smt_enabled;
};

struct PckExtensions {
  std::array<std::uint8_t, 16> ppid{};
  std::array<std::uint8_t, 16> tcb_components{};  // SGX TCB COMP01..16 SVNs
  std::uint16_t pcesvn = 0;
  std::array<std::uint8_t, 16> cpusvn{};
  std::array<std::uint8_t, 2> pce_id{};
  std::array<std::uint8_t, 6> fmspc{};
  SgxType sgx_type = SgxType::kStandard;
  std::optional<std::array<std::uint8_t, 16>> platform_instance_id;  // Platform CA leaves only
  std::optional<PckConfiguration> configuration;                     // Platform CA leaves only
};

// Decodes the DER value of the SGX extension. Every member Intel defines must appear exactly
// once (PPID, TCB with all 18 entries, PCE-ID, FMSPC, SGX type); platform instance ID and
// configuration are optional here (which leaves need them depends on the issuing CA). Unknown or
// duplicate OIDs, wrong sizes, SVNs out of range and non-DER encodings are rejected with the
// member named.
Result<PckExtensions> parse_pck_extensions(ByteView sgx_extension);

// The SGX extension of a PCK certificate, decoded; fails when it is absent.
Result<PckExtensions> pck_extensions(const Certificate& pck);

// The Intel SGX Root CA's P-256 public key (raw x||y), pinned by this library: the key of
// "CN=Intel SGX Root CA, O=Intel Corporation, L=Santa Clara, ST=CA, C=US", serial
// 22650cd65a9d3489f383b49552bf501b392706ac, certificate SHA-256 44a0196b…74d3.
const std::array<std::uint8_t, 64>& intel_sgx_root_public_key();
// The same as a PublicKey.
const PublicKey& intel_sgx_root_key();

// The three certificates of a PCK chain, identified by subject CN.
struct PckChain {
  Certificate leaf;
  Certificate intermediate;
  Certificate root;
  PckCaType ca = PckCaType::kPlatform;
};

// Finds leaf, PCK Platform/Processor CA and root among `certs` in any order. Fails unless there
// are exactly three certificates with those subject CNs.
Result<PckChain> identify_pck_chain(const std::vector<Certificate>& certs);

// A PEM certificate chain as the quote's type-5 certification data and PCS issuer-chain headers
// carry it: PEM CERTIFICATE blocks, nothing else but whitespace between and after them, and at
// most one trailing NUL. `what` names the input in errors ("PCK chain: …").
Result<std::vector<Certificate>> parse_pem_chain(ByteView pem,
                                                 const std::string& what = "PCK chain");

// Checks of a PCK chain that do not depend on time, appended as "tdx.pck.chain.root" (the root
// has `trusted_root`'s public key and signs itself) and "tdx.pck.chain" (Intel's names, issuer
// names linking the chain, X.509 v3, ECDSA-SHA256 signatures with P-256 keys, each certificate
// signed by the next).
void check_pck_chain(const PckChain& chain, const PublicKey& trusted_root, Checks& out);

// "tdx.pck.extensions": the leaf's SGX extension decodes and, for a Platform CA leaf, carries
// the platform instance ID and configuration (a Processor CA leaf carries neither).
void check_pck_extensions(const PckChain& chain, const Result<PckExtensions>& extensions,
                          Checks& out);

}  // namespace cloister::attestation::tdx
