// CRC-32 (ISO-HDLC: reflected polynomial 0xEDB88320, init and final XOR 0xFFFFFFFF), the
// checksum of IGVM headers. Private to firmware-loader.
#pragma once

#include <cstdint>

#include "cloister/common/bytes.h"

namespace cloister::fw {

class Crc32 {
 public:
  void update(ByteView data);
  std::uint32_t value() const { return ~state_; }

 private:
  std::uint32_t state_ = 0xFFFFFFFFu;
};

}  // namespace cloister::fw
