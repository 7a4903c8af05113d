#include "cloister/attestation/tdx/quote.h"

#include <algorithm>

namespace cloister::attestation::tdx {
namespace {

template <std::size_t N>
std::array<std::uint8_t, N> copy_field(ByteView raw, std::size_t offset) {
  std::array<std::uint8_t, N> out{};
  std::copy_n(raw.begin() + static_cast<std::ptrdiff_t>(offset), N, out.begin());
  return out;
}

// Appends little-endian integers and byte strings.
class Appender {
 public:
  explicit Appender(Bytes& out) : out_(out) {}
  void u16(std::uint16_t v) { out_.insert(out_.end(), {std::uint8_t(v), std::uint8_t(v >> 8)}); }
  void u32(std::uint32_t v) {
    u16(static_cast<std::uint16_t>(v));
    u16(static_cast<std::uint16_t>(v >> 16));
  }
  void u64(std::uint64_t v) {
    u32(static_cast<std::uint32_t>(v));
    u32(static_cast<std::uint32_t>(v >> 32));
  }
  void bytes(ByteView b) { out_.insert(out_.end(), b.begin(), b.end()); }

 private:
  Bytes& out_;
};

void encode_td_report(const TdReport& r, Appender& out) {
  out.bytes(r.tee_tcb_svn);
  out.bytes(r.mr_seam);
  out.bytes(r.mr_signer_seam);
  out.bytes(r.seam_attributes);
  out.u64(r.td_attributes);
  out.u64(r.xfam);
  out.bytes(r.mr_td);
  out.bytes(r.mr_config_id);
  out.bytes(r.mr_owner);
  out.bytes(r.mr_owner_config);
  for (const auto& rtmr : r.rtmr) out.bytes(rtmr);
  out.bytes(r.report_data);
  if (r.tee_tcb_svn2) out.bytes(*r.tee_tcb_svn2);
  if (r.mr_service_td) out.bytes(*r.mr_service_td);
}

std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// A region of the quote read with its own bounds: errors name the region and the absolute
// offset in the quote.
class Region {
 public:
  Region(ByteView quote, std::size_t begin, std::size_t size, const char* name)
      : reader_(quote.subspan(begin, size)), begin_(begin), name_(name) {}

  std::size_t offset() const { return begin_ + reader_.offset(); }
  std::size_t remaining() const { return reader_.remaining(); }

  template <typename T>
  Result<T> wrap(Result<T> r) const {
    if (!r && begin_ != 0) {
      return Error(std::string(name_) + " at quote offset " + std::to_string(begin_) + ": " +
                   r.error().message());
    }
    return r;
  }
  Result<std::uint16_t> u16(std::string_view field) { return wrap(reader_.u16(field)); }
  Result<std::uint32_t> u32(std::string_view field) { return wrap(reader_.u32(field)); }
  Result<ByteView> bytes(std::size_t n, std::string_view field) {
    return wrap(reader_.bytes(n, field));
  }

