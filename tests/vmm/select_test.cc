// Choosing the hypervisor (select.h): explicit choices, and auto's fallback to the emulator with
// the one log line that says why.
#include "cloister/vmm/hypervisor/select.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace cloister::vmm {
namespace {

TEST(HypervisorSelectTest, AutoFallsBackToTheEmulatorAndSaysWhy) {
  const std::string path = ::testing::TempDir() + "/cloister-select.log";
  std::filesystem::remove(path);
  {
    auto log = Logger::to_file(path, LogFormat::kJson, LogLevel::kInfo);
    ASSERT_TRUE(log.ok());
    auto hv = open_hypervisor(HypervisorKind::kAuto, "/nonexistent/kvm", false, *log);
    ASSERT_TRUE(hv.ok()) << hv.error().message();
    EXPECT_EQ((*hv)->name(), "emu");
  }
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  auto line = nlohmann::json::parse(text.str());
  EXPECT_EQ(line["event"], "hypervisor.selected");
  EXPECT_EQ(line["hypervisor"], "emu");
  EXPECT_EQ(line["msg"],
            "emu: KVM unavailable (open /nonexistent/kvm: No such file or directory (errno 2))");
  std::filesystem::remove(path);
}

TEST(HypervisorSelectTest, ExplicitChoicesAreHonouredOrFail) {
  Logger log(LogFormat::kText, LogLevel::kError);
  auto kvm = open_hypervisor(HypervisorKind::kKvm, "/nonexistent/kvm", false, log);
  ASSERT_FALSE(kvm.ok());
  EXPECT_EQ(kvm.error().message(), "open /nonexistent/kvm: No such file or directory (errno 2)");
  auto emu = open_hypervisor(HypervisorKind::kEmu, "/nonexistent/kvm", false, log);
  ASSERT_TRUE(emu.ok()) << emu.error().message();
  EXPECT_EQ((*emu)->name(), "emu");
}

}  // namespace
}  // namespace cloister::vmm
