#include "cloister/common/hex.h"

namespace cloister {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string to_hex(ByteView bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0xf];
  }
  return out;
}

std::string printable(std::string_view bytes, std::size_t max) {
  std::string out;
  for (const char c : bytes.substr(0, max)) {
    const auto b = static_cast<std::uint8_t>(c);
    if (b >= 0x20 && b < 0x7f && c != '\\') {
      out += c;
    } else {
      out += "\\x" + to_hex(ByteView(&b, 1));
    }
  }
  return out;
}

std::string hex_number(std::uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  char buf[2 + 16];
  char* end = buf + sizeof buf;
  char* p = end;
  do {
    *--p = kDigits[value & 0xf];
    value >>= 4;
  } while (value != 0);
  *--p = 'x';
  *--p = '0';
  return std::string(p, end);
}

Result<Bytes> from_hex(std::string_view text) {
  if (text.starts_with("0x") || text.starts_with("0X")) text.remove_prefix(2);
  if (text.size() % 2 != 0)
    return Error("hex string has an odd number of digits (" + std::to_string(text.size()) + ")");
  Bytes out(text.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = hex_value(text[2 * i]);
    int lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      std::size_t bad = hi < 0 ? 2 * i : 2 * i + 1;
      return Error("hex string has a non-hex character '" + printable(text.substr(bad, 1)) +
                   "' at position " + std::to_string(bad));
    }
    out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return out;
}

Result<Bytes> from_hex_exact(std::string_view text, std::size_t size) {
  CLOISTER_TRY(Bytes out, from_hex(text));
  if (out.size() != size) {
    return Error("expected " + std::to_string(size) + " bytes (" + std::to_string(2 * size) +
                 " hex digits), found " + std::to_string(out.size()) + " bytes");
  }
  return out;
}

Result<std::uint8_t> hex_byte(std::string_view digits) {
  const int hi = digits.size() == 2 ? hex_value(digits[0]) : -1;
  const int lo = digits.size() == 2 ? hex_value(digits[1]) : -1;
  if (hi < 0 || lo < 0)
    return Error("expected a byte as two hex digits, found '" + printable(digits, 64) + "'");
  return static_cast<std::uint8_t>((hi << 4) | lo);
}

}  // namespace cloister
