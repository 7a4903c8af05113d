#include "cloister/vmm/config/config.h"

#include <sys/un.h>

#include <array>
#include <charconv>

#include "cloister/common/hex.h"
#include "cloister/common/json.h"
#include "cloister/vmm/format.h"

namespace cloister::vmm {
namespace {

using nlohmann::json;

std::string describe(const json& value) {
  std::string text = dump_json(value);
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

Error bad(std::string_view key, std::string_view expected, const json& found) {
  return Error("config: " + std::string(key) + ": expected " + std::string(expected) + ", found " +
               describe(found));
}

Status reject_unknown_keys(const json& object, std::string_view where,
                           std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : object.items()) {
    bool ok = false;
    for (auto k : known) ok = ok || key == k;
    if (!ok) {
      std::string list;
      for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return Error("config: unknown key \"" + std::string(where) + key + "\" (known: " + list +
                   ")");
    }
  }
  return {};
}

Result<std::string> path_value(const json& value, std::string_view key) {
  if (!value.is_string() || value.get<std::string>().empty())
    return bad(key, "a non-empty path string", value);
  const auto& s = value.get_ref<const std::string&>();
  if (s.find('\0') != std::string::npos) return bad(key, "a path without NUL bytes", value);
  return s;
}

Result<bool> bool_value(const json& value, std::string_view key) {
  if (!value.is_boolean()) return bad(key, "true or false", value);
  return value.get<bool>();
}

Result<TeeKind> parse_tee_kind(const json& value, std::string_view key) {
  static constexpr std::array<TeeKind, 5> kinds = {TeeKind::kNone, TeeKind::kSimSnp,
                                                   TeeKind::kSimTdx, TeeKind::kSnp, TeeKind::kTdx};
  if (value.is_string())
    for (auto kind : kinds)
      if (value.get<std::string>() == tee_name(kind)) return kind;
  return bad(key, "one of none, sim-snp, sim-tdx, snp, tdx", value);
}

// A 64-bit number as a JSON integer or a "0x…" / decimal string.
Result<std::uint64_t> u64_value(const json& value, std::string_view key) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (value.is_string()) {
    const std::string& s = value.get_ref<const std::string&>();
    std::string_view digits = s;
    int base = 10;
    if (digits.starts_with("0x") || digits.starts_with("0X")) {
      digits.remove_prefix(2);
      base = 16;
    }
    std::uint64_t out = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out, base);
    if (!digits.empty() && ec == std::errc() && end == digits.data() + digits.size()) return out;
  }
  return bad(key, "a 64-bit number (an integer, or a string like \"0x30000\")", value);
}

template <std::size_t N>
Result<std::array<std::uint8_t, N>> hex_array(const json& value, std::string_view key) {
  if (!value.is_string()) return bad(key, std::to_string(N * 2) + " hex digits", value);
  auto bytes = from_hex_exact(value.get<std::string>(), N);
  if (!bytes) return Error("config: " + std::string(key) + ": " + bytes.error().message());
  std::array<std::uint8_t, N> out;
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return out;
}

// `option` is given: is it valid for `kind`?
Status tee_option_for(TeeKind kind, std::string_view option, bool snp_ok, bool tdx_ok,
                      bool sim_only = false, bool hardware_only = false) {
  const bool sim = kind == TeeKind::kSimSnp || kind == TeeKind::kSimTdx;
  const bool ok = ((snp_ok && is_snp(kind)) || (tdx_ok && is_tdx(kind))) && (!sim_only || sim) &&
                  (!hardware_only || !sim);
  if (ok) return {};
  std::string valid;
  if (snp_ok && !sim_only) valid += "snp";
  if (snp_ok && !hardware_only) valid += std::string(valid.empty() ? "" : ", ") + "sim-snp";
  if (tdx_ok && !sim_only) valid += std::string(valid.empty() ? "" : ", ") + "tdx";
  if (tdx_ok && !hardware_only) valid += std::string(valid.empty() ? "" : ", ") + "sim-tdx";
  return Error("config: tee." + std::string(option) + ": only valid with tee " + valid + ", not " +
               std::string(tee_name(kind)));
}

