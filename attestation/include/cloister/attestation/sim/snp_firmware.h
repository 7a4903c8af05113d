// The simulated AMD secure processor (PSP) as an SEV-SNP guest sees it: the secrets page it
// fills at launch, and SNP_GUEST_REQUEST for MSG_REPORT_REQ, answering with an
// ATTESTATION_REPORT (v5 layout) signed by the simulated VCEK, encrypted under the guest's
// VMPCK (SNP firmware ABI 56860, "Guest Messages"; GHCB 56421 for the extended request).
//
// Requests arrive as raw bytes the guest wrote: every field is length- and range-checked and a
// malformed request gets the firmware status the hardware gives, never a crash.
#pragma once

#include <array>
#include <mutex>
#include <optional>

#include "cloister/attestation/sim/amd.h"
#include "cloister/attestation/sim/config.h"
#include "cloister/attestation/snp/abi.h"

namespace cloister::attestation::sim {

using Vmpck = std::array<std::uint8_t, 32>;

// ---- Guest messages ------------------------------------------------------------------------

struct GuestMessageHeader {
  std::array<std::uint8_t, 32> auth_tag{};
  std::uint64_t seqno = 0;
  std::uint8_t algo = snp::guest_msg::kAlgoAes256Gcm;
  std::uint8_t hdr_version = snp::guest_msg::kHeaderVersion;
  std::uint8_t msg_type = 0;
  std::uint8_t msg_version = snp::guest_msg::kMsgVersion1;
  std::uint16_t msg_size = 0;
  std::uint8_t vmpck = 0;
};

struct GuestMessage {
  GuestMessageHeader header;
  std::array<std::uint8_t, snp::guest_msg::kAadSize> aad{};  // header bytes 0x30-0x5F
  Bytes ciphertext;                                          // msg_size bytes
};

// Parses a guest message (a request page as the guest wrote it): at least the 96-byte header,
// HDR_SIZE 0x60, ALGO 1 (AES-256-GCM), HDR_VERSION 1, reserved header bytes zero, MSG_VMPCK
// 0-3, and MSG_SIZE bytes of payload within the page. Bytes after the payload are ignored.
Result<GuestMessage> parse_guest_message(ByteView page);

// The message bytes (header and ciphertext) of `payload` encrypted under `vmpck` with the
// header's sequence number as IV; the header's auth_tag and msg_size are computed.
Result<Bytes> seal_guest_message(GuestMessageHeader header, ByteView payload, const Vmpck& vmpck);

// The payload of a parsed message, decrypted and authenticated with `vmpck`.
Result<Bytes> open_guest_message(const GuestMessage& message, const Vmpck& vmpck);

// ---- The platform --------------------------------------------------------------------------

// What the firmware was given for a guest at SNP_LAUNCH_START/SNP_LAUNCH_FINISH.
struct SnpIdBlock {  // the ID block's fields, with the digests of the keys that signed it
  std::array<std::uint8_t, 16> family_id{};
  std::array<std::uint8_t, 16> image_id{};
  std::uint32_t guest_svn = 0;
  std::array<std::uint8_t, 48> id_key_digest{};
  std::optional<std::array<std::uint8_t, 48>> author_key_digest;  // AUTHOR_KEY_EN when set
};

struct SnpLaunch {
  std::array<std::uint8_t, 48> measurement{};  // the launch digest
  std::uint64_t policy = 0x30000;              // GUEST_POLICY: SMT allowed, bit 17
  std::array<std::uint8_t, 32> host_data{};
  std::optional<SnpIdBlock> id_block;
};

// Signs `report` with `vek` as the firmware does: ECDSA P-384/SHA-384 over the encoded bytes
// 0x000-0x29F, R and S little-endian in the 72-byte SIGNATURE fields; sets signature_r,
// signature_s and raw.
Status sign_snp_report(snp::SnpReport& report, const PrivateKey& vek);

// One host's simulated AMD secure processor: its hierarchy, its configuration (with the chip ID
// filled in) and the VCEK for (CHIP_ID, REPORTED_TCB).
class SimulatedSnp {
 public:
  static Result<SimulatedSnp> open(const StateDir& state, SnpPlatformConfig config);

