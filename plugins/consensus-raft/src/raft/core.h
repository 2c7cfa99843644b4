// The Raft core: a pure, single-threaded state machine. No I/O, no threads, no clock, no global
// randomness. Time arrives as tick(), peers' messages as step(), client requests as method calls
// whose outcomes are values; everything the core wants done comes out of ready().
//
// THE READY LOOP (the I/O shell drives it; etcd's doc.go rules, made strict):
//
//   while running:
//     feed inputs: tick() every tickMillis, step(decode(bytes)) per peer message, propose(),
//                  readIndex(), membership and transfer calls. Allowed at any time, also while a
//                  Ready is out (between ready() and advance()).
//     if hasReady():
//       rd = ready()                        // at most one Ready out at a time
//       1. persist, in this order, and fsync before step 2:
//            rd.snapshot  (if set: it replaces the whole persisted log; keep meta + data)
//            rd.entries   (entries[0].index may be <= the last persisted index: drop the
//                          persisted suffix from entries[0].index, then append)
//            rd.hardState (if set)
//       2. send rd.messages (encode(); best effort, any order, drop if unreachable). Never before
//          step 1 has reached disk: votes and acknowledgements promise what is on disk. The one
//          exception, rd.sendableBeforePersist(m), may be sent before step 1 starts.
//       3. if rd.snapshot: hand rd.snapshot->data to the state machine's restore().
//          Apply rd.committed, in order. (These are durable: step 1 ran first.)
//       4. act on rd.softState (leader/role changes), rd.membership (peer addresses), and
//          rd.readStates (a read with index i may be served once the applied index >= i).
//       5. advance(rd).
//   A crash anywhere in 1-5 is safe: whatever was not persisted is as if never produced, and on
//   restart committed entries after the store's applied index are handed out again.
//
// OTHER DUTIES OF THE SHELL
//   - Restart: build InitialState from disk (latest snapshot with its data, the hard state, the
//     persisted entries after it) after restoring the state machine from that snapshot, so that
//     `applied` is the snapshot's index. New cluster: Core(config) then bootstrap(members) on
//     every initial member with the same list. Joining node: Core(config) and wait.
//   - Snapshots: when snapshotDue(interval) (applied - snapshot index >= interval, 10,000 by
//     default), take the state machine's snapshot at the applied index i and call
//     snapshotTaken(i, data). Persist the returned meta with the data; entries before
//     firstIndex() may then be dropped from disk.
//   - Proposals: propose() returns accepted(index, term) at once; the client's entry is committed
//     iff the entry later applied at that index has that term (a different term there, or a
//     leadership change without it, means lostLeadership: it may still commit, do not assume).
//   - Membership results come the same way (accepted -> wait for the entry), and
//     transferLeadership() = started -> wait for softState.leader == target (newLeader) or for
//     softState.transferee to drop back to 0 while still leader (timedOut).
//   - Member IDs in removed (membership().removed) are refused by step(); a node that sees
//     softState.removed has been removed from the cluster and should stop.
//
// INVARIANTS the core keeps (checked by the simulation in tests/sim_*): at most one leader per
// term; two logs with an entry of the same index and term are identical up to it; a leader has
// every entry committed before its term; no two nodes apply different entries at one index;
// entries are handed out for apply exactly once each, in index order, per Core instance.
#pragma once

