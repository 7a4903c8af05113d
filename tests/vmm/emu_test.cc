// The emulator (emu.h) on its own: small hand-assembled guests that report what they observe
// through port writes, for every register state the VMM sets (reset, SIPI, 32-bit protected
// mode, 64-bit long mode with paging), the exits (port I/O, string I/O, MMIO, read-only memory),
// request_exit, HLT, INIT-SIPI between vCPUs, CPUID, and the faults that stop a VM.
#include "cloister/vmm/hypervisor/emu.h"

#include <gtest/gtest.h>
#include <linux/kvm.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <thread>
#include <vector>

#include "cloister/vmm/memory/guest_memory.h"

namespace cloister::vmm {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kRamSize = 4 << 20;
constexpr std::uint64_t kFirmwareBase = 0xffff0000;
constexpr std::uint16_t kReportPort = 0x80;

// Real-mode code for the reset vector, in a 64 KiB firmware image at 0xffff0000.
//   offset 0:   mov %cr0, %eax; out %eax, $0x80          (CR0)
//               mov %cs, %ax; out %ax, $0x80             (CS selector)
//               call 1f; 1: pop %ax; out %ax, $0x80      (IP of label 1: 0x000d)
//               mov $0x1234, %ax; mov %ax, %ds           (a real-mode segment load...)
//               mov 0x10, %ax; out %ax, $0x80            (...reads linear 0x12350)
//               hlt
//   offset 0xfff0 (the reset vector, linear 0xfffffff0): jmp 0 (IP wraps to 0)
const std::vector<std::uint8_t> kResetCode = {0x0f, 0x20, 0xc0, 0x66, 0xe7, 0x80, 0x8c, 0xc8, 0xe7,
                                              0x80, 0xe8, 0x00, 0x00, 0x58, 0xe7, 0x80, 0xb8, 0x34,
                                              0x12, 0x8e, 0xd8, 0xa1, 0x10, 0x00, 0xe7, 0x80, 0xf4};
const std::vector<std::uint8_t> kResetVector = {0xe9, 0x0d, 0x00};
constexpr std::uint16_t kRealModeMarker = 0xa55a;  // at linear 0x12350

// A guest with 4 MiB of RAM at 0 and the firmware image above, on emu.
class EmuTest : public ::testing::Test {
 protected:
  void start(std::uint32_t vcpus, bool irqchip, EmuOptions options = {}) {
    auto hv = open_emulator(options);
    ASSERT_TRUE(hv.ok()) << hv.error().message();
    hv_ = std::move(*hv);
    EXPECT_EQ(hv_->name(), "emu");
    VmOptions vm_options;
    vm_options.vcpus = vcpus;
    auto vm = hv_->create_vm(vm_options);
    ASSERT_TRUE(vm.ok()) << vm.error().message();
    vm_ = std::move(*vm);
    const RegionSpec specs[] = {{"ram", 0, kRamSize, false},
                                {"firmware", kFirmwareBase, 0x10000, true}};
    auto memory = GuestMemory::create(specs, false);
    ASSERT_TRUE(memory.ok()) << memory.error().message();
    memory_ = std::move(*memory);
    std::uint32_t slot = 0;
    for (const auto& region : memory_.regions()) {
      MemorySlot s{slot++,
                   region.guest_phys_addr,
                   region.size,
                   region.host,
                   region.read_only_to_guest,
                   nullptr,
                   0};
      auto st = vm_->map_memory(s);
      ASSERT_TRUE(st.ok()) << st.error().message();
    }
    load(kFirmwareBase, kResetCode);
    load(kFirmwareBase + 0xfff0, kResetVector);
    load(0x12350, {0x5a, 0xa5});
    if (irqchip) {
      ASSERT_TRUE(vm_->create_irqchip(false).ok());
    }
    for (std::uint32_t id = 0; id < vcpus; ++id) {
      auto vcpu = vm_->create_vcpu(id);
      ASSERT_TRUE(vcpu.ok()) << vcpu.error().message();
      vcpus_.push_back(std::move(*vcpu));
    }
  }

  void load(std::uint64_t gpa, const std::vector<std::uint8_t>& bytes) {
    ASSERT_TRUE(memory_.load(gpa, bytes, "test code").ok());
  }

  Vcpu& vcpu(std::size_t i = 0) { return *vcpus_[i]; }

  // Puts the vCPU in `sregs` at `rip`, with a stack below 0x8000.
  void enter(Vcpu& v, const x86::Sregs& sregs, std::uint64_t rip) {
    auto st = v.set_sregs(sregs);
    ASSERT_TRUE(st.ok()) << st.error().message();
    x86::Regs regs;
    regs.rip = rip;
    regs.rsp = 0x8000;
    ASSERT_TRUE(v.set_regs(regs).ok());
  }

