// Token-bucket rate limiting for device I/O, with Firecracker's semantics: a bucket holds up to
// `size` tokens and refills from empty to full over refill_time_ms, continuously; a one-time
// burst is spent before the bucket. A limiter pairs a bytes bucket (bandwidth) with an
// operations bucket (one token per frame or request). An operation larger than the whole bucket
// is let through once the bucket is full, leaving it empty, so it cannot stall for ever.
#pragma once

#include <chrono>
#include <cstdint>

#include "cloister/vmm/config/config.h"

namespace cloister::vmm {

// What a bucket holds at one moment, for snapshots: its configuration travels in the VM config.
struct TokenBucketState {
  std::uint64_t tokens = 0;
  std::uint64_t one_time_burst = 0;  // what is left of it
};

struct RateLimiterState {
  TokenBucketState bandwidth;
  TokenBucketState ops;
};

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;
  TokenBucket(const TokenBucketConfig& config, Clock::time_point now);

  bool unlimited() const { return config_.size == 0; }
  // Whether `tokens` can be taken at `now`.
  bool ready(std::uint64_t tokens, Clock::time_point now);
  // Takes `tokens`; call only after ready() said yes at the same `now`.
  void take(std::uint64_t tokens, Clock::time_point now);
  // The earliest time `tokens` can be taken (`now` when they can be now).
  Clock::time_point ready_at(std::uint64_t tokens, Clock::time_point now);
  // The tokens and burst refilled up to `now`.
  TokenBucketState save(Clock::time_point now);
  // Sets the tokens and burst (each at most what the configuration allows) as of `now`.
  void restore(const TokenBucketState& state, Clock::time_point now);

 private:
  void refill(Clock::time_point now);
  std::uint64_t needed(std::uint64_t tokens) const;

  TokenBucketConfig config_;
  std::uint64_t burst_;
  std::uint64_t tokens_;
  Clock::time_point last_;
};

class RateLimiter {
 public:
  using Clock = TokenBucket::Clock;
  RateLimiter(const RateLimiterConfig& config, Clock::time_point now)
      : bytes_(config.bandwidth, now), ops_(config.ops, now) {}

  // Takes one operation of `bytes` when both buckets allow it now; otherwise takes nothing and
  // returns when to try again.
  bool try_take(std::uint64_t bytes, Clock::time_point now, Clock::time_point& retry_at);
  RateLimiterState save(Clock::time_point now) { return {bytes_.save(now), ops_.save(now)}; }
  void restore(const RateLimiterState& state, Clock::time_point now) {
    bytes_.restore(state.bandwidth, now);
    ops_.restore(state.ops, now);
  }

 private:
  TokenBucket bytes_;
  TokenBucket ops_;
};

}  // namespace cloister::vmm
