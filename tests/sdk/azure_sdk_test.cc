// The SDK and verify-report on the evidence people hold besides bare reports and quotes: Azure
// vTPM evidence (shared/vectors/azure), dstack event logs (shared/vectors/tdx/dstack), detection
// by content, and the CI-native output formats.
#include <gtest/gtest.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cloister/common/hex.h"
#include "cloister/common/json.h"
#include "cloister/sdk/ci_report.h"
#include "cloister/sdk/verifier.h"
#include "support/command.h"
#include "support/vectors.h"

namespace cloister::sdk {
namespace {

using nlohmann::json;
using testing::read_vector;
using testing::vector_path;

const UnixTime kAzureTime = 1767225600;  // 2026-01-01, inside every Azure VCEK's validity
// ID_KEY_DIGEST of the Azure paravisor in the 2025 SNP reports (azure/MANIFEST.md, "ID block").
const std::string kAzureIdKeyDigest =
    "942fd93ebde6ea7a96efadeafc60f1c6b3d10e703b1dafd7555b92f7f3d32d0e006767648cba5b102af3d65756af41"
    "77";

const json& azure_facts() {
  static const json doc = [] {
    auto path = vector_path("azure/expected.json");
    if (!path) return json();
    std::ifstream in(*path);
    return json::parse(in);
  }();
  return doc;
}

#define REQUIRE_AZURE_FACTS()  \
  if (azure_facts().is_null()) \
  GTEST_SKIP() << testing::vectors_missing_message("azure/expected.json")

std::string vec(const std::string& relative) {
  return (*testing::vectors_dir() / relative).string();
}

Bytes azure_vector(const std::string& relative) {
  return read_vector(vec("azure/" + relative));
}

Bytes nonce_of(const std::string& set) {
  return *from_hex(std::string(azure_facts()["evidence"][set]["tpm_quote"]["extra_data"]));
}

const attestation::Check* check(const Verdict& v, const std::string& name) {
  const auto* c = v.checks.find(name);
  EXPECT_NE(c, nullptr) << name;
  return c;
}

testing::CommandResult run(const std::string& args) {
  return testing::run_command(std::string(VERIFY_REPORT) + " " + args);
}

TEST(SdkAzure, TrusteesEvidenceIsAcceptedWithItsNonceAndRejectedWithAnother) {
  REQUIRE_AZURE_FACTS();
  Verifier verifier;
  for (const char* set : {"snp/evidence-v0.json", "snp/evidence-v1.json", "snp/evidence-v2.json",
                          "snp/evidence-genoa.json"}) {
    SCOPED_TRACE(set);
    const auto& f = azure_facts()["evidence"][set];
    VerifyRequest r;
    r.evidence = azure_vector(set);
    r.nonce = nonce_of(set);
    r.time = kAzureTime;
    EXPECT_EQ(detect_tee(r.evidence), "az-snp-vtpm");
    auto v = verifier.verify(r);
    ASSERT_TRUE(v) << v.error().message();
    EXPECT_TRUE(v->passed()) << v->to_text();
    EXPECT_EQ(v->tee, "az-snp-vtpm");
    const json j = v->to_json();
    EXPECT_EQ(j["report"]["measurement"], f["snp"]["measurement"]);
    EXPECT_EQ(j["report"]["chip_id"], f["snp"]["chip_id"]);
    EXPECT_EQ(j["report"]["report_data"], f["snp"]["report_data"]);
    EXPECT_EQ(j["azure"]["hcl"]["runtime_data_sha256"], f["runtime_data"]["sha256"]);
    EXPECT_EQ(j["azure"]["tpm_quote"]["extra_data"], f["tpm_quote"]["extra_data"]);
    EXPECT_EQ(j["azure"]["tpm_quote"]["pcr_digest"], f["tpm_quote"]["pcr_digest"]);
    EXPECT_EQ(j["azure"]["pcrs"], f["pcrs"]);
    EXPECT_EQ(j["azure"]["pcrs_verified"], true);
    EXPECT_EQ(j["azure"]["runtime_data"]["vm_configuration"]["vmUniqueId"],
              f["runtime_data"]["vm_configuration"]["vmUniqueId"]);
    EXPECT_EQ(j["trust_anchor"]["subject"].get<std::string>().find(
                  f["vcek"]["chain"]["product"] == "milan" ? "CN=ARK-Milan" : "CN=ARK-Genoa"),
              0u);
    EXPECT_EQ(check(*v, "azure.tpm.quote.nonce")->status, attestation::CheckStatus::kPass);
    if (std::string(set) == "snp/evidence-v2.json") {
      EXPECT_EQ(check(*v, "azure.runtime_data.user_data")->status, attestation::CheckStatus::kPass);
    }

    r.nonce = Bytes{'c', 'h', 'a', 'l', 'l', 'e', 'n', 'g', 'f'};
    auto other = verifier.verify(r);
    ASSERT_TRUE(other);
    EXPECT_FALSE(other->passed());
    EXPECT_EQ(check(*other, "azure.tpm.quote.nonce")->status, attestation::CheckStatus::kFail);
  }
}

// The evidence declares its own version: v2 relabelled v1 skips the user-data nonce check
// unless the policy asks for it (user_data_nonce), and then genuine v1 evidence, whose user-data
// is zero, fails.
TEST(SdkAzure, ThePolicyCanRequireTheNonceInUserDataWhateverTheVersionSays) {
  REQUIRE_AZURE_FACTS();
  const Bytes v2 = azure_vector("snp/evidence-v2.json");
  std::string text(v2.begin(), v2.end());
  const auto at = text.find("\"version\": 2");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 12, "\"version\": 1");
  VerifyRequest r;
  r.evidence = Bytes(text.begin(), text.end());
  r.nonce = nonce_of("snp/evidence-v2.json");
  r.time = kAzureTime;
  const json paravisor = {{"id_key_digests", {kAzureIdKeyDigest}}};
  auto lax = policy::parse_policy(json{{"snp", paravisor}, {"azure", json::object()}}.dump());
  ASSERT_TRUE(lax) << lax.error().message();
  r.policy = *lax;
  auto relabelled = Verifier().verify(r);
  ASSERT_TRUE(relabelled);
  EXPECT_TRUE(relabelled->passed()) << relabelled->to_text();
  EXPECT_EQ(relabelled->checks.find("azure.runtime_data.user_data"), nullptr);

