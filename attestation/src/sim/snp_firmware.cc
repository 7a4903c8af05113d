#include "cloister/attestation/sim/snp_firmware.h"

#include <openssl/evp.h>

#include <algorithm>
#include <limits>
#include <memory>

#include "cloister/attestation/snp/cert_table.h"
#include "cloister/common/hex.h"

namespace cloister::attestation::sim {
namespace {

namespace msg = snp::guest_msg;
using snp::Product;

// AES-256-GCM with the SNP message IV (u64 sequence number, four zero bytes).
struct Gcm {
  bool encrypt;
  const Vmpck& key;
  std::uint64_t seqno;

  // Encrypts into `out` and writes the tag, or decrypts into `out` checking `tag`.
  bool run(ByteView aad, ByteView in, Bytes& out, std::uint8_t* tag) const {
    std::array<std::uint8_t, 12> iv{};
    store_le64(iv, 0, seqno);
    std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(),
                                                                        EVP_CIPHER_CTX_free);
    int len = 0;
    out.assign(in.size(), 0);
    if (EVP_CipherInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), iv.data(),
                          encrypt ? 1 : 0) != 1 ||
        EVP_CipherUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1 ||
        EVP_CipherUpdate(ctx.get(), out.data(), &len, in.data(), static_cast<int>(in.size())) != 1)
      return false;
    if (!encrypt &&
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, msg::kAuthTagSize, tag) != 1)
      return false;
    if (EVP_CipherFinal_ex(ctx.get(), out.data() + len, &len) != 1) return false;
    return !encrypt ||
           EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, msg::kAuthTagSize, tag) == 1;
  }
};

// CPUID Fn0000_0001_EAX for a family/model/stepping (research/snp.md §a.4).
std::uint32_t fms_signature(const snp::CpuidInfo& c) {
  const std::uint32_t base_family = std::min<std::uint32_t>(c.family, 0xf);
  const std::uint32_t ext_family = c.family - base_family;
  return (ext_family << 20) | (static_cast<std::uint32_t>(c.model >> 4) << 16) |
         (base_family << 8) | (static_cast<std::uint32_t>(c.model & 0xf) << 4) | c.stepping;
}

GuestRequestResult refuse(std::uint32_t status, std::string error) {
  return {status, std::move(error), {}};
}

}  // namespace

Result<GuestMessage> parse_guest_message(ByteView page) {
  if (page.size() < msg::kHeaderSize) {
    return Error("guest message: " + std::to_string(page.size()) +
                 " bytes, shorter than the 96-byte header");
  }
  GuestMessage m;
  GuestMessageHeader& h = m.header;
  std::copy_n(page.begin(), h.auth_tag.size(), h.auth_tag.begin());
  h.seqno = load_le64(page, msg::kSeqno);
  h.algo = page[msg::kAlgo];
  h.hdr_version = page[msg::kHdrVersion];
  const std::uint16_t hdr_size = load_le16(page, msg::kHdrSize);
  h.msg_type = page[msg::kMsgType];
  h.msg_version = page[msg::kMsgVersion];
  h.msg_size = load_le16(page, msg::kMsgSize);
  h.vmpck = page[msg::kVmpck];
  if (hdr_size != msg::kHeaderSize)
    return Error("guest message HDR_SIZE: expected 0x60, found " + hex_number(hdr_size));
  if (h.algo != msg::kAlgoAes256Gcm)
    return Error("guest message ALGO: expected 1 (AES-256-GCM), found " + std::to_string(h.algo));
  if (h.hdr_version != msg::kHeaderVersion)
    return Error("guest message HDR_VERSION: expected 1, found " + std::to_string(h.hdr_version));
  if (h.vmpck > 3)
    return Error("guest message MSG_VMPCK: expected 0-3, found " + std::to_string(h.vmpck));
  const std::pair<std::size_t, std::size_t> reserved[] = {
      {0x28, 0x30}, {0x38, msg::kVmpck}, {msg::kVmpck + 1, msg::kHeaderSize}};
  for (const auto& [begin, end] : reserved) {
    for (std::size_t i = begin; i < end; ++i) {
      if (page[i] != 0) {
        return Error("guest message: reserved header bytes " + hex_number(begin) + "-" +
                     hex_number(end - 1) + " must be zero, found " + hex_number(page[i]) + " at " +
                     hex_number(i));
      }
    }
  }
  if (h.msg_size > page.size() - msg::kHeaderSize) {
    return Error("guest message MSG_SIZE: " + std::to_string(h.msg_size) + " bytes, only " +
                 std::to_string(page.size() - msg::kHeaderSize) + " follow the header");
  }
  std::copy_n(page.begin() + msg::kAadOffset, msg::kAadSize, m.aad.begin());
  const auto payload = page.subspan(msg::kHeaderSize, h.msg_size);
  m.ciphertext.assign(payload.begin(), payload.end());
  return m;
}

