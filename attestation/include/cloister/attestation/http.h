// The project's one HTTP client, for fetching collateral (AMD KDS, Intel PCS).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "cloister/common/bytes.h"

namespace cloister::attestation {

struct HttpResponse {
  long status = 0;
  Bytes body;
  std::string content_type;
  std::optional<long> retry_after_seconds;  // from a Retry-After header in seconds form
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // GET `url`. Fails only when no HTTP response arrived (DNS, TLS, timeout, oversized body);
  // any HTTP status is a response.
  virtual Result<HttpResponse> get(const std::string& url) = 0;
};

struct HttpClientOptions {
  long timeout_seconds = 30;
  std::size_t max_body_bytes = 4 << 20;
};

// libcurl, loaded with dlopen() on first use: linking it costs every process ~3 ms of dynamic
// loading (30+ libraries), which offline verification never needs. HTTPS verifies the server
// against the system CA store; the usual proxy variables (https_proxy, no_proxy) apply.
// Fails when libcurl.so.4 cannot be loaded.
Result<std::unique_ptr<HttpClient>> make_http_client(const HttpClientOptions& options = {});

}  // namespace cloister::attestation
