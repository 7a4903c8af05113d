// The hypervisor abstraction (Cloud Hypervisor's hypervisor crate in spirit): a Hypervisor
// creates Vms, a Vm owns memory slots, interrupt controllers and Vcpus, a Vcpu runs guest code
// until an exit the VMM must handle. KVM lives behind open_kvm(), the software emulator behind
// open_emulator() (emu.h); SEV-SNP and TDX are variations inside this interface (the VM type,
// launch operations, private memory), not forks of the VMM: a TeeBackend drives them (tee/tee.h).
//
// Contract for every method: errors are returned as values naming the operation (the ioctl for
// KVM), the OS error and, for secure-processor commands, the firmware or TDX module status
// ("SNP_LAUNCH_UPDATE (GPA 0x…): Input/output error (errno 5), firmware status 0x16
// INVALID_PARAM"); no method throws.
// Confidential-computing operations a hypervisor does not provide fail with "<hypervisor>:
// <operation> is not supported" (the default implementations below).
//
// Private/shared conversions are the hypervisor's business: a guest's page-state change
// (KVM_HC_MAP_GPA_RANGE) or an access that does not match a page's current state (a memory
// fault) is converted and re-entered inside Vcpu::run(), invisible to the VMM.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cloister/common/bytes.h"
#include "cloister/common/result.h"
#include "cloister/vmm/arch/x86/regs.h"
#include "cloister/vmm/fd.h"
#include "cloister/vmm/hypervisor/dirty_log.h"

namespace cloister::vmm {

// Why Vcpu::run() returned.
enum class ExitReason {
  kIo,               // port I/O: port, size, count, is_write, data
  kMmio,             // access to a guest-physical address with no memory: address, is_write, data
  kHalt,             // HLT with no in-kernel interrupt controller to wait on
  kShutdown,         // triple fault or other shutdown condition
  kSystemEvent,      // system_event (and system_event_data)
  kInternalError,    // the hypervisor could not handle the exit (e.g. emulation failure)
  kFailEntry,        // VM entry failed: hardware_reason
  kInterrupted,      // request_exit() or a signal; no guest state changed
  kTdxVmcall,        // a TDG.VP.VMCALL the VMM serves: tdx_vmcall; answer with complete_exit()
  kSnpCertificates,  // an SNP extended guest request wants certificates: snp_certificates;
                     // answer with complete_exit()
  kOther,            // any other exit: raw_reason holds the hypervisor's code
};

std::string_view exit_reason_name(ExitReason reason);

enum class SystemEvent {
  kShutdown,      // the guest powered off (ACPI, PSCI-like events)
  kReset,         // the guest asked for a reset
  kCrash,         // the guest reported a crash
  kSevTerminate,  // an SEV-ES/SNP guest's GHCB termination request (data: reason set/code)
  kTdxFatal,      // TDG.VP.VMCALL<ReportFatalError> (data: the guest's GPRs)
  kOther,         // raw type in system_event_type
};

std::string_view system_event_name(SystemEvent event);

// TDG.VP.VMCALL<GetQuote> (GHCI 1.5): `gpa` is the shared buffer (shared bit stripped), `size`
// its length. TDG.VP.VMCALL<SetupEventNotifyInterrupt>: `vector`.
struct TdxVmcall {
  std::uint64_t subfunction = 0;  // R11: 0x10002 GetQuote, 0x10004 SetupEventNotifyInterrupt
  std::uint64_t gpa = 0;
  std::uint64_t size = 0;
  std::uint64_t vector = 0;
};

// KVM_EXIT_SNP_REQ_CERTS (Linux 7.0): write the GHCB certificate table into [gpa, gpa +
// npages * 4 KiB), then complete_exit(0); or complete_exit(ENOSPC, pages needed).
struct SnpCertificateRequest {
  std::uint64_t gpa = 0;
  std::uint64_t npages = 0;
};

// One exit. `data` points into the vCPU's shared run area and is valid until the next run():
// for reads (I/O IN, MMIO read) the VMM fills it and the value reaches the guest on re-entry.
struct VcpuExit {
  ExitReason reason = ExitReason::kOther;
  std::uint32_t raw_reason = 0;
  bool is_write = false;
  std::uint64_t address = 0;  // port or guest-physical address
  std::uint32_t size = 0;     // bytes per access
  std::uint32_t count = 1;    // repetitions (string I/O); data holds size * count bytes
  std::span<std::uint8_t> data;
  SystemEvent system_event = SystemEvent::kOther;
  std::uint32_t system_event_type = 0;
  std::vector<std::uint64_t> system_event_data;
  std::uint32_t suberror = 0;         // kInternalError
  std::uint64_t hardware_reason = 0;  // kFailEntry
  TdxVmcall tdx_vmcall;
  SnpCertificateRequest snp_certificates;
  // kShutdown, kInternalError: the hypervisor's account of the fault when it has one (emu says
  // which exception or emulation error); empty from KVM.
  std::string detail;
};

// The owned file of a guest's private memory (KVM_CREATE_GUEST_MEMFD): it cannot be read or
// mapped by the host; closing it (destroying this object) releases the memory once no memory
// slot uses it.
class GuestMemfd {
 public:
  GuestMemfd(Fd fd, std::uint64_t size) : fd_(std::move(fd)), size_(size) {}
  int fd() const { return fd_.get(); }
  std::uint64_t size() const { return size_; }

