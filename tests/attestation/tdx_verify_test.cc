#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cloister/attestation/tdx/pcs.h"
#include "cloister/attestation/tdx/verify.h"
#include "cloister/common/hex.h"
#include "fake_intel.h"
#include "tdx_facts.h"

namespace cloister::attestation::tdx {
namespace {

using cloister::testing::FakeIntel;
using cloister::testing::FakePck;
using cloister::testing::PckSpec;
using cloister::testing::QuoteSpec;
using cloister::testing::tcb_level_json;
using cloister::testing::tdx_facts;
using cloister::testing::tdx_item_valid_at;
using cloister::testing::tdx_pinned_time;
using cloister::testing::tdx_vector;
using cloister::testing::verify_fact_pair;
using json = nlohmann::json;

CheckStatus status_of(const TdxVerification& v, const std::string& name) {
  const Check* c = v.checks.find(name);
  EXPECT_NE(c, nullptr) << "no check " << name;
  return c ? c->status : CheckStatus::kSkip;
}

std::string detail_of(const TdxVerification& v, const std::string& name) {
  const Check* c = v.checks.find(name);
  return c ? c->detail : "no check " + name;
}

std::string dump(const Checks& checks) {
  std::string out;
  for (const auto& c : checks.all())
    out +=
        c.name + " " + std::string(to_string(c.status)) + ": " + c.found + " | " + c.detail + "\n";
  return out;
}

CheckStatus pass_if(bool ok) {
  return ok ? CheckStatus::kPass : CheckStatus::kFail;
}

bool b(const json& j) {
  return j.get<bool>();
}

std::optional<TcbStatus> facts_status(const json& s) {
  if (s.is_null()) return std::nullopt;
  // expected.json spells QVL's STATUS_TCB_NOT_SUPPORTED as its constant's name.
  if (s == "TCB_NOT_SUPPORTED") return TcbStatus::kNotSupported;
  auto status = tcb_status_from_string(s.get<std::string>());
  EXPECT_TRUE(status.has_value()) << s;
  return status;
}

// Every quote verifies against each collateral set the facts pair it with, at a pinned time,
// and yields exactly the facts' TCB status with every intermediate result; which dated items
// are valid at that time decides exactly which freshness checks fail.
TEST(TdxVerify, EveryQuoteVerifiesAgainstItsCollateral) {
  CLOISTER_REQUIRE_TDX_FACTS();
  int pairs = 0;
  for (const auto& f : tdx_facts()["quotes"]) {
    if (!f.contains("against_collateral")) continue;
    for (const auto& a : f["against_collateral"]) {
      SCOPED_TRACE(f["file"].get<std::string>() + " + " +
                   a["collateral_set"]["tcbinfo"].get<std::string>());
      const TdxVerification v = verify_fact_pair(f, a);
      SCOPED_TRACE(dump(v.checks));

      EXPECT_EQ(status_of(v, "tdx.quote.format"), CheckStatus::kPass);
      EXPECT_EQ(status_of(v, "tdx.quote.qe_vendor"), pass_if(b(f["qe_vendor_is_intel"])));
      EXPECT_EQ(status_of(v, "tdx.pck.chain.root"),
                pass_if(b(f["pck_chain_root_is_intel_sgx_root_ca"])));
      const auto& sigs = f["pck_chain_signatures_valid"];
      EXPECT_EQ(status_of(v, "tdx.pck.chain"),
                pass_if(b(sigs["leaf_by_intermediate"]) && b(sigs["intermediate_by_root"])));
      EXPECT_EQ(status_of(v, "tdx.pck.extensions"), CheckStatus::kPass);
      EXPECT_EQ(status_of(v, "tdx.qe_report.signature"),
                pass_if(b(f["qe_report_signature_valid"])));
      EXPECT_EQ(status_of(v, "tdx.qe_report.binding"),
                pass_if(b(f["qe_report_data_binds_attestation_key"])));
      EXPECT_EQ(status_of(v, "tdx.signature"), pass_if(b(f["quote_signature_valid"])));

      const UnixTime t = tdx_pinned_time(a);
      auto valid = [&](const char* item) { return tdx_item_valid_at(a, item, t); };
      EXPECT_EQ(status_of(v, "tdx.pck.chain.validity"),
                pass_if(valid("pck_chain.leaf") && valid("pck_chain.intermediate") &&
                        valid("pck_chain.root")));
      EXPECT_EQ(status_of(v, "tdx.crl.root"),
                pass_if(b(a["root_ca_crl"]["signature_valid_by_root"]) && valid("rootCaCrl")));
      EXPECT_EQ(status_of(v, "tdx.crl.pck"),
                pass_if(b(a["pck_crl"]["signature_valid_by_pck_intermediate"]) &&
                        b(a["pck_crl"]["issuer_matches_pck_leaf_issuer"]) && valid("pckCrl")));
      EXPECT_EQ(status_of(v, "tdx.revocation"),
                pass_if(!b(a["pck_crl"]["pck_leaf_revoked"]) &&
                        !b(a["root_ca_crl"]["intermediate_revoked"])));
      EXPECT_EQ(status_of(v, "tdx.collateral.signing_cert"),
                pass_if(b(a["tcb_signing_cert_signed_by_root"]) && valid("tcb_signing_cert")));
      const bool signing_trusted = b(a["tcb_signing_cert_signed_by_root"]);
      EXPECT_EQ(status_of(v, "tdx.collateral.tcb_info"),
                pass_if(signing_trusted && b(a["tcbinfo"]["signature_valid"]) && valid("tcbInfo")));
      EXPECT_EQ(status_of(v, "tdx.collateral.qe_identity"),
                pass_if(signing_trusted && b(a["qe_identity"]["signature_valid"]) &&
                        valid("qeIdentity")));
      const auto& c = a["checks"];
      EXPECT_EQ(status_of(v, "tdx.tcb_info.match"),
                pass_if(b(c["fmspc_match"]) && b(c["pceid_match"])));
      EXPECT_EQ(status_of(v, "tdx.module.identity"),
                pass_if(b(c["tdx_module_identity_found"]) && b(c["mrsignerseam_match"]) &&
                        b(c["seam_attributes_zero_and_match"])));
      const auto& m = a["qe_identity_match"];
      EXPECT_EQ(status_of(v, "tdx.qe_identity.match"),
                pass_if(b(m["mrsigner"]) && b(m["isvprodid"]) && b(m["miscselect"]) &&
                        b(m["attributes"])));

      // The TCB status and every intermediate.
      const auto& s = a["tcb_status_qvl_algorithm"];
      ASSERT_TRUE(v.tcb.has_value());
      ASSERT_TRUE(v.tcb_info.has_value());
      const TcbEvaluation& e = *v.tcb;
      const TcbInfo& info = v.tcb_info->value.value;
      EXPECT_EQ(e.status, facts_status(s["final"]));
      EXPECT_EQ(e.sgx_status, facts_status(s["sgx_level_status"]));
      EXPECT_EQ(status_of(v, "tdx.tcb.status"), pass_if(e.status != TcbStatus::kNotSupported));
      if (s["tdx_level"].is_null()) {
        EXPECT_FALSE(e.tdx_level.has_value());
      } else {
        ASSERT_TRUE(e.tdx_level.has_value());
        EXPECT_EQ(e.tdx_level_status, facts_status(s["tdx_level"]["status"]));
        EXPECT_EQ(format_rfc3339(info.tcb_levels[*e.tdx_level].tcb_date),
                  s["tdx_level"]["tcbDate"]);
        EXPECT_EQ(info.tcb_levels[*e.tdx_level].advisory_ids,
                  s["tdx_level"]["advisoryIDs"].get<std::vector<std::string>>());
        EXPECT_EQ(e.module_identity, s["module_identity"].get<std::string>());
        ASSERT_TRUE(e.module_level.has_value());
        const TdxModuleIdentity* id = nullptr;
        for (const auto& identity : info.tdx_module_identities)
          if (identity.id == *e.module_identity) id = &identity;
        ASSERT_NE(id, nullptr);
        EXPECT_EQ(id->tcb_levels[*e.module_level].isvsvn, s["module_level"]["isvsvn"].get<int>());
        EXPECT_EQ(e.module_status, facts_status(s["module_level"]["status"]));
        EXPECT_EQ(e.tdx_status, facts_status(s["tdx_status_after_module"]));
        EXPECT_EQ(e.qe_status, facts_status(s["qe_status"]));
        ASSERT_TRUE(e.qe_level.has_value());
        EXPECT_EQ(format_rfc3339(v.qe_identity->value.value.tcb_levels[*e.qe_level].tcb_date),
                  s["qe_level_tcbDate"]);
      }
      ++pairs;
    }
  }
  EXPECT_EQ(pairs, 5);
}

// Without collateral the quote's own signatures, binding and chain still verify; every
// collateral check fails and says where Intel serves the missing item.
TEST(TdxVerify, WithoutCollateralEveryCollateralCheckFailsByName) {
  CLOISTER_REQUIRE_TDX_FACTS();
  TdxVerifier verifier;
  for (const auto& f : tdx_facts()["quotes"]) {
    SCOPED_TRACE(f["file"].get<std::string>());
    TdxEvidence evidence;
    evidence.quote = tdx_vector(f["file"]);
    TdxVerifyOptions options;
    options.time = *parse_rfc3339("2026-06-01T00:00:00Z");
    const TdxVerification v = verifier.verify(evidence, options);
    for (const char* name : {"tdx.quote.format", "tdx.quote.qe_vendor", "tdx.pck.chain.root",
                             "tdx.pck.chain", "tdx.pck.extensions", "tdx.pck.chain.validity",
                             "tdx.qe_report.signature", "tdx.qe_report.binding", "tdx.signature"})
      EXPECT_EQ(status_of(v, name), CheckStatus::kPass) << name << ": " << detail_of(v, name);
    for (const char* name :
         {"tdx.crl.root", "tdx.crl.pck", "tdx.revocation", "tdx.collateral.signing_cert",
          "tdx.collateral.tcb_info", "tdx.collateral.qe_identity", "tdx.tcb.status"})
      EXPECT_EQ(status_of(v, name), CheckStatus::kFail) << name;
    const std::string fmspc = f["pck_sgx_extensions"]["fmspc"];
    EXPECT_EQ(detail_of(v, "tdx.collateral.tcb_info"),
              "no TCB Info supplied, cached or fetched; PCS serves it at "
              "https://api.trustedservices.intel.com/tdx/certification/v4/tcb?fmspc=" +
                  fmspc);
    EXPECT_EQ(v.checks.failures().size(), 7u);
  }
}

TEST(TdxVerify, EventLogReplayIsComparedWithTheQuote) {
  CLOISTER_REQUIRE_TDX_FACTS();
  TdxVerifier verifier;
  TdxVerifyOptions options;
  options.time = *parse_rfc3339("2026-06-01T00:00:00Z");
  TdxEvidence evidence;
  evidence.quote = tdx_vector("gtg/quote_v4_cos113.dat");
  evidence.event_log = tdx_vector("gtg/ccel_cos113_eventlog.bin");
  const TdxVerification v = verifier.verify(evidence, options);
  for (const char* name : {"tdx.eventlog.format", "tdx.eventlog.digests", "tdx.eventlog.rtmr0",
                           "tdx.eventlog.rtmr1", "tdx.eventlog.rtmr2", "tdx.eventlog.rtmr3"})
    EXPECT_EQ(status_of(v, name), CheckStatus::kPass) << name << ": " << detail_of(v, name);
  ASSERT_TRUE(v.replay.has_value());
  EXPECT_EQ(v.replay->events, (std::array<std::size_t, 4>{16, 7, 20, 0}));

  // The same log offered for another TD: RTMR0-2 differ; RTMR3 is non-zero there with no log
  // entries, which the log cannot speak to.
  evidence.quote = tdx_vector("phala/quote_v4_b0c06f.dat");
  const TdxVerification other = verifier.verify(evidence, options);
  for (const char* name : {"tdx.eventlog.rtmr0", "tdx.eventlog.rtmr1", "tdx.eventlog.rtmr2"}) {
    EXPECT_EQ(status_of(other, name), CheckStatus::kFail) << name;
  }
  EXPECT_EQ(detail_of(other, "tdx.eventlog.rtmr0"),
            "replaying the event log does not reproduce the quote's RTMR0 (the log is incomplete "
            "or altered)");

  evidence.event_log = Bytes{1, 2, 3};
  const TdxVerification bad = verifier.verify(evidence, options);
  EXPECT_EQ(status_of(bad, "tdx.eventlog.format"), CheckStatus::kFail);
  EXPECT_EQ(bad.checks.find("tdx.eventlog.rtmr0"), nullptr);
}

// Any single-bit change in the signed region (header, v5 descriptor, TD report) fails the quote
// signature — or, where it breaks the layout, the format check.
TEST(TdxVerify, EverySignedBitFlipIsRejected) {
  CLOISTER_REQUIRE_TDX_FACTS();
  TdxVerifier verifier;
  TdxVerifyOptions options;
  options.time = *parse_rfc3339("2026-06-01T00:00:00Z");
  for (const char* file : {"gtg/quote_v4_spr_e4.dat", "gtg/quote_v5_tdx15.dat"}) {
    SCOPED_TRACE(file);
    const Bytes original = tdx_vector(file);
    const std::size_t signed_size = decode_tdx_quote(original)->signed_size;
    int signature = 0, format = 0;
    TdxEvidence evidence;
    for (std::size_t byte = 0; byte < signed_size; ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        evidence.quote = original;
        evidence.quote[byte] ^= static_cast<std::uint8_t>(1u << bit);
        const TdxVerification v = verifier.verify(evidence, options);
        if (v.quote) {
          ASSERT_EQ(status_of(v, "tdx.signature"), CheckStatus::kFail)
              << "byte " << byte << " bit " << bit;
          ++signature;
        } else {
          ASSERT_EQ(status_of(v, "tdx.quote.format"), CheckStatus::kFail)
              << "byte " << byte << " bit " << bit;
          ++format;
        }
      }
    }
    EXPECT_EQ(signature + format, static_cast<int>(8 * signed_size));
    // Only the version (16 bits) and a v4 quote's TEE type (32) or a v5 quote's body descriptor
    // (48) break the layout; every other flip reaches the signature.
    EXPECT_EQ(format, decode_tdx_quote(original)->body_type ? 64 : 48);
  }
}

// Any single-bit change in the QE report fails its PCK signature.
TEST(TdxVerify, EveryQeReportBitFlipIsRejected) {
  CLOISTER_REQUIRE_TDX_FACTS();
  TdxVerifier verifier;
  TdxVerifyOptions options;
  options.time = *parse_rfc3339("2026-06-01T00:00:00Z");
  for (const char* file : {"phala/quote_v4_b0c06f.dat", "phala/quote_v5_outdated_90c06f.dat"}) {
    SCOPED_TRACE(file);
    const Bytes original = tdx_vector(file);
    const auto q = decode_tdx_quote(original);
    ASSERT_TRUE(q);
    const std::size_t qe_at = q->signed_size + 4 + 64 + 64 + 2 + 4;
    ASSERT_TRUE(
        std::equal(q->qe_report.raw.begin(), q->qe_report.raw.end(), original.begin() + qe_at));
    TdxEvidence evidence;
    for (std::size_t byte = 0; byte < kQeReportSize; ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        evidence.quote = original;
        evidence.quote[qe_at + byte] ^= static_cast<std::uint8_t>(1u << bit);
        const TdxVerification v = verifier.verify(evidence, options);
        ASSERT_EQ(status_of(v, "tdx.qe_report.signature"), CheckStatus::kFail)
            << "byte " << byte << " bit " << bit;
        ASSERT_EQ(status_of(v, "tdx.signature"), CheckStatus::kPass);
      }
    }
  }
}

