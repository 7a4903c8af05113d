#include "crc32.h"

#include <array>

namespace cloister::fw {
namespace {

constexpr std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

constexpr std::array<std::uint32_t, 256> kTable = make_table();

}  // namespace

void Crc32::update(ByteView data) {
  for (std::uint8_t byte : data) state_ = kTable[(state_ ^ byte) & 0xFF] ^ (state_ >> 8);
}

}  // namespace cloister::fw
