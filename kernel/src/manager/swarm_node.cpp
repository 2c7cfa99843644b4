// GCC 12 reports a false -Wmaybe-uninitialized inside kj::_::ExceptionOr<T> for promises of
// structs holding std::string (see replication.cpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "swarm_node.h"

#include "api/encode.h"
#include "errors.h"
#include "logging.h"
#include "store/object_id.h"

#include <swarm/schema/pki.capnp.h>

#include <kj/debug.h>
#include <sodium.h>
#include <sys/utsname.h>

#include <chrono>
#include <cstring>

namespace swarm::kernel {
namespace {

constexpr const char* kNotInSwarm =
    "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to "
    "connect this node to swarm and try again.";
constexpr const char* kWorker =
    "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. "
    "Please run this command on a manager node or promote the current node to a manager.";
constexpr const char* kLocked =
    "Swarm is encrypted and needs to be unlocked before it can be used. Please use \"docker "
    "swarm unlock\" to unlock it.";
constexpr const char* kPurposeDataKey = "raft data key";
constexpr const char* kPurposeTlsKey = "TLS key";
// How long `swarm leave --force` waits for the leader to take this manager out of the consensus.
constexpr auto kLeaveConsensusTimeout = 10 * kj::SECONDS;

kj::ArrayPtr<const kj::byte> bytesOf(std::string_view s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}
std::string str(capnp::Data::Reader d) {
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}
std::string keyString(const SecretKey& key) {
  return std::string(reinterpret_cast<const char*>(key.data()), key.size());
}

// "host:port" split; the port defaults to 2377 (Swarm's manager port).
std::pair<std::string, std::string> splitHostPort(const std::string& addr) {
  if (addr.empty()) return {"", "2377"};
  if (addr.front() == '[') {
    auto close = addr.find(']');
    if (close == std::string::npos) throw SwarmError(400, "invalid address \"" + addr + "\": unclosed [");
    std::string host = addr.substr(1, close - 1);
    if (close + 1 < addr.size() && addr[close + 1] == ':') return {host, addr.substr(close + 2)};
    return {host, "2377"};
  }
  auto colon = addr.rfind(':');
  if (colon == std::string::npos) return {addr, "2377"};
  if (addr.find(':') != colon) return {addr, "2377"};  // a bare IPv6 address
  return {addr.substr(0, colon), addr.substr(colon + 1)};
}

bool unspecified(const std::string& host) { return host.empty() || host == "0.0.0.0" || host == "::"; }

std::string architecture() {
  struct utsname u {};
  if (uname(&u) != 0) return "";
  std::string machine = u.machine;
  return machine;
}

uint64_t randomMemberId() {
  uint64_t id = 0;
  while (id == 0) randombytes_buf(&id, sizeof(id));
  return id;
}

// A ProposeError as the API shows it (Docker's wording where it has one).
SwarmError proposeFailure(const ProposeError& e) {
  switch (e.kind) {
    case ProposeError::Kind::notLeader:
    case ProposeError::Kind::noLeader:
      return SwarmError(503, "The swarm does not have a leader. It's possible that too few managers "
                             "are online. Make sure more than half of the managers are online.");
    case ProposeError::Kind::tooLarge: return SwarmError(400, e.message);
    case ProposeError::Kind::lostLeadership: return SwarmError(503, e.message);
    case ProposeError::Kind::stopped: return SwarmError(503, e.message);
  }
  return SwarmError(500, e.message);
}

}  // namespace

void describeTrust(schema::TlsInfo::Builder info, capnp::Data::Reader rootPem) {
  info.setTrustRoot(rootPem);
  if (auto issuer = api::issuerOfRoot(rootPem)) {
    info.setCertIssuerSubject(bytesOf(issuer->subjectDer));
    info.setCertIssuerPublicKey(bytesOf(issuer->publicKeyDer));
  }
}

const char* localStateName(LocalState state) {
  switch (state) {
    case LocalState::inactive: return "inactive";
    case LocalState::pending: return "pending";
    case LocalState::active: return "active";
    case LocalState::error: return "error";
    case LocalState::locked: return "locked";
  }
  return "error";
}

SwarmNode::SwarmNode(kj::AsyncIoContext& io, Kernel& kernel, SwarmNodeOptions options)
    : io(io), kernel(kernel), options(std::move(options)), log(logger("swarm")),
      stateFile(this->options.stateDir), links([this]() { return transport(); }),
      served([this](const PeerIdentity& peer) { return managerFor(peer); }) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialize");
  resetStore();
}

SwarmNode::~SwarmNode() { stopConsensus(); }

void SwarmNode::resetStore() {
  stopConsensus();
  orchestration = nullptr;  // it reads the store that goes
  leading = false;
  storePtr = kj::heap<store::Store>();
  auto replication = kj::heap<Replication>(*storePtr);
  replicationPtr = replication.get();
  replicationPtr->onViewChange([this](const ConsensusView& view) {
    if (view.leaderId != 0) {
      KJ_IF_MAYBE (waiter, leaderWaiter) {
        (*waiter)->fulfill();
        leaderWaiter = nullptr;
      }
    }
    onLeadership(view.isLeader());
  });
  machine = schema::StateMachine::Client(kj::mv(replication));
  loadedRoot.clear();
  dispatchWatch = storePtr->subscribe([this](const store::Event& event) { markAssignmentsDirty(event); });
  rootWatch = storePtr->subscribe([this](const store::Event& event) {
    if (event.type == store::Event::Type::commit || event.type == store::Event::Type::reset) {
      notifyApplied();
      loadRootIfChanged();
      pushRevocationsIfChanged();
      resealIfUnlockKeyChanged();
    }
  });
}

