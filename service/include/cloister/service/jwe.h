// Resources as the KBS sends them: a JWE in flattened JSON serialization (RFC 7516 §7.2.2)
// encrypted to the TEE key the evidence bound (research/service.md §a.7):
//
//   {"protected": b64url(header), "encrypted_key", "iv", "ciphertext", "tag"}  (base64url, no
//   padding; no "aad" member)
//
// Content encryption is always A256GCM (random 256-bit CEK, random 96-bit IV, 128-bit tag,
// AAD = ASCII(protected)). Key management: ECDH-ES+A256KW on P-256 or P-521 (ephemeral key on
// the same curve, Concat KDF with SHA-256 and empty PartyUInfo/PartyVInfo, RFC 7518 §4.6, then
// AES-256 key wrap, RFC 3394), or RSA-OAEP-256 (OAEP with SHA-256 and MGF1-SHA-256).
//
// The protected header is written canonically: "alg", "enc", then the other members sorted,
// nested members sorted, no whitespace. Guest-components does not use the received string as
// AAD: it decodes the header and serializes it again (kbs-types ProtectedHeader::generate_aad,
// alg and enc first, the rest in map order); this form is the one both agree on.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"
#include "cloister/service/kbs.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace cloister::service::jwe {

inline constexpr std::string_view kEncA256Gcm = "A256GCM";
inline constexpr std::string_view kAlgEcdhEsA256Kw = "ECDH-ES+A256KW";
inline constexpr std::string_view kAlgRsaOaep256 = "RSA-OAEP-256";

// The protected header's UTF-8 text: {"alg":…,"enc":…,<other members in JCS order>}. Fails
// when `other_members` is not an object, repeats "alg"/"enc", or holds what JCS refuses.
Result<std::string> protected_header_text(std::string_view alg, std::string_view enc,
                                          const nlohmann::json& other_members);

// Encrypts `plaintext` to `recipient` (ECDH-ES+A256KW with crv P-256 or P-521, or RSA-OAEP-256
// with a modulus of 2048 to 16384 bits and an odd exponent of at least 65537; anything else,
// RSA1_5 included, is refused naming the member). The key's coordinates or modulus are
// validated before use.
Result<nlohmann::json> encrypt(const kbs::TeePubKey& recipient, ByteView plaintext);
// The checks encrypt() makes of `recipient`, without encrypting: the service makes them when
// the key is presented (attest), so a guest learns at once that no resource could reach it.
Status check_recipient(const kbs::TeePubKey& recipient);

// The TEE side: a key pair whose public half goes into Attestation.runtime-data.tee-pubkey and
// whose private half decrypts the resource. Not copyable; the private key never leaves it
// except through openssl_key().
class TeeKeyPair {
 public:
  enum class Kind { kEcP256, kEcP521, kRsa3072 };
  static Result<TeeKeyPair> generate(Kind kind);

  TeeKeyPair(TeeKeyPair&&) noexcept;
  TeeKeyPair& operator=(TeeKeyPair&&) noexcept;
  ~TeeKeyPair();

  // The JWK the attester sends, with "alg" ECDH-ES+A256KW or RSA-OAEP-256.
  const kbs::TeePubKey& public_key() const { return public_key_; }

  // Decrypts a flattened JWE addressed to this key, with the received "protected" text as AAD
  // (RFC 7516 §5.2). Refuses, naming the member: a header whose alg does not fit this key or
  // whose enc is not A256GCM, a malformed member, an epk on another curve, a key that does not
  // unwrap, and a tag that does not verify ("JWE: A256GCM authentication tag does not verify").
  Result<Bytes> decrypt(const nlohmann::json& jwe) const;

  // The OpenSSL key (private and public), for interoperability with other JOSE libraries.
  EVP_PKEY* openssl_key() const;

 private:
  struct Key;
  TeeKeyPair(std::unique_ptr<Key> key, kbs::TeePubKey public_key);
  std::unique_ptr<Key> key_;
  kbs::TeePubKey public_key_;
};

}  // namespace cloister::service::jwe