TEST(TdxVerify, TruncatedQuoteFailsTheFormatCheck) {
  CLOISTER_REQUIRE_TDX_FACTS();
  TdxEvidence evidence;
  evidence.quote = tdx_vector("gtg/quote_v5_tdx15.dat");
  evidence.quote.resize(1000);
  TdxVerifyOptions options;
  options.time = *parse_rfc3339("2026-06-01T00:00:00Z");
  const TdxVerification v = TdxVerifier().verify(evidence, options);
  EXPECT_FALSE(v.quote.has_value());
  EXPECT_EQ(v.checks.failures(), std::vector<std::string>{"tdx.quote.format"});
  EXPECT_EQ(detail_of(v, "tdx.quote.format"),
            "signature_data_len at offset 702: declares 4300 bytes, only 294 follow");
}

// A chain certificate whose key does not decode (found by fuzzing: one base64 character of the
// root's key in a real quote) is a named chain failure, never a null key used later.
TEST(TdxVerify, UndecodableChainKeyIsANamedFailure) {
  CLOISTER_REQUIRE_TDX_FACTS();
  TdxEvidence evidence;
  evidence.quote = tdx_vector("gtg/quote_v5_tdx15.dat");
  ASSERT_EQ(evidence.quote[4538], '7');
  evidence.quote[4538] = '4';
  TdxVerifyOptions options;
  options.time = *parse_rfc3339("2026-06-01T00:00:00Z");
  const TdxVerification v = TdxVerifier().verify(evidence, options);
  EXPECT_EQ(status_of(v, "tdx.pck.chain"), CheckStatus::kFail);
  EXPECT_EQ(detail_of(v, "tdx.pck.chain")
                .rfind("PCK chain: PEM block 3: certificate public key cannot be decoded", 0),
            0u);
  EXPECT_EQ(status_of(v, "tdx.qe_report.signature"), CheckStatus::kFail);
  EXPECT_EQ(status_of(v, "tdx.signature"), CheckStatus::kPass);
}

