// The TDX TCB status of a platform, derived exactly as Intel's Quote Verification Library
// derives it (intel/SGX-TDX-DCAP-QuoteVerificationLibrary, Verifiers/Checks/TcbLevelCheck.cpp,
// TdxModuleCheck.cpp, TDRelaunchCheck.cpp, EnclaveReportVerifier.cpp; research/tdx.md §b
// steps 5-8), keeping every intermediate result:
//
//  1. TCB levels sorted descending by (SGX components, PCESVN, TDX components) — QVL's
//     TcbLevel::operator> — not JSON order. The SGX level is the first whose 16 SGX component
//     SVNs and PCESVN are <= the PCK certificate's; the TDX level the first such level whose TDX
//     components are <= TEE_TCB_SVN (components 0 and 1 skipped when TEE_TCB_SVN[1] > 0).
//  2. TDX module (TEE_TCB_SVN[1] > 0): identity "TDX_%02X" of TEE_TCB_SVN[1], its levels sorted
//     by descending ISVSVN, the first with isvsvn <= TEE_TCB_SVN[0]. Module OutOfDate demotes
//     UpToDate/SWHardeningNeeded to OutOfDate and the configuration statuses to
//     OutOfDateConfigurationNeeded; module Revoked gives Revoked.
//  3. TD relaunch (TD report 1.5): advised when the QE is current, the SGX status is not out of
//     date, the TDX status is out of date only because of the module, and TEE_TCB_SVN2 already
//     reaches the newest level.
//  4. QE: the TD_QE identity level with the highest isvsvn <= the QE report's ISVSVN (QVL sorts
//     the levels by descending isvsvn; JSON order does not matter); OutOfDate and configuration
//     statuses count as OutOfDate and demote as in step 2, Revoked gives Revoked, no level gives
//     NotSupported.
//
// go-tdx-guest differs (research/tdx.md §b): it matches levels in JSON order and returns the
// module level's status in place of the platform's.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cloister/attestation/tdx/collateral.h"
#include "cloister/attestation/tdx/pck.h"
#include "cloister/attestation/tdx/quote.h"

namespace cloister::attestation::tdx {

struct TcbEvaluation {
  // Step 1. Indexes into TcbInfo::tcb_levels (JSON order).
  std::optional<std::size_t> sgx_level;
  std::optional<TcbStatus> sgx_status;
  std::optional<std::size_t> tdx_level;
  std::optional<TcbStatus> tdx_level_status;
  // Step 2 (absent when TEE_TCB_SVN[1] == 0: no module identity applies).
  std::optional<std::string> module_identity;  // "TDX_01"
  std::optional<std::size_t> module_level;     // index into that identity's tcb_levels
  std::optional<TcbStatus> module_status;      // UpToDate, OutOfDate, Revoked, NotSupported, …
  std::optional<TcbStatus> tdx_status;         // the TDX level's status after the module's
  // Step 3 (TD report 1.5 only).
  bool relaunch_checked = false;
  std::optional<TcbStatus> relaunch_status;  // what step 3 returned
  // Step 4 (absent without a QE Identity).
  std::optional<std::size_t> qe_level;
  std::optional<TcbStatus> qe_status;  // UpToDate, OutOfDate, Revoked or NotSupported

  // The converged status.
  TcbStatus status = TcbStatus::kNotSupported;
  // The TCB date of the TDX level (the platform's TCB recovery date).
  std::optional<UnixTime> tcb_date;
  // Advisory IDs of the TDX level, the module level and the QE level, deduplicated, sorted.
  std::vector<std::string> advisory_ids;
  // Why the result is what it is, in words ("SGX TCB COMP08 SVN 3 < 5 in every level", …).
  std::vector<std::string> notes;
};

// Runs steps 1-4 for a TDX quote. `qe_identity` may be absent (steps 3 and 4 then treat the QE
// as QVL does without one).
TcbEvaluation evaluate_tdx_tcb(const TcbInfo& tcb_info, const QeIdentity* qe_identity,
                               const PckExtensions& pck, const TdxQuote& quote);

// The identity "TDX_%02X" for a module major version, found case-insensitively, or nullptr.
const TdxModuleIdentity* find_tdx_module_identity(const TcbInfo& tcb_info, std::uint8_t version);

}  // namespace cloister::attestation::tdx
