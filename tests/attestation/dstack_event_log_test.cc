// dstack's JSON event logs replayed into RTMR0-3 against their quotes, and a collateral bundle's
// pck_certificate_chain; facts from shared/vectors/tdx/dstack/expected.json.
#include "cloister/attestation/tdx/dstack_event_log.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "cloister/attestation/tdx/verify.h"
#include "cloister/common/hex.h"
#include "cloister/common/sha.h"
#include "support/vectors.h"
#include "tdx_facts.h"

namespace cloister::attestation::tdx {
namespace {

using nlohmann::json;
using testing::read_vector;
using testing::tdx_vector;
using testing::vector_path;

const json& dstack_facts() {
  static const json doc = [] {
    auto path = vector_path("tdx/dstack/expected.json");
    if (!path) return json();
    std::ifstream in(*path);
    return json::parse(in);
  }();
  return doc;
}

#define REQUIRE_DSTACK_FACTS()  \
  if (dstack_facts().is_null()) \
  GTEST_SKIP() << testing::vectors_missing_message("tdx/dstack/expected.json")

Bytes dstack_file(const std::string& quote, const std::string& file) {
  return tdx_vector("dstack/derived/" + quote + "/" + file);
}

CheckStatus status(const Checks& checks, const std::string& name) {
  const Check* c = checks.find(name);
  EXPECT_NE(c, nullptr) << name;
  return c ? c->status : CheckStatus::kSkip;
}

TdxVerification verify_with_log(const std::string& quote, const Bytes& log) {
  TdxEvidence evidence;
  evidence.quote = dstack_file(quote, "quote.bin");
  evidence.event_log = log;
  TdxVerifyOptions options;
  options.time = 1780000000;  // 2026-05-28, inside both PCK leaves' validity
  return TdxVerifier().verify(evidence, options);
}

TEST(DstackEventLog, EveryEventsDigestAndTheReplayAreTheFacts) {
  REQUIRE_DSTACK_FACTS();
  for (const auto& [name, f] : dstack_facts()["quotes"].items()) {
    SCOPED_TRACE(name);
    const Bytes bytes = dstack_file(name, "event_log.json");
    EXPECT_TRUE(looks_like_dstack_event_log(bytes));
    auto log = parse_dstack_event_log(bytes);
    ASSERT_TRUE(log) << log.error().message();
    ASSERT_EQ(log->events.size(), f["events"].size());
    std::array<std::size_t, 4> per_imr{};
    for (std::size_t i = 0; i < log->events.size(); ++i) {
      const auto& e = f["events"][i];
      const DstackEvent& got = log->events[i];
      EXPECT_EQ(got.imr, e["imr"]);
      EXPECT_EQ(hex_number(got.event_type), e["event_type"]);
      EXPECT_EQ(got.name, e["event"]);
      EXPECT_EQ(got.payload.size(), e["payload_len"]);
      EXPECT_EQ(to_hex(got.digest), e["digest_used"]) << "event " << i;
      EXPECT_EQ(got.runtime(), e["digest_source"] == "recomputed_v1");
      if (e.contains("preimage_hex")) {
        EXPECT_EQ(to_hex(sha384(*from_hex(std::string(e["preimage_hex"])))), e["digest_used"]);
      }
      EXPECT_FALSE(got.digest_field_mismatch());
      ++per_imr[got.imr];
    }
    EXPECT_EQ(std::vector<std::size_t>(per_imr.begin(), per_imr.end()),
              f["events_per_imr"].get<std::vector<std::size_t>>());
    const RtmrReplay replay = replay_dstack_rtmrs(*log);
    for (std::size_t i = 0; i < 4; ++i)
      EXPECT_EQ(to_hex(replay.rtmr[i]), f["td_report"]["rtmr" + std::to_string(i)]);

    const TdxVerification v = verify_with_log(name, bytes);
    for (const char* check :
         {"tdx.signature", "tdx.eventlog.format", "tdx.eventlog.digests", "tdx.eventlog.rtmr0",
          "tdx.eventlog.rtmr1", "tdx.eventlog.rtmr2", "tdx.eventlog.rtmr3"})
      EXPECT_EQ(status(v.checks, check), CheckStatus::kPass) << check;
    ASSERT_TRUE(v.dstack_event_log);
  }
}

// The log with one event's member replaced.
Bytes edited(const std::string& quote, std::size_t index, const char* key, const json& value) {
  const Bytes bytes = dstack_file(quote, "event_log.json");
  json doc = json::parse(bytes.begin(), bytes.end());
  doc[index][key] = value;
  const std::string text = doc.dump();
  return Bytes(text.begin(), text.end());
}

std::size_t find_event(const std::string& quote, const std::string& name) {
  const auto& events = dstack_facts()["quotes"][quote]["events"];
  for (std::size_t i = 0; i < events.size(); ++i)
    if (events[i]["event"] == name) return i;
  ADD_FAILURE() << name;
  return 0;
}

TEST(DstackEventLog, AChangedPayloadOrNameBreaksRtmr3) {
  REQUIRE_DSTACK_FACTS();
  // The lite log has no digest fields: only the replay can tell.
  const std::size_t compose = find_event("tdx-lite-getquote", "compose-hash");
  const std::string payload =
      dstack_facts()["quotes"]["tdx-lite-getquote"]["events"][compose]["preimage_hex"];
  auto v =
      verify_with_log("tdx-lite-getquote", edited("tdx-lite-getquote", compose, "event_payload",
                                                  "00" + payload.substr(payload.size() - 62)));
  EXPECT_EQ(status(v.checks, "tdx.eventlog.rtmr3"), CheckStatus::kFail);
  EXPECT_EQ(status(v.checks, "tdx.eventlog.rtmr0"), CheckStatus::kPass);
  v = verify_with_log("tdx-lite-getquote",
                      edited("tdx-lite-getquote", compose, "event", "compose-hasH"));
  EXPECT_EQ(status(v.checks, "tdx.eventlog.rtmr3"), CheckStatus::kFail);
  // The full log carries digest fields: a changed payload also disagrees with its own digest.
  const std::size_t id = find_event("quote-report", "instance-id");
  v = verify_with_log("quote-report", edited("quote-report", id, "event_payload", "00"));
  EXPECT_EQ(status(v.checks, "tdx.eventlog.rtmr3"), CheckStatus::kFail);
  EXPECT_EQ(status(v.checks, "tdx.eventlog.digests"), CheckStatus::kFail);
  EXPECT_EQ(v.checks.find("tdx.eventlog.digests")->found, "1 mismatches");
}

TEST(DstackEventLog, ReorderedEventsAndOneBasedImrsDoNotReplay) {
  REQUIRE_DSTACK_FACTS();
  const Bytes bytes = dstack_file("quote-report", "event_log.json");
  json doc = json::parse(bytes.begin(), bytes.end());
  std::swap(doc[1], doc[2]);
  std::string text = doc.dump();
  auto v = verify_with_log("quote-report", Bytes(text.begin(), text.end()));
  EXPECT_EQ(status(v.checks, "tdx.eventlog.rtmr0"), CheckStatus::kFail);
  doc = json::parse(bytes.begin(), bytes.end());
  for (auto& e : doc)
    if (e["imr"] < 3) e["imr"] = e["imr"].get<int>() + 1;
  text = doc.dump();
  v = verify_with_log("quote-report", Bytes(text.begin(), text.end()));
  EXPECT_EQ(status(v.checks, "tdx.eventlog.rtmr1"), CheckStatus::kFail);
}

TEST(DstackEventLog, MalformedLogsNameTheEventAndField) {
  auto parse = [](const std::string& text) {
    return parse_dstack_event_log(Bytes(text.begin(), text.end()));
  };
  const std::string digest(96, 'a');
  EXPECT_TRUE(
      parse("[{\"imr\":3,\"event_type\":134217729,\"digest\":\"\",\"event\":\"x\","
            "\"event_payload\":\"00\"}]"));
  EXPECT_EQ(parse("[{\"imr\":4,\"event_type\":1,\"digest\":\"" + digest +
                  "\",\"event\":\"\",\"event_payload\":\"\"}]")
                .error()
                .message(),
            "dstack event 0 imr: expected 0..3 (RTMR0..3), found 4");
  EXPECT_EQ(parse("[{\"imr\":0,\"event_type\":1,\"digest\":\"\",\"event\":\"\","
                  "\"event_payload\":\"\"}]")
                .error()
                .message(),
            "dstack event 0 digest: a boot event's SHA-384 digest must be 48 bytes, found 0");
  EXPECT_EQ(parse("[{\"imr\":3,\"event_type\":134217729,\"digest\":\"\",\"event\":\"x\","
                  "\"event_payload\":\"\",\"version\":2}]")
                .error()
                .message(),
            "dstack event 0: 'version' marks a V2 runtime event (JCS digest), which is not "
            "supported yet");
  EXPECT_FALSE(parse("{}"));
  EXPECT_FALSE(parse("[{\"imr\":0,\"imr\":1}]"));
}

TEST(CollateralPckChain, ABundlesChainMustBeTheQuotes) {
  CLOISTER_REQUIRE_TDX_FACTS();
  const Bytes quote_bytes = tdx_vector("phala/quote_v4_b0c06f.dat");
  auto quote = decode_tdx_quote(quote_bytes);
  ASSERT_TRUE(quote);
  const Bytes bundle = tdx_vector("phala/tdx_quote_collateral.json");
  json doc = json::parse(bundle.begin(), bundle.end());
  auto with_chain = [&](const std::string& pem) {
    json d = doc;
    d["pck_certificate_chain"] = pem;
    const std::string text = d.dump();
    TdxEvidence evidence;
    evidence.quote = quote_bytes;
    EXPECT_TRUE(add_collateral(as_bytes(text), "bundle", evidence.collateral));
    TdxVerifyOptions options;
    options.time = 1751328000;  // 2025-07-01
    return TdxVerifier().verify(evidence, options);
  };
  const std::string own(quote->pck_cert_data.begin(), quote->pck_cert_data.end());
  auto v = with_chain(own.substr(0, own.find_last_not_of('\0') + 1));
  EXPECT_EQ(status(v.checks, "tdx.collateral.pck_chain"), CheckStatus::kPass);
  EXPECT_TRUE(v.checks.passed()) << v.checks.failures().size();
  // Another platform's chain.
  auto other = decode_tdx_quote(tdx_vector("phala/quote_v5_outdated_90c06f.dat"));
  ASSERT_TRUE(other);
  const std::string foreign(other->pck_cert_data.begin(), other->pck_cert_data.end());
  v = with_chain(foreign.substr(0, foreign.find_last_not_of('\0') + 1));
  EXPECT_EQ(status(v.checks, "tdx.collateral.pck_chain"), CheckStatus::kFail);
  // Not PEM.
  json d = doc;
  d["pck_certificate_chain"] = "not a chain";
  const std::string text = d.dump();
  TdxCollateral c;
  EXPECT_FALSE(add_collateral(as_bytes(text), "bundle", c));
}

}  // namespace
}  // namespace cloister::attestation::tdx
