// cloister-measure's command line: output formats, the policy file, and one-line errors with
// exit code 2 for bad input.
#include "cli.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cloister/common/file.h"
#include "cloister/common/hex.h"
#include "cloister/policy/policy.h"
#include "snp_case.h"
#include "support/vectors.h"

namespace cloister::measure {
namespace {

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

// A bad input: exit code 2, nothing on stdout, exactly one line on stderr containing `what`.
void expect_bad_input(const CliRun& r, const std::string& what) {
  EXPECT_EQ(r.code, kExitBadInput);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_THAT(r.err, ::testing::StartsWith("cloister-measure: error: "));
  EXPECT_THAT(r.err, HasSubstr(what));
}

class TempDir {
 public:
  TempDir()
      : path_(std::filesystem::temp_directory_path() /
              ("cloister-measure-test-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = ::cloister::testing::vector_path("measure/snp_cases.json");
    if (!dir) GTEST_SKIP() << ::cloister::testing::vectors_missing_message("measure/");
    dir_ = dir->parent_path().string() + "/";
    for (const auto& c : ::cloister::testing::load_json(*dir))
      expected_[c["name"].get<std::string>()] = c["expected_ld_hex"];
  }
  std::string v(const std::string& name) const { return dir_ + name; }
  std::string expected(const std::string& name) { return expected_[name].get<std::string>(); }

  std::string dir_;
  nlohmann::json expected_;
};

TEST_F(CliTest, Base64Output) {
  const CliRun r = run({"snp", "--ovmf", v("debian12_OVMF.fd"), "--vcpus", "1", "--vcpu-type",
                        "EPYC-v4", "--output-format", "base64"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const Bytes digest = from_hex(expected("deb_qemu_epycv4_1vcpu_gf1")).value();
  std::string b64(64, '\0');
  b64.resize(
      static_cast<std::size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                                               digest.data(), static_cast<int>(digest.size()))));
  EXPECT_EQ(r.out, b64 + "\n");
}

TEST_F(CliTest, DropInInvocationWithoutSubcommand) {
  const CliRun r =
      run({"--mode", "snp", "--ovmf", v("debian12_OVMF.fd"), "--vcpus", "4", "--vmm-type", "gce"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, expected("deb_gce_4vcpu_gf1") + "\n");
}

TEST_F(CliTest, JsonDocumentNamesTheInputs) {
  const CliRun r =
      run({"snp", "--ovmf", v("ovmf_AmdSev_suffix.bin"), "--vcpus", "2", "--vcpu-type",
           "EPYC-Milan", "--kernel", v("kernel_a.bin"), "--initrd", v("initrd_a.bin"), "--append",
           "console=ttyS0 root=/dev/vda1 ro", "--guest-features", "0x21", "--json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const auto doc = nlohmann::json::parse(r.out);
  const std::string m = expected("amdsev_qemu_milan_2vcpu_kia_gf21");
  EXPECT_EQ(doc["tee"], "snp");
  EXPECT_EQ(doc["mode"], "snp");
  EXPECT_EQ(doc["measurement"], m);
  EXPECT_EQ(doc["inputs"]["vcpus"], 2);
  EXPECT_EQ(doc["inputs"]["vcpu_signature"], "0xa00f11");
  EXPECT_EQ(doc["inputs"]["vmm_type"], "QEMU");
  EXPECT_EQ(doc["inputs"]["guest_features"], "0x21");
  EXPECT_EQ(doc["inputs"]["append"], "console=ttyS0 root=/dev/vda1 ro");
  EXPECT_EQ(doc["inputs"]["kernel"]["sha256"],
            to_hex(sha256(::cloister::testing::read_vector(v("kernel_a.bin")))));
  EXPECT_EQ(doc["reference_values"]["snp"]["measurements"][0], m);
}

TEST_F(CliTest, PolicyOutWritesTheVerifierPolicy) {
  TempDir tmp;
  const std::string policy = tmp.file("p.json");
  const CliRun r = run({"snp", "--ovmf", v("debian12_OVMF.fd"), "--vcpus", "2", "--vcpu-type",
                        "EPYC-Genoa", "--policy-out", policy});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const std::string m = expected("deb_qemu_genoa_2vcpu_gf1");
  EXPECT_EQ(r.out, m + "\n");
  auto text = read_text_file(policy, cloister::policy::kPolicyFileLimit);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(nlohmann::json::parse(*text),
            nlohmann::json::parse(R"({"snp": {"measurements": [")" + m + R"("]}})"));
}

TEST_F(CliTest, VerboseListsEveryInputThatChangesTheDigest) {
  const CliRun r = run({"snp", "-v", "--ovmf", v("debian12_OVMF.fd"), "--vcpus", "4", "--vcpu-sig",
                        "0xa00f11", "--guest-features", "0x21"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("mode: snp\n"));
  EXPECT_THAT(r.out, HasSubstr("vcpus: 4\n"));
  EXPECT_THAT(r.out, HasSubstr("vcpu_signature: 0xa00f11\n"));
  EXPECT_THAT(r.out, HasSubstr("vmm_type: QEMU\n"));
  EXPECT_THAT(r.out, HasSubstr("guest_features: 0x21\n"));
  EXPECT_THAT(r.out, HasSubstr("Calculated SNP launch measurement: " +
                               expected("deb_qemu_milan_4vcpu_gf21") + "\n"));
}

TEST_F(CliTest, DumpVmsaWritesOnePagePerVcpu) {
  TempDir tmp;
  const auto previous = std::filesystem::current_path();
  std::filesystem::current_path(tmp.path());
  const CliRun r = run({"snp", "--ovmf", v("debian12_OVMF.fd"), "--vcpus", "2", "--vcpu-type",
                        "EPYC-v4", "--dump-vmsa"});
  std::filesystem::current_path(previous);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  auto bsp = read_file(tmp.file("vmsa0.bin"), testing::kTestFileLimit);
  auto ap = read_file(tmp.file("vmsa1.bin"), testing::kTestFileLimit);
  ASSERT_TRUE(bsp.ok() && ap.ok());
  EXPECT_EQ(bsp->size(), 4096u);
  EXPECT_EQ(load_le64(*bsp, 0x178), 0xfff0u);  // BSP RIP
  EXPECT_EQ(load_le64(*ap, 0x178), 0xb004u);   // AP RIP from the reset block
}

TEST_F(CliTest, BadInputsGetOneLineAndExitCode2) {
  const std::string deb = v("debian12_OVMF.fd");
  expect_bad_input(run({"snp", "--ovmf", deb, "--vcpus", "1", "--vcpu-type", "EPYC-Venice"}),
                   "unknown vCPU type 'EPYC-Venice'");
  expect_bad_input(run({"snp", "--ovmf", deb, "--vcpus", "0", "--vcpu-type", "EPYC-v4"}),
                   "zero vCPUs");
  expect_bad_input(run({"snp", "--ovmf", deb, "--vcpu-type", "EPYC-v4"}),
                   "missing --vcpus N in guest mode 'snp'");
  expect_bad_input(run({"snp", "--ovmf", deb, "--vcpus", "1"}),
                   "VMM type QEMU puts the vCPU signature in the VMSA");
  expect_bad_input(run({"snp", "--ovmf", deb, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--kernel",
                        v("kernel_a.bin")}),
                   "doesn't include SNP_KERNEL_HASHES section");
  expect_bad_input(
      run({"snp", "--ovmf", deb, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--vcpu-sig", "0x1"}),
      "give the vCPU signature one way only");
  expect_bad_input(run({"snp", "--ovmf", deb, "--vcpus", "1", "--vcpu-family", "25"}),
                   "go together: give all three");
  expect_bad_input(run({"snp", "--ovmf", deb, "--vcpus", "1", "--vcpu-sig", "12z"}),
                   "--vcpu-sig: '12z' is not a non-negative integer");
  expect_bad_input(run({"snp", "--ovmf", deb, "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--initrd",
                        v("initrd_a.bin")}),
                   "--initrd and --append need --kernel");
  expect_bad_input(run({"snp", "--ovmf", deb, "--vcpus", "1", "--vmm-type", "krun"}),
                   "unknown VMM type 'krun'");
  expect_bad_input(run({"snp", "--ovmf", v("no-such-file.fd"), "--vcpus", "1"}),
                   "--ovmf: cannot read");
  expect_bad_input(run({"snp", "--ovmf", v("kernel_b.bin"), "--vcpus", "1"}),
                   "has no footer table");
  expect_bad_input(run({"snp", "--vcpus", "1"}), "missing --ovmf PATH");
  expect_bad_input(run({"snp", "--mode", "sev", "--ovmf", deb}), "--mode sev is not supported");
  expect_bad_input(run({"snp", "--ovmf", deb, "--bogus"}), "--bogus");
  expect_bad_input(run({"snp", "--ovmf", deb, "--vcpus", "1", "--vcpu-type", "EPYC-v4",
                        "--snp-ovmf-hash", "abcd"}),
                   "--snp-ovmf-hash: expected 48 bytes");
  expect_bad_input(run({"frobnicate"}), "unknown command 'frobnicate'");
}

TEST_F(CliTest, SvsmVarsSizeMismatches) {
  TempDir tmp;
  const std::string vars = tmp.file("OVMF_VARS.fd");
  ASSERT_TRUE(write_file_atomic(vars, Bytes(540672, 0)).ok());
  const std::vector<std::string> base = {
      "snp",         "--mode",  "snp:svsm", "--ovmf",      v("svsm_ovmf.fd"), "--svsm",
      v("svsm.bin"), "--vcpus", "4",        "--vcpu-type", "EPYC-v4"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return run(args);
  };
  const CliRun ok = with({"--vars-file", vars});
  ASSERT_EQ(ok.code, kExitOk) << ok.err;
  EXPECT_EQ(ok.out, expected("ssm_test_snp_svsm_4_vcpus") + "\n");
  expect_bad_input(with({"--vars-file", vars, "--vars-size", "131072"}),
                   "--vars-size 131072 does not match the 540672-byte --vars-file");
  const std::string odd = tmp.file("odd.fd");
  ASSERT_TRUE(write_file_atomic(odd, Bytes(1000, 0)).ok());
  expect_bad_input(with({"--vars-file", odd}), "OVMF_VARS size 1000 is not a non-zero multiple");
  expect_bad_input(with({"--vars-size", "0"}), "OVMF_VARS size 0 is not a non-zero multiple");
  expect_bad_input(with({}), "snp:svsm mode needs --vars-size SIZE or --vars-file PATH");
  expect_bad_input(with({"--vars-size", "540672", "--snp-ovmf-hash", std::string(96, '0')}),
                   "--snp-ovmf-hash only works with --mode snp");
}

TEST_F(CliTest, TdxBadInputs) {
  expect_bad_input(run({"tdx", "--ovmf", v("svsm.bin")}), "the firmware has no TDX metadata");
  expect_bad_input(run({"tdx", "--ovmf", v("ovmf_AmdSev_suffix.bin")}),
                   "exceeds the 0x1000-byte image");
  expect_bad_input(run({"tdx", "--ovmf", v("debian12_OVMF.fd"), "--page-order", "three-pass"}),
                   "--page-order");
  expect_bad_input(run({"tdx"}), "missing --ovmf PATH");
}

TEST(Cli, HelpVersionAndUsage) {
  const CliRun help = run({"--help"});
  EXPECT_EQ(help.code, kExitOk);
  EXPECT_THAT(help.out, HasSubstr("cloister-measure snp"));
  const CliRun snp_help = run({"snp", "--help"});
  EXPECT_EQ(snp_help.code, kExitOk);
  EXPECT_THAT(snp_help.out, HasSubstr("--vcpu-type"));
  EXPECT_THAT(snp_help.out, HasSubstr("--snp-ovmf-hash"));
  const CliRun version = run({"--version"});
  EXPECT_EQ(version.code, kExitOk);
  EXPECT_THAT(version.out, ::testing::StartsWith("cloister-measure "));
  const CliRun none = run({});
  EXPECT_EQ(none.code, kExitBadInput);
  EXPECT_THAT(none.err, HasSubstr("usage:"));
}

}  // namespace
}  // namespace cloister::measure
