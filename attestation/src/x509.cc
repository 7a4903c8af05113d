#include "cloister/attestation/x509.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <ctime>
#include <map>
#include <mutex>

#include "cloister/common/hex.h"

namespace cloister::attestation {
namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX, EVP_MD_CTX_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX, EVP_PKEY_CTX_free>>;
using PssPtr = std::unique_ptr<RSA_PSS_PARAMS, Deleter<RSA_PSS_PARAMS, RSA_PSS_PARAMS_free>>;
using AlgorPtr = std::unique_ptr<X509_ALGOR, Deleter<X509_ALGOR, X509_ALGOR_free>>;

std::shared_ptr<EVP_PKEY> own(EVP_PKEY* key) {
  return {key, EVP_PKEY_free};
}

UnixTime asn1_to_unix(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<UnixTime>(timegm(&tm));
}

std::string name_attribute(const X509_NAME* name, std::string_view short_name) {
  int nid = OBJ_sn2nid(std::string(short_name).c_str());
  if (nid == NID_undef || name == nullptr) return {};
  int idx = X509_NAME_get_index_by_NID(name, nid, -1);
  if (idx < 0) return {};
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

Bytes integer_magnitude(const ASN1_INTEGER* value) {
  BnPtr bn(ASN1_INTEGER_to_BN(value, nullptr));
  if (!bn) return {};
  Bytes out(static_cast<std::size_t>(BN_num_bytes(bn.get())));
  BN_bn2bin(bn.get(), out.data());
  return out;
}

std::string algorithm_name(const X509_ALGOR* alg) {
  const ASN1_OBJECT* obj = nullptr;
  X509_ALGOR_get0(&obj, nullptr, nullptr, alg);
  int nid = OBJ_obj2nid(obj);
  if (nid != NID_undef) return OBJ_nid2ln(nid);
  char buf[128];
  OBJ_obj2txt(buf, sizeof buf, obj, 1);
  return buf;
}

std::string hash_name(const X509_ALGOR* alg) {
  if (alg == nullptr) return "SHA1";  // RFC 4055 default
  const ASN1_OBJECT* obj = nullptr;
  X509_ALGOR_get0(&obj, nullptr, nullptr, alg);
  int nid = OBJ_obj2nid(obj);
  return nid == NID_undef ? "unknown" : OBJ_nid2sn(nid);
}

std::optional<RsaPssParams> pss_params(const X509_ALGOR* alg) {
  const ASN1_OBJECT* obj = nullptr;
  int ptype = 0;
  const void* pval = nullptr;
  X509_ALGOR_get0(&obj, &ptype, &pval, alg);
  if (OBJ_obj2nid(obj) != NID_rsassaPss || ptype != V_ASN1_SEQUENCE) return std::nullopt;
  const auto* seq = static_cast<const ASN1_STRING*>(pval);
  const unsigned char* p = ASN1_STRING_get0_data(seq);
  PssPtr params(d2i_RSA_PSS_PARAMS(nullptr, &p, ASN1_STRING_length(seq)));
  if (!params) return std::nullopt;
  RsaPssParams out;
  out.hash = hash_name(params->hashAlgorithm);
  out.mgf1_hash = "SHA1";
  if (params->maskGenAlgorithm != nullptr) {
    const ASN1_OBJECT* mgf = nullptr;
    int mtype = 0;
    const void* mval = nullptr;
    X509_ALGOR_get0(&mgf, &mtype, &mval, params->maskGenAlgorithm);
    out.mgf1_hash = "unknown";
    if (OBJ_obj2nid(mgf) == NID_mgf1 && mtype == V_ASN1_SEQUENCE) {
      const auto* mseq = static_cast<const ASN1_STRING*>(mval);
      const unsigned char* mp = ASN1_STRING_get0_data(mseq);
      AlgorPtr mhash(d2i_X509_ALGOR(nullptr, &mp, ASN1_STRING_length(mseq)));
      if (mhash) out.mgf1_hash = hash_name(mhash.get());
    }
  }
  out.salt_length = params->saltLength ? ASN1_INTEGER_get(params->saltLength) : 20;
  return out;
}

const EVP_MD* md_for(HashAlgorithm hash) {
  switch (hash) {
    case HashAlgorithm::kSha256:
      return EVP_sha256();
    case HashAlgorithm::kSha384:
      return EVP_sha384();
    case HashAlgorithm::kSha512:
      return EVP_sha512();
  }
  return nullptr;
}

// ASN1_OBJECTs for dotted OIDs, created once: comparing objects is far cheaper than rendering
// every extension's OID as text.
const ASN1_OBJECT* oid_object(std::string_view oid) {
  using ObjectPtr = std::unique_ptr<ASN1_OBJECT, Deleter<ASN1_OBJECT, ASN1_OBJECT_free>>;
  static std::mutex mutex;
  static std::map<std::string, ObjectPtr, std::less<>> objects;
  std::lock_guard lock(mutex);
  auto it = objects.find(oid);
  if (it == objects.end()) {
    it = objects.emplace(std::string(oid), ObjectPtr(OBJ_txt2obj(std::string(oid).c_str(), 1)))
             .first;
  }
  return it->second.get();
}

std::string ec_group_name(EVP_PKEY* key) {
  char group[64] = {};
  std::size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) !=
      1) {
    return {};
  }
  return std::string(group, len);
}

}  // namespace

