// virtio-net's pieces without a TAP: the token buckets and the nets config (the API calls are
// in api_test.cc).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cloister/vmm/config/config.h"
#include "cloister/vmm/devices/rate_limiter.h"

namespace cloister::vmm {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using Clock = TokenBucket::Clock;

TEST(TokenBucketTest, RefillsContinuouslyOverTheRefillTime) {
  const Clock::time_point t0{};
  TokenBucket bucket({1000, 0, 100}, t0);  // 1000 tokens per 100 ms: 10 per ms
  EXPECT_TRUE(bucket.ready(1000, t0));
  bucket.take(1000, t0);
  EXPECT_FALSE(bucket.ready(1, t0));
  EXPECT_EQ(bucket.ready_at(1, t0), t0 + 100us);
  EXPECT_EQ(bucket.ready_at(500, t0), t0 + 50ms);
  EXPECT_FALSE(bucket.ready(500, t0 + 49ms));
  EXPECT_TRUE(bucket.ready(500, t0 + 50ms));
  bucket.take(500, t0 + 50ms);
  EXPECT_FALSE(bucket.ready(1, t0 + 50ms));
  // Never beyond its size, however long it waits.
  EXPECT_TRUE(bucket.ready(1000, t0 + 1h));
  bucket.take(1000, t0 + 1h);
  EXPECT_FALSE(bucket.ready(1, t0 + 1h));
}

TEST(TokenBucketTest, TheOneTimeBurstIsSpentFirstAndNeverRefilled) {
  const Clock::time_point t0{};
  TokenBucket bucket({100, 250, 1000}, t0);
  bucket.take(250, t0);  // the burst
  EXPECT_TRUE(bucket.ready(100, t0));
  bucket.take(100, t0);
  EXPECT_FALSE(bucket.ready(1, t0));
  EXPECT_TRUE(bucket.ready(100, t0 + 1s));
  bucket.take(100, t0 + 1s);
  EXPECT_FALSE(bucket.ready(1, t0 + 1s));  // the burst did not come back
}

TEST(TokenBucketTest, AnOperationLargerThanTheBucketPassesWhenItIsFull) {
  const Clock::time_point t0{};
  TokenBucket bucket({1500, 0, 10}, t0);
  EXPECT_TRUE(bucket.ready(9000, t0));
  bucket.take(9000, t0);
  EXPECT_FALSE(bucket.ready(9000, t0));
  EXPECT_EQ(bucket.ready_at(9000, t0), t0 + 10ms);  // a full bucket again
}

TEST(TokenBucketTest, SizeZeroIsUnlimited) {
  TokenBucket bucket({}, Clock::time_point{});
  EXPECT_TRUE(bucket.unlimited());
  EXPECT_TRUE(bucket.ready(~0ull, Clock::time_point{}));
}

TEST(RateLimiterTest, BytesAndOperationsBothHaveToAllowAFrame) {
  const Clock::time_point t0{};
  RateLimiter limiter({{10'000, 0, 1000}, {2, 0, 1000}}, t0);  // 10 kB and 2 frames per second
  Clock::time_point retry;
  EXPECT_TRUE(limiter.try_take(1500, t0, retry));
  EXPECT_TRUE(limiter.try_take(1500, t0, retry));
  EXPECT_FALSE(limiter.try_take(1500, t0, retry));  // out of frames, not bytes
  EXPECT_EQ(retry, t0 + 500ms);
  EXPECT_TRUE(limiter.try_take(1500, t0 + 500ms, retry));

  RateLimiter bytes_only({{10'000, 0, 1000}, {}}, t0);
  EXPECT_TRUE(bytes_only.try_take(9000, t0, retry));
  EXPECT_FALSE(bytes_only.try_take(9000, t0, retry));  // 1000 bytes left: 8000 take 800 ms
  EXPECT_EQ(retry, t0 + 800ms);
  EXPECT_TRUE(bytes_only.try_take(9000, t0 + 800ms, retry));
}

json base_config() {
  return {{"boot", {{"firmware", "/fw.bin"}}}};
}

TEST(NetConfigTest, NetsParseAndRoundTrip) {
  json doc = base_config();
  doc["nets"] = {{{"tap", "tap0"},
                  {"mac", "52:54:00:12:34:56"},
                  {"tx_rate_limiter",
                   {{"bandwidth", {{"size", 1 << 20}, {"refill_time_ms", 100}}},
                    {"ops", {{"size", 1000}, {"one_time_burst", 50}, {"refill_time_ms", 1000}}}}}},
                 {{"tap", "tap1"}}};
  auto c = parse_config(doc);
  ASSERT_TRUE(c) << c.error().message();
  ASSERT_EQ(c->nets.size(), 2u);
  EXPECT_EQ(c->nets[0].tap, "tap0");
  EXPECT_EQ(*c->nets[0].mac, (std::array<std::uint8_t, 6>{0x52, 0x54, 0, 0x12, 0x34, 0x56}));
  EXPECT_EQ(c->nets[0].tx_rate_limiter.bandwidth, (TokenBucketConfig{1 << 20, 0, 100}));
  EXPECT_EQ(c->nets[0].tx_rate_limiter.ops, (TokenBucketConfig{1000, 50, 1000}));
  EXPECT_EQ(c->nets[0].rx_rate_limiter, RateLimiterConfig{});
  EXPECT_FALSE(c->nets[1].mac);
  auto again = parse_config(to_json(*c));
  ASSERT_TRUE(again) << again.error().message();
  EXPECT_EQ(to_json(*again), to_json(*c));
  EXPECT_EQ(to_json(*c)["nets"][0]["mac"], "52:54:00:12:34:56");
}

TEST(NetConfigTest, BadNetsAreRefusedNamingTheKey) {
  const auto refused = [](const json& nets) {
    json doc = base_config();
    doc["nets"] = nets;
    auto c = parse_config(doc);
    return c ? std::string("accepted") : c.error().message();
  };
  EXPECT_EQ(refused(json::array({{{"mac", "52:54:00:12:34:56"}}})), "config: nets[0].tap: missing");
  EXPECT_EQ(refused(json::array({{{"tap", "a-very-long-tap-name"}}})),
            "config: nets[0].tap: expected an interface name of 1 to 15 bytes without '/', ':' "
            "or spaces, found \"a-very-long-tap-name\"");
  EXPECT_EQ(refused(json::array({{{"tap", "t0"}}, {{"tap", "t0"}}})),
            "config: nets[1].tap: expected a TAP no other net uses, found \"t0\"");
  EXPECT_EQ(refused(json::array({{{"tap", "t0"}, {"mac", "01:00:5e:00:00:01"}}})),
            "config: nets[0].mac: expected a unicast MAC address like \"52:54:00:12:34:56\", "
            "found \"01:00:5e:00:00:01\"");
  EXPECT_EQ(refused(json::array({{{"tap", "t0"}, {"mac", "52-54-00-12-34-56"}}})),
            "config: nets[0].mac: expected a unicast MAC address like \"52:54:00:12:34:56\", "
            "found \"52-54-00-12-34-56\"");
  // fuzz_vm_config's finding: a pair "0X" read as a bare hex prefix (no byte) crashed the parser.
  EXPECT_EQ(refused(json::array({{{"tap", "t0"}, {"mac", "52:0X:00:12:34:56"}}})),
            "config: nets[0].mac: expected a unicast MAC address like \"52:54:00:12:34:56\", "
            "found \"52:0X:00:12:34:56\"");
  EXPECT_EQ(refused(json::array(
                {{{"tap", "t0"}, {"rx_rate_limiter", {{"bandwidth", {{"size", 100}}}}}}})),
            "config: nets[0].rx_rate_limiter.bandwidth.refill_time_ms: expected 1..3600000 with "
            "a size, found 0");
  EXPECT_EQ(refused(json::array({{{"tap", "t0"}, {"rx_rate_limiter", {{"bytes", 1}}}}})),
            "config: unknown key \"nets[0].rx_rate_limiter.bytes\" (known: bandwidth, ops)");
  EXPECT_EQ(refused(json::array({{{"tap", "t0"}, {"tx_rate_limiter", {{"ops", {{"size", -1}}}}}}})),
            "config: nets[0].tx_rate_limiter.ops.size: expected a non-negative integer, found -1");
  json nine = json::array();
  for (int i = 0; i < 9; ++i) nine.push_back({{"tap", "t" + std::to_string(i)}});
  EXPECT_EQ(refused(nine),
            "config: disks, nets and vsock: expected at most 8 virtio devices, found 9");
}

}  // namespace
}  // namespace cloister::vmm