 private:
  ByteReader reader_;
  std::size_t begin_;
  const char* name_;
};

TdReport decode_td_report(ByteView body, bool v15) {
  TdReport r;
  r.tee_tcb_svn = copy_field<16>(body, body_offset::kTeeTcbSvn);
  r.mr_seam = copy_field<48>(body, body_offset::kMrSeam);
  r.mr_signer_seam = copy_field<48>(body, body_offset::kMrSignerSeam);
  r.seam_attributes = copy_field<8>(body, body_offset::kSeamAttributes);
  r.td_attributes = load_le64(body, body_offset::kTdAttributes);
  r.xfam = load_le64(body, body_offset::kXfam);
  r.mr_td = copy_field<48>(body, body_offset::kMrTd);
  r.mr_config_id = copy_field<48>(body, body_offset::kMrConfigId);
  r.mr_owner = copy_field<48>(body, body_offset::kMrOwner);
  r.mr_owner_config = copy_field<48>(body, body_offset::kMrOwnerConfig);
  for (std::size_t i = 0; i < 4; ++i)
    r.rtmr[i] = copy_field<48>(body, body_offset::kRtmr0 + 48 * i);
  r.report_data = copy_field<64>(body, body_offset::kReportData);
  if (v15) {
    r.tee_tcb_svn2 = copy_field<16>(body, body_offset::kTeeTcbSvn2);
    r.mr_service_td = copy_field<48>(body, body_offset::kMrServiceTd);
  }
  return r;
}

QeReport decode_qe_report(ByteView raw) {
  QeReport q;
  std::copy(raw.begin(), raw.end(), q.raw.begin());
  q.cpu_svn = copy_field<16>(raw, qe_offset::kCpuSvn);
  q.misc_select = load_le32(raw, qe_offset::kMiscSelect);
  q.attributes = copy_field<16>(raw, qe_offset::kAttributes);
  q.mr_enclave = copy_field<32>(raw, qe_offset::kMrEnclave);
  q.mr_signer = copy_field<32>(raw, qe_offset::kMrSigner);
  q.isv_prod_id = load_le16(raw, qe_offset::kIsvProdId);
  q.isv_svn = load_le16(raw, qe_offset::kIsvSvn);
  q.report_data = copy_field<64>(raw, qe_offset::kReportData);
  return q;
}

std::string cert_data_type_name(std::uint16_t type) {
  switch (type) {
    case kCertDataPpidCleartext:
      return "1 (PPID in clear text)";
    case kCertDataPpidRsa2048:
      return "2 (PPID encrypted with RSA-2048-OAEP)";
    case kCertDataPpidRsa3072:
      return "3 (PPID encrypted with RSA-3072-OAEP)";
    case kCertDataPckCleartext:
      return "4 (PCK leaf certificate)";
    case kCertDataPckChain:
      return "5 (PCK certificate chain)";
    case kCertDataQeReport:
      return "6 (QE report certification data)";
    default:
      return std::to_string(type) + " (unknown)";
  }
}

}  // namespace

bool looks_like_tdx_quote(ByteView bytes) {
  if (bytes.size() < 8) return false;
  std::uint16_t version = load_le16(bytes, header_offset::kVersion);
  if (version != kQuoteVersion4 && version != kQuoteVersion5) return false;
  return load_le32(bytes, header_offset::kTeeType) == kTeeTypeTdx ||
         load_le16(bytes, header_offset::kAttKeyType) == kAttKeyTypeEcdsaP256;
}

Result<TdxQuote> decode_tdx_quote(ByteView bytes) {
  TdxQuote q;
  auto& problems = q.format_problems;
  Region top(bytes, 0, bytes.size(), "quote");

  // Header.
  CLOISTER_TRY(ByteView header, top.bytes(kHeaderSize, "header"));
  q.header.version = load_le16(header, header_offset::kVersion);
  q.header.att_key_type = load_le16(header, header_offset::kAttKeyType);
  q.header.tee_type = load_le32(header, header_offset::kTeeType);
  q.header.reserved = copy_field<4>(header, header_offset::kReserved);
  q.header.qe_vendor_id = copy_field<16>(header, header_offset::kQeVendorId);
  q.header.user_data = copy_field<20>(header, header_offset::kUserData);
  if (q.header.version != kQuoteVersion4 && q.header.version != kQuoteVersion5) {
    return Error("version: expected 4 or 5 (TDX quote), found " + std::to_string(q.header.version));
  }
  if (q.header.att_key_type != kAttKeyTypeEcdsaP256) {
    problems.push_back("att_key_type: expected 2 (ECDSA P-256), found " +
                       std::to_string(q.header.att_key_type));
  }

  // Body (v5: after a type/size descriptor).
  bool v15 = false;
  if (q.header.version == kQuoteVersion4) {
    if (q.header.tee_type != kTeeTypeTdx) {
      return Error("tee_type: expected " + hex32(kTeeTypeTdx) + " (TDX), found " +
                   hex32(q.header.tee_type) + "; a v4 quote for another TEE has another layout");
    }
    q.body_size = kTdReport10Size;
  } else {
    CLOISTER_TRY(std::uint16_t body_type, top.u16("body_type"));
    CLOISTER_TRY(std::uint32_t body_size, top.u32("body_size"));
    q.body_type = body_type;
    q.body_size = body_size;
    if (body_type == kBodyTypeTdReport10) {
      if (body_size != kTdReport10Size)
        return Error("body_size: expected 584 for body type 2 (TD report 1.0), found " +
                     std::to_string(body_size));
    } else if (body_type == kBodyTypeTdReport15) {
      if (body_size != kTdReport15Size)
        return Error("body_size: expected 648 for body type 3 (TD report 1.5), found " +
                     std::to_string(body_size));
      v15 = true;
    } else {
      return Error("body_type: expected 2 (TD report 1.0) or 3 (TD report 1.5), found " +
                   std::to_string(body_type) +
                   (body_type == kBodyTypeSgxEnclaveReport ? " (an SGX enclave quote)" : ""));
    }
    if (q.header.tee_type != kTeeTypeTdx) {
      problems.push_back("tee_type: expected " + hex32(kTeeTypeTdx) +
                         " (TDX) for a TD report body, found " + hex32(q.header.tee_type));
    }
  }
  CLOISTER_TRY(ByteView body, top.bytes(q.body_size, v15 ? "TD report 1.5" : "TD report 1.0"));
  q.td_report = decode_td_report(body, v15);
  q.signed_size = top.offset();

  // Signature data.
  CLOISTER_TRY(q.signature_data_len, top.u32("signature_data_len"));
  if (q.signature_data_len > top.remaining()) {
    return Error("signature_data_len at offset " + std::to_string(top.offset() - 4) +
                 ": declares " + std::to_string(q.signature_data_len) + " bytes, only " +
                 std::to_string(top.remaining()) + " follow");
  }
  const std::size_t sig_begin = top.offset();
  Region sig(bytes, sig_begin, q.signature_data_len, "signature data");
  CLOISTER_TRY(ByteView signature, sig.bytes(kEcdsaSignatureSize, "quote signature"));
  std::copy(signature.begin(), signature.end(), q.signature.begin());
  CLOISTER_TRY(ByteView key, sig.bytes(kEcdsaPublicKeySize, "attestation key"));
  std::copy(key.begin(), key.end(), q.attestation_key.begin());
  CLOISTER_TRY(q.cert_data_type, sig.u16("certification data type"));
  CLOISTER_TRY(std::uint32_t cert_size, sig.u32("certification data size"));
  if (q.cert_data_type != kCertDataQeReport) {
    return Error("certification data type: expected " + cert_data_type_name(kCertDataQeReport) +
                 ", found " + cert_data_type_name(q.cert_data_type));
  }
  if (cert_size > sig.remaining()) {
    return Error("certification data size at offset " + std::to_string(sig.offset() - 4) +
                 ": declares " + std::to_string(cert_size) + " bytes, only " +
                 std::to_string(sig.remaining()) + " left in the signature data");
  }

  // QE report certification data.
  Region cert(bytes, sig.offset(), cert_size, "QE report certification data");
  CLOISTER_TRY(ByteView qe_report, cert.bytes(kQeReportSize, "QE report"));
  q.qe_report = decode_qe_report(qe_report);
  CLOISTER_TRY(ByteView qe_sig, cert.bytes(kEcdsaSignatureSize, "QE report signature"));
  std::copy(qe_sig.begin(), qe_sig.end(), q.qe_report_signature.begin());
  CLOISTER_TRY(std::uint16_t auth_size, cert.u16("QE auth data size"));
  CLOISTER_TRY(ByteView auth, cert.bytes(auth_size, "QE auth data"));
  q.qe_auth_data.assign(auth.begin(), auth.end());
  CLOISTER_TRY(q.pck_cert_data_type, cert.u16("PCK certification data type"));
  CLOISTER_TRY(std::uint32_t pck_size, cert.u32("PCK certification data size"));
  CLOISTER_TRY(ByteView pck, cert.bytes(pck_size, "PCK certification data"));
  q.pck_cert_data.assign(pck.begin(), pck.end());
  if (q.pck_cert_data_type != kCertDataPckChain) {
    problems.push_back("PCK certification data type: expected " +
                       cert_data_type_name(kCertDataPckChain) + ", found " +
                       cert_data_type_name(q.pck_cert_data_type) +
                       (q.pck_cert_data_type >= kCertDataPpidCleartext &&
                                q.pck_cert_data_type <= kCertDataPckCleartext
                            ? "; the PCK chain is not embedded and cannot be checked"
                            : ""));
  }
  if (cert.remaining() != 0) {
    problems.push_back("QE report certification data: " + std::to_string(cert.remaining()) +
                       " unused bytes after the PCK certification data (at offset " +
                       std::to_string(cert.offset()) + ")");
  }
  const std::size_t sig_used = cert.offset() + cert.remaining() - sig_begin;
  if (sig_used != q.signature_data_len) {
    problems.push_back("signature data: " + std::to_string(q.signature_data_len - sig_used) +
                       " unused bytes after the certification data (at offset " +
                       std::to_string(sig_begin + sig_used) + ")");
  }

  const std::size_t end = sig_begin + q.signature_data_len;
  q.raw.assign(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(end));
  q.trailing_bytes = bytes.size() - end;
  return q;
}

std::array<std::uint8_t, kQeReportSize> encode_qe_report(const QeReport& q) {
  std::array<std::uint8_t, kQeReportSize> out = q.raw;
  auto put = [&](std::size_t at, ByteView field) {
    std::copy(field.begin(), field.end(), out.begin() + static_cast<std::ptrdiff_t>(at));
  };
  put(qe_offset::kCpuSvn, q.cpu_svn);
  store_le32(out, qe_offset::kMiscSelect, q.misc_select);
  put(qe_offset::kAttributes, q.attributes);
  put(qe_offset::kMrEnclave, q.mr_enclave);
  put(qe_offset::kMrSigner, q.mr_signer);
  store_le16(out, qe_offset::kIsvProdId, q.isv_prod_id);
  store_le16(out, qe_offset::kIsvSvn, q.isv_svn);
  put(qe_offset::kReportData, q.report_data);
  return out;
}

Result<Bytes> encode_tdx_quote(const TdxQuote& q) {
  const QuoteHeader& h = q.header;
  bool v15 = false;
  if (h.version == kQuoteVersion4) {
    if (h.tee_type != kTeeTypeTdx) {
      return Error("tee_type: a v4 quote this library writes is a TDX quote (" +
                   hex32(kTeeTypeTdx) + "), found " + hex32(h.tee_type));
    }
    if (q.body_type) {
      return Error("body_type: a v4 quote has none, found " + std::to_string(*q.body_type));
    }
  } else if (h.version == kQuoteVersion5) {
    if (q.body_type != kBodyTypeTdReport10 && q.body_type != kBodyTypeTdReport15) {
      return Error("body_type: expected 2 (TD report 1.0) or 3 (TD report 1.5), found " +
                   (q.body_type ? std::to_string(*q.body_type) : std::string("none")));
    }
    v15 = q.body_type == kBodyTypeTdReport15;
  } else {
    return Error("version: expected 4 or 5 (TDX quote), found " + std::to_string(h.version));
  }
  if (q.td_report.tee_tcb_svn2.has_value() != v15 || q.td_report.mr_service_td.has_value() != v15) {
    return Error(std::string("TEE_TCB_SVN2/MRSERVICETD: ") +
                 (v15 ? "a TD report 1.5 carries both" : "a TD report 1.0 has neither"));
  }
  if (q.qe_auth_data.size() > 0xffff) {
    return Error("QE auth data: at most 65535 bytes (u16 size), found " +
                 std::to_string(q.qe_auth_data.size()));
  }

  Bytes cert_data;
  Appender cert(cert_data);
  cert.bytes(encode_qe_report(q.qe_report));
  cert.bytes(q.qe_report_signature);
  cert.u16(static_cast<std::uint16_t>(q.qe_auth_data.size()));
  cert.bytes(q.qe_auth_data);
  cert.u16(q.pck_cert_data_type);
  cert.u32(static_cast<std::uint32_t>(q.pck_cert_data.size()));
  cert.bytes(q.pck_cert_data);

  Bytes out;
  Appender w(out);
  w.u16(h.version);
  w.u16(h.att_key_type);
  w.u32(h.tee_type);
  w.bytes(h.reserved);
  w.bytes(h.qe_vendor_id);
  w.bytes(h.user_data);
  if (q.body_type) {
    w.u16(*q.body_type);
    w.u32(static_cast<std::uint32_t>(v15 ? kTdReport15Size : kTdReport10Size));
  }
  encode_td_report(q.td_report, w);
  constexpr std::size_t kCertDataHeaderSize = 6;  // u16 type, u32 size
  w.u32(static_cast<std::uint32_t>(kEcdsaSignatureSize + kEcdsaPublicKeySize + kCertDataHeaderSize +
                                   cert_data.size()));
  w.bytes(q.signature);
  w.bytes(q.attestation_key);
  w.u16(q.cert_data_type);
  w.u32(static_cast<std::uint32_t>(cert_data.size()));
  w.bytes(cert_data);
  return out;
}

Result<TdxQuote> parse_tdx_quote(ByteView bytes) {
  CLOISTER_TRY(TdxQuote q, decode_tdx_quote(bytes));
  if (!q.format_problems.empty()) return Error(q.format_problems.front());
  return q;
}

}  // namespace cloister::attestation::tdx
