#include "cloister/service/init_data.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string_view>

#include "cloister/common/hex.h"
#include "cloister/common/json.h"

// toml++ compiled into this file alone, so that the sanitizer and fuzzing builds instrument it;
// without exceptions, its parse errors come back as values. It only sees what check_shape()
// passed.
#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 0
#define TOML_ENABLE_FORMATTERS 0
#include <toml++/toml.h>

namespace cloister::service::init_data {
namespace {

Error invalid(const std::string& what) {
  return Error(ErrorCode::kInvalidArgument, "init-data: " + what);
}

// What toml++ must not see. Bytes outside ASCII: toml++ 3.3.0 (Debian 12) classifies some
// non-ASCII characters through a switch that ends in __builtin_unreachable (undefined behaviour,
// found by fuzz_kbs_messages). Deep tables: toml++ bounds inline nesting only, while each dot of
// a dotted key or table header ("[a.a.a…]") opens one more table, and tables are freed
// recursively, so a document of dots would exhaust the stack. Dots and open brackets are counted
// outside strings and comments, lexed as TOML does; a dot in a number counts too.
Status check_shape(std::string_view doc) {
  enum class In { kCode, kComment, kBasic, kLiteral, kMultiBasic, kMultiLiteral };
  In in = In::kCode;
  std::size_t dots = 0, open = 0;
  const auto at = [&](std::size_t i, std::string_view s) { return doc.substr(i, s.size()) == s; };
  // After a multi-line closer, up to two more quotes belong to the string (TOML 1.0).
  const auto close_multi = [&](std::size_t& i, char quote) {
    i += 2;
    for (int extra = 0; extra < 2 && i + 1 < doc.size() && doc[i + 1] == quote; ++extra) ++i;
    in = In::kCode;
  };
  for (std::size_t i = 0; i < doc.size(); ++i) {
    const auto byte = static_cast<std::uint8_t>(doc[i]);
    if (byte >= 0x80) {
      return invalid("byte 0x" + to_hex(ByteView(&byte, 1)) + " at offset " + std::to_string(i) +
                     ": only ASCII documents are taken (the parser here is unsafe beyond "
                     "ASCII; write the document in ASCII before the guest is launched with it)");
    }
  }
  for (std::size_t i = 0; i < doc.size(); ++i) {
    const char c = doc[i];
    switch (in) {
      case In::kCode:
        if (c == '#') {
          in = In::kComment;
        } else if (at(i, R"(""")")) {
          in = In::kMultiBasic;
          i += 2;
        } else if (at(i, "'''")) {
          in = In::kMultiLiteral;
          i += 2;
        } else if (c == '"') {
          in = In::kBasic;
        } else if (c == '\'') {
          in = In::kLiteral;
        } else if (c == '.' && ++dots > kMaxDots) {
          return invalid("more than " + std::to_string(kMaxDots) +
                         " dots outside strings (each dot of a key nests a table)");
        } else if ((c == '[' || c == '{') && ++open > kMaxOpenBrackets) {
          return invalid("more than " + std::to_string(kMaxOpenBrackets) +
                         " brackets or braces open at once");
        } else if ((c == ']' || c == '}') && open > 0) {
          --open;
        }
        break;
      case In::kComment:
        if (c == '\n') in = In::kCode;
        break;
      case In::kBasic:
        if (c == '\\') {
          ++i;
        } else if (c == '"' || c == '\n') {
          in = In::kCode;
        }
        break;
      case In::kLiteral:
        if (c == '\'' || c == '\n') in = In::kCode;
        break;
      case In::kMultiBasic:
        if (c == '\\') {
          ++i;
        } else if (at(i, R"(""")")) {
          close_multi(i, '"');
        }
        break;
      case In::kMultiLiteral:
        if (at(i, "'''")) close_multi(i, '\'');
        break;
    }
  }
  return {};
}

// JSON nesting: claims go into a token whose readers take 64 levels in all.
std::size_t depth(const nlohmann::json& j) {
  if (!j.is_structured()) return 0;
  std::size_t deepest = 0;
  for (const auto& child : j) deepest = std::max(deepest, depth(child));
  return deepest + 1;
}

std::string two(unsigned v) {
  char out[8];
  std::snprintf(out, sizeof out, "%02u", v % 100);
  return out;
}

std::string to_text(const toml::date& d) {
  char out[16];
  std::snprintf(out, sizeof out, "%04u-", static_cast<unsigned>(d.year) % 10000);
  return out + two(d.month) + "-" + two(d.day);
}

std::string to_text(const toml::time& t) {
  std::string out = two(t.hour) + ":" + two(t.minute) + ":" + two(t.second);
  if (t.nanosecond != 0) {
    char frac[16];
    std::snprintf(frac, sizeof frac, ".%09u", static_cast<unsigned>(t.nanosecond % 1000000000));
    out += frac;
  }
  return out;
}

std::string to_text(const toml::date_time& dt) {
  std::string out = to_text(dt.date) + "T" + to_text(dt.time);
  if (!dt.offset) return out;
  const int minutes = dt.offset->minutes;
  if (minutes == 0) return out + "Z";
  const unsigned magnitude = static_cast<unsigned>(minutes < 0 ? -minutes : minutes);
  return out + (minutes < 0 ? "-" : "+") + two(magnitude / 60) + ":" + two(magnitude % 60);
}

// A TOML value as JSON: tables as objects, arrays as arrays, dates and times as RFC 3339 text,
// floats JSON cannot hold (nan, inf) as null. check_shape() bounded the nesting.
nlohmann::json to_json(const toml::node& node) {
  if (const auto* table = node.as_table()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [key, value] : *table) out[std::string(key.str())] = to_json(value);
    return out;
  }
  if (const auto* array = node.as_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& value : *array) out.push_back(to_json(value));
    return out;
  }
  if (const auto* s = node.as_string()) return s->get();
  if (const auto* i = node.as_integer()) return i->get();
  if (const auto* b = node.as_boolean()) return b->get();
  if (const auto* f = node.as_floating_point()) {
    const double d = f->get();
    return std::isfinite(d) ? nlohmann::json(d) : nlohmann::json(nullptr);  // as serde_json
  }
  if (const auto* d = node.as_date()) return to_text(d->get());
  if (const auto* t = node.as_time()) return to_text(t->get());
  if (const auto* dt = node.as_date_time()) return to_text(dt->get());
  return nullptr;
}

