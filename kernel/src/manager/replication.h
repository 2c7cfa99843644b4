// Replication: the store behind the consensus plugin.
//
// The kernel hands the consensus plugin a StateMachine capability (this class): committed entries
// arrive through apply() in index order on every manager and go to Store::apply(); snapshots are
// the store's own chunks. Writes go the other way through propose(): concurrent transactions from
// the API and the manager loops are coalesced into one proposeBatch() per event-loop turn (each
// stays its own entry and its own all-or-nothing outcome), and each caller gets the outcome its
// entry had when this manager applied it.
//
// Runs on the kernel's KJ thread, like the store.
#pragma once

#include "store/store.h"

#include <swarm/schema/consensus.capnp.h>

#include <kj/async.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace swarm::kernel {

// What the plugin last said about leadership (statusChanged / membershipChanged).
struct ConsensusView {
  uint64_t memberId = 0;
  uint64_t leaderId = 0;  // 0 = no known leader
  uint64_t term = 0;
  schema::Role role = schema::Role::FOLLOWER;
  std::vector<std::pair<uint64_t, std::string>> members;  // (member ID, node ID)
  bool isLeader() const { return leaderId != 0 && leaderId == memberId; }
};

// Why a proposal did not reach the store; the API maps these to Docker's errors.
struct ProposeError {
  enum class Kind { notLeader, noLeader, tooLarge, lostLeadership, stopped } kind;
  uint64_t leaderHint = 0;
  std::string message;
};

class Replication final : public schema::StateMachine::Server {
 public:
  explicit Replication(store::Store& store);

  // The plugin's client, once start() was sent; proposals before that fail with `stopped`.
  void attach(schema::Consensus::Client consensus);
  void detach();

  // Resolves once this transaction's fate is known here: applied (with the store's outcome for
  // it, which may be a refusal such as a version conflict), or never reaching the store.
  struct Outcome {
    uint64_t index = 0;
    std::optional<store::ApplyResult> applied;
    std::optional<ProposeError> failed;  // set when `applied` is not
  };
  kj::Promise<Outcome> propose(std::string entry);

  // A linearizable read: resolves once this manager has applied what the leader had committed.
  kj::Promise<std::optional<ProposeError>> readBarrier();

  const ConsensusView& view() const { return consensusView; }
  // Called after every status or membership change the plugin reports.
  void onViewChange(std::function<void(const ConsensusView&)> callback);

  // StateMachine
  kj::Promise<void> apply(ApplyContext context) override;
  kj::Promise<void> snapshot(SnapshotContext context) override;
  kj::Promise<void> restore(RestoreContext context) override;
  kj::Promise<void> membershipChanged(MembershipChangedContext context) override;
  kj::Promise<void> statusChanged(StatusChangedContext context) override;

 private:
  struct Queued {
    std::string entry;
    kj::Own<kj::PromiseFulfiller<Outcome>> fulfiller;
  };
  kj::Promise<void> sendBatch();

  store::Store& store;
  kj::Maybe<schema::Consensus::Client> consensus;
  ConsensusView consensusView;
  std::function<void(const ConsensusView&)> viewCallback;
  std::vector<Queued> queued;
  bool batchScheduled = false;
  // Outcomes of entries applied here that a local proposer may still ask for, by index. Bounded:
  // a proposer asks right after its entry applied.
  std::map<uint64_t, store::ApplyResult> recentOutcomes;
  kj::Own<kj::TaskSet> tasks;
};

}  // namespace swarm::kernel
