// The TD HOB list TDVF reads its memory map from (private to firmware-loader; the layout is
// documented in tdx.h).
#pragma once

#include <cstdint>
#include <span>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"
#include "cloister/firmware_loader/launch_plan.h"

namespace cloister::fw {

struct TdHobInputs {
  std::uint64_t gpa = 0;          // where the list is placed: the TD_HOB section
  std::uint64_t capacity = 0;     // the TD_HOB section's size
  std::span<const GpaRange> ram;  // guest RAM, ascending (ram_ranges())
  // RAM the launch PAGE.ADDs: ascending, non-overlapping, each inside one `ram` range
  std::span<const GpaRange> accepted;
  std::uint32_t vcpus = 0;
};

// The HOB list: PHIT, one resource descriptor per accepted range and per unaccepted remainder of
// each RAM range in ascending order, the Cloister vCPU-count GUID HOB, end of list. Fails when
// the list does not fit `capacity`.
Result<Bytes> build_td_hob(const TdHobInputs& in);

}  // namespace cloister::fw