void SwarmNode::resealIfUnlockKeyChanged() {
  if (localState != LocalState::active) return;  // init writes the state file itself
  auto clusters = storePtr->list(store::Kind::cluster);
  if (clusters.empty()) return;
  auto cluster = clusters.front()->reader().getCluster();
  std::optional<SecretKey> wanted;
  if (cluster.getSpec().getAutoLockManagers() && cluster.getUnlockKeySealed().size() == 32) {
    SecretKey key;
    std::memcpy(key.data(), cluster.getUnlockKeySealed().begin(), key.size());
    wanted = key;
  }
  if (wanted == self.unlockKey) return;
  auto read = stateFile.read();
  if (!read) return;
  auto old = (*read)->getRoot<store::schema::NodeState>();
  auto open = [&](auto sealedOrClear, const char* purpose) -> std::string {
    if (!sealedOrClear.isSealed()) return str(sealedOrClear.getClear());
    return unseal(*self.unlockKey, str(sealedOrClear.getSealed()), purpose);
  };
  std::string tlsKey = open(old.getTlsKey(), kPurposeTlsKey);
  std::string dataKey = open(old.getDataKey(), kPurposeDataKey);
  capnp::MallocMessageBuilder message;
  message.setRoot(old);
  auto state = message.getRoot<store::schema::NodeState>();
  if (wanted) {
    state.getTlsKey().setSealed(bytesOf(seal(*wanted, tlsKey, kPurposeTlsKey)));
    state.getDataKey().setSealed(bytesOf(seal(*wanted, dataKey, kPurposeDataKey)));
  } else {
    state.getTlsKey().setClear(bytesOf(tlsKey));
    state.getDataKey().setClear(bytesOf(dataKey));
  }
  stateFile.write(state.asReader());
  self.unlockKey = wanted;
  log->info(wanted ? "this manager's keys are now sealed by the cluster's current unlock key"
                   : "autolock is off: this manager's keys are no longer sealed");
}

void SwarmNode::loadRootIfChanged() {
  auto clusters = storePtr->list(store::Kind::cluster);
  if (clusters.empty()) return;
  auto root = clusters.front()->reader().getCluster().getRootCa();
  // The whole root: a rotation keeps the cert and drops the cross-signed and previous ones.
  std::string loaded = str(root.getCert()) + str(root.getCrossSignedCert()) + str(root.getPreviousCert());
  if (loaded == loadedRoot) return;
  loadedRoot = loaded;
  auto issuer = api::issuerOfRoot(root.getCert());
  rootIssuerKey = issuer ? issuer->publicKeyDer : "";
  auto request = pki().loadRootRequest();
  request.setRoot(root);
  // Later PKI calls are delivered after this one (capnp keeps a capability's calls in order).
  tasks.add(request.send().ignoreResult());
  // A manager trusts what the swarm trusts (a rotation adds the new root, its end drops the old).
  std::string roots = trustedRootsBundle();
  if (!ownCredentials.chain.empty() && roots != ownCredentials.roots) {
    tasks.add(adoptCredentials(ownCredentials.chain, ownCredentials.key, kj::mv(roots)));
  }
}

void SwarmNode::TaskErrors::taskFailed(kj::Exception&& e) {
  node.log->error("background work failed: {}", describe(e));
}

void SwarmNode::stopConsensus() {
  if (replicationPtr != nullptr) replicationPtr->detach();
}

int64_t SwarmNode::now() const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::optional<std::string> SwarmNode::unlockKey() const {
  if (!self.unlockKey) return std::nullopt;
  return formatUnlockKey(*self.unlockKey);
}

schema::Consensus::Client SwarmNode::consensus() {
  return kernel.plugin(schema::Kind::CONSENSUS).bootstrap().castAs<schema::Consensus>();
}

schema::Pki::Client SwarmNode::pki() {
  return kernel.plugin(schema::Kind::PKI).bootstrap().castAs<schema::Pki>();
}

void SwarmNode::requireManager() const {
  if (localState == LocalState::locked) throw SwarmError(503, kLocked);
  if (isWorker()) throw SwarmError(503, kWorker);
  if (!isManager()) throw SwarmError(503, kNotInSwarm);
}

kj::Promise<uint64_t> SwarmNode::write(store::TransactionBuilder tx) {
  requireManager();
  std::string entry;
  try {
    entry = tx.encode(now());
  } catch (const kj::Exception& e) {
    throw SwarmError(400, describe(e));
  }
  return replicationPtr->propose(entry).then([this, entry](Replication::Outcome outcome) mutable -> kj::Promise<uint64_t> {
    if (outcome.failed) {
      const ProposeError& failure = *outcome.failed;
      if (failure.kind == ProposeError::Kind::notLeader && failure.leaderHint != 0 &&
          failure.leaderHint != self.raftMemberId) {
        return forwardToLeader(kj::mv(entry), failure.leaderHint);
      }
      throw proposeFailure(failure);
    }
    const store::ApplyResult& result = *outcome.applied;
    if (!result.ok()) throw SwarmError(store::httpStatus(result.status), result.message);
    return outcome.index;
  });
}

// ---- consensus --------------------------------------------------------------------------------

