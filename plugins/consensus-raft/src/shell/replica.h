// One running Raft member: the Core (raft/core.h), its Storage (storage/storage.h), the kernel's
// PeerNetwork and StateMachine capabilities, and the Ready loop that ties them together on the
// plugin's KJ event loop. node.h turns Consensus calls into calls on this class.
//
// THE READY LOOP (core.h's contract, mapped onto KJ):
//   Every input (a tick every tickMillis, step(), propose(), reads, membership, transfer) goes
//   straight into the core and then schedules processReady() with kj::evalLast(): it runs once
//   the event loop has drained everything already queued, so every proposal and peer message
//   that arrived meanwhile joins the same Ready. One Ready per loop turn is the batching that
//   gives throughput; nothing waits on a timer to batch.
//   processReady() / finishReady():
//     1. persist on the Persister's thread: a received snapshot (Storage::installSnapshot), then
//        the entries and the hard state as one record with one fdatasync (Storage::save). The
//        loop keeps stepping messages, taking proposals and answering applies meanwhile; the
//        next Ready waits for this one's advance(). Committed entries below this Ready's new
//        entries were made durable by earlier Readies: they go to the store at once, without
//        waiting for this fsync (so a save that only moves the commit index delays no reply).
//     2. send every message through PeerNetwork.send (best effort, streaming, not awaited).
//     3. state machine: a received snapshot goes to StateMachine.restore in chunks; the committed
//        entries go to StateMachine.apply as one call. Applies are pipelined (capnp delivers
//        calls to one capability in order); a restore waits until every earlier call returned
//        and holds back every later one until its sink's done() returned (the machine queue).
//     4. soft state -> statusChanged (and leadership bookkeeping), membership -> setMembers and
//        membershipChanged (queued behind the applies), read states -> read barriers.
//     5. advance(), then schedule another turn if the core has more.
//   The core's applied index runs ahead of the store by the applies in flight; everything that
//   promises "applied" (propose, readBarrier, status().appliedIndex, snapshots) uses the index
//   the store has acknowledged (machineApplied).
//
// PROPOSALS resolve when StateMachine.apply returned for their index and the entry there has
// the proposal's term (committed), or as lostLeadership when this member stopped leading before
// the entry was committed, or when a snapshot skipped it (it may or may not have committed).
//
// RESTART (the conformance "re-apply" rule): the store is a new incarnation, so start() first
// restores the latest persisted snapshot into it, then builds the core with applied = the
// snapshot's index; the Ready loop hands the persisted committed entries after it to apply().
//
// Failure: an error persisting, a store that fails apply()/restore(), or a failed
// PeerNetwork.send (a capnp stream stays broken after one failure) stops this member for good;
// every call then fails with the reason, health() reports it, and the storage directory is
// released. The kernel restarts the plugin.
#pragma once

#include "persister.h"
#include "start_config.h"

#include "raft/core.h"
#include "storage/storage.h"

#include <swarm/schema/consensus.capnp.h>

