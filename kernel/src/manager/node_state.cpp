#include "node_state.h"

#include "errors.h"

#include <capnp/serialize.h>
#include <fcntl.h>
#include <kj/io.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>

namespace swarm::kernel {
namespace {

[[noreturn]] void ioError(const std::string& what, const std::filesystem::path& path, int err) {
  throw UserError(what + " " + path.string() + ": " + std::strerror(err) +
                  "; check the state directory's permissions and free space");
}

void fsyncPath(const std::filesystem::path& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) ioError("cannot open", path, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) ioError("cannot fsync", path, err);
}

}  // namespace

NodeStateFile::NodeStateFile(std::filesystem::path stateDir)
    : dir(std::move(stateDir)), file(dir / "node-state.bin") {}

std::optional<kj::Own<capnp::MessageReader>> NodeStateFile::read() const {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) {
    if (ec) ioError("cannot look at", file, ec.value());
    return std::nullopt;
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) ioError("cannot read", file, errno != 0 ? errno : EIO);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    throw UserError(file.string() + " is damaged (" + std::to_string(bytes.size()) +
                    " bytes); restore it from a backup, or leave the swarm and join again");
  }
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  try {
    auto reader = kj::heap<capnp::FlatArrayMessageReader>(words.asPtr());
    reader->getRoot<store::schema::NodeState>().getNodeId();  // validates the root
    return kj::Own<capnp::MessageReader>(reader.attach(kj::mv(words)));
  } catch (const kj::Exception& e) {
    throw UserError(file.string() + " is damaged (" + describe(e) +
                    "); restore it from a backup, or leave the swarm and join again");
  }
}

void NodeStateFile::write(store::schema::NodeState::Reader state) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) ioError("cannot create", dir, ec.value());
  capnp::MallocMessageBuilder message;
  message.setRoot(state);
  auto words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();

  auto temporary = dir / "node-state.bin.tmp";
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) ioError("cannot create", temporary, errno);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.begin() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      ioError("cannot write", temporary, err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    ioError("cannot fsync", temporary, err);
  }
  ::close(fd);
  if (::rename(temporary.c_str(), file.c_str()) != 0) ioError("cannot rename onto", file, errno);
  fsyncPath(dir, O_RDONLY | O_DIRECTORY);
}

void NodeStateFile::remove() const {
  if (::unlink(file.c_str()) != 0 && errno != ENOENT) ioError("cannot remove", file, errno);
  fsyncPath(dir, O_RDONLY | O_DIRECTORY);
}

std::vector<std::string> splitPemCertificates(std::string_view bundle) {
  constexpr std::string_view begin = "-----BEGIN CERTIFICATE-----";
  constexpr std::string_view end = "-----END CERTIFICATE-----";
  std::vector<std::string> certs;
  for (size_t at = bundle.find(begin); at != std::string_view::npos; at = bundle.find(begin, at)) {
    size_t stop = bundle.find(end, at);
    if (stop == std::string_view::npos) break;
    stop += end.size();
    certs.emplace_back(bundle.substr(at, stop - at));
    certs.back() += '\n';
    at = stop;
  }
  return certs;
}

}  // namespace swarm::kernel
