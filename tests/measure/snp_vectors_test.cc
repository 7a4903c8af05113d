// Every case of ../shared/vectors/measure/snp_cases.json (sev-snp-measure 0.0.13 outputs):
// through the library, through the CLI with the exact sev-snp-measure argument vector, and
// through an IGVM file built from the case's pages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <sstream>

#include "cli.h"
#include "cloister/common/file.h"
#include "cloister/common/hex.h"
#include "cloister/firmware_loader/igvm.h"
#include "cloister/measure/snp_digest.h"
#include "igvm_writer.h"
#include "snp_case.h"
#include "support/vectors.h"

namespace cloister::measure {
namespace {

using ::cloister::testing::load_json;
using ::cloister::testing::snp_case_plan;

constexpr std::size_t kCases = 52;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// sev-snp-measure's refusal without its "Error: " prefix and " (exit code N)" suffix.
std::string refusal_core(std::string expected) {
  if (expected.starts_with("Error: ")) expected.erase(0, 7);
  if (auto at = expected.rfind(" (exit code"); at != std::string::npos) expected.erase(at);
  return expected;
}

void expect_same_refusal(const std::string& ours, const nlohmann::json& c) {
  ASSERT_TRUE(c.contains("expected_error")) << "a refused case must say why";
  const std::string core = refusal_core(c["expected_error"].get<std::string>());
  EXPECT_NE(lower(ours).find(lower(core)), std::string::npos)
      << "ours: " << ours << "\nsev-snp-measure: " << core;
}

TEST(SnpVectors, EveryCaseReproducesThroughTheLibrary) {
  CLOISTER_REQUIRE_VECTOR(path, "measure/snp_cases.json");
  const nlohmann::json cases = load_json(path);
  ASSERT_EQ(cases.size(), kCases);
  std::size_t digests = 0, refusals = 0;
  for (const nlohmann::json& c : cases) {
    SCOPED_TRACE(c["name"].get<std::string>());
    auto plan = snp_case_plan(c, path.parent_path());
    if (c["expected_ld_hex"].is_null()) {
      ASSERT_FALSE(plan.ok()) << "sev-snp-measure refuses this input";
      expect_same_refusal(plan.error().message(), c);
      ++refusals;
      continue;
    }
    ASSERT_TRUE(plan.ok()) << plan.error().message();
    auto digest = snp_launch_digest(*plan);
    ASSERT_TRUE(digest.ok()) << digest.error().message();
    EXPECT_EQ(to_hex(*digest), c["expected_ld_hex"].get<std::string>());
    ++digests;
  }
  EXPECT_EQ(digests + refusals, kCases);
  EXPECT_EQ(refusals, 2u);
}

TEST(SnpVectors, EveryCaseReproducesThroughTheCliWithSevSnpMeasureArguments) {
  CLOISTER_REQUIRE_VECTOR(path, "measure/snp_cases.json");
  const nlohmann::json cases = load_json(path);
  ASSERT_EQ(cases.size(), kCases);
  const std::string dir = path.parent_path().string() + "/";
  for (const nlohmann::json& c : cases) {
    SCOPED_TRACE(c["name"].get<std::string>());
    std::vector<std::string> args;
    bool path_next = false;
    for (const auto& arg : c["sev_snp_measure_args"]) {
      const std::string a = arg.get<std::string>();
      args.push_back(path_next ? dir + a : a);
      path_next = a == "--ovmf" || a == "--kernel" || a == "--initrd" || a == "--svsm" ||
                  a == "--vars-file";
    }
    std::ostringstream out, err;
    const int code = run_cli(args, out, err);
    if (c["expected_ld_hex"].is_null()) {
      EXPECT_EQ(code, kExitBadInput);
      EXPECT_EQ(out.str(), "");
      const std::string message = err.str();
      EXPECT_EQ(std::count(message.begin(), message.end(), '\n'), 1) << message;
      expect_same_refusal(message, c);
    } else {
      EXPECT_EQ(code, kExitOk) << err.str();
      EXPECT_EQ(out.str(), c["expected_ld_hex"].get<std::string>() + "\n");
    }
  }
}

// The IGVM path: for every launchable case (not the firmware-only mode, not seeded with a
// precomputed firmware digest) an IGVM file written from the case's pages by the test
// generator measures to the case's expected digest.
TEST(IgvmVectors, IgvmFromEachCasesPagesReproducesItsDigest) {
  CLOISTER_REQUIRE_VECTOR(path, "measure/snp_cases.json");
  const nlohmann::json cases = load_json(path);
  std::size_t checked = 0;
  for (const nlohmann::json& c : cases) {
    if (c["expected_ld_hex"].is_null() || c["mode"] == "snp:ovmf-hash" ||
        (c.contains("ovmf_hash") && !c["ovmf_hash"].is_null())) {
      continue;
    }
    SCOPED_TRACE(c["name"].get<std::string>());
    auto plan = snp_case_plan(c, path.parent_path());
    ASSERT_TRUE(plan.ok()) << plan.error().message();
    auto file = fw::IgvmFile::parse(
        std::make_shared<const Bytes>(::cloister::testing::igvm_from_snp_plan(*plan)));
    ASSERT_TRUE(file.ok()) << file.error().message();
    auto igvm_plan = fw::build_snp_plan(*file);
    ASSERT_TRUE(igvm_plan.ok()) << igvm_plan.error().message();
    EXPECT_EQ(igvm_plan->vcpu_count(), plan->vcpu_count());
    auto digest = snp_launch_digest(*igvm_plan);
    ASSERT_TRUE(digest.ok());
    EXPECT_EQ(to_hex(*digest), c["expected_ld_hex"].get<std::string>());
    ++checked;
  }
  EXPECT_EQ(checked, 45u);
}

// The same through the CLI, for a multi-vCPU direct-boot case, once with an ID block that
// expects the case's digest and once with one that does not (the firmware would refuse it).
TEST(IgvmVectors, CliMeasuresAnIgvmFileAndChecksItsIdBlock) {
  CLOISTER_REQUIRE_VECTOR(path, "measure/snp_cases.json");
  const nlohmann::json cases = load_json(path);
  const auto c = std::find_if(cases.begin(), cases.end(), [](const nlohmann::json& x) {
    return x["name"] == "amdsev_qemu_milan_2vcpu_kia_gf21";
  });
  ASSERT_NE(c, cases.end());
  auto plan = snp_case_plan(*c, path.parent_path());
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  const std::string expected = (*c)["expected_ld_hex"];
  auto expected_bytes = from_hex_exact(expected, 48);
  ASSERT_TRUE(expected_bytes.ok());
  Sha384Digest ld{};
  std::copy(expected_bytes->begin(), expected_bytes->end(), ld.begin());
  const auto file = std::filesystem::temp_directory_path() /
                    ("cloister-igvm-" + std::to_string(::getpid()) + ".igvm");
  auto run = [&](const std::vector<std::string>& args, std::string& out, std::string& err) {
    std::ostringstream o, e;
    const int code = run_cli(args, o, e);
    out = o.str();
    err = e.str();
    return code;
  };
  std::string out, err;

  ASSERT_TRUE(
      write_file_atomic(file, ::cloister::testing::igvm_from_snp_plan(*plan, 0x30000, ld)).ok());
  EXPECT_EQ(run({"snp", "--igvm", file.string(), "--vcpus", "2"}, out, err), kExitOk) << err;
  EXPECT_EQ(out, expected + "\n");
  EXPECT_EQ(run({"snp", "--igvm", file.string(), "--vcpus", "3"}, out, err), kExitBadInput);
  EXPECT_THAT(err, ::testing::HasSubstr("IGVM file has VP contexts for 2 vCPUs"));
  EXPECT_EQ(run({"snp", "--igvm", file.string(), "--ovmf", "x"}, out, err), kExitBadInput);
  EXPECT_THAT(err, ::testing::HasSubstr("--ovmf does not apply to --igvm"));

  ld[0] ^= 1;
  ASSERT_TRUE(
      write_file_atomic(file, ::cloister::testing::igvm_from_snp_plan(*plan, 0x30000, ld)).ok());
  EXPECT_EQ(run({"snp", "--igvm", file.string()}, out, err), kExitBadInput);
  EXPECT_THAT(err, ::testing::HasSubstr("ID block expects launch digest"));
  EXPECT_THAT(err, ::testing::HasSubstr("but its pages measure " + expected));
  std::filesystem::remove(file);
}

}  // namespace
}  // namespace cloister::measure
