#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "cloister/vmm/migration/stream.h"

namespace cloister::vmm {
namespace {

using nlohmann::json;

constexpr std::uint64_t kMiB = 1ull << 20;

SnapshotState small_state() {
  SnapshotState state;
  auto config =
      parse_config(json{{"boot", {{"firmware", "/fw.bin"}}}, {"vcpus", 1}, {"memory", "4M"}});
  EXPECT_TRUE(config.ok()) << config.error().message();
  state.config = *config;
  state.vmm_version = "test";
  state.hypervisor = "emu";
  state.memory = {{"ram-low", 0, 4 * kMiB, false, 0},
                  {"firmware", 0xfff00000, kMiB, true, 4 * kMiB}};
  state.memory_file_bytes = 5 * kMiB;
  state.vcpus.push_back(VcpuState{});
  return state;
}

Bytes page(std::uint8_t fill, std::size_t pages = 1) {
  return Bytes(pages * kMigrationPageBytes, fill);
}

void append(Bytes& out, const Bytes& part) {
  out.insert(out.end(), part.begin(), part.end());
}

// A well-formed stream: two memory records (the second rewrites a page of the first) and the
// state.
Bytes good_stream() {
  Bytes s = encode_migration_header(5 * kMiB);
  append(s, encode_migration_record(MigrationRecordType::kMemory, 0,
                                    encode_memory_payload(0x1000, page(0x11, 2))));
  append(s, encode_migration_record(MigrationRecordType::kMemory, 1,
                                    encode_memory_payload(0x2000, page(0x22))));
  append(s,
         encode_migration_record(MigrationRecordType::kState, 2, serialize_state(small_state())));
  return s;
}

struct Decoded {
  Result<ReceivedMigration> result;
  std::map<std::uint64_t, std::uint8_t> pages;  // offset -> the page's first byte, last copy
};

Decoded decode(const Bytes& stream) {
  std::size_t pos = 0;
  std::map<std::uint64_t, std::uint8_t> pages;
  auto result = decode_migration_stream(
      [&](std::span<std::uint8_t> out) -> Status {
        if (stream.size() - pos < out.size()) return Error("end of stream");
        std::copy_n(stream.begin() + static_cast<std::ptrdiff_t>(pos), out.size(), out.begin());
        pos += out.size();
        return {};
      },
      [&](std::uint64_t offset, ByteView data) -> Status {
        for (std::size_t p = 0; p < data.size(); p += kMigrationPageBytes)
          pages[offset + p] = data[p];
        return {};
      });
  return {std::move(result), std::move(pages)};
}

std::string error_of(const Decoded& d) {
  return d.result.ok() ? "" : d.result.error().message();
}

TEST(MigrationStreamTest, WellFormedStreamDecodesWithTheLastCopyOfEachPage) {
  const Decoded d = decode(good_stream());
  ASSERT_TRUE(d.result.ok()) << error_of(d);
  EXPECT_EQ(d.result->version, kMigrationStreamVersion);
  EXPECT_EQ(d.result->memory_bytes, 5 * kMiB);
  EXPECT_EQ(d.result->memory_records, 2u);
  EXPECT_EQ(d.result->memory_payload_bytes, 3 * kMigrationPageBytes);
  EXPECT_EQ(d.result->state.vcpus.size(), 1u);
  EXPECT_EQ(d.pages.at(0x1000), 0x11);
  EXPECT_EQ(d.pages.at(0x2000), 0x22);
}

TEST(MigrationStreamTest, WrongVersionIsRefusedNamingBothVersions) {
  Bytes s = encode_migration_header(5 * kMiB, kMigrationStreamVersion + 1);
  const Decoded d = decode(s);
  ASSERT_FALSE(d.result.ok());
  EXPECT_EQ(d.result.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(error_of(d).find("version: expected 1, found 2"), std::string::npos) << error_of(d);
}

TEST(MigrationStreamTest, WrongMagicIsRefused) {
  Bytes s = good_stream();
  s[0] = 'X';
  EXPECT_NE(error_of(decode(s)).find("magic: expected"), std::string::npos) << error_of(decode(s));
}

TEST(MigrationStreamTest, CorruptedMemoryChunkFailsItsChecksum) {
  Bytes s = good_stream();
  s[kMigrationHeaderBytes + kMigrationRecordHeaderBytes + 8 + 100] ^= 1;
  const std::string e = error_of(decode(s));
  EXPECT_NE(e.find("record 0 (memory): checksum (sha256): expected"), std::string::npos) << e;
}

TEST(MigrationStreamTest, CorruptedHeaderFailsItsChecksum) {
  Bytes s = good_stream();
  s[20] ^= 1;  // memory_bytes
  EXPECT_NE(error_of(decode(s)).find("header: checksum"), std::string::npos);
}

TEST(MigrationStreamTest, StreamCutAnywhereBeforeTheStateIsRefused) {
  const Bytes s = good_stream();
  for (std::size_t cut : {std::size_t{0}, std::size_t{10}, kMigrationHeaderBytes,
                          kMigrationHeaderBytes + 30, s.size() - 1}) {
    const Decoded d = decode(Bytes(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(cut)));
    ASSERT_FALSE(d.result.ok()) << cut;
    EXPECT_NE(error_of(d).find("end of stream"), std::string::npos) << error_of(d);
  }
}

TEST(MigrationStreamTest, LostOrReorderedRecordIsRefused) {
  Bytes s = encode_migration_header(5 * kMiB);
  append(s, encode_migration_record(MigrationRecordType::kMemory, 1,
                                    encode_memory_payload(0, page(1))));
  EXPECT_NE(error_of(decode(s)).find("sequence number: expected 0, found 1"), std::string::npos);
}

TEST(MigrationStreamTest, BoundsAreCheckedBeforeAnythingIsStored) {
  // A chunk past the end of memory.
  Bytes s = encode_migration_header(5 * kMiB);
  append(s, encode_migration_record(MigrationRecordType::kMemory, 0,
                                    encode_memory_payload(5 * kMiB, page(1))));
  Decoded d = decode(s);
  EXPECT_NE(error_of(d).find("range: expected whole pages inside"), std::string::npos)
      << error_of(d);
  EXPECT_TRUE(d.pages.empty());
  // A length that is not whole pages.
  s = encode_migration_header(5 * kMiB);
  append(s, encode_migration_record(MigrationRecordType::kMemory, 0,
                                    encode_memory_payload(0, Bytes(100, 1))));
  EXPECT_NE(error_of(decode(s)).find("length: expected 8 + 1 to 256 whole 4 KiB pages, found 108"),
            std::string::npos)
      << error_of(decode(s));
  // An unknown record type.
  s = encode_migration_header(5 * kMiB);
  append(s, encode_migration_record(static_cast<MigrationRecordType>(7), 0, Bytes{}));
  EXPECT_NE(error_of(decode(s)).find("type: expected 1 (memory) or 2 (state), found 7"),
            std::string::npos);
  // A header announcing no memory.
  EXPECT_NE(error_of(decode(encode_migration_header(0))).find("memory_bytes: expected"),
            std::string::npos);
}

// A source sends its memory at most kMigrationMaxPasses times: a peer that streams memory
// records without end is refused at the first byte past that, not read for as long as it likes.
TEST(MigrationStreamTest, MemoryRecordsPastTheMostPassesAreRefused) {
  Bytes s = encode_migration_header(kMigrationPageBytes);
  std::uint64_t sequence = 0;
  for (int pass = 0; pass < kMigrationMaxPasses; ++pass)
    append(s, encode_migration_record(
                  MigrationRecordType::kMemory, sequence++,
                  encode_memory_payload(0, page(static_cast<std::uint8_t>(pass)))));
  append(s, encode_migration_record(MigrationRecordType::kMemory, sequence++,
                                    encode_memory_payload(0, page(0xee))));
  const Decoded d = decode(s);
  EXPECT_EQ(error_of(d),
            "migration stream: record 9 (memory): total: expected at most 36864 bytes of memory "
            "records (9 passes over the announced memory), found 40960");
  ASSERT_EQ(d.pages.size(), 1u);
  EXPECT_EQ(d.pages.at(0), kMigrationMaxPasses - 1);  // the ninth copy was stored, the tenth not
}

TEST(MigrationStreamTest, StateMustDescribeTheAnnouncedMemory) {
  Bytes s = encode_migration_header(6 * kMiB);
  append(s,
         encode_migration_record(MigrationRecordType::kState, 0, serialize_state(small_state())));
  const std::string e = error_of(decode(s));
  EXPECT_NE(e.find("the header announced 6291456 bytes, the state's regions hold 5242880"),
            std::string::npos)
      << e;
}

}  // namespace
}  // namespace cloister::vmm
