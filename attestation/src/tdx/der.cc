#include "der.h"

#include <cstdio>

namespace cloister::attestation::tdx::der {
namespace {

std::string hex_tag(std::uint8_t tag) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", tag);
  return buf;
}

}  // namespace

Result<Tlv> Reader::next(std::uint8_t tag, const std::string& what) {
  const std::size_t start = pos_;
  auto fail = [&](const std::string& why) {
    return Error(what + " at offset " + std::to_string(base_ + start) + ": " + why);
  };
  if (data_.size() - pos_ < 2) return fail("truncated (needs a tag and a length)");
  const std::uint8_t found = data_[pos_];
  if (found != tag) return fail("expected tag " + hex_tag(tag) + ", found " + hex_tag(found));
  std::size_t p = pos_ + 1;
  std::size_t length = data_[p++];
  if (length & 0x80) {
    const std::size_t count = length & 0x7f;
    if (count == 0) return fail("indefinite length is not DER");
    if (count > 4) return fail("length of " + std::to_string(count) + " bytes is too large");
    if (data_.size() - p < count) return fail("truncated length");
    if (data_[p] == 0) return fail("length is not minimally encoded");
    length = 0;
    for (std::size_t i = 0; i < count; ++i) length = (length << 8) | data_[p++];
    if (length < 0x80) return fail("length is not minimally encoded");
  }
  if (data_.size() - p < length) {
    return fail("length " + std::to_string(length) + " exceeds the " +
                std::to_string(data_.size() - p) + " bytes left");
  }
  pos_ = p + length;
  return Tlv{found, data_.subspan(p, length), base_ + start, base_ + p};
}

Result<std::uint64_t> unsigned_integer(const Tlv& tlv, std::uint64_t max, const std::string& what) {
  const ByteView v = tlv.value;
  if (v.empty()) return Error(what + ": empty INTEGER");
  if (v[0] & 0x80) return Error(what + ": negative INTEGER");
  if (v.size() > 1 && v[0] == 0 && !(v[1] & 0x80))
    return Error(what + ": INTEGER is not minimally encoded");
  if (v.size() > 9 || (v.size() == 9 && v[0] != 0)) return Error(what + ": INTEGER too large");
  std::uint64_t out = 0;
  for (auto b : v) out = (out << 8) | b;
  if (out > max)
    return Error(what + ": expected at most " + std::to_string(max) + ", found " +
                 std::to_string(out));
  return out;
}

Result<bool> boolean(const Tlv& tlv, const std::string& what) {
  if (tlv.value.size() != 1 || (tlv.value[0] != 0x00 && tlv.value[0] != 0xff))
    return Error(what + ": BOOLEAN must be one byte 0x00 or 0xFF");
  return tlv.value[0] == 0xff;
}

std::string oid_to_string(ByteView body) {
  if (body.empty() || (body.back() & 0x80)) return "<invalid OID>";
  std::string out;
  std::uint64_t value = 0;
  bool first = true;
  for (auto b : body) {
    if (value > (std::uint64_t{1} << 56)) return "<invalid OID>";
    value = (value << 7) | (b & 0x7f);
    if (b & 0x80) continue;
    if (first) {
      std::uint64_t head = value < 40 ? 0 : value < 80 ? 1 : 2;
      out = std::to_string(head) + "." + std::to_string(value - 40 * head);
      first = false;
    } else {
      out += "." + std::to_string(value);
    }
    value = 0;
  }
  return out;
}

}  // namespace cloister::attestation::tdx::der
