// Collateral fetches under concurrency: one request per URL in flight however many verifiers
// want it, a slow URL holding only its own callers, retries ended by the deadline, and a
// verifier that keeps verifying while a KDS fetch hangs.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "cloister/attestation/http.h"
#include "cloister/attestation/snp/kds.h"
#include "cloister/attestation/snp/verify.h"
#include "snp_facts.h"

namespace cloister::attestation {
namespace {

using cloister::testing::read_vector;
using cloister::testing::snp_report_bytes;
using cloister::testing::vector_path;

// An HTTP client whose GETs of "held" URLs block until released; everything else answers at
// once with `status`. Counts the GETs per URL.
class GatedHttpClient : public HttpClient {
 public:
  explicit GatedHttpClient(long status = 200, std::optional<long> retry_after = std::nullopt)
      : status_(status), retry_after_(retry_after) {}

  void hold(const std::string& url) {
    std::lock_guard lock(mutex_);
    held_.insert(url);
  }
  void release(const std::string& url) {
    {
      std::lock_guard lock(mutex_);
      held_.erase(url);
    }
    changed_.notify_all();
  }
  // Waits until `url` has been requested `n` times.
  void await_requests(const std::string& url, int n) {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return gets_[url] >= n; });
  }
  int gets(const std::string& url) {
    std::lock_guard lock(mutex_);
    return gets_[url];
  }

  Result<HttpResponse> get(const std::string& url) override {
    std::unique_lock lock(mutex_);
    ++gets_[url];
    changed_.notify_all();
    changed_.wait(lock, [&] { return held_.count(url) == 0; });
    HttpResponse r;
    r.status = status_;
    r.body = Bytes{'o', 'k'};
    r.retry_after_seconds = retry_after_;
    return r;
  }

 private:
  const long status_;
  const std::optional<long> retry_after_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::set<std::string> held_;
  std::map<std::string, int> gets_;
};

RetryPolicy policy() {
  return RetryPolicy{3, 0, "test", "", 60};
}

TEST(FetchGroup, ConcurrentGetsOfOneUrlShareOneRequest) {
  auto http = std::make_shared<GatedHttpClient>();
  FetchGroup group(http);
  const std::string url = "https://kds.example/vcek";
  http->hold(url);
  std::vector<std::future<Result<HttpResponse>>> callers;
  callers.push_back(std::async(std::launch::async, [&] { return group.get(url, policy()); }));
  http->await_requests(url, 1);
  for (int i = 0; i < 3; ++i)
    callers.push_back(std::async(std::launch::async, [&] { return group.get(url, policy()); }));
  while (group.waiters(url) < 3) std::this_thread::yield();
  http->release(url);
  for (auto& c : callers) {
    auto r = c.get();
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->body, (Bytes{'o', 'k'}));
  }
  EXPECT_EQ(http->gets(url), 1);
  EXPECT_EQ(group.waiters(url), 0u);
  // Once answered, the next GET is a new request.
  ASSERT_TRUE(group.get(url, policy()));
  EXPECT_EQ(http->gets(url), 2);
}

TEST(FetchGroup, ASlowUrlHoldsOnlyItsOwnCallers) {
  auto http = std::make_shared<GatedHttpClient>();
  FetchGroup group(http);
  const std::string slow = "https://kds.example/slow", fast = "https://kds.example/fast";
  http->hold(slow);
  auto waiting = std::async(std::launch::async, [&] { return group.get(slow, policy()); });
  http->await_requests(slow, 1);
  auto r = group.get(fast, policy());
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(waiting.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  http->release(slow);
  EXPECT_TRUE(waiting.get());
}

TEST(FetchGroup, RetriesEndAtTheDeadline) {
  // KDS says to come back in 30 s; a 5 s deadline gives up after the first attempt.
  auto http = std::make_shared<GatedHttpClient>(429, 30);
  FetchGroup group(http);
  const std::string url = "https://kds.example/vcek";
  auto r = group.get(url, RetryPolicy{3, 60, "KDS", "", 5});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(),
            "GET https://kds.example/vcek: HTTP 429 (KDS rate limit) (gave up after 1 of 3 "
            "attempts: waiting 30 s more would pass the 5 s deadline)");
  EXPECT_EQ(http->gets(url), 1);
}

// Verifying a Genoa report with its VCEK supplied is not held up by a Milan report whose VCEK
// fetch from KDS hangs: the verifier holds no lock across fetches.
TEST(SnpVerifierFetch, AHangingKdsFetchDoesNotStallOtherVerifications) {
  CLOISTER_REQUIRE_SNP_FACTS();
  auto http = std::make_shared<GatedHttpClient>(404);
  auto milan = snp::parse_snp_report(snp_report_bytes("milan_v3_vcek_report.oak.bin"));
  ASSERT_TRUE(milan);
  const std::string milan_vcek_url =
      *snp::kds_vcek_url(snp::kKdsBaseUrl, snp::Product::kMilan, milan->chip_id,
                         milan->reported_tcb.parts(snp::Product::kMilan));
  http->hold(milan_vcek_url);
  snp::KdsOptions kds;
  kds.online = true;
  kds.http = http;
  kds.max_retry_wait_seconds = 0;
  snp::SnpVerifierConfig config;
  config.kds = std::make_shared<snp::KdsClient>(kds);
  const snp::SnpVerifier verifier(config);
  snp::SnpVerifyOptions options;
  options.time = testing::kSnpVectorTime;

  snp::SnpEvidence fetching;
  fetching.report = snp_report_bytes("milan_v3_vcek_report.oak.bin");
  auto hanging = std::async(std::launch::async, [&] { return verifier.verify(fetching, options); });
  http->await_requests(milan_vcek_url, 1);

  snp::SnpEvidence supplied;
  supplied.report = snp_report_bytes("genoa_v5_vcek_report.oak.bin");
  auto vcek = parse_certificates(read_vector(*vector_path("snp/genoa_vcek.oak.der")));
  ASSERT_TRUE(vcek);
  supplied.certificates.push_back({vcek->front(), "genoa_vcek.oak.der"});
  auto other = std::async(std::launch::async, [&] { return verifier.verify(supplied, options); });
  const bool finished = other.wait_for(std::chrono::seconds(60)) == std::future_status::ready;
  EXPECT_TRUE(finished) << "the verification waited for another report's KDS fetch";
  EXPECT_EQ(hanging.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  http->release(milan_vcek_url);
  ASSERT_TRUE(finished);
  const auto v = other.get();
  EXPECT_EQ(v.checks.find("snp.signature")->status, CheckStatus::kPass);
  EXPECT_EQ(v.checks.find("snp.chain.vek")->status, CheckStatus::kPass);
  // The held fetch answered 404: the Milan report names it as the missing VCEK.
  const auto held = hanging.get();
  EXPECT_EQ(held.checks.find("snp.vek")->status, CheckStatus::kFail);
  EXPECT_NE(held.checks.find("snp.vek")->detail.find("HTTP 404"), std::string::npos);
}

}  // namespace
}  // namespace cloister::attestation
