// The host side of tee_platform.h for tests of the guest's attestation code: a block of fake
// guest RAM (GPA = offset into it) and a doorbell and pause that call the test's fake secure
// processor.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

namespace cloister::testing {

class FakeGuestRam {
 public:
  static constexpr std::size_t kSize = 0x40000;  // 256 KiB from GPA 0

  // Installs this RAM, `doorbell` and `pause` as the platform until destroyed.
  FakeGuestRam(std::function<void(std::uint16_t port, std::uint32_t value)> doorbell,
               std::function<void()> pause);
  ~FakeGuestRam();
  FakeGuestRam(const FakeGuestRam&) = delete;
  FakeGuestRam& operator=(const FakeGuestRam&) = delete;

  std::uint8_t* at(std::uint64_t gpa) { return base_ + gpa; }
  std::uint64_t gpa(const void* p) const {
    return static_cast<std::uint64_t>(static_cast<const std::uint8_t*>(p) - base_);
  }

 private:
  std::unique_ptr<std::uint8_t[]> storage_;
  std::uint8_t* base_;  // 4 KiB aligned
};

}  // namespace cloister::testing
