// Fuzzes the audit-log reader: any text verifies or names a broken record, and the number of
// records that verified never exceeds the lines present.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "cloister/service/audit.h"
#include "fuzz/fuzz_target.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
  const auto v = cloister::service::audit::verify_text(text, std::nullopt);
  if (v.records > lines) std::abort();
  if (!v.intact() && (*v.first_broken == 0 || v.problem.empty())) std::abort();
  const auto with_head = cloister::service::audit::verify_text(
      text, cloister::service::audit::Head{v.records, v.last_digest});
  if (v.intact() && !with_head.intact()) std::abort();
  return 0;
}
