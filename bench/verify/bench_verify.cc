// Evidence verified per second on one core, next to raw OpenSSL ECDSA verifications per second
// measured in the same run on the same key and signature. Rates are per second of this thread's
// CPU time, so other load on the machine does not distort the comparison.
//
// usage: bench-verify snp REPORT VCEK [SECONDS]
//        bench-verify tdx QUOTE COLLATERAL AT [SECONDS]   (AT: RFC 3339, inside the collateral)
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "cloister/attestation/snp/verify.h"
#include "cloister/attestation/tdx/collateral.h"
#include "cloister/attestation/tdx/verify.h"
#include "cloister/common/file.h"
#include "cloister/common/sha.h"
#include "cloister/sdk/verifier.h"

namespace {

namespace snp = cloister::attestation::snp;
namespace tdx = cloister::attestation::tdx;

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

// One raw EVP_PKEY_verify over a precomputed digest: the floor a verifier cannot beat.
template <std::size_t N>
double raw_verify_rate(double seconds, EVP_PKEY* key, const EVP_MD* md,
                       const std::array<std::uint8_t, N>& digest, const cloister::Bytes& der) {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(key, nullptr);
  EVP_PKEY_verify_init(ctx);
  EVP_PKEY_CTX_set_signature_md(ctx, md);
  if (EVP_PKEY_verify(ctx, der.data(), der.size(), digest.data(), digest.size()) != 1)
    die("the signature does not verify with the key");
  const double r = rate(
      seconds, [&] { EVP_PKEY_verify(ctx, der.data(), der.size(), digest.data(), digest.size()); });
  EVP_PKEY_CTX_free(ctx);
  return r;
}

int bench_snp(int argc, char** argv) {
  if (argc < 4) die("usage: bench-verify snp REPORT VCEK [SECONDS]");
  const double seconds = argc > 4 ? std::atof(argv[4]) : 3.0;
  auto report_bytes = cloister::read_file(argv[2], cloister::sdk::kEvidenceFileLimit);
  auto vcek_bytes = cloister::read_file(argv[3], cloister::attestation::kCertificateFileLimit);
  if (!report_bytes || !vcek_bytes) die("cannot read inputs");
  auto report = snp::parse_snp_report(*report_bytes);
  auto vcek = cloister::attestation::parse_certificates(*vcek_bytes);
  if (!report || !vcek) die("inputs are not a report and a certificate");
  const cloister::UnixTime at = 1761955200;  // 2025-11-01, inside the shared certs' validity

  // The floor: one ECDSA P-384 verification of the report's signature over a precomputed
  // SHA-384 digest, with the key already parsed.
  const double raw =
      raw_verify_rate(seconds, vcek->front().public_key().native(), EVP_sha384(),
                      cloister::sha384(report->signed_bytes()), snp::report_signature_der(*report));

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

// ECDSA r||s (32-byte big-endian halves) as DER.
cloister::Bytes der_signature(cloister::ByteView rs) {
  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(sig, BN_bin2bn(rs.data(), 32, nullptr), BN_bin2bn(rs.data() + 32, 32, nullptr));
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  cloister::Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

int bench_tdx(int argc, char** argv) {
  if (argc < 5) die("usage: bench-verify tdx QUOTE COLLATERAL AT [SECONDS]");
  const double seconds = argc > 5 ? std::atof(argv[5]) : 3.0;
  auto quote_bytes = cloister::read_file(argv[2], cloister::sdk::kEvidenceFileLimit);
  auto collateral_bytes =
      cloister::read_file(argv[3], cloister::attestation::tdx::kCollateralFileLimit);
  auto at = cloister::parse_rfc3339(argv[4]);
  if (!quote_bytes || !collateral_bytes || !at) die("cannot read inputs");
  auto quote = tdx::parse_tdx_quote(*quote_bytes);
  if (!quote) die("not a TDX quote: " + quote.error().message());

  // The floor: one ECDSA P-256 verification of the quote signature over a precomputed SHA-256
  // digest, with the attestation key already parsed. A quote carries two such signatures
  // (quote and QE report), so two of these bound what any full verifier can do.
  auto key =
      cloister::attestation::PublicKey::from_ec_point(NID_X9_62_prime256v1, quote->attestation_key);
  if (!key) die("bad attestation key");
  const double raw =
      raw_verify_rate(seconds, key->native(), EVP_sha256(), cloister::sha256(quote->signed_bytes()),
                      der_signature(quote->signature));

  // The library: every check, collateral parsed once (chain, collateral and CRL signatures
  // are cached by content after the first quote; the two per-quote signatures never are).
  tdx::TdxEvidence evidence;
  evidence.quote = *quote_bytes;
  if (auto ok = tdx::add_collateral(*collateral_bytes, "bench", evidence.collateral); !ok)
    die(ok.error().message());
  tdx::TdxVerifier verifier;
  tdx::TdxVerifyOptions options;
  options.time = *at;
  if (!verifier.verify(evidence, options).checks.passed()) die("the quote does not verify");
  const double library = rate(seconds, [&] { verifier.verify(evidence, options); });

  // The SDK: bytes in, verdict out (collateral bytes looked up in the parsed cache, default
  // policy, quote JSON).
  cloister::sdk::Verifier sdk_verifier;
  cloister::sdk::VerifyRequest request;
  request.evidence = *quote_bytes;
  request.collateral.push_back(*collateral_bytes);
  request.time = *at;
  const double sdk = rate(seconds, [&] { (void)sdk_verifier.verify(request); });

  std::printf("(operations per CPU-second of one thread)\n");
  std::printf("raw OpenSSL ECDSA P-256 verify        %8.0f /s   (two per quote: %.0f quotes/s)\n",
              raw, raw / 2);
  std::printf("TdxVerifier::verify (all checks)      %8.0f /s   %.2fx two raw verifications\n",
              library, raw / 2 / library);
  std::printf("sdk::Verifier::verify (+policy, JSON) %8.0f /s   %.2fx two raw verifications\n", sdk,
              raw / 2 / sdk);
  std::printf(
      "target: within 2.5x of two raw verifications (go-tdx-guest: ~560 quotes/s with "
      "collateral and CRLs on this host)\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "snp") return bench_snp(argc, argv);
  if (mode == "tdx") return bench_tdx(argc, argv);
  die("usage: bench-verify snp REPORT VCEK [SECONDS] | tdx QUOTE COLLATERAL AT [SECONDS]");
}
