#include "hypervisor/emu/lapic.h"

namespace cloister::vmm::emu {
namespace {

// Register offsets (SDM vol. 3A Table 10-1).
constexpr std::uint64_t kId = 0x20;
constexpr std::uint64_t kVersion = 0x30;
constexpr std::uint64_t kTpr = 0x80;
constexpr std::uint64_t kEoi = 0xb0;
constexpr std::uint64_t kDfr = 0xe0;
constexpr std::uint64_t kSvr = 0xf0;
constexpr std::uint64_t kIcrLow = 0x300;
constexpr std::uint64_t kIcrHigh = 0x310;
constexpr std::uint64_t kLvtFirst = 0x320;  // timer, thermal, PMC, LINT0, LINT1, error
constexpr std::uint64_t kLvtLast = 0x370;

// Version 0x14 (an integrated xAPIC) with six LVT entries, as KVM reports.
constexpr std::uint32_t kVersionValue = 0x00050014;
constexpr std::uint32_t kLvtMasked = 1u << 16;

constexpr std::uint32_t kDeliveryInit = 5;
constexpr std::uint32_t kDeliveryStartup = 6;

}  // namespace

LocalApic::LocalApic(std::uint8_t id) : id_(id) {
  reset();
}

void LocalApic::reset() {
  registers_.fill(0);
  registers_[kDfr / 16] = 0xffffffff;
  registers_[kSvr / 16] = 0xff;
  for (std::uint64_t lvt = kLvtFirst; lvt <= kLvtLast; lvt += 16) registers_[lvt / 16] = kLvtMasked;
}

std::array<std::uint8_t, LocalApic::kImageSize> LocalApic::image() const {
  std::array<std::uint8_t, kImageSize> out{};
  for (std::size_t offset = 0; offset < kImageSize; offset += 16)
    for (std::size_t b = 0; b < 4; ++b)
      out[offset + b] = static_cast<std::uint8_t>(registers_[offset / 16] >> (8 * b));
  return out;
}

void LocalApic::load(const std::array<std::uint8_t, kImageSize>& image) {
  for (std::size_t offset = 0; offset < kImageSize; offset += 16) {
    std::uint32_t value = 0;
    for (std::size_t b = 0; b < 4; ++b) value |= std::uint32_t{image[offset + b]} << (8 * b);
    registers_[offset / 16] = value;
  }
}

std::uint32_t LocalApic::read(std::uint64_t offset, unsigned size) const {
  if (size != 4 || offset % 16 != 0 || offset >= kLapicSize) return 0;
  switch (offset) {
    case kId:
      return std::uint32_t{id_} << 24;
    case kVersion:
      return kVersionValue;
    case kEoi:
      return 0;
    default:
      return registers_[offset / 16];
  }
}

std::optional<Ipi> LocalApic::write(std::uint64_t offset, unsigned size, std::uint32_t value) {
  if (size != 4 || offset % 16 != 0 || offset >= kLapicSize) return std::nullopt;
  switch (offset) {
    case kId:
    case kVersion:
    case kEoi:
      return std::nullopt;
    case kIcrLow:
      registers_[offset / 16] = value & ~(1u << 12);  // delivery status: idle at once
      break;
    default:
      registers_[offset / 16] = value;
      return std::nullopt;
  }
  const std::uint32_t delivery = (value >> 8) & 7;
  const bool logical = value & (1u << 11);
  const bool assert_level = value & (1u << 14);
  const std::uint32_t shorthand = (value >> 18) & 3;
  if (delivery != kDeliveryInit && delivery != kDeliveryStartup) return std::nullopt;
  // INIT level de-assert only synchronises arbitration IDs on old processors (§10.6.1).
  if (delivery == kDeliveryInit && !assert_level) return std::nullopt;
  if (shorthand == 0 && logical) return std::nullopt;
  Ipi ipi;
  ipi.kind = delivery == kDeliveryInit ? Ipi::Kind::kInit : Ipi::Kind::kStartup;
  ipi.vector = static_cast<std::uint8_t>(value & 0xff);
  constexpr Ipi::Destination kShorthands[] = {Ipi::Destination::kId, Ipi::Destination::kSelf,
                                              Ipi::Destination::kAllIncludingSelf,
                                              Ipi::Destination::kAllExcludingSelf};
  ipi.destination = kShorthands[shorthand];
  ipi.id = static_cast<std::uint8_t>(registers_[kIcrHigh / 16] >> 24);
  return ipi;
}

std::uint32_t LocalApic::tpr() const {
  return registers_[kTpr / 16];
}

void LocalApic::set_tpr(std::uint32_t value) {
  registers_[kTpr / 16] = value & 0xff;
}

}  // namespace cloister::vmm::emu
