#include "fake_transport.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <kj/debug.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace swarm::fakes {

struct Identity {
  std::string nodeId;
  schema::NodeRole role = schema::NodeRole::WORKER;
  std::string clusterId;
};

// What setCredentials() gave us, immutable once made: a handshake keeps the one it started with.
struct Credentials : public kj::Refcounted {
  std::string chain;               // PEM sent in our hello; empty in join mode
  std::vector<std::string> roots;  // trusted root PEMs, also sent (a joiner pins one by digest)
  std::string clusterId;
  std::vector<std::string> revoked;
};

struct CredentialsSlot : public kj::Refcounted {
  kj::Maybe<kj::Own<Credentials>> current;

  kj::Own<Credentials> get() {
    KJ_IF_MAYBE(c, current) { return kj::addRef(**c); }
    sdk::fail("no credentials: call setCredentials() before listen() or dial()");
  }
};

namespace {

constexpr size_t MAX_FRAME = 1 << 20;
constexpr kj::StringPtr MAGIC = "swarm-fake-transport/1"_kj;
constexpr auto HANDSHAKE_TIMEOUT = 10 * kj::SECONDS;

// ---- certificates ---------------------------------------------------------------------------

struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct StoreFree {
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
};
struct StackFree {
  void operator()(STACK_OF(X509)* p) const { sk_X509_free(p); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

std::vector<X509Ptr> certsFromPem(const std::string& pem) {
  std::vector<X509Ptr> certs;
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) certs.emplace_back(cert);
  BIO_free(bio);
  ERR_clear_error();
  return certs;
}

std::string nameEntry(const X509_NAME* name, int nid) {
  int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) return {};
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index)));
  if (n < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

// SHA-256 of a root's PEM as a 50-character base-36 number: the digest join tokens carry.
std::string rootDigest(const std::string& pem) {
  unsigned char sum[32];
  unsigned len = 0;
  KJ_ASSERT(EVP_Digest(pem.data(), pem.size(), sum, &len, EVP_sha256(), nullptr) == 1);
  std::vector<unsigned char> n(sum, sum + 32);
  std::string out;
  for (bool zero = false; !zero;) {
    unsigned remainder = 0;
    zero = true;
    for (auto& byte : n) {
      unsigned cur = remainder * 256 + byte;
      byte = static_cast<unsigned char>(cur / 36);
      remainder = cur % 36;
      if (byte != 0) zero = false;
    }
    out.insert(out.begin(), "0123456789abcdefghijklmnopqrstuvwxyz"[remainder]);
  }
  return std::string(out.size() < 50 ? 50 - out.size() : 0, '0') + out;
}

// Identity from the leaf's subject, or why not.
std::string identityOf(X509* leaf, Identity& out) {
  const X509_NAME* subject = X509_get_subject_name(leaf);
  out.nodeId = nameEntry(subject, NID_commonName);
  out.clusterId = nameEntry(subject, NID_organizationName);
  std::string ou = nameEntry(subject, NID_organizationalUnitName);
  if (out.nodeId.empty() || out.clusterId.empty() || (ou != "swarm-worker" && ou != "swarm-manager")) {
    return "not a swarm node certificate (needs CN = node ID, OU = swarm-worker or swarm-manager, "
           "O = cluster ID)";
  }
  out.role = ou == "swarm-manager" ? schema::NodeRole::MANAGER : schema::NodeRole::WORKER;
  return {};
}

// Checks a peer's chain against `roots` (now), its cluster and revocation. Returns why it is
// refused, or "" with `out` filled.
std::string checkChain(const std::string& chainPem, const std::vector<std::string>& roots,
                       const std::string& clusterId, const std::vector<std::string>& revoked,
                       Identity& out) {
  auto chain = certsFromPem(chainPem);
  if (chain.empty()) return "the peer presented no certificate";
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  size_t trusted = 0;
  for (auto& pem : roots) {
    for (auto& root : certsFromPem(pem)) trusted += X509_STORE_add_cert(store.get(), root.get()) == 1;
  }
  if (trusted == 0) return "no trusted root CA is configured";
  std::unique_ptr<STACK_OF(X509), StackFree> untrusted(sk_X509_new_null());
  for (size_t i = 1; i < chain.size(); ++i) sk_X509_push(untrusted.get(), chain[i].get());
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].get(), untrusted.get());
  if (X509_verify_cert(ctx.get()) != 1) {
    int error = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return kj::str("the peer's certificate is not trusted: ", X509_verify_cert_error_string(error)).cStr();
  }
  std::string why = identityOf(chain[0].get(), out);
  if (!why.empty()) return "the peer's certificate is " + why;
  if (!clusterId.empty() && out.clusterId != clusterId) {
    return "the peer belongs to cluster " + out.clusterId + ", not " + clusterId;
  }
  if (std::find(revoked.begin(), revoked.end(), out.nodeId) != revoked.end()) {
    return "node " + out.nodeId + " is revoked";
  }
  return {};
}

