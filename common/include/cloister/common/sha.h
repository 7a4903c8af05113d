// The project's one SHA helper (OpenSSL EVP underneath, digest implementations fetched once).
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "cloister/common/bytes.h"

namespace cloister {

using Sha256Digest = std::array<std::uint8_t, 32>;
using Sha384Digest = std::array<std::uint8_t, 48>;
using Sha512Digest = std::array<std::uint8_t, 64>;

Sha256Digest sha256(ByteView data);
Sha384Digest sha384(ByteView data);
Sha512Digest sha512(ByteView data);

enum class HashAlgorithm { kSha256, kSha384, kSha512 };

// Incremental hashing. A Hasher is reusable: finish() returns the digest and resets it.
// Not thread-safe; use one per thread.
class Hasher {
 public:
  explicit Hasher(HashAlgorithm algorithm);
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  void update(ByteView data);
  Bytes finish();
  // finish() into a caller buffer of exactly digest_size() bytes.
  void finish_into(std::span<std::uint8_t> out);
  std::size_t digest_size() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace cloister
