#include "transport.h"

#include <kj/debug.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>

namespace swarm::tls {

namespace {

// Bytes read from the TLS stream per ByteSink.write(), decrypted straight into the call's message.
// An idle connection reserves one record's worth; a read that fills the chunk grows it (x4, to
// 256 KiB) so bulk data crosses the plugin boundary in few calls; small reads shrink it back.
constexpr size_t PUMP_MIN = 16 * 1024;
constexpr size_t PUMP_MAX = 256 * 1024;
constexpr unsigned SMALL_READS_BEFORE_SHRINK = 8;

kj::String formatSockaddr(const sockaddr_storage& addr) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (addr.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &a->sin_addr, text, sizeof(text));
    return kj::str(text, ":", ntohs(a->sin_port));
  }
  if (addr.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof(text));
    return kj::str("[", text, "]:", ntohs(a->sin6_port));
  }
  if (addr.ss_family == AF_UNIX) {
    return kj::str("unix:", reinterpret_cast<const sockaddr_un*>(&addr)->sun_path);
  }
  return kj::str("?");
}

kj::String remoteOf(kj::AsyncIoStream& stream) {
  sockaddr_storage addr = {};
  uint length = sizeof(addr);
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { stream.getpeername(reinterpret_cast<sockaddr*>(&addr), &length); })) {
    return kj::str("(unknown peer)");
  }
  return formatSockaddr(addr);
}

void setIdentity(schema::Identity::Builder out, const PeerIdentity& id) {
  out.setNodeId(id.nodeId);
  out.setRole(id.role);
  out.setClusterId(id.clusterId);
}

int64_t millis(kj::Duration d) { return d / kj::MILLISECONDS; }

}  // namespace

// ---- connections --------------------------------------------------------------------------------

// One established connection. send() encrypts and writes; the read pump decrypts and feeds the
// kernel's ByteSink one chunk at a time, reading the next only after the sink took the last
// (ByteSink.write is a stream call: its promise resolves when the kernel wants more). Dropping
// the capability closes the connection gracefully (close_notify, then the socket).
class ConnectionImpl final : public schema::Connection::Server {
 public:
  ConnectionImpl(kj::Own<Shared> shared, Established channel, kj::Own<CredentialSet> creds,
                 kj::Promise<schema::ByteSink::Client> inboundPromise, kj::Maybe<std::string> reuseAddress,
                 kj::String remote)
      : shared(kj::mv(shared)),
        tls(kj::mv(channel.tls)),
        creds(kj::mv(creds)),
        peer(kj::mv(channel.peer)),
        remote(kj::mv(remote)) {
    KJ_IF_MAYBE(address, reuseAddress) {
      reuseEntry = this->shared->reusable.emplace(kj::mv(*address), this);
    }
    pump = inboundPromise
               .then([this](schema::ByteSink::Client sink) {
                 inbound = kj::mv(sink);
                 return pumpLoop();
               })
               .eagerlyEvaluate([this](kj::Exception&&) {
                 // The peer reset or truncated the connection, or the kernel's sink failed: stop
                 // feeding it. send() reports a broken connection on its own.
                 reading = false;
                 inbound = nullptr;
                 forget();
               });
  }

  ~ConnectionImpl() noexcept(false) {
    forget();
    pump = nullptr;  // stop reading before the stream goes
    shared->closeInBackground(kj::mv(tls));
  }

  kj::Promise<void> send(SendContext context) override {
    if (closed) sdk::fail("send() after close(): this connection is closed; dial again");
    // Encrypted at once; the promise resolves when the records are on the socket, and capnp
    // delivers the next send() only then.
    return tls->write(context.getParams().getChunk()).catch_([this](kj::Exception&& e) -> kj::Promise<void> {
      forget();
      return kj::Exception(kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__,
                           kj::str("the connection to ", remote, " is lost: ", e.getDescription()));
    });
  }

  kj::Promise<void> close(CloseContext) override {
    forget();
    if (closed) return kj::READY_NOW;
    closed = true;
    // A peer that is already gone needs no close_notify.
    return tls->shutdownWrite().catch_([](kj::Exception&&) {});
  }

