// One pass of a migration page tracker as the tests see it: the first byte of each page sent, by
// its offset in the memory layout. Every run must be whole pages, and the bytes the pass reports
// must be the bytes it handed over.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <map>

#include "cloister/vmm/migration/page_tracker.h"

namespace cloister::vmm {

using Sent = std::map<std::uint64_t, std::uint8_t>;

inline Sent run_pass(PageTracker& tracker) {
  constexpr std::uint64_t page = 4096;
  Sent sent;
  auto bytes =
      tracker.pass([&](std::uint64_t offset, const std::uint8_t* pages, std::uint64_t size) {
        EXPECT_EQ(offset % page, 0u);
        EXPECT_EQ(size % page, 0u);
        for (std::uint64_t p = 0; p < size; p += page) sent[offset + p] = pages[p];
        return Status{};
      });
  EXPECT_TRUE(bytes.ok()) << bytes.error().message();
  if (bytes.ok()) {
    EXPECT_EQ(*bytes, sent.size() * page);
  }
  return sent;
}

}  // namespace cloister::vmm
