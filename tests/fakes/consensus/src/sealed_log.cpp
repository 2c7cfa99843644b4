#include "sealed_log.h"

#include <swarm/sdk.h>

#include <kj/debug.h>
#include <sodium.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace swarm::fakes {
namespace {

constexpr uint8_t kHeader = 1;
constexpr uint8_t kEntry = 2;
constexpr uint8_t kSnapshot = 3;
constexpr size_t kMaxRecord = size_t(1) << 30;

void putU64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void putU32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void putText(std::string& out, const std::string& s) {
  putU32(out, static_cast<uint32_t>(s.size()));
  out += s;
}

std::string headerPlain(const LogMember& self) {
  std::string plain(1, static_cast<char>(kHeader));
  putU64(plain, self.id);
  putText(plain, self.nodeId);
  putText(plain, self.address);
  return plain;
}

std::string entryPlain(const LogEntry& e) {
  std::string plain(1, static_cast<char>(kEntry));
  putU64(plain, e.index);
  putU64(plain, e.term);
  plain.push_back(static_cast<char>(e.type));
  plain += e.data;
  return plain;
}

// Reads fields back out of an opened record; `ok` turns false on a short record.
struct Reader {
  const std::string& in;
  size_t at = 0;
  bool ok = true;

  uint64_t u(int bytes) {
    if (in.size() - at < size_t(bytes)) {
      ok = false;
      return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i)
      v |= uint64_t(static_cast<unsigned char>(in[at + i])) << (8 * i);
    at += size_t(bytes);
    return v;
  }
  std::string text() {
    uint64_t n = u(4);
    if (!ok || in.size() - at < n) {
      ok = false;
      return {};
    }
    std::string s = in.substr(at, n);
    at += n;
    return s;
  }
  std::string rest() {
    std::string s = in.substr(at);
    at = in.size();
    return s;
  }
};

std::string readFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) sdk::fail(kj::str("cannot read ", path, ": ", strerror(errno)));
  std::string content;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      sdk::fail(kj::str("cannot read ", path, ": ", strerror(e)));
    }
    if (n == 0) break;
    content.append(buf, size_t(n));
  }
  ::close(fd);
  return content;
}

void writeAll(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) sdk::fail(kj::str("cannot write ", path, ": ", strerror(errno)));
    done += size_t(n);
  }
}

void syncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) sdk::fail(kj::str("cannot open ", dir, ": ", strerror(errno)));
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0) sdk::fail(kj::str("cannot fsync ", dir, ": ", strerror(e)));
}

}  // namespace

SealedLog::SealedLog(std::string dirIn, std::string keyIn)
    : dir(std::move(dirIn)),
      path(dir + "/fake-consensus.log"),
      snapPath(dir + "/fake-consensus.snap"),
      key(std::move(keyIn)) {
  if (sodium_init() < 0) sdk::fail("libsodium failed to initialize");
}

SealedLog::~SealedLog() {
  if (fd >= 0) ::close(fd);
  sodium_memzero(key.data(), key.size());
}

bool SealedLog::exists() const {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && st.st_size > 0;
}

std::string SealedLog::seal(const std::string& plain) const {
  std::string record(4 + crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plain.size(),
                     '\0');
  auto* out = reinterpret_cast<unsigned char*>(record.data());
  uint32_t sealed =
      static_cast<uint32_t>(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plain.size());
  for (int i = 0; i < 4; ++i) out[i] = static_cast<unsigned char>((sealed >> (8 * i)) & 0xff);
  unsigned char* nonce = out + 4;
  randombytes_buf(nonce, crypto_secretbox_NONCEBYTES);
  crypto_secretbox_easy(nonce + crypto_secretbox_NONCEBYTES,
                        reinterpret_cast<const unsigned char*>(plain.data()), plain.size(), nonce,
                        reinterpret_cast<const unsigned char*>(key.data()));
  return record;
}

void SealedLog::writeDurably(const std::string& file, const std::string& content) const {
  std::string tmp = file + ".tmp";
  int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) sdk::fail(kj::str("cannot create ", tmp, ": ", strerror(errno)));
  writeAll(out, content, tmp);
  if (::fsync(out) != 0) {
    int e = errno;
    ::close(out);
    sdk::fail(kj::str("cannot fsync ", tmp, ": ", strerror(e)));
  }
  ::close(out);
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    sdk::fail(kj::str("cannot rename ", tmp, " to ", file, ": ", strerror(errno)));
  }
  syncDir(dir);
}

void SealedLog::create(const LogMember& self) {
  if (exists()) {
    sdk::fail(kj::str(dir,
                      " already holds a fake-consensus log; start with bootstrap restart, or "
                      "give a new cluster an empty storage directory"));
  }
  writeDurably(path, seal(headerPlain(self)));
  fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) sdk::fail(kj::str("cannot open ", path, ": ", strerror(errno)));
}

