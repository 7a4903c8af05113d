// Byte buffers and a bounds-checked reader for untrusted binary formats.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cloister/common/result.h"

namespace cloister {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

inline ByteView as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

inline bool is_all_zero(ByteView bytes) {
  for (auto b : bytes)
    if (b != 0) return false;
  return true;
}

// Little-endian loads from a span the caller has already bounds-checked (asserted).
std::uint16_t load_le16(ByteView bytes, std::size_t offset);
std::uint32_t load_le32(ByteView bytes, std::size_t offset);
std::uint64_t load_le64(ByteView bytes, std::size_t offset);

// Little-endian stores into a buffer the caller sized (asserted).
void store_le16(std::span<std::uint8_t> out, std::size_t offset, std::uint16_t value);
void store_le32(std::span<std::uint8_t> out, std::size_t offset, std::uint32_t value);
void store_le64(std::span<std::uint8_t> out, std::size_t offset, std::uint64_t value);

// Sequential reader over untrusted bytes. Every read checks the remaining length first and
// fails with an Error naming the field, its offset and how many bytes were missing.
class ByteReader {
 public:
  explicit ByteReader(ByteView data) : data_(data) {}

  std::size_t offset() const { return offset_; }
  std::size_t remaining() const { return data_.size() - offset_; }
  bool at_end() const { return offset_ == data_.size(); }

  Result<std::uint8_t> u8(std::string_view field);
  Result<std::uint16_t> u16(std::string_view field);
  Result<std::uint32_t> u32(std::string_view field);
  Result<std::uint64_t> u64(std::string_view field);
  // A view of the next `size` bytes (valid while the underlying buffer lives).
  Result<ByteView> bytes(std::size_t size, std::string_view field);
  template <std::size_t N>
  Result<std::array<std::uint8_t, N>> array(std::string_view field) {
    auto view = bytes(N, field);
    if (!view) return view.error();
    std::array<std::uint8_t, N> out{};
    std::copy(view->begin(), view->end(), out.begin());
    return out;
  }
  Status skip(std::size_t size, std::string_view field);

 private:
  Status need(std::size_t size, std::string_view field) const;

  ByteView data_;
  std::size_t offset_ = 0;
};

}  // namespace cloister