  const SnpPlatformConfig& config() const { return config_; }
  const SimulatedAmd& amd() const { return amd_; }
  const CertifiedKey& vcek() const { return vcek_; }

  // The signed report for a guest: launch values, `report_id`, the VMPL and REPORT_DATA of the
  // request, and the platform's TCBs, PLATFORM_INFO, CHIP_ID, CPUID and firmware versions.
  Result<snp::SnpReport> report(const SnpLaunch& launch,
                                const std::array<std::uint8_t, 32>& report_id, std::uint32_t vmpl,
                                const std::array<std::uint8_t, 64>& report_data) const;

  // The extended request's certificate table (GHCB): VCEK, ASK, ARK (DER), page-padded.
  const Bytes& certificate_table() const { return certificate_table_; }

 private:
  SimulatedSnp(SnpPlatformConfig config, SimulatedAmd amd, CertifiedKey vcek);

  SnpPlatformConfig config_;
  SimulatedAmd amd_;
  CertifiedKey vcek_;
  Bytes certificate_table_;
};

// ---- One guest -----------------------------------------------------------------------------

struct GuestRequestResult {
  std::uint32_t firmware_status = snp::kStatusSuccess;  // for SW_EXITINFO2's lower half
  // Why the request was refused, by the firmware status or by the response's STATUS field.
  std::string error;
  Bytes response;  // the encrypted response message, when the firmware status is success
};

struct ExtGuestRequestResult {
  // GHCB "VMM errors" (SW_EXITINFO2's upper half): 0, or INVALID_LEN when the guest's
  // certificate buffer is smaller than `pages_needed` pages; the request is then not processed
  // (its sequence number stays unused) and `request` is empty.
  std::uint32_t vmm_error = 0;
  std::uint64_t pages_needed = 0;
  Bytes certificates;  // the certificate table, when the request succeeded
  GuestRequestResult request;
};
inline constexpr std::uint32_t kVmmErrorInvalidLen = 1;

// The firmware's state for one launched guest: VMPCK0-3 (fresh random keys), each VMPCK's
// message sequence counter, the REPORT_ID (random, from launch), and its launch values.
// Thread-safe. `platform` must outlive it.
class SnpGuest {
 public:
  SnpGuest(const SimulatedSnp& platform, SnpLaunch launch);

  // The 4 KiB secrets page the firmware writes at launch: VERSION 3, FMS (the product's CPUID
  // family/model/stepping signature), VMPCK0-3; everything else zero (the OS area is the
  // guest's).
  Bytes secrets_page() const;
  const Vmpck& vmpck(unsigned index) const { return vmpcks_.at(index); }
  const std::array<std::uint8_t, 32>& report_id() const { return report_id_; }

  // SNP_GUEST_REQUEST: `request_page` holds an snp_guest_msg. A MSG_REPORT_REQ under VMPCK n
  // whose sequence number is one more than the last response under n (the first request is 1)
  // gets an encrypted MSG_REPORT_RSP with sequence number + 1. Refused with AEAD_OFLOW: a
  // replayed, skipped or exhausted sequence number. Refused with INVALID_PARAM: a malformed
  // header, an authentication failure, another message type or version, a payload of another
  // size. A request the firmware accepts but cannot serve (VMPL below n or above 3, KEY_SEL not
  // 0 or 1, reserved bytes set) gets a response with STATUS INVALID_PARAM and no report.
  GuestRequestResult guest_request(ByteView request_page);

  // SNP_EXT_GUEST_REQUEST: as guest_request(), with the certificate table when the guest's
  // buffer holds `certificate_pages` 4 KiB pages or more.
  ExtGuestRequestResult ext_guest_request(ByteView request_page, std::uint64_t certificate_pages);

 private:
  const SimulatedSnp& platform_;
  SnpLaunch launch_;
  std::array<Vmpck, 4> vmpcks_;
  std::array<std::uint8_t, 32> report_id_{};
  std::mutex mutex_;  // guards last_seqno_
  std::array<std::uint64_t, 4> last_seqno_{};
};

}  // namespace cloister::attestation::sim
