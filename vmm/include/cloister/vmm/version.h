// The cloister-vmm version: what vmm.ping answers and what a snapshot records as its writer.
#pragma once

namespace cloister::vmm {

inline constexpr const char* kVmmVersion = "0.1.0";

}  // namespace cloister::vmm
