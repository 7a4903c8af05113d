// The project's one HTTP client, for fetching collateral (AMD KDS, Intel PCS).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cloister/common/bytes.h"

namespace cloister::attestation {

struct HttpResponse {
  long status = 0;
  Bytes body;
  std::string content_type;
  std::optional<long> retry_after_seconds;  // from a Retry-After header in seconds form
  // Every response header, names lower-cased, values with surrounding whitespace removed (the
  // last occurrence wins). Intel PCS sends collateral issuer chains in headers.
  std::map<std::string, std::string> headers;
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string>
      headers;       // complete lines without CRLF: "Content-Type: application/json"
  std::string body;  // sent for any method but GET
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // GET `url`. Fails only when no HTTP response arrived (DNS, TLS, timeout, oversized body);
  // any HTTP status is a response.
  virtual Result<HttpResponse> get(const std::string& url) = 0;
  // Any request, with the same failure rules; GET follows redirects, other methods do not.
  // Clients that only fetch collateral need not implement it (the default fails with
  // kUnimplemented).
  virtual Result<HttpResponse> send(const HttpRequest& request) {
    return Error(ErrorCode::kUnimplemented,
                 request.method + " " + request.url + ": this HTTP client only fetches (GET)");
  }
};

struct HttpClientOptions {
  long timeout_seconds = 30;
  std::size_t max_body_bytes = 4 << 20;
  // A PEM file of the certificates HTTPS servers are verified against instead of the system CA
  // store (a service's self-signed certificate), which is then not consulted at all; empty: the
  // system store.
  std::string ca_file;
  // Only https://, for the request and for any redirect.
  bool https_only = false;
  // GET follows up to 5 redirects; off: a redirect is the response.
  bool follow_redirects = true;
  // Keep connections open between requests (one handle, its requests serialised); off: every
  // request opens its own connection, so a load balancer spreads them.
  bool keep_alive = false;
};

// How a collateral service is retried: HTTP 429 (rate limit) and 5xx are retried after
// Retry-After (or 1, 2, 4 … s), each wait capped at max_retry_wait_seconds, and no wait is
// started that would end past deadline_seconds from the first attempt.
struct RetryPolicy {
  int max_attempts = 3;
  long max_retry_wait_seconds = 10;
  std::string service;         // "KDS", "PCS": names the service in errors
  std::string not_found_hint;  // appended to HTTP 404 errors, e.g. "KDS has no such certificate"
  long deadline_seconds = 60;
};

// GET `url` until it answers 200 with a non-empty body, retrying as `policy` says. Errors name
// the URL, the last status and the number of attempts (and the deadline when it ended them).
Result<HttpResponse> get_with_retry(HttpClient& http, const std::string& url,
                                    const RetryPolicy& policy);

// GETs shared by concurrent callers: while a GET of a URL is in flight, other callers asking
// for the same URL wait for it and get its result instead of sending their own; different URLs
// are fetched in parallel. Each GET is get_with_retry() with the caller's policy, so it ends
// by the policy's deadline. Thread-safe.
class FetchGroup {
 public:
  // `http` null: a libcurl client (make_http_client()) is made on the first GET.
  explicit FetchGroup(std::shared_ptr<HttpClient> http);
  Result<HttpResponse> get(const std::string& url, const RetryPolicy& policy);
  // How many callers wait for the GET of `url` in flight (0 when none is), for metrics.
  std::size_t waiters(const std::string& url) const;

 private:
  struct Flight;
  mutable std::mutex mutex_;
  std::shared_ptr<HttpClient> http_;
  std::map<std::string, std::shared_ptr<Flight>> in_flight_;
};

// libcurl, loaded with dlopen() on first use: linking it costs every process ~3 ms of dynamic
// loading (30+ libraries), which offline verification never needs. HTTPS verifies the server
// against the system CA store; the usual proxy variables (https_proxy, no_proxy) apply.
// Fails when libcurl.so.4 cannot be loaded.
Result<std::unique_ptr<HttpClient>> make_http_client(const HttpClientOptions& options = {});

}  // namespace cloister::attestation
