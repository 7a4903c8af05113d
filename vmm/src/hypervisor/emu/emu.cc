#include "cloister/vmm/hypervisor/emu.h"

#include <linux/kvm.h>  // the KVM_INTERNAL_ERROR_* suberrors ExitReason::kInternalError carries

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "cloister/vmm/format.h"
#include "cloister/vmm/seccomp/seccomp.h"
#include "hypervisor/emu/cpuid.h"
#include "hypervisor/emu/engine.h"
#include "hypervisor/emu/lapic.h"
#include "hypervisor/emu/loader.h"
#include "hypervisor/emu/physical_map.h"

namespace cloister::vmm {
namespace {

using emu::CpuidModel;
using emu::Engine;
using emu::Ipi;
using emu::PhysicalMap;

// Translated blocks a vCPU executes before it lets a waiting vCPU have the VM: about a
// millisecond of guest code.
constexpr std::uint32_t kSliceBlocks = 1u << 16;

constexpr std::uint64_t kRflagsVm = 1ull << 17;
constexpr std::uint64_t kApicBaseEnable = 1ull << 11;
constexpr std::uint64_t kApicBaseBsp = 1ull << 8;

// The x86 power-up and INIT state (SDM vol. 3A §9.1.1, Table 9-1), as KVM reports it.
x86::Sregs reset_sregs(bool bsp) {
  x86::Sregs s;
  x86::Segment data;
  data.limit = 0xffff;
  data.type = 0x3;  // read/write, accessed
  data.present = true;
  data.s = true;
  s.ds = s.es = s.fs = s.gs = s.ss = data;
  s.cs = data;
  s.cs.selector = 0xf000;
  s.cs.base = 0xffff0000;
  s.cs.type = 0xb;  // execute/read, accessed
  s.tr.limit = s.ldt.limit = 0xffff;
  s.tr.type = 0xb;  // busy 32-bit TSS
  s.ldt.type = 0x2;
  s.tr.present = s.ldt.present = true;
  s.gdt.limit = s.idt.limit = 0xffff;
  s.cr0 = 0x60000010;  // CD | NW | ET
  s.apic_base = emu::kLapicBase | kApicBaseEnable | (bsp ? kApicBaseBsp : 0);
  return s;
}

x86::Regs reset_regs(std::uint32_t signature) {
  x86::Regs r;
  r.rip = 0xfff0;
  r.rdx = signature;
  return r;
}

// Where a STARTUP IPI with `vector` starts a vCPU (SDM vol. 3A §8.4.4.1): real mode at
// vector * 4 KiB, CS = vector * 256, IP = 0.
void startup_state(std::uint8_t vector, x86::Regs& regs, x86::Sregs& sregs) {
  sregs.cs.selector = static_cast<std::uint16_t>(vector << 8);
  sregs.cs.base = std::uint64_t{vector} << 12;
  regs.rip = 0;
}

std::string exception_name(std::uint32_t vector) {
  static constexpr const char* kNames[] = {"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD",
                                           "#NM", "#DF", "",    "#TS", "#NP", "#SS", "#GP",
                                           "#PF", "",    "#MF", "#AC", "#MC", "#XM", "#VE"};
  std::string name = "vector " + std::to_string(vector);
  if (vector < std::size(kNames) && *kNames[vector])
    name = std::string(kNames[vector]) + " (" + name + ")";
  return name;
}

constexpr std::uint32_t kInvalidOpcode = 6;
constexpr std::uint32_t kGeneralProtection = 13;
constexpr std::uint32_t kDoubleFault = 8;

bool memory_error(uc_err err) {
  switch (err) {
    case UC_ERR_READ_UNMAPPED:
    case UC_ERR_WRITE_UNMAPPED:
    case UC_ERR_FETCH_UNMAPPED:
    case UC_ERR_READ_PROT:
    case UC_ERR_WRITE_PROT:
    case UC_ERR_FETCH_PROT:
    case UC_ERR_READ_UNALIGNED:
    case UC_ERR_WRITE_UNALIGNED:
    case UC_ERR_FETCH_UNALIGNED:
      return true;
    default:
      return false;
  }
}

VcpuExit interrupted() {
  VcpuExit exit;
  exit.reason = ExitReason::kInterrupted;
  return exit;
}

class EmuVcpu;

// What the vCPUs of one VM share, behind one mutex.
struct Machine {
  Machine(const EmuOptions& o, std::uint32_t count) : options(o), vcpu_count(count) {}

  const EmuOptions options;
  const std::uint32_t vcpu_count;

  std::mutex mutex;
  // The VM: the vCPU whose engine may execute guest code, and the vCPUs waiting for it, served
  // in order. `contended` mirrors !waiting.empty() for the running engine to poll.
  EmuVcpu* owner = nullptr;
  std::deque<EmuVcpu*> waiting;
  std::atomic<bool> contended{false};

  std::vector<EmuVcpu*> vcpus;  // live, for IPIs
  std::vector<MemorySlot> slots;
  bool irqchip = false;
  // Device interrupt lines as the devices last drove them; emu delivers no interrupts.
  std::map<std::uint32_t, bool> irq_lines;
  std::optional<CpuidModel> cpuid;  // probed with the first vCPU's engine
};

class EmuVcpu final : public Vcpu {
 public:
  static Result<std::unique_ptr<Vcpu>> create(std::shared_ptr<Machine> machine, std::uint32_t id);
  ~EmuVcpu() override;

  std::uint32_t id() const override { return id_; }
  Result<VcpuExit> run() override;
  void request_exit() override;
  void clear_exit_request() override;
  std::vector<Ioctl> run_ioctls() const override { return {}; }  // the engine thread runs the guest
  Result<x86::Regs> regs() const override;
  Status set_regs(const x86::Regs& regs) override;
  Result<x86::Sregs> sregs() const override;
  Status set_sregs(const x86::Sregs& sregs) override;
  Result<x86::Fpu> fpu() const override;
  Status set_fpu(const x86::Fpu& fpu) override;
  Result<std::uint64_t> xcr0() const override;
  Status set_xcr0(std::uint64_t xcr0) override;
  Result<std::vector<x86::Msr>> msrs(std::span<const std::uint32_t> indices) const override;
  Status set_msrs(std::span<const x86::Msr> msrs) override;
  Result<x86::DebugRegs> debug_regs() const override;
  Status set_debug_regs(const x86::DebugRegs& regs) override;
  Result<MpState> mp_state() const override;
  Status set_mp_state(MpState state) override;
  Result<Bytes> lapic_state() const override;
  Status set_lapic_state(ByteView image) override;
  // The engine has no XSAVE: the area is empty, and only an empty one is accepted.
  Result<Bytes> xsave_state() const override { return Bytes{}; }
  Status set_xsave_state(ByteView image) override;

