// TLS for the project's servers: the server context http::Server uses (TLS 1.3 only), and a
// self-signed certificate for development and tests.
#pragma once

#include <openssl/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cloister/common/file.h"
#include "cloister/common/result.h"

namespace cloister {

// A PEM file of a server's certificate chain or private key.
inline constexpr FileLimit kPemFileLimit{
    1u << 20, "a PEM certificate chain or key file can be (a chain of three is about 5 KiB)"};

// A server context for TLS 1.3 only, with the certificate chain at `certificate_chain_pem` (the
// server's certificate first, then the intermediates) and the matching private key at
// `private_key_pem` (unencrypted PEM). Session tickets are off: clients do a full handshake.
// Errors name the file and what failed, with OpenSSL's reason: "TLS certificate chain PATH: no
// certificate in the file", "TLS private key PATH: does not match the certificate in CHAIN:
// key values mismatch"; a file that cannot be read keeps read_file()'s words.
Result<std::shared_ptr<SSL_CTX>> make_server_tls_context(
    const std::filesystem::path& certificate_chain_pem,
    const std::filesystem::path& private_key_pem);

// Writes a new P-256 key to `key_pem` (PKCS#8 PEM, mode 0600) and a self-signed certificate for
// it to `cert_pem` (mode 0644), each atomically (write_file_atomic): subjectAltName with every
// name in `dns_names` and every address in `ip_addresses` (IPv4 or IPv6 literals), the first of
// them as the subject CN, basicConstraints CA:FALSE (critical), keyUsage digitalSignature
// (critical), extendedKeyUsage serverAuth, a random 128-bit serial, valid from now for `days`
// days. Clients verify it by trusting `cert_pem` itself. Refused: no name at all, a name with
// characters outside [A-Za-z0-9.*-], an address that is no literal, days outside 1 to 3650.
Status write_self_signed_certificate(const std::filesystem::path& cert_pem,
                                     const std::filesystem::path& key_pem,
                                     const std::vector<std::string>& dns_names,
                                     const std::vector<std::string>& ip_addresses, int days);

}  // namespace cloister