  // Runs to the next exit, which must be a port write of `size` bytes to `port`; its value.
  std::uint64_t out(Vcpu& v, std::uint16_t port = kReportPort, std::uint32_t size = 4) {
    auto exit = v.run();
    EXPECT_TRUE(exit.ok()) << exit.error().message();
    if (!exit.ok()) return 0;
    EXPECT_EQ(exit->reason, ExitReason::kIo) << exit_reason_name(exit->reason) << exit->detail;
    EXPECT_TRUE(exit->is_write);
    EXPECT_EQ(exit->address, port);
    EXPECT_EQ(exit->size, size);
    std::uint64_t value = 0;
    std::memcpy(&value, exit->data.data(), std::min<std::size_t>(exit->data.size(), 8));
    return value;
  }

  std::unique_ptr<Hypervisor> hv_;
  std::unique_ptr<Vm> vm_;
  GuestMemory memory_;
  std::vector<std::unique_ptr<Vcpu>> vcpus_;
};

x86::Segment segment(std::uint16_t selector, std::uint64_t base, std::uint32_t limit,
                     std::uint8_t type, bool db, bool g, bool l = false) {
  x86::Segment s;
  s.selector = selector;
  s.base = base;
  s.limit = limit;
  s.type = type;
  s.present = true;
  s.s = true;
  s.db = db;
  s.g = g;
  s.l = l;
  return s;
}

// 32-bit protected mode, flat: CS 0x08, data 0x18, no paging, SSE enabled (CR4.OSFXSR).
x86::Sregs flat32() {
  x86::Sregs s;
  s.cs = segment(0x08, 0, 0xffffffff, 0xb, true, true);
  s.ds = s.es = s.fs = s.gs = s.ss = segment(0x18, 0, 0xffffffff, 0x3, true, true);
  s.tr = segment(0, 0, 0xffff, 0xb, false, false);
  s.tr.s = false;
  s.ldt.unusable = true;
  s.gdt = {0x500, 0x27};
  s.idt = {0, 0x7ff};
  s.cr0 = x86::kCr0Pe | x86::kCr0Et;
  s.cr4 = 1 << 9;  // OSFXSR
  return s;
}

std::vector<std::uint8_t> bytes_of(std::uint64_t value, std::size_t n) {
  std::vector<std::uint8_t> out(n);
  std::memcpy(out.data(), &value, n);
  return out;
}

TEST_F(EmuTest, NewVcpuIsInTheResetStateAndRunsTheResetVectorInRealMode) {
  start(1, false);
  auto sregs = vcpu().sregs();
  ASSERT_TRUE(sregs.ok());
  EXPECT_EQ(sregs->cs.selector, 0xf000);
  EXPECT_EQ(sregs->cs.base, 0xffff0000u);
  EXPECT_EQ(sregs->cr0, 0x60000010u);
  auto regs = vcpu().regs();
  ASSERT_TRUE(regs.ok());
  EXPECT_EQ(regs->rip, 0xfff0u);
  EXPECT_EQ(regs->rdx, kEmuDefaultCpuSignature);

  EXPECT_EQ(out(vcpu()), 0x60000010u);              // CR0: PE clear
  EXPECT_EQ(out(vcpu(), kReportPort, 2), 0xf000u);  // CS selector
  // IP 0x000d after running from 0xfffffff0 into offset 0 of the image: CS.base is 0xffff0000.
  EXPECT_EQ(out(vcpu(), kReportPort, 2), 0x000du);
  // DS = 0x1234 gave base 0x12340: real-mode segment semantics, not a descriptor load.
  EXPECT_EQ(out(vcpu(), kReportPort, 2), kRealModeMarker);
  auto halt = vcpu().run();
  ASSERT_TRUE(halt.ok());
  EXPECT_EQ(halt->reason, ExitReason::kHalt);  // no irqchip: HLT comes to the VMM, as with KVM
}

TEST_F(EmuTest, ProtectedModeStateHasTheRequestedHiddenBases) {
  start(1, false);
  // 0x1000: mov %cr0, %eax; out %eax, $0x80
  //         mov %cs, %ax; out %ax, $0x80
  //         call 1f; 1: pop %eax; out %eax, $0x80      (EIP of label 1 = its linear address)
  //         mov %ds:0, %eax; out %eax, $0x80           (DS.base = 0x200000)
  //         ljmp $0x20, $2f; 2: out %al, $0x81         (CS from the guest's own GDT)
  load(0x1000, {0x0f, 0x20, 0xc0, 0xe7, 0x80, 0x66, 0x8c, 0xc8, 0x66, 0xe7, 0x80, 0xe8,
                0x00, 0x00, 0x00, 0x00, 0x58, 0xe7, 0x80, 0xa1, 0x00, 0x00, 0x00, 0x00,
                0xe7, 0x80, 0xea, 0x21, 0x10, 0x00, 0x00, 0x20, 0x00, 0xe6, 0x81});
  load(0x200000, bytes_of(0x600df00d, 4));
  load(0x500 + 0x20, bytes_of(0x00cf9b000000ffff, 8));  // GDT[4]: flat 32-bit code
  x86::Sregs s = flat32();
  s.ds = segment(0x10, 0x200000, 0xfffff, 0x3, true, false);
  enter(vcpu(), s, 0x1000);

  EXPECT_EQ(out(vcpu()), x86::kCr0Pe | x86::kCr0Et);
  EXPECT_EQ(out(vcpu(), kReportPort, 2), 0x08u);
  EXPECT_EQ(out(vcpu()), 0x1010u);
  EXPECT_EQ(out(vcpu()), 0x600df00du);
  auto loaded = vcpu().sregs();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->ds.base, 0x200000u);
  EXPECT_EQ(loaded->ds.limit, 0xfffffu);
  EXPECT_EQ(loaded->gdt.base, 0x500u);