// ---- addresses: loopback only, numeric, no DNS ----------------------------------------------

struct Address {
  sockaddr_storage storage = {};
  socklen_t length = 0;
  std::string host;  // as printed back: "127.0.0.1" or "[::1]"
};

// Why `text` is not a loopback host:port, or "".
std::string parseLoopback(kj::StringPtr text, Address& out) {
  std::string s(text.cStr());
  auto colon = s.rfind(':');
  if (colon == std::string::npos) return "address '" + s + "' is not host:port";
  std::string host = s.substr(0, colon), port = s.substr(colon + 1);
  char* end = nullptr;
  long number = strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || number < 0 || number > 65535) {
    return "address '" + s + "' has no valid port (0-65535)";
  }
  if (host == "localhost") host = "127.0.0.1";
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127) {
      return "address '" + s + "' is not loopback; fake-transport only uses 127.0.0.0/8 or ::1";
    }
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(number));
    out.length = sizeof(sockaddr_in);
    out.host = host;
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) {
      return "address '" + s + "' is not loopback; fake-transport only uses 127.0.0.0/8 or ::1";
    }
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(number));
    out.length = sizeof(sockaddr_in6);
    out.host = "[" + host + "]";
  } else {
    return "address '" + s + "' needs a numeric loopback host (127.0.0.1, [::1] or localhost)";
  }
  return {};
}

kj::String remoteOf(kj::AsyncIoStream& stream) {
  sockaddr_storage addr = {};
  uint length = sizeof(addr);
  stream.getpeername(reinterpret_cast<sockaddr*>(&addr), &length);
  char text[INET6_ADDRSTRLEN] = "?";
  if (addr.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text));
    return kj::str(text, ":", ntohs(a->sin_port));
  }
  auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
  inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof(text));
  return kj::str("[", text, "]:", ntohs(a->sin6_port));
}

// ---- framing: [u32 big-endian length][payload] ----------------------------------------------

void putU32(kj::Vector<kj::byte>& out, size_t n) {
  for (int shift = 24; shift >= 0; shift -= 8) out.add(static_cast<kj::byte>(n >> shift));
}

void putFrame(kj::Vector<kj::byte>& out, kj::ArrayPtr<const kj::byte> payload) {
  putU32(out, payload.size());
  out.addAll(payload);
}

