// The guest's TDX attestation against a fake TDX module behind the TDCALL doorbell: the command
// line's RTMR2 measurement and its CC event log (parsed and replayed by the attestation
// library), TDG.MR.REPORT, and GetQuote with its status polling and failures.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <string>

#include "cloister/attestation/tdx/event_log.h"
#include "cloister/common/bytes.h"
#include "cloister/common/sha.h"
#include "fake_platform.h"

extern "C" {
#include "tdx_attest.h"
}

namespace cloister::testing {
namespace {

using ::testing::HasSubstr;
namespace att = attestation::tdx;

constexpr std::uint64_t kTdcall = 0x2b000, kTdreport = 0x2c000, kDigest = 0x2c400,
                        kReportData = 0x2c440, kQuote = 0x2d000, kEventLog = 0x35000;
constexpr std::uint32_t kQuoteCapacity = 0x8000;

std::uint64_t get(const std::uint8_t* p, int n) {
  std::uint64_t v = 0;
  for (int i = n; i-- > 0;) v = (v << 8) | p[i];
  return v;
}
void put(std::uint8_t* p, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

// The simulated TDX module and the VMM's quote service, one behaviour per test.
struct FakeTdxModule {
  std::array<Bytes, 4> rtmr;
  int in_flight_polls = 0;  // GetQuote stays IN_FLIGHT for this many pauses
  std::uint64_t quote_status = CLOISTER_GET_QUOTE_SUCCESS;
  std::int64_t out_len_skew = 0;
  std::uint64_t fail_leaf = ~0ull;  // this leaf returns TDX_OPERAND_INVALID
  std::uint64_t vmcall_status = CLOISTER_TDVMCALL_SUCCESS;
  bool absent = false;

  std::vector<cloister_sim_tdcall> calls;
  Bytes quote;
  std::uint8_t* pending = nullptr;  // the quote buffer while IN_FLIGHT
  int pauses = 0;

  FakeTdxModule() { rtmr.fill(Bytes(48, 0)); }

  void doorbell(FakeGuestRam& ram, std::uint16_t port, std::uint32_t value) {
    ASSERT_EQ(port, CLOISTER_SIM_TDX_DOORBELL);
    auto* call = reinterpret_cast<cloister_sim_tdcall*>(ram.at(std::uint64_t{value} << 12));
    calls.push_back(*call);
    if (absent) return;
    if (call->rax == fail_leaf) {
      call->rax = CLOISTER_TDX_OPERAND_INVALID;
      return;
    }
    switch (call->rax) {
      case CLOISTER_TDCALL_MR_RTMR_EXTEND: {
        ASSERT_EQ(call->rcx % 64, 0u);
        ASSERT_LT(call->rdx, 4u);
        Bytes in = rtmr[call->rdx];
        in.insert(in.end(), ram.at(call->rcx), ram.at(call->rcx) + 48);
        const auto d = sha384(in);
        rtmr[call->rdx].assign(d.begin(), d.end());
        break;
      }
      case CLOISTER_TDCALL_MR_REPORT: {
        ASSERT_EQ(call->rcx % 1024, 0u);
        ASSERT_EQ(call->rdx % 64, 0u);
        std::uint8_t* report = ram.at(call->rcx);
        std::memset(report, 0x5a, 1024);
        std::memcpy(report + 128, ram.at(call->rdx), 64);  // REPORTMACSTRUCT.REPORTDATA
        for (int i = 0; i < 4; ++i) std::memcpy(report + 720 + 48 * i, rtmr[i].data(), 48);
        break;
      }
      case CLOISTER_TDCALL_VP_VMCALL: {
        ASSERT_EQ(call->r11, CLOISTER_TDVMCALL_GET_QUOTE);
        ASSERT_EQ(call->r12 % 4096, 0u);
        std::uint8_t* buf = ram.at(call->r12);
        ASSERT_EQ(get(buf, 8), 1u);          // version
        ASSERT_EQ(get(buf + 16, 4), 1024u);  // in_len
        quote.assign({'Q', 'U', 'O', 'T', 'E'});
        quote.insert(quote.end(), buf + 24, buf + 24 + 1024);
        call->r10 = vmcall_status;
        pending = buf;
        if (in_flight_polls > 0) {
          put(buf + 8, CLOISTER_GET_QUOTE_IN_FLIGHT, 8);
        } else {
          complete();
        }
        break;
      }
      default:
        FAIL() << "unexpected leaf " << call->rax;
    }
    call->rax = CLOISTER_TDX_SUCCESS;
  }

  void complete() {
    std::memcpy(pending + 24, quote.data(), quote.size());
    put(pending + 20,
        static_cast<std::uint64_t>(static_cast<std::int64_t>(quote.size()) + out_len_skew), 4);
    put(pending + 8, quote_status, 8);
  }

  void pause() {
    ++pauses;
    if (pending && in_flight_polls > 0 && --in_flight_polls == 0) complete();
  }
};

class TdxAttest : public ::testing::Test {
 protected:
  TdxAttest()
      : ram_([this](std::uint16_t port, std::uint32_t v) { module_.doorbell(ram_, port, v); },
             [this] { module_.pause(); }) {
    pages_ = {reinterpret_cast<cloister_sim_tdcall*>(ram_.at(kTdcall)),
              ram_.at(kDigest),
              ram_.at(kReportData),
              ram_.at(kTdreport),
              ram_.at(kQuote),
              kQuoteCapacity};
    for (int i = 0; i < 64; ++i) report_data_[i] = static_cast<std::uint8_t>(0x70 + i);
  }

  int measure(const std::string& cmdline, std::uint32_t log_capacity = 4096) {
    error_ = {};
    if (cc_event_log_init(&log_, ram_.at(kEventLog), log_capacity, &error_) != 0) return -1;
    return tdx_measure_cmdline(&pages_, cmdline.data(), static_cast<std::uint32_t>(cmdline.size()),
                               &log_, &error_);
  }
  int quote(std::uint32_t* size) {
    error_ = {};
    return tdx_get_quote(&pages_, report_data_, size, &error_);
  }
  ByteView log() { return ByteView(log_.buf, log_.size); }
  std::string error() const { return error_.text; }

  FakeTdxModule module_;
  FakeGuestRam ram_;
  tdx_pages pages_{};
  cc_event_log log_{};
  std::uint8_t report_data_[64];
  tee_error error_{};
};

TEST_F(TdxAttest, TheCommandLineGoesIntoRtmr2AndTheLogReplaysToIt) {
  const std::string cmdline = "attest=tdx attest_port=9000";
  ASSERT_EQ(measure(cmdline), 0) << error();
  ASSERT_EQ(module_.calls.size(), 1u);
  EXPECT_EQ(module_.calls[0].rax, static_cast<std::uint64_t>(CLOISTER_TDCALL_MR_RTMR_EXTEND));
  EXPECT_EQ(module_.calls[0].rdx, 2u);
  EXPECT_EQ(module_.calls[0].rcx, kDigest);

  auto parsed = att::parse_cc_event_log(log());
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  EXPECT_EQ(parsed->spec_id.mr_index, 1u);
  EXPECT_EQ(parsed->spec_id.spec_version_major, 2);
  EXPECT_EQ(parsed->spec_id.uintn_size, 2);
  ASSERT_EQ(parsed->spec_id.algorithms.size(), 1u);
  EXPECT_EQ(parsed->spec_id.algorithms[0].id, att::kTpmAlgSha384);
  EXPECT_EQ(parsed->spec_id.algorithms[0].digest_size, 48);
  EXPECT_EQ(parsed->bytes_used, log_.size);
  ASSERT_EQ(parsed->events.size(), 1u);
  const att::CcEvent& e = parsed->events[0];
  EXPECT_EQ(e.mr_index, 3u);  // RTMR2
  EXPECT_EQ(e.rtmr(), 2u);
  EXPECT_EQ(e.type, att::event_type::kEventTag);
  const auto digest = sha384(as_bytes(cmdline));
  EXPECT_EQ(e.sha384, Bytes(digest.begin(), digest.end()));
  // TCG_PCClientTaggedEvent{LOAD_OPTIONS_EVENT_TAG_ID, 26, "LOADED_IMAGE::LoadOptions\0"}.
  const std::string tagged =
      std::string("\xed\x22\x3b\x8f\x1a\0\0\0", 8) + "LOADED_IMAGE::LoadOptions" + '\0';
  EXPECT_EQ(e.data, Bytes(tagged.begin(), tagged.end()));

  const att::RtmrReplay replay = att::replay_rtmrs(*parsed);
  EXPECT_EQ(Bytes(replay.rtmr[2].begin(), replay.rtmr[2].end()), module_.rtmr[2]);
  EXPECT_EQ(replay.events[2], 1u);
  EXPECT_EQ(module_.rtmr[0], Bytes(48, 0));
}

TEST_F(TdxAttest, TheQuoteComesFromATdreportWithTheReportData) {
  std::uint32_t size = 0;
  ASSERT_EQ(quote(&size), 0) << error();
  ASSERT_EQ(module_.calls.size(), 2u);
  const cloister_sim_tdcall& report = module_.calls[0];
  EXPECT_EQ(report.rax, static_cast<std::uint64_t>(CLOISTER_TDCALL_MR_REPORT));
  EXPECT_EQ(report.rcx, kTdreport);
  EXPECT_EQ(report.rdx, kReportData);
  EXPECT_EQ(report.r8, 0u);
  const cloister_sim_tdcall& vmcall = module_.calls[1];
  EXPECT_EQ(vmcall.rax, static_cast<std::uint64_t>(CLOISTER_TDCALL_VP_VMCALL));
  EXPECT_EQ(vmcall.rcx, 0xfc00u);
  EXPECT_EQ(vmcall.r10, 0u);
  EXPECT_EQ(vmcall.r12, kQuote);
  EXPECT_EQ(vmcall.r13, kQuoteCapacity);
  ASSERT_EQ(size, 5u + 1024u);
  const std::uint8_t* q = ram_.at(kQuote) + CLOISTER_QUOTE_BUFFER_HEADER_SIZE;
  EXPECT_EQ(Bytes(q, q + size), module_.quote);
  EXPECT_EQ(Bytes(q + 5 + 128, q + 5 + 192), Bytes(report_data_, report_data_ + 64));
}

TEST_F(TdxAttest, AQuoteInFlightIsPolledUntilDoneOrTheBound) {
  module_.in_flight_polls = 5;
  std::uint32_t size = 0;
  ASSERT_EQ(quote(&size), 0) << error();
  EXPECT_EQ(module_.pauses, 5);

  module_ = FakeTdxModule();
  module_.in_flight_polls = TDX_QUOTE_POLLS + 1;
  ASSERT_EQ(quote(&size), -1);
  EXPECT_EQ(error(), "GetQuote status 0xffffffffffffffff (still IN_FLIGHT)");
  EXPECT_EQ(module_.pauses, TDX_QUOTE_POLLS);
}

TEST_F(TdxAttest, QuoteFailuresAreReported) {
  const std::vector<std::pair<std::function<void(FakeTdxModule&)>, std::string>> cases = {
      {[](FakeTdxModule& m) { m.quote_status = CLOISTER_GET_QUOTE_SERVICE_UNAVAILABLE; },
       "GetQuote status 0x8000000000000001 (SERVICE_UNAVAILABLE)"},
      {[](FakeTdxModule& m) { m.quote_status = CLOISTER_GET_QUOTE_ERROR; },
       "GetQuote status 0x8000000000000000 (ERROR)"},
      {[](FakeTdxModule& m) { m.out_len_skew = -1029; }, "GetQuote out_len 0, expected 1..32744"},
      {[](FakeTdxModule& m) { m.out_len_skew = 32744; },
       "GetQuote out_len 33773, expected 1..32744"},
      {[](FakeTdxModule& m) { m.vmcall_status = CLOISTER_TDVMCALL_INVALID_OPERAND; },
       "TDG.VP.VMCALL<GetQuote> failed: R10 0x8000000000000000 (TDG.VP.VMCALL_INVALID_OPERAND)"},
      {[](FakeTdxModule& m) { m.fail_leaf = CLOISTER_TDCALL_MR_REPORT; },
       "TDG.MR.REPORT failed: RAX 0xc000010000000000 (TDX_OPERAND_INVALID)"},
  };
  for (const auto& [mutate, words] : cases) {
    module_ = FakeTdxModule();
    mutate(module_);
    std::uint32_t size = 0;
    EXPECT_EQ(quote(&size), -1) << words;
    EXPECT_EQ(error(), words);
  }
}

TEST_F(TdxAttest, WithoutTheSimulatorTheFirstTdcallFails) {
  module_.absent = true;
  ASSERT_EQ(measure("attest=tdx"), -1);
  EXPECT_EQ(error(),
            "TDG.MR.RTMR.EXTEND failed: RAX 0x2 (unchanged: is the VM running with --tee "
            "sim-tdx?)");
  EXPECT_EQ(log_.size, 65u);  // the Spec ID header only: nothing logged that was not extended
}

TEST_F(TdxAttest, AFullEventLogIsAnError) {
  ASSERT_EQ(measure("x", 64), -1);
  EXPECT_EQ(error(), "the CC event log needs 65 bytes, it has 64");
  ASSERT_EQ(measure(std::string(100, 'x'), 100), -1);
  EXPECT_EQ(error(), "the CC event log needs 165 bytes, it has 100");
}

}  // namespace
}  // namespace cloister::testing