kj::Promise<void> SwarmNode::startConsensus(schema::StartConfig::Bootstrap::Which mode,
                                            const std::string& dataKey,
                                            const std::string& memberAddress) {
  auto consensus = this->consensus();
  auto request = consensus.startRequest();
  auto config = request.initConfig();
  config.setMemberId(self.raftMemberId);
  auto raftDir = options.stateDir / "raft";
  config.setStorageDir(raftDir.string());
  config.setDataKey(bytesOf(dataKey));
  auto bootstrap = config.getBootstrap();
  switch (mode) {
    case schema::StartConfig::Bootstrap::NEW_CLUSTER: {
      auto members = bootstrap.initNewCluster(1);
      members[0].setId(self.raftMemberId);
      members[0].setNodeId(self.nodeId);
      members[0].setAddress(memberAddress);
      members[0].setVoter(true);
      break;
    }
    case schema::StartConfig::Bootstrap::FORCE_NEW_CLUSTER: bootstrap.setForceNewCluster(); break;
    case schema::StartConfig::Bootstrap::JOIN: bootstrap.setJoin(); break;
    default: bootstrap.setRestart(); break;
  }
  auto peers = kj::heap<RaftPeers>(links, self.raftMemberId);
  raftPeers = peers.get();
  request.setNetwork(kj::mv(peers));
  KJ_IF_MAYBE (m, machine) {
    request.setMachine(*m);
  }
  replicationPtr->attach(consensus);
  consensusStarted = true;
  return request.send().ignoreResult();
}

// Any leader: on a new one-member cluster that is this node; a restarted follower serves as soon
// as it hears from the leader.
kj::Promise<void> SwarmNode::waitForLeader() {
  if (replicationPtr->view().leaderId != 0) return kj::READY_NOW;
  auto paf = kj::newPromiseAndFulfiller<void>();
  leaderWaiter = kj::mv(paf.fulfiller);
  return io.provider->getTimer().timeoutAfter(options.leaderWait, kj::mv(paf.promise));
}

// ---- this node's certificate --------------------------------------------------------------------

kj::Promise<SwarmNode::OwnCertificate> SwarmNode::issueOwnCertificate(int64_t validity) {
  // The key is made here and never leaves this node; the CSR's subject is ignored by issue().
  auto pki = this->pki();
  auto identify = [this](schema::Identity::Builder identity) {
    identity.setNodeId(self.nodeId);
    identity.setRole(self.manager ? schema::NodeRole::MANAGER : schema::NodeRole::WORKER);
    identity.setClusterId(self.clusterId);
  };
  auto csr = pki.makeCsrRequest();
  identify(csr.initIdentity());
  return csr.send().then([this, pki, validity, identify](capnp::Response<schema::Pki::MakeCsrResults>&& made) mutable {
    auto issue = pki.issueRequest();
    issue.setCsr(made.getCsr());
    identify(issue.initIdentity());
    issue.setValidity(validity);
    issue.setNow(now());
    std::string key = str(made.getKey());
    return issue.send().then([key = kj::mv(key)](capnp::Response<schema::Pki::IssueResults>&& issued) mutable {
      return OwnCertificate{str(issued.getCertificate().getChain()), kj::mv(key)};
    });
  });
}

// ---- init ---------------------------------------------------------------------------------------

