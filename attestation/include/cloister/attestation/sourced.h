// A value together with where it came from, for verdicts that say which input a check used.
#pragma once

#include <string>

namespace cloister::attestation {

// A value and where it came from ("cache /path", "fetched https://…", "--collateral f.json").
template <typename T>
struct Sourced {
  T value;
  std::string source;
};

}  // namespace cloister::attestation
