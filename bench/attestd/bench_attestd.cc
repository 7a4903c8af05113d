// Load test of cloister-attestd on loopback, bounded in time: client threads run the whole KBS
// flow a guest runs (auth → attest with a simulated SEV-SNP report bound to a fresh TEE key →
// resource, decrypted) against the real binary over HTTPS, with each backend:
//
//   sqlite    one replica with its embedded store;
//   postgres  two replicas sharing a PostgreSQL (Debian's, started on loopback) behind HAProxy,
//             one of them killed with SIGKILL mid-run and restarted.
//
// Phase 1 (saturation) gives attestations per second; phase 2 runs an open loop at half that
// rate and gives p50/p99 of the flow's attest step. A failed flow is retried (a guest retries
// after a connection reset); an "error" is a flow that failed three times. Afterwards the
// store is read directly: every completed flow must have its "released" audit record (found
// by the digest of the flow's report) and the chain must verify. The baseline is this process's own
// single-core rate of verifying the same report with the SDK (the verifier benchmark's measure).
//
// usage: bench-attestd ATTESTD_BIN SECONDS CLIENTS
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

#include "cloister/attestation/sim/x509_builder.h"
#include "cloister/common/hex.h"
#include "cloister/common/sha.h"
#include "cloister/sdk/verifier.h"
#include "cloister/service/evidence.h"
#include "cloister/service/kbs_client.h"
#include "cloister/service/pg_store.h"
#include "sim_guest.h"
#include "support/command.h"
#include "support/process.h"
#include "support/services.h"

namespace {

namespace fs = std::filesystem;
using namespace cloister;
using namespace cloister::service::testing;
using Clock = std::chrono::steady_clock;

std::string g_attestd;

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "bench-attestd: %s\n", why.c_str());
  std::exit(1);
}

class Replica {
 public:
  Replica(fs::path state_dir, int port, std::vector<std::string> extra)
      : state_dir_(std::move(state_dir)), port_(port), extra_(std::move(extra)) {
    start();
  }
  void start() {
    std::vector<std::string> args{"--listen",     "127.0.0.1:" + std::to_string(port_),
                                  "--state-dir",  state_dir_.string(),
                                  "--trust-root", (state_dir_.parent_path() / "ark.pem").string()};
    args.insert(args.end(), extra_.begin(), extra_.end());
    process_ = std::make_unique<testing::ChildProcess>(g_attestd, args);
    if (!process_->wait_for("\"msg\":\"listening\"", true)) die("replica: " + process_->err());
  }
  void kill() {
    process_->signal(SIGKILL);
    process_->wait(10);
  }
  int port() const { return port_; }
  // CPU seconds (user + system) this replica process has used so far.
  double cpu_seconds() const {
    std::ifstream stat("/proc/" + std::to_string(process_->pid()) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    std::istringstream fields(text.substr(text.rfind(')') + 2));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i)
      if (i == 14 || i == 15) ticks += std::stod(field);
    return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  std::string admin_key() const {
    std::smatch m;
    const std::string out = process_->out();
    return std::regex_search(out, m, std::regex("shown once, keep it\\): (\\S+)")) ? m[1].str()
                                                                                   : "";
  }

 private:
  fs::path state_dir_;
  int port_;
  std::vector<std::string> extra_;
  std::unique_ptr<testing::ChildProcess> process_;
};

struct Results {
  std::mutex mutex;
  std::vector<double> attest_ms;      // auth + attest of completed flows
  std::vector<std::string> evidence;  // hex SHA-256 of each completed flow's report
  std::atomic<int> completed{0}, retried{0}, errors{0};
};

// One guest: a fresh TEE key, auth → attest → resource; up to three tries.
void flow(const std::string& url, const std::string& cert,
          const std::shared_ptr<attestation::HttpClient>& http, Results& results) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    service::KbsClientOptions options;
    options.url = url;
    options.ca_file = cert;
    auto client = service::KbsClient::create(options, http);
    if (!client) die(client.error().message());
    const auto start = Clock::now();
    Bytes report;
    auto attested = client->attest([&report](const service::kbs::ReportData& rd) {
      nlohmann::json evidence = snp_evidence(launch_with(0x4d), rd);
      report = service::evidence::parse_snp_evidence(evidence).value().report;
      return Result<nlohmann::json>(std::move(evidence));
    });
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (attested) {
      auto secret = client->get_resource("tenant/key/disk");
      if (secret && std::string(secret->begin(), secret->end()) == "load test secret") {
        std::lock_guard lock(results.mutex);
        results.attest_ms.push_back(ms);
        results.evidence.push_back(to_hex(sha256(report)));
        ++results.completed;
        return;
      }
    }
    ++results.retried;
  }
  ++results.errors;
}

