// Overlap detection for GPA ranges (private to firmware-loader).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace cloister::fw {

// [begin, end) and the index of the section or op it belongs to.
struct IndexedRange {
  std::uint64_t begin;
  std::uint64_t end;
  std::size_t index;
};

// The first pair of overlapping ranges, the lower index first, or nothing.
inline std::optional<std::pair<IndexedRange, IndexedRange>> first_overlap(
    std::vector<IndexedRange> ranges) {
  std::sort(ranges.begin(), ranges.end(),
            [](const IndexedRange& a, const IndexedRange& b) { return a.begin < b.begin; });
  for (std::size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].begin < ranges[i - 1].end) {
      if (ranges[i].index < ranges[i - 1].index) return std::make_pair(ranges[i], ranges[i - 1]);
      return std::make_pair(ranges[i - 1], ranges[i]);
    }
  }
  return std::nullopt;
}

}  // namespace cloister::fw
