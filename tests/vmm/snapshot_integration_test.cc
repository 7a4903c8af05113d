// Snapshot and restore end to end (issue 12): real cloister-vmm processes driven over their
// control API sockets, the test guest counting on its serial port ("mode=count").
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cloister/common/hex.h"
#include "cloister/common/sha.h"
#include "support/api_client.h"
#include "support/sim_state.h"
#include "vmm_process.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;
using namespace cloister::testing;

const std::string kGuestDir = CLOISTER_TEST_GUEST_DIR;
const std::string kSimState = CLOISTER_SIM_STATE_DIR;

std::string guest(const std::string& name) {
  return kGuestDir + "/" + name;
}

// A fresh path in the temporary directory for this test and this process.
fs::path scratch(const std::string& name) {
  const fs::path p =
      fs::temp_directory_path() / ("cloister-snap-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(p);
  return p;
}

// The values of the complete "count N" lines in `text`, in order.
std::vector<std::uint64_t> counts(const std::string& text) {
  std::vector<std::uint64_t> values;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line))
    if (line.starts_with("count ") && line.size() > 6 && !lines.eof())
      values.push_back(std::stoull(line.substr(6)));
  return values;
}

// Waits (up to `seconds`) until the console file holds a count of at least `at_least`.
bool wait_for_count(const fs::path& console, std::uint64_t at_least, int seconds = 60) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    auto values = counts(slurp(console));
    if (!values.empty() && values.back() >= at_least) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// A counting guest with `vcpus` vCPUs, snapshotted into `dir` after it has counted past
// `count`; the original VMM is shut down afterwards. Returns what the guest printed up to the
// snapshot.
std::string snapshot_counting_guest(const fs::path& dir, std::uint64_t count, int vcpus = 1) {
  const fs::path sock = scratch("orig.sock"), console = scratch("orig.console");
  VmmProcess original(
      run_args({"run", "--firmware", guest("test-guest.bin"), "--memory", "16M", "--vcpus",
                std::to_string(vcpus), "--cmdline", "mode=count", "--api-socket", sock.string(),
                "--console", "file:" + console.string(), "--log-format", "json"}));
  EXPECT_TRUE(wait_for_count(console, count)) << original.err() << slurp(console);
  auto [status, body] = put(sock, "/api/v1/vm.snapshot", json{{"dir", dir.string()}}.dump());
  EXPECT_EQ(status, 204) << body;
  // Firecracker's behaviour: the VM stays paused, so nothing more reaches the console.
  auto info = http(sock, "GET", "/api/v1/vm.info");
  EXPECT_EQ(json::parse(info.second)["state"], "paused") << info.second;
  const std::string printed = slurp(console);
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(slurp(console), printed);
  EXPECT_EQ(http(sock, "PUT", "/api/v1/vm.shutdown").first, 204);
  EXPECT_EQ(original.wait(), 0) << original.err();
  EXPECT_FALSE(original.log_event("vm.snapshot").is_null()) << original.err();
  fs::remove(console);
  return printed;
}

TEST(SnapshotIntegrationTest, RestoredGuestContinuesItsCountWithNoGapOrRepeat) {
  const fs::path dir = scratch("snap");
  const std::string before = snapshot_counting_guest(dir, 300);
  ASSERT_TRUE(fs::exists(dir / "state.json"));
  ASSERT_TRUE(fs::exists(dir / "memory.bin"));
  const json state = json::parse(slurp(dir / "state.json"));
  EXPECT_EQ(state["schema_version"], 2);
  EXPECT_EQ(state["body"]["devices"]["virtio"], json::array());
  EXPECT_EQ(state["body"]["vcpu_count"], 1);
  EXPECT_EQ(state["body"]["memory_bytes"], 16 << 20);

  const fs::path sock = scratch("restored.sock"), console = scratch("restored.console");
  VmmProcess restored({"restore", "--snapshot", dir.string(), "--api-socket", sock.string(),
                       "--console", "file:" + console.string(), "--log-format", "json"});
  const std::uint64_t last_before = counts(before).back();
  ASSERT_TRUE(wait_for_count(console, last_before + 200))
      << restored.err() << slurp(console).substr(0, 200);
  auto info = http(sock, "GET", "/api/v1/vm.info");
  EXPECT_EQ(json::parse(info.second)["state"], "running");
  EXPECT_EQ(http(sock, "PUT", "/api/v1/vm.shutdown").first, 204);
  EXPECT_EQ(restored.wait(), 0) << restored.err();
  EXPECT_FALSE(restored.log_event("vm.restored").is_null()) << restored.err();

  // What the original printed up to the snapshot, then what the restored guest printed: one
  // unbroken count, whatever line or byte the snapshot fell on.
  const std::string after = slurp(console);
  EXPECT_FALSE(after.starts_with("cloister test guest")) << "the guest booted again";
  const auto values = counts(before + after);
  ASSERT_GT(values.size(), last_before + 200);
  for (std::size_t i = 0; i < values.size(); ++i) ASSERT_EQ(values[i], i) << "line " << i;
  fs::remove_all(dir);
}

