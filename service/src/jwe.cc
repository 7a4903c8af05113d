#include "cloister/service/jwe.h"

#include <openssl/rsa.h>

#include <algorithm>

#include "cloister/common/base64.h"
#include "cloister/common/json.h"
#include "cloister/common/sha.h"
#include "cloister/service/jcs.h"
#include "json_input.h"
#include "openssl_util.h"

namespace cloister::service::jwe {
namespace {

using namespace detail;

constexpr std::size_t kCekSize = 32;
constexpr std::size_t kIvSize = 12;
constexpr std::size_t kMinRsaBits = 2048;
constexpr std::size_t kMaxRsaBits = 16384;

void put_be32(Bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

// RFC 7518 §4.6.2: Concat KDF (NIST SP 800-56A §5.8.1) with SHA-256, one round for the 256-bit
// KEK: SHA-256(00000001 ‖ Z ‖ len ‖ "ECDH-ES+A256KW" ‖ len(apu)=0 ‖ len(apv)=0 ‖ 256).
Bytes concat_kdf(ByteView z) {
  Bytes input;
  put_be32(input, 1);
  input.insert(input.end(), z.begin(), z.end());
  put_be32(input, static_cast<std::uint32_t>(kAlgEcdhEsA256Kw.size()));
  input.insert(input.end(), kAlgEcdhEsA256Kw.begin(), kAlgEcdhEsA256Kw.end());
  put_be32(input, 0);
  put_be32(input, 0);
  put_be32(input, 256);
  const auto digest = sha256(input);
  return Bytes(digest.begin(), digest.end());
}

Result<Bytes> ecdh(EVP_PKEY* own, EVP_PKEY* peer) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, own, nullptr));
  std::size_t size = 0;
  if (!ctx || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer(ctx.get(), peer) != 1 ||
      EVP_PKEY_derive(ctx.get(), nullptr, &size) != 1) {
    return openssl_error("ECDH");
  }
  Bytes z(size);
  if (EVP_PKEY_derive(ctx.get(), z.data(), &size) != 1) return openssl_error("ECDH");
  z.resize(size);
  return z;
}

// RFC 3394 AES key wrap with a 256-bit KEK.
Result<Bytes> aes_key_wrap(ByteView kek, ByteView input, bool wrap) {
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return openssl_error("AES key wrap");
  EVP_CIPHER_CTX_set_flags(ctx.get(), EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
  if (EVP_CipherInit_ex(ctx.get(), EVP_aes_256_wrap(), nullptr, kek.data(), nullptr,
                        wrap ? 1 : 0) != 1) {
    return openssl_error("AES key wrap");
  }
  Bytes out(input.size() + 8);
  int len = 0;
  if (EVP_CipherUpdate(ctx.get(), out.data(), &len, input.data(), static_cast<int>(input.size())) !=
          1 ||
      len < 0) {
    return openssl_error(wrap ? "AES key wrap" : "AES key unwrap (wrong key or altered key)");
  }
  out.resize(static_cast<std::size_t>(len));
  return out;
}

Result<Bytes> rsa_oaep(EVP_PKEY* key, ByteView input, bool encrypt_direction) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, key, nullptr));
  const int init = !ctx                ? 0
                   : encrypt_direction ? EVP_PKEY_encrypt_init(ctx.get())
                                       : EVP_PKEY_decrypt_init(ctx.get());
  if (init != 1 || EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) != 1 ||
      EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha256()) != 1 ||
      EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha256()) != 1) {
    return openssl_error("RSA-OAEP-256");
  }
  std::size_t size = 0;
  auto run = [&](std::uint8_t* out) {
    return encrypt_direction ? EVP_PKEY_encrypt(ctx.get(), out, &size, input.data(), input.size())
                             : EVP_PKEY_decrypt(ctx.get(), out, &size, input.data(), input.size());
  };
  if (run(nullptr) != 1) return openssl_error("RSA-OAEP-256");
  Bytes out(size);
  if (run(out.data()) != 1) {
    return openssl_error(encrypt_direction ? "RSA-OAEP-256 encryption"
                                           : "RSA-OAEP-256 decryption (wrong key or altered key)");
  }
  out.resize(size);
  return out;
}

Result<Bytes> b64url_member(const nlohmann::json& object, std::string_view name,
                            std::string_view where) {
  CLOISTER_TRY(const std::string text, string_member(object, name, where));
  auto bytes = from_base64url(text);
  if (!bytes) return bytes.error().with_context(std::string(where) + "." + std::string(name));
  return bytes;
}

