// Fuzzes the EAR readers: JSON claim sets (what parses must survive a round trip), the CBOR
// claims of the CWT form (likewise), and the COSE_Sign1 envelope.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "cloister/service/ear.h"
#include "ear_cbor.h"
#include "fuzz/fuzz_target.h"

namespace ear = cloister::service::ear;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const cloister::ByteView bytes(data, size);
  const nlohmann::json doc =
      nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_discarded()) {
    if (auto claims = ear::parse_claims(doc)) {
      auto again = ear::parse_claims(ear::to_json(*claims));
      if (!again || *again != *claims) std::abort();
    }
  }
  if (auto claims = ear::cbor::claims_from_cbor(bytes)) {
    auto encoded = ear::cbor::claims_to_cbor(*claims);
    if (!encoded) std::abort();
    auto again = ear::cbor::claims_from_cbor(*encoded);
    if (!again || *again != *claims) std::abort();
  }
  (void)ear::cbor::parse_cose_sign1(bytes);
  return 0;
}
