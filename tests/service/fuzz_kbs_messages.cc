// Fuzzes the KBS body parsers (Request, Challenge, Attestation); whatever parses must survive a
// round trip through its JSON form, and an Attestation's REPORT_DATA binding must compute or
// fail cleanly. The input is also an init-data TOML document, as is an Attestation's init-data:
// one that parses has the digest its algorithm names and claims that dump as JSON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "cloister/common/json.h"
#include "cloister/service/init_data.h"
#include "cloister/service/kbs.h"
#include "cloister/service/report_data.h"
#include "fuzz/fuzz_target.h"

namespace kbs = cloister::service::kbs;
namespace init_data = cloister::service::init_data;

namespace {

void check_init_data(const kbs::InitData& wire) {
  auto doc = init_data::parse(wire);
  if (!doc) return;
  const std::size_t size = doc->algorithm == "sha256" ? 32 : doc->algorithm == "sha384" ? 48 : 64;
  if (doc->digest.size() != size || !doc->claims.is_object()) std::abort();
  (void)cloister::dump_json(doc->claims);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  check_init_data({"toml", std::string(body)});
  kbs::VersionPolicy any_version;
  any_version.accepted = {"0.1.0", "0.2.0", "0.3.0", "0.4.0"};
  if (auto request = kbs::parse_request(body, any_version)) {
    auto again = kbs::parse_request(kbs::to_json(*request).dump(), any_version);
    if (!again || kbs::to_json(*again) != kbs::to_json(*request)) std::abort();
  }
  if (auto challenge = kbs::parse_challenge(body)) {
    auto again = kbs::parse_challenge(kbs::to_json(*challenge).dump());
    if (!again || again->nonce != challenge->nonce) std::abort();
    (void)challenge->hash_algorithm();
  }
  if (auto attestation = kbs::parse_attestation(body)) {
    auto again = kbs::parse_attestation(kbs::to_json(*attestation).dump());
    if (!again || kbs::to_json(*again) != kbs::to_json(*attestation)) std::abort();
    (void)kbs::expected_report_data(attestation->tee_pubkey, attestation->nonce,
                                    attestation->additional_evidence);
    if (attestation->init_data) check_init_data(*attestation->init_data);
  }
  return 0;
}
