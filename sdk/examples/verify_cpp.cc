// Verifies an SEV-SNP report with the C++ SDK and prints one line per check.
// usage: verify_cpp REPORT [CERT...]   (time: $CLOISTER_AT seconds since the epoch, default now)
#include <cloister/attestation/x509.h>
#include <cloister/common/file.h>
#include <cloister/sdk/verifier.h>

#include <cstdlib>
#include <iostream>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " REPORT [CERT...]\n";
    return 2;
  }
  cloister::sdk::VerifyRequest request;
  auto report = cloister::read_file(argv[1], cloister::sdk::kEvidenceFileLimit);
  if (!report) {
    std::cerr << report.error().message() << "\n";
    return 2;
  }
  request.evidence = *report;
  for (int i = 2; i < argc; ++i) {
    auto cert = cloister::read_file(argv[i], cloister::attestation::kCertificateFileLimit);
    if (!cert) {
      std::cerr << cert.error().message() << "\n";
      return 2;
    }
    request.certificates.push_back(*cert);
  }
  if (const char* at = std::getenv("CLOISTER_AT")) request.time = std::atoll(at);
  cloister::sdk::Verifier verifier;
  auto verdict = verifier.verify(request);
  if (!verdict) {
    std::cerr << verdict.error().message() << "\n";
    return 2;
  }
  std::cout << verdict->to_text();
  return verdict->passed() ? 0 : 1;
}