#include "log.h"
#include "membership.h"
#include "message.h"
#include "progress.h"
#include "rng.h"
#include "types.h"

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace swarm::raft {

constexpr uint64_t kDefaultSnapshotInterval = 10000;  // applied entries between snapshots

enum class Role : uint8_t { follower, preCandidate, candidate, leader, learner };
const char* roleName(Role role);

struct Config {
  MemberId id = 0;
  uint32_t electionTicks = 10;   // followers campaign after a random [e, 2e) ticks of silence
  uint32_t heartbeatTicks = 1;   // < electionTicks
  uint64_t maxMessageBytes = 1u << 20;  // batches of entries and snapshot chunks stay below it
  uint64_t maxEntryBytes = 0;    // largest proposal; 0 = maxMessageBytes - kMessageHeaderReserve
  uint32_t maxInflightMessages = 256;   // unacknowledged appends per follower (replicate state)
  uint32_t maxSnapshotChunksInFlight = 4;
  uint64_t logEntriesForSlowFollowers = 500;  // kept in memory below a snapshot
  uint64_t learnerCatchUpEntries = 100;  // a learner this close to the leader's log is caught up
  uint64_t maxCommittedBytesPerReady = 64u << 20;
  uint64_t randomSeed = 0;       // mixed with id: equal seeds on two nodes still differ
  bool preVote = true;           // §9.6 of the thesis: no term bump without a winnable election
  bool checkQuorum = true;       // leaders step down without a quorum for an election timeout

  bool testOnlyCommitPreviousTermEntries = false;
  // TEST ONLY. Reintroduces the bug of the paper's Figure 8: commit any entry stored on a
  // majority, whatever its term. Exists so the tests can prove the safety checker catches it.

  std::string validate() const;  // "" when usable, else what is wrong and how to fix it
  uint64_t entryLimit() const {
    return maxEntryBytes != 0 ? maxEntryBytes : maxMessageBytes - kMessageHeaderReserve;
  }
};

struct Snapshot {
  SnapshotMeta meta;
  std::shared_ptr<const std::string> data;
  // Shared, not copied: the same bytes are held by the core (to send to slow followers), by a
  // Ready (for the shell to persist and restore) and by follower progress while chunks go out.
};

struct InitialState {
  HardState hardState;
  std::optional<Snapshot> snapshot;  // the latest persisted snapshot, with its data
  std::vector<Entry> entries;        // persisted entries after it (earlier ones are ignored)
  Index applied = 0;                 // the state machine's applied index (>= snapshot index)
};

struct SoftState {
  MemberId leader = 0;
  Role role = Role::follower;
  MemberId transferee = 0;  // leadership transfer in progress to this member (leader only)
  bool removed = false;     // this member has been removed from the cluster
  bool operator==(const SoftState&) const = default;
};

enum class ReadFailure : uint8_t { none, notLeader, noQuorum };

struct ReadState {
  uint64_t requestId = 0;
  Index index = 0;  // serve the read once applied >= index (failure == none)
  ReadFailure failure = ReadFailure::none;
  MemberId leaderHint = 0;  // notLeader: where to retry
  bool operator==(const ReadState&) const = default;
};

struct Ready {
  std::optional<SoftState> softState;   // changed since the last Ready
  std::optional<HardState> hardState;   // changed since the last Ready
  std::optional<Snapshot> snapshot;     // received from the leader: persist, then restore
  std::vector<Entry> entries;           // persist (see the loop above)
  std::vector<Message> messages;        // send after persisting, except sendableBeforePersist()
  std::vector<Entry> committed;         // apply after persisting, in order
  std::vector<ReadState> readStates;
  std::optional<Membership> membership;  // adopted membership changed since the last Ready

  Term durableTerm = 0;                 // the term already on disk before this Ready

  bool empty() const {
    return !softState && !hardState && !snapshot && entries.empty() && messages.empty() &&
           committed.empty() && readStates.empty() && !membership;
  }

  // The leader's own messages (appends, heartbeats, snapshot chunks) of a term already on disk
  // may go out while this Ready persists (thesis §10.2.1): they promise nothing about the
  // leader's disk. Only if the commit index they carry covers none of this Ready's entries, though:
  // with a single voter (and learners) the leader commits at append time, and a learner must not
  // apply an entry its leader may lose in a crash. Votes and responses always wait: they promise
  // what is on disk.
  bool sendableBeforePersist(const Message& m) const {
    bool leaderMessage = m.type == MessageType::append || m.type == MessageType::heartbeat ||
                         m.type == MessageType::snapshot;
    Index firstUnsynced = entries.empty() ? UINT64_MAX : entries.front().index;
    return leaderMessage && m.term == durableTerm && m.commit < firstUnsynced && !snapshot;
  }
};

struct Position {
  Index index = 0;
  Term term = 0;
  bool operator==(const Position&) const = default;
};

// Outcomes mirror the result unions of sdk/schema/consensus.capnp. Only the fields named for a
// kind are meaningful.
struct ProposeOutcome {
  enum class Kind : uint8_t { accepted, notLeader, tooLarge };
  Kind kind = Kind::notLeader;
  Position position;     // accepted
  MemberId leaderHint = 0;  // notLeader (0 = unknown)
  uint64_t limit = 0;    // tooLarge: the limit in bytes
};

struct MembershipOutcome {
  enum class Kind : uint8_t { accepted, notLeader, unknownMember, quorumAtRisk, inProgress, invalid };
  Kind kind = Kind::notLeader;
  Position position;     // accepted: wait for this entry like a proposal
  Member member;         // accepted: the member as it will be (a fresh ID if 0 was asked)
  MemberId leaderHint = 0;  // notLeader
  std::string reason;    // quorumAtRisk, invalid
};

struct TransferOutcome {
  enum class Kind : uint8_t { started, alreadyLeader, notLeader, noCandidate };
  Kind kind = Kind::notLeader;
  MemberId target = 0;      // started
  MemberId leaderHint = 0;  // notLeader
};

struct ReadOutcome {
  enum class Kind : uint8_t { pending, notLeader };
  Kind kind = Kind::notLeader;  // pending: the answer comes as a ReadState with the same ID
  MemberId leaderHint = 0;
};

struct Status {
  MemberId id = 0;
  MemberId leader = 0;
  Term term = 0;
  Role role = Role::follower;
  Index commit = 0;
  Index applied = 0;
  Index lastIndex = 0;
  Index snapshotIndex = 0;
  std::vector<Member> members;
  uint64_t ticksSinceLeaderContact = 0;  // 0 on the leader
  bool removed = false;
};

class Core {
 public:
  explicit Core(Config config, InitialState state = {});
  // Throws std::invalid_argument (message says what to fix) for a bad config or an inconsistent
  // persisted state.
  Core(const Core&) = delete;  // one node, one core: a copy would be a second node with one ID
  Core& operator=(const Core&) = delete;
  Core(Core&&) = default;
  Core& operator=(Core&&) = default;

  void bootstrap(std::vector<Member> members);
  // A new cluster: every initial member calls this with the same list before anything else.
  // Writes entry 1 (the membership) and commits it. Requires an empty state.

  void forceNewCluster();
  // Disaster recovery after a restart: drop uncommitted entries, make this member the only
  // voter (all others become removed) and keep every committed entry.

  void tick();
  void step(Message message);
  // Any decodable message is safe: stale, misrouted, from removed members or semantically broken
  // ones are ignored (or answered with a rejection), never an exception.

  ProposeOutcome propose(std::string data);
  MembershipOutcome addMember(Member member);  // as a learner; id 0 = pick a fresh one
  MembershipOutcome promoteMember(MemberId id);
  MembershipOutcome removeMember(MemberId id);
  MembershipOutcome updateMember(Member member);  // new nodeId/address for an existing ID
  TransferOutcome transferLeadership(MemberId to);  // 0 = the most up-to-date voter
  ReadOutcome readIndex(uint64_t requestId);
  // Linearizable read (thesis §6.4): the answer is a ReadState in a later Ready. IDs are the
  // caller's; they need only be unique among this node's outstanding reads.
  void campaign();
  // Start an election now (pre-vote first when enabled); used by tests and operators.

  SnapshotMeta snapshotTaken(Index index, std::string data);
  // The shell took the state machine's snapshot as of applied index `index`. Returns the meta
  // to persist with it; compacts the in-memory log to keep logEntriesForSlowFollowers entries.

  bool hasReady() const;
  Ready ready();
  void advance(const Ready& ready);

  // Inspection (cheap, const).
  MemberId id() const { return cfg.id; }
  Term term() const { return currentTerm; }
  MemberId vote() const { return votedFor; }
  MemberId leader() const { return lead; }
  Role role() const;
  bool removed() const { return selfRemoved; }
  Index commitIndex() const { return log.committed(); }
  Index appliedIndex() const { return log.applied(); }
  Index firstIndex() const { return log.firstIndex(); }
  Index lastIndex() const { return log.lastIndex(); }
  Index snapshotIndex() const { return snapshot ? snapshot->meta.index : 0; }
  bool snapshotDue(uint64_t interval = kDefaultSnapshotInterval) const {
    return log.applied() >= snapshotIndex() + interval;
  }
  // The shell's cue to take a snapshot at appliedIndex() and call snapshotTaken().
  std::optional<Term> termAt(Index i) const { return log.term(i); }
  const RaftLog& raftLog() const { return log; }
  const Membership& membership() const { return members; }
  const Progress* progress(MemberId id) const;  // leader only; nullptr otherwise
  bool caughtUp(MemberId id) const;
  // Leader only: the member's log is within learnerCatchUpEntries of ours and it answered
  // within an election timeout, so promoting it will not stall commits.
  Status status() const;
  const Config& config() const { return cfg; }

 private:
  struct PendingRead {
    uint64_t round;  // heartbeat context that must be acknowledged by a quorum
    Index index;
    MemberId origin;
    uint64_t requestId;
    uint64_t deadline;  // tick count
  };
  struct ForwardedRead {
    uint64_t requestId;
    MemberId leader;
    uint64_t deadline;
  };
  struct IncomingSnapshot {
    MemberId from = 0;
    Term term = 0;
    SnapshotMeta meta;
    uint64_t size = 0;
    std::string data;
    bool active = false;
  };

  Config cfg;
  Rng rng;
  RaftLog log;
  Membership members;  // as of the commit index
  std::vector<std::pair<Index, Membership>> membershipHistory;
  // Adopted memberships with the index that produced them, oldest first; the first one is the
  // membership at the compaction point. snapshotTaken() looks up the one at its index.
  Index adoptedThrough = 0;  // membership entries through here are adopted

  Term currentTerm = 0;
  MemberId votedFor = 0;
  MemberId lead = 0;
  Role state = Role::follower;  // follower, preCandidate, candidate or leader
  bool selfRemoved = false;
  bool stepDownPending = false;  // leader removed itself; leave once the commit is announced
  uint32_t electionElapsed = 0;
  uint32_t heartbeatElapsed = 0;
  uint32_t randomizedElectionTimeout = 0;
  uint64_t ticks = 0;
  uint64_t ticksSinceLeader = 0;
  MemberId leadTransferee = 0;
  Index pendingConfIndex = 0;  // a membership change at this index is not yet committed
  std::vector<MemberId> votesGranted;
  std::vector<MemberId> votesRejected;

  std::vector<Progress> peers;  // leader only; sorted by id, includes self
  std::vector<Index> matchScratch;  // maybeCommit(), kept to avoid an allocation per commit
  bool needFlush = false;       // leader: appends may be due (see flushAppends)

  uint64_t readRound = 0;
  bool readHeartbeatDue = false;
  std::deque<PendingRead> pendingReads;        // leader: waiting for a quorum of acks
  std::vector<PendingRead> readsBeforeCommit;  // leader: waiting for a current-term commit
  std::vector<ForwardedRead> forwardedReads;   // follower: waiting for the leader's answer

  std::optional<Snapshot> snapshot;        // latest snapshot this node has (for followers)
  std::optional<Snapshot> pendingRestore;  // received, to hand to the shell
  IncomingSnapshot incoming;

  std::vector<Message> msgs;
  std::vector<ReadState> readStates;
  HardState lastHardState;                // as handed out in the last Ready (or loaded)
  std::optional<SoftState> lastSoftState;  // none before the first Ready: it always has one
  bool membershipDirty = true;
  bool readyOutstanding = false;

  // Roles.
  void becomeFollower(Term term, MemberId leader);
  void becomePreCandidate();
  void becomeCandidate();
  void becomeLeader();
  void resetTerm(Term term);
  void resetRandomizedElectionTimeout();
  bool promotable() const;
  void startCampaign(bool pre, bool transfer);
  size_t poll(MemberId id, bool granted, size_t& rejected);

  // Messages.
  void send(Message m);
  void stepLeader(Message& m);
  void stepCandidate(Message& m);
  void stepFollower(Message& m);
  void handleVoteRequest(const Message& m);
  void handleAppend(Message& m);
  void handleHeartbeat(const Message& m);
  void handleSnapshotChunk(Message& m);
  void handleAppendResponse(const Message& m, Progress& pr);
  void handleHeartbeatResponse(const Message& m, Progress& pr);
  void handleSnapshotResponse(const Message& m, Progress& pr);
  bool restoreSnapshot(const SnapshotMeta& meta, std::shared_ptr<const std::string> data);

  // Leader replication.
  Progress* findPeer(MemberId id);
  const Progress* findPeer(MemberId id) const;
  void resetPeers();
  void appendEntry(Entry entry);
  bool maybeCommit();
  void flushAppends();
  bool maybeSendAppend(Progress& pr, bool sendIfEmpty);
  void sendSnapshotChunks(Progress& pr);
  void sendHeartbeats();
  void sendTimeoutNow(MemberId to);
  void abortTransfer() { leadTransferee = 0; }
  bool quorumActive() const;

  // Commit and membership.
  void commitTo(Index index);
  void adoptCommittedMembership();
  void adopt(const Membership& next, Index index);
  MembershipOutcome proposeChange(MembershipChange change);
  const Membership& membershipAt(Index index) const;

  // Reads.
  void handleReadRequest(MemberId origin, uint64_t requestId);
  void startRead(PendingRead read);
  void confirmReads();
  void answerRead(const PendingRead& read, ReadFailure failure);
  void failPendingReads(ReadFailure failure);
  void releaseReadsBeforeCommit();
  bool committedInCurrentTerm() const;

  // After every input.
  void settle();
  SoftState softState() const;
};

}  // namespace swarm::raft
