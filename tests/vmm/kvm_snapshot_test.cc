// The KVM side of snapshots, over the recording ioctl layer: what save_state() reads and
// restore_state() writes for a vCPU and for the VM, in KVM's order, and what the vCPU thread's
// seccomp scope must permit for a vCPU to save its own state.
#include <gtest/gtest.h>
#include <linux/kvm.h>

#include <algorithm>
#include <cstring>

#include "cloister/vmm/hypervisor/kvm.h"
#include "cloister/vmm/hypervisor/kvm_abi.h"
#include "kvm_recorder.h"
#include "recorded_vm.h"

namespace cloister::vmm {
namespace {

using testing::KvmRecorder;

// A VM with the in-kernel irqchip and PIT and one vCPU, as the builder makes them.
struct KvmVm : testing::RecordedVm {
  explicit KvmVm(KvmRecorder& recorder) : RecordedVm(recorder) {
    if (!vm) return;
    EXPECT_TRUE(vm->create_irqchip(/*pit=*/true).ok());
    auto v = vm->create_vcpu(0);
    EXPECT_TRUE(v.ok()) << v.error().message();
    vcpu = std::move(*v);
  }
  std::unique_ptr<Vcpu> vcpu;
};

std::vector<std::string> set_calls(const KvmRecorder& recorder) {
  std::vector<std::string> names;
  for (const auto& call : recorder.calls())
    if (call.name.starts_with("KVM_SET_") && call.name != "KVM_SET_CPUID2" &&
        call.name != "KVM_SET_TSS_ADDR" && call.name != "KVM_SET_IDENTITY_MAP_ADDR")
      names.push_back(call.name);
  return names;
}

TEST(KvmSnapshotTest, VcpuStateRoundTripsInKvmOrder) {
  KvmRecorder source_host;
  KvmVm source(source_host);
  x86::Regs regs;
  regs.rip = 0x1234;
  regs.rflags = 0x202;
  ASSERT_TRUE(source.vcpu->set_regs(regs).ok());
  ASSERT_TRUE(source.vcpu->set_xcr0(0x7).ok());  // x87 | SSE | AVX
  ASSERT_TRUE(
      source.vcpu->set_msrs(std::vector<x86::Msr>{{0xc0000082, 0xffffffff81000000ull}}).ok());
  Bytes lapic(1024, 0);
  lapic[0x20] = 0x01;  // some register
  ASSERT_TRUE(source.vcpu->set_lapic_state(lapic).ok());
  Bytes xsave(4096, 0);
  xsave[24] = 0x80;  // MXCSR's low byte in the legacy area
  ASSERT_TRUE(source.vcpu->set_xsave_state(xsave).ok());
  ASSERT_TRUE(source.vcpu->set_mp_state(MpState::kHalted).ok());
  VcpuEvents events;
  events.nmi.pending = true;
  events.interrupt.shadow = 2;  // KVM_X86_SHADOW_INT_STI: the instruction after STI
  events.exception = {true, false, true, 13, 0x18};  // #GP(0x18) being delivered
  ASSERT_TRUE(source.vcpu->set_events(events).ok());
  ASSERT_TRUE(source.vcpu->set_msrs(std::vector<x86::Msr>{{0x10, 0x123456789ull}}).ok());
  auto saved = source.vcpu->save_state();
  ASSERT_TRUE(saved.ok()) << saved.error().message();
  EXPECT_EQ(saved->regs.rip, 0x1234u);
  EXPECT_EQ(saved->lapic, lapic);
  EXPECT_EQ(saved->xsave, xsave);
  EXPECT_EQ(saved->mp_state, MpState::kHalted);
  EXPECT_EQ(saved->xcr0, 0x7u);
  ASSERT_EQ(saved->msrs.size(), std::size(x86::kSnapshotMsrs));
  EXPECT_EQ(saved->msrs[5], (x86::Msr{0xc0000082, 0xffffffff81000000ull}));
  ASSERT_TRUE(saved->events.has_value());
  EXPECT_EQ(*saved->events, events);
  ASSERT_TRUE(saved->tsc.has_value());
  EXPECT_EQ(*saved->tsc, (VcpuTsc{0x123456789ull, 2'450'000}));

  KvmRecorder target_host;
  KvmVm target(target_host);
  ASSERT_TRUE(target.vcpu->restore_state(*saved).ok());
  // The TSC (same frequency: no KVM_SET_TSC_KHZ) and the MSRs, then SREGS (APIC_BASE) before
  // the LAPIC; the XSAVE area instead of KVM_SET_FPU; pending events, then the MP state last
  // (QEMU's and Firecracker's order).
  EXPECT_EQ(
      set_calls(target_host),
      (std::vector<std::string>{"KVM_SET_MSRS", "KVM_SET_MSRS", "KVM_SET_SREGS", "KVM_SET_REGS",
                                "KVM_SET_XSAVE", "KVM_SET_XCRS", "KVM_SET_DEBUGREGS",
                                "KVM_SET_LAPIC", "KVM_SET_VCPU_EVENTS", "KVM_SET_MP_STATE"}));
  EXPECT_EQ(target_host.vcpu_state(0).msrs.at(0x10), 0x123456789ull);
  kvm_vcpu_events set_events{};
  const Bytes& kept_events = target_host.kept.at("vcpu 0 KVM_SET_VCPU_EVENTS");
  ASSERT_EQ(kept_events.size(), sizeof set_events);
  std::memcpy(&set_events, kept_events.data(), sizeof set_events);
  EXPECT_EQ(set_events.nmi.pending, 1);
  EXPECT_EQ(set_events.interrupt.shadow, 2);
  EXPECT_EQ(set_events.exception.injected, 1);
  EXPECT_EQ(set_events.exception.nr, 13);
  EXPECT_EQ(set_events.exception.has_error_code, 1);
  EXPECT_EQ(set_events.exception.error_code, 0x18u);
  EXPECT_EQ(set_events.flags, static_cast<std::uint32_t>(KVM_VCPUEVENT_VALID_NMI_PENDING |
                                                         KVM_VCPUEVENT_VALID_SIPI_VECTOR |
                                                         KVM_VCPUEVENT_VALID_SHADOW));
  EXPECT_EQ(target_host.kept.at("vcpu 0 KVM_SET_LAPIC"), lapic);
  EXPECT_EQ(target_host.kept.at("vcpu 0 KVM_SET_MP_STATE"), (Bytes{KVM_MP_STATE_HALTED, 0, 0, 0}));
  EXPECT_EQ(target_host.vcpu_state(0).msrs.at(0xc0000082), 0xffffffff81000000ull);
}

// The TSC's frequency travels with its value: a host that can scale the TSC is set to the
// guest's frequency before the value; one that cannot refuses, and the error names both.
TEST(KvmSnapshotTest, TscFrequencyIsSetBeforeItsValueOrTheMismatchNamed) {
  KvmRecorder host;
  KvmVm vm(host);
  ASSERT_TRUE(vm.vcpu->set_tsc({0x1000, 3'000'000}).ok());
  const auto khz = host.named("KVM_SET_TSC_KHZ");
  ASSERT_EQ(khz.size(), 1u);
  EXPECT_EQ(khz[0].value, 3'000'000u);
  EXPECT_EQ(host.names().back(), "KVM_SET_MSRS");
  EXPECT_EQ(host.vcpu_state(0).msrs.at(0x10), 0x1000u);

  KvmRecorder fixed;
  fixed.tsc_scaling = false;
  KvmVm other(fixed);
  auto st = other.vcpu->set_tsc({0x1000, 3'000'000});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(),
            "KVM_SET_TSC_KHZ: the guest's TSC runs at 3000000 kHz, this host's at 2450000 kHz and "
            "it cannot scale (KVM_CAP_TSC_CONTROL): Invalid argument (errno 22)");
}

TEST(KvmSnapshotTest, ImagesOfTheWrongSizeAreRefused) {
  KvmRecorder host;
  KvmVm vm(host);
  auto lapic = vm.vcpu->set_lapic_state(Bytes(100, 0));
  ASSERT_FALSE(lapic.ok());
  EXPECT_EQ(lapic.error().message(),
            "KVM_SET_LAPIC: expected a 1024-byte register image, found 100 bytes");
  auto xsave = vm.vcpu->set_xsave_state(Bytes(512, 0));
  ASSERT_FALSE(xsave.ok());
  EXPECT_EQ(xsave.error().message(),
            "KVM_SET_XSAVE: expected a 4096-byte XSAVE area, found 512 bytes");
}

TEST(KvmSnapshotTest, VmStateHoldsBothPicsTheIoapicThePitAndTheClock) {
  KvmRecorder source_host;
  KvmVm source(source_host);
  auto saved = source.vm->save_state();
  ASSERT_TRUE(saved.ok()) << saved.error().message();
  std::vector<std::string> names;
  for (const auto& [name, bytes] : saved->components) names.push_back(name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"clock", "ioapic", "pic_master", "pic_slave", "pit2"}));
  EXPECT_EQ(saved->components.at("clock").size(), sizeof(kvm_clock_data));
  saved->components.at("clock")[0] = 0x42;                  // the clock value's low byte
  saved->components.at("clock")[8] = KVM_CLOCK_TSC_STABLE;  // flags, which SET_CLOCK must clear

  KvmRecorder target_host;
  KvmVm target(target_host);
  ASSERT_TRUE(target.vm->restore_state(*saved).ok());
  EXPECT_EQ(set_calls(target_host),
            (std::vector<std::string>{"KVM_SET_PIT2", "KVM_SET_CLOCK", "KVM_SET_IRQCHIP",
                                      "KVM_SET_IRQCHIP", "KVM_SET_IRQCHIP"}));
  kvm_clock_data clock{};
  const Bytes& set_clock = target_host.kept.at("vm KVM_SET_CLOCK");
  std::memcpy(&clock, set_clock.data(), sizeof clock);
  EXPECT_EQ(clock.clock, 0x42u);
  EXPECT_EQ(clock.flags, 0u);
  EXPECT_TRUE(target_host.kept.contains("vm KVM_SET_IRQCHIP 2"));  // KVM_IRQCHIP_IOAPIC

  saved->components.erase("pit2");
  auto missing = target.vm->restore_state(*saved);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message(), "VM state: component pit2 is missing");
}

