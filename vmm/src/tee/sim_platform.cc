#include "sim_platform.h"

#include <charconv>
#include <cstdlib>

#include "cloister/common/hex.h"

namespace cloister::vmm::tee {
namespace {

using nlohmann::json;
namespace sim = attestation::sim;

Error bad(const std::string& key, const std::string& expected, const json& found) {
  return Error("tee.sim_platform." + key + ": expected " + expected + ", found " + found.dump());
}

Status known_keys(const json& object, const std::string& where,
                  std::initializer_list<std::string_view> known) {
  if (!object.is_object()) return bad(where.empty() ? "" : where, "an object", object);
  for (const auto& [key, value] : object.items()) {
    bool ok = false;
    for (auto k : known) ok = ok || key == k;
    if (!ok) {
      std::string list;
      for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      return Error("tee.sim_platform: unknown key \"" + where + key + "\" (known: " + list + ")");
    }
  }
  return {};
}

Result<std::uint64_t> number(const json& value, const std::string& key, std::uint64_t max) {
  std::uint64_t out = 0;
  if (value.is_number_unsigned() || (value.is_number_integer() && value.get<std::int64_t>() >= 0)) {
    out = value.get<std::uint64_t>();
  } else if (value.is_string()) {
    std::string_view text = value.get_ref<const std::string&>();
    int base = 10;
    if (text.starts_with("0x")) {
      text.remove_prefix(2);
      base = 16;
    }
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out, base);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size())
      return bad(key, "a number", value);
  } else {
    return bad(key, "a number", value);
  }
  if (out > max) return bad(key, "a number up to " + std::to_string(max), value);
  return out;
}

template <std::size_t N>
Result<std::array<std::uint8_t, N>> hex_array(const json& value, const std::string& key) {
  if (!value.is_string()) return bad(key, std::to_string(2 * N) + " hex digits", value);
  auto bytes = from_hex_exact(value.get<std::string>(), N);
  if (!bytes) return Error("tee.sim_platform." + key + ": " + bytes.error().message());
  std::array<std::uint8_t, N> out;
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return out;
}

Result<attestation::snp::TcbParts> tcb(const json& value, const std::string& key,
                                       attestation::snp::TcbParts base) {
  CLOISTER_CHECK_OK(known_keys(value, key + ".", {"bl", "tee", "snp", "ucode", "fmc"}));
  for (const auto& [name, v] : value.items()) {
    CLOISTER_TRY(const std::uint64_t n, number(v, key + "." + name, 255));
    const auto b = static_cast<std::uint8_t>(n);
    if (name == "bl") base.bl = b;
    if (name == "tee") base.tee = b;
    if (name == "snp") base.snp = b;
    if (name == "ucode") base.ucode = b;
    if (name == "fmc") base.fmc = b;
  }
  return base;
}

}  // namespace

