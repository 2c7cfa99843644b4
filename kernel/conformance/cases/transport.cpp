// transport cases: listen, dial, identities, byte streams and refusals, on loopback only, held to
// sdk/schema/transport.capnp. Two plugin instances play two nodes (CaseContext::startPeer); the
// credentials come from a test CA minted here with OpenSSL, so the same cases hold a real
// mutual-TLS plugin and a fake alike.
//
// Join mode: the dialer has no certificate and pins the server's root by digest, the SHA-256 of
// the root's PEM (as given in Credentials.roots) in 50-character base 36, as join tokens carry it.
#include "conformance.h"
#include "x509_util.h"

#include <swarm/schema/transport.capnp.h>

#include <algorithm>

namespace swarm::conformance {
namespace {

using namespace x509;
using schema::NodeRole;
using schema::Transport;

constexpr auto CALL_LIMIT = 20 * kj::SECONDS;
constexpr auto WAIT_LIMIT = 20 * kj::SECONDS;

void check(bool ok, kj::StringPtr message) {
  if (!ok) fail(kj::str(message));
}

const char* nameOf(NodeRole role) { return role == NodeRole::MANAGER ? "manager" : "worker"; }

struct PeerSeen {
  bool anonymous = false;
  std::string nodeId, clusterId;
  NodeRole role = NodeRole::WORKER;
};

PeerSeen peerOf(schema::Peer::Reader peer) {
  if (peer.isAnonymous()) return {true, {}, {}, NodeRole::WORKER};
  auto id = peer.getNode();
  return {false, id.getNodeId(), id.getClusterId(), id.getRole()};
}

void checkPeer(const PeerSeen& seen, const NodeCert& expected, kj::StringPtr who) {
  check(!seen.anonymous, kj::str(who, " saw an anonymous peer; expected node ", expected.nodeId.c_str()));
  check(seen.nodeId == expected.nodeId && seen.role == expected.role && seen.clusterId == expected.clusterId,
        kj::str(who, " saw node ", seen.nodeId.c_str(), " (", nameOf(seen.role), ") of cluster ",
                seen.clusterId.c_str(), "; expected ", expected.nodeId.c_str(), " (", nameOf(expected.role),
                ") of cluster ", expected.clusterId.c_str()));
}

// Everything that arrived on one ByteSink, in arrival order.
struct Inbox : public kj::Refcounted {
  std::string bytes;
  bool done = false;
  bool writeAfterDone = false;
};

class Sink final : public schema::ByteSink::Server {
 public:
  explicit Sink(kj::Own<Inbox> inbox) : inbox(kj::mv(inbox)) {}

  kj::Promise<void> write(WriteContext context) override {
    auto chunk = context.getParams().getChunk();
    if (inbox->done) inbox->writeAfterDone = true;
    inbox->bytes.append(reinterpret_cast<const char*>(chunk.begin()), chunk.size());
    return kj::READY_NOW;
  }

  kj::Promise<void> done(DoneContext) override {
    inbox->done = true;
    return kj::READY_NOW;
  }

 private:
  kj::Own<Inbox> inbox;
};

struct AcceptorLog : public kj::Refcounted {
  struct Entry {
    PeerSeen peer;
    schema::Connection::Client connection;
    kj::Own<Inbox> inbox;
  };
  std::vector<Entry> accepted;
  std::vector<std::string> rejected;
};

class AcceptorImpl final : public schema::Acceptor::Server {
 public:
  explicit AcceptorImpl(kj::Own<AcceptorLog> log) : log(kj::mv(log)) {}

  kj::Promise<void> accepted(AcceptedContext context) override {
    auto params = context.getParams();
    auto inbox = kj::refcounted<Inbox>();
    context.getResults().setInbound(kj::heap<Sink>(kj::addRef(*inbox)));
    log->accepted.push_back({peerOf(params.getPeer()), params.getConnection(), kj::mv(inbox)});
    return kj::READY_NOW;
  }

  kj::Promise<void> rejected(RejectedContext context) override {
    auto params = context.getParams();
    log->rejected.push_back(kj::str(params.getRemote(), ": ", params.getReason()).cStr());
    return kj::READY_NOW;
  }