// Trustee's claims: the data table's strings, with two configuration files read as TOML and
// the agent policy's data in place of the policy text, each only when it parses.
nlohmann::json claims_of(const toml::table& data) {
  nlohmann::json claims = nlohmann::json::object();
  for (const auto& [key, value] : data) claims[std::string(key.str())] = value.as_string()->get();
  for (const char* file : {"cdh.toml", "aa.toml"}) {
    const auto it = claims.find(file);
    if (it == claims.end()) continue;
    const std::string text = it->get<std::string>();
    if (!check_shape(text)) continue;
    if (auto parsed = toml::parse(text)) {
      nlohmann::json converted = to_json(parsed.table());
      if (depth(converted) <= kMaxClaimsDepth) *it = std::move(converted);
    }
  }
  if (const auto it = claims.find("policy.rego"); it != claims.end()) {
    const std::string rego = it->get<std::string>();
    constexpr std::string_view kStart = "policy_data := {";
    if (const std::size_t at = rego.find(kStart); at != std::string::npos) {
      auto policy_data = parse_json_strict(std::string_view(rego).substr(at + kStart.size() - 1),
                                           "policy.rego policy_data");
      if (policy_data && policy_data->is_object() && depth(*policy_data) <= kMaxClaimsDepth) {
        claims.erase(it);
        claims["agent_policy_claims"] = std::move(*policy_data);
      }
    }
  }
  return claims;
}

std::string type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
    case toml::node_type::none:
      break;
  }
  return "value";
}

Result<std::string> string_member(const toml::table& document, const char* name) {
  const toml::node* node = document.get(name);
  if (!node) return invalid(std::string("the document has no '") + name + "'");
  const auto* s = node->as_string();
  if (!s) {
    return invalid(std::string("'") + name + "': expected a string, found a TOML " +
                   type_name(*node));
  }
  return s->get();
}

}  // namespace

Result<Document> parse(const kbs::InitData& wire) {
  if (wire.format != "toml")
    return invalid("format: expected \"toml\", found \"" + printable(wire.format, 32) + "\"");
  CLOISTER_CHECK_OK(check_shape(wire.body));
  toml::parse_result parsed = toml::parse(wire.body);
  if (!parsed) {
    const toml::parse_error& e = parsed.error();
    return invalid("the TOML document does not parse at line " +
                   std::to_string(e.source().begin.line) + ", column " +
                   std::to_string(e.source().begin.column) + ": " +
                   printable(e.description(), 200));
  }
  const toml::table& document = parsed.table();
  Document out;
  CLOISTER_TRY(out.version, string_member(document, "version"));
  CLOISTER_TRY(out.algorithm, string_member(document, "algorithm"));
  const auto algorithm = kbs::parse_hash_algorithm(out.algorithm);
  if (!algorithm) {
    return invalid("algorithm: expected sha256, sha384 or sha512, found \"" +
                   printable(out.algorithm, 32) + "\"");
  }
  out.digest = kbs::digest(*algorithm, as_bytes(wire.body));
  const toml::node* data = document.get("data");
  if (!data || !data->is_table()) return invalid("the document has no [data] table");
  for (const auto& [key, value] : *data->as_table()) {
    if (!value.is_string()) {
      return invalid("data.\"" + printable(key.str(), 64) + "\": expected a string, found a TOML " +
                     type_name(value));
    }
  }
  out.claims = claims_of(*data->as_table());
  return out;
}

Bytes regularize(ByteView digest, std::size_t length) {
  Bytes out(length, 0);
  std::copy_n(digest.begin(), std::min(length, digest.size()), out.begin());
  return out;
}

Status check_binding(kbs::Tee tee, const Document& document, const nlohmann::json& report) {
  const bool snp = tee == kbs::Tee::kSnp;
  const char* field = snp ? "host_data" : "mr_config_id";
  const std::string expected = to_hex(regularize(document.digest, snp ? 32 : 48));
  const auto it = report.is_object() ? report.find(field) : report.end();
  const std::string found =
      it != report.end() && it->is_string() ? it->get<std::string>() : std::string("none");
  if (found == expected) return {};
  return invalid(std::string(snp ? "HOST_DATA" : "MRCONFIGID") + " expected " + expected +
                 " (the document's " + document.algorithm + " digest in " + (snp ? "32" : "48") +
                 " bytes), found " + found +
                 " (the guest was launched with other init-data, or none)");
}

}  // namespace cloister::service::init_data
