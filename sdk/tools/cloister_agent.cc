// cloister-agent: the guest-agent client.
// - `evidence` fetches attestation evidence from a guest over the VMM's hybrid vsock socket (the
//   guest-evidence protocol, guest_evidence.h) and writes each piece to a file.
// - `get-resource` runs the KBS flow (auth → attest → resource) against cloister-attestd or a
//   Trustee KBS with an ephemeral TEE key and prints the secret or writes it mode 0600. The
//   evidence comes from this machine's TEE (configfs-tsm, /dev/sev-guest: the agent runs inside
//   the guest) or, with --vsock, from a simulated guest beside the VMM (the demo).
// Exit status: 0 done, 1 the guest reported a failure or broke the protocol, or the KBS refused
// (attestation or resource policy), 2 usage or an unwritable output, 3 the guest or the KBS
// could not be reached before the deadline.
#include <openssl/crypto.h>
#include <sys/prctl.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "cloister/common/file.h"
#include "cloister/common/hex.h"
#include "cloister/sdk/guest_evidence.h"
#include "cloister/sdk/local_evidence.h"
#include "cloister/service/init_data.h"
#include "cloister/service/kbs_client.h"

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

// The exit status for an error: unreachable (3), unusable input (2), or a failure of the guest
// or a refusal of the KBS (1).
int exit_code_of(const cloister::Error& e) {
  switch (e.code()) {
    case cloister::ErrorCode::kUnavailable:
      return kExitUnreachable;
    case cloister::ErrorCode::kInvalidArgument:
      return kExitUsage;
    default:
      return kExitGuestFailed;
  }
}

// Evidence from a guest over the VMM's vsock socket within `timeout` seconds; a guest that
// cannot be reached in time is kUnavailable, one that fails or breaks the protocol
// kFailedPrecondition, the message prefixed with the failure's name.
cloister::Result<cloister::sdk::GuestEvidence> from_guest(const std::string& vsock,
                                                          std::uint32_t port,
                                                          const cloister::sdk::ReportData& rd,
                                                          double timeout) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(timeout));
  EvidenceFailure why = EvidenceFailure::kMalformed;
  auto evidence = cloister::sdk::fetch_guest_evidence(vsock, port, rd, deadline, &why);
  if (!evidence) {
    const bool unreachable =
        why == EvidenceFailure::kUnavailable || why == EvidenceFailure::kDeadlineExceeded;
    return cloister::Error(
        unreachable ? cloister::ErrorCode::kUnavailable : cloister::ErrorCode::kFailedPrecondition,
        std::string(to_string(why)) + ": " + evidence.error().message());
  }
  return evidence;
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
  auto evidence = from_guest(a.vsock, a.port, rd, a.timeout);
  if (!evidence) return fail(exit_code_of(evidence.error()), evidence.error().message());
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

struct ResourceArgs {
  std::string path, kbs, kbs_cert, tee = "snp", vsock, out, init_data,
                                   qgs = cloister::attestation::tdx::kQgsGuestAddress;
  std::uint32_t port = CLOISTER_EVIDENCE_DEFAULT_PORT;
  double timeout = 30;
  bool insecure_http = false;
};

// The evidence for `report_data`, from the simulated guest over vsock or from this machine's TEE.
cloister::Result<cloister::sdk::GuestEvidence> evidence_for(const ResourceArgs& a,
                                                            const cloister::sdk::ReportData& rd) {
  if (a.vsock.empty()) {
    cloister::sdk::LocalEvidenceSources sources;
    sources.qgs_address = a.qgs;
    return cloister::sdk::local_evidence(rd, sources);
  }
  return from_guest(a.vsock, a.port, rd, a.timeout);
}

