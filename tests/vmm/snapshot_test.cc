#include "cloister/vmm/snapshot/snapshot.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cloister/common/hex.h"

namespace cloister::vmm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::uint64_t kMiB = 1ull << 20;

SnapshotState sample_state(std::uint32_t vcpus = 2, std::uint64_t memory = 4 * kMiB) {
  SnapshotState state;
  auto config = parse_config(json{{"boot", {{"firmware", "/fw.bin"}}},
                                  {"vcpus", vcpus},
                                  {"memory", std::to_string(memory >> 20) + "M"}});
  EXPECT_TRUE(config.ok()) << config.error().message();
  state.config = *config;
  state.vmm_version = "test";
  state.hypervisor = "emu";
  state.memory = {{"ram-low", 0, memory, false, 0}, {"firmware", 0xfff00000, kMiB, true, memory}};
  state.memory_file_bytes = memory + kMiB;
  state.memory_sha256.fill(0xab);
  for (std::uint32_t i = 0; i < vcpus; ++i) {
    VcpuState v;
    v.regs.rip = 0x1000 + i;
    v.regs.rax = ~0ull - i;  // all 64 bits survive JSON
    v.sregs.cs.selector = 0x8;
    v.sregs.cs.l = true;
    v.sregs.efer = 0x500;
    v.fpu.xmm[3][15] = 0x5a;
    v.msrs = {{0xc0000082, 0xffffffff81000000ull}};
    v.debug_regs.db[2] = 7;
    v.mp_state = i == 0 ? MpState::kRunnable : MpState::kHalted;
    v.lapic = Bytes(1024, static_cast<std::uint8_t>(i));
    state.vcpus.push_back(v);
  }
  state.vm.components["clock"] = {1, 2, 3};
  state.serial.lcr = 0x83;
  state.serial.rx = {'h', 'i'};
  return state;
}

std::string text_of(const Bytes& bytes) {
  return std::string(bytes.begin(), bytes.end());
}

Bytes bytes_of(const std::string& text) {
  return Bytes(text.begin(), text.end());
}

std::string parse_error(const Bytes& bytes) {
  auto parsed = parse_state(bytes);
  EXPECT_FALSE(parsed.ok());
  return parsed.ok() ? "" : parsed.error().message();
}

TEST(SnapshotStateTest, RoundTripsEveryField) {
  const SnapshotState state = sample_state();
  auto parsed = parse_state(serialize_state(state));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  EXPECT_EQ(parsed->schema_version, kSnapshotSchemaVersion);
  EXPECT_EQ(parsed->vmm_version, "test");
  EXPECT_EQ(parsed->hypervisor, "emu");
  EXPECT_EQ(parsed->config.vcpus, 2u);
  ASSERT_EQ(parsed->vcpus.size(), 2u);
  EXPECT_EQ(parsed->vcpus[1].regs.rip, 0x1001u);
  EXPECT_EQ(parsed->vcpus[1].regs.rax, ~0ull - 1);
  EXPECT_TRUE(parsed->vcpus[0].sregs.cs.l);
  EXPECT_EQ(parsed->vcpus[0].sregs.efer, 0x500u);
  EXPECT_EQ(parsed->vcpus[0].fpu, state.vcpus[0].fpu);
  EXPECT_EQ(parsed->vcpus[0].msrs, state.vcpus[0].msrs);
  EXPECT_EQ(parsed->vcpus[0].debug_regs, state.vcpus[0].debug_regs);
  EXPECT_EQ(parsed->vcpus[1].mp_state, MpState::kHalted);
  EXPECT_EQ(parsed->vcpus[1].lapic, state.vcpus[1].lapic);
  EXPECT_TRUE(parsed->vcpus[1].xsave.empty());
  EXPECT_EQ(parsed->vm.components, state.vm.components);
  EXPECT_EQ(parsed->serial.lcr, 0x83);
  EXPECT_EQ(parsed->serial.rx, state.serial.rx);
  ASSERT_EQ(parsed->memory.size(), 2u);
  EXPECT_EQ(parsed->memory[1].name, "firmware");
  EXPECT_EQ(parsed->memory[1].file_offset, 4 * kMiB);
  EXPECT_TRUE(parsed->memory[1].read_only_to_guest);
  EXPECT_EQ(parsed->memory_sha256, state.memory_sha256);
  // Self-describing: what wrote it and what it holds are readable without parsing the body.
  const json doc = json::parse(text_of(serialize_state(state)));
  EXPECT_EQ(doc["schema_version"], kSnapshotSchemaVersion);
  EXPECT_EQ(doc["body"]["vcpu_count"], 2);
  EXPECT_EQ(doc["body"]["memory_bytes"], 4 * kMiB);
  EXPECT_EQ(doc["body"]["memory_file"]["name"], "memory.bin");
}

