#include "hypervisor/emu/engine.h"

#include <dlfcn.h>
#include <sys/mman.h>

#include <utility>

#include "cloister/vmm/fd.h"
#include "cloister/vmm/format.h"

namespace cloister::vmm::emu {

namespace {

// The Unicorn functions emu calls, resolved from the library.
struct UnicornApi {
  decltype(&::uc_version) version;
  decltype(&::uc_arch_supported) arch_supported;
  decltype(&::uc_strerror) strerror;
  decltype(&::uc_open) open;
  decltype(&::uc_close) close;
  decltype(&::uc_mem_map_ptr) mem_map_ptr;
  decltype(&::uc_mem_protect) mem_protect;
  decltype(&::uc_mmio_map) mmio_map;
  decltype(&::uc_mem_unmap) mem_unmap;
  decltype(&::uc_mem_read) mem_read;
  decltype(&::uc_hook_add) hook_add;
  decltype(&::uc_reg_read) reg_read;
  decltype(&::uc_reg_write) reg_write;
  decltype(&::uc_emu_start) emu_start;
  decltype(&::uc_emu_stop) emu_stop;
  decltype(&::uc_context_alloc) context_alloc;
  decltype(&::uc_context_save) context_save;
  decltype(&::uc_context_restore) context_restore;
  decltype(&::uc_context_free) context_free;
  decltype(&::uc_ctl) ctl;
};

constexpr const char* kLibrary = "libunicorn.so.2";

template <typename Fn>
Status resolve(void* library, const char* name, Fn& out) {
  void* symbol = ::dlsym(library, name);
  if (!symbol) return Error(std::string("emu: ") + kLibrary + " lacks " + name);
  out = reinterpret_cast<Fn>(symbol);
  return {};
}

Result<UnicornApi> load() {
  void* library = ::dlopen(kLibrary, RTLD_NOW | RTLD_LOCAL);
  if (!library)
    return Error(std::string("emu: cannot load ") + kLibrary + " (" + ::dlerror() +
                 "); the emulator needs Unicorn 2 (Debian package libunicorn2)");
  UnicornApi api{};
  CLOISTER_CHECK_OK(resolve(library, "uc_version", api.version));
  CLOISTER_CHECK_OK(resolve(library, "uc_arch_supported", api.arch_supported));
  CLOISTER_CHECK_OK(resolve(library, "uc_strerror", api.strerror));
  CLOISTER_CHECK_OK(resolve(library, "uc_open", api.open));
  CLOISTER_CHECK_OK(resolve(library, "uc_close", api.close));
  CLOISTER_CHECK_OK(resolve(library, "uc_mem_map_ptr", api.mem_map_ptr));
  CLOISTER_CHECK_OK(resolve(library, "uc_mem_protect", api.mem_protect));
  CLOISTER_CHECK_OK(resolve(library, "uc_mmio_map", api.mmio_map));
  CLOISTER_CHECK_OK(resolve(library, "uc_mem_unmap", api.mem_unmap));
  CLOISTER_CHECK_OK(resolve(library, "uc_mem_read", api.mem_read));
  CLOISTER_CHECK_OK(resolve(library, "uc_hook_add", api.hook_add));
  CLOISTER_CHECK_OK(resolve(library, "uc_reg_read", api.reg_read));
  CLOISTER_CHECK_OK(resolve(library, "uc_reg_write", api.reg_write));
  CLOISTER_CHECK_OK(resolve(library, "uc_emu_start", api.emu_start));
  CLOISTER_CHECK_OK(resolve(library, "uc_emu_stop", api.emu_stop));
  CLOISTER_CHECK_OK(resolve(library, "uc_context_alloc", api.context_alloc));
  CLOISTER_CHECK_OK(resolve(library, "uc_context_save", api.context_save));
  CLOISTER_CHECK_OK(resolve(library, "uc_context_restore", api.context_restore));
  CLOISTER_CHECK_OK(resolve(library, "uc_context_free", api.context_free));
  CLOISTER_CHECK_OK(resolve(library, "uc_ctl", api.ctl));
  unsigned major = 0, minor = 0;
  api.version(&major, &minor);
  if (major != 2)
    return Error(std::string("emu: ") + kLibrary + ": expected Unicorn 2, found " +
                 std::to_string(major) + "." + std::to_string(minor));
  if (!api.arch_supported(UC_ARCH_X86))
    return Error(std::string("emu: ") + kLibrary + " was built without x86 (UC_ARCH_X86)");
  return api;
}

// The loaded library; thread-safe, loaded at most once.
const Result<UnicornApi>& library() {
  static const Result<UnicornApi> api = load();
  return api;
}

// After a successful load_unicorn().
const UnicornApi& uc() {
  return library().value();
}

}  // namespace

Status load_unicorn() {
  if (!library()) return library().error();
  return {};
}

Error unicorn_error(std::string_view call, uc_err err) {
  return Error(std::string(call) + ": " + uc().strerror(err));
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
  CLOISTER_CHECK_OK(load_unicorn());
  uc_engine* engine = nullptr;
  CLOISTER_CHECK_OK(
      check("uc_open (UC_ARCH_X86, UC_MODE_64)", uc().open(UC_ARCH_X86, UC_MODE_64, &engine)));
  return std::unique_ptr<Engine>(new Engine(engine));
}

Engine::~Engine() {
  if (reset_state_) uc().context_free(reset_state_);
  uc().close(uc_);
}

Status Engine::map_ram(std::uint64_t gpa, std::uint64_t size, void* host, bool read_only) {
  const std::uint32_t perms = read_only ? UC_PROT_READ | UC_PROT_EXEC : UC_PROT_ALL;
  CLOISTER_CHECK_OK(
      check(range("uc_mem_map_ptr", gpa, size), uc().mem_map_ptr(uc_, gpa, size, perms, host)));
  // uc_mem_map_ptr only records the permissions; uc_mem_protect also marks the region as ROM,
  // which makes the softmmu discard a write once the write-protection hooks have seen it.
  if (read_only)
    CLOISTER_CHECK_OK(
        check(range("uc_mem_protect", gpa, size), uc().mem_protect(uc_, gpa, size, perms)));
  return {};
}

Status Engine::map_mmio(std::uint64_t gpa, std::uint64_t size, uc_cb_mmio_read_t on_read,
                        uc_cb_mmio_write_t on_write, void* user) {
  return check(range("uc_mmio_map", gpa, size),
               uc().mmio_map(uc_, gpa, size, on_read, user, on_write, user));
}

Status Engine::unmap(std::uint64_t gpa, std::uint64_t size) {
  return check(range("uc_mem_unmap", gpa, size), uc().mem_unmap(uc_, gpa, size));
}

Status Engine::add_hook(int type, void* callback, void* user, int insn) {
  uc_hook handle;
  // begin > end: every address (Unicorn's convention).
  const uc_err err = type == UC_HOOK_INSN
                         ? uc().hook_add(uc_, &handle, type, callback, user, 1, 0, insn)
                         : uc().hook_add(uc_, &handle, type, callback, user, 1, 0);
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
  return check("uc_reg_read (register " + std::to_string(reg) + ")",
               uc().reg_read(uc_, reg, value));
}

Status Engine::write_raw(uc_x86_reg reg, const void* value) {
  return check("uc_reg_write (register " + std::to_string(reg) + ")",
               uc().reg_write(uc_, reg, value));
}

Result<std::uint64_t> Engine::read_msr(std::uint32_t index) const {
  uc_x86_msr msr{index, 0};
  CLOISTER_CHECK_OK(
      check("uc_reg_read (MSR " + hex(index) + ")", uc().reg_read(uc_, UC_X86_REG_MSR, &msr)));
  return msr.value;
}

Status Engine::write_msr(std::uint32_t index, std::uint64_t value) {
  uc_x86_msr msr{index, value};
  return check("uc_reg_write (MSR " + hex(index) + ")", uc().reg_write(uc_, UC_X86_REG_MSR, &msr));
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
  return check(range("uc_mem_read", gpa, size), uc().mem_read(uc_, gpa, out, size));
}

uc_err Engine::start(std::uint64_t begin, std::uint64_t until) {
  return uc().emu_start(uc_, begin, until, 0, 0);
}

void Engine::stop() {
  uc().emu_stop(uc_);
}

Status Engine::save_reset_state() {
  if (!reset_state_)
    CLOISTER_CHECK_OK(check("uc_context_alloc", uc().context_alloc(uc_, &reset_state_)));
  return check("uc_context_save", uc().context_save(uc_, reset_state_));
}

Status Engine::restore_reset_state() {
  return check("uc_context_restore", uc().context_restore(uc_, reset_state_));
}

Status Engine::invalidate_translations(std::uint64_t begin, std::uint64_t end) {
  return check(range("uc_ctl_remove_cache", begin, end - begin),
               uc().ctl(uc_, UC_CTL_WRITE(UC_CTL_TB_REMOVE_CACHE, 2), begin, end));
}

}  // namespace cloister::vmm::emu