 protected:
  std::string_view hypervisor_name() const override { return "emu"; }

 private:
  // machine->mutex held: state may change only between runs.
  Status check_settable(const char* what) const;

  enum class StopCause { kNone, kYield, kAttention };
  // How a stretch of guest code ended.
  struct Stretch {
    enum class End { kContinue, kHalted, kExit } end = End::kContinue;
    VcpuExit exit;
  };

  EmuVcpu(std::shared_ptr<Machine> machine, std::uint32_t id, std::unique_ptr<Engine> engine,
          emu::Loader loader);
  Status attach();

  // Engine thread.
  void engine_main();
  Result<VcpuExit> execute(std::unique_lock<std::mutex>& lock);
  void take_events();
  Result<Stretch> run_stretch(std::optional<x86::Regs> regs, std::optional<x86::Sregs> sregs);
  Result<VcpuExit> fault_exit(std::uint32_t vector);
  bool exchange(const VcpuExit& exit);
  void stop(StopCause cause);
  void hook_failed(Error error);

  // machine->mutex held.
  bool attention() const { return exit_requested_ || events_pending_ || stopping_; }
  bool acquire_vm(std::unique_lock<std::mutex>& lock, bool interruptible);
  void release_vm();
  void publish(Result<VcpuExit> outcome);
  void post(const Ipi& ipi);
  void send(const Ipi& ipi);
  void init();
  x86::Segment live_segment(const x86::Segment& loaded, std::uint16_t selector, bool protected_mode,
                            const uc_x86_mmr& gdtr, const uc_x86_mmr& ldtr) const;

  // Hooks (engine thread, inside uc_emu_start).
  static void on_block(uc_engine*, std::uint64_t, std::uint32_t, void* self);
  static std::uint32_t on_in(uc_engine*, std::uint32_t port, int size, void* self);
  static void on_out(uc_engine*, std::uint32_t port, int size, std::uint32_t value, void* self);
  static int on_cpuid(uc_engine*, void* self);
  static void on_interrupt(uc_engine*, std::uint32_t vector, void* self);
  static bool on_rom_write(uc_engine*, uc_mem_type, std::uint64_t address, int size,
                           std::int64_t value, void* self);
  std::uint64_t access(bool is_write, ExitReason reason, std::uint64_t address, unsigned size,
                       std::uint64_t value);

  const std::shared_ptr<Machine> machine_;
  const std::uint32_t id_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<PhysicalMap> map_;
  std::uint64_t top_ = 0;  // end of the guest-physical address space
  emu::Loader loader_;
  emu::LocalApic lapic_;

  // Guarded by machine->mutex.
  std::condition_variable engine_cv_;  // the engine thread waits here
  std::condition_variable caller_cv_;  // run() waits here
  bool run_requested_ = false;
  std::optional<Result<VcpuExit>> outcome_;
  bool in_access_ = false;  // parked inside a hook until run() completes an I/O or MMIO access
  bool halted_ = false;
  bool waiting_for_sipi_ = false;
  std::deque<Ipi> events_;
  std::optional<x86::Regs> staged_regs_;
  std::optional<x86::Sregs> staged_sregs_;
  x86::Sregs loaded_;  // the last state the loader reached
  std::uint64_t apic_base_ = 0;

  // Read by the running engine without the mutex.
  std::atomic<bool> exit_requested_{false};
  std::atomic<bool> events_pending_{false};
  std::atomic<bool> stopping_{false};

  // Engine thread only.
  std::uint32_t slice_left_ = kSliceBlocks;
  StopCause stop_cause_ = StopCause::kNone;
  std::optional<std::uint32_t> exception_;
  std::optional<Error> hook_error_;
  bool in_loader_ = false;
  std::array<std::uint8_t, 8> data_{};

