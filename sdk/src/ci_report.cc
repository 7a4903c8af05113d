#include "cloister/sdk/ci_report.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "cloister/common/hex.h"
#include "cloister/common/utf8.h"

namespace cloister::sdk {
namespace {

using attestation::Check;
using attestation::CheckStatus;
using json = nlohmann::json;

// Text for an XML attribute or element. Bytes that are not UTF-8 (an evidence file's, quoted
// into a check) become U+FFFD: the document stays well-formed XML whatever the evidence held.
std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    const Utf8Sequence s = decode_utf8(text, 0);
    const std::size_t n = s.problem ? 0 : s.len;
    if (n != 1) {
      if (s.cp >= 0x80 && s.cp <= 0x9f && n == 2) {  // a C1 control: a character reference
        const auto cp = static_cast<std::uint8_t>(s.cp);
        out += "&#x" + to_hex(ByteView(&cp, 1)) + ";";
      } else {
        out += n == 0 ? std::string_view("\xef\xbf\xbd") : text.substr(0, n);  // U+FFFD
      }
      text.remove_prefix(n == 0 ? 1 : n);
      continue;
    }
    const char c = text.front();
    text.remove_prefix(1);
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '\n':
        out += "&#10;";
        break;
      case '\r':
        out += "&#13;";
        break;
      case '\t':
        out += "&#9;";
        break;
      default:
        // XML 1.0 allows no other control characters, even escaped (nor DEL, discouraged).
        out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c;
    }
  }
  return out;
}

std::string group(const std::string& check) {
  return check.substr(0, check.find('.'));
}

std::string message(const Check& c) {
  std::string out = "expected " + c.expected + ", found " + c.found;
  if (!c.detail.empty()) out += " — " + c.detail;
  return out;
}

std::size_t count(const Verdict& v, CheckStatus status) {
  std::size_t n = 0;
  for (const auto& c : v.checks.all()) n += c.status == status;
  return n;
}

// A relative reference for a file path (RFC 3986): unreserved characters and '/' stay, the
// rest is percent-encoded.
std::string uri_reference(const std::string& path) {
  std::string out;
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// Workflow command escaping (actions/toolkit command.ts): data escapes %, CR and LF; property
// values also ':' and ','.
std::string github_data(std::string_view text) {
  std::string out;
  for (char c : without_controls(text, /*keep_line_breaks=*/true)) {
    if (c == '%') {
      out += "%25";
    } else if (c == '\r') {
      out += "%0D";
    } else if (c == '\n') {
      out += "%0A";
    } else {
      out += c;
    }
  }
  return out;
}

std::string github_property(std::string_view text) {
  std::string out;
  for (char c : github_data(text)) {
    if (c == ':') {
      out += "%3A";
    } else if (c == ',') {
      out += "%2C";
    } else {
      out += c;
    }
  }
  return out;
}

std::string summary(const Verdict& v) {
  const std::size_t total = v.checks.all().size();
  if (v.passed())
    return "PASS (" + std::to_string(total) + " checks" +
           (v.trust_anchor && v.trust_anchor->simulated ? ", simulated" : "") + ")";
  std::string out = "FAIL (" + std::to_string(count(v, CheckStatus::kFail)) + " of " +
                    std::to_string(total) + " checks failed:";
  for (const auto& n : v.checks.failures()) out += " " + n;
  return out + ")";
}

}  // namespace

