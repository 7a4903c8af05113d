// Reports verified per second on one core, next to raw OpenSSL ECDSA P-384 verifications per
// second measured in the same run on the same key and signature. Rates are per second of this
// thread's CPU time, so other load on the machine does not distort the comparison.
//
// usage: bench-verify REPORT VCEK [SECONDS]
#include <openssl/evp.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>

#include "cloister/attestation/snp/verify.h"
#include "cloister/common/file.h"
#include "cloister/common/sha.h"
#include "cloister/sdk/verifier.h"

namespace {

namespace snp = cloister::attestation::snp;

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Runs `op` repeatedly for about `seconds` of CPU time and returns operations per CPU second.
template <typename Op>
double rate(double seconds, Op&& op) {
  for (int i = 0; i < 20; ++i) op();  // warm-up
  long n = 0;
  const double start = thread_cpu_seconds();
  double elapsed = 0;
  do {
    for (int i = 0; i < 50; ++i) op();
    n += 50;
    elapsed = thread_cpu_seconds() - start;
  } while (elapsed < seconds);
  return static_cast<double>(n) / elapsed;
}

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "bench-verify: %s\n", message.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) die("usage: bench-verify REPORT VCEK [SECONDS]");
  const double seconds = argc > 3 ? std::atof(argv[3]) : 3.0;
  auto report_bytes = cloister::read_file(argv[1]);
  auto vcek_bytes = cloister::read_file(argv[2]);
  if (!report_bytes || !vcek_bytes) die("cannot read inputs");
  auto report = snp::parse_snp_report(*report_bytes);
  auto vcek = cloister::attestation::parse_certificates(*vcek_bytes);
  if (!report || !vcek) die("inputs are not a report and a certificate");
  const cloister::UnixTime at = 1761955200;  // 2025-11-01, inside the shared certs' validity

  // The floor: one ECDSA P-384 verification of the report's signature over a precomputed
  // SHA-384 digest, with the key already parsed.
  const auto digest = cloister::sha384(report->signed_bytes());
  const cloister::Bytes sig = snp::report_signature_der(*report);
  EVP_PKEY* key = vcek->front().public_key().native();
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(key, nullptr);
  EVP_PKEY_verify_init(ctx);
  EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha384());
  if (EVP_PKEY_verify(ctx, sig.data(), sig.size(), digest.data(), digest.size()) != 1)
    die("the report's signature does not verify with this VCEK");
  const double raw = rate(
      seconds, [&] { EVP_PKEY_verify(ctx, sig.data(), sig.size(), digest.data(), digest.size()); });
  EVP_PKEY_CTX_free(ctx);

  // The library: every evidence check (chain cached after the first report).
  snp::SnpVerifier verifier;
  snp::SnpEvidence evidence;
  evidence.report = *report_bytes;
  evidence.certificates.push_back({vcek->front(), "bench"});
  snp::SnpVerifyOptions options;
  options.time = at;
  if (!verifier.verify(evidence, options).checks.passed()) die("the report does not verify");
  const double library = rate(seconds, [&] { verifier.verify(evidence, options); });

  // The SDK: bytes in, verdict out (certificate parsing, policy, report JSON included).
  cloister::sdk::Verifier sdk_verifier;
  cloister::sdk::VerifyRequest request;
  request.evidence = *report_bytes;
  request.certificates.push_back(*vcek_bytes);
  request.time = at;
  const double sdk = rate(seconds, [&] { (void)sdk_verifier.verify(request); });

  std::printf("(operations per CPU-second of one thread)\n");
  std::printf("raw OpenSSL ECDSA P-384 verify        %8.0f /s\n", raw);
  std::printf("SnpVerifier::verify (all checks)      %8.0f /s   %.2fx the raw signature check\n",
              library, raw / library);
  std::printf("sdk::Verifier::verify (+policy, JSON) %8.0f /s   %.2fx the raw signature check\n",
              sdk, raw / sdk);
  std::printf(
      "target: within 1.25x of raw (go-sev-guest: ~670 full verifications/s on this host)\n");
  return 0;
}