kj::Promise<std::string> SwarmNode::init(api::InitRequest request,
                                         kj::Own<capnp::MallocMessageBuilder> specMessage) {
  if (localState == LocalState::locked) throw SwarmError(503, kLocked);
  if (localState != LocalState::inactive && request.forceNewCluster) {
    throw SwarmError(400, "this manager's consensus log is already open in this process: restart "
                          "swarm-kernel with --force-new-cluster to recover it as a one-manager swarm");
  }
  if (localState != LocalState::inactive) {
    throw SwarmError(503, "This node is already part of a swarm. Use \"docker swarm leave\" to "
                          "leave this swarm and join another one.");
  }
  if (consensusStarted) {
    // The consensus plugin serves one log per process: start() is refused a second time.
    throw SwarmError(503, "this node left a swarm since swarm-kernel started; restart swarm-kernel "
                          "before initializing a new swarm");
  }
  if (request.forceNewCluster) {
    throw SwarmError(400, "--force-new-cluster recovers a manager that has swarm data, and this "
                          "node has none; run swarm init without it (on a manager that lost its "
                          "quorum: restart swarm-kernel with --force-new-cluster)");
  }
  auto [listenHost, listenPort] = splitHostPort(request.listenAddr);
  std::string advertise = request.advertiseAddr;
  if (advertise.empty()) {
    if (unspecified(listenHost)) {
      throw SwarmError(400, "could not choose an IP address to advertise since the listen address "
                            "is unspecified - specify one with --advertise-addr");
    }
    advertise = listenHost + ":" + listenPort;
  } else {
    auto [host, port] = splitHostPort(advertise);
    if (unspecified(host)) {
      throw SwarmError(400, "advertise address must be a non-zero IP address or network interface "
                            "(with optional port number)");
    }
    advertise = host + ":" + port;
  }

  self = Self{};
  self.nodeId = store::newObjectId(store::systemRandom());
  self.clusterId = store::newObjectId(store::systemRandom());
  self.listenAddr = listenHost + ":" + listenPort;
  self.advertiseAddr = advertise;
  self.manager = true;
  self.raftMemberId = randomMemberId();
  if (request.autoLockManagers) self.unlockKey = randomKey();
  localState = LocalState::pending;

  auto spec = specMessage->getRoot<store::schema::ClusterSpec>();
  spec.getAnnotations().setName("default");
  auto pki = this->pki();

  auto rootRequest = pki.createRootRequest();
  auto wanted = rootRequest.initRequest();
  if (!request.ca.signingCaCert.empty()) {
    auto provided = wanted.initProvided();
    provided.setCert(bytesOf(request.ca.signingCaCert));
    provided.setKey(bytesOf(request.ca.signingCaKey));
  } else if (spec.getExternalCas().size() > 0) {
    auto external = wanted.initExternal();
    external.setCas(spec.getExternalCas());
    auto caCert = spec.getExternalCas()[0].getCaCert();
    if (caCert.size() == 0) {
      localState = LocalState::inactive;
      throw SwarmError(400, "an external CA needs the certificate it signs with: give "
                            "--external-ca protocol=cfssl,url=...,cacert=<file>");
    }
    external.setCert(caCert);
  } else {
    wanted.initGenerate();
  }

  struct Pending {
    kj::Own<capnp::MallocMessageBuilder> spec;
    capnp::MallocMessageBuilder root;
    capnp::MallocMessageBuilder tokens;
    std::string chain, key, dataKey;
  };
  auto pending = kj::heap<Pending>();
  pending->spec = kj::mv(specMessage);
  Pending& p = *pending;

  return rootRequest.send()
      .then([this, pki, &p](capnp::Response<schema::Pki::CreateRootResults>&& created) mutable {
        p.root.setRoot(created.getRoot());
        auto load = pki.loadRootRequest();
        load.setRoot(created.getRoot());
        return load.send().ignoreResult();
      })
      .then([pki, &p]() mutable {
        auto tokens = pki.makeJoinTokensRequest();
        tokens.initRotate();
        return tokens.send().then([&p](capnp::Response<schema::Pki::MakeJoinTokensResults>&& r) {
          p.tokens.setRoot(r.getTokens());
        });
      })
      .then([this, &p]() {
        return issueOwnCertificate(p.spec->getRoot<store::schema::ClusterSpec>().getNodeCertExpiry());
      })
      .then([this, &p](OwnCertificate issued) {
        p.chain = kj::mv(issued.chain);
        p.key = kj::mv(issued.key);
        return bringUpNetwork(p.chain, p.key, str(p.root.getRoot<schema::RootCa>().getCert().asReader()));
      })
      .then([this, &p]() {
        p.dataKey = keyString(randomKey());
        // A crashed earlier init may have left a log behind; this cluster starts from nothing.
        std::error_code ec;
        std::filesystem::remove_all(options.stateDir / "raft", ec);
        std::filesystem::create_directories(options.stateDir, ec);
        if (ec) {
          throw SwarmError(500, "cannot create the state directory " + options.stateDir.string() +
                                    ": " + ec.message());
        }
        return startConsensus(schema::StartConfig::Bootstrap::NEW_CLUSTER, p.dataKey,
                              self.advertiseAddr);
      })
      .then([this]() { return waitForLeader(); })
      .then([this, &p, request]() {
        localState = LocalState::active;  // write() needs it; undone below on failure
        int64_t at = now();
        store::TransactionBuilder tx;
        {
          capnp::MallocMessageBuilder message;
          auto cluster = message.initRoot<store::schema::Object>().initCluster();
          cluster.setId(self.clusterId);
          cluster.setSpec(p.spec->getRoot<store::schema::ClusterSpec>().asReader());
          cluster.setRootCa(p.root.getRoot<schema::RootCa>().asReader());
          cluster.setJoinTokens(p.tokens.getRoot<schema::JoinTokens>().asReader());
          cluster.getSpec().setAutoLockManagers(self.unlockKey.has_value());
          // The consensus log holding it is sealed at rest; managers hand it to `unlock-key`.
          if (self.unlockKey) cluster.setUnlockKeySealed(bytesOf(keyString(*self.unlockKey)));
          tx.create(message.getRoot<store::schema::Object>().asReader());
        }
        {
          capnp::MallocMessageBuilder message;
          auto node = message.initRoot<store::schema::Object>().initNode();
          node.setId(self.nodeId);
          auto spec = node.getSpec();
          spec.setDesiredRole(schema::NodeRole::MANAGER);
          spec.setMembership(schema::NodeMembership::ACCEPTED);
          spec.setAvailability(request.availability);
          auto description = node.getDescription();
          description.setHostname(options.hostname);
          description.getPlatform().setOs("linux");
          description.getPlatform().setArchitecture(architecture());
          description.getEngine().setEngineVersion(options.engineVersion);
          describeTrust(description.getTlsInfo(), p.root.getRoot<schema::RootCa>().getCert());
          auto status = node.getStatus();
          status.setState(schema::NodeState::READY);
          status.setAddr(splitHostPort(self.advertiseAddr).first);
          auto manager = node.getManagerStatus().initManager();
          manager.setRaftId(self.raftMemberId);
          manager.setAddr(self.advertiseAddr);
          manager.setLeader(true);
          manager.setReachability(schema::Reachability::REACHABLE);
          node.setRole(schema::NodeRole::MANAGER);
          auto certificate = node.getCertificate();
          certificate.setRole(schema::NodeRole::MANAGER);
          certificate.setStatus(schema::CertificateStatus::ISSUED);
          certificate.setCertificate(bytesOf(p.chain));
          certificate.setCn(self.nodeId);
          node.getMeta().setCreatedAt(at);
          tx.create(message.getRoot<store::schema::Object>().asReader());
        }
        return write(kj::mv(tx));
      })
      .then([this, &p](uint64_t) {
        capnp::MallocMessageBuilder message;
        auto state = message.initRoot<store::schema::NodeState>();
        state.setNodeId(self.nodeId);
        state.setClusterId(self.clusterId);
        state.setRole(schema::NodeRole::MANAGER);
        state.setListenAddr(self.listenAddr);
        state.setAdvertiseAddr(self.advertiseAddr);
        state.setRaftMemberId(self.raftMemberId);
        state.setCertChain(bytesOf(p.chain));
        state.setRootCerts(p.root.getRoot<schema::RootCa>().getCert());
        if (self.unlockKey) {
          state.getTlsKey().setSealed(bytesOf(seal(*self.unlockKey, p.key, kPurposeTlsKey)));
          state.getDataKey().setSealed(bytesOf(seal(*self.unlockKey, p.dataKey, kPurposeDataKey)));
        } else {
          state.getTlsKey().setClear(bytesOf(p.key));
          state.getDataKey().setClear(bytesOf(p.dataKey));
        }
        stateFile.write(state.asReader());
        startNodeLoops();
        log->info("swarm initialized: node {} is the manager of cluster {} (advertising {})",
                  self.nodeId, self.clusterId, self.advertiseAddr);
        return self.nodeId;
      })
      .catch_([this](kj::Exception&& e) -> std::string {
        // Nothing half-done stays: the plugin is stopped from using the log, which goes.
        log->error("swarm init failed: {}", describe(e));
        localState = LocalState::inactive;
        takeDownNetwork();
        resetStore();
        std::error_code ec;
        std::filesystem::remove_all(options.stateDir / "raft", ec);
        self = Self{};
        kj::throwFatalException(kj::mv(e));
      })
      .attach(kj::mv(pending));
}

