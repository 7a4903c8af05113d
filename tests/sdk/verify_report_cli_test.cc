// verify-report as a user runs it: exit codes, human and JSON output.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cloister/attestation/snp/cert_table.h"
#include "cloister/attestation/tdx/collateral.h"
#include "cloister/attestation/tdx/event_log.h"
#include "cloister/attestation/x509.h"
#include "cloister/policy/policy.h"
#include "cloister/sdk/verifier.h"
#include "snp_facts.h"
#include "support/command.h"
#include "support/hostile_files.h"

namespace {

using cloister::testing::vectors_dir;

cloister::testing::CommandResult run(const std::string& args) {
  return cloister::testing::run_command(std::string(VERIFY_REPORT) + " " + args);
}

std::string v(const std::string& file) {
  return (*vectors_dir() / "snp" / file).string();
}
const std::string kAt = " --at 2025-11-01T00:00:00Z";

TEST(VerifyReportCli, PassesFailsAndPrintsJson) {
  CLOISTER_REQUIRE_SNP_FACTS();
  auto ok = run(v("genoa_v5_vcek_report.oak.bin") + " --certs " + v("genoa_vcek.oak.der") + kAt);
  EXPECT_EQ(ok.status, 0) << ok.out;
  EXPECT_NE(ok.out.find("verdict: PASS"), std::string::npos);

  auto debug = run(v("milan_v2_vcek_report.gosevguest.bin") + " --certs " +
                   v("milan_vcek.gosevguest.der") + kAt + " --json");
  EXPECT_EQ(debug.status, 1);
  auto j = nlohmann::json::parse(debug.out);
  EXPECT_EQ(j["verdict"], "fail");
  EXPECT_EQ(j["report"]["policy"]["debug"], true);
  bool debug_failed = false;
  for (const auto& c : j["checks"])
    if (c["name"] == "policy.guest.debug") debug_failed = c["status"] == "fail";
  EXPECT_TRUE(debug_failed);
}

TEST(VerifyReportCli, PolicyAndOverrides) {
  CLOISTER_REQUIRE_SNP_FACTS();
  std::string base =
      v("milan_v2_vcek_report.gosevguest.bin") + " --certs " + v("milan_vcek.gosevguest.der") + kAt;
  std::string policy =
      std::string(CLOISTER_SOURCE_DIR) + "/policies/examples/ci-debug-allowed.json";
  EXPECT_EQ(run(base + " --policy " + policy).status, 0);
  std::string m =
      "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e487"
      "2b01";
  EXPECT_EQ(
      run(base + " --policy " + policy + " --measurement " + std::string(96, 'a') + " " + m).status,
      0);
  auto wrong = run(base + " --policy " + policy + " --measurement " + std::string(96, 'a'));
  EXPECT_EQ(wrong.status, 1);
  EXPECT_NE(wrong.out.find("FAIL  policy.measurement"), std::string::npos);
  EXPECT_EQ(run(base + " --policy " + policy + " --report-data " + std::string(128, '0')).status,
            1);
  EXPECT_EQ(run(base + " --policy " + policy + " --host-data " + std::string(64, '0')).status, 0);
}

// A tenant whose policy appraises TDX only pins the nonce on the command line; the host sends an
// SEV-SNP report carrying that nonce instead. The override must not create an "snp" section for
// the detected kind: that section would pin nothing else and pass check policy.tee.
TEST(VerifyReportCli, OverridesDoNotCreateASectionThePolicyLeftOut) {
  CLOISTER_REQUIRE_SNP_FACTS();
  const std::string base =
      v("milan_v2_vcek_report.gosevguest.bin") + " --certs " + v("milan_vcek.gosevguest.der") + kAt;
  const std::string tdx_only =
      std::string(CLOISTER_SOURCE_DIR) + "/policies/examples/production-tdx.json";
  const std::string report_data = "0102030405" + std::string(118, '0');  // the report's own
  for (const std::string& overrides :
       {" --report-data " + report_data, " --host-data " + std::string(64, '0'),
        " --measurement " + std::string(96, 'a')}) {
    SCOPED_TRACE(overrides);
    auto swapped = run(base + " --policy " + tdx_only + overrides);
    EXPECT_EQ(swapped.status, 1);
    EXPECT_NE(swapped.out.find("FAIL  policy.tee"), std::string::npos) << swapped.out;
  }
  // A policy with the detected kind's section takes the override; no policy gets a section.
  const std::string snp_policy =
      std::string(CLOISTER_SOURCE_DIR) + "/policies/examples/ci-debug-allowed.json";
  EXPECT_EQ(run(base + " --policy " + snp_policy + " --report-data " + report_data).status, 0);
  const auto pinned = run(base + " --report-data " + std::string(128, '0'));
  EXPECT_NE(pinned.out.find("FAIL  policy.report_data"), std::string::npos) << pinned.out;
  EXPECT_EQ(run(base + " --host-data 0x").status, 2);  // malformed, whatever the sections
}

TEST(VerifyReportCli, UsageAndUnreadableInputExitTwo) {
  CLOISTER_REQUIRE_SNP_FACTS();
  std::string report = v("genoa_v5_vcek_report.oak.bin");
  auto missing = run("/nonexistent/report.bin");
  EXPECT_EQ(missing.status, 2);
  EXPECT_EQ(missing.out,
            "verify-report: cannot read /nonexistent/report.bin: No such file or directory\n");
  EXPECT_EQ(run("").status, 2);
  EXPECT_EQ(run(report + " --bogus").status, 2);
  auto at = run(report + " --at yesterday");
  EXPECT_EQ(at.status, 2);
  EXPECT_NE(at.out.find("--at: invalid RFC 3339 time 'yesterday'"), std::string::npos);
  EXPECT_EQ(run(report + " --measurement abc").status, 2);
  EXPECT_EQ(run(report + " --certs " + report).status, 2);   // not a certificate
  EXPECT_EQ(run(report + " --policy " + report).status, 2);  // not a policy
  EXPECT_EQ(run(report + " --product Naples").status, 2);
  EXPECT_EQ(run("--help").status, 0);
}

TEST(VerifyReportCli, BadEvidenceIsAFailedVerificationNotAUsageError) {
  CLOISTER_REQUIRE_SNP_FACTS();
  char path[] = "/tmp/cloister-truncated-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "\x02\x00\x00\x00", 4), 4);
  close(fd);
  auto r = run(std::string(path) + " --json");
  std::remove(path);
  EXPECT_EQ(r.status, 1);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["checks"][0]["detail"],
            "report is 4 bytes, expected 1184 (SEV-SNP ATTESTATION_REPORT)");
  EXPECT_TRUE(j["report"].is_null());
  // No VCEK and offline: the check says where KDS serves it.
  auto offline = run(v("turin_v5_vcek_report.oak.bin") + kAt);
  EXPECT_EQ(offline.status, 1);
  EXPECT_NE(offline.out.find("https://kdsintf.amd.com/vcek/v1/Turin/"
                             "3b42092f69c656d3?fmcSPL=0&blSPL=1&teeSPL=0&snpSPL=2&ucodeSPL=71"),
            std::string::npos);
}

