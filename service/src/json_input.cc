#include "json_input.h"

#include <set>
#include <vector>

namespace cloister::service::detail {

Result<nlohmann::json> parse_json(std::string_view text, std::string_view what) {
  using E = nlohmann::json::parse_event_t;
  std::vector<std::set<std::string>> keys;
  std::string problem;
  auto callback = [&](int depth, E event, nlohmann::json& parsed) {
    if (!problem.empty()) return false;
    switch (event) {
      case E::object_start:
      case E::array_start:
        if (depth >= kMaxJsonDepth) {
          problem = "nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels";
          return false;
        }
        if (event == E::object_start) keys.emplace_back();
        return true;
      case E::key:
        if (!keys.empty() && !keys.back().insert(parsed.get<std::string>()).second) {
          problem = "duplicate member \"" + parsed.get<std::string>() + "\"";
          return false;
        }
        return true;
      case E::object_end:
        if (!keys.empty()) keys.pop_back();
        return true;
      default:
        return true;
    }
  };
  nlohmann::json doc = nlohmann::json::parse(text, callback, /*allow_exceptions=*/false);
  if (!problem.empty()) return Error(std::string(what) + ": " + problem);
  if (doc.is_discarded()) return Error(std::string(what) + ": not valid JSON");
  return doc;
}

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
