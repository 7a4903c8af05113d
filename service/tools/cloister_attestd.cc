// cloister-attestd: the attestation service (KBS protocol) — see docs/service.md.
//
//   cloister-attestd --listen 127.0.0.1:8443 --state-dir /var/lib/cloister-attestd
//
// starts with embedded defaults: HTTPS (TLS 1.3) with a self-signed certificate generated on
// first start (or --tls-cert/--tls-key), the SQLite store in the state directory (or
// --store postgresql://… shared by replicas), the token, session and resource keys in the state
// directory, and an admin key printed once. SIGTERM or SIGINT stop accepting, let requests in
// progress finish and exit 0.
//
//   cloister-attestd audit-verify --state-dir DIR [--store URL] [--expect-head RECORDS:DIGEST]
//
// verifies the audit log's hash chain: exit 0 intact, 1 broken (the first broken record named),
// or not holding the head an earlier run printed (records cut from the end, or rewritten).
// Exit status 2: usage, an unusable file or address; 3: the store cannot be reached.
#include <signal.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <thread>

#include "cloister/attestation/x509.h"
#include "cloister/common/file.h"
#include "cloister/common/http_server.h"
#include "cloister/common/json.h"
#include "cloister/common/socket.h"
#include "cloister/common/tls.h"
#include "cloister/sdk/verifier.h"
#include "cloister/service/attestd.h"
#include "cloister/service/kbs_error.h"
#include "cloister/service/pg_store.h"

