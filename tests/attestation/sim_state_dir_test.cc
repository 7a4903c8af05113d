#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <thread>

#include "cloister/attestation/sim/amd.h"
#include "cloister/attestation/sim/intel.h"
#include "cloister/common/file.h"
#include "support/sim_state.h"
#include "support/vectors.h"

namespace cloister::attestation::sim {
namespace {

namespace fs = std::filesystem;
using cloister::testing::ScratchSimPath;
using cloister::testing::shared_sim_state;
using ::testing::HasSubstr;

unsigned mode_of(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(SimStateDir, DirectoriesAre0700AndPrivateKeys0600) {
  ScratchSimPath scratch("permissions");
  auto state = StateDir::open(scratch.path());
  ASSERT_TRUE(state) << state.error().message();
  auto intel = SimulatedIntel::open(*state);
  ASSERT_TRUE(intel) << intel.error().message();
  auto pck = intel->pck({0x90, 0xc0, 0x6f}, {4, 4}, 13);
  ASSERT_TRUE(pck) << pck.error().message();
  const fs::path dir = scratch.path() / "intel";
  EXPECT_EQ(mode_of(scratch.path()), 0700u);
  EXPECT_EQ(mode_of(dir), 0700u);
  EXPECT_EQ(mode_of(dir / "pck"), 0700u);
  for (const char* key : {"root.key.pem", "platform_ca.key.pem", "tcb_signing.key.pem",
                          "qe_attestation.key.pem", "tdx_report_mac_key.hex"})
    EXPECT_EQ(mode_of(dir / key), 0600u) << key;
  for (const auto& entry : fs::directory_iterator(dir / "pck")) {
    EXPECT_EQ(mode_of(entry.path()), 0700u);
    EXPECT_EQ(mode_of(entry.path() / "pck.key.pem"), 0600u);
  }
  EXPECT_EQ(mode_of(dir / "root.crt.pem") & 077, 044u);  // certificates are public
}

TEST(SimStateDir, RefusesADirectoryOthersCanRead) {
  ScratchSimPath scratch("open-directory");
  fs::create_directory(scratch.path());
  fs::permissions(scratch.path(), fs::perms(0755));
  auto state = StateDir::open(scratch.path());
  ASSERT_FALSE(state);
  EXPECT_EQ(state.error().message(),
            "simulated secure processor state: " + scratch.path().string() +
                " has mode 0755, so others may read the simulated vendor keys in it; run chmod "
                "700 " +
                scratch.path().string());
}

// The shared state directory, opened again: the same CAs and, for the same chip and TCB, the
// same VCEK and PCK.
TEST(SimStateDir, ReopeningReusesTheKeysAndTheChain) {
  auto state = StateDir::open(shared_sim_state().root());
  ASSERT_TRUE(state);
  auto first = SimulatedAmd::open(shared_sim_state(), snp::Product::kGenoa);
  auto second = SimulatedAmd::open(*state, snp::Product::kGenoa);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->ark().cert.der(), second->ark().cert.der());
  EXPECT_EQ(first->ask().cert.der(), second->ask().cert.der());
  EXPECT_TRUE(first->ask().key.public_key().equals(second->ask().key.public_key()));
  EXPECT_EQ(first->chip_id(), second->chip_id());
  const snp::TcbParts tcb{.fmc = std::nullopt, .bl = 10, .tee = 0, .snp = 25, .ucode = 84};
  auto vcek = first->vcek(first->chip_id(), tcb);
  auto again = second->vcek(second->chip_id(), tcb);
  ASSERT_TRUE(vcek && again);
  EXPECT_EQ(vcek->cert.der(), again->cert.der());
  snp::TcbParts other = tcb;
  other.ucode = 85;
  EXPECT_NE(first->vcek(first->chip_id(), other)->cert.der(), vcek->cert.der());

  auto intel = SimulatedIntel::open(shared_sim_state());
  auto intel_again = SimulatedIntel::open(*state);
  ASSERT_TRUE(intel && intel_again);
  EXPECT_EQ(intel->root().cert.der(), intel_again->root().cert.der());
  EXPECT_EQ(intel->platform_ca().cert.der(), intel_again->platform_ca().cert.der());
  EXPECT_EQ(intel->ppid(), intel_again->ppid());
  EXPECT_EQ(intel->pck({0x90, 0xc0, 0x6f}, {4, 4}, 13)->cert.der(),
            intel_again->pck({0x90, 0xc0, 0x6f}, {4, 4}, 13)->cert.der());
}

// Processes (here threads, each with its own lock file descriptor) that find the directory
// empty at the same time create one hierarchy between them.
TEST(SimStateDir, ConcurrentFirstUseCreatesOneHierarchy) {
  ScratchSimPath scratch("concurrent");
  std::vector<std::optional<Bytes>> roots(4);
  std::vector<std::thread> threads;
  for (auto& root : roots) {
    threads.emplace_back([&] {
      auto state = StateDir::open(scratch.path());
      if (!state) return;
      auto intel = SimulatedIntel::open(*state);
      if (intel) root = intel->root().cert.der();
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& root : roots) {
    ASSERT_TRUE(root.has_value());
    EXPECT_EQ(*root, *roots.front());
  }
  EXPECT_FALSE(fs::exists(scratch.path() / "intel.partial"));
}

// Damaged state is an error that names the file and the repair, and is left as it was.
TEST(SimStateDir, CorruptOrPartialStateIsANamedErrorNeverRegenerated) {
  struct Damage {
    const char* file;
    std::function<void(const fs::path&)> apply;
    const char* problem;
  };
  const Damage damages[] = {
      {"root.key.pem",
       [](const fs::path& f) { ASSERT_TRUE(write_file_atomic(f, as_bytes("x"), 0600)); },
       "root.key.pem: not a PEM private key"},
      {"platform_ca.crt.pem", [](const fs::path& f) { fs::remove(f); },
       "platform_ca.crt.pem: missing"},
      {"root.crt.pem",
       [](const fs::path& f) {
         fs::copy_file(f.parent_path() / "tcb_signing.crt.pem", f,
                       fs::copy_options::overwrite_existing);
       },
       "root.crt.pem: its public key is not the key in root.key.pem"},
      {"ppid.hex", [](const fs::path& f) { ASSERT_TRUE(write_file_atomic(f, as_bytes("12\n"))); },
       "ppid.hex: expected 16 bytes (32 hex digits), found 1 bytes"},
  };
  for (const auto& damage : damages) {
    SCOPED_TRACE(damage.file);
    ScratchSimPath scratch("corrupt");
    auto state = StateDir::open(scratch.path());
    ASSERT_TRUE(state);
    ASSERT_TRUE(SimulatedIntel::open(*state));
    const fs::path dir = scratch.path() / "intel";
    const fs::path file = dir / damage.file;
    damage.apply(file);
    const auto before = read_file(file, testing::kTestFileLimit);
    auto intel = SimulatedIntel::open(*state);
    ASSERT_FALSE(intel);
    EXPECT_THAT(intel.error().message(), HasSubstr(dir.string() + "/" + damage.problem));
    EXPECT_THAT(intel.error().message(),
                HasSubstr("Delete " + dir.string() +
                          " to have it generated anew (evidence signed under the old keys stops "
                          "verifying), or restore it from a backup"));
    const auto after = read_file(file, testing::kTestFileLimit);
    EXPECT_EQ(before.ok(), after.ok());
    if (before && after) {
      EXPECT_EQ(*before, *after);
    }
  }
}

TEST(SimStateDir, AKeyOthersCanReadIsRefused) {
  ScratchSimPath scratch("key-mode");
  auto state = StateDir::open(scratch.path());
  ASSERT_TRUE(state);
  ASSERT_TRUE(SimulatedIntel::open(*state));
  const fs::path key = scratch.path() / "intel" / "qe_attestation.key.pem";
  fs::permissions(key, fs::perms(0644));
  auto intel = SimulatedIntel::open(*state);
  ASSERT_FALSE(intel);
  EXPECT_EQ(intel.error().message(), "simulated secure processor state: " + key.string() +
                                         " has mode 0644, so others may read the key; run chmod "
                                         "600 " +
                                         key.string());
}

}  // namespace
}  // namespace cloister::attestation::sim
