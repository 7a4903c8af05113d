// Fuzz target: the IGVM parser and the SNP plan builder on whatever it accepts. Every view a
// plan hands out is read byte by byte, so ASan catches one that points outside the input.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <numeric>

#include "cloister/firmware_loader/igvm.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cloister::fw;
  auto bytes = std::make_shared<const cloister::Bytes>(data, data + size);
  auto file = IgvmFile::parse(bytes);
  if (!file) return 0;
  volatile std::uint64_t sink = 0;
  for (IgvmZeroPages mode : {IgvmZeroPages::kSnpZero, IgvmZeroPages::kNormalZero}) {
    auto plan = build_snp_plan(*file, {mode});
    if (!plan) continue;
    for (const auto& op : plan->ops()) {
      for_each_page(op, [&](std::uint64_t gpa, cloister::ByteView page) {
        sink = sink + gpa + std::accumulate(page.begin(), page.end(), std::uint64_t{0});
      });
    }
    for (const auto& area : plan->parameter_areas())
      if (!area.initial.empty()) sink = sink + area.initial.back();
    if (plan->snp().id_block) sink = sink + plan->snp().id_block->id_auth[0x240];
  }
  return 0;
}
