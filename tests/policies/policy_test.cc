#include "cloister/policy/policy.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "cloister/common/file.h"

namespace cloister::policy {
namespace {

using json = nlohmann::json;
const std::filesystem::path kPolicies = std::filesystem::path(CLOISTER_SOURCE_DIR) / "policies";

std::string error_of(const std::string& text) {
  auto p = parse_policy(text);
  return p ? "parsed" : p.error().message();
}

TEST(Policy, EmptyPolicyMeansSecureDefaults) {
  auto p = parse_policy("{}");
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->snp.has_value());
  SnpPolicy d = default_snp_policy();
  EXPECT_FALSE(d.guest_policy.allow_debug);
  EXPECT_FALSE(d.guest_policy.allow_migration_agent);
  EXPECT_FALSE(d.guest_policy.allow_cxl);
  EXPECT_TRUE(d.guest_policy.allow_smt);
  EXPECT_EQ(d.vmpls, std::vector<std::uint32_t>{0});
  EXPECT_FALSE(d.allow_provisional_firmware);
  EXPECT_FALSE(d.allow_stale_crl);
  // An empty snp section gets the same defaults.
  auto s = parse_policy(R"({"snp": {}})");
  ASSERT_TRUE(s && s->snp);
  EXPECT_EQ(policy_to_json(*s)["snp"],
            policy_to_json(Policy{d, std::nullopt, std::nullopt})["snp"]);

