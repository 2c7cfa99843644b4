// What a leader knows about each follower's log, and how it paces replication to it.
//
//            +----- append rejected ------+
//            v                            |
//   probe --(append accepted)--> replicate
//     ^  \                                |
//     |   +-- next compacted --> snapshot |
//     +-- snapshot delivered or stalled --+   (replicate -> snapshot also when next is compacted)
//
// probe:     one append per heartbeat interval until the follower's match is found (§5.3).
// replicate: optimistic; next moves past what was sent, limited to maxInflight unacknowledged
//            messages (the window slides on acknowledgement, a heartbeat response frees one slot
//            so that a lost window cannot stall forever).
// snapshot:  the follower needs the snapshot; chunks go out in a small window and are resent from
//            the last acknowledged offset when no progress is seen for a while.
#pragma once

#include "types.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace swarm::raft {

Index quorumIndex(std::span<Index> voterMatches);
// The largest index stored on a majority of the voters, given each voter's match (reordered in
// place). 0 for no voters.

class Inflights {
  // A ring of the last index of each unacknowledged append message, oldest first.
 public:
  explicit Inflights(size_t capacity = 1) : ring(capacity == 0 ? 1 : capacity) {}
  bool full() const { return count == ring.size(); }
  size_t size() const { return count; }
  void add(Index last);
  void freeLE(Index index);  // acknowledged through index
  void freeFirstOne();
  void reset() { start = count = 0; }

 private:
  std::vector<Index> ring;
  size_t start = 0;
  size_t count = 0;
};

enum class ProgressState : uint8_t { probe, replicate, snapshot };
const char* progressStateName(ProgressState state);

struct Progress {
  MemberId id = 0;
  Index match = 0;  // highest index known to be replicated on the follower
  Index next = 1;   // next index to send. Invariant: match < next
  ProgressState state = ProgressState::probe;
  bool probeSent = false;    // probe: an append is outstanding; wait for a reply or a heartbeat
  bool forceSend = false;    // send an append even if empty (to detect lost appends)
  Index sentCommit = 0;      // highest commit index sent; an empty append can raise it
  uint32_t inactiveTicks = 0;  // ticks since the follower was last heard from
  uint64_t readAck = 0;        // highest read-index round (heartbeat context) acknowledged
  Inflights inflights;

  // Snapshot state: the snapshot pinned for this follower and how far its chunks have gone.
  Index pendingSnapshot = 0;
  std::shared_ptr<const std::string> snapData;  // shared with Core::snapshot (see core.h)
  SnapshotMeta snapMeta;
  uint64_t snapAcked = 0;  // bytes the follower confirmed, in order
  uint64_t snapNext = 0;   // next byte to send
  bool snapSentAny = false;
  uint32_t snapStallTicks = 0;

  explicit Progress(MemberId member = 0, size_t maxInflight = 1) : id(member), inflights(maxInflight) {}

  bool paused() const;
  bool maybeUpdate(Index n);
  // An acknowledgement of n: raises match (and next past it). False if it is old news.
  bool maybeDecrTo(Index rejected, Index matchHint);
  // A rejection of the append after `rejected`; false if stale. Moves next back to probe.
  void becomeProbe();
  void becomeReplicate();
  void becomeSnapshot(Index snapshotIndex);
  void sentEntries(Index last);  // an append carrying entries through `last` went out
};

}  // namespace swarm::raft