Result<sim::SnpPlatformConfig> snp_platform(const json& d) {
  if (d.is_null()) return sim::SnpPlatformConfig{};
  CLOISTER_CHECK_OK(known_keys(d, "",
                               {"product", "chip_id", "tcb", "reported_tcb", "committed_tcb",
                                "launch_tcb", "platform_info", "firmware"}));
  sim::SnpPlatformConfig c;
  if (auto it = d.find("product"); it != d.end()) {
    if (!it->is_string()) return bad("product", "Milan, Genoa or Turin", *it);
    auto product = attestation::snp::product_from_name(it->get<std::string>());
    if (!product) return product.error().with_context("tee.sim_platform.product");
    c = sim::SnpPlatformConfig::for_product(*product);
  }
  if (auto it = d.find("chip_id"); it != d.end()) {
    CLOISTER_TRY(auto chip, hex_array<64>(*it, "chip_id"));
    c.chip_id.assign(chip.begin(), chip.end());
  }
  if (auto it = d.find("tcb"); it != d.end()) {
    CLOISTER_TRY(c.current_tcb, tcb(*it, "tcb", c.current_tcb));
    c.reported_tcb = c.committed_tcb = c.launch_tcb = c.current_tcb;
  }
  const std::pair<const char*, attestation::snp::TcbParts*> tcbs[] = {
      {"reported_tcb", &c.reported_tcb},
      {"committed_tcb", &c.committed_tcb},
      {"launch_tcb", &c.launch_tcb}};
  for (const auto& [key, field] : tcbs) {
    if (auto it = d.find(key); it != d.end()) {
      CLOISTER_TRY(*field, tcb(*it, key, *field));
    }
  }
  if (auto it = d.find("platform_info"); it != d.end()) {
    CLOISTER_TRY(c.platform_info, number(*it, "platform_info", ~0ull));
  }
  if (auto it = d.find("firmware"); it != d.end()) {
    unsigned major = 0, minor = 0, build = 0;
    char tail = 0;
    if (!it->is_string() ||
        std::sscanf(it->get<std::string>().c_str(), "%u.%u.%u%c", &major, &minor, &build, &tail) !=
            3 ||
        major > 255 || minor > 255 || build > 255)
      return bad("firmware", "a version like \"1.55.43\"", *it);
    c.current_firmware =
        c.committed_firmware = {static_cast<std::uint8_t>(major), static_cast<std::uint8_t>(minor),
                                static_cast<std::uint8_t>(build)};
  }
  if (auto valid = c.validate(); !valid) return valid.error().with_context("tee.sim_platform");
  return c;
}

Result<sim::TdxPlatformConfig> tdx_platform(const json& d) {
  if (d.is_null()) return sim::TdxPlatformConfig{};
  CLOISTER_CHECK_OK(known_keys(
      d, "", {"tee_tcb_svn", "fmspc", "pce_svn", "cpu_svn", "qe_svn", "mr_seam", "vulnerable"}));
  sim::TdxPlatformConfig c;
  if (auto it = d.find("tee_tcb_svn"); it != d.end()) {
    CLOISTER_TRY(c.tee_tcb_svn, hex_array<16>(*it, "tee_tcb_svn"));
  }
  if (auto it = d.find("fmspc"); it != d.end()) {
    CLOISTER_TRY(c.fmspc, hex_array<6>(*it, "fmspc"));
  }
  if (auto it = d.find("cpu_svn"); it != d.end()) {
    CLOISTER_TRY(c.cpu_svn, hex_array<16>(*it, "cpu_svn"));
  }
  if (auto it = d.find("mr_seam"); it != d.end()) {
    CLOISTER_TRY(c.mr_seam, hex_array<48>(*it, "mr_seam"));
  }
  if (auto it = d.find("pce_svn"); it != d.end()) {
    CLOISTER_TRY(const std::uint64_t n, number(*it, "pce_svn", 65535));
    c.pce_svn = static_cast<std::uint16_t>(n);
  }
  if (auto it = d.find("qe_svn"); it != d.end()) {
    CLOISTER_TRY(const std::uint64_t n, number(*it, "qe_svn", 65535));
    c.qe_svn = static_cast<std::uint16_t>(n);
  }
  if (auto it = d.find("vulnerable"); it != d.end()) {
    if (!it->is_boolean()) return bad("vulnerable", "true or false", *it);
    c.vulnerable = it->get<bool>();
  }
  if (auto valid = c.validate(); !valid) return valid.error().with_context("tee.sim_platform");
  return c;
}

Result<std::filesystem::path> sim_state_dir(const TeeConfig& config) {
  if (config.sim_state_dir) return std::filesystem::path(*config.sim_state_dir);
  if (const char* env = std::getenv("CLOISTER_SIM_STATE"); env && *env)
    return std::filesystem::path(env);
  if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg && *xdg)
    return std::filesystem::path(xdg) / "cloister" / "sim";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::filesystem::path(home) / ".local" / "state" / "cloister" / "sim";
  return Error(
      "tee.sim_state_dir: not given, and neither $CLOISTER_SIM_STATE, $XDG_STATE_HOME nor $HOME "
      "is set: give --sim-state DIR");
}

}  // namespace cloister::vmm::tee