Result<TeeConfig> parse_tee(const json& value) {
  TeeConfig tee;
  if (value.is_string()) {
    CLOISTER_TRY(tee.kind, parse_tee_kind(value, "tee"));
    return tee;
  }
  if (!value.is_object()) return bad("tee", "a TEE name or an object {kind, options...}", value);
  CLOISTER_CHECK_OK(reject_unknown_keys(
      value, "tee.",
      {"kind", "policy", "host_data", "id_block", "id_auth", "author_key", "vcpu_type",
       "certificates", "td_attributes", "mr_config_id", "mr_owner", "mr_owner_config",
       "quote_generation_socket", "sim_state_dir", "sim_platform"}));
  auto kind = value.find("kind");
  if (kind == value.end())
    return Error("config: tee.kind: missing (none, sim-snp, sim-tdx, snp, tdx)");
  CLOISTER_TRY(tee.kind, parse_tee_kind(*kind, "tee.kind"));
  for (const auto& [key, v] : value.items()) {
    if (key == "kind") continue;
    if (key == "policy") {
      CLOISTER_CHECK_OK(tee_option_for(tee.kind, key, true, false));
      CLOISTER_TRY(tee.policy, u64_value(v, "tee.policy"));
    } else if (key == "host_data") {
      CLOISTER_CHECK_OK(tee_option_for(tee.kind, key, true, false));
      CLOISTER_TRY(tee.host_data, hex_array<32>(v, "tee.host_data"));
    } else if (key == "id_block" || key == "id_auth") {
      CLOISTER_CHECK_OK(tee_option_for(tee.kind, key, true, false));
      CLOISTER_TRY(auto path, path_value(v, "tee." + key));
      (key == "id_block" ? tee.id_block : tee.id_auth) = path;
    } else if (key == "author_key") {
      CLOISTER_CHECK_OK(tee_option_for(tee.kind, key, true, false));
      CLOISTER_TRY(tee.author_key, bool_value(v, "tee.author_key"));
    } else if (key == "vcpu_type") {
      CLOISTER_CHECK_OK(tee_option_for(tee.kind, key, true, false));
      if (!v.is_string() || v.get<std::string>().empty())
        return bad("tee.vcpu_type", "a QEMU vCPU model name like \"EPYC-v4\"", v);
      tee.vcpu_type = v.get<std::string>();
    } else if (key == "certificates") {
      CLOISTER_CHECK_OK(tee_option_for(tee.kind, key, true, false, false, true));
      CLOISTER_TRY(tee.certificates, path_value(v, "tee.certificates"));
    } else if (key == "td_attributes") {
      CLOISTER_CHECK_OK(tee_option_for(tee.kind, key, false, true));
      CLOISTER_TRY(tee.td_attributes, u64_value(v, "tee.td_attributes"));
    } else if (key == "mr_config_id" || key == "mr_owner" || key == "mr_owner_config") {
      CLOISTER_CHECK_OK(tee_option_for(tee.kind, key, false, true));
      CLOISTER_TRY(auto digest, hex_array<48>(v, "tee." + key));
      (key == "mr_config_id" ? tee.mr_config_id
       : key == "mr_owner"   ? tee.mr_owner
                             : tee.mr_owner_config) = digest;
    } else if (key == "quote_generation_socket") {
      CLOISTER_CHECK_OK(tee_option_for(tee.kind, key, false, true, false, true));
      if (!v.is_string() || v.get<std::string>().empty())
        return bad("tee.quote_generation_socket", "unix:PATH, vsock:CID:PORT or HOST:PORT", v);
      tee.quote_generation_socket = v.get<std::string>();
    } else if (key == "sim_state_dir") {
      CLOISTER_CHECK_OK(tee_option_for(tee.kind, key, true, true, true));
      CLOISTER_TRY(tee.sim_state_dir, path_value(v, "tee.sim_state_dir"));
    } else if (key == "sim_platform") {
      CLOISTER_CHECK_OK(tee_option_for(tee.kind, key, true, true, true));
      if (!v.is_object()) return bad("tee.sim_platform", "an object", v);
      tee.sim_platform = v;
    }
  }
  if (tee.id_block.has_value() != tee.id_auth.has_value())
    return Error("config: tee.id_block and tee.id_auth go together: give both or neither");
  if (tee.author_key && !tee.id_block)
    return Error("config: tee.author_key: needs tee.id_block and tee.id_auth");
  return tee;
}

