// The TPM 2.0 quote a TPM (or a vTPM such as Azure's) signs: a marshalled TPMS_ATTEST of type
// TPM_ST_ATTEST_QUOTE (TPM 2.0 Library Part 2 §10.12.12, big-endian), and the PCR values it
// commits to through pcrDigest.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cloister/common/bytes.h"

namespace cloister::attestation::tpm {

// TPMS_PCR_SELECTION (§10.6.2): a hash algorithm and a bitmap, PCR i at byte i/8, bit i%8.
struct PcrSelection {
  std::uint16_t hash = 0;
  Bytes bitmap;  // sizeofSelect bytes
  // The selected PCR indexes, ascending.
  std::vector<unsigned> pcrs() const;
};

// TPMS_ATTEST (§10.12.12) with TPMS_QUOTE_INFO (§10.12.4) as its attested member.
struct TpmsAttest {
  std::uint32_t magic = 0;
  std::uint16_t type = 0;
  Bytes qualified_signer;  // TPM2B_NAME contents
  Bytes extra_data;        // TPM2B_DATA contents: the caller's nonce
  std::uint64_t clock = 0;
  std::uint32_t reset_count = 0;
  std::uint32_t restart_count = 0;
  bool safe = false;
  std::uint64_t firmware_version = 0;
  std::vector<PcrSelection> pcr_select;  // TPML_PCR_SELECTION
  Bytes pcr_digest;                      // TPM2B_DIGEST contents

  // The selected PCRs in the order their values are concatenated for pcrDigest: selection by
  // selection, ascending within each (TPM 2.0 Library Part 1 §17.6.2). Each entry is (hash
  // algorithm, PCR index).
  std::vector<std::pair<std::uint16_t, unsigned>> selected_pcrs() const;
};

// Parses a quote's TPMS_ATTEST. Every length is checked before it is read; rejected, naming the
// field: a magic other than TPM_GENERATED_VALUE, a type other than TPM_ST_ATTEST_QUOTE, a
// TPM2B larger than its TPMU allows (name 68 bytes, data and digest 64), more than 16 PCR
// selections or a sizeofSelect over 32 bytes, and any byte left after pcrDigest (the message
// is consumed exactly).
Result<TpmsAttest> parse_tpms_attest(ByteView message);

// "TPM_ALG_SHA256", … or "0x…" for another algorithm.
std::string alg_name(std::uint16_t alg);

// The digest size of a hash algorithm this library knows, 0 for others.
std::size_t alg_digest_size(std::uint16_t alg);

}  // namespace cloister::attestation::tpm
