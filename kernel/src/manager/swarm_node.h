// SwarmNode: this process's place in a swarm, and the lifecycle operations that change it.
//
//   inactive  --init-->  manager (leader of a one-member cluster)
//   inactive  --join (token)-->  worker, or manager (a Raft learner, promoted once caught up)
//   manager   --leave --force-->  inactive (state directory wiped); a worker needs no --force
//   boot: node-state.bin present -> restart the consensus plugin on its log (a locked node, whose
//         keys are sealed by the unlock key, waits in `locked` for unlock()).
//
// It owns the store and its replication, drives the pki and consensus plugins through the kernel,
// and keeps node-state.bin. Everything runs on the kernel's KJ thread.
#pragma once

#include "agent.h"
#include "api/decode.h"
#include "orchestration.h"
#include "cluster_net.h"
#include "http/message.h"
#include "kernel.h"
#include "keys.h"
#include "node_state.h"
#include "replication.h"
#include "store/store.h"
#include "store/transaction.h"

#include <swarm/schema/pki.capnp.h>

#include <kj/async-io.h>
#include <spdlog/logger.h>

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace swarm::kernel {

// What a node reports of the root it trusts and the issuer of its certificate (the root itself).
void describeTrust(schema::TlsInfo::Builder info, capnp::Data::Reader rootPem);

struct SwarmNodeOptions {
  std::filesystem::path stateDir;
  std::string hostname;       // as the node describes itself (Description.Hostname)
  std::string engineVersion;  // Description.Engine.EngineVersion
  kj::Duration leaderWait = 10 * kj::SECONDS;  // init and restarts wait this long for a leader
  // Recovery from a lost quorum: restart the consensus log as a one-member cluster keeping all
  // committed data (swarm-kernel --force-new-cluster).
  bool forceNewCluster = false;
};

// Docker's LocalNodeState.
enum class LocalState { inactive, pending, active, error, locked };
const char* localStateName(LocalState state);

// Failures are http::Error: the status Docker answers them with, and its message.
using SwarmError = http::Error;

class SwarmNode {
 public:
  SwarmNode(kj::AsyncIoContext& io, Kernel& kernel, SwarmNodeOptions options);
  ~SwarmNode();

  // At boot: reads node-state.bin and restarts as the manager it was (or stays inactive, or
  // locked). Throws UserError for a damaged state directory.
  kj::Promise<void> resume();

  // POST /swarm/init: resolves with the new node ID. `spec` holds the cluster spec with Swarm's
  // defaults merged with the request.
  kj::Promise<std::string> init(api::InitRequest request,
                                kj::Own<capnp::MallocMessageBuilder> spec);
  // POST /swarm/join: asks a manager at one of request.remoteAddrs to admit this node with the
  // token, then runs as the worker or manager the token makes it (swarm_cluster.cpp).
  kj::Promise<void> join(api::JoinRequest request);
  // POST /swarm/leave. A manager needs force (it is the only one here: its data goes).
  kj::Promise<void> leave(bool force);
  // POST /swarm/unlock.
  kj::Promise<void> unlock(std::string unlockKey);

  LocalState state() const { return localState; }
  const std::string& nodeId() const { return self.nodeId; }
  const std::string& clusterId() const { return self.clusterId; }
  bool isManager() const { return localState == LocalState::active && self.manager; }
  bool isWorker() const { return localState == LocalState::active && !self.manager; }
  const std::string& advertiseAddr() const { return self.advertiseAddr; }
  const std::string& listenAddr() const { return self.listenAddr; }
  // The unlock key, when autolock is on (GET /swarm/unlockkey).
  std::optional<std::string> unlockKey() const;

  store::Store& store() { return *storePtr; }
  schema::Pki::Client pki();
  Replication& replication() { return *replicationPtr; }

  // A manager that can write: throws SwarmError 503 with Docker's wording otherwise.
  void requireManager() const;
  // A task's container log, from the node that runs it (through the leader's session with that
  // node); resolves when the log ends (never with follow, until cancelled).
  kj::Promise<void> taskLogs(std::string nodeId, std::string taskId, schema::LogOptions::Reader options,
                             schema::LogSink::Client sink);
  // A linearizable read: resolves once this manager has applied what the leader had committed
  // (at once on the leader); 503 "no leader" without a quorum.
  kj::Promise<void> readBarrier();

  // The consensus members as the network knows them (addresses), and the leader's node ID.
  const std::map<uint64_t, RaftMember>& raftMembers() const;
  std::string leaderNodeId() const;
  // A manager's reachability as this manager sees it: the leader and managers heartbeating are
  // reachable.
  bool managerReachable(const std::string& nodeId) const;

  // swarm ca --rotate: a new root (generated, or the operator's) cross-signed by the current one,
  // this node's certificate re-issued from it at once; `cluster` (its spec already merged) is
  // committed with them in one transaction at `expectedVersion`. Every other node then renews its
  // certificate when its heartbeat says so, and the dispatcher completes the rotation (old root
  // dropped, join tokens re-digested) once every node that is not down holds a new certificate.
  kj::Promise<void> rotateRoot(kj::Own<capnp::MallocMessageBuilder> cluster, api::CaRotationRequest ca,
                               uint64_t expectedVersion);

  // Proposes one transaction and maps its fate to a SwarmError on failure; resolves with the
  // entry's index once this manager's store applied it. A follower hands the entry to the leader.
  kj::Promise<uint64_t> write(store::TransactionBuilder tx);

 private:
  friend class ManagerServer;
  capnp::Capability::Client managerFor(const PeerIdentity& peer);
  struct Self {
    std::string nodeId, clusterId, listenAddr, advertiseAddr;
    bool manager = false;
    uint64_t raftMemberId = 0;
    std::optional<SecretKey> unlockKey;  // autolock
  };

  // ---- certificates: renewal near expiry and the root CA rotation (swarm_node.cpp) ---------------
  // The roots a node of this swarm trusts, as a PEM bundle: the cluster's root and, during a
  // rotation, the previous one (a manager's view, from the store).
  std::string trustedRootsBundle() const;
  // Persists and uses this node's new certificate, key and trusted roots (the key sealed when the
  // swarm is autolocked).
  kj::Promise<void> adoptCredentials(std::string chain, std::string key, std::string roots);
  // A node asked to trust other roots (its heartbeat said so).
  void adoptTrustedRoots(capnp::List<capnp::Data>::Reader roots);
  // Works out when this node's certificate is due: between 50 % and 80 % of its validity.
  void scheduleRenewal();
  bool renewalDue() const;
  // A new key and certificate: issued here on the leader, else asked of the leader at `target`.
  void renewOwnCertificate(const std::string& target, const char* why);
  // The leader's side of Manager.renewCertificate.
  kj::Promise<void> renewCertificateFor(const PeerIdentity& peer, std::string csr,
                                        store::schema::Manager::RenewCertificateResults::Builder results);
  // Adds to `tx` the node object holding its new certificate, issued by the root `rootPem`.
  void recordCertificate(store::TransactionBuilder& tx, const store::ObjectRef& node, const std::string& chain,
                         capnp::Data::Reader rootPem);
  capnp::Data::Reader clusterRootCert() const;  // the store's; valid until the next write
  // During a rotation: the node still holds a certificate from the previous root.
  bool needsRotatedCertificate(schema::Node::Reader node) const;
  kj::Promise<void> finishRootRotationIfConverged();
  int64_t certificateRenewAt = 0;
  kj::Maybe<kj::Promise<void>> renewal;
  std::string rootIssuerKey;  // DER public key of the loaded root: what converged nodes report

  struct OwnCertificate {
    std::string chain;  // PEM
    std::string key;    // PEM, made on this node
  };
  // A fresh key and a certificate for it, issued by the loaded root for this node's identity.
  kj::Promise<OwnCertificate> issueOwnCertificate(int64_t validity);
  // leave --force on a manager: demoted through the leader, out of the consensus, then gone.
  kj::Promise<void> leaveConsensus();
  kj::Promise<void> waitLeftConsensus(kj::TimePoint deadline);
  void forgetSwarm();

  kj::Promise<void> startConsensus(schema::StartConfig::Bootstrap::Which mode, const std::string& dataKey,
                                   const std::string& memberAddress);

  // ---- swarm_cluster.cpp: the network between nodes --------------------------------------------
  schema::Transport::Client transport();
  // Hands the transport this node's certificate; a manager also listens on its listen address.
  kj::Promise<void> bringUpNetwork(std::string chain, std::string key, std::string roots);
  kj::Promise<void> pushCredentials();
  void pushRevocationsIfChanged();
  void takeDownNetwork();
  kj::Promise<uint64_t> forwardToLeader(std::string entry, uint64_t leaderHint);
  kj::Promise<void> waitApplied(uint64_t index);
  void notifyApplied();
  // The leader's side of a join (cluster.capnp Manager.join).
  kj::Promise<void> admit(store::schema::JoinRequest::Reader request, store::schema::JoinResponse::Builder response);
  kj::Promise<std::string> issueFor(std::string csr, std::string nodeId, schema::NodeRole role);
  kj::Promise<uint64_t> addLearner(std::string nodeId, std::string address);
  void describeMembers(capnp::List<schema::Member>::Builder out) const;
  static void setManagerStatus(store::schema::Object::Builder object, uint64_t memberId, const std::string& address);
  // promote/demote: the leader's side (Manager.changeRole), the leader's own part of a demotion
  // (removing the member), and the node's side once its heartbeat says the swarm wants another role.
  kj::Promise<void> grantRole(const PeerIdentity& peer, std::string csr, std::string address,
                              store::schema::RoleChange::Builder change);
  kj::Promise<void> carryOutDemotions();
  kj::Promise<void> takeRole(schema::NodeRole wanted, std::string target);
  schema::Consensus::Client consensus();
  schema::Runtime::Client runtime();
  // Dispatcher (leader): heartbeats, READY/DOWN/UNKNOWN, manager status, learner promotion.
  kj::Promise<void> heartbeatFrom(const PeerIdentity& peer, schema::NodeDescription::Reader description,
                                  store::schema::SessionInfo::Builder session);
  void onLeadership(bool leader);
  kj::Promise<void> dispatcherRound();
  kj::Promise<void> dispatcherLoop();
  int64_t heartbeatPeriod() const;
  // Agent (every node but the leader): heartbeats to the leader, failing over between managers.
  kj::Promise<void> agentLoop();
  kj::Promise<void> heartbeatOnce();
  std::vector<std::string> managerAddresses() const;
  std::string leaderAddress() const;
  void rememberManagers(capnp::List<capnp::Text>::Reader managers);
  kj::Promise<void> waitForLeader();
  kj::Promise<void> settleAfterRestart();
  schema::StartConfig::Bootstrap::Which restartMode();
  void stopConsensus();
  void resetStore();
  int64_t now() const;

  kj::AsyncIoContext& io;
  Kernel& kernel;
  SwarmNodeOptions options;
  std::shared_ptr<spdlog::logger> log;
  NodeStateFile stateFile;
  LocalState localState = LocalState::inactive;
  bool consensusStarted = false;
  Self self;
  kj::Own<store::Store> storePtr;
  Replication* replicationPtr = nullptr;  // owned by the capability it is served as
  kj::Maybe<schema::StateMachine::Client> machine;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> leaderWaiter;
  // While locked: the state file, kept until unlock() opens its sealed keys.
  kj::Maybe<kj::Own<capnp::MessageReader>> lockedState;
  // The PKI plugin keeps no state: it gets the cluster's root whenever the store's changes.
  store::Subscription rootWatch;
  std::string loadedRoot;  // the RootCa message loaded into the PKI plugin
  class TaskErrors final : public kj::TaskSet::ErrorHandler {
   public:
    explicit TaskErrors(SwarmNode& node) : node(node) {}
    void taskFailed(kj::Exception&& e) override;
    SwarmNode& node;
  };
  TaskErrors taskErrors{*this};
  kj::TaskSet tasks{taskErrors};
  void loadRootIfChanged();

  // The network (swarm_cluster.cpp).
  PeerLinks links;
  ServedPeers served;
  RaftPeers* raftPeers = nullptr;  // owned by the capability the consensus plugin holds
  kj::Maybe<schema::Listener::Client> listener;
  struct Credentials {
    std::string chain, key, roots;  // PEM
  };
  Credentials ownCredentials;
  size_t pushedRevocations = 0;
  std::vector<std::string> knownManagers;  // a worker's managers, as the last heartbeat said
  size_t nextManager = 0;
  std::string agentTarget;
  std::multimap<uint64_t, kj::Own<kj::PromiseFulfiller<void>>> appliedWaiters;
  std::map<std::string, kj::TimePoint> heartbeatDeadlines;  // leader: node ID -> DOWN after
  bool leading = false;
  uint64_t leadershipEpoch = 0;
  kj::Maybe<kj::Promise<void>> agent;
  kj::Maybe<kj::Promise<void>> roleChange;

  // Tasks (swarm_cluster.cpp): the dispatcher's assignment sessions on the leader, and this
  // node's agent, which runs its tasks with the runtime plugin.
  struct AssignmentSession {
    store::schema::AssignmentSink::Client sink;
    uint64_t sequence = 0;
    bool dirty = true;
    bool sending = false;
    kj::Own<kj::PromiseFulfiller<void>> ended;
    // What the node has: its tasks' desired states, and the secrets' and configs' versions.
    std::map<std::string, uint16_t> sentTasks{};
    std::map<std::string, uint64_t> sentSecrets{}, sentConfigs{};
  };
  std::map<std::string, AssignmentSession> assignmentSessions;  // by node ID
  store::Subscription dispatchWatch;
  bool flushScheduled = false;
  kj::Own<Agent> agentRuntime;
  kj::Own<capnp::MallocMessageBuilder> runtimeDescription;  // what the runtime said of this node
  kj::Own<Orchestration> orchestration;  // while leading
  kj::Maybe<kj::Promise<void>> assignmentStream;
  std::string assignmentTarget;
  kj::Maybe<kj::Promise<void>> statusReporter;
  kj::Promise<void> openAssignments(const std::string& nodeId, store::schema::AssignmentSink::Client sink);
  void buildAssignment(const std::string& nodeId, AssignmentSession& session, store::schema::Assignment::Builder out);
  void markAssignmentsDirty(const store::Event& event);
  void flushAssignments();
  void endAssignmentSessions();
  kj::Promise<void> applyTaskStatus(const std::string& nodeId,
                                    capnp::List<store::schema::TaskStatusUpdate>::Reader updates);
  void startAgent();
  // The heartbeat loop and the agent, once this node is in a swarm.
  void startNodeLoops();
  void stopAgent();
  kj::Promise<void> reportLoop();
  void ensureAssignmentStream(const std::string& target);
  kj::Maybe<kj::Promise<void>> dispatcher;
  // Autolock turned on or off, or its key rotated: the state file's keys follow.
  void resealIfUnlockKeyChanged();
};

}  // namespace swarm::kernel
