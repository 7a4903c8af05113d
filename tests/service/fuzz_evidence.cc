// Fuzzes the primary_evidence converters: SNP serde JSON that converts to report bytes must
// convert back to JSON that gives the same bytes; TDX evidence must survive its round trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "cloister/service/evidence.h"
#include "fuzz/fuzz_target.h"

namespace evidence = cloister::service::evidence;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return 0;
  if (auto snp = evidence::parse_snp_evidence(doc)) {
    auto json = evidence::snp_evidence_to_json(*snp);
    if (!json) std::abort();
    auto again = evidence::parse_snp_evidence(*json);
    if (!again || again->report != snp->report || again->cert_chain != snp->cert_chain) {
      std::abort();
    }
  }
  if (auto tdx = evidence::parse_tdx_evidence(doc)) {
    auto again = evidence::parse_tdx_evidence(evidence::to_json(*tdx));
    if (!again || again->quote != tdx->quote || again->cc_eventlog != tdx->cc_eventlog) {
      std::abort();
    }
  }
  return 0;
}
