#include "cloister/vmm/snapshot/snapshot.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>

#include "cloister/common/hex.h"
#include "cloister/common/json.h"
#include "cloister/vmm/format.h"

namespace cloister::vmm {
namespace {

using nlohmann::json;

constexpr std::uint64_t kPage = 4096;
// Memory is written and hashed in chunks of this many bytes.
constexpr std::uint64_t kChunk = 1u << 20;

// ---- writing ----

json segment_json(const x86::Segment& s) {
  return {{"base", s.base},
          {"limit", s.limit},
          {"selector", s.selector},
          {"type", s.type},
          {"present", s.present},
          {"dpl", s.dpl},
          {"db", s.db},
          {"s", s.s},
          {"l", s.l},
          {"g", s.g},
          {"avl", s.avl},
          {"unusable", s.unusable}};
}

// The optional vCPU fields (hypervisor.h VcpuEvents, VcpuTsc): present when the hypervisor has
// them, so files without them (emu, older writers) keep the same schema version.
void add_events_and_tsc(json& out, const VcpuState& v) {
  if (v.events) {
    const VcpuEvents& e = *v.events;
    out["events"] = {
        {"exception",
         {{"injected", e.exception.injected},
          {"pending", e.exception.pending},
          {"has_error_code", e.exception.has_error_code},
          {"vector", e.exception.vector},
          {"error_code", e.exception.error_code}}},
        {"interrupt",
         {{"injected", e.interrupt.injected},
          {"vector", e.interrupt.vector},
          {"soft", e.interrupt.soft},
          {"shadow", e.interrupt.shadow}}},
        {"nmi",
         {{"injected", e.nmi.injected}, {"pending", e.nmi.pending}, {"masked", e.nmi.masked}}},
        {"sipi_vector", e.sipi_vector}};
  }
  if (v.tsc) out["tsc"] = {{"value", v.tsc->value}, {"khz", v.tsc->khz}};
}

json vcpu_json(const VcpuState& v) {
  const x86::Regs& r = v.regs;
  json regs = {{"rax", r.rax}, {"rbx", r.rbx}, {"rcx", r.rcx},      {"rdx", r.rdx}, {"rsi", r.rsi},
               {"rdi", r.rdi}, {"rsp", r.rsp}, {"rbp", r.rbp},      {"r8", r.r8},   {"r9", r.r9},
               {"r10", r.r10}, {"r11", r.r11}, {"r12", r.r12},      {"r13", r.r13}, {"r14", r.r14},
               {"r15", r.r15}, {"rip", r.rip}, {"rflags", r.rflags}};
  const x86::Sregs& s = v.sregs;
  json sregs = {{"cs", segment_json(s.cs)},
                {"ds", segment_json(s.ds)},
                {"es", segment_json(s.es)},
                {"fs", segment_json(s.fs)},
                {"gs", segment_json(s.gs)},
                {"ss", segment_json(s.ss)},
                {"tr", segment_json(s.tr)},
                {"ldt", segment_json(s.ldt)},
                {"gdt", {{"base", s.gdt.base}, {"limit", s.gdt.limit}}},
                {"idt", {{"base", s.idt.base}, {"limit", s.idt.limit}}},
                {"cr0", s.cr0},
                {"cr2", s.cr2},
                {"cr3", s.cr3},
                {"cr4", s.cr4},
                {"cr8", s.cr8},
                {"efer", s.efer},
                {"apic_base", s.apic_base}};
  const x86::Fpu& f = v.fpu;
  json fpr = json::array(), xmm = json::array();
  for (const auto& reg : f.fpr) fpr.push_back(to_hex(reg));
  for (const auto& reg : f.xmm) xmm.push_back(to_hex(reg));
  json fpu = {{"fpr", fpr},
              {"fcw", f.fcw},
              {"fsw", f.fsw},
              {"ftw", f.ftw},
              {"last_opcode", f.last_opcode},
              {"last_ip", f.last_ip},
              {"last_dp", f.last_dp},
              {"xmm", xmm},
              {"mxcsr", f.mxcsr}};
  json msrs = json::array();
  for (const x86::Msr& m : v.msrs) msrs.push_back({{"index", m.index}, {"value", m.value}});
  json debug = {{"db", v.debug_regs.db}, {"dr6", v.debug_regs.dr6}, {"dr7", v.debug_regs.dr7}};
  json out = {{"regs", regs},
              {"sregs", sregs},
              {"fpu", fpu},
              {"xcr0", v.xcr0},
              {"msrs", msrs},
              {"debug_regs", debug},
              {"mp_state", mp_state_name(v.mp_state)},
              {"lapic", to_hex(v.lapic)},
              {"xsave", to_hex(v.xsave)}};
  add_events_and_tsc(out, v);
  return out;
}

json bucket_json(const TokenBucketState& b) {
  return {{"tokens", b.tokens}, {"one_time_burst", b.one_time_burst}};
}

json limiter_json(const RateLimiterState& l) {
  return {{"bandwidth", bucket_json(l.bandwidth)}, {"ops", bucket_json(l.ops)}};
}

json virtio_json(const VirtioDeviceState& d) {
  const VirtioTransportState& t = d.transport;
  json queues = json::array();
  for (const VirtqueueState& q : t.queues)
    queues.push_back({{"size", q.size},
                      {"ready", q.ready},
                      {"desc_addr", q.desc_addr},
                      {"driver_addr", q.driver_addr},
                      {"device_addr", q.device_addr},
                      {"next_avail", q.next_avail},
                      {"next_used", q.next_used}});
  const std::string kind(virtio_kind_name(d.device));
  json out = {{"slot", d.slot},
              {"kind", kind},
              {"transport",
               {{"status", t.status},
                {"device_features_sel", t.device_features_sel},
                {"driver_features_sel", t.driver_features_sel},
                {"driver_features", t.driver_features},
                {"queue_sel", t.queue_sel},
                {"interrupt_status", t.interrupt_status},
                {"config_generation", t.config_generation},
                {"queues", queues}}}};
  if (const auto* b = std::get_if<BlockDeviceState>(&d.device))
    out[kind] = {{"path", b->path}, {"bytes", b->bytes}, {"read_only", b->read_only}};
  if (const auto* n = std::get_if<NetDeviceState>(&d.device))
    out[kind] = {{"tap", n->tap},
                 {"mac", n->mac ? json(to_hex(*n->mac)) : json(nullptr)},
                 {"rx_rate_limiter", limiter_json(n->rx)},
                 {"tx_rate_limiter", limiter_json(n->tx)}};
  if (const auto* v = std::get_if<VsockDeviceState>(&d.device))
    out[kind] = {{"guest_cid", v->guest_cid}};
  return out;
}

json body_json(const SnapshotState& state) {
  json memory = json::array();
  for (const SnapshotRegion& r : state.memory)
    memory.push_back({{"name", r.name},
                      {"guest_phys_addr", r.guest_phys_addr},
                      {"size", r.size},
                      {"read_only_to_guest", r.read_only_to_guest},
                      {"file_offset", r.file_offset}});
  json vcpus = json::array();
  for (const VcpuState& v : state.vcpus) vcpus.push_back(vcpu_json(v));
  json components = json::object();
  for (const auto& [name, bytes] : state.vm.components) components[name] = to_hex(bytes);
  const SerialState& u = state.serial;
  json serial = {
      {"ier", u.ier},      {"lcr", u.lcr}, {"mcr", u.mcr}, {"scr", u.scr},
      {"dll", u.dll},      {"dlm", u.dlm}, {"fcr", u.fcr}, {"thr_interrupt", u.thr_interrupt},
      {"rx", to_hex(u.rx)}};
  json virtio = json::array();
  for (const VirtioDeviceState& d : state.virtio) virtio.push_back(virtio_json(d));
  return {{"hypervisor", state.hypervisor},
          {"boot", boot_kind_name(state.boot_kind)},
          {"vcpu_count", state.vcpus.size()},
          {"memory_bytes", state.config.memory_bytes},
          {"config", to_json(state.config)},
          {"memory", memory},
          {"memory_file",
           {{"name", kSnapshotMemoryFile},
            {"bytes", state.memory_file_bytes},
            {"sha256", to_hex(state.memory_sha256)}}},
          {"vcpus", vcpus},
          {"vm", components},
          {"devices", {{"serial", serial}, {"virtio", virtio}}}};
}

// ---- parsing: one field reader whose errors name the field by JSON Pointer ----

class Field {
 public:
  Field(const json& value, std::string pointer) : value_(value), pointer_(std::move(pointer)) {}