int run_get_resource(const ResourceArgs& a) {
  namespace svc = cloister::service;
  // The TEE key and the secret live in this process: no core dump (which a host could read off
  // an unencrypted disk) and no ptrace by other processes of this user.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  if (!(a.timeout > 0)) return fail(kExitUsage, "--timeout must be a positive number of seconds");
  auto tee = cloister::service::kbs::parse_tee(a.tee);
  if (!tee || (*tee != svc::kbs::Tee::kSnp && *tee != svc::kbs::Tee::kTdx)) {
    return fail(kExitUsage, "--tee: expected snp or tdx, found '" + a.tee + "'");
  }
  svc::KbsClientOptions options;
  options.url = a.kbs;
  options.ca_file = a.kbs_cert;
  options.allow_http = a.insecure_http;
  options.tee = *tee;
  options.timeout_seconds = static_cast<long>(a.timeout + 0.999);
  if (!a.init_data.empty()) {
    auto document = cloister::read_text_file(a.init_data, svc::init_data::kFileLimit);
    if (!document) return fail(kExitUsage, "--init-data: " + document.error().message());
    options.init_data = svc::kbs::InitData{"toml", std::move(*document)};
  }
  auto client = svc::KbsClient::create(options);
  if (!client) return fail(exit_code_of(client.error()), client.error().message());
  auto attested =
      client->attest([&](const svc::kbs::ReportData& rd) -> cloister::Result<nlohmann::json> {
        CLOISTER_TRY(const auto evidence, evidence_for(a, rd));
        if (const auto* report = evidence.find(EvidenceKind::kSnpReport)) {
          return svc::snp_primary_evidence(*report, evidence.find(EvidenceKind::kSnpCertTable));
        }
        if (const auto* quote = evidence.find(EvidenceKind::kTdxQuote)) {
          return svc::tdx_primary_evidence(*quote, evidence.find(EvidenceKind::kCcEventLog));
        }
        return cloister::Error(cloister::ErrorCode::kFailedPrecondition,
                               "the evidence holds neither an SNP report nor a TDX quote");
      });
  if (!attested) return fail(exit_code_of(attested.error()), attested.error().message());
  auto secret = client->get_resource(a.path);
  if (!secret) return fail(exit_code_of(secret.error()), secret.error().message());
  struct Cleanse {
    cloister::Bytes& bytes;
    ~Cleanse() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
  } cleanse{*secret};
  if (a.out.empty()) {
    std::cout.write(reinterpret_cast<const char*>(secret->data()),
                    static_cast<std::streamsize>(secret->size()));
    std::cout.flush();
    if (!std::cout)
      return fail(kExitGuestFailed, "writing the secret to standard output failed (" +
                                        std::string(std::strerror(errno)) + ")");
    return 0;
  }
  if (auto written = cloister::write_file_atomic(a.out, *secret, 0600); !written) {
    return fail(kExitUsage, written.error().message());
  }
  std::cerr << "cloister-agent: wrote " << a.path << " to " << a.out << " (" << secret->size()
            << " bytes, mode 0600)\n";
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
  ResourceArgs r;
  CLI::App* get = app.add_subcommand(
      "get-resource",
      "Attest to a KBS (cloister-attestd or Trustee) and fetch one resource: auth, attest with "
      "evidence bound to the challenge and an ephemeral key, then the resource as a JWE to that "
      "key, decrypted here");
  get->add_option("path", r.path, "The resource: REPO/TYPE/TAG")->required();
  get->add_option("--kbs", r.kbs, "The KBS base URL, e.g. https://127.0.0.1:8443")->required();
  get->add_option("--kbs-cert", r.kbs_cert,
                  "PEM certificate(s) to verify the KBS with (cloister-attestd's tls.crt), and "
                  "nothing else; default: the system CA store")
      ->check(CLI::ExistingFile);
  get->add_flag("--insecure-http", r.insecure_http,
                "Accept an http:// KBS URL (tests only: the host then reads the TEE key and can "
                "answer with a secret of its choosing)");
  get->add_option("--tee", r.tee, "snp or tdx")->capture_default_str();
  get->add_option("--vsock", r.vsock,
                  "Take the evidence from a simulated guest through the VMM's vsock socket "
                  "instead of this machine's TEE (configfs-tsm, /dev/sev-guest, /dev/tdx_guest)");
  get->add_option("--port", r.port, "The guest's vsock port, with --vsock")->capture_default_str();
  get->add_option("--qgs", r.qgs,
                  "The host's Quote Generation Service, for a TD without configfs-tsm "
                  "(/dev/tdx_guest): vsock:CID:PORT, unix:PATH or HOST:PORT")
      ->capture_default_str();
  get->add_option("--init-data", r.init_data,
                  "Send this init-data TOML document (the one whose digest the host set as "
                  "HOST_DATA or MRCONFIGID at launch) with the attestation");
  get->add_option("--out", r.out, "Write the secret to this file (mode 0600) instead of stdout");
  get->add_option("--timeout", r.timeout, "Seconds for each step")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return fail(kExitUsage, std::string(e.what()) + " (see --help)");
  }
  if (get->parsed()) return run_get_resource(r);
  return run_evidence(a);
}
