#include "cloister/attestation/tdx/tcb.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <set>

namespace cloister::attestation::tdx {
namespace {

// QVL TcbLevel::operator> for TDX TCB Info v3: SGX components, then PCESVN, then TDX components.
bool level_greater(const TcbLevel& a, const TcbLevel& b) {
  const auto as = a.sgx_svns(), bs = b.sgx_svns();
  if (as != bs) return as > bs;
  if (a.pcesvn != b.pcesvn) return a.pcesvn > b.pcesvn;
  return a.tdx_svns() > b.tdx_svns();
}

std::string component_name(const char* kind, std::size_t i) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s COMP%02zu", kind, i + 1);
  return buf;
}

// "SGX COMP01 3 < 5, PCESVN 5 < 11"; empty when `have` meets `level`.
std::string sgx_shortfall(const PckExtensions& pck, const TcbLevel& level) {
  std::string out;
  const auto want = level.sgx_svns();
  for (std::size_t i = 0; i < 16; ++i) {
    if (pck.tcb_components[i] < want[i]) {
      out += (out.empty() ? "" : ", ") + component_name("SGX", i) + " " +
             std::to_string(pck.tcb_components[i]) + " < " + std::to_string(want[i]);
    }
  }
  if (pck.pcesvn < level.pcesvn) {
    out += (out.empty() ? "" : ", ") + std::string("PCESVN ") + std::to_string(pck.pcesvn) + " < " +
           std::to_string(level.pcesvn);
  }
  return out;
}

std::size_t first_tdx_component(const std::array<std::uint8_t, 16>& tee_tcb_svn) {
  return tee_tcb_svn[1] > 0 ? 2 : 0;
}

bool tdx_meets(const std::array<std::uint8_t, 16>& tee_tcb_svn, const TcbLevel& level) {
  const auto want = level.tdx_svns();
  for (std::size_t i = first_tdx_component(tee_tcb_svn); i < 16; ++i)
    if (tee_tcb_svn[i] < want[i]) return false;
  return true;
}

std::string tdx_shortfall(const std::array<std::uint8_t, 16>& tee_tcb_svn, const TcbLevel& level) {
  std::string out;
  const auto want = level.tdx_svns();
  for (std::size_t i = first_tdx_component(tee_tcb_svn); i < 16; ++i) {
    if (tee_tcb_svn[i] < want[i]) {
      out += (out.empty() ? "" : ", ") + component_name("TDX", i) + " " +
             std::to_string(tee_tcb_svn[i]) + " < " + std::to_string(want[i]);
    }
  }
  return out;
}

bool is_configuration_needed(TcbStatus s) {
  return s == TcbStatus::kConfigurationNeeded || s == TcbStatus::kOutOfDateConfigurationNeeded ||
         s == TcbStatus::kConfigurationAndSwHardeningNeeded ||
         s == TcbStatus::kTdRelaunchAdvisedConfigurationNeeded;
}

// QVL convergeTcbStatusWithTdxModuleStatus / convergeTcbStatusWithQeTcbStatus: an OutOfDate
// module or QE demotes the level's status, a Revoked one revokes it.
TcbStatus demote(TcbStatus level, TcbStatus other) {
  if (other == TcbStatus::kOutOfDate) {
    if (level == TcbStatus::kUpToDate || level == TcbStatus::kSwHardeningNeeded)
      return TcbStatus::kOutOfDate;
    if (level == TcbStatus::kConfigurationNeeded ||
        level == TcbStatus::kConfigurationAndSwHardeningNeeded)
      return TcbStatus::kOutOfDateConfigurationNeeded;
  }
  if (other == TcbStatus::kRevoked) return TcbStatus::kRevoked;
  return level;
}

// QVL TDRelaunchCheck.cpp checkForRelaunch.
TcbStatus check_relaunch(const std::array<std::uint8_t, 16>& svn2, const TcbInfo& info,
                         const TcbLevel& newest, TcbStatus sgx_status, TcbStatus tdx_status,
                         TcbStatus module_status, std::optional<TcbStatus> qe_status,
                         std::vector<std::string>& notes) {
  if (qe_status && (*qe_status == TcbStatus::kOutOfDate || *qe_status == TcbStatus::kRevoked ||
                    *qe_status == TcbStatus::kNotSupported))
    return tdx_status;
  if (sgx_status != TcbStatus::kUpToDate && sgx_status != TcbStatus::kSwHardeningNeeded &&
      sgx_status != TcbStatus::kConfigurationNeeded &&
      sgx_status != TcbStatus::kConfigurationAndSwHardeningNeeded)
    return tdx_status;
  if (tdx_status != TcbStatus::kOutOfDate && tdx_status != TcbStatus::kOutOfDateConfigurationNeeded)
    return tdx_status;
  if (module_status != TcbStatus::kOutOfDate) return tdx_status;
  const auto newest_tdx = newest.tdx_svns();
  bool reaches = false;
  if (svn2[1] == 0) {
    reaches = svn2[0] >= newest_tdx[0] && svn2[2] >= newest_tdx[2];
  } else {
    const TdxModuleIdentity* identity = find_tdx_module_identity(info, svn2[1]);
    if (identity == nullptr) {
      notes.push_back("TEE_TCB_SVN2 names TDX module version " + std::to_string(svn2[1]) +
                      ", for which the TCB Info has no identity");
      return TcbStatus::kTdxModuleMismatch;
    }
    if (identity->tcb_levels.empty()) return TcbStatus::kNotSupported;
    std::uint8_t newest_isvsvn = 0;
    for (const auto& l : identity->tcb_levels) newest_isvsvn = std::max(newest_isvsvn, l.isvsvn);
    reaches = svn2[0] >= newest_isvsvn && svn2[2] >= newest_tdx[2];
  }
  if (!reaches) return tdx_status;
  notes.push_back("TEE_TCB_SVN2 reaches the newest TCB level: relaunching the TD updates it");
  return is_configuration_needed(sgx_status) || is_configuration_needed(tdx_status)
             ? TcbStatus::kTdRelaunchAdvisedConfigurationNeeded
             : TcbStatus::kTdRelaunchAdvised;
}

void add_advisories(std::set<std::string>& out, const std::vector<std::string>& ids) {
  out.insert(ids.begin(), ids.end());
}

}  // namespace

