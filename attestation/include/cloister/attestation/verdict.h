// The result of verifying evidence: every check that ran, each with what it expected and found.
// The same shape serves SNP and TDX, the CLI's human and JSON output, and the SDK.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cloister::attestation {

enum class CheckStatus {
  kPass,
  kFail,
  // The check did not apply or its input was not available, and nothing requires it (for
  // example revocation without a CRL when the policy does not demand one). Never hides a
  // failure: a required check that cannot run is kFail.
  kSkip,
};

std::string_view to_string(CheckStatus status);

struct Check {
  std::string name;  // stable dotted identifier, e.g. "snp.signature", "policy.debug"
  CheckStatus status = CheckStatus::kFail;
  std::string expected;  // what the check required (empty when not meaningful)
  std::string found;     // what the evidence showed
  std::string detail;    // one sentence for humans: why it passed, failed or was skipped
};

// An ordered list of checks. The verdict passes only if at least one check ran and none failed.
class Checks {
 public:
  Check& add(Check check);
  Check& pass(std::string name, std::string expected, std::string found, std::string detail = {});
  Check& fail(std::string name, std::string expected, std::string found, std::string detail);
  Check& skip(std::string name, std::string detail);

  bool passed() const;
  const std::vector<Check>& all() const { return checks_; }
  // The check with this name, or nullptr.
  const Check* find(std::string_view name) const;
  // The failed checks' names, in order.
  std::vector<std::string> failures() const;

 private:
  std::vector<Check> checks_;
};

}  // namespace cloister::attestation
