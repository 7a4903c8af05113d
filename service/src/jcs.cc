#include "cloister/service/jcs.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <vector>

#include "cloister/common/utf8.h"

namespace cloister::service {
namespace {

// 2^53: the largest magnitude up to which every integer is an IEEE-754 double.
constexpr std::uint64_t kMaxExactInteger = std::uint64_t{1} << 53;

// Decodes UTF-8 into UTF-16 code units (for sorting keys, RFC 8785 §3.2.3); fails on
// malformed, overlong or surrogate encodings.
Result<std::u16string> utf16_units(const std::string& text) {
  std::u16string out;
  for (std::size_t i = 0; i < text.size();) {
    const Utf8Sequence s = decode_utf8(text, i);
    if (s.problem) return Error(std::string(s.problem) + " at offset " + std::to_string(s.at));
    std::uint32_t cp = s.cp;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out.push_back(static_cast<char16_t>(0xd800 + (cp >> 10)));
      out.push_back(static_cast<char16_t>(0xdc00 + (cp & 0x3ff)));
    } else {
      out.push_back(static_cast<char16_t>(cp));
    }
    i += s.len;
  }
  return out;
}

// JSON.stringify's string escaping (ECMA-262 QuoteJSONString): the two-character escapes for
// \b \t \n \f \r " \, \u00xx (lower-case hex) for the other control characters, everything
// else (including '/', DEL and non-ASCII) literal.
Status write_string(const std::string& text, std::string& out) {
  if (auto units = utf16_units(text); !units) return units.error();
  out.push_back('"');
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out.push_back(kHex[(c >> 4) & 0xf]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return {};
}

std::string pointer_token(const std::string& key) {
  std::string out;
  for (const char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Status write_value(const nlohmann::json& value, const std::string& pointer, std::string& out);

Status write_object(const nlohmann::json& value, const std::string& pointer, std::string& out) {
  struct Member {
    std::u16string order;
    const std::string* key;
    const nlohmann::json* value;
  };
  std::vector<Member> members;
  members.reserve(value.size());
  for (auto it = value.begin(); it != value.end(); ++it) {
    auto units = utf16_units(it.key());
    if (!units) {
      return Error("JCS: key at " + pointer + "/" + pointer_token(it.key()) + ": " +
                   units.error().message());
    }
    members.push_back({std::move(units).value(), &it.key(), &it.value()});
  }
  std::sort(members.begin(), members.end(),
            [](const Member& a, const Member& b) { return a.order < b.order; });
  out.push_back('{');
  bool first = true;
  for (const auto& m : members) {
    if (!first) out.push_back(',');
    first = false;
    CLOISTER_CHECK_OK(write_string(*m.key, out));
    out.push_back(':');
    CLOISTER_CHECK_OK(write_value(*m.value, pointer + "/" + pointer_token(*m.key), out));
  }
  out.push_back('}');
  return {};
}

Status write_value(const nlohmann::json& value, const std::string& pointer, std::string& out) {
  using T = nlohmann::json::value_t;
  const std::string where = pointer.empty() ? "the root" : pointer;
  switch (value.type()) {
    case T::null:
      out += "null";
      return {};
    case T::boolean:
      out += value.get<bool>() ? "true" : "false";
      return {};
    case T::number_integer:
    case T::number_unsigned: {
      const bool negative = value.is_number_integer() && value.get<std::int64_t>() < 0;
      const std::uint64_t magnitude =
          negative ? std::uint64_t{0} - static_cast<std::uint64_t>(value.get<std::int64_t>())
                   : value.get<std::uint64_t>();
      if (magnitude > kMaxExactInteger) {
        return Error("JCS: number at " + where + " (" + value.dump() +
                     ") is beyond ±2^53, not exactly representable as an IEEE-754 double");
      }
      if (magnitude == 0) {
        out += "0";
      } else {
        if (negative) out.push_back('-');
        out += std::to_string(magnitude);
      }
      return {};
    }
    case T::number_float: {
      auto text = ecmascript_number(value.get<double>());
      if (!text) return Error("JCS: number at " + where + ": " + text.error().message());
      out += *text;
      return {};
    }
    case T::string:
      if (auto s = write_string(value.get_ref<const std::string&>(), out); !s) {
        return Error("JCS: string at " + where + ": " + s.error().message());
      }
      return {};
    case T::array: {
      out.push_back('[');
      for (std::size_t i = 0; i < value.size(); ++i) {
        if (i > 0) out.push_back(',');
        CLOISTER_CHECK_OK(write_value(value[i], pointer + "/" + std::to_string(i), out));
      }
      out.push_back(']');
      return {};
    }
    case T::object:
      return write_object(value, pointer, out);
    case T::binary:
    case T::discarded:
      break;
  }
  return Error("JCS: value at " + where + " is not JSON (binary or discarded)");
}

}  // namespace

Result<std::string> ecmascript_number(double value) {
  if (!std::isfinite(value)) return Error("NaN and infinities are not JSON numbers");
  if (value == 0) return std::string("0");
  // The shortest digits that round-trip (what ECMA-262 Number::toString picks), in the form
  // d.ddde±x.
  char buf[64];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value, std::chars_format::scientific);
  if (ec != std::errc()) return Error("number formatting failed");
  std::string_view sci(buf, static_cast<std::size_t>(end - buf));
  std::string out;
  if (sci.front() == '-') {
    out.push_back('-');
    sci.remove_prefix(1);
  }
  const std::size_t e_pos = sci.find('e');
  std::string digits;
  for (const char c : sci.substr(0, e_pos))
    if (c != '.') digits.push_back(c);
  int exponent = 0;
  const std::string_view exp_text = sci.substr(e_pos + 1);
  std::from_chars(exp_text.data() + (exp_text.front() == '+' ? 1 : 0),
                  exp_text.data() + exp_text.size(), exponent);
  // ECMA-262 Number::toString: value = digits × 10^(n−k).
  const int k = static_cast<int>(digits.size());
  const int n = exponent + 1;
  if (k <= n && n <= 21) {
    out += digits;
    out.append(static_cast<std::size_t>(n - k), '0');
  } else if (0 < n && n <= 21) {
    out += digits.substr(0, static_cast<std::size_t>(n));
    out.push_back('.');
    out += digits.substr(static_cast<std::size_t>(n));
  } else if (-6 < n && n <= 0) {
    out += "0.";
    out.append(static_cast<std::size_t>(-n), '0');
    out += digits;
  } else {
    out.push_back(digits[0]);
    if (k > 1) {
      out.push_back('.');
      out += digits.substr(1);
    }
    out.push_back('e');
    out.push_back(n - 1 >= 0 ? '+' : '-');
    out += std::to_string(n - 1 >= 0 ? n - 1 : 1 - n);
  }
  return out;
}

Result<std::string> canonical_json(const nlohmann::json& value) {
  std::string out;
  CLOISTER_CHECK_OK(write_value(value, "", out));
  return out;
}

std::string replace_invalid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const Utf8Sequence s = decode_utf8(text, i);
    if (s.problem) {
      out += "\xef\xbf\xbd";  // U+FFFD REPLACEMENT CHARACTER
      ++i;
    } else {
      out.append(text.substr(i, s.len));
      i += s.len;
    }
  }
  return out;
}

}  // namespace cloister::service
