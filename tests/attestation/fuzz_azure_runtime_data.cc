// Fuzzes the HCL runtime data parser (JSON with JWKs, vm-configuration, user-data) and the
// attestation key it yields.
#include <cstddef>
#include <cstdint>

#include "cloister/attestation/azure/hcl.h"
#include "fuzz/fuzz_target.h"

using namespace cloister::attestation::azure;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (auto rd = parse_runtime_data(cloister::ByteView(data, size))) (void)attestation_key(*rd);
  return 0;
}