  auto strict =
      policy::parse_policy(json{{"snp", paravisor}, {"azure", {{"user_data_nonce", true}}}}.dump());
  ASSERT_TRUE(strict) << strict.error().message();
  r.policy = *strict;
  auto checked = Verifier().verify(r);
  ASSERT_TRUE(checked);
  EXPECT_TRUE(checked->passed()) << checked->to_text();
  EXPECT_EQ(check(*checked, "policy.azure.user_data_nonce")->status,
            attestation::CheckStatus::kPass);

  r.evidence = azure_vector("snp/evidence-v1.json");
  r.nonce = nonce_of("snp/evidence-v1.json");
  auto v1 = Verifier().verify(r);
  ASSERT_TRUE(v1);
  EXPECT_EQ(v1->checks.failures(), (std::vector<std::string>{"azure.runtime_data.user_data",
                                                             "policy.azure.user_data_nonce"}));
  EXPECT_EQ(check(*v1, "policy.azure.user_data_nonce")->found, std::string(128, '0'));

  r.nonce.reset();
  auto no_nonce = Verifier().verify(r);
  ASSERT_TRUE(no_nonce);
  EXPECT_EQ(check(*no_nonce, "policy.azure.user_data_nonce")->found, "not checked");
  EXPECT_EQ(policy::parse_policy(R"({"azure": {"user_data_nonce": 1}})").error().message(),
            "policy /azure/user_data_nonce: expected true or false");
}

TEST(SdkAzure, ProvisionalFirmwareAndMissingPcrValuesAreRejected) {
  REQUIRE_AZURE_FACTS();
  Verifier verifier;
  // hcl-report.bin + tpm-quote-v1.json + vcek.pem: every signature holds, but COMMITTED_TCB !=
  // CURRENT_TCB.
  VerifyRequest r;
  r.evidence = azure_vector("snp/hcl-report.bin");
  r.tpm_quote = {azure_vector("snp/tpm-quote-v1.json")};
  r.certificates = {azure_vector("snp/vcek.pem")};
  r.nonce = Bytes{'c', 'h', 'a', 'l', 'l', 'e', 'n', 'g', 'e'};
  r.time = kAzureTime;
  auto v = verifier.verify(r);
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(v->checks.failures(), std::vector<std::string>{"policy.firmware.provisional"});
  // The same quote as az-cvm-vtpm's bincode.
  r.tpm_quote = {azure_vector("snp/quote.bin")};
  v = verifier.verify(r);
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(v->checks.failures(), std::vector<std::string>{"policy.firmware.provisional"});
  // The 2023 legacy pair: the quote's message and signature, no PCR values.
  r.evidence = azure_vector("snp/legacy/az-hcl-data.bin");
  r.tpm_quote = {azure_vector("snp/tpm-quote.msg"), azure_vector("snp/tpm-quote.sig")};
  r.certificates = {azure_vector("snp/legacy/az-vcek.pem")};
  v = verifier.verify(r);
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(v->checks.failures(),
            (std::vector<std::string>{"policy.firmware.provisional", "azure.tpm.pcr_digest"}));
  EXPECT_EQ(check(*v, "azure.tpm.quote.signature")->status, attestation::CheckStatus::kPass);
  // A quote for evidence that carries its own is refused.
  r.evidence = azure_vector("snp/evidence-v1.json");
  EXPECT_FALSE(verifier.verify(r));
}

TEST(SdkAzure, TdxEvidenceVerifiesEverythingButCollateral) {
  REQUIRE_AZURE_FACTS();
  for (const char* set : {"tdx/evidence-v0.json", "tdx/evidence-v1.json"}) {
    SCOPED_TRACE(set);
    const auto& f = azure_facts()["evidence"][set];
    VerifyRequest r;
    r.evidence = azure_vector(set);
    r.nonce = nonce_of(set);
    r.time = kAzureTime;
    EXPECT_EQ(detect_tee(r.evidence), "az-tdx-vtpm");
    auto v = Verifier().verify(r);
    ASSERT_TRUE(v) << v.error().message();
    EXPECT_FALSE(v->passed());
    for (const char* name :
         {"azure.hcl.format", "tdx.signature", "tdx.qe_report.signature", "tdx.pck.chain.root",
          "azure.td_report.match", "azure.runtime_data.binding", "azure.tpm.quote.signature",
          "azure.tpm.quote.nonce", "azure.tpm.pcr_digest"})
      EXPECT_EQ(check(*v, name)->status, attestation::CheckStatus::kPass) << name;
    // No Intel collateral for FMSPC 00806f050000 exists offline.
    EXPECT_EQ(check(*v, "tdx.collateral.tcb_info")->found, "none");
    EXPECT_EQ(check(*v, "tdx.tcb.status")->status, attestation::CheckStatus::kFail);
    const json j = v->to_json();
    EXPECT_EQ(j["report"]["mr_td"], f["tdreport"]["mrtd"]);
    EXPECT_EQ(j["report"]["pck"]["sgx_extensions"]["fmspc"], "00806f050000");
    EXPECT_EQ(j["azure"]["pcrs"]["0"], f["pcrs"]["0"]);
  }
}

TEST(SdkAzure, ThePolicyPinsPcrsVmConfigurationAndUserData) {
  REQUIRE_AZURE_FACTS();
  const auto& f = azure_facts()["evidence"]["snp/evidence-v2.json"];
  VerifyRequest r;
  r.evidence = azure_vector("snp/evidence-v2.json");
  r.nonce = nonce_of("snp/evidence-v2.json");
  r.time = kAzureTime;
  const std::string user_data = f["runtime_data"]["user_data"];
  // Azure's paravisor, pinned by the key that signed its ID block (MANIFEST: ID_KEY_DIGEST).
  const json paravisor = {{"id_key_digests", {kAzureIdKeyDigest}}};
  auto policy = policy::parse_policy(json{
      {"snp", paravisor},
      {"azure",
       {{"pcrs", {{"0", {f["pcrs"]["0"]}}, {"8", {f["pcrs"]["8"], std::string(64, 'a')}}}},
        {"vm_configuration", {{"secure_boot", true}, {"tpm_enabled", true}}},
        {"user_data", user_data}}}}.dump());
  ASSERT_TRUE(policy) << policy.error().message();
  r.policy = *policy;
  auto v = Verifier().verify(r);
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->passed()) << v->to_text();
  for (const char* name :
       {"policy.azure.pcr0", "policy.azure.pcr8", "policy.azure.vm_configuration.secure_boot",
        "policy.azure.vm_configuration.tpm_enabled", "policy.azure.user_data"})
    EXPECT_EQ(check(*v, name)->status, attestation::CheckStatus::kPass) << name;
  EXPECT_EQ(check(*v, "policy.azure.paravisor")->status, attestation::CheckStatus::kPass);

