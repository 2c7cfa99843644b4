// TransportStream: kj streams over the transport plugin's connections, and capnp RPC over them.
//
// The mTLS cases run the real transport-tls plugin in process (the kernel's PluginInstance), one
// instance per node, with a cluster CA and node certificates minted here by transport-tls's test
// PKI (plugins/transport-tls/tests/test_pki.h). The first case drives the stream's read side
// against a local sink on a bare event loop, where every step is deterministic.
#include "transport_stream.h"

#include "test_pki.h"

#include "config.h"
#include "errors.h"
#include "logging.h"
#include "plugin_host.h"

#include <swarm/schema/plugin.capnp.h>

#include <capnp/rpc-twoparty.h>
#include <catch2/catch.hpp>
#include <kj/async-io.h>

#include <openssl/evp.h>

#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#ifndef TRANSPORT_TLS_PLUGIN
#error "TRANSPORT_TLS_PLUGIN must name the plugin library"
#endif

namespace swarm::kernel {
namespace {

using tls::testing::Ca;
using tls::testing::mintCa;
using tls::testing::mintNode;
using Node = tls::testing::Node;
using Settings = std::vector<std::pair<std::string, std::string>>;

constexpr auto LIMIT = 15 * kj::SECONDS;

capnp::Data::Reader data(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string sha256(const std::string& bytes) {
  unsigned char sum[32];
  unsigned len = 0;
  EVP_Digest(bytes.data(), bytes.size(), sum, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(sum), len);
}

std::string randomBytes(uint64_t seed, size_t n) {
  std::mt19937_64 rng(seed);
  std::string out(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    memcpy(out.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return out;
}

// A bootstrap capability that answers who serves it: Plugin.info with the node's ID as the name.
class WhoAmI final : public schema::Plugin::Server {
 public:
  explicit WhoAmI(std::string nodeId) : nodeId(std::move(nodeId)) {}
  kj::Promise<void> info(InfoContext context) override {
    auto info = context.getResults().initInfo();
    info.setKind(schema::Kind::TRANSPORT);
    info.setName(nodeId);
    info.setVersion("transport-stream-test");
    return kj::READY_NOW;
  }

 private:
  std::string nodeId;
};

struct Accepted {
  kj::Own<TransportStream> stream;
  PeerIdentity peer;
};

class Harness {
 public:
  Harness() : io(kj::setupAsyncIo()) { initLogging(spdlog::level::err); }
  ~Harness() noexcept(false) {
    for (auto& instance : instances) {
      kj::runCatchingExceptions([&]() { instance->stop().wait(io.waitScope); });
    }
  }

  schema::Transport::Client start(const Settings& settings = {}) {
    PluginConfig config;
    config.kind = schema::Kind::TRANSPORT;
    config.library = TRANSPORT_TLS_PLUGIN;
    config.onCrash = CrashPolicy::stop;
    config.settings = settings;
    config.sourceFile = "transport_stream_test";
    instances.push_back(PluginInstance::start(io, config, {}));
    wait(instances.back()->configure(), "configure");
    return instances.back()->bootstrap().castAs<schema::Transport>();
  }

  // A node's transport with its certificate (nullptr: join mode) and the roots it trusts.
  schema::Transport::Client node(const Node* cert, const std::vector<std::string>& roots,
                                 const Settings& settings = {}) {
    auto transport = start(settings);
    auto request = transport.setCredentialsRequest();
    auto credentials = request.initCredentials();
    if (cert != nullptr) {
      credentials.setChain(data(cert->chainPem));
      credentials.setKey(data(cert->keyPem));
      credentials.setClusterId(cert->clusterId);
    }
    auto list = credentials.initRoots(static_cast<unsigned>(roots.size()));
    for (unsigned i = 0; i < roots.size(); ++i) list.set(i, data(roots[i]));
    wait(request.send().ignoreResult(), "setCredentials");
    return transport;
  }

  // Listens on 127.0.0.1:0; accepted streams land in `accepted`, rejections in `rejected`.
  std::string listen(schema::Transport::Client& transport, StreamOptions options = {}) {
    auto request = transport.listenRequest();
    request.setAddress("127.0.0.1:0");
    request.setAcceptor(kj::heap<StreamAcceptor>(
        [this](kj::Own<TransportStream> stream, PeerIdentity peer) {
          accepted.push_back({kj::mv(stream), kj::mv(peer)});
        },
        options, [this](const std::string& remote, const std::string& reason) {
          rejected.push_back(remote + ": " + reason);
        }));
    listeners.push_back(wait(request.send(), "listen").getListener());
    return wait(listeners.back().addressRequest().send(), "Listener.address").getAddress();
  }

  template <typename T>
  T wait(kj::Promise<T>&& promise, const char* what) {
    return promise
        .exclusiveJoin(io.provider->getTimer().afterDelay(LIMIT).then([what]() -> kj::Promise<T> {
          return KJ_EXCEPTION(FAILED, "no answer within the test's limit", what);
        }))
        .wait(io.waitScope);
  }

  // The error a promise fails with ("" if it succeeded).
  template <typename T>
  std::string failure(kj::Promise<T>&& promise, const char* what) {
    try {
      wait(kj::mv(promise), what);
    } catch (const kj::Exception& e) {
      return describe(e);
    }
    return {};
  }

  template <typename F>
  bool waitUntil(F&& done) {
    auto& timer = io.provider->getTimer();
    auto deadline = timer.now() + LIMIT;
    while (!done()) {
      if (timer.now() > deadline) return false;
      timer.afterDelay(1 * kj::MILLISECONDS).wait(io.waitScope);
    }
    return true;
  }

  kj::AsyncIoContext io;
  std::vector<kj::Own<PluginInstance>> instances;
  std::vector<schema::Listener::Client> listeners;
  std::vector<Accepted> accepted;
  std::vector<std::string> rejected;
};

// A cluster: one CA, a manager and a worker.
struct Cluster {
  Ca ca = mintCa("swarm-root-ca");
  std::string clusterId = "cluster7transportstream0001";
  Node manager = mintNode(ca, "managernode00000000000001", "swarm-manager", clusterId);
  Node worker = mintNode(ca, "workernode000000000000002", "swarm-worker", clusterId);
};

// Reads until EOF (tryRead returning less than asked for 1 byte means 0 here), appending to *out.
kj::Promise<void> readToEnd(kj::AsyncIoStream& stream, std::string* out, kj::Array<kj::byte> buffer) {
  auto promise = stream.tryRead(buffer.begin(), 1, buffer.size());
  return promise.then([&stream, out, buffer = kj::mv(buffer)](size_t n) mutable -> kj::Promise<void> {
    if (n == 0) return kj::READY_NOW;
    out->append(reinterpret_cast<const char*>(buffer.begin()), n);
    return readToEnd(stream, out, kj::mv(buffer));
  });
}
kj::Promise<void> readToEnd(kj::AsyncIoStream& stream, std::string* out, size_t bufferSize = 16 * 1024) {
  return readToEnd(stream, out, kj::heapArray<kj::byte>(bufferSize));
}

// ---- the read side on its own ---------------------------------------------------------------

// Records what the stream sends; the stream's writes are checked for order and chunking.
class RecordingConnection final : public schema::Connection::Server {
 public:
  explicit RecordingConnection(std::vector<std::string>* log) : log(log) {}
  kj::Promise<void> send(SendContext context) override {
    auto chunk = context.getParams().getChunk();
    log->push_back(std::string(reinterpret_cast<const char*>(chunk.begin()), chunk.size()));
    return kj::READY_NOW;
  }
  kj::Promise<void> close(CloseContext) override {
    log->push_back("<close>");
    return kj::READY_NOW;
  }

 private:
  std::vector<std::string>* log;
};

kj::Promise<void> sinkWrite(schema::ByteSink::Client& sink, const std::string& bytes) {
  auto request = sink.writeRequest();
  request.setChunk(data(bytes));
  return request.send();
}

TEST_CASE("reads follow kj's tryRead contract, apply backpressure, and tell a clean end from a lost connection") {
  kj::EventLoop loop;
  kj::WaitScope ws(loop);
  std::vector<std::string> sent;
  StreamOptions options;
  options.inboundLimit = 8;
  options.sendChunk = 4;
  auto parts = makeStreamParts(options);
  auto sink = kj::mv(parts.sink);
  TransportStream stream(kj::heap<RecordingConnection>(&sent), PeerIdentity{}, kj::mv(parts.inbound),
                         options.sendChunk);
  char buf[32];

  // A read waits for minBytes across several sink writes, and takes at most maxBytes.
  auto read = stream.tryRead(buf, 5, 6);
  sinkWrite(sink, "abc").wait(ws);
  CHECK_FALSE(read.poll(ws));
  sinkWrite(sink, "defgh").wait(ws);
  REQUIRE(read.wait(ws) == 6);
  CHECK(std::string(buf, 6) == "abcdef");
  CHECK(stream.inboundStats().buffered == 2);

  // At the limit the sink's write does not return until a read makes room.
  auto full = sinkWrite(sink, "0123456789");
  CHECK_FALSE(full.poll(ws));
  CHECK(stream.inboundStats().stalls == 1);
  CHECK(stream.inboundStats().highWater == 12);
  REQUIRE(stream.tryRead(buf, 1, 5).wait(ws) == 5);
  CHECK(std::string(buf, 5) == "gh012");
  full.wait(ws);

  // Writes go out in order, in chunks of at most sendChunk; shutdownWrite closes after them.
  stream.write("hello world", 11).wait(ws);
  stream.shutdownWrite();
  ws.poll();  // delivers the close
  CHECK(sent == std::vector<std::string>{"hell", "o wo", "rld", "<close>"});
  REQUIRE(stream.tryRead(buf, 1, 1).wait(ws) == 1);
  CHECK(buf[0] == '3');

  // done(): the rest, then 0 bytes; done() resolves only once everything was read.
  auto done = sink.doneRequest().send();
  CHECK_FALSE(done.poll(ws));
  REQUIRE(stream.tryRead(buf, 10, 10).wait(ws) == 6);  // a short read: the end
  CHECK(std::string(buf, 6) == "456789");
  done.wait(ws);
  CHECK(stream.tryRead(buf, 1, 10).wait(ws) == 0);

  // A sink dropped without done() (the connection was lost): buffered bytes, then DISCONNECTED.
  auto lostParts = makeStreamParts(options);
  auto lostSink = kj::mv(lostParts.sink);
  TransportStream lost(kj::heap<RecordingConnection>(&sent), PeerIdentity{}, kj::mv(lostParts.inbound), 4);
  auto disconnected = lost.whenWriteDisconnected();
  sinkWrite(lostSink, "xy").wait(ws);
  auto pending = lost.tryRead(buf, 4, 4);
  lostSink = nullptr;
  try {
    pending.wait(ws);
    FAIL("a read across a lost connection must fail");
  } catch (const kj::Exception& e) {
    CHECK(e.getType() == kj::Exception::Type::DISCONNECTED);
    CHECK(contains(describe(e), "lost before the peer closed it"));
  }
  CHECK(disconnected.poll(ws));

  // abortRead() fails a pending read and every read after it.
  auto abortedParts = makeStreamParts(options);
  TransportStream aborted(kj::heap<RecordingConnection>(&sent), PeerIdentity{}, kj::mv(abortedParts.inbound), 4);
  auto waiting = aborted.tryRead(buf, 1, 4);
  aborted.abortRead();
  CHECK_THROWS_WITH(waiting.wait(ws), Catch::Contains("reading was aborted"));
  CHECK_THROWS_WITH(aborted.tryRead(buf, 1, 4).wait(ws), Catch::Contains("reading was aborted"));
}

// ---- over the real plugin -------------------------------------------------------------------

TEST_CASE("capnp RPC runs both ways over two TransportStreams on a mutual-TLS connection") {
  Harness h;
  Cluster c;
  auto manager = h.node(&c.manager, {c.ca.certPem});
  // The second session below needs a connection of its own.
  auto worker = h.node(&c.worker, {c.ca.certPem}, {{"reuse-connections", "false"}});
  std::string address = h.listen(manager);

  auto dialed = h.wait(dialStream(worker, address, DialExpect::node(c.manager.nodeId)), "dialStream");
  CHECK_FALSE(dialed.peer.anonymous);
  CHECK(dialed.peer.nodeId == c.manager.nodeId);
  CHECK(dialed.peer.isManager());
  CHECK(dialed.peer.clusterId == c.clusterId);
  CHECK(dialed.stream->peer().nodeId == c.manager.nodeId);

  REQUIRE(h.waitUntil([&]() { return h.accepted.size() == 1; }));
  auto& accepted = h.accepted[0];
  // The accepting side sees the dialer as its certificate says.
  CHECK_FALSE(accepted.peer.anonymous);
  CHECK(accepted.peer.nodeId == c.worker.nodeId);
  CHECK(accepted.peer.role == schema::NodeRole::WORKER);
  CHECK(accepted.peer.clusterId == c.clusterId);
  CHECK(accepted.peer.describe() == "node " + c.worker.nodeId + " (worker, cluster " + c.clusterId + ")");

  {
    capnp::TwoPartyClient dialerRpc(*dialed.stream, kj::heap<WhoAmI>(c.worker.nodeId),
                                    capnp::rpc::twoparty::Side::CLIENT);
    capnp::TwoPartyClient acceptorRpc(*accepted.stream, kj::heap<WhoAmI>(c.manager.nodeId),
                                      capnp::rpc::twoparty::Side::SERVER);
    auto ofManager = dialerRpc.bootstrap().castAs<schema::Plugin>();
    auto ofWorker = acceptorRpc.bootstrap().castAs<schema::Plugin>();
    for (int round = 0; round < 3; ++round) {
      auto fromManager = h.wait(ofManager.infoRequest().send(), "info from the manager");
      CHECK(std::string(fromManager.getInfo().getName()) == c.manager.nodeId);
      auto fromWorker = h.wait(ofWorker.infoRequest().send(), "info from the worker");
      CHECK(std::string(fromWorker.getInfo().getName()) == c.worker.nodeId);
    }
  }

  // The documented one-way form: TwoPartyServer::accept owns the accepting stream.
  auto second = h.wait(dialStream(worker, address, DialExpect::manager()), "second dialStream");
  REQUIRE(h.waitUntil([&]() { return h.accepted.size() == 2; }));
  capnp::TwoPartyServer server(kj::heap<WhoAmI>(c.manager.nodeId));
  server.accept(kj::mv(h.accepted[1].stream));
  capnp::TwoPartyClient client(*second.stream);
  auto answer = h.wait(client.bootstrap().castAs<schema::Plugin>().infoRequest().send(), "info via TwoPartyServer");
  CHECK(std::string(answer.getInfo().getName()) == c.manager.nodeId);
}

TEST_CASE("8 MiB each way arrives intact and in order through small inbound buffers") {
  Harness h;
  Cluster c;
  auto manager = h.node(&c.manager, {c.ca.certPem});
  auto worker = h.node(&c.worker, {c.ca.certPem});
  StreamOptions small;
  small.inboundLimit = 64 * 1024;
  std::string address = h.listen(manager, small);
  auto dialed = h.wait(dialStream(worker, address, DialExpect::anyMember(), small), "dialStream");
  REQUIRE(h.waitUntil([&]() { return h.accepted.size() == 1; }));
  auto& acceptorStream = *h.accepted[0].stream;
  auto& dialerStream = *dialed.stream;

  const size_t size = 8 * 1024 * 1024;
  const std::string toManager = randomBytes(1, size), toWorker = randomBytes(2, size);
  auto writes = kj::joinPromises(kj::arr(dialerStream.write(toManager.data(), size).then([&]() {
                                           dialerStream.shutdownWrite();
                                         }),
                                         acceptorStream.write(toWorker.data(), size).then([&]() {
                                           acceptorStream.shutdownWrite();
                                         })))
                    .eagerlyEvaluate(nullptr);

  // Nobody reads yet: both sinks fill to their limit and hold the plugin back.
  REQUIRE(h.waitUntil([&]() {
    return acceptorStream.inboundStats().stalls > 0 && dialerStream.inboundStats().stalls > 0;
  }));

  std::string atManager, atWorker;
  h.wait(kj::joinPromises(kj::arr(readToEnd(acceptorStream, &atManager), readToEnd(dialerStream, &atWorker),
                                  kj::mv(writes))),
         "8 MiB both ways");
  CHECK(atManager.size() == size);
  CHECK(atWorker.size() == size);
  CHECK(sha256(atManager) == sha256(toManager));
  CHECK(sha256(atWorker) == sha256(toWorker));
  CHECK((atManager == toManager && atWorker == toWorker));
  // Backpressure held memory to the limit plus one write from the plugin (its chunks grow to at
  // most 256 KiB under load; a stream call's next write comes only after this one returned).
  for (auto* stream : {&acceptorStream, &dialerStream}) {
    auto stats = stream->inboundStats();
    INFO("high water " << stats.highWater << ", stalls " << stats.stalls);
    CHECK(stats.stalls > 0);
    CHECK(stats.highWater <= small.inboundLimit + 256 * 1024);
    CHECK(stats.buffered == 0);
  }
}

TEST_CASE("the peer closing its side or dropping the stream is EOF for the reader") {
  Harness h;
  Cluster c;
  auto manager = h.node(&c.manager, {c.ca.certPem});
  auto worker = h.node(&c.worker, {c.ca.certPem}, {{"reuse-connections", "false"}});
  std::string address = h.listen(manager);

  SECTION("shutdownWrite is a half close: EOF one way, the other way still flows") {
    auto dialed = h.wait(dialStream(worker, address, DialExpect::manager()), "dialStream");
    REQUIRE(h.waitUntil([&]() { return h.accepted.size() == 1; }));
    auto& acceptorStream = *h.accepted[0].stream;

    h.wait(dialed.stream->write("bye", 3), "write");
    dialed.stream->shutdownWrite();
    std::string atManager;
    h.wait(readToEnd(acceptorStream, &atManager), "read to EOF");
    CHECK(atManager == "bye");
    char buf[4];
    CHECK(h.wait(acceptorStream.tryRead(buf, 1, sizeof(buf)), "read after EOF") == 0);

    h.wait(acceptorStream.write("ack", 3), "write back");
    acceptorStream.shutdownWrite();
    std::string atWorker;
    h.wait(readToEnd(*dialed.stream, &atWorker), "read back to EOF");
    CHECK(atWorker == "ack");
  }

  SECTION("dropping a stream closes its connection: the peer reads what was sent, then EOF") {
    auto dialed = h.wait(dialStream(worker, address, DialExpect::manager()), "dialStream");
    REQUIRE(h.waitUntil([&]() { return h.accepted.size() == 1; }));
    h.wait(h.accepted[0].stream->write("last words", 10), "write");
    h.accepted[0].stream = nullptr;
    std::string atWorker;
    h.wait(readToEnd(*dialed.stream, &atWorker), "read to EOF");
    CHECK(atWorker == "last words");
  }
}

TEST_CASE("a refused dial fails with the plugin's reason and makes no stream") {
  Harness h;
  Cluster c;
  auto manager = h.node(&c.manager, {c.ca.certPem});
  std::string address = h.listen(manager);

  SECTION("join mode with a wrong root digest, then the right one") {
    auto joiner = h.node(nullptr, {});
    std::string wrong(50, '7');
    std::string error =
        h.failure(dialStream(joiner, address, DialExpect::joinRootDigest(wrong)), "dialStream with a wrong digest");
    INFO(error);
    CHECK(contains(error, "dial refused: " + address));
    CHECK(contains(error, "does not hold the root CA of the join token"));
    CHECK(contains(error, wrong));
    CHECK(h.accepted.empty());

    // The right digest joins, and the listener sees an anonymous peer.
    auto joined = h.wait(dialStream(joiner, address, DialExpect::joinRootDigest(tls::testing::base36Sha256(c.ca.certPem))),
                         "dialStream with the right digest");
    CHECK(joined.peer.nodeId == c.manager.nodeId);
    REQUIRE(h.waitUntil([&]() { return h.accepted.size() == 1; }));
    CHECK(h.accepted[0].peer.anonymous);
    CHECK(h.accepted[0].peer.describe() == "an anonymous joining node");
  }

  SECTION("a certificate from another CA") {
    Ca other = mintCa("other-ca");
    Node outsider = mintNode(other, "outsidernode0000000000003", "swarm-worker", c.clusterId);
    auto intruder = h.node(&outsider, {other.certPem, c.ca.certPem});
    std::string error = h.failure(dialStream(intruder, address, DialExpect::anyMember()), "dialStream from an outsider");
    INFO(error);
    CHECK(contains(error, "dial refused: " + address));
    CHECK(contains(error, "the listener refused this node"));
    CHECK(contains(error, outsider.nodeId));
    REQUIRE(h.waitUntil([&]() { return !h.rejected.empty(); }));
    CHECK(contains(h.rejected[0], outsider.nodeId));
    CHECK(h.accepted.empty());
  }

  SECTION("a reused connection is refused: its bytes belong to the first stream") {
    auto worker = h.node(&c.worker, {c.ca.certPem});
    auto first = h.wait(dialStream(worker, address, DialExpect::manager()), "first dialStream");
    std::string error = h.failure(dialStream(worker, address, DialExpect::manager()), "second dialStream");
    INFO(error);
    CHECK(contains(error, "reused an open connection"));
    CHECK(contains(error, "reuse-connections = false"));
  }

  SECTION("bad input is refused before dialing") {
    auto worker = h.node(&c.worker, {c.ca.certPem});
    CHECK(contains(h.failure(dialStream(worker, "", DialExpect::anyMember()), "empty address"), "empty address"));
    CHECK(contains(h.failure(dialStream(worker, address, DialExpect::node("")), "no node ID"),
                   "expected a node ID but none was given"));
  }
}

}  // namespace
}  // namespace swarm::kernel
