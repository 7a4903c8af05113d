// Dirty-page bitmaps as KVM_GET_DIRTY_LOG fills them (Documentation/virt/kvm/api.rst 4.8: one
// bit per page of a memory slot, page i in bit i % 64 of 64-bit word i / 64, the buffer rounded
// up to whole words), and the arithmetic live migration does on them: merging in the pages the
// VMM itself wrote (KVM logs only the guest's writes) and turning a bitmap into runs of pages to
// send. Pure functions, tested without KVM.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "cloister/common/result.h"

namespace cloister::vmm {

// `pages` consecutive pages from `first_page` (page numbers within a slot or region).
struct PageRun {
  std::uint64_t first_page = 0;
  std::uint64_t pages = 0;
  bool operator==(const PageRun&) const = default;
};

// One memory slot's dirty pages (Vm::fetch_dirty_log): the slot, where it starts in guest-physical
// memory, its length in 4 KiB pages, and dirty_bitmap_words(pages) words of bitmap.
struct SlotDirtyLog {
  std::uint32_t slot = 0;
  std::uint64_t guest_phys_addr = 0;
  std::uint64_t pages = 0;
  std::vector<std::uint64_t> bitmap;
};

// The 64-bit words a bitmap of `pages` pages takes (what KVM_GET_DIRTY_LOG writes).
constexpr std::uint64_t dirty_bitmap_words(std::uint64_t pages) {
  return (pages + 63) / 64;
}

// Sets the bits of pages [first_page, first_page + pages) in `bitmap`, which must hold them.
void mark_dirty_pages(std::span<std::uint64_t> bitmap, std::uint64_t first_page,
                      std::uint64_t pages);

// ORs `from` into `into`: the union of two logs of the same slot or region. Fails, naming both
// lengths, when they differ (logs of different slots).
Status merge_dirty_bitmap(std::span<std::uint64_t> into, std::span<const std::uint64_t> from);

// The runs of set bits among the first `pages` bits of `bitmap`, in page order, each as long as
// possible. Bits at `pages` and beyond are ignored: they name no page of the slot. Fails when
// `bitmap` is shorter than dirty_bitmap_words(pages).
Result<std::vector<PageRun>> dirty_page_runs(std::span<const std::uint64_t> bitmap,
                                             std::uint64_t pages);

}  // namespace cloister::vmm
