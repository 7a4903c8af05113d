// The VM configuration: one JSON document (`cloister-vmm run --config vm.json`), which the
// command-line flags patch key by key. parse_config() is the only way to obtain a VmConfig and
// rejects unknown keys and impossible values, naming the key, the expected and the found
// value, before anything touches the hypervisor. Schema: docs/operator.md.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cloister/common/file.h"
#include "cloister/common/result.h"
#include "cloister/firmware_loader/machine.h"
#include "cloister/vmm/log.h"

namespace cloister::vmm {

enum class TeeKind { kNone, kSimSnp, kSimTdx, kSnp, kTdx };
std::string_view tee_name(TeeKind tee);
bool is_snp(TeeKind tee);  // snp or sim-snp
bool is_tdx(TeeKind tee);  // tdx or sim-tdx

// The confidential-launch options. In JSON, "tee": "sim-snp" or an object whose "kind" is the
// TEE and whose other keys are these options, each valid only for the TEEs it names.
struct TeeConfig {
  TeeKind kind = TeeKind::kNone;
  // SEV-SNP (snp, sim-snp).
  std::optional<std::uint64_t> policy;  // guest policy (default 0x30000, or the IGVM file's)
  std::array<std::uint8_t, 32> host_data{};
  std::optional<std::string> id_block;      // file: the 96-byte ID block (with id_auth)
  std::optional<std::string> id_auth;       // file: the 4096-byte ID authentication structure
  bool author_key = false;                  // id_auth carries an author key signature
  std::optional<std::string> vcpu_type;     // QEMU vCPU model: CPUID(1).EAX, the VMSAs' RDX
  std::optional<std::string> certificates;  // snp: GHCB certificate table for extended requests
  // TDX (tdx, sim-tdx).
  std::optional<std::uint64_t> td_attributes;  // TD ATTRIBUTES (default SEPT_VE_DISABLE)
  std::array<std::uint8_t, 48> mr_config_id{};
  std::array<std::uint8_t, 48> mr_owner{};
  std::array<std::uint8_t, 48> mr_owner_config{};
  std::optional<std::string> quote_generation_socket;  // tdx: unix:PATH, vsock:CID:PORT, HOST:PORT
  // The simulated secure processor (sim-snp, sim-tdx).
  std::optional<std::string> sim_state_dir;
  nlohmann::json sim_platform;  // the simulated platform (TCB, chip ID, ...), or null

  bool operator==(const TeeConfig&) const = default;
};

// kAuto: KVM when its device opens, otherwise the emulator (emu.h).
enum class HypervisorKind { kAuto, kKvm, kEmu };
std::string_view hypervisor_kind_name(HypervisorKind kind);

struct BootConfig {
  std::optional<std::string> firmware;  // exactly one of firmware, kernel and igvm
  std::optional<std::string> kernel;
  std::optional<std::string> igvm;    // an IGVM file (confidential launches)
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
  // A host connection on uds_path must send "CONNECT <port>\n" and have the guest accept it
  // within this time, or it is closed (and the guest gets RST).
  std::uint32_t handshake_timeout_ms = 5000;
  // Bytes the guest sent must reach the host peer (be written to its socket) within this time
  // of arriving, or the connection is reset: RST to the guest, the host socket closed.
  std::uint32_t host_send_timeout_ms = 10000;
};
inline constexpr std::uint32_t kMinVsockTimeoutMs = 100;
inline constexpr std::uint32_t kMaxVsockTimeoutMs = 600000;

// A token bucket, as Firecracker's rate limiters have them: `size` tokens, refilled from empty to
// full over refill_time_ms; one_time_burst extra tokens at start, spent first and never
// refilled. size 0: no limit.
struct TokenBucketConfig {
  std::uint64_t size = 0;
  std::uint64_t one_time_burst = 0;
  std::uint64_t refill_time_ms = 0;
  bool operator==(const TokenBucketConfig&) const = default;
};
// A direction's limits: bytes (bandwidth) and frames (ops).
struct RateLimiterConfig {
  TokenBucketConfig bandwidth;
  TokenBucketConfig ops;
  bool operator==(const RateLimiterConfig&) const = default;
};
inline constexpr std::uint64_t kMaxRefillTimeMs = 3600'000;

// virtio-net over a host TAP interface.
struct NetConfig {
  // The TAP interface. The VMM attaches to it (TUNSETIFF), which creates it when it does not
  // exist and the VMM may (CAP_NET_ADMIN); an operator usually creates it beforehand, owned by
  // the VMM's user (ip tuntap add NAME mode tap user USER).
  std::string tap;
  // The guest's MAC address (VIRTIO_NET_F_MAC); unset: the guest driver picks one.
  std::optional<std::array<std::uint8_t, 6>> mac;
  RateLimiterConfig rx_rate_limiter;  // host to guest
  RateLimiterConfig tx_rate_limiter;  // guest to host
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
  TeeConfig tee;
  HypervisorKind hypervisor = HypervisorKind::kAuto;
  BootConfig boot;
  ConsoleConfig console;
  std::vector<DiskConfig> disks;
  std::optional<VsockConfig> vsock;
  std::vector<NetConfig> nets;
  std::optional<std::string> api_socket;
  LogConfig log;
  bool seccomp = true;
};

inline constexpr std::uint32_t kMaxVcpus = fw::kMaxVcpus;
inline constexpr std::uint64_t kMinMemory = 4ull << 20;
inline constexpr std::uint64_t kMaxMemory = fw::kMaxGuestMemory;
inline constexpr std::size_t kMaxVirtioDevices = 8;  // virtio-mmio slots: disks, nets, vsock

// A config file (--config) and a simulated platform description (--sim-platform).
inline constexpr FileLimit kConfigFileLimit{1u << 20,
                                            "a VM config can be (a config is a few hundred bytes)"};
inline constexpr FileLimit kSimPlatformFileLimit{
    64u << 10, "a simulated platform description can be (it is a few hundred bytes)"};

Result<VmConfig> parse_config(const nlohmann::json& document);
// The config's "log" object alone ({format, level, file}), for commands that take no config.
Result<LogConfig> parse_log_config(const nlohmann::json& value);
// A direction's limits ({"bandwidth": {size, one_time_burst, refill_time_ms}, "ops": {...}}),
// as the config and the API's vm.net update give them; `key` names it in errors.
Result<RateLimiterConfig> parse_rate_limiter(const nlohmann::json& value, const std::string& key);
nlohmann::json to_json(const RateLimiterConfig& limiter);
// parse_config() of JSON text, parsed strictly: a key given twice in one object is refused with
// its path ("config: duplicate key \"vcpus\" at /vcpus").
Result<VmConfig> parse_config_text(std::string_view json_text);

// The canonical JSON of a config (as vm.info reports it); parse_config(to_json(c)) == c.
nlohmann::json to_json(const VmConfig& config);

}  // namespace cloister::vmm