const TdxModuleIdentity* find_tdx_module_identity(const TcbInfo& tcb_info, std::uint8_t version) {
  char want[8];
  std::snprintf(want, sizeof want, "TDX_%02X", version);
  for (const auto& identity : tcb_info.tdx_module_identities) {
    std::string id = identity.id;
    for (char& c : id) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (id == want) return &identity;
  }
  return nullptr;
}

TcbEvaluation evaluate_tdx_tcb(const TcbInfo& info, const QeIdentity* qe_identity,
                               const PckExtensions& pck, const TdxQuote& quote) {
  TcbEvaluation e;
  const auto& svn = quote.td_report.tee_tcb_svn;
  std::set<std::string> advisories;

  // Step 4 runs first in QVL (EnclaveReportVerifier), so the relaunch check can see it.
  if (qe_identity != nullptr) {
    // The highest level the QE's ISVSVN meets, whatever order the JSON lists them in (QVL sorts
    // them by isvsvn, descending, and takes the first met).
    const std::uint16_t isvsvn = quote.qe_report.isv_svn;
    const auto& levels = qe_identity->tcb_levels;
    for (std::size_t i = 0; i < levels.size(); ++i) {
      if (levels[i].isvsvn <= isvsvn &&
          (!e.qe_level || levels[i].isvsvn > levels[*e.qe_level].isvsvn)) {
        e.qe_level = i;
      }
    }
    if (!e.qe_level) {
      e.qe_status = TcbStatus::kNotSupported;
      e.notes.push_back("QE ISVSVN " + std::to_string(isvsvn) +
                        " is below every TD_QE identity level");
    } else {
      const QeTcbLevel& level = qe_identity->tcb_levels[*e.qe_level];
      e.qe_status = level.status == TcbStatus::kUpToDate  ? TcbStatus::kUpToDate
                    : level.status == TcbStatus::kRevoked ? TcbStatus::kRevoked
                                                          : TcbStatus::kOutOfDate;
    }
  }

  // Step 1.
  std::vector<std::size_t> order(info.tcb_levels.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return level_greater(info.tcb_levels[a], info.tcb_levels[b]);
  });
  for (std::size_t i : order) {
    const TcbLevel& level = info.tcb_levels[i];
    if (!sgx_shortfall(pck, level).empty()) continue;
    if (!e.sgx_level) e.sgx_level = i;
    if (tdx_meets(svn, level)) {
      e.tdx_level = i;
      break;
    }
  }
  if (!e.sgx_level) {
    e.status = TcbStatus::kNotSupported;
    if (!order.empty()) {
      const TcbLevel& lowest = info.tcb_levels[order.back()];
      e.notes.push_back("the PCK certificate's TCB is below every TCB level; against the lowest (" +
                        format_rfc3339(lowest.tcb_date) + ", " +
                        std::string(to_string(lowest.status)) + "): " + sgx_shortfall(pck, lowest));
    }
    return e;
  }
  e.sgx_status = info.tcb_levels[*e.sgx_level].status;
  if (!e.tdx_level) {
    e.status = TcbStatus::kNotSupported;
    const TcbLevel& lowest = info.tcb_levels[order.back()];
    e.notes.push_back(
        "TEE_TCB_SVN is below the TDX components of every level the SGX TCB meets; "
        "against the lowest (" +
        format_rfc3339(lowest.tcb_date) + "): " + tdx_shortfall(svn, lowest));
    return e;
  }
  const TcbLevel& tdx_level = info.tcb_levels[*e.tdx_level];
  e.tdx_level_status = tdx_level.status;
  e.tcb_date = tdx_level.tcb_date;
  add_advisories(advisories, tdx_level.advisory_ids);

  // Step 2.
  TcbStatus module_status = TcbStatus::kUpToDate;
  if (svn[1] > 0) {
    const TdxModuleIdentity* identity = find_tdx_module_identity(info, svn[1]);
    char id[8];
    std::snprintf(id, sizeof id, "TDX_%02X", svn[1]);
    e.module_identity = id;
    if (identity == nullptr) {
      e.module_status = TcbStatus::kTdxModuleMismatch;
      e.status = TcbStatus::kTdxModuleMismatch;
      e.notes.push_back("TEE_TCB_SVN[1] = " + std::to_string(svn[1]) +
                        " names TDX module identity " + id + ", which the TCB Info lacks");
      return e;
    }
    std::vector<std::size_t> module_order(identity->tcb_levels.size());
    for (std::size_t i = 0; i < module_order.size(); ++i) module_order[i] = i;
    std::stable_sort(module_order.begin(), module_order.end(), [&](std::size_t a, std::size_t b) {
      return identity->tcb_levels[a].isvsvn > identity->tcb_levels[b].isvsvn;
    });
    for (std::size_t i : module_order) {
      if (identity->tcb_levels[i].isvsvn <= svn[0]) {
        e.module_level = i;
        break;
      }
    }
    if (!e.module_level) {
      e.module_status = TcbStatus::kNotSupported;
      e.status = TcbStatus::kNotSupported;
      e.notes.push_back("TDX module ISVSVN (TEE_TCB_SVN[0]) " + std::to_string(svn[0]) +
                        " is below every level of " + id);
      return e;
    }
    const ModuleTcbLevel& level = identity->tcb_levels[*e.module_level];
    module_status = level.status;
    e.module_status = module_status;
    add_advisories(advisories, level.advisory_ids);
  }
  TcbStatus tdx_status = demote(tdx_level.status, module_status);
  e.tdx_status = tdx_status;
  if (tdx_status == TcbStatus::kRevoked) {
    e.status = tdx_status;
    e.advisory_ids.assign(advisories.begin(), advisories.end());
    return e;
  }

  // Step 3.
  if (quote.td_report.tee_tcb_svn2) {
    e.relaunch_checked = true;
    tdx_status = check_relaunch(*quote.td_report.tee_tcb_svn2, info, info.tcb_levels[order.front()],
                                *e.sgx_status, tdx_status, module_status, e.qe_status, e.notes);
    e.relaunch_status = tdx_status;
  }

  // Step 4 convergence.
  if (e.qe_status) {
    if (e.qe_level) add_advisories(advisories, qe_identity->tcb_levels[*e.qe_level].advisory_ids);
    if (*e.qe_status == TcbStatus::kNotSupported) {
      tdx_status = TcbStatus::kNotSupported;
    } else {
      tdx_status = demote(tdx_status, *e.qe_status);
    }
  }
  e.status = tdx_status;
  e.advisory_ids.assign(advisories.begin(), advisories.end());
  return e;
}

}  // namespace cloister::attestation::tdx
