// Fuzzes the snapshot state-file parser (state.json bytes -> checked SnapshotState). The body
// checksum stops most mutations early, so a state that parses is serialised again and must
// parse to the same vCPU count, memory layout and virtio devices (the round trip holds).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "cloister/vmm/snapshot/snapshot.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cloister::vmm;
  auto state = parse_state(cloister::ByteView(data, size));
  if (!state.ok()) return 0;
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
