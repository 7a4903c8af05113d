// The local APIC an emu vCPU has once the VM has an irqchip: the xAPIC register page at
// 0xfee00000 (SDM vol. 3A §10.4.1) as a register file, enough for a guest to start the other
// vCPUs with INIT-SIPI-SIPI. ID and version are read-only, EOI is write-only, an ICR write sends
// INIT and STARTUP IPIs (delivery status reads as idle), and every other register, TPR and SVR
// included, reads back what was last written. There is no timer and no interrupt delivery:
// fixed, lowest-priority, SMI and NMI IPIs and logical destinations are dropped.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace cloister::vmm::emu {

inline constexpr std::uint64_t kLapicBase = 0xfee00000;
inline constexpr std::uint64_t kLapicSize = 0x1000;

// An INIT or STARTUP IPI sent by an ICR write (SDM vol. 3A §10.6.1).
struct Ipi {
  enum class Kind { kInit, kStartup };
  // Shorthands of ICR bits 19:18; kId: physical destination `id` (0xff: every vCPU).
  enum class Destination { kId, kSelf, kAllIncludingSelf, kAllExcludingSelf };
  Kind kind = Kind::kInit;
  std::uint8_t vector = 0;  // STARTUP: the start page, CS = vector << 8
  Destination destination = Destination::kId;
  std::uint8_t id = 0;
};

class LocalApic {
 public:
  explicit LocalApic(std::uint8_t id);

  // `offset` within the page; registers are 32 bits at 16-byte strides, other accesses read 0
  // and are ignored.
  std::uint32_t read(std::uint64_t offset, unsigned size) const;
  std::optional<Ipi> write(std::uint64_t offset, unsigned size, std::uint32_t value);

  // TPR, the register CR8 mirrors (bits 7:4 = CR8[3:0]).
  std::uint32_t tpr() const;
  void set_tpr(std::uint32_t value);
  // Power-up and INIT values (SDM vol. 3A §10.4.7.1); the ID stays.
  void reset();

  // The registers as KVM's struct kvm_lapic_state lays them out: the first kImageSize bytes of
  // the register page, each register's 32 bits little-endian at its offset. load() takes an
  // image() of the same size (ID and version are not taken from it: they are fixed).
  static constexpr std::size_t kImageSize = 1024;
  std::array<std::uint8_t, kImageSize> image() const;
  void load(const std::array<std::uint8_t, kImageSize>& image);

 private:
  std::uint8_t id_;
  std::array<std::uint32_t, kLapicSize / 16> registers_{};
};

}  // namespace cloister::vmm::emu