std::shared_ptr<attestation::HttpClient> keep_alive_client(const std::string& cert) {
  attestation::HttpClientOptions o;
  o.ca_file = cert;
  o.keep_alive = true;
  o.timeout_seconds = 10;
  return std::shared_ptr<attestation::HttpClient>(attestation::make_http_client(o).value());
}

// Saturation: `clients` threads back to back for `seconds`.
double saturate(const std::string& url, const std::string& cert, int clients, double seconds,
                Results& results, const std::function<void()>& midway) {
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&] {
      auto http = keep_alive_client(cert);
      while (Clock::now() < end) flow(url, cert, http, results);
    });
  }
  if (midway) {
    std::this_thread::sleep_until(start + std::chrono::duration<double>(seconds / 2));
    midway();
  }
  for (auto& t : threads) t.join();
  return results.completed / std::chrono::duration<double>(Clock::now() - start).count();
}

// Open loop at `rate` flows per second spread over `clients` threads.
void paced(const std::string& url, const std::string& cert, int clients, double rate,
           double seconds, Results& results) {
  const auto start = Clock::now();
  const auto interval = std::chrono::duration<double>(clients / rate);
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&, i] {
      auto http = keep_alive_client(cert);
      auto next = start + std::chrono::duration_cast<Clock::duration>(interval * i / clients);
      while (next < start + std::chrono::duration<double>(seconds)) {
        std::this_thread::sleep_until(next);
        flow(url, cert, http, results);
        next += std::chrono::duration_cast<Clock::duration>(interval);
      }
    });
  }
  for (auto& t : threads) t.join();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * v.size()))];
}

// The SDK verifying the simulated report on this thread: verifications per second.
double verifier_rate(double seconds) {
  sdk::VerifierOptions options;
  options.trust_roots.push_back(genoa().amd().ark().cert);
  const sdk::Verifier verifier(options);
  service::kbs::ReportData rd{};
  const auto report = genoa().report(launch_with(0x4d), {}, 0, rd).value();
  sdk::VerifyRequest request;
  request.evidence.assign(report.raw.begin(), report.raw.end());
  request.certificates = {genoa().vcek().cert.der(), genoa().amd().ask().cert.der()};
  request.policy = policy::parse_policy(reference_values(0x4d)).value();
  int n = 0;
  const auto start = Clock::now();
  while (Clock::now() - start < std::chrono::duration<double>(seconds)) {
    if (!verifier.verify(request)->passed()) die("the baseline report does not verify");
    ++n;
  }
  return n / std::chrono::duration<double>(Clock::now() - start).count();
}

void provision(const std::string& cert, int port, const std::string& key) {
  const std::string base = "curl -sS --fail-with-body --cacert " + cert +
                           " -H 'Authorization: Bearer " + key +
                           "' https://127.0.0.1:" + std::to_string(port);
  for (const auto& cmd :
       {base + "/admin/v0/reference-values/default -X PUT --data '" + reference_values(0x4d) + "'",
        base + "/admin/v0/resources/tenant/key/disk -X PUT --data '{\"value\":\"" +
            std::string("bG9hZCB0ZXN0IHNlY3JldA==") +
            "\",\"policy\":{\"accept_status\":[\"affirming\",\"warning\"]}}'"}) {
    const auto r = testing::run_command(cmd);
    if (r.status != 0) die("provisioning: " + r.out);
  }
}

