// Fuzzes the live-migration stream decoder (header, memory records, state record -> checked
// ReceivedMigration). Every memory range the decoder hands on must lie inside the memory the
// header announced, and a stream that decodes must carry a state describing that memory.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "cloister/vmm/migration/stream.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cloister::vmm;
  std::size_t pos = 0;
  std::uint64_t announced = 0;
  if (size >= 24) std::memcpy(&announced, data + 16, sizeof announced);
  auto received = decode_migration_stream(
      [&](std::span<std::uint8_t> out) -> cloister::Status {
        if (size - pos < out.size()) return cloister::Error("end of input");
        std::memcpy(out.data(), data + pos, out.size());
        pos += out.size();
        return {};
      },
      [&](std::uint64_t offset, cloister::ByteView pages) -> cloister::Status {
        if (offset % kMigrationPageBytes != 0 || pages.empty() ||
            pages.size() % kMigrationPageBytes != 0 || offset > announced ||
            pages.size() > announced - offset)
          std::abort();
        return {};
      });
  if (received.ok() && received->state.memory_file_bytes != received->memory_bytes) std::abort();
  return 0;
}
