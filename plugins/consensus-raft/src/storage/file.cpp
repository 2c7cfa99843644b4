#include "file.h"

#include "storage.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace swarm::raft::storage {

void throwIo(const std::string& what, const fs::path& path, int err) {
  throw StorageError(StorageError::Kind::io, "raft storage: " + what + " " + path.string() +
                                                 " failed: " + std::strerror(err));
}

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    reset();
    fd_ = other.release();
  }
  return *this;
}

Fd::~Fd() { reset(); }

void Fd::reset() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Fd openFile(const fs::path& path, int flags, int mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) throwIo("open", path, errno);
  return Fd(fd);
}

uint64_t fileSize(int fd, const fs::path& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) throwIo("stat", path, errno);
  return static_cast<uint64_t>(st.st_size);
}

void writeAt(int fd, std::string_view bytes, uint64_t offset, const fs::path& path) {
  while (!bytes.empty()) {
    ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      throwIo("write to", path, errno);
    }
    bytes.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
}

void readAt(int fd, char* out, size_t n, uint64_t offset, const fs::path& path) {
  while (n > 0) {
    ssize_t got = ::pread(fd, out, n, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      throwIo("read from", path, errno);
    }
    if (got == 0) throwIo("read from", path, EIO);  // callers check sizes first
    out += got;
    n -= static_cast<size_t>(got);
    offset += static_cast<uint64_t>(got);
  }
}

std::string readWhole(const fs::path& path) {
  Fd fd = openFile(path, O_RDONLY);
  std::string bytes(fileSize(fd.get(), path), '\0');
  readAt(fd.get(), bytes.data(), bytes.size(), 0, path);
  return bytes;
}

void syncData(int fd, const fs::path& path) {
  if (::fdatasync(fd) != 0) throwIo("fdatasync of", path, errno);
}

void syncDir(const fs::path& dir) {
  Fd fd = openFile(dir, O_RDONLY | O_DIRECTORY);
  if (::fsync(fd.get()) != 0) throwIo("fsync of directory", dir, errno);
}

void truncateFile(int fd, uint64_t size, const fs::path& path) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) throwIo("truncate of", path, errno);
}

void renameFile(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) throwIo("rename to " + to.string() + " of", from, errno);
}

void removeFile(const fs::path& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) throwIo("unlink of", path, errno);
}

std::vector<std::string> listDir(const fs::path& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) throwIo("listing of", dir, errno);
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) throwIo("listing of", dir, err);
  return names;
}

}  // namespace swarm::raft::storage