  // Whether a new dial may be handed this connection.
  bool usable() const { return !closed && reading && !tls->peerClosed() && tls->failure() == nullptr; }
  const kj::Maybe<PeerIdentity>& peerIdentity() const { return peer; }
  const CredentialSet& credentials() const { return *creds; }
  SSL* ssl() const { return tls->ssl(); }
  schema::Connection::Client another() { return thisCap(); }

 private:
  kj::Promise<void> pumpLoop() {
    auto request = inbound.writeRequest(capnp::MessageSize{chunk / sizeof(capnp::word) + 16, 0});
    auto data = capnp::Orphanage::getForMessageContaining(schema::ByteSink::WriteParams::Builder(request))
                    .newOrphan<capnp::Data>(chunk);
    kj::byte* into = data.get().begin();
    size_t size = chunk;
    return tls->tryRead(into, 1, size).then(
        [this, request = kj::mv(request), data = kj::mv(data), size](size_t n) mutable -> kj::Promise<void> {
          if (n == 0) {
            // close_notify: everything the peer sent has been delivered.
            reading = false;
            forget();
            return inbound.doneRequest().send().ignoreResult().then([this]() { inbound = nullptr; });
          }
          if (n == size) {
            chunk = std::min(PUMP_MAX, size * 4);
            smallReads = 0;
          } else if (n < PUMP_MIN && chunk > PUMP_MIN && ++smallReads >= SMALL_READS_BEFORE_SHRINK) {
            chunk = PUMP_MIN;
            smallReads = 0;
          }
          data.truncate(static_cast<uint>(n));
          request.adoptChunk(kj::mv(data));
          return request.send().then([this]() { return pumpLoop(); });
        });
  }

  // Out of the reuse table: closed, broken or gone.
  void forget() {
    KJ_IF_MAYBE(entry, reuseEntry) {
      shared->reusable.erase(*entry);
      reuseEntry = nullptr;
    }
  }

  kj::Own<Shared> shared;
  kj::Own<TlsStream> tls;
  kj::Own<CredentialSet> creds;  // what the peer was checked against
  kj::Maybe<PeerIdentity> peer;
  kj::String remote;
  size_t chunk = PUMP_MIN;
  unsigned smallReads = 0;
  schema::ByteSink::Client inbound = nullptr;
  kj::Maybe<std::multimap<std::string, ConnectionImpl*>::iterator> reuseEntry;
  bool closed = false;
  bool reading = true;
  kj::Maybe<kj::Promise<void>> pump;  // last: it uses the members above
};

void Shared::closeInBackground(kj::Own<TlsStream> stream) {
  auto& s = *stream;
  closing.add(timer.timeoutAfter(settings.handshakeTimeout, s.shutdownWrite()).attach(kj::mv(stream)));
}

// ---- listeners ----------------------------------------------------------------------------------

class ListenerImpl final : public schema::Listener::Server, private kj::TaskSet::ErrorHandler {
 public:
  ListenerImpl(kj::Own<Shared> shared, kj::Own<kj::ConnectionReceiver> receiverParam,
               schema::Acceptor::Client acceptor)
      : shared(kj::mv(shared)), acceptor(kj::mv(acceptor)), tasks(*this) {
    sockaddr_storage addr = {};
    uint length = sizeof(addr);
    receiverParam->getsockname(reinterpret_cast<sockaddr*>(&addr), &length);
    bound = formatSockaddr(addr);
    receiver = kj::mv(receiverParam);
    loop = acceptLoop().eagerlyEvaluate([](kj::Exception&&) {});
  }

  kj::Promise<void> address(AddressContext context) override {
    context.getResults().setAddress(bound);
    return kj::READY_NOW;
  }

  kj::Promise<void> close(CloseContext) override {
    // Handshakes already under way finish; established connections belong to the kernel.
    loop = nullptr;
    receiver = nullptr;
    return kj::READY_NOW;
  }

 private:
  kj::Promise<void> acceptLoop() {
    KJ_IF_MAYBE(r, receiver) {
      return (*r)->accept().then([this](kj::Own<kj::AsyncIoStream> stream) {
        admit(kj::mv(stream));
        return acceptLoop();
      });
    }
    return kj::READY_NOW;
  }

