// cloister-attestd as an operator runs it: the real binary on loopback over HTTPS (TLS 1.3,
// its generated certificate), driven by the KBS client cloister-agent uses; two replicas sharing
// a real PostgreSQL behind a real HAProxy, with the auth on one and the attest and resource on
// the other; the KBS error bodies and status codes on the wire; graceful shutdown.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>

#include "cloister/attestation/sim/x509_builder.h"
#include "cloister/common/hex.h"
#include "cloister/common/sha.h"
#include "cloister/service/kbs_client.h"
#include "sim_guest.h"
#include "support/command.h"
#include "support/process.h"
#include "support/services.h"

namespace cloister::service {
namespace {

namespace fs = std::filesystem;
using cloister::testing::ChildProcess;
using cloister::testing::run_command;
using namespace cloister::service::testing;
using ::testing::HasSubstr;

class Attestd {
 public:
  Attestd(const fs::path& state_dir, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--listen",     "127.0.0.1:0",
                                  "--state-dir",  state_dir.string(),
                                  "--trust-root", (state_dir.parent_path() / "ark.pem").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    process_ = std::make_unique<ChildProcess>(CLOISTER_ATTESTD_BIN, args);
    if (!process_->wait_for("\"msg\":\"listening\"", true)) return;
    std::smatch m;
    const std::string err = process_->err();
    if (std::regex_search(err, m, std::regex("\"port\":([0-9]+)"))) port_ = std::stoi(m[1]);
    const std::string out = process_->out();
    if (std::regex_search(out, m, std::regex("admin key \\(shown once, keep it\\): (\\S+)"))) {
      admin_key_ = m[1];
    }
  }
  int port() const { return port_; }
  const std::string& admin_key() const { return admin_key_; }
  ChildProcess& process() { return *process_; }
  std::string metric(const std::string& cert, const std::string& name) const {
    const auto r =
        run_command("curl -sS --cacert " + cert + " https://127.0.0.1:" + std::to_string(port_) +
                    "/metrics | grep '^" + name + " '");
    return r.out.substr(r.out.rfind(' ') + 1, r.out.size() - r.out.rfind(' ') - 2);
  }

 private:
  std::unique_ptr<ChildProcess> process_;
  int port_ = 0;
  std::string admin_key_;
};

class AttestdProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cloister-attestd-proc-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "ark.pem") << attestation::sim::certificate_pem(genoa().amd().ark().cert);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // curl `args` against `path` on `port` with the service's certificate: the body, a space and
  // the HTTP status.
  std::string curl(int port, const std::string& args, const std::string& path) const {
    return run_command("curl -sS --cacert " + (dir_ / "a" / "tls.crt").string() +
                       " -w ' %{http_code}' " + args +
                       " https://127.0.0.1:" + std::to_string(port) + path)
        .out;
  }

  static void provision(const std::string& cert, int port, const std::string& key) {
    const std::string base = "curl -sS --fail-with-body --cacert " + cert +
                             " -H 'Authorization: Bearer " + key +
                             "' https://127.0.0.1:" + std::to_string(port);
    auto rv = run_command(base + "/admin/v0/reference-values/default -X PUT --data '" +
                          reference_values(0x4d) + "'");
    ASSERT_EQ(rv.status, 0) << rv.out;
    auto res = run_command(base +
                           "/admin/v0/resources/tenant/key/disk -X PUT --data "
                           "'{\"value\":\"c2VjcmV0IGRpc2sga2V5\",\"policy\":"
                           "{\"accept_status\":[\"affirming\",\"warning\"]}}'");
    ASSERT_EQ(res.status, 0) << res.out;
  }

  // The secret for a guest launched with `launch` that sends `init_data`.
  static Result<Bytes> fetch(const std::string& url, const std::string& cert,
                             const attestation::sim::SnpLaunch& launch,
                             std::optional<kbs::InitData> init_data = std::nullopt) {
    KbsClientOptions options;
    options.url = url;
    options.ca_file = cert;
    options.init_data = std::move(init_data);
    CLOISTER_TRY(KbsClient client, KbsClient::create(options));
    CLOISTER_CHECK_OK(client.attest([&](const kbs::ReportData& rd) -> Result<nlohmann::json> {
      return snp_evidence(launch, rd);
    }));
    return client.get_resource("tenant/key/disk");
  }

  fs::path dir_;
};

