// Snapshot files (docs/operator.md, "Snapshot and restore"): a directory holding
//   state.json  the versioned, self-describing state: who wrote it, the VM config, the memory
//               layout, every vCPU's registers, the VM's interrupt controllers and clock, the
//               UART, every virtio-mmio slot (/body/devices/virtio: transport registers, queue
//               addresses and indices, the device's own state), and SHA-256 checksums of the
//               memory file and of the state body;
//   memory.bin  guest memory, region after region in guest-physical order, written sparse
//               (pages of zeros are holes).
// parse_state() is the one parser of state.json; open_snapshot() reads a directory and refuses,
// before anything is built, every check a half-restored guest could come from: the schema
// version, the state body's checksum, the memory file's size and checksum, the vCPU count and
// the memory size, and virtio devices other than the config's. Each refusal names the check, the
// expected and the found value.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "cloister/common/file.h"
#include "cloister/common/result.h"
#include "cloister/common/sha.h"
#include "cloister/vmm/boot/boot.h"
#include "cloister/vmm/config/config.h"
#include "cloister/vmm/devices/legacy.h"
#include "cloister/vmm/devices/virtio.h"
#include "cloister/vmm/fd.h"
#include "cloister/vmm/hypervisor/hypervisor.h"
#include "cloister/vmm/memory/guest_memory.h"

namespace cloister::vmm {

// Bumped whenever a field changes meaning or a required field is added; restore refuses any
// other version. 2: virtio devices (/body/devices/virtio).
inline constexpr std::uint32_t kSnapshotSchemaVersion = 2;

inline constexpr const char* kSnapshotStateFile = "state.json";
inline constexpr const char* kSnapshotMemoryFile = "memory.bin";

// A 255-vCPU KVM guest's state (a 4 KiB XSAVE area and a 1 KiB local APIC, hex-encoded, per
// vCPU) is under 3 MiB.
inline constexpr FileLimit kSnapshotStateFileLimit{
    8u << 20, "snapshot state file (255 vCPUs with their XSAVE areas take under 3 MiB)"};

// One guest memory region and where its bytes start in the memory file.
struct SnapshotRegion {
  std::string name;
  std::uint64_t guest_phys_addr = 0;
  std::uint64_t size = 0;
  bool read_only_to_guest = false;
  std::uint64_t file_offset = 0;
};

struct SnapshotState {
  std::uint32_t schema_version = kSnapshotSchemaVersion;
  std::string vmm_version;  // the cloister-vmm that wrote it
  std::string hypervisor;   // "kvm" or "emu": the lapic, xsave and VM images are its own
  VmConfig config;
  BootKind boot_kind = BootKind::kFirmware;  // how the guest was booted, for vm.info
  std::vector<SnapshotRegion> memory;
  std::uint64_t memory_file_bytes = 0;
  Sha256Digest memory_sha256{};  // memory_digest() of the memory file
  std::vector<VcpuState> vcpus;  // in vCPU id order
  VmPlatformState vm;
  SerialState serial;
  // One per virtio-mmio slot in slot order: config.disks, then config.nets, then config.vsock.
  std::vector<VirtioDeviceState> virtio;
};

// state.json's bytes: {"schema_version", "vmm_version", "body_sha256", "body": {...}}, where
// body_sha256 is SHA-256 over the body's compact serialisation (sorted keys).
Bytes serialize_state(const SnapshotState& state);

// Parses state.json. Fails, naming the check or the field (by JSON Pointer): not JSON (a
// truncated file), schema_version other than kSnapshotSchemaVersion, body_sha256 mismatch, a
// missing or mistyped field, a config parse_config() refuses, vCPU entries other than
// config.vcpus, memory regions that are not laid out back to back from offset 0 in whole pages,
// or whose RAM does not add up to config.memory_bytes, virtio devices that do not match the
// config's one for one (count, slot, kind, disk path and read-only flag, TAP and MAC, vsock CID,
// queue count), naming the field, expected and found.
Result<SnapshotState> parse_state(ByteView bytes);

// The memory file's checksum, defined by its contents alone so that copying or re-sparsing the
// file does not change it: SHA-256 over (page index, little-endian 64-bit; the page) for every
// 4 KiB page that is not all zeros, in order. Holes (SEEK_HOLE) are skipped without reading,
// so the cost follows the data, not the guest's size.
Result<Sha256Digest> memory_digest(int fd, std::uint64_t size);

// `memory`'s regions laid out back to back from offset 0, in order: the memory file's layout,
// and the offsets a migration stream's memory records use.
std::vector<SnapshotRegion> memory_layout(const GuestMemory& memory);

// The [begin, end) ranges, in whole pages, of `fd`'s first `size` bytes that may hold data
// (SEEK_DATA/SEEK_HOLE); the whole range when the file system cannot tell. Guest memory's
// memfds answer this without touching (and so allocating) the pages that were never written.
std::vector<std::pair<std::uint64_t, std::uint64_t>> data_ranges(int fd, std::uint64_t size);

// Writes the memory file at `path` from `memory`'s regions, sparse, and fdatasyncs it; fills
// state.memory, memory_file_bytes and memory_sha256.
Status write_memory_file(const std::filesystem::path& path, const GuestMemory& memory,
                         SnapshotState& state);

// Writes a snapshot into `dir` (created when missing; its parent must exist): the memory file,
// then the state file, each through a temporary name and rename(), so a reader never sees a
// partial file. Fills the memory fields of `state`.
Status write_snapshot(const std::filesystem::path& dir, const GuestMemory& memory,
                      SnapshotState& state);

struct OpenedSnapshot {
  SnapshotState state;
  Fd memory_file;  // read-only, for GuestMemory::map_private()
};

// Reads and checks a snapshot directory: parse_state() of state.json (within
// kSnapshotStateFileLimit), then the memory file's size against memory_file_bytes and its
// memory_digest() against memory_sha256. Every failure is ErrorCode::kInvalidArgument.
Result<OpenedSnapshot> open_snapshot(const std::filesystem::path& dir);

}  // namespace cloister::vmm