nlohmann::json epk_json(const Curve& curve, const Bytes& x, const Bytes& y) {
  return {{"kty", "EC"},
          {"crv", std::string(curve.jose_name)},
          {"x", to_base64url(x)},
          {"y", to_base64url(y)}};
}

// The CEK wrapped for `recipient`, and the header members the recipient needs.
struct WrappedKey {
  std::string alg;
  nlohmann::json header_members = nlohmann::json::object();
  Bytes encrypted_key;
};

// The recipient's public key, once its members are what the wire allows and it is valid.
Result<PkeyPtr> recipient_key(const kbs::EcTeeKey& key) {
  if (key.alg != kAlgEcdhEsA256Kw) {
    return Error("tee-pubkey.alg: expected ECDH-ES+A256KW for an EC key, found \"" + key.alg +
                 "\"");
  }
  if (key.crv != "P-256" && key.crv != "P-521") {
    return Error("tee-pubkey.crv: expected P-256 or P-521, found \"" + key.crv + "\"");
  }
  CLOISTER_TRY(const Curve curve, curve_by_name(key.crv, "tee-pubkey.crv"));
  auto x = from_base64url(key.x);
  if (!x) return x.error().with_context("tee-pubkey.x");
  auto y = from_base64url(key.y);
  if (!y) return y.error().with_context("tee-pubkey.y");
  auto recipient = ec_public_key(curve, *x, *y);
  if (!recipient) return recipient.error().with_context("tee-pubkey");
  return std::move(*recipient);
}

Result<PkeyPtr> recipient_key(const kbs::RsaTeeKey& key) {
  if (key.alg != kAlgRsaOaep256) {
    return Error("tee-pubkey.alg: expected RSA-OAEP-256 for an RSA key, found \"" + key.alg + "\"");
  }
  auto n = from_base64url(key.n);
  if (!n) return n.error().with_context("tee-pubkey.n");
  auto e = from_base64url(key.e);
  if (!e) return e.error().with_context("tee-pubkey.e");
  // e = 1 would leave the OAEP-encoded key in the clear; an even e is no RSA key. Exponents
  // past 2^64 are refused too: nobody uses them, and they only cost time.
  const auto first = std::find_if(e->begin(), e->end(), [](std::uint8_t b) { return b != 0; });
  const ByteView digits = ByteView(*e).subspan(static_cast<std::size_t>(first - e->begin()));
  std::uint64_t exponent = 0;
  for (const std::uint8_t b : digits.first(std::min<std::size_t>(digits.size(), 8)))
    exponent = exponent << 8 | b;
  if (digits.size() > 8 || exponent < 65537 || exponent % 2 == 0) {
    return Error(
        "tee-pubkey.e: expected an odd exponent from 65537 to 2^64 - 1, found " +
        (digits.size() > 8 ? std::to_string(digits.size()) + " bytes" : std::to_string(exponent)));
  }
  CLOISTER_TRY(PkeyPtr recipient, rsa_public_key(*n, *e));
  const int bits = EVP_PKEY_get_bits(recipient.get());
  if (bits < static_cast<int>(kMinRsaBits) || bits > static_cast<int>(kMaxRsaBits)) {
    return Error("tee-pubkey.n: expected a modulus of " + std::to_string(kMinRsaBits) + " to " +
                 std::to_string(kMaxRsaBits) + " bits, found " + std::to_string(bits));
  }
  return recipient;
}

Result<WrappedKey> wrap_for(const kbs::EcTeeKey& key, ByteView cek) {
  CLOISTER_TRY(const PkeyPtr recipient, recipient_key(key));
  CLOISTER_TRY(const Curve curve, curve_by_name(key.crv, "tee-pubkey.crv"));
  CLOISTER_TRY(const PkeyPtr ephemeral, ec_generate(curve));
  CLOISTER_TRY(const Bytes z, ecdh(ephemeral.get(), recipient.get()));
  CLOISTER_TRY(const auto coordinates, ec_coordinates(ephemeral.get()));
  WrappedKey out;
  out.alg = std::string(kAlgEcdhEsA256Kw);
  CLOISTER_TRY(out.encrypted_key, aes_key_wrap(concat_kdf(z), cek, true));
  out.header_members["epk"] = epk_json(curve, coordinates.first, coordinates.second);
  return out;
}

