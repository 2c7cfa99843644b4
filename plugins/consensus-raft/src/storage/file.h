// Thin POSIX file helpers. Every failure throws StorageError(io) naming the file and the call.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace swarm::raft::storage {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset();

 private:
  int fd_ = -1;
};

namespace fs = std::filesystem;

Fd openFile(const fs::path& path, int flags, int mode = 0600);
uint64_t fileSize(int fd, const fs::path& path);
void writeAt(int fd, std::string_view bytes, uint64_t offset, const fs::path& path);
void readAt(int fd, char* out, size_t n, uint64_t offset, const fs::path& path);
std::string readWhole(const fs::path& path);
void syncData(int fd, const fs::path& path);  // fdatasync
void syncDir(const fs::path& dir);             // fsync of the directory itself
void truncateFile(int fd, uint64_t size, const fs::path& path);
void renameFile(const fs::path& from, const fs::path& to);
void removeFile(const fs::path& path);  // absent is fine
std::vector<std::string> listDir(const fs::path& dir);

[[noreturn]] void throwIo(const std::string& what, const fs::path& path, int err);

}  // namespace swarm::raft::storage
