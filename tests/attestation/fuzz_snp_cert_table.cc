// Fuzzes the extended-report certificate table parser and the certificate/CRL/extension parsers
// its entries feed.
#include <cstddef>
#include <cstdint>

#include "cloister/attestation/snp/cert_table.h"
#include "cloister/attestation/snp/certs.h"
#include "fuzz/fuzz_target.h"

using namespace cloister::attestation;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto entries = snp::parse_cert_table(cloister::ByteView(data, size));
  if (!entries) return 0;
  for (const auto& e : *entries) {
    if (e.role == snp::CertTableRole::kCrl) {
      (void)Crl::parse(e.data);
    } else if (auto cert = Certificate::from_der(e.data)) {
      (void)snp::parse_vek_extensions(*cert);
      (void)snp::identify_amd_cert(*cert);
    }
  }
  return 0;
}