kj::ArrayPtr<const kj::byte> bytesOf(const std::string& s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

kj::Promise<kj::Array<kj::byte>> readFrame(kj::AsyncIoStream& stream) {
  auto header = kj::heapArray<kj::byte>(4);
  auto* p = header.begin();
  return stream.read(p, 4).then([&stream, header = kj::mv(header)]() mutable {
    size_t n = (size_t(header[0]) << 24) | (size_t(header[1]) << 16) | (size_t(header[2]) << 8) | header[3];
    KJ_REQUIRE(n <= MAX_FRAME, "the peer sent an oversized handshake frame; is it fake-transport?");
    auto body = kj::heapArray<kj::byte>(n);
    if (n == 0) return kj::Promise<kj::Array<kj::byte>>(kj::mv(body));
    auto* b = body.begin();
    return stream.read(b, n).then([body = kj::mv(body)]() mutable { return kj::mv(body); });
  });
}

struct Hello {
  std::string chain;
  std::vector<std::string> roots;
};

// Hello frame payload: MAGIC, u32 item count, then items as frames: chain, roots...
void putHello(kj::Vector<kj::byte>& out, const Credentials& creds, bool withChain) {
  kj::Vector<kj::byte> payload;
  payload.addAll(MAGIC.asBytes());
  putU32(payload, 1 + creds.roots.size());
  putFrame(payload, bytesOf(withChain ? creds.chain : std::string()));
  for (auto& root : creds.roots) putFrame(payload, bytesOf(root));
  putFrame(out, payload);
}

kj::Maybe<Hello> parseHello(kj::ArrayPtr<const kj::byte> in) {
  if (in.size() < MAGIC.size() || in.slice(0, MAGIC.size()) != MAGIC.asBytes()) return nullptr;
  in = in.slice(MAGIC.size(), in.size());
  auto takeU32 = [&](size_t& n) {
    if (in.size() < 4) return false;
    n = (size_t(in[0]) << 24) | (size_t(in[1]) << 16) | (size_t(in[2]) << 8) | in[3];
    in = in.slice(4, in.size());
    return true;
  };
  size_t count = 0;
  if (!takeU32(count) || count < 1 || count > 16) return nullptr;
  Hello hello;
  for (size_t i = 0; i < count; ++i) {
    size_t n = 0;
    if (!takeU32(n) || n > in.size()) return nullptr;
    std::string item(reinterpret_cast<const char*>(in.begin()), n);
    in = in.slice(n, in.size());
    if (i == 0) hello.chain = kj::mv(item); else hello.roots.push_back(kj::mv(item));
  }
  return kj::mv(hello);
}

kj::Promise<void> writeAll(kj::AsyncIoStream& stream, kj::Vector<kj::byte> bytes) {
  auto array = bytes.releaseAsArray();
  auto* p = array.begin();
  return stream.write(p, array.size()).attach(kj::mv(array));
}

std::string text(const kj::Array<kj::byte>& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

void setIdentity(schema::Identity::Builder out, const Identity& id) {
  out.setNodeId(id.nodeId);
  out.setRole(id.role);
  out.setClusterId(id.clusterId);
}

// ---- connections ----------------------------------------------------------------------------

// One established connection: send() writes to the socket; a read pump feeds the peer's bytes to
// `inbound` in order, with flow control (one write in flight), and done() at end of stream.
// Dropping the capability closes the socket.
class ConnectionImpl final : public schema::Connection::Server {
 public:
  ConnectionImpl(kj::Own<kj::AsyncIoStream> streamParam, schema::ByteSink::Client inboundParam)
      : stream(kj::mv(streamParam)),
        inbound(kj::mv(inboundParam)),
        pump(readLoop().eagerlyEvaluate([](kj::Exception&&) {
          // The peer reset the connection or the kernel dropped its sink: nothing left to feed.
        })) {}

  // capnp delivers streaming calls one at a time (and close() after them), so writes stay ordered.
  kj::Promise<void> send(SendContext context) override {
    if (closed) sdk::fail("send() after close(): the connection is closed; dial again");
    auto chunk = context.getParams().getChunk();
    return stream->write(chunk.begin(), chunk.size());
  }

  kj::Promise<void> close(CloseContext) override {
    if (!closed) {
      closed = true;
      stream->shutdownWrite();
    }
    return kj::READY_NOW;
  }

 private:
  kj::Promise<void> readLoop() {
    return stream->tryRead(buffer, 1, sizeof(buffer)).then([this](size_t n) -> kj::Promise<void> {
      if (n == 0) return inbound.doneRequest().send().ignoreResult();
      auto request = inbound.writeRequest(capnp::MessageSize{n / sizeof(capnp::word) + 8, 0});
      request.setChunk(kj::arrayPtr(buffer, n));
      return request.send().then([this]() { return readLoop(); });
    });
  }

  kj::Own<kj::AsyncIoStream> stream;
  schema::ByteSink::Client inbound;
  bool closed = false;
  kj::byte buffer[64 * 1024];
  kj::Promise<void> pump;  // last: the loop uses the members above
};

// The listener side of one connection: hello exchange, check, verdicts, then hand it to the
// acceptor. Owns the stream until the connection is established.
struct Inbound {
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<Credentials> creds;
  kj::String remote;
  kj::Maybe<Identity> peer;  // null: anonymous (join mode)
};

class ListenerImpl final : public schema::Listener::Server, private kj::TaskSet::ErrorHandler {
 public:
  ListenerImpl(kj::Own<kj::ConnectionReceiver> receiverParam, std::string hostParam,
               schema::Acceptor::Client acceptorParam, kj::Own<CredentialsSlot> slotParam)
      : receiver(kj::mv(receiverParam)),
        host(kj::mv(hostParam)),
        acceptor(kj::mv(acceptorParam)),
        slot(kj::mv(slotParam)) {
    KJ_IF_MAYBE(r, receiver) { port = (*r)->getPort(); }
    loop = acceptLoop().eagerlyEvaluate([](kj::Exception&&) {});
  }

  kj::Promise<void> address(AddressContext context) override {
    context.getResults().setAddress(kj::str(host.c_str(), ":", port));
    return kj::READY_NOW;
  }

  kj::Promise<void> close(CloseContext) override {
    loop = nullptr;
    receiver = nullptr;
    return kj::READY_NOW;
  }

 private:
  kj::Promise<void> acceptLoop() {
    KJ_IF_MAYBE(r, receiver) {
      return (*r)->accept().then([this](kj::Own<kj::AsyncIoStream> stream) {
        handshakes.add(handshake(kj::mv(stream)));
        return acceptLoop();
      });
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> handshake(kj::Own<kj::AsyncIoStream> stream) {
    auto remote = remoteOf(*stream);
    auto state = kj::heap<Inbound>(Inbound{kj::mv(stream), slot->get(), kj::mv(remote), nullptr});
    auto& s = *state;
    auto exchange = readFrame(*s.stream).then([&s](kj::Array<kj::byte> frame) {
      std::string refusal;
      KJ_IF_MAYBE(hello, parseHello(frame)) {
        if (!hello->chain.empty()) {
          Identity id;
          refusal = checkChain(hello->chain, s.creds->roots, s.creds->clusterId, s.creds->revoked, id);
          if (refusal.empty()) s.peer = kj::mv(id);
        }
      } else {
        refusal = "the dialer did not send a fake-transport/1 hello";
      }
      kj::Vector<kj::byte> out;
      putHello(out, *s.creds, true);
      putFrame(out, bytesOf(refusal));
      return writeAll(*s.stream, kj::mv(out)).then([&s, refusal]() -> kj::Promise<kj::String> {
        if (!refusal.empty()) return kj::str(refusal.c_str());
        return readFrame(*s.stream).then([](kj::Array<kj::byte> verdict) {
          return verdict.size() == 0 ? kj::String() : kj::str("the dialer refused this node: ", verdict.asChars());
        });
      });
    });
    auto& timer = sdk::asyncIo().provider->getTimer();
    return timer.timeoutAfter(HANDSHAKE_TIMEOUT, kj::mv(exchange))
        .catch_([](kj::Exception&& e) { return kj::str("handshake failed: ", e.getDescription()); })
        .then([this, state = kj::mv(state)](kj::String refusal) mutable -> kj::Promise<void> {
          if (refusal.size() > 0) {
            auto request = acceptor.rejectedRequest();
            request.setRemote(state->remote);
            request.setReason(refusal);
            return request.send().ignoreResult();
          }
          auto request = acceptor.acceptedRequest();
          KJ_IF_MAYBE(id, state->peer) {
            setIdentity(request.initPeer().initNode(), *id);
          } else {
            request.initPeer().setAnonymous();
          }
          // The pump starts now; its writes queue on `inbound` until the acceptor answers.
          auto sink = kj::newPromiseAndFulfiller<schema::ByteSink::Client>();
          request.setConnection(kj::heap<ConnectionImpl>(kj::mv(state->stream),
                                                         schema::ByteSink::Client(kj::mv(sink.promise))));
          return request.send().then([fulfiller = kj::mv(sink.fulfiller)](auto response) mutable {
            fulfiller->fulfill(response.getInbound());
          });
        });
  }

  void taskFailed(kj::Exception&&) override {
    // The acceptor went away or refused a connection; the listener keeps serving.
  }

  kj::Maybe<kj::Own<kj::ConnectionReceiver>> receiver;
  std::string host;
  uint port = 0;
  schema::Acceptor::Client acceptor;
  kj::Own<CredentialsSlot> slot;
  kj::TaskSet handshakes{*this};
  kj::Maybe<kj::Promise<void>> loop;  // last: cancelled before the members it uses go
};

struct Expectation {
  schema::DialTarget::Expect::Which which;
  std::string value;  // node ID or root digest
};

struct Outbound {
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<Credentials> creds;
  Expectation expect;
  std::string address;
  Identity peer;
};

// The dialer's check of the listener: its verdict on us, its chain, and the target's expectation.
// Returns the refusal, or "" with s.peer filled.
std::string checkServer(Outbound& s, const kj::Array<kj::byte>& helloFrame, const kj::Array<kj::byte>& verdict) {
  if (verdict.size() > 0) return s.address + " refused this node: " + text(verdict);
  KJ_IF_MAYBE(hello, parseHello(helloFrame)) {
    if (s.expect.which == schema::DialTarget::Expect::JOIN_ROOT_DIGEST) {
      for (auto& root : hello->roots) {
        if (rootDigest(root) == s.expect.value) {
          std::string why = checkChain(hello->chain, {root}, {}, {}, s.peer);
          return why.empty() ? why : s.address + ": " + why;
        }
      }
      return s.address + " does not hold the root CA of the join token (digest mismatch)";
    }
    std::string why = checkChain(hello->chain, s.creds->roots, s.creds->clusterId, s.creds->revoked, s.peer);
    if (!why.empty()) return s.address + ": " + why;
    if (s.expect.which == schema::DialTarget::Expect::MANAGER && s.peer.role != schema::NodeRole::MANAGER) {
      return s.address + " is node " + s.peer.nodeId + ", a worker, but a manager was expected";
    }
    if (s.expect.which == schema::DialTarget::Expect::NODE && s.peer.nodeId != s.expect.value) {
      return s.address + " is node " + s.peer.nodeId + ", not the expected " + s.expect.value;
    }
    return {};
  }
  return s.address + " did not answer with a fake-transport/1 hello";
}

// The dialer side: our hello, their hello and verdict on us, our check and verdict on them.
// Resolves to "" when connected (s.peer filled), or to the refusal.
kj::Promise<kj::String> dialHandshake(Outbound& s) {
  bool joining = s.expect.which == schema::DialTarget::Expect::JOIN_ROOT_DIGEST;
  kj::Vector<kj::byte> out;
  putHello(out, *s.creds, !joining);
  return writeAll(*s.stream, kj::mv(out))
      .then([&s]() { return readFrame(*s.stream); })
      .then([&s](kj::Array<kj::byte> helloFrame) {
        return readFrame(*s.stream).then([&s, helloFrame = kj::mv(helloFrame)](kj::Array<kj::byte> verdict) {
          return kj::str(checkServer(s, helloFrame, verdict).c_str());
        });
      })
      .then([&s](kj::String refusal) {
        kj::Vector<kj::byte> out;
        putFrame(out, refusal.asBytes());
        return writeAll(*s.stream, kj::mv(out)).then([refusal = kj::mv(refusal)]() mutable { return kj::mv(refusal); });
      });
}
}  // namespace

FakeTransport::FakeTransport() : slot(kj::refcounted<CredentialsSlot>()) {}
FakeTransport::~FakeTransport() noexcept(false) {}

kj::Promise<void> FakeTransport::setCredentials(SetCredentialsContext context) {
  auto in = context.getParams().getCredentials();
  auto creds = kj::refcounted<Credentials>();
  creds->chain = std::string(in.getChain().asChars().begin(), in.getChain().size());
  for (auto root : in.getRoots()) {
    std::string pem(root.asChars().begin(), root.size());
    if (certsFromPem(pem).empty()) sdk::fail("credentials.roots holds an entry that is not a PEM certificate");
    creds->roots.push_back(kj::mv(pem));
  }
  creds->clusterId = in.getClusterId();
  for (auto id : in.getRevokedNodeIds()) creds->revoked.push_back(id);

  if (!creds->chain.empty()) {
    auto chain = certsFromPem(creds->chain);
    if (chain.empty()) sdk::fail("credentials.chain is not a PEM certificate chain");
    Identity own;
    std::string why = identityOf(chain[0].get(), own);
    if (!why.empty()) sdk::fail(kj::str("credentials.chain is ", why.c_str()));
    if (!creds->clusterId.empty() && own.clusterId != creds->clusterId) {
      sdk::fail(kj::str("credentials.chain is for cluster ", own.clusterId.c_str(),
                        " but credentials.clusterId is ", creds->clusterId.c_str()));
    }
    // No TLS means the key is never used, but a key that does not match is still a mistake.
    BIO* bio = BIO_new_mem_buf(in.getKey().begin(), static_cast<int>(in.getKey().size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    bool matches = key != nullptr && X509_check_private_key(chain[0].get(), key) == 1;
    EVP_PKEY_free(key);
    ERR_clear_error();
    if (!matches) sdk::fail("credentials.key is not the PEM private key of credentials.chain's certificate");
  }
  slot->current = kj::mv(creds);
  return kj::READY_NOW;
}

kj::Promise<void> FakeTransport::listen(ListenContext context) {
  auto params = context.getParams();
  slot->get();  // refuses early when no credentials are set
  Address address;
  std::string why = parseLoopback(params.getAddress(), address);
  if (!why.empty()) sdk::fail(kj::str("listen: ", why.c_str()));
  auto receiver = sdk::asyncIo().provider->getNetwork()
                      .getSockaddr(&address.storage, address.length)->listen();
  context.getResults().setListener(kj::heap<ListenerImpl>(kj::mv(receiver), address.host,
                                                          params.getAcceptor(), kj::addRef(*slot)));
  return kj::READY_NOW;
}

kj::Promise<void> FakeTransport::dial(DialContext context) {
  auto params = context.getParams();
  auto target = params.getTarget();
  auto expect = target.getExpect();
  Expectation expectation{expect.which(), {}};
  if (expect.isNode()) expectation.value = expect.getNode();
  if (expect.isJoinRootDigest()) expectation.value = expect.getJoinRootDigest();
  auto state = kj::heap<Outbound>(Outbound{{}, slot->get(), kj::mv(expectation), target.getAddress(), {}});

  Address address;
  std::string why = parseLoopback(target.getAddress(), address);
  if (!why.empty()) {
    context.getResults().initResult().setRefused(why);
    return kj::READY_NOW;
  }
  auto& io = sdk::asyncIo();
  auto connect = io.provider->getNetwork().getSockaddr(&address.storage, address.length);
  auto& s = *state;
  auto handshake = connect->connect().attach(kj::mv(connect)).then(
      [&s](kj::Own<kj::AsyncIoStream> stream) {
        s.stream = kj::mv(stream);
        return dialHandshake(s);
      },
      [&s](kj::Exception&& e) { return kj::str("cannot reach ", s.address.c_str(), ": ", e.getDescription()); });
  return io.provider->getTimer()
      .timeoutAfter(HANDSHAKE_TIMEOUT, kj::mv(handshake))
      .catch_([&s](kj::Exception&& e) {
        return kj::str("handshake with ", s.address.c_str(), " failed: ", e.getDescription());
      })
      .then([context, inbound = params.getInbound(), state = kj::mv(state)](kj::String refusal) mutable {
        auto result = context.getResults().initResult();
        if (refusal.size() > 0) {
          result.setRefused(refusal);
          return;
        }
        auto connected = result.initConnected();
        setIdentity(connected.initPeer().initNode(), state->peer);
        connected.setConnection(kj::heap<ConnectionImpl>(kj::mv(state->stream), kj::mv(inbound)));
      });
}

}  // namespace swarm::fakes
