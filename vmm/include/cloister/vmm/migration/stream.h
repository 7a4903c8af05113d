// The live-migration stream (docs/operator.md, "Live migration"): what a `PUT vm.migrate`
// source sends a `cloister-vmm receive` destination over one stream socket.
//
//   header   magic "CLMIGRT\n" (8 bytes), version (u32), flags (u32, 0), memory_bytes (u64: the
//            size of the guest's memory laid out region after region, as in a snapshot's memory
//            file), SHA-256 of those 24 bytes
//   records  type (u32: 1 memory, 2 state), flags (u32, 0), sequence number (u64: 0, 1, 2, ...),
//            payload length (u64), the payload, SHA-256 of the 24-byte record header and the
//            payload
//     memory   offset (u64, page aligned) then whole 4 KiB pages, at most kMigrationChunkBytes:
//              the pages' bytes at that offset of the memory layout. A page may come several
//              times (pre-copy resends the pages the guest wrote since); the last copy counts.
//     state    the snapshot state (snapshot.h, serialize_state()) of the paused source; the last
//              record. Its memory layout must add up to the header's memory_bytes.
//   reply    after the state, the destination answers one byte: kMigrationAccepted once it has
//            built the VM (it then runs the guest), nothing (it closes) when it refuses.
//
// Integers are little-endian. The decoder refuses, naming the check, the expected and the found
// value: another magic or version, a checksum mismatch, a sequence number out of order, an
// unknown record type, a length outside its bound, a chunk outside memory_bytes, and a stream
// that ends before the state.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"
#include "cloister/vmm/snapshot/snapshot.h"

namespace cloister::vmm {

inline constexpr std::array<std::uint8_t, 8> kMigrationMagic = {'C', 'L', 'M', 'I',
                                                                'G', 'R', 'T', '\n'};
// Bumped whenever the stream's layout or a record's meaning changes; a destination refuses any
// other version.
inline constexpr std::uint32_t kMigrationStreamVersion = 1;
inline constexpr std::size_t kMigrationHeaderBytes = 24 + 32;
inline constexpr std::size_t kMigrationRecordHeaderBytes = 24;
inline constexpr std::size_t kMigrationPageBytes = 4096;
// The largest memory record's pages.
inline constexpr std::size_t kMigrationChunkBytes = 1u << 20;
// The largest guest a stream may describe (the config's memory limit is far below).
inline constexpr std::uint64_t kMigrationMaxMemoryBytes = std::uint64_t{1} << 40;
// A source sends memory in at most kMigrationMaxPrecopyPasses passes while the guest runs, then
// one stop-and-copy pass: no stream carries more than kMigrationMaxPasses times its memory, and
// a destination refuses one that does (a peer streaming memory records without end).
inline constexpr int kMigrationMaxPrecopyPasses = 8;
inline constexpr int kMigrationMaxPasses = kMigrationMaxPrecopyPasses + 1;
// The destination's answer once it has built the VM.
inline constexpr std::uint8_t kMigrationAccepted = 'A';

enum class MigrationRecordType : std::uint32_t { kMemory = 1, kState = 2 };

// The stream's first bytes for a guest of `memory_bytes`; `version` is a parameter so that tests
// can write streams a destination must refuse.
Bytes encode_migration_header(std::uint64_t memory_bytes,
                              std::uint32_t version = kMigrationStreamVersion);
// One record with sequence number `sequence`: a memory record's payload is
// encode_memory_payload()'s.
Bytes encode_migration_record(MigrationRecordType type, std::uint64_t sequence, ByteView payload);
// A memory record's payload: `offset`, then `pages`.
Bytes encode_memory_payload(std::uint64_t offset, ByteView pages);

// Reads exactly out.size() bytes of the stream, or fails (end of stream, socket error).
using MigrationReadFn = std::function<Status(std::span<std::uint8_t> out)>;
// Stores `pages` at `offset` of the memory layout; the decoder has bounded both.
using MigrationMemoryFn = std::function<Status(std::uint64_t offset, ByteView pages)>;

struct ReceivedMigration {
  std::uint32_t version = 0;
  std::uint64_t memory_bytes = 0;
  std::uint64_t memory_records = 0;
  std::uint64_t memory_payload_bytes = 0;
  SnapshotState state;  // parse_state() of the state record
};

// Decodes a whole stream: the header, every memory record (handed to `store` in stream order)
// and the final state record, parsed with parse_state() and checked against the header's
// memory_bytes. Memory records past kMigrationMaxPasses times memory_bytes are refused. Nothing
// after the state is read. Every refusal is ErrorCode::kInvalidArgument
// and starts with "migration stream: ".
Result<ReceivedMigration> decode_migration_stream(const MigrationReadFn& read,
                                                  const MigrationMemoryFn& store);

}  // namespace cloister::vmm