  // Without the paravisor pinned the same evidence fails: any SEV-SNP VM could have written
  // runtime data naming its own vTPM key.
  policy = policy::parse_policy(json{{"azure",
                                      {{"pcrs", {{"4", {std::string(64, '0')}}}},
                                       {"vm_configuration", {{"console_enabled", false}}}}}}
                                    .dump());
  ASSERT_TRUE(policy);
  r.policy = *policy;
  v = Verifier().verify(r);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->checks.failures(),
            (std::vector<std::string>{"policy.azure.pcr4",
                                      "policy.azure.vm_configuration.console_enabled",
                                      "policy.azure.paravisor"}));
  EXPECT_EQ(check(*v, "policy.azure.paravisor")->expected,
            "snp.measurements or snp.id_key_digests pinning Azure's paravisor");
  // And a policy for Azure evidence without an azure section accepts none.
  policy = policy::parse_policy(json{{"snp", paravisor}}.dump());
  ASSERT_TRUE(policy);
  r.policy = *policy;
  v = Verifier().verify(r);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->checks.failures(), std::vector<std::string>{"policy.tee"});
  EXPECT_EQ(policy::parse_policy(R"({"azure": {"pcrs": {"24": ["00"]}}})").error().message(),
            "policy /azure/pcrs/24: expected a PCR index 0..23 as the key");
}

