// Azure vTPM evidence: the HCL report, runtime data, vTPM quote and TCG event log parsers and
// verification steps, against the facts in shared/vectors/azure/expected.json.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "cloister/attestation/azure/evidence.h"
#include "cloister/attestation/azure/hcl.h"
#include "cloister/attestation/azure/verify.h"
#include "cloister/attestation/snp/report.h"
#include "cloister/attestation/tdx/quote.h"
#include "cloister/attestation/tpm/attest.h"
#include "cloister/attestation/tpm/event_log.h"
#include "cloister/common/hex.h"
#include "cloister/common/sha.h"
#include "support/vectors.h"

namespace cloister::attestation::azure {
namespace {

using nlohmann::json;
using testing::read_vector;
using testing::vector_path;

const json& facts() {
  static const json doc = [] {
    auto path = vector_path("azure/expected.json");
    if (!path) return json();
    std::ifstream in(*path);
    return json::parse(in);
  }();
  return doc;
}

#define REQUIRE_AZURE_FACTS() \
  if (facts().is_null()) GTEST_SKIP() << testing::vectors_missing_message("azure/expected.json")

Bytes azure_vector(const std::string& relative) {
  return read_vector(*vector_path("azure/" + relative));
}

Bytes text_bytes(const std::string& s) {
  return Bytes(s.begin(), s.end());
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Every set: its facts and its derived directory.
std::vector<std::pair<std::string, json>> sets() {
  std::vector<std::pair<std::string, json>> out;
  for (const auto& [name, f] : facts()["evidence"].items()) out.emplace_back(name, f);
  return out;
}

TEST(AzureHcl, EveryReportParsesToItsFacts) {
  REQUIRE_AZURE_FACTS();
  for (const auto& [name, f] : sets()) {
    SCOPED_TRACE(name);
    const std::string dir = f["derived_dir"];
    const Bytes bytes = azure_vector(dir + "/hcl_report.bin");
    EXPECT_TRUE(looks_like_hcl_report(bytes));
    auto hcl = parse_hcl_report(bytes);
    ASSERT_TRUE(hcl) << hcl.error().message();
    EXPECT_EQ(hcl->version, f["hcl"]["header"]["version"]);
    EXPECT_EQ(hcl->report_size, f["hcl"]["header"]["report_size"]);
    EXPECT_EQ(static_cast<unsigned>(hcl->report_type),
              f["hcl"]["igvm_request_data"]["report_type"]);
    EXPECT_EQ(hcl->runtime_data.size(), f["runtime_data"]["len"]);
    EXPECT_EQ(to_hex(sha256(hcl->runtime_data)), f["runtime_data"]["sha256"]);
    EXPECT_EQ(hcl->runtime_data, azure_vector(dir + "/runtime_data.json"));
    EXPECT_EQ(hcl->hw_report, azure_vector(dir + "/hw_report.bin"));
  }
}

TEST(AzureHcl, RuntimeDataCarriesTheAttestationKeyVmConfigurationAndUserData) {
  REQUIRE_AZURE_FACTS();
  for (const auto& [name, f] : sets()) {
    SCOPED_TRACE(name);
    auto rd =
        parse_runtime_data(azure_vector(std::string(f["derived_dir"]) + "/runtime_data.json"));
    ASSERT_TRUE(rd) << rd.error().message();
    ASSERT_EQ(rd->keys.size(), f["runtime_data"]["keys"].size());
    for (std::size_t i = 0; i < rd->keys.size(); ++i) {
      const auto& k = f["runtime_data"]["keys"][i];
      EXPECT_EQ(rd->keys[i].kid, k["kid"]);
      EXPECT_EQ(rd->keys[i].key_ops, k["key_ops"].get<std::vector<std::string>>());
      EXPECT_EQ(to_hex(rd->keys[i].n).substr(0, 32), k["n_prefix_hex"]);
      EXPECT_EQ(rd->keys[i].n.size() * 8, k["n_bits"]);
    }
    EXPECT_EQ(to_hex(sha256(rd->key("HCLAkPub")->n)), f["ak"]["modulus_sha256"]);
    auto ak = attestation_key(*rd);
    ASSERT_TRUE(ak) << ak.error().message();
    EXPECT_EQ(ak->describe(), "RSA 2048");
    const auto& vm = f["runtime_data"]["vm_configuration"];
    EXPECT_EQ(*rd->vm_configuration.secure_boot, vm["secure-boot"]);
    EXPECT_EQ(*rd->vm_configuration.tpm_enabled, vm["tpm-enabled"]);
    EXPECT_EQ(*rd->vm_configuration.console_enabled, vm["console-enabled"]);
    EXPECT_EQ(*rd->vm_configuration.vm_unique_id, vm["vmUniqueId"]);
    if (f["runtime_data"]["user_data"].is_null()) {
      EXPECT_FALSE(rd->user_data);
      EXPECT_EQ(*rd->vm_configuration.current_time, vm["current-time"]);
    } else {
      EXPECT_EQ(to_hex(*rd->user_data), lower(f["runtime_data"]["user_data"]));
    }
  }
}

TEST(AzureHcl, MalformedReportsNameTheField) {
  REQUIRE_AZURE_FACTS();
  const Bytes good = azure_vector("snp/hcl-report.bin");
  auto mutate = [&](std::size_t offset, std::uint32_t value) {
    Bytes b = good;
    store_le32(b, offset, value);
    return parse_hcl_report(b);
  };
  EXPECT_EQ(mutate(0, 0x41414141).error().message(),
            "HCL report signature: expected \"HCLA\" (0x414c4348), found 0x41414141");
  EXPECT_EQ(mutate(4, 3).error().message(), "HCL report version: expected 1 or 2, found 3");
  EXPECT_EQ(mutate(0x4C8, 3).error().message(),
            "HCL report report_type: expected 2 (SEV-SNP) or 4 (TDX), found 3");
  EXPECT_EQ(mutate(0x4CC, 2).error().message(),
            "HCL report report_data_hash_type: expected 1 (SHA-256), found 2");
  EXPECT_EQ(mutate(0x4D0, 5000).error().message(),
            "HCL report request data_size: expected 5020 (20 + variable_data_size), found 1130");
  EXPECT_FALSE(parse_hcl_report(ByteView(good).first(0x4D3)));
  Bytes huge = good;
  store_le32(huge, 0x4C0, 20 + 4000);
  store_le32(huge, 0x4D0, 4000);
  store_le32(huge, 8, 0x20 + 1184 + 20 + 4000);
  EXPECT_EQ(parse_hcl_report(huge).error().message(),
            "HCL report variable_data_size: expected at most 1364 (the bytes after offset 0x4d4), "
            "found 4000");
}

TEST(AzureTpm, QuotesDecodeToTheirFacts) {
  REQUIRE_AZURE_FACTS();
  for (const auto& [name, f] : sets()) {
    SCOPED_TRACE(name);
    auto a = tpm::parse_tpms_attest(azure_vector(std::string(f["derived_dir"]) + "/tpm_quote.bin"));
    ASSERT_TRUE(a) << a.error().message();
    const auto& q = f["tpm_quote"];
    EXPECT_EQ(hex_number(a->magic), q["magic"]);
    EXPECT_EQ(hex_number(a->type), q["type"]);
    EXPECT_EQ(to_hex(a->qualified_signer), q["qualified_signer"]);
    EXPECT_EQ(to_hex(a->extra_data), q["extra_data"]);
    EXPECT_EQ(a->clock, q["clock"]);
    EXPECT_EQ(a->reset_count, q["reset_count"]);
    EXPECT_EQ(a->restart_count, q["restart_count"]);
    EXPECT_EQ(a->safe, q["safe"] == 1);
    EXPECT_EQ(hex_number(a->firmware_version), q["firmware_version"]);
    ASSERT_EQ(a->pcr_select.size(), 1u);
    EXPECT_EQ(a->pcr_select[0].hash, tpm::kAlgSha256);
    EXPECT_EQ(to_hex(a->pcr_select[0].bitmap), q["pcr_select"][0]["bitmap"]);
    EXPECT_EQ(a->pcr_select[0].pcrs(), q["pcr_select"][0]["pcrs"].get<std::vector<unsigned>>());
    EXPECT_EQ(to_hex(a->pcr_digest), q["pcr_digest"]);
  }
}

TEST(AzureTpm, MalformedQuotesNameTheField) {
  REQUIRE_AZURE_FACTS();
  const Bytes good = azure_vector("snp/tpm-quote.msg");
  Bytes b = good;
  b[0] = 0;
  EXPECT_EQ(tpm::parse_tpms_attest(b).error().message(),
            "TPMS_ATTEST magic is 0x544347, expected 0xff544347 (TPM_GENERATED_VALUE)");
  b = good;
  b[5] = 0x17;
  EXPECT_EQ(tpm::parse_tpms_attest(b).error().message(),
            "TPMS_ATTEST type is 0x8017, expected 0x8018 (TPM_ST_ATTEST_QUOTE)");
  b = good;
  b.push_back(0);
  EXPECT_EQ(tpm::parse_tpms_attest(b).error().message(), "TPMS_ATTEST: 1 bytes after pcrDigest");
  EXPECT_FALSE(tpm::parse_tpms_attest(ByteView(good).first(good.size() - 1)));
}

TEST(AzureEvidence, ContainersDecodeToTheSameBytes) {
  REQUIRE_AZURE_FACTS();
  for (const auto& [name, f] : sets()) {
    if (!f.contains("json_format")) continue;
    SCOPED_TRACE(name);
    const Bytes bytes = azure_vector(name);
    EXPECT_TRUE(looks_like_azure_evidence(bytes));
    auto e = parse_azure_evidence(bytes);
    ASSERT_TRUE(e) << e.error().message();
    EXPECT_EQ(*e->version, f["json_format"]["evidence_version"].get<unsigned>());
    const std::string dir = f["derived_dir"];
    EXPECT_EQ(e->hcl_report, azure_vector(dir + "/hcl_report.bin"));
    EXPECT_EQ(e->tpm_quote->message, azure_vector(dir + "/tpm_quote.bin"));
    EXPECT_EQ(e->tpm_quote->signature, azure_vector(dir + "/tpm_sig.bin"));
    ASSERT_EQ(e->tpm_quote->pcrs.size(), 24u);
    EXPECT_EQ(to_hex(e->tpm_quote->pcrs[0]), f["pcrs"]["0"]);
    if (f["hw_report_kind"] == "SNP") {
      EXPECT_EQ(to_hex(sha256(*e->vcek)).size(), 64u);
      EXPECT_FALSE(e->td_quote);
    } else {
      EXPECT_EQ(*e->td_quote, azure_vector(dir + "/td_quote.bin"));
    }
  }
  // The bincode quote and the JSON quote are the same quote.
  for (const char* tee : {"snp", "tdx"}) {
    const Bytes bincode = azure_vector(std::string(tee) + "/quote.bin");
    const Bytes json_quote = azure_vector(std::string(tee) + "/tpm-quote-v1.json");
    auto a = parse_vtpm_quote({bincode});
    auto b = parse_vtpm_quote({json_quote});
    ASSERT_TRUE(a) << a.error().message();
    ASSERT_TRUE(b) << b.error().message();
    EXPECT_EQ(a->message, b->message);
    EXPECT_EQ(a->signature, b->signature);
    EXPECT_EQ(a->pcrs, b->pcrs);
  }
  // Two parts, in either order.
  const Bytes msg = azure_vector("snp/tpm-quote.msg");
  const Bytes sig = azure_vector("snp/tpm-quote.sig");
  EXPECT_EQ(parse_vtpm_quote({sig, msg})->message, msg);
  EXPECT_EQ(parse_vtpm_quote({msg}).error().message(),
            "vTPM quote: a TPMS_ATTEST message alone; its signature must be given too (two files)");
  EXPECT_FALSE(parse_vtpm_quote({sig, sig}));
  // Not Azure evidence.
  EXPECT_FALSE(looks_like_azure_evidence(text_bytes("{\"quote\": \"00\"}")));
  EXPECT_FALSE(looks_like_azure_evidence(msg));
  EXPECT_EQ(parse_azure_evidence(text_bytes("{\"version\": 1, \"tpm_quote\": {}, \"extra\": 1}"))
                .error()
                .message(),
            "Azure evidence (v1): unknown member 'extra' (expected hcl_report, td_quote, "
            "tpm_quote, vcek, version)");
}

// verify_vtpm over a set, with its hardware REPORT_DATA.
struct VtpmRun {
  VtpmVerification v;
  Checks checks;
};

VtpmRun run_vtpm(const Bytes& hcl_bytes, const std::optional<VtpmQuote>& quote,
                 const VtpmVerifyOptions& options) {
  VtpmRun out;
  auto hcl = parse_hcl_report(hcl_bytes);
  EXPECT_TRUE(hcl);
  if (!hcl) return out;
  const std::size_t report_data = hcl->report_type == HclReportType::kSnp ? 0x50 : 0x80;
  out.v = verify_vtpm(*hcl, ByteView(hcl->hw_report).subspan(report_data, 64), "REPORT_DATA", quote,
                      options, out.checks);
  return out;
}

attestation::CheckStatus status(const Checks& checks, const std::string& name) {
  const Check* c = checks.find(name);
  EXPECT_NE(c, nullptr) << name;
  return c ? c->status : attestation::CheckStatus::kSkip;
}

TEST(AzureVerify, EverySetBindsItsRuntimeDataAndItsQuoteVerifies) {
  REQUIRE_AZURE_FACTS();
  for (const auto& [name, f] : sets()) {
    SCOPED_TRACE(name);
    const std::string dir = f["derived_dir"];
    VtpmQuote quote{azure_vector(dir + "/tpm_quote.bin"), azure_vector(dir + "/tpm_sig.bin"), {}};
    if (f.contains("pcrs"))
      for (int i = 0; i < 24; ++i)
        quote.pcrs.push_back(*from_hex(std::string(f["pcrs"][std::to_string(i)])));
    VtpmVerifyOptions options;
    options.nonce = *from_hex(std::string(f["tpm_quote"]["extra_data"]));
    auto run = run_vtpm(azure_vector(dir + "/hcl_report.bin"), quote, options);
    EXPECT_TRUE(run.checks.passed() || !f.contains("pcrs")) << name;
    EXPECT_EQ(status(run.checks, "azure.runtime_data.binding"), CheckStatus::kPass);
    EXPECT_EQ(status(run.checks, "azure.tpm.quote.signature"), CheckStatus::kPass);
    EXPECT_EQ(status(run.checks, "azure.tpm.quote.nonce"), CheckStatus::kPass);
    if (f.contains("pcrs")) {
      EXPECT_EQ(status(run.checks, "azure.tpm.pcr_digest"), CheckStatus::kPass);
      EXPECT_TRUE(run.v.pcrs_verified);
      EXPECT_EQ(to_hex(*run.v.pcr(8)), f["pcrs"]["8"]);
    } else {
      // The 2023 legacy set ships no PCR values: the digest cannot be checked.
      EXPECT_EQ(run.checks.find("azure.tpm.pcr_digest")->found, "no PCR values");
      EXPECT_EQ(status(run.checks, "azure.tpm.pcr_digest"), CheckStatus::kFail);
    }
    // Another nonce is refused.
    options.nonce = text_bytes("another nonce");
    auto other = run_vtpm(azure_vector(dir + "/hcl_report.bin"), quote, options);
    EXPECT_EQ(status(other.checks, "azure.tpm.quote.nonce"), CheckStatus::kFail);
  }
}

TEST(AzureVerify, TrusteesTamperingTestsFailTheirNamedCheck) {
  REQUIRE_AZURE_FACTS();
  const std::string dir = "snp/derived/evidence-v0";
  const Bytes hcl = azure_vector(dir + "/hcl_report.bin");
  VtpmQuote quote{azure_vector(dir + "/tpm_quote.bin"), azure_vector(dir + "/tpm_sig.bin"), {}};
  const auto& f = facts()["evidence"]["snp/evidence-v0.json"];
  for (int i = 0; i < 24; ++i)
    quote.pcrs.push_back(*from_hex(std::string(f["pcrs"][std::to_string(i)])));
  VtpmVerifyOptions options;
  options.nonce = text_bytes("challenge");
  ASSERT_TRUE(run_vtpm(hcl, quote, options).checks.passed());

  // A runtime-data byte changed: the hardware report no longer binds it.
  Bytes changed = hcl;
  changed[0x6e0] += 1;
  auto r = run_vtpm(changed, quote, options);
  EXPECT_EQ(status(r.checks, "azure.runtime_data.binding"), CheckStatus::kFail);
  EXPECT_EQ(r.checks.find("azure.runtime_data.binding")->detail,
            "the hardware report does not bind this runtime data (it was altered, or belongs to "
            "another report)");

  // REPORT_DATA[32:64] (HCL 0x20 + SNP 0x70) is zero in every report the HCL asks for; a
  // byte there is refused even though [0:32] still binds the runtime data.
  changed = hcl;
  changed[0x20 + 0x70 + 5] = 0x01;
  r = run_vtpm(changed, quote, options);
  const Check* tail = r.checks.find("azure.runtime_data.binding");
  EXPECT_EQ(tail->status, CheckStatus::kFail);
  EXPECT_EQ(tail->detail, "REPORT_DATA[32:64] is not zero: the HCL did not ask for this report");
  const std::string digest = f["runtime_data"]["sha256"];
  EXPECT_EQ(tail->found,
            "REPORT_DATA[0:32] " + digest + ", [32:64] 0000000000" + "01" + std::string(52, '0'));
  ASSERT_EQ(f["report_data_32_64_zero"], true);
  EXPECT_EQ(run_vtpm(hcl, quote, options).checks.find("azure.runtime_data.binding")->found,
            "REPORT_DATA[0:32] " + digest + ", zeros in [32:64]");

  // The AK's JSON broken: no attestation key, so the quote cannot be verified.
  changed = hcl;
  changed[0x540] = 0;
  r = run_vtpm(changed, quote, options);
  EXPECT_EQ(status(r.checks, "azure.runtime_data.format"), CheckStatus::kFail);
  EXPECT_EQ(status(r.checks, "azure.tpm.quote.signature"), CheckStatus::kFail);

  // The AK signature flipped.
  VtpmQuote bad = quote;
  bad.signature[0] ^= 1;
  r = run_vtpm(hcl, bad, options);
  EXPECT_EQ(status(r.checks, "azure.tpm.quote.signature"), CheckStatus::kFail);
  EXPECT_FALSE(r.v.pcrs_verified);

  // A PCR changed.
  bad = quote;
  bad.pcrs[0][0] ^= 1;
  r = run_vtpm(hcl, bad, options);
  EXPECT_EQ(status(r.checks, "azure.tpm.pcr_digest"), CheckStatus::kFail);
  EXPECT_EQ(status(r.checks, "azure.tpm.quote.signature"), CheckStatus::kPass);

  // No quote at all.
  r = run_vtpm(hcl, std::nullopt, options);
  EXPECT_EQ(r.checks.find("azure.tpm.quote.format")->found, "none");

  // No nonce: freshness is skipped, not passed.
  r = run_vtpm(hcl, quote, {});
  EXPECT_EQ(status(r.checks, "azure.tpm.quote.nonce"), CheckStatus::kSkip);
}

TEST(AzureVerify, TdxSetBindsThroughTheTdReport) {
  REQUIRE_AZURE_FACTS();
  const std::string dir = "tdx/derived/evidence-v0";
  Bytes hcl = azure_vector(dir + "/hcl_report.bin");
  auto parsed = parse_hcl_report(hcl);
  ASSERT_TRUE(parsed);
  auto td_report = tdx::parse_tdreport(parsed->hw_report);
  ASSERT_TRUE(td_report) << td_report.error().message();
  auto quote = tdx::decode_tdx_quote(azure_vector(dir + "/td_quote.bin"));
  ASSERT_TRUE(quote) << quote.error().message();
  Checks checks;
  check_td_report_match(*td_report, quote->td_report, checks);
  EXPECT_EQ(status(checks, "azure.td_report.match"), CheckStatus::kPass);
  EXPECT_EQ(to_hex(td_report->td_info.mr_td),
            facts()["evidence"]["tdx/evidence-v0.json"]["tdreport"]["mrtd"]);

  // A runtime-data byte changed (HCL 0x880): the binding fails.
  hcl[0x880] += 1;
  VtpmQuote q{azure_vector(dir + "/tpm_quote.bin"), azure_vector(dir + "/tpm_sig.bin"), {}};
  auto r = run_vtpm(hcl, q, {});
  EXPECT_EQ(status(r.checks, "azure.runtime_data.binding"), CheckStatus::kFail);

  // A TDREPORT that is not the quote's.
  auto other = *td_report;
  other.td_info.rtmr[3][0] ^= 1;
  Checks mismatch;
  check_td_report_match(other, quote->td_report, mismatch);
  EXPECT_EQ(mismatch.find("azure.td_report.match")->found, "RTMR3 differ");
}

TEST(AzureVerify, UserDataCarriesTheNonceInEvidenceV2) {
  REQUIRE_AZURE_FACTS();
  const auto& f = facts()["evidence"]["snp/evidence-v2.json"];
  const std::string dir = f["derived_dir"];
  VtpmQuote quote{azure_vector(dir + "/tpm_quote.bin"), azure_vector(dir + "/tpm_sig.bin"), {}};
  for (int i = 0; i < 24; ++i)
    quote.pcrs.push_back(*from_hex(std::string(f["pcrs"][std::to_string(i)])));
  VtpmVerifyOptions options;
  options.nonce = *from_hex(std::string(f["tpm_quote"]["extra_data"]));
  options.user_data_carries_nonce = true;
  auto r = run_vtpm(azure_vector(dir + "/hcl_report.bin"), quote, options);
  EXPECT_EQ(status(r.checks, "azure.runtime_data.user_data"), CheckStatus::kPass);
  // v0 carries zeros there: under the v2 rule it would fail.
  const auto& f0 = facts()["evidence"]["snp/evidence-v0.json"];
  VtpmQuote q0{azure_vector("snp/derived/evidence-v0/tpm_quote.bin"),
               azure_vector("snp/derived/evidence-v0/tpm_sig.bin"),
               {}};
  options.nonce = *from_hex(std::string(f0["tpm_quote"]["extra_data"]));
  auto r0 = run_vtpm(azure_vector("snp/derived/evidence-v0/hcl_report.bin"), q0, options);
  EXPECT_EQ(status(r0.checks, "azure.runtime_data.user_data"), CheckStatus::kFail);
}

TEST(TpmEventLog, SyntheticLogsReplayByTheirFacts) {
  REQUIRE_AZURE_FACTS();
  for (const auto& [file, f] : facts()["aael_synthetic"].items()) {
    SCOPED_TRACE(file);
    auto log = tpm::parse_tpm_event_log(azure_vector(file));
    ASSERT_TRUE(log) << log.error().message();
    EXPECT_FALSE(log->spec_id_signature);
    EXPECT_EQ(log->bytes_used, f["end_offset"]);
    ASSERT_EQ(log->algorithms.size(), 3u);
    ASSERT_EQ(log->events.size(), f["events"].size());
    tpm::PcrReplay expected;
    for (unsigned i = 17; i <= 22; ++i) expected.pcrs[i].fill(0xFF);
    for (std::size_t i = 0; i < log->events.size(); ++i) {
      const auto& e = f["events"][i];
      EXPECT_EQ(log->events[i].pcr, e["pcr"]);
      EXPECT_EQ(hex_number(log->events[i].type), e["event_type"]);
      EXPECT_EQ(to_hex(*log->events[i].sha256()), e["digests"]["0xb"]);
      EXPECT_EQ(log->events[i].data, text_bytes(e["event_data"]));
      auto& pcr = expected.pcrs[e["pcr"].get<unsigned>()];
      Bytes joined(pcr.begin(), pcr.end());
      joined.insert(joined.end(), log->events[i].sha256()->begin(), log->events[i].sha256()->end());
      pcr = sha256(joined);
    }
    const tpm::PcrReplay replay = tpm::replay_sha256_pcrs(*log);
    EXPECT_EQ(replay.pcrs, expected.pcrs);
  }
}

TEST(TpmEventLog, ReplayIntoAQuotesPcrsIsCheckedPerPcr) {
  REQUIRE_AZURE_FACTS();
  const auto& f = facts()["evidence"]["snp/evidence-v0.json"];
  const std::string dir = f["derived_dir"];
  VtpmQuote quote{azure_vector(dir + "/tpm_quote.bin"), azure_vector(dir + "/tpm_sig.bin"), {}};
  for (int i = 0; i < 24; ++i)
    quote.pcrs.push_back(*from_hex(std::string(f["pcrs"][std::to_string(i)])));
  VtpmVerifyOptions options;
  options.event_log = azure_vector("snp/SYNTHETIC_aael-pcr23-pull-image.bin");
  auto r = run_vtpm(azure_vector(dir + "/hcl_report.bin"), quote, options);
  EXPECT_EQ(status(r.checks, "azure.eventlog.format"), CheckStatus::kPass);
  // The quote's PCR23 is zero: the synthetic log does not reproduce it.
  EXPECT_EQ(status(r.checks, "azure.eventlog.pcr23"), CheckStatus::kFail);
  EXPECT_EQ(r.checks.find("azure.eventlog.pcr17"), nullptr);
  // A garbled log fails its format check.
  Bytes garbled = *options.event_log;
  garbled[0] = 5;
  options.event_log = garbled;
  r = run_vtpm(azure_vector(dir + "/hcl_report.bin"), quote, options);
  EXPECT_EQ(status(r.checks, "azure.eventlog.format"), CheckStatus::kFail);
}

TEST(TpmEventLog, StartupLocalitySetsPcr0sInitialValue) {
  // A header declaring SHA-256, a StartupLocality event (locality 3), one EV_POST_CODE on PCR 0.
  Bytes log;
  auto u32 = [&](std::uint32_t v) {
    for (int i = 0; i < 4; ++i) log.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
  };
  auto u16 = [&](std::uint16_t v) {
    log.push_back(static_cast<std::uint8_t>(v));
    log.push_back(static_cast<std::uint8_t>(v >> 8));
  };
  auto append = [&](std::string_view s) { log.insert(log.end(), s.begin(), s.end()); };
  u32(0);
  u32(3);
  log.insert(log.end(), 20, 0);
  u32(33);
  append(std::string_view("Spec ID Event03\0", 16));
  u32(0);
  log.insert(log.end(), {0, 2, 0, 2});
  u32(1);
  u16(0x000B);
  u16(32);
  log.push_back(0);
  u32(0);
  u32(3);
  u32(1);
  u16(0x000B);
  log.insert(log.end(), 32, 0);
  u32(17);
  append(std::string_view("StartupLocality\0", 16));
  log.push_back(3);
  const Bytes digest(32, 0xAB);
  u32(0);
  u32(1);
  u32(1);
  u16(0x000B);
  log.insert(log.end(), digest.begin(), digest.end());
  u32(0);
  auto parsed = tpm::parse_tpm_event_log(log);
  ASSERT_TRUE(parsed) << parsed.error().message();
  EXPECT_TRUE(parsed->spec_id_signature);
  EXPECT_EQ(parsed->startup_locality, 3);
  Bytes initial(32, 0);
  initial[31] = 3;
  initial.insert(initial.end(), digest.begin(), digest.end());
  const auto want = sha256(initial);
  EXPECT_EQ(tpm::replay_sha256_pcrs(*parsed).pcrs[0], want);
  // An event on PCR 24 is refused.
  log[log.size() - 4 - 32 - 2 - 4 - 4 - 4] = 24;
  EXPECT_EQ(tpm::parse_tpm_event_log(log).error().message(),
            "event 2 (offset 132): PCR index 24 is not a PCR (0..23)");
}

}  // namespace
}  // namespace cloister::attestation::azure
