#include "cloister/measure/reference_values.h"

#include <nlohmann/json.hpp>

#include "cloister/common/hex.h"

namespace cloister::measure {

std::string reference_values_policy(fw::Tee tee, std::span<const Sha384Digest> digests) {
  nlohmann::json values = nlohmann::json::array();
  for (const Sha384Digest& d : digests) values.push_back(to_hex(d));
  nlohmann::json policy;
  if (tee == fw::Tee::kSevSnp) {
    policy["snp"]["measurements"] = values;
  } else {
    policy["tdx"]["mr_td"] = values;
  }
  return policy.dump(2) + "\n";
}

}  // namespace cloister::measure
