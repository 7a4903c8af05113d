#include "raw_json.h"

namespace cloister::attestation::tdx {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::size_t skip_space(std::string_view s, std::size_t i) {
  while (i < s.size() && is_space(s[i])) ++i;
  return i;
}

// `i` at an opening quote; returns the index after the closing quote.
std::size_t skip_string(std::string_view s, std::size_t i) {
  for (++i; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      return i + 1;
    }
  }
  return s.size();
}

// The end of the (already validated) JSON value starting at `i`.
std::size_t skip_value(std::string_view s, std::size_t i) {
  if (i >= s.size()) return i;
  if (s[i] == '"') return skip_string(s, i);
  if (s[i] == '{' || s[i] == '[') {
    int depth = 0;
    while (i < s.size()) {
      char c = s[i];
      if (c == '"') {
        i = skip_string(s, i);
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (--depth == 0) return i + 1;
      }
      ++i;
    }
    return i;
  }
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && !is_space(s[i])) ++i;
  return i;
}

}  // namespace

Result<RawObject> parse_raw_object(std::string_view text, const std::string& what) {
  CLOISTER_TRY(nlohmann::json doc, parse_json_strict(text, what));
  if (!doc.is_object()) return Error(what + ": expected a JSON object");
  RawObject out;
  std::size_t i = skip_space(text, 0);
  ++i;  // '{'
  while (true) {
    i = skip_space(text, i);
    if (i >= text.size() || text[i] == '}') break;
    if (text[i] == ',') {
      ++i;
      continue;
    }
    const std::size_t key_end = skip_string(text, i);
    auto key = nlohmann::json::parse(text.substr(i, key_end - i), nullptr, false);
    i = skip_space(text, key_end);
    ++i;  // ':'
    i = skip_space(text, i);
    const std::size_t value_end = skip_value(text, i);
    if (key.is_string()) out.raw_members[key.get<std::string>()] = text.substr(i, value_end - i);
    i = value_end;
  }
  out.value = std::move(doc);
  return out;
}

}  // namespace cloister::attestation::tdx
