// transport-tls through the real plugin boundary: every case starts the plugin with the kernel's
// own host code (PluginInstance, in process), plays the kernel's side (acceptor, byte sinks) on
// this thread's event loop, and mints its own CAs and certificates. Raw OpenSSL and plain TCP
// clients play the peers a transport must refuse. Each refusal is checked for its words on both
// ends, and the listener must serve a good node right after.
//
// Seeded: TRANSPORT_TLS_SEED=<n> replays a run; the seed is printed with every failure.
#include "test_pki.h"

#include "config.h"
#include "errors.h"
#include "logging.h"
#include "plugin_host.h"

#include <swarm/schema/transport.capnp.h>

#include <catch2/catch.hpp>
#include <kj/async-io.h>
#include <kj/debug.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#ifndef TRANSPORT_TLS_PLUGIN
#error "TRANSPORT_TLS_PLUGIN must name the plugin library"
#endif

namespace swarm::tls::testing {
namespace {

using kernel::PluginConfig;
using kernel::PluginInstance;
using schema::NodeRole;
using schema::Transport;
using Settings = std::vector<std::pair<std::string, std::string>>;

constexpr auto LIMIT = 20 * kj::SECONDS;

uint64_t testSeed() {
  const char* text = getenv("TRANSPORT_TLS_SEED");
  return text != nullptr ? strtoull(text, nullptr, 10) : 20261125;
}

// TRANSPORT_TLS_VERBOSE=1 prints every refusal and rejection, to read the messages as an operator.
void show(const char* kind, const std::string& text) {
  static bool verbose = getenv("TRANSPORT_TLS_VERBOSE") != nullptr;
  if (verbose) fprintf(stderr, "[%s] %s\n", kind, text.c_str());
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

capnp::Data::Reader data(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

// ---- the kernel's side --------------------------------------------------------------------------

struct Inbox : public kj::Refcounted {
  std::string bytes;
  bool done = false;
  bool released = false;  // the plugin dropped the sink
  kj::Maybe<kj::ForkedPromise<void>> gate;  // while set, write() does not complete
};

class Sink final : public schema::ByteSink::Server {
 public:
  explicit Sink(kj::Own<Inbox> inbox) : inbox(kj::mv(inbox)) {}
  ~Sink() noexcept(false) { inbox->released = true; }

  kj::Promise<void> write(WriteContext context) override {
    auto chunk = context.getParams().getChunk();
    inbox->bytes.append(reinterpret_cast<const char*>(chunk.begin()), chunk.size());
    KJ_IF_MAYBE(g, inbox->gate) { return g->addBranch(); }
    return kj::READY_NOW;
  }

  kj::Promise<void> done(DoneContext) override {
    inbox->done = true;
    return kj::READY_NOW;
  }

 private:
  kj::Own<Inbox> inbox;
};

struct Seen {
  bool anonymous = false;
  std::string nodeId, clusterId;
  NodeRole role = NodeRole::WORKER;
};

Seen seen(schema::Peer::Reader peer) {
  if (peer.isAnonymous()) return {true, {}, {}, NodeRole::WORKER};
  auto id = peer.getNode();
  return {false, id.getNodeId(), id.getClusterId(), id.getRole()};
}

struct AcceptorLog : public kj::Refcounted {
  struct Entry {
    Seen peer;
    schema::Connection::Client connection;
    kj::Own<Inbox> inbox;
  };
  std::vector<Entry> accepted;
  std::vector<std::string> rejected;
  // Applied to the next accepted connection's sink, then cleared.
  kj::Maybe<kj::ForkedPromise<void>> nextGate;
};

class Acceptor final : public schema::Acceptor::Server {
 public:
  explicit Acceptor(kj::Own<AcceptorLog> log) : log(kj::mv(log)) {}

  kj::Promise<void> accepted(AcceptedContext context) override {
    auto inbox = kj::refcounted<Inbox>();
    KJ_IF_MAYBE(g, log->nextGate) {
      inbox->gate = g->addBranch().fork();
      log->nextGate = nullptr;
    }
    context.getResults().setInbound(kj::heap<Sink>(kj::addRef(*inbox)));
    log->accepted.push_back({seen(context.getParams().getPeer()), context.getParams().getConnection(), kj::mv(inbox)});
    return kj::READY_NOW;
  }

  kj::Promise<void> rejected(RejectedContext context) override {
    auto params = context.getParams();
    log->rejected.push_back(std::string(params.getRemote().cStr()) + ": " + params.getReason().cStr());
    show("rejected", log->rejected.back());
    return kj::READY_NOW;
  }

 private:
  kj::Own<AcceptorLog> log;
};

// ---- harness ------------------------------------------------------------------------------------

struct Listening {
  schema::Listener::Client listener = nullptr;
  std::string address;
  uint16_t port = 0;
  kj::Own<AcceptorLog> log;
};

struct Dialed {
  bool connected = false;
  bool reused = false;
  Seen peer;
  schema::Connection::Client connection = nullptr;
  std::string refused;
  kj::Own<Inbox> inbox;
};

struct Expect {
  enum Kind { ANY, MANAGER, NODE, JOIN } kind = ANY;
  std::string value;
};

class Harness {
 public:
  Harness() : io(kj::setupAsyncIo()) { kernel::initLogging(spdlog::level::warn); }
  ~Harness() noexcept(false) {
    for (auto& instance : instances) {
      kj::runCatchingExceptions([&]() { instance->stop().wait(io.waitScope); });
    }
  }

  Transport::Client start(const Settings& settings = {}) {
    PluginConfig config;
    config.kind = schema::Kind::TRANSPORT;
    config.library = TRANSPORT_TLS_PLUGIN;
    config.onCrash = kernel::CrashPolicy::stop;
    config.settings = settings;
    config.sourceFile = "transport_tls_test";
    instances.push_back(PluginInstance::start(io, config, {}));
    wait(instances.back()->configure(), "configure");
    return instances.back()->bootstrap().castAs<Transport>();
  }

  // configure()'s error for these settings ("" if it succeeded).
  std::string configureError(const Settings& settings) {
    PluginConfig config;
    config.kind = schema::Kind::TRANSPORT;
    config.library = TRANSPORT_TLS_PLUGIN;
    config.onCrash = kernel::CrashPolicy::stop;
    config.settings = settings;
    config.sourceFile = "transport_tls_test";
    instances.push_back(PluginInstance::start(io, config, {}));
    try {
      instances.back()->configure().wait(io.waitScope);
    } catch (const kj::Exception& e) {
      return kernel::describe(e);
    } catch (const std::exception& e) {
      return e.what();
    }
    return {};
  }

  template <typename T>
  T wait(kj::Promise<T>&& promise, const char* what) {
    return promise
        .exclusiveJoin(io.provider->getTimer().afterDelay(LIMIT).then([what]() -> kj::Promise<T> {
          return KJ_EXCEPTION(FAILED, "no answer within the test's limit", what);
        }))
        .wait(io.waitScope);
  }

  // Runs the loop until done() holds; false after `limit`.
  template <typename F>
  bool waitUntil(F&& done, kj::Duration limit = LIMIT) {
    auto& timer = io.provider->getTimer();
    auto deadline = timer.now() + limit;
    while (!done()) {
      if (timer.now() > deadline) return false;
      timer.afterDelay(2 * kj::MILLISECONDS).wait(io.waitScope);
    }
    return true;
  }

  void sleep(kj::Duration d) { io.provider->getTimer().afterDelay(d).wait(io.waitScope); }

  kj::AsyncIoContext io;
  std::vector<kj::Own<PluginInstance>> instances;
};

struct Creds {
  Creds() = default;
  Creds(const Node* node, std::vector<std::string> roots, std::string clusterId,
        std::vector<std::string> revoked = {}, bool tls12 = false)
      : node(node), roots(kj::mv(roots)), clusterId(kj::mv(clusterId)), revoked(kj::mv(revoked)), tls12(tls12) {}

  const Node* node = nullptr;
  std::vector<std::string> roots;
  std::string clusterId;
  std::vector<std::string> revoked;
  bool tls12 = false;
};

kj::Promise<void> sendCredentials(Transport::Client& t, const Creds& c) {
  auto request = t.setCredentialsRequest();
  auto out = request.initCredentials();
  if (c.node != nullptr) {
    out.setChain(data(c.node->chainPem));
    out.setKey(data(c.node->keyPem));
  }
  auto roots = out.initRoots(static_cast<unsigned>(c.roots.size()));
  for (unsigned i = 0; i < c.roots.size(); ++i) roots.set(i, data(c.roots[i]));
  out.setClusterId(c.clusterId);
  out.setMinVersion(c.tls12 ? schema::TlsVersion::TLS12 : schema::TlsVersion::TLS13);
  auto revoked = out.initRevokedNodeIds(static_cast<unsigned>(c.revoked.size()));
  for (unsigned i = 0; i < c.revoked.size(); ++i) revoked.set(i, c.revoked[i]);
  return request.send().ignoreResult();
}

void setCredentials(Harness& h, Transport::Client& t, const Creds& c) { h.wait(sendCredentials(t, c), "setCredentials"); }

std::string credentialsError(Harness& h, Transport::Client& t, const Creds& c) {
  try {
    setCredentials(h, t, c);
  } catch (const kj::Exception& e) {
    return kernel::describe(e);
  }
  return {};
}

Listening listen(Harness& h, Transport::Client& t, const char* address = "127.0.0.1:0") {
  auto log = kj::refcounted<AcceptorLog>();
  auto request = t.listenRequest();
  request.setAddress(address);
  request.setAcceptor(kj::heap<Acceptor>(kj::addRef(*log)));
  auto listener = h.wait(request.send(), "listen").getListener();
  std::string bound = h.wait(listener.addressRequest().send(), "Listener.address").getAddress();
  auto colon = bound.rfind(':');
  return {listener, bound, static_cast<uint16_t>(std::stoi(bound.substr(colon + 1))), kj::mv(log)};
}

Dialed dial(Harness& h, Transport::Client& t, const std::string& address, const Expect& expect = {}) {
  auto inbox = kj::refcounted<Inbox>();
  auto request = t.dialRequest();
  auto target = request.initTarget();
  target.setAddress(address);
  switch (expect.kind) {
    case Expect::ANY: target.getExpect().setAnyMember(); break;
    case Expect::MANAGER: target.getExpect().setManager(); break;
    case Expect::NODE: target.getExpect().setNode(expect.value); break;
    case Expect::JOIN: target.getExpect().setJoinRootDigest(expect.value); break;
  }
  request.setInbound(kj::heap<Sink>(kj::addRef(*inbox)));
  auto response = h.wait(request.send(), "dial");
  auto result = response.getResult();
  Dialed out;
  out.inbox = kj::mv(inbox);
  if (result.isConnected()) {
    out.connected = true;
    out.reused = result.getConnected().getReused();
    out.peer = seen(result.getConnected().getPeer());
    out.connection = result.getConnected().getConnection();
  } else {
    out.refused = result.getRefused();
    show("refused", out.refused);
  }
  return out;
}

kj::Promise<void> sendAll(schema::Connection::Client connection, const std::string& bytes, size_t offset, size_t chunk,
                          size_t* progress = nullptr) {
  if (offset >= bytes.size()) return kj::READY_NOW;
  size_t n = std::min(chunk, bytes.size() - offset);
  auto request = connection.sendRequest(capnp::MessageSize{n / sizeof(capnp::word) + 8, 0});
  request.setChunk(kj::arrayPtr(reinterpret_cast<const kj::byte*>(bytes.data()) + offset, n));
  return request.send().then([connection, &bytes, offset, n, chunk, progress]() mutable {
    if (progress != nullptr) *progress = offset + n;
    return sendAll(kj::mv(connection), bytes, offset + n, chunk, progress);
  });
}

void send(Harness& h, schema::Connection::Client connection, const std::string& bytes) {
  h.wait(sendAll(kj::mv(connection), bytes, 0, 16 * 1024), "Connection.send");
}

std::string randomBytes(std::mt19937_64& rng, size_t n) {
  std::string out(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    memcpy(&out[i], &v, 8);
  }
  for (size_t i = n - n % 8; i < n; ++i) out[i] = static_cast<char>(rng());
  return out;
}

// A swarm: one CA, one cluster ID, seeded node IDs.
struct Swarm {
  explicit Swarm(uint64_t seed) : rng(seed), ca(mintCa("swarm-ca")), clusterId(randomId(rng)) {}
  Node node(const char* ou) { return mintNode(ca, randomId(rng), ou, clusterId); }
  Creds member(const Node& n) const { return {&n, {ca.certPem}, clusterId, {}, false}; }

  std::mt19937_64 rng;
  Ca ca;
  std::string clusterId;
};

// A listener's acceptor log grows by one rejection whose text contains `part`.
void expectRejected(Harness& h, Listening& l, size_t before, const std::string& part) {
  REQUIRE(h.waitUntil([&] { return l.log->rejected.size() > before; }));
  INFO("the listener's rejection: " << l.log->rejected.back());
  CHECK(contains(l.log->rejected.back(), part));
}

// The listener keeps serving: a good member connects and is handed to the acceptor.
void servesGoodNode(Harness& h, Listening& l, Transport::Client& good, const Node& goodNode) {
  size_t before = l.log->accepted.size();
  Dialed d = dial(h, good, l.address);
  INFO("the good node's dial: " << d.refused);
  REQUIRE(d.connected);
  REQUIRE(h.waitUntil([&] { return l.log->accepted.size() > before; }));
  CHECK(l.log->accepted.back().peer.nodeId == goodNode.nodeId);
}

// ---- raw peers ----------------------------------------------------------------------------------

int tcpConnect(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  return fd;
}

// Reads until the peer closes (true) or the 10 s socket timeout passes (false).
bool readsToEof(int fd) {
  char buffer[4096];
  for (;;) {
    ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
  }
}

// A blocking OpenSSL client, as a peer that is not this plugin.
struct RawTls {
  SSL_CTX* ctx = nullptr;
  SSL* ssl = nullptr;
  int fd = -1;

  RawTls(uint16_t port, const Node* node, const std::string& root, int maxVersion, const char* ciphers = nullptr) {
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_max_proto_version(ctx, maxVersion);
    if (ciphers != nullptr) SSL_CTX_set_cipher_list(ctx, ciphers);
    if (node != nullptr) {
      BIO* bio = BIO_new_mem_buf(node->chainPem.data(), static_cast<int>(node->chainPem.size()));
      X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
      BIO_free(bio);
      bio = BIO_new_mem_buf(node->keyPem.data(), static_cast<int>(node->keyPem.size()));
      EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
      BIO_free(bio);
      SSL_CTX_use_certificate(ctx, cert);
      SSL_CTX_use_PrivateKey(ctx, key);
      X509_free(cert);
      EVP_PKEY_free(key);
    }
    BIO* bio = BIO_new_mem_buf(root.data(), static_cast<int>(root.size()));
    X509* ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca);
    X509_free(ca);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    fd = tcpConnect(port);
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
  }
  ~RawTls() {
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    if (fd >= 0) close(fd);
  }

  bool handshake() {
    bool ok = SSL_connect(ssl) == 1;
    ERR_clear_error();
    return ok;
  }

  // The listener's verdict: status byte and reason.
  std::pair<int, std::string> readVerdict() {
    unsigned char header[4];
    if (SSL_read(ssl, header, 4) != 4) return {-1, {}};
    std::string reason((size_t(header[2]) << 8) | header[3], '\0');
    if (!reason.empty() && SSL_read(ssl, reason.data(), static_cast<int>(reason.size())) != int(reason.size())) {
      return {-1, {}};
    }
    unsigned char roots = 0;
    SSL_read(ssl, &roots, 1);
    return {header[1], reason};
  }

  void acceptListener() {
    const unsigned char ok[5] = {1, 0, 0, 0, 0};
    REQUIRE(SSL_write(ssl, ok, 5) == 5);
  }
};

// ---- cases --------------------------------------------------------------------------------------

TEST_CASE("two nodes connect with mutual TLS, learn each other's identity and exchange bytes") {
  INFO("seed " << testSeed());
  Harness h;
  Swarm swarm(testSeed());
  Node manager = swarm.node("swarm-manager"), worker = swarm.node("swarm-worker");
  auto m = h.start(), w = h.start();
  setCredentials(h, m, swarm.member(manager));
  setCredentials(h, w, swarm.member(worker));

  Listening l = listen(h, m);
  CHECK(l.address == "127.0.0.1:" + std::to_string(l.port));
  Dialed d = dial(h, w, l.address);
  INFO(d.refused);
  REQUIRE(d.connected);
  CHECK(!d.peer.anonymous);
  CHECK(d.peer.nodeId == manager.nodeId);
  CHECK(d.peer.role == NodeRole::MANAGER);
  CHECK(d.peer.clusterId == swarm.clusterId);
  REQUIRE(h.waitUntil([&] { return !l.log->accepted.empty(); }));
  auto& in = l.log->accepted[0];
  CHECK(in.peer.nodeId == worker.nodeId);
  CHECK(in.peer.role == NodeRole::WORKER);
  CHECK(in.peer.clusterId == swarm.clusterId);

  std::string up = randomBytes(swarm.rng, 300000), down = randomBytes(swarm.rng, 200000);
  send(h, d.connection, up);
  send(h, in.connection, down);
  REQUIRE(h.waitUntil([&] { return in.inbox->bytes.size() >= up.size() && d.inbox->bytes.size() >= down.size(); }));
  CHECK(in.inbox->bytes == up);
  CHECK(d.inbox->bytes == down);

  // close(): the peer's sink gets everything, then done(); the other direction stays open.
  send(h, d.connection, "last words");
  h.wait(d.connection.closeRequest().send().ignoreResult(), "close");
  REQUIRE(h.waitUntil([&] { return in.inbox->done; }));
  CHECK(in.inbox->bytes == up + "last words");
  send(h, in.connection, "still open");
  REQUIRE(h.waitUntil([&] { return d.inbox->bytes.size() >= down.size() + 10; }));
  CHECK(d.inbox->bytes == down + "still open");
}

TEST_CASE("a raw OpenSSL client negotiates TLS 1.3 with an AEAD suite and completes the verdict exchange") {
  INFO("seed " << testSeed());
  Harness h;
  Swarm swarm(testSeed());
  Node manager = swarm.node("swarm-manager"), worker = swarm.node("swarm-worker");
  auto m = h.start();
  setCredentials(h, m, swarm.member(manager));
  Listening l = listen(h, m);

  RawTls client(l.port, &worker, swarm.ca.certPem, TLS1_3_VERSION);
  REQUIRE(client.handshake());
  CHECK(SSL_version(client.ssl) == TLS1_3_VERSION);
  std::string cipher = SSL_get_cipher_name(client.ssl);
  CHECK((cipher == "TLS_AES_128_GCM_SHA256" || cipher == "TLS_AES_256_GCM_SHA384" ||
         cipher == "TLS_CHACHA20_POLY1305_SHA256"));
  // The listener sends exactly the chain it was given: its own certificate, no root.
  CHECK(sk_X509_num(SSL_get_peer_cert_chain(client.ssl)) == 1);
  auto [status, reason] = client.readVerdict();
  CHECK(status == 0);
  CHECK(reason.empty());
  client.acceptListener();
  REQUIRE(SSL_write(client.ssl, "hello", 5) == 5);
  REQUIRE(h.waitUntil([&] { return !l.log->accepted.empty() && l.log->accepted[0].inbox->bytes == "hello"; }));
  CHECK(l.log->accepted[0].peer.nodeId == worker.nodeId);

  // A clean TLS close ends the kernel's sink with done().
  SSL_shutdown(client.ssl);
  REQUIRE(h.waitUntil([&] { return l.log->accepted[0].inbox->done; }));
}

TEST_CASE("a peer that drops the TCP connection without close_notify releases the sink without done()") {
  INFO("seed " << testSeed());
  Harness h;
  Swarm swarm(testSeed());
  Node manager = swarm.node("swarm-manager"), worker = swarm.node("swarm-worker");
  auto m = h.start();
  setCredentials(h, m, swarm.member(manager));
  Listening l = listen(h, m);
  {
    RawTls client(l.port, &worker, swarm.ca.certPem, TLS1_3_VERSION);
    REQUIRE(client.handshake());
    REQUIRE(client.readVerdict().first == 0);
    client.acceptListener();
    REQUIRE(SSL_write(client.ssl, "partial", 7) == 7);
    REQUIRE(h.waitUntil([&] { return !l.log->accepted.empty() && l.log->accepted[0].inbox->bytes == "partial"; }));
  }  // closes the socket without SSL_shutdown: a truncation
  auto& inbox = *l.log->accepted[0].inbox;
  REQUIRE(h.waitUntil([&] { return inbox.released; }));
  CHECK(!inbox.done);
  // The connection is reported broken to the kernel's next send.
  auto sent = l.log->accepted[0].connection.sendRequest();
  sent.setChunk(data("anyone there?"));
  bool failed = false;
  h.wait(sent.send().then([]() {}, [&](kj::Exception&&) { failed = true; }), "send after truncation");
  // The first write may still fit the socket; a second one must fail once the reset is seen.
  if (!failed) {
    auto again = l.log->accepted[0].connection.sendRequest();
    again.setChunk(data("anyone there?"));
    h.sleep(50 * kj::MILLISECONDS);
    h.wait(again.send().then([]() {}, [&](kj::Exception&&) { failed = true; }), "second send after truncation");
  }
  CHECK(failed);
}

TEST_CASE("minVersion tls12 admits a TLS 1.2 client with an ECDHE AEAD suite, never a CBC one") {
  INFO("seed " << testSeed());
  Harness h;
  Swarm swarm(testSeed());
  Node manager = swarm.node("swarm-manager"), worker = swarm.node("swarm-worker");
  auto m = h.start();
  Creds creds = swarm.member(manager);
  creds.tls12 = true;
  setCredentials(h, m, creds);
  Listening l = listen(h, m);
  {
    RawTls client(l.port, &worker, swarm.ca.certPem, TLS1_2_VERSION);
    REQUIRE(client.handshake());
    CHECK(SSL_version(client.ssl) == TLS1_2_VERSION);
    std::string cipher = SSL_get_cipher_name(client.ssl);
    INFO("cipher " << cipher);
    CHECK(cipher.rfind("ECDHE-", 0) == 0);
    CHECK((contains(cipher, "-GCM-") || contains(cipher, "CHACHA20-POLY1305")));
    CHECK(client.readVerdict().first == 0);
  }
  size_t before = l.log->rejected.size();
  RawTls cbc(l.port, &worker, swarm.ca.certPem, TLS1_2_VERSION, "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA");
  CHECK(!cbc.handshake());
  expectRejected(h, l, before, "no TLS cipher suite in common with the dialer");
}

TEST_CASE("a TLS 1.2 client is refused when TLS 1.3 is required, and the listener keeps serving") {
  INFO("seed " << testSeed());
  Harness h;
  Swarm swarm(testSeed());
  Node manager = swarm.node("swarm-manager"), worker = swarm.node("swarm-worker");
  auto m = h.start(), w = h.start();
  setCredentials(h, m, swarm.member(manager));
  setCredentials(h, w, swarm.member(worker));
  Listening l = listen(h, m);
  {
    RawTls old(l.port, &worker, swarm.ca.certPem, TLS1_2_VERSION);
    CHECK(!old.handshake());
  }
  expectRejected(h, l, 0, "the dialer offers only TLS versions below this node's minimum, TLS 1.3");
  servesGoodNode(h, l, w, worker);

  // Our own dialer allowing TLS 1.2 still gets TLS 1.3 from a 1.3 listener.
  Creds lenient = swarm.member(worker);
  lenient.tls12 = true;
  setCredentials(h, w, lenient);
  servesGoodNode(h, l, w, worker);
}

// One refused dialer: the dial says why (`dialPart`), the listener's acceptor too (`listenerPart`),
// nothing reaches the acceptor, and a good node gets in right after.
void refusedThenServes(Harness& h, Swarm& swarm, const Creds& bad, const std::string& dialPart,
                       const std::string& listenerPart, const Creds& listenerCreds = {}) {
  Node manager = swarm.node("swarm-manager"), good = swarm.node("swarm-worker");
  auto m = h.start(), g = h.start(), b = h.start();
  setCredentials(h, m, listenerCreds.node != nullptr ? listenerCreds : swarm.member(manager));
  setCredentials(h, g, swarm.member(good));
  setCredentials(h, b, bad);
  Listening l = listen(h, m);
  Dialed d = dial(h, b, l.address);
  INFO("the refused dial said: " << d.refused);
  CHECK(!d.connected);
  CHECK(contains(d.refused, l.address + ": "));
  CHECK(contains(d.refused, dialPart));
  expectRejected(h, l, 0, listenerPart);
  CHECK(l.log->accepted.empty());
  servesGoodNode(h, l, g, good);
}

TEST_CASE("a node whose certificate comes from another CA is refused with the reason") {
  INFO("seed " << testSeed());
  Harness h;
  Swarm swarm(testSeed());
  Ca other = mintCa("other-ca");
  Node outsider = mintNode(other, randomId(swarm.rng), "swarm-worker", swarm.clusterId);
  // The outsider trusts the swarm's CA too, so only the listener has something to refuse.
  refusedThenServes(h, swarm, {&outsider, {other.certPem, swarm.ca.certPem}, swarm.clusterId},
                    "the listener refused this node: certificate 'CN=" + outsider.nodeId,
                    "refused the dialer: certificate 'CN=" + outsider.nodeId);
}

TEST_CASE("an expired certificate is refused with the time it expired") {
  INFO("seed " << testSeed());
  Harness h;
  Swarm swarm(testSeed());
  Node expired = mintNode(swarm.ca, randomId(swarm.rng), "swarm-worker", swarm.clusterId, now() - 10 * DAY, now() - DAY);
  refusedThenServes(h, swarm, swarm.member(expired), "expired at", "refused the dialer: certificate 'CN=" + expired.nodeId);
}

TEST_CASE("a certificate that is not yet valid is refused with the time it starts") {
  INFO("seed " << testSeed());
  Harness h;
  Swarm swarm(testSeed());
  Node early = mintNode(swarm.ca, randomId(swarm.rng), "swarm-worker", swarm.clusterId, now() + DAY, now() + 30 * DAY);
  refusedThenServes(h, swarm, swarm.member(early), "is not valid before", "is not valid before");
}

TEST_CASE("a certificate for another cluster ID is refused") {
  INFO("seed " << testSeed());
  Harness h;
  Swarm swarm(testSeed());
  std::string otherCluster = randomId(swarm.rng);
  Node stranger = mintNode(swarm.ca, randomId(swarm.rng), "swarm-manager", otherCluster);
  refusedThenServes(h, swarm, {&stranger, {swarm.ca.certPem}, otherCluster},
                    "is for cluster '" + otherCluster + "', not this cluster '" + swarm.clusterId + "'",
                    "refused the dialer: certificate of node " + stranger.nodeId + " is for cluster");
}

TEST_CASE("a revoked node is refused") {
  INFO("seed " << testSeed());
  Harness h;
  Swarm swarm(testSeed());
  Node manager = swarm.node("swarm-manager"), revoked = swarm.node("swarm-worker");
  Creds listenerCreds = swarm.member(manager);
  listenerCreds.revoked = {randomId(swarm.rng), revoked.nodeId};
  refusedThenServes(h, swarm, swarm.member(revoked), "node " + revoked.nodeId + " is revoked",
                    "refused the dialer: node " + revoked.nodeId + " is revoked", listenerCreds);
}

TEST_CASE("roles are reported as certified, expect.manager refuses a worker and expect.node picks the node") {
  INFO("seed " << testSeed());
  Harness h;
  Swarm swarm(testSeed());
  Node manager = swarm.node("swarm-manager"), worker = swarm.node("swarm-worker");
  auto m = h.start(), w = h.start();
  setCredentials(h, m, swarm.member(manager));
  setCredentials(h, w, swarm.member(worker));

  // A worker dialing a manager is let in and reported as a worker: manager-only services are the
  // kernel's decision, made on this identity.
  Listening atManager = listen(h, m);
  Dialed up = dial(h, w, atManager.address, {Expect::MANAGER, {}});
  REQUIRE(up.connected);
  CHECK(up.peer.role == NodeRole::MANAGER);
  REQUIRE(h.waitUntil([&] { return !atManager.log->accepted.empty(); }));
  CHECK(atManager.log->accepted[0].peer.role == NodeRole::WORKER);
  CHECK(atManager.log->accepted[0].peer.nodeId == worker.nodeId);

  Listening atWorker = listen(h, w);
  Dialed wrong = dial(h, m, atWorker.address, {Expect::MANAGER, {}});
  INFO(wrong.refused);
  CHECK(!wrong.connected);
  CHECK(contains(wrong.refused, "the listener is node " + worker.nodeId + ", a worker, but a manager was expected"));
  expectRejected(h, atWorker, 0, "the dialer refused this node: the listener is node " + worker.nodeId);

  Dialed byId = dial(h, m, atWorker.address, {Expect::NODE, worker.nodeId});
  CHECK(byId.connected);
  std::string someoneElse = randomId(swarm.rng);
  Dialed notById = dial(h, m, atWorker.address, {Expect::NODE, someoneElse});
  CHECK(!notById.connected);
  CHECK(contains(notById.refused, "not the expected node " + someoneElse));
}

TEST_CASE("join mode pins the root by digest, and a tampered digest is refused while the listener keeps serving") {
  INFO("seed " << testSeed());
  Harness h;
  Swarm swarm(testSeed());
  Node manager = swarm.node("swarm-manager");
  auto m = h.start(), joiner = h.start();
  setCredentials(h, m, swarm.member(manager));
  setCredentials(h, joiner, {});
  Listening l = listen(h, m);

  // The digest a join token carries: SHA-256 of the root's PEM, base 36, 50 characters.
  std::string digest = base36Sha256(swarm.ca.certPem);
  REQUIRE(digest.size() == 50);
  Dialed ok = dial(h, joiner, l.address, {Expect::JOIN, digest});
  INFO(ok.refused);
  REQUIRE(ok.connected);
  CHECK(ok.peer.nodeId == manager.nodeId);
  CHECK(ok.peer.role == NodeRole::MANAGER);
  CHECK(ok.peer.clusterId == swarm.clusterId);
  REQUIRE(h.waitUntil([&] { return !l.log->accepted.empty(); }));
  CHECK(l.log->accepted[0].peer.anonymous);
  send(h, ok.connection, "join please");
  REQUIRE(h.waitUntil([&] { return l.log->accepted[0].inbox->bytes == "join please"; }));

  std::string tampered = digest;
  tampered[17] = tampered[17] == 'a' ? 'b' : 'a';
  Dialed bad = dial(h, joiner, l.address, {Expect::JOIN, tampered});
  INFO(bad.refused);
  CHECK(!bad.connected);
  CHECK(contains(bad.refused, "does not hold the root CA of the join token"));
  expectRejected(h, l, 0, "the dialer refused this node: the listener does not hold the root CA");

  Dialed malformed = dial(h, joiner, l.address, {Expect::JOIN, "SWMTKN-1-abc"});
  CHECK(!malformed.connected);
  CHECK(contains(malformed.refused, "is not a root digest"));
  Dialed member = dial(h, joiner, l.address);
  CHECK(!member.connected);
  CHECK(contains(member.refused, "can only dial in join mode"));

  size_t before = l.log->accepted.size();
  CHECK(dial(h, joiner, l.address, {Expect::JOIN, digest}).connected);
  REQUIRE(h.waitUntil([&] { return l.log->accepted.size() > before; }));
}

TEST_CASE("during a root rotation both roots are trusted, a third is not, and a joiner may pin either") {
  INFO("seed " << testSeed());
  Harness h;
  Swarm swarm(testSeed());
  Ca next = mintCa("swarm-ca-next"), stranger = mintCa("swarm-ca");
  // The manager is re-issued under the new root; its chain carries the new root cross-signed by the
  // old one (pki.capnp's IssuedCertificate.chain), so holders of either root can verify it.
  Node manager = mintNode(next, randomId(swarm.rng), "swarm-manager", swarm.clusterId);
  Node managerNoCross = manager;
  manager.chainPem += crossSign(next, swarm.ca);
  Node oldNode = swarm.node("swarm-worker");
  Node newNode = mintNode(next, randomId(swarm.rng), "swarm-worker", swarm.clusterId);
  Node foreign = mintNode(stranger, randomId(swarm.rng), "swarm-worker", swarm.clusterId);
  std::vector<std::string> both = {swarm.ca.certPem, next.certPem};
  auto m = h.start(), a = h.start(), b = h.start(), c = h.start(), joiner = h.start(), plain = h.start();
  setCredentials(h, m, {&manager, both, swarm.clusterId});
  setCredentials(h, a, {&oldNode, {swarm.ca.certPem}, swarm.clusterId});  // not rotated yet
  setCredentials(h, b, {&newNode, both, swarm.clusterId});
  setCredentials(h, c, {&foreign, {stranger.certPem, next.certPem}, swarm.clusterId});
  setCredentials(h, joiner, {});
  setCredentials(h, plain, {&managerNoCross, both, swarm.clusterId});
  Listening l = listen(h, m);
  Dialed fromOld = dial(h, a, l.address);
  INFO(fromOld.refused);
  CHECK(fromOld.connected);
  CHECK(dial(h, b, l.address).connected);
  Dialed f = dial(h, c, l.address);
  CHECK(!f.connected);
  CHECK(contains(f.refused, "is not signed by a root CA of this swarm"));
  CHECK(dial(h, joiner, l.address, {Expect::JOIN, base36Sha256(next.certPem)}).connected);
  Dialed pinOld = dial(h, joiner, l.address, {Expect::JOIN, base36Sha256(swarm.ca.certPem)});
  INFO(pinOld.refused);
  CHECK(pinOld.connected);

  // Without the cross-signed certificate, the old root cannot vouch for the new leaf.
  Listening bare = listen(h, plain);
  Dialed unverifiable = dial(h, joiner, bare.address, {Expect::JOIN, base36Sha256(swarm.ca.certPem)});
  CHECK(!unverifiable.connected);
  CHECK(contains(unverifiable.refused, "the listener is refused: certificate 'CN=" + manager.nodeId));
  CHECK(!dial(h, a, bare.address).connected);
}

TEST_CASE("plain TCP, garbage bytes and a silent client are refused without holding up good nodes") {
  INFO("seed " << testSeed());
  Harness h;
  Swarm swarm(testSeed());
  Node manager = swarm.node("swarm-manager"), worker = swarm.node("swarm-worker");
  auto m = h.start({{"handshake-timeout-ms", "1500"}}), w = h.start();
  setCredentials(h, m, swarm.member(manager));
  setCredentials(h, w, swarm.member(worker));
  Listening l = listen(h, m);

  SECTION("plain TCP") {
    int fd = tcpConnect(l.port);
    const char text[] = "PING swarm\r\n";
    REQUIRE(::send(fd, text, sizeof(text) - 1, 0) == ssize_t(sizeof(text) - 1));
    expectRejected(h, l, 0, "the dialer does not speak TLS");
    CHECK(readsToEof(fd));
    close(fd);
    servesGoodNode(h, l, w, worker);
  }
  SECTION("an HTTP request") {
    int fd = tcpConnect(l.port);
    const char text[] = "GET / HTTP/1.1\r\nHost: swarm\r\n\r\n";
    REQUIRE(::send(fd, text, sizeof(text) - 1, 0) == ssize_t(sizeof(text) - 1));
    expectRejected(h, l, 0, "the dialer does not speak TLS");
    close(fd);
    servesGoodNode(h, l, w, worker);
  }
  SECTION("garbage bytes") {
    int fd = tcpConnect(l.port);
    std::string garbage = randomBytes(swarm.rng, 4096);
    ::send(fd, garbage.data(), garbage.size(), MSG_NOSIGNAL);
    expectRejected(h, l, 0, "the dialer");
    INFO(l.log->rejected.back());
    CHECK((contains(l.log->rejected.back(), "does not speak TLS") ||
           contains(l.log->rejected.back(), "TLS with the dialer failed during the TLS handshake")));
    close(fd);
    servesGoodNode(h, l, w, worker);
  }
  SECTION("a ClientHello full of garbage") {
    int fd = tcpConnect(l.port);
    // A handshake record holding one whole ClientHello message, whose body is random.
    std::string garbage = std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc", 9) + randomBytes(swarm.rng, 508);
    ::send(fd, garbage.data(), garbage.size(), MSG_NOSIGNAL);
    expectRejected(h, l, 0, "TLS with the dialer failed during the TLS handshake");
    close(fd);
    servesGoodNode(h, l, w, worker);
  }
  SECTION("a client that connects and sends nothing") {
    int fd = tcpConnect(l.port);
    // While it stalls, others are served.
    servesGoodNode(h, l, w, worker);
    CHECK(l.log->rejected.empty());
    expectRejected(h, l, 0, "the dialer did not complete the TLS handshake and verdicts within 1500 ms");
    CHECK(readsToEof(fd));
    close(fd);
    servesGoodNode(h, l, w, worker);
  }
  SECTION("a client that stops halfway through the handshake") {
    // A real ClientHello, then silence: the listener's flight goes unanswered.
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL* ssl = SSL_new(ctx);
    SSL_set_bio(ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_connect_state(ssl);
    CHECK(SSL_do_handshake(ssl) != 1);
    char* hello = nullptr;
    long n = BIO_get_mem_data(SSL_get_wbio(ssl), &hello);
    int fd = tcpConnect(l.port);
    REQUIRE(::send(fd, hello, static_cast<size_t>(n), 0) == n);
    servesGoodNode(h, l, w, worker);
    expectRejected(h, l, 0, "the dialer did not complete the TLS handshake and verdicts within 1500 ms");
    close(fd);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
  }
}

TEST_CASE("max-handshakes bounds the handshakes in progress and closes the rest at once") {
  INFO("seed " << testSeed());
  Harness h;
  Swarm swarm(testSeed());
  Node manager = swarm.node("swarm-manager"), worker = swarm.node("swarm-worker");
  auto m = h.start({{"max-handshakes", "2"}, {"handshake-timeout-ms", "5000"}}), w = h.start();
  setCredentials(h, m, swarm.member(manager));
  setCredentials(h, w, swarm.member(worker));
  Listening l = listen(h, m);
  int first = tcpConnect(l.port), second = tcpConnect(l.port);
  h.sleep(50 * kj::MILLISECONDS);
  int third = tcpConnect(l.port);
  expectRejected(h, l, 0, "too many TLS handshakes in progress (2; setting max-handshakes)");
  CHECK(readsToEof(third));
  close(third);
  close(first);
  close(second);
  REQUIRE(h.waitUntil([&] { return l.log->rejected.size() >= 3; }));
  CHECK(contains(l.log->rejected.back(), "the dialer closed the connection during the TLS handshake"));
  servesGoodNode(h, l, w, worker);
}

TEST_CASE("a dial to the same verified peer reuses the open connection") {
  INFO("seed " << testSeed());
  Harness h;
  Swarm swarm(testSeed());
  Node manager = swarm.node("swarm-manager"), worker = swarm.node("swarm-worker");
  auto m = h.start(), w = h.start();
  setCredentials(h, m, swarm.member(manager));
  setCredentials(h, w, swarm.member(worker));
  Listening l = listen(h, m);

  Dialed first = dial(h, w, l.address);
  REQUIRE(first.connected);
  CHECK(!first.reused);
  Dialed second = dial(h, w, l.address, {Expect::NODE, manager.nodeId});
  REQUIRE(second.connected);
  CHECK(second.reused);
  CHECK(second.peer.nodeId == manager.nodeId);
  // One TLS connection: the bytes of either capability arrive on the listener's one sink, and the
  // second dial's own sink is released unused.
  send(h, second.connection, "via second");
  send(h, first.connection, "+via first");
  REQUIRE(h.waitUntil([&] { return !l.log->accepted.empty() && l.log->accepted[0].inbox->bytes.size() >= 20; }));
  CHECK(l.log->accepted[0].inbox->bytes == "via second+via first");
  CHECK(l.log->accepted.size() == 1);
  REQUIRE(h.waitUntil([&] { return second.inbox->released; }));
  CHECK(!second.inbox->done);

  // Another expectation that this peer does not meet is no reuse: a fresh dial, refused.
  Dialed other = dial(h, w, l.address, {Expect::NODE, randomId(swarm.rng)});
  CHECK(!other.connected);

  // New credentials that revoke the peer: no reuse either.
  Creds revoking = swarm.member(worker);
  revoking.revoked = {manager.nodeId};
  setCredentials(h, w, revoking);
  Dialed revoked = dial(h, w, l.address);
  CHECK(!revoked.connected);
  CHECK(contains(revoked.refused, "node " + manager.nodeId + " is revoked"));
  setCredentials(h, w, swarm.member(worker));
  CHECK(dial(h, w, l.address).connected);
  CHECK(l.log->accepted.size() == 1);

  // A closed connection is not handed out again.
  h.wait(first.connection.closeRequest().send().ignoreResult(), "close");
  Dialed third = dial(h, w, l.address);
  REQUIRE(third.connected);
  REQUIRE(h.waitUntil([&] { return l.log->accepted.size() == 2; }));

  // reuse-connections = false: every dial is a connection of its own.
  auto fresh = h.start({{"reuse-connections", "false"}});
  setCredentials(h, fresh, swarm.member(worker));
  Dialed x = dial(h, fresh, l.address), y = dial(h, fresh, l.address);
  CHECK((x.connected && y.connected));
  CHECK((!x.reused && !y.reused));
  REQUIRE(h.waitUntil([&] { return l.log->accepted.size() >= 4; }));
  h.sleep(100 * kj::MILLISECONDS);
  CHECK(l.log->accepted.size() == 4);
}

TEST_CASE("redials to an address that keeps failing back off, but refusals on policy do not") {
  INFO("seed " << testSeed());
  Harness h;
  Swarm swarm(testSeed());
  Node worker = swarm.node("swarm-worker"), manager = swarm.node("swarm-manager");
  auto slow = h.start({{"backoff-initial-ms", "60000"}, {"backoff-max-ms", "600000"}});
  auto eager = h.start({{"backoff-initial-ms", "0"}});
  setCredentials(h, slow, swarm.member(worker));
  setCredentials(h, eager, swarm.member(worker));
  // A port that was just free.
  auto any = h.wait(h.io.provider->getNetwork().parseAddress("127.0.0.1", 0), "parse");
  std::string closed = "127.0.0.1:" + std::to_string(any->listen()->getPort());

  Dialed first = dial(h, slow, closed);
  CHECK(!first.connected);
  CHECK(contains(first.refused, closed + ": cannot reach it"));
  Dialed second = dial(h, slow, closed);
  INFO(second.refused);
  CHECK(!second.connected);
  CHECK(contains(second.refused, "not dialing again for another"));
  CHECK(contains(second.refused, "the last 1 attempt(s) failed"));
  CHECK(contains(dial(h, eager, closed).refused, "cannot reach it"));
  CHECK(contains(dial(h, eager, closed).refused, "cannot reach it"));

  // A listener that refuses us is reachable: a redial goes through to it at once.
  auto m = h.start();
  Creds revoking = swarm.member(manager);
  revoking.revoked = {worker.nodeId};
  setCredentials(h, m, revoking);
  Listening l = listen(h, m);
  CHECK(contains(dial(h, slow, l.address).refused, "is revoked"));
  CHECK(contains(dial(h, slow, l.address).refused, "is revoked"));
  REQUIRE(h.waitUntil([&] { return l.log->rejected.size() == 2; }));
}

TEST_CASE("a kernel sink that stops taking bytes stalls only its own connection, and nothing is lost") {
  INFO("seed " << testSeed());
  Harness h;
  Swarm swarm(testSeed());
  Node manager = swarm.node("swarm-manager"), a = swarm.node("swarm-worker"), b = swarm.node("swarm-worker");
  auto m = h.start(), wa = h.start(), wb = h.start();
  setCredentials(h, m, swarm.member(manager));
  setCredentials(h, wa, swarm.member(a));
  setCredentials(h, wb, swarm.member(b));
  Listening l = listen(h, m);
  auto gate = kj::newPromiseAndFulfiller<void>();
  l.log->nextGate = gate.promise.fork();

  Dialed stalled = dial(h, wa, l.address);
  REQUIRE(stalled.connected);
  REQUIRE(h.waitUntil([&] { return l.log->accepted.size() == 1; }));
  const size_t total = 48 << 20;
  std::string big = randomBytes(swarm.rng, total);
  size_t progress = 0;
  auto sending = sendAll(stalled.connection, big, 0, 64 * 1024, &progress).eagerlyEvaluate(nullptr);
  // Wait until the sender makes no more progress: the plugin stopped reading behind the sink.
  size_t last = SIZE_MAX;
  for (int quiet = 0; quiet < 3;) {
    h.sleep(100 * kj::MILLISECONDS);
    quiet = progress == last ? quiet + 1 : 0;
    last = progress;
  }
  INFO("accepted by the sender while the sink stalled: " << progress << " of " << total);
  CHECK(progress < total / 2);
  CHECK(l.log->accepted[0].inbox->bytes.size() < total / 2);

  // Meanwhile another connection to the same listener flows.
  Dialed other = dial(h, wb, l.address);
  REQUIRE(other.connected);
  REQUIRE(h.waitUntil([&] { return l.log->accepted.size() == 2; }));
  std::string small = randomBytes(swarm.rng, 1 << 20);
  send(h, other.connection, small);
  REQUIRE(h.waitUntil([&] { return l.log->accepted[1].inbox->bytes.size() >= small.size(); }));
  CHECK(l.log->accepted[1].inbox->bytes == small);

  gate.fulfiller->fulfill();
  h.wait(kj::mv(sending), "the stalled sender to finish");
  REQUIRE(h.waitUntil([&] { return l.log->accepted[0].inbox->bytes.size() >= total; }));
  CHECK(l.log->accepted[0].inbox->bytes == big);
}

TEST_CASE("bad credentials, addresses and settings are refused with what to fix") {
  INFO("seed " << testSeed());
  Harness h;
  Swarm swarm(testSeed());
  Node manager = swarm.node("swarm-manager"), worker = swarm.node("swarm-worker");
  auto t = h.start();

  auto listenError = [&](const char* address) {
    try {
      listen(h, t, address);
    } catch (const kj::Exception& e) {
      return kernel::describe(e);
    }
    return std::string();
  };
  CHECK(contains(listenError("127.0.0.1:0"), "listen: no credentials; call setCredentials() first"));
  CHECK(contains(dial(h, t, "127.0.0.1:1").refused, "no credentials: call setCredentials() before dial()"));

  Node garbled = manager;
  garbled.chainPem = "not a certificate";
  CHECK(contains(credentialsError(h, t, swarm.member(garbled)), "credentials.chain is not a PEM certificate chain"));
  Node mismatched = manager;
  mismatched.keyPem = worker.keyPem;
  CHECK(contains(credentialsError(h, t, swarm.member(mismatched)),
                 "credentials.key is not the private key of credentials.chain's first certificate"));
  CHECK(contains(credentialsError(h, t, {&manager, {}, swarm.clusterId}), "credentials.roots is empty"));
  CHECK(contains(credentialsError(h, t, {&manager, {manager.chainPem}, swarm.clusterId}), "is not a CA certificate"));
  CHECK(contains(credentialsError(h, t, {&manager, {"junk"}, swarm.clusterId}), "credentials.roots[0] is not a PEM"));
  Node wrongOu = mintNode(swarm.ca, randomId(swarm.rng), "admins", swarm.clusterId);
  CHECK(contains(credentialsError(h, t, swarm.member(wrongOu)), "it needs exactly one OU, swarm-manager or swarm-worker"));
  CHECK(contains(credentialsError(h, t, {&manager, {swarm.ca.certPem}, "another-cluster"}),
                 "is for cluster '" + swarm.clusterId + "' but credentials.clusterId is 'another-cluster'"));

  setCredentials(h, t, {nullptr, {swarm.ca.certPem}, swarm.clusterId});
  CHECK(contains(listenError("127.0.0.1:0"), "this node has no certificate (join mode)"));
  setCredentials(h, t, swarm.member(manager));
  CHECK(contains(listenError("127.0.0.1:99999"), "listen: cannot use address '127.0.0.1:99999'"));
  CHECK(contains(dial(h, t, "127.0.0.1:1", {Expect::NODE, ""}).refused, "expect.node is empty"));
  CHECK(contains(dial(h, t, "").refused, "the target address is empty"));

  CHECK(contains(h.configureError({{"colour", "blue"}}), "unknown setting colour"));
  CHECK(contains(h.configureError({{"handshake-timeout-ms", "soon"}}),
                 "setting 'handshake-timeout-ms' = 'soon' must be a whole number"));
  CHECK(contains(h.configureError({{"backoff-initial-ms", "500"}, {"backoff-max-ms", "100"}}),
                 "'backoff-max-ms' (100) is below 'backoff-initial-ms' (500)"));
  CHECK(contains(h.configureError({{"reuse-connections", "maybe"}}), "must be true or false"));
}

}  // namespace
}  // namespace swarm::tls::testing