// With two vCPUs the second waits halted (the test guest parks its APs): its MP state and local
// APIC travel too, and the restored VM runs both.
TEST(SnapshotIntegrationTest, TwoVcpuGuestIsRestoredWithItsHaltedApplicationProcessor) {
  const fs::path dir = scratch("snap2");
  const std::string before = snapshot_counting_guest(dir, 100, 2);
  EXPECT_NE(before.find("smp: 2 of 2 cpus online"), std::string::npos) << before.substr(0, 400);
  const json state = json::parse(slurp(dir / "state.json"));
  ASSERT_EQ(state["body"]["vcpus"].size(), 2u);
  EXPECT_EQ(state["body"]["vcpus"][0]["mp_state"], "runnable");
  EXPECT_EQ(state["body"]["vcpus"][1]["mp_state"], "halted");
  EXPECT_EQ(state["body"]["vcpus"][1]["lapic"].get<std::string>().size(), 2048u);

  const fs::path console = scratch("restored2.console");
  VmmProcess restored({"restore", "--snapshot", dir.string(), "--console",
                       "file:" + console.string(), "--log-format", "json"});
  const std::uint64_t last_before = counts(before).back();
  ASSERT_TRUE(wait_for_count(console, last_before + 100)) << restored.err();
  ::kill(restored.pid(), SIGTERM);
  EXPECT_EQ(restored.wait(), 0) << restored.err();
  EXPECT_EQ(restored.log_event("vm.started").value("vcpus", 0), 2);
  const auto values = counts(before + slurp(console));
  for (std::size_t i = 0; i < values.size(); ++i) ASSERT_EQ(values[i], i) << "line " << i;
  fs::remove_all(dir);
}

// A snapshot leaves the VM paused; vm.resume lets the same guest count on. A directory that
// cannot be created is the caller's error.
TEST(SnapshotIntegrationTest, SnapshotPausesResumeContinuesAndRefusalsLeaveTheVmRunning) {
  const fs::path sock = scratch("resume.sock"), console = scratch("resume.console");
  const fs::path dir = scratch("resume-snap");
  VmmProcess run(run_args({"run", "--firmware", guest("test-guest.bin"), "--memory", "16M",
                           "--cmdline", "mode=count", "--api-socket", sock.string(), "--console",
                           "file:" + console.string()}));
  ASSERT_TRUE(wait_for_count(console, 50)) << run.err();
  auto bad_dir = put(sock, "/api/v1/vm.snapshot", json{{"dir", "/nonexistent/a/b"}}.dump());
  EXPECT_EQ(bad_dir.first, 400) << bad_dir.second;
  EXPECT_TRUE(json::parse(bad_dir.second)["error"].get<std::string>().starts_with(
      "vm.snapshot: snapshot directory /nonexistent/a/b: No such file or directory"))
      << bad_dir.second;
  ASSERT_EQ(put(sock, "/api/v1/vm.snapshot", json{{"dir", dir.string()}}.dump()).first, 204);
  const std::uint64_t paused_at = counts(slurp(console)).back();
  ASSERT_EQ(http(sock, "PUT", "/api/v1/vm.resume").first, 204);
  EXPECT_TRUE(wait_for_count(console, paused_at + 100)) << run.err();
  // A second snapshot of a paused VM, into the same directory: the files are replaced.
  ASSERT_EQ(http(sock, "PUT", "/api/v1/vm.pause").first, 204);
  ASSERT_EQ(put(sock, "/api/v1/vm.snapshot", json{{"dir", dir.string()}}.dump()).first, 204);
  EXPECT_EQ(http(sock, "PUT", "/api/v1/vm.shutdown").first, 204);
  EXPECT_EQ(run.wait(), 0) << run.err();
  const auto values = counts(slurp(console));
  for (std::size_t i = 0; i < values.size(); ++i) ASSERT_EQ(values[i], i) << "line " << i;
  fs::remove_all(dir);
}

