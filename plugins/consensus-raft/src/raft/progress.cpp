#include "progress.h"

#include <algorithm>
#include <functional>

namespace swarm::raft {

Index quorumIndex(std::span<Index> voterMatches) {
  if (voterMatches.empty()) return 0;
  // The (n/2+1)-th largest match: that many voters have at least it.
  size_t k = voterMatches.size() / 2;
  std::nth_element(voterMatches.begin(), voterMatches.begin() + static_cast<ptrdiff_t>(k),
                   voterMatches.end(), std::greater<Index>());
  return voterMatches[k];
}

void Inflights::add(Index last) {
  if (full()) return;  // callers check paused(); a heartbeat may have freed one slot already
  ring[(start + count) % ring.size()] = last;
  ++count;
}

void Inflights::freeLE(Index index) {
  while (count > 0 && ring[start] <= index) {
    start = (start + 1) % ring.size();
    --count;
  }
  if (count == 0) start = 0;
}

void Inflights::freeFirstOne() {
  if (count == 0) return;
  start = (start + 1) % ring.size();
  --count;
}

const char* progressStateName(ProgressState state) {
  switch (state) {
    case ProgressState::probe: return "probe";
    case ProgressState::replicate: return "replicate";
    case ProgressState::snapshot: return "snapshot";
  }
  return "unknown";
}

bool Progress::paused() const {
  switch (state) {
    case ProgressState::probe: return probeSent;
    case ProgressState::replicate: return inflights.full();
    case ProgressState::snapshot: return true;
  }
  return true;
}

bool Progress::maybeUpdate(Index n) {
  if (n <= match) return false;
  match = n;
  next = std::max(next, n + 1);
  probeSent = false;
  return true;
}

bool Progress::maybeDecrTo(Index rejected, Index matchHint) {
  if (state == ProgressState::replicate) {
    // Stale if we already know the follower has `rejected`.
    if (rejected <= match) return false;
    next = match + 1;
    return true;
  }
  // Probes go one at a time, so only a rejection of the latest probe counts.
  if (next - 1 != rejected) return false;
  next = std::max(std::min(rejected, matchHint + 1), match + 1);
  probeSent = false;
  return true;
}

void Progress::becomeProbe() {
  if (state == ProgressState::snapshot) {
    next = std::max(match + 1, pendingSnapshot + 1);
  } else {
    next = match + 1;
  }
  state = ProgressState::probe;
  probeSent = false;
  pendingSnapshot = 0;
  snapData.reset();
  inflights.reset();
}

void Progress::becomeReplicate() {
  state = ProgressState::replicate;
  next = match + 1;
  probeSent = false;
  pendingSnapshot = 0;
  snapData.reset();
  inflights.reset();
}

void Progress::becomeSnapshot(Index snapshotIndex) {
  state = ProgressState::snapshot;
  pendingSnapshot = snapshotIndex;
  probeSent = false;
  inflights.reset();
  snapAcked = snapNext = 0;
  snapSentAny = false;
  snapStallTicks = 0;
}

void Progress::sentEntries(Index last) {
  if (state == ProgressState::replicate) {
    next = last + 1;
    inflights.add(last);
  } else if (state == ProgressState::probe) {
    probeSent = true;
  }
}

}  // namespace swarm::raft