// A real Intel quote checked against another root, and a quote from another root checked
// against Intel's: both fail the anchor check.
TEST(TdxVerify, WrongRootIsRejected) {
  CLOISTER_REQUIRE_TDX_FACTS();
  FakeIntel fake;
  TdxVerifyOptions options;
  options.time = *parse_rfc3339("2026-06-01T00:00:00Z");
  TdxEvidence evidence;
  evidence.quote = tdx_vector("phala/quote_v4_b0c06f.dat");
  const TdxVerification v = TdxVerifier({nullptr, {fake.root_key()}}).verify(evidence, options);
  EXPECT_EQ(status_of(v, "tdx.pck.chain.root"), CheckStatus::kFail);
  EXPECT_EQ(detail_of(v, "tdx.pck.chain.root"),
            "the PCK chain ends in a root whose public key is not the trusted Intel SGX Root CA "
            "key");
  evidence.quote = fake.quote(fake.pck());
  const TdxVerification w = TdxVerifier().verify(evidence, options);
  EXPECT_EQ(status_of(w, "tdx.pck.chain.root"), CheckStatus::kFail);
  EXPECT_EQ(status_of(w, "tdx.pck.chain"), CheckStatus::kPass);
  EXPECT_EQ(status_of(w, "tdx.signature"), CheckStatus::kPass);
}