TEST_F(AttestdProcessTest, AGuestGetsItsSecretOverHttpsAndAModifiedOneIsRefused) {
  Attestd attestd(dir_ / "a");
  ASSERT_NE(attestd.port(), 0) << attestd.process().err();
  ASSERT_FALSE(attestd.admin_key().empty()) << attestd.process().out();
  const std::string cert = (dir_ / "a" / "tls.crt").string();
  provision(cert, attestd.port(), attestd.admin_key());
  const std::string url = "https://127.0.0.1:" + std::to_string(attestd.port());

  const auto secret = fetch(url, cert, launch_with(0x4d));
  ASSERT_TRUE(secret) << secret.error().message();
  EXPECT_EQ(std::string(secret->begin(), secret->end()), "secret disk key");

  const auto refused = fetch(url, cert, launch_with(0x4e));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_THAT(refused.error().message(),
              HasSubstr("KBS attest: HTTP 401 AttestationError: Attestation error: RCAR handshake "
                        "Attest failed: the evidence does not satisfy the reference values: "
                        "policy.measurement"));

  // The audit log, verified by the command an auditor runs.
  attestd.process().signal(SIGTERM);
  EXPECT_EQ(attestd.process().wait(30), 0) << attestd.process().err();
  const auto audit = run_command(std::string(CLOISTER_ATTESTD_BIN) + " audit-verify --state-dir " +
                                 (dir_ / "a").string());
  EXPECT_EQ(audit.status, 0) << audit.out;
  EXPECT_THAT(audit.out, HasSubstr("\"intact\": true"));
  EXPECT_THAT(audit.out, HasSubstr("\"records\": 5"));  // 2 admin uploads, pass+release, denial

  // The store's head is the store's own: cutting records from the end leaves a chain that
  // verifies, and only the head an auditor kept shows the cut.
  const std::string verify =
      std::string(CLOISTER_ATTESTD_BIN) + " audit-verify --state-dir " + (dir_ / "a").string();
  const auto kept = nlohmann::json::parse(audit.out);
  const std::string head = "5:" + kept["head"].get<std::string>();
  const auto extends = run_command(verify + " --expect-head " + head);
  EXPECT_EQ(extends.status, 0) << extends.out;
  EXPECT_THAT(extends.out, HasSubstr("\"extends_expected_head\": true"));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "a" / "state.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DELETE FROM audit WHERE seq > 3", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  const auto self_consistent = run_command(verify);
  EXPECT_EQ(self_consistent.status, 0) << self_consistent.out;
  EXPECT_THAT(self_consistent.out, HasSubstr("\"records\": 3"));
  const auto cut = run_command(verify + " --expect-head " + head);
  EXPECT_EQ(cut.status, 1) << cut.out;
  EXPECT_THAT(cut.out, HasSubstr("\"extends_expected_head\": false"));
  EXPECT_THAT(cut.out, HasSubstr("record 4: missing: the head names 5 records, the log ends after "
                                 "3 (truncated)"));
  // A state directory without a store is not an intact log of no records.
  const auto missing = run_command(std::string(CLOISTER_ATTESTD_BIN) +
                                   " audit-verify --state-dir " + (dir_ / "nothing").string());
  EXPECT_EQ(missing.status, 2) << missing.out;
  EXPECT_THAT(missing.out, HasSubstr("audit-verify: no store at "));
  EXPECT_FALSE(fs::exists(dir_ / "nothing" / "state.db"));
  const auto malformed = run_command(verify + " --expect-head 5:xyz");
  EXPECT_EQ(malformed.status, 2) << malformed.out;
  EXPECT_THAT(malformed.out, HasSubstr("--expect-head: expected RECORDS:DIGEST"));
}

// The KBS client sends the init-data the guest was launched with (its digest in HOST_DATA), and
// the service over HTTPS takes exactly that document.
TEST_F(AttestdProcessTest, TheClientSendsTheInitDataTheGuestWasLaunchedWith) {
  Attestd attestd(dir_ / "a");
  ASSERT_NE(attestd.port(), 0) << attestd.process().err();
  const std::string cert = (dir_ / "a" / "tls.crt").string();
  provision(cert, attestd.port(), attestd.admin_key());
  const std::string url = "https://127.0.0.1:" + std::to_string(attestd.port());
  const std::string document = "version = \"0.1.0\"\nalgorithm = \"sha256\"\n[data]\n";
  attestation::sim::SnpLaunch launch = launch_with(0x4d);
  const auto digest = sha256(as_bytes(document));
  std::copy(digest.begin(), digest.end(), launch.host_data.begin());

  const auto secret = fetch(url, cert, launch, kbs::InitData{"toml", document});
  ASSERT_TRUE(secret) << secret.error().message();
  EXPECT_EQ(std::string(secret->begin(), secret->end()), "secret disk key");

  const auto other = fetch(url, cert, launch, kbs::InitData{"toml", document + "# edited\n"});
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_THAT(other.error().message(),
              HasSubstr("HTTP 401 AttestationError: Attestation error: RCAR handshake Attest "
                        "failed: init-data: HOST_DATA expected "));
  EXPECT_THAT(other.error().message(), HasSubstr("found " + to_hex(digest)));
}