 private:
  Fd fd_;
  std::uint64_t size_;
};

// An ioctl a thread issues once the guest runs: the descriptor and the request. Threads'
// seccomp filters permit exactly these pairs (seccomp/seccomp.h), so a hypervisor names here
// every ioctl its run-time methods make.
struct Ioctl {
  int fd = -1;
  unsigned long request = 0;
};

// A guest-physical range backed by host memory.
struct MemorySlot {
  std::uint32_t slot = 0;
  std::uint64_t guest_phys_addr = 0;
  std::uint64_t size = 0;
  void* host_address = nullptr;  // the shared backing
  bool read_only = false;
  // Private backing for confidential guests, from [guest_memfd_offset, + size) of this file.
  // The slot keeps the file open.
  std::shared_ptr<const GuestMemfd> guest_memfd;
  std::uint64_t guest_memfd_offset = 0;
};

// SEV-SNP launch parameters in KVM's terms (research/vmm.md §a.4).
struct SevInit2 {
  std::uint64_t vmsa_features = 0;  // SEV_FEATURES of every VMSA, SNP_ACTIVE excluded
  std::uint16_t ghcb_version = 2;
};

struct SnpLaunchStartParams {
  std::uint64_t policy = 0;
};

struct SnpLaunchFinishParams {
  std::optional<std::array<std::uint8_t, 96>> id_block;   // with id_auth
  std::optional<std::array<std::uint8_t, 4096>> id_auth;  // ID and author key signatures
  bool author_key_enabled = false;
  bool vcek_disabled = false;  // reports signed with the VLEK
  std::array<std::uint8_t, 32> host_data{};
};

// TDX capabilities and TD parameters (research/vmm.md §a.7).
struct TdxCapabilities {
  std::uint64_t supported_attributes = 0;
  std::uint64_t supported_xfam = 0;
  std::uint64_t kernel_tdvmcallinfo_1_r11 = 0;
  std::uint64_t user_tdvmcallinfo_1_r11 = 0;
  // CPUID bits the host lets a TD configure: function, index, eax, ebx, ecx, edx.
  std::vector<std::array<std::uint32_t, 6>> configurable_cpuid;
};

struct TdxInitVmParams {
  std::uint64_t attributes = 0;
  std::uint64_t xfam = 0;
  std::array<std::uint8_t, 48> mr_config_id{};
  std::array<std::uint8_t, 48> mr_owner{};
  std::array<std::uint8_t, 48> mr_owner_config{};
  std::vector<std::array<std::uint32_t, 6>> cpuid;  // function, index, eax, ebx, ecx, edx
};

// A vCPU's multiprocessing state (KVM_MP_STATE_*, api.rst 4.38; SDM vol. 3A §9.4): an AP
// before INIT, an AP waiting for STARTUP after INIT, halted in HLT, or running.
enum class MpState { kUninitialized, kWaitForSipi, kHalted, kRunnable };

std::string_view mp_state_name(MpState state);

// What a vCPU holds between two instructions that its registers do not show (KVM_GET_VCPU_EVENTS,
// api.rst 4.31, struct kvm_vcpu_events): an exception or interrupt being delivered, NMI state,
// the one-instruction interrupt shadow after STI or MOV SS (SDM vol. 3A §6.8.3), and the vector
// of a STARTUP IPI. Lost, the guest misses an interrupt or takes one inside its shadow.
struct VcpuEvents {
  struct Exception {
    bool injected = false;
    bool pending = false;  // KVM reports it only with KVM_CAP_EXCEPTION_PAYLOAD, never enabled
    bool has_error_code = false;
    std::uint8_t vector = 0;
    std::uint32_t error_code = 0;
    bool operator==(const Exception&) const = default;
  } exception;
  struct Interrupt {
    bool injected = false;
    std::uint8_t vector = 0;
    bool soft = false;        // INTn rather than an external interrupt
    std::uint8_t shadow = 0;  // KVM_X86_SHADOW_INT_MOV_SS 1, KVM_X86_SHADOW_INT_STI 2
    bool operator==(const Interrupt&) const = default;
  } interrupt;
  struct Nmi {
    bool injected = false;
    bool pending = false;
    bool masked = false;
    bool operator==(const Nmi&) const = default;
  } nmi;
  std::uint32_t sipi_vector = 0;
  bool operator==(const VcpuEvents&) const = default;
};

// The time-stamp counter: its value (MSR_IA32_TSC, SDM vol. 4 table 2-2, MSR 10H) and its
// frequency (KVM_GET_TSC_KHZ), so a restored guest's TSC neither jumps back nor changes rate.
struct VcpuTsc {
  std::uint64_t value = 0;
  std::uint32_t khz = 0;
  bool operator==(const VcpuTsc&) const = default;
};

// Everything a snapshot records of one vCPU (Firecracker's VcpuState). `lapic` and `xsave` are
// the hypervisor's own images (KVM: struct kvm_lapic_state, 1 KiB, and struct kvm_xsave, 4 KiB;
// emu: the same 1 KiB register page and no XSAVE area), restored only into the hypervisor that
// wrote them; `msrs` are x86::kSnapshotMsrs.
struct VcpuState {
  x86::Regs regs;
  x86::Sregs sregs;
  x86::Fpu fpu;
  std::uint64_t xcr0 = x86::kXcr0X87;
  std::vector<x86::Msr> msrs;
  x86::DebugRegs debug_regs;
  MpState mp_state = MpState::kRunnable;
  Bytes lapic;
  Bytes xsave;
  // From hypervisors that have them (KVM); emu has neither.
  std::optional<VcpuEvents> events;
  std::optional<VcpuTsc> tsc;
};

// What a snapshot records of a VM beyond its vCPUs and memory: the in-kernel interrupt
// controllers, PIT and clock in the hypervisor's own images, by name (KVM: "pic_master",
// "pic_slave", "ioapic" from KVM_GET_IRQCHIP, "pit2" from KVM_GET_PIT2, "clock" from
// KVM_GET_CLOCK; emu: none, its device lines are re-driven by the devices).
struct VmPlatformState {
  std::map<std::string, Bytes> components;
};

class Vcpu {
 public:
  virtual ~Vcpu() = default;
  virtual std::uint32_t id() const = 0;

