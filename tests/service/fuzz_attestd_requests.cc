// Fuzzes every request body cloister-attestd parses, through the service's own handler: the
// first byte picks the endpoint (auth, attest with a valid session cookie, resource with a
// token, admin reference values, admin resource, resource policy alone), the rest is the body
// or token. Any input gets an answer with a status the protocol allows and a JSON body; every
// attest or resource request and every refused auth leaves exactly one audit record, whatever
// bytes it quotes; the resource policy parser round-trips what it accepts.
#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>

#include "cloister/service/attestd.h"
#include "fuzz/fuzz_target.h"
#include "observed_store.h"

namespace {

using namespace cloister;

struct Fixture {
  std::shared_ptr<service::testing::ObservedStore> store;
  std::unique_ptr<service::AttestationService> service;
  std::string admin_key;
  std::string cookie;
};

Fixture make_fixture() {
  char dir[] = "/tmp/cloister-fuzz-attestd-XXXXXX";
  if (::mkdtemp(dir) == nullptr) std::abort();
  auto keys = service::load_or_create_keys(dir).value();
  Fixture x;
  x.admin_key = *keys.new_admin_key;
  x.store = std::make_shared<service::testing::ObservedStore>(
      std::shared_ptr<service::Store>(service::open_sqlite_store(":memory:").value()));
  x.service = std::make_unique<service::AttestationService>(x.store, std::move(keys.keys),
                                                            service::ServiceOptions{});
  http::Request auth;
  auth.method = "POST";
  auth.path = "/kbs/v0/auth";
  auth.body = R"({"version":"0.4.0","tee":"snp","extra-params":""})";
  const auto r = x.service->handle(auth, "fuzz");
  const auto start = r.extra_headers.find("kbs-session-id=");
  x.cookie = r.extra_headers.substr(start, r.extra_headers.find(';', start) - start);
  std::filesystem::remove_all(dir);
  return x;
}

// The service appends an audit record for every admin change; a fresh in-memory store every
// 4096 inputs keeps a long campaign's memory flat.
Fixture& fixture() {
  static Fixture f = make_fixture();
  static unsigned uses = 0;
  if (++uses % 4096 == 0) f = make_fixture();
  return f;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  Fixture& f = fixture();
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  http::Request r;
  switch (data[0] % 6) {
    case 0:
      r.method = "POST", r.path = "/kbs/v0/auth", r.body = body;
      break;
    case 1:
      r.method = "POST", r.path = "/kbs/v0/attest", r.body = body;
      r.headers["cookie"] = f.cookie;
      break;
    case 2:
      r.method = "GET", r.path = "/kbs/v0/resource/a/b/c";
      r.headers["authorization"] = "Bearer " + body;
      break;
    case 3:
      r.method = "PUT", r.path = "/admin/v0/reference-values/fuzz", r.body = body;
      r.headers["authorization"] = "Bearer " + f.admin_key;
      break;
    case 4:
      r.method = "PUT", r.path = "/admin/v0/resources/a/b/c", r.body = body;
      r.headers["authorization"] = "Bearer " + f.admin_key;
      break;
    default: {
      auto policy = service::parse_resource_policy(body);
      if (policy) {
        auto again = service::parse_resource_policy(service::to_json(*policy).dump());
        if (!again || service::to_json(*again) != service::to_json(*policy)) std::abort();
      }
      return 0;
    }
  }
  const std::size_t appended = f.store->appended;
  const auto response = f.service->handle(r, "fuzz");
  static const std::set<int> allowed{200, 400, 401, 404, 409, 503};
  if (!allowed.count(response.status)) std::abort();
  if (!nlohmann::json::accept(response.body)) std::abort();
  if (f.store->failed_appends != 0) std::abort();
  // One record for each attest or resource request and each refused auth; none for a challenge.
  const bool auth = r.path == "/kbs/v0/auth";
  const bool audited = (auth && response.status != 200) || r.path == "/kbs/v0/attest" ||
                       r.path.starts_with("/kbs/v0/resource/");
  if (audited && f.store->appended != appended + 1) std::abort();
  if (auth && response.status == 200 && f.store->appended != appended) std::abort();
  return 0;
}
