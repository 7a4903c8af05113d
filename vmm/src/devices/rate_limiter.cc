#include "cloister/vmm/devices/rate_limiter.h"

#include <algorithm>

namespace cloister::vmm {
namespace {
// Token arithmetic multiplies nanoseconds by bucket sizes: both 64-bit.
__extension__ typedef unsigned __int128 U128;
}  // namespace

TokenBucket::TokenBucket(const TokenBucketConfig& config, Clock::time_point now)
    : config_(config), burst_(config.one_time_burst), tokens_(config.size), last_(now) {}

void TokenBucket::refill(Clock::time_point now) {
  if (unlimited() || now <= last_) return;
  const auto elapsed = static_cast<U128>(std::chrono::nanoseconds(now - last_).count());
  const U128 period = static_cast<U128>(config_.refill_time_ms) * 1000000;
  const U128 added = elapsed * config_.size / period;
  if (added == 0) return;  // keep `last_`, so short intervals add up
  tokens_ =
      static_cast<std::uint64_t>(std::min<U128>(config_.size, static_cast<U128>(tokens_) + added));
  // Advance by the time those tokens took, keeping the remainder for the next refill.
  last_ += std::chrono::nanoseconds(static_cast<std::int64_t>(added * period / config_.size));
  if (tokens_ == config_.size) last_ = now;
}

std::uint64_t TokenBucket::needed(std::uint64_t tokens) const {
  return std::min(tokens, config_.size);
}

bool TokenBucket::ready(std::uint64_t tokens, Clock::time_point now) {
  if (unlimited() || tokens <= burst_) return true;
  refill(now);
  return burst_ + tokens_ >= needed(tokens);
}

void TokenBucket::take(std::uint64_t tokens, Clock::time_point now) {
  if (unlimited()) return;
  refill(now);
  const std::uint64_t from_burst = std::min(burst_, tokens);
  burst_ -= from_burst;
  tokens -= from_burst;
  tokens_ -= std::min(tokens_, tokens);
}

TokenBucket::Clock::time_point TokenBucket::ready_at(std::uint64_t tokens, Clock::time_point now) {
  if (ready(tokens, now)) return now;
  const std::uint64_t missing = needed(tokens) - burst_ - tokens_;
  const U128 period = static_cast<U128>(config_.refill_time_ms) * 1000000;
  // Round up: at that time the refill has added at least `missing`.
  const auto wait = static_cast<std::int64_t>(
      (static_cast<U128>(missing) * period + config_.size - 1) / config_.size);
  return std::max(now, last_ + std::chrono::nanoseconds(wait));
}

TokenBucketState TokenBucket::save(Clock::time_point now) {
  refill(now);
  return {tokens_, burst_};
}

void TokenBucket::restore(const TokenBucketState& state, Clock::time_point now) {
  tokens_ = std::min(state.tokens, config_.size);
  burst_ = std::min(state.one_time_burst, config_.one_time_burst);
  last_ = now;
}

bool RateLimiter::try_take(std::uint64_t bytes, Clock::time_point now,
                           Clock::time_point& retry_at) {
  if (bytes_.ready(bytes, now) && ops_.ready(1, now)) {
    bytes_.take(bytes, now);
    ops_.take(1, now);
    return true;
  }
  retry_at = std::max(bytes_.ready_at(bytes, now), ops_.ready_at(1, now));
  return false;
}

}  // namespace cloister::vmm
