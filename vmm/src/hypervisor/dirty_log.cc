#include "cloister/vmm/hypervisor/dirty_log.h"

#include <algorithm>
#include <bit>
#include <string>

namespace cloister::vmm {

void mark_dirty_pages(std::span<std::uint64_t> bitmap, std::uint64_t first_page,
                      std::uint64_t pages) {
  for (std::uint64_t p = first_page; p < first_page + pages; ++p)
    bitmap[p / 64] |= std::uint64_t{1} << (p % 64);
}

Status merge_dirty_bitmap(std::span<std::uint64_t> into, std::span<const std::uint64_t> from) {
  if (into.size() != from.size())
    return Error(ErrorCode::kInvalidArgument, "dirty log merge: bitmap length: expected " +
                                                  std::to_string(into.size()) + " words, found " +
                                                  std::to_string(from.size()) +
                                                  " (logs of different memory slots)");
  for (std::size_t i = 0; i < into.size(); ++i) into[i] |= from[i];
  return {};
}

Result<std::vector<PageRun>> dirty_page_runs(std::span<const std::uint64_t> bitmap,
                                             std::uint64_t pages) {
  if (bitmap.size() < dirty_bitmap_words(pages))
    return Error(ErrorCode::kInvalidArgument, "dirty log: bitmap length: expected at least " +
                                                  std::to_string(dirty_bitmap_words(pages)) +
                                                  " words for " + std::to_string(pages) +
                                                  " pages, found " + std::to_string(bitmap.size()));
  std::vector<PageRun> runs;
  std::uint64_t page = 0;
  while (page < pages) {
    const std::uint64_t word = bitmap[page / 64] >> (page % 64);
    if (word == 0) {
      page += 64 - page % 64;  // the rest of this word is clean
      continue;
    }
    page += static_cast<std::uint64_t>(std::countr_zero(word));
    if (page >= pages) break;
    const std::uint64_t first = page;
    while (page < pages && (bitmap[page / 64] >> (page % 64)) & 1) {
      const std::uint64_t ones =
          static_cast<std::uint64_t>(std::countr_one(bitmap[page / 64] >> (page % 64)));
      page += ones;
    }
    page = std::min(page, pages);
    runs.push_back({first, page - first});
  }
  return runs;
}

}  // namespace cloister::vmm
