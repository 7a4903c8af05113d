#include "settings.h"

#include <algorithm>

#include "cloister/common/file.h"
#include "cloister/common/hex.h"

namespace cloister::vmm::tee {
namespace {

constexpr std::size_t kIdBlockPolicyOffset = 88;  // SNP ABI ID_BLOCK: LD, FAMILY_ID, IMAGE_ID,
                                                  // VERSION, GUEST_SVN, then POLICY

// The ID block and ID authentication files hold exactly one structure each (SNP ABI Tables 75
// and 76).
constexpr FileLimit kIdBlockFileLimit{96, "an SEV-SNP ID block is (SNP ABI ID_BLOCK)"};
constexpr FileLimit kIdAuthFileLimit{
    4096, "an SEV-SNP ID authentication structure is (SNP ABI ID_AUTH_INFO)"};

template <std::size_t N>
Result<std::array<std::uint8_t, N>> read_exact(const std::string& option, const std::string& path,
                                               const FileLimit& limit) {
  auto bytes = read_file(path, limit);
  if (!bytes) return bytes.error().with_context(option);
  if (bytes->size() != N)
    return Error(option + " " + path + ": expected exactly " + std::to_string(N) +
                 " bytes, found " + std::to_string(bytes->size()));
  std::array<std::uint8_t, N> out;
  std::copy(bytes->begin(), bytes->end(), out.begin());
  return out;
}

}  // namespace

Result<SnpSettings> resolve_snp_settings(const TeeConfig& config, const fw::LaunchPlan& plan) {
  if (plan.tee() != fw::Tee::kSevSnp)
    return Error("tee " + std::string(tee_name(config.kind)) + ": the launch plan is for " +
                 std::string(fw::to_string(plan.tee())) + ", not SEV-SNP");
  SnpSettings s;
  const auto& igvm_policy = plan.snp().policy;
  if (config.policy && igvm_policy && *config.policy != *igvm_policy)
    return Error("tee.policy " + hex_number(*config.policy) +
                 " differs from the IGVM file's GUEST_POLICY " + hex_number(*igvm_policy) +
                 ": drop --policy or rebuild the file");
  s.policy = config.policy ? *config.policy : igvm_policy.value_or(kSnpDefaultPolicy);
  if (!(s.policy & kSnpPolicyReservedMbo))
    return Error("tee.policy " + hex_number(s.policy) +
                 ": bit 17 is reserved and must be one (SNP ABI guest policy)");
  s.host_data = config.host_data;
  if (config.id_block && plan.snp().id_block)
    return Error(
        "tee.id_block: the IGVM file carries its own SNP ID block; drop --id-block/--id-auth");
  if (config.id_block) {
    CLOISTER_TRY(s.id_block, read_exact<96>("tee.id_block", *config.id_block, kIdBlockFileLimit));
    CLOISTER_TRY(s.id_auth, read_exact<4096>("tee.id_auth", *config.id_auth, kIdAuthFileLimit));
    s.author_key = config.author_key;
  } else if (const auto& id = plan.snp().id_block) {
    s.id_block = id->id_block;
    s.id_auth = id->id_auth;
    s.author_key = id->author_key_enabled;
  }
  if (s.id_block) {
    const std::uint64_t block_policy = load_le64(*s.id_block, kIdBlockPolicyOffset);
    if (block_policy != s.policy)
      return Error("tee.id_block: its POLICY " + hex_number(block_policy) +
                   " differs from the launch policy " + hex_number(s.policy) +
                   "; the firmware would refuse SNP_LAUNCH_FINISH");
  }
  return s;
}

nlohmann::json describe(const SnpSettings& s) {
  nlohmann::json out = {{"policy", hex_number(s.policy)},
                        {"debug", (s.policy & kSnpPolicyDebug) != 0},
                        {"host_data", to_hex(s.host_data)},
                        {"id_block", s.id_block.has_value()}};
  if (s.id_block) out["author_key"] = s.author_key;
  return out;
}

Result<TdxSettings> resolve_tdx_settings(const TeeConfig& config, const fw::LaunchPlan& plan) {
  if (plan.tee() != fw::Tee::kTdx)
    return Error("tee " + std::string(tee_name(config.kind)) + ": the launch plan is for " +
                 std::string(fw::to_string(plan.tee())) + ", not TDX");
  TdxSettings s;
  if (config.td_attributes) s.attributes = *config.td_attributes;
  s.mr_config_id = config.mr_config_id;
  s.mr_owner = config.mr_owner;
  s.mr_owner_config = config.mr_owner_config;
  return s;
}

nlohmann::json describe(const TdxSettings& s) {
  return {{"td_attributes", hex_number(s.attributes)},
          {"debug", (s.attributes & kTdAttributeDebug) != 0},
          {"mr_config_id", to_hex(s.mr_config_id)},
          {"mr_owner", to_hex(s.mr_owner)},
          {"mr_owner_config", to_hex(s.mr_owner_config)}};
}

}  // namespace cloister::vmm::tee
