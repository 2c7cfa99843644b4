@0xbfeae1e994c0d52c;
# Consensus: a replicated, ordered log of opaque entries (Raft in plugins/consensus-raft).
#
# The kernel owns the state machine (the store) and the network; the plugin owns the log, the
# election and membership. Flow:
#   start(config, network, machine)      once, after configure()
#   step(from, message)                  every peer message the kernel receives for this plugin
#   propose(data)                        resolves once the entry is committed and applied locally
#   machine.apply(entries)               committed entries, in order, exactly once
# Snapshots: the plugin asks machine.snapshot() for the content at an applied index, stores and
# sends it in chunks; a follower that receives one calls machine.restore().

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("swarm::schema");

using Common = import "common.capnp";
using Plugin = import "plugin.capnp";

struct Member {
  id @0 :UInt64;
  # Consensus member ID: random, never reused (removed IDs stay refused).
  nodeId @1 :Text;
  address @2 :Text;
  # host:port the kernel dials for this member.
  voter @3 :Bool;
  # false = learner: receives the log, does not vote or count for quorum.
}

enum Role {
  follower @0;
  preCandidate @1;
  candidate @2;
  leader @3;
  learner @4;
}

struct Status {
  memberId @0 :UInt64;
  leaderId @1 :UInt64;
  # 0 = no known leader.
  term @2 :UInt64;
  role @3 :Role;
  commitIndex @4 :UInt64;
  appliedIndex @5 :UInt64;
  members @6 :List(Member);
  lastLeaderContact @7 :Int64;
  # Nanoseconds since this member last heard from a leader (0 when it is the leader).
}

struct Entry {
  enum Type {
    normal @0;
    # data is a kernel payload.
    membership @1;
    # data is opaque to the kernel; the new member list comes through membershipChanged().
    empty @2;
    # A leader's no-op at the start of its term.
  }
  index @0 :UInt64;
  term @1 :UInt64;
  type @2 :Type;
  data @3 :Data;
}

struct SnapshotMeta {
  index @0 :UInt64;
  term @1 :UInt64;
  members @2 :List(Member);
  sizeBytes @3 :UInt64;
}

struct StartConfig {
  memberId @0 :UInt64;
  # This node's member ID. A joining node uses the ID the leader's addMember() returned (the
  # kernel carries it over in the join exchange); 0 is refused.
  storageDir @1 :Text;
  # A directory the plugin owns exclusively (log, snapshots).
  dataKey @2 :Data;
  # 32 bytes: everything written under storageDir is sealed with it. A wrong key must give a
  # clear error, never garbage.
  bootstrap :union {
    newCluster @3 :List(Member);
    # A fresh cluster with these initial members (this node included).
    join @4 :Void;
    # Empty log; wait to be added by the leader and catch up.
    restart @5 :Void;
    # Recover from storageDir.
    forceNewCluster @6 :Void;
    # Recover from storageDir, remove every other member and continue as a single-member
    # cluster that commits every entry it holds (committed ones and the tail it had appended).
  }
  tickMillis @7 :UInt32 = 100;
  electionTicks @8 :UInt32 = 10;
  heartbeatTicks @9 :UInt32 = 1;
  snapshotInterval @10 :UInt64 = 10000;
  # Entries applied between snapshots.
  logEntriesForSlowFollowers @11 :UInt64 = 500;
  # Entries kept after compaction.
  maxMessageBytes @12 :UInt64 = 1048576;
  # Largest message sent; bigger snapshots go in chunks.
  maxInflightMessages @13 :UInt32 = 256;
  randomSeed @14 :UInt64;
  # Seeds election jitter (0 = pick one).
}

interface PeerNetwork {
  # Host capability: best-effort delivery to other members. The kernel routes by member ID over
  # the transport plugin; a message to an unreachable member is dropped (Raft retries).
  send @0 (to :UInt64, message :Data) -> stream;
  # Must not fail: a message that cannot be delivered is dropped silently (a failed streaming
  # call breaks the whole stream in capnp). The kernel notices dead connections itself.
  setMembers @1 (members :List(Member));
  # The addresses to route to changed.
}

interface StateMachine {
  # Host capability: the kernel's store.
  apply @0 (entries :List(Entry));
  # Committed entries in index order, each exactly once per incarnation of the store. Resolves
  # once applied.
  snapshot @1 (sink :Common.ByteSink) -> (index :UInt64);
  # Writes the store's serialized content, as of applied index `index`, into sink in chunks.
  restore @2 (meta :SnapshotMeta) -> (sink :Common.ByteSink);
  # Replaces the store with a snapshot's content; the plugin writes the chunks into sink and
  # calls done(). Entries after meta.index follow through apply().
  membershipChanged @3 (members :List(Member));
  statusChanged @4 (status :Status);
  # Leader, term or role changed.
}

interface Consensus extends(Plugin.Plugin) {
  start @0 (config :StartConfig, network :PeerNetwork, machine :StateMachine) -> (status :Status);
  step @1 (from :UInt64, message :Data) -> stream;
  # A message from peer `from`. Malformed messages are refused and logged, never fatal.
  propose @2 (data :Data) -> (result :ProposeResult);
  # Resolves once `data` is committed and applied locally.
  readBarrier @3 () -> (result :ReadResult);
  # Linearizable read: resolves once this member has applied everything the leader had committed
  # when the call arrived.
  status @4 () -> (status :Status);
  addMember @5 (member :Member) -> (result :MembershipResult);
  # Adds as a learner (member.voter ignored); promote once caught up. member.id 0 = assign one.
  promoteMember @6 (id :UInt64) -> (result :MembershipResult);
  removeMember @7 (id :UInt64) -> (result :MembershipResult);
  # Refused (quorumAtRisk) when the reachable voters left would be fewer than a quorum.
  transferLeadership @8 (to :UInt64) -> (result :TransferResult);
  # to = 0: pick the most up-to-date voter.
  snapshotNow @9 () -> (meta :SnapshotMeta);
  # Take a snapshot and compact now.
  proposeBatch @10 (entries :List(Data)) -> (results :List(ProposeResult));
  # Several proposals in one call, each its own entry, appended in list order (consecutive
  # indexes when accepted together). results[i] answers entries[i] as propose() would; the call
  # resolves once every one of them is decided. A kernel coalesces concurrent writes this way to
  # cross the plugin boundary once per batch instead of once per entry.

  struct Position {
    index @0 :UInt64;
    term @1 :UInt64;
  }

  struct ProposeResult {
    union {
      committed @0 :Position;
      notLeader @1 :UInt64;
      # Leader hint (0 = unknown); propose there.
      tooLarge @2 :UInt64;
      # The limit in bytes.
      lostLeadership @3 :Void;
      # Leadership was lost before commit: the entry may or may not commit later.
    }
  }

  struct ReadResult {
    union {
      applied @0 :UInt64;
      # Safe to read local state as of this index.
      notLeader @1 :UInt64;
      noQuorum @2 :Void;
    }
  }

  struct MembershipResult {
    union {
      done @0 :Member;
      notLeader @1 :UInt64;
      unknownMember @2 :Void;
      quorumAtRisk @3 :Text;
      inProgress @4 :Void;
      # Another membership change is still in flight; retry.
      invalid @5 :Text;
      # The request can never succeed as asked (a removed ID, which is never reused; already a
      # member or voter); the text says why.
    }
  }

  struct TransferResult {
    union {
      newLeader @0 :UInt64;
      notLeader @1 :UInt64;
      noCandidate @2 :Void;
      timedOut @3 :Void;
    }
  }
}
