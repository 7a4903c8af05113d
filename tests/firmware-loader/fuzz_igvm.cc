// Fuzz target: the IGVM parser and the SNP and TDX plan builders on whatever it accepts. Each input
// is tried as given and with its header checksum recomputed, so mutations get past the CRC check
// into the variable headers. Every view a plan hands out is read byte by byte, so ASan catches
// one that points outside the input.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <numeric>

#include "cloister/firmware_loader/igvm.h"
#include "igvm_writer.h"

namespace {

std::uint64_t touch(const cloister::Result<cloister::fw::LaunchPlan>& plan) {
  if (!plan) return plan.error().message().size();
  std::uint64_t sum = 0;
  for (const auto& op : plan->ops()) {
    cloister::fw::for_each_page(op, [&](std::uint64_t gpa, cloister::ByteView page) {
      sum += gpa + std::accumulate(page.begin(), page.end(), std::uint64_t{0});
    });
  }
  for (const auto& area : plan->parameter_areas())
    if (!area.initial.empty()) sum += area.initial.back();
  if (plan->snp().id_block) sum += plan->snp().id_block->id_auth[0x240];
  return sum;
}

void exercise(std::shared_ptr<const cloister::Bytes> bytes) {
  using namespace cloister::fw;
  auto file = IgvmFile::parse(std::move(bytes));
  if (!file) return;
  volatile std::uint64_t sink = 0;
  for (IgvmZeroPages mode : {IgvmZeroPages::kSnpZero, IgvmZeroPages::kNormalZero})
    sink = sink + touch(build_snp_plan(*file, {mode}));
  sink = sink + touch(build_tdx_plan(*file, {TdxPageOrder::kTwoPass, 2}));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  exercise(std::make_shared<const cloister::Bytes>(data, data + size));
  if (size < 24) return 0;
  cloister::Bytes fixed(data, data + size);
  const std::uint64_t var_offset = cloister::load_le32(fixed, 8);
  const std::uint64_t var_size = cloister::load_le32(fixed, 12);
  if (var_offset + var_size > size) return 0;
  cloister::store_le32(fixed, 20, 0);
  const std::uint32_t crc = cloister::testing::crc32_bitwise(
      cloister::ByteView(fixed).subspan(var_offset, var_size),
      cloister::testing::crc32_bitwise(cloister::ByteView(fixed).subspan(0, 24)));
  cloister::store_le32(fixed, 20, crc);
  exercise(std::make_shared<const cloister::Bytes>(std::move(fixed)));
  return 0;
}
