// consensus-raft's bootstrap capability: schema::Consensus served on the plugin's own KJ event
// loop (sdk.h). It validates start(), opens the storage and hands everything else to a Replica
// (replica.h, where the Ready loop lives), translating its answers into the schema's unions.
#pragma once

#include "replica.h"

#include <swarm/sdk.h>

namespace swarm::raft::shell {

class Node final : public sdk::PluginServer<schema::Consensus> {
 public:
  Node();
  ~Node() noexcept(false);

  kj::Promise<void> start(StartContext context) override;
  kj::Promise<void> step(StepContext context) override;
  kj::Promise<void> propose(ProposeContext context) override;
  kj::Promise<void> proposeBatch(ProposeBatchContext context) override;
  kj::Promise<void> readBarrier(ReadBarrierContext context) override;
  kj::Promise<void> status(StatusContext context) override;
  kj::Promise<void> addMember(AddMemberContext context) override;
  kj::Promise<void> promoteMember(PromoteMemberContext context) override;
  kj::Promise<void> removeMember(RemoveMemberContext context) override;
  kj::Promise<void> transferLeadership(TransferLeadershipContext context) override;
  kj::Promise<void> snapshotNow(SnapshotNowContext context) override;

  kj::Promise<void> health(HealthContext context) override;
  kj::Promise<void> shutdown(ShutdownContext context) override;

 private:
  kj::AsyncIoContext& io;
  bool starting = false;
  kj::Maybe<kj::Own<Replica>> replica;  // set once start() was accepted

  Replica& running();
  // The started replica, or throws saying why there is none.
};

}  // namespace swarm::raft::shell
