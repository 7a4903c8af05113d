#include "fake_platform.h"

#include <cassert>
#include <cstring>

extern "C" {
#include "tee_platform.h"
}

namespace cloister::testing {
namespace {

FakeGuestRam* current = nullptr;
std::function<void(std::uint16_t, std::uint32_t)> current_doorbell;
std::function<void()> current_pause;

}  // namespace

FakeGuestRam::FakeGuestRam(std::function<void(std::uint16_t, std::uint32_t)> doorbell,
                           std::function<void()> pause)
    : storage_(new std::uint8_t[kSize + 4096]()) {
  const auto raw = reinterpret_cast<std::uintptr_t>(storage_.get());
  base_ = storage_.get() + ((4096 - raw % 4096) % 4096);
  assert(current == nullptr);
  current = this;
  current_doorbell = std::move(doorbell);
  current_pause = std::move(pause);
}

FakeGuestRam::~FakeGuestRam() {
  current = nullptr;
  current_doorbell = nullptr;
  current_pause = nullptr;
}

}  // namespace cloister::testing

extern "C" uint64_t tee_gpa(const void* p) {
  return cloister::testing::current->gpa(p);
}

extern "C" void tee_doorbell(uint16_t port, uint32_t value) {
  cloister::testing::current_doorbell(port, value);
}

extern "C" void tee_pause(void) {
  cloister::testing::current_pause();
}