  out(vcpu(), 0x81, 1);
  // After the guest's far jump, sregs() reports what that load produced.
  auto reloaded = vcpu().sregs();
  ASSERT_TRUE(reloaded.ok());
  EXPECT_EQ(reloaded->cs.selector, 0x20);
  EXPECT_EQ(reloaded->cs.base, 0u);
  EXPECT_EQ(reloaded->cs.limit, 0xffffffffu);
  EXPECT_TRUE(reloaded->cs.db);
  EXPECT_EQ(reloaded->ds.base, 0x200000u);  // unchanged selector: the loaded value
}

// Runs to the next exit, which must be a read of `reason` at `address` (`size` bytes), and
// answers it with `value`.
void answer_read(Vcpu& v, ExitReason reason, std::uint64_t address, std::uint32_t size,
                 std::uint64_t value) {
  auto exit = v.run();
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  ASSERT_EQ(exit->reason, reason) << exit_reason_name(exit->reason);
  EXPECT_FALSE(exit->is_write);
  EXPECT_EQ(exit->address, address);
  ASSERT_EQ(exit->size, size);
  ASSERT_EQ(exit->data.size(), size);
  std::memcpy(exit->data.data(), &value, size);
}

// Identity-maps 0-4 MiB and 0x40000000-0x401fffff with 2 MiB pages, and with `map_loader` the
// 2 MiB page holding the emulator's loader window. (Unicorn 2.0.1 accesses linear = physical: it
// walks page tables for faults and permissions only, so guests identity-map what they use.)
void build_page_tables(GuestMemory& memory, bool map_loader) {
  auto put = [&](std::uint64_t gpa, std::uint64_t value) {
    ASSERT_TRUE(memory.write(gpa, bytes_of(value, 8), "page table").ok());
  };
  put(0x10000, 0x11003);     // PML4[0] -> PDPT
  put(0x11000, 0x12003);     // PDPT[0] -> PD 0-1 GiB
  put(0x11008, 0x13003);     // PDPT[1] -> PD 1-2 GiB
  put(0x12000, 0x000083);    // 0-2 MiB
  put(0x12008, 0x200083);    // 2-4 MiB
  put(0x13000, 0x40000083);  // 0x40000000-0x401fffff
  if (map_loader) {
    put(0x11018, 0x14003);                 // PDPT[3] -> PD 3-4 GiB
    put(0x14000 + 0x1f5 * 8, 0xfea00083);  // 0xfea00000, which holds the loader window
  }
}

x86::Sregs long_mode() {
  x86::Sregs s = flat32();
  s.cs = segment(0x10, 0, 0xfffff, 0xb, false, true, true);
  s.ds = s.es = s.ss = segment(0x18, 0, 0xfffff, 0x3, true, true);
  s.fs = segment(0, 0x40000004, 0, 0, false, false);
  s.fs.unusable = true;
  s.fs.present = false;
  s.gs = s.fs;
  s.gs.base = 0;
  s.cr0 = x86::kCr0Pe | x86::kCr0Et | x86::kCr0Pg;
  s.cr3 = 0x10000;
  s.cr4 = x86::kCr4Pae;
  s.efer = x86::kEferLme | x86::kEferLma;
  return s;
}

// 0x1000: mov %cr0, %rax; out %eax, $0x80
//         mov %cs, %ax; out %ax, $0x80
//         lea 0(%rip), %rax; out %eax, $0x80       (RIP of the out: 0x1012)
//         mov %fs:0, %eax; out %eax, $0x80         (FS.base 0x40000004, an MMIO hole)
//         mov %cr3, %rax; out %eax, $0x80
//         mov 0x600000, %eax                       (not mapped: a page fault)
const std::vector<std::uint8_t> kLongModeCode = {
    0x0f, 0x20, 0xc0, 0xe7, 0x80, 0x66, 0x8c, 0xc8, 0x66, 0xe7, 0x80, 0x48, 0x8d, 0x05,
    0x00, 0x00, 0x00, 0x00, 0xe7, 0x80, 0x64, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00,
    0xe7, 0x80, 0x0f, 0x20, 0xd8, 0xe7, 0x80, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x60, 0x00};

