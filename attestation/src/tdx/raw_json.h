// JSON documents whose members are signed as raw text (Intel's TCB Info and QE Identity
// responses sign the exact bytes of the "tcbInfo" / "enclaveIdentity" value as served).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "cloister/common/json.h"
#include "cloister/common/result.h"

namespace cloister::attestation::tdx {

// A JSON object and the exact source text of each top-level member's value.
struct RawObject {
  nlohmann::json value;
  std::map<std::string, std::string_view, std::less<>> raw_members;  // views into the input
};

// parse_json_strict() of an object (duplicate keys are refused: two parsers could otherwise
// disagree on which value a signature covers), plus its members' raw text.
Result<RawObject> parse_raw_object(std::string_view text, const std::string& what);

}  // namespace cloister::attestation::tdx
