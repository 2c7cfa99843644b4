#include <swarm/sdk.h>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/debug.h>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace swarm::sdk {

void fail(kj::StringPtr message) {
  kj::throwFatalException(kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                                        kj::str(message)));
}

Settings::Settings(capnp::List<schema::KeyValue>::Reader entries) {
  for (auto entry : entries) {
    keys.add(kj::str(entry.getKey()));
    values.add(kj::str(entry.getValue()));
  }
}

kj::Maybe<kj::StringPtr> Settings::get(kj::StringPtr key) const {
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] == key) return values[i].asPtr();
  }
  return nullptr;
}

kj::StringPtr Settings::getOr(kj::StringPtr key, kj::StringPtr fallback) const {
  KJ_IF_MAYBE(value, get(key)) { return *value; }
  return fallback;
}

int64_t Settings::getInt(kj::StringPtr key, int64_t fallback, int64_t min, int64_t max) const {
  KJ_IF_MAYBE(value, get(key)) {
    char* end = nullptr;
    errno = 0;
    long long parsed = strtoll(value->cStr(), &end, 10);
    if (errno != 0 || end == value->cStr() || *end != '\0' || parsed < min || parsed > max) {
      fail(kj::str("setting '", key, "' = '", *value, "' must be a whole number from ", min, " to ",
                   max));
    }
    return parsed;
  }
  return fallback;
}

bool Settings::getBool(kj::StringPtr key, bool fallback) const {
  KJ_IF_MAYBE(value, get(key)) {
    if (*value == "true" || *value == "yes" || *value == "on" || *value == "1") return true;
    if (*value == "false" || *value == "no" || *value == "off" || *value == "0") return false;
    fail(kj::str("setting '", key, "' = '", *value, "' must be true or false"));
  }
  return fallback;
}

void Settings::requireOnly(std::initializer_list<kj::StringPtr> known) const {
  kj::Vector<kj::StringPtr> unknown;
  for (auto& key : keys) {
    if (std::find(known.begin(), known.end(), key.asPtr()) == known.end()) unknown.add(key);
  }
  if (unknown.empty()) return;
  kj::String accepted =
      known.size() == 0 ? kj::str("none") : kj::strArray(kj::arrayPtr(known.begin(), known.size()), ", ");
  fail(kj::str("unknown setting", unknown.size() > 1 ? "s " : " ", kj::strArray(unknown, ", "),
               "; this plugin accepts: ", accepted));
}

namespace {

// Set by serve() for the duration of its event loop; see asyncIo().
thread_local kj::AsyncIoContext* currentIo = nullptr;

void writeError(char* buf, size_t size, kj::StringPtr message) {
  if (buf == nullptr || size == 0) return;
  size_t n = std::min(size - 1, message.size());
  memcpy(buf, message.begin(), n);
  buf[n] = '\0';
}

}  // namespace

kj::AsyncIoContext& asyncIo() {
  KJ_REQUIRE(currentIo != nullptr, "swarm::sdk::asyncIo() is only available on the thread running serve()");
  return *currentIo;
}

int32_t serve(int fd, char* errorBuf, size_t errorBufSize,
              kj::Function<capnp::Capability::Client()> makeBootstrap) noexcept {
  int type = 0;
  socklen_t len = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
    writeError(errorBuf, errorBufSize, "serve: fd is not a stream socket");
    if (fd >= 0) close(fd);
    return SWARM_SERVE_BAD_FD;
  }
  try {
    kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&]() {
      auto io = kj::setupAsyncIo();
      currentIo = &io;
      KJ_DEFER(currentIo = nullptr);
      auto stream = io.lowLevelProvider->wrapSocketFd(fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
      capnp::TwoPartyVatNetwork network(*stream, capnp::rpc::twoparty::Side::SERVER);
      auto rpc = capnp::makeRpcServer(network, makeBootstrap());
      network.onDisconnect().wait(io.waitScope);
    });
    KJ_IF_MAYBE(e, failure) {
      writeError(errorBuf, errorBufSize, e->getDescription());
      return SWARM_SERVE_FAILED;
    }
    return SWARM_SERVE_OK;
  } catch (...) {
    writeError(errorBuf, errorBufSize, "serve: unknown exception");
    return SWARM_SERVE_FAILED;
  }
}

}  // namespace swarm::sdk