struct Damage {
  const char* name;
  std::function<void(const fs::path& dir)> apply;
  const char* reason;  // in the refusal
};

void rewrite(const fs::path& file, const std::function<void(std::string&)>& edit) {
  std::string text = slurp(file);
  edit(text);
  std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
}

// Edits the state file's body with `edit` and writes it back with its checksum recomputed, so
// that the refusal a restore gives is the named check's, not the checksum's.
void reseal(const fs::path& dir, const std::function<void(json& body)>& edit) {
  json doc = json::parse(slurp(dir / "state.json"));
  edit(doc["body"]);
  const std::string body = doc["body"].dump();
  doc["body_sha256"] = cloister::to_hex(cloister::sha256(
      cloister::ByteView(reinterpret_cast<const std::uint8_t*>(body.data()), body.size())));
  std::ofstream(dir / "state.json", std::ios::trunc) << doc.dump(1);
}

TEST(SnapshotIntegrationTest, DamagedSnapshotsAreRefusedWithTheNamedCheckAndExitTwo) {
  const fs::path good = scratch("good");
  snapshot_counting_guest(good, 20);
  const Damage damages[] = {
      {"corrupted-state",
       [](const fs::path& d) {
         rewrite(d / "state.json", [](std::string& t) {
           const auto at = t.find("\"rip\": ") + 7;
           t[at] = t[at] == '1' ? '2' : '1';
         });
       },
       "body checksum (body_sha256): expected "},
      {"truncated-state",
       [](const fs::path& d) {
         rewrite(d / "state.json", [](std::string& t) { t.resize(t.size() / 2); });
       },
       "(a truncated or corrupted state file)"},
      {"wrong-version",
       [](const fs::path& d) {
         rewrite(d / "state.json", [](std::string& t) {
           const auto at = t.find("\"schema_version\": 2");
           t.replace(at, 19, "\"schema_version\": 7");
         });
       },
       "schema_version: expected 2, found 7"},
      {"wrong-size", [](const fs::path& d) { fs::resize_file(d / "memory.bin", 8 << 20); },
       "memory file size: expected "},
      {"confidential-state",
       [](const fs::path& d) {
         // A state claiming a confidential guest, consistent with its checksum: the refusal is
         // the lifecycle's, not the checksum's.
         reseal(d, [](json& body) { body["config"]["tee"] = "sim-snp"; });
       },
       "restore: refused for a confidential guest (tee sim-snp)"},
      {"corrupted-memory",
       [](const fs::path& d) {
         rewrite(d / "memory.bin", [](std::string& t) {
           const auto at = t.find_first_not_of('\0');
           t[at] = static_cast<char>(t[at] ^ 1);
         });
       },
       "memory checksum (sha256): expected "},
  };
  for (const Damage& damage : damages) {
    SCOPED_TRACE(damage.name);
    const fs::path dir = scratch(damage.name), console = scratch(std::string(damage.name) + ".out");
    fs::copy(good, dir);
    damage.apply(dir);
    VmmProcess restore({"restore", "--snapshot", dir.string(), "--console",
                        "file:" + console.string(), "--log-format", "json"});
    EXPECT_EQ(restore.wait(), 2) << restore.err();
    const json refused = restore.log_event("vm.restore_refused");
    EXPECT_NE(refused.value("msg", "").find(damage.reason), std::string::npos) << restore.err();
    // No guest ran: nothing was built, so not even the console file was opened.
    EXPECT_TRUE(restore.log_event("vm.restored").is_null());
    EXPECT_FALSE(fs::exists(console));
    fs::remove_all(dir);
  }
  fs::remove_all(good);
}