TEST_F(AttestdProcessTest, KillNineLosesNoResourceOrAuditRecord) {
  std::string cert = (dir_ / "a" / "tls.crt").string();
  {
    Attestd attestd(dir_ / "a");
    ASSERT_NE(attestd.port(), 0) << attestd.process().err();
    provision(cert, attestd.port(), attestd.admin_key());
    const auto secret =
        fetch("https://127.0.0.1:" + std::to_string(attestd.port()), cert, launch_with(0x4d));
    ASSERT_TRUE(secret) << secret.error().message();
    attestd.process().signal(SIGKILL);
    EXPECT_EQ(attestd.process().wait(30), -SIGKILL);
  }
  // Restarted on the same state directory: same keys (no new admin key), the resource and the
  // reference values still there, the chain intact with every record written before the kill.
  Attestd again(dir_ / "a");
  ASSERT_NE(again.port(), 0) << again.process().err();
  EXPECT_TRUE(again.admin_key().empty());
  const auto audit = run_command(std::string(CLOISTER_ATTESTD_BIN) + " audit-verify --state-dir " +
                                 (dir_ / "a").string());
  EXPECT_EQ(audit.status, 0) << audit.out;
  EXPECT_THAT(audit.out, HasSubstr("\"records\": 4"));
  const auto secret =
      fetch("https://127.0.0.1:" + std::to_string(again.port()), cert, launch_with(0x4d));
  ASSERT_TRUE(secret) << secret.error().message();
  EXPECT_EQ(std::string(secret->begin(), secret->end()), "secret disk key");
}

TEST_F(AttestdProcessTest, TheWireRefusalsAreTrustees) {
  Attestd attestd(dir_ / "a");
  ASSERT_NE(attestd.port(), 0) << attestd.process().err();
  const int port = attestd.port();
  // A body over the KBS limit (2 MiB): 413 with the KBS error body, before any handler runs.
  const fs::path big = dir_ / "big.json";
  std::ofstream(big) << std::string((2 << 20) + 1, ' ');
  const std::string too_large =
      curl(port, "-X POST --data-binary @" + big.string(), "/kbs/v0/auth");
  EXPECT_THAT(too_large, HasSubstr("errors/PayloadTooLarge"));
  EXPECT_THAT(too_large, HasSubstr(" 413"));
  EXPECT_THAT(curl(port, "", "/kbs/v0/nothing"), HasSubstr("errors/InvalidRequestPath\""));
  EXPECT_THAT(curl(port, "", "/kbs/v0/nothing"), HasSubstr(" 404"));
  const std::string admin = curl(port, "-H 'Authorization: Bearer wrong'", "/admin/v0/resources");
  EXPECT_THAT(admin, HasSubstr("errors/AdminAuthAccess\""));
  EXPECT_THAT(admin, HasSubstr(" 401"));
  const std::string version =
      curl(port, R"(-X POST --data '{"version":"0.1.0","tee":"snp","extra-params":""}')",
           "/kbs/v0/auth");
  EXPECT_THAT(version,
              HasSubstr("KBS client protocol version mismatch: expected 0.4.0, found 0.1.0"));
  EXPECT_THAT(version, HasSubstr(" 401"));
  // Only TLS 1.3 is served.
  const auto tls12 =
      run_command("curl -sS --tlsv1.2 --tls-max 1.2 --cacert " + (dir_ / "a" / "tls.crt").string() +
                  " https://127.0.0.1:" + std::to_string(port) + "/healthz");
  EXPECT_NE(tls12.status, 0) << tls12.out;
  // A request line with a byte that is not UTF-8: a 400 whose JSON body quotes it (the JSON
  // encoder used to throw on it, on the server thread, and the service died).
  const auto bad_byte = run_command(
      "printf 'GET / HTTP/1.\\377\\r\\n\\r\\n' | timeout 20 openssl s_client -quiet -connect "
      "127.0.0.1:" +
      std::to_string(port) + " 2>/dev/null");
  EXPECT_THAT(bad_byte.out, HasSubstr("HTTP/1.1 400 "));
  EXPECT_THAT(bad_byte.out,
              HasSubstr(R"({"error":"HTTP request line: expected HTTP/1.1 or HTTP/1.0, found )"
                        R"(\"HTTP/1.\\xff\""})"));
  EXPECT_THAT(curl(port, "", "/healthz"), HasSubstr("ok\n 200"));
}

