#include "cloister/common/utf8.h"

#include <string>

#include "cloister/common/hex.h"

namespace cloister {

Utf8Sequence decode_utf8(std::string_view text, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(text[i]);
  Utf8Sequence s;
  if (b0 < 0x80) {
    s.cp = b0;
    s.len = 1;
  } else if ((b0 & 0xe0) == 0xc0) {
    s.cp = b0 & 0x1f;
    s.len = 2;
  } else if ((b0 & 0xf0) == 0xe0) {
    s.cp = b0 & 0x0f;
    s.len = 3;
  } else if ((b0 & 0xf8) == 0xf0) {
    s.cp = b0 & 0x07;
    s.len = 4;
  } else {
    return {0, 0, "invalid UTF-8 lead byte", i};
  }
  if (i + s.len > text.size()) return {0, 0, "truncated UTF-8 sequence", i};
  for (std::size_t k = 1; k < s.len; ++k) {
    const auto b = static_cast<unsigned char>(text[i + k]);
    if ((b & 0xc0) != 0x80) return {0, 0, "invalid UTF-8 continuation byte", i + k};
    s.cp = (s.cp << 6) | (b & 0x3f);
  }
  static constexpr std::uint32_t kMinForLength[] = {0, 0, 0x80, 0x800, 0x10000};
  if (s.cp < kMinForLength[s.len] || s.cp > 0x10ffff || (s.cp >= 0xd800 && s.cp <= 0xdfff)) {
    return {0, 0, "invalid UTF-8 code point", i};
  }
  return s;
}

std::string without_controls(std::string_view text, bool keep_line_breaks) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const Utf8Sequence s = decode_utf8(text, i);
    const std::size_t n = s.problem ? 1 : s.len;
    const bool line_break = keep_line_breaks && (s.cp == '\n' || s.cp == '\r');
    const bool control = s.cp < 0x20 || (s.cp >= 0x7f && s.cp <= 0x9f);
    if (s.problem || (control && !line_break)) {
      out += printable(text.substr(i, n));
    } else {
      out += text.substr(i, n);
    }
    i += n;
  }
  return out;
}

}  // namespace cloister
