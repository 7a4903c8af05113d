// The simulated secure processor's per-host state: a directory holding the simulated vendor
// hierarchies' keys and certificates, the chip identities and the VCEKs and PCKs issued so far
// (docs/simulated-tee.md lists the layout).
//
// The directory and everything below it is created on first use, directories with mode 0700 and
// private keys with mode 0600. Processes and threads that initialise or extend the state at the
// same time serialise on an exclusive lock of <root>/lock, and every unit of state (a hierarchy,
// one VCEK) appears by renaming a complete temporary directory into place, so a reader never
// sees half of one. State that is there but unreadable (a corrupt or missing file, a key that
// does not match its certificate, a key readable by others) is an error naming the file and the
// fix; it is never silently regenerated, because everything signed under the old keys would
// stop verifying.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <utility>

#include "cloister/attestation/sim/keys.h"
#include "cloister/attestation/x509.h"

namespace cloister::attestation::sim {

// A certificate with its private key: a CA of a simulated hierarchy, a VCEK, a PCK.
struct CertifiedKey {
  Certificate cert;
  PrivateKey key;
};

class StateDir {
 public:
  // Opens `root`, creating it (mode 0700) when missing. Fails when it is not a directory or
  // group or others may access it.
  static Result<StateDir> open(const std::filesystem::path& root);

  const std::filesystem::path& root() const { return root_; }

  // Holds the exclusive lock of <root>/lock until destroyed.
  class Lock {
   public:
    Lock(Lock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Lock& operator=(Lock&&) = delete;
    Lock(const Lock&) = delete;
    ~Lock();

   private:
    friend class StateDir;
    explicit Lock(int fd) : fd_(fd) {}
    int fd_;
  };
  Result<Lock> lock() const;

  // The directory `relative` (below the root), complete: when it is missing, `fill` writes its
  // content into a fresh temporary directory (passed to it), which is then renamed into place.
  // Needs the lock (`held` proves it).
  Result<std::filesystem::path> ensure_directory(
      const Lock& held, const std::filesystem::path& relative,
      const std::function<Status(const std::filesystem::path&)>& fill) const;

  // A file of derived state (not a unit: replaced whenever it is written), atomically, creating
  // the directories above it. Needs the lock.
  Result<std::filesystem::path> replace_file(const Lock& held,
                                             const std::filesystem::path& relative,
                                             ByteView data) const;

  // Writing unit content (inside `fill`): a private key as <name>.key.pem (0600), with its
  // certificate as <name>.crt.pem, a value as hex text <name>.hex (0600 when secret).
  static Status write_private_key(const std::filesystem::path& dir, const std::string& name,
                                  const PrivateKey& key);
  static Status write_key(const std::filesystem::path& dir, const std::string& name,
                          const CertifiedKey& key);
  static Status write_hex(const std::filesystem::path& dir, const std::string& name, ByteView value,
                          bool secret);

  // Reading a unit: errors name the file and say how to repair the state.
  static Result<PrivateKey> read_private_key(const std::filesystem::path& dir,
                                             const std::string& name);
  static Result<CertifiedKey> read_key(const std::filesystem::path& dir, const std::string& name);
  static Result<Bytes> read_hex(const std::filesystem::path& dir, const std::string& name,
                                std::size_t size, bool secret);

 private:
  explicit StateDir(std::filesystem::path root) : root_(std::move(root)) {}

  std::filesystem::path root_;
};

}  // namespace cloister::attestation::sim
