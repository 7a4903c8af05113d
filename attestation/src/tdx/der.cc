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

Bytes encode(std::uint8_t tag, ByteView value) {
  Bytes out{tag};
  if (value.size() < 0x80) {
    out.push_back(static_cast<std::uint8_t>(value.size()));
  } else {
    Bytes length;
    for (std::size_t n = value.size(); n != 0; n >>= 8)
      length.insert(length.begin(), static_cast<std::uint8_t>(n));
    out.push_back(static_cast<std::uint8_t>(0x80 | length.size()));
    out.insert(out.end(), length.begin(), length.end());
  }
  out.insert(out.end(), value.begin(), value.end());
  return out;
}

Bytes encode_unsigned(std::uint8_t tag, std::uint64_t value) {
  Bytes body;
  do {
    body.insert(body.begin(), static_cast<std::uint8_t>(value));
    value >>= 8;
  } while (value != 0);
  if (body.front() & 0x80) body.insert(body.begin(), 0x00);
  return encode(tag, body);
}

Bytes encode_oid(std::string_view dotted) {
  std::vector<std::uint64_t> arcs;
  std::uint64_t arc = 0;
  for (char c : dotted) {
    if (c == '.') {
      arcs.push_back(arc);
      arc = 0;
    } else {
      arc = arc * 10 + static_cast<std::uint64_t>(c - '0');
    }
  }
  arcs.push_back(arc);
  Bytes body;
  auto base128 = [&](std::uint64_t v) {
    Bytes digits{static_cast<std::uint8_t>(v & 0x7f)};
    for (v >>= 7; v != 0; v >>= 7)
      digits.insert(digits.begin(), static_cast<std::uint8_t>(0x80 | (v & 0x7f)));
    body.insert(body.end(), digits.begin(), digits.end());
  };
  base128(arcs[0] * 40 + (arcs.size() > 1 ? arcs[1] : 0));
  for (std::size_t i = 2; i < arcs.size(); ++i) base128(arcs[i]);
  return encode(kOid, body);
}

Bytes encode_sequence(std::initializer_list<ByteView> elements) {
  Bytes body;
  for (ByteView e : elements) body.insert(body.end(), e.begin(), e.end());
  return encode(kSequence, body);
}

}  // namespace cloister::attestation::tdx::der