TEST(SdkDstack, RuntimeEventsAreInTheVerdictAndPinnedByThePolicy) {
  CLOISTER_REQUIRE_VECTOR(dir, "tdx/dstack/derived/tdx-lite-getquote");
  VerifyRequest r;
  r.evidence = read_vector(dir / "quote.bin");
  r.event_log = read_vector(dir / "event_log.json");
  r.time = 1780000000;
  const std::string compose = "86b0e55f2fa8e4fb69d890f14f54d5612707646e2573d54e0d2ddaaade77caa9";
  auto policy = policy::parse_policy(
      json{{"tdx", {{"runtime_events", {{"compose-hash", {compose}}}}}}}.dump());
  ASSERT_TRUE(policy) << policy.error().message();
  r.policy = *policy;
  auto v = Verifier().verify(r);
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(check(*v, "policy.tdx.runtime_event.compose-hash")->status,
            attestation::CheckStatus::kPass);
  const json j = v->to_json();
  const auto& events = j["report"]["event_log"]["runtime_events"];
  ASSERT_EQ(events.size(), 9u);
  EXPECT_EQ(events[2]["name"], "compose-hash");
  EXPECT_EQ(events[2]["payload"], compose);
  EXPECT_EQ(events[3]["name"], "instance-id");
  EXPECT_EQ(events[3]["payload"], "050bf89570575fe8fab4cb8f0a62a9e64efe8ead");
  EXPECT_EQ(j["report"]["event_log"]["format"], "dstack");

  policy = policy::parse_policy(
      json{{"tdx",
            {{"runtime_events", {{"compose-hash", {std::string(64, '0')}}, {"no-such", {"00"}}}}}}}
          .dump());
  ASSERT_TRUE(policy);
  r.policy = *policy;
  v = Verifier().verify(r);
  ASSERT_TRUE(v);
  EXPECT_EQ(check(*v, "policy.tdx.runtime_event.compose-hash")->status,
            attestation::CheckStatus::kFail);
  EXPECT_EQ(check(*v, "policy.tdx.runtime_event.no-such")->found, "absent");
  // The text form shows a control character (here in a pinned event's name) as \xNN.
  VerifyRequest escaped = r;
  auto with_escape = policy::parse_policy(
      json{{"tdx", {{"runtime_events", {{"no\x1b[2J", {std::string(64, '0')}}}}}}}.dump());
  ASSERT_TRUE(with_escape) << with_escape.error().message();
  escaped.policy = *with_escape;
  const auto shown = Verifier().verify(escaped);
  ASSERT_TRUE(shown);
  const std::string text = shown->to_text();
  EXPECT_NE(text.find("FAIL  policy.tdx.runtime_event.no\\x1b[2J"), std::string::npos) << text;
  EXPECT_EQ(text.find('\x1b'), std::string::npos);
  // Without the log the pinned events are unknown.
  r.event_log.reset();
  v = Verifier().verify(r);
  ASSERT_TRUE(v);
  EXPECT_EQ(check(*v, "policy.tdx.runtime_event.compose-hash")->detail,
            "no dstack event log was given (--event-log)");
}

