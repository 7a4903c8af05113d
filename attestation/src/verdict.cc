#include "cloister/attestation/verdict.h"

namespace cloister::attestation {

std::string_view to_string(CheckStatus status) {
  switch (status) {
    case CheckStatus::kPass:
      return "pass";
    case CheckStatus::kFail:
      return "fail";
    case CheckStatus::kSkip:
      return "skip";
  }
  return "fail";
}

Check& Checks::add(Check check) {
  checks_.push_back(std::move(check));
  return checks_.back();
}

Check& Checks::pass(std::string name, std::string expected, std::string found, std::string detail) {
  return add({std::move(name), CheckStatus::kPass, std::move(expected), std::move(found),
              std::move(detail)});
}

Check& Checks::fail(std::string name, std::string expected, std::string found, std::string detail) {
  return add({std::move(name), CheckStatus::kFail, std::move(expected), std::move(found),
              std::move(detail)});
}

Check& Checks::skip(std::string name, std::string detail) {
  return add({std::move(name), CheckStatus::kSkip, {}, {}, std::move(detail)});
}

bool Checks::passed() const {
  bool any_pass = false;
  for (const auto& c : checks_) {
    if (c.status == CheckStatus::kFail) return false;
    any_pass = any_pass || c.status == CheckStatus::kPass;
  }
  return any_pass;
}

const Check* Checks::find(std::string_view name) const {
  for (const auto& c : checks_)
    if (c.name == name) return &c;
  return nullptr;
}

std::vector<std::string> Checks::failures() const {
  std::vector<std::string> out;
  for (const auto& c : checks_)
    if (c.status == CheckStatus::kFail) out.push_back(c.name);
  return out;
}

}  // namespace cloister::attestation