TEST_F(AttestdProcessTest, TwoReplicasBehindHaproxyShareOneStore) {
  auto pg = cloister::testing::PostgresServer::start();
  if (!pg) GTEST_SKIP() << pg.error().message();
  ASSERT_TRUE((*pg)->create_database("attestd"));
  const std::string store = (*pg)->conninfo("attestd");
  // Replicas share the keys (a Kubernetes Secret mounted as the state directory): the first
  // start generates them, the second replica gets a copy.
  Attestd first(dir_ / "a", {"--store", store});
  ASSERT_NE(first.port(), 0) << first.process().err();
  fs::create_directories(dir_ / "b");
  for (const char* f :
       {"token-key.pem", "session.key", "kek.key", "admin-key.sha256", "tls.crt", "tls.key"}) {
    fs::copy_file(dir_ / "a" / f, dir_ / "b" / f);
  }
  Attestd second(dir_ / "b", {"--store", store});
  ASSERT_NE(second.port(), 0) << second.process().err();
  // A replica started with keys of its own would seal resources the others cannot open: it is
  // refused before it serves.
  const auto stranger =
      run_command("timeout 30 " + std::string(CLOISTER_ATTESTD_BIN) +
                  " --listen 127.0.0.1:0 --state-dir " + (dir_ / "c").string() + " --trust-root " +
                  (dir_ / "ark.pem").string() + " --store '" + store + "'");
  EXPECT_EQ(stranger.status, 2) << stranger.out;
  EXPECT_THAT(stranger.out, HasSubstr("keys: kek.key differs from the one the store's other users "
                                      "hold (kek_check: expected "));
  EXPECT_THAT(stranger.out, HasSubstr("give every replica the same kek.key"));
  const std::string cert = (dir_ / "a" / "tls.crt").string();
  provision(cert, first.port(), first.admin_key());

  auto haproxy = cloister::testing::HaproxyServer::start(
      {"127.0.0.1:" + std::to_string(first.port()), "127.0.0.1:" + std::to_string(second.port())});
  if (!haproxy) GTEST_SKIP() << haproxy.error().message();
  // Every request of the client is a new connection, and HAProxy alternates connections: auth
  // reaches one replica, attest the other, the resource the first again.
  const auto secret =
      fetch("https://localhost:" + std::to_string((*haproxy)->port()), cert, launch_with(0x4d));
  ASSERT_TRUE(secret) << secret.error().message() << "\n" << (*haproxy)->log();
  EXPECT_EQ(std::string(secret->begin(), secret->end()), "secret disk key");

  const int auths = std::stoi(first.metric(cert, "cloister_attestd_auth_total")) +
                    std::stoi(second.metric(cert, "cloister_attestd_auth_total"));
  EXPECT_EQ(auths, 1);
  const std::string attest_pass = "cloister_attestd_attestations_total{verdict=\"pass\"}";
  const bool auth_on_first = first.metric(cert, "cloister_attestd_auth_total") == "1";
  Attestd& auth_replica = auth_on_first ? first : second;
  Attestd& attest_replica = auth_on_first ? second : first;
  EXPECT_EQ(auth_replica.metric(cert, attest_pass), "0");
  EXPECT_EQ(attest_replica.metric(cert, attest_pass), "1");
  EXPECT_EQ(auth_replica.metric(cert, "cloister_attestd_releases_total"), "1");

  // One chain in the shared store, whichever replica wrote each record.
  const auto audit =
      run_command(std::string(CLOISTER_ATTESTD_BIN) + " audit-verify --store '" + store + "'");
  EXPECT_EQ(audit.status, 0) << audit.out;
  EXPECT_THAT(audit.out, HasSubstr("\"records\": 4"));
}

}  // namespace
}  // namespace cloister::service