  void admit(kj::Own<kj::AsyncIoStream> stream) {
    auto remote = remoteOf(*stream);
    auto& settings = shared->settings;
    if (pending >= settings.maxHandshakes) {
      reject(remote, kj::str("too many TLS handshakes in progress (", pending,
                             "; setting max-handshakes); connection closed"));
      return;
    }
    kj::Own<CredentialSet> creds;
    KJ_IF_MAYBE(c, shared->credentials) { creds = kj::addRef(**c); }
    if (creds.get() == nullptr || !creds->hasCertificate()) {
      reject(remote, kj::str("this node has no certificate now; connection closed"));
      return;
    }
    ++pending;
    auto& c = *creds;
    auto handshake = acceptChannel(kj::mv(stream), kj::addRef(c), {shared->timer, settings.handshakeTimeout});
    tasks.add(handshake.then(
        [this, remote = kj::str(remote), creds = kj::mv(creds)](Established channel) mutable {
          --pending;
          return hand(kj::mv(channel), kj::mv(creds), kj::mv(remote));
        },
        [this, remote = kj::str(remote)](kj::Exception&& e) {
          --pending;
          reject(remote, e.getDescription());
        }));
  }

  kj::Promise<void> hand(Established channel, kj::Own<CredentialSet> creds, kj::String remote) {
    auto request = acceptor.acceptedRequest();
    KJ_IF_MAYBE(id, channel.peer) {
      setIdentity(request.initPeer().initNode(), *id);
    } else {
      request.initPeer().setAnonymous();
    }
    // The pump starts once the acceptor has named the sink for this connection's bytes.
    auto sink = kj::newPromiseAndFulfiller<schema::ByteSink::Client>();
    request.setConnection(kj::heap<ConnectionImpl>(kj::addRef(*shared), kj::mv(channel), kj::mv(creds),
                                                   kj::mv(sink.promise), nullptr, kj::mv(remote)));
    return request.send().then(
        [fulfiller = kj::mv(sink.fulfiller)](auto response) mutable { fulfiller->fulfill(response.getInbound()); });
  }

  void reject(kj::StringPtr remote, kj::StringPtr reason) {
    auto request = acceptor.rejectedRequest();
    request.setRemote(remote);
    request.setReason(reason);
    tasks.add(request.send().ignoreResult());
  }

  void taskFailed(kj::Exception&&) override {
    // The acceptor refused a connection or went away; the listener keeps serving.
  }

  kj::Own<Shared> shared;
  schema::Acceptor::Client acceptor;
  kj::String bound;
  unsigned pending = 0;
  kj::TaskSet tasks;
  kj::Maybe<kj::Own<kj::ConnectionReceiver>> receiver;
  kj::Maybe<kj::Promise<void>> loop;  // last: cancelled before the members it uses go
};

// ---- the transport ------------------------------------------------------------------------------

TlsTransport::TlsTransport() : shared(kj::refcounted<Shared>(sdk::asyncIo().provider->getTimer())) {}
TlsTransport::~TlsTransport() noexcept(false) {}

kj::Promise<void> TlsTransport::onConfigure(const sdk::Settings& s) {
  s.requireOnly({"handshake-timeout-ms", "backoff-initial-ms", "backoff-max-ms", "max-handshakes", "reuse-connections"});
  TransportSettings t;
  t.handshakeTimeout = s.getInt("handshake-timeout-ms", 10000, 10, 600000) * kj::MILLISECONDS;
  t.backoffInitial = s.getInt("backoff-initial-ms", 100, 0, 600000) * kj::MILLISECONDS;
  t.backoffMax = s.getInt("backoff-max-ms", 10000, 0, 3600000) * kj::MILLISECONDS;
  t.maxHandshakes = static_cast<unsigned>(s.getInt("max-handshakes", 128, 1, 100000));
  t.reuseConnections = s.getBool("reuse-connections", true);
  if (t.backoffMax < t.backoffInitial) {
    sdk::fail(kj::str("setting 'backoff-max-ms' (", millis(t.backoffMax), ") is below 'backoff-initial-ms' (",
                      millis(t.backoffInitial), "); raise it or lower the initial delay"));
  }
  shared->settings = t;
  return kj::READY_NOW;
}

