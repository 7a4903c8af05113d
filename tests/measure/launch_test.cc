// What the plans of fw::plan_launch() measure to: a TDX IGVM file's MRTD against the record
// stream written out here, when the TD HOB enters MRTD, Debian's OVMF unchanged by it, the
// cloister VMM profile against sev-snp-measure's QEMU digests, and the command line's options
// for all of it.
#include "cloister/firmware_loader/launch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli.h"
#include "cloister/common/file.h"
#include "cloister/common/hex.h"
#include "cloister/measure/snp_digest.h"
#include "cloister/measure/tdx_mrtd.h"
#include "igvm_writer.h"
#include "ovmf_builder.h"
#include "snp_case.h"
#include "support/vectors.h"

namespace cloister::measure {
namespace {

using ::cloister::testing::IgvmWriter;
using ::testing::HasSubstr;

struct CliRun {
  int code;
  std::string out;
  std::string err;
};

CliRun run(std::vector<std::string> args) {
  std::ostringstream out, err;
  const int code = run_cli(args, out, err);
  return {code, out.str(), err.str()};
}

// A file in the temporary directory, removed at the end of the test.
class TempFile {
 public:
  TempFile(const std::string& name, const Bytes& bytes)
      : path_(std::filesystem::temp_directory_path() / (name + "-" + std::to_string(::getpid()))) {
    EXPECT_TRUE(write_file_atomic(path_, bytes).ok());
  }
  ~TempFile() { std::filesystem::remove(path_); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// The 128-byte MRTD records of tdx_mrtd.h: the operation name, zeros to 16, the GPA, zeros.
void add_record(Bytes& stream, const char* name, std::uint64_t gpa) {
  Bytes r(128, 0);
  std::memcpy(r.data(), name, std::strlen(name));
  store_le64(r, 16, gpa);
  stream.insert(stream.end(), r.begin(), r.end());
}

void add_page(Bytes& stream, std::uint64_t gpa, const Bytes* extended) {
  add_record(stream, "MEM.PAGE.ADD", gpa);
  if (extended == nullptr) return;
  for (std::size_t c = 0; c < 16; ++c) {
    add_record(stream, "MR.EXTEND", gpa + c * 256);
    stream.insert(stream.end(), extended->begin() + static_cast<std::ptrdiff_t>(c * 256),
                  extended->begin() + static_cast<std::ptrdiff_t>(c * 256 + 256));
  }
}

// A TDX IGVM file, with an SNP platform whose pages must not enter the MRTD: a measured page
// of data, a measured page without data, an unmeasured page and an inserted parameter area.
Bytes tdx_igvm(const Bytes& data) {
  constexpr std::uint32_t kTdx = IgvmWriter::kTdxMask;
  return IgvmWriter()
      .platform(IgvmWriter::kSnpMask, 2)
      .platform(kTdx, 3)
      .page_data(0x200000, data)
      .page_data(0x100000, data, 0, 0, kTdx)
      .page_data(0x101000, {}, 0, 0, kTdx)
      .page_data(0x102000, data, 0x2, 0, kTdx)
      .parameter_area(0x1000, 1)
      .parameter(0x307, 1, 0)
      .parameter_insert(0x103000, 1, kTdx)
      .build();
}

TEST(TdxIgvm, MrtdIsTheRecordStreamOfItsTdxPages) {
  Bytes data(fw::kPageSize);
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 7);
  const Bytes zeros(fw::kPageSize, 0);
  Bytes stream;
  add_page(stream, 0x100000, &data);
  add_page(stream, 0x101000, &zeros);
  add_page(stream, 0x102000, nullptr);
  add_page(stream, 0x103000, nullptr);
  const Sha384Digest expected = sha384(stream);

  fw::LaunchInputs in;
  in.tee = fw::Tee::kTdx;
  in.igvm = fw::LaunchFile{"--igvm t.igvm", std::make_shared<const Bytes>(tdx_igvm(data))};
  auto plan = fw::plan_launch(in);
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(tdx_mrtd(*plan).value(), expected);

  const TempFile file("cloister-tdx", tdx_igvm(data));
  const CliRun r = run({"tdx", "--igvm", file.path(), "--vcpus", "2", "--json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["mrtd"], to_hex(expected));
  EXPECT_EQ(doc["inputs"]["igvm"], file.path());
  EXPECT_EQ(doc["inputs"]["vcpus"], 2);
  EXPECT_FALSE(doc["inputs"].contains("memory")) << "an IGVM file has no TD HOB";
}

Sha384Digest mrtd_of(const Bytes& firmware, std::uint64_t memory, std::uint32_t vcpus) {
  fw::LaunchInputs in;
  in.tee = fw::Tee::kTdx;
  in.firmware = fw::LaunchFile{"--ovmf tdvf.fd", std::make_shared<const Bytes>(firmware)};
  in.memory_bytes = memory;
  in.vcpus = vcpus;
  auto plan = fw::plan_launch(in);
  EXPECT_TRUE(plan.ok()) << plan.error().message();
  return plan.ok() ? tdx_mrtd(*plan).value() : Sha384Digest{};
}

// The TD HOB enters MRTD only through a TD_HOB section with MR.EXTEND; then its vCPU count and
// memory map do.
TEST(TdHob, EntersMrtdExactlyWhenItsSectionIsExtended) {
  const Bytes plain = ::cloister::testing::tdvf_like_image(0).build();
  EXPECT_EQ(mrtd_of(plain, 64ull << 20, 1), mrtd_of(plain, 64ull << 20, 4));
  EXPECT_EQ(mrtd_of(plain, 64ull << 20, 1), mrtd_of(plain, 6ull << 30, 1));
  const Bytes extended = ::cloister::testing::tdvf_like_image(1).build();
  EXPECT_NE(mrtd_of(extended, 64ull << 20, 1), mrtd_of(extended, 64ull << 20, 4));
  EXPECT_NE(mrtd_of(extended, 64ull << 20, 1), mrtd_of(extended, 6ull << 30, 1));
  EXPECT_EQ(mrtd_of(extended, 64ull << 20, 4), mrtd_of(extended, 64ull << 20, 4));
  EXPECT_NE(mrtd_of(extended, 64ull << 20, 1), mrtd_of(plain, 64ull << 20, 1));
}

// Debian's TDVF does not extend its TD_HOB section, so its MRTD (the shared vector's, when the
// package file is that one) does not depend on the TD HOB this project writes.
TEST(TdHob, DebianOvmfMrtdDoesNotDependOnTheHob) {
  auto firmware = read_file("/usr/share/ovmf/OVMF.fd", fw::kFirmwareFileLimit);
  if (!firmware) {
    GTEST_SKIP() << "no /usr/share/ovmf/OVMF.fd (" << firmware.error().message()
                 << "): install Debian's ovmf package (scripts/deps/build.txt)";
  }
  const Sha384Digest mrtd = mrtd_of(*firmware, fw::kDefaultGuestMemory, 1);
  EXPECT_EQ(mrtd_of(*firmware, 64ull << 20, 1), mrtd);
  EXPECT_EQ(mrtd_of(*firmware, 6ull << 30, 4), mrtd);
  EXPECT_EQ(mrtd_of(*firmware, 1ull << 40, 254), mrtd);
  const auto vectors = ::cloister::testing::vector_path("measure/tdx_cases.json");
  if (!vectors) return;
  const nlohmann::json c = ::cloister::testing::load_json(*vectors)["cases"][0];
  if (to_hex(sha256(*firmware)) == c["firmware_sha256"].get<std::string>()) {
    EXPECT_EQ(to_hex(mrtd), c["mrtd_single_pass"].get<std::string>());
  }
}

TEST(TdxCli, MemoryAndVcpusForTheTdHob) {
  const TempFile file("cloister-tdvf", ::cloister::testing::tdvf_like_image(1).build());
  const CliRun defaults = run({"tdx", "--ovmf", file.path(), "--json"});
  ASSERT_EQ(defaults.code, kExitOk) << defaults.err;
  const auto doc = nlohmann::json::parse(defaults.out);
  EXPECT_EQ(doc["inputs"]["memory"], 128ull << 20);
  EXPECT_EQ(doc["inputs"]["vcpus"], 1);
  EXPECT_EQ(doc["mrtd"],
            to_hex(mrtd_of(::cloister::testing::tdvf_like_image(1).build(), 128ull << 20, 1)));

  const CliRun given = run({"tdx", "--ovmf", file.path(), "--memory", "6G", "--vcpus", "4", "-v"});
  ASSERT_EQ(given.code, kExitOk) << given.err;
  EXPECT_THAT(given.out, HasSubstr("memory: 6442450944\n"));
  EXPECT_THAT(given.out, HasSubstr("vcpus: 4\n"));
  EXPECT_THAT(
      given.out,
      HasSubstr("Calculated TDX MRTD: " +
                to_hex(mrtd_of(::cloister::testing::tdvf_like_image(1).build(), 6ull << 30, 4)) +
                "\n"));

  const CliRun bad = run({"tdx", "--ovmf", file.path(), "--memory", "6T"});
  EXPECT_EQ(bad.code, kExitBadInput);
  EXPECT_THAT(bad.err, HasSubstr("memory: unknown size suffix \"T\" (expected K, M or G)"));
  const CliRun small = run({"tdx", "--ovmf", file.path(), "--memory", "4M"});
  EXPECT_EQ(small.code, kExitBadInput);
  EXPECT_THAT(small.err, HasSubstr("is not inside guest RAM [0x0, 0x400000)"));
  const CliRun many = run({"tdx", "--ovmf", file.path(), "--vcpus", "255"});
  EXPECT_EQ(many.code, kExitBadInput);
  EXPECT_THAT(many.err, HasSubstr("--vcpus 255 is more than the 254 vCPUs"));
  const CliRun igvm_memory = run({"tdx", "--igvm", file.path(), "--memory", "1G"});
  EXPECT_EQ(igvm_memory.code, kExitBadInput);
  EXPECT_THAT(igvm_memory.err, HasSubstr("--memory does not apply to --igvm"));
  const CliRun both = run({"tdx", "--ovmf", file.path(), "--igvm", "x"});
  EXPECT_EQ(both.code, kExitBadInput);
  EXPECT_THAT(both.err, HasSubstr("--ovmf does not apply to --igvm"));
}

// The cloister profile's registers are QEMU's: every launchable sev-snp-measure QEMU case
// measures to its expected digest with --vmm-type cloister as well.
TEST(CloisterProfile, MeasuresLikeQemuOnEveryQemuVector) {
  CLOISTER_REQUIRE_VECTOR(path, "measure/snp_cases.json");
  std::size_t checked = 0;
  for (const nlohmann::json& c : ::cloister::testing::load_json(path)) {
    if (c["expected_ld_hex"].is_null() || c["vmm_type"] != "QEMU" || c["mode"] != "snp") continue;
    SCOPED_TRACE(c["name"].get<std::string>());
    nlohmann::json as_cloister = c;
    as_cloister["vmm_type"] = "cloister";
    auto plan = ::cloister::testing::snp_case_plan(as_cloister, path.parent_path());
    ASSERT_TRUE(plan.ok()) << plan.error().message();
    EXPECT_EQ(to_hex(snp_launch_digest(*plan).value()), c["expected_ld_hex"].get<std::string>());
    ++checked;
  }
  EXPECT_GE(checked, 20u);
  const CliRun r = run({"snp", "--ovmf", (path.parent_path() / "debian12_OVMF.fd").string(),
                        "--vcpus", "4", "--vcpu-sig", "0xa00f11", "--guest-features", "0x21",
                        "--vmm-type", "cloister", "--json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["inputs"]["vmm_type"], "cloister");
  for (const nlohmann::json& c : ::cloister::testing::load_json(path)) {
    if (c["name"] == "deb_qemu_milan_4vcpu_gf21") {
      EXPECT_EQ(doc["measurement"], c["expected_ld_hex"]);
    }
  }
}

}  // namespace
}  // namespace cloister::measure