// ---- A test hierarchy for what real data cannot show ----------------------------------------

class FakeTdx : public ::testing::Test {
 protected:
  static constexpr UnixTime kFrom = 1767225600;  // 2026-01-01
  static constexpr UnixTime kTo = 1769904000;    // 2026-02-01
  static constexpr UnixTime kAt = 1768435200;    // 2026-01-15

  TdxVerification run(const Bytes& quote, const TdxCollateral& collateral,
                      TdxVerifyOptions options = {}) {
    if (options.time == 0) options.time = kAt;
    TdxEvidence evidence;
    evidence.quote = quote;
    evidence.collateral = collateral;
    return verifier.verify(evidence, options);
  }
  TdxVerification run(const Bytes& quote) { return run(quote, fake.collateral(kFrom, kTo)); }

  static const FakeIntel& shared() {
    static const FakeIntel f;
    return f;
  }
  const FakeIntel& fake = shared();
  TdxVerifier verifier{TdxVerifierConfig{nullptr, {shared().root_key()}}};
  FakePck pck = fake.pck();
};

TEST_F(FakeTdx, AGoodQuoteIsUpToDateAndPassesEveryCheck) {
  for (std::uint16_t version : {4, 5}) {
    QuoteSpec spec;
    spec.version = version;
    const TdxVerification v = run(fake.quote(pck, spec));
    EXPECT_TRUE(v.checks.passed()) << dump(v.checks);
    EXPECT_EQ(v.tcb->status, TcbStatus::kUpToDate);
    EXPECT_EQ(v.tcb->relaunch_checked, version == 5);
  }
}