  Result<Field> at(const std::string& key) const {
    if (!value_.is_object()) return wrong("an object");
    auto it = value_.find(key);
    if (it == value_.end()) return Error("snapshot state: " + pointer_ + "/" + key + ": missing");
    return Field(*it, pointer_ + "/" + key);
  }
  Result<Field> at(std::size_t index) const {
    return Field(value_.at(index), pointer_ + "/" + std::to_string(index));
  }
  Result<std::size_t> array_size() const {
    if (!value_.is_array()) return wrong("an array");
    return value_.size();
  }
  const json& raw() const { return value_; }
  const std::string& pointer() const { return pointer_; }

  template <typename T>
  Result<T> number() const {
    if (!value_.is_number_unsigned() &&
        !(value_.is_number_integer() && value_.get<std::int64_t>() >= 0))
      return wrong("an unsigned integer");
    const auto v = value_.get<std::uint64_t>();
    if (v > std::numeric_limits<T>::max())
      return Error("snapshot state: " + pointer_ + ": expected at most " +
                   std::to_string(std::numeric_limits<T>::max()) + ", found " + std::to_string(v));
    return static_cast<T>(v);
  }
  Result<bool> boolean() const {
    if (!value_.is_boolean()) return wrong("true or false");
    return value_.get<bool>();
  }
  Result<std::string> string() const {
    if (!value_.is_string()) return wrong("a string");
    return value_.get<std::string>();
  }
  Result<Bytes> hex_bytes() const {
    CLOISTER_TRY(std::string text, string());
    auto bytes = from_hex(text);
    if (!bytes) return Error("snapshot state: " + pointer_ + ": " + bytes.error().message());
    return *bytes;
  }
  template <std::size_t N>
  Status hex_into(std::array<std::uint8_t, N>& out) const {
    CLOISTER_TRY(Bytes bytes, hex_bytes());
    if (bytes.size() != N)
      return Error("snapshot state: " + pointer_ + ": expected " + std::to_string(N) +
                   " bytes, found " + std::to_string(bytes.size()));
    std::copy(bytes.begin(), bytes.end(), out.begin());
    return {};
  }

 private:
  Error wrong(const char* expected) const {
    return Error("snapshot state: " + pointer_ + ": expected " + expected + ", found " +
                 std::string(value_.type_name()));
  }

