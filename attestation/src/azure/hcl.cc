#include "cloister/attestation/azure/hcl.h"

#include <nlohmann/json.hpp>

#include "cloister/common/base64.h"
#include "cloister/common/hex.h"
#include "cloister/common/json.h"

namespace cloister::attestation::azure {
namespace {

using json = nlohmann::json;

// The IGVM request types the HCL answers with an attestation report (IGVM_REQUEST_TYPE).
constexpr std::uint32_t kRequestTypeAkCertRequest = 2;

Error field_error(const std::string& field, const std::string& expected, const std::string& found) {
  return Error("HCL report " + field + ": expected " + expected + ", found " + found);
}

Result<std::optional<bool>> optional_bool(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end()) return std::optional<bool>();
  if (!it->is_boolean())
    return Error(std::string("runtime data vm-configuration/") + key + ": expected true or false");
  return std::optional<bool>(it->get<bool>());
}

Result<std::optional<std::string>> optional_string(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end()) return std::optional<std::string>();
  if (!it->is_string())
    return Error(std::string("runtime data vm-configuration/") + key + ": expected a string");
  return std::optional<std::string>(it->get<std::string>());
}

Result<RuntimeDataKey> parse_key(const json& jwk, std::size_t index) {
  const std::string where = "runtime data keys/" + std::to_string(index);
  if (!jwk.is_object()) return Error(where + ": expected a JSON Web Key object");
  RuntimeDataKey k;
  auto string_member = [&](const char* name) -> Result<std::string> {
    auto it = jwk.find(name);
    if (it == jwk.end() || !it->is_string())
      return Error(where + "/" + name + ": expected a string");
    return it->get<std::string>();
  };
  CLOISTER_TRY(k.kid, string_member("kid"));
  CLOISTER_TRY(std::string kty, string_member("kty"));
  if (kty != "RSA")
    return Error(where + " (" + printable(k.kid, 64) + "): expected kty \"RSA\", found \"" +
                 printable(kty, 64) + "\"");
  for (const char* name : {"n", "e"}) {
    CLOISTER_TRY(std::string text, string_member(name));
    auto bytes = from_base64url(text, Base64UrlPadding::kOptional);
    if (!bytes) return Error(where + "/" + name + ": " + bytes.error().message());
    (std::string_view(name) == "n" ? k.n : k.e) = std::move(bytes).value();
  }
  if (auto ops = jwk.find("key_ops"); ops != jwk.end()) {
    if (!ops->is_array()) return Error(where + "/key_ops: expected an array of strings");
    for (const auto& op : *ops) {
      if (!op.is_string()) return Error(where + "/key_ops: expected an array of strings");
      k.key_ops.push_back(op.get<std::string>());
    }
  }
  return k;
}

}  // namespace

bool looks_like_hcl_report(ByteView bytes) {
  return bytes.size() >= 4 && load_le32(bytes, 0) == kHclSignature;
}

