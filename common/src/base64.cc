#include "cloister/common/base64.h"

#include <string>

namespace cloister {
namespace {

int base64url_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

}  // namespace

Result<Bytes> from_base64url(std::string_view text) {
  std::size_t end = text.size();
  if (end % 4 == 0) {
    std::size_t padding = 0;
    while (padding < 2 && end > 0 && text[end - 1] == '=') {
      --end;
      ++padding;
    }
  }
  if (end % 4 == 1)
    return Error("base64url: " + std::to_string(end) +
                 " characters leave a single character in the last group");
  Bytes out;
  out.reserve(end / 4 * 3 + 2);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (std::size_t i = 0; i < end; ++i) {
    const int v = base64url_value(text[i]);
    if (v < 0) {
      return Error("base64url: invalid character at position " + std::to_string(i) +
                   (text[i] == '=' ? " (padding before the end)" : ""));
    }
    buffer = (buffer << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::uint8_t>(buffer >> bits));
      buffer &= (1u << bits) - 1;
    }
  }
  if (buffer != 0) return Error("base64url: non-zero bits after the last byte (not canonical)");
  return out;
}

}  // namespace cloister