TEST_F(FakeTdx, ExpiredPckIsRejected) {
  PckSpec spec;
  spec.not_after = kAt - 1;
  const TdxVerification v = run(fake.quote(fake.pck(spec)));
  EXPECT_EQ(v.checks.failures(), std::vector<std::string>{"tdx.pck.chain.validity"});
  EXPECT_NE(detail_of(v, "tdx.pck.chain.validity").find("'Intel SGX PCK Certificate' expired"),
            std::string::npos);
}

TEST_F(FakeTdx, RevokedPckAndRevokedCaAreRejected) {
  const Bytes quote = fake.quote(pck);
  TdxCollateral c = fake.collateral(kFrom, kTo);
  for (auto& crl : c.crls) {
    if (crl.value.issuer_cn() == kPlatformCaCn)
      crl.value = fake.pck_crl({Bytes{0x01, 0x02}, pck.cert.serial()}, kFrom, kTo);
  }
  const TdxVerification v = run(quote, c);
  EXPECT_EQ(v.checks.failures(), std::vector<std::string>{"tdx.revocation"});
  EXPECT_EQ(v.checks.find("tdx.revocation")->found,
            "PCK leaf 0x5eed revoked " + format_rfc3339(kFrom - 86400));

  TdxCollateral ca = fake.collateral(kFrom, kTo);
  for (auto& crl : ca.crls) {
    if (crl.value.issuer_cn() == kRootCaCn)
      crl.value = fake.root_crl({fake.platform_ca().serial()}, kFrom, kTo);
  }
  const TdxVerification w = run(quote, ca);
  EXPECT_EQ(w.checks.failures(), std::vector<std::string>{"tdx.revocation"});
  EXPECT_NE(w.checks.find("tdx.revocation")->found.find("'Intel SGX PCK Platform CA' 0x20 revoked"),
            std::string::npos);

  // A PCK CRL signed by another key is not trusted, and revocation is then unknown.
  TdxCollateral forged = fake.collateral(kFrom, kTo);
  const FakeIntel other = FakeIntel::second_host();
  for (auto& crl : forged.crls) {
    if (crl.value.issuer_cn() == kPlatformCaCn) crl.value = other.pck_crl({}, kFrom, kTo);
  }
  const TdxVerification x = run(quote, forged);
  EXPECT_EQ(x.checks.failures(), (std::vector<std::string>{"tdx.crl.pck", "tdx.revocation"}));
}