json tee_to_json(const TeeConfig& tee) {
  json out = {{"kind", tee_name(tee.kind)}};
  if (tee.policy) out["policy"] = hex_number(*tee.policy);
  if (tee.host_data != std::array<std::uint8_t, 32>{}) out["host_data"] = to_hex(tee.host_data);
  if (tee.id_block) out["id_block"] = *tee.id_block;
  if (tee.id_auth) out["id_auth"] = *tee.id_auth;
  if (tee.author_key) out["author_key"] = true;
  if (tee.vcpu_type) out["vcpu_type"] = *tee.vcpu_type;
  if (tee.certificates) out["certificates"] = *tee.certificates;
  if (tee.td_attributes) out["td_attributes"] = hex_number(*tee.td_attributes);
  const std::array<std::uint8_t, 48> zero{};
  if (tee.mr_config_id != zero) out["mr_config_id"] = to_hex(tee.mr_config_id);
  if (tee.mr_owner != zero) out["mr_owner"] = to_hex(tee.mr_owner);
  if (tee.mr_owner_config != zero) out["mr_owner_config"] = to_hex(tee.mr_owner_config);
  if (tee.quote_generation_socket) out["quote_generation_socket"] = *tee.quote_generation_socket;
  if (tee.sim_state_dir) out["sim_state_dir"] = *tee.sim_state_dir;
  if (!tee.sim_platform.is_null()) out["sim_platform"] = tee.sim_platform;
  if (out.size() == 1) return out["kind"];
  return out;
}

Result<HypervisorKind> parse_hypervisor(const json& value) {
  static constexpr std::array<HypervisorKind, 3> kinds = {
      HypervisorKind::kAuto, HypervisorKind::kKvm, HypervisorKind::kEmu};
  if (value.is_string())
    for (auto kind : kinds)
      if (value.get<std::string>() == hypervisor_kind_name(kind)) return kind;
  return bad("hypervisor", "one of auto, kvm, emu", value);
}

Result<ConsoleConfig> parse_console(const json& value) {
  if (!value.is_string()) return bad("console", "stdout, none, file:PATH or socket:PATH", value);
  const std::string& s = value.get_ref<const std::string&>();
  if (s == "stdout") return ConsoleConfig{ConsoleKind::kStdout, ""};
  if (s == "none") return ConsoleConfig{ConsoleKind::kNone, ""};
  if (s.rfind("file:", 0) == 0 && s.size() > 5)
    return ConsoleConfig{ConsoleKind::kFile, s.substr(5)};
  if (s.rfind("socket:", 0) == 0 && s.size() > 7) {
    if (s.size() - 7 >= sizeof(sockaddr_un{}.sun_path))
      return bad("console", "a socket path shorter than 108 bytes", value);
    return ConsoleConfig{ConsoleKind::kSocket, s.substr(7)};
  }
  return bad("console", "stdout, none, file:PATH or socket:PATH", value);
}

Result<LogConfig> parse_log(const json& value) {
  if (!value.is_object()) return bad("log", "an object {format, level, file}", value);
  CLOISTER_CHECK_OK(reject_unknown_keys(value, "log.", {"format", "level", "file"}));
  LogConfig log;
  if (auto it = value.find("format"); it != value.end()) {
    if (*it == "text")
      log.format = LogFormat::kText;
    else if (*it == "json")
      log.format = LogFormat::kJson;
    else
      return bad("log.format", "\"text\" or \"json\"", *it);
  }
  if (auto it = value.find("level"); it != value.end()) {
    static constexpr std::array<LogLevel, 4> levels = {LogLevel::kDebug, LogLevel::kInfo,
                                                       LogLevel::kWarn, LogLevel::kError};
    bool found = false;
    for (auto level : levels)
      if (it->is_string() && it->get<std::string>() == log_level_name(level)) {
        log.level = level;
        found = true;
      }
    if (!found) return bad("log.level", "one of debug, info, warn, error", *it);
  }
  if (auto it = value.find("file"); it != value.end()) {
    CLOISTER_TRY(log.file, path_value(*it, "log.file"));
  }
  return log;
}