// ---- root CA rotation ---------------------------------------------------------------------------

kj::Promise<void> SwarmNode::rotateRoot(kj::Own<capnp::MallocMessageBuilder> clusterMessage,
                                        api::CaRotationRequest ca, uint64_t expectedVersion) {
  requireManager();
  auto clusters = storePtr->list(store::Kind::cluster);
  if (!clusters.empty() && clusters.front()->reader().getCluster().getRootRotationInProgress()) {
    size_t pending = 0;
    for (const auto& ref : storePtr->list(store::Kind::node)) {
      if (ref->node().getStatus().getState() != schema::NodeState::DOWN && needsRotatedCertificate(ref->node())) ++pending;
    }
    throw SwarmError(409, "a root CA rotation is already in progress (" + std::to_string(pending) +
                              " node(s) still to renew their certificate); wait for it to finish, "
                              "'docker swarm ca' shows its progress");
  }
  auto selfNode = storePtr->get(store::Kind::node, self.nodeId);
  if (!selfNode) throw SwarmError(503, "this manager's node object is not in the store yet; retry");
  auto pki = this->pki();
  auto request = pki.startRootRotationRequest();
  auto wanted = request.initRequest();
  if (!ca.signingCaCert.empty()) {
    auto provided = wanted.initProvided();
    provided.setCert(bytesOf(ca.signingCaCert));
    provided.setKey(bytesOf(ca.signingCaKey));
  } else {
    wanted.initGenerate();
  }
  struct Rotation {
    kj::Own<capnp::MallocMessageBuilder> cluster;
    capnp::MallocMessageBuilder root;
    std::string chain, key;
    store::ObjectRef node;
  };
  auto r = kj::heap<Rotation>();
  r->cluster = kj::mv(clusterMessage);
  r->node = selfNode;
  Rotation& rot = *r;
  return request.send()
      .then([pki, &rot](capnp::Response<schema::Pki::StartRootRotationResults>&& started) mutable {
        // The new root keeps its cross-signed certificate and the previous root until every node
        // holds a certificate from it: certificates issued meanwhile chain to both.
        rot.root.setRoot(started.getRoot());
        auto load = pki.loadRootRequest();
        load.setRoot(rot.root.getRoot<schema::RootCa>().asReader());
        return load.send().ignoreResult();
      })
      .then([this, &rot]() {
        return issueOwnCertificate(rot.cluster->getRoot<store::schema::Object>().getCluster().getSpec().getNodeCertExpiry());
      })
      .then([this, &rot, expectedVersion](OwnCertificate issued) {
        rot.chain = kj::mv(issued.chain);
        rot.key = kj::mv(issued.key);
        auto cluster = rot.cluster->getRoot<store::schema::Object>().getCluster();
        cluster.setRootCa(rot.root.getRoot<schema::RootCa>().asReader());
        cluster.setRootRotationInProgress(true);
        store::TransactionBuilder tx;
        tx.update(cluster.asReader(), expectedVersion);
        recordCertificate(tx, rot.node, rot.chain, rot.root.getRoot<schema::RootCa>().getCert());
        return write(kj::mv(tx));
      })
      .then([this, &rot](uint64_t) {
        log->info("root CA rotation started: this node's certificate is re-issued from the new root; "
                  "the other nodes renew theirs as they heartbeat");
        return adoptCredentials(kj::mv(rot.chain), kj::mv(rot.key), trustedRootsBundle());
      })
      .attach(kj::mv(r));
}

// ---- certificates: renewal and the end of a root rotation ---------------------------------------

std::string SwarmNode::trustedRootsBundle() const {
  auto clusters = storePtr->list(store::Kind::cluster);
  if (clusters.empty()) return ownCredentials.roots;
  auto root = clusters.front()->reader().getCluster().getRootCa();
  std::string bundle = str(root.getCert());
  if (root.getPreviousCert().size() > 0) bundle += str(root.getPreviousCert());
  return bundle;
}

