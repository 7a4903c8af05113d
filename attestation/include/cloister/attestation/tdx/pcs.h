// Intel's Provisioning Certification Service (PCS, API v4) and the PCCS caching service that
// serves the same paths: URLs, a local cache, and fetching (only when online). URL forms and
// header names per research/tdx.md §b (go-tdx-guest pcs/pcs.go, Trustee intel_dcap/pcs.rs).
//
// Cache layout (can be pre-provisioned by hand; bodies are stored exactly as served):
//   <cache>/tdx/v4/tcb/<fmspc hex>.json            TCB Info response {"tcbInfo", "signature"}
//   <cache>/tdx/v4/tcb/<fmspc hex>.chain.pem       its issuer chain (TCB Signing, Root CA)
//   <cache>/tdx/v4/qe/identity.json                 QE Identity response
//   <cache>/tdx/v4/qe/identity.chain.pem            its issuer chain
//   <cache>/sgx/v4/pckcrl/<platform|processor>.der  PCK CRL (DER)
//   <cache>/sgx/v4/pckcrl/<platform|processor>.chain.pem   its issuer chain
//   <cache>/sgx/rootcacrl.der                       Intel SGX Root CA CRL (DER)
// <fmspc hex> is 12 lower-case hex digits. Cached items past their nextUpdate at the
// verification time are refetched when online (and still used when offline: the verifier then
// reports them stale).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "cloister/attestation/http.h"
#include "cloister/attestation/sourced.h"
#include "cloister/attestation/tdx/collateral.h"
#include "cloister/attestation/tdx/pck.h"

namespace cloister::attestation::tdx {

inline constexpr char kPcsBaseUrl[] = "https://api.trustedservices.intel.com";
// The Intel SGX Root CA certificate's CRL distribution point.
inline constexpr char kIntelRootCaCrlUrl[] =
    "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der";

// <base>/tdx/certification/v4/tcb?fmspc=<12 hex>
std::string pcs_tcb_info_url(std::string_view base_url, const std::array<std::uint8_t, 6>& fmspc);
// <base>/tdx/certification/v4/qe/identity
std::string pcs_qe_identity_url(std::string_view base_url);
// <base>/sgx/certification/v4/pckcrl?ca=platform|processor&encoding=der
std::string pcs_pck_crl_url(std::string_view base_url, PckCaType ca);

// Percent-decodes a header value (PCS sends issuer chains URL-encoded).
Result<std::string> url_decode(std::string_view text);

struct PcsOptions {
  std::string base_url = kPcsBaseUrl;  // Intel PCS, or a PCCS
  std::string root_ca_crl_url = kIntelRootCaCrlUrl;
  // Looked up before fetching; what is fetched is stored here. No cache when unset.
  std::optional<std::filesystem::path> cache_dir;
  // Fetch what the cache lacks. Off: nothing ever leaves the machine.
  bool online = false;
  // HTTP client for fetching; a libcurl client is created on first fetch when unset.
  std::shared_ptr<HttpClient> http;
  int max_attempts = 3;
  long max_retry_wait_seconds = 10;
  // A lookup's fetch (all its attempts and waits) ends by then.
  long deadline_seconds = 60;
};

// Collateral for one quote, added into a TdxCollateral (issuer chains become certificates).
// Each lookup adds nothing when the item is neither cached nor fetchable (offline) and fails
// when fetching failed or what the cache or PCS holds does not parse. `now` decides whether a
// cached item is stale. Thread-safe: concurrent lookups of one item share one request
// (FetchGroup), lookups of different items proceed in parallel, and cache files are replaced
// atomically.
class PcsClient {
 public:
  explicit PcsClient(PcsOptions options);

  Status tcb_info(const std::array<std::uint8_t, 6>& fmspc, UnixTime now, TdxCollateral& out);
  Status qe_identity(UnixTime now, TdxCollateral& out);
  Status pck_crl(PckCaType ca, UnixTime now, TdxCollateral& out);
  Status root_ca_crl(UnixTime now, TdxCollateral& out);

  const PcsOptions& options() const { return options_; }

 private:
  // A signed JSON item with its issuer chain: cached file, else (online) fetched.
  Status signed_json(const std::string& url, const std::filesystem::path& relative,
                     const char* chain_header, UnixTime now, bool tcb_info, TdxCollateral& out);
  Status crl(const std::string& url, const std::filesystem::path& relative,
             const char* chain_header, UnixTime now, TdxCollateral& out);
  Result<HttpResponse> fetch(const std::string& url);

  PcsOptions options_;
  std::unique_ptr<FetchGroup> fetches_;
};

}  // namespace cloister::attestation::tdx
