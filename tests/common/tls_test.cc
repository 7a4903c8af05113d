#include "cloister/common/tls.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace cloister {
namespace {

namespace fs = std::filesystem;

class TlsFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cloister-tls-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

std::unique_ptr<X509, decltype(&X509_free)> read_certificate(const fs::path& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  X509* cert = f ? PEM_read_X509(f, nullptr, nullptr, nullptr) : nullptr;
  if (f) std::fclose(f);
  return {cert, X509_free};
}

TEST_F(TlsFilesTest, WritesAP256KeyAndASelfSignedServerCertificateWithSans) {
  const fs::path cert = dir_ / "cert.pem", key = dir_ / "key.pem";
  ASSERT_TRUE(write_self_signed_certificate(cert, key, {"attestd.example", "localhost"},
                                            {"127.0.0.1", "::1"}, 30));
  struct stat st {};
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u);  // private: no group or other bits whatever the umask

  auto x509 = read_certificate(cert);
  ASSERT_TRUE(x509);
  EXPECT_EQ(X509_check_host(x509.get(), "attestd.example", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(x509.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(x509.get(), "other.example", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(x509.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(x509.get(), "::1", 0), 1);
  EXPECT_EQ(X509_check_ca(x509.get()), 0);  // basicConstraints CA:FALSE
  EXPECT_TRUE(X509_get_extension_flags(x509.get()) & EXFLAG_SS);
  EVP_PKEY* pub = X509_get0_pubkey(x509.get());
  ASSERT_NE(pub, nullptr);
  EXPECT_TRUE(EVP_PKEY_is_a(pub, "EC"));
  char group[32] = {};
  ASSERT_EQ(EVP_PKEY_get_group_name(pub, group, sizeof group, nullptr), 1);
  EXPECT_STREQ(group, "prime256v1");

  auto ctx = make_server_tls_context(cert, key);
  ASSERT_TRUE(ctx) << ctx.error().message();
  EXPECT_EQ(SSL_CTX_get_min_proto_version(ctx->get()), TLS1_3_VERSION);
}

TEST_F(TlsFilesTest, RefusesCertificatesItCannotMake) {
  const fs::path cert = dir_ / "cert.pem", key = dir_ / "key.pem";
  const std::string what = "self-signed certificate " + cert.string() + ": ";
  auto none = write_self_signed_certificate(cert, key, {}, {}, 30);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message(), what + "no DNS name or IP address; expected at least one");
  auto bad_name = write_self_signed_certificate(cert, key, {"a,DNS:evil"}, {}, 30);
  ASSERT_FALSE(bad_name);
  EXPECT_EQ(bad_name.error().message(),
            what + "DNS name \"a,DNS:evil\" is empty or has characters outside [A-Za-z0-9.*-]");
  auto bad_ip = write_self_signed_certificate(cert, key, {}, {"localhost"}, 30);
  ASSERT_FALSE(bad_ip);
  EXPECT_EQ(bad_ip.error().message(),
            what + "IP address \"localhost\" is not an IPv4 or IPv6 literal");
  auto bad_days = write_self_signed_certificate(cert, key, {"localhost"}, {}, 0);
  ASSERT_FALSE(bad_days);
  EXPECT_EQ(bad_days.error().message(), what + "valid for 0 days; expected 1 to 3650");
  EXPECT_FALSE(fs::exists(cert));
  EXPECT_FALSE(fs::exists(key));
}

TEST_F(TlsFilesTest, AServerContextNamesTheFileAndWhatFailed) {
  const fs::path cert = dir_ / "cert.pem", key = dir_ / "key.pem";
  const fs::path other_cert = dir_ / "other.pem", other_key = dir_ / "other-key.pem";
  ASSERT_TRUE(write_self_signed_certificate(cert, key, {"localhost"}, {}, 1));
  ASSERT_TRUE(write_self_signed_certificate(other_cert, other_key, {"localhost"}, {}, 1));

  auto missing = make_server_tls_context(dir_ / "absent.pem", key);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find((dir_ / "absent.pem").string()), std::string::npos)
      << missing.error().message();

  const fs::path garbage = dir_ / "garbage.pem";
  std::ofstream(garbage) << "not PEM\n";
  auto not_pem = make_server_tls_context(garbage, key);
  ASSERT_FALSE(not_pem);
  EXPECT_EQ(not_pem.error().message(), "TLS certificate chain " + garbage.string() +
                                           ": no certificate in the file: no start line");
  auto key_not_pem = make_server_tls_context(cert, garbage);
  ASSERT_FALSE(key_not_pem);
  EXPECT_EQ(
      key_not_pem.error().message().rfind(
          "TLS private key " + garbage.string() + ": no unencrypted private key in the file: ", 0),
      0u)
      << key_not_pem.error().message();

  auto mismatch = make_server_tls_context(cert, other_key);
  ASSERT_FALSE(mismatch);
  EXPECT_EQ(mismatch.error().message(), "TLS private key " + other_key.string() +
                                            ": does not match the certificate in " + cert.string() +
                                            ": key values mismatch");

  // A chain: the server certificate, then another certificate.
  const fs::path chain = dir_ / "chain.pem";
  {
    std::ifstream a(cert), b(other_cert);
    std::ofstream out(chain);
    out << a.rdbuf() << b.rdbuf();
  }
  auto with_chain = make_server_tls_context(chain, key);
  ASSERT_TRUE(with_chain) << with_chain.error().message();
  STACK_OF(X509)* extra = nullptr;
  ASSERT_EQ(SSL_CTX_get0_chain_certs(with_chain->get(), &extra), 1);
  ASSERT_NE(extra, nullptr);
  EXPECT_EQ(sk_X509_num(extra), 1);
}

}  // namespace
}  // namespace cloister
