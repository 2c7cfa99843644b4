// SwarmNode's network between nodes (cluster.capnp): the transport's credentials and listener,
// the Manager service every manager serves, swarm join on both sides, writes a follower hands to
// the leader, the dispatcher's heartbeats and node status on the leader, and the agent's
// heartbeats on every other node.

// GCC 12 reports a false -Wmaybe-uninitialized inside kj::_::ExceptionOr<T> (see replication.cpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "api/encode.h"
#include "errors.h"
#include "http/message.h"
#include "logging.h"
#include "store/object_id.h"
#include "swarm_node.h"

#include <kj/debug.h>
#include <sodium.h>

#include <algorithm>
#include <chrono>
#include <set>

namespace swarm::kernel {
namespace {

namespace ss = store::schema;

constexpr auto kApplyWait = 10 * kj::SECONDS;
constexpr auto kDispatcherTick = 500 * kj::MILLISECONDS;
constexpr auto kAgentRetry = 500 * kj::MILLISECONDS;
constexpr auto kJoinPatience = 20 * kj::SECONDS;
// Swarm's grace: a node is DOWN after missing this many periods; after a leader change it gets
// twice that before the new leader's dispatcher gives up on it.
constexpr int kGraceMultiplier = 3;

kj::ArrayPtr<const kj::byte> bytesOf(std::string_view s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}
std::string str(capnp::Data::Reader d) { return std::string(reinterpret_cast<const char*>(d.begin()), d.size()); }

// The fields a heartbeat reports, as the store has them already.
bool describes(schema::NodeDescription::Reader stored, schema::NodeDescription::Reader reported) {
  auto r1 = stored.getResources(), r2 = reported.getResources();
  auto e1 = stored.getEngine(), e2 = reported.getEngine();
  if (stored.getHostname() != reported.getHostname() || r1.getNanoCpus() != r2.getNanoCpus() ||
      r1.getMemoryBytes() != r2.getMemoryBytes() || e1.getEngineVersion() != e2.getEngineVersion() ||
      stored.getPlatform().getOs() != reported.getPlatform().getOs() ||
      stored.getPlatform().getArchitecture() != reported.getPlatform().getArchitecture() ||
      e1.getLabels().size() != e2.getLabels().size()) {
    return false;
  }
  for (unsigned i = 0; i < e1.getLabels().size(); ++i) {
    if (e1.getLabels()[i].getKey() != e2.getLabels()[i].getKey() ||
        e1.getLabels()[i].getValue() != e2.getLabels()[i].getValue()) {
      return false;
    }
  }
  return true;
}

uint64_t randomMemberId() {
  uint64_t id = 0;
  while (id == 0) randombytes_buf(&id, sizeof(id));
  return id;
}

std::string hostOf(std::string address) {
  auto colon = address.rfind(':');
  return colon == std::string::npos ? address : address.substr(0, colon);
}

// Assignments land in this node's agent: from the leader's dispatcher over a connection, or, on
// the leader itself, straight from its own dispatcher.
class AgentSink final : public ss::AssignmentSink::Server {
 public:
  AgentSink(Agent& agent, schema::Runtime::Client runtime) : agent(agent), runtime(kj::mv(runtime)) {}
  kj::Promise<void> assigned(AssignedContext context) override {
    agent.assign(context.getParams().getAssignment());
    return kj::READY_NOW;
  }
  kj::Promise<void> logs(LogsContext context) override {
    auto params = context.getParams();
    auto request = runtime.logsRequest();
    request.setTaskId(params.getTaskId());
    request.setOptions(params.getOptions());
    request.setSink(params.getSink());
    return request.send().ignoreResult();
  }

 private:
  Agent& agent;
  schema::Runtime::Client runtime;
};

}  // namespace

// ---- the Manager service ------------------------------------------------------------------------

class ManagerServer final : public ss::Manager::Server {
 public:
  ManagerServer(SwarmNode& node, PeerIdentity peer) : node(node), peer(std::move(peer)) {}

  kj::Promise<void> join(JoinContext context) override {
    return kj::evalNow([&]() -> kj::Promise<void> {
      if (!node.isManager()) throw SwarmError(503, "this node is not an active manager; join through another one");
      auto request = context.getParams().getRequest();
      auto response = context.getResults().initResponse();
      if (node.replication().view().isLeader()) return node.admit(request, response);
      // Only the leader changes membership: hand the whole request on.
      std::string leader = node.leaderAddress();
      if (leader.empty()) {
        throw SwarmError(503, "the swarm has no leader right now (too few managers online?); retry the join later");
      }
      return node.links.get(leader).then([request](ManagerClient client) {
        auto forwarded = client.joinRequest();
        forwarded.setRequest(request);
        return forwarded.send();
      }).then([context](capnp::Response<ss::Manager::JoinResults>&& answer) mutable {
        context.getResults().setResponse(answer.getResponse());
      });
    });
  }

  kj::Promise<void> raftStep(RaftStepContext context) override {
    if (!peer.isManager()) {
      return KJ_EXCEPTION(FAILED, "HTTP 403: only managers send consensus messages", peer.describe());
    }
    if (node.raftPeers == nullptr || !node.consensusStarted) return kj::READY_NOW;
    auto params = context.getParams();
    auto step = node.consensus().stepRequest();
    step.setFrom(params.getFrom());
    step.setMessage(params.getMessage());
    // Delivery is best effort: a message the plugin refuses is its business (it logs it).
    return step.send().catch_([](kj::Exception&&) {});
  }

  kj::Promise<void> propose(ProposeContext context) override {
    return kj::evalNow([&]() -> kj::Promise<void> {
      if (!peer.isManager()) throw SwarmError(403, "only managers propose store changes");
      node.requireManager();
      std::string entry = str(context.getParams().getEntry());
      return node.replication().propose(kj::mv(entry)).then([context](Replication::Outcome outcome) mutable {
        auto answer = context.getResults().initOutcome();
        answer.setIndex(outcome.index);
        if (outcome.failed) {
          // Not the leader either (any more): the caller maps this to "no leader".
          answer.setStatus(503);
          answer.setMessage(outcome.failed->message);
        } else if (!outcome.applied->ok()) {
          answer.setStatus(static_cast<uint16_t>(store::httpStatus(outcome.applied->status)));
          answer.setMessage(outcome.applied->message);
        } else {
          answer.setStatus(200);
        }
      });
    });
  }

  kj::Promise<void> changeRole(ChangeRoleContext context) override {
    return kj::evalNow([&]() {
      if (peer.anonymous) throw SwarmError(403, "a node needs its certificate to change its role");
      auto params = context.getParams();
      return node.grantRole(peer, str(params.getCsr()), params.getAdvertiseAddr(), context.getResults().initChange());
    });
  }

  kj::Promise<void> assignments(AssignmentsContext context) override {
    return kj::evalNow([&]() {
      if (peer.anonymous) throw SwarmError(403, "a node needs its certificate to get tasks");
      if (!node.leading) throw SwarmError(503, "not the leader; the dispatcher runs on the leader");
      return node.openAssignments(peer.nodeId, context.getParams().getSink());
    });
  }

  kj::Promise<void> updateTaskStatus(UpdateTaskStatusContext context) override {
    return kj::evalNow([&]() {
      if (peer.anonymous) throw SwarmError(403, "a node needs its certificate to report tasks");
      if (!node.leading) throw SwarmError(503, "not the leader; the dispatcher runs on the leader");
      return node.applyTaskStatus(peer.nodeId, context.getParams().getUpdates());
    });
  }

  kj::Promise<void> taskLogs(TaskLogsContext context) override {
    return kj::evalNow([&]() {
      if (!peer.isManager()) throw SwarmError(403, "only managers read task logs");
      auto params = context.getParams();
      return node.taskLogs(params.getNodeId(), params.getTaskId(), params.getOptions(), params.getSink());
    });
  }

  kj::Promise<void> renewCertificate(RenewCertificateContext context) override {
    return kj::evalNow([&]() {
      if (peer.anonymous) throw SwarmError(403, "a node needs its certificate to renew it");
      return node.renewCertificateFor(peer, str(context.getParams().getCsr()), context.getResults());
    });
  }

  kj::Promise<void> heartbeat(HeartbeatContext context) override {
    return kj::evalNow([&]() {
      if (peer.anonymous) throw SwarmError(403, "a node needs its certificate to heartbeat");
      return node.heartbeatFrom(peer, context.getParams().getDescription(), context.getResults().initSession());
    });
  }

