// Stand-in for libFuzzer's main when the fuzz targets are built without clang: runs the target's
// LLVMFuzzerTestOneInput over each file named on the command line, so the corpus replays in
// every build (and under ASan/UBSan when CLOISTER_SANITIZE is on).
#include <cstdint>
#include <cstdio>
#include <vector>

#include "cloister/common/file.h"
#include "fuzz/fuzz_target.h"

// libFuzzer's inputs are at most -max_len bytes (4096 unless set); seeds from the shared vectors
// are a few MiB at most.
constexpr cloister::FileLimit kFuzzInputLimit{64u << 20, "a fuzz input can be"};

int main(int argc, char** argv) {
  int replayed = 0;
  for (int i = 1; i < argc; ++i) {
    if (argv[i][0] == '-') continue;  // libFuzzer flags, meaningless here
    auto bytes = cloister::read_file(argv[i], kFuzzInputLimit);
    if (!bytes) {
      std::fprintf(stderr, "replay: %s\n", bytes.error().message().c_str());
      return 1;
    }
    // Copy into an exactly sized heap buffer so ASan catches reads past the end.
    std::vector<std::uint8_t> exact(bytes->begin(), bytes->end());
    LLVMFuzzerTestOneInput(exact.empty() ? nullptr : exact.data(), exact.size());
    ++replayed;
  }
  std::printf("replay: %d inputs ran without a crash\n", replayed);
  return replayed > 0 ? 0 : 1;
}
