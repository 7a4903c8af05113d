// The appraisal policy: what a tenant or CI pipeline requires of evidence beyond its
// authenticity. JSON, strictly parsed (unknown keys and out-of-range values are errors naming
// the JSON path); schema in policies/schema/policy.schema.json, reference in docs/policy.md.
//
// Secure defaults: a policy that says nothing still rejects SEV-SNP debug guests, guests that
// allow a migration agent or CXL memory, reports from VMPL > 0, provisional (uncommitted)
// firmware, and stale CRLs; and TDX debug TDs, TDs without SEPT_VE_DISABLE, platforms whose TCB
// status is anything but UpToDate, and stale collateral.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cloister/common/bytes.h"
#include "cloister/common/file.h"

namespace cloister::policy {

// A minimum per TCB component; unset components are not constrained.
struct TcbMinimum {
  std::optional<std::uint8_t> fmc;
  std::optional<std::uint8_t> bl;
  std::optional<std::uint8_t> tee;
  std::optional<std::uint8_t> snp;
  std::optional<std::uint8_t> ucode;
  bool empty() const { return !fmc && !bl && !tee && !snp && !ucode; }
};

// GUEST_POLICY requirements (go-sev-guest validate.Options.GuestPolicy semantics): "allow_*"
// bits may be set in the report only if allowed; "require_*" bits must be set.
struct SnpGuestPolicyRules {
  std::optional<std::pair<std::uint8_t, std::uint8_t>> abi_minimum;  // (major, minor)
  bool allow_debug = false;
  bool allow_migration_agent = false;
  bool allow_smt = true;
  bool allow_cxl = false;
  bool require_single_socket = false;
  bool require_mem_aes_256_xts = false;
  bool require_rapl_disabled = false;
  bool require_ciphertext_hiding = false;
  bool require_page_swap_disabled = false;
};

// PLATFORM_INFO requirements, same "allow"/"require" reading.
struct SnpPlatformRules {
  bool allow_smt = true;
  bool allow_tsme = true;
  bool allow_tio = true;
  bool require_ecc = false;
  bool require_rapl_disabled = false;
  bool require_ciphertext_hiding = false;
  bool require_alias_check_complete = false;
};

struct SnpPolicy {
  std::vector<Bytes> measurements;        // allowlist (48 bytes each); empty: any
  std::optional<Bytes> host_data;         // 32
  std::optional<Bytes> report_data;       // 64, exact
  std::optional<Bytes> family_id;         // 16
  std::optional<Bytes> image_id;          // 16
  std::vector<Bytes> id_key_digests;      // 48 each; non-empty: ID_KEY_DIGEST must be listed
  std::vector<Bytes> author_key_digests;  // 48 each; non-empty: AUTHOR_KEY_DIGEST must be listed
  bool require_id_block = false;          // ID_KEY_DIGEST must be non-zero
  bool require_author_key = false;        // AUTHOR_KEY_EN must be set
  std::optional<Bytes> report_id;         // 32
  std::optional<Bytes> report_id_ma;      // 32
  SnpGuestPolicyRules guest_policy;
  std::optional<std::uint32_t> minimum_guest_svn;
  TcbMinimum minimum_reported_tcb;
  TcbMinimum minimum_committed_tcb;
  TcbMinimum minimum_current_tcb;
  TcbMinimum minimum_launch_tcb;
  std::optional<std::uint8_t> minimum_build;                             // CURRENT_BUILD
  std::optional<std::pair<std::uint8_t, std::uint8_t>> minimum_version;  // CURRENT major.minor
  bool allow_provisional_firmware = false;  // false: COMMITTED == CURRENT (TCB and version)
  SnpPlatformRules platform_info;
  std::vector<std::uint32_t> vmpls = {0};  // allowed VMPL values
  std::vector<Bytes> chip_ids;             // allowlist (64 bytes each); empty: any
  bool allow_vcek = true;
  bool allow_vlek = true;
  std::vector<std::string> products;  // allowed products ("Milan", …); empty: any
  std::optional<std::uint64_t> minimum_launch_mit_vector;   // bits that must be set (v5)
  std::optional<std::uint64_t> minimum_current_mit_vector;  // bits that must be set (v5)
  bool require_crl = false;
  bool allow_stale_crl = false;
};

// TD_ATTRIBUTES requirements: "allow_*" bits may be set only if allowed, "require_*" bits
// must be set, and when `mask` is given, (TD_ATTRIBUTES & mask) must equal `value`.
struct TdAttributeRules {
  // Any bit of the TUD group (0-7: DEBUG and the profiling bits) may be set.
  bool allow_debug = false;
  bool require_sept_ve_disable = true;
  bool allow_pks = true;
  bool allow_kl = true;
  bool allow_perfmon = true;
  // MIGRATABLE (bit 29): a migration TD the host binds may export the TD's state.
  bool allow_migratable = false;
  std::optional<std::uint64_t> mask;
  std::uint64_t value = 0;
};

// (XFAM & mask) == value.
struct MaskedValue {
  std::uint64_t mask = ~std::uint64_t{0};
  std::uint64_t value = 0;
};

struct TdxPolicy {
  // Allowlists (48 bytes each, quote byte order); empty: any.
  std::vector<Bytes> mr_td;
  std::array<std::vector<Bytes>, 4> rtmr;
  std::vector<Bytes> mr_config_id;
  std::vector<Bytes> mr_owner;
  std::vector<Bytes> mr_owner_config;
  std::vector<Bytes> mr_seam;
  std::vector<Bytes> mr_signer_seam;
  std::optional<Bytes> report_data;  // 64, exact
  TdAttributeRules td_attributes;
  std::optional<MaskedValue> xfam;
  std::optional<Bytes> minimum_tee_tcb_svn;  // 16, compared byte by byte
  // Intel's spelling ("UpToDate", "SWHardeningNeeded", …, "TDRelaunchAdvised").
  std::vector<std::string> accepted_tcb_statuses = {"UpToDate"};
  std::optional<std::vector<std::string>> accepted_advisory_ids;  // unset: any
  std::optional<std::uint32_t> maximum_collateral_age_days;
  bool allow_stale_collateral = false;
  // dstack runtime (application) events, by name ("compose-hash", "instance-id", …): each named
  // event must be in the replayed event log, every occurrence with a payload in the allowlist.
  std::map<std::string, std::vector<Bytes>> runtime_events;
};

// What Azure vTPM evidence adds (the hardware report inside it is appraised by the snp or tdx
// section). Unset fields are not constrained.
struct AzurePolicy {
  // Allowlists of SHA-256 PCR values (32 bytes each) by PCR index 0..23.
  std::map<unsigned, std::vector<Bytes>> pcrs;
  // The runtime data's vm-configuration flags, each required to have this value.
  std::optional<bool> console_enabled;
  std::optional<bool> secure_boot;
  std::optional<bool> tpm_enabled;
  std::optional<bool> tpm_persisted;
  std::vector<std::string> vm_unique_ids;  // allowlist; empty: any
  std::optional<Bytes> user_data;          // 64, exact
  // The runtime data's user-data must carry the verification nonce (Trustee evidence v2),
  // whatever version the evidence declares: evidence relabelled v1 cannot skip that check.
  bool user_data_nonce = false;
};

struct Policy {
  // The SNP section; a policy without one still gets default_snp_policy() for SNP evidence.
  std::optional<SnpPolicy> snp;
  // The TDX section; a policy without one still gets default_tdx_policy() for TDX evidence.
  std::optional<TdxPolicy> tdx;
  // The Azure section, for Azure vTPM evidence only (it constrains nothing else).
  std::optional<AzurePolicy> azure;
};

// The rules that apply when a policy says nothing.
SnpPolicy default_snp_policy();
TdxPolicy default_tdx_policy();

// A policy file (verify-report --policy).
inline constexpr FileLimit kPolicyFileLimit{
    1u << 20,
    "an appraisal policy can be (policies are a few KiB, a thousand measurements 100 KiB)"};

// Strict parse. Errors name the JSON path: "policy /snp/measurements/1: expected 48 bytes (96
// hex digits), found 47 bytes", "policy /snp/guest_policy: unknown key 'allow_debugg'",
// "policy /tdx/accepted_tcb_statuses/0: 'Revoked' cannot be accepted"; a key given twice in one
// object is refused too: "policy: duplicate key \"snp\" at /snp".
Result<Policy> parse_policy(std::string_view json_text);
// parse_policy() of the file at `path`, read within kPolicyFileLimit.
Result<Policy> load_policy(const std::filesystem::path& path);

// The policy as JSON in the schema's shape (every field, defaults included).
nlohmann::json policy_to_json(const Policy& policy);

}  // namespace cloister::policy
