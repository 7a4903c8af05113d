#include "cloister/vmm/hypervisor/hypervisor.h"

namespace cloister::vmm {
namespace {

Error unsupported(std::string_view hypervisor, std::string_view operation) {
  return Error(std::string(hypervisor) + ": " + std::string(operation) + " is not supported");
}

}  // namespace

std::string_view exit_reason_name(ExitReason reason) {
  switch (reason) {
    case ExitReason::kIo:
      return "io";
    case ExitReason::kMmio:
      return "mmio";
    case ExitReason::kHalt:
      return "hlt";
    case ExitReason::kShutdown:
      return "shutdown";
    case ExitReason::kSystemEvent:
      return "system_event";
    case ExitReason::kInternalError:
      return "internal_error";
    case ExitReason::kFailEntry:
      return "fail_entry";
    case ExitReason::kInterrupted:
      return "interrupted";
    case ExitReason::kTdxVmcall:
      return "tdx_vmcall";
    case ExitReason::kSnpCertificates:
      return "snp_certificates";
    case ExitReason::kOther:
      return "other";
  }
  return "unknown";
}

std::string_view system_event_name(SystemEvent event) {
  switch (event) {
    case SystemEvent::kShutdown:
      return "shutdown";
    case SystemEvent::kReset:
      return "reset";
    case SystemEvent::kCrash:
      return "crash";
    case SystemEvent::kSevTerminate:
      return "sev_terminate";
    case SystemEvent::kTdxFatal:
      return "tdx_fatal";
    case SystemEvent::kOther:
      return "other";
  }
  return "unknown";
}

std::string_view mp_state_name(MpState state) {
  switch (state) {
    case MpState::kUninitialized:
      return "uninitialized";
    case MpState::kWaitForSipi:
      return "wait_for_sipi";
    case MpState::kHalted:
      return "halted";
    case MpState::kRunnable:
      return "runnable";
  }
  return "unknown";
}

Result<VcpuState> Vcpu::save_state() const {
  VcpuState state;
  CLOISTER_TRY(state.regs, regs());
  CLOISTER_TRY(state.sregs, sregs());
  CLOISTER_TRY(state.fpu, fpu());
  CLOISTER_TRY(state.xcr0, xcr0());
  CLOISTER_TRY(state.msrs, msrs(x86::kSnapshotMsrs));
  CLOISTER_TRY(state.debug_regs, debug_regs());
  CLOISTER_TRY(state.mp_state, mp_state());
  CLOISTER_TRY(state.lapic, lapic_state());
  CLOISTER_TRY(state.xsave, xsave_state());
  CLOISTER_TRY(state.events, events());
  CLOISTER_TRY(state.tsc, tsc());
  return state;
}

Status Vcpu::restore_state(const VcpuState& state) {
  if (state.tsc) CLOISTER_CHECK_OK(set_tsc(*state.tsc));
  CLOISTER_CHECK_OK(set_msrs(state.msrs));
  CLOISTER_CHECK_OK(set_sregs(state.sregs));
  CLOISTER_CHECK_OK(set_regs(state.regs));
  if (state.xsave.empty()) {
    CLOISTER_CHECK_OK(set_fpu(state.fpu));
  } else {
    CLOISTER_CHECK_OK(set_xsave_state(state.xsave));
  }
  CLOISTER_CHECK_OK(set_xcr0(state.xcr0));
  CLOISTER_CHECK_OK(set_debug_regs(state.debug_regs));
  if (!state.lapic.empty()) CLOISTER_CHECK_OK(set_lapic_state(state.lapic));
  if (state.events) CLOISTER_CHECK_OK(set_events(*state.events));
  return set_mp_state(state.mp_state);
}

Result<std::optional<VcpuEvents>> Vcpu::events() const {
  return std::optional<VcpuEvents>();
}

Status Vcpu::set_events(const VcpuEvents&) {
  return unsupported(hypervisor_name(), "restoring pending vCPU events");
}

Result<std::optional<VcpuTsc>> Vcpu::tsc() const {
  return std::optional<VcpuTsc>();
}

Status Vcpu::set_tsc(const VcpuTsc&) {
  return unsupported(hypervisor_name(), "restoring the TSC");
}

Status Vcpu::complete_exit(std::uint64_t, std::uint64_t) {
  return unsupported(hypervisor_name(), "completing a TEE exit");
}

Status Vcpu::tdx_init_vcpu(std::uint64_t) {
  return unsupported(hypervisor_name(), "TDX (KVM_TDX_INIT_VCPU)");
}

Status Vcpu::tdx_init_mem_region(std::uint64_t, ByteView, bool) {
  return unsupported(hypervisor_name(), "TDX (KVM_TDX_INIT_MEM_REGION)");
}

bool Vm::supports_dirty_log() const {
  return false;
}

Status Vm::enable_dirty_log() {
  return unsupported(hypervisor_name(), "dirty-page logging");
}

Result<std::vector<SlotDirtyLog>> Vm::fetch_dirty_log() {
  return unsupported(hypervisor_name(), "dirty-page logging");
}

Status Vm::disable_dirty_log() {
  return unsupported(hypervisor_name(), "dirty-page logging");
}

std::vector<Ioctl> Vm::dirty_log_ioctls() const {
  return {};
}

Result<std::shared_ptr<const GuestMemfd>> Vm::create_guest_memfd(std::uint64_t) {
  return unsupported(hypervisor_name(), "private memory (guest_memfd)");
}

Status Vm::enable_private_memory_conversions() {
  return unsupported(hypervisor_name(), "private memory conversions (KVM_HC_MAP_GPA_RANGE exits)");
}

Status Vm::set_memory_private(std::uint64_t, std::uint64_t, bool) {
  return unsupported(hypervisor_name(), "private memory (KVM_SET_MEMORY_ATTRIBUTES)");
}

Status Vm::sev_init2(const SevInit2&) {
  return unsupported(hypervisor_name(), "SEV-SNP (KVM_SEV_INIT2)");
}

Status Vm::snp_launch_start(const SnpLaunchStartParams&) {
  return unsupported(hypervisor_name(), "SEV-SNP (SNP_LAUNCH_START)");
}

Status Vm::snp_launch_update(std::uint64_t, std::span<std::uint8_t>, std::uint8_t) {
  return unsupported(hypervisor_name(), "SEV-SNP (SNP_LAUNCH_UPDATE)");
}

Status Vm::snp_launch_finish(const SnpLaunchFinishParams&) {
  return unsupported(hypervisor_name(), "SEV-SNP (SNP_LAUNCH_FINISH)");
}

Status Vm::snp_enable_certificate_requests() {
  return unsupported(hypervisor_name(),
                     "SEV-SNP certificate requests (KVM_SEV_SNP_ENABLE_REQ_CERTS)");
}

Result<TdxCapabilities> Vm::tdx_capabilities() {
  return unsupported(hypervisor_name(), "TDX (KVM_TDX_CAPABILITIES)");
}

Status Vm::tdx_init_vm(const TdxInitVmParams&) {
  return unsupported(hypervisor_name(), "TDX (KVM_TDX_INIT_VM)");
}

Status Vm::tdx_finalize_vm() {
  return unsupported(hypervisor_name(), "TDX (KVM_TDX_FINALIZE_VM)");
}

}  // namespace cloister::vmm
