#include "cloister/policy/policy.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "cloister/common/file.h"
#include "cloister/common/hex.h"
#include "cloister/common/json.h"

namespace cloister::policy {
namespace {

using json = nlohmann::json;

// An allowlist with no entries: refused rather than read as "any", so a policy template that
// renders an empty list does not silently accept every value.
constexpr const char* kEmptyList =
    "expected at least one value (an empty allowlist would accept any; leave the key out for "
    "that)";

// Reads one JSON object strictly: every key must be known, every value well-typed. Errors
// carry the JSON pointer of the offending value.
class ObjectReader {
 public:
  ObjectReader(const json& object, std::string path) : object_(object), path_(std::move(path)) {}

  Status only(std::initializer_list<const char*> keys) const {
    if (!object_.is_object()) return fail(path_, "expected an object");
    std::set<std::string> allowed(keys.begin(), keys.end());
    for (const auto& [key, value] : object_.items()) {
      if (!allowed.count(key)) {
        std::string list;
        for (const auto& k : allowed) list += (list.empty() ? "" : ", ") + k;
        return fail(path_, "unknown key '" + key + "' (expected one of: " + list + ")");
      }
    }
    return {};
  }

  const json* get(const char* key) const {
    auto it = object_.find(key);
    return it == object_.end() ? nullptr : &*it;
  }
  std::string at(const char* key) const { return path_ + "/" + key; }

  Status boolean(const char* key, bool& out) const {
    const json* v = get(key);
    if (!v) return {};
    if (!v->is_boolean()) return fail(at(key), "expected true or false");
    out = v->get<bool>();
    return {};
  }

  template <typename T>
  Status integer(const char* key, std::optional<T>& out, std::uint64_t max) const {
    const json* v = get(key);
    if (!v) return {};
    if (!v->is_number_unsigned()) return fail(at(key), "expected a non-negative integer");
    auto n = v->get<std::uint64_t>();
    if (n > max)
      return fail(at(key),
                  "expected at most " + std::to_string(max) + ", found " + std::to_string(n));
    out = static_cast<T>(n);
    return {};
  }

  // An integer given as a JSON number or a "0x…" hex string (64-bit masks).
  Status mask(const char* key, std::optional<std::uint64_t>& out) const {
    const json* v = get(key);
    if (!v) return {};
    if (v->is_number_unsigned()) {
      out = v->get<std::uint64_t>();
      return {};
    }
    if (v->is_string()) {
      std::string s = v->get<std::string>();
      if (s.size() > 2 && s.size() <= 18 && (s.rfind("0x", 0) == 0 || s.rfind("0X", 0) == 0) &&
          s.find_first_not_of("0123456789abcdefABCDEF", 2) == std::string::npos) {
        out = std::stoull(s.substr(2), nullptr, 16);
        return {};
      }
    }
    return fail(at(key), "expected a non-negative integer or a 0x-prefixed hex string");
  }

  Status hex(const char* key, std::optional<Bytes>& out, std::size_t size) const {
    const json* v = get(key);
    if (!v) return {};
    CLOISTER_TRY(Bytes bytes, hex_value(*v, at(key), size));
    out = std::move(bytes);
    return {};
  }

  Status hex_list(const char* key, std::vector<Bytes>& out, std::size_t size) const {
    const json* v = get(key);
    if (!v) return {};
    if (!v->is_array()) return fail(at(key), "expected an array of hex strings");
    if (v->empty()) return fail(at(key), kEmptyList);
    out.clear();
    for (std::size_t i = 0; i < v->size(); ++i) {
      CLOISTER_TRY(Bytes bytes, hex_value((*v)[i], at(key) + "/" + std::to_string(i), size));
      out.push_back(std::move(bytes));
    }
    return {};
  }

  // "1.55" -> (1, 55)
  Status version(const char* key, std::optional<std::pair<std::uint8_t, std::uint8_t>>& out) const {
    const json* v = get(key);
    if (!v) return {};
    std::string s = v->is_string() ? v->get<std::string>() : "";
    auto dot = s.find('.');
    auto number = [](const std::string& part) -> int {
      if (part.empty() || part.size() > 3 ||
          part.find_first_not_of("0123456789") != std::string::npos)
        return -1;
      return std::stoi(part);
    };
    int major = dot == std::string::npos ? -1 : number(s.substr(0, dot));
    int minor = dot == std::string::npos ? -1 : number(s.substr(dot + 1));
    if (major < 0 || major > 255 || minor < 0 || minor > 255)
      return fail(at(key), "expected \"MAJOR.MINOR\" with each part 0..255, e.g. \"1.55\"");
    out = std::make_pair(static_cast<std::uint8_t>(major), static_cast<std::uint8_t>(minor));
    return {};
  }