kj::Promise<void> SwarmNode::adoptCredentials(std::string chain, std::string key, std::string roots) {
  if (auto read = stateFile.read()) {
    capnp::MallocMessageBuilder message;
    message.setRoot((*read)->getRoot<store::schema::NodeState>());
    auto state = message.getRoot<store::schema::NodeState>();
    state.setCertChain(bytesOf(chain));
    state.setRootCerts(bytesOf(roots));
    if (self.unlockKey) {
      state.getTlsKey().setSealed(bytesOf(seal(*self.unlockKey, key, kPurposeTlsKey)));
    } else {
      state.getTlsKey().setClear(bytesOf(key));
    }
    stateFile.write(state.asReader());
  }
  bool newCertificate = chain != ownCredentials.chain;
  ownCredentials = {kj::mv(chain), kj::mv(key), kj::mv(roots)};
  if (newCertificate) scheduleRenewal();
  return pushCredentials();
}

void SwarmNode::adoptTrustedRoots(capnp::List<capnp::Data>::Reader roots) {
  std::string bundle;
  for (auto root : roots) bundle += str(root);
  if (bundle.empty() || bundle == ownCredentials.roots || ownCredentials.chain.empty()) return;
  log->info("the swarm's trusted root CAs changed; this node follows");
  tasks.add(adoptCredentials(ownCredentials.chain, ownCredentials.key, kj::mv(bundle)));
}

void SwarmNode::scheduleRenewal() {
  certificateRenewAt = 0;
  if (ownCredentials.chain.empty()) return;
  auto request = pki().renewalTimeRequest();
  request.setChain(bytesOf(ownCredentials.chain));
  request.setSeed(randombytes_random() | (uint64_t{randombytes_random()} << 32));
  tasks.add(request.send().then(
      [this, chain = ownCredentials.chain](capnp::Response<schema::Pki::RenewalTimeResults>&& answer) {
        if (chain == ownCredentials.chain) certificateRenewAt = answer.getRenewAt();
      }));
}

bool SwarmNode::renewalDue() const { return certificateRenewAt > 0 && now() >= certificateRenewAt; }

void SwarmNode::renewOwnCertificate(const std::string& target, const char* why) {
  if (renewal != nullptr) return;
  log->info("renewing this node's certificate: {}", why);
  kj::Promise<void> renewed = nullptr;
  if (leading) {
    auto clusters = storePtr->list(store::Kind::cluster);
    int64_t validity = clusters.empty() ? 0 : clusters.front()->reader().getCluster().getSpec().getNodeCertExpiry();
    renewed = issueOwnCertificate(validity).then([this](OwnCertificate issued) {
      auto node = storePtr->get(store::Kind::node, self.nodeId);
      if (!node) throw SwarmError(503, "this manager's node object is not in the store yet");
      store::TransactionBuilder tx;
      recordCertificate(tx, node, issued.chain, clusterRootCert());
      return write(kj::mv(tx)).then([this, issued = kj::mv(issued)](uint64_t) mutable {
        return adoptCredentials(kj::mv(issued.chain), kj::mv(issued.key), trustedRootsBundle());
      });
    });
  } else {
    auto csr = pki().makeCsrRequest();
    auto identity = csr.initIdentity();
    identity.setNodeId(self.nodeId);
    identity.setClusterId(self.clusterId);
    identity.setRole(self.manager ? schema::NodeRole::MANAGER : schema::NodeRole::WORKER);
    renewed = csr.send().then([this, target](capnp::Response<schema::Pki::MakeCsrResults>&& made) {
      std::string key = str(made.getKey());
      std::string csr = str(made.getCsr());
      return links.get(target)
          .then([csr](ManagerClient client) {
            auto call = client.renewCertificateRequest();
            call.setCsr(bytesOf(csr));
            return call.send();
          })
          .then([this, key](capnp::Response<store::schema::Manager::RenewCertificateResults>&& answer) mutable {
            std::string roots;
            for (auto root : answer.getTrustedRoots()) roots += str(root);
            return adoptCredentials(str(answer.getCertChain()), kj::mv(key), kj::mv(roots));
          });
    });
  }
  renewal = renewed
                .then([this]() { log->info("this node's certificate was renewed"); },
                      [this](kj::Exception&& e) { log->warn("certificate renewal failed (retried): {}", describe(e)); })
                .then([this]() { tasks.add(kj::evalLater([this]() { renewal = nullptr; })); })
                .eagerlyEvaluate(nullptr);
}

kj::Promise<void> SwarmNode::renewCertificateFor(const PeerIdentity& peer, std::string csr,
                                                 store::schema::Manager::RenewCertificateResults::Builder results) {
  if (!leading) throw SwarmError(503, "not the leader; the leader issues certificates");
  auto node = storePtr->get(store::Kind::node, peer.nodeId);
  if (!node) throw SwarmError(404, "node " + peer.nodeId + " is not in the swarm (it was removed); leave and join again");
  // The role the swarm has on record, not the one the old certificate claims.
  return issueFor(kj::mv(csr), peer.nodeId, node->node().getRole())
      .then([this, nodeId = peer.nodeId, results](std::string chain) mutable {
        auto current = storePtr->get(store::Kind::node, nodeId);
        if (!current) throw SwarmError(404, "node " + nodeId + " was removed meanwhile");
        store::TransactionBuilder tx;
        recordCertificate(tx, current, chain, clusterRootCert());
        return write(kj::mv(tx)).then([this, results, chain = kj::mv(chain)](uint64_t) mutable {
          results.setCertChain(bytesOf(chain));
          auto roots = splitPemCertificates(trustedRootsBundle());
          auto list = results.initTrustedRoots(static_cast<unsigned>(roots.size()));
          for (unsigned i = 0; i < roots.size(); ++i) list.set(i, bytesOf(roots[i]));
        });
      });
}