kj::Promise<void> TlsTransport::setCredentials(SetCredentialsContext context) {
  auto creds = CredentialSet::make(CredentialInput::from(context.getParams().getCredentials()));
  if (!creds->ownCertificateProblem().empty()) {
    log(sdk::LogLevel::WARN, kj::str("this node's own certificate will be refused by its peers: ",
                                   creds->ownCertificateProblem().c_str()));
  }
  shared->credentials = kj::mv(creds);
  return kj::READY_NOW;
}

kj::Promise<void> TlsTransport::listen(ListenContext context) {
  auto params = context.getParams();
  KJ_IF_MAYBE(c, shared->credentials) {
    if (!(*c)->hasCertificate()) {
      sdk::fail("listen: this node has no certificate (join mode); set credentials with a chain and key first");
    }
  } else {
    sdk::fail("listen: no credentials; call setCredentials() first");
  }
  kj::String address = kj::str(params.getAddress());
  auto acceptor = params.getAcceptor();
  return sdk::asyncIo()
      .provider->getNetwork()
      .parseAddress(address)
      .then(
          [this, context, acceptor](kj::Own<kj::NetworkAddress> where) mutable {
            auto receiver = where->listen();
            context.getResults().setListener(kj::heap<ListenerImpl>(kj::addRef(*shared), kj::mv(receiver), acceptor));
          },
          [address = kj::mv(address)](kj::Exception&& e) {
            sdk::fail(kj::str("listen: cannot use address '", address, "' (give host:port, e.g. 0.0.0.0:2377): ",
                              e.getDescription()));
          });
}

kj::Maybe<ConnectionImpl&> TlsTransport::findReusable(const std::string& address, const Expectation& expect,
                                                      const CredentialSet& creds, PeerIdentity& peer) {
  if (!shared->settings.reuseConnections || expect.kind == Expectation::JOIN) return nullptr;
  auto range = shared->reusable.equal_range(address);
  for (auto it = range.first; it != range.second; ++it) {
    ConnectionImpl& connection = *it->second;
    if (!connection.usable()) continue;
    PeerIdentity id;
    KJ_IF_MAYBE(known, connection.peerIdentity()) { id = *known; } else { continue; }
    if (&connection.credentials() != &creds) {
      // Credentials changed since (renewal, rotation, revocation): check the peer again.
      id = {};
      if (!creds.verifyPeerChain(SSL_get_peer_cert_chain(connection.ssl()), true, id).empty()) continue;
    }
    if (expect.kind == Expectation::MANAGER && id.role != schema::NodeRole::MANAGER) continue;
    if (expect.kind == Expectation::NODE && id.nodeId != expect.value) continue;
    peer = id;
    return connection;
  }
  return nullptr;
}