std::string openssl_error() {
  unsigned long code = ERR_get_error();
  unsigned long last = code;
  while (code != 0) {
    last = code;
    code = ERR_get_error();
  }
  if (last == 0) return "no OpenSSL error detail";
  char buf[256];
  ERR_error_string_n(last, buf, sizeof buf);
  return buf;
}

Bytes ecdsa_signature_der(ByteView r, ByteView s, ByteOrder order) {
  auto to_bn = [order](ByteView v) {
    const int len = static_cast<int>(v.size());
    return order == ByteOrder::kBigEndian ? BN_bin2bn(v.data(), len, nullptr)
                                          : BN_lebin2bn(v.data(), len, nullptr);
  };
  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(sig, to_bn(r), to_bn(s));
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  if (len <= 0) return {};
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

// ---- PublicKey ---------------------------------------------------------------------------

Result<PublicKey> PublicKey::from_spki_der(ByteView der) {
  const unsigned char* p = der.data();
  EVP_PKEY* key = d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size()));
  if (key == nullptr) return Error("not a DER SubjectPublicKeyInfo: " + openssl_error());
  auto owned = own(key);
  if (p != der.data() + der.size())
    return Error("SubjectPublicKeyInfo has " + std::to_string(der.data() + der.size() - p) +
                 " trailing bytes");
  return PublicKey(std::move(owned));
}

Result<PublicKey> PublicKey::from_ec_point(int curve_nid, ByteView xy) {
  const char* group = OBJ_nid2sn(curve_nid);
  std::size_t coord = curve_nid == NID_X9_62_prime256v1 ? 32 : curve_nid == NID_secp384r1 ? 48 : 0;
  if (coord == 0) return Error("unsupported EC curve " + std::string(group ? group : "?"));
  if (xy.size() != 2 * coord) {
    return Error("EC public key: expected " + std::to_string(2 * coord) + " bytes (x||y), found " +
                 std::to_string(xy.size()));
  }
  Bytes point(1 + xy.size());
  point[0] = 0x04;
  std::copy(xy.begin(), xy.end(), point.begin() + 1);
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(group), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()),
      OSSL_PARAM_construct_end()};
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* key = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    return Error("EC public key is not a point on " + std::string(group) + ": " + openssl_error());
  }
  return PublicKey(own(key));
}

Result<PublicKey> PublicKey::from_rsa(ByteView modulus, ByteView exponent) {
  auto significant_bits = [](ByteView magnitude) {
    std::size_t i = 0;
    while (i < magnitude.size() && magnitude[i] == 0) ++i;
    if (i == magnitude.size()) return std::size_t{0};
    std::size_t bits = (magnitude.size() - i - 1) * 8;
    for (unsigned v = magnitude[i]; v != 0; v >>= 1) ++bits;
    return bits;
  };
  const std::size_t bits = significant_bits(modulus);
  if (bits < 2048 || bits > 16384)
    return Error("RSA public key: expected a 2048..16384-bit modulus, found " +
                 std::to_string(bits) + " bits");
  if (exponent.empty() || significant_bits(exponent) > 64 || (exponent.back() & 1) == 0 ||
      significant_bits(exponent) < 2)
    return Error("RSA public key: the exponent must be odd, greater than 1 and at most 64 bits");
  std::shared_ptr<BIGNUM> n(BN_bin2bn(modulus.data(), static_cast<int>(modulus.size()), nullptr),
                            BN_free);
  std::shared_ptr<BIGNUM> e(BN_bin2bn(exponent.data(), static_cast<int>(exponent.size()), nullptr),
                            BN_free);
  std::shared_ptr<OSSL_PARAM_BLD> build(OSSL_PARAM_BLD_new(), OSSL_PARAM_BLD_free);
  if (!n || !e || !build ||
      OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(build.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1)
    return Error("RSA public key: " + openssl_error());
  std::shared_ptr<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(build.get()), OSSL_PARAM_free);
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
  EVP_PKEY* key = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
    return Error("RSA public key: " + openssl_error());
  return PublicKey(own(key));
}

