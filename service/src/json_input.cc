#include "json_input.h"

namespace cloister::service::detail {

std::string json_type_name(const nlohmann::json& value) {
  if (value.is_number()) return "number";
  return value.type_name();
}

Status expect_object(const nlohmann::json& value, std::string_view where) {
  if (!value.is_object()) {
    return Error(std::string(where) + ": expected an object, found " + json_type_name(value));
  }
  return {};
}

Result<const nlohmann::json*> required_member(const nlohmann::json& object, std::string_view name,
                                              std::string_view where) {
  CLOISTER_CHECK_OK(expect_object(object, where));
  const auto it = object.find(name);
  if (it == object.end()) {
    return Error(std::string(where) + ": missing member \"" + std::string(name) + "\"");
  }
  return &*it;
}

Result<std::string> string_member(const nlohmann::json& object, std::string_view name,
                                  std::string_view where) {
  CLOISTER_TRY(const nlohmann::json* value, required_member(object, name, where));
  if (!value->is_string()) {
    return Error(std::string(where) + "." + std::string(name) + ": expected a string, found " +
                 json_type_name(*value));
  }
  return value->get<std::string>();
}

Result<const nlohmann::json*> object_member(const nlohmann::json& object, std::string_view name,
                                            std::string_view where) {
  CLOISTER_TRY(const nlohmann::json* value, required_member(object, name, where));
  CLOISTER_CHECK_OK(expect_object(*value, std::string(where) + "." + std::string(name)));
  return value;
}

}  // namespace cloister::service::detail
