// The guest-evidence client against a fake guest: evidence for each TEE, the guest's own error,
// and every way a hostile or broken guest (or VMM) can misbehave, each with its failure kind.
#include "cloister/sdk/guest_evidence.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fake_guest.h"

namespace cloister::sdk {
namespace {

using testing::evidence_frame;
using testing::evidence_stream;
using testing::FakeGuest;
using ::testing::HasSubstr;

constexpr std::uint32_t kSnpReport = CLOISTER_EVIDENCE_SNP_REPORT;
constexpr std::uint32_t kCertTable = CLOISTER_EVIDENCE_SNP_CERT_TABLE;
constexpr std::uint32_t kQuote = CLOISTER_EVIDENCE_TDX_QUOTE;
constexpr std::uint32_t kEventLog = CLOISTER_EVIDENCE_CC_EVENT_LOG;
constexpr std::uint32_t kError = CLOISTER_EVIDENCE_ERROR;
constexpr std::uint32_t kEnd = CLOISTER_EVIDENCE_END;

ReportData nonce() {
  ReportData r{};
  for (std::size_t i = 0; i < r.size(); ++i) r[i] = static_cast<std::uint8_t>(0xa0 + i);
  return r;
}

// An SNP report with REPORT_DATA at its offset 0x50, as the hardware places it.
Bytes report_for(const ReportData& report_data) {
  Bytes report(1184, 0x11);
  std::copy(report_data.begin(), report_data.end(), report.begin() + 0x50);
  return report;
}

struct Fetched {
  Result<GuestEvidence> evidence;
  EvidenceFailure failure;
  std::chrono::milliseconds took;
};

Fetched fetch(const std::filesystem::path& path,
              std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  EvidenceFailure failure = EvidenceFailure::kUnavailable;
  const auto start = std::chrono::steady_clock::now();
  auto evidence = fetch_guest_evidence(path, 9000, nonce(), start + timeout, &failure);
  return {std::move(evidence), failure,
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                start)};
}

// A guest that sends `stream` whatever the REPORT_DATA.
FakeGuest::Behavior sends(Bytes stream) {
  FakeGuest::Behavior b;
  b.stream = [stream](const ReportData&) { return stream; };
  return b;
}

void expect_failure(const Fetched& f, EvidenceFailure failure, const std::string& words) {
  ASSERT_FALSE(f.evidence.ok());
  EXPECT_EQ(f.failure, failure) << f.evidence.error().message();
  EXPECT_THAT(f.evidence.error().message(), HasSubstr(words));
}

TEST(GuestEvidence, FetchesSnpReportAndCertTableBoundToTheReportData) {
  FakeGuest::Behavior b;
  b.stream = [](const ReportData& rd) {
    Bytes stream = evidence_stream({{kSnpReport, report_for(rd)}, {kCertTable, Bytes(3000, 0x22)}});
    const Bytes end = evidence_frame(kEnd, 0, {});
    stream.insert(stream.end(), end.begin(), end.end());
    return stream;
  };
  FakeGuest guest(b);
  const Fetched f = fetch(guest.path());
  ASSERT_TRUE(f.evidence.ok()) << f.evidence.error().message();
  ASSERT_EQ(f.evidence->pieces.size(), 2u);
  EXPECT_EQ(f.evidence->pieces[0].kind, EvidenceKind::kSnpReport);
  EXPECT_EQ(f.evidence->pieces[0].bytes, report_for(nonce()));
  EXPECT_EQ(*f.evidence->find(EvidenceKind::kSnpCertTable), Bytes(3000, 0x22));
  EXPECT_EQ(f.evidence->find(EvidenceKind::kTdxQuote), nullptr);
  EXPECT_EQ(guest.connect_line(), "CONNECT 9000\n");
  EXPECT_EQ(guest.report_data(), nonce());
}

TEST(GuestEvidence, FetchesTdxQuoteAndEventLog) {
  Bytes stream =
      evidence_stream({{kQuote, Bytes(5000, 0x33)}, {kEventLog, Bytes(145, 0x44)}, {kEnd, {}}});
  FakeGuest guest(sends(stream));
  const Fetched f = fetch(guest.path());
  ASSERT_TRUE(f.evidence.ok()) << f.evidence.error().message();
  ASSERT_EQ(f.evidence->pieces.size(), 2u);
  EXPECT_EQ(to_string(f.evidence->pieces[0].kind), "tdx-quote");
  EXPECT_EQ(f.evidence->pieces[0].bytes, Bytes(5000, 0x33));
  EXPECT_EQ(to_string(f.evidence->pieces[1].kind), "cc-event-log");
  EXPECT_EQ(f.evidence->pieces[1].bytes, Bytes(145, 0x44));
}

TEST(GuestEvidence, ReportWithoutCertTableIsComplete) {
  FakeGuest guest(sends(evidence_stream({{kSnpReport, Bytes(1184, 1)}, {kEnd, {}}})));
  const Fetched f = fetch(guest.path());
  ASSERT_TRUE(f.evidence.ok()) << f.evidence.error().message();
  EXPECT_EQ(f.evidence->pieces.size(), 1u);
}

TEST(GuestEvidence, TheGuestsErrorIsQuotedWithControlCharactersReplaced) {
  const std::string text = "GetQuote status 0x8000000000000001\x1b[2J";
  FakeGuest guest(sends(evidence_stream({{kError, Bytes(text.begin(), text.end())}, {kEnd, {}}})));
  const Fetched f = fetch(guest.path());
  expect_failure(f, EvidenceFailure::kGuestFailed,
                 "the guest reported no evidence: \"GetQuote status 0x8000000000000001?[2J\"");
}

TEST(GuestEvidence, OversizedFramesAreRefusedFromTheirHeaderAlone) {
  // Each guest sends only a frame header announcing more than the limit and keeps the
  // connection open: the client must fail at once, not wait for the bytes.
  const std::vector<std::tuple<std::uint32_t, std::uint32_t, std::string>> cases = {
      {kCertTable, 64 * 1024 + 1,
       "frame 1 at offset 0x4b0 (snp-cert-table): length 65537 "
       "exceeds the limit of 65536 bytes"},
      {kEventLog, 0xffffffff, "(cc-event-log): length 4294967295 exceeds the limit of 65536"},
      {kError, 1025, "(ERROR): length 1025 exceeds the limit of 1024 bytes"},
  };
  for (const auto& [kind, length, words] : cases) {
    const std::uint32_t first = kind == kEventLog ? kQuote : kSnpReport;
    Bytes stream =
        kind == kError ? evidence_stream({}) : evidence_stream({{first, Bytes(1184, 0)}});
    const Bytes header = evidence_frame(kind, length, {});
    stream.insert(stream.end(), header.begin(), header.end());
    FakeGuest::Behavior b = sends(stream);
    b.hold_open = true;
    FakeGuest guest(b);
    const Fetched f = fetch(guest.path(), std::chrono::seconds(20));
    expect_failure(f, EvidenceFailure::kLimitExceeded, words);
    EXPECT_LT(f.took, std::chrono::seconds(5));
  }
}

TEST(GuestEvidence, SnpReportMustBeExactly1184Bytes) {
  FakeGuest shorter(sends(evidence_stream({{kSnpReport, Bytes(1183, 0)}, {kEnd, {}}})));
  expect_failure(fetch(shorter.path()), EvidenceFailure::kMalformed,
                 "(snp-report): length 1183, expected exactly 1184 bytes");
  FakeGuest longer(sends(evidence_stream({{kSnpReport, Bytes(1185, 0)}, {kEnd, {}}})));
  expect_failure(fetch(longer.path()), EvidenceFailure::kLimitExceeded,
                 "(snp-report): length 1185 exceeds the limit of 1184 bytes");
}

TEST(GuestEvidence, TruncatedStreamsNameWhereTheyEnded) {
  Bytes inside = evidence_stream({{kSnpReport, Bytes(1184, 0)}});
  const Bytes partial = evidence_frame(kCertTable, 100, Bytes(40, 0));
  inside.insert(inside.end(), partial.begin(), partial.end());
  FakeGuest g1(sends(inside));
  expect_failure(fetch(g1.path()), EvidenceFailure::kMalformed,
                 "the stream ended after 1248 bytes, inside frame 1 (snp-cert-table), 60 of its "
                 "bytes missing");
  FakeGuest g2(sends(evidence_stream({{kQuote, Bytes(10, 0)}})));
  expect_failure(fetch(g2.path()), EvidenceFailure::kMalformed,
                 "the stream ended after 26 bytes, before the END frame");
  FakeGuest g3(sends(Bytes{0x43, 0x4c, 0x45}));
  expect_failure(fetch(g3.path()), EvidenceFailure::kMalformed,
                 "the stream ended after 3 bytes, inside the stream header");
}

TEST(GuestEvidence, FramesOutOfGrammarAreRefused) {
  const std::vector<std::pair<std::vector<std::pair<std::uint32_t, Bytes>>, std::string>> cases = {
      {{{kCertTable, Bytes(10, 0)}}, "frame 0 at offset 0x8 (snp-cert-table): not allowed first"},
      {{{kEnd, {}}}, "frame 0 at offset 0x8 (END): not allowed first"},
      {{{kSnpReport, Bytes(1184, 0)}, {kSnpReport, Bytes(1184, 0)}},
       "(snp-report): not allowed after snp-report"},
      {{{kSnpReport, Bytes(1184, 0)}, {kQuote, Bytes(10, 0)}},
       "(tdx-quote): not allowed after snp-report"},
      {{{kQuote, Bytes(10, 0)}, {kEventLog, Bytes(10, 0)}, {kEventLog, Bytes(10, 0)}},
       "frame 2 at offset 0x2c (cc-event-log): not allowed after cc-event-log"},
      {{{kQuote, Bytes(10, 0)}, {kError, Bytes(10, 0)}}, "(ERROR): not allowed after tdx-quote"},
      {{{7, Bytes(10, 0)}}, "(unknown kind 7): not allowed first"},
  };
  for (const auto& [frames, words] : cases) {
    FakeGuest guest(sends(evidence_stream(frames)));
    expect_failure(fetch(guest.path()), EvidenceFailure::kMalformed, words);
  }
}

TEST(GuestEvidence, EndWithALengthAndBytesAfterEndAreRefused) {
  Bytes with_length = evidence_stream({{kQuote, Bytes(10, 0)}});
  const Bytes end = evidence_frame(kEnd, 4, Bytes(4, 0));
  with_length.insert(with_length.end(), end.begin(), end.end());
  auto parsed = parse_guest_evidence(with_length);
  ASSERT_FALSE(parsed.ok());
  EXPECT_THAT(parsed.error().message(), HasSubstr("(END): length 4 exceeds the limit of 0 bytes"));

  Bytes after = evidence_stream({{kQuote, Bytes(10, 0)}, {kEnd, {}}});
  after.push_back(0);
  EvidenceFailure failure = EvidenceFailure::kUnavailable;
  parsed = parse_guest_evidence(after, &failure);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(failure, EvidenceFailure::kMalformed);
  EXPECT_THAT(parsed.error().message(), HasSubstr("1 bytes after the END frame at offset 0x1a"));
}

TEST(GuestEvidence, WrongMagicOrVersionIsNotTheProtocol) {
  FakeGuest echo(sends(Bytes{'e', 'c', 'h', 'o', ':', ' ', 0xa0, 0xa1, 0xa2}));
  expect_failure(fetch(echo.path()), EvidenceFailure::kMalformed,
                 "magic 0x6f686365, expected 0x56454c43 (\"CLEV\"): not a guest-evidence stream");
  Bytes v2 = evidence_stream({});
  v2[4] = 2;
  FakeGuest newer(sends(v2));
  expect_failure(fetch(newer.path()), EvidenceFailure::kMalformed,
                 "version 2, this client speaks version 1");
}

TEST(GuestEvidence, ParsingByteByByteEqualsParsingAtOnce) {
  const Bytes stream =
      evidence_stream({{kSnpReport, report_for(nonce())}, {kCertTable, Bytes(777, 5)}, {kEnd, {}}});
  GuestEvidenceParser parser;
  for (std::uint8_t b : stream) {
    ASSERT_FALSE(parser.done());
    ASSERT_TRUE(parser.feed(ByteView(&b, 1)).ok());
  }
  ASSERT_TRUE(parser.done());
  EXPECT_EQ(parser.offset(), stream.size());
  const GuestEvidence one = std::move(parser).take();
  auto all = parse_guest_evidence(stream);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(one.pieces.size(), all->pieces.size());
  for (std::size_t i = 0; i < one.pieces.size(); ++i) {
    EXPECT_EQ(one.pieces[i].kind, all->pieces[i].kind);
    EXPECT_EQ(one.pieces[i].bytes, all->pieces[i].bytes);
  }
}

TEST(GuestEvidence, AFailedParserStaysFailed) {
  GuestEvidenceParser parser;
  const Bytes bad = {1, 2, 3, 4, 5, 6, 7, 8};
  const Status first = parser.feed(bad);
  ASSERT_FALSE(first.ok());
  const Status again = parser.feed(evidence_stream({{kQuote, Bytes(1, 0)}, {kEnd, {}}}));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().message(), first.error().message());
  EXPECT_FALSE(parser.done());
}

