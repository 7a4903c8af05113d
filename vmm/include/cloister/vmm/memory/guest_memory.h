// Guest-physical memory: memfd-backed regions mapped into this process, and the one
// bounds-checked GPA -> host translation every device and loader goes through.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cloister/common/bytes.h"
#include "cloister/vmm/fd.h"

namespace cloister::vmm {

struct RegionSpec {
  std::string name;  // "ram-low", "ram-high", "firmware": shows up in errors
  std::uint64_t guest_phys_addr;
  std::uint64_t size;  // multiple of 4 KiB (2 MiB with hugepages)
  bool read_only_to_guest = false;
};

struct GuestRegion {
  std::string name;
  std::uint64_t guest_phys_addr = 0;
  std::uint64_t size = 0;
  std::uint8_t* host = nullptr;
  bool read_only_to_guest = false;
  bool hugepages = false;
  Fd memfd;  // invalid for regions mapped from a snapshot's memory file

  std::uint64_t end() const { return guest_phys_addr + size; }
};

enum class Access { kRead, kWrite };

class GuestMemory {
 public:
  // Creates one memfd per region (MFD_HUGETLB with 2 MiB pages when `hugepages`; the firmware
  // region always uses small pages) and maps it shared. Regions must not overlap.
  static Result<GuestMemory> create(std::span<const RegionSpec> specs, bool hugepages);
  // Maps region i of `specs` privately (MAP_PRIVATE) from `file` at `file_offsets[i]` (page
  // aligned), for a restore: a page is read from the file when it is first touched and the
  // guest's writes stay in this process (copy on write), so the file never changes and mapping
  // a large guest costs about what a small one does. Regions must not overlap.
  static Result<GuestMemory> map_private(std::span<const RegionSpec> specs,
                                         std::span<const std::uint64_t> file_offsets, int file);

  GuestMemory();
  ~GuestMemory();
  GuestMemory(GuestMemory&&) noexcept;
  GuestMemory& operator=(GuestMemory&&) noexcept;
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  const std::vector<GuestRegion>& regions() const { return regions_; }

  // Host view of [gpa, gpa + size), which must lie inside one region; with Access::kWrite the
  // region must be writable by the guest (device DMA never writes into firmware). `what`
  // names the access in the error: "virtio-blk descriptor 3: GPA 0x… + 0x200 is outside …".
  Result<std::span<std::uint8_t>> view(std::uint64_t gpa, std::uint64_t size, Access access,
                                       std::string_view what) const;
  Status write(std::uint64_t gpa, ByteView data, std::string_view what) const;
  // Like write() but also into regions the guest cannot write: boot loaders placing firmware.
  Status load(std::uint64_t gpa, ByteView data, std::string_view what) const;
  Status read(std::uint64_t gpa, std::span<std::uint8_t> out, std::string_view what) const;

  // --- the host-write log, for live migration ---
  // KVM's dirty log records only the guest's writes, not the VMM's own (devices writing used
  // rings and buffers, loaders). While this log is on, write(), load() and view(Access::kWrite)
  // mark the 4 KiB pages they cover (a view when it is handed out, before the caller writes
  // through it). Marking is safe from any thread; starting, stopping and taking the log are for
  // the one thread that migrates. The log costs one bit per page, held from creation.
  void start_write_log();
  void stop_write_log();
  bool write_log_on() const;
  // Per region (regions() order), a bitmap (hypervisor/dirty_log.h layout, pages counted from
  // the region's start) of the pages marked since the previous take, or since start_write_log().
  // Each mark is reported by two consecutive takes: a write through a view, marked when the view
  // was handed out, that lands after one take has read the page is still reported by the next.
  std::vector<std::vector<std::uint64_t>> take_write_log();
  // Marks [gpa, gpa + size) again once a write through a view has landed. A write that lasts (a
  // disk read into a guest buffer) can outlast the two takes that report the view's own mark, or
  // have begun before the log was on; its device calls this when the write is done. A range
  // outside guest memory marks nothing.
  void written(std::uint64_t gpa, std::uint64_t size) const;

 private:
  struct WriteLog;
  void unmap_all();
  // The region holding [gpa, gpa + size) and the offset of gpa in it.
  Result<std::pair<std::size_t, std::uint64_t>> locate(std::uint64_t gpa, std::uint64_t size,
                                                       std::string_view what) const;
  void mark_written(std::size_t region, std::uint64_t offset, std::uint64_t size) const;
  std::vector<GuestRegion> regions_;
  std::unique_ptr<WriteLog> write_log_;
};

}  // namespace cloister::vmm