#include <kj/async.h>
#include <kj/function.h>
#include <kj/timer.h>

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace swarm::raft::shell {

struct ProposeAnswer {
  enum class Kind { committed, notLeader, tooLarge, lostLeadership };
  Kind kind = Kind::notLeader;
  Position position;        // committed
  MemberId leaderHint = 0;  // notLeader
  uint64_t limit = 0;       // tooLarge
};

struct ReadAnswer {
  enum class Kind { applied, notLeader, noQuorum };
  Kind kind = Kind::notLeader;
  Index applied = 0;        // applied: the store holds everything up to here
  MemberId leaderHint = 0;  // notLeader
};

struct MembershipAnswer {
  enum class Kind { done, notLeader, unknownMember, quorumAtRisk, inProgress, invalid };
  Kind kind = Kind::notLeader;
  Member member;            // done
  MemberId leaderHint = 0;  // notLeader
  std::string reason;       // quorumAtRisk, invalid
};

struct TransferAnswer {
  enum class Kind { newLeader, notLeader, noCandidate, timedOut };
  Kind kind = Kind::timedOut;
  MemberId member = 0;  // newLeader: the leader now; notLeader: the hint
};

struct SnapshotAnswer {
  SnapshotMeta meta;
  uint64_t sizeBytes = 0;
};

class Replica {
 public:
  using Logger = kj::Function<void(schema::LogLevel, kj::StringPtr)>;

  Replica(StartSettings settings, Storage storage, schema::PeerNetwork::Client network,
          schema::StateMachine::Client machine, kj::Timer& timer, Logger log);
  ~Replica() noexcept(false);
  KJ_DISALLOW_COPY(Replica);

  kj::Promise<void> boot();
  // Restores the persisted snapshot into the store (restart, forceNewCluster), builds the core
  // for settings.boot, and starts ticking. Fails with a one-line reason.

  bool running() const { return core != nullptr && !stopped && failure == nullptr; }
  kj::Maybe<kj::StringPtr> failed() const;
  void checkRunning() const;
  // Throws the reason when not running (booting, failed or shut down).

  void step(MemberId from, kj::ArrayPtr<const kj::byte> bytes);
  kj::Promise<ProposeAnswer> propose(kj::ArrayPtr<const kj::byte> data);
  kj::Promise<ReadAnswer> readBarrier();
  kj::Promise<MembershipAnswer> addMember(Member member);
  kj::Promise<MembershipAnswer> promoteMember(MemberId id);
  kj::Promise<MembershipAnswer> removeMember(MemberId id);
  kj::Promise<TransferAnswer> transferLeadership(MemberId to);
  kj::Promise<SnapshotAnswer> snapshotNow();
  void fillStatus(schema::Status::Builder out) const;

  void shutdown();
  // Stops ticking and taking work, fails what waits, closes the storage (releasing its lock).

 private:
  struct CommitWait {
    Term term;
    kj::Own<kj::PromiseFulfiller<bool>> fulfiller;  // true: the entry at the index is ours
  };
  struct TransferWait {
    MemberId target;
    bool sawTransfer;  // the core reported the transfer under way
    kj::Own<kj::PromiseFulfiller<TransferAnswer>> fulfiller;
  };
  struct MachineOp {
    bool barrier;  // a restore: runs alone
    kj::Function<kj::Promise<void>()> start;
  };
  class ErrorHandler final : public kj::TaskSet::ErrorHandler {
   public:
    ErrorHandler(Replica& replica, bool loop) : replica(replica), loop(loop) {}
    void taskFailed(kj::Exception&& exception) override;

   private:
    Replica& replica;
    bool loop;  // else: a PeerNetwork.send
  };

  StartSettings settings;
  std::optional<Storage> storage;  // reset by shutdown()
  schema::PeerNetwork::Client network;
  schema::StateMachine::Client machine;
  kj::Timer& timer;
  Logger log;
  kj::Own<Persister> persister;  // the only user of `storage` once boot() is done
  std::unique_ptr<Core> core;

  Index machineApplied = 0;  // the store acknowledged everything up to here
  bool readyScheduled = false;
  bool readyOut = false;  // a Ready is being persisted; the next waits for its advance()
  bool stopped = false;
  kj::Maybe<kj::String> failure;
  kj::TimePoint nextTick;

  std::multimap<Index, CommitWait> commitWaits;
  uint64_t nextReadId = 1;
  std::map<uint64_t, kj::Own<kj::PromiseFulfiller<ReadAnswer>>> readsAtCore;
  std::multimap<Index, kj::Own<kj::PromiseFulfiller<ReadAnswer>>> readsAwaitingApply;
  std::vector<TransferWait> transfers;
  bool snapshotInProgress = false;
  std::vector<kj::Own<kj::PromiseFulfiller<void>>> snapshotWaiters;  // snapshotNow behind one
  uint64_t lastSnapshotSize = 0;

  std::deque<MachineOp> machineOps;
  unsigned machineInFlight = 0;
  bool barrierRunning = false;

  SoftState lastSoft;
  bool reportedStatus = false;
  MemberId reportedLeader = 0;
  Term reportedTerm = 0;
  Role reportedRole = Role::follower;
  struct Stats {
    // The Ready loop's work since the last report (a debug log line every 10 s).
    uint64_t readies = 0, saves = 0, entriesSaved = 0, applied = 0, proposals = 0;
    std::vector<uint32_t> persistMicros;  // how long each persist job took, queueing included
    kj::TimePoint since = kj::origin<kj::TimePoint>();
  };
  Stats stats;
  uint64_t droppedMessages = 0;
  kj::TimePoint lastDropLog;

  ErrorHandler loopErrors{*this, true};
  ErrorHandler sendErrors{*this, false};
  kj::TaskSet sendTasks{sendErrors};  // PeerNetwork.send calls
  kj::TaskSet tasks{loopErrors};      // the loop, the ticker and the store's work
  // Declared last: destroyed first, so nothing they run outlives the state above.

  kj::Promise<void> bootFromDisk();
  kj::Promise<void> tickLoop();
  void reportStats();
  void afterInput();
  void processReady();
  void finishReady(const Ready& rd, size_t early);
  void send(const Message& message);
  void onSoftState(const SoftState& soft);
  void onMembership(const std::vector<Member>& members);
  void onReadState(const ReadState& read);
  void dropped(kj::String what);
  void failWaits(const kj::Exception& why);
  void reportStatus();
  void fatal(kj::StringPtr why);
  void releaseStorage();

  void enqueueMachine(bool barrier, kj::Function<kj::Promise<void>()> start);
  void pumpMachine();
  void enqueueApply(const std::vector<Entry>& committed, size_t from, size_t to);
  void onApplied(Index first, std::vector<Term> terms);
  void enqueueRestore(const Snapshot& snapshot);
  kj::Promise<void> restoreStore(SnapshotMeta meta, std::shared_ptr<const std::string> data);
  void releaseReads();
  void resolveCommitWaitsUpTo(Index upTo);
  void resolveCommitWaitsAbove(Index above);
  void maybeAutoSnapshot();
  kj::Promise<SnapshotAnswer> takeSnapshot();
  kj::Promise<SnapshotAnswer> finishSnapshot(Index index, std::string data);
  kj::Promise<MembershipAnswer> membershipResult(MembershipOutcome out);
  kj::Promise<bool> waitCommitted(Position position);
  void fillMembers(capnp::List<schema::Member>::Builder out,
                   const std::vector<Member>& members) const;
};

}  // namespace swarm::raft::shell
