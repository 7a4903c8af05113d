#include "hypervisor/emu/cpuid.h"

#include <algorithm>
#include <bit>

#include "cloister/vmm/arch/x86/regs.h"

namespace cloister::vmm::emu {
namespace {

// Leaf 1 EDX features the engine implements although its reset CPUID leaves them out
// (SDM vol. 2A Table 3-11): x87 FPU, page size extension, TSC, RDMSR/WRMSR, PAE, global pages.
constexpr std::uint32_t kLeaf1EdxImplemented =
    (1u << 0) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 13);
constexpr std::uint32_t kLeaf1EdxApic = 1u << 9;
constexpr std::uint32_t kLeaf1EcxHypervisor = 1u << 31;
// CPUID.80000001H:EDX.
constexpr std::uint32_t kExtEdxSyscall = 1u << 11;
constexpr std::uint32_t kExtEdxNx = 1u << 20;
constexpr std::uint64_t kEferSce = 1ull << 0;
constexpr std::uint64_t kEferNxe = 1ull << 11;
// Leaf 0BH level types (ECX[15:8]).
constexpr std::uint32_t kLevelSmt = 1;
constexpr std::uint32_t kLevelCore = 2;

// The probe runs `cpuid; hlt` at guest-physical 0 before anything else is mapped.
constexpr std::uint64_t kProbeAddress = 0;

Result<CpuidRegs> run_cpuid(Engine& engine, std::uint32_t leaf, std::uint32_t subleaf) {
  CLOISTER_CHECK_OK(engine.write(UC_X86_REG_RAX, leaf));
  CLOISTER_CHECK_OK(engine.write(UC_X86_REG_RCX, subleaf));
  if (uc_err err = engine.start(kProbeAddress, kNoStopAddress); err != UC_ERR_OK)
    return unicorn_error("uc_emu_start (CPUID probe)", err);
  CpuidRegs r;
  CLOISTER_TRY(std::uint64_t eax, engine.read(UC_X86_REG_RAX));
  CLOISTER_TRY(std::uint64_t ebx, engine.read(UC_X86_REG_RBX));
  CLOISTER_TRY(std::uint64_t ecx, engine.read(UC_X86_REG_RCX));
  CLOISTER_TRY(std::uint64_t edx, engine.read(UC_X86_REG_RDX));
  r.eax = static_cast<std::uint32_t>(eax), r.ebx = static_cast<std::uint32_t>(ebx);
  r.ecx = static_cast<std::uint32_t>(ecx), r.edx = static_cast<std::uint32_t>(edx);
  return r;
}

}  // namespace

Result<CpuidModel> CpuidModel::probe(Engine& engine) {
  CLOISTER_TRY(HostPages page, HostPages::allocate(4096));
  const std::uint8_t code[] = {0x0f, 0xa2, 0xf4};  // cpuid; hlt
  std::copy(std::begin(code), std::end(code), page.data());
  CLOISTER_CHECK_OK(engine.map_ram(kProbeAddress, page.size(), page.data(), false));
  CpuidModel model;
  Status probed = [&]() -> Status {
    CLOISTER_TRY(CpuidRegs leaf0, run_cpuid(engine, 0, 0));
    CLOISTER_TRY(model.leaf1_, run_cpuid(engine, 1, 0));
    CLOISTER_TRY(CpuidRegs ext0, run_cpuid(engine, 0x80000000, 0));
    model.max_basic_leaf_ = leaf0.eax;
    model.writable_efer_ = x86::kEferLme | x86::kEferLma;
    if (ext0.eax >= 0x80000001) {
      CLOISTER_TRY(CpuidRegs ext1, run_cpuid(engine, 0x80000001, 0));
      if (ext1.edx & kExtEdxSyscall) model.writable_efer_ |= kEferSce;
      if (ext1.edx & kExtEdxNx) model.writable_efer_ |= kEferNxe;
    }
    // Bounded: the engine's table is small, and a corrupt maximum must not make this loop long.
    for (std::uint32_t leaf = 0; leaf <= std::min<std::uint32_t>(leaf0.eax, 0x20); ++leaf) {
      CLOISTER_TRY(CpuidRegs r, run_cpuid(engine, leaf, 0));
      model.leaves_.emplace_back(leaf, r);
    }
    for (std::uint32_t leaf = 0x80000000; leaf <= std::min<std::uint32_t>(ext0.eax, 0x80000020);
         ++leaf) {
      CLOISTER_TRY(CpuidRegs r, run_cpuid(engine, leaf, 0));
      model.leaves_.emplace_back(leaf, r);
    }
    model.physical_address_bits_ = 36;  // SDM vol. 3A §4.1.4, without leaf 80000008H
    if (ext0.eax >= 0x80000008) {
      CLOISTER_TRY(CpuidRegs ext8, run_cpuid(engine, 0x80000008, 0));
      model.physical_address_bits_ = ext8.eax & 0xff;
    }
    return {};
  }();
  CLOISTER_CHECK_OK(engine.unmap(kProbeAddress, page.size()));
  CLOISTER_CHECK_OK(probed);
  return model;
}

std::vector<std::array<std::uint32_t, 6>> CpuidModel::table(const CpuidCaller& caller) const {
  std::vector<std::array<std::uint32_t, 6>> out;
  for (const auto& [leaf, own] : leaves_) {
    const CpuidRegs r = answer(leaf, 0, caller).value_or(own);
    out.push_back({leaf, 0, r.eax, r.ebx, r.ecx, r.edx});
  }
  return out;
}

std::optional<CpuidRegs> CpuidModel::answer(std::uint32_t leaf, std::uint32_t subleaf,
                                            const CpuidCaller& caller) const {
  if (leaf == 1) {
    CpuidRegs r = leaf1_;
    r.eax = caller.signature;
    r.ebx = (r.ebx & 0x00ffffffu) | (caller.apic_id << 24);
    r.ecx |= kLeaf1EcxHypervisor;
    r.edx |= kLeaf1EdxImplemented | (caller.apic ? kLeaf1EdxApic : 0);
    return r;
  }
  // Extended topology (SDM vol. 2A, CPUID leaf 0BH): one thread per core, the vCPUs the cores of
  // one package; subleaves past the core level are invalid levels that echo ECX[7:0].
  if ((leaf == 0xb || leaf == 0x1f) && leaf <= max_basic_leaf_) {
    CpuidRegs r;
    r.edx = caller.apic_id;
    if (subleaf == 0) {
      r.ebx = 1;
      r.ecx = kLevelSmt << 8;
    } else if (subleaf == 1) {
      r.eax = static_cast<std::uint32_t>(std::bit_width(caller.vcpus - 1));
      r.ebx = caller.vcpus;
      r.ecx = (kLevelCore << 8) | 1;
    } else {
      r.ecx = subleaf & 0xff;
    }
    return r;
  }
  return std::nullopt;
}

}  // namespace cloister::vmm::emu