// The loader ends differently when the target's page tables map its window (it stops at the next
// instruction) and when they do not (a page fault on fetching it): both must reach the state.
class EmuLongModeTest : public EmuTest, public ::testing::WithParamInterface<bool> {};

TEST_P(EmuLongModeTest, LongModeWithPagingIsReachedExactly) {
  start(1, false);
  build_page_tables(memory_, GetParam());
  load(0x1000, kLongModeCode);
  enter(vcpu(), long_mode(), 0x1000);
  EXPECT_EQ(out(vcpu()), x86::kCr0Pe | x86::kCr0Et | x86::kCr0Pg);
  EXPECT_EQ(out(vcpu(), kReportPort, 2), 0x10u);
  EXPECT_EQ(out(vcpu()), 0x1012u);
  answer_read(vcpu(), ExitReason::kMmio, 0x40000004, 4, 0x2badb004);
  EXPECT_EQ(out(vcpu()), 0x2badb004u);
  EXPECT_EQ(out(vcpu()), 0x10000u);
  // Paging is on: a page the tables leave out faults.
  auto fault = vcpu().run();
  ASSERT_TRUE(fault.ok());
  EXPECT_EQ(fault->reason, ExitReason::kInternalError);
  EXPECT_NE(fault->detail.find("#PF (vector 14)"), std::string::npos) << fault->detail;
  auto sregs = vcpu().sregs();
  ASSERT_TRUE(sregs.ok());
  EXPECT_EQ(sregs->efer, x86::kEferLme | x86::kEferLma);
  EXPECT_TRUE(sregs->cs.l);
  EXPECT_EQ(sregs->fs.base, 0x40000004u);
  EXPECT_EQ(sregs->cr2, 0x600000u);

  // From long mode with paging back to the reset state: the loader leaves long mode itself.
  x86::Sregs reset = *sregs;
  reset.cs = segment(0xf000, 0xffff0000, 0xffff, 0xb, false, false);
  reset.ds = reset.es = reset.fs = reset.gs = reset.ss = segment(0, 0, 0xffff, 0x3, false, false);
  reset.cr0 = 0x60000010;
  reset.cr3 = reset.cr4 = reset.efer = 0;
  reset.idt = {0, 0xffff};
  enter(vcpu(), reset, 0xfff0);
  EXPECT_EQ(out(vcpu()), 0x60000010u);
  EXPECT_EQ(out(vcpu(), kReportPort, 2), 0xf000u);
  EXPECT_EQ(out(vcpu(), kReportPort, 2), 0x000du);
  EXPECT_EQ(out(vcpu(), kReportPort, 2), kRealModeMarker);
}

INSTANTIATE_TEST_SUITE_P(LoaderWindow, EmuLongModeTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& p) {
                           return p.param ? "Mapped" : "Unmapped";
                         });

TEST_F(EmuTest, InitSipiStartsTheSecondVcpuInRealModeAtTheVector) {
  start(2, true);
  // vCPU 1, started at vector 0x09 (0x9000), real mode:
  //   mov %cr0, %eax; out %eax, $0x80
  //   mov %cs, %ax; out %ax, $0x80
  //   call 1f; 1: pop %ax; out %ax, $0x80
  //   mov $1, %eax; cpuid; mov %ebx, %eax; out %eax, $0x80     (initial APIC ID in EBX[31:24])
  //   hlt
  load(0x9000, {0x0f, 0x20, 0xc0, 0x66, 0xe7, 0x80, 0x8c, 0xc8, 0xe7, 0x80, 0xe8,
                0x00, 0x00, 0x58, 0xe7, 0x80, 0x66, 0xb8, 0x01, 0x00, 0x00, 0x00,
                0x0f, 0xa2, 0x66, 0x89, 0xd8, 0x66, 0xe7, 0x80, 0xf4});
  // vCPU 0, flat protected mode, through its local APIC's ICR (destination: APIC ID 1):
  //   movl $0x01000000, %es:0xfee00310    ICR high
  //   movl $0x00004500, %es:0xfee00300    INIT, level assert
  //   movl $0x00004609, %es:0xfee00300    STARTUP, vector 0x09
  //   mov %es:0xfee00300, %eax; out %eax, $0x80
  load(0x1000, {0x26, 0xc7, 0x05, 0x10, 0x03, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x01, 0x26, 0xc7, 0x05,
                0x00, 0x03, 0xe0, 0xfe, 0x00, 0x45, 0x00, 0x00, 0x26, 0xc7, 0x05, 0x00, 0x03, 0xe0,
                0xfe, 0x09, 0x46, 0x00, 0x00, 0x26, 0xa1, 0x00, 0x03, 0xe0, 0xfe, 0xe7, 0x80});
  enter(vcpu(0), flat32(), 0x1000);

  // vCPU 1 waits for STARTUP inside run(), as under KVM.
  std::vector<std::uint64_t> ap;
  std::thread ap_thread([&] {
    ap.push_back(out(vcpu(1)));
    ap.push_back(out(vcpu(1), kReportPort, 2));
    ap.push_back(out(vcpu(1), kReportPort, 2));
    ap.push_back(out(vcpu(1)));
  });
  // The ICR reads back with delivery status idle (bit 12 clear).
  EXPECT_EQ(out(vcpu(0)), 0x4609u);
  ap_thread.join();
  ASSERT_EQ(ap.size(), 4u);
  EXPECT_EQ(ap[0], 0x60000010u);
  EXPECT_EQ(ap[1], 0x0900u);
  EXPECT_EQ(ap[2], 0x000du);
  EXPECT_EQ(ap[3] >> 24, 1u);
}