Bytes PublicKey::spki_der() const {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key_.get(), &der);
  if (len <= 0) return {};
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

Bytes PublicKey::ec_point() const {
  if (EVP_PKEY_get_base_id(key_.get()) != EVP_PKEY_EC) return {};
  std::size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(key_.get(), OSSL_PKEY_PARAM_PUB_KEY, nullptr, 0, &len) != 1)
    return {};
  Bytes point(len);
  if (EVP_PKEY_get_octet_string_param(key_.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                      point.size(), &len) != 1 ||
      point.empty() || point[0] != 0x04)
    return {};
  return Bytes(point.begin() + 1, point.end());
}

bool PublicKey::equals(const PublicKey& other) const {
  return EVP_PKEY_eq(key_.get(), other.key_.get()) == 1;
}

std::string PublicKey::describe() const {
  switch (EVP_PKEY_get_base_id(key_.get())) {
    case EVP_PKEY_EC: {
      std::string group = ec_group_name(key_.get());
      if (group == "secp384r1") return "EC P-384";
      if (group == "prime256v1") return "EC P-256";
      return "EC " + group;
    }
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
      return "RSA " + std::to_string(EVP_PKEY_get_bits(key_.get()));
    default:
      return OBJ_nid2sn(EVP_PKEY_get_base_id(key_.get()));
  }
}

bool PublicKey::is_ec_curve(int curve_nid) const {
  if (EVP_PKEY_get_base_id(key_.get()) != EVP_PKEY_EC) return false;
  return OBJ_sn2nid(ec_group_name(key_.get()).c_str()) == curve_nid;
}

bool PublicKey::is_rsa(int bits) const {
  int id = EVP_PKEY_get_base_id(key_.get());
  return (id == EVP_PKEY_RSA || id == EVP_PKEY_RSA_PSS) && EVP_PKEY_get_bits(key_.get()) == bits;
}

Status PublicKey::verify_ecdsa(HashAlgorithm hash, ByteView message, ByteView der_signature) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, md_for(hash), nullptr, key_.get()) != 1)
    return Error("cannot start ECDSA verification: " + openssl_error());
  int rc = EVP_DigestVerify(ctx.get(), der_signature.data(), der_signature.size(), message.data(),
                            message.size());
  if (rc != 1) {
    ERR_clear_error();
    return Error("ECDSA signature does not verify with " + describe() + " key");
  }
  return {};
}

Status PublicKey::verify_rsa_pkcs1(HashAlgorithm hash, ByteView message, ByteView signature) const {
  if (EVP_PKEY_get_base_id(key_.get()) != EVP_PKEY_RSA)
    return Error("RSASSA-PKCS1-v1_5 needs an RSA key, found " + describe());
  MdCtxPtr ctx(EVP_MD_CTX_new());
  EVP_PKEY_CTX* pctx = nullptr;
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), &pctx, md_for(hash), nullptr, key_.get()) != 1 ||
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1)
    return Error("cannot start RSA verification: " + openssl_error());
  int rc = EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(),
                            message.size());
  if (rc != 1) {
    ERR_clear_error();
    return Error("RSASSA-PKCS1-v1_5 signature does not verify with " + describe() + " key");
  }
  return {};
}

// ---- Certificate -------------------------------------------------------------------------

Certificate::Certificate(std::shared_ptr<X509> cert, Bytes der, PublicKey key)
    : cert_(std::move(cert)),
      der_(std::move(der)),
      fingerprint_(sha256(der_)),
      public_key_(std::move(key)) {}

Result<Certificate> Certificate::from_der(ByteView der) {
  const unsigned char* p = der.data();
  X509* cert = d2i_X509(nullptr, &p, static_cast<long>(der.size()));
  if (cert == nullptr) return Error("not a DER X.509 certificate: " + openssl_error());
  std::shared_ptr<X509> owned(cert, X509_free);
  if (p != der.data() + der.size()) {
    return Error("DER certificate is followed by " + std::to_string(der.data() + der.size() - p) +
                 " trailing bytes");
  }
  EVP_PKEY* key = X509_get_pubkey(cert);  // new reference
  if (key == nullptr) return Error("certificate public key cannot be decoded: " + openssl_error());
  return Certificate(std::move(owned), Bytes(der.begin(), der.end()), PublicKey(own(key)));
}

int Certificate::version() const {
  return static_cast<int>(X509_get_version(cert_.get())) + 1;
}

