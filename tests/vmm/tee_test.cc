#include "cloister/vmm/tee/tee.h"

#include <gtest/gtest.h>

#include "cloister/common/bytes.h"
#include "cloister/common/file.h"
#include "cloister/vmm/builder.h"
#include "tee/launch_ops.h"

namespace cloister::vmm {
namespace {

// An IGVM MEMORY_MAP lists the guest's RAM only, as QEMU's does: not the regions that back the
// firmware or an IGVM file's pages outside RAM.
TEST(TeeTest, TheIgvmMemoryMapListsRamOnly) {
  fw::LaunchPlanBuilder builder(fw::Tee::kSevSnp);
  builder.add_parameter_area({.index = 0, .size = fw::kPageSize, .initial = {}});
  builder.add_parameter({.kind = fw::IgvmParameterKind::kMemoryMap, .area = 0, .byte_offset = 0});
  auto plan = std::move(builder).build();
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  const RegionSpec specs[] = {{"ram-low", 0, 64ull << 20, false},
                              {"firmware", 0xffc00000, 4ull << 20, false},
                              {"ram-high", 4ull << 30, 2ull << 20, false}};
  auto memory = GuestMemory::create(specs, false);
  ASSERT_TRUE(memory.ok()) << memory.error().message();
  Bytes area(fw::kPageSize, 0);
  ASSERT_TRUE(tee::fill_parameter_area(*plan, 0, area, 1, *memory).ok());
  EXPECT_EQ(load_le64(area, 0), 0u);
  EXPECT_EQ(load_le64(area, 8), (64ull << 20) / fw::kPageSize);
  EXPECT_EQ(load_le64(area, 24), (4ull << 30) / fw::kPageSize);
  EXPECT_EQ(load_le64(area, 32), (2ull << 20) / fw::kPageSize);
  EXPECT_TRUE(std::all_of(area.begin() + 48, area.end(), [](std::uint8_t b) { return b == 0; }));
}

// A parameter placed too near its area's end is refused with the room it needs and found.
TEST(TeeTest, AParameterWithoutRoomInItsAreaIsRefusedWithTheSizes) {
  const RegionSpec specs[] = {{"ram-low", 0, 64ull << 20, false},
                              {"ram-high", 4ull << 30, 2ull << 20, false}};
  auto memory = GuestMemory::create(specs, false);
  ASSERT_TRUE(memory.ok()) << memory.error().message();
  const auto refusal = [&](fw::IgvmParameterKind kind, std::uint32_t byte_offset) {
    fw::LaunchPlanBuilder builder(fw::Tee::kSevSnp);
    builder.add_parameter_area({.index = 0, .size = fw::kPageSize, .initial = {}});
    builder.add_parameter({.kind = kind, .area = 0, .byte_offset = byte_offset});
    auto plan = std::move(builder).build();
    EXPECT_TRUE(plan.ok()) << plan.error().message();
    Bytes area(fw::kPageSize, 0);
    const Status filled = tee::fill_parameter_area(*plan, 0, area, 1, *memory);
    EXPECT_FALSE(filled.ok());
    return filled.ok() ? std::string() : filled.error().message();
  };
  EXPECT_EQ(refusal(fw::IgvmParameterKind::kVpCount, fw::kPageSize - 2),
            "IGVM parameter vp_count in parameter area 0: expected room for a u32 at byte offset "
            "4094, found an area of 4096 bytes");
  EXPECT_EQ(refusal(fw::IgvmParameterKind::kMemoryMap, fw::kPageSize - 40),
            "IGVM parameter memory_map in parameter area 0: the guest's 2 RAM ranges need 48 "
            "bytes from byte offset 4056, found an area of 4096 bytes");
}

TEST(TeeTest, NoneHasNoMeasurementAndSaysWhy) {
  auto tee = make_tee_backend({}, std::nullopt);
  ASSERT_TRUE(tee.ok());
  EXPECT_EQ((*tee)->machine_type(), 0u);
  EXPECT_FALSE((*tee)->needs_private_memory());
  EXPECT_FALSE((*tee)->measurement().has_value());
  EXPECT_NE((*tee)->measurement_note().find("no launch measurement"), std::string::npos);
}

TEST(TeeTest, ConfidentialBackendsNeedAPlanForTheirTee) {
  for (auto kind : {TeeKind::kSimSnp, TeeKind::kSimTdx, TeeKind::kSnp, TeeKind::kTdx}) {
    TeeConfig config;
    config.kind = kind;
    auto tee = make_tee_backend(config, std::nullopt);
    ASSERT_FALSE(tee.ok());
    EXPECT_EQ(tee.error().message(),
              "tee " + std::string(tee_name(kind)) + ": needs a launch plan");
  }
}

TEST(TeeTest, InputsOfAConfidentialLaunchNameTheMissingFile) {
  VmConfig config;
  config.tee.kind = TeeKind::kSnp;
  config.boot.firmware = "/nonexistent/firmware.bin";
  auto inputs = load_vm_inputs(config);
  ASSERT_FALSE(inputs.ok());
  EXPECT_EQ(inputs.error().message(),
            "boot.firmware: cannot read /nonexistent/firmware.bin: No such file or directory");
}

TEST(TeeTest, InputsOfAPlainVmNameTheMissingFile) {
  VmConfig config;
  config.boot.firmware = "/nonexistent/firmware.bin";
  auto inputs = load_vm_inputs(config);
  ASSERT_FALSE(inputs.ok());
  EXPECT_EQ(inputs.error().message(),
            "firmware: cannot read /nonexistent/firmware.bin: No such file or directory");
}

TEST(BuilderTest, FailsCleanlyAfterStartingVcpuThreads) {
  const std::string firmware = ::testing::TempDir() + "/cloister-builder-fw.bin";
  ASSERT_TRUE(write_file_atomic(firmware, Bytes(4096, 0xf4)).ok());
  VmConfig config;
  config.vcpus = 4;
  config.hypervisor = HypervisorKind::kKvm;  // auto would fall back to the emulator
  config.boot.firmware = firmware;
  Logger log(LogFormat::kText, LogLevel::kError);
  Metrics metrics;
  auto inputs = load_vm_inputs(config);
  ASSERT_TRUE(inputs.ok()) << inputs.error().message();
  auto vmm = build_vmm(config, std::move(*inputs), log, metrics,
                       configured_hypervisor(config, log, "/nonexistent/kvm"));
  ASSERT_FALSE(vmm.ok());
  EXPECT_EQ(vmm.error().message(), "open /nonexistent/kvm: No such file or directory (errno 2)");
}

}  // namespace
}  // namespace cloister::vmm