TEST(SdkDetection, EvidenceIsRecognisedByContent) {
  EXPECT_EQ(detect_tee(Bytes{2, 0, 0, 0}), "snp");
  EXPECT_EQ(detect_tee(Bytes{'H', 'C', 'L', 'A'}), "az-snp-vtpm");
  EXPECT_EQ(detect_tee(Bytes{'{', '}'}), std::nullopt);
  EXPECT_EQ(detect_tee(Bytes{}), std::nullopt);
  EXPECT_EQ(detect_tee(Bytes{6, 0, 0, 0}), std::nullopt);
  VerifyRequest r;
  r.evidence = {'n', 'o', 'p', 'e'};
  EXPECT_EQ(Verifier().verify(r).error().message(), kUnrecognisedEvidence);
  r.evidence = {2, 0, 0, 0};
  r.nonce = Bytes{1};
  EXPECT_FALSE(Verifier().verify(r));
}

TEST(VerifyReportCli, UnrecognisedEvidenceIsAUsageError) {
  char path[] = "/tmp/cloister-trustee-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string text = R"({"tee": "az-snp-vtpm", "evidence": "e30"})";
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  auto r = run(std::string(path));
  std::remove(path);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out, "verify-report: " + std::string(path) +
                       ": not a SEV-SNP report, TDX quote or Azure vTPM evidence\n");
}

