// Points in time as whole seconds since the Unix epoch (UTC), and their RFC 3339 spelling.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cloister/common/result.h"

namespace cloister {

// Seconds since 1970-01-01T00:00:00Z.
using UnixTime = std::int64_t;

// Accepts RFC 3339 date-times: "2025-11-21T00:00:00Z", with optional fractional seconds
// (truncated) and a numeric offset ("+02:00"); 't'/'z' in either case. A bare date
// "2025-11-21" means midnight UTC.
Result<UnixTime> parse_rfc3339(std::string_view text);

// "2025-11-21T00:00:00Z".
std::string format_rfc3339(UnixTime time);

UnixTime unix_now();

}  // namespace cloister