TEST(SnapshotIntegrationTest, ConfidentialGuestSnapshotIsRefused409AndNothingIsWritten) {
  shared_sim_state();
  const fs::path sock = scratch("snp.sock"), dir = scratch("snp-snap");
  VmmProcess run(run_args({"run", "--firmware", guest("test-guest.bin"), "--tee", "sim-snp",
                           "--memory", "64M", "--sim-state", kSimState, "--cmdline", "mode=idle",
                           "--api-socket", sock.string()}));
  ASSERT_TRUE(run.wait_for_output("idle\n", 60)) << run.out() << run.err();
  auto [status, body] = put(sock, "/api/v1/vm.snapshot", json{{"dir", dir.string()}}.dump());
  EXPECT_EQ(status, 409);
  const json error = json::parse(body);
  EXPECT_EQ(error["code"], "failed_precondition");
  const std::string message = error["error"];
  EXPECT_TRUE(
      message.starts_with("vm.snapshot: refused for a confidential guest (tee sim-snp): "
                          "its memory and VMSAs are encrypted under a key the host never "
                          "sees"))
      << message;
  EXPECT_NE(message.find("migration agent in the guest"), std::string::npos) << message;
  EXPECT_NE(message.find("re-launch the guest and re-attest it"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(dir));
  // Refused before anything was paused.
  EXPECT_EQ(json::parse(http(sock, "GET", "/api/v1/vm.info").second)["state"], "running");
  // Refused before it looks for the destination (there is none).
  auto migrate = put(sock, "/api/v1/vm.migrate",
                     json{{"destination", "unix:" + scratch("none.sock").string()}}.dump());
  EXPECT_EQ(migrate.first, 409);
  EXPECT_NE(migrate.second.find("migration agent"), std::string::npos) << migrate.second;
  EXPECT_EQ(http(sock, "PUT", "/api/v1/vm.shutdown").first, 204);
  EXPECT_EQ(run.wait(), 0) << run.err();
}

// ---- virtio devices ----

constexpr int kDiskSectors = 16;

// A disk of kDiskSectors sectors, sector K starting with "sector K" (two digits).
fs::path sector_disk(const std::string& name) {
  const fs::path disk = scratch(name);
  std::string bytes;
  for (int k = 0; k < kDiskSectors; ++k) {
    std::string sector = "sector " + std::string(k < 10 ? "0" : "") + std::to_string(k);
    sector.resize(512, '\0');
    bytes += sector;
  }
  std::ofstream(disk, std::ios::binary) << bytes;
  return disk;
}

// The complete "blk N 'text'" lines of `text` as (N, text), in order; "blk N: failed" lines
// fail the test.
std::vector<std::pair<std::uint64_t, std::string>> blk_reads(const std::string& text) {
  std::vector<std::pair<std::uint64_t, std::string>> reads;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.starts_with("blk ") || line == "blk: start" || lines.eof()) continue;
    EXPECT_EQ(line.find("failed"), std::string::npos) << line;
    const auto quote = line.find(" '");
    if (quote == std::string::npos || !line.ends_with("'")) continue;
    reads.emplace_back(std::stoull(line.substr(4, quote - 4)),
                       line.substr(quote + 2, line.size() - quote - 3));
  }
  return reads;
}

bool wait_for_blk_read(const fs::path& console, std::uint64_t at_least, int seconds = 60) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    auto reads = blk_reads(slurp(console));
    if (!reads.empty() && reads.back().first >= at_least) return true;
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

// A guest reading its disk one request after another ("mode=blkcount"), snapshotted into `dir`
// after read `reads`, its VMM shut down afterwards. Returns what the guest printed up to then.
std::string snapshot_reading_guest(const fs::path& dir, const fs::path& disk, std::uint64_t reads) {
  const fs::path sock = scratch("blk.sock"), console = scratch("blk.console");
  VmmProcess original(
      run_args({"run", "--firmware", guest("test-guest.bin"), "--memory", "16M", "--cmdline",
                "mode=blkcount", "--disk", disk.string(), "--api-socket", sock.string(),
                "--console", "file:" + console.string(), "--log-format", "json"}));
  EXPECT_TRUE(wait_for_blk_read(console, reads)) << original.err() << slurp(console);
  auto [status, body] = put(sock, "/api/v1/vm.snapshot", json{{"dir", dir.string()}}.dump());
  EXPECT_EQ(status, 204) << body;
  const std::string printed = slurp(console);
  EXPECT_EQ(http(sock, "PUT", "/api/v1/vm.shutdown").first, 204);
  EXPECT_EQ(original.wait(), 0) << original.err();
  fs::remove(console);
  return printed;
}