Result<WrappedKey> wrap_for(const kbs::RsaTeeKey& key, ByteView cek) {
  CLOISTER_TRY(const PkeyPtr recipient, recipient_key(key));
  WrappedKey out;
  out.alg = std::string(kAlgRsaOaep256);
  CLOISTER_TRY(out.encrypted_key, rsa_oaep(recipient.get(), cek, true));
  return out;
}

}  // namespace

Result<std::string> protected_header_text(std::string_view alg, std::string_view enc,
                                          const nlohmann::json& other_members) {
  if (!other_members.is_object()) {
    return Error("JWE protected header: other members must be an object, found " +
                 json_type_name(other_members));
  }
  if (other_members.contains("alg") || other_members.contains("enc")) {
    return Error("JWE protected header: \"alg\" and \"enc\" are given separately");
  }
  CLOISTER_TRY(const std::string head, canonical_json(nlohmann::json{{"alg", std::string(alg)},
                                                                     {"enc", std::string(enc)}}));
  if (other_members.empty()) return head;
  CLOISTER_TRY(const std::string rest, canonical_json(other_members));
  // {"alg":…,"enc":…} + , + the members of {…} without its braces.
  return head.substr(0, head.size() - 1) + "," + rest.substr(1);
}

Status check_recipient(const kbs::TeePubKey& recipient) {
  auto key = std::visit([](const auto& k) { return recipient_key(k); }, recipient);
  if (!key) return key.error();
  return {};
}

Result<nlohmann::json> encrypt(const kbs::TeePubKey& recipient, ByteView plaintext) {
  CLOISTER_TRY(const Bytes cek, random_bytes(kCekSize));
  auto wrapped = std::visit([&](const auto& key) { return wrap_for(key, cek); }, recipient);
  if (!wrapped) return wrapped.error().with_context("JWE");
  CLOISTER_TRY(const std::string header,
               protected_header_text(wrapped->alg, kEncA256Gcm, wrapped->header_members));
  const std::string protected_b64 = to_base64url(as_bytes(header));
  CLOISTER_TRY(const Bytes iv, random_bytes(kIvSize));
  CLOISTER_TRY(const Sealed sealed, gcm_seal(cek, iv, as_bytes(protected_b64), plaintext));
  return nlohmann::json{{"protected", protected_b64},
                        {"encrypted_key", to_base64url(wrapped->encrypted_key)},
                        {"iv", to_base64url(iv)},
                        {"ciphertext", to_base64url(sealed.ciphertext)},
                        {"tag", to_base64url(sealed.tag)}};
}

struct TeeKeyPair::Key {
  PkeyPtr pkey;
};

TeeKeyPair::TeeKeyPair(std::unique_ptr<Key> key, kbs::TeePubKey public_key)
    : key_(std::move(key)), public_key_(std::move(public_key)) {}
TeeKeyPair::TeeKeyPair(TeeKeyPair&&) noexcept = default;
TeeKeyPair& TeeKeyPair::operator=(TeeKeyPair&&) noexcept = default;
TeeKeyPair::~TeeKeyPair() = default;

EVP_PKEY* TeeKeyPair::openssl_key() const {
  return key_->pkey.get();
}

Result<TeeKeyPair> TeeKeyPair::generate(Kind kind) {
  auto key = std::make_unique<Key>();
  if (kind == Kind::kRsa3072) {
    EVP_PKEY* raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{3072});
    if (!raw) return openssl_error("RSA key generation");
    key->pkey.reset(raw);
    CLOISTER_TRY(const auto ne, rsa_components(raw));
    kbs::TeePubKey pub = kbs::RsaTeeKey{std::string(kAlgRsaOaep256), to_base64url(ne.first),
                                        to_base64url(ne.second)};
    return TeeKeyPair(std::move(key), std::move(pub));
  }
  CLOISTER_TRY(const Curve curve,
               curve_by_name(kind == Kind::kEcP256 ? "P-256" : "P-521", "TEE key"));
  CLOISTER_TRY(key->pkey, ec_generate(curve));
  CLOISTER_TRY(const auto xy, ec_coordinates(key->pkey.get()));
  kbs::TeePubKey pub = kbs::EcTeeKey{std::string(curve.jose_name), std::string(kAlgEcdhEsA256Kw),
                                     to_base64url(xy.first), to_base64url(xy.second)};
  return TeeKeyPair(std::move(key), std::move(pub));
}

