#include <gtest/gtest.h>

#include "cloister/attestation/tdx/collateral.h"
#include "cloister/attestation/tdx/pck.h"
#include "cloister/common/hex.h"
#include "tdx_facts.h"

namespace cloister::attestation::tdx {
namespace {

using cloister::testing::tdx_collateral_set;
using cloister::testing::tdx_facts;
using cloister::testing::tdx_vector;

std::string text_of(const Bytes& b) {
  return std::string(b.begin(), b.end());
}

const Certificate& signing_cert(const TdxCollateral& c) {
  for (const auto& cert : c.certificates)
    if (cert.value.subject_cn() == kTcbSigningCn) return cert.value;
  ADD_FAILURE() << "no TCB Signing certificate";
  return c.certificates.front().value;
}

// Every collateral set parses into the fields the facts list, and both signatures verify over
// the raw JSON bytes with the TCB Signing key.
TEST(TdxCollateral, EverySetParsesAndItsSignaturesVerify) {
  CLOISTER_REQUIRE_TDX_FACTS();
  int sets = 0;
  for (const auto& q : tdx_facts()["quotes"]) {
    if (!q.contains("against_collateral")) continue;
    for (const auto& a : q["against_collateral"]) {
      SCOPED_TRACE(a["collateral_set"]["tcbinfo"].get<std::string>());
      TdxCollateral c = tdx_collateral_set(a["collateral_set"]);
      ASSERT_EQ(c.tcb_infos.size(), 1u);
      ASSERT_EQ(c.qe_identities.size(), 1u);
      ASSERT_EQ(c.crls.size(), 2u);
      const TcbInfo& t = c.tcb_infos[0].value.value;
      const auto& ft = a["tcbinfo"];
      EXPECT_EQ(t.id, ft["id"]);
      EXPECT_EQ(t.version, ft["version"].get<std::uint32_t>());
      std::string fmspc = ft["fmspc"];
      for (char& ch : fmspc) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      EXPECT_EQ(to_hex(t.fmspc), fmspc);
      EXPECT_EQ(to_hex(t.pce_id), ft["pceId"]);
      EXPECT_EQ(format_rfc3339(t.issue_date), ft["issueDate"]);
      EXPECT_EQ(format_rfc3339(t.next_update), ft["nextUpdate"]);
      EXPECT_EQ(t.tcb_evaluation_data_number, ft["tcbEvaluationDataNumber"].get<std::uint32_t>());
      const QeIdentity& id = c.qe_identities[0].value.value;
      const auto& fq = a["qe_identity"];
      EXPECT_EQ(id.id, fq["id"]);
      EXPECT_EQ(id.version, fq["version"].get<std::uint32_t>());
      EXPECT_EQ(format_rfc3339(id.issue_date), fq["issueDate"]);
      EXPECT_EQ(format_rfc3339(id.next_update), fq["nextUpdate"]);
      EXPECT_EQ(id.tcb_evaluation_data_number, fq["tcbEvaluationDataNumber"].get<std::uint32_t>());
      EXPECT_EQ(to_hex(id.mrsigner),
                "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5");
      EXPECT_EQ(id.isvprodid, 2);

      const Certificate& signer = signing_cert(c);
      EXPECT_EQ(signer.serial_hex(), a["tcb_signing_cert"]["serial"]);
      EXPECT_EQ(to_hex(signer.fingerprint()), a["tcb_signing_cert"]["sha256"]);
      EXPECT_EQ(static_cast<bool>(signer.verify_signed_by(intel_sgx_root_key())),
                a["tcb_signing_cert_signed_by_root"].get<bool>());
      const auto& tcb = c.tcb_infos[0].value;
      EXPECT_EQ(static_cast<bool>(
                    verify_p256_signature(signer.public_key(), as_bytes(tcb.body), tcb.signature)),
                ft["signature_valid"].get<bool>());
      const auto& qe = c.qe_identities[0].value;
      EXPECT_EQ(static_cast<bool>(
                    verify_p256_signature(signer.public_key(), as_bytes(qe.body), qe.signature)),
                fq["signature_valid"].get<bool>());
      ++sets;
    }
  }
  EXPECT_EQ(sets, 5);
}

// The signed text is the member's exact bytes as served, not a re-serialisation.
TEST(TdxCollateral, SignedBodyIsTheRawMemberText) {
  CLOISTER_REQUIRE_TDX_FACTS();
  const std::string response = text_of(tdx_vector("gtg/tcbinfo_50806f000000.json"));
  auto r = parse_tcb_info_response(response);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ("{\"tcbInfo\":" + r->body + ",\"signature\":\"" + to_hex(r->signature) + "\"}",
            response.substr(0, response.size() - 1));
  EXPECT_EQ(response.back(), '\n');
  // The bundle carries the same structure as a JSON string; the derived PCS-shaped response
  // holds it verbatim.
  const std::string bundle = text_of(tdx_vector("phala/tdx_quote_collateral.json"));
  TdxCollateral from_bundle;
  ASSERT_TRUE(add_collateral(as_bytes(bundle), "bundle", from_bundle));
  auto derived = parse_tcb_info_response(
      text_of(tdx_vector("phala/derived/tdx_quote_collateral/tcb_info_response.json")));
  ASSERT_TRUE(derived);
  EXPECT_EQ(from_bundle.tcb_infos[0].value.body, derived->body);
  EXPECT_EQ(from_bundle.tcb_infos[0].value.signature, derived->signature);
  EXPECT_EQ(from_bundle.tcb_infos[0].source, "bundle tcb_info");
  EXPECT_EQ(from_bundle.crls.size(), 2u);
  EXPECT_EQ(from_bundle.certificates.size(), 6u);  // three issuer chains of two
}

TEST(TdxCollateral, TcbLevelsKeepEveryField) {
  CLOISTER_REQUIRE_TDX_FACTS();
  auto r = parse_tcb_info_response(text_of(tdx_vector("gtg/tcbinfo_90c06f000000.json")));
  ASSERT_TRUE(r) << r.error().message();
  const TcbInfo& t = r->value;
  ASSERT_TRUE(t.tdx_module.has_value());
  EXPECT_EQ(to_hex(t.tdx_module->attributes_mask), "ffffffffffffffff");
  ASSERT_EQ(t.tdx_module_identities.size(), 2u);
  EXPECT_EQ(t.tdx_module_identities[0].id, "TDX_03");
  const TdxModuleIdentity& m = t.tdx_module_identities[1];
  EXPECT_EQ(m.id, "TDX_01");
  ASSERT_EQ(m.tcb_levels.size(), 3u);
  EXPECT_EQ(m.tcb_levels[1].isvsvn, 4);
  EXPECT_EQ(m.tcb_levels[1].status, TcbStatus::kOutOfDate);
  EXPECT_EQ(m.tcb_levels[1].advisory_ids,
            (std::vector<std::string>{"INTEL-SA-01036", "INTEL-SA-01099"}));
  ASSERT_EQ(t.tcb_levels.size(), 3u);
  const TcbLevel& top = t.tcb_levels[0];
  EXPECT_EQ(top.sgx_svns(),
            (std::array<std::uint8_t, 16>{3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(top.sgx_components[7].type, "SEAMLDR ACM");
  EXPECT_EQ(top.sgx_components[6].category, "");
  EXPECT_EQ(top.pcesvn, 13);
  EXPECT_EQ(top.tdx_svns()[2], 3);
  EXPECT_EQ(top.tdx_components[0].type, "TDX Module");
  EXPECT_EQ(format_rfc3339(top.tcb_date), "2024-11-13T00:00:00Z");
  EXPECT_EQ(t.tcb_levels[2].advisory_ids.size(), 19u);
}

// Mutates one value of a real TCB Info body and returns the parse error.
std::string tcb_info_error(const std::string& from, const std::string& to) {
  std::string body = text_of(tdx_vector("gtg/tcbinfo_50806f000000.json"));
  body = body.substr(11, body.find(",\"signature\"") - 11);
  auto at = body.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  body.replace(at, from.size(), to);
  auto t = parse_tcb_info(body);
  return t ? "parsed" : t.error().message();
}

TEST(TdxCollateral, OutOfRangeAndMalformedValuesAreRejected) {
  CLOISTER_REQUIRE_TDX_FACTS();
  EXPECT_EQ(
      tcb_info_error("\"sgxtcbcomponents\":[{\"svn\":5", "\"sgxtcbcomponents\":[{\"svn\":256"),
      "TCB Info: tcbLevels[0].tcb.sgxtcbcomponents[0].svn: expected 0..255, found 256");
  EXPECT_EQ(
      tcb_info_error("\"tdxtcbcomponents\":[{\"svn\":3", "\"tdxtcbcomponents\":[{\"svn\":999"),
      "TCB Info: tcbLevels[0].tcb.tdxtcbcomponents[0].svn: expected 0..255, found 999");
  EXPECT_EQ(tcb_info_error("\"pcesvn\":11", "\"pcesvn\":65536"),
            "TCB Info: tcbLevels[0].tcb.pcesvn: expected 0..65535, found 65536");
  EXPECT_EQ(tcb_info_error("\"svn\":5,", "\"svn\":-1,"),
            "TCB Info: tcbLevels[0].tcb.sgxtcbcomponents[0].svn: expected a non-negative integer");
  EXPECT_EQ(tcb_info_error("\"tcbStatus\":\"UpToDate\"", "\"tcbStatus\":\"Fine\""),
            "TCB Info: tcbLevels[0].tcbStatus: expected one of UpToDate, SWHardeningNeeded, "
            "ConfigurationNeeded, ConfigurationAndSWHardeningNeeded, OutOfDate, "
            "OutOfDateConfigurationNeeded, Revoked, found 'Fine'");
  EXPECT_EQ(tcb_info_error("\"fmspc\":\"50806f000000\"", "\"fmspc\":\"50806f\""),
            "TCB Info: fmspc: expected 6 bytes (12 hex digits), found 3 bytes");
  EXPECT_EQ(tcb_info_error("\"version\":3", "\"version\":2"),
            "TCB Info: expected id \"TDX\" version 3 (TDX TCB Info), found id \"TDX\" version 2");
  EXPECT_EQ(tcb_info_error("{\"svn\":0},{\"svn\":0}]", "{\"svn\":0}]"),
            "TCB Info: tcbLevels[0].tcb.sgxtcbcomponents: expected 16 components, found 15");
  EXPECT_EQ(tcb_info_error("\"tcbDate\":\"2023-02-15T00:00:00Z\"", "\"tcbDate\":\"yesterday\""),
            "TCB Info: tcbLevels[0].tcbDate: invalid RFC 3339 time 'yesterday': date must be "
            "YYYY-MM-DD (expected e.g. 2025-11-21T00:00:00Z)");
  // The same key twice: two parsers could disagree on which value the signature covers.
  EXPECT_EQ(tcb_info_error("\"pceId\":\"0000\"", "\"pceId\":\"0000\",\"pceId\":\"0001\""),
            "TCB Info: duplicate key \"pceId\" at /pceId");
  EXPECT_EQ(parse_tcb_info_response("{\"tcbInfo\":{},\"signature\":\"00\",\"extra\":1}")
                .error()
                .message(),
            "TCB Info response: signature: expected 64 bytes (128 hex digits), found 1 bytes");
}

TEST(TdxCollateral, QeIdentityStatusesAreTheOnesQvlAccepts) {
  CLOISTER_REQUIRE_TDX_FACTS();
  std::string body = text_of(tdx_vector("gtg/qeidentity_td_qe.json"));
  body = body.substr(19, body.find(",\"signature\"") - 19);
  ASSERT_TRUE(parse_qe_identity(body)) << parse_qe_identity(body).error().message();
  std::string swh = body;
  swh.replace(swh.find("\"UpToDate\""), 10, "\"SWHardeningNeeded\"");
  EXPECT_EQ(parse_qe_identity(swh).error().message(),
            "QE Identity: tcbLevels[0].tcbStatus: expected one of UpToDate, ConfigurationNeeded, "
            "OutOfDate, OutOfDateConfigurationNeeded, Revoked, found 'SWHardeningNeeded'");
  std::string big = body;
  big.replace(big.find("\"isvsvn\":4"), 10, "\"isvsvn\":65536");
  EXPECT_EQ(parse_qe_identity(big).error().message(),
            "QE Identity: tcbLevels[0].tcb.isvsvn: expected 0..65535, found 65536");
  std::string sgx = body;
  sgx.replace(sgx.find("\"TD_QE\""), 7, "\"QE\"");
  EXPECT_EQ(parse_qe_identity(sgx).error().message(),
            "QE Identity: expected id \"TD_QE\" version 2 (the TDX Quoting Enclave), found id "
            "\"QE\" version 2");
}

TEST(TdxCollateral, InputsAreRecognisedByContent) {
  CLOISTER_REQUIRE_TDX_FACTS();
  TdxCollateral c;
  ASSERT_TRUE(add_collateral(tdx_vector("gtg/tcbinfo_50806f000000.json"), "t", c));
  ASSERT_TRUE(add_collateral(tdx_vector("gtg/qeidentity_td_qe.json"), "q", c));
  ASSERT_TRUE(add_collateral(tdx_vector("gtg/pckcrl_platform.der"), "p", c));
  ASSERT_TRUE(add_collateral(tdx_vector("gtg/tcb_signing_issuer_chain.pem"), "s", c));
  EXPECT_EQ(c.tcb_infos.size(), 1u);
  EXPECT_EQ(c.qe_identities.size(), 1u);
  EXPECT_EQ(c.crls.size(), 1u);
  EXPECT_EQ(c.certificates.size(), 2u);
  EXPECT_EQ(add_collateral(as_bytes("{\"a\":1}"), "x.json", c).error().message(),
            "x.json: JSON collateral must be an Intel PCS TCB Info response (\"tcbInfo\"), a QE "
            "Identity response (\"enclaveIdentity\") or a collateral bundle (\"tcb_info\", "
            "\"qe_identity\", \"pck_crl\", \"root_ca_crl\", …)");
  EXPECT_EQ(add_collateral(as_bytes("{\"pck_crl\":\"00\",\"tcb_infos\":1}"), "b.json", c)
                .error()
                .message(),
            "b.json: collateral bundle: unknown key 'tcb_infos' (expected tcb_info, "
            "tcb_info_signature, tcb_info_issuer_chain, qe_identity, qe_identity_signature, "
            "qe_identity_issuer_chain, pck_crl, pck_crl_issuer_chain, root_ca_crl, "
            "pck_certificate_chain)");
  EXPECT_EQ(add_collateral(as_bytes("{\"pck_crl\":\"zz\"}"), "b.json", c).error().message(),
            "b.json: collateral bundle: pck_crl: hex string has a non-hex character 'z' at "
            "position 0");
  EXPECT_EQ(add_collateral(as_bytes("garbage"), "g.bin", c).error().message(),
            "g.bin: not TDX collateral (expected TCB Info or QE Identity JSON, a collateral "
            "bundle, PEM certificates, or a CRL in DER or PEM)");
  // Inputs beyond kCollateralFileLimit are refused before they are parsed.
  const Bytes huge(kCollateralFileLimit.max_bytes + 1, ' ');
  EXPECT_EQ(add_collateral(huge, "huge.json", c).error().message(),
            "huge.json: 4194305 bytes, larger than the 4 MiB TDX collateral can be (a TCB Info is "
            "about 10 KiB, a whole collateral bundle about 30 KiB; 4 MiB is what cloister "
            "fetches)");
}

// Every single-bit flip in the signed tcbInfo / enclaveIdentity bytes is rejected: the JSON no
// longer parses into valid collateral, or its signature no longer verifies.
TEST(TdxCollateral, EverySignedBitFlipIsRejected) {
  CLOISTER_REQUIRE_TDX_FACTS();
  TdxCollateral chain;
  ASSERT_TRUE(add_collateral(tdx_vector("gtg/tcb_signing_issuer_chain.pem"), "chain", chain));
  const PublicKey key = signing_cert(chain).public_key();
  for (const char* file : {"gtg/tcbinfo_50806f000000.json", "gtg/qeidentity_td_qe.json"}) {
    SCOPED_TRACE(file);
    const std::string response = text_of(tdx_vector(file));
    const bool tcb = std::string(file).find("tcbinfo") != std::string::npos;
    const std::size_t begin = response.find(':') + 1;
    const std::size_t end = response.find(",\"signature\"");
    int parse_rejected = 0, signature_rejected = 0;
    for (std::size_t i = begin; i < end; ++i) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string flipped = response;
        flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
        std::optional<std::pair<std::string, std::array<std::uint8_t, 64>>> signed_item;
        if (tcb) {
          if (auto r = parse_tcb_info_response(flipped)) signed_item = {{r->body, r->signature}};
        } else if (auto r = parse_qe_identity_response(flipped)) {
          signed_item = {{r->body, r->signature}};
        }
        if (!signed_item) {
          ++parse_rejected;
          continue;
        }
        ASSERT_FALSE(verify_p256_signature(key, as_bytes(signed_item->first), signed_item->second))
            << "byte " << i << " bit " << bit << " still verifies";
        ++signature_rejected;
      }
    }
    EXPECT_EQ(parse_rejected + signature_rejected, static_cast<int>(8 * (end - begin)));
    // Flips inside strings and numbers keep the JSON valid and reach the signature check.
    EXPECT_GT(signature_rejected, 0);
  }
}

}  // namespace
}  // namespace cloister::attestation::tdx
