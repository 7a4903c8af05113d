#include "cloister/vmm/migration/stream.h"

#include <algorithm>
#include <cstring>

#include "cloister/common/hex.h"
#include "cloister/common/sha.h"
#include "cloister/vmm/format.h"

namespace cloister::vmm {
namespace {

void put_u32(Bytes& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

void put_u64(Bytes& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

std::uint32_t get_u32(const std::uint8_t* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::uint32_t{p[i]} << (8 * i);
  return v;
}

std::uint64_t get_u64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= std::uint64_t{p[i]} << (8 * i);
  return v;
}

Error refused(const std::string& what) {
  return Error(ErrorCode::kInvalidArgument, "migration stream: " + what);
}

// The checksum that follows `covered` in the stream: read it and compare.
Status check_digest(const MigrationReadFn& read, ByteView covered, const std::string& what) {
  Sha256Digest recorded{};
  if (auto st = read(recorded); !st)
    return refused(what + ": checksum: " + st.error().message() + " (the stream was cut)");
  const Sha256Digest actual = sha256(covered);
  if (actual != recorded)
    return refused(what + ": checksum (sha256): expected " + to_hex(recorded) + ", found " +
                   to_hex(actual) + " (the stream is corrupted)");
  return {};
}

std::uint64_t payload_limit(MigrationRecordType type) {
  return type == MigrationRecordType::kMemory ? 8 + kMigrationChunkBytes
                                              : kSnapshotStateFileLimit.max_bytes;
}

}  // namespace

Bytes encode_migration_header(std::uint64_t memory_bytes, std::uint32_t version) {
  Bytes out(kMigrationMagic.begin(), kMigrationMagic.end());
  put_u32(out, version);
  put_u32(out, 0);
  put_u64(out, memory_bytes);
  const Sha256Digest digest = sha256(out);
  out.insert(out.end(), digest.begin(), digest.end());
  return out;
}

Bytes encode_migration_record(MigrationRecordType type, std::uint64_t sequence, ByteView payload) {
  Bytes out;
  out.reserve(kMigrationRecordHeaderBytes + payload.size() + 32);
  put_u32(out, static_cast<std::uint32_t>(type));
  put_u32(out, 0);
  put_u64(out, sequence);
  put_u64(out, payload.size());
  out.insert(out.end(), payload.begin(), payload.end());
  const Sha256Digest digest = sha256(out);
  out.insert(out.end(), digest.begin(), digest.end());
  return out;
}

Bytes encode_memory_payload(std::uint64_t offset, ByteView pages) {
  Bytes out;
  out.reserve(8 + pages.size());
  put_u64(out, offset);
  out.insert(out.end(), pages.begin(), pages.end());
  return out;
}

Result<ReceivedMigration> decode_migration_stream(const MigrationReadFn& read,
                                                  const MigrationMemoryFn& store) {
  ReceivedMigration received;
  std::uint8_t header[24];
  if (auto st = read(header); !st)
    return refused("header: " + st.error().message() + " (no stream, or it was cut)");
  if (!std::equal(kMigrationMagic.begin(), kMigrationMagic.end(), header))
    return refused("magic: expected " + to_hex(kMigrationMagic) + ", found " +
                   to_hex(ByteView(header, kMigrationMagic.size())) +
                   " (not a cloister-vmm migration stream)");
  CLOISTER_CHECK_OK(check_digest(read, ByteView(header, sizeof header), "header"));
  received.version = get_u32(header + 8);
  if (received.version != kMigrationStreamVersion)
    return refused("version: expected " + std::to_string(kMigrationStreamVersion) + ", found " +
                   std::to_string(received.version) + " (sent by an incompatible cloister-vmm)");
  if (const std::uint32_t flags = get_u32(header + 12); flags != 0)
    return refused("header flags: expected 0, found " + std::to_string(flags));
  received.memory_bytes = get_u64(header + 16);
  if (received.memory_bytes == 0 || received.memory_bytes % kMigrationPageBytes != 0 ||
      received.memory_bytes > kMigrationMaxMemoryBytes)
    return refused("memory_bytes: expected whole 4 KiB pages, at most " +
                   std::to_string(kMigrationMaxMemoryBytes) + ", found " +
                   std::to_string(received.memory_bytes));

  Bytes record;
  for (std::uint64_t sequence = 0;; ++sequence) {
    const std::string where = "record " + std::to_string(sequence);
    record.resize(kMigrationRecordHeaderBytes);
    if (auto st = read(record); !st)
      return refused(where + ": " + st.error().message() + " (the stream ended before the state)");
    const std::uint32_t type = get_u32(record.data());
    const std::uint32_t flags = get_u32(record.data() + 4);
    const std::uint64_t found_sequence = get_u64(record.data() + 8);
    const std::uint64_t length = get_u64(record.data() + 16);
    if (type != static_cast<std::uint32_t>(MigrationRecordType::kMemory) &&
        type != static_cast<std::uint32_t>(MigrationRecordType::kState))
      return refused(where + ": type: expected 1 (memory) or 2 (state), found " +
                     std::to_string(type));
    const auto kind = static_cast<MigrationRecordType>(type);
    const char* name = kind == MigrationRecordType::kMemory ? "memory" : "state";
    if (flags != 0) return refused(where + ": flags: expected 0, found " + std::to_string(flags));
    if (found_sequence != sequence)
      return refused(where + ": sequence number: expected " + std::to_string(sequence) +
                     ", found " + std::to_string(found_sequence) +
                     " (a record was lost or reordered)");
    const bool memory = kind == MigrationRecordType::kMemory;
    if (length > payload_limit(kind) ||
        (memory && (length < 8 + kMigrationPageBytes || (length - 8) % kMigrationPageBytes != 0)))
      return refused(where + " (" + name + "): length: expected " +
                     (memory ? "8 + 1 to " +
                                   std::to_string(kMigrationChunkBytes / kMigrationPageBytes) +
                                   " whole 4 KiB pages"
                             : "at most " + std::to_string(payload_limit(kind)) + " bytes") +
                     ", found " + std::to_string(length));
    record.resize(kMigrationRecordHeaderBytes + length);
    if (auto st = read(std::span(record).subspan(kMigrationRecordHeaderBytes)); !st)
      return refused(where + " (" + name + "): payload: " + st.error().message() +
                     " (the stream was cut)");
    CLOISTER_CHECK_OK(check_digest(read, record, where + " (" + name + ")"));
    const ByteView payload = ByteView(record).subspan(kMigrationRecordHeaderBytes);
    if (memory) {
      const std::uint64_t offset = get_u64(payload.data());
      const ByteView pages = payload.subspan(8);
      if (offset % kMigrationPageBytes != 0 || offset > received.memory_bytes ||
          pages.size() > received.memory_bytes - offset)
        return refused(where + " (memory): range: expected whole pages inside the " +
                       std::to_string(received.memory_bytes) + " bytes of memory, found " +
                       hex(offset) + " + " + hex(pages.size()));
      const std::uint64_t most = kMigrationMaxPasses * received.memory_bytes;
      if (pages.size() > most - received.memory_payload_bytes)
        return refused(where + " (memory): total: expected at most " + std::to_string(most) +
                       " bytes of memory records (" + std::to_string(kMigrationMaxPasses) +
                       " passes over the announced memory), found " +
                       std::to_string(received.memory_payload_bytes + pages.size()));
      CLOISTER_CHECK_OK(store(offset, pages));
      ++received.memory_records;
      received.memory_payload_bytes += pages.size();
      continue;
    }
    auto state = parse_state(payload);
    if (!state) return refused(where + " (state): " + state.error().message());
    if (state->memory_file_bytes != received.memory_bytes)
      return refused(where + " (state): memory size: the header announced " +
                     std::to_string(received.memory_bytes) + " bytes, the state's regions hold " +
                     std::to_string(state->memory_file_bytes));
    received.state = std::move(*state);
    return received;
  }
}

}  // namespace cloister::vmm
