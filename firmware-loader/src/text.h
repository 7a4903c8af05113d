// Number formatting for error messages (private to firmware-loader).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace cloister::fw {

// "0x1fffce": addresses, offsets and sizes in messages are hex, as in the specs and tools.
inline std::string hex(std::uint64_t value) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(value));
  return buf;
}

}  // namespace cloister::fw