TEST(SnapshotIntegrationTest, DiskGuestContinuesItsReadsAcrossSnapshotAndRestore) {
  const fs::path dir = scratch("blk-snap"), disk = sector_disk("blk.img");
  const std::string before = snapshot_reading_guest(dir, disk, 100);
  const json state = json::parse(slurp(dir / "state.json"));
  const json& virtio = state["body"]["devices"]["virtio"];
  ASSERT_EQ(virtio.size(), 1u) << virtio;
  EXPECT_EQ(virtio[0]["slot"], 0);
  EXPECT_EQ(virtio[0]["kind"], "block");
  EXPECT_EQ(virtio[0]["block"]["path"], disk.string());
  EXPECT_EQ(virtio[0]["block"]["bytes"], kDiskSectors * 512);
  const json& queue = virtio[0]["transport"]["queues"][0];
  EXPECT_EQ(queue["ready"], true);
  EXPECT_EQ(queue["size"], 8);
  // No request was in flight: every request the device took, it completed.
  EXPECT_EQ(queue["next_avail"], queue["next_used"]) << queue;
  EXPECT_EQ(virtio[0]["transport"]["status"],
            15);  // ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK

  const fs::path sock = scratch("blk-restored.sock"), console = scratch("blk-restored.console");
  VmmProcess restored({"restore", "--snapshot", dir.string(), "--api-socket", sock.string(),
                       "--console", "file:" + console.string(), "--log-format", "json"});
  const std::uint64_t last_before = blk_reads(before).back().first;
  ASSERT_TRUE(wait_for_blk_read(console, last_before + 100))
      << restored.err() << slurp(console).substr(0, 400);
  EXPECT_EQ(http(sock, "PUT", "/api/v1/vm.shutdown").first, 204);
  EXPECT_EQ(restored.wait(), 0) << restored.err();
  EXPECT_EQ(restored.log_event("vm.restored").value("virtio_devices", 0), 1) << restored.err();

  // One unbroken run of reads, each returning the sector it asked for, whatever the snapshot
  // fell on.
  const auto reads = blk_reads(before + slurp(console));
  ASSERT_GT(reads.size(), last_before + 100);
  for (std::size_t i = 0; i < reads.size(); ++i) {
    ASSERT_EQ(reads[i].first, i + 1) << "read " << i;
    const int sector = static_cast<int>((i + 1) % kDiskSectors);
    ASSERT_EQ(reads[i].second,
              "sector " + std::string(sector < 10 ? "0" : "") + std::to_string(sector))
        << "read " << i + 1;
  }
  fs::remove_all(dir);
  fs::remove(disk);
}