  // Runs guest code until an exit that needs the VMM. Must be called from one thread only.
  virtual Result<VcpuExit> run() = 0;

  // Makes the current or next run() return kInterrupted promptly. Safe to call from any thread;
  // the caller also signals the vCPU thread to break a run() already inside the kernel.
  virtual void request_exit() = 0;
  // Clears a request_exit(); called by the vCPU thread after it has seen kInterrupted.
  virtual void clear_exit_request() = 0;
  // The ioctls run(), regs(), sregs() and save_state() issue on the calling thread (entering
  // the guest, the register reads of a fault dump and of a snapshot, the private/shared
  // conversions run() makes): what the vCPU thread's seccomp filter permits. Valid once the VM
  // is built; empty for a hypervisor that issues none (emu runs guest code on threads of its
  // own).
  virtual std::vector<Ioctl> run_ioctls() const = 0;

  // Answers a kTdxVmcall (`ret`: the TDVMCALL status) or kSnpCertificates (`ret`: 0, ENOSPC
  // with `value` = pages needed, EAGAIN, EIO) before the next run(). Fails for other exits.
  virtual Status complete_exit(std::uint64_t ret, std::uint64_t value = 0);

  virtual Result<x86::Regs> regs() const = 0;
  virtual Status set_regs(const x86::Regs& regs) = 0;
  virtual Result<x86::Sregs> sregs() const = 0;
  virtual Status set_sregs(const x86::Sregs& sregs) = 0;
  // The state an SEV-ES VMSA also records (research/vmm.md §a.4: KVM builds each VMSA from it).
  virtual Result<x86::Fpu> fpu() const = 0;
  virtual Status set_fpu(const x86::Fpu& fpu) = 0;
  virtual Result<std::uint64_t> xcr0() const = 0;
  virtual Status set_xcr0(std::uint64_t xcr0) = 0;
  virtual Result<std::vector<x86::Msr>> msrs(std::span<const std::uint32_t> indices) const = 0;
  virtual Status set_msrs(std::span<const x86::Msr> msrs) = 0;
  virtual Result<x86::DebugRegs> debug_regs() const = 0;
  virtual Status set_debug_regs(const x86::DebugRegs& regs) = 0;
  virtual Result<MpState> mp_state() const = 0;
  virtual Status set_mp_state(MpState state) = 0;
  // The local APIC's register image (empty without an irqchip) and the XSAVE area (empty when
  // the hypervisor has none), in the hypervisor's own format (VcpuState).
  virtual Result<Bytes> lapic_state() const = 0;
  virtual Status set_lapic_state(ByteView image) = 0;
  virtual Result<Bytes> xsave_state() const = 0;
  virtual Status set_xsave_state(ByteView image) = 0;
  // Pending events and the TSC (VcpuEvents, VcpuTsc); std::nullopt from a hypervisor that has
  // none (the default), whose setters then refuse.
  virtual Result<std::optional<VcpuEvents>> events() const;
  virtual Status set_events(const VcpuEvents& events);
  virtual Result<std::optional<VcpuTsc>> tsc() const;
  virtual Status set_tsc(const VcpuTsc& tsc);

