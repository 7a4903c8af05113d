#include "cloister/vmm/memory/guest_memory.h"

#include <linux/memfd.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstring>

#include "cloister/vmm/format.h"

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
  return memory;
}

GuestMemory::~GuestMemory() {
  unmap_all();
}

GuestMemory::GuestMemory(GuestMemory&& other) noexcept : regions_(std::move(other.regions_)) {
  other.regions_.clear();
}

GuestMemory& GuestMemory::operator=(GuestMemory&& other) noexcept {
  if (this != &other) {
    unmap_all();
    regions_ = std::move(other.regions_);
    other.regions_.clear();
  }
  return *this;
}

void GuestMemory::unmap_all() {
  for (auto& region : regions_)
    if (region.host) ::munmap(region.host, region.size);
  regions_.clear();
}

Result<std::span<std::uint8_t>> GuestMemory::view(std::uint64_t gpa, std::uint64_t size,
                                                  Access access, std::string_view what) const {
  auto it = std::upper_bound(
      regions_.begin(), regions_.end(), gpa,
      [](std::uint64_t addr, const GuestRegion& r) { return addr < r.guest_phys_addr; });
  if (it != regions_.begin()) {
    const GuestRegion& region = *std::prev(it);
    const std::uint64_t offset = gpa - region.guest_phys_addr;
    if (gpa >= region.guest_phys_addr && offset < region.size && size <= region.size - offset) {
      if (access == Access::kWrite && region.read_only_to_guest)
        return Error(std::string(what) + ": GPA " + hex(gpa) + " lies in read-only region " +
                     region.name);
      return std::span<std::uint8_t>(region.host + offset, size);
    }
  }
  return Error(std::string(what) + ": GPA " + hex(gpa) + " + " + hex(size) +
               " is not inside guest memory");
}

Status GuestMemory::write(std::uint64_t gpa, ByteView data, std::string_view what) const {
  CLOISTER_TRY(auto dst, view(gpa, data.size(), Access::kWrite, what));
  if (!data.empty()) std::memcpy(dst.data(), data.data(), data.size());
  return {};
}

Status GuestMemory::load(std::uint64_t gpa, ByteView data, std::string_view what) const {
  CLOISTER_TRY(auto dst, view(gpa, data.size(), Access::kRead, what));
  if (!data.empty()) std::memcpy(dst.data(), data.data(), data.size());
  return {};
}

Status GuestMemory::read(std::uint64_t gpa, std::span<std::uint8_t> out,
                         std::string_view what) const {
  CLOISTER_TRY(auto src, view(gpa, out.size(), Access::kRead, what));
  if (!out.empty()) std::memcpy(out.data(), src.data(), out.size());
  return {};
}

}  // namespace cloister::vmm
