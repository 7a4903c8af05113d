#include "cloister/common/tls.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <string_view>

namespace cloister {
namespace {

template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using NamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;

// The reason of the first error on OpenSSL's queue ("key values mismatch"), which is emptied.
std::string openssl_reason() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  const char* reason = code == 0 ? nullptr : ERR_reason_error_string(code);
  return reason ? reason : "no reason given by OpenSSL";
}

BioPtr memory_bio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Encrypted keys are refused rather than prompting on the terminal for a passphrase.
int no_passphrase(char*, int, int, void*) {
  return -1;
}

Result<std::string> memory_bio_text(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  if (size <= 0) return Error(ErrorCode::kInternal, "PEM encoding: " + openssl_reason());
  return std::string(data, static_cast<std::size_t>(size));
}

Status add_extension(X509* cert, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
    return Error(ErrorCode::kInternal, std::string("extension ") + OBJ_nid2sn(nid) + " " + value +
                                           ": " + openssl_reason());
  return {};
}

}  // namespace

Result<std::shared_ptr<SSL_CTX>> make_server_tls_context(
    const std::filesystem::path& certificate_chain_pem,
    const std::filesystem::path& private_key_pem) {
  const std::string chain_what = "TLS certificate chain " + certificate_chain_pem.string();
  const std::string key_what = "TLS private key " + private_key_pem.string();
  CLOISTER_TRY(const std::string chain_text, read_text_file(certificate_chain_pem, kPemFileLimit));
  CLOISTER_TRY(const std::string key_text, read_text_file(private_key_pem, kPemFileLimit));
  ERR_clear_error();
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx || SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_num_tickets(ctx.get(), 0) != 1)
    return Error(ErrorCode::kInternal, "TLS server context: " + openssl_reason());

  BioPtr chain = memory_bio(chain_text);
  X509Ptr leaf(PEM_read_bio_X509(chain.get(), nullptr, no_passphrase, nullptr));
  if (!leaf) return Error(chain_what + ": no certificate in the file: " + openssl_reason());
  if (SSL_CTX_use_certificate(ctx.get(), leaf.get()) != 1)
    return Error(chain_what + ": the server certificate is refused: " + openssl_reason());
  for (int n = 2;; ++n) {
    X509Ptr next(PEM_read_bio_X509(chain.get(), nullptr, no_passphrase, nullptr));
    if (!next) {
      // The end of the file reads as "no start line"; anything else is a broken certificate.
      const unsigned long code = ERR_peek_last_error();
      if (ERR_GET_LIB(code) == ERR_LIB_PEM && ERR_GET_REASON(code) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        break;
      }
      return Error(chain_what + ": certificate " + std::to_string(n) + ": " + openssl_reason());
    }
    if (SSL_CTX_add0_chain_cert(ctx.get(), next.get()) != 1)
      return Error(chain_what + ": certificate " + std::to_string(n) +
                   " is refused: " + openssl_reason());
    next.release();  // owned by the context now
  }

  BioPtr key_bio = memory_bio(key_text);
  KeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, no_passphrase, nullptr));
  if (!key)
    return Error(key_what + ": no unencrypted private key in the file: " + openssl_reason());
  if (SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1)
    return Error(key_what + ": does not match the certificate in " +
                 certificate_chain_pem.string() + ": " + openssl_reason());
  return ctx;
}

