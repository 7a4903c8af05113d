// Constants of the edk2 OVMF reset-vector metadata (private to firmware-loader).
//
// Sources: tianocore/edk2 OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.nasm.inc (the GUIDed footer
// table), OvmfPkg/ResetVector/X64/OvmfSevMetadata.nasm.inc ("ASEV"),
// OvmfPkg/ResetVector/X64/IntelTdxMetadata.nasm.inc ("TDVF"); QEMU hw/i386/pc_sysfw_ovmf.c and
// hw/i386/tdvf.c (the consumers); COCONUT-SVSM's footer entry as sev-snp-measure reads it.
#pragma once

#include <cstdint>

#include "cloister/firmware_loader/guid.h"

namespace cloister::fw::edk2 {

// The table ends 32 bytes before the end of the image; the last entry of the table is the
// footer {u16 total table size, GUID}. Every entry is {data..., u16 size, GUID}, `size`
// counting data plus the 18-byte {size, GUID} trailer.
inline constexpr std::size_t kFooterGap = 32;
inline constexpr std::size_t kEntryTrailerSize = 2 + Guid::kSize;
inline constexpr Guid kFooterTableGuid = Guid::literal("96b582de-1fb2-45f7-baea-a366c55a082d");

// Footer table entries.
inline constexpr Guid kSevEsResetBlockGuid = Guid::literal("00f771de-1a7e-4fcb-890e-68c77e2fb44e");
inline constexpr Guid kSevHashTableGuid = Guid::literal("7255371f-3a3b-4b04-927b-1da6efa8d454");
inline constexpr Guid kSevSecretBlockGuid = Guid::literal("4c2eb361-7d9b-4cc3-8081-127c90d3d294");
inline constexpr Guid kSevMetadataOffsetGuid =
    Guid::literal("dc886566-984a-4798-a75e-5585a7bf67cc");
inline constexpr Guid kTdxMetadataOffsetGuid =
    Guid::literal("e47a6535-984a-4798-865e-4685a7bf8ec2");
// COCONUT-SVSM: u32 entry point offset from the start of the SVSM image.
inline constexpr Guid kSvsmInfoGuid = Guid::literal("a789a612-0597-4c4b-a49f-cbb1fe9d1ddd");

// Both metadata formats start with {char[4] signature, u32 length, u32 version = 1,
// u32 number of sections}.
inline constexpr std::size_t kMetadataHeaderSize = 16;
inline constexpr std::uint32_t kMetadataVersion = 1;

// "ASEV" SEV metadata: the header, then {u32 gpa, u32 size, u32 type} per section.
inline constexpr std::uint32_t kSevMetadataSignature = 0x56455341;  // "ASEV"
inline constexpr std::size_t kSevMetadataSectionSize = 12;

// "TDVF" TDX metadata: the 16-byte metadata GUID, the header (length = 16 + 32 * n), then
// {u32 DataOffset, u32 RawDataSize, u64 MemoryAddress, u64 MemoryDataSize, u32 Type,
// u32 Attributes} per section.
inline constexpr Guid kTdxMetadataGuid = Guid::literal("e9eaf9f3-168e-44d5-a8eb-7f4d8738f6ae");
inline constexpr std::uint32_t kTdvfSignature = 0x46564454;  // "TDVF"
inline constexpr std::size_t kTdvfSectionSize = 32;
inline constexpr std::uint32_t kTdvfAttributeMrExtend = 1u << 0;
inline constexpr std::uint32_t kTdvfAttributePageAug = 1u << 1;

// SEV hashes table (OvmfPkg/AmdSev/BlobVerifierLibSevHashes; QEMU target/i386/sev.c
// SevHashTable): {GUID, u16 length = 168, then cmdline, initrd and kernel entries
// {GUID, u16 length = 50, SHA-256}}, padded with zeros to a multiple of 16.
inline constexpr Guid kSevHashTableHeaderGuid =
    Guid::literal("9438d606-4f22-4cc9-b479-a793d411fd21");
inline constexpr Guid kSevCmdlineEntryGuid = Guid::literal("97d02dd8-bd20-4c94-aa78-e7714d36ab2a");
inline constexpr Guid kSevInitrdEntryGuid = Guid::literal("44baf731-3a2f-4bd7-9af1-41e29169781d");
inline constexpr Guid kSevKernelEntryGuid = Guid::literal("4de79437-abd2-427f-b835-d5b172d2045b");
inline constexpr std::size_t kSevHashEntrySize = Guid::kSize + 2 + 32;
inline constexpr std::size_t kSevHashTableUnpaddedSize = Guid::kSize + 2 + 3 * kSevHashEntrySize;

}  // namespace cloister::fw::edk2
