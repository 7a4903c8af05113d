// In-process timing of the SNP launch digest next to the hashing floor.
//
//   usage: measure_bench IMAGE VCPUS [RUNS]
//
// "measure" = parse the image + build the SNP LaunchPlan (QEMU, EPYC-v4, VCPUS vCPUs) + fold
// the launch digest; "floor" = one SHA-384 over the same in-memory bytes, through the same
// OpenSSL. File reading is outside both; the whole-process figures come from run.sh.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "cloister/common/file.h"
#include "cloister/common/hex.h"
#include "cloister/firmware_loader/machine.h"
#include "cloister/firmware_loader/ovmf.h"
#include "cloister/firmware_loader/snp.h"
#include "cloister/measure/snp_digest.h"

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: measure_bench IMAGE VCPUS [RUNS]\n");
    return 2;
  }
  const int runs = argc > 3 ? std::atoi(argv[3]) : 31;
  auto bytes = cloister::read_file(argv[1], cloister::fw::kFirmwareFileLimit);
  if (!bytes) {
    std::fprintf(stderr, "measure_bench: %s\n", bytes.error().message().c_str());
    return 2;
  }
  const auto image_bytes = std::make_shared<const cloister::Bytes>(std::move(bytes).value());
  cloister::fw::SnpLaunchOptions options;
  options.vcpus = static_cast<std::uint32_t>(std::atoi(argv[2]));
  options.vcpu_signature = 0x800f12;

  std::vector<double> measure, floor;
  cloister::Sha384Digest digest{};
  for (int i = 0; i < runs; ++i) {
    const auto start = Clock::now();
    auto image = cloister::fw::OvmfImage::parse(image_bytes);
    if (!image) {
      std::fprintf(stderr, "measure_bench: %s\n", image.error().message().c_str());
      return 2;
    }
    auto plan = cloister::fw::build_snp_plan(*image, options);
    if (!plan) {
      std::fprintf(stderr, "measure_bench: %s\n", plan.error().message().c_str());
      return 2;
    }
    digest = cloister::measure::snp_launch_digest(*plan).value();
    measure.push_back(ms_since(start));
  }
  volatile std::uint8_t sink = 0;
  for (int i = 0; i < runs; ++i) {
    const auto start = Clock::now();
    sink = sink + cloister::sha384(*image_bytes)[0];
    floor.push_back(ms_since(start));
  }
  const double m = median(measure), f = median(floor);
  std::printf("in-process, %zu bytes, %u vCPUs, median of %d runs\n", image_bytes->size(),
              options.vcpus, runs);
  std::printf("  launch digest (parse + plan + fold): %7.3f ms   %s\n", m,
              cloister::to_hex(digest).c_str());
  std::printf("  SHA-384 of the same bytes (floor):   %7.3f ms\n", f);
  std::printf("  ratio: %.2fx the hashing floor (target <= 1.5x)\n", m / f);
  return 0;
}