  static Error fail(const std::string& path, const std::string& why) {
    return Error("policy " + (path.empty() ? std::string("/") : path) + ": " + why);
  }

 private:
  static Result<Bytes> hex_value(const json& v, const std::string& path, std::size_t size) {
    if (!v.is_string()) return fail(path, "expected a hex string");
    // size 0: any length.
    auto bytes =
        size == 0 ? from_hex(v.get<std::string>()) : from_hex_exact(v.get<std::string>(), size);
    if (!bytes) return fail(path, bytes.error().message());
    return bytes;
  }

  const json& object_;
  std::string path_;
};

Status read_tcb(const ObjectReader& parent, const char* key, TcbMinimum& out) {
  const json* v = parent.get(key);
  if (!v) return {};
  ObjectReader r(*v, parent.at(key));
  CLOISTER_CHECK_OK(r.only({"fmc", "bl", "tee", "snp", "ucode"}));
  CLOISTER_CHECK_OK(r.integer("fmc", out.fmc, 255));
  CLOISTER_CHECK_OK(r.integer("bl", out.bl, 255));
  CLOISTER_CHECK_OK(r.integer("tee", out.tee, 255));
  CLOISTER_CHECK_OK(r.integer("snp", out.snp, 255));
  CLOISTER_CHECK_OK(r.integer("ucode", out.ucode, 255));
  return {};
}

Result<SnpPolicy> read_snp(const json& object) {
  SnpPolicy p = default_snp_policy();
  ObjectReader r(object, "/snp");
  CLOISTER_CHECK_OK(r.only({"measurements",
                            "host_data",
                            "report_data",
                            "family_id",
                            "image_id",
                            "id_key_digests",
                            "author_key_digests",
                            "require_id_block",
                            "require_author_key",
                            "report_id",
                            "report_id_ma",
                            "guest_policy",
                            "minimum_guest_svn",
                            "minimum_tcb",
                            "minimum_build",
                            "minimum_version",
                            "allow_provisional_firmware",
                            "platform_info",
                            "vmpl",
                            "chip_ids",
                            "signing_keys",
                            "products",
                            "minimum_launch_mit_vector",
                            "minimum_current_mit_vector",
                            "revocation"}));
  CLOISTER_CHECK_OK(r.hex_list("measurements", p.measurements, 48));
  CLOISTER_CHECK_OK(r.hex("host_data", p.host_data, 32));
  CLOISTER_CHECK_OK(r.hex("report_data", p.report_data, 64));
  CLOISTER_CHECK_OK(r.hex("family_id", p.family_id, 16));
  CLOISTER_CHECK_OK(r.hex("image_id", p.image_id, 16));
  CLOISTER_CHECK_OK(r.hex_list("id_key_digests", p.id_key_digests, 48));
  CLOISTER_CHECK_OK(r.hex_list("author_key_digests", p.author_key_digests, 48));
  CLOISTER_CHECK_OK(r.boolean("require_id_block", p.require_id_block));
  CLOISTER_CHECK_OK(r.boolean("require_author_key", p.require_author_key));
  CLOISTER_CHECK_OK(r.hex("report_id", p.report_id, 32));
  CLOISTER_CHECK_OK(r.hex("report_id_ma", p.report_id_ma, 32));
  CLOISTER_CHECK_OK(r.integer("minimum_guest_svn", p.minimum_guest_svn, 0xffffffffu));
  CLOISTER_CHECK_OK(r.integer("minimum_build", p.minimum_build, 255));
  CLOISTER_CHECK_OK(r.version("minimum_version", p.minimum_version));
  CLOISTER_CHECK_OK(r.boolean("allow_provisional_firmware", p.allow_provisional_firmware));
  CLOISTER_CHECK_OK(r.hex_list("chip_ids", p.chip_ids, 64));
  CLOISTER_CHECK_OK(r.mask("minimum_launch_mit_vector", p.minimum_launch_mit_vector));
  CLOISTER_CHECK_OK(r.mask("minimum_current_mit_vector", p.minimum_current_mit_vector));

  if (const json* g = r.get("guest_policy")) {
    ObjectReader gr(*g, r.at("guest_policy"));
    auto& gp = p.guest_policy;
    CLOISTER_CHECK_OK(
        gr.only({"abi_minimum", "allow_debug", "allow_migration_agent", "allow_smt", "allow_cxl",
                 "require_single_socket", "require_mem_aes_256_xts", "require_rapl_disabled",
                 "require_ciphertext_hiding", "require_page_swap_disabled"}));
    CLOISTER_CHECK_OK(gr.version("abi_minimum", gp.abi_minimum));
    CLOISTER_CHECK_OK(gr.boolean("allow_debug", gp.allow_debug));
    CLOISTER_CHECK_OK(gr.boolean("allow_migration_agent", gp.allow_migration_agent));
    CLOISTER_CHECK_OK(gr.boolean("allow_smt", gp.allow_smt));
    CLOISTER_CHECK_OK(gr.boolean("allow_cxl", gp.allow_cxl));
    CLOISTER_CHECK_OK(gr.boolean("require_single_socket", gp.require_single_socket));
    CLOISTER_CHECK_OK(gr.boolean("require_mem_aes_256_xts", gp.require_mem_aes_256_xts));
    CLOISTER_CHECK_OK(gr.boolean("require_rapl_disabled", gp.require_rapl_disabled));
    CLOISTER_CHECK_OK(gr.boolean("require_ciphertext_hiding", gp.require_ciphertext_hiding));
    CLOISTER_CHECK_OK(gr.boolean("require_page_swap_disabled", gp.require_page_swap_disabled));
  }
  if (const json* t = r.get("minimum_tcb")) {
    ObjectReader tr(*t, r.at("minimum_tcb"));
    CLOISTER_CHECK_OK(tr.only({"reported", "committed", "current", "launch"}));
    CLOISTER_CHECK_OK(read_tcb(tr, "reported", p.minimum_reported_tcb));
    CLOISTER_CHECK_OK(read_tcb(tr, "committed", p.minimum_committed_tcb));
    CLOISTER_CHECK_OK(read_tcb(tr, "current", p.minimum_current_tcb));
    CLOISTER_CHECK_OK(read_tcb(tr, "launch", p.minimum_launch_tcb));
  }
  if (const json* pi = r.get("platform_info")) {
    ObjectReader pr(*pi, r.at("platform_info"));
    auto& pl = p.platform_info;
    CLOISTER_CHECK_OK(
        pr.only({"allow_smt", "allow_tsme", "allow_tio", "require_ecc", "require_rapl_disabled",
                 "require_ciphertext_hiding", "require_alias_check_complete"}));
    CLOISTER_CHECK_OK(pr.boolean("allow_smt", pl.allow_smt));
    CLOISTER_CHECK_OK(pr.boolean("allow_tsme", pl.allow_tsme));
    CLOISTER_CHECK_OK(pr.boolean("allow_tio", pl.allow_tio));
    CLOISTER_CHECK_OK(pr.boolean("require_ecc", pl.require_ecc));
    CLOISTER_CHECK_OK(pr.boolean("require_rapl_disabled", pl.require_rapl_disabled));
    CLOISTER_CHECK_OK(pr.boolean("require_ciphertext_hiding", pl.require_ciphertext_hiding));
    CLOISTER_CHECK_OK(pr.boolean("require_alias_check_complete", pl.require_alias_check_complete));
  }
  if (const json* v = r.get("vmpl")) {
    if (!v->is_array() || v->empty())
      return ObjectReader::fail(r.at("vmpl"), "expected a non-empty array of VMPLs (0..3)");
    p.vmpls.clear();
    for (std::size_t i = 0; i < v->size(); ++i) {
      const json& e = (*v)[i];
      if (!e.is_number_unsigned() || e.get<std::uint64_t>() > 3)
        return ObjectReader::fail(r.at("vmpl") + "/" + std::to_string(i), "expected a VMPL 0..3");
      p.vmpls.push_back(e.get<std::uint32_t>());
    }
  }
  if (const json* v = r.get("signing_keys")) {
    if (!v->is_array() || v->empty())
      return ObjectReader::fail(r.at("signing_keys"),
                                "expected a non-empty array of \"vcek\"/\"vlek\"");
    p.allow_vcek = p.allow_vlek = false;
    for (std::size_t i = 0; i < v->size(); ++i) {
      const json& e = (*v)[i];
      std::string s = e.is_string() ? e.get<std::string>() : "";
      if (s == "vcek") {
        p.allow_vcek = true;
      } else if (s == "vlek") {
        p.allow_vlek = true;
      } else {
        return ObjectReader::fail(r.at("signing_keys") + "/" + std::to_string(i),
                                  "expected \"vcek\" or \"vlek\"");
      }
    }
  }
  if (const json* v = r.get("products")) {
    static const std::set<std::string> kProducts = {"Milan", "Genoa", "Turin", "Venice"};
    if (!v->is_array())
      return ObjectReader::fail(r.at("products"), "expected an array of product names");
    if (v->empty()) return ObjectReader::fail(r.at("products"), kEmptyList);
    for (std::size_t i = 0; i < v->size(); ++i) {
      const json& e = (*v)[i];
      if (!e.is_string() || !kProducts.count(e.get<std::string>()))
        return ObjectReader::fail(r.at("products") + "/" + std::to_string(i),
                                  "expected one of Milan, Genoa, Turin, Venice");
      p.products.push_back(e.get<std::string>());
    }
  }
  if (const json* v = r.get("revocation")) {
    ObjectReader rr(*v, r.at("revocation"));
    CLOISTER_CHECK_OK(rr.only({"require_crl", "allow_stale_crl"}));
    CLOISTER_CHECK_OK(rr.boolean("require_crl", p.require_crl));
    CLOISTER_CHECK_OK(rr.boolean("allow_stale_crl", p.allow_stale_crl));
  }
  return p;
}

// The TCB statuses a policy may accept (Revoked and the non-statuses never can be).
const std::set<std::string>& acceptable_tcb_statuses() {
  static const std::set<std::string> statuses = {"UpToDate",
                                                 "SWHardeningNeeded",
                                                 "ConfigurationNeeded",
                                                 "ConfigurationAndSWHardeningNeeded",
                                                 "OutOfDate",
                                                 "OutOfDateConfigurationNeeded",
                                                 "TDRelaunchAdvised",
                                                 "TDRelaunchAdvisedConfigurationNeeded"};
  return statuses;
}

Status read_masked(const ObjectReader& r, const char* key, std::optional<std::uint64_t>& mask,
                   std::uint64_t& value) {
  std::optional<std::uint64_t> v;
  CLOISTER_CHECK_OK(r.mask("mask", mask));
  CLOISTER_CHECK_OK(r.mask("value", v));
  if (!v)
    return ObjectReader::fail(r.at("value"),
                              "required (the bits the masked " + std::string(key) + " must equal)");
  value = *v;
  if (mask && (value & ~*mask) != 0)
    return ObjectReader::fail(r.at("value"), "sets bits outside mask");
  return {};
}

Status read_strings(const ObjectReader& r, const char* key, std::vector<std::string>& out,
                    const std::set<std::string>* allowed) {
  const json* v = r.get(key);
  if (!v) return {};
  if (!v->is_array()) return ObjectReader::fail(r.at(key), "expected an array of strings");
  out.clear();
  for (std::size_t i = 0; i < v->size(); ++i) {
    const json& e = (*v)[i];
    const std::string path = r.at(key) + "/" + std::to_string(i);
    if (!e.is_string()) return ObjectReader::fail(path, "expected a string");
    const std::string s = e.get<std::string>();
    if (allowed && !allowed->count(s)) {
      std::string list;
      for (const auto& a : *allowed) list += (list.empty() ? "" : ", ") + a;
      return ObjectReader::fail(path,
                                (s == "Revoked" || s == "NotSupported" || s == "TdxModuleMismatch"
                                     ? "'" + s + "' cannot be accepted"
                                     : "unknown TCB status '" + s + "'") +
                                    " (expected one of: " + list + ")");
    }
    out.push_back(s);
  }
  return {};
}

Result<TdxPolicy> read_tdx(const json& object) {
  TdxPolicy p = default_tdx_policy();
  ObjectReader r(object, "/tdx");
  CLOISTER_CHECK_OK(r.only({"mr_td", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "mr_config_id", "mr_owner",
                            "mr_owner_config", "mr_seam", "mr_signer_seam", "report_data",
                            "td_attributes", "xfam", "minimum_tee_tcb_svn", "accepted_tcb_statuses",
                            "accepted_advisory_ids", "collateral", "runtime_events"}));
  CLOISTER_CHECK_OK(r.hex_list("mr_td", p.mr_td, 48));
  for (std::size_t i = 0; i < 4; ++i) {
    const std::string key = "rtmr" + std::to_string(i);
    CLOISTER_CHECK_OK(r.hex_list(key.c_str(), p.rtmr[i], 48));
  }
  CLOISTER_CHECK_OK(r.hex_list("mr_config_id", p.mr_config_id, 48));
  CLOISTER_CHECK_OK(r.hex_list("mr_owner", p.mr_owner, 48));
  CLOISTER_CHECK_OK(r.hex_list("mr_owner_config", p.mr_owner_config, 48));
  CLOISTER_CHECK_OK(r.hex_list("mr_seam", p.mr_seam, 48));
  CLOISTER_CHECK_OK(r.hex_list("mr_signer_seam", p.mr_signer_seam, 48));
  CLOISTER_CHECK_OK(r.hex("report_data", p.report_data, 64));
  CLOISTER_CHECK_OK(r.hex("minimum_tee_tcb_svn", p.minimum_tee_tcb_svn, 16));
  if (const json* v = r.get("td_attributes")) {
    ObjectReader ar(*v, r.at("td_attributes"));
    auto& a = p.td_attributes;
    CLOISTER_CHECK_OK(ar.only({"allow_debug", "require_sept_ve_disable", "allow_pks", "allow_kl",
                               "allow_perfmon", "allow_migratable", "mask", "value"}));
    CLOISTER_CHECK_OK(ar.boolean("allow_debug", a.allow_debug));
    CLOISTER_CHECK_OK(ar.boolean("require_sept_ve_disable", a.require_sept_ve_disable));
    CLOISTER_CHECK_OK(ar.boolean("allow_pks", a.allow_pks));
    CLOISTER_CHECK_OK(ar.boolean("allow_kl", a.allow_kl));
    CLOISTER_CHECK_OK(ar.boolean("allow_perfmon", a.allow_perfmon));
    CLOISTER_CHECK_OK(ar.boolean("allow_migratable", a.allow_migratable));
    if (ar.get("mask") || ar.get("value")) {
      CLOISTER_CHECK_OK(read_masked(ar, "TD_ATTRIBUTES", a.mask, a.value));
      if (!a.mask) a.mask = ~std::uint64_t{0};
    }
  }
  if (const json* v = r.get("xfam")) {
    ObjectReader xr(*v, r.at("xfam"));
    CLOISTER_CHECK_OK(xr.only({"mask", "value"}));
    std::optional<std::uint64_t> mask;
    MaskedValue x;
    CLOISTER_CHECK_OK(read_masked(xr, "XFAM", mask, x.value));
    if (mask) x.mask = *mask;
    p.xfam = x;
  }
  CLOISTER_CHECK_OK(read_strings(r, "accepted_tcb_statuses", p.accepted_tcb_statuses,
                                 &acceptable_tcb_statuses()));
  if (r.get("accepted_advisory_ids")) {
    std::vector<std::string> ids;
    CLOISTER_CHECK_OK(read_strings(r, "accepted_advisory_ids", ids, nullptr));
    p.accepted_advisory_ids = std::move(ids);
  }
  if (const json* v = r.get("collateral")) {
    ObjectReader cr(*v, r.at("collateral"));
    CLOISTER_CHECK_OK(cr.only({"maximum_age_days", "allow_stale"}));
    CLOISTER_CHECK_OK(cr.integer("maximum_age_days", p.maximum_collateral_age_days, 36500));
    CLOISTER_CHECK_OK(cr.boolean("allow_stale", p.allow_stale_collateral));
  }
  if (const json* v = r.get("runtime_events")) {
    if (!v->is_object())
      return ObjectReader::fail(r.at("runtime_events"),
                                "expected an object of event name -> array of hex payloads");
    ObjectReader er(*v, r.at("runtime_events"));
    for (const auto& [name, unused] : v->items()) {
      if (name.empty()) return ObjectReader::fail(er.at(""), "an event name cannot be empty");
      std::vector<Bytes> payloads;
      CLOISTER_CHECK_OK(er.hex_list(name.c_str(), payloads, 0));
      p.runtime_events[name] = std::move(payloads);
    }
  }
  return p;
}

Result<AzurePolicy> read_azure(const json& object) {
  AzurePolicy p;
  ObjectReader r(object, "/azure");
  CLOISTER_CHECK_OK(r.only({"pcrs", "vm_configuration", "user_data", "user_data_nonce"}));
  if (const json* v = r.get("pcrs")) {
    if (!v->is_object())
      return ObjectReader::fail(
          r.at("pcrs"), "expected an object of PCR index (\"0\"..\"23\") -> array of hex values");
    ObjectReader pr(*v, r.at("pcrs"));
    for (const auto& [key, unused] : v->items()) {
      if (key.empty() || key.size() > 2 ||
          key.find_first_not_of("0123456789") != std::string::npos ||
          (key.size() == 2 && key[0] == '0') || std::stoul(key) > 23)
        return ObjectReader::fail(pr.at(key.c_str()), "expected a PCR index 0..23 as the key");
      std::vector<Bytes> values;
      CLOISTER_CHECK_OK(pr.hex_list(key.c_str(), values, 32));
      p.pcrs[static_cast<unsigned>(std::stoul(key))] = std::move(values);
    }
  }
  if (const json* v = r.get("vm_configuration")) {
    ObjectReader vr(*v, r.at("vm_configuration"));
    CLOISTER_CHECK_OK(vr.only(
        {"console_enabled", "secure_boot", "tpm_enabled", "tpm_persisted", "vm_unique_ids"}));
    auto flag = [&](const char* key, std::optional<bool>& out) -> Status {
      bool value = false;
      if (!vr.get(key)) return {};
      CLOISTER_CHECK_OK(vr.boolean(key, value));
      out = value;
      return {};
    };
    CLOISTER_CHECK_OK(flag("console_enabled", p.console_enabled));
    CLOISTER_CHECK_OK(flag("secure_boot", p.secure_boot));
    CLOISTER_CHECK_OK(flag("tpm_enabled", p.tpm_enabled));
    CLOISTER_CHECK_OK(flag("tpm_persisted", p.tpm_persisted));
    CLOISTER_CHECK_OK(read_strings(vr, "vm_unique_ids", p.vm_unique_ids, nullptr));
    if (vr.get("vm_unique_ids") && p.vm_unique_ids.empty())
      return ObjectReader::fail(vr.at("vm_unique_ids"), kEmptyList);
  }
  CLOISTER_CHECK_OK(r.hex("user_data", p.user_data, 64));
  CLOISTER_CHECK_OK(r.boolean("user_data_nonce", p.user_data_nonce));
  return p;
}

json tcb_json(const TcbMinimum& t) {
  json out = json::object();
  if (t.fmc) out["fmc"] = *t.fmc;
  if (t.bl) out["bl"] = *t.bl;
  if (t.tee) out["tee"] = *t.tee;
  if (t.snp) out["snp"] = *t.snp;
  if (t.ucode) out["ucode"] = *t.ucode;
  return out;
}

// Sets out[key] to the list's hex strings; an empty list (no constraint) is left out, as a
// policy must write it.
void put_hex_list(json& out, const std::string& key, const std::vector<Bytes>& list) {
  if (list.empty()) return;
  json values = json::array();
  for (const auto& b : list) values.push_back(to_hex(b));
  out[key] = std::move(values);
}

std::string version_string(const std::pair<std::uint8_t, std::uint8_t>& v) {
  return std::to_string(v.first) + "." + std::to_string(v.second);
}

json tdx_json(const TdxPolicy& p) {
  json t = json::object();
  put_hex_list(t, "mr_td", p.mr_td);
  for (std::size_t i = 0; i < 4; ++i) put_hex_list(t, "rtmr" + std::to_string(i), p.rtmr[i]);
  put_hex_list(t, "mr_config_id", p.mr_config_id);
  put_hex_list(t, "mr_owner", p.mr_owner);
  put_hex_list(t, "mr_owner_config", p.mr_owner_config);
  put_hex_list(t, "mr_seam", p.mr_seam);
  put_hex_list(t, "mr_signer_seam", p.mr_signer_seam);
  if (p.report_data) t["report_data"] = to_hex(*p.report_data);
  const auto& a = p.td_attributes;
  t["td_attributes"] = {
      {"allow_debug", a.allow_debug},     {"require_sept_ve_disable", a.require_sept_ve_disable},
      {"allow_pks", a.allow_pks},         {"allow_kl", a.allow_kl},
      {"allow_perfmon", a.allow_perfmon}, {"allow_migratable", a.allow_migratable}};
  if (a.mask) {
    t["td_attributes"]["mask"] = hex_number(*a.mask);
    t["td_attributes"]["value"] = hex_number(a.value);
  }
  if (p.xfam)
    t["xfam"] = {{"mask", hex_number(p.xfam->mask)}, {"value", hex_number(p.xfam->value)}};
  if (p.minimum_tee_tcb_svn) t["minimum_tee_tcb_svn"] = to_hex(*p.minimum_tee_tcb_svn);
  t["accepted_tcb_statuses"] = p.accepted_tcb_statuses;
  if (p.accepted_advisory_ids) t["accepted_advisory_ids"] = *p.accepted_advisory_ids;
  t["collateral"] = {{"allow_stale", p.allow_stale_collateral}};
  if (p.maximum_collateral_age_days)
    t["collateral"]["maximum_age_days"] = *p.maximum_collateral_age_days;
  json events = json::object();
  for (const auto& [name, payloads] : p.runtime_events) put_hex_list(events, name, payloads);
  t["runtime_events"] = events;
  return t;
}

json azure_json(const AzurePolicy& p) {
  json a = json::object();
  json pcrs = json::object();
  for (const auto& [index, values] : p.pcrs) put_hex_list(pcrs, std::to_string(index), values);
  a["pcrs"] = pcrs;
  json vm = json::object();
  if (p.console_enabled) vm["console_enabled"] = *p.console_enabled;
  if (p.secure_boot) vm["secure_boot"] = *p.secure_boot;
  if (p.tpm_enabled) vm["tpm_enabled"] = *p.tpm_enabled;
  if (p.tpm_persisted) vm["tpm_persisted"] = *p.tpm_persisted;
  if (!p.vm_unique_ids.empty()) vm["vm_unique_ids"] = p.vm_unique_ids;
  a["vm_configuration"] = vm;
  if (p.user_data) a["user_data"] = to_hex(*p.user_data);
  a["user_data_nonce"] = p.user_data_nonce;
  return a;
}

}  // namespace

SnpPolicy default_snp_policy() {
  return SnpPolicy{};
}

TdxPolicy default_tdx_policy() {
  return TdxPolicy{};
}

Result<Policy> parse_policy(std::string_view text) {
  CLOISTER_TRY(json doc, parse_json_strict(text, "policy"));
  ObjectReader top(doc, "");
  CLOISTER_CHECK_OK(top.only({"$schema", "version", "snp", "tdx", "azure"}));
  if (const json* v = top.get("$schema"); v && !v->is_string())
    return ObjectReader::fail("/$schema", "expected a string (the schema's URI or path)");
  if (const json* v = top.get("version")) {
    if (!v->is_number_unsigned() || v->get<std::uint64_t>() != 1)
      return ObjectReader::fail("/version", "expected 1 (the only policy version)");
  }
  Policy policy;
  if (const json* snp = top.get("snp")) {
    CLOISTER_TRY(policy.snp, read_snp(*snp));
  }
  if (const json* tdx = top.get("tdx")) {
    CLOISTER_TRY(policy.tdx, read_tdx(*tdx));
  }
  if (const json* azure = top.get("azure")) {
    CLOISTER_TRY(policy.azure, read_azure(*azure));
  }
  return policy;
}

Result<Policy> load_policy(const std::filesystem::path& path) {
  CLOISTER_TRY(std::string text, read_text_file(path, kPolicyFileLimit));
  auto policy = parse_policy(text);
  if (!policy) return policy.error().with_context(path.string());
  return policy;
}

json policy_to_json(const Policy& policy) {
  json out = {{"version", 1}};
  if (policy.tdx) out["tdx"] = tdx_json(*policy.tdx);
  if (policy.azure) out["azure"] = azure_json(*policy.azure);
  if (!policy.snp) return out;
  const SnpPolicy& p = *policy.snp;
  json s = json::object();
  put_hex_list(s, "measurements", p.measurements);
  if (p.host_data) s["host_data"] = to_hex(*p.host_data);
  if (p.report_data) s["report_data"] = to_hex(*p.report_data);
  if (p.family_id) s["family_id"] = to_hex(*p.family_id);
  if (p.image_id) s["image_id"] = to_hex(*p.image_id);
  put_hex_list(s, "id_key_digests", p.id_key_digests);
  put_hex_list(s, "author_key_digests", p.author_key_digests);
  s["require_id_block"] = p.require_id_block;
  s["require_author_key"] = p.require_author_key;
  if (p.report_id) s["report_id"] = to_hex(*p.report_id);
  if (p.report_id_ma) s["report_id_ma"] = to_hex(*p.report_id_ma);
  const auto& g = p.guest_policy;
  s["guest_policy"] = {{"allow_debug", g.allow_debug},
                       {"allow_migration_agent", g.allow_migration_agent},
                       {"allow_smt", g.allow_smt},
                       {"allow_cxl", g.allow_cxl},
                       {"require_single_socket", g.require_single_socket},
                       {"require_mem_aes_256_xts", g.require_mem_aes_256_xts},
                       {"require_rapl_disabled", g.require_rapl_disabled},
                       {"require_ciphertext_hiding", g.require_ciphertext_hiding},
                       {"require_page_swap_disabled", g.require_page_swap_disabled}};
  if (g.abi_minimum) s["guest_policy"]["abi_minimum"] = version_string(*g.abi_minimum);
  if (p.minimum_guest_svn) s["minimum_guest_svn"] = *p.minimum_guest_svn;
  json tcb = json::object();
  if (!p.minimum_reported_tcb.empty()) tcb["reported"] = tcb_json(p.minimum_reported_tcb);
  if (!p.minimum_committed_tcb.empty()) tcb["committed"] = tcb_json(p.minimum_committed_tcb);
  if (!p.minimum_current_tcb.empty()) tcb["current"] = tcb_json(p.minimum_current_tcb);
  if (!p.minimum_launch_tcb.empty()) tcb["launch"] = tcb_json(p.minimum_launch_tcb);
  if (!tcb.empty()) s["minimum_tcb"] = tcb;
  if (p.minimum_build) s["minimum_build"] = *p.minimum_build;
  if (p.minimum_version) s["minimum_version"] = version_string(*p.minimum_version);
  s["allow_provisional_firmware"] = p.allow_provisional_firmware;
  const auto& pl = p.platform_info;
  s["platform_info"] = {{"allow_smt", pl.allow_smt},
                        {"allow_tsme", pl.allow_tsme},
                        {"allow_tio", pl.allow_tio},
                        {"require_ecc", pl.require_ecc},
                        {"require_rapl_disabled", pl.require_rapl_disabled},
                        {"require_ciphertext_hiding", pl.require_ciphertext_hiding},
                        {"require_alias_check_complete", pl.require_alias_check_complete}};
  s["vmpl"] = p.vmpls;
  put_hex_list(s, "chip_ids", p.chip_ids);
  json keys = json::array();
  if (p.allow_vcek) keys.push_back("vcek");
  if (p.allow_vlek) keys.push_back("vlek");
  s["signing_keys"] = keys;
  if (!p.products.empty()) s["products"] = p.products;
  if (p.minimum_launch_mit_vector)
    s["minimum_launch_mit_vector"] = hex_number(*p.minimum_launch_mit_vector);
  if (p.minimum_current_mit_vector)
    s["minimum_current_mit_vector"] = hex_number(*p.minimum_current_mit_vector);
  s["revocation"] = {{"require_crl", p.require_crl}, {"allow_stale_crl", p.allow_stale_crl}};
  out["snp"] = s;
  return out;
}

}  // namespace cloister::policy
