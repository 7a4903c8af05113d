#include "cloister/policy/tdx.h"

#include <algorithm>
#include <cstdio>

#include "cloister/common/hex.h"

namespace cloister::policy {
namespace {

using attestation::Checks;
using attestation::tdx::TdReport;
namespace td_bit = attestation::tdx::td_attribute_bit;

std::string list_string(const std::vector<Bytes>& list) {
  std::string out = "one of [";
  for (std::size_t i = 0; i < list.size(); ++i) out += (i ? ", " : "") + to_hex(list[i]);
  return out + "]";
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

template <std::size_t N>
void allowlist(Checks& out, const std::string& name, const std::vector<Bytes>& list,
               const std::array<std::uint8_t, N>& value, const char* field) {
  if (list.empty()) return;
  const bool listed = std::any_of(list.begin(), list.end(), [&](const Bytes& b) {
    return std::equal(value.begin(), value.end(), b.begin(), b.end());
  });
  if (listed) {
    out.pass(name, list_string(list), to_hex(value));
  } else {
    out.fail(name, list_string(list), to_hex(value),
             std::string(field) + " is not in the policy's allowlist");
  }
}

bool bit(std::uint64_t v, unsigned n) {
  return (v >> n) & 1;
}

// The names of the TUD bits set in `attributes`.
std::vector<std::string> tud_bits(std::uint64_t attributes) {
  std::vector<std::string> out;
  for (unsigned b = 0; b < 8; ++b) {
    if (!bit(attributes, b)) continue;
    out.push_back(b == td_bit::kDebug         ? std::string("DEBUG")
                  : b == td_bit::kHgsPlusProf ? std::string("HGS_PLUS_PROF")
                  : b == td_bit::kPerfProf    ? std::string("PERF_PROF")
                  : b == td_bit::kPmtProf     ? std::string("PMT_PROF")
                                              : "TUD bit " + std::to_string(b));
  }
  return out;
}

void td_attributes(Checks& out, const TdAttributeRules& rules, std::uint64_t attributes) {
  const std::string found = hex_number(attributes);
  const std::string no_tud = "no TUD bit (0-7: DEBUG, profiling) set";
  if ((attributes & td_bit::kTudMask) != 0 && !rules.allow_debug) {
    out.fail("policy.tdx.debug", no_tud, found,
             "the TD is under debug (" + join(tud_bits(attributes)) +
                 "): the host can read or observe its state");
  } else {
    out.pass("policy.tdx.debug", rules.allow_debug ? "TUD bits allowed" : no_tud, found);
  }
  std::vector<std::string> expected, violations;
  auto allow = [&](bool allowed, unsigned b, const char* name) {
    if (allowed) return;
    expected.push_back(std::string(name) + " off");
    if (bit(attributes, b)) violations.push_back(std::string(name) + " is set");
  };
  if (rules.require_sept_ve_disable) {
    expected.push_back("SEPT_VE_DISABLE on");
    if (!bit(attributes, td_bit::kSeptVeDisable))
      violations.push_back(
          "SEPT_VE_DISABLE is not set (the host can inject #VE on EPT violations)");
  }
  allow(rules.allow_pks, td_bit::kPks, "PKS");
  allow(rules.allow_kl, td_bit::kKl, "KL");
  allow(rules.allow_perfmon, td_bit::kPerfmon, "PERFMON");
  allow(rules.allow_migratable, td_bit::kMigratable, "MIGRATABLE");
  if (rules.mask) {
    expected.push_back("(TD_ATTRIBUTES & " + hex_number(*rules.mask) +
                       ") == " + hex_number(rules.value));
    if ((attributes & *rules.mask) != rules.value)
      violations.push_back("masked TD_ATTRIBUTES are " + hex_number(attributes & *rules.mask));
  }
  if (expected.empty()) return;
  if (violations.empty()) {
    out.pass("policy.tdx.td_attributes", join(expected), found);
  } else {
    out.fail("policy.tdx.td_attributes", join(expected), found, join(violations));
  }
}

// "policy.tdx.runtime_event.<name>": dstack runtime events, from a log whose replay reproduced
// the quote's RTMR3 (so the quote's signature covers them).
void runtime_events(Checks& out, const std::map<std::string, std::vector<Bytes>>& rules,
                    const attestation::tdx::TdxVerification& v) {
  if (rules.empty()) return;
  const auto* rtmr3 = v.checks.find("tdx.eventlog.rtmr3");
  const bool verified =
      v.dstack_event_log && rtmr3 != nullptr && rtmr3->status == attestation::CheckStatus::kPass;
  for (const auto& [name, allowed] : rules) {
    const std::string check = "policy.tdx.runtime_event." + name;
    const std::string expected = name + " " + list_string(allowed);
    if (!verified) {
      out.fail(check, expected, "unknown",
               v.dstack_event_log ? "the dstack event log does not replay to the quote's RTMR3"
                                  : "no dstack event log was given (--event-log)");
      continue;
    }
    std::vector<std::string> found, rejected;
    for (const auto& e : v.dstack_event_log->events) {
      if (!e.runtime() || e.name != name) continue;
      found.push_back(to_hex(e.payload));
      if (std::find(allowed.begin(), allowed.end(), e.payload) == allowed.end())
        rejected.push_back(to_hex(e.payload));
    }
    if (found.empty()) {
      out.fail(check, expected, "absent", "the event log has no runtime event named " + name);
    } else if (rejected.empty()) {
      out.pass(check, expected, join(found));
    } else {
      out.fail(check, expected, join(found),
               "payload not in the policy's allowlist: " + join(rejected));
    }
  }
}

}  // namespace

void apply_tdx_policy_options(const TdxPolicy& policy,
                              attestation::tdx::TdxVerifyOptions& options) {
  options.allow_stale_collateral = policy.allow_stale_collateral;
}

void evaluate_tdx_policy(const TdxPolicy& p, const attestation::tdx::TdxVerification& v,
                         Checks& out) {
  if (!v.quote) return;
  const TdReport& r = v.quote->td_report;

  allowlist(out, "policy.tdx.mr_td", p.mr_td, r.mr_td, "MRTD");
  for (std::size_t i = 0; i < 4; ++i) {
    const std::string n = std::to_string(i);
    allowlist(out, "policy.tdx.rtmr" + n, p.rtmr[i], r.rtmr[i], ("RTMR" + n).c_str());
  }
  allowlist(out, "policy.tdx.mr_config_id", p.mr_config_id, r.mr_config_id, "MRCONFIGID");
  allowlist(out, "policy.tdx.mr_owner", p.mr_owner, r.mr_owner, "MROWNER");
  allowlist(out, "policy.tdx.mr_owner_config", p.mr_owner_config, r.mr_owner_config,
            "MROWNERCONFIG");
  allowlist(out, "policy.tdx.mr_seam", p.mr_seam, r.mr_seam, "MRSEAM");
  allowlist(out, "policy.tdx.mr_signer_seam", p.mr_signer_seam, r.mr_signer_seam, "MRSIGNERSEAM");
  if (p.report_data) {
    if (std::equal(r.report_data.begin(), r.report_data.end(), p.report_data->begin(),
                   p.report_data->end())) {
      out.pass("policy.tdx.report_data", to_hex(*p.report_data), to_hex(r.report_data));
    } else {
      out.fail("policy.tdx.report_data", to_hex(*p.report_data), to_hex(r.report_data),
               "REPORTDATA does not match the policy");
    }
  }

  td_attributes(out, p.td_attributes, r.td_attributes);

  if (p.xfam) {
    const std::string expected =
        "(XFAM & " + hex_number(p.xfam->mask) + ") == " + hex_number(p.xfam->value);
    if ((r.xfam & p.xfam->mask) == p.xfam->value) {
      out.pass("policy.tdx.xfam", expected, hex_number(r.xfam));
    } else {
      out.fail("policy.tdx.xfam", expected, hex_number(r.xfam),
               "XFAM enables CPU extended features the policy does not expect (masked XFAM " +
                   hex_number(r.xfam & p.xfam->mask) + ")");
    }
  }

  if (p.minimum_tee_tcb_svn) {
    std::vector<std::string> low;
    for (std::size_t i = 0; i < 16; ++i) {
      if (r.tee_tcb_svn[i] < (*p.minimum_tee_tcb_svn)[i]) {
        low.push_back("byte " + std::to_string(i) + " " + std::to_string(r.tee_tcb_svn[i]) + " < " +
                      std::to_string((*p.minimum_tee_tcb_svn)[i]));
      }
    }
    const std::string expected = ">= " + to_hex(*p.minimum_tee_tcb_svn) + " byte by byte";
    if (low.empty()) {
      out.pass("policy.tdx.tee_tcb_svn", expected, to_hex(r.tee_tcb_svn));
    } else {
      out.fail("policy.tdx.tee_tcb_svn", expected, to_hex(r.tee_tcb_svn),
               "TEE_TCB_SVN below the policy minimum: " + join(low));
    }
  }

  {
    const std::string expected = "one of [" + join(p.accepted_tcb_statuses) + "]";
    if (!v.tcb) {
      out.fail("policy.tdx.tcb_status", expected, "unknown",
               "the platform's TCB status could not be determined (see tdx.tcb.status)");
    } else {
      const std::string status(attestation::tdx::to_string(v.tcb->status));
      std::string found = status;
      if (v.tcb->tcb_date) found += " (tcbDate " + format_rfc3339(*v.tcb->tcb_date) + ")";
      if (std::find(p.accepted_tcb_statuses.begin(), p.accepted_tcb_statuses.end(), status) !=
          p.accepted_tcb_statuses.end()) {
        out.pass("policy.tdx.tcb_status", expected, found);
      } else {
        out.fail(
            "policy.tdx.tcb_status", expected, found,
            "the platform's TCB status is not one the policy accepts" +
                (v.tcb->advisory_ids.empty() ? std::string()
                                             : " (advisories " + join(v.tcb->advisory_ids) + ")"));
      }
    }
  }

  if (p.accepted_advisory_ids) {
    const std::string expected = "advisories within [" + join(*p.accepted_advisory_ids) + "]";
    if (!v.tcb) {
      out.fail("policy.tdx.advisories", expected, "unknown",
               "the platform's advisories could not be determined (see tdx.tcb.status)");
    } else {
      std::vector<std::string> unaccepted;
      for (const auto& id : v.tcb->advisory_ids) {
        if (std::find(p.accepted_advisory_ids->begin(), p.accepted_advisory_ids->end(), id) ==
            p.accepted_advisory_ids->end())
          unaccepted.push_back(id);
      }
      const std::string found = v.tcb->advisory_ids.empty() ? "none" : join(v.tcb->advisory_ids);
      if (unaccepted.empty()) {
        out.pass("policy.tdx.advisories", expected, found);
      } else {
        out.fail("policy.tdx.advisories", expected, found,
                 "the platform is affected by advisories the policy does not accept: " +
                     join(unaccepted));
      }
    }
  }

  runtime_events(out, p.runtime_events, v);

  if (p.maximum_collateral_age_days) {
    // The signed TCB evaluation data; CRL freshness is their nextUpdate's business.
    const std::string expected = "TCB Info and QE Identity issued at most " +
                                 std::to_string(*p.maximum_collateral_age_days) + " days before " +
                                 format_rfc3339(v.time);
    std::vector<std::pair<std::string, UnixTime>> dates;
    if (v.tcb_info) dates.emplace_back("TCB Info", v.tcb_info->value.value.issue_date);
    if (v.qe_identity) dates.emplace_back("QE Identity", v.qe_identity->value.value.issue_date);
    if (dates.size() != 2) {
      out.fail("policy.tdx.collateral_age", expected, dates.empty() ? "none" : dates[0].first,
               "without both TCB Info and QE Identity the collateral's age cannot be checked");
    } else {
      std::vector<std::string> found, old;
      const std::int64_t max_seconds =
          static_cast<std::int64_t>(*p.maximum_collateral_age_days) * 86400;
      for (const auto& [item, issued] : dates) {
        const std::int64_t age = v.time - issued;
        found.push_back(item + " " + std::to_string(age / 86400) + " days old");
        if (age > max_seconds) old.push_back(item + " issued " + format_rfc3339(issued));
      }
      if (old.empty()) {
        out.pass("policy.tdx.collateral_age", expected, join(found));
      } else {
        out.fail("policy.tdx.collateral_age", expected, join(found),
                 "collateral older than the policy allows: " + join(old));
      }
    }
  }
}

}  // namespace cloister::policy