void report(const char* backend, int clients, double seconds, double throughput,
            double service_cpu_seconds, const Results& saturation, const Results& half,
            std::unique_ptr<service::Store> store, double baseline, const char* note) {
  const auto exported = store->export_audit().value();
  const auto chain = service::audit::verify_text(exported.log, exported.head);
  // Each completed flow's release, found by the digest of the evidence that earned it. A
  // release whose answer a killed replica never sent is retried by the client: it is in the
  // log once more, not lost.
  std::multiset<std::string> released;
  std::istringstream lines(exported.log);
  for (std::string line; std::getline(lines, line);) {
    const auto record = nlohmann::json::parse(line);
    if (record.at("outcome") == "released") released.insert(record.at("evidence_digest"));
  }
  const std::size_t records = released.size();
  std::size_t lost = 0;
  for (const Results* r : {&saturation, &half}) {
    for (const auto& digest : r->evidence) {
      const auto found = released.find(digest);
      if (found == released.end()) {
        ++lost;
      } else {
        released.erase(found);
      }
    }
  }
  const int completed = saturation.completed + half.completed;
  const double cores = std::thread::hardware_concurrency();
  std::printf(
      "%-9s %2d clients %4.0f s: %7.1f attestations/s (%.1f per core = %3.0f%% of the "
      "verifier's %.0f/s single-core rate; target >= 70%%)\n",
      backend, clients, seconds, throughput, throughput / cores,
      100 * throughput / cores / baseline, baseline);
  const double per_cpu_second = saturation.completed / service_cpu_seconds;
  std::printf(
      "          the service's own CPU: %.2f ms per attestation = %.0f attestations per "
      "service CPU-second (%3.0f%% of the verifier's rate; the load generator's signing "
      "and decryption share the cores)\n",
      1000 * service_cpu_seconds / saturation.completed, per_cpu_second,
      100 * per_cpu_second / baseline);
  std::printf(
      "          at half load (%.1f/s): attest p50 %.1f ms, p99 %.1f ms (target p99 < 50 ms)\n",
      throughput / 2, percentile(half.attest_ms, 0.5), percentile(half.attest_ms, 0.99));
  std::printf(
      "          flows %d, retried %d, errors %d; audit: %zu released records for %d "
      "completed flows, %s (%zu released again after a lost answer), chain %s%s\n",
      completed, saturation.retried + half.retried, saturation.errors + half.errors, records,
      completed,
      lost == 0 ? "each flow's found, none lost" : (std::to_string(lost) + " LOST").c_str(),
      released.size(), chain.intact() ? "intact" : ("BROKEN: " + chain.problem).c_str(), note);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) die("usage: bench-attestd ATTESTD_BIN SECONDS CLIENTS");
  g_attestd = argv[1];
  const double seconds = std::stod(argv[2]);
  const int clients = std::stoi(argv[3]);
  const fs::path dir =
      fs::temp_directory_path() / ("cloister-bench-attestd-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "ark.pem") << attestation::sim::certificate_pem(genoa().amd().ark().cert);
  const double baseline = verifier_rate(2);

  {  // One replica, SQLite.
    Replica replica(dir / "sqlite", testing::free_loopback_port(), {});
    const std::string cert = (dir / "sqlite" / "tls.crt").string();
    provision(cert, replica.port(), replica.admin_key());
    const std::string url = "https://127.0.0.1:" + std::to_string(replica.port());
    Results saturation, half;
    const double cpu_before = replica.cpu_seconds();
    const double rate = saturate(url, cert, clients, seconds, saturation, nullptr);
    const double cpu = replica.cpu_seconds() - cpu_before;
    paced(url, cert, clients, rate / 2, seconds, half);
    replica.kill();
    report("sqlite", clients, seconds, rate, cpu, saturation, half,
           service::open_sqlite_store(dir / "sqlite" / "state.db").value(), baseline, "");
  }
  {  // Two replicas on PostgreSQL behind HAProxy; one killed and restarted mid-run.
    auto pg = testing::PostgresServer::start();
    if (!pg) die(pg.error().message());
    if (!(*pg)->create_database("attestd")) die("CREATE DATABASE failed");
    const std::string store = (*pg)->conninfo("attestd");
    Replica first(dir / "pg-a", testing::free_loopback_port(), {"--store", store});
    fs::create_directories(dir / "pg-b");
    for (const char* f :
         {"token-key.pem", "session.key", "kek.key", "admin-key.sha256", "tls.crt", "tls.key"}) {
      fs::copy_file(dir / "pg-a" / f, dir / "pg-b" / f);
    }
    Replica second(dir / "pg-b", testing::free_loopback_port(), {"--store", store});
    const std::string cert = (dir / "pg-a" / "tls.crt").string();
    provision(cert, first.port(), first.admin_key());
    auto haproxy = testing::HaproxyServer::start({"127.0.0.1:" + std::to_string(first.port()),
                                                  "127.0.0.1:" + std::to_string(second.port())});
    if (!haproxy) die(haproxy.error().message());
    const std::string url = "https://localhost:" + std::to_string((*haproxy)->port());
    Results saturation, half;
    // The killed replica's CPU until its death is lost to /proc; count what it used before the
    // run and the survivor's, and the restarted one's from its start.
    double cpu = -first.cpu_seconds() - second.cpu_seconds();
    const double rate = saturate(url, cert, clients, seconds, saturation, [&] {
      cpu += second.cpu_seconds();
      second.kill();
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      second.start();
    });
    cpu += first.cpu_seconds() + second.cpu_seconds();
    paced(url, cert, clients, rate / 2, seconds, half);
    report("postgres", clients, seconds, rate, cpu, saturation, half,
           service::open_postgres_store(store).value(), baseline,
           "; replica b killed (SIGKILL) and restarted mid-run");
  }
  fs::remove_all(dir);
  return 0;
}
