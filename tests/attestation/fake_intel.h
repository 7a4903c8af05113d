// Test helpers over the simulated Intel DCAP hierarchy (cloister::attestation_sim, in the tests'
// shared state directory) that issue quotes, CRLs and collateral the simulated QE and Intel never
// would, for exercising what the real vectors cannot: revoked or expired PCKs, a QE report that
// does not bind its key, TCB statuses the real collateral never yields.
#pragma once

#include <array>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cloister/attestation/sim/intel.h"
#include "cloister/attestation/tdx/collateral.h"

namespace cloister::testing {

using attestation::Certificate;
using attestation::Crl;
using FakePck = attestation::sim::CertifiedKey;

struct PckSpec {
  std::array<std::uint8_t, 16> tcb_components{3, 3, 2, 2, 4, 1, 0, 5};
  std::uint16_t pcesvn = 13;
  std::array<std::uint8_t, 6> fmspc{0x90, 0xc0, 0x6f, 0, 0, 0};
  UnixTime not_before = 1700000000;  // 2023-11-14
  UnixTime not_after = 1900000000;   // 2030-03-17
  long serial = 0x5eed;
};

struct QuoteSpec {
  std::uint16_t version = 4;  // 5 means a TD report 1.5 body (type 3)
  std::array<std::uint8_t, 16> tee_tcb_svn{6, 1, 3};
  std::array<std::uint8_t, 16> tee_tcb_svn2{6, 1, 3};
  std::uint64_t td_attributes = 0x10000000;  // SEPT_VE_DISABLE
  std::uint16_t qe_isvsvn = 4;
  Bytes qe_auth_data = Bytes(32, 0x5a);
  // Binds a different key than the one that signs the quote (QE report still validly signed).
  bool bind_other_key = false;
  // Sets the upper half of the QE report data, which must be zero.
  bool nonzero_report_data_tail = false;
};

class FakeIntel {
 public:
  // The hierarchy of the shared simulated host.
  FakeIntel();
  // Another host's hierarchy (other keys).
  static FakeIntel second_host();

  const Certificate& root() const { return intel_.root().cert; }
  const Certificate& platform_ca() const { return intel_.platform_ca().cert; }
  const Certificate& tcb_signing() const { return intel_.tcb_signing().cert; }
  attestation::PublicKey root_key() const { return root().public_key(); }

  FakePck pck(const PckSpec& spec = {}) const;
  Bytes quote(const FakePck& pck, const QuoteSpec& spec = {}) const;

  Crl root_crl(const std::vector<Bytes>& revoked, UnixTime this_update, UnixTime next_update) const;
  Crl pck_crl(const std::vector<Bytes>& revoked, UnixTime this_update, UnixTime next_update) const;

  // Collateral for a 90c06f000000 platform valid over [from, to): TCB Info (levels as given,
  // or Intel's 2024-11 ones), QE Identity, both CRLs (nothing revoked) and the signing chain.
  attestation::tdx::TdxCollateral collateral(UnixTime from, UnixTime to,
                                             const nlohmann::json& tcb_levels = nullptr,
                                             const nlohmann::json& module_identities = nullptr,
                                             const nlohmann::json& qe_levels = nullptr) const;

 private:
  explicit FakeIntel(attestation::sim::SimulatedIntel intel) : intel_(std::move(intel)) {}
  attestation::sim::SimulatedIntel intel_;
};

// A TCB level as TCB Info writes it.
nlohmann::json tcb_level_json(const std::array<std::uint8_t, 16>& sgx, int pcesvn,
                              const std::array<std::uint8_t, 16>& tdx, const std::string& status,
                              const std::string& date = "2024-11-13T00:00:00Z",
                              const std::vector<std::string>& advisories = {});

}  // namespace cloister::testing