// The host chooses what collateral it supplies: an older TCB Info or CRL, still inside its
// window and listed first, is not what gets appraised.
TEST_F(FakeTdx, TheNewestCollateralThatVerifiesIsAppraisedInAnyOrder) {
  const Bytes quote = fake.quote(pck);
  TdxCollateral c = fake.collateral(kFrom - 5 * 86400, kTo);
  const TdxCollateral current = fake.collateral(
      kFrom, kTo,
      json::array({tcb_level_json({3, 3, 2, 2, 4, 1, 0, 5}, 13, {5, 0, 3}, "OutOfDate")}));
  c.tcb_infos.push_back(current.tcb_infos.front());
  const TdxVerification v = run(quote, c);
  ASSERT_TRUE(v.tcb_info.has_value());
  EXPECT_EQ(v.tcb_info->value.value.issue_date, kFrom);
  EXPECT_EQ(v.tcb->status, TcbStatus::kOutOfDate);

  TdxCollateral r = fake.collateral(kFrom, kTo);
  for (auto& crl : r.crls) {
    if (crl.value.issuer_cn() == kPlatformCaCn)
      crl.value = fake.pck_crl({pck.cert.serial()}, kFrom, kTo);
  }
  r.crls.insert(r.crls.begin(), {fake.pck_crl({}, kFrom - 10 * 86400, kTo), "an older CRL"});
  const TdxVerification w = run(quote, r);
  EXPECT_EQ(w.checks.failures(), std::vector<std::string>{"tdx.revocation"});
  EXPECT_EQ(w.checks.find("tdx.revocation")->found,
            "PCK leaf 0x5eed revoked " + format_rfc3339(kFrom - 86400));
}

// With a PCS client (here its cache, offline), the cached CRL is consulted beside the supplied
// collateral, which no longer stops the lookup.
TEST_F(FakeTdx, TheCacheIsConsultedEvenWhenCollateralIsSupplied) {
  const auto cache = std::filesystem::temp_directory_path() /
                     ("cloister-pcs-crl-test-" + std::to_string(::getpid()));
  std::filesystem::remove_all(cache);
  std::filesystem::create_directories(cache / "sgx/v4/pckcrl");
  const Crl revoking = fake.pck_crl({pck.cert.serial()}, kFrom, kTo);
  {
    std::ofstream out(cache / "sgx/v4/pckcrl/platform.der", std::ios::binary);
    out.write(reinterpret_cast<const char*>(revoking.der().data()),
              static_cast<std::streamsize>(revoking.der().size()));
  }
  PcsOptions offline;
  offline.cache_dir = cache;
  TdxVerifier with_cache(
      TdxVerifierConfig{std::make_shared<PcsClient>(offline), {fake.root_key()}});
  TdxEvidence evidence;
  evidence.quote = fake.quote(pck);
  evidence.collateral = fake.collateral(kFrom, kTo);
  TdxVerifyOptions options;
  options.time = kAt;
  const TdxVerification v = with_cache.verify(evidence, options);
  std::filesystem::remove_all(cache);
  EXPECT_EQ(v.checks.failures(), std::vector<std::string>{"tdx.revocation"});
  EXPECT_TRUE(run(evidence.quote, evidence.collateral).checks.passed());
}

TEST_F(FakeTdx, QeReportThatDoesNotBindTheKeyIsRejected) {
  QuoteSpec spec;
  spec.bind_other_key = true;
  const TdxVerification v = run(fake.quote(pck, spec));
  EXPECT_EQ(v.checks.failures(), std::vector<std::string>{"tdx.qe_report.binding"});
  EXPECT_EQ(detail_of(v, "tdx.qe_report.binding"),
            "the QE report does not bind the attestation key");
  QuoteSpec tail;
  tail.nonzero_report_data_tail = true;
  const TdxVerification w = run(fake.quote(pck, tail));
  EXPECT_EQ(w.checks.failures(), std::vector<std::string>{"tdx.qe_report.binding"});
  EXPECT_EQ(detail_of(w, "tdx.qe_report.binding"),
            "the upper 32 bytes of the QE report data are not zero");
}