Result<BootConfig> parse_boot(const json& value) {
  if (!value.is_object())
    return bad("boot", "an object {firmware | kernel | igvm, initrd, cmdline}", value);
  CLOISTER_CHECK_OK(
      reject_unknown_keys(value, "boot.", {"firmware", "kernel", "igvm", "initrd", "cmdline"}));
  BootConfig boot;
  if (auto it = value.find("igvm"); it != value.end()) {
    CLOISTER_TRY(boot.igvm, path_value(*it, "boot.igvm"));
  }
  if (auto it = value.find("firmware"); it != value.end()) {
    CLOISTER_TRY(boot.firmware, path_value(*it, "boot.firmware"));
  }
  if (auto it = value.find("kernel"); it != value.end()) {
    CLOISTER_TRY(boot.kernel, path_value(*it, "boot.kernel"));
  }
  if (auto it = value.find("initrd"); it != value.end()) {
    CLOISTER_TRY(boot.initrd, path_value(*it, "boot.initrd"));
  }
  if (auto it = value.find("cmdline"); it != value.end()) {
    if (!it->is_string()) return bad("boot.cmdline", "a string", *it);
    boot.cmdline = it->get<std::string>();
    if (boot.cmdline.find('\0') != std::string::npos)
      return bad("boot.cmdline", "a string without NUL bytes", *it);
    if (boot.cmdline.size() >= 65536)
      return Error("config: boot.cmdline: expected at most 65535 bytes, found " +
                   std::to_string(boot.cmdline.size()));
  }
  const int images = (boot.firmware ? 1 : 0) + (boot.kernel ? 1 : 0) + (boot.igvm ? 1 : 0);
  if (images != 1)
    return Error(
        std::string(
            "config: boot: expected exactly one of \"firmware\", \"kernel\" and \"igvm\", found ") +
        (images == 0 ? "none" : std::to_string(images)));
  if (boot.initrd && !boot.kernel)
    return Error("config: boot.initrd: only valid with boot.kernel (firmware loads its own)");
  return boot;
}

Result<std::vector<DiskConfig>> parse_disks(const json& value) {
  if (!value.is_array()) return bad("disks", "an array of {path, read_only}", value);
  if (value.size() > kMaxVirtioDevices)
    return Error("config: disks: expected at most " + std::to_string(kMaxVirtioDevices) +
                 " disks (virtio-mmio slots), found " + std::to_string(value.size()));
  std::vector<DiskConfig> disks;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const json& d = value[i];
    const std::string key = "disks[" + std::to_string(i) + "]";
    if (!d.is_object()) return bad(key, "an object {path, read_only}", d);
    CLOISTER_CHECK_OK(reject_unknown_keys(d, key + ".", {"path", "read_only"}));
    auto path = d.find("path");
    if (path == d.end()) return Error("config: " + key + ".path: missing");
    DiskConfig disk;
    CLOISTER_TRY(disk.path, path_value(*path, key + ".path"));
    if (auto ro = d.find("read_only"); ro != d.end()) {
      CLOISTER_TRY(disk.read_only, bool_value(*ro, key + ".read_only"));
    }
    disks.push_back(std::move(disk));
  }
  return disks;
}

Result<std::uint32_t> timeout_ms_value(const json& value, std::string_view key) {
  if (!value.is_number_integer() || value.get<std::int64_t>() < kMinVsockTimeoutMs ||
      value.get<std::int64_t>() > kMaxVsockTimeoutMs)
    return bad(key,
               "milliseconds, an integer " + std::to_string(kMinVsockTimeoutMs) + ".." +
                   std::to_string(kMaxVsockTimeoutMs),
               value);
  return value.get<std::uint32_t>();
}

