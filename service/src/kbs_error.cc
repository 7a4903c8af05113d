#include "cloister/service/kbs_error.h"

#include "cloister/service/kbs.h"

namespace cloister::service::kbs {

std::string_view to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kAttestationError:
      return "AttestationError";
    case ErrorKind::kInvalidRequestPath:
      return "InvalidRequestPath";
    case ErrorKind::kPluginNotFound:
      return "PluginNotFound";
    case ErrorKind::kPolicyDeny:
      return "PolicyDeny";
    case ErrorKind::kTokenNotFound:
      return "TokenNotFound";
    case ErrorKind::kTokenVerifierError:
      return "TokenVerifierError";
    case ErrorKind::kSerdeError:
      return "SerdeError";
    case ErrorKind::kJweError:
      return "JweError";
    case ErrorKind::kPluginInternalError:
      return "PluginInternalError";
    case ErrorKind::kAdminAuthAccess:
      return "AdminAuthAccess";
    case ErrorKind::kPayloadTooLarge:
      return "PayloadTooLarge";
  }
  return "Unknown";
}

int KbsError::status() const {
  switch (kind_) {
    case ErrorKind::kInvalidRequestPath:
    case ErrorKind::kPluginNotFound:
      return 404;
    case ErrorKind::kPayloadTooLarge:
      return 413;
    default:
      return 401;
  }
}

std::string KbsError::type() const {
  return std::string(kErrorTypePrefix) + std::string(to_string(kind_));
}

nlohmann::json KbsError::body() const {
  return {{"type", type()}, {"detail", detail_}};
}

KbsError auth_failed(const Error& why) {
  return {ErrorKind::kAttestationError,
          "Attestation error: RCAR handshake Auth failed: " + why.message()};
}

KbsError attest_failed(const Error& why) {
  return {ErrorKind::kAttestationError,
          "Attestation error: RCAR handshake Attest failed: " + why.message()};
}

KbsError invalid_request_path(std::string_view path) {
  return {ErrorKind::kInvalidRequestPath, "Request path " + std::string(path) + " is invalid"};
}

KbsError token_not_found() {
  return {ErrorKind::kTokenNotFound, "Attestation Token not found"};
}

KbsError policy_deny(std::string_view why) {
  return {ErrorKind::kPolicyDeny, "Access denied by policy: " + std::string(why)};
}

KbsError payload_too_large(std::size_t size) {
  return {ErrorKind::kPayloadTooLarge, "request body is " + std::to_string(size) +
                                           " bytes, above the limit of " +
                                           std::to_string(kMaxRequestBodySize)};
}

}  // namespace cloister::service::kbs
