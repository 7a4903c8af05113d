// Writes the committed fuzz seeds: small well-formed and near-miss OVMF images and IGVM files,
// made with the same builders the tests use.
//   usage: make_fuzz_seeds OUT_DIR   (writes OUT_DIR/ovmf/*.bin and OUT_DIR/igvm/*.igvm)
#include <cstdio>
#include <filesystem>
#include <string>

#include "cloister/common/file.h"
#include "cloister/firmware_loader/ovmf.h"
#include "cloister/firmware_loader/snp.h"
#include "cloister/firmware_loader/vmsa.h"
#include "igvm_writer.h"
#include "ovmf_builder.h"

namespace {

using cloister::Bytes;
using cloister::testing::IgvmWriter;
using cloister::testing::OvmfImageBuilder;

bool write(const std::filesystem::path& path, const Bytes& bytes) {
  auto ok = cloister::write_file_atomic(path, bytes);
  if (!ok) std::fprintf(stderr, "make_fuzz_seeds: %s\n", ok.error().message().c_str());
  return ok.ok();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_fuzz_seeds OUT_DIR\n");
    return 2;
  }
  const std::filesystem::path out = argv[1];
  std::filesystem::create_directories(out / "ovmf");
  std::filesystem::create_directories(out / "igvm");
  bool ok = true;

  ok &= write(out / "ovmf" / "snp.bin", cloister::testing::amdsev_like_image(0x2000).build());
  OvmfImageBuilder tdx(0x4000);
  tdx.reset_eip(0x808004).tdx_metadata({{0x2000, 0x1000, 0xffffe000, 0x2000, 0, 1},
                                        {0x0, 0x1000, 0xffffc000, 0x1000, 1, 0},
                                        {0, 0, 0x809000, 0x2000, 2, 0},
                                        {0, 0, 0x800000, 0x6000, 3, 0}});
  ok &= write(out / "ovmf" / "tdx.bin", tdx.build());
  OvmfImageBuilder svsm(0x2000);
  svsm.svsm_entry(0x100).sev_metadata({{0x0, 0x9e000, 1}, {0x9e000, 0x1000, 2}});
  ok &= write(out / "ovmf" / "svsm.bin", svsm.build());
  OvmfImageBuilder overlap(0x2000);
  overlap.reset_eip(0x80b004).sev_metadata({{0x800000, 0x9000, 1}, {0x808000, 0x1000, 3}});
  ok &= write(out / "ovmf" / "overlap.bin", overlap.build());
  OvmfImageBuilder truncated(0x2000);
  truncated.reset_eip(0x80b004);
  Bytes t = truncated.build();
  cloister::store_le16(t, truncated.table_size_offset(), 18 + 22 + 5);
  ok &= write(out / "ovmf" / "truncated_entry.bin", t);

  // IGVM: the SNP image above as a launch (so its digest equals the OVMF plan's), and a file
  // with every supported directive.
  auto image =
      cloister::fw::OvmfImage::parse(cloister::testing::amdsev_like_image(0x2000).shared());
  cloister::fw::SnpLaunchOptions options;
  options.vcpus = 2;
  options.vcpu_signature = 0x800f12;
  auto plan = cloister::fw::build_snp_plan(*image, options);
  if (!plan) {
    std::fprintf(stderr, "make_fuzz_seeds: %s\n", plan.error().message().c_str());
    return 1;
  }
  ok &= write(out / "igvm" / "ovmf_plan.igvm", cloister::testing::igvm_from_snp_plan(*plan));
  const Bytes page(0x1000, 0x5a);
  cloister::fw::VmsaRegisters registers;
  registers.sev_features = 1;
  const auto vmsa = cloister::fw::encode_vmsa(registers);
  IgvmWriter all;
  all.platform(IgvmWriter::kSnpMask, 2)
      .platform(0x2, 3)
      .guest_policy(0x30000)
      .page_data(0x100000, page)
      .page_data(0x101000, {})
      .page_data(0x102000, {}, 0, 1)
      .page_data(0x103000, {}, 0, 2)
      .page_data(0x104000, page, 0x2)
      .parameter_area(0x1000, 7)
      .parameter(0x307, 7, 0)
      .parameter(0x30C, 7, 16)
      .parameter_insert(0x105000, 7)
      .required_memory(0x0, 0x100000)
      .vp_context(cloister::fw::kSnpVmsaGpa, 0, vmsa)
      .snp_id_block({});
  ok &= write(out / "igvm" / "all_directives.igvm", all.build());
  IgvmWriter tdx_file;
  tdx_file.platform(IgvmWriter::kTdxMask, 3)
      .guest_policy(0x2, IgvmWriter::kTdxMask)
      .page_data(0x100000, page, 0, 0, IgvmWriter::kTdxMask)
      .page_data(0x101000, {}, 0, 0, IgvmWriter::kTdxMask)
      .page_data(0x102000, page, 0x2, 0, IgvmWriter::kTdxMask)
      .parameter_area(0x1000, 7)
      .parameter(0x307, 7, 0)
      .parameter_insert(0x103000, 7, IgvmWriter::kTdxMask)
      .required_memory(0x0, 0x100000, IgvmWriter::kTdxMask);
  ok &= write(out / "igvm" / "tdx.igvm", tdx_file.build());
  return ok ? 0 : 1;
}
