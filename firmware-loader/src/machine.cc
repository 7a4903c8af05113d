#include "cloister/firmware_loader/machine.h"

#include <charconv>
#include <string>

namespace cloister::fw {
namespace {

constexpr std::uint64_t kFourGiB = 1ull << 32;

}  // namespace

std::vector<GpaRange> ram_ranges(std::uint64_t ram_bytes) {
  std::vector<GpaRange> ranges;
  const std::uint64_t low = ram_bytes < kMmioGapStart ? ram_bytes : kMmioGapStart;
  if (low > 0) ranges.push_back({0, low});
  if (ram_bytes > low) ranges.push_back({kFourGiB, ram_bytes - low});
  return ranges;
}

Result<std::uint64_t> parse_memory_size(std::string_view text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data())
    return Error("memory: expected a size like 512M, 2G or a byte count, found \"" +
                 std::string(text) + "\"");
  std::string_view suffix(end, static_cast<std::size_t>(text.data() + text.size() - end));
  unsigned shift = 0;
  if (suffix == "K" || suffix == "k" || suffix == "KiB")
    shift = 10;
  else if (suffix == "M" || suffix == "m" || suffix == "MiB")
    shift = 20;
  else if (suffix == "G" || suffix == "g" || suffix == "GiB")
    shift = 30;
  else if (!suffix.empty())
    return Error("memory: unknown size suffix \"" + std::string(suffix) +
                 "\" (expected K, M or G)");
  if (shift && value > (~0ull >> shift))
    return Error("memory: \"" + std::string(text) + "\" overflows 64 bits");
  return value << shift;
}

}  // namespace cloister::fw
