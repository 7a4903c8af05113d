// The KBS binding of the challenge nonce and the TEE key into the evidence's REPORT_DATA
// (research/service.md §a.5), computed identically by guest-components and Trustee:
//
//   primary object  {"tee-pubkey": <JWK>, "nonce": <nonce>, "additional-evidence": <string>}
//   device object   {"tee-pubkey": <JWK>, "nonce": <nonce>}
//   REPORT_DATA   = H(JCS(object)), zero-padded to 64 bytes
//
// with JCS = RFC 8785 (jcs.h), the JWK rebuilt from TeePubKey's typed members only, and
// H = the challenge's selected hash, SHA-384 by default.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "cloister/service/kbs.h"

namespace cloister::service::kbs {

using ReportData = std::array<std::uint8_t, 64>;

// The canonical text that is hashed. `additional_evidence` unset gives the device object;
// the primary object always carries the member, "" when there are no devices.
Result<std::string> binding_object(const TeePubKey& key, std::string_view nonce,
                                   std::optional<std::string_view> additional_evidence);

// H(binding_object(…)): 32, 48 or 64 bytes.
Result<Bytes> binding_digest(const TeePubKey& key, std::string_view nonce,
                             std::optional<std::string_view> additional_evidence,
                             HashAlgorithm hash = kDefaultHash);

// binding_digest() zero-padded to the 64 bytes of SNP REPORT_DATA / TDX REPORTDATA.
Result<ReportData> expected_report_data(const TeePubKey& key, std::string_view nonce,
                                        std::optional<std::string_view> additional_evidence,
                                        HashAlgorithm hash = kDefaultHash);

}  // namespace cloister::service::kbs
