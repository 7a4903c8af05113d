#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "cloister/attestation/tdx/pcs.h"
#include "cloister/attestation/tdx/verify.h"
#include "cloister/common/file.h"
#include "support/http_server.h"
#include "tdx_facts.h"

namespace cloister::attestation::tdx {
namespace {

using cloister::testing::CannedResponse;
using cloister::testing::LoopbackHttpServer;
using cloister::testing::tdx_vector;

std::string url_encode(const Bytes& text) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (auto c : text) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kDigits[c >> 4];
      out += kDigits[c & 15];
    }
  }
  return out;
}

TEST(TdxPcs, UrlsFollowPcsApiV4) {
  const std::array<std::uint8_t, 6> fmspc{0x90, 0xc0, 0x6f, 0, 0, 0};
  EXPECT_EQ(pcs_tcb_info_url(kPcsBaseUrl, fmspc),
            "https://api.trustedservices.intel.com/tdx/certification/v4/tcb?fmspc=90c06f000000");
  EXPECT_EQ(pcs_qe_identity_url(kPcsBaseUrl),
            "https://api.trustedservices.intel.com/tdx/certification/v4/qe/identity");
  EXPECT_EQ(pcs_pck_crl_url(kPcsBaseUrl, PckCaType::kPlatform),
            "https://api.trustedservices.intel.com/sgx/certification/v4/pckcrl?ca=platform&"
            "encoding=der");
  EXPECT_EQ(pcs_pck_crl_url("http://pccs:8081", PckCaType::kProcessor),
            "http://pccs:8081/sgx/certification/v4/pckcrl?ca=processor&encoding=der");
  EXPECT_EQ(*url_decode("-----BEGIN%20CERTIFICATE-----%0A"), "-----BEGIN CERTIFICATE-----\n");
  EXPECT_EQ(url_decode("%4").error().message(),
            "URL-encoded text ends inside an escape at position 0");
  EXPECT_EQ(url_decode("%zz").error().message(),
            "URL-encoded text has an invalid escape at position 0");
  EXPECT_EQ(url_decode("a%0X").error().message(),  // no byte after a "0X" prefix
            "URL-encoded text has an invalid escape at position 1");
}

