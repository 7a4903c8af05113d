#include "cloister/attestation/sim/state_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cloister/attestation/sim/x509_builder.h"
#include "cloister/common/file.h"
#include "cloister/common/hex.h"

namespace cloister::attestation::sim {
namespace {

namespace fs = std::filesystem;

std::string mode_string(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

Error os_error(const std::string& what, const fs::path& path, int err) {
  return Error("simulated secure processor state: cannot " + what + " " + path.string() + ": " +
               std::strerror(err));
}

// Creates `dir` with mode 0700 unless it exists.
Status make_private_directory(const fs::path& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return os_error("create", dir, errno);
  return {};
}

// Creates each missing directory of `relative` below `root` with mode 0700.
Status make_private_directories(const fs::path& root, const fs::path& relative) {
  fs::path dir = root;
  for (const auto& part : relative) {
    dir /= part;
    CLOISTER_CHECK_OK(make_private_directory(dir));
  }
  return {};
}

// Every state file is a PEM key or certificate or a hex value: a few KiB at most.
constexpr FileLimit kStateFileLimit{
    64u << 10,
    "a simulated secure processor state file can be (keys, certificates and hex values "
    "take at most a few KiB)"};

Error corrupt(const fs::path& file, const std::string& problem) {
  return Error("simulated secure processor state: " + file.string() + ": " + problem + ". Delete " +
               file.parent_path().string() +
               " to have it generated anew (evidence signed under the old keys stops verifying), "
               "or restore it from a backup");
}

Result<Bytes> read_state_file(const fs::path& file, bool secret) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    if (errno == ENOENT) return corrupt(file, "missing");
    return os_error("stat", file, errno);
  }
  if (secret && (st.st_mode & 077)) {
    return Error("simulated secure processor state: " + file.string() + " has mode " +
                 mode_string(st.st_mode) + ", so others may read the key; run chmod 600 " +
                 file.string());
  }
  auto bytes = read_file(file, kStateFileLimit);
  if (!bytes) return Error("simulated secure processor state: " + bytes.error().message());
  return bytes;
}

}  // namespace

Result<StateDir> StateDir::open(const fs::path& root) {
  if (root.empty()) return Error("simulated secure processor state: no directory given");
  std::error_code ec;
  if (root.has_parent_path()) fs::create_directories(root.parent_path(), ec);
  if (ec) return os_error("create", root.parent_path(), ec.value());
  CLOISTER_CHECK_OK(make_private_directory(root));
  struct stat st {};
  if (::stat(root.c_str(), &st) != 0) return os_error("stat", root, errno);
  if (!S_ISDIR(st.st_mode))
    return Error("simulated secure processor state: " + root.string() + " is not a directory");
  if (st.st_mode & 077) {
    return Error("simulated secure processor state: " + root.string() + " has mode " +
                 mode_string(st.st_mode) +
                 ", so others may read the simulated vendor keys in it; run chmod 700 " +
                 root.string());
  }
  return StateDir(root);
}

StateDir::Lock::~Lock() {
  if (fd_ >= 0) ::close(fd_);
}

Result<StateDir::Lock> StateDir::lock() const {
  const fs::path path = root_ / "lock";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return os_error("open", path, errno);
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    const int err = errno;
    ::close(fd);
    return os_error("lock", path, err);
  }
  return Lock(fd);
}

Result<fs::path> StateDir::ensure_directory(
    const Lock&, const fs::path& relative,
    const std::function<Status(const fs::path&)>& fill) const {
  const fs::path path = root_ / relative;
  std::error_code ec;
  if (fs::is_directory(path, ec)) return path;
  if (fs::exists(path, ec))
    return corrupt(path, "expected a directory, found another kind of file");
  CLOISTER_CHECK_OK(make_private_directories(root_, relative.parent_path()));
  // Under the lock no one else writes here: a leftover is from a writer that died.
  fs::path partial = path;
  partial += ".partial";
  fs::remove_all(partial, ec);
  if (::mkdir(partial.c_str(), 0700) != 0) return os_error("create", partial, errno);
  if (auto filled = fill(partial); !filled) {
    fs::remove_all(partial, ec);
    return filled.error();
  }
  if (::rename(partial.c_str(), path.c_str()) != 0)
    return os_error("rename into place", path, errno);
  return path;
}

Result<fs::path> StateDir::replace_file(const Lock&, const fs::path& relative,
                                        ByteView data) const {
  CLOISTER_CHECK_OK(make_private_directories(root_, relative.parent_path()));
  const fs::path path = root_ / relative;
  CLOISTER_CHECK_OK(write_file_atomic(path, data));
  return path;
}

Status StateDir::write_private_key(const fs::path& dir, const std::string& name,
                                   const PrivateKey& key) {
  return write_file_atomic(dir / (name + ".key.pem"), key.to_pem(), 0600);
}

Status StateDir::write_key(const fs::path& dir, const std::string& name, const CertifiedKey& key) {
  CLOISTER_CHECK_OK(write_private_key(dir, name, key.key));
  return write_file_atomic(dir / (name + ".crt.pem"), as_bytes(certificate_pem(key.cert)));
}

Status StateDir::write_hex(const fs::path& dir, const std::string& name, ByteView value,
                           bool secret) {
  return write_file_atomic(dir / (name + ".hex"), as_bytes(to_hex(value) + "\n"),
                           secret ? 0600 : 0644);
}

Result<PrivateKey> StateDir::read_private_key(const fs::path& dir, const std::string& name) {
  const fs::path file = dir / (name + ".key.pem");
  CLOISTER_TRY(Bytes pem, read_state_file(file, true));
  auto key = PrivateKey::from_pem(pem);
  if (!key) return corrupt(file, key.error().message());
  return key;
}

Result<CertifiedKey> StateDir::read_key(const fs::path& dir, const std::string& name) {
  CLOISTER_TRY(PrivateKey key, read_private_key(dir, name));
  const fs::path cert_file = dir / (name + ".crt.pem");
  CLOISTER_TRY(Bytes cert_pem, read_state_file(cert_file, false));
  auto certs = parse_certificates(cert_pem);
  if (!certs || certs->size() != 1)
    return corrupt(cert_file, certs ? "expected one certificate" : certs.error().message());
  if (!certs->front().public_key().equals(key.public_key()))
    return corrupt(cert_file, "its public key is not the key in " + name + ".key.pem");
  return CertifiedKey{certs->front(), std::move(key)};
}

Result<Bytes> StateDir::read_hex(const fs::path& dir, const std::string& name, std::size_t size,
                                 bool secret) {
  const fs::path file = dir / (name + ".hex");
  CLOISTER_TRY(Bytes text, read_state_file(file, secret));
  std::string_view digits(reinterpret_cast<const char*>(text.data()), text.size());
  while (!digits.empty() && (digits.back() == '\n' || digits.back() == ' '))
    digits.remove_suffix(1);
  auto value = from_hex_exact(digits, size);
  if (!value) return corrupt(file, value.error().message());
  return value;
}

}  // namespace cloister::attestation::sim
