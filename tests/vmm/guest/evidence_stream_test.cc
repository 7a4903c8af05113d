// The guest's side of the guest-evidence protocol (evidence_stream.c), read back with the SDK's
// parser: what the guest writes is what the host client accepts.
#include <gtest/gtest.h>

#include <string>

#include "cloister/sdk/guest_evidence.h"

extern "C" {
#include "evidence_stream.h"
}

namespace cloister::testing {
namespace {

const char* append(void* ctx, const void* data, std::uint32_t len) {
  auto* out = static_cast<Bytes*>(ctx);
  const auto* p = static_cast<const std::uint8_t*>(data);
  out->insert(out->end(), p, p + len);
  return nullptr;
}

TEST(GuestEvidenceStream, TheSdkParsesWhatTheGuestSends) {
  const Bytes report(1184, 0x11), table(2072, 0x22);
  const evidence_frame frames[] = {{CLOISTER_EVIDENCE_SNP_REPORT, report.data(), 1184},
                                   {CLOISTER_EVIDENCE_SNP_CERT_TABLE, table.data(), 2072}};
  Bytes stream;
  ASSERT_EQ(evidence_send(append, &stream, frames, 2), nullptr);
  EXPECT_EQ(stream.size(), 8u + 8 + 1184 + 8 + 2072 + 8);
  auto parsed = sdk::parse_guest_evidence(stream);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  ASSERT_EQ(parsed->pieces.size(), 2u);
  EXPECT_EQ(*parsed->find(sdk::EvidenceKind::kSnpReport), report);
  EXPECT_EQ(*parsed->find(sdk::EvidenceKind::kSnpCertTable), table);
}

TEST(GuestEvidenceStream, AnErrorFrameReachesTheHostAsTheGuestsWords) {
  const std::string text = "GetQuote status 0x8000000000000001 (SERVICE_UNAVAILABLE)";
  const evidence_frame frame = {CLOISTER_EVIDENCE_ERROR, text.data(),
                                static_cast<std::uint32_t>(text.size())};
  Bytes stream;
  ASSERT_EQ(evidence_send(append, &stream, &frame, 1), nullptr);
  sdk::EvidenceFailure failure = sdk::EvidenceFailure::kMalformed;
  auto parsed = sdk::parse_guest_evidence(stream, &failure);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(failure, sdk::EvidenceFailure::kGuestFailed);
  EXPECT_EQ(parsed.error().message(),
            "guest evidence stream: the guest reported no evidence: \"" + text + "\"");
}

TEST(GuestEvidenceStream, TheFirstWriteErrorStopsTheStream) {
  int calls = 0;
  const auto failing = [](void* ctx, const void*, std::uint32_t) -> const char* {
    return ++*static_cast<int*>(ctx) == 2 ? "the host closed the connection" : nullptr;
  };
  const std::uint8_t quote[4] = {1, 2, 3, 4};
  const evidence_frame frames[] = {{CLOISTER_EVIDENCE_TDX_QUOTE, quote, 4},
                                   {CLOISTER_EVIDENCE_CC_EVENT_LOG, quote, 4}};
  EXPECT_STREQ(evidence_send(failing, &calls, frames, 2), "the host closed the connection");
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace cloister::testing
