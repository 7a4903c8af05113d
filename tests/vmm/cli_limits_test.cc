// cloister-vmm, the real binary, given input files it must not read whole or cannot use:
// devices, FIFOs, directories, files beyond their format's limit, malformed images, configs
// with a key given twice. Each is exit status 2 ("fix the input") naming the file and the limit,
// before a hypervisor is opened.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "cloister/firmware_loader/igvm.h"
#include "cloister/firmware_loader/machine.h"
#include "cloister/vmm/config/config.h"
#include "cloister/vmm/snapshot/snapshot.h"
#include "support/command.h"
#include "support/hostile_files.h"

namespace cloister::vmm {
namespace {

using ::testing::HasSubstr;

const std::string kGuestDir = CLOISTER_TEST_GUEST_DIR;

testing::CommandResult run(const std::string& args) {
  return testing::run_command(std::string(CLOISTER_VMM_BIN) + " run " + args);
}

TEST(VmmCliLimits, DevicesFifosDirectoriesAndHugeFilesExitTwo) {
  testing::HostileFiles files;
  const std::string not_regular = ", not a regular file: give the input as a file";
  auto zero = run("--config /dev/zero");
  EXPECT_EQ(zero.status, 2) << zero.out;
  EXPECT_EQ(zero.out, "cloister-vmm: config: /dev/zero: a character device" + not_regular +
                          " (save a stream to a file first)\n");
  auto fifo = run("--config " + files.fifo().string());
  EXPECT_EQ(fifo.status, 2) << fifo.out;
  EXPECT_THAT(fifo.out, HasSubstr(files.fifo().string() + ": a FIFO" + not_regular));
  auto dir = run("--kernel " + files.directory().string());
  EXPECT_EQ(dir.status, 2) << dir.out;
  EXPECT_THAT(dir.out, HasSubstr("vm.input_invalid: kernel: " + files.directory().string() +
                                 ": a directory" + not_regular));
  const auto gigabyte = files.sparse("OVMF.fd", 1ull << 30);
  auto huge = run("--firmware " + gigabyte.string());
  EXPECT_EQ(huge.status, 2) << huge.out;
  EXPECT_THAT(huge.out,
              HasSubstr("vm.input_invalid: firmware: " + gigabyte.string() +
                        ": 1073741824 bytes, " + testing::refusal(fw::kFirmwareFileLimit)));
}

TEST(VmmCliLimits, EachFileOneByteOverItsLimitExitsTwoNamingTheLimit) {
  testing::HostileFiles files;
  const std::string kernel = kGuestDir + "/test-guest.bzImage";
  const std::string firmware = kGuestDir + "/test-guest.bin";
  const std::string small = files.file("small.bin", Bytes(96, 0)).string();
  const struct {
    std::string args;  // the over-limit file is appended
    FileLimit limit;
  } cases[] = {
      {"--config", kConfigFileLimit},
      {"--firmware", fw::kFirmwareFileLimit},
      {"--kernel", fw::kKernelFileLimit},
      {"--kernel " + kernel + " --initrd", fw::kInitrdFileLimit},
      {"--tee sim-snp --igvm", fw::kIgvmFileLimit},
      {"--firmware " + firmware + " --tee sim-snp --sim-platform", kSimPlatformFileLimit},
      {"--firmware " + firmware + " --tee snp --id-auth " + small + " --id-block",
       FileLimit{96, "an SEV-SNP ID block is (SNP ABI ID_BLOCK)"}},
      {"--firmware " + firmware + " --tee snp --certificates",
       FileLimit{16u << 10,
                 "a GHCB certificate table can be (Linux guests accept at most 16 KiB)"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    const auto over = files.over("over.bin", c.limit).string();
    auto r = run(c.args + " " + over);
    EXPECT_EQ(r.status, 2) << r.out;
    EXPECT_THAT(r.out, HasSubstr(over + ": " + std::to_string(c.limit.max_bytes + 1) + " bytes, " +
                                 testing::refusal(c.limit)));
  }
}

// A kernel that is neither a bzImage nor an ELF file is an input to fix, not a VM failure.
TEST(VmmCliLimits, GarbageKernelExitsTwo) {
  testing::HostileFiles files;
  Bytes garbage(8192);
  for (std::size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<std::uint8_t>(i * 151);
  const auto kernel = files.file("garbage", garbage).string();
  auto r = run("--kernel " + kernel);
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("vm.input_invalid: kernel " + kernel +
                               ": neither a bzImage (boot_flag 0xaa55 and \"HdrS\") nor an ELF "
                               "file"));
}

// Strict JSON: a key given twice is refused with its path, wherever it is.
TEST(VmmCliLimits, ConfigWithADuplicateKeyExitsTwoNamingItsPath) {
  testing::HostileFiles files;
  const auto top = files.file("top.json", as_bytes(R"({"vcpus": 1, "vcpus": 2})")).string();
  auto r = run("--config " + top);
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_EQ(r.out, "cloister-vmm: config " + top + ": duplicate key \"vcpus\" at /vcpus\n");
  const auto nested =
      files
          .file("nested.json",
                as_bytes(R"({"disks": [{"path": "/a"}, {"path": "/b", "path": "/c"}]})"))
          .string();
  auto n = run("--config " + nested);
  EXPECT_EQ(n.status, 2) << n.out;
  EXPECT_EQ(n.out,
            "cloister-vmm: config " + nested + ": duplicate key \"path\" at /disks/1/path\n");
  const auto platform =
      files.file("platform.json", as_bytes(R"({"product": "Genoa", "product": "Milan"})")).string();
  auto p =
      run("--firmware " + kGuestDir + "/test-guest.bin --tee sim-snp --sim-platform " + platform);
  EXPECT_EQ(p.status, 2) << p.out;
  EXPECT_EQ(p.out, "cloister-vmm: --sim-platform " + platform +
                       ": duplicate key \"product\" at /product\n");
}

// `restore` reads state.json through the bounded reader with its own limit, and opens memory.bin
// only as a regular file: anything else is exit 2 (vm.restore_refused) before a VM exists.
TEST(VmmCliLimits, SnapshotFilesThatAreNotFilesOrTooLargeExitTwo) {
  auto restore = [](const std::filesystem::path& dir) {
    return testing::run_command(std::string(CLOISTER_VMM_BIN) + " restore --snapshot " +
                                dir.string());
  };
  testing::HostileFiles files;
  const auto state = files.over("state.json", kSnapshotStateFileLimit);
  auto huge = restore(state.parent_path());
  EXPECT_EQ(huge.status, 2) << huge.out;
  EXPECT_THAT(huge.out, HasSubstr("vm.restore_refused: " + state.string() + ": " +
                                  std::to_string(kSnapshotStateFileLimit.max_bytes + 1) +
                                  " bytes, " + testing::refusal(kSnapshotStateFileLimit)));
  const std::filesystem::path fifo_dir = files.directory() / "fifo-state";
  std::filesystem::create_directories(fifo_dir);
  ASSERT_EQ(::mkfifo((fifo_dir / "state.json").c_str(), 0600), 0);
  auto fifo = restore(fifo_dir);
  EXPECT_EQ(fifo.status, 2) << fifo.out;
  EXPECT_THAT(fifo.out, HasSubstr((fifo_dir / "state.json").string() + ": a FIFO"));
  auto missing = restore(files.directory() / "nowhere");
  EXPECT_EQ(missing.status, 2) << missing.out;
  EXPECT_THAT(missing.out, HasSubstr("vm.restore_refused: cannot read "));
}

// A FIFO given as a disk, a console file or a log file with nobody on its other end is refused
// at once, naming it, rather than holding the VMM in open() until someone comes.
TEST(VmmCliLimits, FifosWithNobodyAtTheOtherEndAreRefusedNotWaitedOn) {
  testing::HostileFiles files;
  const std::string firmware = " --firmware " + kGuestDir + "/test-guest.bin";
  const std::string fifo = files.fifo().string();
  auto disk = run(firmware + " --disk " + fifo + ",ro");
  EXPECT_EQ(disk.status, 2) << disk.out;
  EXPECT_THAT(disk.out, HasSubstr("disk " + fifo + ": expected a regular file"));
  auto console = run(firmware + " --console file:" + fifo);
  EXPECT_EQ(console.status, 2) << console.out;
  EXPECT_THAT(console.out, HasSubstr("console file " + fifo +
                                     ": a FIFO that no process is reading; start its reader "
                                     "first"));
  auto log = run(firmware + " --log-file " + fifo);
  EXPECT_EQ(log.status, 2) << log.out;
  EXPECT_THAT(log.out, HasSubstr("log file " + fifo +
                                 ": a FIFO that no process is reading; start its reader first"));
}

TEST(VmmCliLimits, VcpuCountsBeyondTheLimitExitTwo) {
  auto r = run("--firmware /x --vcpus 100000");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("vcpus: expected an integer 1..254, found 100000"));
}

}  // namespace
}  // namespace cloister::vmm