  // The whole vCPU state, for snapshots. Call only while the vCPU is parked with every exit
  // completed (its last run() returned kInterrupted), on the thread that runs it: the KVM ioctls
  // are in run_ioctls(). restore_state() is for a vCPU that has not run yet, in the order KVM
  // needs (the TSC's frequency and value, MSRs, special registers before the local APIC, which
  // depends on APIC_BASE, pending events before the MP state, as QEMU orders them).
  Result<VcpuState> save_state() const;
  Status restore_state(const VcpuState& state);

  // TDX: KVM_TDX_INIT_VCPU with the vCPU's initial RCX (the TD HOB's GPA).
  virtual Status tdx_init_vcpu(std::uint64_t rcx);
  // TDX: KVM_TDX_INIT_MEM_REGION of `source` (whole pages) at `gpa`, which must already be
  // private; `measure` extends every 256-byte chunk into MRTD. Issued on one vCPU for the VM.
  virtual Status tdx_init_mem_region(std::uint64_t gpa, ByteView source, bool measure);

 protected:
  // The name used in "not supported" errors.
  virtual std::string_view hypervisor_name() const = 0;
};

struct VmOptions {
  std::uint32_t vcpus = 1;         // checked against the host's limit
  unsigned long machine_type = 0;  // KVM_CREATE_VM type: 0 default, 4 SEV-SNP, 5 TDX
};

class Vm {
 public:
  virtual ~Vm() = default;

  // Creates the in-kernel local APICs, IOAPIC and PIC, and with `pit` the i8254 (Linux
  // calibrates its clocks against it). Call after map_memory() and before create_vcpu(): on
  // KVM, memory slots added after the irqchip cost milliseconds each.
  virtual Status create_irqchip(bool pit) = 0;
  // Creates vCPU `id` (also its APIC ID) with the host's supported CPUID, reset state.
  virtual Result<std::unique_ptr<Vcpu>> create_vcpu(std::uint32_t id) = 0;
  virtual Status map_memory(const MemorySlot& slot) = 0;
  // Drives interrupt line `irq` of the in-kernel PIC/IOAPIC.
  virtual Status set_irq_line(std::uint32_t irq, bool level) = 0;
  // The ioctls set_irq_line() issues, for the seccomp filters of every thread that raises an
  // interrupt (vCPU, device and main threads); empty when it issues none.
  virtual std::vector<Ioctl> irq_ioctls() const = 0;
  // The interrupt controllers', PIT's and clock's state (VmPlatformState), for snapshots: saved
  // while every vCPU is parked, restored after create_irqchip() and before any vCPU runs.
  virtual Result<VmPlatformState> save_state() const = 0;
  virtual Status restore_state(const VmPlatformState& state) = 0;
  // The ioctls save_state() issues, for the seccomp filter of the thread that saves it (the
  // first vCPU's); empty when it issues none.
  virtual std::vector<Ioctl> state_ioctls() const = 0;
  // The CPUID entries vCPUs get (function, index, eax, ebx, ecx, edx), before the per-vCPU APIC
  // ID is filled in: what an SNP CPUID page or a TD's CPUID configuration starts from.
  virtual std::vector<std::array<std::uint32_t, 6>> cpuid() const = 0;