// 0x1000, flat protected mode:
//   in $0x60, %al; out %al, $0x61
//   in $0x62, %ax; out %ax, $0x63
//   mov $0x3f8, %dx; in (%dx), %eax; out %eax, $0x64
//   mov 0xd0000010, %eax; out %eax, $0x65              (MMIO read)
//   movl $0x11223344, 0xd0000020                        (MMIO write)
//   movq 0xd0000008, %xmm0                              (8-byte MMIO read)
//   movd %xmm0, %eax; out %eax, $0x66; psrlq $32, %xmm0; movd %xmm0, %eax; out %eax, $0x66
//   mov $0x300, %esi; mov $4, %ecx; mov $0x70, %dx; rep outsb
//   mov $0x400, %edi; mov $3, %ecx; mov $0x71, %dx; rep insb
//   hlt
const std::vector<std::uint8_t> kIoCode = {
    0xe4, 0x60, 0xe6, 0x61, 0x66, 0xe5, 0x62, 0x66, 0xe7, 0x63, 0x66, 0xba, 0xf8, 0x03, 0xed, 0xe7,
    0x64, 0xa1, 0x10, 0x00, 0x00, 0xd0, 0xe7, 0x65, 0xc7, 0x05, 0x20, 0x00, 0x00, 0xd0, 0x44, 0x33,
    0x22, 0x11, 0xf3, 0x0f, 0x7e, 0x05, 0x08, 0x00, 0x00, 0xd0, 0x66, 0x0f, 0x7e, 0xc0, 0xe7, 0x66,
    0x66, 0x0f, 0x73, 0xd0, 0x20, 0x66, 0x0f, 0x7e, 0xc0, 0xe7, 0x66, 0xbe, 0x00, 0x03, 0x00, 0x00,
    0xb9, 0x04, 0x00, 0x00, 0x00, 0x66, 0xba, 0x70, 0x00, 0xf3, 0x6e, 0xbf, 0x00, 0x04, 0x00, 0x00,
    0xb9, 0x03, 0x00, 0x00, 0x00, 0x66, 0xba, 0x71, 0x00, 0xf3, 0x6c, 0xf4};

TEST_F(EmuTest, PortAndMmioExitsCarryKvmSemantics) {
  start(1, false);
  load(0x1000, kIoCode);
  load(0x300, {'A', 'B', 'C', 'D'});
  enter(vcpu(), flat32(), 0x1000);

  // A read's value, filled in by the VMM, reaches the guest on the next run().
  answer_read(vcpu(), ExitReason::kIo, 0x60, 1, 0x5a);
  EXPECT_EQ(out(vcpu(), 0x61, 1), 0x5au);
  answer_read(vcpu(), ExitReason::kIo, 0x62, 2, 0xbeef);
  EXPECT_EQ(out(vcpu(), 0x63, 2), 0xbeefu);
  answer_read(vcpu(), ExitReason::kIo, 0x3f8, 4, 0x12345678);
  EXPECT_EQ(out(vcpu(), 0x64, 4), 0x12345678u);
  answer_read(vcpu(), ExitReason::kMmio, 0xd0000010, 4, 0xfeedface);
  EXPECT_EQ(out(vcpu(), 0x65, 4), 0xfeedfaceu);

  auto write = vcpu().run();
  ASSERT_TRUE(write.ok());
  EXPECT_EQ(write->reason, ExitReason::kMmio);
  EXPECT_TRUE(write->is_write);
  EXPECT_EQ(write->address, 0xd0000020u);
  ASSERT_EQ(write->size, 4u);
  EXPECT_EQ(write->data[0], 0x44);
  EXPECT_EQ(write->data[3], 0x11);

  // An 8-byte MMIO access arrives as two 4-byte exits (emu.h).
  answer_read(vcpu(), ExitReason::kMmio, 0xd0000008, 4, 0x11111111);
  answer_read(vcpu(), ExitReason::kMmio, 0xd000000c, 4, 0x22222222);
  EXPECT_EQ(out(vcpu(), 0x66, 4), 0x11111111u);
  EXPECT_EQ(out(vcpu(), 0x66, 4), 0x22222222u);

  // String I/O: one exit per element, in order.
  for (char c : std::string("ABCD")) EXPECT_EQ(out(vcpu(), 0x70, 1), static_cast<std::uint64_t>(c));
  for (char c : std::string("xyz")) answer_read(vcpu(), ExitReason::kIo, 0x71, 1, c);
  auto halt = vcpu().run();
  ASSERT_TRUE(halt.ok());
  EXPECT_EQ(halt->reason, ExitReason::kHalt);
  std::uint8_t read_back[3];
  ASSERT_TRUE(memory_.read(0x400, read_back, "rep insb destination").ok());
  EXPECT_EQ(std::string(read_back, read_back + 3), "xyz");
}

