// The product's promise end to end, through the real binaries: cloister-measure predicts the
// launch, cloister-vmm launches the test guest on the simulated secure processor (under KVM, or
// the emulator where KVM is unusable), the guest answers a fresh nonce with evidence over vsock,
// and verify-report checks it against the predicted policy and the simulated root. Then every
// way the launch can differ from what the tenant expects must fail with its named check.
#include <gtest/gtest.h>
#include <openssl/rand.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "cloister/common/file.h"
#include "cloister/common/hex.h"
#include "cloister/sdk/guest_evidence.h"
#include "support/command.h"
#include "support/vectors.h"
#include "vmm_process.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace cloister;
using namespace cloister::testing;

const std::string kGuestDir = CLOISTER_TEST_GUEST_DIR;
const std::string kMeasure = CLOISTER_MEASURE_BIN;
const std::string kVerify = CLOISTER_VERIFY_BIN;
const std::string kSimState = CLOISTER_SIM_STATE_DIR;

std::string guest(const std::string& name) {
  return kGuestDir + "/" + name;
}

bool snp(const std::string& tee) {
  return tee == "sim-snp";
}

// A scratch directory for one test's files, removed afterwards.
struct Scratch {
  explicit Scratch(const std::string& name)
      : dir(fs::temp_directory_path() /
            ("cloister-attested-" + name + "-" + std::to_string(::getpid()))) {
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Scratch() { fs::remove_all(dir); }
  fs::path operator/(const std::string& name) const { return dir / name; }
  fs::path dir;
};

std::string fresh_nonce() {
  std::array<std::uint8_t, 64> nonce;
  RAND_bytes(nonce.data(), nonce.size());
  return to_hex(nonce);
}

// The image with one byte of its banner text changed: the guest still boots, but it is not the
// image the tenant measured.
std::string tampered_copy(const std::string& image, const fs::path& dir) {
  auto bytes = read_file(image, kTestFileLimit);
  EXPECT_TRUE(bytes.ok());
  const std::string banner = "cloister test guest: boot=";
  const std::string text(bytes->begin(), bytes->end());
  const auto at = text.find(banner);
  EXPECT_NE(at, std::string::npos);
  (*bytes)[at] = 'C';
  const fs::path out = dir / ("tampered-" + fs::path(image).filename().string());
  EXPECT_TRUE(write_file_atomic(out, *bytes).ok());
  return out.string();
}

// cloister-measure's prediction for `tee` and `image`: the digest, and the policy it writes.
std::string predict(const std::string& tee, const std::string& image, int vcpus,
                    const fs::path& policy) {
  std::string cmd = kMeasure + (snp(tee) ? " snp" : " tdx");
  const bool igvm = image.ends_with(".igvm");
  cmd += (igvm ? " --igvm " : " --ovmf ") + image;
  if (snp(tee) && !igvm)
    cmd += " --vcpus " + std::to_string(vcpus) + " --vcpu-type EPYC-v4 --vmm-type cloister";
  if (!snp(tee)) cmd += " --vcpus " + std::to_string(vcpus) + (igvm ? "" : " --memory 64M");
  cmd += " --policy-out " + policy.string();
  const CommandResult r = run_command(cmd);
  EXPECT_EQ(r.status, 0) << cmd << "\n" << r.out;
  return r.out.substr(0, r.out.find('\n'));
}

struct Launch {
  int exit = -1;
  std::string measurement;  // from the vm.built log line
  std::string collateral;   // sim-tdx: the collateral of the simulated platform it ran on
  std::string out, err;
  bool evidence = false;
};

// Launches `image` under `tee` with the attesting command line, sends `nonce`, and writes the
// evidence into `dir` (report.bin + cert-table.bin, or quote.bin + event-log.bin).
Launch attest(const std::string& tee, const std::string& image, int vcpus,
              const std::vector<std::string>& extra, const std::string& nonce,
              const fs::path& dir) {
  const fs::path uds = dir / "vsock.sock";
  std::vector<std::string> args = {"run",
                                   image.ends_with(".igvm") ? "--igvm" : "--firmware",
                                   image,
                                   "--tee",
                                   tee,
                                   "--vcpus",
                                   std::to_string(vcpus),
                                   "--memory",
                                   "64M",
                                   "--sim-state",
                                   kSimState,
                                   "--vsock-uds",
                                   uds.string(),
                                   "--cmdline",
                                   std::string("attest=") + (snp(tee) ? "snp" : "tdx"),
                                   "--log-format",
                                   "json"};
  args.insert(args.end(), extra.begin(), extra.end());
  VmmProcess run(run_args(args));
  Launch l;
  if (run.wait_for_output("listening on vsock port", 60)) {
    sdk::ReportData report_data{};
    const Bytes n = *from_hex(nonce);
    std::copy(n.begin(), n.end(), report_data.begin());
    auto evidence = sdk::fetch_guest_evidence(
        uds, 9000, report_data, std::chrono::steady_clock::now() + std::chrono::seconds(60));
    if (evidence.ok()) {
      l.evidence = true;
      for (const auto& piece : evidence->pieces) {
        const char* name = piece.kind == sdk::EvidenceKind::kSnpReport      ? "report.bin"
                           : piece.kind == sdk::EvidenceKind::kSnpCertTable ? "cert-table.bin"
                           : piece.kind == sdk::EvidenceKind::kTdxQuote     ? "quote.bin"
                           : piece.kind == sdk::EvidenceKind::kCcEventLog   ? "event-log.bin"
                                                                            : "other.bin";
        EXPECT_TRUE(write_file_atomic(dir / name, piece.bytes).ok());
      }
    } else {
      ADD_FAILURE() << evidence.error().message();
    }
  }
  l.exit = run.wait(60);
  l.out = run.out();
  l.err = run.err();
  const json built = run.log_event("vm.built");
  if (built.is_object()) l.measurement = built.value(snp(tee) ? "measurement" : "mrtd", "");
  if (const json launched = run.log_event("sim_tdx.launched"); launched.is_object())
    l.collateral = launched.value("collateral", "");
  return l;
}

struct Verdict {
  int status = -1;
  json report;
  // The status of check `name` ("pass", "fail", ...), or "absent".
  std::string check(const std::string& name) const {
    for (const auto& c : report.value("checks", json::array()))
      if (c.value("name", "") == name) return c.value("status", "");
    return "absent";
  }
  std::vector<std::string> failed() const {
    std::vector<std::string> out;
    for (const auto& c : report.value("checks", json::array()))
      if (c.value("status", "") == "fail") out.push_back(c.value("name", ""));
    return out;
  }
};

// verify-report on the evidence in `dir` with `policy` and `nonce`, trusting the simulated root
// when `trust`.
Verdict verify(const std::string& tee, const Launch& launch, const fs::path& dir,
               const fs::path& policy, const std::string& nonce, bool trust = true) {
  std::string cmd = kVerify;
  if (snp(tee)) {
    cmd +=
        " " + (dir / "report.bin").string() + " --cert-table " + (dir / "cert-table.bin").string();
    if (trust) cmd += " --trust-root " + kSimState + "/amd/Genoa/ark.crt.pem";
  } else {
    cmd += " " + (dir / "quote.bin").string() + " --collateral " + launch.collateral +
           " --event-log " + (dir / "event-log.bin").string();
    if (trust) cmd += " --trust-root " + kSimState + "/intel/root.crt.pem";
  }
  cmd += " --policy " + policy.string() + " --report-data " + nonce + " --json";
  const CommandResult r = run_command(cmd);
  Verdict v;
  v.status = r.status;
  v.report = json::parse(r.out, nullptr, false);
  EXPECT_TRUE(v.report.is_object()) << cmd << "\n" << r.out;
  return v;
}

class AttestedLaunchTest : public ::testing::TestWithParam<std::string> {};

// What the VMM reports for its launch equals cloister-measure's prediction, for both images and
// for 1 and 4 vCPUs; and the guest boots on the simulated secure processor.
TEST_P(AttestedLaunchTest, TheLaunchMeasurementIsCloisterMeasuresPrediction) {
  const std::string tee = GetParam();
  Scratch s(tee + "-measure");
  const std::vector<std::pair<std::string, int>> launches = {
      {guest("test-guest.bin"), 1},
      {guest("test-guest.bin"), 4},
      {guest("test-guest.igvm"), 1},
      {guest(snp(tee) ? "test-guest-smp4.igvm" : "test-guest.igvm"), 4}};
  std::set<std::string> seen;
  for (const auto& [image, vcpus] : launches) {
    const std::string predicted = predict(tee, image, vcpus, s / "p.json");
    VmmProcess run(run_args({"run", image.ends_with(".igvm") ? "--igvm" : "--firmware", image,
                             "--tee", tee, "--vcpus", std::to_string(vcpus), "--memory", "64M",
                             "--sim-state", kSimState, "--log-format", "json"}));
    ASSERT_EQ(run.wait(), 0) << image << " x" << vcpus << "\n" << run.err() << run.out();
    EXPECT_NE(run.out().find("test guest: done, status 0\n"), std::string::npos) << run.out();
    const json built = run.log_event("vm.built");
    EXPECT_EQ(built.value(snp(tee) ? "measurement" : "mrtd", ""), predicted)
        << image << " with " << vcpus << " vCPUs";
    EXPECT_EQ(predicted.size(), 96u);
    seen.insert(predicted);
  }
  // SEV-SNP measures one VMSA per vCPU; TDX measures the vCPU count in the test guest's TD HOB
  // (its TDVF metadata extends the TD_HOB section) but not in an IGVM launch, which has no HOB.
  EXPECT_EQ(seen.size(), snp(tee) ? 4u : 3u);
}

TEST_P(AttestedLaunchTest, TheRightImageAttestsAndEveryDifferenceFailsItsCheck) {
  const std::string tee = GetParam();
  Scratch s(tee + "-attest");
  const std::string image = guest("test-guest.bin");
  const fs::path policy = s / "policy.json";
  const std::string predicted = predict(tee, image, 1, policy);
  const std::string nonce = fresh_nonce();

  // The launch the tenant expects: every check passes, and the verdict says simulated.
  fs::create_directories(s / "good");
  Launch good = attest(tee, image, 1, {}, nonce, s / "good");
  ASSERT_TRUE(good.evidence) << good.err << good.out;
  EXPECT_EQ(good.exit, 0) << good.err;
  EXPECT_EQ(good.measurement, predicted);
  Verdict v = verify(tee, good, s / "good", policy, nonce);
  EXPECT_EQ(v.status, 0) << v.report.dump(2);
  EXPECT_TRUE(v.failed().empty()) << v.report.dump(2);
  EXPECT_EQ(v.report["trust_anchor"]["simulated"], true) << v.report.dump(2);

  // Another nonce than the one the guest bound.
  v = verify(tee, good, s / "good", policy, fresh_nonce());
  EXPECT_EQ(v.status, 1);
  EXPECT_EQ(v.failed(),
            std::vector<std::string>{snp(tee) ? "policy.report_data" : "policy.tdx.report_data"});

  // The simulated root not trusted: the chain stops at the vendor's pinned roots.
  v = verify(tee, good, s / "good", policy, nonce, /*trust=*/false);
  EXPECT_EQ(v.status, 1);
  EXPECT_EQ(v.check(snp(tee) ? "snp.chain.ark" : "tdx.pck.chain.root"), "fail") << v.report.dump(2);

  // One image byte changed after the prediction.
  fs::create_directories(s / "tampered");
  Launch tampered = attest(tee, tampered_copy(image, s.dir), 1, {}, nonce, s / "tampered");
  ASSERT_TRUE(tampered.evidence) << tampered.err;
  EXPECT_NE(tampered.measurement, predicted);
  v = verify(tee, tampered, s / "tampered", policy, nonce);
  EXPECT_EQ(v.failed(),
            std::vector<std::string>{snp(tee) ? "policy.measurement" : "policy.tdx.mr_td"});

  // Another vCPU count than predicted.
  fs::create_directories(s / "vcpus");
  Launch four = attest(tee, image, 4, {}, nonce, s / "vcpus");
  ASSERT_TRUE(four.evidence) << four.err;
  v = verify(tee, four, s / "vcpus", policy, nonce);
  EXPECT_EQ(v.failed(),
            std::vector<std::string>{snp(tee) ? "policy.measurement" : "policy.tdx.mr_td"});

  // A debug guest, which the policy (the secure default) forbids.
  fs::create_directories(s / "debug");
  Launch debug = attest(tee, image, 1,
                        snp(tee) ? std::vector<std::string>{"--policy", "0xb0000"}
                                 : std::vector<std::string>{"--td-attributes", "0x10000001"},
                        nonce, s / "debug");
  ASSERT_TRUE(debug.evidence) << debug.err;
  v = verify(tee, debug, s / "debug", policy, nonce);
  EXPECT_EQ(v.check(snp(tee) ? "policy.guest.debug" : "policy.tdx.debug"), "fail")
      << v.report.dump(2);
}

TEST_P(AttestedLaunchTest, APlatformBelowThePolicysTcbFails) {
  const std::string tee = GetParam();
  Scratch s(tee + "-tcb");
  const std::string image = guest("test-guest.bin");
  const fs::path policy = s / "policy.json";
  predict(tee, image, 1, policy);
  json document = json::parse(slurp(policy));
  if (snp(tee)) document["snp"]["minimum_tcb"] = {{"reported", {{"snp", 20}}}};
  std::ofstream(policy) << document.dump(2);
  const std::string nonce = fresh_nonce();
  const fs::path platform = s / "platform.json";
  std::ofstream(platform) << (snp(tee) ? R"({"tcb": {"bl": 10, "tee": 0, "snp": 3, "ucode": 84}})"
                                       : R"({"vulnerable": true})");
  Launch old = attest(tee, image, 1, {"--sim-platform", platform.string()}, nonce, s.dir);
  ASSERT_TRUE(old.evidence) << old.err;
  const Verdict v = verify(tee, old, s.dir, policy, nonce);
  EXPECT_EQ(v.status, 1);
  EXPECT_EQ(v.failed(),
            std::vector<std::string>{snp(tee) ? "policy.tcb.reported" : "policy.tdx.tcb_status"})
      << v.report.dump(2);
}

INSTANTIATE_TEST_SUITE_P(Tees, AttestedLaunchTest, ::testing::Values("sim-snp", "sim-tdx"),
                         [](const auto& param_info) {
                           return param_info.param == "sim-snp" ? std::string("SimSnp")
                                                                : std::string("SimTdx");
                         });

}  // namespace
