#include "igvm_writer.h"

#include <algorithm>
#include <cassert>

namespace cloister::testing {
namespace {

void put16(Bytes& b, std::uint16_t v) {
  for (int i = 0; i < 2; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void put32(Bytes& b, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void put64(Bytes& b, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

}  // namespace

std::uint32_t crc32_bitwise(ByteView data, std::uint32_t crc) {
  crc = ~crc;
  for (std::uint8_t byte : data) {
    crc ^= byte;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void reseal_igvm(Bytes& file) {
  store_le32(file, 20, 0);
  const std::uint32_t var_size = load_le32(file, 12);
  store_le32(file, 20,
             crc32_bitwise(ByteView(file).subspan(24, var_size),
                           crc32_bitwise(ByteView(file).subspan(0, 24))));
}

IgvmWriter& IgvmWriter::platform(std::uint32_t mask, std::uint8_t type, std::uint16_t version,
                                 std::uint8_t highest_vtl) {
  Bytes c;
  put32(c, mask);
  c.push_back(highest_vtl);
  c.push_back(type);
  put16(c, version);
  put64(c, 0);
  return raw_header(0x1, c);
}

IgvmWriter& IgvmWriter::guest_policy(std::uint64_t policy, std::uint32_t mask) {
  Bytes c;
  put64(c, policy);
  put32(c, mask);
  put32(c, 0);
  return raw_header(0x101, c);
}

IgvmWriter& IgvmWriter::page_data(std::uint64_t gpa, ByteView data, std::uint32_t flags,
                                  std::uint16_t data_type, std::uint32_t mask) {
  Bytes c;
  put64(c, gpa);
  put32(c, mask);
  put32(c, 0);  // file_offset, patched when there is data
  put32(c, flags);
  put16(c, data_type);
  put16(c, 0);
  Header h{0x302, c, std::nullopt, {}};
  if (!data.empty()) {
    h.data_at = 12;
    h.data.assign(data.begin(), data.end());
    h.data.resize(fw::kPageSize, 0);
  }
  headers_.push_back(std::move(h));
  return *this;
}

IgvmWriter& IgvmWriter::vp_context(std::uint64_t gpa, std::uint16_t vp_index, ByteView vmsa,
                                   std::uint32_t mask) {
  Bytes c;
  put64(c, gpa);
  put32(c, mask);
  put32(c, 0);
  put16(c, vp_index);
  put16(c, 0);
  headers_.push_back({0x304, c, 12, Bytes(vmsa.begin(), vmsa.end())});
  return *this;
}

IgvmWriter& IgvmWriter::parameter_area(std::uint64_t size, std::uint32_t index, ByteView initial) {
  Bytes c;
  put64(c, size);
  put32(c, index);
  put32(c, 0);
  Header h{0x301, c, std::nullopt, {}};
  if (!initial.empty()) {
    h.data_at = 12;
    h.data.assign(initial.begin(), initial.end());
  }
  headers_.push_back(std::move(h));
  return *this;
}

IgvmWriter& IgvmWriter::parameter_insert(std::uint64_t gpa, std::uint32_t index,
                                         std::uint32_t mask) {
  Bytes c;
  put64(c, gpa);
  put32(c, mask);
  put32(c, index);
  return raw_header(0x303, c);
}

IgvmWriter& IgvmWriter::parameter(std::uint32_t type, std::uint32_t index,
                                  std::uint32_t byte_offset) {
  Bytes c;
  put32(c, index);
  put32(c, byte_offset);
  return raw_header(type, c);
}

IgvmWriter& IgvmWriter::required_memory(std::uint64_t gpa, std::uint32_t size, std::uint32_t mask) {
  Bytes c;
  put64(c, gpa);
  put32(c, mask);
  put32(c, size);
  put32(c, 0);
  put32(c, 0);
  return raw_header(0x305, c);
}

IgvmWriter& IgvmWriter::snp_id_block(const Sha384Digest& ld, std::uint32_t mask) {
  Bytes c(696, 0);
  store_le32(c, 0, mask);
  std::copy(ld.begin(), ld.end(), c.begin() + 8);
  for (std::size_t i = 0; i < 16; ++i) c[56 + i] = static_cast<std::uint8_t>(0xF0 + i);  // family
  store_le32(c, 92, 7);   // guest_svn
  store_le32(c, 96, 1);   // id key algorithm: ECDSA P-384
  c[104] = 0x11;          // id key signature r[0]
  store_le32(c, 248, 2);  // id public key curve: P-384
  c[256] = 0x22;          // qx[0]
  c[256 + 72] = 0x33;     // qy[0]
  return raw_header(0x30B, c);
}

IgvmWriter& IgvmWriter::raw_header(std::uint32_t type, Bytes content) {
  headers_.push_back({type, std::move(content), std::nullopt, {}});
  return *this;
}

Bytes IgvmWriter::build() const {
  std::size_t var_size = 0;
  for (const Header& h : headers_) var_size += 8 + ((h.content.size() + 7) & ~std::size_t{7});
  Bytes vars;
  Bytes data;
  const std::size_t data_start = 24 + var_size;
  for (const Header& h : headers_) {
    Bytes content = h.content;
    if (h.data_at) {
      store_le32(content, *h.data_at, static_cast<std::uint32_t>(data_start + data.size()));
      data.insert(data.end(), h.data.begin(), h.data.end());
    }
    put32(vars, h.type);
    put32(vars, static_cast<std::uint32_t>(content.size()));
    vars.insert(vars.end(), content.begin(), content.end());
    vars.resize((vars.size() + 7) & ~std::size_t{7}, 0);
  }
  assert(vars.size() == var_size);
  Bytes file;
  put32(file, 0x4D564749);
  put32(file, 1);
  put32(file, 24);
  put32(file, static_cast<std::uint32_t>(var_size));
  put32(file, static_cast<std::uint32_t>(data_start + data.size()));
  put32(file, 0);
  const std::uint32_t crc = crc32_bitwise(vars, crc32_bitwise(file));
  store_le32(file, 20, crc);
  file.insert(file.end(), vars.begin(), vars.end());
  file.insert(file.end(), data.begin(), data.end());
  return file;
}

IgvmWriter& IgvmWriter::snp_plan(const fw::LaunchPlan& plan, std::uint32_t mask) {
  for (const fw::LaunchOp& op : plan.ops()) {
    assert(!op.seeded);
    if (op.type == fw::PageType::kVmsa) {
      vp_context(fw::kSnpVmsaGpa, static_cast<std::uint16_t>(op.vcpu), op.data, mask);
      continue;
    }
    fw::for_each_page(op, [&](std::uint64_t gpa, ByteView page) {
      switch (op.type) {
        case fw::PageType::kNormal:
          page_data(gpa, page, 0, 0, mask);
          break;
        case fw::PageType::kZero:
          page_data(gpa, {}, 0, 0, mask);
          break;
        case fw::PageType::kUnmeasured:
          page_data(gpa, {}, 0x2, 0, mask);
          break;
        case fw::PageType::kSecrets:
          page_data(gpa, {}, 0, 1, mask);
          break;
        case fw::PageType::kCpuid:
          page_data(gpa, {}, 0, 2, mask);
          break;
        case fw::PageType::kVmsa:
        case fw::PageType::kTdHob:
          assert(false);
          break;
      }
    });
  }
  return *this;
}

Bytes igvm_from_snp_plan(const fw::LaunchPlan& plan, std::uint64_t policy,
                         std::optional<Sha384Digest> id_block_ld) {
  IgvmWriter w;
  w.platform(IgvmWriter::kSnpMask, 2).guest_policy(policy).snp_plan(plan);
  if (id_block_ld) w.snp_id_block(*id_block_ld);
  return w.build();
}

}  // namespace cloister::testing
