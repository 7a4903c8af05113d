// Fuzzes certificate (PEM/DER, bundles) and CRL parsing and the AMD VCEK/VLEK extension decoder.
#include <cstddef>
#include <cstdint>

#include "cloister/attestation/snp/certs.h"
#include "fuzz/fuzz_target.h"

using namespace cloister::attestation;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cloister::ByteView bytes(data, size);
  if (auto certs = parse_certificates(bytes)) {
    for (const auto& c : *certs) {
      (void)snp::parse_vek_extensions(c);
      (void)snp::identify_amd_cert(c);
      c.serial_hex();
      c.crl_distribution_points();
      c.rsa_pss_params();
      c.public_key().describe();
    }
  }
  if (auto crl = Crl::parse(bytes)) {
    crl->crl_number();
    crl->rsa_pss_params();
    crl->find_revoked(cloister::Bytes{1});
  }
  return 0;
}
