// Number formatting for messages and logs ("0x3f8"), so every error spells addresses alike.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace cloister::vmm {

inline std::string hex(std::uint64_t value) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(value));
  return buf;
}

}  // namespace cloister::vmm
