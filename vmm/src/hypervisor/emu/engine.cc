#include "hypervisor/emu/engine.h"

#include <sys/mman.h>

#include <utility>

#include "cloister/vmm/fd.h"
#include "cloister/vmm/format.h"

namespace cloister::vmm::emu {

Error unicorn_error(std::string_view call, uc_err err) {
  return Error(std::string(call) + ": " + uc_strerror(err));
}

namespace {

Status check(std::string_view call, uc_err err) {
  if (err != UC_ERR_OK) return unicorn_error(call, err);
  return {};
}

std::string range(std::string_view call, std::uint64_t gpa, std::uint64_t size) {
  return std::string(call) + " (" + hex(gpa) + " + " + hex(size) + ")";
}

}  // namespace

Result<HostPages> HostPages::allocate(std::size_t size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return os_error("mmap of " + std::to_string(size) + " bytes for emu");
  return HostPages(static_cast<std::uint8_t*>(p), size);
}

HostPages::~HostPages() {
  if (data_) ::munmap(data_, size_);
}

HostPages::HostPages(HostPages&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(other.size_) {}

Result<std::unique_ptr<Engine>> Engine::open() {
  uc_engine* uc = nullptr;
  CLOISTER_CHECK_OK(
      check("uc_open (UC_ARCH_X86, UC_MODE_64)", uc_open(UC_ARCH_X86, UC_MODE_64, &uc)));
  return std::unique_ptr<Engine>(new Engine(uc));
}

Engine::~Engine() {
  if (reset_state_) uc_context_free(reset_state_);
  uc_close(uc_);
}

Status Engine::map_ram(std::uint64_t gpa, std::uint64_t size, void* host, bool read_only) {
  const std::uint32_t perms = read_only ? UC_PROT_READ | UC_PROT_EXEC : UC_PROT_ALL;
  CLOISTER_CHECK_OK(
      check(range("uc_mem_map_ptr", gpa, size), uc_mem_map_ptr(uc_, gpa, size, perms, host)));
  // uc_mem_map_ptr only records the permissions; uc_mem_protect also marks the region as ROM,
  // which makes the softmmu discard a write once the write-protection hooks have seen it.
  if (read_only)
    CLOISTER_CHECK_OK(
        check(range("uc_mem_protect", gpa, size), uc_mem_protect(uc_, gpa, size, perms)));
  return {};
}

Status Engine::map_mmio(std::uint64_t gpa, std::uint64_t size, uc_cb_mmio_read_t on_read,
                        uc_cb_mmio_write_t on_write, void* user) {
  return check(range("uc_mmio_map", gpa, size),
               uc_mmio_map(uc_, gpa, size, on_read, user, on_write, user));
}

Status Engine::unmap(std::uint64_t gpa, std::uint64_t size) {
  return check(range("uc_mem_unmap", gpa, size), uc_mem_unmap(uc_, gpa, size));
}

Status Engine::add_hook(int type, void* callback, void* user, int insn) {
  uc_hook handle;
  // begin > end: every address (Unicorn's convention).
  const uc_err err = type == UC_HOOK_INSN
                         ? uc_hook_add(uc_, &handle, type, callback, user, 1, 0, insn)
                         : uc_hook_add(uc_, &handle, type, callback, user, 1, 0);
  return check("uc_hook_add (type " + std::to_string(type) + ")", err);
}

Result<std::uint64_t> Engine::read(uc_x86_reg reg) const {
  std::uint64_t value = 0;
  CLOISTER_CHECK_OK(read_raw(reg, &value));
  return value;
}

Status Engine::write(uc_x86_reg reg, std::uint64_t value) {
  return write_raw(reg, &value);
}

Status Engine::read_raw(uc_x86_reg reg, void* value) const {
  return check("uc_reg_read (register " + std::to_string(reg) + ")", uc_reg_read(uc_, reg, value));
}

Status Engine::write_raw(uc_x86_reg reg, const void* value) {
  return check("uc_reg_write (register " + std::to_string(reg) + ")",
               uc_reg_write(uc_, reg, value));
}

Result<std::uint64_t> Engine::read_msr(std::uint32_t index) const {
  uc_x86_msr msr{index, 0};
  CLOISTER_CHECK_OK(
      check("uc_reg_read (MSR " + hex(index) + ")", uc_reg_read(uc_, UC_X86_REG_MSR, &msr)));
  return msr.value;
}

Status Engine::write_msr(std::uint32_t index, std::uint64_t value) {
  uc_x86_msr msr{index, value};
  return check("uc_reg_write (MSR " + hex(index) + ")", uc_reg_write(uc_, UC_X86_REG_MSR, &msr));
}

namespace {

constexpr std::pair<uc_x86_reg, std::uint64_t x86::Regs::*> kRegs[] = {
    {UC_X86_REG_RAX, &x86::Regs::rax}, {UC_X86_REG_RBX, &x86::Regs::rbx},
    {UC_X86_REG_RCX, &x86::Regs::rcx}, {UC_X86_REG_RDX, &x86::Regs::rdx},
    {UC_X86_REG_RSI, &x86::Regs::rsi}, {UC_X86_REG_RDI, &x86::Regs::rdi},
    {UC_X86_REG_RSP, &x86::Regs::rsp}, {UC_X86_REG_RBP, &x86::Regs::rbp},
    {UC_X86_REG_R8, &x86::Regs::r8},   {UC_X86_REG_R9, &x86::Regs::r9},
    {UC_X86_REG_R10, &x86::Regs::r10}, {UC_X86_REG_R11, &x86::Regs::r11},
    {UC_X86_REG_R12, &x86::Regs::r12}, {UC_X86_REG_R13, &x86::Regs::r13},
    {UC_X86_REG_R14, &x86::Regs::r14}, {UC_X86_REG_R15, &x86::Regs::r15},
    {UC_X86_REG_RIP, &x86::Regs::rip}, {UC_X86_REG_RFLAGS, &x86::Regs::rflags}};

}  // namespace

Result<x86::Regs> Engine::read_regs() const {
  x86::Regs regs;
  for (const auto& [reg, field] : kRegs) {
    CLOISTER_TRY(regs.*field, read(reg));
  }
  return regs;
}

Status Engine::write_regs(const x86::Regs& regs) {
  for (const auto& [reg, field] : kRegs) CLOISTER_CHECK_OK(write(reg, regs.*field));
  return {};
}

Status Engine::read_memory(std::uint64_t gpa, void* out, std::size_t size) const {
  return check(range("uc_mem_read", gpa, size), uc_mem_read(uc_, gpa, out, size));
}

uc_err Engine::start(std::uint64_t begin, std::uint64_t until) {
  return uc_emu_start(uc_, begin, until, 0, 0);
}

void Engine::stop() {
  uc_emu_stop(uc_);
}

Status Engine::save_reset_state() {
  if (!reset_state_)
    CLOISTER_CHECK_OK(check("uc_context_alloc", uc_context_alloc(uc_, &reset_state_)));
  return check("uc_context_save", uc_context_save(uc_, reset_state_));
}

Status Engine::restore_reset_state() {
  return check("uc_context_restore", uc_context_restore(uc_, reset_state_));
}

Status Engine::invalidate_translations(std::uint64_t begin, std::uint64_t end) {
  return check(range("uc_ctl_remove_cache", begin, end - begin),
               uc_ctl_remove_cache(uc_, begin, end));
}

}  // namespace cloister::vmm::emu
