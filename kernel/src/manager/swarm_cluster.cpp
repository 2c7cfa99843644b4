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

// A failure that crossed a node-to-node call, as the API answers it.
SwarmError remoteFailure(const kj::Exception& e, std::string_view what) {
  auto failure = http::failureOf(e);
  if (failure.status == 500 && e.getType() == kj::Exception::Type::FAILED) {
    return SwarmError(500, std::string(what) + ": " + failure.message);
  }
  return SwarmError(failure.status, failure.message);
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
    auto consensus = node.kernel.plugin(schema::Kind::CONSENSUS).bootstrap().castAs<schema::Consensus>();
    auto step = consensus.stepRequest();
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

  kj::Promise<void> heartbeat(HeartbeatContext context) override {
    return kj::evalNow([&]() {
      if (peer.anonymous) throw SwarmError(403, "a node needs its certificate to heartbeat");
      return node.heartbeatFrom(peer, context.getResults().initSession());
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

kj::Promise<void> SwarmNode::bringUpNetwork(std::string chain, std::string key, std::string roots) {
  auto transport = this->transport();
  auto credentials = transport.setCredentialsRequest();
  auto c = credentials.initCredentials();
  c.setChain(bytesOf(chain));
  c.setKey(bytesOf(key));
  c.initRoots(1).set(0, bytesOf(roots));
  c.setClusterId(self.clusterId);
  c.setMinVersion(schema::TlsVersion::TLS12);
  auto set = credentials.send().ignoreResult();
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
          agent = agentLoop().eagerlyEvaluate(nullptr);
          log->info("joined cluster {} as worker {}", self.clusterId, self.nodeId);
          return kj::READY_NOW;
        }
        auto started = startConsensus(schema::StartConfig::Bootstrap::JOIN, j.dataKey, self.advertiseAddr);
        raftPeers->seed(j.response.getRoot<ss::JoinResponse>().asReader().getMembers());
        return started.then([this]() {
          localState = LocalState::active;
          agent = agentLoop().eagerlyEvaluate(nullptr);
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

kj::Promise<void> SwarmNode::admit(ss::JoinRequest::Reader request, ss::JoinResponse::Builder response) {
  auto clusters = storePtr->list(store::Kind::cluster);
  if (clusters.empty()) throw SwarmError(503, "this manager has no cluster object yet; retry");
  auto cluster = clusters.front()->reader().getCluster();
  auto pki = this->pki();
  auto check = pki.checkJoinTokenRequest();
  check.setToken(request.getToken());
  check.setCurrent(cluster.getJoinTokens());
  struct Admission {
    capnp::MallocMessageBuilder request;
    std::string nodeId;
    schema::NodeRole role = schema::NodeRole::WORKER;
    std::string chain;
    uint64_t memberId = 0;
    int64_t validity = 0;
    std::string rootCert;
  };
  auto a = kj::heap<Admission>();
  a->request.setRoot(request);
  a->nodeId = store::newObjectId(store::systemRandom());
  a->validity = cluster.getSpec().getNodeCertExpiry();
  a->rootCert = str(cluster.getRootCa().getCert());
  Admission& adm = *a;
  return check.send()
      .then([this, pki, &adm](capnp::Response<schema::Pki::CheckJoinTokenResults>&& checked) mutable {
        auto verdict = checked.getCheck();
        if (verdict.isInvalid()) {
          throw SwarmError(400, std::string("A valid join token is necessary to join this cluster (") +
                                    verdict.getInvalid().cStr() + ")");
        }
        adm.role = verdict.getRole();
        auto issue = pki.issueRequest();
        issue.setCsr(adm.request.getRoot<ss::JoinRequest>().asReader().getCsr());
        auto identity = issue.initIdentity();
        identity.setNodeId(adm.nodeId);
        identity.setRole(adm.role);
        identity.setClusterId(self.clusterId);
        issue.setValidity(adm.validity);
        issue.setNow(now());
        return issue.send();
      })
      .then([this, &adm](capnp::Response<schema::Pki::IssueResults>&& issued) -> kj::Promise<void> {
        adm.chain = str(issued.getCertificate().getChain());
        if (adm.role != schema::NodeRole::MANAGER) return kj::READY_NOW;
        // A new manager joins the consensus as a learner: it counts for no quorum until the
        // dispatcher promotes it, once it has caught up.
        adm.memberId = randomMemberId();
        auto consensus = kernel.plugin(schema::Kind::CONSENSUS).bootstrap().castAs<schema::Consensus>();
        auto add = consensus.addMemberRequest();
        auto member = add.initMember();
        member.setId(adm.memberId);
        member.setNodeId(adm.nodeId);
        member.setAddress(adm.request.getRoot<ss::JoinRequest>().asReader().getAdvertiseAddr());
        return add.send().then([](capnp::Response<schema::Consensus::AddMemberResults>&& added) {
          auto result = added.getResult();
          if (result.isDone()) return;
          if (result.isInProgress()) throw SwarmError(503, "another manager is joining right now; retry in a moment");
          if (result.isInvalid()) throw SwarmError(400, std::string("cannot add the manager: ") + result.getInvalid().cStr());
          if (result.isQuorumAtRisk()) throw SwarmError(503, result.getQuorumAtRisk().cStr());
          throw SwarmError(503, "this manager lost the leadership while adding the new manager; retry the join");
        });
      })
      .then([this, &adm]() {
        auto joined = adm.request.getRoot<ss::JoinRequest>().asReader();
        capnp::MallocMessageBuilder message;
        auto node = message.initRoot<ss::Object>().initNode();
        node.setId(adm.nodeId);
        auto spec = node.getSpec();
        spec.setDesiredRole(adm.role);
        spec.setMembership(schema::NodeMembership::ACCEPTED);
        spec.setAvailability(joined.getAvailability());
        node.setDescription(joined.getDescription());
        auto tls = node.getDescription().getTlsInfo();
        tls.setTrustRoot(bytesOf(adm.rootCert));
        if (auto issuer = api::issuerOfRoot(bytesOf(adm.rootCert))) {
          tls.setCertIssuerSubject(bytesOf(issuer->subjectDer));
          tls.setCertIssuerPublicKey(bytesOf(issuer->publicKeyDer));
        }
        node.getStatus().setState(schema::NodeState::UNKNOWN);
        node.getStatus().setAddr(hostOf(joined.getAdvertiseAddr()));
        if (adm.role == schema::NodeRole::MANAGER) {
          auto manager = node.getManagerStatus().initManager();
          manager.setRaftId(adm.memberId);
          manager.setAddr(joined.getAdvertiseAddr());
          manager.setReachability(schema::Reachability::UNKNOWN);
        }
        node.setRole(adm.role);
        auto certificate = node.getCertificate();
        certificate.setRole(adm.role);
        certificate.setStatus(schema::CertificateStatus::ISSUED);
        certificate.setCertificate(bytesOf(adm.chain));
        certificate.setCn(adm.nodeId);
        store::TransactionBuilder tx;
        tx.create(message.getRoot<ss::Object>().asReader());
        return write(kj::mv(tx));
      })
      .then([this, response, &adm](uint64_t) mutable {
        response.setNodeId(adm.nodeId);
        response.setClusterId(self.clusterId);
        response.setRole(adm.role);
        response.setCertChain(bytesOf(adm.chain));
        response.setRootCerts(bytesOf(adm.rootCert));
        response.setRaftMemberId(adm.memberId);
        auto addresses = managerAddresses();
        auto list = response.initManagers(static_cast<unsigned>(addresses.size()));
        for (unsigned i = 0; i < addresses.size(); ++i) list.set(i, addresses[i]);
        if (adm.role == schema::NodeRole::MANAGER) {
          const auto& known = raftMembers();
          auto members = response.initMembers(static_cast<unsigned>(known.size()));
          unsigned i = 0;
          for (const auto& [id, m] : known) {
            members[i].setId(id);
            members[i].setNodeId(m.nodeId);
            members[i].setAddress(m.address);
            members[i].setVoter(m.voter);
            ++i;
          }
        }
        log->info("node {} joined as {} (from {})", adm.nodeId,
                  adm.role == schema::NodeRole::MANAGER ? "manager" : "worker",
                  adm.request.getRoot<ss::JoinRequest>().asReader().getAdvertiseAddr().cStr());
      })
      .attach(kj::mv(a));
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

kj::Promise<void> SwarmNode::heartbeatFrom(const PeerIdentity& peer, ss::SessionInfo::Builder session) {
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
  if (node->node().getStatus().getState() == schema::NodeState::READY) return kj::READY_NOW;
  capnp::MallocMessageBuilder message;
  auto object = message.initRoot<ss::Object>();
  object.setNode(node->node());
  object.getNode().getStatus().setState(schema::NodeState::READY);
  object.getNode().getStatus().setMessage("");
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
  } else {
    dispatcher = nullptr;
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
    if (wanted == state && message == node.getStatus().getMessage().cStr() && !managerChanged) continue;
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
    tx.update(object.asReader(), ref->version());
    if (++changes >= 100) break;
  }
  kj::Promise<void> written = kj::READY_NOW;
  if (changes > 0) written = write(kj::mv(tx)).ignoreResult();
  // Learners that caught up become voters (the plugin refuses while they lag; retried next pass).
  kj::Vector<kj::Promise<void>> promotions;
  for (const auto& [id, member] : members) {
    if (member.voter) continue;
    auto consensus = kernel.plugin(schema::Kind::CONSENSUS).bootstrap().castAs<schema::Consensus>();
    auto promote = consensus.promoteMemberRequest();
    promote.setId(id);
    promotions.add(promote.send().then([this, nodeId = member.nodeId](capnp::Response<schema::Consensus::PromoteMemberResults>&& r) {
      if (r.getResult().isDone()) log->info("manager {} caught up and now votes", nodeId);
    }));
  }
  return written.then([promotions = kj::mv(promotions)]() mutable { return kj::joinPromises(promotions.releaseAsArray()); });
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
        auto description = beat.initDescription();
        description.setHostname(options.hostname);
        return beat.send();
      })
      .then(
          [this, target](capnp::Response<ss::Manager::HeartbeatResults>&& answer) -> kj::Promise<void> {
            auto session = answer.getSession();
            rememberManagers(session.getManagers());
            if (session.getPeriod() <= 0) {
              // Not the leader: follow its hint, or try the next manager.
              std::string leader = session.getLeader();
              agentTarget = leader != target ? leader : "";
              return io.provider->getTimer().afterDelay(leader.empty() ? kAgentRetry : 0 * kj::SECONDS);
            }
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

kj::Promise<void> SwarmNode::agentLoop() {
  return heartbeatOnce().then([this]() { return agentLoop(); });
}

}  // namespace swarm::kernel
