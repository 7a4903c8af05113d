// cloister-measure, the real binary, given files it must not read whole: devices, FIFOs,
// directories, files beyond their format's limit, and formats that declare more than a launch
// may hold. Each is exit status 2 with one line naming the file and the limit.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "cloister/firmware_loader/igvm.h"
#include "cloister/firmware_loader/machine.h"
#include "igvm_writer.h"
#include "support/command.h"
#include "support/hostile_files.h"

namespace cloister::measure {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

testing::CommandResult run(const std::string& args) {
  return testing::run_command(std::string(CLOISTER_MEASURE_BIN) + " " + args);
}

// Exit 2, exactly one line, starting with the error prefix and containing `what`.
void expect_refused(const testing::CommandResult& r, const std::string& what) {
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_THAT(r.out, StartsWith("cloister-measure: error: "));
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_THAT(r.out, HasSubstr(what));
}

TEST(MeasureCliLimits, DevicesFifosDirectoriesAndHugeFilesAreRefused) {
  testing::HostileFiles files;
  const std::string not_regular = ", not a regular file: give the input as a file";
  expect_refused(run("snp --vcpus 1 --ovmf /dev/zero"),
                 "--ovmf: /dev/zero: a character device" + not_regular);
  expect_refused(run("tdx --ovmf " + files.fifo().string()),
                 "--ovmf: " + files.fifo().string() + ": a FIFO" + not_regular);
  expect_refused(run("snp --igvm " + files.directory().string()),
                 "--igvm: " + files.directory().string() + ": a directory" + not_regular);
  const auto gigabyte = files.sparse("OVMF.fd", 1ull << 30);
  expect_refused(run("snp --vcpus 1 --ovmf " + gigabyte.string()),
                 "--ovmf: " + gigabyte.string() + ": 1073741824 bytes, " +
                     testing::refusal(fw::kFirmwareFileLimit));
}

TEST(MeasureCliLimits, EachFileOneByteOverItsLimitIsRefusedNamingTheLimit) {
  testing::HostileFiles files;
  // Small stand-ins where another file must be given: the refusal comes when the file over its
  // limit is read, before any is parsed.
  const std::string ovmf = files.file("small.fd", Bytes(0x1000, 0)).string();
  const struct {
    std::string args;  // the over-limit file is appended
    FileLimit limit;
  } cases[] = {
      {"snp --vcpus 1 --ovmf", fw::kFirmwareFileLimit},
      {"tdx --ovmf", fw::kFirmwareFileLimit},
      {"snp --igvm", fw::kIgvmFileLimit},
      {"tdx --igvm", fw::kIgvmFileLimit},
      {"snp --vcpus 1 --ovmf " + ovmf + " --kernel", fw::kKernelFileLimit},
      {"snp --vcpus 1 --ovmf " + ovmf + " --kernel " + ovmf + " --initrd", fw::kInitrdFileLimit},
      {"snp --mode snp:svsm --vcpus 1 --vcpu-type EPYC-v4 --vars-size 0x1000 --ovmf " + ovmf +
           " --svsm",
       fw::kFirmwareFileLimit},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    const auto over = files.over("over.bin", c.limit).string();
    expect_refused(run(c.args + " " + over), over + ": " + std::to_string(c.limit.max_bytes + 1) +
                                                 " bytes, " + testing::refusal(c.limit));
  }
}

// A few hundred bytes of IGVM that insert a 1 TiB parameter area would have the launch digest
// hash 2^28 pages; the plan is refused naming the limit, before anything is hashed.
TEST(MeasureCliLimits, IgvmPageRangeBombIsRefused) {
  testing::HostileFiles files;
  const Bytes bomb = testing::IgvmWriter()
                         .platform(testing::IgvmWriter::kSnpMask, 2)
                         .parameter_area(fw::kMaxGuestMemory - fw::kPageSize, 1)
                         .parameter_insert(0x100000, 1)
                         .build();
  const auto path = files.file("bomb.igvm", bomb).string();
  expect_refused(run("snp --igvm " + path),
                 "IGVM directive 1 (parameter area 1), unmeasured at GPA 0x100000, size "
                 "0xfffffff000): brings the memory the plan puts in place before the guest runs "
                 "to 0xfffffff000 bytes, more than the 1 GiB a launch may populate "
                 "(fw::kMaxLaunchMemory)");
}

TEST(MeasureCliLimits, VcpuCountsBeyondWhatTheVmmRunsAreRefused) {
  testing::HostileFiles files;
  const std::string ovmf = files.file("small.fd", Bytes(0x1000, 0)).string();
  expect_refused(run("snp --vcpus 100000 --ovmf " + ovmf),
                 "--vcpus 100000 is more than the 254 vCPUs cloister-vmm runs (xAPIC IDs are 8 "
                 "bits)");
  expect_refused(run("tdx --vcpus 255 --ovmf " + ovmf),
                 "--vcpus 255 is more than the 254 vCPUs cloister-vmm runs");
}

}  // namespace
}  // namespace cloister::measure