  EXPECT_FALSE(p->tdx.has_value());
  TdxPolicy t = default_tdx_policy();
  EXPECT_FALSE(t.td_attributes.allow_debug);
  EXPECT_TRUE(t.td_attributes.require_sept_ve_disable);
  EXPECT_EQ(t.accepted_tcb_statuses, std::vector<std::string>{"UpToDate"});
  EXPECT_FALSE(t.accepted_advisory_ids.has_value());
  EXPECT_FALSE(t.allow_stale_collateral);
  auto empty_tdx = parse_policy(R"({"tdx": {}})");
  ASSERT_TRUE(empty_tdx && empty_tdx->tdx);
  EXPECT_EQ(policy_to_json(*empty_tdx)["tdx"],
            policy_to_json(Policy{std::nullopt, t, std::nullopt})["tdx"]);
}

TEST(Policy, ErrorsNameTheJsonPath) {
  EXPECT_EQ(error_of("{"),
            "policy: not valid JSON (parse error at line 1, column 2: syntax error while parsing "
            "object key - unexpected end of input; expected string literal)");
  EXPECT_EQ(error_of(R"({"snp": {"measurements": []}, "snp": {}})"),
            "policy: duplicate key \"snp\" at /snp");
  EXPECT_EQ(error_of(R"({"tdx": {"mr_td": [], "mr_td": []}})"),
            "policy: duplicate key \"mr_td\" at /tdx/mr_td");
  EXPECT_EQ(error_of("[]"), "policy /: expected an object");
  EXPECT_EQ(error_of(R"({"$schema": 5})"),
            "policy /$schema: expected a string (the schema's URI or path)");
  EXPECT_EQ(error_of(R"({"version": 2})"), "policy /version: expected 1 (the only policy version)");
  EXPECT_EQ(error_of(R"({"snp": {"measurements": ["00"]}})"),
            "policy /snp/measurements/0: expected 48 bytes (96 hex digits), found 1 bytes");
  EXPECT_EQ(error_of(R"({"snp": {"host_data": 5}})"),
            "policy /snp/host_data: expected a hex string");
  EXPECT_EQ(error_of(R"({"snp": {"report_data": "zz"}})"),
            "policy /snp/report_data: hex string has a non-hex character 'z' at position 0");
  EXPECT_EQ(error_of(R"({"snp": {"guest_policy": {"allow_debug": "no"}}})"),
            "policy /snp/guest_policy/allow_debug: expected true or false");
  EXPECT_EQ(error_of(R"({"snp": {"vmpl": [0, 4]}})"), "policy /snp/vmpl/1: expected a VMPL 0..3");
  EXPECT_EQ(error_of(R"({"snp": {"vmpl": []}})"),
            "policy /snp/vmpl: expected a non-empty array of VMPLs (0..3)");
  // An empty allowlist is refused, not read as "any": a template rendering [] must not open the
  // policy to every image.
  const std::string empty =
      ": expected at least one value (an empty allowlist would accept any; leave the key out for "
      "that)";
  EXPECT_EQ(error_of(R"({"snp": {"measurements": []}})"), "policy /snp/measurements" + empty);
  EXPECT_EQ(error_of(R"({"snp": {"products": []}})"), "policy /snp/products" + empty);
  EXPECT_EQ(error_of(R"({"tdx": {"mr_td": []}})"), "policy /tdx/mr_td" + empty);
  EXPECT_EQ(error_of(R"({"tdx": {"rtmr3": []}})"), "policy /tdx/rtmr3" + empty);
  EXPECT_EQ(error_of(R"({"tdx": {"runtime_events": {"boot": []}}})"),
            "policy /tdx/runtime_events/boot" + empty);
  EXPECT_EQ(error_of(R"({"azure": {"pcrs": {"7": []}}})"), "policy /azure/pcrs/7" + empty);
  EXPECT_EQ(error_of(R"({"azure": {"vm_configuration": {"vm_unique_ids": []}}})"),
            "policy /azure/vm_configuration/vm_unique_ids" + empty);
  EXPECT_EQ(error_of(R"({"snp": {"signing_keys": ["vcek", "ask"]}})"),
            "policy /snp/signing_keys/1: expected \"vcek\" or \"vlek\"");
  EXPECT_EQ(error_of(R"({"snp": {"minimum_tcb": {"reported": {"ucode": 256}}}})"),
            "policy /snp/minimum_tcb/reported/ucode: expected at most 255, found 256");
  EXPECT_EQ(
      error_of(R"({"snp": {"minimum_version": "1.x"}})"),
      "policy /snp/minimum_version: expected \"MAJOR.MINOR\" with each part 0..255, e.g. \"1.55\"");
  EXPECT_EQ(
      error_of(R"({"snp": {"minimum_current_mit_vector": "7"}})"),
      "policy /snp/minimum_current_mit_vector: expected a non-negative integer or a 0x-prefixed "
      "hex string");
  EXPECT_EQ(error_of(R"({"snp": {"products": ["Rome"]}})"),
            "policy /snp/products/0: expected one of Milan, Genoa, Turin, Venice");
  EXPECT_NE(error_of(R"({"snp": {"guest_policy": {"allow_debugg": true}}})")
                .find("policy /snp/guest_policy: unknown key 'allow_debugg' (expected one of: "),
            std::string::npos);
}

// Every object in the JSON Schema has exactly the keys the parser accepts: the parser's
// unknown-key error lists the keys it knows, which must equal the schema's properties.
TEST(Policy, SchemaAndParserAgreeOnEveryKey) {
  json schema =
      json::parse(*read_text_file(kPolicies / "schema/policy.schema.json", kPolicyFileLimit));
  int objects = 0;
  std::function<void(const json&, std::vector<std::string>)> walk =
      [&](const json& node, std::vector<std::string> path) {
        if (!node.contains("properties")) return;
        std::set<std::string> schema_keys;
        for (const auto& [k, v] : node["properties"].items()) schema_keys.insert(k);
        json doc = json::object();
        json* cursor = &doc;
        for (const auto& seg : path) cursor = &(*cursor)[seg];
        (*cursor)["no_such_key"] = 1;
        std::string error = error_of(doc.dump());
        auto open = error.find("expected one of: ");
        ASSERT_NE(open, std::string::npos) << error;
        std::string list = error.substr(open + 17, error.size() - open - 18);
        std::set<std::string> parser_keys;
        for (std::size_t start = 0; start < list.size();) {
          auto comma = list.find(", ", start);
          parser_keys.insert(list.substr(start, comma - start));
          start = comma == std::string::npos ? list.size() : comma + 2;
        }
        EXPECT_EQ(parser_keys, schema_keys) << "at /" << (path.empty() ? "" : path.back());
        ++objects;
        for (const auto& [k, v] : node["properties"].items()) {
          auto child = path;
          child.push_back(k);
          walk(v, child);
        }
      };
  walk(schema, {});
  // top; snp, guest_policy, minimum_tcb + 4 TCBs, platform_info, revocation; tdx,
  // td_attributes, xfam, collateral; azure, vm_configuration
  EXPECT_EQ(objects, 16);
}

TEST(Policy, EveryExampleParsesAndRoundTrips) {
  int examples = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kPolicies / "examples")) {
    SCOPED_TRACE(entry.path().string());
    auto p = load_policy(entry.path());
    ASSERT_TRUE(p) << p.error().message();
    json once = policy_to_json(*p);
    auto again = parse_policy(once.dump());
    ASSERT_TRUE(again) << again.error().message();
    EXPECT_EQ(policy_to_json(*again), once);
    ++examples;
  }
  EXPECT_GE(examples, 6);
}

TEST(Policy, ParsesEveryField) {
  auto p = load_policy(kPolicies / "examples/production-snp.json");
  ASSERT_TRUE(p && p->snp);
  const SnpPolicy& s = *p->snp;
  ASSERT_EQ(s.measurements.size(), 1u);
  EXPECT_EQ(s.measurements[0].size(), 48u);
  EXPECT_EQ(s.minimum_reported_tcb.bl, 10);
  EXPECT_EQ(s.minimum_reported_tcb.ucode, 84);
  EXPECT_FALSE(s.minimum_reported_tcb.fmc.has_value());
  EXPECT_EQ(s.minimum_version, (std::pair<std::uint8_t, std::uint8_t>(1, 55)));
  EXPECT_TRUE(s.allow_vcek);
  EXPECT_FALSE(s.allow_vlek);
  EXPECT_EQ(s.products, std::vector<std::string>{"Genoa"});
  EXPECT_EQ(s.minimum_current_mit_vector, 1u);
  EXPECT_TRUE(s.require_crl);
  EXPECT_EQ(load_policy("/nonexistent.json").error().message(),
            "cannot read /nonexistent.json: No such file or directory");
}

}  // namespace
}  // namespace cloister::policy