Result<VsockConfig> parse_vsock(const json& value) {
  if (!value.is_object()) return bad("vsock", "an object {guest_cid, uds_path, ...}", value);
  CLOISTER_CHECK_OK(reject_unknown_keys(
      value, "vsock.", {"guest_cid", "uds_path", "handshake_timeout_ms", "host_send_timeout_ms"}));
  VsockConfig vsock;
  if (auto it = value.find("handshake_timeout_ms"); it != value.end()) {
    CLOISTER_TRY(vsock.handshake_timeout_ms, timeout_ms_value(*it, "vsock.handshake_timeout_ms"));
  }
  if (auto it = value.find("host_send_timeout_ms"); it != value.end()) {
    CLOISTER_TRY(vsock.host_send_timeout_ms, timeout_ms_value(*it, "vsock.host_send_timeout_ms"));
  }
  if (auto it = value.find("guest_cid"); it != value.end()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() < 3 ||
        it->get<std::int64_t>() > 0xffffffffll)
      return bad("vsock.guest_cid", "an integer 3..4294967295 (0-2 are reserved)", *it);
    vsock.guest_cid = it->get<std::uint64_t>();
  }
  auto uds = value.find("uds_path");
  if (uds == value.end()) return Error("config: vsock.uds_path: missing");
  CLOISTER_TRY(vsock.uds_path, path_value(*uds, "vsock.uds_path"));
  // "<uds_path>_<port>" must fit sockaddr_un (port: up to 10 digits).
  if (vsock.uds_path.size() + 11 >= sizeof(sockaddr_un{}.sun_path))
    return bad("vsock.uds_path", "a path shorter than 97 bytes", *uds);
  return vsock;
}

}  // namespace

bool is_snp(TeeKind tee) {
  return tee == TeeKind::kSnp || tee == TeeKind::kSimSnp;
}

bool is_tdx(TeeKind tee) {
  return tee == TeeKind::kTdx || tee == TeeKind::kSimTdx;
}

std::string_view tee_name(TeeKind tee) {
  switch (tee) {
    case TeeKind::kNone:
      return "none";
    case TeeKind::kSimSnp:
      return "sim-snp";
    case TeeKind::kSimTdx:
      return "sim-tdx";
    case TeeKind::kSnp:
      return "snp";
    case TeeKind::kTdx:
      return "tdx";
  }
  return "unknown";
}

std::string_view hypervisor_kind_name(HypervisorKind kind) {
  switch (kind) {
    case HypervisorKind::kAuto:
      return "auto";
    case HypervisorKind::kKvm:
      return "kvm";
    case HypervisorKind::kEmu:
      return "emu";
  }
  return "unknown";
}