TEST_F(FakeTdx, CollateralIsCheckedAgainstIssueDateAndNextUpdate) {
  const Bytes quote = fake.quote(pck);
  TdxVerifyOptions late;
  late.time = kTo + 10;
  const TdxVerification stale = run(quote, fake.collateral(kFrom, kTo), late);
  EXPECT_EQ(stale.checks.failures(),
            (std::vector<std::string>{"tdx.crl.root", "tdx.crl.pck", "tdx.collateral.tcb_info",
                                      "tdx.collateral.qe_identity"}));
  EXPECT_EQ(detail_of(stale, "tdx.collateral.tcb_info"),
            "the TCB Info is stale: nextUpdate 2026-02-01T00:00:00Z is not after the verification "
            "time 2026-02-01T00:00:10Z");
  late.allow_stale_collateral = true;
  const TdxVerification allowed = run(quote, fake.collateral(kFrom, kTo), late);
  EXPECT_TRUE(allowed.checks.passed()) << dump(allowed.checks);
  EXPECT_NE(detail_of(allowed, "tdx.collateral.tcb_info")
                .find("accepted because stale collateral is allowed"),
            std::string::npos);
  // Collateral issued after the verification time is never accepted (replayed "future"
  // collateral cannot vouch for an earlier moment).
  TdxVerifyOptions early;
  early.time = kFrom - 10;
  early.allow_stale_collateral = true;
  const TdxVerification future = run(quote, fake.collateral(kFrom, kTo), early);
  EXPECT_EQ(status_of(future, "tdx.collateral.tcb_info"), CheckStatus::kFail);
  EXPECT_EQ(detail_of(future, "tdx.collateral.qe_identity"),
            "the QE Identity was issued 2026-01-01T00:00:00Z, after the verification time "
            "2025-12-31T23:59:50Z");
}

TEST_F(FakeTdx, RevokedTcbSigningCertificateTrustsNoCollateral) {
  TdxCollateral c = fake.collateral(kFrom, kTo);
  for (auto& crl : c.crls) {
    if (crl.value.issuer_cn() == kRootCaCn)
      crl.value = fake.root_crl({fake.tcb_signing().serial()}, kFrom, kTo);
  }
  const TdxVerification v = run(fake.quote(pck), c);
  EXPECT_EQ(v.checks.failures(),
            (std::vector<std::string>{"tdx.collateral.signing_cert", "tdx.collateral.tcb_info",
                                      "tdx.collateral.qe_identity"}));
}

TEST_F(FakeTdx, TcbStatusConvergesAsQvlDoes) {
  // Module ISVSVN 4 is OutOfDate: the UpToDate platform level is demoted, with the module's
  // advisory.
  QuoteSpec old_module;
  old_module.tee_tcb_svn = {4, 1, 3};
  const TdxVerification v = run(fake.quote(pck, old_module));
  EXPECT_EQ(v.tcb->tdx_level_status, TcbStatus::kUpToDate);
  EXPECT_EQ(v.tcb->module_status, TcbStatus::kOutOfDate);
  EXPECT_EQ(v.tcb->status, TcbStatus::kOutOfDate);
  EXPECT_EQ(v.tcb->advisory_ids, std::vector<std::string>{"INTEL-SA-01099"});
  EXPECT_EQ(status_of(v, "tdx.tcb.status"), CheckStatus::kPass);

  // TD report 1.5 whose TEE_TCB_SVN2 already reaches the newest level: relaunch advised.
  QuoteSpec relaunch = old_module;
  relaunch.version = 5;
  relaunch.tee_tcb_svn2 = {6, 1, 3};
  const TdxVerification r = run(fake.quote(pck, relaunch));
  EXPECT_TRUE(r.tcb->relaunch_checked);
  EXPECT_EQ(r.tcb->status, TcbStatus::kTdRelaunchAdvised);
  relaunch.tee_tcb_svn2 = {5, 1, 3};
  EXPECT_EQ(run(fake.quote(pck, relaunch)).tcb->status, TcbStatus::kOutOfDate);

  // An out-of-date QE demotes an UpToDate platform; without a matching QE level: unsupported.
  json qe_levels = json::array(
      {{{"tcb", {{"isvsvn", 4}}}, {"tcbDate", "2024-11-13T00:00:00Z"}, {"tcbStatus", "UpToDate"}},
       {{"tcb", {{"isvsvn", 2}}},
        {"tcbDate", "2023-02-15T00:00:00Z"},
        {"tcbStatus", "OutOfDate"}}});
  QuoteSpec old_qe;
  old_qe.qe_isvsvn = 3;
  const Bytes qe_quote = fake.quote(pck, old_qe);
  const TdxVerification q = run(qe_quote, fake.collateral(kFrom, kTo, nullptr, nullptr, qe_levels));
  EXPECT_EQ(q.tcb->qe_status, TcbStatus::kOutOfDate);
  EXPECT_EQ(q.tcb->status, TcbStatus::kOutOfDate);
  old_qe.qe_isvsvn = 1;
  const TdxVerification n =
      run(fake.quote(pck, old_qe), fake.collateral(kFrom, kTo, nullptr, nullptr, qe_levels));
  EXPECT_EQ(n.tcb->status, TcbStatus::kNotSupported);
  EXPECT_EQ(status_of(n, "tdx.tcb.status"), CheckStatus::kFail);
}

