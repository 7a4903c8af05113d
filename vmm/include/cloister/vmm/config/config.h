// The VM configuration: one JSON document (`cloister-vmm run --config vm.json`), which the
// command-line flags patch key by key. parse_config() is the only way to obtain a VmConfig and
// rejects unknown keys and impossible values, naming the key, the expected and the found
// value, before anything touches KVM. Schema: docs/operator.md.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cloister/common/result.h"
#include "cloister/firmware_loader/machine.h"
#include "cloister/vmm/log.h"

namespace cloister::vmm {

enum class TeeKind { kNone, kSimSnp, kSimTdx, kSnp, kTdx };
std::string_view tee_name(TeeKind tee);

struct BootConfig {
  std::optional<std::string> firmware;  // exactly one of firmware and kernel
  std::optional<std::string> kernel;
  std::optional<std::string> initrd;  // only with kernel
  std::string cmdline;                // kernel: boot_params; firmware: fw_cfg
};

enum class ConsoleKind { kStdout, kFile, kSocket, kNone };
struct ConsoleConfig {
  ConsoleKind kind = ConsoleKind::kStdout;
  std::string path;  // kFile: appended to; kSocket: a listening UNIX stream socket to connect to
};

struct DiskConfig {
  std::string path;
  bool read_only = false;
};

// virtio-vsock with Firecracker's hybrid host side: guest connections to host port P reach
// the UNIX socket "<uds_path>_<P>".
struct VsockConfig {
  std::uint64_t guest_cid = 3;
  std::string uds_path;
};

struct LogConfig {
  LogFormat format = LogFormat::kText;
  LogLevel level = LogLevel::kInfo;
  std::string file;  // empty: stderr
};

struct VmConfig {
  std::uint32_t vcpus = 1;
  std::uint64_t memory_bytes = fw::kDefaultGuestMemory;
  bool hugepages = false;
  TeeKind tee = TeeKind::kNone;
  BootConfig boot;
  ConsoleConfig console;
  std::vector<DiskConfig> disks;
  std::optional<VsockConfig> vsock;
  std::optional<std::string> api_socket;
  LogConfig log;
  bool seccomp = true;
};

inline constexpr std::uint32_t kMaxVcpus = fw::kMaxVcpus;
inline constexpr std::uint64_t kMinMemory = 4ull << 20;
inline constexpr std::uint64_t kMaxMemory = fw::kMaxGuestMemory;
inline constexpr std::size_t kMaxVirtioDevices = 8;  // virtio-mmio slots: disks + vsock

Result<VmConfig> parse_config(const nlohmann::json& document);
Result<VmConfig> parse_config_text(std::string_view json_text);

// The canonical JSON of a config (as vm.info reports it); parse_config(to_json(c)) == c.
nlohmann::json to_json(const VmConfig& config);

}  // namespace cloister::vmm