Result<Bytes> seal_guest_message(GuestMessageHeader h, ByteView payload, const Vmpck& vmpck) {
  if (payload.size() > msg::kPageSize - msg::kHeaderSize) {
    return Error("guest message payload: " + std::to_string(payload.size()) +
                 " bytes do not fit a page after the header");
  }
  h.msg_size = static_cast<std::uint16_t>(payload.size());
  Bytes out(msg::kHeaderSize, 0);
  store_le64(out, msg::kSeqno, h.seqno);
  out[msg::kAlgo] = h.algo;
  out[msg::kHdrVersion] = h.hdr_version;
  store_le16(out, msg::kHdrSize, msg::kHeaderSize);
  out[msg::kMsgType] = h.msg_type;
  out[msg::kMsgVersion] = h.msg_version;
  store_le16(out, msg::kMsgSize, h.msg_size);
  out[msg::kVmpck] = h.vmpck;
  Bytes ciphertext;
  if (!Gcm{true, vmpck, h.seqno}.run(ByteView(out).subspan(msg::kAadOffset, msg::kAadSize), payload,
                                     ciphertext, out.data() + msg::kAuthTag))
    return Error("guest message encryption: " + openssl_error());
  out.insert(out.end(), ciphertext.begin(), ciphertext.end());
  return out;
}

Result<Bytes> open_guest_message(const GuestMessage& m, const Vmpck& vmpck) {
  Bytes plaintext;
  std::array<std::uint8_t, 32> tag = m.header.auth_tag;
  if (!Gcm{false, vmpck, m.header.seqno}.run(m.aad, m.ciphertext, plaintext, tag.data())) {
    openssl_error();
    return Error("guest message: the authentication tag does not verify under VMPCK" +
                 std::to_string(m.header.vmpck) + " (wrong key, or the message was altered)");
  }
  return plaintext;
}

Status sign_snp_report(snp::SnpReport& report, const PrivateKey& vek) {
  report.signature_r.fill(0);
  report.signature_s.fill(0);
  CLOISTER_TRY(Bytes bytes, snp::encode_snp_report(report));
  CLOISTER_TRY(EcdsaSignature sig,
               vek.sign_ecdsa(HashAlgorithm::kSha384, ByteView(bytes).first(snp::kSignedSize)));
  // Big-endian scalars into little-endian fields.
  std::copy(sig.r.rbegin(), sig.r.rend(), report.signature_r.begin());
  std::copy(sig.s.rbegin(), sig.s.rend(), report.signature_s.begin());
  CLOISTER_TRY(bytes, snp::encode_snp_report(report));
  std::copy(bytes.begin(), bytes.end(), report.raw.begin());
  return {};
}

SimulatedSnp::SimulatedSnp(SnpPlatformConfig config, SimulatedAmd amd, CertifiedKey vcek)
    : config_(std::move(config)), amd_(std::move(amd)), vcek_(std::move(vcek)) {
  certificate_table_ = snp::encode_cert_table(
      {{snp::guid_for(snp::CertTableRole::kVcek), vcek_.cert.der()},
       {snp::guid_for(snp::CertTableRole::kAskOrAsvk), amd_.ask().cert.der()},
       {snp::guid_for(snp::CertTableRole::kArk), amd_.ark().cert.der()}});
}