kj::Promise<void> TlsTransport::dial(DialContext context) {
  auto params = context.getParams();
  auto target = params.getTarget();
  std::string address = target.getAddress();
  auto refuse = [&](kj::StringPtr why) -> kj::Promise<void> {
    context.getResults().initResult().setRefused(kj::str(address.c_str(), ": ", why));
    return kj::READY_NOW;
  };

  Expectation expect;
  auto e = target.getExpect();
  switch (e.which()) {
    case schema::DialTarget::Expect::ANY_MEMBER: expect.kind = Expectation::ANY_MEMBER; break;
    case schema::DialTarget::Expect::MANAGER: expect.kind = Expectation::MANAGER; break;
    case schema::DialTarget::Expect::NODE:
      expect = {Expectation::NODE, e.getNode()};
      if (expect.value.empty()) return refuse("expect.node is empty; give the node ID to expect");
      break;
    case schema::DialTarget::Expect::JOIN_ROOT_DIGEST:
      expect = {Expectation::JOIN, e.getJoinRootDigest()};
      if (!isRootDigest(expect.value)) {
        return refuse(kj::str("expect.joinRootDigest '", expect.value.c_str(),
                              "' is not a root digest: 50 characters of 0-9a-z, as in a join token"));
      }
      break;
    default: return refuse("unknown DialTarget.expect; this transport knows anyMember, manager, node and joinRootDigest");
  }
  if (address.empty()) return refuse("the target address is empty; give host:port");

  kj::Own<CredentialSet> creds;
  KJ_IF_MAYBE(c, shared->credentials) {
    creds = kj::addRef(**c);
  } else {
    return refuse("no credentials: call setCredentials() before dial()");
  }
  if (expect.kind != Expectation::JOIN && !creds->hasCertificate()) {
    return refuse("this node has no certificate, so it can only dial in join mode (expect.joinRootDigest); "
                  "set credentials with a chain and key to dial members");
  }

  PeerIdentity reusedPeer;
  KJ_IF_MAYBE(connection, findReusable(address, expect, *creds, reusedPeer)) {
    auto connected = context.getResults().initResult().initConnected();
    setIdentity(connected.initPeer().initNode(), reusedPeer);
    connected.setConnection(connection->another());
    connected.setReused(true);
    return kj::READY_NOW;
  }

  auto& timer = shared->timer;
  auto& settings = shared->settings;
  auto found = shared->backoff.find(address);
  if (found != shared->backoff.end() && timer.now() < found->second.retryAt) {
    return refuse(kj::str("not dialing again for another ", millis(found->second.retryAt - timer.now()),
                          " ms: the last ", found->second.failures, " attempt(s) failed (",
                          found->second.lastError.c_str(),
                          "); transport-tls backs off from an address that keeps failing "
                          "(settings backoff-initial-ms, backoff-max-ms)"));
  }

  auto timeout = settings.handshakeTimeout;
  auto connect =
      sdk::asyncIo()
          .provider->getNetwork()
          .parseAddress(address)
          .then([](kj::Own<kj::NetworkAddress> where) { return where->connect().attach(kj::mv(where)); })
          .exclusiveJoin(timer.afterDelay(timeout).then([timeout]() -> kj::Own<kj::AsyncIoStream> {
            kj::throwFatalException(kj::Exception(kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__,
                                                  kj::str("no TCP connection within ", millis(timeout), " ms")));
          }))
          .catch_([](kj::Exception&& e) -> kj::Own<kj::AsyncIoStream> {
            kj::throwFatalException(kj::Exception(kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__,
                                                  kj::str("cannot reach it: ", e.getDescription())));
          });
  auto& c = *creds;
  return connect
      .then([&timer, timeout, &c, expect](kj::Own<kj::AsyncIoStream> stream) mutable {
        return dialChannel(kj::mv(stream), kj::addRef(c), kj::mv(expect), {timer, timeout});
      })
      .then(
          [this, context, address, creds = kj::mv(creds), inbound = params.getInbound(),
           joining = expect.kind == Expectation::JOIN](Established channel) mutable {
            shared->backoff.erase(address);
            auto connected = context.getResults().initResult().initConnected();
            KJ_IF_MAYBE(id, channel.peer) { setIdentity(connected.initPeer().initNode(), *id); }
            kj::Maybe<std::string> reuseAs;
            if (!joining) reuseAs = address;
            connected.setConnection(kj::heap<ConnectionImpl>(kj::addRef(*shared), kj::mv(channel), kj::mv(creds),
                                                             kj::Promise<schema::ByteSink::Client>(kj::mv(inbound)),
                                                             kj::mv(reuseAs), kj::str(address.c_str())));
          },
          [this, context, address](kj::Exception&& e) mutable {
            if (e.getType() == kj::Exception::Type::DISCONNECTED) {
              // Nobody working there: back off before the next attempt.
              auto& settings = shared->settings;
              auto& entry = shared->backoff[address];
              ++entry.failures;
              entry.lastError = e.getDescription().cStr();
              kj::Duration delay = settings.backoffInitial;
              for (unsigned i = 1; i < entry.failures && delay < settings.backoffMax; ++i) delay = delay * 2;
              entry.retryAt = shared->timer.now() + std::min(delay, settings.backoffMax);
            }
            context.getResults().initResult().setRefused(kj::str(address.c_str(), ": ", e.getDescription()));
          });
}

}  // namespace swarm::tls
