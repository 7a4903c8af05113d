// Every case of ../shared/vectors/measure/tdx_cases.json: the parse expectations, the MRTD of
// the image and its mutations under both page orders, the CFV digest, the refused image, and
// (when this machine has the exact Debian ovmf package files) the package-file cases.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <sstream>

#include "cli.h"
#include "cloister/common/file.h"
#include "cloister/common/hex.h"
#include "cloister/firmware_loader/machine.h"
#include "cloister/firmware_loader/tdx.h"
#include "cloister/measure/tdx_mrtd.h"
#include "snp_case.h"
#include "support/vectors.h"

namespace cloister::measure {
namespace {

using ::cloister::testing::load_json;

std::uint64_t number(const nlohmann::json& v) {
  return std::stoull(v.get<std::string>(), nullptr, 0);
}

// Applies the case's "mutation" sentence. The three forms used by the file are understood;
// anything else fails the test rather than being skipped.
Result<Bytes> mutate(Bytes image, const nlohmann::json& mutation) {
  if (mutation.is_null()) return image;
  const std::string text = mutation.get<std::string>();
  std::smatch m;
  if (std::regex_search(
          text, m,
          std::regex(R"(bytes \[(0x[0-9a-f]+), (0x[0-9a-f]+)\).* set to (0x[0-9a-f]+))"))) {
    const auto begin = std::stoull(m[1], nullptr, 0), end = std::stoull(m[2], nullptr, 0);
    std::fill(image.begin() + static_cast<long>(begin), image.begin() + static_cast<long>(end),
              static_cast<std::uint8_t>(std::stoul(m[3], nullptr, 0)));
    return image;
  }
  if (std::regex_search(text, m,
                        std::regex(R"(byte at file offset (0x[0-9a-f]+).*XOR (0x[0-9a-f]+))"))) {
    image[std::stoull(m[1], nullptr, 0)] ^= static_cast<std::uint8_t>(std::stoul(m[2], nullptr, 0));
    return image;
  }
  if (std::regex_search(text, m, std::regex(R"(drop the first (0x[0-9a-f]+) bytes)"))) {
    image.erase(image.begin(), image.begin() + static_cast<long>(std::stoull(m[1], nullptr, 0)));
    return image;
  }
  return Error("unknown mutation: " + text);
}

Result<Sha384Digest> mrtd_of(const fw::OvmfImage& image, fw::TdxPageOrder order) {
  CLOISTER_TRY(const fw::LaunchPlan plan, fw::build_tdx_plan(image, {order}));
  return tdx_mrtd(plan);
}

// A refusal matches the vector's explanation when every hex number it names appears in ours
// and ours speaks of the TDX metadata.
void expect_refusal_like(const std::string& ours, const std::string& expected) {
  EXPECT_THAT(ours, ::testing::AnyOf(::testing::HasSubstr("TDVF"), ::testing::HasSubstr("TDX")));
  const std::regex hex_number("0x[0-9a-f]+");
  for (auto it = std::sregex_iterator(expected.begin(), expected.end(), hex_number);
       it != std::sregex_iterator(); ++it) {
    EXPECT_THAT(ours, ::testing::HasSubstr(it->str())) << "expected: " << expected;
  }
}

void check_case(const nlohmann::json& c, const Bytes& firmware) {
  if (c.contains("firmware_sha256") || c.contains("image_sha256")) {
    const std::string want = c.contains("image_sha256") ? c["image_sha256"] : c["firmware_sha256"];
    ASSERT_EQ(to_hex(sha256(firmware)), want);
  }
  auto bytes = mutate(firmware, c.contains("mutation") ? c["mutation"] : nlohmann::json());
  ASSERT_TRUE(bytes.ok()) << bytes.error().message();
  auto image = fw::OvmfImage::parse(std::make_shared<const Bytes>(std::move(bytes).value()));
  ASSERT_TRUE(image.ok()) << image.error().message();
  if (c.contains("expect_error")) {
    auto mrtd = mrtd_of(*image, fw::TdxPageOrder::kSinglePass);
    ASSERT_FALSE(mrtd.ok());
    expect_refusal_like(mrtd.error().message(), c["expect_error"]);
    return;
  }
  auto single = mrtd_of(*image, fw::TdxPageOrder::kSinglePass);
  auto two = mrtd_of(*image, fw::TdxPageOrder::kTwoPass);
  ASSERT_TRUE(single.ok()) << single.error().message();
  ASSERT_TRUE(two.ok()) << two.error().message();
  EXPECT_EQ(to_hex(*single), c["mrtd_single_pass"].get<std::string>());
  EXPECT_EQ(to_hex(*two), c["mrtd_two_pass"].get<std::string>());
  if (c.contains("cfv_sha384")) {
    auto cfv = tdvf_cfv_digest(*image);
    ASSERT_TRUE(cfv.ok()) << cfv.error().message();
    EXPECT_EQ(to_hex(*cfv), c["cfv_sha384"].get<std::string>());
  }
}

TEST(TdxVectors, ParseExpectations) {
  CLOISTER_REQUIRE_VECTOR(path, "measure/tdx_cases.json");
  const nlohmann::json e = load_json(path)["parse_expectations"];
  const Bytes firmware =
      ::cloister::testing::read_vector(path.parent_path() / e["firmware"].get<std::string>());
  ASSERT_EQ(to_hex(sha256(firmware)), e["firmware_sha256"].get<std::string>());
  auto image = fw::OvmfImage::parse(std::make_shared<const Bytes>(firmware));
  ASSERT_TRUE(image.ok()) << image.error().message();

  std::vector<std::string> guids;
  for (const fw::FooterEntry& entry : image->footer_entries())
    guids.push_back(entry.guid.to_string());
  std::vector<std::string> expected_guids = e["ovmf_table_entry_guids"];
  std::sort(guids.begin(), guids.end());
  std::sort(expected_guids.begin(), expected_guids.end());
  EXPECT_EQ(guids, expected_guids);
  EXPECT_EQ(fw::Guid::from_stored(
                ByteView(firmware).subspan(number(e["ovmf_footer_guid_file_offset"]), 16))
                .to_string(),
            e["ovmf_footer_table_guid"].get<std::string>());
  auto tdx_entry = fw::Guid::parse(e["tdx_metadata_offset_guid"].get<std::string>());
  ASSERT_TRUE(tdx_entry.ok());
  const fw::FooterEntry* entry = image->find_entry(*tdx_entry);
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(load_le32(entry->data, 0), number(e["tdx_metadata_offset_value"]));
  EXPECT_EQ(firmware.size() - load_le32(entry->data, 0), number(e["tdvf_descriptor_file_offset"]));
  EXPECT_EQ(fw::Guid::from_stored(
                ByteView(firmware).subspan(number(e["tdx_metadata_guid_file_offset"]), 16))
                .to_string(),
            e["tdx_metadata_guid"].get<std::string>());

  auto sections = image->tdx_metadata();
  ASSERT_TRUE(sections.ok()) << sections.error().message();
  ASSERT_EQ(sections->size(), e["sections"].size());
  EXPECT_EQ(e["descriptor"]["number_of_section_entries"].get<std::size_t>(), sections->size());
  for (std::size_t i = 0; i < sections->size(); ++i) {
    const nlohmann::json& want = e["sections"][i];
    const fw::TdvfSection& got = (*sections)[i];
    SCOPED_TRACE("section " + std::to_string(i));
    EXPECT_EQ(std::string(fw::to_string(got.type)), want["type"].get<std::string>());
    EXPECT_EQ(static_cast<std::uint32_t>(got.type), want["type_id"].get<std::uint32_t>());
    EXPECT_EQ(got.data_offset, number(want["data_offset"]));
    EXPECT_EQ(got.raw_data_size, number(want["raw_data_size"]));
    EXPECT_EQ(got.memory_address, number(want["memory_address"]));
    EXPECT_EQ(got.memory_data_size, number(want["memory_data_size"]));
    EXPECT_EQ(got.attributes, number(want["attributes"]));
    EXPECT_EQ(got.mr_extend(), want["mr_extend"].get<bool>());
    EXPECT_EQ(got.page_aug(), want["page_aug"].get<bool>());
  }

  auto plan = fw::build_tdx_plan(*image);
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  std::uint64_t adds = 0, extends = 0;
  for (const fw::LaunchOp& op : plan->ops()) {
    adds += op.page_count();
    if (op.tdx_extend) extends += op.page_count() * 16;
  }
  EXPECT_EQ(adds, e["page_add_count"].get<std::uint64_t>());
  EXPECT_EQ(extends, e["mr_extend_count"].get<std::uint64_t>());
  EXPECT_EQ(adds * 128 + extends * (128 + 256), e["mrtd_input_bytes"].get<std::uint64_t>());
}

TEST(TdxVectors, EveryCaseReproduces) {
  CLOISTER_REQUIRE_VECTOR(path, "measure/tdx_cases.json");
  const nlohmann::json doc = load_json(path);
  ASSERT_GE(doc["cases"].size(), 4u);
  for (const nlohmann::json& c : doc["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    check_case(
        c, ::cloister::testing::read_vector(path.parent_path() / c["firmware"].get<std::string>()));
  }
}

// The first case through the CLI, in both page orders, with --json.
TEST(TdxVectors, CliPrintsMrtdAndCfvDigest) {
  CLOISTER_REQUIRE_VECTOR(path, "measure/tdx_cases.json");
  const nlohmann::json c = load_json(path)["cases"][0];
  const std::string firmware = (path.parent_path() / c["firmware"].get<std::string>()).string();
  for (const auto& [order, key] :
       {std::pair{"single-pass", "mrtd_single_pass"}, std::pair{"two-pass", "mrtd_two_pass"}}) {
    std::ostringstream out, err;
    ASSERT_EQ(run_cli(std::vector<std::string>{"tdx", "--ovmf", firmware, "--page-order", order,
                                               "--json"},
                      out, err),
              kExitOk)
        << err.str();
    const auto doc = nlohmann::json::parse(out.str());
    EXPECT_EQ(doc["mrtd"], c[key]);
    EXPECT_EQ(doc["cfv_sha384"], c["cfv_sha384"]);
    EXPECT_EQ(doc["inputs"]["page_order"], order);
    EXPECT_EQ(doc["reference_values"]["tdx"]["mr_td"][0], c[key]);
  }
}

// Files of the Debian ovmf package, checked only when this machine has byte-identical ones.
TEST(TdxVectors, DebianPackageFileCases) {
  CLOISTER_REQUIRE_VECTOR(path, "measure/tdx_cases.json");
  const nlohmann::json doc = load_json(path);
  std::size_t ran = 0;
  for (const nlohmann::json& c : doc["package_file_cases_not_in_shared"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    Bytes image;
    bool available = true;
    if (c.contains("construct")) {
      std::istringstream words(c["construct"].get<std::string>());
      std::string word;
      words >> word;
      ASSERT_EQ(word, "cat") << "only 'cat A B ...' constructions are understood";
      while (words >> word) {
        auto part = read_file(word, fw::kFirmwareFileLimit);
        if (!part) {
          available = false;
          break;
        }
        image.insert(image.end(), part->begin(), part->end());
      }
      available = available && to_hex(sha256(image)) == c["image_sha256"].get<std::string>();
    } else {
      auto file = read_file(c["file"].get<std::string>(), fw::kFirmwareFileLimit);
      available = file.ok();
      if (available) image = std::move(file).value();
    }
    if (!available) continue;
    if (c.contains("expect_error")) {
      auto parsed = fw::OvmfImage::parse(std::make_shared<const Bytes>(image));
      ASSERT_TRUE(parsed.ok()) << parsed.error().message();
      auto plan = fw::build_tdx_plan(*parsed);
      ASSERT_FALSE(plan.ok());
      expect_refusal_like(plan.error().message(), c["expect_error"]);
    } else {
      check_case(c, image);
    }
    ++ran;
  }
  if (ran == 0) {
    GTEST_SKIP() << "Debian ovmf 2022.11-6+deb12u2 files not installed (apt-get install ovmf)";
  }
}

}  // namespace
}  // namespace cloister::measure