TEST(VerifyReportCli, AzureEvidenceWithItsNonce) {
  REQUIRE_AZURE_FACTS();
  const std::string base = vec("azure/snp/evidence-v0.json") + " --at 2026-01-01T00:00:00Z";
  auto ok = run(base + " --nonce 6368616c6c656e6765");
  EXPECT_EQ(ok.status, 0) << ok.out;
  EXPECT_NE(ok.out.find("(Azure vTPM, SEV-SNP)"), std::string::npos);
  auto other = run(base + " --nonce 00");
  EXPECT_EQ(other.status, 1);
  EXPECT_NE(other.out.find("FAIL  azure.tpm.quote.nonce"), std::string::npos);
  EXPECT_EQ(run(base + " --nonce xyz").status, 2);
  // A nonce belongs to Azure evidence; a bare report pins REPORT_DATA instead.
  EXPECT_EQ(run(vec("snp/genoa_v5_vcek_report.oak.bin") + " --nonce 00").status, 2);
}

// The verdict of a failing run (v0 evidence with another nonce and a policy) in a format.
testing::CommandResult failing(const std::string& format) {
  return run(vec("azure/snp/evidence-v0.json") + " --at 2026-01-01T00:00:00Z --nonce 00 --policy " +
             CLOISTER_SOURCE_DIR + "/policies/examples/default.json --format " + format);
}

// A check quoting an evidence file's bytes that are not UTF-8 (a lone 0xff, an overlong NUL) or
// DEL still gives well-formed XML and JSON: U+FFFD stands in for each such byte.
TEST(CiReport, BytesThatAreNotUtf8LeaveTheReportsWellFormed) {
  Verdict verdict;
  verdict.tee = "snp";
  verdict.checks.fail("policy.x", "\xe2\x82\xac 1", "\xff\xc0\x80 found", "detail\x7f");
  const std::string xml = to_junit_xml(verdict, ReportContext{"report.bin", std::nullopt});
  xmlDocPtr doc = xmlReadMemory(xml.data(), static_cast<int>(xml.size()), "junit.xml", nullptr,
                                XML_PARSE_NONET);
  ASSERT_NE(doc, nullptr) << xml;
  xmlFreeDoc(doc);
  EXPECT_NE(xml.find("expected \xe2\x82\xac 1, found \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd found"),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find(">detail?</failure>"), std::string::npos) << xml;
  EXPECT_NO_THROW((void)dump_json(to_sarif(verdict, ReportContext{"report.bin", std::nullopt})));
}

// Control characters a report carries (ESC, a UTF-8 C1 CSI, a newline forging a verdict line)
// reach no terminal and no CI log raw, in any output format.
TEST(CiReport, ControlCharactersFromTheEvidenceReachNoTerminal) {
  Verdict verdict;
  verdict.tee = "snp";
  verdict.checks.fail("policy.x", "1",
                      "\x1b[2J\xc2\x9b"
                      "2J",
                      "a\nverdict: PASS");
  const ReportContext context{"report.bin", std::nullopt};
  const std::string text = verdict.to_text();
  EXPECT_NE(text.find("\\x1b[2J\\xc2\\x9b2J"), std::string::npos) << text;
  EXPECT_NE(text.find("a\\x0averdict: PASS"), std::string::npos) << text;
  EXPECT_EQ(text.find("\nverdict: PASS"), std::string::npos) << text;
  const std::string github = to_github_annotations(verdict, context);
  const std::string json_text = dump_json(verdict.to_json());
  EXPECT_NE(json_text.find("\\u001b[2J\\u009b2J"), std::string::npos) << json_text;
  const std::string xml = to_junit_xml(verdict, context);
  EXPECT_NE(xml.find("&#x9b;2J"), std::string::npos) << xml;
  for (const std::string* out : {&text, &github, &json_text, &xml}) {
    EXPECT_EQ(out->find('\x1b'), std::string::npos) << *out;
    EXPECT_EQ(out->find("\xc2\x9b"), std::string::npos) << *out;
  }
}