namespace {

namespace fs = std::filesystem;
namespace svc = cloister::service;

constexpr int kExitBroken = 1;
constexpr int kExitUsage = 2;
constexpr int kExitUnavailable = 3;

void log_line(const std::string& level, const std::string& message,
              nlohmann::json fields = nlohmann::json::object()) {
  fields["level"] = level;
  fields["msg"] = message;
  std::fprintf(stderr, "%s\n", cloister::dump_json(fields).c_str());
}

int fail(int code, const std::string& message) {
  log_line("error", message);
  return code;
}

void log_info(const std::string& message, nlohmann::json fields = nlohmann::json::object()) {
  log_line("info", message, std::move(fields));
}

int exit_code_of(const cloister::Error& e) {
  return e.code() == cloister::ErrorCode::kUnavailable ? kExitUnavailable : kExitUsage;
}

struct Args {
  std::string listen = "127.0.0.1:8443";
  std::string state_dir;
  std::string store;
  std::string tls_cert, tls_key;
  std::vector<std::string> tls_san;
  bool insecure_http = false;
  std::vector<std::string> trust_roots;
  std::vector<std::string> tdx_collateral;
  std::vector<std::string> accept_versions;
  bool online = false;
  std::string cache_dir;
  std::size_t workers = 0;
  long session_lifetime = 300;
  long token_lifetime = 300;
  double rate_limit = 0;
  std::string expect_head;
};

cloister::Result<std::shared_ptr<svc::Store>> open_store(const Args& a) {
  if (a.store.empty() || a.store == "sqlite") {
    CLOISTER_TRY(auto store, svc::open_sqlite_store(fs::path(a.state_dir) / "state.db"));
    return std::shared_ptr<svc::Store>(std::move(store));
  }
  if (a.store.rfind("postgresql://", 0) == 0 || a.store.rfind("postgres://", 0) == 0 ||
      a.store.find("dbname=") != std::string::npos) {
    CLOISTER_TRY(auto store, svc::open_postgres_store(a.store));
    return std::shared_ptr<svc::Store>(std::move(store));
  }
  return cloister::Error("--store: expected sqlite or a PostgreSQL URL (postgresql://…), found '" +
                         a.store + "'");
}

// The TLS files: given, or the state directory's (generated on first start).
cloister::Result<cloister::http::TlsOptions> tls_options(const Args& a) {
  cloister::http::TlsOptions tls;
  if (!a.tls_cert.empty() || !a.tls_key.empty()) {
    if (a.tls_cert.empty() || a.tls_key.empty()) {
      return cloister::Error("--tls-cert and --tls-key: give both or neither");
    }
    tls.certificate_chain_pem = a.tls_cert;
    tls.private_key_pem = a.tls_key;
    return tls;
  }
  tls.certificate_chain_pem = fs::path(a.state_dir) / "tls.crt";
  tls.private_key_pem = fs::path(a.state_dir) / "tls.key";
  std::error_code ec;
  if (!fs::exists(tls.certificate_chain_pem, ec)) {
    std::vector<std::string> dns{"localhost"};
    std::vector<std::string> ips{"127.0.0.1", "::1"};
    for (const auto& san : a.tls_san) {
      (san.find_first_not_of("0123456789.:abcdefABCDEF") == std::string::npos ? ips : dns)
          .push_back(san);
    }
    CLOISTER_CHECK_OK(cloister::write_self_signed_certificate(tls.certificate_chain_pem,
                                                              tls.private_key_pem, dns, ips, 825));
    log_info("generated a self-signed TLS certificate; clients verify the service with it",
             {{"certificate", tls.certificate_chain_pem.string()}});
  }
  return tls;
}

cloister::Result<svc::ServiceOptions> service_options(const Args& a) {
  svc::ServiceOptions options;
  if (!a.accept_versions.empty()) {
    options.versions.accepted = {a.accept_versions.begin(), a.accept_versions.end()};
  }
  options.session_lifetime = std::chrono::seconds(a.session_lifetime);
  options.token_lifetime = std::chrono::seconds(a.token_lifetime);
  if (a.rate_limit < 0)
    return cloister::Error("--rate-limit: expected 0 or more, found a negative rate");
  options.rate_limit = a.rate_limit;
  options.verifier.online = a.online;
  if (!a.cache_dir.empty()) options.verifier.cache_dir = a.cache_dir;
  for (const auto& path : a.trust_roots) {
    CLOISTER_TRY(const cloister::Bytes pem, cloister::read_file(path, cloister::kPemFileLimit));
    auto certs = cloister::attestation::parse_certificates(pem);
    if (!certs) return certs.error().with_context("--trust-root " + path);
    for (auto& cert : *certs) {
      if (auto ok = cloister::sdk::check_trust_root(cert); !ok) {
        return ok.error().with_context("--trust-root " + path);
      }
      options.verifier.trust_roots.push_back(std::move(cert));
    }
  }
  for (const auto& path : a.tdx_collateral) {
    CLOISTER_TRY(cloister::Bytes bytes,
                 cloister::read_file(path, cloister::sdk::kEvidenceFileLimit));
    options.tdx_collateral.push_back(std::move(bytes));
  }
  return options;
}

int serve(const Args& a) {
  if (a.state_dir.empty()) return fail(kExitUsage, "--state-dir is required");
  ::umask(077);  // keys, the certificate's key and the database: the service's alone
  if (a.session_lifetime <= 0 || a.token_lifetime <= 0) {
    return fail(kExitUsage, "--session-lifetime and --token-lifetime must be positive seconds");
  }
  auto address = cloister::parse_host_port(a.listen);
  if (!address) return fail(kExitUsage, "--listen: " + address.error().message());
  auto keys = svc::load_or_create_keys(a.state_dir);
  if (!keys) return fail(kExitUsage, keys.error().message());
  if (keys->new_admin_key) {
    // Shown once: only its SHA-256 is kept.
    std::printf("admin key (shown once, keep it): %s\n", keys->new_admin_key->c_str());
    std::fflush(stdout);
  }
  auto store = open_store(a);
  if (!store) return fail(exit_code_of(store.error()), store.error().message());
  if (auto same = svc::check_keys_against_store(**store, keys->keys); !same) {
    return fail(exit_code_of(same.error()), same.error().message());
  }
  auto options = service_options(a);
  if (!options) return fail(kExitUsage, options.error().message());
  const auto service =
      std::make_shared<svc::AttestationService>(*store, std::move(keys->keys), *options);

  cloister::http::ServerOptions server;
  server.name = "cloister-attestd";
  server.limits.max_body_bytes = svc::kbs::kMaxRequestBodySize;
  // A token carries the appraised report's claims (a TDX one about 6 KiB) and comes back as a
  // bearer token or cookie: room for it, as Trustee's actix server leaves room (research §a.10).
  server.limits.max_header_bytes = svc::kMaxRequestHeaderBytes;
  server.workers = a.workers ? a.workers : std::max(2u, std::thread::hardware_concurrency());
  // The server's own refusals: a body over the KBS limit as Trustee words it, the rest as
  // {"error": reason}.
  server.error_response = [](int status, const std::string& reason) {
    cloister::http::Response r;
    r.status = status;
    r.body = cloister::dump_json(
        status == 413 ? svc::kbs::KbsError(svc::kbs::ErrorKind::kPayloadTooLarge, reason).body()
                      : nlohmann::json{{"error", reason}});
    return r;
  };
  // What the server could not hand to a client: a handler's exception (the client got a bare
  // 500), a failed accept() or event loop.
  server.on_event = [](const cloister::http::ServerEvent& event) {
    using Kind = cloister::http::ServerEvent::Kind;
    if (event.kind == Kind::kHandlerFailed || event.kind == Kind::kAcceptFailed ||
        event.kind == Kind::kFailed) {
      log_line("error", "server: " + event.message, {{"status", event.status}});
    }
  };
  if (!a.insecure_http) {
    auto tls = tls_options(a);
    if (!tls) return fail(kExitUsage, tls.error().message());
    server.tls = std::move(*tls);
  }
  auto listener = cloister::listen_tcp(address->first, address->second);
  if (!listener)
    return fail(kExitUsage, "--listen " + a.listen + ": " + listener.error().message());
  auto port = cloister::local_port(listener->get());
  if (!port) return fail(kExitUsage, port.error().message());

  // SIGTERM/SIGINT are taken with sigwait() on this thread; every thread started after this
  // inherits the mask.
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto running = cloister::http::Server::start(
      std::move(*listener),
      [service](const cloister::http::Request& request) {
        // The audit log's client: the peer address, and what a proxy says it forwarded for
        // (unverified, so kept apart).
        const auto forwarded = request.headers.find("x-forwarded-for");
        return service->handle(request, forwarded == request.headers.end()
                                            ? request.peer
                                            : request.peer + " for " + forwarded->second);
      },
      std::move(server));
  if (!running) return fail(kExitUsage, running.error().message());
  log_info("listening", {{"address", address->first},
                         {"port", *port},
                         {"tls", !a.insecure_http},
                         {"store", a.store.empty() ? "sqlite" : "postgres"},
                         {"state_dir", a.state_dir}});
  int signal = 0;
  sigwait(&signals, &signal);
  log_info("stopping: finishing requests in progress", {{"signal", signal}});
  (*running)->stop();
  log_info("stopped");
  return 0;
}

// "RECORDS:DIGEST", as an earlier audit-verify printed them.
cloister::Result<svc::audit::Head> parse_expected_head(const std::string& text) {
  const auto colon = text.find(':');
  svc::audit::Head head;
  const auto digits = text.substr(0, colon);
  if (colon == std::string::npos || digits.empty() ||
      digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 18 ||
      text.size() - colon - 1 != 64 ||
      text.find_first_not_of("0123456789abcdef", colon + 1) != std::string::npos) {
    return cloister::Error(
        "--expect-head: expected RECORDS:DIGEST (a count and 64 lowercase hex "
        "digits, as audit-verify prints them), found '" +
        text + "'");
  }
  head.records = std::stoull(digits);
  head.digest = text.substr(colon + 1);
  return head;
}

// The first `records` lines of a log.
std::string_view first_records(std::string_view log, std::size_t records) {
  std::size_t end = 0;
  for (std::size_t i = 0; i < records && end < log.size(); ++i) {
    const auto nl = log.find('\n', end);
    end = nl == std::string_view::npos ? log.size() : nl + 1;
  }
  return log.substr(0, end);
}

int audit_verify(const Args& a) {
  if (a.state_dir.empty() && a.store.empty()) {
    return fail(kExitUsage, "audit-verify: give --state-dir (SQLite) or --store (PostgreSQL)");
  }
  std::optional<svc::audit::Head> expected;
  if (!a.expect_head.empty()) {
    auto parsed = parse_expected_head(a.expect_head);
    if (!parsed) return fail(kExitUsage, parsed.error().message());
    expected = *parsed;
  }
  // Opening a SQLite store creates it: a mistyped or emptied state directory would verify as an
  // intact log of no records.
  const fs::path db = fs::path(a.state_dir) / "state.db";
  if ((a.store.empty() || a.store == "sqlite") && !fs::exists(db)) {
    return fail(kExitUsage, "audit-verify: no store at " + db.string() +
                                " (--state-dir names the service's state directory)");
  }
  auto store = open_store(a);
  if (!store) return fail(exit_code_of(store.error()), store.error().message());
  auto exported = (*store)->export_audit();
  if (!exported) return fail(exit_code_of(exported.error()), exported.error().message());
  const auto check = svc::audit::verify_text(exported->log, exported->head);
  nlohmann::json out = {
      {"records", check.records}, {"head", exported->head.digest}, {"intact", check.intact()}};
  if (!check.intact()) {
    out["first_broken"] = *check.first_broken;
    out["problem"] = check.problem;
  }
  bool extends = true;
  if (expected) {
    // The head the store keeps is the store's own: only a head kept elsewhere shows that records
    // were cut from the end or the last ones rewritten. The log must still hold that head.
    const auto earlier =
        svc::audit::verify_text(first_records(exported->log, expected->records), expected);
    extends = earlier.intact();
    out["extends_expected_head"] = extends;
    if (!extends) out["expected_head_problem"] = earlier.problem;
  }
  std::cout << cloister::dump_json(out, 2) << "\n";
  return check.intact() && extends ? 0 : kExitBroken;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "cloister-attestd: the attestation service. Guests attest with the KBS protocol "
      "(/kbs/v0/auth, /kbs/v0/attest) and receive resources encrypted to the key their "
      "evidence bound (/kbs/v0/resource/REPO/TYPE/TAG); operators manage reference values and "
      "resources through /admin/v0 with the admin key.\n"
      "Exit status: 0 stopped by a signal (or audit intact), 1 audit log broken, 2 usage, "
      "3 store unreachable.",
      "cloister-attestd"};
  Args a;
  app.add_option("--listen", a.listen, "HOST:PORT to serve on ([::1]:8443, 0.0.0.0:8443)")
      ->capture_default_str();
  app.add_option("--state-dir", a.state_dir,
                 "Keys, the TLS certificate and the SQLite store live here (created mode 0700)");
  app.add_option("--store", a.store,
                 "sqlite (the state directory's state.db, the default) or a PostgreSQL URL "
                 "shared by replicas: postgresql://user@host:5432/db");
  app.add_option("--tls-cert", a.tls_cert, "PEM certificate chain (default: generated)");
  app.add_option("--tls-key", a.tls_key, "PEM private key for --tls-cert");
  app.add_option("--tls-san", a.tls_san,
                 "Extra DNS name or IP address for the generated certificate (repeatable)");
  app.add_flag("--insecure-http", a.insecure_http,
               "Serve plain HTTP (only behind a proxy that terminates TLS)");
  app.add_option("--trust-root", a.trust_roots,
                 "A self-signed root to trust beside AMD's and Intel's, such as a simulated "
                 "secure processor's (repeatable; see docs/simulated-tee.md)");
  app.add_option("--tdx-collateral", a.tdx_collateral,
                 "TDX collateral file added to every TDX appraisal (repeatable)");
  app.add_option("--accept-version", a.accept_versions,
                 "KBS protocol versions accepted in /kbs/v0/auth (repeatable; default 0.4.0)");
  app.add_flag("--online", a.online,
               "Fetch missing VCEKs and TDX collateral from AMD KDS / Intel PCS");
  app.add_option("--cache-dir", a.cache_dir, "Certificate and collateral cache directory");
  app.add_option("--workers", a.workers,
                 "Request handler threads (default: the CPU count, at least 2)");
  app.add_option("--session-lifetime", a.session_lifetime,
                 "Seconds an /auth challenge can be answered")
      ->capture_default_str();
  app.add_option("--token-lifetime", a.token_lifetime, "Seconds an attestation token is valid")
      ->capture_default_str();
  app.add_option("--rate-limit", a.rate_limit,
                 "Requests per second each client address may make to /kbs/v0/, /ear/v0/ and "
                 "/admin/ (0: unlimited; "
                 "behind a TCP load balancer, limit there)")
      ->capture_default_str();
  CLI::App* verify = app.add_subcommand(
      "audit-verify", "Verify the audit log's hash chain (exit 0 intact, 1 broken)");
  verify->add_option("--state-dir", a.state_dir, "The service's state directory (SQLite store)");
  verify->add_option("--store", a.store, "A PostgreSQL URL instead");
  verify->add_option("--expect-head", a.expect_head,
                     "RECORDS:DIGEST from an earlier audit-verify, kept off the host: the log "
                     "must still hold that head (nothing cut from its end or rewritten since)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return fail(kExitUsage, std::string(e.what()) + " (see --help)");
  }
  if (verify->parsed()) return audit_verify(a);
  return serve(a);
}
