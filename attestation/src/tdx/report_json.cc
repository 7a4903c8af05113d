#include "cloister/attestation/tdx/report_json.h"

#include <cstdio>

#include "cloister/common/hex.h"

namespace cloister::attestation::tdx {
namespace {

using json = nlohmann::json;

bool bit(std::uint64_t value, unsigned n) {
  return (value >> n) & 1;
}

json status_json(const std::optional<TcbStatus>& s) {
  return s ? json(std::string(to_string(*s))) : json();
}

json index_json(const std::optional<std::size_t>& i) {
  return i ? json(*i) : json();
}

json tcb_json(const TcbEvaluation& e, const TcbInfo& info, const QeIdentity* qe,
              std::uint8_t module_version) {
  json out;
  out["status"] = std::string(to_string(e.status));
  out["tcb_date"] = e.tcb_date ? json(format_rfc3339(*e.tcb_date)) : json();
  out["advisory_ids"] = e.advisory_ids;
  auto level = [&](const std::optional<std::size_t>& i) -> json {
    if (!i) return json();
    const TcbLevel& l = info.tcb_levels[*i];
    return {{"index", *i},
            {"tcb_date", format_rfc3339(l.tcb_date)},
            {"status", std::string(to_string(l.status))},
            {"advisory_ids", l.advisory_ids}};
  };
  out["sgx_level"] = level(e.sgx_level);
  out["tdx_level"] = level(e.tdx_level);
  out["module_identity"] = e.module_identity ? json(*e.module_identity) : json();
  out["module_level"] = index_json(e.module_level);
  if (e.module_identity && e.module_level) {
    if (const TdxModuleIdentity* id = find_tdx_module_identity(info, module_version)) {
      const ModuleTcbLevel& l = id->tcb_levels[*e.module_level];
      out["module_level"] = {{"index", *e.module_level},
                             {"isvsvn", l.isvsvn},
                             {"tcb_date", format_rfc3339(l.tcb_date)},
                             {"status", std::string(to_string(l.status))},
                             {"advisory_ids", l.advisory_ids}};
    }
  }
  out["module_status"] = status_json(e.module_status);
  out["tdx_status_after_module"] = status_json(e.tdx_status);
  out["relaunch_checked"] = e.relaunch_checked;
  out["relaunch_status"] = status_json(e.relaunch_status);
  out["qe_status"] = status_json(e.qe_status);
  out["qe_level"] = json();
  if (qe != nullptr && e.qe_level) {
    const QeTcbLevel& l = qe->tcb_levels[*e.qe_level];
    out["qe_level"] = {{"index", *e.qe_level},
                       {"isvsvn", l.isvsvn},
                       {"tcb_date", format_rfc3339(l.tcb_date)},
                       {"status", std::string(to_string(l.status))},
                       {"advisory_ids", l.advisory_ids}};
  }
  out["notes"] = e.notes;
  return out;
}

json pck_json(const PckChain& chain, const std::optional<PckExtensions>& ext) {
  json out;
  out["ca"] = std::string(to_string(chain.ca));
  auto cert = [](const Certificate& c) {
    return json{{"subject", c.subject_string()},
                {"serial", c.serial_hex()},
                {"not_before", format_rfc3339(c.not_before())},
                {"not_after", format_rfc3339(c.not_after())},
                {"sha256", to_hex(c.fingerprint())}};
  };
  out["leaf"] = cert(chain.leaf);
  out["intermediate"] = cert(chain.intermediate);
  out["root"] = cert(chain.root);
  if (ext) {
    json e;
    e["ppid"] = to_hex(ext->ppid);
    e["tcb_comp_svns"] = ext->tcb_components;
    e["pcesvn"] = ext->pcesvn;
    e["cpusvn"] = to_hex(ext->cpusvn);
    e["pceid"] = to_hex(ext->pce_id);
    e["fmspc"] = to_hex(ext->fmspc);
    e["sgx_type"] = std::string(to_string(ext->sgx_type));
    e["platform_instance_id"] =
        ext->platform_instance_id ? json(to_hex(*ext->platform_instance_id)) : json();
    if (ext->configuration) {
      auto opt = [](const std::optional<bool>& b) { return b ? json(*b) : json(); };
      e["configuration"] = {{"dynamic_platform", opt(ext->configuration->dynamic_platform)},
                            {"cached_keys", opt(ext->configuration->cached_keys)},
                            {"smt_enabled", opt(ext->configuration->smt_enabled)}};
    } else {
      e["configuration"] = json();
    }
    out["sgx_extensions"] = e;
  }
  return out;
}

json replayed_json(const RtmrReplay& replay) {
  json replayed = json::object();
  for (std::size_t i = 0; i < 4; ++i) {
    replayed["rtmr" + std::to_string(i)] = {{"value", to_hex(replay.rtmr[i])},
                                            {"events", replay.events[i]}};
  }
  return replayed;
}

json event_log_json(const CcEventLog& log, const RtmrReplay& replay) {
  json events = json::array();
  for (std::size_t i = 0; i < log.events.size(); ++i) {
    const CcEvent& e = log.events[i];
    json event = {{"index", i + 1},
                  {"offset", e.offset},
                  {"mr_index", e.mr_index},
                  {"rtmr", e.rtmr() ? json(*e.rtmr()) : json()},
                  {"type", event_type_name(e.type)},
                  {"type_value", hex_number(e.type)},
                  {"sha384", to_hex(e.sha384)},
                  {"digest_check", std::string(to_string(e.digest_check))},
                  {"data_size", e.data.size()}};
    // Short data is shown: the action strings, separators and names a reader looks for.
    if (e.data.size() <= 256) event["data"] = to_hex(e.data);
    events.push_back(std::move(event));
  }
  json algorithms = json::array();
  for (const auto& a : log.spec_id.algorithms)
    algorithms.push_back({{"id", hex_number(a.id)}, {"digest_size", a.digest_size}});
  return {{"format", "ccel"},
          {"spec_id",
           {{"spec_version", std::to_string(log.spec_id.spec_version_major) + "." +
                                 std::to_string(log.spec_id.spec_version_minor)},
            {"errata", log.spec_id.spec_errata},
            {"uintn_size", log.spec_id.uintn_size},
            {"algorithms", algorithms}}},
          {"bytes_used", log.bytes_used},
          {"events", events},
          {"replayed", replayed_json(replay)}};
}

json dstack_event_log_json(const DstackEventLog& log, const RtmrReplay& replay) {
  json events = json::array();
  json runtime_events = json::array();
  for (std::size_t i = 0; i < log.events.size(); ++i) {
    const DstackEvent& e = log.events[i];
    json event = {{"index", i},
                  {"imr", e.imr},
                  {"type", event_type_name(e.event_type)},
                  {"type_value", hex_number(e.event_type)},
                  {"name", e.name},
                  {"digest", to_hex(e.digest)},
                  {"digest_source", e.runtime() ? "recomputed" : "logged"},
                  {"payload_size", e.payload.size()}};
    if (e.payload.size() <= 256) event["payload"] = to_hex(e.payload);
    events.push_back(std::move(event));
    if (e.runtime()) {
      runtime_events.push_back({{"imr", e.imr},
                                {"name", e.name},
                                {"payload", to_hex(e.payload)},
                                {"digest", to_hex(e.digest)}});
    }
  }
  return {{"format", "dstack"},
          {"events", events},
          {"runtime_events", runtime_events},
          {"replayed", replayed_json(replay)}};
}

}  // namespace

json tdx_report_to_json(const TdxVerification& v) {
  if (!v.quote) return json();
  const TdxQuote& q = *v.quote;
  const TdReport& r = q.td_report;
  json out;
  out["version"] = q.header.version;
  out["att_key_type"] = q.header.att_key_type;
  out["tee_type"] = hex_number(q.header.tee_type);
  out["header_reserved"] = to_hex(q.header.reserved);
  out["qe_vendor_id"] = to_hex(q.header.qe_vendor_id);
  out["user_data"] = to_hex(q.header.user_data);
  out["body_type"] = q.body_type ? json(*q.body_type) : json();
  out["body_size"] = q.body_size;
  out["signed_size"] = q.signed_size;
  out["signature_data_len"] = q.signature_data_len;
  out["trailing_bytes"] = q.trailing_bytes;
  out["tee_tcb_svn"] = to_hex(r.tee_tcb_svn);
  out["mr_seam"] = to_hex(r.mr_seam);
  out["mr_signer_seam"] = to_hex(r.mr_signer_seam);
  out["seam_attributes"] = to_hex(r.seam_attributes);
  std::array<std::uint8_t, 8> attributes{}, xfam{};
  store_le64(attributes, 0, r.td_attributes);
  store_le64(xfam, 0, r.xfam);
  out["td_attributes"] = {
      {"raw", to_hex(attributes)},
      {"value", hex_number(r.td_attributes)},
      {"debug", bit(r.td_attributes, td_attribute_bit::kDebug)},
      {"sept_ve_disable", bit(r.td_attributes, td_attribute_bit::kSeptVeDisable)},
      {"pks", bit(r.td_attributes, td_attribute_bit::kPks)},
      {"kl", bit(r.td_attributes, td_attribute_bit::kKl)},
      {"perfmon", bit(r.td_attributes, td_attribute_bit::kPerfmon)}};
  out["xfam"] = {{"raw", to_hex(xfam)}, {"value", hex_number(r.xfam)}};
  out["mr_td"] = to_hex(r.mr_td);
  out["mr_config_id"] = to_hex(r.mr_config_id);
  out["mr_owner"] = to_hex(r.mr_owner);
  out["mr_owner_config"] = to_hex(r.mr_owner_config);
  for (std::size_t i = 0; i < 4; ++i) out["rtmr" + std::to_string(i)] = to_hex(r.rtmr[i]);
  out["report_data"] = to_hex(r.report_data);
  if (r.tee_tcb_svn2) out["tee_tcb_svn2"] = to_hex(*r.tee_tcb_svn2);
  if (r.mr_service_td) out["mr_service_td"] = to_hex(*r.mr_service_td);
  out["signature"] = to_hex(q.signature);
  out["attestation_key"] = to_hex(q.attestation_key);
  const QeReport& qe = q.qe_report;
  out["qe_report"] = {{"cpu_svn", to_hex(qe.cpu_svn)},
                      {"miscselect", qe.misc_select},
                      {"attributes", to_hex(qe.attributes)},
                      {"mr_enclave", to_hex(qe.mr_enclave)},
                      {"mr_signer", to_hex(qe.mr_signer)},
                      {"isv_prod_id", qe.isv_prod_id},
                      {"isv_svn", qe.isv_svn},
                      {"report_data", to_hex(qe.report_data)},
                      {"signature", to_hex(q.qe_report_signature)}};
  out["qe_auth_data"] = to_hex(q.qe_auth_data);
  out["pck_cert_data_type"] = q.pck_cert_data_type;
  if (v.pck_chain) out["pck"] = pck_json(*v.pck_chain, v.pck_extensions);
  if (v.tcb_info) {
    const TcbInfo& info = v.tcb_info->value.value;
    out["collateral"]["tcb_info"] = {
        {"source", v.tcb_info->source},
        {"fmspc", to_hex(info.fmspc)},
        {"tcb_evaluation_data_number", info.tcb_evaluation_data_number},
        {"issue_date", format_rfc3339(info.issue_date)},
        {"next_update", format_rfc3339(info.next_update)}};
  }
  if (v.qe_identity) {
    const QeIdentity& id = v.qe_identity->value.value;
    out["collateral"]["qe_identity"] = {
        {"source", v.qe_identity->source},
        {"tcb_evaluation_data_number", id.tcb_evaluation_data_number},
        {"issue_date", format_rfc3339(id.issue_date)},
        {"next_update", format_rfc3339(id.next_update)}};
  }
  if (v.tcb && v.tcb_info) {
    out["tcb"] = tcb_json(*v.tcb, v.tcb_info->value.value,
                          v.qe_identity ? &v.qe_identity->value.value : nullptr, r.tee_tcb_svn[1]);
  }
  if (v.tcb_info_url) out["tcb_info_url"] = *v.tcb_info_url;
  if (v.event_log && v.replay) out["event_log"] = event_log_json(*v.event_log, *v.replay);
  if (v.dstack_event_log && v.replay)
    out["event_log"] = dstack_event_log_json(*v.dstack_event_log, *v.replay);
  return out;
}

}  // namespace cloister::attestation::tdx
