// SwarmNode: this process's place in a swarm, and the lifecycle operations that change it.
//
//   inactive  --init-->  manager (leader of a one-member cluster)
//   manager   --leave --force-->  inactive (state directory wiped)
//   boot: node-state.bin present -> restart the consensus plugin on its log (a locked node, whose
//         keys are sealed by the unlock key, waits in `locked` for unlock()).
//
// It owns the store and its replication, drives the pki and consensus plugins through the kernel,
// and keeps node-state.bin. Everything runs on the kernel's KJ thread.
#pragma once

#include "api/decode.h"
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
#include <memory>
#include <optional>
#include <string>

namespace swarm::kernel {

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
  // POST /swarm/leave. A manager needs force (it is the only one here: its data goes).
  kj::Promise<void> leave(bool force);
  // POST /swarm/unlock.
  kj::Promise<void> unlock(std::string unlockKey);

  LocalState state() const { return localState; }
  const std::string& nodeId() const { return self.nodeId; }
  const std::string& clusterId() const { return self.clusterId; }
  bool isManager() const { return localState == LocalState::active && self.manager; }
  const std::string& advertiseAddr() const { return self.advertiseAddr; }
  const std::string& listenAddr() const { return self.listenAddr; }
  // The unlock key, when autolock is on (GET /swarm/unlockkey).
  std::optional<std::string> unlockKey() const;

  store::Store& store() { return *storePtr; }
  schema::Pki::Client pki();
  Replication& replication() { return *replicationPtr; }

  // A manager that can write: throws SwarmError 503 with Docker's wording otherwise.
  void requireManager() const;

  // swarm ca --rotate on a one-node swarm: a new root (generated, or the operator's), this node's
  // certificate re-issued from it, join tokens re-digested; `cluster` (its spec already merged)
  // is committed with them in one transaction at `expectedVersion`.
  kj::Promise<void> rotateRoot(kj::Own<capnp::MallocMessageBuilder> cluster, api::CaRotationRequest ca,
                               uint64_t expectedVersion);

  // Proposes one transaction and maps its fate to a SwarmError on failure; resolves with the
  // entry's index.
  kj::Promise<uint64_t> write(store::TransactionBuilder tx);

 private:
  struct Self {
    std::string nodeId, clusterId, listenAddr, advertiseAddr;
    bool manager = false;
    uint64_t raftMemberId = 0;
    std::optional<SecretKey> unlockKey;  // autolock
  };

  struct OwnCertificate {
    std::string chain;  // PEM
    std::string key;    // PEM, made on this node
  };
  // A fresh key and a certificate for it, issued by the loaded root for this node's identity.
  kj::Promise<OwnCertificate> issueOwnCertificate(int64_t validity);

  kj::Promise<void> startConsensus(schema::StartConfig::Bootstrap::Which mode, const std::string& dataKey,
                                   const std::string& memberAddress);
  kj::Promise<void> waitForLeadership();
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
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> leadershipWaiter;
  // While locked: the state file, kept until unlock() opens its sealed keys.
  kj::Maybe<kj::Own<capnp::MessageReader>> lockedState;
  // The PKI plugin keeps no state: it gets the cluster's root whenever the store's changes.
  store::Subscription rootWatch;
  std::string loadedRoot;
  class TaskErrors final : public kj::TaskSet::ErrorHandler {
   public:
    explicit TaskErrors(SwarmNode& node) : node(node) {}
    void taskFailed(kj::Exception&& e) override;
    SwarmNode& node;
  };
  TaskErrors taskErrors{*this};
  kj::TaskSet tasks{taskErrors};
  void loadRootIfChanged();
  // Autolock turned on or off, or its key rotated: the state file's keys follow.
  void resealIfUnlockKeyChanged();
};

}  // namespace swarm::kernel
