// cloister-agent: the guest-agent client. `evidence` fetches attestation evidence from a guest
// over the VMM's hybrid vsock socket (the guest-evidence protocol, guest_evidence.h) and writes
// each piece to a file.
// Exit status: 0 evidence written, 1 the guest reported a failure or broke the protocol,
// 2 usage or an unwritable output, 3 the guest could not be reached before the deadline.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cloister/common/file.h"
#include "cloister/common/hex.h"
#include "cloister/sdk/guest_evidence.h"

namespace {

namespace fs = std::filesystem;
using cloister::sdk::EvidenceFailure;
using cloister::sdk::EvidenceKind;

constexpr int kExitGuestFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnreachable = 3;

int fail(int code, const std::string& message) {
  std::fprintf(stderr, "cloister-agent: %s\n", message.c_str());
  return code;
}

std::string_view file_name(EvidenceKind kind) {
  switch (kind) {
    case EvidenceKind::kSnpReport:
      return "report.bin";
    case EvidenceKind::kSnpCertTable:
      return "cert-table.bin";
    case EvidenceKind::kTdxQuote:
      return "quote.bin";
    case EvidenceKind::kCcEventLog:
      return "event-log.bin";
  }
  return "unknown.bin";
}

struct EvidenceArgs {
  std::string vsock, report_data, out;
  std::uint32_t port = CLOISTER_EVIDENCE_DEFAULT_PORT;
  double timeout = 30;
};

int run_evidence(const EvidenceArgs& a) {
  auto report_data = cloister::from_hex_exact(a.report_data, CLOISTER_EVIDENCE_REPORT_DATA_SIZE);
  if (!report_data) return fail(kExitUsage, "--report-data: " + report_data.error().message());
  if (!(a.timeout > 0)) return fail(kExitUsage, "--timeout must be a positive number of seconds");
  cloister::sdk::ReportData rd{};
  std::copy(report_data->begin(), report_data->end(), rd.begin());
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(a.timeout));
  EvidenceFailure why = EvidenceFailure::kMalformed;
  auto evidence = cloister::sdk::fetch_guest_evidence(a.vsock, a.port, rd, deadline, &why);
  if (!evidence) {
    const bool unreachable =
        why == EvidenceFailure::kUnavailable || why == EvidenceFailure::kDeadlineExceeded;
    return fail(unreachable ? kExitUnreachable : kExitGuestFailed,
                std::string(to_string(why)) + ": " + evidence.error().message());
  }
  std::error_code ec;
  fs::create_directories(a.out, ec);
  if (ec) return fail(kExitUsage, "--out " + a.out + ": " + ec.message());
  for (const auto& piece : evidence->pieces) {
    const fs::path path = fs::path(a.out) / file_name(piece.kind);
    if (auto written = cloister::write_file_atomic(path, piece.bytes); !written)
      return fail(kExitUsage, written.error().message());
    std::cout << "wrote " << path.string() << " (" << to_string(piece.kind) << ", "
              << piece.bytes.size() << " bytes)\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "The Cloister guest-agent client.\n"
      "Exit status: 0 evidence written, 1 the guest reported a failure or broke the protocol, "
      "2 usage or an unwritable output, 3 the guest could not be reached in time.",
      "cloister-agent"};
  app.require_subcommand(1);
  EvidenceArgs a;
  CLI::App* evidence = app.add_subcommand(
      "evidence",
      "Fetch attestation evidence bound to REPORT_DATA from a guest over vsock and write "
      "report.bin and cert-table.bin (SEV-SNP) or quote.bin and event-log.bin (TDX) to --out");
  evidence->add_option("--vsock", a.vsock, "The VMM's vsock UNIX socket (cloister-vmm --vsock-uds)")
      ->required();
  evidence->add_option("--port", a.port, "The guest's vsock port (the guest's attest_port)")
      ->capture_default_str();
  evidence
      ->add_option("--report-data", a.report_data,
                   "REPORT_DATA to bind into the evidence (128 hex digits)")
      ->required();
  evidence->add_option("--out", a.out, "Directory for the evidence files (created if missing)")
      ->required();
  evidence->add_option("--timeout", a.timeout, "Seconds until the evidence must have arrived")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return fail(kExitUsage, std::string(e.what()) + " (see --help)");
  }
  return run_evidence(a);
}
