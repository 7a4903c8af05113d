// The KVM layer on its own: a VM with one slot and one vCPU running a few real-mode
// instructions, guest_memfd-backed slots, and error messages that name the ioctl.
#include "cloister/vmm/hypervisor/kvm.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "cloister/vmm/hypervisor/kvm_abi.h"
#include "cloister/vmm/memory/guest_memory.h"
#include "real_mode_vcpu.h"

namespace cloister::vmm {
namespace {

std::unique_ptr<Hypervisor> kvm_or_skip_reason(std::string& reason) {
  auto hv = open_kvm();
  if (!hv) {
    reason = "KVM unavailable: " + hv.error().message();
    return nullptr;
  }
  return std::move(*hv);
}

#define REQUIRE_HYPERVISOR(hv)               \
  std::string skip_reason;                   \
  auto hv = kvm_or_skip_reason(skip_reason); \
  if (!hv) GTEST_SKIP() << skip_reason

TEST(KvmTest, MissingDeviceIsNamed) {
  auto hv = open_kvm("/nonexistent/kvm");
  ASSERT_FALSE(hv.ok());
  EXPECT_EQ(hv.error().message(), "open /nonexistent/kvm: No such file or directory (errno 2)");
}

TEST(KvmTest, RunsRealModeCodeToAnIoExit) {
  REQUIRE_HYPERVISOR(hv);
  auto vm = hv->create_vm({});
  ASSERT_TRUE(vm.ok()) << vm.error().message();
  RegionSpec spec{"ram", 0, 1 << 20, false};
  auto mem = GuestMemory::create(std::span(&spec, 1), false);
  ASSERT_TRUE(mem.ok());
  const auto& region = mem->regions()[0];
  ASSERT_TRUE((*vm)->map_memory({0, 0, region.size, region.host, false, nullptr, 0}).ok());
  // mov al, 0x5a; out 0x42, al; mov dx, 0x3f8; in al, dx; out 0x43, al; hlt
  const std::uint8_t code[] = {0xb0, 0x5a, 0xe6, 0x42, 0xba, 0xf8, 0x03, 0xec, 0xe6, 0x43, 0xf4};
  ASSERT_TRUE(mem->write(0x1000, code, "code").ok());
  auto vcpu = real_mode_vcpu(**vm, 0x1000);
  ASSERT_TRUE(vcpu.ok()) << vcpu.error().message();

  auto exit = (*vcpu)->run();
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  ASSERT_EQ(exit->reason, ExitReason::kIo);
  EXPECT_TRUE(exit->is_write);
  EXPECT_EQ(exit->address, 0x42u);
  ASSERT_EQ(exit->data.size(), 1u);
  EXPECT_EQ(exit->data[0], 0x5a);
  exit = (*vcpu)->run();
  ASSERT_TRUE(exit.ok());
  ASSERT_EQ(exit->reason, ExitReason::kIo);
  EXPECT_FALSE(exit->is_write);
  EXPECT_EQ(exit->address, 0x3f8u);
  exit->data[0] = 0x77;  // the IN result reaches the guest on re-entry
  exit = (*vcpu)->run();
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->address, 0x43u);
  EXPECT_EQ(exit->data[0], 0x77);
  exit = (*vcpu)->run();
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->reason, ExitReason::kHalt);  // no irqchip: HLT comes to userspace

  (*vcpu)->request_exit();
  exit = (*vcpu)->run();
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->reason, ExitReason::kInterrupted);
  (*vcpu)->clear_exit_request();
}

TEST(KvmTest, GuestMemfdBacksAMemorySlot) {
  REQUIRE_HYPERVISOR(hv);
  auto vm = hv->create_vm({});
  ASSERT_TRUE(vm.ok());
  auto memfd = (*vm)->create_guest_memfd(2 << 20);
  if (!memfd) GTEST_SKIP() << memfd.error().message();
  RegionSpec spec{"shared", 1ull << 30, 2 << 20, false};
  auto mem = GuestMemory::create(std::span(&spec, 1), false);
  ASSERT_TRUE(mem.ok());
  MemorySlot slot{0, 1ull << 30, 2 << 20, mem->regions()[0].host, false, *memfd, 0};
  auto st = (*vm)->map_memory(slot);
  ASSERT_TRUE(st.ok()) << st.error().message();
  // The same guest_memfd range cannot back a second slot.
  MemorySlot again{1, 2ull << 30, 2 << 20, mem->regions()[0].host, false, *memfd, 0};
  auto dup = (*vm)->map_memory(again);
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message().find("KVM_SET_USER_MEMORY_REGION2 (slot 1): "),
            std::string::npos);
}

TEST(KvmTest, UnsupportedVmTypeIsRefusedWithTheCapability) {
  REQUIRE_HYPERVISOR(hv);
  VmOptions options;
  options.machine_type = kvm_abi::kX86SnpVm;
  auto vm = hv->create_vm(options);
  if (vm.ok()) GTEST_SKIP() << "this host supports SEV-SNP VMs";
  EXPECT_NE(vm.error().message().find("KVM_CAP_VM_TYPES"), std::string::npos)
      << vm.error().message();
}

}  // namespace
}  // namespace cloister::vmm
