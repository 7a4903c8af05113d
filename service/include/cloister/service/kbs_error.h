// KBS error responses: Trustee's error variants, their HTTP status codes and the body
// {"type": "https://github.com/confidential-containers/kbs/errors/<Variant>", "detail": "…"}
// (research/service.md §a.0, §a.3).
//
// Status codes follow the clients' retry logic, not HTTP taste: guest-components redoes the
// handshake on 401, reports "resource not found" on 404 and treats anything else as a server
// failure; so every refusal except a bad path is 401 (Trustee v0.21 sends no 403).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "cloister/common/result.h"

namespace cloister::service::kbs {

inline constexpr std::string_view kErrorTypePrefix =
    "https://github.com/confidential-containers/kbs/errors/";

enum class ErrorKind {
  kAttestationError,     // 401: the auth or attest step failed (version, nonce, evidence, …)
  kInvalidRequestPath,   // 404: no such endpoint
  kPluginNotFound,       // 404: no such plugin
  kPolicyDeny,           // 401: the resource policy refused the token
  kTokenNotFound,        // 401: a resource request with neither cookie nor bearer token
  kTokenVerifierError,   // 401: the token does not verify (signature, expiry, issuer)
  kSerdeError,           // 401: a body that does not parse
  kJweError,             // 401: the resource could not be encrypted to the TEE key
  kPluginInternalError,  // 401: the resource backend failed, including a missing resource
  kAdminAuthAccess,      // 401: an admin endpoint without valid admin credentials
  kPayloadTooLarge,      // 413: a body above kMaxRequestBodySize
};

// The variant's name as the error type URL ends: "AttestationError", "PolicyDeny", …
std::string_view to_string(ErrorKind kind);

// A refusal the KBS endpoints send. `detail` is Trustee's wording for the variant followed by
// our words naming the failed check, expected and found.
class KbsError {
 public:
  KbsError(ErrorKind kind, std::string detail) : kind_(kind), detail_(std::move(detail)) {}

  ErrorKind kind() const { return kind_; }
  int status() const;
  std::string type() const;  // kErrorTypePrefix + to_string(kind)
  const std::string& detail() const { return detail_; }
  // {"type": type(), "detail": detail()}
  nlohmann::json body() const;

 private:
  ErrorKind kind_;
  std::string detail_;
};

// The refusals of the two handshake steps, worded as Trustee words them:
// "Attestation error: RCAR handshake Auth failed: <why>" / "… Attest failed: <why>".
KbsError auth_failed(const Error& why);
KbsError attest_failed(const Error& why);
// "Request path <path> is invalid".
KbsError invalid_request_path(std::string_view path);
// "Attestation Token not found".
KbsError token_not_found();
// "Access denied by policy: <why>".
KbsError policy_deny(std::string_view why);
// "request body is <size> bytes, above the limit of 2097152".
KbsError payload_too_large(std::size_t size);

}  // namespace cloister::service::kbs
