#include "cloister/common/bytes.h"

#include <cassert>

namespace cloister {

std::uint16_t load_le16(ByteView b, std::size_t o) {
  assert(o + 2 <= b.size());
  return static_cast<std::uint16_t>(b[o] | (b[o + 1] << 8));
}

std::uint32_t load_le32(ByteView b, std::size_t o) {
  assert(o + 4 <= b.size());
  return static_cast<std::uint32_t>(b[o]) | (static_cast<std::uint32_t>(b[o + 1]) << 8) |
         (static_cast<std::uint32_t>(b[o + 2]) << 16) |
         (static_cast<std::uint32_t>(b[o + 3]) << 24);
}

std::uint64_t load_le64(ByteView b, std::size_t o) {
  assert(o + 8 <= b.size());
  return static_cast<std::uint64_t>(load_le32(b, o)) |
         (static_cast<std::uint64_t>(load_le32(b, o + 4)) << 32);
}

void store_le16(std::span<std::uint8_t> out, std::size_t o, std::uint16_t v) {
  assert(o + 2 <= out.size());
  out[o] = static_cast<std::uint8_t>(v);
  out[o + 1] = static_cast<std::uint8_t>(v >> 8);
}

void store_le32(std::span<std::uint8_t> out, std::size_t o, std::uint32_t v) {
  assert(o + 4 <= out.size());
  for (int i = 0; i < 4; ++i) out[o + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

void store_le64(std::span<std::uint8_t> out, std::size_t o, std::uint64_t v) {
  assert(o + 8 <= out.size());
  for (int i = 0; i < 8; ++i) out[o + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

Status ByteReader::need(std::size_t size, std::string_view field) const {
  if (size > remaining()) {
    return Error(std::string(field) + " at offset " + std::to_string(offset_) + ": needs " +
                 std::to_string(size) + " bytes, only " + std::to_string(remaining()) + " left");
  }
  return {};
}

Result<std::uint8_t> ByteReader::u8(std::string_view field) {
  CLOISTER_CHECK_OK(need(1, field));
  return data_[offset_++];
}

Result<std::uint16_t> ByteReader::u16(std::string_view field) {
  CLOISTER_CHECK_OK(need(2, field));
  auto v = load_le16(data_, offset_);
  offset_ += 2;
  return v;
}

Result<std::uint32_t> ByteReader::u32(std::string_view field) {
  CLOISTER_CHECK_OK(need(4, field));
  auto v = load_le32(data_, offset_);
  offset_ += 4;
  return v;
}

Result<std::uint64_t> ByteReader::u64(std::string_view field) {
  CLOISTER_CHECK_OK(need(8, field));
  auto v = load_le64(data_, offset_);
  offset_ += 8;
  return v;
}

Result<ByteView> ByteReader::bytes(std::size_t size, std::string_view field) {
  CLOISTER_CHECK_OK(need(size, field));
  auto v = data_.subspan(offset_, size);
  offset_ += size;
  return v;
}

Status ByteReader::skip(std::size_t size, std::string_view field) {
  CLOISTER_CHECK_OK(need(size, field));
  offset_ += size;
  return {};
}

}  // namespace cloister
