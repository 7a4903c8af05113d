// The KBS client (what cloister-agent runs): auth → attest → resource against cloister-attestd
// or any server speaking the KBS protocol 0.4.0 (Trustee's KBS), with an ephemeral TEE key whose
// public half the evidence binds and whose private half decrypts the resource's JWE.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cloister/attestation/http.h"
#include "cloister/common/bytes.h"
#include "cloister/common/result.h"
#include "cloister/service/jwe.h"
#include "cloister/service/kbs.h"
#include "cloister/service/report_data.h"

namespace cloister::service {

// The primary_evidence JSON of an SEV-SNP guest: its 1184-byte report and, when the host gave
// one, the extended report's certificate table (GHCB GUID table), whose VCEK/VLEK, ASK and ARK
// entries become cert_chain entries; entries of other GUIDs are dropped.
Result<nlohmann::json> snp_primary_evidence(ByteView report, const Bytes* cert_table);

// The primary_evidence JSON of a TDX guest: its quote and, when given, the CC event log.
nlohmann::json tdx_primary_evidence(ByteView quote, const Bytes* event_log);

// Produces the guest's primary_evidence for a REPORT_DATA (configfs-tsm, /dev/sev-guest, or the
// simulated guest's vsock channel).
using EvidenceProvider = std::function<Result<nlohmann::json>(const kbs::ReportData&)>;

struct KbsClientOptions {
  // "https://kbs.example:8080"; http:// only with allow_http.
  std::string url;
  // PEM to verify the server's certificate with, and nothing else (the system store is then not
  // consulted); empty: the system store.
  std::string ca_file;
  // Accept an http:// URL. For tests only: whoever carries the traffic (the host) reads the TEE
  // key and can answer with a secret of its choosing, encrypted to that key.
  bool allow_http = false;
  long timeout_seconds = 30;
  kbs::Tee tee = kbs::Tee::kSnp;
  jwe::TeeKeyPair::Kind key = jwe::TeeKeyPair::Kind::kEcP256;
  // Reuse one connection for auth, attest and resource (off: one connection per request).
  bool keep_alive = false;
  // Sent as Attestation.init-data: the document whose digest the host put in HOST_DATA or
  // MRCONFIGID at launch (see init_data.h); none: init-data null.
  std::optional<kbs::InitData> init_data;
};

class KbsClient {
 public:
  // `http` null: a libcurl client with the options' CA file and timeout, https only (unless
  // allow_http) and following no redirects (a KBS never redirects). Fails with
  // kInvalidArgument for a URL that is not https:// (or http:// with allow_http), and for a CA
  // file with an http:// URL.
  static Result<KbsClient> create(KbsClientOptions options,
                                  std::shared_ptr<attestation::HttpClient> http = nullptr);

  // auth → attest: the challenge's nonce and the TEE key are bound into REPORT_DATA (JCS, the
  // challenge's hash), `evidence` is asked for it, and the token is kept for get_resource().
  // A refusal is an Error with code kPermissionDenied (401), kNotFound (404) or kUnavailable
  // (anything else, or no answer) whose message carries the server's error type and detail.
  Status attest(const EvidenceProvider& evidence);

  // GET /kbs/v0/resource/<path> with the token as bearer, the JWE decrypted with the TEE key.
  Result<Bytes> get_resource(const std::string& path);

  const std::string& token() const { return token_; }
  const kbs::TeePubKey& tee_pubkey() const { return key_.public_key(); }

 private:
  KbsClient(KbsClientOptions options, std::shared_ptr<attestation::HttpClient> http,
            jwe::TeeKeyPair key);
  Result<attestation::HttpResponse> call(const attestation::HttpRequest& request,
                                         const std::string& step);

  KbsClientOptions options_;
  std::shared_ptr<attestation::HttpClient> http_;
  jwe::TeeKeyPair key_;
  std::string cookie_;
  std::string token_;
};

}  // namespace cloister::service