namespace {

Result<TokenBucketConfig> parse_token_bucket(const json& value, const std::string& key) {
  if (!value.is_object())
    return bad(key, "an object {size, one_time_burst, refill_time_ms}", value);
  CLOISTER_CHECK_OK(
      reject_unknown_keys(value, key + ".", {"size", "one_time_burst", "refill_time_ms"}));
  TokenBucketConfig bucket;
  const auto count = [&](const char* name, std::uint64_t& out) -> Status {
    auto it = value.find(name);
    if (it == value.end()) return {};
    if (!it->is_number_unsigned() && !(it->is_number_integer() && it->get<std::int64_t>() >= 0))
      return bad(key + "." + name, "a non-negative integer", *it);
    out = it->get<std::uint64_t>();
    return {};
  };
  CLOISTER_CHECK_OK(count("size", bucket.size));
  CLOISTER_CHECK_OK(count("one_time_burst", bucket.one_time_burst));
  CLOISTER_CHECK_OK(count("refill_time_ms", bucket.refill_time_ms));
  if (bucket.size > 0 && (bucket.refill_time_ms == 0 || bucket.refill_time_ms > kMaxRefillTimeMs))
    return Error("config: " + key + ".refill_time_ms: expected 1.." +
                 std::to_string(kMaxRefillTimeMs) + " with a size, found " +
                 std::to_string(bucket.refill_time_ms));
  return bucket;
}

json to_json(const TokenBucketConfig& b) {
  return {
      {"size", b.size}, {"one_time_burst", b.one_time_burst}, {"refill_time_ms", b.refill_time_ms}};
}

// "52:54:00:12:34:56": six hex pairs; a group (multicast) address cannot be a NIC's.
Result<std::array<std::uint8_t, 6>> parse_mac(const json& value, const std::string& key) {
  const std::string expected = "a unicast MAC address like \"52:54:00:12:34:56\"";
  if (!value.is_string() || value.get<std::string>().size() != 17) return bad(key, expected, value);
  const std::string text = value.get<std::string>();
  std::array<std::uint8_t, 6> mac{};
  for (std::size_t i = 0; i < 6; ++i) {
    if (i > 0 && text[i * 3 - 1] != ':') return bad(key, expected, value);
    auto byte = hex_byte(std::string_view(text).substr(i * 3, 2));
    if (!byte) return bad(key, expected, value);
    mac[i] = *byte;
  }
  if (mac[0] & 1) return bad(key, expected, value);
  return mac;
}

Result<std::vector<NetConfig>> parse_nets(const json& value) {
  if (!value.is_array()) return bad("nets", "an array of {tap, mac, rx/tx_rate_limiter}", value);
  std::vector<NetConfig> nets;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const std::string key = "nets[" + std::to_string(i) + "]";
    const json& n = value[i];
    if (!n.is_object()) return bad(key, "an object {tap, mac, rx/tx_rate_limiter}", n);
    CLOISTER_CHECK_OK(
        reject_unknown_keys(n, key + ".", {"tap", "mac", "rx_rate_limiter", "tx_rate_limiter"}));
    NetConfig net;
    auto tap = n.find("tap");
    if (tap == n.end()) return Error("config: " + key + ".tap: missing");
    // IFNAMSIZ is 16 with the NUL; the kernel refuses '/', ':' and white space in names.
    if (!tap->is_string() || tap->get<std::string>().empty() ||
        tap->get<std::string>().size() > 15 ||
        tap->get<std::string>().find_first_of("/: \t\n") != std::string::npos || *tap == "." ||
        *tap == "..")
      return bad(key + ".tap", "an interface name of 1 to 15 bytes without '/', ':' or spaces",
                 *tap);
    net.tap = tap->get<std::string>();
    for (const auto& other : nets)
      if (other.tap == net.tap) return bad(key + ".tap", "a TAP no other net uses", *tap);
    if (auto it = n.find("mac"); it != n.end()) {
      CLOISTER_TRY(net.mac, parse_mac(*it, key + ".mac"));
    }
    if (auto it = n.find("rx_rate_limiter"); it != n.end()) {
      CLOISTER_TRY(net.rx_rate_limiter, parse_rate_limiter(*it, key + ".rx_rate_limiter"));
    }
    if (auto it = n.find("tx_rate_limiter"); it != n.end()) {
      CLOISTER_TRY(net.tx_rate_limiter, parse_rate_limiter(*it, key + ".tx_rate_limiter"));
    }
    nets.push_back(std::move(net));
  }
  return nets;
}

}  // namespace

Result<RateLimiterConfig> parse_rate_limiter(const json& value, const std::string& key) {
  if (!value.is_object()) return bad(key, "an object {bandwidth, ops}", value);
  CLOISTER_CHECK_OK(reject_unknown_keys(value, key + ".", {"bandwidth", "ops"}));
  RateLimiterConfig limiter;
  if (auto it = value.find("bandwidth"); it != value.end()) {
    CLOISTER_TRY(limiter.bandwidth, parse_token_bucket(*it, key + ".bandwidth"));
  }
  if (auto it = value.find("ops"); it != value.end()) {
    CLOISTER_TRY(limiter.ops, parse_token_bucket(*it, key + ".ops"));
  }
  return limiter;
}

json to_json(const RateLimiterConfig& limiter) {
  return {{"bandwidth", to_json(limiter.bandwidth)}, {"ops", to_json(limiter.ops)}};
}

Result<LogConfig> parse_log_config(const json& value) {
  return parse_log(value);
}