 private:
  SwarmNode& node;
  PeerIdentity peer;
};

// An anonymous (joining) peer gets only join(); ManagerServer refuses it the rest.
capnp::Capability::Client SwarmNode::managerFor(const PeerIdentity& peer) {
  return kj::heap<ManagerServer>(*this, peer);
}

// ---- credentials and listener -------------------------------------------------------------------

schema::Transport::Client SwarmNode::transport() {
  return kernel.plugin(schema::Kind::TRANSPORT).bootstrap().castAs<schema::Transport>();
}

kj::Promise<void> SwarmNode::pushCredentials() {
  auto credentials = transport().setCredentialsRequest();
  auto c = credentials.initCredentials();
  c.setChain(bytesOf(ownCredentials.chain));
  c.setKey(bytesOf(ownCredentials.key));
  auto roots = splitPemCertificates(ownCredentials.roots);
  auto rootList = c.initRoots(static_cast<unsigned>(roots.size()));
  for (unsigned i = 0; i < roots.size(); ++i) rootList.set(i, bytesOf(roots[i]));
  c.setClusterId(self.clusterId);
  c.setMinVersion(schema::TlsVersion::TLS12);
  // Removed nodes are refused at the handshake (a manager knows them from the store).
  std::vector<std::string> revoked;
  auto clusters = storePtr->list(store::Kind::cluster);
  if (!clusters.empty()) {
    for (auto r : clusters.front()->reader().getCluster().getRevoked()) revoked.emplace_back(r.getCn().cStr());
  }
  auto list = c.initRevokedNodeIds(static_cast<unsigned>(revoked.size()));
  for (unsigned i = 0; i < revoked.size(); ++i) list.set(i, revoked[i]);
  pushedRevocations = revoked.size();
  return credentials.send().ignoreResult();
}

void SwarmNode::pushRevocationsIfChanged() {
  if (ownCredentials.chain.empty()) return;
  auto clusters = storePtr->list(store::Kind::cluster);
  if (clusters.empty() || clusters.front()->reader().getCluster().getRevoked().size() == pushedRevocations) return;
  tasks.add(pushCredentials());
}

kj::Promise<void> SwarmNode::bringUpNetwork(std::string chain, std::string key, std::string roots) {
  auto transport = this->transport();
  ownCredentials = {kj::mv(chain), kj::mv(key), kj::mv(roots)};
  auto set = pushCredentials();
  scheduleRenewal();
  if (!self.manager || listener != nullptr) return set;
  return set.then([this, transport]() mutable {
    auto listen = transport.listenRequest();
    listen.setAddress(self.listenAddr);
    listen.setAcceptor(kj::heap<StreamAcceptor>(
        [this](kj::Own<TransportStream> stream, PeerIdentity peer) { served.accept(kj::mv(stream), kj::mv(peer)); }));
    return listen.send().then(
        [this](capnp::Response<schema::Transport::ListenResults>&& listening) {
          listener = listening.getListener();
          log->info("listening for nodes on {}", self.listenAddr);
        },
        [this](kj::Exception&& e) {
          throw SwarmError(400, "cannot listen on " + self.listenAddr + " for other nodes: " + describe(e) +
                                    "; choose another --listen-addr");
        });
  });
}

void SwarmNode::takeDownNetwork() {
  agent = nullptr;
  orchestration = nullptr;
  stopAgent();
  endAssignmentSessions();
  dispatcher = nullptr;
  leading = false;
  heartbeatDeadlines.clear();
  KJ_IF_MAYBE (l, listener) {
    tasks.add(l->closeRequest().send().ignoreResult().catch_([](kj::Exception&&) {}));
  }
  listener = nullptr;
  links.clear();
  served.clear();
  raftPeers = nullptr;
  ownCredentials = {};
  knownManagers.clear();
  for (auto& [index, waiter] : appliedWaiters) {
    waiter->reject(KJ_EXCEPTION(DISCONNECTED, "HTTP 503: this node left the swarm"));
  }
  appliedWaiters.clear();
}

// ---- writes on a follower -----------------------------------------------------------------------

std::string SwarmNode::leaderAddress() const {
  if (raftPeers == nullptr) return "";
  return raftPeers->addressOf(replicationPtr->view().leaderId);
}

const std::map<uint64_t, RaftMember>& SwarmNode::raftMembers() const {
  static const std::map<uint64_t, RaftMember> none;
  return raftPeers == nullptr ? none : raftPeers->members();
}

std::string SwarmNode::leaderNodeId() const {
  if (raftPeers == nullptr) return "";
  auto it = raftPeers->members().find(replicationPtr->view().leaderId);
  return it == raftPeers->members().end() ? "" : it->second.nodeId;
}

kj::Promise<uint64_t> SwarmNode::forwardToLeader(std::string entry, uint64_t leaderHint) {
  std::string address = raftPeers == nullptr ? "" : raftPeers->addressOf(leaderHint);
  if (address.empty()) throw SwarmError(503, "The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.");
  return links.get(address)
      .then([entry = kj::mv(entry)](ManagerClient client) {
        auto propose = client.proposeRequest();
        propose.setEntry(bytesOf(entry));
        return propose.send();
      })
      .then(
          [this](capnp::Response<ss::Manager::ProposeResults>&& answer) -> kj::Promise<uint64_t> {
            auto outcome = answer.getOutcome();
            if (outcome.getStatus() == 503) {
              throw SwarmError(503, "The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.");
            }
            if (outcome.getStatus() != 200) throw SwarmError(outcome.getStatus(), outcome.getMessage());
            uint64_t index = outcome.getIndex();
            // Read-your-writes: answer once this manager's store has the change too.
            return waitApplied(index).then([index]() { return index; });
          },
          [this, address](kj::Exception&& e) -> kj::Promise<uint64_t> {
            links.drop(address);
            auto failure = http::failureOf(e);
            if (failure.status == 500 || failure.status == 503) {
              throw SwarmError(503, "The swarm does not have a leader. It's possible that too few managers are "
                                    "online. Make sure more than half of the managers are online. (" +
                                        failure.message + ")");
            }
            throw SwarmError(failure.status, failure.message);
          });
}

kj::Promise<void> SwarmNode::readBarrier() {
  requireManager();
  if (leading) return kj::READY_NOW;
  return replicationPtr->readBarrier().then([this](std::optional<ProposeError> failed) {
    if (!failed) return;
    if (replicationPtr->view().leaderId != 0) {
      // A leader exists but did not confirm in time: busy, not gone.
      throw SwarmError(503, "the leader did not confirm this read in time (it may be overloaded); retry, or "
                            "ask the leader's API");
    }
    throw SwarmError(503, "The swarm does not have a leader. It's possible that too few managers are online. "
                          "Make sure more than half of the managers are online.");
  });
}

kj::Promise<void> SwarmNode::waitApplied(uint64_t index) {
  if (storePtr->appliedIndex() >= index) return kj::READY_NOW;
  auto paf = kj::newPromiseAndFulfiller<void>();
  appliedWaiters.emplace(index, kj::mv(paf.fulfiller));
  return io.provider->getTimer()
      .timeoutAfter(kApplyWait, kj::mv(paf.promise))
      .catch_([index](kj::Exception&& e) -> kj::Promise<void> {
        if (e.getType() == kj::Exception::Type::OVERLOADED) {
          throw SwarmError(503, "the change was committed (entry " + std::to_string(index) +
                                    ") but this manager has not caught up with it yet; retry the read");
        }
        return kj::mv(e);
      });
}

void SwarmNode::notifyApplied() {
  uint64_t applied = storePtr->appliedIndex();
  while (!appliedWaiters.empty() && appliedWaiters.begin()->first <= applied) {
    appliedWaiters.begin()->second->fulfill();
    appliedWaiters.erase(appliedWaiters.begin());
  }
}

// ---- join: the joining side ---------------------------------------------------------------------

kj::Promise<void> SwarmNode::join(api::JoinRequest request) {
  if (localState == LocalState::locked) throw SwarmError(503, "This node is locked; unlock it or leave the swarm first.");
  if (localState != LocalState::inactive) {
    throw SwarmError(503, "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one.");
  }
  if (consensusStarted) {
    throw SwarmError(503, "this node left a swarm since swarm-kernel started; restart swarm-kernel before joining a swarm");
  }
  if (request.remoteAddrs.empty()) throw SwarmError(400, "RemoteAddrs: give at least one manager address to join");
  auto pki = this->pki();
  struct Joining {
    api::JoinRequest request;
    std::string digest, csr, key, chain, roots, dataKey;
    capnp::MallocMessageBuilder response;
    size_t attempt = 0;
    std::string lastError;
    kj::TimePoint deadline = kj::origin<kj::TimePoint>();
  };
  auto joining = kj::heap<Joining>();
  joining->request = kj::mv(request);
  Joining& j = *joining;
  localState = LocalState::pending;

  auto digest = pki.rootDigestOfTokenRequest();
  digest.setToken(j.request.joinToken);
  return digest.send()
      .catch_([](kj::Exception&& e) -> capnp::Response<schema::Pki::RootDigestOfTokenResults> {
        throw SwarmError(400, "invalid join token: " + describe(e));
      })
      .then([&j, pki](capnp::Response<schema::Pki::RootDigestOfTokenResults>&& r) mutable {
        j.digest = r.getDigest();
        // The CA ignores the CSR's subject and sets the identity it assigns; this one only fills it.
        auto csr = pki.makeCsrRequest();
        auto identity = csr.initIdentity();
        identity.setNodeId("joining");
        identity.setClusterId("joining");
        return csr.send();
      })
      .then([this](capnp::Response<schema::Pki::MakeCsrResults>&& made) {
        // Empty credentials: join mode, the dial checks the manager's root against the token.
        auto joinMode = transport().setCredentialsRequest();
        joinMode.initCredentials();
        return joinMode.send().then([made = kj::mv(made)](auto&&) mutable { return kj::mv(made); });
      })
      .then([this, &j](capnp::Response<schema::Pki::MakeCsrResults>&& made) {
        j.csr = str(made.getCsr());
        j.key = str(made.getKey());
        // Each manager address in turn; the first that answers decides. A swarm that is busy
        // (electing, a manager just joined) is asked again until the deadline.
        j.deadline = io.provider->getTimer().now() + kJoinPatience;
        auto tryNext = [this, &j](auto& self) -> kj::Promise<void> {
          if (j.attempt == j.request.remoteAddrs.size()) {
            if (io.provider->getTimer().now() >= j.deadline) {
              throw SwarmError(503, "could not join the swarm through " + std::to_string(j.request.remoteAddrs.size()) +
                                        " manager address(es): " + j.lastError);
            }
            j.attempt = 0;
            return io.provider->getTimer().afterDelay(kAgentRetry).then([self]() mutable { return self(self); });
          }
          std::string address = j.request.remoteAddrs[j.attempt++];
          return dialStream(transport(), address, DialExpect::joinRootDigest(j.digest))
              .then([this, &j](DialedStream dialed) {
                auto rpc = kj::heap<capnp::TwoPartyClient>(*dialed.stream);
                auto client = rpc->bootstrap().castAs<ss::Manager>();
                auto call = client.joinRequest();
                auto r = call.initRequest();
                r.setToken(j.request.joinToken);
                r.setCsr(bytesOf(j.csr));
                r.setAvailability(j.request.availability);
                r.setAdvertiseAddr(j.request.advertiseAddr.empty() ? j.request.listenAddr : j.request.advertiseAddr);
                auto description = r.initDescription();
                description.setHostname(options.hostname);
                description.getPlatform().setOs("linux");
                description.getEngine().setEngineVersion(options.engineVersion);
                return call.send()
                    .then([&j](capnp::Response<ss::Manager::JoinResults>&& answer) {
                      j.response.setRoot(answer.getResponse());
                    })
                    .attach(kj::mv(rpc), kj::mv(dialed.stream));
              })
              .catch_([&j, self, address](kj::Exception&& e) mutable -> kj::Promise<void> {
                auto failure = http::failureOf(e);
                // Worth asking again: a swarm without a leader for a moment, a manager not up yet.
                // Anything else (a bad token, another cluster's root) is the answer.
                bool transient = failure.status == 503 || failure.message.find("cannot reach") != std::string::npos ||
                                 failure.message.find("timed out") != std::string::npos ||
                                 failure.message.find("backing off") != std::string::npos;
                if (!transient) throw SwarmError(400, failure.message);
                j.lastError = address + ": " + failure.message;
                return self(self);
              });
        };
        return tryNext(tryNext);
      })
      .then([this, &j]() {
        auto answer = j.response.getRoot<ss::JoinResponse>().asReader();
        self = Self{};
        self.nodeId = answer.getNodeId();
        self.clusterId = answer.getClusterId();
        self.manager = answer.getRole() == schema::NodeRole::MANAGER;
        self.raftMemberId = answer.getRaftMemberId();
        self.listenAddr = j.request.listenAddr;
        self.advertiseAddr = j.request.advertiseAddr.empty() ? j.request.listenAddr : j.request.advertiseAddr;
        knownManagers.clear();
        for (auto m : answer.getManagers()) knownManagers.emplace_back(m.cStr());
        j.chain = str(answer.getCertChain());
        j.roots = str(answer.getRootCerts());
        j.dataKey = std::string(32, '\0');
        randombytes_buf(j.dataKey.data(), j.dataKey.size());
        return bringUpNetwork(j.chain, j.key, j.roots);
      })
      .then([this, &j]() -> kj::Promise<void> {
        std::error_code ec;
        std::filesystem::remove_all(options.stateDir / "raft", ec);
        std::filesystem::create_directories(options.stateDir, ec);
        capnp::MallocMessageBuilder message;
        auto state = message.initRoot<ss::NodeState>();
        state.setNodeId(self.nodeId);
        state.setClusterId(self.clusterId);
        state.setRole(self.manager ? schema::NodeRole::MANAGER : schema::NodeRole::WORKER);
        state.setListenAddr(self.listenAddr);
        state.setAdvertiseAddr(self.advertiseAddr);
        state.setRaftMemberId(self.raftMemberId);
        state.setCertChain(bytesOf(j.chain));
        state.setRootCerts(bytesOf(j.roots));
        state.getTlsKey().setClear(bytesOf(j.key));
        state.getDataKey().setClear(bytesOf(j.dataKey));
        auto managers = state.initManagers(static_cast<unsigned>(knownManagers.size()));
        for (unsigned i = 0; i < knownManagers.size(); ++i) managers.set(i, knownManagers[i]);
        stateFile.write(state.asReader());
        if (!self.manager) {
          localState = LocalState::active;
          startNodeLoops();
          log->info("joined cluster {} as worker {}", self.clusterId, self.nodeId);
          return kj::READY_NOW;
        }
        auto started = startConsensus(schema::StartConfig::Bootstrap::JOIN, j.dataKey, self.advertiseAddr);
        raftPeers->seed(j.response.getRoot<ss::JoinResponse>().asReader().getMembers());
        return started.then([this]() {
          localState = LocalState::active;
          startNodeLoops();
          log->info("joined cluster {} as manager {} (consensus member {:x})", self.clusterId, self.nodeId,
                    self.raftMemberId);
        });
      })
      .catch_([this](kj::Exception&& e) {
        log->error("swarm join failed: {}", describe(e));
        takeDownNetwork();
        if (consensusStarted) resetStore();
        localState = LocalState::inactive;
        self = Self{};
        kj::throwFatalException(kj::mv(e));
      })
      .attach(kj::mv(joining));
}

// ---- join: the leader's side (the CA's join service) --------------------------------------------

kj::Promise<std::string> SwarmNode::issueFor(std::string csr, std::string nodeId, schema::NodeRole role) {
  auto clusters = storePtr->list(store::Kind::cluster);
  if (clusters.empty()) throw SwarmError(503, "this manager has no cluster object yet; retry");
  auto issue = pki().issueRequest();
  issue.setCsr(bytesOf(csr));
  auto identity = issue.initIdentity();
  identity.setNodeId(nodeId);
  identity.setRole(role);
  identity.setClusterId(self.clusterId);
  issue.setValidity(clusters.front()->reader().getCluster().getSpec().getNodeCertExpiry());
  issue.setNow(now());
  return issue.send().then([](capnp::Response<schema::Pki::IssueResults>&& issued) {
    return str(issued.getCertificate().getChain());
  });
}

kj::Promise<uint64_t> SwarmNode::addLearner(std::string nodeId, std::string address) {
  // A new manager joins the consensus as a learner: it counts for no quorum until the dispatcher
  // promotes it, once it has caught up.
  uint64_t memberId = randomMemberId();
  auto add = consensus().addMemberRequest();
  auto member = add.initMember();
  member.setId(memberId);
  member.setNodeId(nodeId);
  member.setAddress(address);
  return add.send().then([memberId](capnp::Response<schema::Consensus::AddMemberResults>&& added) {
    auto result = added.getResult();
    if (result.isDone()) return memberId;
    if (result.isInProgress()) throw SwarmError(503, "another manager is joining right now; retry in a moment");
    if (result.isInvalid()) throw SwarmError(400, std::string("cannot add the manager: ") + result.getInvalid().cStr());
    if (result.isQuorumAtRisk()) throw SwarmError(503, result.getQuorumAtRisk().cStr());
    throw SwarmError(503, "this manager lost the leadership while adding the new manager; retry");
  });
}

void SwarmNode::describeMembers(capnp::List<schema::Member>::Builder out) const {
  unsigned i = 0;
  for (const auto& [id, m] : raftMembers()) {
    out[i].setId(id);
    out[i].setNodeId(m.nodeId);
    out[i].setAddress(m.address);
    out[i].setVoter(m.voter);
    ++i;
  }
}

void SwarmNode::setManagerStatus(ss::Object::Builder object, uint64_t memberId, const std::string& address) {
  auto manager = object.getNode().getManagerStatus().initManager();
  manager.setRaftId(memberId);
  manager.setAddr(address);
  manager.setReachability(schema::Reachability::UNKNOWN);
}

kj::Promise<void> SwarmNode::admit(ss::JoinRequest::Reader request, ss::JoinResponse::Builder response) {
  auto clusters = storePtr->list(store::Kind::cluster);
  if (clusters.empty()) throw SwarmError(503, "this manager has no cluster object yet; retry");
  auto cluster = clusters.front()->reader().getCluster();
  auto check = pki().checkJoinTokenRequest();
  check.setToken(request.getToken());
  check.setCurrent(cluster.getJoinTokens());
  struct Admission {
    capnp::MallocMessageBuilder request;
    std::string nodeId;
    schema::NodeRole role = schema::NodeRole::WORKER;
    std::string chain;
    uint64_t memberId = 0;
    std::string rootCert;
    std::string trustedRoots;
  };
  auto a = kj::heap<Admission>();
  a->request.setRoot(request);
  a->nodeId = store::newObjectId(store::systemRandom());
  a->rootCert = str(cluster.getRootCa().getCert());
  a->trustedRoots = trustedRootsBundle();
  Admission& adm = *a;
  auto joined = adm.request.getRoot<ss::JoinRequest>().asReader();
  return check.send()
      .then([this, &adm, joined](capnp::Response<schema::Pki::CheckJoinTokenResults>&& checked) {
        auto verdict = checked.getCheck();
        if (verdict.isInvalid()) {
          throw SwarmError(400, std::string("A valid join token is necessary to join this cluster (") +
                                    verdict.getInvalid().cStr() + ")");
        }
        adm.role = verdict.getRole();
        return issueFor(str(joined.getCsr()), adm.nodeId, adm.role);
      })
      .then([this, &adm, joined](std::string chain) -> kj::Promise<void> {
        adm.chain = kj::mv(chain);
        if (adm.role != schema::NodeRole::MANAGER) return kj::READY_NOW;
        return addLearner(adm.nodeId, joined.getAdvertiseAddr()).then([&adm](uint64_t id) { adm.memberId = id; });
      })
      .then([this, &adm, joined]() {
        capnp::MallocMessageBuilder message;
        auto object = message.initRoot<ss::Object>();
        auto node = object.initNode();
        node.setId(adm.nodeId);
        auto spec = node.getSpec();
        spec.setDesiredRole(adm.role);
        spec.setMembership(schema::NodeMembership::ACCEPTED);
        spec.setAvailability(joined.getAvailability());
        node.setDescription(joined.getDescription());
        describeTrust(node.getDescription().getTlsInfo(), bytesOf(adm.rootCert));
        node.getStatus().setState(schema::NodeState::UNKNOWN);
        node.getStatus().setAddr(hostOf(joined.getAdvertiseAddr()));
        if (adm.role == schema::NodeRole::MANAGER) setManagerStatus(object, adm.memberId, joined.getAdvertiseAddr());
        node.setRole(adm.role);
        auto certificate = node.getCertificate();
        certificate.setRole(adm.role);
        certificate.setStatus(schema::CertificateStatus::ISSUED);
        certificate.setCertificate(bytesOf(adm.chain));
        certificate.setCn(adm.nodeId);
        store::TransactionBuilder tx;
        tx.create(object.asReader());
        return write(kj::mv(tx));
      })
      .then([this, response, &adm, joined](uint64_t) mutable {
        response.setNodeId(adm.nodeId);
        response.setClusterId(self.clusterId);
        response.setRole(adm.role);
        response.setCertChain(bytesOf(adm.chain));
        response.setRootCerts(bytesOf(adm.trustedRoots));
        response.setRaftMemberId(adm.memberId);
        auto addresses = managerAddresses();
        auto list = response.initManagers(static_cast<unsigned>(addresses.size()));
        for (unsigned i = 0; i < addresses.size(); ++i) list.set(i, addresses[i]);
        if (adm.role == schema::NodeRole::MANAGER) {
          describeMembers(response.initMembers(static_cast<unsigned>(raftMembers().size())));
        }
        log->info("node {} joined as {} (from {})", adm.nodeId,
                  adm.role == schema::NodeRole::MANAGER ? "manager" : "worker", joined.getAdvertiseAddr().cStr());
      })
      .attach(kj::mv(a));
}

// ---- role changes: the leader's side --------------------------------------------------------------

kj::Promise<void> SwarmNode::grantRole(const PeerIdentity& peer, std::string csr, std::string address,
                                       ss::RoleChange::Builder change) {
  if (!leading) throw SwarmError(503, "not the leader; ask the leader");
  auto ref = storePtr->get(store::Kind::node, peer.nodeId);
  if (!ref) throw SwarmError(404, "node " + peer.nodeId + " is not in the swarm");
  auto node = ref->node();
  auto desired = node.getSpec().getDesiredRole();
  auto role = node.getRole();
  if (desired == schema::NodeRole::WORKER && role == schema::NodeRole::MANAGER) {
    throw SwarmError(409, "the demotion of node " + peer.nodeId + " is still being carried out; retry");
  }
  bool promoting = desired == schema::NodeRole::MANAGER && role == schema::NodeRole::WORKER;
  struct Grant {
    std::string chain;
    uint64_t memberId = 0;
    store::ObjectRef node;
  };
  auto g = kj::heap<Grant>();
  g->node = ref;
  if (desired == schema::NodeRole::MANAGER && !promoting) g->memberId = node.getManagerStatus().getManager().getRaftId();
  Grant& grant = *g;
  return issueFor(kj::mv(csr), peer.nodeId, desired)
      .then([this, &grant, promoting, peer, address](std::string chain) -> kj::Promise<void> {
        grant.chain = kj::mv(chain);
        if (!promoting) return kj::READY_NOW;
        return addLearner(peer.nodeId, address).then([&grant](uint64_t id) { grant.memberId = id; });
      })
      .then([this, &grant, desired, promoting, address]() {
        capnp::MallocMessageBuilder message;
        auto object = message.initRoot<ss::Object>();
        object.setNode(grant.node->node());
        auto updated = object.getNode();
        updated.setRole(desired);
        if (promoting) setManagerStatus(object, grant.memberId, address);
        auto certificate = updated.getCertificate();
        certificate.setRole(desired);
        certificate.setStatus(schema::CertificateStatus::ISSUED);
        certificate.setCertificate(bytesOf(grant.chain));
        store::TransactionBuilder tx;
        tx.update(object.asReader(), grant.node->version());
        return write(kj::mv(tx));
      })
      .then([this, change, &grant, desired, peer](uint64_t) mutable {
        change.setRole(desired);
        change.setCertChain(bytesOf(grant.chain));
        change.setRaftMemberId(grant.memberId);
        if (desired == schema::NodeRole::MANAGER) describeMembers(change.initMembers(static_cast<unsigned>(raftMembers().size())));
        log->info("node {} now holds a {} certificate", peer.nodeId, desired == schema::NodeRole::MANAGER ? "manager" : "worker");
      })
      .attach(kj::mv(g));
}

std::vector<std::string> SwarmNode::managerAddresses() const {
  std::vector<std::string> addresses;
  if (raftPeers != nullptr) {
    for (const auto& [id, member] : raftPeers->members()) {
      if (!member.address.empty()) addresses.push_back(member.address);
    }
  }
  if (addresses.empty()) addresses = knownManagers;
  return addresses;
}

// ---- dispatcher (leader) ------------------------------------------------------------------------

int64_t SwarmNode::heartbeatPeriod() const {
  auto clusters = storePtr->list(store::Kind::cluster);
  int64_t period = clusters.empty() ? 0 : clusters.front()->reader().getCluster().getSpec().getDispatcherHeartbeatPeriod();
  return period > 0 ? period : 5'000'000'000;
}

kj::Promise<void> SwarmNode::heartbeatFrom(const PeerIdentity& peer, schema::NodeDescription::Reader description,
                                           ss::SessionInfo::Builder session) {
  auto addresses = managerAddresses();
  auto list = session.initManagers(static_cast<unsigned>(addresses.size()));
  for (unsigned i = 0; i < addresses.size(); ++i) list.set(i, addresses[i]);
  session.setLeader(leaderAddress());
  if (!leading) {
    session.setPeriod(0);  // not the dispatcher: go to the leader
    return kj::READY_NOW;
  }
  int64_t period = heartbeatPeriod();
  // Swarm's jitter keeps a crowd of nodes from beating in step.
  uint32_t jitter = randombytes_uniform(1000);
  period += (static_cast<int64_t>(jitter) - 500) * period / 10'000;
  session.setPeriod(period);
  auto ttl = static_cast<int64_t>(kGraceMultiplier) * period;
  heartbeatDeadlines.insert_or_assign(peer.nodeId, io.provider->getTimer().now() + ttl * kj::NANOSECONDS);
  auto node = storePtr->get(store::Kind::node, peer.nodeId);
  if (!node) throw SwarmError(404, "node " + peer.nodeId + " is not in the swarm (it was removed); leave and join again");
  session.setDesiredRole(node->node().getSpec().getDesiredRole());
  session.setRenewCertificate(needsRotatedCertificate(node->node()));
  auto roots = splitPemCertificates(trustedRootsBundle());
  auto rootList = session.initTrustedRoots(static_cast<unsigned>(roots.size()));
  for (unsigned i = 0; i < roots.size(); ++i) rootList.set(i, bytesOf(roots[i]));
  bool described = description.hasPlatform() && describes(node->node().getDescription(), description);
  if (node->node().getStatus().getState() == schema::NodeState::READY && (described || !description.hasPlatform())) {
    return kj::READY_NOW;
  }
  capnp::MallocMessageBuilder message;
  auto object = message.initRoot<ss::Object>();
  object.setNode(node->node());
  object.getNode().getStatus().setState(schema::NodeState::READY);
  object.getNode().getStatus().setMessage("");
  if (description.hasPlatform() && !described) {
    // What the node's runtime offers; the TLS details stay the manager's.
    auto d = object.getNode().getDescription();
    d.setHostname(description.getHostname());
    d.setPlatform(description.getPlatform());
    d.setResources(description.getResources());
    d.setEngine(description.getEngine());
  }
  store::TransactionBuilder tx;
  tx.update(object.asReader(), node->version());
  return write(kj::mv(tx)).ignoreResult();
}

void SwarmNode::onLeadership(bool leader) {
  if (leader == leading) return;
  leading = leader;
  ++leadershipEpoch;
  heartbeatDeadlines.clear();
  if (leader) {
    dispatcher = dispatcherLoop().eagerlyEvaluate([this](kj::Exception&& e) {
      log->warn("dispatcher stopped: {}", describe(e));
    });
    orchestration = kj::heap<Orchestration>(
        *storePtr, io.provider->getTimer(), kernel.plugin(schema::Kind::SCHEDULER).bootstrap().castAs<schema::Scheduler>(),
        [this](store::TransactionBuilder tx) { return write(kj::mv(tx)); }, [this]() { return now(); });
    assignmentStream = nullptr;  // this node's tasks now come from itself
    assignmentTarget.clear();
    if (agentRuntime.get() != nullptr) {
      tasks.add(openAssignments(self.nodeId, kj::heap<AgentSink>(*agentRuntime, this->runtime())).catch_([](kj::Exception&&) {}));
    }
  } else {
    dispatcher = nullptr;
    orchestration = nullptr;
    endAssignmentSessions();
  }
}

kj::Promise<void> SwarmNode::dispatcherLoop() {
  return dispatcherRound()
      .catch_([this](kj::Exception&& e) { log->debug("dispatcher round: {}", describe(e)); })
      .then([this]() { return io.provider->getTimer().afterDelay(kDispatcherTick); })
      .then([this]() { return dispatcherLoop(); });
}

bool SwarmNode::managerReachable(const std::string& nodeId) const {
  if (nodeId == self.nodeId) return true;
  if (leaderNodeId() == nodeId) return true;
  auto it = heartbeatDeadlines.find(nodeId);
  return it != heartbeatDeadlines.end() && it->second > io.provider->getTimer().now();
}

// One pass of the leader's bookkeeping: expired heartbeats make nodes DOWN, a new leader's first
// pass makes the others UNKNOWN until they beat, managers' status follows, caught-up learners vote.
kj::Promise<void> SwarmNode::dispatcherRound() {
  if (!leading || !isManager()) return kj::READY_NOW;
  auto timeNow = io.provider->getTimer().now();
  auto period = heartbeatPeriod();
  store::TransactionBuilder tx;
  size_t changes = 0;
  const auto& members = raftMembers();
  for (const auto& ref : storePtr->list(store::Kind::node)) {
    auto node = ref->node();
    std::string id = node.getId();
    auto state = node.getStatus().getState();
    schema::NodeState wanted = state;
    std::string message = node.getStatus().getMessage();
    if (id == self.nodeId) {
      wanted = schema::NodeState::READY;
      message = "";
    } else {
      auto deadline = heartbeatDeadlines.find(id);
      if (deadline == heartbeatDeadlines.end()) {
        if (state != schema::NodeState::DOWN) {
          // New leader: give every node twice the grace to find it.
          heartbeatDeadlines.insert_or_assign(id, timeNow + 2 * kGraceMultiplier * period * kj::NANOSECONDS);
          if (state == schema::NodeState::READY) {
            wanted = schema::NodeState::UNKNOWN;
            message = "Node moved to \"unknown\" state due to leadership change in cluster";
          }
        }
      } else if (deadline->second <= timeNow && state != schema::NodeState::DOWN) {
        wanted = schema::NodeState::DOWN;
        message = "heartbeat failure";
      }
    }
    bool managerChanged = false;
    bool isLeader = false;
    schema::Reachability reach = schema::Reachability::UNKNOWN;
    if (node.getManagerStatus().isManager()) {
      auto ms = node.getManagerStatus().getManager();
      isLeader = id == self.nodeId;
      reach = (isLeader || wanted == schema::NodeState::READY) ? schema::Reachability::REACHABLE
              : wanted == schema::NodeState::DOWN           ? schema::Reachability::UNREACHABLE
                                                            : ms.getReachability();
      managerChanged = ms.getLeader() != isLeader || ms.getReachability() != reach;
    }
    // The leader describes itself (other nodes do in their heartbeats).
    bool describeSelf = id == self.nodeId && runtimeDescription.get() != nullptr &&
                        !describes(node.getDescription(), runtimeDescription->getRoot<schema::NodeDescription>().asReader());
    if (wanted == state && message == node.getStatus().getMessage().cStr() && !managerChanged && !describeSelf) continue;
    capnp::MallocMessageBuilder built;
    auto object = built.initRoot<ss::Object>();
    object.setNode(node);
    auto updated = object.getNode();
    updated.getStatus().setState(wanted);
    updated.getStatus().setMessage(message);
    if (node.getManagerStatus().isManager()) {
      updated.getManagerStatus().getManager().setLeader(isLeader);
      updated.getManagerStatus().getManager().setReachability(reach);
    }
    if (describeSelf) {
      auto reported = runtimeDescription->getRoot<schema::NodeDescription>().asReader();
      auto d = updated.getDescription();
      d.setHostname(reported.getHostname());
      d.setPlatform(reported.getPlatform());
      d.setResources(reported.getResources());
      d.setEngine(reported.getEngine());
    }
    tx.update(object.asReader(), ref->version());
    if (++changes >= 100) break;
  }
  kj::Promise<void> written = kj::READY_NOW;
  if (changes > 0) written = write(kj::mv(tx)).ignoreResult();
  written = written.then([this]() { return carryOutDemotions(); }).then([this]() { return finishRootRotationIfConverged(); });
  // The leader heartbeats nobody: it renews its own certificate here.
  if (auto selfRef = storePtr->get(store::Kind::node, self.nodeId)) {
    if (needsRotatedCertificate(selfRef->node())) renewOwnCertificate("", "the swarm's root CA is rotating");
  }
  if (renewalDue()) renewOwnCertificate("", "it nears its expiry");
  // Learners that caught up become voters (the plugin refuses while they lag; retried next pass).
  kj::Vector<kj::Promise<void>> promotions;
  for (const auto& [id, member] : members) {
    if (member.voter) continue;
    auto promote = consensus().promoteMemberRequest();
    promote.setId(id);
    promotions.add(promote.send().then([this, nodeId = member.nodeId](capnp::Response<schema::Consensus::PromoteMemberResults>&& r) {
      if (r.getResult().isDone()) log->info("manager {} caught up and now votes", nodeId);
    }));
  }
  return written.then([promotions = kj::mv(promotions)]() mutable { return kj::joinPromises(promotions.releaseAsArray()); });
}

// A demoted manager leaves the consensus first (the leader hands its leadership on if it is the one
// demoted), then the node's role becomes worker and it asks for a worker certificate.
kj::Promise<void> SwarmNode::carryOutDemotions() {
  for (const auto& ref : storePtr->list(store::Kind::node)) {
    auto node = ref->node();
    if (node.getSpec().getDesiredRole() != schema::NodeRole::WORKER || node.getRole() != schema::NodeRole::MANAGER) continue;
    uint64_t memberId = node.getManagerStatus().isManager() ? node.getManagerStatus().getManager().getRaftId() : 0;
    if (memberId == self.raftMemberId) {
      log->info("this manager is being demoted: handing the leadership on");
      auto transfer = consensus().transferLeadershipRequest();
      transfer.setTo(0);
      return transfer.send().ignoreResult();
    }
    std::string id = ref->id();
    auto remove = consensus().removeMemberRequest();
    remove.setId(memberId);
    return remove.send().then([this, id](capnp::Response<schema::Consensus::RemoveMemberResults>&& removed) -> kj::Promise<void> {
      auto result = removed.getResult();
      if (result.isQuorumAtRisk()) {
        log->warn("demoting {} waits: {}", id, result.getQuorumAtRisk().cStr());
        return kj::READY_NOW;
      }
      if (!result.isDone() && !result.isUnknownMember()) return kj::READY_NOW;  // retried next round
      auto current = storePtr->get(store::Kind::node, id);
      if (!current) return kj::READY_NOW;
      capnp::MallocMessageBuilder message;
      auto object = message.initRoot<ss::Object>();
      object.setNode(current->node());
      object.getNode().setRole(schema::NodeRole::WORKER);
      object.getNode().getManagerStatus().setNone();
      store::TransactionBuilder tx;
      tx.update(object.asReader(), current->version());
      log->info("manager {} left the consensus; it is a worker now", id);
      return write(kj::mv(tx)).ignoreResult();
    });
  }
  return kj::READY_NOW;
}

// The node's side of promote/demote: a certificate for the new role, then a manager starts its
// consensus member (as a learner, like a join) or a worker stops being a manager.
kj::Promise<void> SwarmNode::takeRole(schema::NodeRole wanted, std::string target) {
  bool promotion = wanted == schema::NodeRole::MANAGER;
  if (promotion && consensusStarted) {
    throw SwarmError(503, "this node was a manager earlier in this process; restart swarm-kernel to finish its promotion");
  }
  struct Taking {
    std::string key, chain, roots, dataKey;
    capnp::MallocMessageBuilder change;
  };
  auto t = kj::heap<Taking>();
  Taking& taking = *t;
  auto csr = pki().makeCsrRequest();
  auto identity = csr.initIdentity();
  identity.setNodeId(self.nodeId);
  identity.setClusterId(self.clusterId);
  identity.setRole(wanted);
  return csr.send()
      .then([this, &taking, target](capnp::Response<schema::Pki::MakeCsrResults>&& made) {
        taking.key = str(made.getKey());
        std::string csr = str(made.getCsr());
        return links.get(target).then([this, csr](ManagerClient client) {
          auto call = client.changeRoleRequest();
          call.setCsr(bytesOf(csr));
          call.setAdvertiseAddr(self.advertiseAddr);
          return call.send();
        });
      })
      .then([this, &taking, wanted](capnp::Response<ss::Manager::ChangeRoleResults>&& answer) -> kj::Promise<void> {
        auto change = answer.getChange();
        if (change.getRole() != wanted) return kj::READY_NOW;
        taking.change.setRoot(change);
        taking.chain = str(change.getCertChain());
        auto read = stateFile.read();
        if (!read) throw SwarmError(500, "the node state file is gone");
        auto old = (*read)->getRoot<ss::NodeState>();
        taking.roots = str(old.getRootCerts());
        capnp::MallocMessageBuilder message;
        message.setRoot(old);
        auto state = message.getRoot<ss::NodeState>();
        state.setRole(wanted);
        state.setCertChain(bytesOf(taking.chain));
        state.getTlsKey().setClear(bytesOf(taking.key));
        if (wanted == schema::NodeRole::MANAGER) {
          taking.dataKey = std::string(32, '\0');
          randombytes_buf(taking.dataKey.data(), taking.dataKey.size());
          state.setRaftMemberId(change.getRaftMemberId());
          state.getDataKey().setClear(bytesOf(taking.dataKey));
        } else {
          state.setRaftMemberId(0);
        }
        std::error_code ec;
        std::filesystem::remove_all(options.stateDir / "raft", ec);
        stateFile.write(state.asReader());
        if (wanted == schema::NodeRole::MANAGER) {
          self.manager = true;
          self.raftMemberId = change.getRaftMemberId();
          return bringUpNetwork(taking.chain, taking.key, taking.roots).then([this, &taking]() {
            auto started = startConsensus(schema::StartConfig::Bootstrap::JOIN, taking.dataKey, self.advertiseAddr);
            raftPeers->seed(taking.change.getRoot<ss::RoleChange>().asReader().getMembers());
            return started.then([this]() { log->info("promoted: this node is a manager now"); });
          });
        }
        // Demoted: the consensus member was removed by the leader; this node stops being one.
        self.manager = false;
        self.raftMemberId = 0;
        KJ_IF_MAYBE (l, listener) {
          tasks.add(l->closeRequest().send().ignoreResult().catch_([](kj::Exception&&) {}));
        }
        listener = nullptr;
        served.clear();
        onLeadership(false);
        resetStore();
        raftPeers = nullptr;
        return bringUpNetwork(taking.chain, taking.key, taking.roots).then([this]() {
          log->info("demoted: this node is a worker now");
        });
      })
      .attach(kj::mv(t));
}

// ---- the dispatcher's assignments (leader) --------------------------------------------------------

namespace {
constexpr auto kAssignmentDebounce = 20 * kj::MILLISECONDS;
constexpr auto kStatusFlush = 100 * kj::MILLISECONDS;

// An incremental assignment with nothing in it is not sent.
bool assignmentIsEmpty(ss::Assignment::Reader a) {
  return a.getIncremental() && a.getTasks().size() == 0 && a.getSecrets().size() == 0 && a.getConfigs().size() == 0 &&
         a.getRemovedTasks().size() == 0 && a.getRemovedSecrets().size() == 0 && a.getRemovedConfigs().size() == 0;
}

}  // namespace

// The first assignment of a session is the node's complete set; later ones carry what changed
// since: tasks new to the node or with another desired state (status changes are the node's own
// news, so they are not echoed, as in Swarm), removals, and the secrets and configs they use.
void SwarmNode::buildAssignment(const std::string& nodeId, AssignmentSession& session, ss::Assignment::Builder out) {
  bool incremental = session.sequence > 0;
  out.setIncremental(incremental);
  std::vector<store::ObjectRef> tasks;
  std::map<std::string, uint16_t> current;
  std::map<std::string, uint64_t> secretVersions, configVersions;
  std::vector<store::ObjectRef> secrets, configs;
  auto reference = [this](store::Kind kind, const std::string& id, std::map<std::string, uint64_t>& versions,
                          std::vector<store::ObjectRef>& objects) {
    if (versions.count(id)) return;
    auto ref = storePtr->get(kind, id);
    if (!ref) return;
    versions.emplace(id, ref->version());
    objects.push_back(ref);
  };
  for (const auto& ref : storePtr->tasksOnNode(nodeId)) {
    auto task = ref->reader().getTask();
    if (task.getStatus().getState() < schema::TASK_STATE_ASSIGNED) continue;
    std::string id = task.getId();
    current.emplace(id, task.getDesiredState());
    auto sent = session.sentTasks.find(id);
    if (!incremental || sent == session.sentTasks.end() || sent->second != task.getDesiredState()) tasks.push_back(ref);
    auto container = task.getSpec().getRuntime().getContainer();
    for (auto secret : container.getSecrets()) reference(store::Kind::secret, secret.getSecretId(), secretVersions, secrets);
    for (auto config : container.getConfigs()) reference(store::Kind::config, config.getConfigId(), configVersions, configs);
  }
  // Incremental: only what the node does not have in this version.
  auto changedOnly = [incremental](std::vector<store::ObjectRef>& objects, const std::map<std::string, uint64_t>& sent) {
    if (!incremental) return;
    std::erase_if(objects, [&sent](const store::ObjectRef& ref) {
      auto it = sent.find(std::string(ref->id()));
      return it != sent.end() && it->second == ref->version();
    });
  };
  changedOnly(secrets, session.sentSecrets);
  changedOnly(configs, session.sentConfigs);
  auto removedFrom = [incremental](const auto& sent, const auto& now, capnp::List<capnp::Text>::Builder (ss::Assignment::Builder::*init)(unsigned),
                                   ss::Assignment::Builder out) {
    std::vector<std::string> gone;
    if (incremental) {
      for (const auto& [id, _] : sent) {
        if (!now.count(id)) gone.push_back(id);
      }
    }
    auto list = (out.*init)(static_cast<unsigned>(gone.size()));
    for (unsigned i = 0; i < gone.size(); ++i) list.set(i, gone[i]);
  };
  removedFrom(session.sentTasks, current, &ss::Assignment::Builder::initRemovedTasks, out);
  removedFrom(session.sentSecrets, secretVersions, &ss::Assignment::Builder::initRemovedSecrets, out);
  removedFrom(session.sentConfigs, configVersions, &ss::Assignment::Builder::initRemovedConfigs, out);
  auto list = out.initTasks(static_cast<unsigned>(tasks.size()));
  for (unsigned i = 0; i < tasks.size(); ++i) list.setWithCaveats(i, tasks[i]->reader().getTask());
  auto secretList = out.initSecrets(static_cast<unsigned>(secrets.size()));
  for (unsigned i = 0; i < secrets.size(); ++i) secretList.setWithCaveats(i, secrets[i]->reader().getSecret());
  auto configList = out.initConfigs(static_cast<unsigned>(configs.size()));
  for (unsigned i = 0; i < configs.size(); ++i) configList.setWithCaveats(i, configs[i]->reader().getConfig());
  session.sentTasks = kj::mv(current);
  session.sentSecrets = kj::mv(secretVersions);
  session.sentConfigs = kj::mv(configVersions);
}

kj::Promise<void> SwarmNode::openAssignments(const std::string& nodeId, ss::AssignmentSink::Client sink) {
  auto old = assignmentSessions.find(nodeId);
  if (old != assignmentSessions.end()) {
    old->second.ended->reject(KJ_EXCEPTION(DISCONNECTED, "HTTP 503: a newer session of this node replaced this one"));
    assignmentSessions.erase(old);
  }
  auto paf = kj::newPromiseAndFulfiller<void>();
  assignmentSessions.emplace(nodeId, AssignmentSession{.sink = kj::mv(sink), .ended = kj::mv(paf.fulfiller)});
  flushAssignments();
  return kj::mv(paf.promise);
}

void SwarmNode::markAssignmentsDirty(const store::Event& event) {
  if (assignmentSessions.empty()) return;
  if (event.type == store::Event::Type::commit) {
    if (!flushScheduled) {
      flushScheduled = true;
      tasks.add(io.provider->getTimer().afterDelay(kAssignmentDebounce).then([this]() {
        flushScheduled = false;
        flushAssignments();
      }));
    }
    return;
  }
  if (event.type == store::Event::Type::reset) {
    for (auto& [id, session] : assignmentSessions) session.dirty = true;
    return;
  }
  auto mark = [this](const store::ObjectRef& ref) {
    if (!ref) return;
    auto it = assignmentSessions.find(std::string(ref->reader().getTask().getNodeId()));
    if (it != assignmentSessions.end()) it->second.dirty = true;
  };
  if (event.kind == store::Kind::task) {
    mark(event.oldObject);
    mark(event.newObject);
  } else if (event.kind == store::Kind::secret || event.kind == store::Kind::config) {
    for (auto& [id, session] : assignmentSessions) session.dirty = true;
  }
}

void SwarmNode::flushAssignments() {
  for (auto& [nodeId, session] : assignmentSessions) {
    if (!session.dirty || session.sending) continue;
    session.dirty = false;
    auto request = session.sink.assignedRequest();
    auto assignment = request.initAssignment();
    buildAssignment(nodeId, session, assignment);
    if (assignmentIsEmpty(assignment.asReader())) continue;
    assignment.setSequence(++session.sequence);
    session.sending = true;
    std::string id = nodeId;
    tasks.add(request.send().then(
        [this, id]() {
          auto it = assignmentSessions.find(id);
          if (it == assignmentSessions.end()) return;
          it->second.sending = false;
          if (it->second.dirty) flushAssignments();
        },
        [this, id](kj::Exception&& e) {
          auto it = assignmentSessions.find(id);
          if (it == assignmentSessions.end()) return;
          log->debug("assignment session of node {} ended: {}", id, describe(e));
          it->second.ended->reject(kj::mv(e));
          assignmentSessions.erase(it);
        }));
  }
}

void SwarmNode::endAssignmentSessions() {
  for (auto& [id, session] : assignmentSessions) {
    session.ended->reject(KJ_EXCEPTION(DISCONNECTED, "HTTP 503: this manager is no longer the leader"));
  }
  assignmentSessions.clear();
}

// Agents' observations: forward-only moves of the caller's own tasks, in one transaction.
kj::Promise<void> SwarmNode::applyTaskStatus(const std::string& nodeId,
                                            capnp::List<ss::TaskStatusUpdate>::Reader updates) {
  store::TransactionBuilder tx;
  size_t changes = 0;
  for (auto update : updates) {
    auto ref = storePtr->get(store::Kind::task, update.getTaskId().cStr());
    if (!ref) continue;  // removed meanwhile
    auto task = ref->reader().getTask();
    if (task.getNodeId() != nodeId) continue;  // not the caller's
    if (update.getStatus().getState() <= task.getStatus().getState()) continue;
    capnp::MallocMessageBuilder message;
    auto object = message.initRoot<ss::Object>();
    object.setTask(task);
    object.getTask().setStatus(update.getStatus());
    tx.update(object.asReader(), ref->version());
    ++changes;
  }
  if (changes == 0) return kj::READY_NOW;
  return write(kj::mv(tx)).ignoreResult();
}

schema::Runtime::Client SwarmNode::runtime() {
  return kernel.plugin(schema::Kind::RUNTIME).bootstrap().castAs<schema::Runtime>();
}

kj::Promise<void> SwarmNode::taskLogs(std::string nodeId, std::string taskId, schema::LogOptions::Reader options,
                                      schema::LogSink::Client sink) {
  requireManager();
  if (!leading) {
    std::string leader = leaderAddress();
    if (leader.empty()) throw SwarmError(503, "The swarm does not have a leader. It's possible that too few managers are online. Make sure more than half of the managers are online.");
    auto held = kj::heap<capnp::MallocMessageBuilder>();
    held->setRoot(options);
    return links.get(leader).then([nodeId, taskId, sink = kj::mv(sink), held = kj::mv(held)](ManagerClient client) mutable {
      auto request = client.taskLogsRequest();
      request.setNodeId(nodeId);
      request.setTaskId(taskId);
      request.setOptions(held->getRoot<schema::LogOptions>().asReader());
      request.setSink(kj::mv(sink));
      return request.send().ignoreResult();
    });
  }
  auto session = assignmentSessions.find(nodeId);
  if (session == assignmentSessions.end()) {
    throw SwarmError(503, "node " + nodeId + " has no session with the manager (it is down or reconnecting); its task logs are not reachable now");
  }
  auto request = session->second.sink.logsRequest();
  request.setTaskId(taskId);
  request.setOptions(options);
  request.setSink(kj::mv(sink));
  return request.send().ignoreResult();
}

// ---- this node's agent ----------------------------------------------------------------------------

void SwarmNode::startAgent() {
  if (agentRuntime.get() != nullptr) return;
  auto runtime = this->runtime();
  auto describeRequest = runtime.describeRequest();
  tasks.add(describeRequest.send().then(
      [this](capnp::Response<schema::Runtime::DescribeResults>&& described) {
        auto d = described.getDescription();
        runtimeDescription = kj::heap<capnp::MallocMessageBuilder>();
        auto out = runtimeDescription->initRoot<schema::NodeDescription>();
        out.setHostname(d.getHostname().size() > 0 ? d.getHostname() : capnp::Text::Reader(options.hostname));
        out.setPlatform(d.getPlatform());
        out.setResources(d.getResources());
        out.getEngine().setEngineVersion(d.getEngineVersion());
        out.getEngine().setLabels(d.getLabels());
      },
      [this](kj::Exception&& e) { log->warn("the runtime plugin could not describe this node: {}", describe(e)); }));
  agentRuntime = kj::heap<Agent>(io.provider->getTimer(), kj::mv(runtime), self.nodeId, self.clusterId);
  statusReporter = reportLoop().eagerlyEvaluate([this](kj::Exception&& e) { log->warn("task reports stopped: {}", describe(e)); });
  if (leading) {
    tasks.add(openAssignments(self.nodeId, kj::heap<AgentSink>(*agentRuntime, this->runtime())).catch_([](kj::Exception&&) {}));
  }
}

void SwarmNode::stopAgent() {
  statusReporter = nullptr;
  assignmentStream = nullptr;
  assignmentTarget.clear();
  agentRuntime = nullptr;
}

void SwarmNode::ensureAssignmentStream(const std::string& target) {
  if (agentRuntime.get() == nullptr || leading) return;
  if (assignmentStream != nullptr && assignmentTarget == target) return;
  assignmentTarget = target;
  assignmentStream = links.get(target)
                         .then([this](ManagerClient client) {
                           auto request = client.assignmentsRequest();
                           request.setSink(kj::heap<AgentSink>(*agentRuntime, this->runtime()));
                           return request.send().ignoreResult();
                         })
                         .then([]() {}, [this](kj::Exception&& e) { log->debug("assignment session ended: {}", describe(e)); })
                         .then([this]() { tasks.add(kj::evalLater([this]() { assignmentStream = nullptr; })); })
                         .eagerlyEvaluate(nullptr);
}

// Batches the agent's observations to the dispatcher (the leader), every 100 ms at most.
kj::Promise<void> SwarmNode::reportLoop() {
  return io.provider->getTimer().afterDelay(kStatusFlush).then([this]() -> kj::Promise<void> {
    if (agentRuntime.get() == nullptr) return kj::READY_NOW;
    auto updates = agentRuntime->takeUpdates();
    if (updates.get() == nullptr) return reportLoop();
    auto list = updates->getRoot<ss::Manager::UpdateTaskStatusParams>().asReader().getUpdates();
    kj::Promise<void> sent = nullptr;
    if (leading) {
      sent = kj::evalNow([&]() { return applyTaskStatus(self.nodeId, list); });
    } else {
      std::string target = agentTarget.empty() ? leaderAddress() : agentTarget;
      if (target.empty()) {
        agentRuntime->updatesDelivered(false);
        return reportLoop();
      }
      sent = links.get(target).then([list](ManagerClient client) {
        auto request = client.updateTaskStatusRequest();
        request.setUpdates(list);
        return request.send().ignoreResult();
      });
    }
    return sent.then([this]() { if (agentRuntime.get() != nullptr) agentRuntime->updatesDelivered(true); },
                     [this](kj::Exception&& e) {
                       log->debug("task status report failed: {}", describe(e));
                       if (agentRuntime.get() != nullptr) agentRuntime->updatesDelivered(false);
                     })
        .attach(kj::mv(updates))
        .then([this]() { return reportLoop(); });
  });
}

// ---- agent (every node but the leader) ----------------------------------------------------------

void SwarmNode::rememberManagers(capnp::List<capnp::Text>::Reader managers) {
  std::vector<std::string> addresses;
  for (auto m : managers) addresses.emplace_back(m.cStr());
  if (addresses.empty() || addresses == knownManagers) return;
  knownManagers = addresses;
  if (self.manager) return;  // a manager's list comes from the consensus membership
  auto read = stateFile.read();
  if (!read) return;
  capnp::MallocMessageBuilder message;
  message.setRoot((*read)->getRoot<ss::NodeState>());
  auto state = message.getRoot<ss::NodeState>();
  auto list = state.initManagers(static_cast<unsigned>(addresses.size()));
  for (unsigned i = 0; i < addresses.size(); ++i) list.set(i, addresses[i]);
  stateFile.write(state.asReader());
}

kj::Promise<void> SwarmNode::heartbeatOnce() {
  if (leading) return io.provider->getTimer().afterDelay(kDispatcherTick);
  if (agentTarget.empty()) {
    std::string leader = self.manager ? leaderAddress() : "";
    if (!leader.empty()) {
      agentTarget = leader;
    } else {
      auto addresses = managerAddresses();
      std::erase(addresses, self.advertiseAddr);
      if (addresses.empty()) return io.provider->getTimer().afterDelay(kAgentRetry);
      agentTarget = addresses[nextManager++ % addresses.size()];
    }
  }
  std::string target = agentTarget;
  return links.get(target)
      .then([this](ManagerClient client) {
        auto beat = client.heartbeatRequest();
        if (runtimeDescription.get() != nullptr) {
          beat.setDescription(runtimeDescription->getRoot<schema::NodeDescription>().asReader());
        } else {
          beat.initDescription().setHostname(options.hostname);
        }
        return beat.send();
      })
      .then(
          [this, target](capnp::Response<ss::Manager::HeartbeatResults>&& answer) -> kj::Promise<void> {
            auto session = answer.getSession();
            rememberManagers(session.getManagers());
            adoptTrustedRoots(session.getTrustedRoots());
            if (session.getPeriod() > 0) {
              if (session.getRenewCertificate()) {
                renewOwnCertificate(target, "the swarm's root CA is rotating");
              } else if (renewalDue()) {
                renewOwnCertificate(target, "it nears its expiry");
              }
            }
            auto myRole = self.manager ? schema::NodeRole::MANAGER : schema::NodeRole::WORKER;
            if (session.getPeriod() > 0 && session.getDesiredRole() != myRole && roleChange == nullptr) {
              roleChange = takeRole(session.getDesiredRole(), target)
                               .catch_([this](kj::Exception&& e) { log->warn("role change: {}", describe(e)); })
                               .then([this]() { tasks.add(kj::evalLater([this]() { roleChange = nullptr; })); })
                               .eagerlyEvaluate(nullptr);
            }
            if (session.getPeriod() <= 0) {
              // Not the leader: follow its hint, or try the next manager.
              std::string leader = session.getLeader();
              agentTarget = leader != target ? leader : "";
              return io.provider->getTimer().afterDelay(leader.empty() ? kAgentRetry : 0 * kj::SECONDS);
            }
            ensureAssignmentStream(target);
            // Beat again well inside the TTL (three periods).
            return io.provider->getTimer().afterDelay(session.getPeriod() * kj::NANOSECONDS);
          },
          [this, target](kj::Exception&& e) {
            log->debug("heartbeat to {} failed: {}", target, describe(e));
            links.drop(target);
            agentTarget.clear();
            return io.provider->getTimer().afterDelay(kAgentRetry);
          });
}

void SwarmNode::startNodeLoops() {
  agent = agentLoop().eagerlyEvaluate(nullptr);
  startAgent();
}

kj::Promise<void> SwarmNode::agentLoop() {
  return heartbeatOnce().then([this]() { return agentLoop(); });
}

}  // namespace swarm::kernel
