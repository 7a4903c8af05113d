// Fuzzes the policy parser; whatever parses must survive a round trip through policy_to_json.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "cloister/policy/policy.h"
#include "fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto policy = cloister::policy::parse_policy(text);
  if (!policy) return 0;
  auto once = cloister::policy::policy_to_json(*policy);
  auto again = cloister::policy::parse_policy(once.dump());
  if (!again || cloister::policy::policy_to_json(*again) != once) std::abort();
  return 0;
}