Result<VmConfig> parse_config(const json& doc) {
  if (!doc.is_object()) return bad("document", "a JSON object", doc);
  CLOISTER_CHECK_OK(
      reject_unknown_keys(doc, "",
                          {"vcpus", "memory", "hugepages", "tee", "hypervisor", "boot", "console",
                           "disks", "vsock", "nets", "api_socket", "log", "seccomp"}));
  VmConfig config;
  if (auto it = doc.find("vcpus"); it != doc.end()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() < 1 ||
        it->get<std::int64_t>() > kMaxVcpus)
      return bad("vcpus", "an integer 1.." + std::to_string(kMaxVcpus), *it);
    config.vcpus = static_cast<std::uint32_t>(it->get<std::int64_t>());
  }
  if (auto it = doc.find("hugepages"); it != doc.end()) {
    CLOISTER_TRY(config.hugepages, bool_value(*it, "hugepages"));
  }
  if (auto it = doc.find("memory"); it != doc.end()) {
    if (it->is_number_unsigned() || (it->is_number_integer() && it->get<std::int64_t>() >= 0)) {
      config.memory_bytes = it->get<std::uint64_t>();
    } else if (it->is_string()) {
      CLOISTER_TRY(config.memory_bytes, fw::parse_memory_size(it->get<std::string>()));
    } else {
      return bad("memory", "a size like \"512M\" or a byte count", *it);
    }
    const std::uint64_t align = config.hugepages ? (2ull << 20) : 4096;
    if (config.memory_bytes < kMinMemory || config.memory_bytes > kMaxMemory ||
        config.memory_bytes % align != 0)
      return Error("config: memory: expected " + std::to_string(kMinMemory >> 20) + " MiB.." +
                   std::to_string(kMaxMemory >> 30) + " GiB in multiples of " +
                   (config.hugepages ? "2 MiB (hugepages)" : "4 KiB") + ", found " +
                   std::to_string(config.memory_bytes) + " bytes");
  } else if (config.hugepages && config.memory_bytes % (2ull << 20) != 0) {
    return Error("config: memory: must be a multiple of 2 MiB with hugepages");
  }
  if (auto it = doc.find("tee"); it != doc.end()) {
    CLOISTER_TRY(config.tee, parse_tee(*it));
  }
  if (auto it = doc.find("hypervisor"); it != doc.end()) {
    CLOISTER_TRY(config.hypervisor, parse_hypervisor(*it));
  }
  auto boot = doc.find("boot");
  if (boot == doc.end())
    return Error("config: boot: missing (give boot.firmware, boot.kernel or boot.igvm)");
  CLOISTER_TRY(config.boot, parse_boot(*boot));
  if (config.tee.kind != TeeKind::kNone && config.boot.kernel)
    return Error("config: boot.kernel: a confidential launch (tee " +
                 std::string(tee_name(config.tee.kind)) +
                 ") starts from measured firmware or an IGVM file, not a bare kernel: give "
                 "boot.firmware or boot.igvm");
  if ((config.tee.kind == TeeKind::kSnp || config.tee.kind == TeeKind::kTdx) &&
      !config.boot.cmdline.empty())
    return Error("config: boot.cmdline: a " + std::string(tee_name(config.tee.kind)) +
                 " launch does not measure a command line (measured direct boot is not "
                 "implemented), so the guest would get unattested input: leave it out");
  if ((config.tee.kind == TeeKind::kSnp || config.tee.kind == TeeKind::kTdx) &&
      config.hypervisor == HypervisorKind::kEmu)
    return Error("config: hypervisor: emu cannot launch tee " +
                 std::string(tee_name(config.tee.kind)) +
                 " (SEV-SNP and TDX need KVM on capable hardware): give hypervisor kvm or auto, "
                 "or tee sim-snp / sim-tdx");
  if (config.tee.kind == TeeKind::kNone && config.boot.igvm)
    return Error(
        "config: boot.igvm: IGVM files describe confidential launches; give tee "
        "sim-snp, sim-tdx, snp or tdx");
  if (auto it = doc.find("console"); it != doc.end()) {
    CLOISTER_TRY(config.console, parse_console(*it));
  }
  if (auto it = doc.find("disks"); it != doc.end()) {
    CLOISTER_TRY(config.disks, parse_disks(*it));
  }
  if (auto it = doc.find("vsock"); it != doc.end()) {
    CLOISTER_TRY(config.vsock, parse_vsock(*it));
  }
  if (auto it = doc.find("nets"); it != doc.end()) {
    CLOISTER_TRY(config.nets, parse_nets(*it));
  }
  const std::size_t virtio_devices =
      config.disks.size() + config.nets.size() + (config.vsock ? 1 : 0);
  if (virtio_devices > kMaxVirtioDevices)
    return Error("config: disks, nets and vsock: expected at most " +
                 std::to_string(kMaxVirtioDevices) + " virtio devices, found " +
                 std::to_string(virtio_devices));
  if (auto it = doc.find("api_socket"); it != doc.end()) {
    CLOISTER_TRY(auto path, path_value(*it, "api_socket"));
    if (path.size() >= sizeof(sockaddr_un{}.sun_path))
      return bad("api_socket", "a path shorter than 108 bytes", *it);
    config.api_socket = path;
  }
  if (auto it = doc.find("log"); it != doc.end()) {
    CLOISTER_TRY(config.log, parse_log(*it));
  }
  if (auto it = doc.find("seccomp"); it != doc.end()) {
    CLOISTER_TRY(config.seccomp, bool_value(*it, "seccomp"));
  }
  return config;
}