TEST_F(FakeTdx, LevelsAreMatchedInQvlOrderNotJsonOrder) {
  // Listed oldest first: JSON order would match the OutOfDate level.
  json ascending = json::array(
      {tcb_level_json({2, 2, 2, 2, 3, 1, 0, 5}, 13, {5, 0, 2}, "OutOfDate", "2024-03-13T00:00:00Z"),
       tcb_level_json({3, 3, 2, 2, 4, 1, 0, 5}, 13, {5, 0, 3}, "UpToDate")});
  const TdxVerification v = run(fake.quote(pck), fake.collateral(kFrom, kTo, ascending));
  EXPECT_EQ(v.tcb->tdx_level, 1u);
  EXPECT_EQ(v.tcb->status, TcbStatus::kUpToDate);

  // PCESVN below the newest level's puts the platform on the 2018 OutOfDate level even though
  // the module is current (go-tdx-guest reports the module's UpToDate here).
  json levels = json::array({tcb_level_json({3, 3, 2, 2, 4, 1, 0, 5}, 13, {5, 0, 3}, "UpToDate"),
                             tcb_level_json({2, 2, 2, 2, 3, 1, 0, 5}, 5, {5, 0, 2}, "OutOfDate",
                                            "2018-01-04T00:00:00Z", {"INTEL-SA-00106"})});
  PckSpec old_pce;
  old_pce.pcesvn = 11;
  const TdxVerification w = run(fake.quote(fake.pck(old_pce)), fake.collateral(kFrom, kTo, levels));
  EXPECT_EQ(w.tcb->sgx_level, 1u);
  EXPECT_EQ(w.tcb->module_status, TcbStatus::kUpToDate);
  EXPECT_EQ(w.tcb->status, TcbStatus::kOutOfDate);
  EXPECT_EQ(w.tcb->advisory_ids, std::vector<std::string>{"INTEL-SA-00106"});

  // TEE_TCB_SVN[1] = 0: no module identity, and every TDX component counts.
  QuoteSpec no_module;
  no_module.tee_tcb_svn = {4, 0, 3};
  const TdxVerification m = run(fake.quote(pck, no_module));
  EXPECT_FALSE(m.tcb->module_identity.has_value());
  EXPECT_EQ(m.tcb->status, TcbStatus::kNotSupported);  // component 0: 4 < 5 in every level
  EXPECT_NE(detail_of(m, "tdx.tcb.status").find("TDX COMP01 4 < 5"), std::string::npos);

  // QE Identity levels listed oldest first: a QE at ISVSVN 4 is on the UpToDate level, not on
  // the first one (OutOfDate) that its ISVSVN also meets.
  json qe_ascending = json::array(
      {{{"tcb", {{"isvsvn", 2}}}, {"tcbDate", "2023-02-15T00:00:00Z"}, {"tcbStatus", "OutOfDate"}},
       {{"tcb", {{"isvsvn", 4}}}, {"tcbDate", "2024-11-13T00:00:00Z"}, {"tcbStatus", "UpToDate"}}});
  QuoteSpec current_qe;
  current_qe.qe_isvsvn = 4;
  const TdxVerification qe =
      run(fake.quote(pck, current_qe), fake.collateral(kFrom, kTo, nullptr, nullptr, qe_ascending));
  EXPECT_EQ(qe.tcb->qe_level, 1u);
  EXPECT_EQ(qe.tcb->qe_status, TcbStatus::kUpToDate);
  EXPECT_EQ(qe.tcb->status, TcbStatus::kUpToDate);
}

TEST_F(FakeTdx, UnknownModuleAndForeignQeAreRejected) {
  QuoteSpec module3;
  module3.tee_tcb_svn = {6, 3, 3};
  const TdxVerification v = run(fake.quote(pck, module3));
  EXPECT_EQ(v.checks.failures(),
            (std::vector<std::string>{"tdx.module.identity", "tdx.tcb.status"}));
  EXPECT_EQ(v.tcb->status, TcbStatus::kTdxModuleMismatch);
  EXPECT_EQ(detail_of(v, "tdx.module.identity"),
            "TEE_TCB_SVN[1] = 3 names module identity TDX_03, which the TCB Info lacks");

  json levels = json::array({tcb_level_json({3, 3, 2, 2, 4, 1, 0, 5}, 13, {5, 0, 3}, "Revoked")});
  const TdxVerification r = run(fake.quote(pck), fake.collateral(kFrom, kTo, levels));
  EXPECT_EQ(r.tcb->status, TcbStatus::kRevoked);
  EXPECT_EQ(r.checks.failures(), std::vector<std::string>{"tdx.tcb.status"});
}

}  // namespace
}  // namespace cloister::attestation::tdx