 private:
  kj::Own<AcceptorLog> log;
};

// Polls the event loop (which delivers the plugin's calls) until `done()` holds; false when it
// still does not after WAIT_LIMIT.
template <typename F>
bool waitUntil(CaseContext& ctx, F&& done) {
  auto& timer = ctx.io.provider->getTimer();
  auto deadline = timer.now() + WAIT_LIMIT;
  while (!done()) {
    if (timer.now() > deadline) return false;
    timer.afterDelay(2 * kj::MILLISECONDS).wait(ctx.waitScope);
  }
  return true;
}

template <typename F>
void waitFor(CaseContext& ctx, F&& done, kj::StringPtr what) {
  if (!waitUntil(ctx, kj::fwd<F>(done))) fail(kj::str("waited ", WAIT_LIMIT, " for ", what));
}

// ---- the test swarm -----------------------------------------------------------------------------

struct TestSwarm {
  explicit TestSwarm(CaseContext& ctx) : rng(ctx.seed), ca(mintCa("swarm-ca")), clusterId(randomId(rng)) {}

  NodeCert node(NodeRole role) { return mintNode(ca, randomId(rng), role, clusterId); }

  std::mt19937_64 rng;
  TestCa ca;
  std::string clusterId;
};

struct Creds {
  const NodeCert* cert = nullptr;  // null: join mode (no certificate)
  std::vector<std::string> roots;
  std::string clusterId;
  std::vector<std::string> revoked;
};

void setCredentials(CaseContext& ctx, Transport::Client& transport, const Creds& creds) {
  auto request = transport.setCredentialsRequest();
  auto c = request.initCredentials();
  if (creds.cert != nullptr) {
    c.setChain(data(creds.cert->chainPem));
    c.setKey(data(creds.cert->keyPem));
  }
  auto roots = c.initRoots(static_cast<unsigned>(creds.roots.size()));
  for (unsigned i = 0; i < creds.roots.size(); ++i) roots.set(i, data(creds.roots[i]));
  c.setClusterId(creds.clusterId);
  auto revoked = c.initRevokedNodeIds(static_cast<unsigned>(creds.revoked.size()));
  for (unsigned i = 0; i < creds.revoked.size(); ++i) revoked.set(i, creds.revoked[i]);
  ctx.within(request.send(), CALL_LIMIT, "transport.setCredentials");
}

Creds member(const TestSwarm& swarm, const NodeCert& cert) { return {&cert, {swarm.ca.certPem}, swarm.clusterId, {}}; }

// One plugin instance acting as one node.
struct Node {
  Transport::Client transport;
  NodeCert cert;
};

Transport::Client secondInstance(CaseContext& ctx) {
  if (!ctx.startPeer) {
    fail(kj::str("this case needs two plugin instances, but the runner does not offer CaseContext::startPeer"));
  }
  return ctx.startPeer().castAs<Transport>();
}

// A manager (the first instance) and a worker (a second one) of one swarm, credentials set.
std::pair<Node, Node> managerAndWorker(CaseContext& ctx, TestSwarm& swarm) {
  Node manager{ctx.as<Transport>(), swarm.node(NodeRole::MANAGER)};
  Node worker{secondInstance(ctx), swarm.node(NodeRole::WORKER)};
  setCredentials(ctx, manager.transport, member(swarm, manager.cert));
  setCredentials(ctx, worker.transport, member(swarm, worker.cert));
  return {kj::mv(manager), kj::mv(worker)};
}

struct Listening {
  schema::Listener::Client listener = nullptr;
  std::string address;
  kj::Own<AcceptorLog> log;
};

Listening listen(CaseContext& ctx, Transport::Client& transport) {
  auto log = kj::refcounted<AcceptorLog>();
  auto request = transport.listenRequest();
  request.setAddress("127.0.0.1:0");
  request.setAcceptor(kj::heap<AcceptorImpl>(kj::addRef(*log)));
  auto listener = ctx.within(request.send(), CALL_LIMIT, "transport.listen(127.0.0.1:0)").getListener();
  std::string address = ctx.within(listener.addressRequest().send(), CALL_LIMIT, "Listener.address").getAddress();
  return {listener, address, kj::mv(log)};
}

struct Expect {
  enum Kind { ANY_MEMBER, MANAGER, NODE, JOIN_ROOT_DIGEST } kind = ANY_MEMBER;
  std::string value;
};

struct Dialed {
  bool connected = false;
  PeerSeen peer;
  schema::Connection::Client connection = nullptr;
  std::string refused;
  kj::Own<Inbox> inbox;
};

Dialed dial(CaseContext& ctx, Transport::Client& transport, const std::string& address, Expect expect = {}) {
  auto inbox = kj::refcounted<Inbox>();
  auto request = transport.dialRequest();
  auto target = request.initTarget();
  target.setAddress(address);
  auto e = target.getExpect();
  switch (expect.kind) {
    case Expect::ANY_MEMBER: e.setAnyMember(); break;
    case Expect::MANAGER: e.setManager(); break;
    case Expect::NODE: e.setNode(expect.value); break;
    case Expect::JOIN_ROOT_DIGEST: e.setJoinRootDigest(expect.value); break;
  }
  request.setInbound(kj::heap<Sink>(kj::addRef(*inbox)));
  auto response = ctx.within(request.send(), CALL_LIMIT, kj::str("transport.dial(", address.c_str(), ")"));
  auto result = response.getResult();
  Dialed out;
  out.inbox = kj::mv(inbox);
  if (result.isConnected()) {
    out.connected = true;
    out.peer = peerOf(result.getConnected().getPeer());
    out.connection = result.getConnected().getConnection();
  } else {
    out.refused = result.getRefused();
  }
  return out;
}

Dialed connected(CaseContext& ctx, Transport::Client& transport, const std::string& address, kj::StringPtr what,
                 Expect expect = {}) {
  Dialed d = dial(ctx, transport, address, kj::mv(expect));
  check(d.connected, kj::str(what, " was refused: ", d.refused.c_str()));
  return d;
}

void refused(CaseContext& ctx, Transport::Client& transport, const std::string& address, kj::StringPtr what,
             Expect expect = {}) {
  Dialed d = dial(ctx, transport, address, kj::mv(expect));
  check(!d.connected, kj::str(what, " connected (to node ", d.peer.nodeId.c_str(), "); it must be refused"));
  check(!d.refused.empty(), kj::str(what, " was refused without a reason"));
}

kj::Promise<void> sendFrom(schema::Connection::Client connection, const std::string& bytes, size_t offset,
                           std::mt19937_64& rng, size_t maxChunk) {
  if (offset >= bytes.size()) return kj::READY_NOW;
  size_t n = std::min(bytes.size() - offset, static_cast<size_t>(1 + rng() % maxChunk));
  auto request = connection.sendRequest(capnp::MessageSize{n / sizeof(capnp::word) + 8, 0});
  request.setChunk(kj::arrayPtr(reinterpret_cast<const kj::byte*>(bytes.data()) + offset, n));
  return request.send().then([connection, &bytes, offset, n, &rng, maxChunk]() mutable {
    return sendFrom(kj::mv(connection), bytes, offset + n, rng, maxChunk);
  });
}

void send(CaseContext& ctx, schema::Connection::Client connection, const std::string& bytes, std::mt19937_64& rng,
          size_t maxChunk, kj::StringPtr what) {
  ctx.within(sendFrom(kj::mv(connection), bytes, 0, rng, maxChunk), CALL_LIMIT, what);
}

void close(CaseContext& ctx, schema::Connection::Client connection, kj::StringPtr what) {
  ctx.within(connection.closeRequest().send(), CALL_LIMIT, what);
}

std::string randomBytes(std::mt19937_64& rng, size_t n) {
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng());
  return out;
}

void expectBytes(CaseContext& ctx, Inbox& inbox, const std::string& expected, kj::StringPtr what) {
  if (!waitUntil(ctx, [&] { return inbox.bytes.size() >= expected.size(); })) {
    fail(kj::str(what, ": ", inbox.bytes.size(), " of the ", expected.size(), " bytes sent arrived within ",
                 WAIT_LIMIT));
  }
  if (inbox.bytes == expected) return;
  size_t at = 0;
  while (at < expected.size() && at < inbox.bytes.size() && inbox.bytes[at] == expected[at]) ++at;
  fail(kj::str(what, ": the bytes differ from what was sent, first at offset ", at, " (", inbox.bytes.size(),
               " bytes arrived, ", expected.size(), " sent)"));
}

uint16_t portOf(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return 0;
  long port = strtol(address.c_str() + colon + 1, nullptr, 10);
  return port > 0 && port < 65536 ? static_cast<uint16_t>(port) : 0;
}

// ---- cases ------------------------------------------------------------------------------------

void listenAndDial(CaseContext& ctx) {
  TestSwarm swarm(ctx);
  auto [manager, worker] = managerAndWorker(ctx, swarm);
  Listening l = listen(ctx, manager.transport);
  check(l.address.rfind("127.0.0.1:", 0) == 0 && portOf(l.address) != 0,
        kj::str("Listener.address() is '", l.address.c_str(), "'; expected 127.0.0.1:<the bound port>"));
  // Something really listens there: a plain TCP connect from here succeeds.
  auto address = ctx.within(ctx.io.provider->getNetwork().parseAddress(l.address), CALL_LIMIT, "parse address");
  ctx.within(address->connect(), CALL_LIMIT, kj::str("a TCP connect to ", l.address.c_str()));
  Dialed d = connected(ctx, worker.transport, l.address, "a dial to the listener");
  waitFor(ctx, [&] { return !l.log->accepted.empty(); }, "the acceptor to receive the dialed connection");
}

void identities(CaseContext& ctx) {
  TestSwarm swarm(ctx);
  auto [manager, worker] = managerAndWorker(ctx, swarm);
  Listening atManager = listen(ctx, manager.transport);
  Dialed d = connected(ctx, worker.transport, atManager.address, "the worker's dial to the manager");
  checkPeer(d.peer, manager.cert, "the worker's DialResult");
  waitFor(ctx, [&] { return !atManager.log->accepted.empty(); }, "the manager's acceptor");
  checkPeer(atManager.log->accepted[0].peer, worker.cert, "the manager's Acceptor");

  Listening atWorker = listen(ctx, worker.transport);
  Dialed back = connected(ctx, manager.transport, atWorker.address, "the manager's dial to the worker");
  checkPeer(back.peer, worker.cert, "the manager's DialResult");
  waitFor(ctx, [&] { return !atWorker.log->accepted.empty(); }, "the worker's acceptor");
  checkPeer(atWorker.log->accepted[0].peer, manager.cert, "the worker's Acceptor");
}

void bytesBothWays(CaseContext& ctx) {
  TestSwarm swarm(ctx);
  auto [manager, worker] = managerAndWorker(ctx, swarm);
  Listening l = listen(ctx, manager.transport);
  Dialed d = connected(ctx, worker.transport, l.address, "the dial");
  waitFor(ctx, [&] { return !l.log->accepted.empty(); }, "the acceptor");
  auto& inbound = l.log->accepted[0];
  std::mt19937_64 rng(ctx.seed);

  // Request/response turns first, then longer runs of small chunks in each direction.
  std::string toListener, toDialer;
  for (int turn = 0; turn < 5; ++turn) {
    std::string ping = kj::str("ping ", turn, " ").cStr(), pong = kj::str("pong ", turn, " ").cStr();
    send(ctx, d.connection, ping, rng, 4, "Connection.send (dialer)");
    expectBytes(ctx, *inbound.inbox, toListener += ping, "the listener's ByteSink");
    send(ctx, inbound.connection, pong, rng, 4, "Connection.send (listener)");
    expectBytes(ctx, *d.inbox, toDialer += pong, "the dialer's ByteSink");
  }
  std::string run = randomBytes(rng, 6000);
  send(ctx, d.connection, run, rng, 300, "Connection.send (dialer)");
  send(ctx, inbound.connection, run, rng, 300, "Connection.send (listener)");
  expectBytes(ctx, *inbound.inbox, toListener + run, "the listener's ByteSink");
  expectBytes(ctx, *d.inbox, toDialer + run, "the dialer's ByteSink");
}

void oneMebibyte(CaseContext& ctx) {
  TestSwarm swarm(ctx);
  auto [manager, worker] = managerAndWorker(ctx, swarm);
  Listening l = listen(ctx, manager.transport);
  Dialed d = connected(ctx, worker.transport, l.address, "the dial");
  waitFor(ctx, [&] { return !l.log->accepted.empty(); }, "the acceptor");
  auto& inbound = l.log->accepted[0];
  std::mt19937_64 rng(ctx.seed), upRng(ctx.seed + 1), downRng(ctx.seed + 2);
  std::string up = randomBytes(rng, 1 << 20), down = randomBytes(rng, 1 << 20);
  // Both directions at once.
  auto both = kj::joinPromises(kj::arr(sendFrom(d.connection, up, 0, upRng, 64 * 1024),
                                       sendFrom(inbound.connection, down, 0, downRng, 64 * 1024)));
  ctx.within(kj::mv(both), CALL_LIMIT, "sending 1 MiB each way");
  expectBytes(ctx, *inbound.inbox, up, "1 MiB at the listener");
  expectBytes(ctx, *d.inbox, down, "1 MiB at the dialer");
}

void closedPort(CaseContext& ctx) {
  TestSwarm swarm(ctx);
  Node node{ctx.as<Transport>(), swarm.node(NodeRole::WORKER)};
  setCredentials(ctx, node.transport, member(swarm, node.cert));
  // A port that was just free: bind it, note it, let it go.
  auto any = ctx.within(ctx.io.provider->getNetwork().parseAddress("127.0.0.1", 0), CALL_LIMIT, "parse address");
  uint port = any->listen()->getPort();
  std::string address = kj::str("127.0.0.1:", port).cStr();
  refused(ctx, node.transport, address, kj::str("a dial to the closed port ", port));
}

void expectations(CaseContext& ctx) {
  TestSwarm swarm(ctx);
  auto [manager, worker] = managerAndWorker(ctx, swarm);
  Listening atManager = listen(ctx, manager.transport);
  connected(ctx, worker.transport, atManager.address, "a dial expecting the manager's node ID",
            {Expect::NODE, manager.cert.nodeId});
  refused(ctx, worker.transport, atManager.address, "a dial expecting another node ID",
          {Expect::NODE, randomId(swarm.rng)});
  connected(ctx, worker.transport, atManager.address, "a dial expecting a manager, to a manager", {Expect::MANAGER, {}});

  Listening atWorker = listen(ctx, worker.transport);
  refused(ctx, manager.transport, atWorker.address, "a dial expecting a manager, to a worker", {Expect::MANAGER, {}});
  connected(ctx, manager.transport, atWorker.address, "a dial expecting any member, to a worker");
}

void closeEndsPeerSink(CaseContext& ctx) {
  TestSwarm swarm(ctx);
  auto [manager, worker] = managerAndWorker(ctx, swarm);
  Listening l = listen(ctx, manager.transport);
  std::mt19937_64 rng(ctx.seed);

  // The dialer closes: the listener's sink gets every byte, then done().
  Dialed first = connected(ctx, worker.transport, l.address, "the first dial");
  waitFor(ctx, [&] { return l.log->accepted.size() >= 1; }, "the acceptor (first connection)");
  std::string last = randomBytes(rng, 3000);
  send(ctx, first.connection, last, rng, 700, "Connection.send before close");
  close(ctx, first.connection, "Connection.close (dialer)");
  auto& firstInbox = *l.log->accepted[0].inbox;
  waitFor(ctx, [&] { return firstInbox.done; }, "done() on the listener's sink after the dialer's close()");
  check(firstInbox.bytes == last, "the listener's sink ended without all the bytes sent before close()");

  // The listener closes: the dialer's sink ends the same way.
  Dialed second = connected(ctx, worker.transport, l.address, "the second dial");
  waitFor(ctx, [&] { return l.log->accepted.size() >= 2; }, "the acceptor (second connection)");
  auto& secondConn = l.log->accepted[1].connection;
  send(ctx, secondConn, last, rng, 700, "Connection.send before close");
  close(ctx, secondConn, "Connection.close (listener)");
  waitFor(ctx, [&] { return second.inbox->done; }, "done() on the dialer's sink after the listener's close()");
  check(second.inbox->bytes == last, "the dialer's sink ended without all the bytes sent before close()");
  check(!firstInbox.writeAfterDone && !second.inbox->writeAfterDone, "a sink got write() after done()");
}

// The accepted connections of `log` all come from `allowed` (a later good dial is the barrier).
void onlyAccepted(CaseContext& ctx, Listening& l, Transport::Client& goodDialer, const NodeCert& good,
                  kj::StringPtr refusedWhat) {
  connected(ctx, goodDialer, l.address, "a dial from a good member after the refusal");
  waitFor(ctx, [&] { return !l.log->accepted.empty(); }, "the acceptor to get the good member");
  for (auto& entry : l.log->accepted) {
    check(!entry.peer.anonymous && entry.peer.nodeId == good.nodeId,
          kj::str("the acceptor was handed ", refusedWhat, " (node ", entry.peer.nodeId.c_str(), ")"));
  }
}

void foreignRoot(CaseContext& ctx) {
  TestSwarm swarm(ctx);
  Node manager{ctx.as<Transport>(), swarm.node(NodeRole::MANAGER)};
  setCredentials(ctx, manager.transport, member(swarm, manager.cert));
  // Same cluster ID and role names, but signed by a CA of its own.
  TestCa otherCa = mintCa("swarm-ca");
  Node outsider{secondInstance(ctx), mintNode(otherCa, randomId(swarm.rng), NodeRole::MANAGER, swarm.clusterId)};
  setCredentials(ctx, outsider.transport, {&outsider.cert, {otherCa.certPem}, swarm.clusterId, {}});

  Listening l = listen(ctx, manager.transport);
  refused(ctx, outsider.transport, l.address, "a dial from a node of another root");
  Listening atOutsider = listen(ctx, outsider.transport);
  refused(ctx, manager.transport, atOutsider.address, "a dial to a node of another root");
  onlyAccepted(ctx, l, manager.transport, manager.cert, "the node of another root");
}

void otherCluster(CaseContext& ctx) {
  TestSwarm swarm(ctx);
  Node manager{ctx.as<Transport>(), swarm.node(NodeRole::MANAGER)};
  setCredentials(ctx, manager.transport, member(swarm, manager.cert));
  // Signed by the same CA, but for another cluster ID.
  std::string otherId = randomId(swarm.rng);
  Node stranger{secondInstance(ctx), mintNode(swarm.ca, randomId(swarm.rng), NodeRole::MANAGER, otherId)};
  setCredentials(ctx, stranger.transport, {&stranger.cert, {swarm.ca.certPem}, otherId, {}});

  Listening l = listen(ctx, manager.transport);
  refused(ctx, stranger.transport, l.address, "a dial from a node of another cluster");
  Listening atStranger = listen(ctx, stranger.transport);
  refused(ctx, manager.transport, atStranger.address, "a dial to a node of another cluster");
  onlyAccepted(ctx, l, manager.transport, manager.cert, "the node of another cluster");
}

void revocation(CaseContext& ctx) {
  TestSwarm swarm(ctx);
  auto [manager, worker] = managerAndWorker(ctx, swarm);
  Creds managerCreds = member(swarm, manager.cert);
  managerCreds.revoked = {randomId(swarm.rng), worker.cert.nodeId};
  setCredentials(ctx, manager.transport, managerCreds);
  Listening l = listen(ctx, manager.transport);
  refused(ctx, worker.transport, l.address, "a dial from a revoked node");
  onlyAccepted(ctx, l, manager.transport, manager.cert, "the revoked node");

  // New credentials apply to new connections: lifted, the same node gets in.
  managerCreds.revoked = {};
  setCredentials(ctx, manager.transport, managerCreds);
  connected(ctx, worker.transport, l.address, "a dial after the revocation was lifted");

  // The dialer refuses a revoked listener too.
  Creds workerCreds = member(swarm, worker.cert);
  workerCreds.revoked = {manager.cert.nodeId};
  setCredentials(ctx, worker.transport, workerCreds);
  refused(ctx, worker.transport, l.address, "a dial to a revoked node");
}

void joinMode(CaseContext& ctx) {
  TestSwarm swarm(ctx);
  Node manager{ctx.as<Transport>(), swarm.node(NodeRole::MANAGER)};
  setCredentials(ctx, manager.transport, member(swarm, manager.cert));
  Transport::Client joiner = secondInstance(ctx);
  setCredentials(ctx, joiner, {});  // no certificate, no roots, no cluster yet
  Listening l = listen(ctx, manager.transport);

  std::string digest = base36Sha256(swarm.ca.certPem);
  Dialed d = connected(ctx, joiner, l.address, "a join-mode dial pinning the right root digest",
                       {Expect::JOIN_ROOT_DIGEST, digest});
  checkPeer(d.peer, manager.cert, "the joiner's DialResult");
  waitFor(ctx, [&] { return !l.log->accepted.empty(); }, "the acceptor to get the joiner");
  check(l.log->accepted[0].peer.anonymous, kj::str("the acceptor saw the certificate-less joiner as node ",
                                                   l.log->accepted[0].peer.nodeId.c_str(), "; expected anonymous"));
  std::mt19937_64 rng(ctx.seed);
  std::string request = "join request";
  send(ctx, d.connection, request, rng, 5, "Connection.send (joiner)");
  expectBytes(ctx, *l.log->accepted[0].inbox, request, "the listener's ByteSink (joiner)");

  TestCa otherCa = mintCa("swarm-ca");
  refused(ctx, joiner, l.address, "a join-mode dial pinning another root's digest",
          {Expect::JOIN_ROOT_DIGEST, base36Sha256(otherCa.certPem)});
  refused(ctx, joiner, l.address, "a dial without a certificate or roots expecting a member");
}

void closedListener(CaseContext& ctx) {
  TestSwarm swarm(ctx);
  auto [manager, worker] = managerAndWorker(ctx, swarm);
  Listening l = listen(ctx, manager.transport);
  Dialed before = connected(ctx, worker.transport, l.address, "a dial before Listener.close()");
  ctx.within(l.listener.closeRequest().send(), CALL_LIMIT, "Listener.close");
  // From the manager itself: the worker still holds an open connection there, which a transport
  // that reuses connections to the same peer could rightly hand back.
  refused(ctx, manager.transport, l.address, "a dial after Listener.close()");
  // Connections accepted before the close live on.
  waitFor(ctx, [&] { return !l.log->accepted.empty(); }, "the acceptor (connection from before the close)");
  std::mt19937_64 rng(ctx.seed);
  std::string bytes = "still here";
  send(ctx, before.connection, bytes, rng, 4, "Connection.send after Listener.close");
  expectBytes(ctx, *l.log->accepted[0].inbox, bytes, "the listener's ByteSink after Listener.close");
}

}  // namespace

std::vector<Case> transportCases() {
  return {
      {"transport: listen on 127.0.0.1:0 reports the bound port and accepts a dial", listenAndDial},
      {"transport: each end learns the other's node ID, role and cluster ID", identities},
      {"transport: bytes flow both ways, in order", bytesBothWays},
      {"transport: 1 MiB each way at once arrives intact", oneMebibyte},
      {"transport: a dial to a closed port is refused with a reason", closedPort},
      {"transport: a dial expecting another node ID, or a manager from a worker, is refused", expectations},
      {"transport: close() ends the peer's ByteSink after the bytes sent before it", closeEndsPeerSink},
      {"transport: a node of another root is refused both ways", foreignRoot},
      {"transport: a node of another cluster is refused both ways", otherCluster},
      {"transport: a revoked node is refused, and new credentials apply to new connections", revocation},
      {"transport: join mode connects without a certificate when the root digest matches", joinMode},
      {"transport: a closed listener refuses new dials and keeps its connections", closedListener},
  };
}

}  // namespace swarm::conformance
