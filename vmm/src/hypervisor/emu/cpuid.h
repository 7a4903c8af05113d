// What CPUID answers on an emu vCPU (summary in emu.h): the engine's own answers, probed once per
// VM, with the per-vCPU changes every hypervisor makes (kvm.cc does the same through
// KVM_SET_CPUID2).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "cloister/common/result.h"
#include "hypervisor/emu/engine.h"

namespace cloister::vmm::emu {

struct CpuidRegs {
  std::uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
};

// The vCPU asking.
struct CpuidCaller {
  std::uint32_t apic_id = 0;
  std::uint32_t vcpus = 1;      // in the VM: leaf 0BH's core count
  std::uint32_t signature = 0;  // leaf 1 EAX
  bool apic = false;            // the VM has an irqchip
};

class CpuidModel {
 public:
  // Executes CPUID in `engine`, which must have no CPUID hook yet and nothing mapped at the
  // loader window (the probe's code runs there).
  static Result<CpuidModel> probe(Engine& engine);

  // emu's answer for (leaf, subleaf), or nullopt where the engine's own answer stands.
  std::optional<CpuidRegs> answer(std::uint32_t leaf, std::uint32_t subleaf,
                                  const CpuidCaller& caller) const;

  // Every leaf the engine answers (subleaf 0; leaves 0..max basic and 80000000H..max extended),
  // as a vCPU with `caller`'s identity sees them: function, index, eax, ebx, ecx, edx.
  std::vector<std::array<std::uint32_t, 6>> table(const CpuidCaller& caller) const;

  // CPUID.80000008H:EAX[7:0]: the guest-physical address width.
  unsigned physical_address_bits() const { return physical_address_bits_; }
  // The EFER bits the engine lets software set: LME and LMA, SCE with CPUID SYSCALL, NXE with
  // CPUID NX (its WRMSR drops the others).
  std::uint64_t writable_efer() const { return writable_efer_; }

 private:
  std::uint32_t max_basic_leaf_ = 0;
  std::vector<std::pair<std::uint32_t, CpuidRegs>> leaves_;  // the engine's own answers
  CpuidRegs leaf1_;
  unsigned physical_address_bits_ = 0;
  std::uint64_t writable_efer_ = 0;
};

}  // namespace cloister::vmm::emu