TEST(SnapshotStateTest, RefusesAnOlderOrNewerSchemaVersion) {
  json doc = json::parse(text_of(serialize_state(sample_state())));
  doc["schema_version"] = 1;  // before virtio devices were saved
  EXPECT_EQ(parse_error(bytes_of(doc.dump())),
            "snapshot state: schema_version: expected 2, found 1 (written by an incompatible "
            "cloister-vmm)");
  doc["schema_version"] = 3;
  EXPECT_EQ(parse_error(bytes_of(doc.dump())),
            "snapshot state: schema_version: expected 2, found 3 (written by an incompatible "
            "cloister-vmm)");
}

TEST(SnapshotStateTest, RefusesABodyThatDoesNotMatchItsChecksum) {
  json doc = json::parse(text_of(serialize_state(sample_state())));
  doc["body"]["vcpus"][0]["regs"]["rip"] = 0x2000;
  const std::string error = parse_error(bytes_of(doc.dump()));
  EXPECT_TRUE(error.starts_with("snapshot state: body checksum (body_sha256): expected ")) << error;
  EXPECT_TRUE(error.ends_with("(the state file is corrupted)")) << error;
}

TEST(SnapshotStateTest, RefusesATruncatedFile) {
  Bytes bytes = serialize_state(sample_state());
  bytes.resize(bytes.size() / 2);
  const std::string error = parse_error(bytes);
  EXPECT_TRUE(error.starts_with("snapshot state: not valid JSON")) << error;
  EXPECT_TRUE(error.ends_with("(a truncated or corrupted state file)")) << error;
}

// A state whose body is consistent with its checksum but not with itself: the checksum is
// recomputed over the edited body, so the named check is the one that fails.
Bytes resealed(json doc) {
  const std::string body = doc["body"].dump();
  doc["body_sha256"] =
      to_hex(sha256(ByteView(reinterpret_cast<const std::uint8_t*>(body.data()), body.size())));
  return bytes_of(doc.dump());
}

TEST(SnapshotStateTest, RefusesAVcpuCountOrMemorySizeThatDisagreesWithTheConfig) {
  const json doc = json::parse(text_of(serialize_state(sample_state())));
  json fewer = doc;
  fewer["body"]["vcpus"].erase(1);
  EXPECT_EQ(parse_error(resealed(fewer)),
            "snapshot state: vCPU count: expected 2 entries in /body/vcpus, found 1");
  json count = doc;
  count["body"]["vcpu_count"] = 3;
  EXPECT_EQ(parse_error(resealed(count)),
            "snapshot state: vCPU count: /body/vcpu_count is 3, the config's vcpus is 2");
  json memory = doc;
  memory["body"]["memory"][0]["size"] = 2 * kMiB;
  memory["body"]["memory"][1]["file_offset"] = 2 * kMiB;
  memory["body"]["memory_file"]["bytes"] = 3 * kMiB;
  EXPECT_EQ(parse_error(resealed(memory)),
            "snapshot state: memory size: the config's memory_bytes is 4194304, the "
            "guest-writable memory regions hold 2097152");
  json file = doc;
  file["body"]["memory_file"]["bytes"] = 9 * kMiB;
  EXPECT_EQ(parse_error(resealed(file)),
            "snapshot state: /body/memory_file/bytes: expected 5242880 (the sum of the memory "
            "regions), found 9437184");
}

