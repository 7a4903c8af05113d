// make_test_guest_igvm IMAGE VCPUS VCPU_TYPE OUT: writes the IGVM form of the test guest's
// firmware image, one file for two platforms:
//   SEV_SNP (mask 0x1)  exactly the pages and VMSAs of firmware-loader's build_snp_plan for the
//                       image with the QEMU VMM profile, VCPUS vCPUs of model VCPU_TYPE and guest
//                       features 0x1, and the guest policy 0x30000; so `cloister-measure snp
//                       --igvm OUT` and `cloister-measure snp --ovmf IMAGE --vcpus VCPUS
//                       --vcpu-type VCPU_TYPE` give the same launch digest
//   TDX (mask 0x2)      the image as measured PAGE_DATA (TDH.MR.EXTEND), the TDVF TempMem ranges
//                       as unmeasured zero pages (accepted, not extended), as build_tdx_plan
//                       lays them out. IGVM has no TD HOB (launch parameters travel in parameter
//                       areas), and the test guest reads nothing from it.
#include <charconv>
#include <cstdio>
#include <string>
#include <string_view>

#include "cloister/common/file.h"
#include "cloister/firmware_loader/machine.h"
#include "cloister/firmware_loader/ovmf.h"
#include "cloister/firmware_loader/snp.h"
#include "cloister/firmware_loader/tdx.h"
#include "igvm_writer.h"

namespace {

using cloister::Bytes;
using cloister::ByteView;
using cloister::Result;
namespace fw = cloister::fw;
using cloister::testing::IgvmWriter;

constexpr std::uint8_t kPlatformSevSnp = 2;
constexpr std::uint8_t kPlatformTdx = 3;
constexpr std::uint64_t kGuestPolicy = 0x30000;  // SMT allowed, bit 17 (must be one)
constexpr std::uint32_t kPageUnmeasured = 0x2;

void add_tdx_plan(IgvmWriter& w, const fw::LaunchPlan& plan) {
  for (const fw::LaunchOp& op : plan.ops()) {
    if (op.type == fw::PageType::kTdHob) continue;
    const bool measured = op.tdx_extend;
    fw::for_each_page(op, [&](std::uint64_t gpa, ByteView page) {
      w.page_data(gpa, op.type == fw::PageType::kNormal ? page : ByteView{},
                  measured ? 0 : kPageUnmeasured, 0, IgvmWriter::kTdxMask);
    });
  }
}

Result<Bytes> build(const std::string& image_path, std::uint32_t vcpus,
                    std::string_view vcpu_type) {
  auto bytes = cloister::read_file(image_path, fw::kFirmwareFileLimit);
  if (!bytes) return bytes.error();
  auto image = fw::OvmfImage::parse(std::make_shared<const Bytes>(std::move(bytes).value()));
  if (!image) return image.error().with_context(image_path);
  fw::SnpLaunchOptions snp_options;
  snp_options.vcpus = vcpus;
  auto signature = fw::vcpu_signature(vcpu_type);
  if (!signature) return signature.error();
  snp_options.vcpu_signature = *signature;
  auto snp = fw::build_snp_plan(*image, snp_options);
  if (!snp) return snp.error().with_context("SEV-SNP plan");
  auto tdx = fw::build_tdx_plan(*image);
  if (!tdx) return tdx.error().with_context("TDX plan");
  IgvmWriter w;
  w.platform(IgvmWriter::kSnpMask, kPlatformSevSnp)
      .platform(IgvmWriter::kTdxMask, kPlatformTdx)
      .guest_policy(kGuestPolicy, IgvmWriter::kSnpMask)
      .snp_plan(*snp, IgvmWriter::kSnpMask);
  add_tdx_plan(w, *tdx);
  return w.build();
}

}  // namespace

int main(int argc, char** argv) {
  std::uint32_t vcpus = 0;
  const std::string_view vcpus_text = argc == 5 ? argv[2] : "";
  const auto parsed =
      std::from_chars(vcpus_text.data(), vcpus_text.data() + vcpus_text.size(), vcpus);
  if (argc != 5 || parsed.ec != std::errc() ||
      parsed.ptr != vcpus_text.data() + vcpus_text.size()) {
    std::fprintf(stderr, "usage: make_test_guest_igvm IMAGE VCPUS VCPU_TYPE OUT\n");
    return 2;
  }
  const auto file = build(argv[1], vcpus, argv[3]);
  const cloister::Status written =
      file ? cloister::write_file_atomic(argv[4], *file) : cloister::Status(file.error());
  if (!written) {
    std::fprintf(stderr, "make_test_guest_igvm: %s\n", written.error().message().c_str());
    return 1;
  }
  return 0;
}
