// Verification of Intel TDX evidence: the quote's format and signatures, the QE report and its
// binding to the attestation key, the PCK chain to Intel's pinned root, revocation, the
// collateral (TCB Info, QE Identity, their signing chain, CRLs) at the verification time, the
// TCB status as Intel's QVL derives it, and an optional event log replayed into RTMR0-3.
// Appraisal against a policy (MRTD, RTMRs, attributes, accepted TCB statuses, …) is
// policies/'s job; it runs on the TdxVerification this produces.
//
// Checks appended, in order (each names what it expected and found):
//   tdx.quote.format, tdx.quote.qe_vendor,
//   tdx.pck.chain.root, tdx.pck.chain, tdx.pck.extensions, tdx.pck.chain.validity,
//   tdx.qe_report.signature, tdx.qe_report.binding, tdx.signature,
//   tdx.crl.root, tdx.crl.pck, tdx.revocation,
//   tdx.collateral.pck_chain (when the collateral carries a PCK chain),
//   tdx.collateral.signing_cert, tdx.collateral.tcb_info, tdx.collateral.qe_identity,
//   tdx.tcb_info.match, tdx.module.identity, tdx.qe_identity.match, tdx.tcb.status,
//   and with an event log (the binary CCEL, or dstack's JSON log, told apart by content):
//   tdx.eventlog.format, tdx.eventlog.digests, tdx.eventlog.rtmr0..3.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cloister/attestation/tdx/collateral.h"
#include "cloister/attestation/tdx/dstack_event_log.h"
#include "cloister/attestation/tdx/event_log.h"
#include "cloister/attestation/tdx/pck.h"
#include "cloister/attestation/tdx/pcs.h"
#include "cloister/attestation/tdx/quote.h"
#include "cloister/attestation/tdx/tcb.h"
#include "cloister/attestation/verdict.h"

namespace cloister::attestation::tdx {

struct TdxEvidence {
  Bytes quote;               // the quote; bytes after its signature data are ignored
  TdxCollateral collateral;  // supplied collateral (may be empty)
  // The CCEL log area, or dstack's JSON event log, when the tenant has it.
  std::optional<Bytes> event_log;
};

struct TdxVerifyOptions {
  UnixTime time = 0;  // verification time: certificates, CRLs, TCB Info and QE Identity
  // Collateral and CRLs past their nextUpdate pass (with a note) instead of failing.
  bool allow_stale_collateral = false;
};

struct TdxVerification {
  UnixTime time = 0;              // the verification time it was checked at
  std::optional<TdxQuote> quote;  // absent when the bytes are not a quote at all
  std::optional<PckChain> pck_chain;
  std::optional<PckExtensions> pck_extensions;
  std::optional<Sourced<SignedTcbInfo>> tcb_info;        // the TCB Info used (FMSPC match)
  std::optional<Sourced<SignedQeIdentity>> qe_identity;  // the QE Identity used
  std::optional<TcbEvaluation> tcb;
  std::optional<std::string> tcb_info_url;  // where PCS serves this platform's TCB Info
  std::optional<CcEventLog> event_log;
  std::optional<DstackEventLog> dstack_event_log;
  std::optional<RtmrReplay> replay;  // of whichever log was given
  Checks checks;
};

struct TdxVerifierConfig {
  // Supplies collateral the evidence lacks (cache, then PCS when online).
  std::shared_ptr<PcsClient> pcs;
  // The roots a PCK chain and the collateral signing chain may end in; each quote is checked
  // against the one its PCK chain presents (else the first). Empty: the Intel SGX Root CA key
  // pinned in this library. Anything else (a test hierarchy, a simulated secure processor's
  // root) must be configured explicitly; list intel_sgx_root_key() too to keep trusting Intel.
  std::vector<PublicKey> trusted_roots;
};

// Thread-safe. What does not depend on the quote's own bytes or the time is cached, keyed by
// content: a PCK chain's parse, signatures and extensions; a collateral item's signature; a
// CRL's signature. Verifying many quotes from one platform then costs the two ECDSA
// verifications each quote carries (quote and QE report).
class TdxVerifier {
 public:
  explicit TdxVerifier(TdxVerifierConfig config = {});

  TdxVerification verify(const TdxEvidence& evidence, const TdxVerifyOptions& options) const;

 private:
  struct ChainResult {
    std::optional<PckChain> chain;
    std::string error;  // why no chain
    std::vector<Check> checks;
    std::optional<PckExtensions> extensions;
    std::optional<PublicKey> leaf_key;
  };
  std::shared_ptr<const ChainResult> chain_result(const TdxQuote& quote) const;
  // Memoised signature checks, keyed by content and by the signer's identity (`key_id`: a
  // certificate fingerprint), never by re-encoding the key.
  bool signature_ok(const PublicKey& key, const std::string& key_id, ByteView message,
                    ByteView raw_signature) const;
  bool crl_signature_ok(const Crl& crl, const PublicKey& key, const std::string& key_id) const;
  // Memoised check that `cert` is signed by `root`.
  bool signed_by_root(const Certificate& cert, const PublicKey& root) const;

  // The trusted root with the key `presented` carries, else the first configured root, else
  // Intel's (built on first use: SNP-only callers never pay for it).
  const PublicKey& trusted_root(const Certificate* presented) const;

  std::shared_ptr<PcsClient> pcs_;
  std::vector<PublicKey> configured_roots_;
  mutable std::mutex mutex_;  // guards the caches; never held across a PCS fetch
  mutable std::map<std::string, std::shared_ptr<const ChainResult>> chains_;
  mutable std::map<std::string, bool> signatures_;
};

}  // namespace cloister::attestation::tdx
