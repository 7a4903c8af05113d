#include "cloister/service/kbs_client.h"

#include "cloister/attestation/snp/cert_table.h"
#include "cloister/common/base64.h"
#include "cloister/common/json.h"
#include "cloister/service/evidence.h"

namespace cloister::service {

Result<nlohmann::json> snp_primary_evidence(ByteView report, const Bytes* cert_table) {
  evidence::SnpEvidence e;
  e.report.assign(report.begin(), report.end());
  if (cert_table != nullptr) {
    auto entries = attestation::snp::parse_cert_table(*cert_table);
    if (!entries) return entries.error().with_context("certificate table");
    std::vector<evidence::SnpCertificate> chain;
    for (auto& entry : *entries) {
      using attestation::snp::CertTableRole;
      std::string type;
      switch (entry.role) {
        case CertTableRole::kVcek:
          type = "VCEK";
          break;
        case CertTableRole::kVlek:
          type = "VLEK";
          break;
        case CertTableRole::kAskOrAsvk:
          type = "ASK";
          break;
        case CertTableRole::kArk:
          type = "ARK";
          break;
        default:
          continue;
      }
      chain.push_back({type, std::nullopt, std::move(entry.data)});
    }
    e.cert_chain = std::move(chain);
  }
  return evidence::snp_evidence_to_json(e);
}

nlohmann::json tdx_primary_evidence(ByteView quote, const Bytes* event_log) {
  evidence::TdxEvidence e;
  e.quote.assign(quote.begin(), quote.end());
  if (event_log != nullptr) e.cc_eventlog = *event_log;
  return evidence::to_json(e);
}

namespace {

// The value of the kbs-session-id cookie in a Set-Cookie header ("" when there is none).
std::string session_cookie(const attestation::HttpResponse& r) {
  const auto it = r.headers.find("set-cookie");
  if (it == r.headers.end()) return {};
  const std::string& v = it->second;
  constexpr std::string_view kName = "kbs-session-id=";
  if (v.compare(0, kName.size(), kName) != 0) return {};
  return v.substr(0, v.find(';'));
}

std::string body_text(const attestation::HttpResponse& r) {
  return std::string(r.body.begin(), r.body.end());
}

// The server's words for a log line: at most 512 bytes, control bytes as '?'.
std::string loggable(std::string text) {
  if (text.size() > 512) text = text.substr(0, 512) + "…";
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return text;
}

std::string string_member(const nlohmann::json& doc, const char* key) {
  const auto it = doc.find(key);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

KbsClient::KbsClient(KbsClientOptions options, std::shared_ptr<attestation::HttpClient> http,
                     jwe::TeeKeyPair key)
    : options_(std::move(options)), http_(std::move(http)), key_(std::move(key)) {}

Result<KbsClient> KbsClient::create(KbsClientOptions options,
                                    std::shared_ptr<attestation::HttpClient> http) {
  if (options.url.empty()) return Error(ErrorCode::kInvalidArgument, "KBS URL: empty");
  while (!options.url.empty() && options.url.back() == '/') options.url.pop_back();
  const bool https = options.url.rfind("https://", 0) == 0;
  const bool http_url = options.url.rfind("http://", 0) == 0;
  if (http_url && !options.ca_file.empty())
    return Error(ErrorCode::kInvalidArgument,
                 "KBS URL " + options.url + ": a CA file to verify the KBS with needs https://");
  if (!https && !(http_url && options.allow_http))
    return Error(ErrorCode::kInvalidArgument,
                 "KBS URL " + options.url + ": expected https://HOST:PORT" +
                     (http_url ? " (over plain http the host reads the TEE key and can answer "
                                 "with a secret of its choosing; allow http for tests only)"
                               : ""));
  if (!http) {
    attestation::HttpClientOptions o;
    o.timeout_seconds = options.timeout_seconds;
    o.ca_file = options.ca_file;
    o.keep_alive = options.keep_alive;
    o.https_only = https;
    o.follow_redirects = false;
    CLOISTER_TRY(auto client, attestation::make_http_client(o));
    http = std::move(client);
  }
  CLOISTER_TRY(jwe::TeeKeyPair key, jwe::TeeKeyPair::generate(options.key));
  return KbsClient(std::move(options), std::move(http), std::move(key));
}

Result<attestation::HttpResponse> KbsClient::call(const attestation::HttpRequest& request,
                                                  const std::string& step) {
  auto response = http_->send(request);
  if (!response) return response.error().with_context("KBS " + step);
  if (response->status == 200) return response;
  // {"type": ".../errors/<Variant>", "detail": "…"}
  std::string why = body_text(*response);
  if (auto doc = parse_json_strict(why, "KBS error"); doc && doc->is_object()) {
    const std::string type = string_member(*doc, "type");
    why = type.substr(type.rfind('/') + 1) + ": " + string_member(*doc, "detail");
  }
  why = loggable(std::move(why));
  const ErrorCode code = response->status == 401   ? ErrorCode::kPermissionDenied
                         : response->status == 404 ? ErrorCode::kNotFound
                                                   : ErrorCode::kUnavailable;
  return Error(code, "KBS " + step + ": HTTP " + std::to_string(response->status) + " " + why);
}

Status KbsClient::attest(const EvidenceProvider& evidence) {
  const kbs::Request hello{std::string(kbs::kProtocolVersion), options_.tee,
                           nlohmann::json::object()};
  CLOISTER_TRY(const auto challenge_response, call({"POST",
                                                    options_.url + "/kbs/v0/auth",
                                                    {"Content-Type: application/json"},
                                                    kbs::to_json(hello).dump()},
                                                   "auth"));
  cookie_ = session_cookie(challenge_response);
  if (cookie_.empty()) return Error(ErrorCode::kUnavailable, "KBS auth: no kbs-session-id cookie");
  CLOISTER_TRY(const kbs::Challenge challenge, kbs::parse_challenge(body_text(challenge_response)));
  CLOISTER_TRY(const kbs::HashAlgorithm hash, challenge.hash_algorithm());
  CLOISTER_TRY(const kbs::ReportData report_data,
               kbs::expected_report_data(key_.public_key(), challenge.nonce, "", hash));
  CLOISTER_TRY(nlohmann::json primary, evidence(report_data));
  kbs::Attestation attestation;
  attestation.init_data = options_.init_data;
  attestation.nonce = challenge.nonce;
  attestation.tee_pubkey = key_.public_key();
  attestation.primary_evidence = std::move(primary);
  CLOISTER_TRY(const auto attested, call({"POST",
                                          options_.url + "/kbs/v0/attest",
                                          {"Content-Type: application/json", "Cookie: " + cookie_},
                                          kbs::to_json(attestation).dump()},
                                         "attest"));
  CLOISTER_TRY(const nlohmann::json doc, parse_json_strict(body_text(attested), "KBS attest"));
  if (!doc.is_object() || !doc.contains("token") || !doc["token"].is_string()) {
    return Error(ErrorCode::kUnavailable, "KBS attest: the answer has no token");
  }
  token_ = doc["token"].get<std::string>();
  return {};
}

Result<Bytes> KbsClient::get_resource(const std::string& path) {
  if (token_.empty()) return Error(ErrorCode::kFailedPrecondition, "no token: attest first");
  CLOISTER_TRY(const auto response, call({"GET",
                                          options_.url + "/kbs/v0/resource/" + path,
                                          {"Authorization: Bearer " + token_},
                                          ""},
                                         "resource " + path));
  CLOISTER_TRY(const nlohmann::json jwe,
               parse_json_strict(body_text(response), "KBS resource " + path));
  return key_.decrypt(jwe);
}

}  // namespace cloister::service
