// Reading untrusted JSON documents: one parse with limits, then typed member access whose
// errors name the member, the expected type and what was found.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "cloister/common/result.h"

namespace cloister::service::detail {

// Nesting deeper than this is refused (no wire message of ours nests beyond a handful).
inline constexpr int kMaxJsonDepth = 64;

// Parses `text` as one JSON document. Fails, prefixed with `what`, on a syntax error, a
// duplicate member name in any object (serde refuses them in the structs the KBS protocol
// defines) or nesting beyond kMaxJsonDepth.
Result<nlohmann::json> parse_json(std::string_view text, std::string_view what);

// "string", "object", "number", … as error messages name JSON types.
std::string json_type_name(const nlohmann::json& value);

// The member `name` of `object` (which `where` names, e.g. "Attestation.runtime-data"), or an
// error "<where>: missing member \"<name>\"".
Result<const nlohmann::json*> required_member(const nlohmann::json& object, std::string_view name,
                                              std::string_view where);

// required_member() that must be a string / an object.
Result<std::string> string_member(const nlohmann::json& object, std::string_view name,
                                  std::string_view where);
Result<const nlohmann::json*> object_member(const nlohmann::json& object, std::string_view name,
                                            std::string_view where);

// Fails unless `value` is an object: "<where>: expected an object, found <type>".
Status expect_object(const nlohmann::json& value, std::string_view where);

}  // namespace cloister::service::detail
