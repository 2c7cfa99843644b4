// Deterministic simulation of a Raft cluster built from real cores (src/raft), for the sim_*
// tests. One seed fixes everything: message drops, delays (hence reordering), duplicates,
// symmetric and asymmetric partitions, crashes and restarts, disk latency, client traffic and
// membership changes. The I/O shell is modelled precisely:
//   - a node's disk is exactly what it handed back through advance(): a Ready is "taken", then
//     "synced" a little later (persist, send, restore, apply, advance); a crash in between loses
//     it, together with the state machine (rebuilt on restart from the snapshot plus replay);
//   - every message crosses the wire as encode()d bytes and is decode()d on arrival.
// After every event the checker verifies: election safety (one leader per term), log matching
// (an (index, term) pair always names the same entry with the same predecessor term), leader
// completeness (a new leader holds every entry known committed), state machine safety (one
// entry per index across all commits and applies, applied in order, restored snapshots equal
// the committed prefix), no entry duplicated by the log itself (each client attempt commits at
// most once), ReadIndex linearizability (a read returns an index covering every write
// acknowledged before it started) and, at the end, after healing, that the cluster converges
// and every acknowledged proposal is applied exactly once on every member.
#pragma once

#include <cstdint>
#include <string>

namespace swarm::raft::sim {

struct Options {
  uint64_t seed = 1;
  size_t voters = 3;
  bool membershipSchedule = false;  // add learners, promote, remove (leader too) while faulting
  size_t maxJoiners = 3;
  uint32_t faultTicks = 300;  // raft ticks of chaos
  uint32_t healTicks = 400;   // then at most this long, with no faults, to converge
  double dropRate = 0.05;
  double dupRate = 0.03;
  uint32_t maxDelay = 120;  // message delay in sub-tick units (a tick is 100 units)
  uint32_t maxDiskDelay = 40;
  double crashPerTick = 0.015;
  double leaderCrashPerTick = 0;  // extra crashes aimed at the current leader
  double ambushNewLeaders = 0;    // chance that a new leader is cut off or crashed within ~1 tick,
                                  // leaving its first entries on a minority (Figure 8 material)
  double partitionPerTick = 0.025;
  double healPerTick = 0.03;
  size_t clients = 3;
  size_t readers = 1;
  uint32_t maxPadding = 200;  // proposal payload padding, so batches split at maxMessageBytes
  uint64_t maxMessageBytes = 700;
  uint64_t snapshotInterval = 30;  // applied entries between snapshots, per node
  uint64_t logEntriesForSlowFollowers = 4;
  bool commitPreviousTermBug = false;  // Config::testOnlyCommitPreviousTermEntries
  bool preVote = true;
  bool checkQuorum = true;
  uint32_t maxRestartTicks = 25;  // a crashed node comes back after 1..this many ticks
};

struct Stats {
  uint64_t events = 0;
  uint64_t messages = 0;
  uint64_t acked = 0;
  uint64_t reads = 0;
  uint64_t leaders = 0;
  uint64_t crashes = 0;
  uint64_t snapshotsRestored = 0;
  uint64_t membershipChanges = 0;     // committed
  uint64_t changesDuringPartition = 0;  // committed, proposed while some link was cut
  uint64_t leaderRemovals = 0;        // committed removals of the leader that proposed them
  uint64_t lostReadies = 0;           // crashes that lost a Ready not yet synced
  uint64_t oldTermCommits = 0;        // a leader's commit index landed on an older term's entry
};

struct Result {
  bool ok = true;
  bool safety = false;   // the failure broke a safety property (not just liveness)
  std::string failure;   // one line
  std::string trace;     // the last events before the failure, one per line
  Stats stats;
};

Result run(const Options& options);

}  // namespace swarm::raft::sim
