#include "ovmf_builder.h"

#include <algorithm>
#include <cassert>

namespace cloister::testing {

Bytes le32(std::uint32_t value) {
  Bytes out(4);
  store_le32(out, 0, value);
  return out;
}

OvmfImageBuilder amdsev_like_image(std::size_t size) {
  OvmfImageBuilder b(size);
  b.reset_eip(0x80b004)
      .hash_table(0x810c00, 0x400)
      .sev_metadata({{0x800000, 0x9000, 1},
                     {0x80d000, 0x1000, 2},
                     {0x80e000, 0x1000, 3},
                     {0x80f000, 0x1000, 4},
                     {0x810000, 0x1000, 0x10}});
  return b;
}

OvmfImageBuilder tdvf_like_image(std::uint32_t hob_attributes) {
  OvmfImageBuilder b(0x4000);
  b.tdx_metadata({{0x2000, 0x2000, 0xffffe000, 0x2000, 0, 1},
                  {0x0, 0x1000, 0xffffc000, 0x1000, 1, 0},
                  {0, 0, 0x810000, 0x10000, 3, 0},
                  {0, 0, 0x80b000, 0x2000, 3, 0},
                  {0, 0, 0x809000, 0x2000, 2, hob_attributes},
                  {0, 0, 0x800000, 0x6000, 3, 0}});
  return b;
}

OvmfImageBuilder& OvmfImageBuilder::entry(const fw::Guid& guid, Bytes data) {
  entries_.emplace_back(guid, std::move(data));
  return *this;
}

OvmfImageBuilder& OvmfImageBuilder::reset_eip(std::uint32_t eip) {
  return entry(guids::kResetBlock, le32(eip));
}

OvmfImageBuilder& OvmfImageBuilder::hash_table(std::uint32_t gpa, std::uint32_t size) {
  Bytes data = le32(gpa);
  const Bytes s = le32(size);
  data.insert(data.end(), s.begin(), s.end());
  return entry(guids::kHashTable, data);
}

OvmfImageBuilder& OvmfImageBuilder::svsm_entry(std::uint32_t offset) {
  return entry(guids::kSvsmInfo, le32(offset));
}

OvmfImageBuilder& OvmfImageBuilder::sev_metadata(std::vector<SevSectionSpec> sections) {
  sev_ = std::move(sections);
  return entry(guids::kSevMetadata, le32(0x800));
}

OvmfImageBuilder& OvmfImageBuilder::tdx_metadata(std::vector<TdvfSectionSpec> sections) {
  tdx_ = std::move(sections);
  return entry(guids::kTdxMetadata, le32(0xC00 - 16));
}

OvmfImageBuilder& OvmfImageBuilder::no_table() {
  table_ = false;
  return *this;
}

Bytes OvmfImageBuilder::build() const {
  assert(size_ % 0x1000 == 0 && size_ >= 0x2000);
  Bytes image(size_);
  for (std::size_t i = 0; i < size_; ++i) image[i] = static_cast<std::uint8_t>(i * 7 + 3);
  if (!table_) return image;

  if (sev_) {
    const std::size_t at = sev_metadata_offset();
    store_le32(image, at, 0x56455341);  // "ASEV"
    store_le32(image, at + 4, static_cast<std::uint32_t>(16 + 12 * sev_->size()));
    store_le32(image, at + 8, 1);
    store_le32(image, at + 12, static_cast<std::uint32_t>(sev_->size()));
    for (std::size_t i = 0; i < sev_->size(); ++i) {
      store_le32(image, at + 16 + 12 * i, (*sev_)[i].gpa);
      store_le32(image, at + 20 + 12 * i, (*sev_)[i].size);
      store_le32(image, at + 24 + 12 * i, (*sev_)[i].type);
    }
  }
  if (tdx_) {
    const std::size_t at = tdvf_descriptor_offset();
    std::copy(guids::kTdvf.stored().begin(), guids::kTdvf.stored().end(),
              image.begin() + static_cast<std::ptrdiff_t>(at - 16));
    store_le32(image, at, 0x46564454);  // "TDVF"
    store_le32(image, at + 4, static_cast<std::uint32_t>(16 + 32 * tdx_->size()));
    store_le32(image, at + 8, 1);
    store_le32(image, at + 12, static_cast<std::uint32_t>(tdx_->size()));
    for (std::size_t i = 0; i < tdx_->size(); ++i) {
      const TdvfSectionSpec& s = (*tdx_)[i];
      const std::size_t e = at + 16 + 32 * i;
      store_le32(image, e, s.data_offset);
      store_le32(image, e + 4, s.raw_data_size);
      store_le64(image, e + 8, s.memory_address);
      store_le64(image, e + 16, s.memory_data_size);
      store_le32(image, e + 24, s.type);
      store_le32(image, e + 28, s.attributes);
    }
  }

  // Entries are written backwards from the footer, the last added nearest to it.
  std::size_t cursor = size_ - 0x32;
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    const std::size_t entry_size = it->second.size() + 18;
    cursor -= entry_size;
    std::copy(it->second.begin(), it->second.end(), image.begin() + static_cast<long>(cursor));
    store_le16(image, cursor + it->second.size(), static_cast<std::uint16_t>(entry_size));
    std::copy(it->first.stored().begin(), it->first.stored().end(),
              image.begin() + static_cast<long>(cursor + it->second.size() + 2));
  }
  const std::size_t table_size = (size_ - 0x32) - cursor + 18;
  store_le16(image, size_ - 0x32, static_cast<std::uint16_t>(table_size));
  std::copy(guids::kFooter.stored().begin(), guids::kFooter.stored().end(),
            image.begin() + static_cast<long>(size_ - 0x30));
  return image;
}

}  // namespace cloister::testing