std::string Certificate::subject_cn() const {
  return subject_attribute("CN");
}
std::string Certificate::issuer_cn() const {
  return issuer_attribute("CN");
}

std::string Certificate::subject_attribute(std::string_view short_name) const {
  return name_attribute(X509_get_subject_name(cert_.get()), short_name);
}

std::string Certificate::issuer_attribute(std::string_view short_name) const {
  return name_attribute(X509_get_issuer_name(cert_.get()), short_name);
}

std::string Certificate::subject_string() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert_.get()), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

Bytes Certificate::serial() const {
  return integer_magnitude(X509_get0_serialNumber(cert_.get()));
}

std::string Certificate::serial_hex() const {
  Bytes s = serial();
  std::string hex = to_hex(s);
  std::size_t first = hex.find_first_not_of('0');
  return "0x" + (first == std::string::npos ? std::string("0") : hex.substr(first));
}

UnixTime Certificate::not_before() const {
  return asn1_to_unix(X509_get0_notBefore(cert_.get()));
}
UnixTime Certificate::not_after() const {
  return asn1_to_unix(X509_get0_notAfter(cert_.get()));
}

std::string Certificate::signature_algorithm() const {
  const X509_ALGOR* alg = nullptr;
  X509_get0_signature(nullptr, &alg, cert_.get());
  return algorithm_name(alg);
}

std::optional<RsaPssParams> Certificate::rsa_pss_params() const {
  const X509_ALGOR* alg = nullptr;
  X509_get0_signature(nullptr, &alg, cert_.get());
  return pss_params(alg);
}

std::vector<std::string> Certificate::extension_oids() const {
  std::vector<std::string> out;
  int count = X509_get_ext_count(cert_.get());
  for (int i = 0; i < count; ++i) {
    char buf[128];
    OBJ_obj2txt(buf, sizeof buf, X509_EXTENSION_get_object(X509_get_ext(cert_.get(), i)), 1);
    out.emplace_back(buf);
  }
  return out;
}

std::optional<Bytes> Certificate::extension_value(std::string_view oid) const {
  const ASN1_OBJECT* object = oid_object(oid);
  if (object == nullptr) return std::nullopt;
  int index = X509_get_ext_by_OBJ(cert_.get(), object, -1);
  if (index < 0) return std::nullopt;
  const ASN1_OCTET_STRING* data = X509_EXTENSION_get_data(X509_get_ext(cert_.get(), index));
  const unsigned char* p = ASN1_STRING_get0_data(data);
  return Bytes(p, p + ASN1_STRING_length(data));
}

std::vector<std::string> Certificate::crl_distribution_points() const {
  std::vector<std::string> out;
  auto* points = static_cast<STACK_OF(DIST_POINT)*>(
      X509_get_ext_d2i(cert_.get(), NID_crl_distribution_points, nullptr, nullptr));
  if (points == nullptr) return out;
  for (int i = 0; i < sk_DIST_POINT_num(points); ++i) {
    DIST_POINT* dp = sk_DIST_POINT_value(points, i);
    if (dp->distpoint == nullptr || dp->distpoint->type != 0) continue;
    GENERAL_NAMES* names = dp->distpoint->name.fullname;
    for (int j = 0; j < sk_GENERAL_NAME_num(names); ++j) {
      GENERAL_NAME* name = sk_GENERAL_NAME_value(names, j);
      if (name->type != GEN_URI) continue;
      const ASN1_IA5STRING* uri = name->d.uniformResourceIdentifier;
      out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                       static_cast<std::size_t>(ASN1_STRING_length(uri)));
    }
  }
  sk_DIST_POINT_pop_free(points, DIST_POINT_free);
  return out;
}

Status Certificate::verify_signed_by(const PublicKey& issuer_key) const {
  if (X509_verify(cert_.get(), issuer_key.native()) != 1) {
    ERR_clear_error();
    return Error("signature of '" + subject_cn() + "' does not verify with the " +
                 issuer_key.describe() + " issuer key");
  }
  return {};
}

Status Certificate::check_validity(UnixTime time) const {
  if (time < not_before()) {
    return Error("'" + subject_cn() + "' is not valid before " + format_rfc3339(not_before()) +
                 " (verification time " + format_rfc3339(time) + ")");
  }
  if (time > not_after()) {
    return Error("'" + subject_cn() + "' expired " + format_rfc3339(not_after()) +
                 " (verification time " + format_rfc3339(time) + ")");
  }
  return {};
}