Status write_self_signed_certificate(const std::filesystem::path& cert_pem,
                                     const std::filesystem::path& key_pem,
                                     const std::vector<std::string>& dns_names,
                                     const std::vector<std::string>& ip_addresses, int days) {
  const std::string what = "self-signed certificate " + cert_pem.string();
  if (dns_names.empty() && ip_addresses.empty())
    return Error(what + ": no DNS name or IP address; expected at least one");
  if (days < 1 || days > 3650)
    return Error(what + ": valid for " + std::to_string(days) + " days; expected 1 to 3650");
  ERR_clear_error();
  NamesPtr names(sk_GENERAL_NAME_new_null());
  if (!names) return Error(ErrorCode::kInternal, what + ": " + openssl_reason());
  for (const std::string& dns : dns_names) {
    if (dns.empty() || dns.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                             "0123456789.*-") != std::string::npos)
      return Error(what + ": DNS name \"" + dns +
                   "\" is empty or has characters outside [A-Za-z0-9.*-]");
    GENERAL_NAME* name = GENERAL_NAME_new();
    ASN1_IA5STRING* text = ASN1_IA5STRING_new();
    if (!name || !text || ASN1_STRING_set(text, dns.data(), static_cast<int>(dns.size())) != 1) {
      GENERAL_NAME_free(name);
      ASN1_IA5STRING_free(text);
      return Error(ErrorCode::kInternal, what + ": DNS name " + dns + ": " + openssl_reason());
    }
    GENERAL_NAME_set0_value(name, GEN_DNS, text);
    if (sk_GENERAL_NAME_push(names.get(), name) == 0) {
      GENERAL_NAME_free(name);
      return Error(ErrorCode::kInternal, what + ": DNS name " + dns + ": " + openssl_reason());
    }
  }
  for (const std::string& ip : ip_addresses) {
    ASN1_OCTET_STRING* address = a2i_IPADDRESS(ip.c_str());
    if (!address) {
      ERR_clear_error();
      return Error(what + ": IP address \"" + ip + "\" is not an IPv4 or IPv6 literal");
    }
    GENERAL_NAME* name = GENERAL_NAME_new();
    if (!name) {
      ASN1_OCTET_STRING_free(address);
      return Error(ErrorCode::kInternal, what + ": IP address " + ip + ": " + openssl_reason());
    }
    GENERAL_NAME_set0_value(name, GEN_IPADD, address);
    if (sk_GENERAL_NAME_push(names.get(), name) == 0) {
      GENERAL_NAME_free(name);
      return Error(ErrorCode::kInternal, what + ": IP address " + ip + ": " + openssl_reason());
    }
  }
  const std::string& common_name = dns_names.empty() ? ip_addresses.front() : dns_names.front();

  const auto failed = [&](std::string_view step) {
    return Error(ErrorCode::kInternal, what + ": " + std::string(step) + ": " + openssl_reason());
  };
  KeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return failed("P-256 key generation");
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) return failed("X509_new");
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return failed("random serial");
  serial[0] = static_cast<unsigned char>((serial[0] & 0x7f) | 0x40);  // positive, 16 bytes
  BignumPtr serial_bn(BN_bin2bn(serial, sizeof serial, nullptr));
  if (!serial_bn || !BN_to_ASN1_INTEGER(serial_bn.get(), X509_get_serialNumber(cert.get())))
    return failed("serial number");
  X509_NAME* subject = X509_get_subject_name(cert.get());
  if (!X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0) ||
      !X509_time_adj_ex(X509_getm_notAfter(cert.get()), days, 0, nullptr))
    return failed("validity");
  if (X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                 -1, 0) != 1 ||
      X509_set_issuer_name(cert.get(), subject) != 1)
    return failed("subject CN " + common_name);
  if (X509_set_pubkey(cert.get(), key.get()) != 1) return failed("public key");
  if (X509_add1_ext_i2d(cert.get(), NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1)
    return failed("subjectAltName");
  CLOISTER_CHECK_OK(add_extension(cert.get(), NID_basic_constraints, "critical,CA:FALSE"));
  CLOISTER_CHECK_OK(add_extension(cert.get(), NID_key_usage, "critical,digitalSignature"));
  CLOISTER_CHECK_OK(add_extension(cert.get(), NID_ext_key_usage, "serverAuth"));
  CLOISTER_CHECK_OK(add_extension(cert.get(), NID_subject_key_identifier, "hash"));
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) return failed("signature");

  BioPtr key_out(BIO_new(BIO_s_mem()));
  BioPtr cert_out(BIO_new(BIO_s_mem()));
  if (!key_out || !cert_out ||
      PEM_write_bio_PrivateKey(key_out.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
          1 ||
      PEM_write_bio_X509(cert_out.get(), cert.get()) != 1)
    return failed("PEM encoding");
  CLOISTER_TRY(const std::string key_text, memory_bio_text(key_out.get()));
  CLOISTER_TRY(const std::string cert_text, memory_bio_text(cert_out.get()));
  CLOISTER_CHECK_OK(write_file_atomic(key_pem, as_bytes(key_text), 0600));
  return write_file_atomic(cert_pem, as_bytes(cert_text), 0644);
}

}  // namespace cloister
