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

// Outside text for a terminal or a log: every C0 control (the newline and carriage return too,
// unless `keep_line_breaks`), DEL, every C1 control (U+0080 to U+009F, which some terminals
// obey like the 8-bit controls) and every byte of ill-formed UTF-8 as \xNN; well-formed UTF-8
// as it is. Outside bytes then cannot move the cursor, recolour or retitle the terminal, nor
// (escaped field by field) forge lines of the output around them.
std::string without_controls(std::string_view text, bool keep_line_breaks = false);

}  // namespace cloister