TEST_F(EmuTest, WritesToReadOnlyMemoryAreMmioExitsAndChangeNothing) {
  start(1, false);
  // movl $0xdeadbeef, 0xffff0000; mov 0xffff0000, %eax; out %eax, $0x80
  load(0x1000, {0xc7, 0x05, 0x00, 0x00, 0xff, 0xff, 0xef, 0xbe, 0xad, 0xde, 0xa1, 0x00, 0x00, 0xff,
                0xff, 0xe7, 0x80});
  enter(vcpu(), flat32(), 0x1000);
  auto write = vcpu().run();
  ASSERT_TRUE(write.ok());
  EXPECT_EQ(write->reason, ExitReason::kMmio);
  EXPECT_TRUE(write->is_write);
  EXPECT_EQ(write->address, kFirmwareBase);
  ASSERT_EQ(write->size, 4u);
  EXPECT_EQ(write->data[0], 0xef);
  // The firmware's first bytes (kResetCode) are still there.
  EXPECT_EQ(out(vcpu()), 0xe766c0200fu & 0xffffffffu);
}

TEST_F(EmuTest, RequestExitBeforeRunReturnsInterruptedAtOnce) {
  start(1, false);
  load(0x1000, {0xe6, 0x80});  // out %al, $0x80
  enter(vcpu(), flat32(), 0x1000);
  vcpu().request_exit();
  auto exit = vcpu().run();
  ASSERT_TRUE(exit.ok());
  EXPECT_EQ(exit->reason, ExitReason::kInterrupted);
  EXPECT_EQ(vcpu().regs()->rip, 0x1000u);
  vcpu().clear_exit_request();
  out(vcpu(), kReportPort, 1);
}