Result<VmConfig> parse_config_text(std::string_view text) {
  CLOISTER_TRY(json doc, parse_json_strict(text, "config"));
  return parse_config(doc);
}

json to_json(const VmConfig& c) {
  json boot = json::object();
  if (c.boot.firmware) boot["firmware"] = *c.boot.firmware;
  if (c.boot.kernel) boot["kernel"] = *c.boot.kernel;
  if (c.boot.igvm) boot["igvm"] = *c.boot.igvm;
  if (c.boot.initrd) boot["initrd"] = *c.boot.initrd;
  boot["cmdline"] = c.boot.cmdline;
  std::string console;
  switch (c.console.kind) {
    case ConsoleKind::kStdout:
      console = "stdout";
      break;
    case ConsoleKind::kNone:
      console = "none";
      break;
    case ConsoleKind::kFile:
      console = "file:" + c.console.path;
      break;
    case ConsoleKind::kSocket:
      console = "socket:" + c.console.path;
      break;
  }
  json disks = json::array();
  for (const auto& d : c.disks) disks.push_back({{"path", d.path}, {"read_only", d.read_only}});
  json log = {{"format", c.log.format == LogFormat::kJson ? "json" : "text"},
              {"level", log_level_name(c.log.level)}};
  if (!c.log.file.empty()) log["file"] = c.log.file;
  json out = {{"vcpus", c.vcpus},
              {"memory", c.memory_bytes},
              {"hugepages", c.hugepages},
              {"tee", tee_to_json(c.tee)},
              {"hypervisor", hypervisor_kind_name(c.hypervisor)},
              {"boot", boot},
              {"console", console},
              {"disks", disks},
              {"log", log},
              {"seccomp", c.seccomp}};
  if (c.api_socket) out["api_socket"] = *c.api_socket;
  if (!c.nets.empty()) {
    json nets = json::array();
    for (const auto& n : c.nets) {
      json net = {{"tap", n.tap},
                  {"rx_rate_limiter", to_json(n.rx_rate_limiter)},
                  {"tx_rate_limiter", to_json(n.tx_rate_limiter)}};
      if (n.mac) {
        std::string mac;
        for (std::uint8_t b : *n.mac) mac += (mac.empty() ? "" : ":") + to_hex(ByteView(&b, 1));
        net["mac"] = mac;
      }
      nets.push_back(std::move(net));
    }
    out["nets"] = std::move(nets);
  }
  if (c.vsock)
    out["vsock"] = {{"guest_cid", c.vsock->guest_cid},
                    {"uds_path", c.vsock->uds_path},
                    {"handshake_timeout_ms", c.vsock->handshake_timeout_ms},
                    {"host_send_timeout_ms", c.vsock->host_send_timeout_ms}};
  return out;
}

}  // namespace cloister::vmm
