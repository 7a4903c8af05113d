// A test double of the KVM system-call layer (KvmSys): it records every call with its payload
// and answers as a Linux 7.0 host with SEV-SNP and TDX would (research/vmm.md §a), so the KVM
// implementation and the TEE backends run unchanged on hosts without the hardware, and tests
// can compare the recorded command sequence with QEMU's.
//
// Every fd it hands out is a real file descriptor (a memfd), so the code under test may close
// it; the ioctls themselves never reach the kernel.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cloister/common/bytes.h"
#include "cloister/vmm/arch/x86/regs.h"
#include "cloister/vmm/hypervisor/kvm_sys.h"

namespace cloister::testing {

enum class FdRole { kKvm, kSev, kVm, kVcpu, kGuestMemfd };

struct RecordedCall {
  FdRole role = FdRole::kKvm;
  std::uint32_t vcpu = 0;     // kVcpu: the vCPU id
  std::string name;           // "KVM_CREATE_VM", "KVM_SEV_SNP_LAUNCH_UPDATE", "KVM_TDX_INIT_VM"…
  unsigned long request = 0;  // the ioctl number (0 for open/punch_hole/discard)
  Bytes payload;              // the argument struct as passed (for SEV/TDX: the inner struct)
  std::uint64_t value = 0;    // immediate arguments (KVM_CREATE_VM type, INIT_VCPU RCX, …)
  Bytes data;                 // SNP_LAUNCH_UPDATE / TDX_INIT_MEM_REGION: the pages passed
};

// Answers to KVM_RUN, one per call, per vCPU: fill `run` (a kvm_run area) and return the ioctl
// result (set errno for failures).
using RunScript = std::function<int(void* run)>;

class KvmRecorder final : public vmm::KvmSys {
 public:
  KvmRecorder();
  ~KvmRecorder() override;

  // Host properties.
  std::map<int, int> caps;                  // KVM_CHECK_EXTENSION answers (defaults: a 7.0 host)
  bool has_sev_device = true;               // /dev/sev opens
  bool has_req_certs_attr = true;           // KVM_X86_SEV_SNP_REQ_CERTS
  std::uint32_t update_pages_per_call = 3;  // SNP/TDX updates stop early, as KVM may
  int eagain_every = 2;  // every Nth SEV/TDX launch command fails with EAGAIN once
  // The firmware rejects the first CPUID page it sees, writing these values back (SNP ABI:
  // INVALID_PARAM with the expected CPUID values).
  bool reject_first_cpuid_page = false;
  std::uint64_t tdx_supported_attributes = 0x10000001ull;  // DEBUG | SEPT_VE_DISABLE
  std::uint64_t tdx_supported_xfam = 0x2e7ull;

  std::map<std::uint32_t, std::vector<RunScript>> run_scripts;

  // The vCPUs' TSC frequency (KVM_GET_TSC_KHZ); KVM_SET_TSC_KHZ changes it only on a host that
  // can scale the TSC, and fails with EINVAL otherwise.
  std::uint32_t tsc_khz = 2'450'000;
  bool tsc_scaling = true;

  // The guest's writes KVM has logged, per memory slot: KVM_GET_DIRTY_LOG copies a slot's bitmap
  // out (and clears it, unless KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 was enabled: then
  // KVM_CLEAR_DIRTY_LOG clears the bits it is given). A test sets bits to play guest writes.
  // Only slots registered with KVM_MEM_LOG_DIRTY_PAGES may be read (ENOENT otherwise, as KVM).
  std::map<std::uint32_t, std::vector<std::uint64_t>> dirty_logs;

  // KvmSys
  int open(const char* path) override;
  int ioctl(int fd, unsigned long request, void* arg) override;
  void* map_run(int vcpu_fd, std::size_t size) override;
  void unmap_run(void* run, std::size_t size) override;
  int punch_hole(int fd, std::uint64_t offset, std::uint64_t size) override;
  int discard(void* address, std::size_t size) override;

  const std::vector<RecordedCall>& calls() const { return calls_; }
  // The names of the recorded calls, with repeats of the same name collapsed when `collapse`.
  std::vector<std::string> names(bool collapse = false) const;
  // The calls named `name`, in order.
  std::vector<RecordedCall> named(const std::string& name) const;

  // The vCPU state the code under test set (what KVM would copy into the VMSA).
  struct VcpuState {
    Bytes regs, sregs, fpu, xcrs, debugregs;
    std::map<std::uint32_t, std::uint64_t> msrs;
  };
  const VcpuState& vcpu_state(std::uint32_t id) const { return vcpu_state_.at(id); }

  // What the snapshot ioctls keep, as an in-kernel copy would: a KVM_SET_* stores its argument
  // (and is recorded), the matching KVM_GET_* returns it (zeros before any SET). Keyed by
  // "vcpu N KVM_SET_LAPIC"-style names: the vCPU's MP state, LAPIC, XSAVE area and pending
  // events; the VM's
  // "vm KVM_SET_IRQCHIP <chip id>", "vm KVM_SET_PIT2", "vm KVM_SET_CLOCK".
  std::map<std::string, Bytes> kept;

 private:
  struct FdInfo {
    FdRole role;
    std::uint32_t vcpu;
  };
  int new_fd(FdRole role, std::uint32_t vcpu = 0);
  void record(const FdInfo& info, std::string name, unsigned long request, ByteView payload,
              std::uint64_t value = 0, ByteView data = {});
  int sev_command(const FdInfo& info, void* arg);
  int tdx_command(const FdInfo& info, void* arg);
  int keep(const FdInfo& info, unsigned long request, void* arg);
  bool take_eagain();

  std::map<int, FdInfo> fds_;
  std::vector<RecordedCall> calls_;
  std::map<std::uint32_t, VcpuState> vcpu_state_;
  std::map<std::uint32_t, std::size_t> run_index_;
  std::map<int, void*> runs_;  // vCPU fd -> kvm_run area
  unsigned long vm_type_ = 0;
  int launch_commands_ = 0;
  bool cpuid_rejected_ = false;
  bool manual_dirty_log_protect_ = false;
  std::map<std::uint32_t, kvm_userspace_memory_region> slots_;  // as last registered
};

}  // namespace cloister::testing