  std::thread thread_;
};

EmuVcpu::EmuVcpu(std::shared_ptr<Machine> machine, std::uint32_t id, std::unique_ptr<Engine> engine,
                 emu::Loader loader)
    : machine_(std::move(machine)),
      id_(id),
      engine_(std::move(engine)),
      loader_(std::move(loader)),
      lapic_(static_cast<std::uint8_t>(id)) {}

Result<std::unique_ptr<Vcpu>> EmuVcpu::create(std::shared_ptr<Machine> machine, std::uint32_t id) {
  CLOISTER_TRY(auto engine, Engine::open());
  CLOISTER_CHECK_OK(engine->save_reset_state());
  {
    std::lock_guard lock(machine->mutex);
    if (!machine->cpuid) {
      CLOISTER_TRY(machine->cpuid, CpuidModel::probe(*engine));
    }
  }
  // The FXSAVE image of a reset processor, as KVM gives a new vCPU: x87 control word 0x37f,
  // every tag empty, MXCSR 0x1f80 (the engine starts with zeros, which would unmask every SSE
  // exception).
  CLOISTER_CHECK_OK(engine->write(UC_X86_REG_FPCW, 0x37f));
  CLOISTER_CHECK_OK(engine->write(UC_X86_REG_FPTAG, 0xffff));
  CLOISTER_CHECK_OK(engine->write(UC_X86_REG_MXCSR, 0x1f80));
  CLOISTER_TRY(auto loader, emu::Loader::create());
  std::unique_ptr<EmuVcpu> vcpu(new EmuVcpu(machine, id, std::move(engine), std::move(loader)));
  CLOISTER_CHECK_OK(vcpu->attach());
  return std::unique_ptr<Vcpu>(std::move(vcpu));
}

// Maps the guest into the engine, installs the hooks and starts the engine thread.
Status EmuVcpu::attach() {
  std::vector<MemorySlot> slots;
  bool irqchip;
  {
    std::lock_guard lock(machine_->mutex);
    slots = machine_->slots;
    irqchip = machine_->irqchip;
  }
  top_ = std::max(std::uint64_t{1} << machine_->cpuid->physical_address_bits(),
                  emu::kLoaderAlias.end());
  for (const auto& slot : slots) top_ = std::max(top_, slot.guest_phys_addr + slot.size);
  emu::MmioHandler holes{[this](std::uint64_t gpa, unsigned size) {
                           return access(false, ExitReason::kMmio, gpa, size, 0);
                         },
                         [this](std::uint64_t gpa, unsigned size, std::uint64_t value) {
                           access(true, ExitReason::kMmio, gpa, size, value);
                         }};
  std::optional<emu::MmioHandler> lapic;
  if (irqchip)
    lapic = emu::MmioHandler{[this](std::uint64_t gpa, unsigned size) -> std::uint64_t {
                               return lapic_.read(gpa - emu::kLapicBase, size);
                             },
                             [this](std::uint64_t gpa, unsigned size, std::uint64_t value) {
                               if (auto ipi = lapic_.write(gpa - emu::kLapicBase, size,
                                                           static_cast<std::uint32_t>(value)))
                                 send(*ipi);
                             }};
  const emu::PageRange borrowable[] = {emu::kLoaderWindow, emu::kLoaderAlias};
  CLOISTER_TRY(map_, PhysicalMap::build(*engine_, slots, top_, std::move(holes), std::move(lapic),
                                        borrowable));
  CLOISTER_CHECK_OK(engine_->add_hook(UC_HOOK_BLOCK, reinterpret_cast<void*>(on_block), this));
  CLOISTER_CHECK_OK(
      engine_->add_hook(UC_HOOK_INSN, reinterpret_cast<void*>(on_in), this, UC_X86_INS_IN));
  CLOISTER_CHECK_OK(
      engine_->add_hook(UC_HOOK_INSN, reinterpret_cast<void*>(on_out), this, UC_X86_INS_OUT));
  CLOISTER_CHECK_OK(
      engine_->add_hook(UC_HOOK_INSN, reinterpret_cast<void*>(on_cpuid), this, UC_X86_INS_CPUID));
  CLOISTER_CHECK_OK(engine_->add_hook(UC_HOOK_INTR, reinterpret_cast<void*>(on_interrupt), this));
  CLOISTER_CHECK_OK(
      engine_->add_hook(UC_HOOK_MEM_WRITE_PROT, reinterpret_cast<void*>(on_rom_write), this));

  std::lock_guard lock(machine_->mutex);
  staged_regs_ = reset_regs(machine_->options.cpu_signature);
  staged_sregs_ = reset_sregs(id_ == 0);
  apic_base_ = staged_sregs_->apic_base;
  // With an interrupt controller every vCPU but the first waits for INIT and STARTUP, as under
  // KVM; without one, all start at the reset vector.
  waiting_for_sipi_ = irqchip && id_ != 0;
  machine_->vcpus.push_back(this);
  CLOISTER_TRY(thread_, start_sandboxed_thread(ThreadClass::kEmu, machine_->options.seccomp, {},
                                               [this] { engine_main(); }));
  return {};
}

EmuVcpu::~EmuVcpu() {
  {
    std::lock_guard lock(machine_->mutex);
    stopping_ = true;
    engine_cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(machine_->mutex);
  std::erase(machine_->vcpus, this);
}

// ---- the VMM's side ----

Result<VcpuExit> EmuVcpu::run() {
  std::unique_lock lock(machine_->mutex);
  // An I/O or MMIO access still pending is completed first, as KVM completes it on a KVM_RUN
  // with immediate_exit: the engine finishes the instruction and stops at the next block, so a
  // vCPU parked after kInterrupted sits on an instruction boundary (what a snapshot saves).
  if (exit_requested_ && !in_access_) return interrupted();
  run_requested_ = true;
  outcome_.reset();
  engine_cv_.notify_one();
  caller_cv_.wait(lock, [&] { return outcome_.has_value(); });
  Result<VcpuExit> outcome = std::move(*outcome_);
  outcome_.reset();
  return outcome;
}

void EmuVcpu::request_exit() {
  exit_requested_ = true;
  std::lock_guard lock(machine_->mutex);
  engine_cv_.notify_one();
}

void EmuVcpu::clear_exit_request() {
  exit_requested_ = false;
}

Result<x86::Regs> EmuVcpu::regs() const {
  std::lock_guard lock(machine_->mutex);
  if (staged_regs_) return *staged_regs_;
  return engine_->read_regs();
}

Status EmuVcpu::set_regs(const x86::Regs& regs) {
  std::lock_guard lock(machine_->mutex);
  if (in_access_)
    return Error("emu: set_regs on vCPU " + std::to_string(id_) +
                 ": an I/O or MMIO access is pending; run() completes it first");
  if (regs.rflags & kRflagsVm)
    return Error(
        "emu: set_regs: rflags.vm: the emulator's loader needs 0 (no virtual-8086 mode), "
        "found 1");
  staged_regs_ = regs;
  return {};
}

Status EmuVcpu::set_sregs(const x86::Sregs& sregs) {
  std::lock_guard lock(machine_->mutex);
  if (in_access_)
    return Error("emu: set_sregs on vCPU " + std::to_string(id_) +
                 ": an I/O or MMIO access is pending; run() completes it first");
  x86::Regs regs;
  if (staged_regs_) {
    regs = *staged_regs_;
  } else {
    CLOISTER_TRY(regs, engine_->read_regs());
  }
  CLOISTER_CHECK_OK(emu::check_loadable(regs, sregs, machine_->cpuid->writable_efer()));
  staged_regs_ = regs;
  staged_sregs_ = sregs;
  return {};
}

Status EmuVcpu::check_settable(const char* what) const {
  if (in_access_)
    return Error("emu: " + std::string(what) + " on vCPU " + std::to_string(id_) +
                 ": an I/O or MMIO access is pending; run() completes it first");
  return {};
}

Result<x86::Fpu> EmuVcpu::fpu() const {
  std::lock_guard lock(machine_->mutex);
  x86::Fpu f;
  std::uint16_t fcw = 0, fsw = 0, ftw = 0;
  CLOISTER_CHECK_OK(engine_->read_raw(UC_X86_REG_FPCW, &fcw));
  CLOISTER_CHECK_OK(engine_->read_raw(UC_X86_REG_FPSW, &fsw));
  CLOISTER_CHECK_OK(engine_->read_raw(UC_X86_REG_FPTAG, &ftw));
  CLOISTER_CHECK_OK(engine_->read_raw(UC_X86_REG_MXCSR, &f.mxcsr));
  f.fcw = fcw, f.fsw = fsw;
  // FXSAVE's abridged tag: one bit per register, set unless the full tag says empty (11b).
  for (int i = 0; i < 8; ++i)
    if (((ftw >> (2 * i)) & 3) != 3) f.ftw |= static_cast<std::uint8_t>(1u << i);
  for (int i = 0; i < 8; ++i)
    CLOISTER_CHECK_OK(
        engine_->read_raw(static_cast<uc_x86_reg>(UC_X86_REG_ST0 + i), f.fpr[i].data()));
  for (int i = 0; i < 16; ++i)
    CLOISTER_CHECK_OK(engine_->read_raw(
        static_cast<uc_x86_reg>(i < 8 ? UC_X86_REG_XMM0 + i : UC_X86_REG_XMM8 + i - 8),
        f.xmm[i].data()));
  return f;
}

Status EmuVcpu::set_fpu(const x86::Fpu& f) {
  std::lock_guard lock(machine_->mutex);
  CLOISTER_CHECK_OK(check_settable("set_fpu"));
  const std::uint16_t fcw = f.fcw, fsw = f.fsw;
  std::uint16_t ftw = 0;
  for (int i = 0; i < 8; ++i)
    if (!(f.ftw & (1u << i))) ftw |= static_cast<std::uint16_t>(3u << (2 * i));
  CLOISTER_CHECK_OK(engine_->write_raw(UC_X86_REG_FPCW, &fcw));
  CLOISTER_CHECK_OK(engine_->write_raw(UC_X86_REG_FPSW, &fsw));
  CLOISTER_CHECK_OK(engine_->write_raw(UC_X86_REG_FPTAG, &ftw));
  CLOISTER_CHECK_OK(engine_->write_raw(UC_X86_REG_MXCSR, &f.mxcsr));
  for (int i = 0; i < 8; ++i)
    CLOISTER_CHECK_OK(
        engine_->write_raw(static_cast<uc_x86_reg>(UC_X86_REG_ST0 + i), f.fpr[i].data()));
  for (int i = 0; i < 16; ++i)
    CLOISTER_CHECK_OK(engine_->write_raw(
        static_cast<uc_x86_reg>(i < 8 ? UC_X86_REG_XMM0 + i : UC_X86_REG_XMM8 + i - 8),
        f.xmm[i].data()));
  return {};
}

// The engine implements no XSAVE (CPUID leaf 1 ECX.XSAVE is clear), so XCR0 is x87 only.
Result<std::uint64_t> EmuVcpu::xcr0() const {
  return x86::kXcr0X87;
}

Status EmuVcpu::set_xcr0(std::uint64_t xcr0) {
  if (xcr0 != x86::kXcr0X87)
    return Error("emu: set_xcr0: expected " + hex(x86::kXcr0X87) +
                 " (the emulator has no XSAVE), found " + hex(xcr0));
  return {};
}

Result<std::vector<x86::Msr>> EmuVcpu::msrs(std::span<const std::uint32_t> indices) const {
  std::lock_guard lock(machine_->mutex);
  std::vector<x86::Msr> out;
  for (std::uint32_t index : indices) {
    CLOISTER_TRY(std::uint64_t value, engine_->read_msr(index));
    out.push_back({index, value});
  }
  return out;
}

Status EmuVcpu::set_msrs(std::span<const x86::Msr> msrs) {
  std::lock_guard lock(machine_->mutex);
  CLOISTER_CHECK_OK(check_settable("set_msrs"));
  for (const x86::Msr& m : msrs) CLOISTER_CHECK_OK(engine_->write_msr(m.index, m.value));
  return {};
}

Result<x86::DebugRegs> EmuVcpu::debug_regs() const {
  std::lock_guard lock(machine_->mutex);
  x86::DebugRegs d;
  for (int i = 0; i < 4; ++i) {
    CLOISTER_TRY(d.db[i], engine_->read(static_cast<uc_x86_reg>(UC_X86_REG_DR0 + i)));
  }
  CLOISTER_TRY(d.dr6, engine_->read(UC_X86_REG_DR6));
  CLOISTER_TRY(d.dr7, engine_->read(UC_X86_REG_DR7));
  return d;
}

Status EmuVcpu::set_debug_regs(const x86::DebugRegs& d) {
  std::lock_guard lock(machine_->mutex);
  CLOISTER_CHECK_OK(check_settable("set_debug_regs"));
  for (int i = 0; i < 4; ++i)
    CLOISTER_CHECK_OK(engine_->write(static_cast<uc_x86_reg>(UC_X86_REG_DR0 + i), d.db[i]));
  CLOISTER_CHECK_OK(engine_->write(UC_X86_REG_DR6, d.dr6));
  return engine_->write(UC_X86_REG_DR7, d.dr7);
}

// emu has no separate "before INIT" state: an AP waits for STARTUP from the start.
Result<MpState> EmuVcpu::mp_state() const {
  std::lock_guard lock(machine_->mutex);
  if (waiting_for_sipi_) return MpState::kWaitForSipi;
  return halted_ ? MpState::kHalted : MpState::kRunnable;
}

Status EmuVcpu::set_mp_state(MpState state) {
  std::lock_guard lock(machine_->mutex);
  CLOISTER_CHECK_OK(check_settable("set_mp_state"));
  waiting_for_sipi_ = state == MpState::kWaitForSipi || state == MpState::kUninitialized;
  halted_ = state == MpState::kHalted;
  return {};
}

Result<Bytes> EmuVcpu::lapic_state() const {
  std::lock_guard lock(machine_->mutex);
  if (!machine_->irqchip) return Bytes{};
  const auto image = lapic_.image();
  return Bytes(image.begin(), image.end());
}

Status EmuVcpu::set_lapic_state(ByteView image) {
  std::lock_guard lock(machine_->mutex);
  CLOISTER_CHECK_OK(check_settable("set_lapic_state"));
  if (!machine_->irqchip)
    return Error("emu: set_lapic_state on vCPU " + std::to_string(id_) +
                 ": the VM has no irqchip, so its vCPUs have no local APIC");
  std::array<std::uint8_t, emu::LocalApic::kImageSize> registers{};
  if (image.size() != registers.size())
    return Error("emu: set_lapic_state: expected a " + std::to_string(registers.size()) +
                 "-byte register image, found " + std::to_string(image.size()) + " bytes");
  std::copy(image.begin(), image.end(), registers.begin());
  lapic_.load(registers);
  return {};
}

Status EmuVcpu::set_xsave_state(ByteView image) {
  if (!image.empty())
    return Error(
        "emu: set_xsave_state: expected an empty XSAVE area (the emulator has no XSAVE), "
        "found " +
        std::to_string(image.size()) + " bytes");
  return {};
}

// The hidden part of a segment register the guest may have reloaded since the loader ran:
// what that load produced.
x86::Segment EmuVcpu::live_segment(const x86::Segment& loaded, std::uint16_t selector,
                                   bool protected_mode, const uc_x86_mmr& gdtr,
                                   const uc_x86_mmr& ldtr) const {
  const bool loaded_protected = loaded_.cr0 & x86::kCr0Pe;
  if (selector == loaded.selector && protected_mode == loaded_protected) return loaded;
  x86::Segment s = loaded;
  s.selector = selector;
  if (!protected_mode) {
    s.base = std::uint64_t{selector} << 4;  // a real-mode load keeps limit and attributes
    return s;
  }
  s = x86::Segment{};
  s.selector = selector;
  s.unusable = true;
  if ((selector & ~3u) == 0) return s;  // a null selector loads an unusable segment
  const uc_x86_mmr& table = (selector & 4) ? ldtr : gdtr;
  std::uint64_t d = 0;
  if (!engine_->read_memory(table.base + (selector & ~7u), &d, sizeof d)) return s;
  const auto high = static_cast<std::uint32_t>(d >> 32), low = static_cast<std::uint32_t>(d);
  s.base = (low >> 16) | ((high & 0xff) << 16) | (high & 0xff000000);
  s.g = high & (1u << 23);
  const std::uint32_t limit = (low & 0xffff) | (high & 0xf0000);
  s.limit = s.g ? (limit << 12) | 0xfff : limit;
  s.type = (high >> 8) & 0xf;
  s.s = high & (1u << 12);
  s.dpl = (high >> 13) & 3;
  s.present = high & (1u << 15);
  s.l = high & (1u << 21);
  s.db = high & (1u << 22);
  s.unusable = !s.present;
  return s;
}

Result<x86::Sregs> EmuVcpu::sregs() const {
  std::lock_guard lock(machine_->mutex);
  if (staged_sregs_) return *staged_sregs_;
  x86::Sregs s = loaded_;
  const std::pair<uc_x86_reg, std::uint64_t*> control[] = {{UC_X86_REG_CR0, &s.cr0},
                                                           {UC_X86_REG_CR2, &s.cr2},
                                                           {UC_X86_REG_CR3, &s.cr3},
                                                           {UC_X86_REG_CR4, &s.cr4}};
  for (const auto& [reg, field] : control) {
    CLOISTER_TRY(*field, engine_->read(reg));
  }
  CLOISTER_TRY(s.efer, engine_->read_msr(0xc0000080));
  uc_x86_mmr gdtr{}, idtr{}, ldtr{}, tr{};
  CLOISTER_CHECK_OK(engine_->read_raw(UC_X86_REG_GDTR, &gdtr));
  CLOISTER_CHECK_OK(engine_->read_raw(UC_X86_REG_IDTR, &idtr));
  CLOISTER_CHECK_OK(engine_->read_raw(UC_X86_REG_LDTR, &ldtr));
  CLOISTER_CHECK_OK(engine_->read_raw(UC_X86_REG_TR, &tr));
  s.gdt = {gdtr.base, static_cast<std::uint16_t>(gdtr.limit)};
  s.idt = {idtr.base, static_cast<std::uint16_t>(idtr.limit)};
  for (auto [mmr, seg] : {std::pair{&ldtr, &s.ldt}, std::pair{&tr, &s.tr}}) {
    seg->selector = mmr->selector;
    seg->base = mmr->base;
    seg->limit = mmr->limit;
    seg->type = (mmr->flags >> 8) & 0xf;
    seg->s = mmr->flags & (1u << 12);
    seg->dpl = (mmr->flags >> 13) & 3;
    seg->present = mmr->flags & (1u << 15);
    seg->l = mmr->flags & (1u << 21);
    seg->db = mmr->flags & (1u << 22);
    seg->g = mmr->flags & (1u << 23);
    seg->unusable = !seg->present;
  }
  const bool protected_mode = s.cr0 & x86::kCr0Pe;
  const std::pair<uc_x86_reg, x86::Segment x86::Sregs::*> segments[] = {
      {UC_X86_REG_CS, &x86::Sregs::cs}, {UC_X86_REG_DS, &x86::Sregs::ds},
      {UC_X86_REG_ES, &x86::Sregs::es}, {UC_X86_REG_FS, &x86::Sregs::fs},
      {UC_X86_REG_GS, &x86::Sregs::gs}, {UC_X86_REG_SS, &x86::Sregs::ss}};
  for (const auto& [reg, field] : segments) {
    CLOISTER_TRY(std::uint64_t selector, engine_->read(reg));
    s.*field = live_segment(loaded_.*field, static_cast<std::uint16_t>(selector), protected_mode,
                            gdtr, ldtr);
  }
  CLOISTER_TRY(s.fs.base, engine_->read(UC_X86_REG_FS_BASE));
  CLOISTER_TRY(s.gs.base, engine_->read(UC_X86_REG_GS_BASE));
  s.cr8 = lapic_.tpr() >> 4;
  s.apic_base = apic_base_;
  return s;
}

// ---- the engine thread ----

void EmuVcpu::engine_main() {
  std::unique_lock lock(machine_->mutex);
  for (;;) {
    engine_cv_.wait(lock, [&] { return run_requested_ || stopping_; });
    if (stopping_) return;
    publish(execute(lock));
  }
}

void EmuVcpu::publish(Result<VcpuExit> outcome) {
  outcome_ = std::move(outcome);
  run_requested_ = false;
  caller_cv_.notify_one();
}

// Runs guest code until something the VMM must see.
Result<VcpuExit> EmuVcpu::execute(std::unique_lock<std::mutex>& lock) {
  for (;;) {
    if (stopping_) return Error("emu: vCPU " + std::to_string(id_) + " is being destroyed");
    if (exit_requested_) return interrupted();
    take_events();
    if (halted_ || waiting_for_sipi_) {
      engine_cv_.wait(lock, [&] { return attention(); });
      continue;
    }
    if (!acquire_vm(lock, /*interruptible=*/true)) continue;
    if (exit_requested_) {
      release_vm();
      continue;
    }
    auto regs = std::exchange(staged_regs_, std::nullopt);
    auto sregs = std::exchange(staged_sregs_, std::nullopt);
    lock.unlock();
    Result<Stretch> stretch = run_stretch(std::move(regs), std::move(sregs));
    lock.lock();
    release_vm();
    if (!stretch) return stretch.error();
    switch (stretch->end) {
      case Stretch::End::kContinue:
        break;
      case Stretch::End::kHalted:
        halted_ = true;
        break;
      case Stretch::End::kExit:
        return std::move(stretch->exit);
    }
  }
}

// INIT and STARTUP IPIs, in the order they arrived.
void EmuVcpu::take_events() {
  events_pending_ = false;
  for (const Ipi& ipi : events_) {
    if (ipi.kind == Ipi::Kind::kInit) {
      init();
    } else if (waiting_for_sipi_) {  // a STARTUP outside wait-for-SIPI is ignored
      x86::Regs regs = *staged_regs_;
      x86::Sregs sregs = *staged_sregs_;
      startup_state(ipi.vector, regs, sregs);
      staged_regs_ = regs;
      staged_sregs_ = sregs;
      waiting_for_sipi_ = false;
    }
  }
  events_.clear();
}

// INIT (SDM vol. 3A §9.1): the reset state, x87/SSE state kept by the loader; the boot vCPU
// runs from the reset vector, the others wait for STARTUP (KVM's behaviour).
void EmuVcpu::init() {
  staged_regs_ = reset_regs(machine_->options.cpu_signature);
  staged_sregs_ = reset_sregs(id_ == 0);
  lapic_.reset();
  halted_ = false;
  waiting_for_sipi_ = id_ != 0;
}

// One stretch of guest code with the VM held and machine->mutex free: the staged state first,
// then until a stop. I/O and MMIO exits happen inside, in the hooks.
Result<EmuVcpu::Stretch> EmuVcpu::run_stretch(std::optional<x86::Regs> regs,
                                              std::optional<x86::Sregs> sregs) {
  if (sregs) {
    in_loader_ = true;
    Status loaded =
        loader_.load(*engine_, *map_, *regs, *sregs, machine_->cpuid->writable_efer(), exception_);
    in_loader_ = false;
    CLOISTER_CHECK_OK(loaded);
    lapic_.set_tpr(static_cast<std::uint32_t>(sregs->cr8 << 4));
    std::lock_guard lock(machine_->mutex);
    loaded_ = *sregs;
    apic_base_ = sregs->apic_base;
  } else if (regs) {
    CLOISTER_CHECK_OK(engine_->write_regs(*regs));
  }
  CLOISTER_TRY(std::uint64_t rip, engine_->read(UC_X86_REG_RIP));
  stop_cause_ = StopCause::kNone;
  exception_.reset();
  slice_left_ = kSliceBlocks;
  const uc_err err = engine_->start(rip, emu::kNoStopAddress);
  if (hook_error_) return std::exchange(hook_error_, std::nullopt).value();
  Stretch stretch;
  if (exception_ || err == UC_ERR_INSN_INVALID) {
    CLOISTER_TRY(stretch.exit, fault_exit(exception_.value_or(kInvalidOpcode)));
    stretch.end = Stretch::End::kExit;
    return stretch;
  }
  if (memory_error(err)) {
    stretch.exit.reason = ExitReason::kInternalError;
    stretch.exit.suberror = KVM_INTERNAL_ERROR_EMULATION;
    stretch.exit.detail =
        emu::unicorn_error("emu: uc_emu_start", err).message() +
        " (instructions run from RAM and firmware only, and guest-physical addresses end at " +
        hex(top_) + ")";
    stretch.end = Stretch::End::kExit;
    return stretch;
  }
  if (err != UC_ERR_OK)
    return emu::unicorn_error("uc_emu_start (vCPU " + std::to_string(id_) + ")", err);
  if (stop_cause_ != StopCause::kNone) return stretch;
  // Nothing stopped the engine but the guest: HLT.
  bool irqchip;
  {
    std::lock_guard lock(machine_->mutex);
    irqchip = machine_->irqchip;
  }
  if (irqchip) {
    stretch.end = Stretch::End::kHalted;
  } else {
    stretch.exit.reason = ExitReason::kHalt;
    stretch.end = Stretch::End::kExit;
  }
  return stretch;
}

// An exception the engine raised and emu cannot deliver. A processor whose IDT holds neither the
// exception's gate, nor #GP's, nor #DF's shuts down (a triple fault, SDM vol. 3A §6.15); any
// other exception would have reached a guest handler.
Result<VcpuExit> EmuVcpu::fault_exit(std::uint32_t vector) {
  CLOISTER_TRY(std::uint64_t cr0, engine_->read(UC_X86_REG_CR0));
  CLOISTER_TRY(std::uint64_t efer, engine_->read_msr(0xc0000080));
  uc_x86_mmr idtr{};
  CLOISTER_CHECK_OK(engine_->read_raw(UC_X86_REG_IDTR, &idtr));
  const std::uint64_t gate = (efer & x86::kEferLma) ? 16 : (cr0 & x86::kCr0Pe) ? 8 : 4;
  auto holds = [&](std::uint32_t v) { return idtr.limit >= v * gate + gate - 1; };
  VcpuExit exit;
  if (!holds(vector) && !holds(kGeneralProtection) && !holds(kDoubleFault)) {
    exit.reason = ExitReason::kShutdown;
    exit.detail = "emu: exception " + exception_name(vector) + " with an IDT limit of " +
                  hex(idtr.limit) +
                  ", which holds neither its gate nor #GP's nor #DF's: "
                  "triple fault";
  } else {
    exit.reason = ExitReason::kInternalError;
    exit.suberror = KVM_INTERNAL_ERROR_DELIVERY_EV;
    exit.detail = "emu: the guest raised exception " + exception_name(vector) +
                  ", and emu does not deliver exceptions to the guest";
  }
  return exit;
}

// ---- the VM: one vCPU executes at a time ----

bool EmuVcpu::acquire_vm(std::unique_lock<std::mutex>& lock, bool interruptible) {
  Machine& m = *machine_;
  if (!m.owner && m.waiting.empty()) {
    m.owner = this;
    return true;
  }
  m.waiting.push_back(this);
  m.contended = true;
  engine_cv_.wait(lock, [&] { return m.owner == this || (interruptible && attention()); });
  if (m.owner == this) return true;
  std::erase(m.waiting, this);
  m.contended = !m.waiting.empty();
  return false;
}

void EmuVcpu::release_vm() {
  Machine& m = *machine_;
  m.owner = nullptr;
  if (m.waiting.empty()) return;
  m.owner = m.waiting.front();
  m.waiting.pop_front();
  m.contended = !m.waiting.empty();
  m.owner->engine_cv_.notify_one();
}

// ---- hooks ----

void EmuVcpu::stop(StopCause cause) {
  stop_cause_ = cause;
  engine_->stop();
}

void EmuVcpu::hook_failed(Error error) {
  if (!hook_error_) hook_error_ = std::move(error);
  stop(StopCause::kAttention);
}

void EmuVcpu::on_block(uc_engine*, std::uint64_t, std::uint32_t, void* self) {
  auto* v = static_cast<EmuVcpu*>(self);
  if (v->in_loader_) return;
  if (v->exit_requested_.load(std::memory_order_relaxed) ||
      v->events_pending_.load(std::memory_order_relaxed) ||
      v->stopping_.load(std::memory_order_relaxed))
    return v->stop(StopCause::kAttention);
  if (--v->slice_left_ == 0) {
    v->slice_left_ = kSliceBlocks;
    if (v->machine_->contended.load(std::memory_order_relaxed)) v->stop(StopCause::kYield);
  }
}

// Publishes `exit` to the run() in progress and waits for the next run(), which completes the
// access; the VM is free meanwhile. False when the vCPU is being destroyed instead.
bool EmuVcpu::exchange(const VcpuExit& exit) {
  std::unique_lock lock(machine_->mutex);
  if (stopping_) {
    stop(StopCause::kAttention);
    return false;
  }
  release_vm();
  in_access_ = true;
  publish(exit);
  engine_cv_.wait(lock, [&] { return run_requested_ || stopping_; });
  in_access_ = false;
  acquire_vm(lock, /*interruptible=*/false);
  if (stopping_) {
    stop(StopCause::kAttention);
    return false;
  }
  return true;
}

std::uint64_t EmuVcpu::access(bool is_write, ExitReason reason, std::uint64_t address,
                              unsigned size, std::uint64_t value) {
  VcpuExit exit;
  exit.reason = reason;
  exit.is_write = is_write;
  exit.address = address;
  exit.size = size;
  exit.data = {data_.data(), size};
  data_.fill(0);
  if (is_write) std::memcpy(data_.data(), &value, size);
  if (!exchange(exit) || is_write) return 0xffffffffffffffffull;
  std::uint64_t result = 0;
  std::memcpy(&result, data_.data(), size);
  return result;
}

std::uint32_t EmuVcpu::on_in(uc_engine*, std::uint32_t port, int size, void* self) {
  return static_cast<std::uint32_t>(static_cast<EmuVcpu*>(self)->access(
      false, ExitReason::kIo, port, static_cast<unsigned>(size), 0));
}

void EmuVcpu::on_out(uc_engine*, std::uint32_t port, int size, std::uint32_t value, void* self) {
  static_cast<EmuVcpu*>(self)->access(true, ExitReason::kIo, port, static_cast<unsigned>(size),
                                      value);
}

// A write to read-only memory: an MMIO write exit, after which the engine drops the write (as
// KVM does for KVM_MEM_READONLY slots). Linear and physical addresses are one on this engine.
bool EmuVcpu::on_rom_write(uc_engine*, uc_mem_type, std::uint64_t address, int size,
                           std::int64_t value, void* self) {
  static_cast<EmuVcpu*>(self)->access(true, ExitReason::kMmio, address, static_cast<unsigned>(size),
                                      static_cast<std::uint64_t>(value));
  return true;
}

int EmuVcpu::on_cpuid(uc_engine*, void* self) {
  auto* v = static_cast<EmuVcpu*>(self);
  auto leaf = v->engine_->read(UC_X86_REG_RAX);
  auto subleaf = v->engine_->read(UC_X86_REG_RCX);
  if (!leaf || !subleaf) {
    v->hook_failed(leaf ? subleaf.error() : leaf.error());
    return 0;
  }
  emu::CpuidCaller caller;
  caller.apic_id = v->id_;
  caller.vcpus = v->machine_->vcpu_count;
  caller.signature = v->machine_->options.cpu_signature;
  {
    std::lock_guard lock(v->machine_->mutex);
    caller.apic = v->machine_->irqchip;
  }
  auto answer = v->machine_->cpuid->answer(static_cast<std::uint32_t>(*leaf),
                                           static_cast<std::uint32_t>(*subleaf), caller);
  if (!answer) return 0;
  const std::pair<uc_x86_reg, std::uint32_t> results[] = {{UC_X86_REG_RAX, answer->eax},
                                                          {UC_X86_REG_RBX, answer->ebx},
                                                          {UC_X86_REG_RCX, answer->ecx},
                                                          {UC_X86_REG_RDX, answer->edx}};
  for (const auto& [reg, value] : results)
    if (auto st = v->engine_->write(reg, value); !st) v->hook_failed(st.error());
  return 1;
}

void EmuVcpu::on_interrupt(uc_engine*, std::uint32_t vector, void* self) {
  auto* v = static_cast<EmuVcpu*>(self);
  v->exception_ = vector;
  v->engine_->stop();
}

// ---- IPIs ----

void EmuVcpu::send(const Ipi& ipi) {
  std::lock_guard lock(machine_->mutex);
  for (EmuVcpu* target : machine_->vcpus) {
    const bool self = target == this;
    bool addressed = false;
    switch (ipi.destination) {
      case Ipi::Destination::kId:
        addressed = ipi.id == 0xff || target->id_ == ipi.id;
        break;
      case Ipi::Destination::kSelf:
        addressed = self;
        break;
      case Ipi::Destination::kAllIncludingSelf:
        addressed = true;
        break;
      case Ipi::Destination::kAllExcludingSelf:
        addressed = !self;
        break;
    }
    if (addressed) target->post(ipi);
  }
}

void EmuVcpu::post(const Ipi& ipi) {
  events_.push_back(ipi);
  events_pending_ = true;
  engine_cv_.notify_one();
}

// ---- VM and hypervisor ----

class EmuVm final : public Vm {
 public:
  explicit EmuVm(std::shared_ptr<Machine> machine) : machine_(std::move(machine)) {}

  // The local APICs only; there is no IOAPIC, PIC or i8254 (`pit`): their ports and pages
  // reach the VMM as ordinary exits.
  Status create_irqchip(bool /*pit*/) override {
    std::lock_guard lock(machine_->mutex);
    if (!machine_->vcpus.empty())
      return Error(
          "emu: create_irqchip after create_vcpu: the local APICs are mapped when each "
          "vCPU is created");
    machine_->irqchip = true;
    return {};
  }

  Result<std::unique_ptr<Vcpu>> create_vcpu(std::uint32_t id) override {
    {
      std::lock_guard lock(machine_->mutex);
      if (id >= machine_->vcpu_count)
        return Error("emu: create_vcpu: vCPU id " + std::to_string(id) + " in a VM created for " +
                     std::to_string(machine_->vcpu_count) + " vCPUs");
      for (const EmuVcpu* v : machine_->vcpus)
        if (v->id() == id) return Error("emu: create_vcpu: vCPU " + std::to_string(id) + " exists");
    }
    return EmuVcpu::create(machine_, id);
  }

  Status map_memory(const MemorySlot& slot) override {
    if (slot.guest_memfd)
      return Error("emu: map_memory (slot " + std::to_string(slot.slot) +
                   "): guest_memfd-backed memory needs KVM; the emulator has no private memory");
    if (slot.size == 0 || (slot.guest_phys_addr | slot.size) % 4096 != 0)
      return Error("emu: map_memory (slot " + std::to_string(slot.slot) +
                   "): expected a non-empty range of whole 4 KiB pages, found " +
                   hex(slot.guest_phys_addr) + " + " + hex(slot.size));
    std::lock_guard lock(machine_->mutex);
    if (!machine_->vcpus.empty())
      return Error(
          "emu: map_memory after create_vcpu: each vCPU maps guest memory when it is "
          "created");
    for (const auto& other : machine_->slots)
      if (other.slot == slot.slot || (slot.guest_phys_addr < other.guest_phys_addr + other.size &&
                                      other.guest_phys_addr < slot.guest_phys_addr + slot.size))
        return Error("emu: map_memory (slot " + std::to_string(slot.slot) + "): overlaps slot " +
                     std::to_string(other.slot));
    machine_->slots.push_back(slot);
    return {};
  }

  // The engine's CPUID as vCPU 0 sees it; empty until the first vCPU exists (the engine is
  // probed then).
  std::vector<std::array<std::uint32_t, 6>> cpuid() const override {
    std::lock_guard lock(machine_->mutex);
    if (!machine_->cpuid) return {};
    emu::CpuidCaller caller;
    caller.vcpus = machine_->vcpu_count;
    caller.signature = machine_->options.cpu_signature;
    caller.apic = machine_->irqchip;
    return machine_->cpuid->table(caller);
  }

 protected:
  // Private memory (guest_memfd) and the SEV-SNP/TDX launch operations keep the base class's
  // refusal: confidential guests run on emu through the simulated secure processor (tee
  // sim-snp or sim-tdx), which uses plain memory.
  std::string_view hypervisor_name() const override { return "emu"; }

  Status set_irq_line(std::uint32_t irq, bool level) override {
    std::lock_guard lock(machine_->mutex);
    machine_->irq_lines[irq] = level;
    return {};
  }
  std::vector<Ioctl> irq_ioctls() const override { return {}; }

  // No in-kernel devices to save: the lines in irq_lines are re-driven by the devices, whose
  // own state a snapshot restores.
  Result<VmPlatformState> save_state() const override { return VmPlatformState{}; }
  Status restore_state(const VmPlatformState& state) override {
    if (!state.components.empty())
      return Error(
          "emu: VM state: expected no components (the emulator has no in-kernel "
          "interrupt controllers, PIT or clock), found " +
          std::to_string(state.components.size()) + ", first \"" + state.components.begin()->first +
          "\"");
    return {};
  }
  std::vector<Ioctl> state_ioctls() const override { return {}; }

 private:
  std::shared_ptr<Machine> machine_;
};

class EmuHypervisor final : public Hypervisor {
 public:
  explicit EmuHypervisor(const EmuOptions& options) : options_(options) {}

  std::string_view name() const override { return "emu"; }

  Result<std::unique_ptr<Vm>> create_vm(const VmOptions& options) override {
    if (options.machine_type != 0)
      return Error("emu: VM type " + std::to_string(options.machine_type) +
                   " is not supported: the emulator runs default VMs (type 0) only");
    if (options.vcpus == 0 || options.vcpus > 255)
      return Error("emu: vcpus: expected 1..255 (xAPIC IDs), found " +
                   std::to_string(options.vcpus));
    return std::unique_ptr<Vm>(new EmuVm(std::make_shared<Machine>(options_, options.vcpus)));
  }

 private:
  EmuOptions options_;
};

}  // namespace

Result<std::unique_ptr<Hypervisor>> open_emulator(const EmuOptions& options) {
  CLOISTER_CHECK_OK(emu::load_unicorn());
  return std::unique_ptr<Hypervisor>(new EmuHypervisor(options));
}

}  // namespace cloister::vmm