void SwarmNode::recordCertificate(store::TransactionBuilder& tx, const store::ObjectRef& node, const std::string& chain,
                                  capnp::Data::Reader rootPem) {
  capnp::MallocMessageBuilder message;
  auto object = message.initRoot<store::schema::Object>();
  object.setNode(node->node());
  auto certificate = object.getNode().getCertificate();
  certificate.setCertificate(bytesOf(chain));
  certificate.setStatus(schema::CertificateStatus::ISSUED);
  describeTrust(object.getNode().getDescription().getTlsInfo(), rootPem);
  tx.update(object.asReader(), node->version());
}

capnp::Data::Reader SwarmNode::clusterRootCert() const {
  auto clusters = storePtr->list(store::Kind::cluster);
  if (clusters.empty()) throw SwarmError(503, "this manager has no cluster object yet; retry");
  return clusters.front()->reader().getCluster().getRootCa().getCert();
}

bool SwarmNode::needsRotatedCertificate(schema::Node::Reader node) const {
  auto clusters = storePtr->list(store::Kind::cluster);
  if (clusters.empty() || !clusters.front()->reader().getCluster().getRootRotationInProgress()) return false;
  auto issuer = node.getDescription().getTlsInfo().getCertIssuerPublicKey();
  return std::string_view(reinterpret_cast<const char*>(issuer.begin()), issuer.size()) != rootIssuerKey;
}

// Swarm's rule: a rotation ends when every node that is not down holds a certificate from the new
// root. The previous root and the cross-signed certificate go, and the join tokens carry the new
// root's digest. A node down meanwhile no longer connects once back: it joins again.
kj::Promise<void> SwarmNode::finishRootRotationIfConverged() {
  auto clusters = storePtr->list(store::Kind::cluster);
  if (clusters.empty() || !clusters.front()->reader().getCluster().getRootRotationInProgress()) return kj::READY_NOW;
  for (const auto& ref : storePtr->list(store::Kind::node)) {
    if (ref->node().getStatus().getState() != schema::NodeState::DOWN && needsRotatedCertificate(ref->node())) {
      return kj::READY_NOW;
    }
  }
  auto current = clusters.front();
  auto tokens = pki().makeJoinTokensRequest();
  tokens.setRotate(current->reader().getCluster().getJoinTokens());
  return tokens.send().then([this, current](capnp::Response<schema::Pki::MakeJoinTokensResults>&& made) {
    capnp::MallocMessageBuilder message;
    auto object = message.initRoot<store::schema::Object>();
    object.setCluster(current->reader().getCluster());
    auto cluster = object.getCluster();
    cluster.getRootCa().setCrossSignedCert(nullptr);
    cluster.getRootCa().setPreviousCert(nullptr);
    cluster.setRootRotationInProgress(false);
    cluster.setJoinTokens(made.getTokens());
    store::TransactionBuilder tx;
    tx.update(object.asReader(), current->version());
    return write(kj::mv(tx)).then([this](uint64_t) {
      log->info("root CA rotation complete: every node holds a certificate from the new root");
    });
  });
}

// ---- resume, leave, unlock ----------------------------------------------------------------------

kj::Promise<void> SwarmNode::resume() {
  auto read = stateFile.read();
  if (!read) {
    if (options.forceNewCluster) {
      throw UserError("--force-new-cluster recovers a manager from its swarm data, and " +
                      options.stateDir.string() + " has none; give the state directory of a "
                      "surviving manager, or run without the flag");
    }
    log->info("not part of a swarm yet (no {}): waiting for swarm init or join", stateFile.path().string());
    return kj::READY_NOW;
  }
  auto state = (*read)->getRoot<store::schema::NodeState>();
  self = Self{};
  self.nodeId = state.getNodeId().cStr();
  self.clusterId = state.getClusterId().cStr();
  self.listenAddr = state.getListenAddr().cStr();
  self.advertiseAddr = state.getAdvertiseAddr().cStr();
  self.manager = state.getRole() == schema::NodeRole::MANAGER;
  self.raftMemberId = state.getRaftMemberId();
  for (auto address : state.getManagers()) knownManagers.emplace_back(address.cStr());
  if (state.getDataKey().isSealed()) {
    localState = LocalState::locked;
    lockedState = kj::mv(*read);
    log->warn("this manager is locked: unlock it with 'swarm unlock' and the cluster's unlock key");
    return kj::READY_NOW;
  }
  std::string chain = str(state.getCertChain());
  std::string roots = str(state.getRootCerts());
  std::string tlsKey = str(state.getTlsKey().getClear());
  if (!self.manager) {
    if (options.forceNewCluster) restartMode();  // throws: a worker has no log to recover
    return bringUpNetwork(chain, tlsKey, roots).then([this]() {
      localState = LocalState::active;
      startNodeLoops();
      log->info("resumed as worker {} of cluster {}", self.nodeId, self.clusterId);
    });
  }
  std::string dataKey = str(state.getDataKey().getClear());
  return bringUpNetwork(chain, tlsKey, roots)
      .then([this, dataKey]() { return startConsensus(restartMode(), dataKey, self.advertiseAddr); })
      .then([this]() { return settleAfterRestart(); });
}