// Files that must not be read whole are refused before a byte is read: exit 2, naming the file
// and what it is or the limit it exceeds.
TEST(VerifyReportCli, DevicesFifosDirectoriesAndHugeFilesExitTwo) {
  cloister::testing::HostileFiles files;
  const std::string not_regular = ", not a regular file: give the input as a file";
  auto zero = run("/dev/zero");
  EXPECT_EQ(zero.status, 2);
  EXPECT_EQ(zero.out.rfind("verify-report: /dev/zero: a character device" + not_regular, 0), 0u)
      << zero.out;
  auto fifo = run(files.fifo().string());
  EXPECT_EQ(fifo.status, 2);
  EXPECT_NE(fifo.out.find(files.fifo().string() + ": a FIFO" + not_regular), std::string::npos)
      << fifo.out;
  auto dir = run(files.directory().string());
  EXPECT_EQ(dir.status, 2);
  EXPECT_NE(dir.out.find(files.directory().string() + ": a directory" + not_regular),
            std::string::npos)
      << dir.out;
  const auto gigabyte = files.sparse("report.bin", 1ull << 30);
  auto huge = run(gigabyte.string());
  EXPECT_EQ(huge.status, 2);
  EXPECT_EQ(huge.out, "verify-report: " + gigabyte.string() +
                          ": 1073741824 bytes, larger than the 1 MiB an SEV-SNP report with its "
                          "certificate table or a TDX quote can be (a report is 1184 bytes, a "
                          "quote about 5 KiB)\n");
}