// A PCS (or PCCS) on loopback serving the gtg v5 quote's collateral, issuer chains in headers.
class TdxPcsOnline : public ::testing::Test {
 protected:
  void SetUp() override {
    CLOISTER_REQUIRE_TDX_FACTS();
    cache_ = std::filesystem::temp_directory_path() /
             ("cloister-pcs-test-" + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(cache_);
    const std::string chain = url_encode(tdx_vector("gtg/tcb_signing_issuer_chain.pem"));
    server_.on("/tdx/certification/v4/tcb?fmspc=90c06f000000",
               {{200, tdx_vector("gtg/tcbinfo_90c06f000000.json"),
                 "TCB-Info-Issuer-Chain: " + chain + "\r\n"}});
    server_.on("/tdx/certification/v4/qe/identity",
               {{200, tdx_vector("gtg/qeidentity_td_qe.json"),
                 "SGX-Enclave-Identity-Issuer-Chain: " + chain + "\r\n"}});
    server_.on("/sgx/certification/v4/pckcrl?ca=platform&encoding=der",
               {{200, tdx_vector("gtg/pckcrl_platform.der"),
                 "SGX-PCK-CRL-Issuer-Chain: " +
                     url_encode(tdx_vector("gtg/pckcrl_issuer_chain.pem")) + "\r\n"}});
    server_.on("/IntelSGXRootCA.der", {{200, tdx_vector("gtg/rootcrl.der"), ""}});
    evidence_.quote = tdx_vector("gtg/quote_v5_tdx15.dat");
  }
  void TearDown() override { std::filesystem::remove_all(cache_); }

  std::shared_ptr<PcsClient> client(bool online) {
    PcsOptions o;
    o.base_url = server_.base_url();
    o.root_ca_crl_url = server_.base_url() + "/IntelSGXRootCA.der";
    o.cache_dir = cache_;
    o.online = online;
    o.max_retry_wait_seconds = 0;
    return std::make_shared<PcsClient>(o);
  }

  TdxVerification verify(bool online, UnixTime at) {
    TdxVerifyOptions options;
    options.time = at;
    options.allow_stale_collateral = true;  // the 2023 collateral is long past nextUpdate
    return TdxVerifier({client(online), {}}).verify(evidence_, options);
  }

  LoopbackHttpServer server_;
  std::filesystem::path cache_;
  TdxEvidence evidence_;
  // Inside the TCB Info's window (2026-02-01..2026-03-03) and the TCB Signing certificate's
  // renewed validity does not matter here: the chain check is not what is tested.
  const UnixTime at_ = 1771200000;  // 2026-02-16
};

TEST_F(TdxPcsOnline, OfflineFetchesNothing) {
  auto v = verify(false, at_);
  EXPECT_TRUE(server_.requests().empty());
  EXPECT_EQ(v.checks.find("tdx.collateral.tcb_info")->found, "none");
}

TEST_F(TdxPcsOnline, FetchesOnceThenServesFromCache) {
  auto v = verify(true, at_);
  EXPECT_EQ(server_.requests().size(), 4u);
  EXPECT_EQ(v.checks.find("tdx.collateral.fetch"), nullptr);
  ASSERT_TRUE(v.tcb.has_value());
  EXPECT_EQ(v.tcb->status, TcbStatus::kUpToDate);
  EXPECT_EQ(v.tcb_info->source,
            "fetched " + server_.base_url() + "/tdx/certification/v4/tcb?fmspc=90c06f000000");
  for (const char* name : {"tdx.crl.root", "tdx.crl.pck", "tdx.revocation",
                           "tdx.collateral.tcb_info", "tdx.collateral.qe_identity"})
    EXPECT_EQ(v.checks.find(name)->status, CheckStatus::kPass)
        << name << v.checks.find(name)->detail;
  for (const char* file :
       {"tdx/v4/tcb/90c06f000000.json", "tdx/v4/tcb/90c06f000000.chain.pem",
        "tdx/v4/qe/identity.json", "tdx/v4/qe/identity.chain.pem", "sgx/v4/pckcrl/platform.der",
        "sgx/v4/pckcrl/platform.chain.pem", "sgx/rootcacrl.der"})
    EXPECT_TRUE(std::filesystem::exists(cache_ / file)) << file;
  EXPECT_EQ(*read_file(cache_ / "tdx/v4/tcb/90c06f000000.json", kCollateralFileLimit),
            tdx_vector("gtg/tcbinfo_90c06f000000.json"));

  // Offline, the cache answers: the same verdict, nothing requested.
  auto cached = verify(false, at_);
  EXPECT_EQ(server_.requests().size(), 4u);
  EXPECT_EQ(cached.tcb_info->source, "cache " + (cache_ / "tdx/v4/tcb/90c06f000000.json").string());
  EXPECT_EQ(cached.tcb->status, TcbStatus::kUpToDate);
  // Online again: items still current at the verification time (the TCB Info) come from the
  // cache, stale ones (2023 QE Identity and CRLs) are refetched.
  verify(true, at_);
  auto reqs = server_.requests();
  EXPECT_EQ(reqs.size(), 7u);
  EXPECT_EQ(std::count(reqs.begin(), reqs.end(), "/tdx/certification/v4/tcb?fmspc=90c06f000000"),
            1);
}

TEST_F(TdxPcsOnline, FetchFailuresAreNamed) {
  server_.on("/tdx/certification/v4/qe/identity", {{404, Bytes{'n', 'o'}, ""}});
  server_.on("/IntelSGXRootCA.der", {{200, Bytes{'<', 'h', '>'}, ""}});
  auto v = verify(true, at_);
  const Check* fetch = v.checks.find("tdx.collateral.fetch");
  ASSERT_NE(fetch, nullptr);
  EXPECT_EQ(fetch->status, CheckStatus::kFail);
  EXPECT_EQ(fetch->found, "2 failed");
  EXPECT_NE(fetch->detail.find("HTTP 404 (PCS has no such collateral)"), std::string::npos)
      << fetch->detail;
  EXPECT_NE(fetch->detail.find("CRL from " + server_.base_url() + "/IntelSGXRootCA.der"),
            std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(cache_ / "tdx/v4/qe/identity.json"));
  EXPECT_FALSE(std::filesystem::exists(cache_ / "sgx/rootcacrl.der"));
}

}  // namespace
}  // namespace cloister::attestation::tdx