// KVM's pending events and TSC are optional vCPU fields: written when the hypervisor has them,
// absent (emu) otherwise, both under the same schema version.
TEST(SnapshotStateTest, PendingEventsAndTscRoundTripWhenPresent) {
  SnapshotState state = sample_state();
  VcpuEvents events;
  events.exception = {true, false, true, 14, 0x2};  // #PF being delivered
  events.interrupt = {false, 0x30, false, 1};       // shadow after MOV SS
  events.nmi = {false, true, true};
  events.sipi_vector = 0x9a;
  state.vcpus[0].events = events;
  state.vcpus[0].tsc = VcpuTsc{0xfedcba9876543210ull, 2'450'000};
  const Bytes bytes = serialize_state(state);
  auto parsed = parse_state(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  EXPECT_EQ(parsed->schema_version, kSnapshotSchemaVersion);
  ASSERT_TRUE(parsed->vcpus[0].events.has_value());
  EXPECT_EQ(*parsed->vcpus[0].events, events);
  ASSERT_TRUE(parsed->vcpus[0].tsc.has_value());
  EXPECT_EQ(*parsed->vcpus[0].tsc, (VcpuTsc{0xfedcba9876543210ull, 2'450'000}));
  EXPECT_FALSE(parsed->vcpus[1].events.has_value());
  EXPECT_FALSE(parsed->vcpus[1].tsc.has_value());
  const json doc = json::parse(text_of(bytes));
  EXPECT_EQ(doc["body"]["vcpus"][0]["events"]["nmi"]["masked"], true);
  EXPECT_EQ(doc["body"]["vcpus"][0]["tsc"]["khz"], 2'450'000);
  EXPECT_FALSE(doc["body"]["vcpus"][1].contains("events"));

  json bad = doc;
  bad["body"]["vcpus"][0]["events"]["exception"]["vector"] = 256;
  EXPECT_EQ(parse_error(resealed(bad)),
            "snapshot state: /body/vcpus/0/events/exception/vector: expected at most 255, found "
            "256");
  json partial = doc;
  partial["body"]["vcpus"][0]["tsc"].erase("khz");
  EXPECT_EQ(parse_error(resealed(partial)), "snapshot state: /body/vcpus/0/tsc/khz: missing");
}

TEST(SnapshotStateTest, NamesMissingAndMistypedFields) {
  const json doc = json::parse(text_of(serialize_state(sample_state())));
  json missing = doc;
  missing["body"]["vcpus"][1]["sregs"].erase("cr3");
  EXPECT_EQ(parse_error(resealed(missing)), "snapshot state: /body/vcpus/1/sregs/cr3: missing");
  json mistyped = doc;
  mistyped["body"]["devices"]["serial"]["lcr"] = 300;
  EXPECT_EQ(parse_error(resealed(mistyped)),
            "snapshot state: /body/devices/serial/lcr: expected at most 255, found 300");
  json mp = doc;
  mp["body"]["vcpus"][0]["mp_state"] = "sleepy";
  EXPECT_EQ(parse_error(resealed(mp)),
            "snapshot state: /body/vcpus/0/mp_state: expected uninitialized, wait_for_sipi, "
            "halted or runnable, found \"sleepy\"");
}

// sample_state() with a disk, a net and a vsock device in slots 0, 1 and 2.
SnapshotState state_with_devices() {
  SnapshotState state = sample_state(1);
  auto config =
      parse_config(json{{"boot", {{"firmware", "/fw.bin"}}},
                        {"memory", "4M"},
                        {"disks", json::array({{{"path", "/var/disk.img"}, {"read_only", true}}})},
                        {"nets", json::array({{{"tap", "tap7"}, {"mac", "52:54:00:12:34:56"}}})},
                        {"vsock", {{"guest_cid", 42}, {"uds_path", "/run/v.sock"}}}});
  EXPECT_TRUE(config.ok()) << config.error().message();
  state.config = *config;
  VirtioTransportState t;
  t.status = 15;
  t.driver_features = 1ull << 32;
  t.interrupt_status = 1;
  t.config_generation = 3;
  VirtqueueState q{8, true, 0x10000, 0x10080, 0x10100, 0xfffe, 0x0003};
  t.queues = {q};
  state.virtio.push_back({0, t, BlockDeviceState{"/var/disk.img", 1 << 20, true}});
  t.queues = {q, q};
  t.queues[1].next_avail = 17;
  NetDeviceState net{"tap7", std::array<std::uint8_t, 6>{0x52, 0x54, 0, 0x12, 0x34, 0x56}, {}, {}};
  net.rx.bandwidth = {4096, 100};
  net.tx.ops = {9, 0};
  state.virtio.push_back({1, t, net});
  t.queues = {q, q, q};
  state.virtio.push_back({2, t, VsockDeviceState{42}});
  return state;
}

TEST(SnapshotStateTest, RoundTripsVirtioDevicesInSlotOrder) {
  const SnapshotState state = state_with_devices();
  const json doc = json::parse(text_of(serialize_state(state)));
  const json& virtio = doc["body"]["devices"]["virtio"];
  ASSERT_EQ(virtio.size(), 3u);
  EXPECT_EQ(virtio[0]["kind"], "block");
  EXPECT_EQ(virtio[0]["block"]["path"], "/var/disk.img");
  EXPECT_EQ(virtio[1]["kind"], "net");
  EXPECT_EQ(virtio[1]["net"]["mac"], "525400123456");
  EXPECT_EQ(virtio[2]["kind"], "vsock");
  EXPECT_EQ(virtio[2]["transport"]["queues"][0]["next_avail"], 0xfffe);

  auto parsed = parse_state(serialize_state(state));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  ASSERT_EQ(parsed->virtio.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(parsed->virtio[i].slot, i);
    EXPECT_EQ(parsed->virtio[i].transport, state.virtio[i].transport);
  }
  EXPECT_EQ(std::get<BlockDeviceState>(parsed->virtio[0].device),
            (BlockDeviceState{"/var/disk.img", 1 << 20, true}));
  const auto& net = std::get<NetDeviceState>(parsed->virtio[1].device);
  EXPECT_EQ(net.tap, "tap7");
  EXPECT_EQ(net.mac, std::get<NetDeviceState>(state.virtio[1].device).mac);
  EXPECT_EQ(net.rx.bandwidth.tokens, 4096u);
  EXPECT_EQ(net.rx.bandwidth.one_time_burst, 100u);
  EXPECT_EQ(net.tx.ops.tokens, 9u);
  EXPECT_EQ(std::get<VsockDeviceState>(parsed->virtio[2].device).guest_cid, 42u);
}

TEST(SnapshotStateTest, RefusesVirtioDevicesThatDoNotMatchTheConfig) {
  const json doc = json::parse(text_of(serialize_state(state_with_devices())));
  json extra_net = doc;
  extra_net["body"]["config"]["nets"].push_back({{"tap", "tap8"}});
  EXPECT_EQ(parse_error(resealed(extra_net)),
            "snapshot state: virtio devices: expected 4 (1 disks, 2 nets, a vsock in "
            "/body/config), found 3 entries in /body/devices/virtio");
  json missing_disk = doc;
  missing_disk["body"]["devices"]["virtio"].erase(0);
  EXPECT_EQ(parse_error(resealed(missing_disk)),
            "snapshot state: virtio devices: expected 3 (1 disks, 1 nets, a vsock in "
            "/body/config), found 2 entries in /body/devices/virtio");
  json slot = doc;
  slot["body"]["devices"]["virtio"][1]["slot"] = 5;
  EXPECT_EQ(parse_error(resealed(slot)),
            "snapshot state: /body/devices/virtio/1/slot: expected 1 (entries in slot order), "
            "found 5");
  json kind = doc;
  kind["body"]["devices"]["virtio"][1]["kind"] = "block";
  EXPECT_EQ(parse_error(resealed(kind)),
            "snapshot state: /body/devices/virtio/1/kind: expected \"net\" (slot 1 is "
            "/body/config/nets/0), found \"block\"");
  json path = doc;
  path["body"]["devices"]["virtio"][0]["block"]["path"] = "/var/other.img";
  EXPECT_EQ(parse_error(resealed(path)),
            "snapshot state: /body/devices/virtio/0/block/path: expected \"/var/disk.img\" "
            "(/body/config/disks/0/path), found \"/var/other.img\"");
  json read_only = doc;
  read_only["body"]["devices"]["virtio"][0]["block"]["read_only"] = false;
  EXPECT_EQ(parse_error(resealed(read_only)),
            "snapshot state: /body/devices/virtio/0/block/read_only: expected true "
            "(/body/config/disks/0/read_only), found false");
  json tap = doc;
  tap["body"]["devices"]["virtio"][1]["net"]["tap"] = "tap9";
  EXPECT_EQ(parse_error(resealed(tap)),
            "snapshot state: /body/devices/virtio/1/net/tap: expected \"tap7\" "
            "(/body/config/nets/0/tap), found \"tap9\"");
  json mac = doc;
  mac["body"]["devices"]["virtio"][1]["net"]["mac"] = nullptr;
  EXPECT_EQ(parse_error(resealed(mac)),
            "snapshot state: /body/devices/virtio/1/net/mac: expected \"525400123456\" "
            "(/body/config/nets/0/mac), found null");
  json cid = doc;
  cid["body"]["devices"]["virtio"][2]["vsock"]["guest_cid"] = 7;
  EXPECT_EQ(parse_error(resealed(cid)),
            "snapshot state: /body/devices/virtio/2/vsock/guest_cid: expected 42 "
            "(/body/config/vsock/guest_cid), found 7");
  json queues = doc;
  queues["body"]["devices"]["virtio"][2]["transport"]["queues"].erase(2);
  EXPECT_EQ(parse_error(resealed(queues)),
            "snapshot state: /body/devices/virtio/2/transport/queues: expected 3 queues "
            "(virtio-vsock), found 2");
  json index = doc;
  index["body"]["devices"]["virtio"][0]["transport"]["queues"][0]["next_used"] = 70000;
  EXPECT_EQ(parse_error(resealed(index)),
            "snapshot state: /body/devices/virtio/0/transport/queues/0/next_used: expected at "
            "most 65535, found 70000");
  json absent = doc;
  absent["body"]["devices"].erase("virtio");
  EXPECT_EQ(parse_error(resealed(absent)), "snapshot state: /body/devices/virtio: missing");
}

class SnapshotDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cloister-snapshot-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// The checksum is defined by the file's contents: a page of zeros counts as a hole.
TEST_F(SnapshotDirTest, MemoryDigestIgnoresZeroPagesWhetherHolesOrWritten) {
  fs::create_directories(dir_);
  auto make = [&](const char* name, bool explicit_zeros) {
    const fs::path path = dir_ / name;
    std::ofstream out(path, std::ios::binary);
    Bytes page(4096, 0);
    for (int i = 0; i < 16; ++i) {
      std::fill(page.begin(), page.end(), i == 5 ? 0x42 : 0);
      if (i == 5 || explicit_zeros)
        out.write(reinterpret_cast<const char*>(page.data()), 4096);
      else
        out.seekp(4096 * (i + 1));
    }
    out.close();
    fs::resize_file(path, 16 * 4096);
    return ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  };
  const int sparse = make("sparse", false), dense = make("dense", true);
  auto a = memory_digest(sparse, 16 * 4096), b = memory_digest(dense, 16 * 4096);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  // By definition: SHA-256 of (5 as little-endian u64, the page).
  Bytes expected{5, 0, 0, 0, 0, 0, 0, 0};
  expected.resize(8 + 4096, 0x42);
  EXPECT_EQ(*a, sha256(expected));
  ::close(sparse);
  ::close(dense);
}

// A snapshot directory written from real guest memory opens, maps privately with the guest's
// bytes, and the file never sees the restored guest's writes.
TEST_F(SnapshotDirTest, WrittenSnapshotOpensAndMapsPrivately) {
  const RegionSpec specs[] = {{"ram-low", 0, 4 * kMiB, false},
                              {"firmware", 0xfff00000, kMiB, true}};
  auto memory = GuestMemory::create(specs, false);
  ASSERT_TRUE(memory.ok()) << memory.error().message();
  ASSERT_TRUE(memory->write(0x201000, bytes_of("guest bytes"), "test").ok());
  ASSERT_TRUE(memory->load(0xfff00010, bytes_of("firmware"), "test").ok());
  SnapshotState state = sample_state();
  auto written = write_snapshot(dir_, *memory, state);
  ASSERT_TRUE(written.ok()) << written.error().message();
  EXPECT_EQ(state.memory_file_bytes, 5 * kMiB);
  EXPECT_EQ(fs::file_size(dir_ / "memory.bin"), 5 * kMiB);

  auto opened = open_snapshot(dir_);
  ASSERT_TRUE(opened.ok()) << opened.error().message();
  EXPECT_EQ(opened->state.memory_sha256, state.memory_sha256);
  std::vector<RegionSpec> restored_specs;
  std::vector<std::uint64_t> offsets;
  for (const SnapshotRegion& r : opened->state.memory) {
    restored_specs.push_back({r.name, r.guest_phys_addr, r.size, r.read_only_to_guest});
    offsets.push_back(r.file_offset);
  }
  auto restored = GuestMemory::map_private(restored_specs, offsets, opened->memory_file.get());
  ASSERT_TRUE(restored.ok()) << restored.error().message();
  std::array<std::uint8_t, 11> guest{};
  ASSERT_TRUE(restored->read(0x201000, guest, "test").ok());
  EXPECT_EQ(std::string(guest.begin(), guest.end()), "guest bytes");
  std::array<std::uint8_t, 8> firmware{};
  ASSERT_TRUE(restored->read(0xfff00010, firmware, "test").ok());
  EXPECT_EQ(std::string(firmware.begin(), firmware.end()), "firmware");
  ASSERT_TRUE(restored->write(0x201000, bytes_of("GUEST"), "test").ok());
  auto reopened = open_snapshot(dir_);
  EXPECT_TRUE(reopened.ok()) << reopened.error().message();  // the file is unchanged
}

TEST_F(SnapshotDirTest, RefusesATruncatedOrCorruptedMemoryFile) {
  const RegionSpec specs[] = {{"ram-low", 0, 4 * kMiB, false},
                              {"firmware", 0xfff00000, kMiB, true}};
  auto memory = GuestMemory::create(specs, false);
  ASSERT_TRUE(memory.ok());
  ASSERT_TRUE(memory->write(0x1000, bytes_of("data"), "test").ok());
  SnapshotState state = sample_state();
  ASSERT_TRUE(write_snapshot(dir_, *memory, state).ok());
  const fs::path file = dir_ / "memory.bin";

  fs::resize_file(file, 3 * kMiB);
  auto truncated = open_snapshot(dir_);
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(truncated.error().message(),
            file.string() +
                ": memory file size: expected 5242880 bytes (the memory regions of 4194304 bytes "
                "of RAM in the state), found 3145728 (truncated, or from another snapshot)");

  fs::resize_file(file, 5 * kMiB);  // the page of data is still there
  {
    std::fstream poke(file, std::ios::in | std::ios::out | std::ios::binary);
    poke.seekp(0x1001);
    poke.put('A');
  }
  auto corrupted = open_snapshot(dir_);
  ASSERT_FALSE(corrupted.ok());
  EXPECT_TRUE(corrupted.error().message().starts_with(file.string() +
                                                      ": memory checksum (sha256): expected " +
                                                      to_hex(state.memory_sha256) + ", found "))
      << corrupted.error().message();
}

}  // namespace
}  // namespace cloister::vmm
