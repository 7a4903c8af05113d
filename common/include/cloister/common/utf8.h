// The project's one UTF-8 decoder (RFC 3629): well-formed sequences only, no overlong forms,
// no surrogates, nothing past U+10FFFF.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cloister {

// The UTF-8 sequence starting at text[i] (i < text.size()): its code point and length, or
// (problem set) what makes it malformed, overlong or a surrogate, and the offset of the
// offending byte.
struct Utf8Sequence {
  std::uint32_t cp = 0;
  std::size_t len = 0;
  const char* problem = nullptr;
  std::size_t at = 0;
};

Utf8Sequence decode_utf8(std::string_view text, std::size_t i);

// Text for a terminal: every C0 control but the newline, DEL, and every C1 control (U+0080 to
// U+009F as UTF-8, which some terminals obey like the 8-bit controls) as \xNN; the rest,
// UTF-8 included, as it is. Outside bytes in a report then cannot move the cursor, recolour or
// retitle the terminal that shows it.
std::string without_controls(std::string_view text);

}  // namespace cloister