Result<HclReport> parse_hcl_report(ByteView bytes) {
  if (bytes.size() < kRuntimeDataOffset)
    return Error("HCL report is " + std::to_string(bytes.size()) + " bytes, expected at least " +
                 std::to_string(kRuntimeDataOffset) + " (header, hardware report, request data)");
  if (load_le32(bytes, 0) != kHclSignature)
    return field_error("signature", "\"HCLA\" (0x414c4348)", hex_number(load_le32(bytes, 0)));
  HclReport r;
  r.version = load_le32(bytes, 4);
  if (r.version != 1 && r.version != 2)
    return field_error("version", "1 or 2", std::to_string(r.version));
  r.report_size = load_le32(bytes, 8);
  r.request_type = load_le32(bytes, 12);
  if (r.request_type != kRequestTypeAkCertRequest)
    return field_error("request_type", "2", std::to_string(r.request_type));
  r.status = load_le32(bytes, 16);
  if (r.status != 0) return field_error("status", "0", std::to_string(r.status));
  for (std::size_t offset = 20; offset < kHclHeaderSize; offset += 4) {
    if (load_le32(bytes, offset) != 0)
      return field_error("reserved word at " + hex_number(offset), "0",
                         hex_number(load_le32(bytes, offset)));
  }
  const std::uint32_t data_size = load_le32(bytes, kRequestDataOffset);
  const std::uint32_t request_version = load_le32(bytes, kRequestDataOffset + 4);
  const std::uint32_t report_type = load_le32(bytes, kRequestDataOffset + 8);
  r.report_data_hash_type = load_le32(bytes, kRequestDataOffset + 12);
  const std::uint32_t variable_size = load_le32(bytes, kRequestDataOffset + 16);
  if (request_version != 1)
    return field_error("request data version", "1", std::to_string(request_version));
  if (report_type == static_cast<std::uint32_t>(HclReportType::kSnp)) {
    r.report_type = HclReportType::kSnp;
  } else if (report_type == static_cast<std::uint32_t>(HclReportType::kTdx)) {
    r.report_type = HclReportType::kTdx;
  } else {
    return field_error("report_type", "2 (SEV-SNP) or 4 (TDX)", std::to_string(report_type));
  }
  if (r.report_data_hash_type != kHashTypeSha256)
    return field_error("report_data_hash_type", "1 (SHA-256)",
                       std::to_string(r.report_data_hash_type));
  if (std::uint64_t{data_size} != std::uint64_t{kRequestDataSize} + variable_size)
    return field_error("request data_size",
                       std::to_string(std::uint64_t{kRequestDataSize} + variable_size) +
                           " (20 + variable_data_size)",
                       std::to_string(data_size));
  const std::uint64_t expected_report_size =
      std::uint64_t{kHwReportOffset} + kHwReportAreaSize + data_size;
  if (r.report_size != expected_report_size)
    return field_error("report_size",
                       std::to_string(expected_report_size) + " (0x20 + 1184 + data_size)",
                       std::to_string(r.report_size));
  if (std::uint64_t{kRuntimeDataOffset} + variable_size > bytes.size())
    return field_error("variable_data_size",
                       "at most " + std::to_string(bytes.size() - kRuntimeDataOffset) +
                           " (the bytes after offset 0x4d4)",
                       std::to_string(variable_size));
  const std::size_t hw_size = r.report_type == HclReportType::kSnp ? kHwReportAreaSize : 1024;
  const ByteView hw = bytes.subspan(kHwReportOffset, hw_size);
  r.hw_report.assign(hw.begin(), hw.end());
  const ByteView runtime = bytes.subspan(kRuntimeDataOffset, variable_size);
  r.runtime_data.assign(runtime.begin(), runtime.end());
  return r;
}

const RuntimeDataKey* RuntimeData::key(std::string_view kid) const {
  for (const auto& k : keys)
    if (k.kid == kid) return &k;
  return nullptr;
}

Result<RuntimeData> parse_runtime_data(ByteView bytes) {
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  CLOISTER_TRY(json doc, parse_json_strict(text, "runtime data"));
  if (!doc.is_object()) return Error("runtime data: expected a JSON object");
  RuntimeData out;
  auto keys = doc.find("keys");
  if (keys == doc.end() || !keys->is_array())
    return Error("runtime data keys: expected an array of JSON Web Keys");
  for (std::size_t i = 0; i < keys->size(); ++i) {
    CLOISTER_TRY(RuntimeDataKey k, parse_key((*keys)[i], i));
    if (out.key(k.kid) != nullptr)
      return Error("runtime data keys/" + std::to_string(i) + ": kid \"" + printable(k.kid, 64) +
                   "\" appears twice");
    out.keys.push_back(std::move(k));
  }
  auto config = doc.find("vm-configuration");
  if (config == doc.end() || !config->is_object())
    return Error("runtime data vm-configuration: expected an object");
  VmConfiguration& vm = out.vm_configuration;
  CLOISTER_TRY(vm.console_enabled, optional_bool(*config, "console-enabled"));
  CLOISTER_TRY(vm.secure_boot, optional_bool(*config, "secure-boot"));
  CLOISTER_TRY(vm.tpm_enabled, optional_bool(*config, "tpm-enabled"));
  CLOISTER_TRY(vm.tpm_persisted, optional_bool(*config, "tpm-persisted"));
  CLOISTER_TRY(vm.vm_unique_id, optional_string(*config, "vmUniqueId"));
  CLOISTER_TRY(vm.root_cert_thumbprint, optional_string(*config, "root-cert-thumbprint"));
  if (auto t = config->find("current-time"); t != config->end()) {
    if (!t->is_number_integer())
      return Error("runtime data vm-configuration/current-time: expected an integer");
    vm.current_time = t->get<std::int64_t>();
  }
  if (auto user = doc.find("user-data"); user != doc.end()) {
    if (!user->is_string()) return Error("runtime data user-data: expected a hex string");
    auto value = from_hex_exact(user->get<std::string>(), 64);
    if (!value) return Error("runtime data user-data: " + value.error().message());
    out.user_data = std::move(value).value();
  }
  return out;
}

Result<PublicKey> attestation_key(const RuntimeData& runtime_data) {
  const RuntimeDataKey* ak = runtime_data.key("HCLAkPub");
  if (ak == nullptr) return Error("runtime data: no \"HCLAkPub\" key (the vTPM attestation key)");
  auto key = PublicKey::from_rsa(ak->n, ak->e);
  if (!key) return key.error().with_context("runtime data HCLAkPub");
  return key;
}

}  // namespace cloister::attestation::azure