Result<SimulatedSnp> SimulatedSnp::open(const StateDir& state, SnpPlatformConfig config) {
  if (auto ok = config.validate(); !ok)
    return ok.error().with_context("simulated SEV-SNP platform");
  CLOISTER_TRY(SimulatedAmd amd, SimulatedAmd::open(state, config.product));
  if (config.chip_id.empty()) config.chip_id = amd.chip_id();
  CLOISTER_TRY(CertifiedKey vcek, amd.vcek(config.chip_id, config.reported_tcb));
  return SimulatedSnp(std::move(config), std::move(amd), std::move(vcek));
}

Result<snp::SnpReport> SimulatedSnp::report(const SnpLaunch& launch,
                                            const std::array<std::uint8_t, 32>& report_id,
                                            std::uint32_t vmpl,
                                            const std::array<std::uint8_t, 64>& report_data) const {
  const Product product = config_.product;
  snp::SnpReport r;
  r.version = 5;
  r.policy = launch.policy;
  r.vmpl = vmpl;
  r.signature_algo = snp::kSignatureAlgoEcdsaP384Sha384;
  CLOISTER_TRY(r.current_tcb, snp::TcbVersion::from_parts(product, config_.current_tcb));
  CLOISTER_TRY(r.reported_tcb, snp::TcbVersion::from_parts(product, config_.reported_tcb));
  CLOISTER_TRY(r.committed_tcb, snp::TcbVersion::from_parts(product, config_.committed_tcb));
  CLOISTER_TRY(r.launch_tcb, snp::TcbVersion::from_parts(product, config_.launch_tcb));
  r.platform_info = config_.platform_info;
  r.report_data = report_data;
  r.measurement = launch.measurement;
  r.host_data = launch.host_data;
  if (const auto& id = launch.id_block) {
    r.guest_svn = id->guest_svn;
    r.family_id = id->family_id;
    r.image_id = id->image_id;
    r.id_key_digest = id->id_key_digest;
    if (id->author_key_digest) {
      r.author_key_digest = *id->author_key_digest;
      r.signer_info |= snp::kSignerInfoAuthorKeyEn;
    }
  }
  r.report_id = report_id;
  r.report_id_ma.fill(0xff);  // no migration agent
  r.cpuid = simulated_cpuid(product);
  std::copy(config_.chip_id.begin(), config_.chip_id.end(), r.chip_id.begin());
  r.current_version = config_.current_firmware;
  r.committed_version = config_.committed_firmware;
  r.launch_mit_vector = 0;
  r.current_mit_vector = 0;
  CLOISTER_CHECK_OK(sign_snp_report(r, vcek_.key));
  return r;
}

SnpGuest::SnpGuest(const SimulatedSnp& platform, SnpLaunch launch)
    : platform_(platform), launch_(std::move(launch)) {
  for (auto& key : vmpcks_) {
    const Bytes fresh = random_bytes(key.size());
    std::copy(fresh.begin(), fresh.end(), key.begin());
  }
  const Bytes id = random_bytes(report_id_.size());
  std::copy(id.begin(), id.end(), report_id_.begin());
}

Bytes SnpGuest::secrets_page() const {
  Bytes page(snp::secrets::kPageSize, 0);
  store_le32(page, snp::secrets::kVersion, 3);
  store_le32(page, snp::secrets::kFms, fms_signature(simulated_cpuid(platform_.config().product)));
  for (std::size_t i = 0; i < vmpcks_.size(); ++i) {
    std::copy(vmpcks_[i].begin(), vmpcks_[i].end(),
              page.begin() + static_cast<std::ptrdiff_t>(snp::secrets::kVmpck0 +
                                                         i * snp::secrets::kVmpckSize));
  }
  return page;
}

