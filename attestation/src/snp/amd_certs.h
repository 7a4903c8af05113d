// Private: the embedded AMD certificate PEMs (see amd_certs.cc for provenance).
#pragma once

#include <array>

#include "cloister/attestation/snp/product.h"

namespace cloister::attestation::snp::detail {

struct AmdCaPem {
  Product product;
  const char* ark;
  const char* ask;
  const char* asvk;
};

extern const std::array<AmdCaPem, 3> kAmdCaPems;

}  // namespace cloister::attestation::snp::detail
