#include "cloister/vmm/devices/bus.h"

#include <algorithm>

#include "cloister/vmm/format.h"

namespace cloister::vmm {

Status Bus::insert(std::shared_ptr<BusDevice> device, std::uint64_t base, std::uint64_t size) {
  if (size == 0 || base + size < base)
    return Error(name_ + " bus: " + std::string(device->name()) + ": invalid range " + hex(base) +
                 " + " + hex(size));
  for (const auto& r : ranges_)
    if (base < r.base + r.size && r.base < base + size)
      return Error(name_ + " bus: " + std::string(device->name()) + " at " + hex(base) +
                   " overlaps " + std::string(r.device->name()) + " at " + hex(r.base));
  ranges_.push_back({base, size, std::move(device)});
  std::sort(ranges_.begin(), ranges_.end(),
            [](const Range& a, const Range& b) { return a.base < b.base; });
  return {};
}

const Bus::Range* Bus::find(std::uint64_t address, std::uint64_t size) const {
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), address,
                             [](std::uint64_t a, const Range& r) { return a < r.base; });
  if (it == ranges_.begin()) return nullptr;
  const Range& r = *std::prev(it);
  const std::uint64_t offset = address - r.base;
  if (offset >= r.size || size > r.size - offset) return nullptr;
  return &r;
}

bool Bus::read(std::uint64_t address, std::span<std::uint8_t> data) const {
  const Range* r = find(address, data.size());
  if (!r) return false;
  r->device->read(address - r->base, data);
  return true;
}

bool Bus::write(std::uint64_t address, std::span<const std::uint8_t> data) const {
  const Range* r = find(address, data.size());
  if (!r) return false;
  r->device->write(address - r->base, data);
  return true;
}

bool Bus::write_burst(std::uint64_t address, std::span<const std::uint8_t> data,
                      std::size_t access_size) const {
  const Range* r = find(address, access_size);
  if (!r) return false;
  r->device->write_burst(address - r->base, data, access_size);
  return true;
}

}  // namespace cloister::vmm