SealedLog::Replay SealedLog::open() {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    sdk::fail(kj::str("nothing to restart from: ", path,
                      " does not exist; bootstrap a new cluster "
                      "instead, or point storageDir at this node's old directory"));
  }
  auto wrongKey = [&](const std::string& file) {
    sdk::fail(kj::str(file,
                      " does not open with the data key given: it was sealed with another "
                      "key, or is corrupt; start with this node's own data key"));
  };
  // Splits `content` into opened records; returns the offset after the last good one.
  auto records = [&](const std::string& file, const std::string& content,
                     std::vector<std::string>& opened) -> size_t {
    size_t at = 0;
    while (at < content.size()) {
      if (content.size() - at < 4) break;  // torn size
      uint32_t sealed = 0;
      for (int i = 0; i < 4; ++i) {
        sealed |= uint32_t(static_cast<unsigned char>(content[at + size_t(i)])) << (8 * i);
      }
      if (sealed < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES || sealed > kMaxRecord) {
        wrongKey(file);
      }
      if (content.size() - at - 4 < sealed) break;  // torn body
      auto* nonce = reinterpret_cast<const unsigned char*>(content.data() + at + 4);
      size_t plainSize = sealed - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
      std::string plain(plainSize, '\0');
      if (crypto_secretbox_open_easy(reinterpret_cast<unsigned char*>(plain.data()),
                                     nonce + crypto_secretbox_NONCEBYTES,
                                     sealed - crypto_secretbox_NONCEBYTES, nonce,
                                     reinterpret_cast<const unsigned char*>(key.data())) != 0) {
        // The last record may be a write a crash tore; any earlier one is damage.
        if (at + 4 + sealed == content.size() && !opened.empty()) break;
        wrongKey(file);
      }
      opened.push_back(std::move(plain));
      at += 4 + sealed;
    }
    return at;
  };

  Replay replay;
  struct stat snapSt;
  if (::stat(snapPath.c_str(), &snapSt) == 0) {
    std::vector<std::string> opened;
    std::string content = readFile(snapPath);
    size_t end = records(snapPath, content, opened);
    if (opened.size() != 1 || end != content.size() || opened[0].empty() ||
        opened[0][0] != static_cast<char>(kSnapshot)) {
      wrongKey(snapPath);
    }
    Reader r{opened[0], 1};
    replay.snapshot.index = r.u(8);
    replay.snapshot.term = r.u(8);
    replay.snapshot.data = r.rest();
    if (!r.ok) wrongKey(snapPath);
    replay.hasSnapshot = true;
  }

  std::vector<std::string> opened;
  std::string content = readFile(path);
  size_t good = records(path, content, opened);
  if (opened.empty() || opened[0].empty() || opened[0][0] != static_cast<char>(kHeader)) {
    wrongKey(path);
  }
  Reader header{opened[0], 1};
  replay.self.id = header.u(8);
  replay.self.nodeId = header.text();
  replay.self.address = header.text();
  if (!header.ok) wrongKey(path);
  for (size_t i = 1; i < opened.size(); ++i) {
    Reader r{opened[i], 1};
    if (opened[i].empty() || opened[i][0] != static_cast<char>(kEntry)) wrongKey(path);
    LogEntry e;
    e.index = r.u(8);
    e.term = r.u(8);
    e.type = static_cast<uint8_t>(r.u(1));
    e.data = r.rest();
    if (!r.ok) wrongKey(path);
    if (replay.hasSnapshot && e.index <= replay.snapshot.index) continue;
    replay.entries.push_back(std::move(e));
  }

  fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) sdk::fail(kj::str("cannot open ", path, ": ", strerror(errno)));
  if (good != content.size()) {
    // Drop the torn tail so the next append starts on a record boundary.
    if (::ftruncate(fd, off_t(good)) != 0 || ::fdatasync(fd) != 0) {
      sdk::fail(kj::str("cannot truncate the torn end of ", path, ": ", strerror(errno)));
    }
  }
  return replay;
}

void SealedLog::append(const LogEntry& entry) {
  KJ_REQUIRE(fd >= 0, "the log is not open");
  writeAll(fd, seal(entryPlain(entry)), path);
  if (::fdatasync(fd) != 0) sdk::fail(kj::str("cannot fsync ", path, ": ", strerror(errno)));
}

void SealedLog::saveSnapshot(const Snapshot& snapshot, const LogMember& self,
                             const std::vector<LogEntry>& later) {
  std::string plain(1, static_cast<char>(kSnapshot));
  putU64(plain, snapshot.index);
  putU64(plain, snapshot.term);
  plain += snapshot.data;
  writeDurably(snapPath, seal(plain));

  // A crash between the two renames leaves the old log, whose extra entries replay skips.
  std::string log = seal(headerPlain(self));
  for (auto& e : later) log += seal(entryPlain(e));
  writeDurably(path, log);
  if (fd >= 0) ::close(fd);
  fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (fd < 0) sdk::fail(kj::str("cannot open ", path, ": ", strerror(errno)));
}

}  // namespace swarm::fakes