Result<Bytes> TeeKeyPair::decrypt(const nlohmann::json& jwe) const {
  constexpr std::string_view at = "JWE";
  CLOISTER_TRY(const std::string protected_b64, string_member(jwe, "protected", at));
  auto header_bytes = from_base64url(protected_b64);
  if (!header_bytes) return header_bytes.error().with_context("JWE.protected");
  CLOISTER_TRY(
      const nlohmann::json header,
      parse_json_strict(std::string_view(reinterpret_cast<const char*>(header_bytes->data()),
                                         header_bytes->size()),
                        "JWE.protected"));
  // Members that change how the plaintext is to be read: refused, never ignored (RFC 7516
  // §4.1.3 zip, §4.1.13 crit), and so is a header outside the protected one.
  for (const char* member : {"zip", "crit"}) {
    if (header.contains(member))
      return Error("JWE.protected." + std::string(member) + ": expected none, found " +
                   dump_json(header[member]));
  }
  for (const char* member : {"unprotected", "header"}) {
    if (jwe.contains(member))
      return Error("JWE." + std::string(member) +
                   ": expected none (every header member is in "
                   "\"protected\"), found " +
                   jwe[member].type_name());
  }
  CLOISTER_TRY(const std::string alg, string_member(header, "alg", "JWE.protected"));
  CLOISTER_TRY(const std::string enc, string_member(header, "enc", "JWE.protected"));
  if (enc != kEncA256Gcm) {
    return Error("JWE.protected.enc: expected A256GCM, found \"" + enc + "\"");
  }
  CLOISTER_TRY(const Bytes encrypted_key, b64url_member(jwe, "encrypted_key", at));
  CLOISTER_TRY(const Bytes iv, b64url_member(jwe, "iv", at));
  CLOISTER_TRY(const Bytes ciphertext, b64url_member(jwe, "ciphertext", at));
  CLOISTER_TRY(const Bytes tag, b64url_member(jwe, "tag", at));
  if (iv.size() != kIvSize) {
    return Error("JWE.iv: expected 12 bytes, found " + std::to_string(iv.size()));
  }
  if (tag.size() != kGcmTagSize) {
    return Error("JWE.tag: expected 16 bytes, found " + std::to_string(tag.size()));
  }

  Bytes cek;
  if (std::holds_alternative<kbs::EcTeeKey>(public_key_)) {
    if (alg != kAlgEcdhEsA256Kw) {
      return Error("JWE.protected.alg: expected ECDH-ES+A256KW for this EC key, found \"" + alg +
                   "\"");
    }
    CLOISTER_TRY(const nlohmann::json* epk, object_member(header, "epk", "JWE.protected"));
    CLOISTER_TRY(const std::string kty, string_member(*epk, "kty", "JWE.protected.epk"));
    CLOISTER_TRY(const std::string crv, string_member(*epk, "crv", "JWE.protected.epk"));
    CLOISTER_TRY(const Curve own, curve_of(key_->pkey.get()));
    if (kty != "EC" || crv != own.jose_name) {
      return Error("JWE.protected.epk: expected an EC key on " + std::string(own.jose_name) +
                   ", found kty \"" + kty + "\" crv \"" + crv + "\"");
    }
    CLOISTER_TRY(const Bytes x, b64url_member(*epk, "x", "JWE.protected.epk"));
    CLOISTER_TRY(const Bytes y, b64url_member(*epk, "y", "JWE.protected.epk"));
    auto peer = ec_public_key(own, x, y);
    if (!peer) return peer.error().with_context("JWE.protected.epk");
    CLOISTER_TRY(const Bytes z, ecdh(key_->pkey.get(), peer->get()));
    CLOISTER_TRY(cek, aes_key_wrap(concat_kdf(z), encrypted_key, false));
  } else {
    if (alg != kAlgRsaOaep256) {
      return Error("JWE.protected.alg: expected RSA-OAEP-256 for this RSA key, found \"" + alg +
                   "\"");
    }
    CLOISTER_TRY(cek, rsa_oaep(key_->pkey.get(), encrypted_key, false));
  }
  if (cek.size() != kCekSize) {
    return Error("JWE.encrypted_key: expected a 32-byte A256GCM key, found " +
                 std::to_string(cek.size()) + " bytes");
  }
  auto plaintext = gcm_open(cek, iv, as_bytes(protected_b64), ciphertext, tag);
  if (!plaintext) return plaintext.error().with_context("JWE");
  return plaintext;
}

}  // namespace cloister::service::jwe
