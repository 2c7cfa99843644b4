#include "storage_syscalls.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>

namespace swarm::raft::testing::syscalls {
namespace {

std::vector<Call>* gRecording = nullptr;
bool gArmed = false;
uint64_t gCalls = 0;
uint64_t gCrashAt = 0;
bool gHalfWrite = false;
bool gCrashed = false;
bool gSkipSyncs = false;

std::string fdPath(int fd) {
  char link[64];
  std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  std::error_code ec;
  return std::filesystem::read_symlink(link, ec).string();
}

uint64_t fdSize(int fd) {
  struct stat st {};
  ::fstat(fd, &st);
  return static_cast<uint64_t>(st.st_size);
}

enum class Verdict { proceed, fail, half };

// Called before each intercepted call; says whether it happens.
Verdict before(Op op, const std::string& path, uint64_t size) {
  if (gRecording != nullptr) gRecording->push_back({op, path, size});
  if (!gArmed) return Verdict::proceed;
  if (gCrashed) return Verdict::fail;
  if (gCalls++ == gCrashAt) {
    gCrashed = true;
    return op == Op::pwrite && gHalfWrite ? Verdict::half : Verdict::fail;
  }
  return Verdict::proceed;
}

}  // namespace

void record(std::vector<Call>* calls) { gRecording = calls; }

void armCrash(uint64_t callNumber, bool halfWrite) {
  gArmed = true;
  gCalls = 0;
  gCrashAt = callNumber;
  gHalfWrite = halfWrite;
  gCrashed = false;
}

void disarm() {
  gArmed = false;
  gCrashed = false;
}

uint64_t callsSinceArm() { return gCalls; }
void skipRealSyncs(bool skip) { gSkipSyncs = skip; }
bool crashed() { return gCrashed; }

}  // namespace swarm::raft::testing::syscalls

using namespace swarm::raft::testing::syscalls;

extern "C" ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset) {
  switch (before(Op::pwrite, fdPath(fd), n)) {
    case Verdict::proceed: break;
    case Verdict::half:
      ::syscall(SYS_pwrite64, fd, buf, n / 2, offset);
      errno = EIO;
      return -1;
    case Verdict::fail: errno = EIO; return -1;
  }
  return ::syscall(SYS_pwrite64, fd, buf, n, offset);
}

extern "C" int fdatasync(int fd) {
  if (before(Op::fdatasync, fdPath(fd), fdSize(fd)) != Verdict::proceed) {
    errno = EIO;
    return -1;
  }
  if (gSkipSyncs) return 0;
  return static_cast<int>(::syscall(SYS_fdatasync, fd));
}

extern "C" int fsync(int fd) {
  if (before(Op::fsync, fdPath(fd), fdSize(fd)) != Verdict::proceed) {
    errno = EIO;
    return -1;
  }
  if (gSkipSyncs) return 0;
  return static_cast<int>(::syscall(SYS_fsync, fd));
}

extern "C" int rename(const char* from, const char* to) noexcept {
  if (before(Op::rename, from, 0) != Verdict::proceed) {
    errno = EIO;
    return -1;
  }
  return static_cast<int>(::syscall(SYS_rename, from, to));
}

extern "C" int unlink(const char* path) noexcept {
  if (before(Op::unlink, path, 0) != Verdict::proceed) {
    errno = EIO;
    return -1;
  }
  return static_cast<int>(::syscall(SYS_unlink, path));
}

extern "C" int ftruncate(int fd, off_t size) noexcept {
  if (before(Op::ftruncate, fdPath(fd), static_cast<uint64_t>(size)) != Verdict::proceed) {
    errno = EIO;
    return -1;
  }
  return static_cast<int>(::syscall(SYS_ftruncate, fd, size));
}
