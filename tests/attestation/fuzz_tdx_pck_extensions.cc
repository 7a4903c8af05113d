// Fuzzes the PCK certificate's SGX extension decoder (strict DER) and the quote's PEM chain
// parsing. An input that decodes as a quote has its embedded chain fuzzed too.
#include <cstddef>
#include <cstdint>

#include "cloister/attestation/tdx/pck.h"
#include "cloister/attestation/tdx/quote.h"
#include "fuzz/fuzz_target.h"

using namespace cloister::attestation::tdx;

namespace {

void chain(cloister::ByteView pem) {
  auto certs = parse_pem_chain(pem);
  if (!certs) return;
  auto ids = identify_pck_chain(*certs);
  if (!ids) return;
  auto ext = pck_extensions(ids->leaf);
  cloister::attestation::Checks checks;
  check_pck_chain(*ids, intel_sgx_root_key(), checks);
  check_pck_extensions(*ids, ext, checks);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cloister::ByteView bytes(data, size);
  (void)parse_pck_extensions(bytes);
  chain(bytes);
  if (auto quote = decode_tdx_quote(bytes)) chain(quote->pck_cert_data);
  return 0;
}
