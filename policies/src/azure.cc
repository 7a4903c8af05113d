#include "cloister/policy/azure.h"

#include <algorithm>

#include "cloister/common/hex.h"

namespace cloister::policy {
namespace {

using attestation::Checks;

std::string list_string(const std::vector<Bytes>& list) {
  std::string out = "one of [";
  for (std::size_t i = 0; i < list.size(); ++i) out += (i ? ", " : "") + to_hex(list[i]);
  return out + "]";
}

void flag(Checks& out, const char* name, const char* key, const std::optional<bool>& required,
          const std::optional<bool>& actual, bool have_runtime_data) {
  if (!required) return;
  const std::string check = std::string("policy.azure.vm_configuration.") + name;
  const std::string expected = std::string(key) + " " + (*required ? "true" : "false");
  if (!have_runtime_data) {
    out.fail(check, expected, "unknown", "the runtime data did not parse");
  } else if (!actual) {
    out.fail(check, expected, "absent",
             "the runtime data's vm-configuration has no " + std::string(key));
  } else if (*actual == *required) {
    out.pass(check, expected, std::string(key) + " " + (*actual ? "true" : "false"));
  } else {
    out.fail(check, expected, std::string(key) + " " + (*actual ? "true" : "false"),
             "the VM's configuration is not what the policy requires");
  }
}

}  // namespace

void evaluate_azure_policy(const AzurePolicy& p, const attestation::azure::VtpmVerification& v,
                           Checks& out) {
  for (const auto& [index, allowed] : p.pcrs) {
    const std::string name = "policy.azure.pcr" + std::to_string(index);
    const Bytes* value = v.pcr(index);
    if (value == nullptr) {
      out.fail(name, list_string(allowed), "absent",
               "the evidence carries no SHA-256 value for PCR" + std::to_string(index));
    } else if (!v.pcrs_verified) {
      out.fail(name, list_string(allowed), to_hex(*value),
               "the PCR values are not verified by the vTPM quote (see azure.tpm.pcr_digest)");
    } else if (std::find(allowed.begin(), allowed.end(), *value) != allowed.end()) {
      out.pass(name, list_string(allowed), to_hex(*value));
    } else {
      out.fail(name, list_string(allowed), to_hex(*value),
               "PCR" + std::to_string(index) + " is not in the policy's allowlist");
    }
  }
  const bool have = v.runtime_data.has_value();
  const attestation::azure::VmConfiguration none;
  const auto& vm = have ? v.runtime_data->vm_configuration : none;
  flag(out, "console_enabled", "console-enabled", p.console_enabled, vm.console_enabled, have);
  flag(out, "secure_boot", "secure-boot", p.secure_boot, vm.secure_boot, have);
  flag(out, "tpm_enabled", "tpm-enabled", p.tpm_enabled, vm.tpm_enabled, have);
  flag(out, "tpm_persisted", "tpm-persisted", p.tpm_persisted, vm.tpm_persisted, have);
  if (!p.vm_unique_ids.empty()) {
    std::string expected = "one of [";
    for (std::size_t i = 0; i < p.vm_unique_ids.size(); ++i)
      expected += (i ? ", " : "") + p.vm_unique_ids[i];
    expected += "]";
    const std::string found = vm.vm_unique_id.value_or("absent");
    if (vm.vm_unique_id && std::find(p.vm_unique_ids.begin(), p.vm_unique_ids.end(),
                                     *vm.vm_unique_id) != p.vm_unique_ids.end()) {
      out.pass("policy.azure.vm_unique_id", expected, found);
    } else {
      out.fail("policy.azure.vm_unique_id", expected, found,
               "the VM is not one the policy names (vmUniqueId)");
    }
  }
  if (p.user_data) {
    const std::string expected = to_hex(*p.user_data);
    if (have && v.runtime_data->user_data && *v.runtime_data->user_data == *p.user_data) {
      out.pass("policy.azure.user_data", expected, to_hex(*v.runtime_data->user_data));
    } else {
      out.fail("policy.azure.user_data", expected,
               have && v.runtime_data->user_data ? to_hex(*v.runtime_data->user_data) : "absent",
               "the runtime data's user-data is not what the policy requires");
    }
  }
  if (p.user_data_nonce) {
    const std::string expected = "user-data carries the nonce (azure.runtime_data.user_data)";
    const auto* c = out.find("azure.runtime_data.user_data");
    if (c == nullptr) {
      out.fail("policy.azure.user_data_nonce", expected, "not checked",
               "no nonce was given, or the runtime data did not parse");
    } else if (c->status == attestation::CheckStatus::kPass) {
      out.pass("policy.azure.user_data_nonce", expected, c->found);
    } else {
      out.fail("policy.azure.user_data_nonce", expected, c->found, c->detail);
    }
  }
}

}  // namespace cloister::policy
