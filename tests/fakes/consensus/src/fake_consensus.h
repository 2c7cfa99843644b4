// fake-consensus: a single-member "cluster" whose log is a sealed file under storageDir (see
// README.md). Every proposal is appended and fsynced, then applied, then acknowledged; a restart
// replays the file into the new state machine. It is a test fake, not Raft: no peers, no election.
#pragma once

#include "sealed_log.h"

#include <swarm/sdk.h>

#include <kj/async.h>

#include <cstdint>
#include <vector>

namespace swarm::fakes {

class FakeConsensus final : public sdk::PluginServer<schema::Consensus>,
                            private kj::TaskSet::ErrorHandler {
 public:
  FakeConsensus();

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
  void taskFailed(kj::Exception&& exception) override;

  bool leading() const { return started && !stopping; }
  void fillStatus(schema::Status::Builder status) const;
  void fillSelf(schema::Member::Builder member) const;

  // Applies `batch` after everything queued before it; resolves once the machine has it.
  kj::Promise<void> enqueueApply(std::vector<LogEntry> batch);
  // Appends one proposal (durably) and writes its result, or writes why not and returns null.
  kj::Maybe<LogEntry> admit(capnp::Data::Reader data,
                            schema::Consensus::ProposeResult::Builder result);
  kj::Promise<void> sendApply(std::vector<LogEntry> batch);
  kj::Promise<void> sendSnapshot(Snapshot snapshot);

  kj::Maybe<kj::Own<SealedLog>> disk;
  kj::Maybe<schema::StateMachine::Client> machine;
  LogMember self;
  uint64_t maxMessageBytes = 1 << 20;
  uint64_t term = 0;
  uint64_t lastIndex = 0;
  uint64_t commitIndex = 0;
  uint64_t appliedIndex = 0;
  uint64_t snapshotIndex = 0;
  uint64_t snapshotTerm = 0;
  std::vector<LogEntry> entries;  // after the last snapshot, for the next compaction
  bool started = false;
  bool stopping = false;
  kj::Maybe<kj::String> broken;  // the state machine refused an entry: nothing can go on

  kj::ForkedPromise<void> applyTail;  // the last apply queued; the next one waits for it
  kj::TaskSet tasks;                  // status notifications
};

}  // namespace swarm::fakes