TEST(GuestEvidence, NoGuestOnThePortIsUnavailable) {
  FakeGuest::Behavior b;
  b.answer = "";  // the VMM closes: nothing accepted the port
  FakeGuest guest(b);
  expect_failure(fetch(guest.path()), EvidenceFailure::kUnavailable,
                 "the VMM closed the connection without accepting guest port 9000: is the guest "
                 "listening there (attest_port=9000)?");
  expect_failure(fetch("/nonexistent/cloister.vsock"), EvidenceFailure::kUnavailable,
                 "cannot connect to the VMM's vsock socket /nonexistent/cloister.vsock: No such "
                 "file or directory");
  expect_failure(fetch(std::string(200, 'x')), EvidenceFailure::kUnavailable,
                 "200 bytes is too long for a UNIX socket path (at most 107)");
}

TEST(GuestEvidence, AnAnswerOtherThanOkIsMalformed) {
  FakeGuest::Behavior b;
  b.answer = "ERR no such port\n";
  FakeGuest guest(b);
  expect_failure(fetch(guest.path()), EvidenceFailure::kMalformed,
                 "the VMM's answer to CONNECT 9000: expected \"OK <port>\", found \"ERR no such "
                 "port?\"");
}

TEST(GuestEvidence, ASilentGuestEndsAtTheDeadline) {
  FakeGuest::Behavior b = sends(evidence_stream({}));
  b.hold_open = true;
  FakeGuest guest(b);
  const Fetched f = fetch(guest.path(), std::chrono::milliseconds(300));
  expect_failure(f, EvidenceFailure::kDeadlineExceeded,
                 "the deadline passed while waiting for the guest's evidence");
  EXPECT_GE(f.took, std::chrono::milliseconds(300));
  EXPECT_LT(f.took, std::chrono::seconds(3));
}

}  // namespace
}  // namespace cloister::sdk
