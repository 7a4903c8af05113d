// Fuzzes the SEV-SNP guest message parser the simulated firmware runs on request pages a guest
// wrote, and the AES-256-GCM layer behind it: a message that parses and authenticates under the
// all-zero VMPCK (the seeds use it) must seal back to the same bytes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "cloister/attestation/sim/snp_firmware.h"
#include "fuzz/fuzz_target.h"

using namespace cloister::attestation;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  cloister::ByteView page(data, size);
  auto message = sim::parse_guest_message(page);
  if (!message) return 0;
  const sim::Vmpck key{};
  auto payload = sim::open_guest_message(*message, key);
  if (!payload) return 0;
  auto sealed = sim::seal_guest_message(message->header, *payload, key);
  if (!sealed) std::abort();
  // The second half of the 32-byte AUTHTAG field is not used by AES-256-GCM; seal writes zero.
  cloister::Bytes expected(page.begin(),
                           page.begin() + static_cast<std::ptrdiff_t>(sealed->size()));
  if (expected.size() < snp::guest_msg::kHeaderSize) std::abort();
  std::fill_n(expected.data() + snp::guest_msg::kAuthTagSize, 32 - snp::guest_msg::kAuthTagSize, 0);
  if (*sealed != expected) std::abort();
  return 0;
}
