// Port-I/O and MMIO buses: address ranges mapped to emulated devices. Buses are filled while
// the VM is built and are read-only once vCPUs run, so lookups take no lock; each device
// serialises its own state.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cloister/common/result.h"

namespace cloister::vmm {

class BusDevice {
 public:
  virtual ~BusDevice() = default;
  virtual std::string_view name() const = 0;
  // `offset` is relative to the device's base address; `data` is 1, 2, 4 or 8 bytes. A read
  // fills all of `data`. Guest-controlled values never make these fail: a bad access is the
  // guest's problem and is ignored, logged or turned into a device error state.
  virtual void read(std::uint64_t offset, std::span<std::uint8_t> data) = 0;
  virtual void write(std::uint64_t offset, std::span<const std::uint8_t> data) = 0;
  // A string I/O burst (rep outs): `data` holds data.size() / access_size writes of
  // `access_size` bytes to the same offset. Devices that can batch (the UART emitting a FIFO's
  // worth of bytes with one console write) override this.
  virtual void write_burst(std::uint64_t offset, std::span<const std::uint8_t> data,
                           std::size_t access_size) {
    for (std::size_t i = 0; i + access_size <= data.size(); i += access_size)
      write(offset, data.subspan(i, access_size));
  }
};

class Bus {
 public:
  explicit Bus(std::string name) : name_(std::move(name)) {}

  // Maps [base, base + size) to `device`; fails on an empty or overlapping range.
  Status insert(std::shared_ptr<BusDevice> device, std::uint64_t base, std::uint64_t size);

  // Dispatch an access that lies entirely inside one device's range. Return false when no
  // device covers it (an "unassigned" access), leaving read data untouched.
  bool read(std::uint64_t address, std::span<std::uint8_t> data) const;
  bool write(std::uint64_t address, std::span<const std::uint8_t> data) const;
  bool write_burst(std::uint64_t address, std::span<const std::uint8_t> data,
                   std::size_t access_size) const;

 private:
  struct Range {
    std::uint64_t base;
    std::uint64_t size;
    std::shared_ptr<BusDevice> device;
  };
  const Range* find(std::uint64_t address, std::uint64_t size) const;

  std::string name_;
  std::vector<Range> ranges_;  // sorted by base
};

}  // namespace cloister::vmm
