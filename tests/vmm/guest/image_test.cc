// test-guest.bin as a confidential-launch image: the footer table, SEV and TDX metadata and reset
// vectors firmware-loader reads, what cloister-measure makes of it, and the IGVM files built
// from it (make_igvm.cc).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <variant>

#include "cli.h"
#include "cloister/common/file.h"
#include "cloister/firmware_loader/igvm.h"
#include "cloister/firmware_loader/ovmf.h"

extern "C" {
#include "guest_layout.h"
}

namespace cloister::testing {
namespace {

namespace fw = cloister::fw;
using nlohmann::json;

std::string guest_file(const std::string& name) {
  return std::string(CLOISTER_TEST_GUEST_DIR) + "/" + name;
}

std::shared_ptr<const Bytes> load(const std::string& name) {
  auto bytes = read_file(guest_file(name), fw::kIgvmFileLimit);
  EXPECT_TRUE(bytes.ok()) << bytes.error().message();
  return std::make_shared<const Bytes>(bytes.ok() ? std::move(bytes).value() : Bytes());
}

struct CliRun {
  int code;
  std::string out, err;
};

CliRun measure(std::vector<std::string> args) {
  std::ostringstream out, err;
  const int code = measure::run_cli(args, out, err);
  return {code, out.str(), err.str()};
}

// The launch digest (or MRTD) a successful run printed.
std::string digest_of(const CliRun& r) {
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.size(), 97u) << r.out;
  return r.out.substr(0, 96);
}

TEST(TestGuestImage, FooterTableAndResetVectorsAreOvmfShaped) {
  auto image = fw::OvmfImage::parse(load("test-guest.bin"));
  ASSERT_TRUE(image.ok()) << image.error().message();
  EXPECT_EQ(image->size(), 0x10000u);
  EXPECT_EQ(image->sev_es_reset_eip(), 0xffffffe0u);  // CS.base 0xffff0000, IP 0xffe0
  EXPECT_TRUE(image->has_sev_metadata());
  EXPECT_TRUE(image->has_tdx_metadata());
  EXPECT_FALSE(image->sev_hash_table());
  const ByteView b = image->bytes();
  // At 0xfffffff0: mov eax, cr0; test al, 1; jz +5; (32-bit) jmp rel32; (16-bit) jmp rel16.
  EXPECT_EQ(Bytes(b.begin() + 0xfff0, b.begin() + 0xfff8),
            (Bytes{0x0f, 0x20, 0xc0, 0xa8, 0x01, 0x74, 0x05, 0xe9}));
  EXPECT_EQ(b[0xfffc], 0xe9);
  EXPECT_EQ(b[0xffe0], 0xe9);  // the AP reset vector: a 16-bit jmp
}

TEST(TestGuestImage, SevMetadataPlacesSecretsAndCpuidAndPrevalidatesTheRamTheGuestUses) {
  auto image = fw::OvmfImage::parse(load("test-guest.bin"));
  ASSERT_TRUE(image.ok()) << image.error().message();
  auto sev = image->sev_metadata();
  ASSERT_TRUE(sev.ok()) << sev.error().message();
  using T = fw::SevSectionType;
  const std::vector<std::tuple<std::uint32_t, std::uint32_t, T>> expected = {
      {0x8000, 0xc000, T::kSnpSecMem},
      {0x14000, 0x1000, T::kSnpSecrets},
      {0x15000, 0x1000, T::kCpuid},
      {0x16000, 0x8a000, T::kSnpSecMem},
      {0x200000, 0x100000, T::kSnpSecMem}};
  ASSERT_EQ(sev->size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ((*sev)[i].gpa, std::get<0>(expected[i])) << i;
    EXPECT_EQ((*sev)[i].size, std::get<1>(expected[i])) << i;
    EXPECT_EQ((*sev)[i].type, std::get<2>(expected[i])) << i;
  }
  EXPECT_EQ((*sev)[1].gpa, static_cast<std::uint32_t>(GUEST_SNP_SECRETS));
}

TEST(TestGuestImage, TdxMetadataMeasuresTheImageAndTheHob) {
  auto image = fw::OvmfImage::parse(load("test-guest.bin"));
  ASSERT_TRUE(image.ok()) << image.error().message();
  auto tdx = image->tdx_metadata();
  ASSERT_TRUE(tdx.ok()) << tdx.error().message();
  using T = fw::TdvfSectionType;
  struct Section {
    std::uint32_t data_offset, raw_size;
    std::uint64_t gpa, size;
    T type;
    std::uint32_t attributes;
  };
  const std::vector<Section> expected = {
      {0, 0x10000, 0xffff0000, 0x10000, T::kBfv, 1}, {0, 0, 0x8000, 0xe000, T::kTempMem, 0},
      {0, 0, 0x16000, 0x2000, T::kTdHob, 1},         {0, 0, 0x18000, 0x88000, T::kTempMem, 0},
      {0, 0, 0x200000, 0x100000, T::kTempMem, 0},
  };
  ASSERT_EQ(tdx->size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const fw::TdvfSection& s = (*tdx)[i];
    EXPECT_EQ(s.data_offset, expected[i].data_offset) << i;
    EXPECT_EQ(s.raw_data_size, expected[i].raw_size) << i;
    EXPECT_EQ(s.memory_address, expected[i].gpa) << i;
    EXPECT_EQ(s.memory_data_size, expected[i].size) << i;
    EXPECT_EQ(s.type, expected[i].type) << i;
    EXPECT_EQ(s.attributes, expected[i].attributes) << i;
  }
}

TEST(TestGuestImage, CloisterMeasureGivesOneSnpDigestPerVcpuCountAndAnMrtd) {
  const std::string bin = guest_file("test-guest.bin");
  const std::string one = digest_of(measure(
      {"snp", "--ovmf", bin, "--vcpus", "1", "--vcpu-type", CLOISTER_TEST_GUEST_VCPU_TYPE}));
  const std::string four = digest_of(measure(
      {"snp", "--ovmf", bin, "--vcpus", "4", "--vcpu-type", CLOISTER_TEST_GUEST_VCPU_TYPE}));
  EXPECT_NE(one, four);
  const std::string mrtd = digest_of(measure({"tdx", "--ovmf", bin}));
  EXPECT_NE(mrtd, one);
}

TEST(TestGuestImage, IgvmFilesMeasureLikeTheImageWithTheirVcpuCount) {
  const std::string bin = guest_file("test-guest.bin");
  for (const auto& [file, vcpus] : std::vector<std::pair<std::string, int>>{
           {"test-guest.igvm", 1}, {"test-guest-smp4.igvm", 4}}) {
    const CliRun igvm = measure({"snp", "--igvm", guest_file(file), "--json"});
    ASSERT_EQ(igvm.code, 0) << igvm.err;
    const json doc = json::parse(igvm.out);
    EXPECT_EQ(doc["vcpus"], vcpus) << file;
    EXPECT_EQ(doc["guest_policy"], "0x30000") << file;
    EXPECT_EQ(doc["vmsa_features"], "0x1") << file;
    const std::string ovmf =
        digest_of(measure({"snp", "--ovmf", bin, "--vcpus", std::to_string(vcpus), "--vcpu-type",
                           CLOISTER_TEST_GUEST_VCPU_TYPE}));
    EXPECT_EQ(doc["measurement"], ovmf) << file;
  }
}

TEST(TestGuestImage, IgvmTdxPlatformMeasuresTheImagePagesOnly) {
  const auto image = load("test-guest.bin");
  auto file = fw::IgvmFile::parse(load("test-guest.igvm"));
  ASSERT_TRUE(file.ok()) << file.error().message();
  ASSERT_EQ(file->platforms().size(), 2u);
  EXPECT_EQ(file->platforms()[0].platform_type, 2);  // SEV_SNP
  EXPECT_EQ(file->platforms()[0].compatibility_mask, 0x1u);
  EXPECT_EQ(file->platforms()[1].platform_type, 3);  // TDX
  EXPECT_EQ(file->platforms()[1].compatibility_mask, 0x2u);
  std::size_t measured = 0, unmeasured = 0;
  for (const fw::IgvmDirective& d : file->directives()) {
    const auto* page = std::get_if<fw::IgvmPageData>(&d);
    if (page == nullptr || page->compatibility_mask != 0x2) continue;
    if (page->flags == 0) {
      ++measured;
      ASSERT_GE(page->gpa, 0xffff0000u);
      const std::size_t at = page->gpa - 0xffff0000u;
      EXPECT_EQ(Bytes(page->data.begin(), page->data.end()),
                Bytes(image->begin() + static_cast<std::ptrdiff_t>(at),
                      image->begin() + static_cast<std::ptrdiff_t>(at + 0x1000)));
    } else {
      EXPECT_EQ(page->flags, 0x2u);  // unmeasured
      EXPECT_TRUE(page->data.empty());
      ++unmeasured;
    }
  }
  EXPECT_EQ(measured, 16u);                                           // the 64 KiB image
  EXPECT_EQ(unmeasured, (0xe000u + 0x88000u + 0x100000u) / 0x1000u);  // TempMem
}

}  // namespace
}  // namespace cloister::testing
