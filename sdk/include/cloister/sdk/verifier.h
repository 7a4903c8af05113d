// The public C++ API tenants and CI pipelines link: verify evidence bytes, certificates and a
// policy into a verdict whose checks say what was expected and found. verify-report is a thin
// main over this; the C ABI (cloister/cloister.h) wraps it.
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cloister/attestation/snp/verify.h"
#include "cloister/attestation/verdict.h"
#include "cloister/common/bytes.h"
#include "cloister/common/time.h"
#include "cloister/policy/policy.h"

namespace cloister::sdk {

struct VerifyRequest {
  // SEV-SNP: the 1184-byte report, optionally followed by the extended-report certificate table
  // (the layout go-sev-guest's tools read with -inform bin).
  Bytes evidence;
  // Certificate files' contents: DER, or PEM with one or more certificates. Any roles.
  std::vector<Bytes> certificates;
  // A separate extended-report certificate table (GHCB GUID table).
  std::optional<Bytes> cert_table;
  // CRL files' contents, DER or PEM.
  std::vector<Bytes> crls;
  policy::Policy policy;
  // Verification time for certificate and CRL validity; unset: now.
  std::optional<UnixTime> time;
  // Product name ("Milan", "Genoa", "Turin", …) for reports without CPUID fields.
  std::optional<std::string> product;
};

struct VerifierOptions {
  // Certificates and CRLs are looked up here, and what is fetched is stored here.
  std::optional<std::filesystem::path> cache_dir;
  // Fetch missing VCEKs, CA chains and CRLs from AMD KDS. Off: nothing leaves the machine.
  bool online = false;
  std::string kds_url = attestation::snp::kKdsBaseUrl;
  // Trusted AMD CAs; empty: the AMD roots built into the library.
  std::vector<attestation::snp::AmdCa> trusted_cas;
};

struct Verdict {
  std::string tee;  // "snp"
  attestation::Checks checks;
  nlohmann::json report;  // every field (hex strings); null when the evidence is not a report

  bool passed() const { return checks.passed(); }
  // {"verdict": "pass"|"fail", "tee", "checks": [{"name","status","expected","found","detail"}],
  //  "report": {...}}
  nlohmann::json to_json() const;
  // One line per check, then the verdict.
  std::string to_text() const;
};

// Thread-safe; keeps a cache of verified certificate chains, so reuse one Verifier.
class Verifier {
 public:
  explicit Verifier(VerifierOptions options = {});
  ~Verifier();
  Verifier(Verifier&&) noexcept;
  Verifier& operator=(Verifier&&) noexcept;

  // A verdict for any evidence bytes. Fails (no verdict) only when an input the caller supplied
  // is unusable: a certificate or CRL file that does not parse, an unknown product name.
  Result<Verdict> verify(const VerifyRequest& request) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cloister::sdk