// A vCPU thread saves its own state, and the first also the VM's: their filters must permit
// exactly these reads.
TEST(KvmSnapshotTest, SeccompScopesNameTheStateReads) {
  KvmRecorder host;
  KvmVm vm(host);
  auto has = [](const std::vector<Ioctl>& ioctls, unsigned long request) {
    return std::any_of(ioctls.begin(), ioctls.end(),
                       [&](const Ioctl& i) { return i.request == request; });
  };
  const auto run = vm.vcpu->run_ioctls();
  for (unsigned long request : {KVM_GET_REGS, KVM_GET_SREGS, KVM_GET_FPU, KVM_GET_XCRS,
                                kvm_abi::kGetMsrs, KVM_GET_DEBUGREGS, KVM_GET_MP_STATE,
                                KVM_GET_LAPIC, kvm_abi::kGetXsave, KVM_GET_VCPU_EVENTS})
    EXPECT_TRUE(has(run, request)) << request;
  EXPECT_TRUE(has(run, KVM_GET_TSC_KHZ));
  EXPECT_FALSE(has(run, KVM_SET_REGS));
  const auto state = vm.vm->state_ioctls();
  EXPECT_EQ(state.size(), 3u);
  for (unsigned long request : {KVM_GET_IRQCHIP, KVM_GET_PIT2, KVM_GET_CLOCK})
    EXPECT_TRUE(has(state, request)) << request;
}

}  // namespace
}  // namespace cloister::vmm
