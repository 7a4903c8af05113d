#include "cloister/vmm/memory/guest_memory.h"

#include <linux/memfd.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "cloister/vmm/format.h"
#include "cloister/vmm/hypervisor/dirty_log.h"

namespace cloister::vmm {
namespace {

constexpr std::uint64_t kSmallPage = 4096;
constexpr std::uint64_t kHugePage = 2ull << 20;

Status check_placement(const RegionSpec& spec, std::uint64_t page,
                       const std::vector<GuestRegion>& placed) {
  if (spec.size == 0 || spec.size % page != 0 || spec.guest_phys_addr % page != 0)
    return Error("memory region " + spec.name + ": address " + hex(spec.guest_phys_addr) +
                 " and size " + hex(spec.size) + " must be non-zero multiples of " + hex(page));
  if (spec.guest_phys_addr + spec.size < spec.guest_phys_addr)
    return Error("memory region " + spec.name + ": wraps around the address space");
  for (const auto& other : placed) {
    if (spec.guest_phys_addr < other.end() &&
        other.guest_phys_addr < spec.guest_phys_addr + spec.size)
      return Error("memory region " + spec.name + " overlaps " + other.name);
  }
  return {};
}

void sort_regions(std::vector<GuestRegion>& regions) {
  std::sort(regions.begin(), regions.end(), [](const GuestRegion& a, const GuestRegion& b) {
    return a.guest_phys_addr < b.guest_phys_addr;
  });
}

}  // namespace

struct GuestMemory::WriteLog {
  explicit WriteLog(const std::vector<GuestRegion>& regions) {
    for (const GuestRegion& r : regions) {
      const std::uint64_t words = dirty_bitmap_words(r.size / kSmallPage);
      current.push_back(std::make_unique<std::atomic<std::uint64_t>[]>(words));
      previous.emplace_back(words, 0);
    }
  }
  std::atomic<bool> on{false};
  // Per region: the pages marked since the previous take (set by any thread), and what the
  // previous take found (the taking thread's alone).
  std::vector<std::unique_ptr<std::atomic<std::uint64_t>[]>> current;
  std::vector<std::vector<std::uint64_t>> previous;
};

Result<GuestMemory> GuestMemory::map_private(std::span<const RegionSpec> specs,
                                             std::span<const std::uint64_t> file_offsets,
                                             int file) {
  if (specs.size() != file_offsets.size())
    return Error("memory regions: " + std::to_string(specs.size()) + " regions but " +
                 std::to_string(file_offsets.size()) + " file offsets");
  GuestMemory memory;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const RegionSpec& spec = specs[i];
    CLOISTER_CHECK_OK(check_placement(spec, kSmallPage, memory.regions_));
    if (file_offsets[i] % kSmallPage != 0)
      return Error("memory region " + spec.name + ": file offset " + hex(file_offsets[i]) +
                   " is not a multiple of " + hex(kSmallPage));
    void* host = ::mmap(nullptr, spec.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE,
                        file, static_cast<off_t>(file_offsets[i]));
    if (host == MAP_FAILED) return os_error("mmap (private) of " + spec.name);
    GuestRegion region;
    region.name = spec.name;
    region.guest_phys_addr = spec.guest_phys_addr;
    region.size = spec.size;
    region.host = static_cast<std::uint8_t*>(host);
    region.read_only_to_guest = spec.read_only_to_guest;
    memory.regions_.push_back(std::move(region));
  }
  sort_regions(memory.regions_);
  memory.write_log_ = std::make_unique<WriteLog>(memory.regions_);
  return memory;
}

Result<GuestMemory> GuestMemory::create(std::span<const RegionSpec> specs, bool hugepages) {
  GuestMemory memory;
  for (const auto& spec : specs) {
    const bool huge = hugepages && !spec.read_only_to_guest;
    const std::uint64_t page = huge ? kHugePage : kSmallPage;
    CLOISTER_CHECK_OK(check_placement(spec, page, memory.regions_));
    unsigned flags = MFD_CLOEXEC | (huge ? (MFD_HUGETLB | MFD_HUGE_2MB) : 0u);
    int raw = ::memfd_create(("cloister-" + spec.name).c_str(), flags);
    if (raw < 0) return os_error("memfd_create for " + spec.name);
    GuestRegion region;
    region.memfd = Fd(raw);
    if (::ftruncate(region.memfd.get(), static_cast<off_t>(spec.size)) < 0)
      return os_error("ftruncate of " + spec.name + " to " + hex(spec.size) +
                      (huge ? " (are enough 2 MiB hugepages reserved?)" : ""));
    void* host = ::mmap(nullptr, spec.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                        region.memfd.get(), 0);
    if (host == MAP_FAILED) return os_error("mmap of " + spec.name);
    region.name = spec.name;
    region.guest_phys_addr = spec.guest_phys_addr;
    region.size = spec.size;
    region.host = static_cast<std::uint8_t*>(host);
    region.read_only_to_guest = spec.read_only_to_guest;
    region.hugepages = huge;
    memory.regions_.push_back(std::move(region));
  }
  sort_regions(memory.regions_);
  memory.write_log_ = std::make_unique<WriteLog>(memory.regions_);
  return memory;
}

GuestMemory::GuestMemory() = default;

GuestMemory::~GuestMemory() {
  unmap_all();
}