TEST_F(EmuTest, RequestExitStopsARunningVcpu) {
  start(1, false);
  load(0x1000, {0xeb, 0xfe});  // 1: jmp 1b
  enter(vcpu(), flat32(), 0x1000);
  for (int round = 0; round < 2; ++round) {
    std::thread kicker([&] {
      std::this_thread::sleep_for(20ms);
      vcpu().request_exit();
    });
    auto exit = vcpu().run();
    kicker.join();
    ASSERT_TRUE(exit.ok());
    EXPECT_EQ(exit->reason, ExitReason::kInterrupted);
    EXPECT_EQ(vcpu().regs()->rip, 0x1000u);
    vcpu().clear_exit_request();
  }
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

TEST_F(EmuTest, HaltedVcpuSleepsUntilRequestExitAndStaysHalted) {
  start(1, true);
  load(0x1000, {0xfa, 0xf4, 0xe6, 0x80});  // cli; hlt; out %al, $0x80
  enter(vcpu(), flat32(), 0x1000);
  for (int round = 0; round < 2; ++round) {
    std::atomic<bool> returned{false};
    Result<VcpuExit> exit = Error("not run");
    std::thread runner([&] {
      exit = vcpu().run();
      returned = true;
    });
    const double cpu_before = process_cpu_seconds();
    std::this_thread::sleep_for(100ms);
    EXPECT_FALSE(returned);  // halted with interrupts off: nothing wakes it
    EXPECT_LT(process_cpu_seconds() - cpu_before, 0.03);  // asleep, not polling
    vcpu().request_exit();
    runner.join();
    ASSERT_TRUE(exit.ok());
    // kInterrupted, not the out after HLT: still halted in the second round too.
    EXPECT_EQ(exit->reason, ExitReason::kInterrupted);
    vcpu().clear_exit_request();
  }
}

TEST_F(EmuTest, CpuidReportsTheSignatureApicIdAndTopology) {
  EmuOptions options;
  options.cpu_signature = 0x000806f8;
  start(3, true, options);
  EXPECT_EQ(vcpu().regs()->rdx, 0x000806f8u);  // the reset state's RDX holds the signature
  // mov $1, %eax; cpuid; out %eax; mov %ebx/%ecx/%edx, %eax; out ...
  // mov $0xb, %eax; mov $1, %ecx; cpuid; out the four registers
  // mov $0x80000001, %eax; cpuid; mov %edx, %eax; out %eax, $0x80
  load(0x1000,
       {0xb8, 0x01, 0x00, 0x00, 0x00, 0x0f, 0xa2, 0xe7, 0x80, 0x89, 0xd8, 0xe7, 0x80, 0x89, 0xc8,
        0xe7, 0x80, 0x89, 0xd0, 0xe7, 0x80, 0xb8, 0x0b, 0x00, 0x00, 0x00, 0xb9, 0x01, 0x00, 0x00,
        0x00, 0x0f, 0xa2, 0xe7, 0x80, 0x89, 0xd8, 0xe7, 0x80, 0x89, 0xc8, 0xe7, 0x80, 0x89, 0xd0,
        0xe7, 0x80, 0xb8, 0x01, 0x00, 0x00, 0x80, 0x0f, 0xa2, 0x89, 0xd0, 0xe7, 0x80});
  enter(vcpu(), flat32(), 0x1000);
  EXPECT_EQ(out(vcpu()), 0x000806f8u);
  EXPECT_EQ(out(vcpu()) >> 24, 0u);         // APIC ID of vCPU 0
  EXPECT_NE(out(vcpu()) & (1u << 31), 0u);  // hypervisor present
  const std::uint64_t edx = out(vcpu());
  for (int bit : {0, 3, 4, 5, 6, 9, 13})  // FPU, PSE, TSC, MSR, PAE, APIC, PGE
    EXPECT_NE(edx & (1u << bit), 0u) << "CPUID.01H:EDX bit " << bit;
  EXPECT_EQ(out(vcpu()), 2u);      // leaf 0BH, core level: x2APIC ID shift for 3 vCPUs
  EXPECT_EQ(out(vcpu()), 3u);      // logical processors at the level
  EXPECT_EQ(out(vcpu()), 0x201u);  // level type core, level number 1
  EXPECT_EQ(out(vcpu()), 0u);      // x2APIC ID
  const std::uint64_t ext = out(vcpu());
  EXPECT_NE(ext & (1u << 29), 0u);  // long mode
  EXPECT_EQ(ext & (1u << 20), 0u);  // no NX: the engine cannot set EFER.NXE
}

TEST_F(EmuTest, X87AndSseStateSurvivesSetSregs) {
  start(1, false);
  // mov $0x37, %eax; movd %eax, %xmm3; hlt; movd %xmm3, %eax; out %eax, $0x80
  load(0x1000, {0xb8, 0x37, 0x00, 0x00, 0x00, 0x66, 0x0f, 0x6e, 0xd8, 0xf4, 0x66, 0x0f, 0x7e, 0xd8,
                0xe7, 0x80});
  enter(vcpu(), flat32(), 0x1000);
  auto halt = vcpu().run();
  ASSERT_TRUE(halt.ok());
  ASSERT_EQ(halt->reason, ExitReason::kHalt);
  enter(vcpu(), flat32(), 0x100a);
  EXPECT_EQ(out(vcpu()), 0x37u);
}

TEST_F(EmuTest, RegistersCannotBeSetWhileAnAccessIsPending) {
  start(1, false);
  load(0x1000, {0xe6, 0x80});  // out %al, $0x80
  enter(vcpu(), flat32(), 0x1000);
  out(vcpu(), kReportPort, 1);
  auto st = vcpu().set_regs(x86::Regs{});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(),
            "emu: set_regs on vCPU 0: an I/O or MMIO access is pending; run() completes it first");
}

// What a snapshot relies on: after an I/O exit, request_exit() and run() complete the access
// and return kInterrupted on the next instruction boundary (KVM's KVM_RUN with immediate_exit),
// so the saved state holds whole instructions; and that state loads back.
TEST_F(EmuTest, RunAfterRequestExitCompletesThePendingAccessAndTheStateSavesWhole) {
  start(1, true);
  load(0x1000, {0xe6, 0x80, 0xeb, 0xfe});  // out %al, $0x80; jmp .
  enter(vcpu(), flat32(), 0x1000);
  out(vcpu(), kReportPort, 1);
  vcpu().request_exit();
  auto exit = vcpu().run();
  ASSERT_TRUE(exit.ok()) << exit.error().message();
  EXPECT_EQ(exit->reason, ExitReason::kInterrupted);
  vcpu().clear_exit_request();
  auto state = vcpu().save_state();
  ASSERT_TRUE(state.ok()) << state.error().message();
  EXPECT_EQ(state->regs.rip, 0x1002u);  // past the OUT, at the loop
  EXPECT_EQ(state->sregs.cs.selector, 0x08);
  EXPECT_EQ(state->mp_state, MpState::kRunnable);
  EXPECT_EQ(state->lapic.size(), 1024u);
  EXPECT_TRUE(state->xsave.empty());
  EXPECT_EQ(state->msrs.size(), std::size(x86::kSnapshotMsrs));

  VcpuState changed = *state;
  changed.regs.rax = 0x1234;
  changed.lapic[0x80] = 0x20;  // TPR
  ASSERT_TRUE(vcpu().restore_state(changed).ok());
  auto again = vcpu().save_state();
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(again->regs.rax, 0x1234u);
  EXPECT_EQ(again->regs.rip, 0x1002u);
  EXPECT_EQ(again->lapic[0x80], 0x20);
  auto xsave = vcpu().set_xsave_state(Bytes(4096, 0));
  ASSERT_FALSE(xsave.ok());
  EXPECT_EQ(xsave.error().message(),
            "emu: set_xsave_state: expected an empty XSAVE area (the emulator has no XSAVE), "
            "found 4096 bytes");
}

