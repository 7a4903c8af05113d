#include <gtest/gtest.h>

#include "cloister/attestation/tdx/event_log.h"
#include "cloister/attestation/tdx/quote.h"
#include "cloister/common/hex.h"
#include "cloister/common/sha.h"
#include "tdx_facts.h"

namespace cloister::attestation::tdx {
namespace {

using cloister::testing::tdx_facts;
using cloister::testing::tdx_vector;

// Every event log parses into the facts' header, per-RTMR counts and size, and replays to
// exactly the RTMRs of the quote it belongs to.
TEST(TdxEventLog, EveryLogParsesAndReplaysToTheFacts) {
  CLOISTER_REQUIRE_TDX_FACTS();
  int logs = 0;
  for (const auto& f : tdx_facts()["eventlogs"]) {
    SCOPED_TRACE(f["file"].get<std::string>());
    const Bytes bytes = tdx_vector(f["file"]);
    ASSERT_EQ(bytes.size(), f["size"].get<std::size_t>());
    ASSERT_EQ(to_hex(sha256(bytes)), f["sha256"]);
    auto log = parse_cc_event_log(bytes);
    ASSERT_TRUE(log) << log.error().message();
    const auto& spec = f["spec_id"];
    EXPECT_EQ(log->spec_id.mr_index, spec["first_event_pcr"].get<std::uint32_t>());
    ASSERT_EQ(log->spec_id.algorithms.size(), spec["algorithms"].size());
    EXPECT_EQ(log->spec_id.algorithms[0].id, kTpmAlgSha384);
    EXPECT_EQ(log->spec_id.algorithms[0].digest_size, spec["algorithms"]["sha384"].get<int>());
    EXPECT_EQ(std::to_string(log->spec_id.spec_version_major) + "." +
                  std::to_string(log->spec_id.spec_version_minor) + " errata " +
                  std::to_string(log->spec_id.spec_errata) + " uintn " +
                  std::to_string(log->spec_id.uintn_size),
              spec["spec_version"]);
    EXPECT_EQ(log->events.size(), f["event_count_excluding_specid"].get<std::size_t>());
    EXPECT_EQ(log->bytes_used, f["bytes_used"].get<std::size_t>());
    std::array<std::size_t, 5> per_index{};
    std::size_t no_action = 0;
    for (const auto& e : log->events) {
      if (e.type == event_type::kNoAction) ++no_action;
      if (e.mr_index < per_index.size()) ++per_index[e.mr_index];
    }
    for (const auto& [index, count] : f["events_per_cc_mr_index"].items())
      EXPECT_EQ(per_index[std::stoul(index)], count.get<std::size_t>()) << "MR index " << index;
    EXPECT_EQ(no_action, f["no_action_events"].get<std::size_t>());

    RtmrReplay replay = replay_rtmrs(*log);
    auto quote = parse_tdx_quote(tdx_vector(f["matches_quote"]));
    ASSERT_TRUE(quote);
    for (int i = 0; i < 4; ++i) {
      const std::string name = "RTMR" + std::to_string(i);
      EXPECT_EQ(to_hex(replay.rtmr[i]), f["replayed"][name]);
      EXPECT_EQ(replay.rtmr[i] == quote->td_report.rtmr[i],
                f["replay_equals_quote_rtmrs"][name].get<bool>());
      EXPECT_EQ(replay.events[i], per_index[i + 1]);
    }
    // No event contradicts its own data.
    for (const auto& e : log->events) EXPECT_NE(e.digest_check, DigestCheck::kMismatch);
    ++logs;
  }
  EXPECT_EQ(logs, 1);
}

TEST(TdxEventLog, DigestsAreCheckedWhereTheTypeDefinesThem) {
  CLOISTER_REQUIRE_TDX_FACTS();
  auto log = parse_cc_event_log(tdx_vector("gtg/ccel_cos113_eventlog.bin"));
  ASSERT_TRUE(log);
  int matched = 0;
  for (const auto& e : log->events) {
    switch (e.type) {
      case event_type::kSeparator:
      case event_type::kEfiAction:
      case event_type::kEfiGptEvent:
      case event_type::kEfiVariableDriverConfig:
      case event_type::kEfiVariableAuthority:
      case event_type::kEfiVariableBoot:
        EXPECT_EQ(e.digest_check, DigestCheck::kMatches) << event_type_name(e.type);
        ++matched;
        break;
      default:
        EXPECT_EQ(e.digest_check, DigestCheck::kNotApplicable) << event_type_name(e.type);
    }
  }
  // 5 variables + 2 separators + 3 actions + GPT + 2 authorities + 3 Boot#### variables.
  EXPECT_EQ(matched, 16);
  EXPECT_EQ(event_type_name(event_type::kEfiHandoffTables2), "EV_EFI_HANDOFF_TABLES2");
  EXPECT_EQ(event_type_name(0x1234), "0x00001234");
}

TEST(TdxEventLog, AlteredDataIsAMismatchNotAReplayChange) {
  CLOISTER_REQUIRE_TDX_FACTS();
  Bytes bytes = tdx_vector("gtg/ccel_cos113_eventlog.bin");
  auto log = parse_cc_event_log(bytes);
  ASSERT_TRUE(log);
  const CcEvent& action = log->events[14];  // "Calling EFI Application from Boot Option"
  ASSERT_EQ(action.type, event_type::kEfiAction);
  const std::size_t data_at = action.offset + 4 + 4 + 4 + 2 + 48 + 4;
  bytes[data_at] ^= 0x20;
  auto altered = parse_cc_event_log(bytes);
  ASSERT_TRUE(altered);
  EXPECT_EQ(altered->events[14].digest_check, DigestCheck::kMismatch);
  EXPECT_EQ(replay_rtmrs(*altered).rtmr, replay_rtmrs(*log).rtmr);
}

TEST(TdxEventLog, MalformedLogsAreRejectedNamingTheEvent) {
  CLOISTER_REQUIRE_TDX_FACTS();
  const Bytes bytes = tdx_vector("gtg/ccel_cos113_eventlog.bin");
  auto log = parse_cc_event_log(bytes);
  ASSERT_TRUE(log);
  auto error_of = [](const Bytes& b) {
    auto l = parse_cc_event_log(b);
    return l ? "parsed" : l.error().message();
  };
  // A cut inside an event fails; a cut at an event boundary is a shorter log.
  std::vector<std::size_t> boundaries;
  for (const auto& e : log->events) boundaries.push_back(e.offset);
  for (std::size_t n = 1; n < 2000; ++n) {
    auto l = parse_cc_event_log(ByteView(bytes).first(n));
    const bool boundary = std::find(boundaries.begin(), boundaries.end(), n) != boundaries.end();
    ASSERT_EQ(static_cast<bool>(l), boundary) << "cut at " << n;
  }
  EXPECT_EQ(error_of(Bytes(bytes.begin(), bytes.begin() + 70)),
            "event 1 (offset 65): event type at offset 69: needs 4 bytes, only 1 left");
  Bytes bad_index = bytes;
  store_le32(bad_index, log->events[2].offset, 5);
  EXPECT_EQ(error_of(bad_index),
            "event 3 (offset 297): MR index 5 of a EV_EFI_VARIABLE_DRIVER_CONFIG event is not an "
            "RTMR (1..4 = RTMR0..3)");
  Bytes bad_alg = bytes;
  store_le16(bad_alg, log->events[0].offset + 12, 0x000B);
  EXPECT_EQ(error_of(bad_alg),
            "event 1 (offset 65): digest algorithm 11 is not in the Spec ID header");
  Bytes junk = bytes;
  junk[log->bytes_used + 100] = 0x42;
  EXPECT_NE(error_of(junk).find("event 44 (offset 18101)"), std::string::npos) << error_of(junk);
  Bytes sha1_only = bytes;
  store_le32(sha1_only, 4, event_type::kSeparator);
  EXPECT_EQ(
      error_of(sha1_only),
      "event log header: the log must start with the EV_NO_ACTION \"Spec ID Event03\" "
      "header, found event type EV_SEPARATOR (a SHA-1-only log is not a crypto-agile CC log)");
  Bytes no_sha384 = bytes;
  store_le16(no_sha384, 32 + 28, 0x000B);  // the header's only algorithm becomes SHA-256
  EXPECT_EQ(error_of(no_sha384),
            "event log header: Spec ID event: the log has no SHA-384 digests (algorithm 0x000C), "
            "so it cannot be replayed into TDX RTMRs");
}

TEST(TdxEventLog, CcelTableMatchesTheFacts) {
  CLOISTER_REQUIRE_TDX_FACTS();
  const auto& f = tdx_facts()["eventlogs"][0];
  const Bytes bytes = tdx_vector(f["acpi_table_file"]);
  auto t = parse_ccel_table(bytes);
  ASSERT_TRUE(t) << t.error().message();
  const auto& a = f["acpi_table"];
  EXPECT_TRUE(a["checksum_ok"].get<bool>());
  EXPECT_EQ(t->length, a["length"].get<std::uint32_t>());
  EXPECT_EQ(t->revision, a["revision"].get<int>());
  EXPECT_EQ(t->oem_id, a["oem_id"]);
  EXPECT_EQ(t->oem_table_id, a["oem_table_id"]);
  EXPECT_EQ(t->cc_type, a["cc_type"].get<int>());
  EXPECT_EQ(t->cc_subtype, a["cc_subtype"].get<int>());
  EXPECT_EQ(t->log_area_minimum_length,
            std::stoull(a["log_area_minimum_length"].get<std::string>(), nullptr, 16));
  EXPECT_EQ(t->log_area_start_address,
            std::stoull(a["log_area_start_address"].get<std::string>(), nullptr, 16));
  Bytes bad = bytes;
  bad[40] ^= 1;
  EXPECT_EQ(parse_ccel_table(bad).error().message(), "CCEL table: checksum does not sum to zero");
  EXPECT_EQ(parse_ccel_table(ByteView(bytes).first(40)).error().message(),
            "CCEL table: expected 56 bytes, found 40");
}

// A log holds at most kMaxEvents events after its header: the vector's header followed by its
// first event kMaxEvents times parses, once more is refused naming the event.
TEST(TdxEventLog, AtMostTheEventLimitIsParsed) {
  CLOISTER_REQUIRE_TDX_FACTS();
  const Bytes bytes = tdx_vector("gtg/ccel_cos113_eventlog.bin");
  auto log = parse_cc_event_log(bytes);
  ASSERT_TRUE(log);
  ASSERT_GE(log->events.size(), 2u);
  const ByteView header = ByteView(bytes).first(log->events[0].offset);
  const ByteView event =
      ByteView(bytes).subspan(log->events[0].offset, log->events[1].offset - log->events[0].offset);
  Bytes many(header.begin(), header.end());
  for (std::size_t i = 0; i < kMaxEvents; ++i) many.insert(many.end(), event.begin(), event.end());
  auto at_limit = parse_cc_event_log(many);
  ASSERT_TRUE(at_limit) << at_limit.error().message();
  EXPECT_EQ(at_limit->events.size(), kMaxEvents);
  many.insert(many.end(), event.begin(), event.end());
  auto refused = parse_cc_event_log(many);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message(),
            "event 65537 (offset " + std::to_string(header.size() + kMaxEvents * event.size()) +
                "): a log holds at most 65536 events after its header");
}
}  // namespace
}  // namespace cloister::attestation::tdx