TEST(VerifyReportCli, JunitIsWellFormedWithOneTestCasePerCheck) {
  REQUIRE_AZURE_FACTS();
  auto r = failing("junit");
  EXPECT_EQ(r.status, 1);
  auto j = json::parse(failing("json").out);
  xmlDocPtr doc = xmlReadMemory(r.out.data(), static_cast<int>(r.out.size()), "junit.xml", nullptr,
                                XML_PARSE_NONET);
  ASSERT_NE(doc, nullptr) << r.out;
  xmlNodePtr root = xmlDocGetRootElement(doc);
  EXPECT_STREQ(reinterpret_cast<const char*>(root->name), "testsuites");
  std::size_t cases = 0, failures = 0, skipped = 0;
  std::string failure_message;
  for (xmlNodePtr suite = root->children; suite; suite = suite->next) {
    if (suite->type != XML_ELEMENT_NODE) continue;
    EXPECT_STREQ(reinterpret_cast<const char*>(suite->name), "testsuite");
    for (xmlNodePtr tc = suite->children; tc; tc = tc->next) {
      if (tc->type != XML_ELEMENT_NODE || xmlStrcmp(tc->name, BAD_CAST "testcase") != 0) continue;
      ++cases;
      xmlChar* name = xmlGetProp(tc, BAD_CAST "name");
      for (xmlNodePtr c = tc->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        if (xmlStrcmp(c->name, BAD_CAST "failure") == 0) {
          ++failures;
          if (xmlStrcmp(name, BAD_CAST "azure.tpm.quote.nonce") == 0) {
            xmlChar* m = xmlGetProp(c, BAD_CAST "message");
            failure_message = reinterpret_cast<const char*>(m);
            xmlFree(m);
          }
        }
        skipped += xmlStrcmp(c->name, BAD_CAST "skipped") == 0;
      }
      xmlFree(name);
    }
  }
  xmlFreeDoc(doc);
  EXPECT_EQ(cases, j["checks"].size());
  EXPECT_EQ(failures, 1u);
  EXPECT_EQ(skipped, 2u);  // snp.crl and snp.revocation without a CRL
  EXPECT_EQ(failure_message, "expected extraData 00, found extraData 6368616c6c656e6765");
}

TEST(VerifyReportCli, SarifHasTheRequiredStructure) {
  REQUIRE_AZURE_FACTS();
  auto r = failing("sarif");
  EXPECT_EQ(r.status, 1);
  const json s = json::parse(r.out);
  EXPECT_EQ(s["version"], "2.1.0");
  EXPECT_TRUE(s["$schema"].is_string());
  ASSERT_EQ(s["runs"].size(), 1u);
  const json& run0 = s["runs"][0];
  EXPECT_EQ(run0["tool"]["driver"]["name"], "verify-report");
  const json& rules = run0["tool"]["driver"]["rules"];
  ASSERT_EQ(run0["results"].size(), 1u);
  for (const auto& result : run0["results"]) {
    EXPECT_EQ(result["ruleId"], "azure.tpm.quote.nonce");
    EXPECT_EQ(rules[result["ruleIndex"].get<std::size_t>()]["id"], result["ruleId"]);
    EXPECT_EQ(result["level"], "error");
    EXPECT_NE(result["message"]["text"].get<std::string>().find("found extraData"),
              std::string::npos);
    const json& location = result["locations"][0]["physicalLocation"];
    EXPECT_NE(location["artifactLocation"]["uri"].get<std::string>().find("evidence-v0.json"),
              std::string::npos);
    EXPECT_GE(location["region"]["startLine"], 1);
  }
  EXPECT_EQ(run0["invocations"][0]["exitCode"], 1);
}