// Runs the guest to an exit that stops the VM.
VcpuExit fault(Vcpu& v) {
  auto exit = v.run();
  EXPECT_TRUE(exit.ok()) << exit.error().message();
  return exit.ok() ? *exit : VcpuExit{};
}

TEST_F(EmuTest, UndeliverableExceptionsEndTheRunWithTheirName) {
  start(1, false);
  load(0x1000, {0x0f, 0x0b});  // ud2
  x86::Sregs s = flat32();
  enter(vcpu(), s, 0x1000);
  VcpuExit exit = fault(vcpu());
  EXPECT_EQ(exit.reason, ExitReason::kInternalError);
  EXPECT_EQ(exit.suberror, static_cast<std::uint32_t>(KVM_INTERNAL_ERROR_DELIVERY_EV));
  EXPECT_NE(exit.detail.find("#UD (vector 6)"), std::string::npos) << exit.detail;
  EXPECT_EQ(vcpu().regs()->rip, 0x1000u);

  s.idt.limit = 0;  // no gate for #UD, #GP or #DF: the processor shuts down
  enter(vcpu(), s, 0x1000);
  exit = fault(vcpu());
  EXPECT_EQ(exit.reason, ExitReason::kShutdown);
  EXPECT_NE(exit.detail.find("triple fault"), std::string::npos) << exit.detail;
}

TEST_F(EmuTest, FetchingFromAnMmioHoleIsAnEmulationFailure) {
  start(1, false);
  load(0x1000, {0xb8, 0x00, 0x00, 0x00, 0xd0, 0xff, 0xe0});  // mov $0xd0000000, %eax; jmp *%eax
  enter(vcpu(), flat32(), 0x1000);
  VcpuExit exit = fault(vcpu());
  EXPECT_EQ(exit.reason, ExitReason::kInternalError);
  EXPECT_EQ(exit.suberror, static_cast<std::uint32_t>(KVM_INTERNAL_ERROR_EMULATION));
  EXPECT_NE(exit.detail.find("UC_ERR_FETCH_PROT"), std::string::npos) << exit.detail;
  EXPECT_EQ(vcpu().regs()->rip, 0xd0000000u);
}

TEST_F(EmuTest, StatesTheLoaderCannotReachAreRefusedWhenSet) {
  start(1, false);
  x86::Sregs s = flat32();
  s.cs.selector = 0x0b;  // RPL 3: a CPL-3 state
  auto st = vcpu().set_sregs(s);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message(),
            "emu: set_sregs: cs.selector: the emulator's loader needs a GDT selector with RPL 0 "
            "and DPL 0 (the loader reaches CPL 0 only), found 0xb");
  s = flat32();
  s.efer = 1 << 11;  // NXE
  st = vcpu().set_sregs(s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("efer"), std::string::npos) << st.error().message();
  s = flat32();
  s.ds.type = 0x2;  // not accessed
  st = vcpu().set_sregs(s);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message().find("ds.type"), std::string::npos) << st.error().message();
}

TEST(EmuVmTest, RefusesWhatTheEmulatorCannotDo) {
  auto hv = open_emulator();
  ASSERT_TRUE(hv.ok()) << hv.error().message();
  VmOptions snp;
  snp.machine_type = 4;
  auto refused = (*hv)->create_vm(snp);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("VM type 4"), std::string::npos);

  auto vm = (*hv)->create_vm({});
  ASSERT_TRUE(vm.ok());
  auto memfd = (*vm)->create_guest_memfd(2 << 20);
  ASSERT_FALSE(memfd.ok());
  EXPECT_EQ(memfd.error().message(), "emu: private memory (guest_memfd) is not supported");
  EXPECT_TRUE((*vm)->set_irq_line(4, true).ok());  // recorded; emu delivers no interrupts
  auto vcpu = (*vm)->create_vcpu(0);
  ASSERT_TRUE(vcpu.ok()) << vcpu.error().message();
  auto late = (*vm)->map_memory({0, 0, 4096, nullptr, false, nullptr, 0});
  ASSERT_FALSE(late.ok());
  EXPECT_NE(late.error().message().find("map_memory after create_vcpu"), std::string::npos);
  EXPECT_FALSE((*vm)->create_irqchip(false).ok());
  EXPECT_FALSE((*vm)->create_vcpu(1).ok());  // created for one vCPU
}

}  // namespace
}  // namespace cloister::vmm