TEST(SnapshotIntegrationTest, RestoreRefusesDevicesThatDoNotMatchAndRunsNoGuest) {
  const fs::path good = scratch("blk-good"), disk = sector_disk("blk-mismatch.img");
  snapshot_reading_guest(good, disk, 5);
  const std::string disk_bytes = slurp(disk);
  struct Mismatch {
    const char* name;
    std::function<void(const fs::path& dir)> apply;
    std::string reason;  // the whole refusal, or (extra-net) its end
  };
  const Mismatch mismatches[] = {
      {"grown-disk", [&](const fs::path&) { fs::resize_file(disk, 2 * kDiskSectors * 512); },
       "restore: /body/devices/virtio/0/block/bytes: disk " + disk.string() + ": expected " +
           std::to_string(kDiskSectors * 512) + " bytes (its size at the snapshot), found " +
           std::to_string(2 * kDiskSectors * 512)},
      {"missing-disk", [&](const fs::path&) { fs::remove(disk); },
       "restore: /body/devices/virtio/0 (virtio-blk): disk " + disk.string() +
           ": No such file or directory (errno 2) (disks are re-opened by path: a snapshot holds "
           "no disk "
           "contents)"},
      {"extra-net",
       [](const fs::path& d) {
         reseal(d, [](json& body) {
           body["config"]["nets"] = json::array({{{"tap", "cloister-none0"}}});
         });
       },
       "/state.json: snapshot state: virtio devices: expected 2 (1 disks, 1 nets, no vsock in "
       "/body/config), found 1 entries in /body/devices/virtio"},
  };
  for (const Mismatch& mismatch : mismatches) {
    SCOPED_TRACE(mismatch.name);
    const fs::path dir = scratch(mismatch.name);
    const fs::path console = scratch(std::string(mismatch.name) + ".out");
    fs::copy(good, dir);
    std::ofstream(disk, std::ios::binary | std::ios::trunc) << disk_bytes;
    mismatch.apply(dir);
    VmmProcess restore({"restore", "--snapshot", dir.string(), "--console",
                        "file:" + console.string(), "--log-format", "json"});
    EXPECT_EQ(restore.wait(), 2) << restore.err();
    const std::string reason = restore.log_event("vm.restore_refused").value("msg", "");
    EXPECT_TRUE(reason.ends_with(mismatch.reason)) << reason << "\n" << restore.err();
    // No guest ran: nothing was built, so not even the console file was opened.
    EXPECT_TRUE(restore.log_event("vm.restored").is_null());
    EXPECT_FALSE(fs::exists(console));
    fs::remove_all(dir);
  }
  fs::remove_all(good);
  fs::remove(disk);
}

// Firecracker's vsock behaviour: connections are not saved, and the restored device tells the
// guest with VIRTIO_VSOCK_EVENT_TRANSPORT_RESET; the guest that never saw an event before the
// snapshot sees exactly that one after the restore.
TEST(SnapshotIntegrationTest, RestoredVsockDeviceSendsTheGuestATransportReset) {
  const fs::path dir = scratch("vsock-snap"), uds = scratch("vsock.uds");
  const fs::path sock = scratch("vsock.sock"), console = scratch("vsock.console");
  VmmProcess original(
      run_args({"run", "--firmware", guest("test-guest.bin"), "--memory", "16M", "--cmdline",
                "mode=vsockreset", "--vsock-uds", uds.string(), "--vsock-cid", "9", "--api-socket",
                sock.string(), "--console", "file:" + console.string(), "--log-format", "json"}));
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (slurp(console).find("virtio-vsock: waiting for events\n") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(20ms);
  ASSERT_NE(slurp(console).find("virtio-vsock: waiting for events\n"), std::string::npos)
      << original.err() << slurp(console);
  auto [status, body] = put(sock, "/api/v1/vm.snapshot", json{{"dir", dir.string()}}.dump());
  ASSERT_EQ(status, 204) << body;
  const json state = json::parse(slurp(dir / "state.json"));
  EXPECT_EQ(state["body"]["devices"]["virtio"][0]["kind"], "vsock");
  EXPECT_EQ(state["body"]["devices"]["virtio"][0]["vsock"]["guest_cid"], 9);
  // Resumed, the original guest keeps waiting: a device that was not restored sends nothing.
  ASSERT_EQ(http(sock, "PUT", "/api/v1/vm.resume").first, 204);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(slurp(console).find("virtio-vsock: event"), std::string::npos) << slurp(console);
  EXPECT_EQ(http(sock, "PUT", "/api/v1/vm.shutdown").first, 204);
  EXPECT_EQ(original.wait(), 0) << original.err();

  const fs::path restored_console = scratch("vsock-restored.console");
  VmmProcess restored({"restore", "--snapshot", dir.string(), "--console",
                       "file:" + restored_console.string(), "--log-format", "json"});
  EXPECT_EQ(restored.wait(), 0) << restored.err();
  EXPECT_EQ(slurp(restored_console), "virtio-vsock: event 0 (transport reset), cid 9\n")
      << restored.err();
  EXPECT_FALSE(restored.log_event("vsock.transport_reset").is_null()) << restored.err();
  fs::remove_all(dir);
  fs::remove(console);
  fs::remove(restored_console);
}

}  // namespace