schema::StartConfig::Bootstrap::Which SwarmNode::restartMode() {
  if (!options.forceNewCluster) return schema::StartConfig::Bootstrap::RESTART;
  if (!self.manager) {
    throw UserError("--force-new-cluster recovers a manager, and this node is a worker; run it on a "
                    "surviving manager");
  }
  log->warn("forcing a new cluster: this manager continues alone with every committed change; "
            "add managers again with node promote");
  return schema::StartConfig::Bootstrap::FORCE_NEW_CLUSTER;
}

kj::Promise<void> SwarmNode::settleAfterRestart() {
  localState = LocalState::active;
  startNodeLoops();
  // A leader is known within milliseconds (a one-manager swarm leads again); serving before that
  // would answer the first requests with "no leader". Without a quorum in sight, serve anyway:
  // reads still work.
  return waitForLeader().then(
      [this]() { log->info("resumed as manager {} of cluster {}", self.nodeId, self.clusterId); },
      [this](kj::Exception&&) {
        log->warn("resumed as manager {} of cluster {}, but no leader is elected yet", self.nodeId,
                  self.clusterId);
      });
}

kj::Promise<void> SwarmNode::unlock(std::string text) {
  if (localState != LocalState::locked) {
    throw SwarmError(503, "swarm is not locked");
  }
  SecretKey key;
  try {
    key = parseUnlockKey(text);
  } catch (const UserError& e) {
    throw SwarmError(400, e.what());
  }
  std::string dataKey, tlsKey, chain, roots;
  KJ_IF_MAYBE (held, lockedState) {
    auto state = (*held)->getRoot<store::schema::NodeState>();
    try {
      dataKey = unseal(key, str(state.getDataKey().getSealed()), kPurposeDataKey);
      tlsKey = unseal(key, str(state.getTlsKey().getSealed()), kPurposeTlsKey);
    } catch (const UserError&) {
      // Docker's words for a wrong key.
      throw SwarmError(400, "swarm could not be unlocked: invalid key, please try again");
    }
    chain = str(state.getCertChain());
    roots = str(state.getRootCerts());
  }
  self.unlockKey = key;
  lockedState = nullptr;
  log->info("unlocked manager {}", self.nodeId);
  return bringUpNetwork(chain, tlsKey, roots)
      .then([this, dataKey]() { return startConsensus(restartMode(), dataKey, self.advertiseAddr); })
      .then([this]() { return settleAfterRestart(); });
}

kj::Promise<void> SwarmNode::leave(bool force) {
  if (localState == LocalState::inactive) throw SwarmError(503, "This node is not part of a swarm");
  if (self.manager && !force) {
    throw SwarmError(503, "You are attempting to leave the swarm on a node that is participating "
                          "as a manager. Removing the last manager erases all current state of the "
                          "swarm. Use `--force` to ignore this message.");
  }
  // Better than Swarm, which just stops: a manager of a multi-manager swarm first leaves the
  // consensus (demoted through the leader), so the others keep counting a quorum of real members.
  // Forced means it goes anyway when that cannot happen (no leader, the quorum at risk).
  kj::Promise<void> handedOff = kj::READY_NOW;
  if (self.manager && raftMembers().size() > 1) handedOff = leaveConsensus();
  return handedOff.then([this]() { forgetSwarm(); });
}

kj::Promise<void> SwarmNode::leaveConsensus() {
  auto node = storePtr->get(store::Kind::node, self.nodeId);
  if (!node) return kj::READY_NOW;
  capnp::MallocMessageBuilder message;
  auto object = message.initRoot<store::schema::Object>();
  object.setNode(node->node());
  object.getNode().getSpec().setDesiredRole(schema::NodeRole::WORKER);
  store::TransactionBuilder tx;
  tx.update(object.asReader(), node->version());
  auto deadline = io.provider->getTimer().now() + kLeaveConsensusTimeout;
  return write(kj::mv(tx))
      .then([this, deadline](uint64_t) { return waitLeftConsensus(deadline); },
            [this](kj::Exception&& e) { log->warn("leaving without demotion: {}", describe(e)); });
}

kj::Promise<void> SwarmNode::waitLeftConsensus(kj::TimePoint deadline) {
  if (raftMembers().count(self.raftMemberId) == 0) {
    log->info("this manager left the consensus");
    return kj::READY_NOW;
  }
  if (io.provider->getTimer().now() >= deadline) {
    log->warn("leaving without the consensus removing this manager (no leader, or its removal would lose "
              "the quorum); remove it from a remaining manager with 'docker node demote' and 'docker node rm'");
    return kj::READY_NOW;
  }
  return io.provider->getTimer().afterDelay(100 * kj::MILLISECONDS).then([this, deadline]() {
    return waitLeftConsensus(deadline);
  });
}

void SwarmNode::forgetSwarm() {
  // The consensus plugin keeps its log open until it stops; the kernel restarts nothing here, so
  // the data goes with the plugin's next start (init wipes the raft directory first).
  takeDownNetwork();
  resetStore();
  stateFile.remove();
  std::error_code ec;
  std::filesystem::remove_all(options.stateDir / "raft", ec);
  log->info("left the swarm (node {} of cluster {})", self.nodeId, self.clusterId);
  self = Self{};
  localState = LocalState::inactive;
}

}  // namespace swarm::kernel
