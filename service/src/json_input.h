// Typed member access to untrusted JSON documents (parsed by parse_json_strict, which refuses
// duplicate members as serde does in the structs the KBS protocol defines, and deep nesting):
// errors name the member, the expected type and what was found.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "cloister/common/result.h"

namespace cloister::service::detail {

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