Result<std::vector<Certificate>> parse_certificates(ByteView data) {
  std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
  if (text.find("-----BEGIN ") == std::string_view::npos) {
    CLOISTER_TRY(Certificate cert, Certificate::from_der(data));
    return std::vector<Certificate>{std::move(cert)};
  }
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  std::vector<Certificate> out;
  int block = 0;
  for (;;) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* body = nullptr;
    long len = 0;
    if (PEM_read_bio(bio.get(), &name, &header, &body, &len) != 1) {
      ERR_clear_error();
      break;
    }
    ++block;
    std::string block_name = name;
    Bytes der(body, body + len);
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(body);
    if (block_name != "CERTIFICATE" && block_name != "X509 CERTIFICATE") continue;
    auto cert = Certificate::from_der(der);
    if (!cert) return cert.error().with_context("PEM block " + std::to_string(block));
    out.push_back(std::move(cert).value());
  }
  if (out.empty()) return Error("no CERTIFICATE block in PEM input");
  return out;
}

// ---- Crl ---------------------------------------------------------------------------------

Crl::Crl(std::shared_ptr<X509_CRL> crl, Bytes der) : crl_(std::move(crl)), der_(std::move(der)) {
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl_.get());
  for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
    const X509_REVOKED* entry = sk_X509_REVOKED_value(revoked, i);
    revoked_.push_back({integer_magnitude(X509_REVOKED_get0_serialNumber(entry)),
                        asn1_to_unix(X509_REVOKED_get0_revocationDate(entry))});
  }
}

Result<Crl> Crl::parse(ByteView data) {
  std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
  Bytes der;
  if (text.find("-----BEGIN X509 CRL-----") != std::string_view::npos) {
    BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr);
    if (crl == nullptr) return Error("not a PEM X.509 CRL: " + openssl_error());
    std::shared_ptr<X509_CRL> owned(crl, X509_CRL_free);
    unsigned char* out = nullptr;
    int len = i2d_X509_CRL(crl, &out);
    if (len <= 0) return Error("cannot re-encode CRL: " + openssl_error());
    der.assign(out, out + len);
    OPENSSL_free(out);
    return Crl(std::move(owned), std::move(der));
  }
  const unsigned char* p = data.data();
  X509_CRL* crl = d2i_X509_CRL(nullptr, &p, static_cast<long>(data.size()));
  if (crl == nullptr) return Error("not a DER or PEM X.509 CRL: " + openssl_error());
  std::shared_ptr<X509_CRL> owned(crl, X509_CRL_free);
  if (p != data.data() + data.size()) {
    return Error("DER CRL is followed by " + std::to_string(data.data() + data.size() - p) +
                 " trailing bytes");
  }
  return Crl(std::move(owned), Bytes(data.begin(), data.end()));
}

std::string Crl::issuer_cn() const {
  return issuer_attribute("CN");
}

std::string Crl::issuer_attribute(std::string_view short_name) const {
  return name_attribute(X509_CRL_get_issuer(crl_.get()), short_name);
}

UnixTime Crl::this_update() const {
  return asn1_to_unix(X509_CRL_get0_lastUpdate(crl_.get()));
}

std::optional<UnixTime> Crl::next_update() const {
  const ASN1_TIME* t = X509_CRL_get0_nextUpdate(crl_.get());
  if (t == nullptr) return std::nullopt;
  return asn1_to_unix(t);
}

std::optional<long> Crl::crl_number() const {
  auto* number = static_cast<ASN1_INTEGER*>(
      X509_CRL_get_ext_d2i(crl_.get(), NID_crl_number, nullptr, nullptr));
  if (number == nullptr) return std::nullopt;
  long value = ASN1_INTEGER_get(number);
  ASN1_INTEGER_free(number);
  return value;
}

std::string Crl::signature_algorithm() const {
  const X509_ALGOR* alg = nullptr;
  X509_CRL_get0_signature(crl_.get(), nullptr, &alg);
  return algorithm_name(alg);
}

std::optional<RsaPssParams> Crl::rsa_pss_params() const {
  const X509_ALGOR* alg = nullptr;
  X509_CRL_get0_signature(crl_.get(), nullptr, &alg);
  return pss_params(alg);
}

std::optional<RevokedCertificate> Crl::find_revoked(ByteView serial) const {
  for (const auto& entry : revoked_)
    if (std::equal(entry.serial.begin(), entry.serial.end(), serial.begin(), serial.end()))
      return entry;
  return std::nullopt;
}

Status Crl::verify_signed_by(const PublicKey& issuer_key) const {
  if (X509_CRL_verify(crl_.get(), issuer_key.native()) != 1) {
    ERR_clear_error();
    return Error("CRL signature does not verify with the " + issuer_key.describe() + " issuer key");
  }
  return {};
}

}  // namespace cloister::attestation
