// AMD's Key Distribution Service (KDS): URLs, a local cache, and fetching (only when online).
// URL forms per AMD pub. 57230 and research/snp.md §c.3.
//
// Cache layout (mirrors the KDS paths, so it can be pre-provisioned by hand):
//   <cache>/vcek/v1/<Product>/<hwid hex>/<REPORTED_TCB hex>.der   VCEK (DER)
//   <cache>/{vcek,vlek}/v1/<Product>/cert_chain.pem                ASK or ASVK, then ARK (PEM)
//   <cache>/{vcek,vlek}/v1/<Product>/crl.der                       CRL (DER)
// <hwid hex> is 128 hex digits (Milan, Genoa) or 16 (Turin); <REPORTED_TCB hex> is the 8 TCB
// bytes in report order (16 hex digits).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cloister/attestation/http.h"
#include "cloister/attestation/snp/certs.h"
#include "cloister/attestation/snp/report.h"
#include "cloister/attestation/sourced.h"
#include "cloister/attestation/x509.h"

namespace cloister::attestation::snp {

inline constexpr char kKdsBaseUrl[] = "https://kdsintf.amd.com";

// The hwID KDS indexes VCEKs by: all 64 bytes of CHIP_ID, or the first 8 for Turin and later.
// Fails when CHIP_ID is all zero (masked by the host), or when a Turin CHIP_ID has bytes
// beyond the eighth.
Result<Bytes> kds_hw_id(Product product, ByteView chip_id);

// .../vcek/v1/Milan/<128 hex>?blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68
// .../vcek/v1/Turin/<16 hex>?fmcSPL=0&blSPL=1&teeSPL=0&snpSPL=2&ucodeSPL=71
Result<std::string> kds_vcek_url(std::string_view base_url, Product product, ByteView chip_id,
                                 const TcbParts& tcb);
std::string kds_cert_chain_url(std::string_view base_url, Product product, VekKind kind);
std::string kds_crl_url(std::string_view base_url, Product product, VekKind kind);

using attestation::Sourced;

struct KdsOptions {
  std::string base_url = kKdsBaseUrl;
  // Looked up before fetching; what is fetched is stored here. No cache when unset.
  std::optional<std::filesystem::path> cache_dir;
  // Fetch from KDS what the cache lacks. Off: nothing ever leaves the machine.
  bool online = false;
  // HTTP client for fetching; a libcurl client is created on first fetch when unset.
  std::shared_ptr<HttpClient> http;
  // KDS rate-limits (HTTP 429); 429 and 5xx are retried after Retry-After (or 1, 2, 4 … s),
  // each wait capped at max_retry_wait_seconds.
  int max_attempts = 3;
  long max_retry_wait_seconds = 10;
  // A lookup's fetch (all its attempts and waits) ends by then.
  long deadline_seconds = 60;
};

// Thread-safe: concurrent lookups of one item share one request (FetchGroup), lookups of
// different items proceed in parallel, and cache files are replaced atomically.
class KdsClient {
 public:
  explicit KdsClient(KdsOptions options);

  // Each lookup returns nullopt when the item is neither cached nor fetchable (offline), and an
  // Error when fetching failed or what the cache or KDS holds is not what it should be.
  Result<std::optional<Sourced<Certificate>>> vcek(Product product, ByteView chip_id,
                                                   const TcbVersion& reported_tcb);
  // [ASK or ASVK, ARK] as KDS serves them.
  Result<std::optional<Sourced<std::vector<Certificate>>>> cert_chain(Product product,
                                                                      VekKind kind);
  // A cached CRL past its nextUpdate at `now` is refreshed when online.
  Result<std::optional<Sourced<Crl>>> crl(Product product, VekKind kind, UnixTime now);

  const KdsOptions& options() const { return options_; }

 private:
  Result<Bytes> fetch(const std::string& url);

  KdsOptions options_;
  std::unique_ptr<FetchGroup> fetches_;
};

}  // namespace cloister::attestation::snp
