// The guest's SEV-SNP extended guest request against a fake PSP behind the GHCB doorbell, which
// decrypts and encrypts with OpenSSL: message format, sequence numbers, GHCB fields, the
// INVALID_LEN / BUSY / firmware-error paths and every check on the response.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <optional>
#include <vector>

#include "cloister/common/bytes.h"
#include "fake_platform.h"

extern "C" {
#include "snp_attest.h"
}

namespace cloister::testing {
namespace {

using ::testing::HasSubstr;

constexpr std::uint64_t kSecrets = 0x14000, kGhcb = 0x20000, kRequest = 0x21000,
                        kResponse = 0x22000, kCerts = 0x23000;
constexpr std::uint32_t kCertPagesMax = 8;

std::uint64_t get(const std::uint8_t* p, int n) {
  std::uint64_t v = 0;
  for (int i = n; i-- > 0;) v = (v << 8) | p[i];
  return v;
}
void put(std::uint8_t* p, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

// AES-256-GCM with the snp_guest_msg IV (the u64 sequence number, then zeros), OpenSSL's.
bool gcm(bool encrypt, const std::uint8_t* key, std::uint64_t seqno, const std::uint8_t* aad,
         std::uint8_t* data, std::size_t len, std::uint8_t* tag) {
  std::uint8_t iv[12] = {};
  put(iv, seqno, 8);
  EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
  int n = 0;
  bool ok = EVP_CipherInit_ex(c, EVP_aes_256_gcm(), nullptr, key, iv, encrypt ? 1 : 0) == 1 &&
            EVP_CipherUpdate(c, nullptr, &n, aad, 48) == 1 &&
            EVP_CipherUpdate(c, data, &n, data, static_cast<int>(len)) == 1;
  if (ok && !encrypt) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1;
  ok = ok && EVP_CipherFinal_ex(c, data + n, &n) == 1;
  if (ok && encrypt) ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
  EVP_CIPHER_CTX_free(c);
  return ok;
}

// The PSP and KVM as the guest sees them through the GHCB: one behaviour per test.
struct FakePsp {
  std::uint8_t vmpck[32];
  std::uint32_t cert_pages_needed = 2;
  int busy = 0;  // answer BUSY this many times first
  std::uint32_t firmware_error = 0;
  std::uint32_t report_status = 0;
  std::uint32_t report_size = 1184;
  std::int64_t seqno_skew = 0;  // added to the response's sequence number
  std::uint8_t response_type = 6;
  bool corrupt_tag = false;
  bool absent = false;              // no hypervisor: the doorbell does nothing
  std::optional<Bytes> cert_table;  // written instead of the VCEK/ASK table

  // What the guest sent, per doorbell.
  std::vector<Bytes> ghcbs;
  std::vector<Bytes> requests;
  std::vector<std::uint64_t> request_seqnos;
  Bytes report_data;
  std::uint32_t vmpl = 0xff;
  int pauses = 0;

  FakePsp() {
    for (int i = 0; i < 32; ++i) vmpck[i] = static_cast<std::uint8_t>(0x40 + i);
  }

  void doorbell(FakeGuestRam& ram, std::uint16_t port, std::uint32_t value) {
    ASSERT_EQ(port, CLOISTER_SIM_SNP_DOORBELL);
    std::uint8_t* g = ram.at(std::uint64_t{value} << 12);
    ghcbs.emplace_back(g, g + 4096);
    requests.emplace_back(ram.at(kRequest), ram.at(kRequest) + 4096);
    if (absent) return;
    std::uint64_t status = 0;
    if (busy > 0) {
      --busy;
      status = std::uint64_t{CLOISTER_SNP_VMM_ERR_BUSY} << 32;
    } else if (get(g + CLOISTER_GHCB_RBX, 8) < cert_pages_needed) {
      put(g + CLOISTER_GHCB_RBX, cert_pages_needed, 8);
      status = std::uint64_t{CLOISTER_SNP_VMM_ERR_INVALID_LEN} << 32;
    } else if (firmware_error != 0) {
      status = firmware_error;
    } else {
      answer(ram, g);
    }
    put(g + CLOISTER_GHCB_SW_EXIT_INFO_1, 0, 8);  // "no action"
    put(g + CLOISTER_GHCB_SW_EXIT_INFO_2, status, 8);
  }

  void answer(FakeGuestRam& ram, const std::uint8_t* g) {
    std::uint8_t* req = ram.at(get(g + CLOISTER_GHCB_SW_EXIT_INFO_1, 8));
    std::uint8_t* rsp = ram.at(get(g + CLOISTER_GHCB_SW_EXIT_INFO_2, 8));
    const std::uint64_t seqno = get(req + CLOISTER_SNP_MSG_SEQNO, 8);
    request_seqnos.push_back(seqno);
    Bytes payload(req + 0x60, req + 0x60 + get(req + CLOISTER_SNP_MSG_SIZE, 2));
    ASSERT_TRUE(gcm(false, vmpck, seqno, req + 0x30, payload.data(), payload.size(), req));
    report_data.assign(payload.begin(), payload.begin() + 64);
    vmpl = static_cast<std::uint32_t>(get(payload.data() + 64, 4));

    std::memset(rsp, 0, 4096);
    const std::uint64_t rsp_seqno = seqno + 1 + static_cast<std::uint64_t>(seqno_skew);
    put(rsp + CLOISTER_SNP_MSG_SEQNO, rsp_seqno, 8);
    rsp[CLOISTER_SNP_MSG_ALGO] = 1;
    rsp[CLOISTER_SNP_MSG_HDR_VERSION] = 1;
    put(rsp + CLOISTER_SNP_MSG_HDR_SIZE, 0x60, 2);
    rsp[CLOISTER_SNP_MSG_TYPE] = response_type;
    rsp[CLOISTER_SNP_MSG_VERSION] = 1;
    put(rsp + CLOISTER_SNP_MSG_SIZE, CLOISTER_SNP_REPORT_RSP_SIZE, 2);
    std::uint8_t* body = rsp + 0x60;
    put(body, report_status, 4);
    put(body + 4, report_size, 4);
    std::uint8_t* report = body + 0x20;
    put(report, 5, 4);  // version
    put(report + 0x30, vmpl, 4);
    std::memcpy(report + 0x50, report_data.data(), 64);
    ASSERT_TRUE(gcm(true, vmpck, rsp_seqno, rsp + 0x30, body, CLOISTER_SNP_REPORT_RSP_SIZE, rsp));
    if (corrupt_tag) rsp[0] ^= 1;

    // A certificate table: VCEK and ASK entries, the terminator, then their data.
    std::uint8_t* certs = ram.at(get(g + CLOISTER_GHCB_RAX, 8));
    if (cert_table) {
      std::memcpy(certs, cert_table->data(), cert_table->size());
      return;
    }
    for (int e = 0; e < 2; ++e) {
      std::memset(certs + 24 * e, 0x10 + e, 16);
      put(certs + 24 * e + 16, 72 + 1000 * e, 4);
      put(certs + 24 * e + 20, 1000, 4);
      std::memset(certs + 72 + 1000 * e, 0x30 + e, 1000);
    }
  }
};

class SnpAttest : public ::testing::Test {
 protected:
  SnpAttest()
      : ram_([this](std::uint16_t port, std::uint32_t v) { psp_.doorbell(ram_, port, v); },
             [this] { ++psp_.pauses; }) {
    std::memcpy(ram_.at(kSecrets) + CLOISTER_SNP_SECRETS_VMPCK0, psp_.vmpck, 32);
    pages_ = {ram_.at(kSecrets),  ram_.at(kGhcb),  ram_.at(kRequest),
              ram_.at(kResponse), ram_.at(kCerts), kCertPagesMax};
    for (int i = 0; i < 64; ++i) report_data_[i] = static_cast<std::uint8_t>(0xc0 + i);
  }

  int request() {
    error_ = {};
    return snp_get_extended_report(&pages_, report_data_, &evidence_, &error_);
  }
  std::uint32_t msg_seqno_0() {
    return static_cast<std::uint32_t>(get(ram_.at(kSecrets) + 0xa0, 4));
  }
  bool vmpck_cleared() {
    const std::uint8_t* k = ram_.at(kSecrets) + CLOISTER_SNP_SECRETS_VMPCK0;
    return std::all_of(k, k + 32, [](std::uint8_t b) { return b == 0; });
  }
  std::string error() const { return error_.text; }

  FakePsp psp_;
  FakeGuestRam ram_;
  snp_request_pages pages_{};
  std::uint8_t report_data_[64];
  snp_evidence evidence_{};
  tee_error error_{};
};

TEST_F(SnpAttest, ReportCarriesTheReportDataAtVmpl0AndTheCertificateTable) {
  ASSERT_EQ(request(), 0) << error();
  EXPECT_EQ(psp_.report_data, Bytes(report_data_, report_data_ + 64));
  EXPECT_EQ(psp_.vmpl, 0u);
  EXPECT_EQ(Bytes(evidence_.report + 0x50, evidence_.report + 0x50 + 64), psp_.report_data);
  EXPECT_EQ(get(evidence_.report, 4), 5u);
  // Two entries, the terminator, and data up to 72 + 2000.
  EXPECT_EQ(evidence_.cert_table_size, 2072u);
}

TEST_F(SnpAttest, SequenceNumbersFollowLinux) {
  ASSERT_EQ(request(), 0) << error();
  EXPECT_EQ(psp_.request_seqnos, (std::vector<std::uint64_t>{1}));
  EXPECT_EQ(msg_seqno_0(), 2u);
  ASSERT_EQ(request(), 0) << error();
  EXPECT_EQ(psp_.request_seqnos, (std::vector<std::uint64_t>{1, 3}));
  EXPECT_EQ(msg_seqno_0(), 4u);
}

TEST_F(SnpAttest, TheGhcbHoldsAnExtendedGuestRequest) {
  ASSERT_EQ(request(), 0) << error();
  ASSERT_EQ(psp_.ghcbs.size(), 1u);
  const std::uint8_t* g = psp_.ghcbs[0].data();
  EXPECT_EQ(get(g + CLOISTER_GHCB_SW_EXIT_CODE, 8), 0x80000012u);
  EXPECT_EQ(get(g + CLOISTER_GHCB_SW_EXIT_INFO_1, 8), kRequest);
  EXPECT_EQ(get(g + CLOISTER_GHCB_SW_EXIT_INFO_2, 8), kResponse);
  EXPECT_EQ(get(g + CLOISTER_GHCB_RAX, 8), kCerts);
  EXPECT_EQ(get(g + CLOISTER_GHCB_RBX, 8), 4u);  // SNP_CERT_PAGES_FIRST
  EXPECT_EQ(get(g + CLOISTER_GHCB_PROTOCOL_VERSION, 2), 2u);
  EXPECT_EQ(get(g + CLOISTER_GHCB_USAGE, 4), 0u);
  // Valid bits 63 (RAX), 99 (RBX), 114-116 (SW_EXITCODE, SW_EXITINFO1/2) and nothing else.
  Bytes expected(16, 0);
  for (int bit : {63, 99, 114, 115, 116})
    expected[bit / 8] |= static_cast<std::uint8_t>(1 << (bit % 8));
  EXPECT_EQ(Bytes(g + CLOISTER_GHCB_VALID_BITMAP, g + CLOISTER_GHCB_VALID_BITMAP + 16), expected);
  // The request header (SNP ABI "Message Header Format").
  const std::uint8_t* m = psp_.requests[0].data();
  EXPECT_EQ(get(m + CLOISTER_SNP_MSG_SEQNO, 8), 1u);
  EXPECT_EQ(m[CLOISTER_SNP_MSG_ALGO], 1);
  EXPECT_EQ(m[CLOISTER_SNP_MSG_HDR_VERSION], 1);
  EXPECT_EQ(get(m + CLOISTER_SNP_MSG_HDR_SIZE, 2), 0x60u);
  EXPECT_EQ(m[CLOISTER_SNP_MSG_TYPE], CLOISTER_SNP_MSG_REPORT_REQ);
  EXPECT_EQ(m[CLOISTER_SNP_MSG_VERSION], 1);
  EXPECT_EQ(get(m + CLOISTER_SNP_MSG_SIZE, 2), 96u);
  EXPECT_EQ(m[CLOISTER_SNP_MSG_VMPCK], 0);
}

TEST_F(SnpAttest, InvalidLenRepeatsTheSameMessageWithThePagesTheHostAsksFor) {
  psp_.cert_pages_needed = 6;
  ASSERT_EQ(request(), 0) << error();
  ASSERT_EQ(psp_.ghcbs.size(), 2u);
  EXPECT_EQ(get(psp_.ghcbs[0].data() + CLOISTER_GHCB_RBX, 8), 4u);
  EXPECT_EQ(get(psp_.ghcbs[1].data() + CLOISTER_GHCB_RBX, 8), 6u);
  EXPECT_EQ(psp_.requests[0], psp_.requests[1]);  // same sequence number, same bytes
  EXPECT_EQ(msg_seqno_0(), 2u);
}

TEST_F(SnpAttest, InvalidLenBeyondTheBufferFailsWithoutSpendingASequenceNumber) {
  psp_.cert_pages_needed = 9;
  ASSERT_EQ(request(), -1);
  EXPECT_EQ(error(), "the certificate table needs 9 pages (offered 4, at most 8 and 2 retries)");
  EXPECT_EQ(psp_.ghcbs.size(), 1u);
  EXPECT_EQ(msg_seqno_0(), 0u);
  EXPECT_FALSE(vmpck_cleared());
}

TEST_F(SnpAttest, BusyIsRetriedAfterAPauseABoundedNumberOfTimes) {
  psp_.busy = 3;
  ASSERT_EQ(request(), 0) << error();
  EXPECT_EQ(psp_.pauses, 3);
  EXPECT_EQ(psp_.ghcbs.size(), 4u);

  psp_.busy = SNP_BUSY_RETRIES + 1;
  psp_.ghcbs.clear();
  ASSERT_EQ(request(), -1);
  EXPECT_EQ(error(), "the host stayed busy (VMM error BUSY) for 16 retries");
  EXPECT_EQ(psp_.ghcbs.size(), static_cast<std::size_t>(SNP_BUSY_RETRIES + 1));
}

TEST_F(SnpAttest, FirmwareErrorsAreReportedAndDisableTheKey) {
  psp_.firmware_error = CLOISTER_SNP_FW_INVALID_PARAM;
  ASSERT_EQ(request(), -1);
  EXPECT_EQ(error(),
            "the guest request failed: SW_EXITINFO2 0x16, VMM error 0x0, firmware error 0x16 "
            "(INVALID_PARAM)");
  EXPECT_TRUE(vmpck_cleared());
  ASSERT_EQ(request(), -1);  // and nothing is sent under the cleared key
  EXPECT_THAT(error(), HasSubstr("VMPCK0 in the secrets page is empty"));
  EXPECT_EQ(psp_.ghcbs.size(), 1u);
}

TEST_F(SnpAttest, ResponsesFailingTheirChecksAreRejectedAndDisableTheKey) {
  const std::vector<std::pair<std::function<void(FakePsp&)>, std::string>> cases = {
      {[](FakePsp& p) { p.seqno_skew = 1; }, "response sequence number 3, expected 2"},
      {[](FakePsp& p) { p.response_type = 4; },
       "response message type 4 version 1 algorithm 1, expected MSG_REPORT_RSP (6)"},
      {[](FakePsp& p) { p.corrupt_tag = true; },
       "the response does not decrypt under VMPCK0 (authentication tag mismatch)"},
      {[](FakePsp& p) { p.report_status = CLOISTER_SNP_FW_INVALID_PARAM; },
       "MSG_REPORT_RSP status 0x16 (INVALID_PARAM)"},
      {[](FakePsp& p) { p.report_size = 1000; }, "MSG_REPORT_RSP report_size 1000, expected 1184"},
  };
  for (const auto& [mutate, words] : cases) {
    psp_ = FakePsp();
    mutate(psp_);
    std::memcpy(ram_.at(kSecrets) + CLOISTER_SNP_SECRETS_VMPCK0, psp_.vmpck, 32);
    put(ram_.at(kSecrets) + 0xa0, 0, 4);
    ASSERT_EQ(request(), -1) << words;
    EXPECT_THAT(error(), HasSubstr(words));
    EXPECT_EQ(msg_seqno_0(), 2u) << words;  // the firmware answered: both numbers are spent
    EXPECT_TRUE(vmpck_cleared()) << words;
  }
}

TEST_F(SnpAttest, WithoutTheSimulatorTheRequestFailsAtOnce) {
  psp_.absent = true;
  ASSERT_EQ(request(), -1);
  EXPECT_EQ(error(),
            "the hypervisor did not complete the guest request: SW_EXITINFO1 0x21000 (expected 0); "
            "is the VM running with --tee sim-snp?");
  std::memset(ram_.at(kSecrets), 0, 4096);
  ASSERT_EQ(request(), -1);
  EXPECT_EQ(error(),
            "VMPCK0 in the secrets page is empty (disabled, or the VM does not run with --tee "
            "sim-snp)");
}

TEST_F(SnpAttest, AnExhaustedSequenceNumberIsRefused) {
  put(ram_.at(kSecrets) + 0xa0, 0xfffffffe, 4);
  ASSERT_EQ(request(), -1);
  EXPECT_EQ(error(), "the message sequence number is exhausted");
  EXPECT_TRUE(psp_.ghcbs.empty());
}

TEST_F(SnpAttest, CertificateTablesWithoutTerminatorOrWithDataOutsideArePassedOnWhole) {
  // One page of entries that are not zero: no terminator.
  Bytes unterminated(4096, 0x01);
  for (std::size_t at = 0; at + 24 <= unterminated.size(); at += 24)
    put(unterminated.data() + at + 16, 0, 8);
  psp_.cert_pages_needed = 1;
  pages_.cert_pages_max = 1;
  psp_.cert_table = unterminated;
  ASSERT_EQ(request(), 0) << error();
  EXPECT_EQ(evidence_.cert_table_size, 4096u);

  Bytes outside(48, 0);  // one entry whose data would end past the buffer, and the terminator
  std::memset(outside.data(), 0x10, 16);
  put(outside.data() + 16, 4000, 4);
  put(outside.data() + 20, 97, 4);
  psp_.cert_table = outside;
  ASSERT_EQ(request(), 0) << error();
  EXPECT_EQ(evidence_.cert_table_size, 4096u);

  put(outside.data() + 20, 96, 4);  // now it ends exactly at the end of the page
  psp_.cert_table = outside;
  ASSERT_EQ(request(), 0) << error();
  EXPECT_EQ(evidence_.cert_table_size, 4096u);

  put(outside.data() + 16, 48, 4);  // data right after the table
  put(outside.data() + 20, 10, 4);
  psp_.cert_table = outside;
  ASSERT_EQ(request(), 0) << error();
  EXPECT_EQ(evidence_.cert_table_size, 58u);
}

}  // namespace
}  // namespace cloister::testing
