#include "cloister/common/sha.h"

#include <openssl/evp.h>

#include <cassert>

namespace cloister {
namespace {

// Fetching once avoids OpenSSL 3's per-call implicit fetch on hot paths (page hashing).
const EVP_MD* md_for(HashAlgorithm algorithm) {
  static const EVP_MD* const sha256_md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  static const EVP_MD* const sha384_md = EVP_MD_fetch(nullptr, "SHA384", nullptr);
  static const EVP_MD* const sha512_md = EVP_MD_fetch(nullptr, "SHA512", nullptr);
  const EVP_MD* md = nullptr;
  switch (algorithm) {
    case HashAlgorithm::kSha256:
      md = sha256_md;
      break;
    case HashAlgorithm::kSha384:
      md = sha384_md;
      break;
    case HashAlgorithm::kSha512:
      md = sha512_md;
      break;
  }
  if (md == nullptr) detail::result_misuse("OpenSSL", "SHA-2 digest implementation unavailable");
  return md;
}

template <std::size_t N>
std::array<std::uint8_t, N> one_shot(HashAlgorithm algorithm, ByteView data) {
  std::array<std::uint8_t, N> out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, md_for(algorithm), nullptr) != 1 ||
      len != N) {
    detail::result_misuse("OpenSSL", "EVP_Digest failed");
  }
  return out;
}

}  // namespace

Sha256Digest sha256(ByteView data) {
  return one_shot<32>(HashAlgorithm::kSha256, data);
}
Sha384Digest sha384(ByteView data) {
  return one_shot<48>(HashAlgorithm::kSha384, data);
}
Sha512Digest sha512(ByteView data) {
  return one_shot<64>(HashAlgorithm::kSha512, data);
}

struct Hasher::State {
  const EVP_MD* md;
  EVP_MD_CTX* ctx;
};

Hasher::Hasher(HashAlgorithm algorithm)
    : state_(std::make_unique<State>(State{md_for(algorithm), EVP_MD_CTX_new()})) {
  if (state_->ctx == nullptr || EVP_DigestInit_ex(state_->ctx, state_->md, nullptr) != 1)
    detail::result_misuse("OpenSSL", "EVP_DigestInit_ex failed");
}

Hasher::~Hasher() {
  if (state_) EVP_MD_CTX_free(state_->ctx);
}

Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&& other) noexcept {
  if (this != &other) {
    if (state_) EVP_MD_CTX_free(state_->ctx);
    state_ = std::move(other.state_);
  }
  return *this;
}

void Hasher::update(ByteView data) {
  if (EVP_DigestUpdate(state_->ctx, data.data(), data.size()) != 1)
    detail::result_misuse("OpenSSL", "EVP_DigestUpdate failed");
}

std::size_t Hasher::digest_size() const {
  return static_cast<std::size_t>(EVP_MD_get_size(state_->md));
}

void Hasher::finish_into(std::span<std::uint8_t> out) {
  assert(out.size() == digest_size());
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(state_->ctx, out.data(), &len) != 1 ||
      EVP_DigestInit_ex(state_->ctx, state_->md, nullptr) != 1) {
    detail::result_misuse("OpenSSL", "EVP_DigestFinal_ex failed");
  }
}

Bytes Hasher::finish() {
  Bytes out(digest_size());
  finish_into(out);
  return out;
}

}  // namespace cloister
