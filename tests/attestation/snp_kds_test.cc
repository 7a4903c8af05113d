#include <gtest/gtest.h>

#include <filesystem>

#include "cloister/attestation/snp/kds.h"
#include "cloister/common/file.h"
#include "cloister/common/hex.h"
#include "snp_facts.h"
#include "support/http_server.h"

namespace cloister::attestation::snp {
namespace {

using cloister::testing::CannedResponse;
using cloister::testing::LoopbackHttpServer;
using cloister::testing::read_vector;
using cloister::testing::snp_facts;
using cloister::testing::snp_report_bytes;
using cloister::testing::vector_path;

// The KDS VCEK URL the facts derive for every VCEK-signed report (incl. Turin's 8-byte form).
TEST(SnpKds, VcekUrlsMatchTheFacts) {
  CLOISTER_REQUIRE_SNP_FACTS();
  int checked = 0;
  for (const auto& [file, f] : snp_facts()["reports"].items()) {
    if (f["kds_vcek_url_for_this_report"].is_null()) continue;
    SCOPED_TRACE(file);
    auto r = parse_snp_report(snp_report_bytes(file));
    ASSERT_TRUE(r);
    Product p = *product_from_name(f["product"].get<std::string>());
    auto url = kds_vcek_url(kKdsBaseUrl, p, r->chip_id, r->reported_tcb.parts(p));
    ASSERT_TRUE(url) << url.error().message();
    EXPECT_EQ(*url, f["kds_vcek_url_for_this_report"]);
    ++checked;
  }
  EXPECT_EQ(checked, 6);
}

TEST(SnpKds, MaskedOrMalformedChipIdsHaveNoUrl) {
  Bytes zero(64, 0);
  EXPECT_NE(kds_vcek_url(kKdsBaseUrl, Product::kMilan, zero, {})
                .error()
                .message()
                .find("CHIP_ID is all zero (masked by the host)"),
            std::string::npos);
  Bytes turin(64, 0);
  turin[0] = 1;
  turin[20] = 1;
  EXPECT_EQ(kds_hw_id(Product::kTurin, turin).error().message(),
            "Turin CHIP_ID must have only its first 8 bytes set, found bytes beyond");
}

TEST(SnpKds, ChainAndCrlUrls) {
  EXPECT_EQ(kds_cert_chain_url(kKdsBaseUrl, Product::kGenoa, VekKind::kVcek),
            "https://kdsintf.amd.com/vcek/v1/Genoa/cert_chain");
  EXPECT_EQ(kds_cert_chain_url(kKdsBaseUrl, Product::kTurin, VekKind::kVlek),
            "https://kdsintf.amd.com/vlek/v1/Turin/cert_chain");
  EXPECT_EQ(kds_crl_url(kKdsBaseUrl, Product::kMilan, VekKind::kVlek),
            "https://kdsintf.amd.com/vlek/v1/Milan/crl");
}

class SnpKdsOnline : public ::testing::Test {
 protected:
  void SetUp() override {
    CLOISTER_REQUIRE_SNP_FACTS();
    cache_ = std::filesystem::temp_directory_path() /
             ("cloister-kds-test-" + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(cache_);
    report_ = *parse_snp_report(snp_report_bytes("milan_v3_vcek_report.oak.bin"));
    vcek_der_ = read_vector(*vector_path("snp/milan_vcek.oak.der"));
    url_ = *kds_vcek_url("", Product::kMilan, report_.chip_id,
                         report_.reported_tcb.parts(Product::kMilan));
  }
  void TearDown() override { std::filesystem::remove_all(cache_); }

  KdsClient client(bool online) {
    KdsOptions o;
    o.base_url = server_.base_url();
    o.cache_dir = cache_;
    o.online = online;
    o.max_retry_wait_seconds = 0;
    return KdsClient(o);
  }

  LoopbackHttpServer server_;
  std::filesystem::path cache_;
  SnpReport report_;
  Bytes vcek_der_;
  std::string url_;
};

TEST_F(SnpKdsOnline, OfflineFetchesNothing) {
  server_.on(url_, {{200, vcek_der_, ""}});
  auto found = client(false).vcek(Product::kMilan, report_.chip_id, report_.reported_tcb);
  ASSERT_TRUE(found);
  EXPECT_FALSE(found->has_value());
  EXPECT_TRUE(server_.requests().empty());
}

TEST_F(SnpKdsOnline, FetchesOnceThenServesFromCache) {
  server_.on(url_, {{200, vcek_der_, ""}});
  auto fetched = client(true).vcek(Product::kMilan, report_.chip_id, report_.reported_tcb);
  ASSERT_TRUE(fetched) << fetched.error().message();
  ASSERT_TRUE(fetched->has_value());
  EXPECT_EQ((*fetched)->value.der(), vcek_der_);
  EXPECT_EQ((*fetched)->source, "fetched " + server_.base_url() + url_);
  auto cached_path =
      cache_ / "vcek/v1/Milan" / to_hex(report_.chip_id) / (report_.reported_tcb.to_hex() + ".der");
  EXPECT_EQ(*read_file(cached_path, kCertificateFileLimit), vcek_der_);
  // Offline now: the cache answers.
  auto again = client(false).vcek(Product::kMilan, report_.chip_id, report_.reported_tcb);
  ASSERT_TRUE(again && again->has_value());
  EXPECT_EQ((*again)->source, "cache " + cached_path.string());
  EXPECT_EQ(server_.requests().size(), 1u);
}

TEST_F(SnpKdsOnline, RetriesRateLimitsThenSucceeds) {
  server_.on(url_, {{429, {}, "Retry-After: 0\r\n"}, {503, {}, ""}, {200, vcek_der_, ""}});
  auto fetched = client(true).vcek(Product::kMilan, report_.chip_id, report_.reported_tcb);
  ASSERT_TRUE(fetched) << fetched.error().message();
  EXPECT_TRUE(fetched->has_value());
  EXPECT_EQ(server_.requests().size(), 3u);
}

TEST_F(SnpKdsOnline, PersistentRateLimitAndNotFoundAreErrorsAndNothingIsCached) {
  server_.on(url_, {{429, {}, "Retry-After: 0\r\n"}});
  auto limited = client(true).vcek(Product::kMilan, report_.chip_id, report_.reported_tcb);
  ASSERT_FALSE(limited);
  EXPECT_NE(limited.error().message().find("HTTP 429 (KDS rate limit) (gave up after 3 attempts)"),
            std::string::npos);
  server_.on(url_, {{404, Bytes{'n', 'o'}, ""}});
  auto missing = client(true).vcek(Product::kMilan, report_.chip_id, report_.reported_tcb);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find("HTTP 404 (KDS has no such certificate)"),
            std::string::npos);
  // A body that is not a certificate is rejected, not cached (snpguest#37 saved 404 pages).
  server_.on(url_, {{200, Bytes{'<', 'h', 't', 'm', 'l', '>'}, ""}});
  auto junk = client(true).vcek(Product::kMilan, report_.chip_id, report_.reported_tcb);
  ASSERT_FALSE(junk);
  EXPECT_NE(junk.error().message().find("not a DER X.509 certificate"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(cache_ / "vcek"));
}

TEST_F(SnpKdsOnline, CertChainAndCrlAreFetchedAndCached) {
  Bytes chain = read_vector(*vector_path("snp/kds_vcek_cert_chain_milan.pem"));
  Bytes crl = read_vector(*vector_path("snp/kds_vcek_crl_milan.openpcc.der"));
  server_.on("/vcek/v1/Milan/cert_chain", {{200, chain, ""}});
  server_.on("/vcek/v1/Milan/crl", {{200, crl, ""}});
  auto kds = client(true);
  auto certs = kds.cert_chain(Product::kMilan, VekKind::kVcek);
  ASSERT_TRUE(certs && certs->has_value()) << (certs ? "" : certs.error().message());
  EXPECT_EQ((*certs)->value[0].subject_cn(), "SEV-Milan");
  EXPECT_EQ((*certs)->value[1].subject_cn(), "ARK-Milan");
  // Inside the CRL's window the cached copy is used; past nextUpdate it is refreshed.
  const UnixTime inside = 1761955200, past = 1790000000;
  ASSERT_TRUE(kds.crl(Product::kMilan, VekKind::kVcek, inside));
  ASSERT_TRUE(kds.crl(Product::kMilan, VekKind::kVcek, inside));
  auto stale = kds.crl(Product::kMilan, VekKind::kVcek, past);
  ASSERT_TRUE(stale && stale->has_value());
  EXPECT_EQ(*(*stale)->value.crl_number(), 6);
  auto reqs = server_.requests();
  EXPECT_EQ(std::count(reqs.begin(), reqs.end(), "/vcek/v1/Milan/crl"), 2);
  EXPECT_TRUE(std::filesystem::exists(cache_ / "vcek/v1/Milan/cert_chain.pem"));
  EXPECT_TRUE(std::filesystem::exists(cache_ / "vcek/v1/Milan/crl.der"));
}

}  // namespace
}  // namespace cloister::attestation::snp
