#include "cloister/common/base64.h"

#include <array>

#include "cloister/common/hex.h"

namespace cloister {
namespace {

constexpr std::string_view kStandard =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kUrl =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string encode(ByteView bytes, std::string_view alphabet, bool pad) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    for (int shift = 18; shift >= 0; shift -= 6) out.push_back(alphabet[(v >> shift) & 0x3f]);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t v = bytes[i] << 16;
    if (rest == 2) v |= bytes[i + 1] << 8;
    out.push_back(alphabet[(v >> 18) & 0x3f]);
    out.push_back(alphabet[(v >> 12) & 0x3f]);
    if (rest == 2) out.push_back(alphabet[(v >> 6) & 0x3f]);
    if (pad) out.append(rest == 1 ? "==" : "=");
  }
  return out;
}

enum class Padding { kRequired, kForbidden, kOptional };

Result<Bytes> decode(std::string_view text, std::string_view alphabet, Padding padding,
                     std::string_view name) {
  std::array<int, 256> value{};
  value.fill(-1);
  for (std::size_t i = 0; i < alphabet.size(); ++i)
    value[static_cast<unsigned char>(alphabet[i])] = static_cast<int>(i);

  std::size_t data_chars = text.size();
  if (padding == Padding::kRequired && text.size() % 4 != 0) {
    return Error(std::string(name) + ": length " + std::to_string(text.size()) +
                 " is not a multiple of 4");
  }
  if (padding != Padding::kForbidden && text.size() % 4 == 0) {
    while (data_chars > 0 && text.size() - data_chars < 2 && text[data_chars - 1] == '=')
      --data_chars;
  }
  if (data_chars % 4 == 1) {
    return Error(std::string(name) + ": " + std::to_string(data_chars) +
                 " characters cannot encode whole bytes");
  }
  Bytes out;
  out.reserve(data_chars * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < data_chars; ++i) {
    const int v = value[static_cast<unsigned char>(text[i])];
    if (v < 0) {
      const auto byte = static_cast<std::uint8_t>(text[i]);
      return Error(std::string(name) + ": invalid character 0x" + to_hex(ByteView(&byte, 1)) +
                   " at position " + std::to_string(i));
    }
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::uint8_t>(acc >> bits));
      acc &= (1u << bits) - 1;
    }
  }
  if (acc != 0) {
    return Error(std::string(name) + ": non-zero unused bits in the last character (position " +
                 std::to_string(data_chars - 1) + ")");
  }
  return out;
}

}  // namespace

std::string to_base64(ByteView bytes) {
  return encode(bytes, kStandard, true);
}

std::string to_base64url(ByteView bytes) {
  return encode(bytes, kUrl, false);
}

Result<Bytes> from_base64(std::string_view text) {
  return decode(text, kStandard, Padding::kRequired, "base64");
}

Result<Bytes> from_base64url(std::string_view text, Base64UrlPadding padding) {
  return decode(text, kUrl,
                padding == Base64UrlPadding::kOptional ? Padding::kOptional : Padding::kForbidden,
                "base64url");
}

}  // namespace cloister