std::string to_junit_xml(const Verdict& v, const ReportContext& context) {
  const std::string tests = std::to_string(v.checks.all().size());
  const std::string failures = std::to_string(count(v, CheckStatus::kFail));
  const std::string skipped = std::to_string(count(v, CheckStatus::kSkip));
  const std::string counts = " tests=\"" + tests + "\" failures=\"" + failures +
                             "\" errors=\"0\" skipped=\"" + skipped + "\"";
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += "<testsuites name=\"verify-report\"" + counts + ">\n";
  out += "  <testsuite name=\"" + xml_escape(context.evidence + " (" + v.tee + ")") + "\"" +
         counts + ">\n";
  out += "    <properties>\n";
  auto property = [&](const std::string& name, const std::string& value) {
    out +=
        "      <property name=\"" + xml_escape(name) + "\" value=\"" + xml_escape(value) + "\"/>\n";
  };
  property("verdict", v.passed() ? "pass" : "fail");
  property("tee", v.tee);
  property("simulated", v.trust_anchor && v.trust_anchor->simulated ? "true" : "false");
  if (v.trust_anchor) property("trust_anchor", v.trust_anchor->subject);
  if (context.policy) property("policy", *context.policy);
  out += "    </properties>\n";
  for (const auto& c : v.checks.all()) {
    out += "    <testcase name=\"" + xml_escape(c.name) + "\" classname=\"" +
           xml_escape(v.tee + "." + group(c.name)) + "\"";
    if (c.status == CheckStatus::kPass) {
      out += ">\n      <system-out>" + xml_escape("found " + c.found) + "</system-out>\n";
      out += "    </testcase>\n";
    } else if (c.status == CheckStatus::kSkip) {
      out += ">\n      <skipped message=\"" + xml_escape(c.detail) + "\"/>\n    </testcase>\n";
    } else {
      out += ">\n      <failure message=\"" +
             xml_escape("expected " + c.expected + ", found " + c.found) + "\" type=\"" +
             xml_escape(c.name) + "\">" + xml_escape(c.detail) + "</failure>\n    </testcase>\n";
    }
  }
  out += "  </testsuite>\n</testsuites>\n";
  return out;
}

json to_sarif(const Verdict& v, const ReportContext& context) {
  json rules = json::array();
  json results = json::array();
  std::vector<std::string> rule_ids;
  for (const auto& c : v.checks.all()) {
    if (c.status != CheckStatus::kFail) continue;
    auto it = std::find(rule_ids.begin(), rule_ids.end(), c.name);
    const std::size_t index = static_cast<std::size_t>(it - rule_ids.begin());
    if (it == rule_ids.end()) {
      rule_ids.push_back(c.name);
      rules.push_back({{"id", c.name},
                       {"name", c.name},
                       {"shortDescription", {{"text", "verify-report check " + c.name}}},
                       {"defaultConfiguration", {{"level", "error"}}}});
    }
    const bool policy_check = c.name.rfind("policy.", 0) == 0 && context.policy;
    const std::string file = policy_check ? *context.policy : context.evidence;
    results.push_back(
        {{"ruleId", c.name},
         {"ruleIndex", index},
         {"level", "error"},
         {"message", {{"text", c.name + ": " + message(c)}}},
         {"locations", json::array({{{"physicalLocation",
                                      {{"artifactLocation", {{"uri", uri_reference(file)}}},
                                       {"region", {{"startLine", 1}}}}}}})},
         {"properties", {{"expected", c.expected}, {"found", c.found}, {"detail", c.detail}}}});
  }
  json run = {
      {"tool",
       {{"driver", {{"name", "verify-report"}, {"version", CLOISTER_VERSION}, {"rules", rules}}}}},
      {"invocations",
       json::array({{{"executionSuccessful", true}, {"exitCode", v.passed() ? 0 : 1}}})},
      {"results", results},
      {"properties",
       {{"verdict", v.passed() ? "pass" : "fail"},
        {"tee", v.tee},
        {"simulated", v.trust_anchor && v.trust_anchor->simulated},
        {"summary", summary(v)}}}};
  return {{"$schema", "https://json.schemastore.org/sarif-2.1.0.json"},
          {"version", "2.1.0"},
          {"runs", json::array({run})}};
}

std::string to_github_annotations(const Verdict& v, const ReportContext& context) {
  std::string out;
  for (const auto& c : v.checks.all()) {
    if (c.status == CheckStatus::kPass) continue;
    const bool failed = c.status == CheckStatus::kFail;
    const bool policy_check = c.name.rfind("policy.", 0) == 0 && context.policy;
    const std::string file = policy_check ? *context.policy : context.evidence;
    out += std::string(failed ? "::error" : "::notice") + " file=" + github_property(file) +
           ",title=" + github_property(c.name) +
           "::" + github_data(failed ? message(c) : "skipped: " + c.detail) + "\n";
  }
  out += std::string(v.passed() ? "::notice" : "::error") +
         " title=" + github_property("verify-report " + context.evidence) +
         "::" + github_data(summary(v)) + "\n";
  return out;
}

}  // namespace cloister::sdk
