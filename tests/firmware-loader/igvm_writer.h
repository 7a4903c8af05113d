// Writes IGVM files (format version 1) for tests and fuzz seeds, from the layout documented in
// microsoft/igvm igvm_defs (docs/measure.md restates it):
//
//   fixed header (24 bytes)   "IGVM", format_version 1, variable_header_offset = 24,
//                             variable_header_size, total_file_size, CRC-32 checksum of the
//                             fixed header (checksum field zero) and the variable headers
//   variable headers          {u32 type, u32 length, structure}, each padded with zeros to a
//                             multiple of 8 bytes; platform, then initialization, then
//                             directive headers
//   file data                 page contents referenced by absolute file_offset
//
// The CRC-32 here is a separate bitwise implementation, independent of the library's table.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cloister/common/bytes.h"
#include "cloister/firmware_loader/launch_plan.h"

namespace cloister::testing {

class IgvmWriter {
 public:
  static constexpr std::uint32_t kSnpMask = 0x1;
  static constexpr std::uint32_t kTdxMask = 0x2;  // for files with a second (TDX) platform

  IgvmWriter& platform(std::uint32_t mask, std::uint8_t type, std::uint16_t version = 1,
                       std::uint8_t highest_vtl = 0);
  IgvmWriter& guest_policy(std::uint64_t policy, std::uint32_t mask = kSnpMask);
  // `data` empty: file_offset 0 (a page without data).
  IgvmWriter& page_data(std::uint64_t gpa, ByteView data, std::uint32_t flags = 0,
                        std::uint16_t data_type = 0, std::uint32_t mask = kSnpMask);
  IgvmWriter& vp_context(std::uint64_t gpa, std::uint16_t vp_index, ByteView vmsa,
                         std::uint32_t mask = kSnpMask);
  IgvmWriter& parameter_area(std::uint64_t size, std::uint32_t index, ByteView initial = {});
  IgvmWriter& parameter_insert(std::uint64_t gpa, std::uint32_t index,
                               std::uint32_t mask = kSnpMask);
  IgvmWriter& parameter(std::uint32_t type, std::uint32_t index, std::uint32_t byte_offset);
  IgvmWriter& required_memory(std::uint64_t gpa, std::uint32_t size, std::uint32_t mask = kSnpMask);
  // A 696-byte IGVM_VHS_SNP_ID_BLOCK with the given launch digest and recognisable key bytes.
  IgvmWriter& snp_id_block(const Sha384Digest& ld, std::uint32_t mask = kSnpMask);
  // Any header, verbatim (for malformed files).
  IgvmWriter& raw_header(std::uint32_t type, Bytes content);
  // The directives that launch `plan` (an SNP plan without seeded ops) on the platform `mask`:
  // each page op becomes 4 KiB PAGE_DATA directives (NORMAL with data, ZERO as pages without
  // data, UNMEASURED / SECRETS / CPUID by flag and type), each VMSA a VP_CONTEXT at
  // 0xFFFFFFFFF000.
  IgvmWriter& snp_plan(const fw::LaunchPlan& plan, std::uint32_t mask = kSnpMask);

  Bytes build() const;

 private:
  struct Header {
    std::uint32_t type;
    Bytes content;
    // Patched to the absolute file offset of `data` at build(), when `data_at` is set.
    std::optional<std::size_t> data_at;
    Bytes data;
  };
  std::vector<Header> headers_;
};

// An IGVM file with one SEV_SNP platform that launches exactly `plan` (IgvmWriter::snp_plan),
// with a guest policy and, when `id_block_ld` is given, an SNP_ID_BLOCK expecting that launch
// digest.
Bytes igvm_from_snp_plan(const fw::LaunchPlan& plan, std::uint64_t policy = 0x30000,
                         std::optional<Sha384Digest> id_block_ld = std::nullopt);

// Bitwise CRC-32 (ISO-HDLC).
std::uint32_t crc32_bitwise(ByteView data, std::uint32_t crc = 0);

// Writes the fixed header's checksum again, for a file a test changed after build().
void reseal_igvm(Bytes& file);

}  // namespace cloister::testing