  const json& value_;
  std::string pointer_;
};

template <typename T>
Status read_number(const Field& parent, const std::string& key, T& out) {
  CLOISTER_TRY(Field f, parent.at(key));
  CLOISTER_TRY(out, f.template number<T>());
  return {};
}

Status read_bool(const Field& parent, const std::string& key, bool& out) {
  CLOISTER_TRY(Field f, parent.at(key));
  CLOISTER_TRY(out, f.boolean());
  return {};
}

Result<x86::Segment> parse_segment(const Field& f) {
  x86::Segment s;
  CLOISTER_CHECK_OK(read_number(f, "base", s.base));
  CLOISTER_CHECK_OK(read_number(f, "limit", s.limit));
  CLOISTER_CHECK_OK(read_number(f, "selector", s.selector));
  CLOISTER_CHECK_OK(read_number(f, "type", s.type));
  CLOISTER_CHECK_OK(read_bool(f, "present", s.present));
  CLOISTER_CHECK_OK(read_number(f, "dpl", s.dpl));
  CLOISTER_CHECK_OK(read_bool(f, "db", s.db));
  CLOISTER_CHECK_OK(read_bool(f, "s", s.s));
  CLOISTER_CHECK_OK(read_bool(f, "l", s.l));
  CLOISTER_CHECK_OK(read_bool(f, "g", s.g));
  CLOISTER_CHECK_OK(read_bool(f, "avl", s.avl));
  CLOISTER_CHECK_OK(read_bool(f, "unusable", s.unusable));
  return s;
}

Result<x86::Regs> parse_regs(const Field& f) {
  x86::Regs r;
  const std::pair<const char*, std::uint64_t x86::Regs::*> fields[] = {
      {"rax", &x86::Regs::rax}, {"rbx", &x86::Regs::rbx}, {"rcx", &x86::Regs::rcx},
      {"rdx", &x86::Regs::rdx}, {"rsi", &x86::Regs::rsi}, {"rdi", &x86::Regs::rdi},
      {"rsp", &x86::Regs::rsp}, {"rbp", &x86::Regs::rbp}, {"r8", &x86::Regs::r8},
      {"r9", &x86::Regs::r9},   {"r10", &x86::Regs::r10}, {"r11", &x86::Regs::r11},
      {"r12", &x86::Regs::r12}, {"r13", &x86::Regs::r13}, {"r14", &x86::Regs::r14},
      {"r15", &x86::Regs::r15}, {"rip", &x86::Regs::rip}, {"rflags", &x86::Regs::rflags}};
  for (const auto& [key, member] : fields) CLOISTER_CHECK_OK(read_number(f, key, r.*member));
  return r;
}

Result<x86::Sregs> parse_sregs(const Field& f) {
  x86::Sregs s;
  const std::pair<const char*, x86::Segment x86::Sregs::*> segments[] = {
      {"cs", &x86::Sregs::cs}, {"ds", &x86::Sregs::ds},  {"es", &x86::Sregs::es},
      {"fs", &x86::Sregs::fs}, {"gs", &x86::Sregs::gs},  {"ss", &x86::Sregs::ss},
      {"tr", &x86::Sregs::tr}, {"ldt", &x86::Sregs::ldt}};
  for (const auto& [key, member] : segments) {
    CLOISTER_TRY(Field seg, f.at(key));
    CLOISTER_TRY(s.*member, parse_segment(seg));
  }
  for (auto [key, table] : {std::pair{"gdt", &s.gdt}, std::pair{"idt", &s.idt}}) {
    CLOISTER_TRY(Field t, f.at(key));
    CLOISTER_CHECK_OK(read_number(t, "base", table->base));
    CLOISTER_CHECK_OK(read_number(t, "limit", table->limit));
  }
  const std::pair<const char*, std::uint64_t x86::Sregs::*> control[] = {
      {"cr0", &x86::Sregs::cr0},
      {"cr2", &x86::Sregs::cr2},
      {"cr3", &x86::Sregs::cr3},
      {"cr4", &x86::Sregs::cr4},
      {"cr8", &x86::Sregs::cr8},
      {"efer", &x86::Sregs::efer},
      {"apic_base", &x86::Sregs::apic_base}};
  for (const auto& [key, member] : control) CLOISTER_CHECK_OK(read_number(f, key, s.*member));
  return s;
}

Result<x86::Fpu> parse_fpu(const Field& f) {
  x86::Fpu out;
  CLOISTER_TRY(Field fpr, f.at("fpr"));
  CLOISTER_TRY(std::size_t nfpr, fpr.array_size());
  if (nfpr != out.fpr.size())
    return Error("snapshot state: " + fpr.pointer() + ": expected 8 registers, found " +
                 std::to_string(nfpr));
  for (std::size_t i = 0; i < nfpr; ++i) {
    CLOISTER_TRY(Field reg, fpr.at(i));
    CLOISTER_CHECK_OK(reg.hex_into(out.fpr[i]));
  }
  CLOISTER_TRY(Field xmm, f.at("xmm"));
  CLOISTER_TRY(std::size_t nxmm, xmm.array_size());
  if (nxmm != out.xmm.size())
    return Error("snapshot state: " + xmm.pointer() + ": expected 16 registers, found " +
                 std::to_string(nxmm));
  for (std::size_t i = 0; i < nxmm; ++i) {
    CLOISTER_TRY(Field reg, xmm.at(i));
    CLOISTER_CHECK_OK(reg.hex_into(out.xmm[i]));
  }
  CLOISTER_CHECK_OK(read_number(f, "fcw", out.fcw));
  CLOISTER_CHECK_OK(read_number(f, "fsw", out.fsw));
  CLOISTER_CHECK_OK(read_number(f, "ftw", out.ftw));
  CLOISTER_CHECK_OK(read_number(f, "last_opcode", out.last_opcode));
  CLOISTER_CHECK_OK(read_number(f, "last_ip", out.last_ip));
  CLOISTER_CHECK_OK(read_number(f, "last_dp", out.last_dp));
  CLOISTER_CHECK_OK(read_number(f, "mxcsr", out.mxcsr));
  return out;
}

Result<MpState> parse_mp_state(const Field& f) {
  CLOISTER_TRY(std::string name, f.string());
  for (MpState s :
       {MpState::kUninitialized, MpState::kWaitForSipi, MpState::kHalted, MpState::kRunnable})
    if (name == mp_state_name(s)) return s;
  return Error("snapshot state: " + f.pointer() +
               ": expected uninitialized, wait_for_sipi, halted or runnable, found \"" + name +
               "\"");
}

Result<VcpuEvents> parse_events(const Field& f) {
  VcpuEvents e;
  CLOISTER_TRY(Field exception, f.at("exception"));
  CLOISTER_CHECK_OK(read_bool(exception, "injected", e.exception.injected));
  CLOISTER_CHECK_OK(read_bool(exception, "pending", e.exception.pending));
  CLOISTER_CHECK_OK(read_bool(exception, "has_error_code", e.exception.has_error_code));
  CLOISTER_CHECK_OK(read_number(exception, "vector", e.exception.vector));
  CLOISTER_CHECK_OK(read_number(exception, "error_code", e.exception.error_code));
  CLOISTER_TRY(Field interrupt, f.at("interrupt"));
  CLOISTER_CHECK_OK(read_bool(interrupt, "injected", e.interrupt.injected));
  CLOISTER_CHECK_OK(read_number(interrupt, "vector", e.interrupt.vector));
  CLOISTER_CHECK_OK(read_bool(interrupt, "soft", e.interrupt.soft));
  CLOISTER_CHECK_OK(read_number(interrupt, "shadow", e.interrupt.shadow));
  CLOISTER_TRY(Field nmi, f.at("nmi"));
  CLOISTER_CHECK_OK(read_bool(nmi, "injected", e.nmi.injected));
  CLOISTER_CHECK_OK(read_bool(nmi, "pending", e.nmi.pending));
  CLOISTER_CHECK_OK(read_bool(nmi, "masked", e.nmi.masked));
  CLOISTER_CHECK_OK(read_number(f, "sipi_vector", e.sipi_vector));
  return e;
}

// The optional fields add_events_and_tsc() writes, when present.
Status parse_events_and_tsc(const Field& f, VcpuState& v) {
  if (f.raw().contains("events")) {
    CLOISTER_TRY(Field events, f.at("events"));
    CLOISTER_TRY(v.events, parse_events(events));
  }
  if (f.raw().contains("tsc")) {
    CLOISTER_TRY(Field tsc, f.at("tsc"));
    VcpuTsc value;
    CLOISTER_CHECK_OK(read_number(tsc, "value", value.value));
    CLOISTER_CHECK_OK(read_number(tsc, "khz", value.khz));
    v.tsc = value;
  }
  return {};
}

Result<VcpuState> parse_vcpu(const Field& f) {
  VcpuState v;
  CLOISTER_TRY(Field regs, f.at("regs"));
  CLOISTER_TRY(v.regs, parse_regs(regs));
  CLOISTER_TRY(Field sregs, f.at("sregs"));
  CLOISTER_TRY(v.sregs, parse_sregs(sregs));
  CLOISTER_TRY(Field fpu, f.at("fpu"));
  CLOISTER_TRY(v.fpu, parse_fpu(fpu));
  CLOISTER_CHECK_OK(read_number(f, "xcr0", v.xcr0));
  CLOISTER_TRY(Field msrs, f.at("msrs"));
  CLOISTER_TRY(std::size_t nmsrs, msrs.array_size());
  for (std::size_t i = 0; i < nmsrs; ++i) {
    CLOISTER_TRY(Field m, msrs.at(i));
    x86::Msr msr;
    CLOISTER_CHECK_OK(read_number(m, "index", msr.index));
    CLOISTER_CHECK_OK(read_number(m, "value", msr.value));
    v.msrs.push_back(msr);
  }
  CLOISTER_TRY(Field debug, f.at("debug_regs"));
  CLOISTER_TRY(Field db, debug.at("db"));
  CLOISTER_TRY(std::size_t ndb, db.array_size());
  if (ndb != v.debug_regs.db.size())
    return Error("snapshot state: " + db.pointer() + ": expected 4 registers, found " +
                 std::to_string(ndb));
  for (std::size_t i = 0; i < ndb; ++i) {
    CLOISTER_TRY(Field reg, db.at(i));
    CLOISTER_TRY(v.debug_regs.db[i], reg.number<std::uint64_t>());
  }
  CLOISTER_CHECK_OK(read_number(debug, "dr6", v.debug_regs.dr6));
  CLOISTER_CHECK_OK(read_number(debug, "dr7", v.debug_regs.dr7));
  CLOISTER_TRY(Field mp, f.at("mp_state"));
  CLOISTER_TRY(v.mp_state, parse_mp_state(mp));
  CLOISTER_TRY(Field lapic, f.at("lapic"));
  CLOISTER_TRY(v.lapic, lapic.hex_bytes());
  CLOISTER_TRY(Field xsave, f.at("xsave"));
  CLOISTER_TRY(v.xsave, xsave.hex_bytes());
  CLOISTER_CHECK_OK(parse_events_and_tsc(f, v));
  return v;
}

Result<SerialState> parse_serial(const Field& f) {
  SerialState u;
  CLOISTER_CHECK_OK(read_number(f, "ier", u.ier));
  CLOISTER_CHECK_OK(read_number(f, "lcr", u.lcr));
  CLOISTER_CHECK_OK(read_number(f, "mcr", u.mcr));
  CLOISTER_CHECK_OK(read_number(f, "scr", u.scr));
  CLOISTER_CHECK_OK(read_number(f, "dll", u.dll));
  CLOISTER_CHECK_OK(read_number(f, "dlm", u.dlm));
  CLOISTER_CHECK_OK(read_number(f, "fcr", u.fcr));
  CLOISTER_CHECK_OK(read_bool(f, "thr_interrupt", u.thr_interrupt));
  CLOISTER_TRY(Field rx, f.at("rx"));
  CLOISTER_TRY(u.rx, rx.hex_bytes());
  return u;
}

Result<std::vector<SnapshotRegion>> parse_memory(const Field& f) {
  std::vector<SnapshotRegion> regions;
  CLOISTER_TRY(std::size_t n, f.array_size());
  for (std::size_t i = 0; i < n; ++i) {
    CLOISTER_TRY(Field r, f.at(i));
    SnapshotRegion region;
    CLOISTER_TRY(Field name, r.at("name"));
    CLOISTER_TRY(region.name, name.string());
    CLOISTER_CHECK_OK(read_number(r, "guest_phys_addr", region.guest_phys_addr));
    CLOISTER_CHECK_OK(read_number(r, "size", region.size));
    CLOISTER_CHECK_OK(read_bool(r, "read_only_to_guest", region.read_only_to_guest));
    CLOISTER_CHECK_OK(read_number(r, "file_offset", region.file_offset));
    regions.push_back(std::move(region));
  }
  return regions;
}

// The memory layout's consistency: regions back to back in the file from offset 0, in whole
// pages, adding up to the memory file's size, their RAM (the guest-writable regions) adding up to
// the config's memory size.
Status check_layout(const SnapshotState& state) {
  std::uint64_t offset = 0, ram = 0;
  for (std::size_t i = 0; i < state.memory.size(); ++i) {
    const SnapshotRegion& r = state.memory[i];
    const std::string where = "snapshot state: /body/memory/" + std::to_string(i);
    if (r.size == 0 || r.size % kPage != 0 || r.guest_phys_addr % kPage != 0)
      return Error(where + ": expected a non-empty range of whole 4 KiB pages, found " +
                   hex(r.guest_phys_addr) + " + " + hex(r.size));
    if (r.file_offset != offset)
      return Error(where + "/file_offset: expected " + std::to_string(offset) +
                   " (regions lie back to back in the memory file), found " +
                   std::to_string(r.file_offset));
    if (r.size > std::numeric_limits<std::uint64_t>::max() - offset)
      return Error(where + "/size: expected at most " + hex(~std::uint64_t{0} - offset) +
                   " (the memory file ends before 2^64 bytes), found " + hex(r.size));
    offset += r.size;
    if (!r.read_only_to_guest) ram += r.size;
  }
  if (offset != state.memory_file_bytes)
    return Error("snapshot state: /body/memory_file/bytes: expected " + std::to_string(offset) +
                 " (the sum of the memory regions), found " +
                 std::to_string(state.memory_file_bytes));
  if (ram != state.config.memory_bytes)
    return Error("snapshot state: memory size: the config's memory_bytes is " +
                 std::to_string(state.config.memory_bytes) +
                 ", the guest-writable memory regions hold " + std::to_string(ram));
  return {};
}

// ---- virtio devices ----

Result<TokenBucketState> parse_bucket(const Field& f) {
  TokenBucketState b;
  CLOISTER_CHECK_OK(read_number(f, "tokens", b.tokens));
  CLOISTER_CHECK_OK(read_number(f, "one_time_burst", b.one_time_burst));
  return b;
}

Result<RateLimiterState> parse_limiter(const Field& parent, const std::string& key) {
  CLOISTER_TRY(Field f, parent.at(key));
  RateLimiterState l;
  CLOISTER_TRY(Field bandwidth, f.at("bandwidth"));
  CLOISTER_TRY(l.bandwidth, parse_bucket(bandwidth));
  CLOISTER_TRY(Field ops, f.at("ops"));
  CLOISTER_TRY(l.ops, parse_bucket(ops));
  return l;
}

Result<VirtqueueState> parse_queue(const Field& f) {
  VirtqueueState q;
  CLOISTER_CHECK_OK(read_number(f, "size", q.size));
  CLOISTER_CHECK_OK(read_bool(f, "ready", q.ready));
  CLOISTER_CHECK_OK(read_number(f, "desc_addr", q.desc_addr));
  CLOISTER_CHECK_OK(read_number(f, "driver_addr", q.driver_addr));
  CLOISTER_CHECK_OK(read_number(f, "device_addr", q.device_addr));
  CLOISTER_CHECK_OK(read_number(f, "next_avail", q.next_avail));
  CLOISTER_CHECK_OK(read_number(f, "next_used", q.next_used));
  return q;
}

Result<VirtioTransportState> parse_transport(const Field& f) {
  VirtioTransportState t;
  CLOISTER_CHECK_OK(read_number(f, "status", t.status));
  CLOISTER_CHECK_OK(read_number(f, "device_features_sel", t.device_features_sel));
  CLOISTER_CHECK_OK(read_number(f, "driver_features_sel", t.driver_features_sel));
  CLOISTER_CHECK_OK(read_number(f, "driver_features", t.driver_features));
  CLOISTER_CHECK_OK(read_number(f, "queue_sel", t.queue_sel));
  CLOISTER_CHECK_OK(read_number(f, "interrupt_status", t.interrupt_status));
  CLOISTER_CHECK_OK(read_number(f, "config_generation", t.config_generation));
  CLOISTER_TRY(Field queues, f.at("queues"));
  CLOISTER_TRY(std::size_t n, queues.array_size());
  for (std::size_t i = 0; i < n; ++i) {
    CLOISTER_TRY(Field q, queues.at(i));
    CLOISTER_TRY(VirtqueueState queue, parse_queue(q));
    t.queues.push_back(queue);
  }
  return t;
}

// What the config puts in each virtio-mmio slot: its kind, where the config says so, and the
// device's queue count.
struct ExpectedSlot {
  std::string_view kind;
  std::string config_pointer;
  std::size_t queues;
};

std::vector<ExpectedSlot> expected_slots(const VmConfig& config) {
  std::vector<ExpectedSlot> slots;
  for (std::size_t i = 0; i < config.disks.size(); ++i)
    slots.push_back({"block", "/body/config/disks/" + std::to_string(i), 1});
  for (std::size_t i = 0; i < config.nets.size(); ++i)
    slots.push_back({"net", "/body/config/nets/" + std::to_string(i), 2});
  if (config.vsock) slots.push_back({"vsock", "/body/config/vsock", 3});
  return slots;
}

std::string in_quotes(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

Error state_mismatch(const std::string& pointer, const std::string& expected,
                     const std::string& found) {
  return Error("snapshot state: " + pointer + ": expected " + expected + ", found " + found);
}

// The device-specific half of slot `index`, checked against the config entry it stands for.
Result<VirtioDeviceSpecificState> parse_device_specific(const Field& entry, const VmConfig& config,
                                                        std::size_t index,
                                                        const ExpectedSlot& expected) {
  CLOISTER_TRY(Field f, entry.at(std::string(expected.kind)));
  const std::string at = f.pointer();
  if (expected.kind == "block") {
    const DiskConfig& disk = config.disks[index];
    BlockDeviceState b;
    CLOISTER_TRY(Field path, f.at("path"));
    CLOISTER_TRY(b.path, path.string());
    CLOISTER_CHECK_OK(read_number(f, "bytes", b.bytes));
    CLOISTER_CHECK_OK(read_bool(f, "read_only", b.read_only));
    if (b.path != disk.path)
      return state_mismatch(at + "/path",
                            in_quotes(disk.path) + " (" + expected.config_pointer + "/path)",
                            in_quotes(b.path));
    if (b.read_only != disk.read_only)
      return state_mismatch(at + "/read_only",
                            std::string(disk.read_only ? "true" : "false") + " (" +
                                expected.config_pointer + "/read_only)",
                            b.read_only ? "true" : "false");
    if (b.bytes == 0 || b.bytes % 512 != 0)
      return state_mismatch(at + "/bytes", "a non-empty multiple of 512", std::to_string(b.bytes));
    return VirtioDeviceSpecificState(std::move(b));
  }
  if (expected.kind == "net") {
    const NetConfig& net = config.nets[index - config.disks.size()];
    NetDeviceState n;
    CLOISTER_TRY(Field tap, f.at("tap"));
    CLOISTER_TRY(n.tap, tap.string());
    CLOISTER_TRY(Field mac, f.at("mac"));
    if (!mac.raw().is_null()) {
      std::array<std::uint8_t, 6> bytes{};
      CLOISTER_CHECK_OK(mac.hex_into(bytes));
      n.mac = bytes;
    }
    CLOISTER_TRY(n.rx, parse_limiter(f, "rx_rate_limiter"));
    CLOISTER_TRY(n.tx, parse_limiter(f, "tx_rate_limiter"));
    if (n.tap != net.tap)
      return state_mismatch(at + "/tap",
                            in_quotes(net.tap) + " (" + expected.config_pointer + "/tap)",
                            in_quotes(n.tap));
    const auto mac_text = [](const auto& m) { return m ? in_quotes(to_hex(*m)) : "null"; };
    if (n.mac != net.mac)
      return state_mismatch(at + "/mac",
                            mac_text(net.mac) + " (" + expected.config_pointer + "/mac)",
                            mac_text(n.mac));
    return VirtioDeviceSpecificState(std::move(n));
  }
  VsockDeviceState v;
  CLOISTER_CHECK_OK(read_number(f, "guest_cid", v.guest_cid));
  if (v.guest_cid != config.vsock->guest_cid)
    return state_mismatch(
        at + "/guest_cid",
        std::to_string(config.vsock->guest_cid) + " (" + expected.config_pointer + "/guest_cid)",
        std::to_string(v.guest_cid));
  return VirtioDeviceSpecificState(v);
}

// /body/devices/virtio: one entry per virtio-mmio slot of the config, in slot order.
Result<std::vector<VirtioDeviceState>> parse_virtio(const Field& list, const VmConfig& config) {
  const std::vector<ExpectedSlot> slots = expected_slots(config);
  CLOISTER_TRY(std::size_t n, list.array_size());
  if (n != slots.size())
    return Error("snapshot state: virtio devices: expected " + std::to_string(slots.size()) + " (" +
                 std::to_string(config.disks.size()) + " disks, " +
                 std::to_string(config.nets.size()) + " nets, " + (config.vsock ? "a" : "no") +
                 " vsock in /body/config), found " + std::to_string(n) +
                 " entries in /body/devices/virtio");
  std::vector<VirtioDeviceState> devices;
  for (std::size_t i = 0; i < n; ++i) {
    CLOISTER_TRY(Field entry, list.at(i));
    const ExpectedSlot& expected = slots[i];
    VirtioDeviceState d;
    CLOISTER_CHECK_OK(read_number(entry, "slot", d.slot));
    if (d.slot != i)
      return state_mismatch(entry.pointer() + "/slot",
                            std::to_string(i) + " (entries in slot order)", std::to_string(d.slot));
    CLOISTER_TRY(Field kind_field, entry.at("kind"));
    CLOISTER_TRY(std::string kind, kind_field.string());
    if (kind != expected.kind)
      return state_mismatch(entry.pointer() + "/kind",
                            in_quotes(expected.kind) + " (slot " + std::to_string(i) + " is " +
                                expected.config_pointer + ")",
                            in_quotes(kind));
    CLOISTER_TRY(Field transport, entry.at("transport"));
    CLOISTER_TRY(d.transport, parse_transport(transport));
    if (d.transport.queues.size() != expected.queues)
      return state_mismatch(entry.pointer() + "/transport/queues",
                            std::to_string(expected.queues) + " queues (virtio-" + kind + ")",
                            std::to_string(d.transport.queues.size()));
    CLOISTER_TRY(d.device, parse_device_specific(entry, config, i, expected));
    devices.push_back(std::move(d));
  }
  return devices;
}

// ---- the body ----

Result<SnapshotState> parse_body(const Field& body) {
  SnapshotState state;
  CLOISTER_TRY(Field hypervisor, body.at("hypervisor"));
  CLOISTER_TRY(state.hypervisor, hypervisor.string());
  CLOISTER_TRY(Field boot, body.at("boot"));
  CLOISTER_TRY(std::string boot_name, boot.string());
  bool known_boot = false;
  for (BootKind kind : {BootKind::kFirmware, BootKind::kBzImage, BootKind::kElf})
    if (boot_name == boot_kind_name(kind)) state.boot_kind = kind, known_boot = true;
  if (!known_boot)
    return Error("snapshot state: /body/boot: expected " +
                 std::string(boot_kind_name(BootKind::kFirmware)) + ", " +
                 std::string(boot_kind_name(BootKind::kBzImage)) + " or " +
                 std::string(boot_kind_name(BootKind::kElf)) + ", found \"" + boot_name + "\"");
  CLOISTER_TRY(Field config, body.at("config"));
  auto parsed_config = parse_config(config.raw());
  if (!parsed_config) return parsed_config.error().with_context("snapshot state: /body/config");
  state.config = std::move(*parsed_config);
  std::uint64_t vcpu_count = 0, memory_bytes = 0;
  CLOISTER_CHECK_OK(read_number(body, "vcpu_count", vcpu_count));
  CLOISTER_CHECK_OK(read_number(body, "memory_bytes", memory_bytes));
  if (vcpu_count != state.config.vcpus)
    return Error("snapshot state: vCPU count: /body/vcpu_count is " + std::to_string(vcpu_count) +
                 ", the config's vcpus is " + std::to_string(state.config.vcpus));
  if (memory_bytes != state.config.memory_bytes)
    return Error("snapshot state: memory size: /body/memory_bytes is " +
                 std::to_string(memory_bytes) + ", the config's memory is " +
                 std::to_string(state.config.memory_bytes));
  CLOISTER_TRY(Field memory, body.at("memory"));
  CLOISTER_TRY(state.memory, parse_memory(memory));
  CLOISTER_TRY(Field memory_file, body.at("memory_file"));
  CLOISTER_CHECK_OK(read_number(memory_file, "bytes", state.memory_file_bytes));
  CLOISTER_TRY(Field sha, memory_file.at("sha256"));
  CLOISTER_CHECK_OK(sha.hex_into(state.memory_sha256));
  CLOISTER_CHECK_OK(check_layout(state));
  CLOISTER_TRY(Field vcpus, body.at("vcpus"));
  CLOISTER_TRY(std::size_t nvcpus, vcpus.array_size());
  if (nvcpus != vcpu_count)
    return Error("snapshot state: vCPU count: expected " + std::to_string(vcpu_count) +
                 " entries in /body/vcpus, found " + std::to_string(nvcpus));
  for (std::size_t i = 0; i < nvcpus; ++i) {
    CLOISTER_TRY(Field v, vcpus.at(i));
    CLOISTER_TRY(VcpuState vcpu, parse_vcpu(v));
    state.vcpus.push_back(std::move(vcpu));
  }
  CLOISTER_TRY(Field vm, body.at("vm"));
  if (!vm.raw().is_object())
    return Error("snapshot state: /body/vm: expected an object, found " +
                 std::string(vm.raw().type_name()));
  for (const auto& [name, value] : vm.raw().items()) {
    Field component(value, "/body/vm/" + name);
    CLOISTER_TRY(state.vm.components[name], component.hex_bytes());
  }
  CLOISTER_TRY(Field devices, body.at("devices"));
  CLOISTER_TRY(Field serial, devices.at("serial"));
  CLOISTER_TRY(state.serial, parse_serial(serial));
  CLOISTER_TRY(Field virtio, devices.at("virtio"));
  CLOISTER_TRY(state.virtio, parse_virtio(virtio, state.config));
  return state;
}

// ---- memory file ----

bool all_zero(const std::uint8_t* p, std::size_t n) {
  return p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0;
}

void hash_page(Hasher& hasher, std::uint64_t index, const std::uint8_t* page) {
  std::uint8_t le[8];
  for (int i = 0; i < 8; ++i) le[i] = static_cast<std::uint8_t>(index >> (8 * i));
  hasher.update(ByteView(le, 8));
  hasher.update(ByteView(page, kPage));
}

Status pwrite_all(int fd, const std::uint8_t* data, std::uint64_t size, std::uint64_t offset,
                  const std::filesystem::path& path) {
  while (size > 0) {
    const ssize_t n = ::pwrite(fd, data, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return os_error("write of " + path.string());
    data += n, size -= static_cast<std::uint64_t>(n), offset += static_cast<std::uint64_t>(n);
  }
  return {};
}

std::filesystem::path temporary_name(const std::filesystem::path& path) {
  static std::atomic<unsigned long> counter{0};
  std::filesystem::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  return tmp;
}

}  // namespace

Bytes serialize_state(const SnapshotState& state) {
  const json body = body_json(state);
  const std::string body_text = body.dump();
  const std::string text =
      json{{"schema_version", state.schema_version},
           {"vmm_version", state.vmm_version},
           {"body_sha256",
            to_hex(sha256(ByteView(reinterpret_cast<const std::uint8_t*>(body_text.data()),
                                   body_text.size())))},
           {"body", body}}
          .dump(1) +
      "\n";
  return Bytes(text.begin(), text.end());
}

Result<SnapshotState> parse_state(ByteView bytes) {
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  auto doc = parse_json_strict(text, "snapshot state");
  if (!doc) return Error(doc.error().message() + " (a truncated or corrupted state file)");
  const Field root(*doc, "");
  CLOISTER_TRY(Field version_field, root.at("schema_version"));
  CLOISTER_TRY(auto version, version_field.number<std::uint32_t>());
  if (version != kSnapshotSchemaVersion)
    return Error("snapshot state: schema_version: expected " +
                 std::to_string(kSnapshotSchemaVersion) + ", found " + std::to_string(version) +
                 " (written by an incompatible cloister-vmm)");
  CLOISTER_TRY(Field vmm_version, root.at("vmm_version"));
  CLOISTER_TRY(std::string written_by, vmm_version.string());
  CLOISTER_TRY(Field recorded_field, root.at("body_sha256"));
  Sha256Digest recorded{};
  CLOISTER_CHECK_OK(recorded_field.hex_into(recorded));
  CLOISTER_TRY(Field body, root.at("body"));
  const std::string body_text = body.raw().dump();
  const Sha256Digest actual =
      sha256(ByteView(reinterpret_cast<const std::uint8_t*>(body_text.data()), body_text.size()));
  if (actual != recorded)
    return Error("snapshot state: body checksum (body_sha256): expected " + to_hex(recorded) +
                 ", found " + to_hex(actual) + " (the state file is corrupted)");
  CLOISTER_TRY(SnapshotState state, parse_body(body));
  state.schema_version = version;
  state.vmm_version = std::move(written_by);
  return state;
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> data_ranges(int fd, std::uint64_t size) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  std::uint64_t pos = 0;
  while (pos < size) {
    const off_t data = ::lseek(fd, static_cast<off_t>(pos), SEEK_DATA);
    if (data < 0) {
      if (errno != ENXIO) ranges.assign(1, {0, size});  // no SEEK_DATA here: read everything
      return ranges;
    }
    const off_t hole = ::lseek(fd, data, SEEK_HOLE);
    const std::uint64_t end =
        hole < 0 ? size : std::min<std::uint64_t>(static_cast<std::uint64_t>(hole), size);
    const std::uint64_t begin = static_cast<std::uint64_t>(data) / kPage * kPage;
    if (begin >= size) break;
    ranges.push_back({begin, (end + kPage - 1) / kPage * kPage});
    pos = ranges.back().second;
  }
  return ranges;
}

std::vector<SnapshotRegion> memory_layout(const GuestMemory& memory) {
  std::vector<SnapshotRegion> layout;
  std::uint64_t offset = 0;
  for (const GuestRegion& region : memory.regions()) {
    layout.push_back(
        {region.name, region.guest_phys_addr, region.size, region.read_only_to_guest, offset});
    offset += region.size;
  }
  return layout;
}

Result<Sha256Digest> memory_digest(int fd, std::uint64_t size) {
  Hasher hasher(HashAlgorithm::kSha256);
  Bytes chunk(kChunk);
  for (const auto& [begin, end] : data_ranges(fd, size)) {
    for (std::uint64_t pos = begin; pos < end;) {
      const std::uint64_t want = std::min(kChunk, end - pos);
      std::uint64_t got = 0;
      while (got < want) {
        const ssize_t n =
            ::pread(fd, chunk.data() + got, want - got, static_cast<off_t>(pos + got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return os_error("read of the memory file");
        if (n == 0) break;
        got += static_cast<std::uint64_t>(n);
      }
      if (got != want)
        return Error("memory file: ends at byte " + std::to_string(pos + got) + ", expected " +
                     std::to_string(size) + " bytes");
      for (std::uint64_t p = 0; p < want; p += kPage)
        if (!all_zero(chunk.data() + p, kPage))
          hash_page(hasher, (pos + p) / kPage, chunk.data() + p);
      pos += want;
    }
  }
  Sha256Digest digest{};
  hasher.finish_into(digest);
  return digest;
}

Status write_memory_file(const std::filesystem::path& path, const GuestMemory& memory,
                         SnapshotState& state) {
  const std::filesystem::path tmp = temporary_name(path);
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return os_error("create " + tmp.string());
  auto fail = [&](Error error) {
    ::unlink(tmp.c_str());
    return error;
  };
  Hasher hasher(HashAlgorithm::kSha256);
  state.memory = memory_layout(memory);
  std::uint64_t offset = 0;
  for (const GuestRegion& region : memory.regions()) {
    // A fresh VM's memfd tells which pages were never touched; a restored VM's regions are read
    // whole.
    const auto ranges =
        region.memfd.valid()
            ? data_ranges(region.memfd.get(), region.size)
            : std::vector<std::pair<std::uint64_t, std::uint64_t>>{{0, region.size}};
    for (const auto& [begin, end] : ranges) {
      for (std::uint64_t p = begin; p < end; p += kPage) {
        const std::uint8_t* page = region.host + p;
        if (all_zero(page, kPage)) continue;
        if (auto st = pwrite_all(fd.get(), page, kPage, offset + p, tmp); !st)
          return fail(st.error());
        hash_page(hasher, (offset + p) / kPage, page);
      }
    }
    offset += region.size;
  }
  if (::ftruncate(fd.get(), static_cast<off_t>(offset)) < 0)
    return fail(os_error("ftruncate of " + tmp.string()));
  if (::fdatasync(fd.get()) < 0) return fail(os_error("fdatasync of " + tmp.string()));
  if (::rename(tmp.c_str(), path.c_str()) < 0)
    return fail(os_error("rename into place of " + path.string()));
  state.memory_file_bytes = offset;
  hasher.finish_into(state.memory_sha256);
  return {};
}

Status write_snapshot(const std::filesystem::path& dir, const GuestMemory& memory,
                      SnapshotState& state) {
  // A directory that cannot be made is the caller's to fix (its parent is missing or not
  // writable): an invalid argument, whatever the errno.
  if (::mkdir(dir.c_str(), 0700) < 0 && errno != EEXIST)
    return Error(ErrorCode::kInvalidArgument,
                 os_error("snapshot directory " + dir.string()).message());
  CLOISTER_CHECK_OK(write_memory_file(dir / kSnapshotMemoryFile, memory, state));
  const Bytes text = serialize_state(state);
  const std::filesystem::path path = dir / kSnapshotStateFile;
  const std::filesystem::path tmp = temporary_name(path);
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return os_error("create " + tmp.string());
  Status written = pwrite_all(fd.get(), text.data(), text.size(), 0, tmp);
  if (written && ::fdatasync(fd.get()) < 0) written = os_error("fdatasync of " + tmp.string());
  if (written && ::rename(tmp.c_str(), path.c_str()) < 0)
    written = os_error("rename into place of " + path.string());
  if (!written) ::unlink(tmp.c_str());
  return written;
}

Result<OpenedSnapshot> open_snapshot(const std::filesystem::path& dir) {
  const std::filesystem::path state_path = dir / kSnapshotStateFile;
  auto bytes = read_file(state_path, kSnapshotStateFileLimit);
  if (!bytes) return Error(bytes.error().message());
  auto state = parse_state(*bytes);
  if (!state) return state.error().with_context(state_path.string());
  const std::filesystem::path memory_path = dir / kSnapshotMemoryFile;
  Fd fd(::open(memory_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd.valid()) return Error(os_error("open " + memory_path.string()).message());
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) return Error(os_error("fstat " + memory_path.string()).message());
  if (!S_ISREG(st.st_mode)) return Error(memory_path.string() + ": not a regular file");
  if (static_cast<std::uint64_t>(st.st_size) != state->memory_file_bytes)
    return Error(memory_path.string() + ": memory file size: expected " +
                 std::to_string(state->memory_file_bytes) + " bytes (the memory regions of " +
                 std::to_string(state->config.memory_bytes) +
                 " bytes of RAM in the state), found " + std::to_string(st.st_size) +
                 " (truncated, or from another snapshot)");
  CLOISTER_TRY(Sha256Digest digest, memory_digest(fd.get(), state->memory_file_bytes));
  if (digest != state->memory_sha256)
    return Error(memory_path.string() + ": memory checksum (sha256): expected " +
                 to_hex(state->memory_sha256) + ", found " + to_hex(digest) +
                 " (the memory file is corrupted)");
  return OpenedSnapshot{std::move(*state), std::move(fd)};
}

}  // namespace cloister::vmm