  // --- dirty-page logging (live migration's pre-copy) -----------------------------------------

  // Whether this VM can log the guest's writes to its memory (KVM: plain VMs; not emu, whose
  // engine has no log, nor confidential VMs, whose private memory KVM cannot log).
  virtual bool supports_dirty_log() const;
  // Starts logging the guest's writes to every memory slot the guest can write (KVM:
  // KVM_MEM_LOG_DIRTY_PAGES, by registering each slot again with the flag). Read-only slots are
  // not logged: the guest cannot write them. Fails, with logging off on every slot, when a slot
  // refuses.
  virtual Status enable_dirty_log();
  // Each logged slot's pages the guest wrote since logging started or since the previous call,
  // and clears that record (KVM: KVM_GET_DIRTY_LOG, then KVM_CLEAR_DIRTY_LOG of the same bits
  // when KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 is enabled). A write racing the call is reported now
  // or by the next call, never lost. Call from one thread at a time.
  virtual Result<std::vector<SlotDirtyLog>> fetch_dirty_log();
  // Stops logging: every slot registered again with its own flags.
  virtual Status disable_dirty_log();
  // The ioctls the three calls above issue, for the seccomp filter of the thread that migrates
  // the VM; empty when the VM has no dirty log.
  virtual std::vector<Ioctl> dirty_log_ioctls() const;

  // --- confidential computing -----------------------------------------------------------------

  // A guest_memfd of `size` bytes for private memory.
  virtual Result<std::shared_ptr<const GuestMemfd>> create_guest_memfd(std::uint64_t size);
  // Lets the guest's page-state changes (KVM_HC_MAP_GPA_RANGE) reach run(), which converts
  // them. Call before any vCPU runs.
  virtual Status enable_private_memory_conversions();
  // Marks [gpa, gpa + size) private (backed by guest_memfd) or shared, and discards the stale
  // copy in the other backing.
  virtual Status set_memory_private(std::uint64_t gpa, std::uint64_t size, bool is_private);

  // SEV-SNP: KVM_SEV_INIT2, then SNP_LAUNCH_START (before any vCPU exists).
  virtual Status sev_init2(const SevInit2& params);
  virtual Status snp_launch_start(const SnpLaunchStartParams& params);
  // SNP_LAUNCH_UPDATE of `pages` (whole 4 KiB pages, already private) at `gpa` with page type
  // `type` (SNP ABI PAGE_TYPE), repeated until KVM has consumed every page. `pages` is
  // writable: when the firmware rejects a CPUID page (status INVALID_PARAM) it writes the
  // values it expects into it and KVM copies them back, so the caller can compare and retry.
  virtual Status snp_launch_update(std::uint64_t gpa, std::span<std::uint8_t> pages,
                                   std::uint8_t type);
  // SNP_LAUNCH_FINISH: measures every vCPU's VMSA from its register state, then finalizes.
  virtual Status snp_launch_finish(const SnpLaunchFinishParams& params);
  // Linux 7.0 KVM_SEV_SNP_ENABLE_REQ_CERTS: extended guest requests exit with kSnpCertificates.
  // Fails naming the missing kernel feature on older hosts.
  virtual Status snp_enable_certificate_requests();

  // TDX: capabilities, KVM_TDX_INIT_VM (before any vCPU), KVM_TDX_FINALIZE_VM (after every
  // INIT_MEM_REGION: MRTD is fixed and the TD becomes runnable).
  virtual Result<TdxCapabilities> tdx_capabilities();
  virtual Status tdx_init_vm(const TdxInitVmParams& params);
  virtual Status tdx_finalize_vm();

 protected:
  // The name used in "not supported" errors.
  virtual std::string_view hypervisor_name() const = 0;
};

class Hypervisor {
 public:
  virtual ~Hypervisor() = default;
  virtual std::string_view name() const = 0;
  virtual Result<std::unique_ptr<Vm>> create_vm(const VmOptions& options) = 0;
};

}  // namespace cloister::vmm