TEST(VerifyReportCli, EachInputOneByteOverItsLimitExitsTwoNamingTheLimit) {
  namespace att = cloister::attestation;
  cloister::testing::HostileFiles files;
  cloister::Bytes v2_report(1184, 0);
  v2_report[0] = 2;  // VERSION 2: detected as an SEV-SNP report, so every option is read
  const std::string report = files.file("report.bin", v2_report).string();
  const struct {
    std::string option;
    cloister::FileLimit limit;
  } inputs[] = {
      {"", cloister::sdk::kEvidenceFileLimit},
      {"--certs", att::kCertificateFileLimit},
      {"--crl", att::kCrlFileLimit},
      {"--cert-table", att::snp::kCertTableFileLimit},
      {"--policy", cloister::policy::kPolicyFileLimit},
      {"--collateral", att::tdx::kCollateralFileLimit},
      {"--event-log", att::tdx::kEventLogFileLimit},
  };
  for (const auto& input : inputs) {
    const auto over = files.over("over" + input.option, input.limit).string();
    auto r = run(input.option.empty() ? over : report + " " + input.option + " " + over);
    EXPECT_EQ(r.status, 2) << input.option << ": " << r.out;
    EXPECT_NE(r.out.find(over + ": " + std::to_string(input.limit.max_bytes + 1) + " bytes, " +
                         cloister::testing::refusal(input.limit)),
              std::string::npos)
        << input.option << ": " << r.out;
  }
}

TEST(VerifyReportCli, PolicyWithADuplicateKeyExitsTwoNamingIt) {
  cloister::testing::HostileFiles files;
  const std::string report = files.file("report.bin", cloister::Bytes(1184, 0)).string();
  const std::string json = R"({"snp": {"measurements": []}, "snp": {}})";
  const auto policy = files.file("policy.json", cloister::as_bytes(json)).string();
  auto r = run(report + " --policy " + policy);
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.out, "verify-report: " + policy + ": policy: duplicate key \"snp\" at /snp\n");
}

}  // namespace

TEST(VerifyReportCli, TheVerdictNamesItsTrustAnchorAndATrustRootMustBeSelfSigned) {
  CLOISTER_REQUIRE_SNP_FACTS();
  const std::string base =
      v("genoa_v5_vcek_report.oak.bin") + " --certs " + v("genoa_vcek.oak.der") + kAt;
  auto real = run(base + " --json");
  EXPECT_EQ(real.status, 0) << real.out;
  auto j = nlohmann::json::parse(real.out);
  EXPECT_EQ(j["simulated"], false);
  EXPECT_EQ(j["trust_anchor"]["simulated"], false);
  EXPECT_NE(j["trust_anchor"]["subject"].get<std::string>().find("CN=ARK-Genoa"),
            std::string::npos);
  EXPECT_NE(j["trust_anchor"]["subject"].get<std::string>().find("O=Advanced Micro Devices"),
            std::string::npos);

  // A VCEK is not a root: its issuer's key signs it, not its own.
  auto leaf = run(base + " --trust-root " + v("genoa_vcek.oak.der"));
  EXPECT_EQ(leaf.status, 2);
  EXPECT_NE(leaf.out.find("--trust-root " + v("genoa_vcek.oak.der") + ": trust root "),
            std::string::npos)
      << leaf.out;
  EXPECT_NE(leaf.out.find("expected a self-signed root certificate"), std::string::npos);
  // KDS's chain holds the ASK before the ARK: one certificate that is not a root refuses all.
  EXPECT_EQ(run(base + " --trust-root " + v("kds_vcek_cert_chain_genoa.pem")).status, 2);
  EXPECT_EQ(run(base + " --trust-root " + v("genoa_v5_vcek_report.oak.bin")).status, 2);
  EXPECT_EQ(run(base + " --trust-root /nonexistent/root.pem").status, 2);
}
