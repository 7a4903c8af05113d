// Fuzzes the snapshot state-file parser (state.json bytes -> checked SnapshotState). Nearly
// every mutation breaks body_sha256, so an input the parser refuses is sealed again — its
// body's checksum recomputed as serialize_state() computes it — and parsed once more: that way
// the mutations reach the body's checks (vCPU, memory, device and config cross-checks), not
// only the checksum. A state that parses is serialised again and must parse to the same vCPU
// count, memory layout and virtio devices (the round trip holds).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cloister/common/hex.h"
#include "cloister/common/sha.h"
#include "cloister/vmm/snapshot/snapshot.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

// The input with body_sha256 set to the checksum of its body, or nothing when the input is not
// a JSON object with a body.
std::optional<std::string> resealed(const std::uint8_t* data, std::size_t size) {
  auto doc = nlohmann::json::parse(data, data + size, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("body")) return std::nullopt;
  const std::string body = doc["body"].dump();
  doc["body_sha256"] = cloister::to_hex(cloister::sha256(
      cloister::ByteView(reinterpret_cast<const std::uint8_t*>(body.data()), body.size())));
  return doc.dump();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cloister::vmm;
  auto state = parse_state(cloister::ByteView(data, size));
  if (!state.ok()) {
    const auto sealed = resealed(data, size);
    if (!sealed) return 0;
    state = parse_state(
        cloister::ByteView(reinterpret_cast<const std::uint8_t*>(sealed->data()), sealed->size()));
    if (!state.ok()) return 0;
  }
  auto again = parse_state(serialize_state(*state));
  if (!again.ok() || again->vcpus.size() != state->vcpus.size() ||
      again->memory_file_bytes != state->memory_file_bytes ||
      again->memory_sha256 != state->memory_sha256 || again->virtio.size() != state->virtio.size())
    std::abort();
  for (std::size_t i = 0; i < state->virtio.size(); ++i)
    if (!(again->virtio[i].transport == state->virtio[i].transport) ||
        again->virtio[i].device.index() != state->virtio[i].device.index())
      std::abort();
  return 0;
}