TEST(VerifyReportCli, GithubAnnotationsAndTheJsonAlias) {
  REQUIRE_AZURE_FACTS();
  auto r = failing("github");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("::error file=" + vec("azure/snp/evidence-v0.json") +
                       ",title=azure.tpm.quote.nonce::expected extraData 00, found extraData "
                       "6368616c6c656e6765 — the quote was made for another nonce (replayed or "
                       "not this session's)\n"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("::notice file="), std::string::npos);  // the skipped CRL checks
  EXPECT_NE(r.out.find("::error title=verify-report "), std::string::npos);
  EXPECT_EQ(run(vec("azure/snp/evidence-v0.json") + " --json --format junit").status, 2);
  EXPECT_EQ(run(vec("azure/snp/evidence-v0.json") + " --format yaml").status, 2);
  // Escaping: a property's ':' and ',' and a message's newline.
  Verdict v;
  v.tee = "snp";
  v.checks.fail("a.b", "x", "y", "line one\nline two, 100%");
  EXPECT_EQ(to_github_annotations(v, {"dir:a,b", std::nullopt}),
            "::error file=dir%3Aa%2Cb,title=a.b::expected x, found y — line one%0Aline two, "
            "100%25\n::error title=verify-report dir%3Aa%2Cb::FAIL (1 of 1 checks failed: a.b)\n");
}

// Debian's interpreter, where python3-junitparser and python3-jsonschema are installed.
const std::string kPython = "/usr/bin/python3 ";

std::string scratch(const std::string& name) {
  return ::testing::TempDir() + "cloister-" + std::to_string(getpid()) + "-" + name;
}

TEST(VerifyReportCli, JunitIsReadByJunitparser) {
  REQUIRE_AZURE_FACTS();
  const std::string xml = scratch("verdict.xml");
  ASSERT_EQ(
      run(vec("azure/snp/evidence-v0.json") + " --at 2026-01-01T00:00:00Z --nonce 00 --policy " +
          CLOISTER_SOURCE_DIR + "/policies/examples/default.json --format junit > " + xml)
          .status,
      1);
  auto parsed =
      testing::run_command(kPython + CLOISTER_SOURCE_DIR + "/tests/sdk/junit_check.py " + xml);
  ASSERT_EQ(parsed.status, 0) << parsed.out;
  const std::size_t checks = json::parse(failing("json").out)["checks"].size();
  EXPECT_EQ(parsed.out,
            "skipped snp.crl: no CRL supplied, cached or fetched; the policy does not require "
            "one\n"
            "skipped snp.revocation: no CRL; revocation not checked\n"
            "failure azure.tpm.quote.nonce: expected extraData 00, found extraData "
            "6368616c6c656e6765\n"
            "cases " +
                std::to_string(checks) + "\n");
  std::remove(xml.c_str());
}

TEST(VerifyReportCli, SarifValidatesAgainstTheSarif210Schema) {
  REQUIRE_AZURE_FACTS();
  auto schema =
      testing::run_command(std::string(CLOISTER_SOURCE_DIR) + "/tests/sdk/fetch-sarif-schema.sh " +
                           CLOISTER_TEST_DATA_DIR + " 2>&1");
  if (schema.status != 0) GTEST_SKIP() << "the SARIF 2.1.0 schema is not available: " << schema.out;
  const std::string schema_path = schema.out.substr(0, schema.out.find('\n'));
  const std::string checker =
      kPython + CLOISTER_SOURCE_DIR + "/tests/sdk/sarif_check.py " + schema_path + " ";

  const std::string sarif = scratch("verdict.sarif");
  const std::string out = failing("sarif").out;
  { std::ofstream(sarif) << out; }
  auto valid = testing::run_command(checker + sarif);
  EXPECT_EQ(valid.status, 0) << valid.out;
  EXPECT_EQ(valid.out, "valid\n");

  // The validator has teeth: a level SARIF does not define is refused at its path.
  json broken = json::parse(out);
  broken["runs"][0]["results"][0]["level"] = "fatal";
  { std::ofstream(sarif) << broken.dump(); }
  auto invalid = testing::run_command(checker + sarif);
  EXPECT_EQ(invalid.status, 1);
  EXPECT_NE(invalid.out.find("/runs/0/results/0/level: 'fatal' is not one of"), std::string::npos)
      << invalid.out;
  std::remove(sarif.c_str());
}

}  // namespace
}  // namespace cloister::sdk
