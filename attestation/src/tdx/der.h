// A strict DER (X.690 §10) reader for the small ASN.1 structures Intel puts inside PCK
// certificates: definite, minimally encoded lengths only; every read bounds-checked. And the
// matching writer, for the simulated secure processor's PCK and VEK extensions.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "cloister/common/bytes.h"

namespace cloister::attestation::tdx::der {

inline constexpr std::uint8_t kBoolean = 0x01;
inline constexpr std::uint8_t kInteger = 0x02;
inline constexpr std::uint8_t kOctetString = 0x04;
inline constexpr std::uint8_t kOid = 0x06;
inline constexpr std::uint8_t kEnumerated = 0x0a;
inline constexpr std::uint8_t kIa5String = 0x16;
inline constexpr std::uint8_t kSequence = 0x30;

struct Tlv {
  std::uint8_t tag = 0;
  ByteView value;
  std::size_t offset = 0;        // of the tag, counted from the outermost input
  std::size_t value_offset = 0;  // of the value, likewise
};

class Reader {
 public:
  // `base_offset`: where `data` starts in the outermost input, for error messages.
  explicit Reader(ByteView data, std::size_t base_offset = 0) : data_(data), base_(base_offset) {}
  // A reader over an element's value.
  explicit Reader(const Tlv& tlv) : data_(tlv.value), base_(tlv.value_offset) {}

  bool at_end() const { return pos_ == data_.size(); }
  // The next element, which must carry `tag`; `what` names it in errors.
  Result<Tlv> next(std::uint8_t tag, const std::string& what);

 private:
  ByteView data_;
  std::size_t base_;
  std::size_t pos_ = 0;
};

// A non-negative INTEGER or ENUMERATED body in minimal two's-complement form, at most `max`.
Result<std::uint64_t> unsigned_integer(const Tlv& tlv, std::uint64_t max, const std::string& what);
// A BOOLEAN body (DER: 0x00 or 0xFF).
Result<bool> boolean(const Tlv& tlv, const std::string& what);
// The dotted form of an OBJECT IDENTIFIER body ("1.2.840.113741.1.13.1.2"), or "<invalid OID>".
std::string oid_to_string(ByteView body);

// An element with a minimal definite length.
Bytes encode(std::uint8_t tag, ByteView value);
// A non-negative INTEGER or ENUMERATED in minimal two's-complement form.
Bytes encode_unsigned(std::uint8_t tag, std::uint64_t value);
// An OBJECT IDENTIFIER from its dotted form (at least two arcs, the first 0-2).
Bytes encode_oid(std::string_view dotted);
// A SEQUENCE of the concatenated elements.
Bytes encode_sequence(std::initializer_list<ByteView> elements);

}  // namespace cloister::attestation::tdx::der