GuestRequestResult SnpGuest::guest_request(ByteView request_page) {
  auto parsed = parse_guest_message(request_page);
  if (!parsed) return refuse(snp::kStatusInvalidParam, parsed.error().message());
  const GuestMessageHeader& h = parsed->header;
  const unsigned n = h.vmpck;
  std::lock_guard lock(mutex_);
  if (last_seqno_[n] >= std::numeric_limits<std::uint64_t>::max() - 1) {
    return refuse(snp::kStatusAeadOflow,
                  "VMPCK" + std::to_string(n) + "'s message sequence numbers are exhausted");
  }
  const std::uint64_t expected = last_seqno_[n] + 1;
  if (h.seqno != expected) {
    return refuse(snp::kStatusAeadOflow,
                  "MSG_SEQNO " + std::to_string(h.seqno) + " under VMPCK" + std::to_string(n) +
                      ": expected " + std::to_string(expected) +
                      (h.seqno < expected ? " (a replayed request)" : " (a skipped number)"));
  }
  auto payload = open_guest_message(*parsed, vmpcks_[n]);
  if (!payload) return refuse(snp::kStatusInvalidParam, payload.error().message());
  if (h.msg_type != msg::kTypeReportReq || h.msg_version != msg::kMsgVersion1) {
    return refuse(snp::kStatusInvalidParam,
                  "MSG_TYPE " + std::to_string(h.msg_type) + " version " +
                      std::to_string(h.msg_version) +
                      ": the simulated firmware serves MSG_REPORT_REQ (5) version 1 only");
  }
  if (payload->size() != msg::kReportReqSize) {
    return refuse(snp::kStatusInvalidParam,
                  "MSG_REPORT_REQ: expected 96 bytes, found " + std::to_string(payload->size()));
  }

  std::array<std::uint8_t, 64> report_data{};
  std::copy_n(payload->begin(), report_data.size(), report_data.begin());
  const std::uint32_t vmpl = load_le32(*payload, msg::kReportReqVmpl);
  const std::uint32_t key_sel = load_le32(*payload, msg::kReportReqKeySel);
  Bytes response(msg::kReportRspSize, 0);
  std::string refused;
  if (vmpl < n || vmpl > 3) {
    refused = "VMPL " + std::to_string(vmpl) + ": a request under VMPCK" + std::to_string(n) +
              " may ask for VMPL " + std::to_string(n) + "-3";
  } else if (key_sel > 1) {
    refused = "KEY_SEL " + std::to_string(key_sel) +
              ": the simulated firmware signs with its VCEK "
              "(0 or 1); it has no VLEK";
  } else if (!is_all_zero(ByteView(*payload).subspan(msg::kReportReqKeySel + 4))) {
    refused = "MSG_REPORT_REQ: reserved bytes 0x48-0x5f must be zero";
  }
  if (refused.empty()) {
    auto report = platform_.report(launch_, report_id_, vmpl, report_data);
    if (!report) return refuse(snp::kStatusInvalidParam, report.error().message());
    store_le32(response, 4, static_cast<std::uint32_t>(snp::kReportSize));
    std::copy(report->raw.begin(), report->raw.end(), response.begin() + msg::kReportRspReport);
  } else {
    store_le32(response, 0, snp::kStatusInvalidParam);
  }
  GuestMessageHeader rh;
  rh.seqno = h.seqno + 1;
  rh.msg_type = msg::kTypeReportRsp;
  rh.msg_version = h.msg_version;
  rh.vmpck = h.vmpck;
  auto sealed = seal_guest_message(rh, response, vmpcks_[n]);
  if (!sealed) return refuse(snp::kStatusInvalidParam, sealed.error().message());
  last_seqno_[n] = rh.seqno;
  return {snp::kStatusSuccess, refused, std::move(sealed).value()};
}

ExtGuestRequestResult SnpGuest::ext_guest_request(ByteView request_page,
                                                  std::uint64_t certificate_pages) {
  ExtGuestRequestResult out;
  const Bytes& table = platform_.certificate_table();
  out.pages_needed = table.size() / msg::kPageSize;
  if (certificate_pages < out.pages_needed) {
    out.vmm_error = kVmmErrorInvalidLen;
    return out;
  }
  out.request = guest_request(request_page);
  if (out.request.firmware_status == snp::kStatusSuccess) out.certificates = table;
  return out;
}

}  // namespace cloister::attestation::sim