GuestMemory::GuestMemory(GuestMemory&& other) noexcept
    : regions_(std::move(other.regions_)), write_log_(std::move(other.write_log_)) {
  other.regions_.clear();
}

GuestMemory& GuestMemory::operator=(GuestMemory&& other) noexcept {
  if (this != &other) {
    unmap_all();
    regions_ = std::move(other.regions_);
    write_log_ = std::move(other.write_log_);
    other.regions_.clear();
  }
  return *this;
}

void GuestMemory::unmap_all() {
  for (auto& region : regions_)
    if (region.host) ::munmap(region.host, region.size);
  regions_.clear();
}

Result<std::pair<std::size_t, std::uint64_t>> GuestMemory::locate(std::uint64_t gpa,
                                                                  std::uint64_t size,
                                                                  std::string_view what) const {
  auto it = std::upper_bound(
      regions_.begin(), regions_.end(), gpa,
      [](std::uint64_t addr, const GuestRegion& r) { return addr < r.guest_phys_addr; });
  if (it != regions_.begin()) {
    const GuestRegion& region = *std::prev(it);
    const std::uint64_t offset = gpa - region.guest_phys_addr;
    if (gpa >= region.guest_phys_addr && offset < region.size && size <= region.size - offset)
      return std::pair{static_cast<std::size_t>(std::prev(it) - regions_.begin()), offset};
  }
  return Error(std::string(what) + ": GPA " + hex(gpa) + " + " + hex(size) +
               " is not inside guest memory");
}

Result<std::span<std::uint8_t>> GuestMemory::view(std::uint64_t gpa, std::uint64_t size,
                                                  Access access, std::string_view what) const {
  CLOISTER_TRY(const auto found, locate(gpa, size, what));
  const auto [index, offset] = found;
  const GuestRegion& region = regions_[index];
  if (access == Access::kWrite) {
    if (region.read_only_to_guest)
      return Error(std::string(what) + ": GPA " + hex(gpa) + " lies in read-only region " +
                   region.name);
    mark_written(index, offset, size);
  }
  return std::span<std::uint8_t>(region.host + offset, size);
}

Status GuestMemory::write(std::uint64_t gpa, ByteView data, std::string_view what) const {
  CLOISTER_TRY(auto dst, view(gpa, data.size(), Access::kWrite, what));
  if (data.empty()) return {};
  std::memcpy(dst.data(), data.data(), data.size());
  written(gpa, data.size());  // the view was marked before the copy, perhaps before the log
  return {};
}

Status GuestMemory::load(std::uint64_t gpa, ByteView data, std::string_view what) const {
  CLOISTER_TRY(const auto found, locate(gpa, data.size(), what));
  const auto [index, offset] = found;
  if (data.empty()) return {};
  std::memcpy(regions_[index].host + offset, data.data(), data.size());
  mark_written(index, offset, data.size());
  return {};
}

Status GuestMemory::read(std::uint64_t gpa, std::span<std::uint8_t> out,
                         std::string_view what) const {
  CLOISTER_TRY(auto src, view(gpa, out.size(), Access::kRead, what));
  if (!out.empty()) std::memcpy(out.data(), src.data(), out.size());
  return {};
}

void GuestMemory::mark_written(std::size_t region, std::uint64_t offset, std::uint64_t size) const {
  if (!write_log_ || size == 0 || !write_log_->on.load(std::memory_order_acquire)) return;
  std::atomic<std::uint64_t>* words = write_log_->current[region].get();
  for (std::uint64_t page = offset / kSmallPage; page <= (offset + size - 1) / kSmallPage; ++page)
    words[page / 64].fetch_or(std::uint64_t{1} << (page % 64), std::memory_order_release);
}

void GuestMemory::written(std::uint64_t gpa, std::uint64_t size) const {
  if (!write_log_on()) return;
  if (auto found = locate(gpa, size, "write log")) mark_written(found->first, found->second, size);
}

void GuestMemory::start_write_log() {
  if (!write_log_) return;
  for (std::size_t i = 0; i < regions_.size(); ++i) {
    const std::uint64_t words = dirty_bitmap_words(regions_[i].size / kSmallPage);
    for (std::uint64_t w = 0; w < words; ++w)
      write_log_->current[i][w].store(0, std::memory_order_relaxed);
    std::fill(write_log_->previous[i].begin(), write_log_->previous[i].end(), 0);
  }
  write_log_->on.store(true, std::memory_order_release);
}

void GuestMemory::stop_write_log() {
  if (write_log_) write_log_->on.store(false, std::memory_order_release);
}

bool GuestMemory::write_log_on() const {
  return write_log_ && write_log_->on.load(std::memory_order_acquire);
}

std::vector<std::vector<std::uint64_t>> GuestMemory::take_write_log() {
  std::vector<std::vector<std::uint64_t>> taken;
  if (!write_log_) return taken;
  for (std::size_t i = 0; i < regions_.size(); ++i) {
    std::vector<std::uint64_t>& previous = write_log_->previous[i];
    std::vector<std::uint64_t> bitmap = previous;
    for (std::size_t w = 0; w < bitmap.size(); ++w) {
      previous[w] = write_log_->current[i][w].exchange(0, std::memory_order_acq_rel);
      bitmap[w] |= previous[w];
    }
    taken.push_back(std::move(bitmap));
  }
  return taken;
}

}  // namespace cloister::vmm
