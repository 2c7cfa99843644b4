#include "core.h"

#include <algorithm>
#include <functional>
#include <stdexcept>

namespace swarm::raft {

namespace {

[[noreturn]] void misuse(const std::string& what) { throw std::logic_error("raft core: " + what); }

std::string num(uint64_t v) { return std::to_string(v); }

uint64_t seedFor(const Config& cfg) {
  uint64_t x = cfg.id;
  return cfg.randomSeed ^ Rng::splitmix64(x);
}

}  // namespace

const char* roleName(Role role) {
  switch (role) {
    case Role::follower: return "follower";
    case Role::preCandidate: return "preCandidate";
    case Role::candidate: return "candidate";
    case Role::leader: return "leader";
    case Role::learner: return "learner";
  }
  return "unknown";
}

std::string Config::validate() const {
  if (id == 0) return "raft config: id is 0; give this member its non-zero member ID";
  if (electionTicks == 0 || heartbeatTicks == 0) {
    return "raft config: electionTicks and heartbeatTicks must be at least 1";
  }
  if (heartbeatTicks >= electionTicks) {
    return "raft config: heartbeatTicks (" + num(heartbeatTicks) +
           ") must be smaller than electionTicks (" + num(electionTicks) + ")";
  }
  if (maxMessageBytes < 512) {
    return "raft config: maxMessageBytes (" + num(maxMessageBytes) + ") must be at least 512";
  }
  if (maxEntryBytes != 0 && maxEntryBytes > maxMessageBytes - kMessageHeaderReserve) {
    return "raft config: maxEntryBytes (" + num(maxEntryBytes) + ") must leave " +
           num(kMessageHeaderReserve) + " bytes of maxMessageBytes (" + num(maxMessageBytes) +
           ") for framing; lower it or raise maxMessageBytes";
  }
  if (maxInflightMessages == 0) return "raft config: maxInflightMessages must be at least 1";
  if (maxSnapshotChunksInFlight == 0) {
    return "raft config: maxSnapshotChunksInFlight must be at least 1";
  }
  if (maxCommittedBytesPerReady == 0) {
    return "raft config: maxCommittedBytesPerReady must be at least 1";
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Construction and recovery

Core::Core(Config config, InitialState st) : cfg(std::move(config)), rng(seedFor(cfg)) {
  std::string why = cfg.validate();
  if (!why.empty()) throw std::invalid_argument(why);

  Index snapI = 0;
  Term snapT = 0;
  if (st.snapshot) {
    snapI = st.snapshot->meta.index;
    snapT = st.snapshot->meta.term;
    if (snapI == 0 || snapT == 0) {
      throw std::invalid_argument("raft state: the persisted snapshot has index or term 0; "
                                  "the snapshot file is damaged");
    }
    if (!st.snapshot->data) st.snapshot->data = std::make_shared<const std::string>();
    members = Membership::fromSnapshot(st.snapshot->meta);
    snapshot = std::move(st.snapshot);
  }
  std::vector<Entry>& es = st.entries;
  auto firstKept = std::find_if(es.begin(), es.end(), [&](const Entry& e) { return e.index > snapI; });
  es.erase(es.begin(), firstKept);
  Term prevTerm = snapT;
  for (size_t k = 0; k < es.size(); ++k) {
    if (es[k].index != snapI + 1 + k) {
      throw std::invalid_argument("raft state: persisted entries are not contiguous after index " +
                                  num(snapI) + ": found index " + num(es[k].index) + " where " +
                                  num(snapI + 1 + k) + " was expected; the log is damaged");
    }
    if (es[k].term < prevTerm) {
      throw std::invalid_argument("raft state: entry " + num(es[k].index) + " has term " +
                                  num(es[k].term) + ", lower than the entry before it; the log "
                                  "is damaged");
    }
    prevTerm = es[k].term;
  }
  Index last = snapI + es.size();
  const HardState& hs = st.hardState;
  if (hs.commit > last) {
    throw std::invalid_argument("raft state: commit index " + num(hs.commit) +
                                " is beyond the last persisted entry " + num(last) +
                                "; entries were lost from the log");
  }
  if (hs.term < prevTerm) {
    throw std::invalid_argument("raft state: hard state term " + num(hs.term) +
                                " is below the last entry's term " + num(prevTerm));
  }
  Index commit = std::max(hs.commit, snapI);
  if (st.applied < snapI || st.applied > commit) {
    throw std::invalid_argument("raft state: applied index " + num(st.applied) +
                                " must lie between the snapshot index " + num(snapI) +
                                " and the commit index " + num(commit) +
                                "; restore the state machine from the snapshot first");
  }
  log.reset(snapI, snapT, std::move(es), commit, st.applied);
  currentTerm = hs.term;
  votedFor = hs.vote;
  lastHardState = hs;
  membershipHistory.emplace_back(snapI, members);
  adoptedThrough = snapI;
  adoptCommittedMembership();
  selfRemoved = members.isRemoved(cfg.id);
  resetRandomizedElectionTimeout();
}

void Core::bootstrap(std::vector<Member> list) {
  if (log.lastIndex() != 0 || currentTerm != 0 || !members.members.empty() || snapshot) {
    misuse("bootstrap() needs an empty state, but this node already has a log or a term");
  }
  std::sort(list.begin(), list.end(), [](const Member& a, const Member& b) { return a.id < b.id; });
  MembershipChange change{ChangeKind::bootstrap, {}, std::move(list)};
  std::string why = members.check(change);
  if (!why.empty()) throw std::invalid_argument("raft bootstrap: " + why);
  auto self = std::find_if(change.members.begin(), change.members.end(),
                           [&](const Member& m) { return m.id == cfg.id; });
  if (self == change.members.end()) {
    throw std::invalid_argument("raft bootstrap: this member (" + num(cfg.id) +
                                ") is not in the initial member list");
  }
  log.append(Entry{1, 1, EntryType::membership, encodeChange(change)});
  currentTerm = 1;
  votedFor = 0;
  commitTo(1);
}

void Core::forceNewCluster() {
  if (currentTerm == 0) misuse("forceNewCluster() needs a restarted node with a log");
  if (selfRemoved) {
    throw std::invalid_argument("raft forceNewCluster: this member (" + num(cfg.id) +
                                ") was removed from the cluster; its data cannot seed a new one");
  }
  // The whole persisted log stays, not only what the persisted commit index covers: that index
  // reaches disk a Ready after the entries, so an entry already acknowledged to a client can lie
  // past it. Any leader elected with this log would commit all of it too.
  resetTerm(currentTerm + 1);
  state = Role::follower;
  Member self{cfg.id, {}, {}, true};
  if (const Member* m = members.find(cfg.id)) self = *m;
  self.voter = true;
  MembershipChange change{ChangeKind::forceNewCluster, {}, {self}};
  log.append(Entry{log.lastIndex() + 1, currentTerm, EntryType::membership, encodeChange(change)});
  commitTo(log.lastIndex());
}

// ---------------------------------------------------------------------------------------------
// Time

void Core::tick() {
  ++ticks;
  if (state != Role::leader) ++ticksSinceLeader;
  for (size_t k = 0; k < forwardedReads.size();) {
    if (forwardedReads[k].deadline <= ticks) {
      readStates.push_back({forwardedReads[k].requestId, 0, ReadFailure::noQuorum, lead});
      forwardedReads.erase(forwardedReads.begin() + static_cast<ptrdiff_t>(k));
    } else {
      ++k;
    }
  }

  if (state != Role::leader) {
    ++electionElapsed;
    if (promotable() && electionElapsed >= randomizedElectionTimeout) {
      electionElapsed = 0;
      startCampaign(cfg.preVote, false);
    }
    settle();
    return;
  }

  ++heartbeatElapsed;
  ++electionElapsed;
  uint32_t stallLimit = std::max<uint32_t>(2, cfg.electionTicks / 2);
  for (Progress& pr : peers) {
    if (pr.id == cfg.id) continue;
    if (pr.inactiveTicks < UINT32_MAX) ++pr.inactiveTicks;
    if (pr.state == ProgressState::snapshot) {
      ++pr.snapStallTicks;
      if (pr.snapStallTicks >= 2 * cfg.electionTicks) {
        pr.becomeProbe();  // give up on this transfer; the next probe decides again
        needFlush = true;
      } else if (pr.snapStallTicks % stallLimit == 0) {
        pr.snapNext = pr.snapAcked;  // chunks or the final acknowledgement were lost
        pr.snapSentAny = false;
        needFlush = true;
      }
    }
  }
  while (!pendingReads.empty() && pendingReads.front().deadline <= ticks) {
    answerRead(pendingReads.front(), ReadFailure::noQuorum);
    pendingReads.pop_front();
  }
  for (size_t k = 0; k < readsBeforeCommit.size();) {
    if (readsBeforeCommit[k].deadline <= ticks) {
      answerRead(readsBeforeCommit[k], ReadFailure::noQuorum);
      readsBeforeCommit.erase(readsBeforeCommit.begin() + static_cast<ptrdiff_t>(k));
    } else {
      ++k;
    }
  }

  if (electionElapsed >= cfg.electionTicks) {
    electionElapsed = 0;
    if (cfg.checkQuorum && !quorumActive()) {
      // Thesis §6.2: a leader cut off from a quorum steps down so that clients go elsewhere.
      becomeFollower(currentTerm, 0);
      settle();
      return;
    }
    abortTransfer();  // a transfer gets one election timeout
  }
  if (heartbeatElapsed >= cfg.heartbeatTicks) {
    heartbeatElapsed = 0;
    sendHeartbeats();
  }
  settle();
}

void Core::resetRandomizedElectionTimeout() {
  randomizedElectionTimeout = cfg.electionTicks + static_cast<uint32_t>(rng.below(cfg.electionTicks));
}

bool Core::promotable() const { return !selfRemoved && members.isVoter(cfg.id); }

// ---------------------------------------------------------------------------------------------
// Roles

void Core::resetTerm(Term term) {
  if (currentTerm != term) {
    currentTerm = term;
    votedFor = 0;
  }
  lead = 0;
  electionElapsed = 0;
  heartbeatElapsed = 0;
  resetRandomizedElectionTimeout();
  abortTransfer();
  votesGranted.clear();
  votesRejected.clear();
}

void Core::becomeFollower(Term term, MemberId leader) {
  bool wasLeader = state == Role::leader;
  if (wasLeader) failPendingReads(ReadFailure::notLeader);
  resetTerm(term);
  state = Role::follower;
  lead = leader;
  if (leader != 0) ticksSinceLeader = 0;
  if (wasLeader) {
    peers.clear();
    needFlush = false;
    readHeartbeatDue = false;
  }
}

void Core::becomePreCandidate() {
  // No term change: a pre-vote only asks whether an election could be won (thesis §9.6).
  state = Role::preCandidate;
  lead = 0;
  electionElapsed = 0;
  votesGranted.clear();
  votesRejected.clear();
}

void Core::becomeCandidate() {
  resetTerm(currentTerm + 1);
  votedFor = cfg.id;
  state = Role::candidate;
}

void Core::becomeLeader() {
  resetTerm(currentTerm);
  state = Role::leader;
  lead = cfg.id;
  ticksSinceLeader = 0;
  resetPeers();
  pendingReads.clear();
  readsBeforeCommit.clear();
  // §5.4.2 / §8: a new leader commits an entry of its own term before anything else, which
  // also commits everything before it; membership changes wait for it too (thesis §4.1 fix).
  appendEntry(Entry{0, 0, EntryType::empty, {}});
  pendingConfIndex = log.lastIndex();
  needFlush = true;
}

void Core::resetPeers() {
  peers.clear();
  for (const Member& m : members.members) {
    Progress pr(m.id, cfg.maxInflightMessages);
    pr.next = log.lastIndex() + 1;
    // Unknown until heard from: removal and promotion checks stay conservative, and a leader
    // nobody answers steps down at its first quorum check.
    pr.inactiveTicks = cfg.electionTicks;
    if (m.id == cfg.id) {
      pr.match = log.lastIndex();
      pr.inactiveTicks = 0;
    }
    peers.push_back(std::move(pr));
  }
}

void Core::startCampaign(bool pre, bool transfer) {
  if (!promotable() || state == Role::leader) return;
  if (pre) {
    becomePreCandidate();
  } else {
    becomeCandidate();
  }
  Term voteTerm = pre ? currentTerm + 1 : currentTerm;
  size_t rejected = 0;
  if (poll(cfg.id, true, rejected) >= members.quorum()) {
    if (pre) {
      startCampaign(false, transfer);
    } else {
      becomeLeader();
    }
    return;
  }
  for (MemberId v : members.voters()) {
    if (v == cfg.id) continue;
    Message m;
    m.type = pre ? MessageType::preVote : MessageType::vote;
    m.to = v;
    m.term = voteTerm;
    m.index = log.lastIndex();
    m.logTerm = log.lastTerm();
    m.transfer = transfer;
    send(std::move(m));
  }
}

size_t Core::poll(MemberId id, bool granted, size_t& rejected) {
  if (members.isVoter(id) &&
      std::find(votesGranted.begin(), votesGranted.end(), id) == votesGranted.end() &&
      std::find(votesRejected.begin(), votesRejected.end(), id) == votesRejected.end()) {
    (granted ? votesGranted : votesRejected).push_back(id);
  }
  rejected = votesRejected.size();
  return votesGranted.size();
}

void Core::campaign() {
  if (state != Role::leader) startCampaign(cfg.preVote, false);
  settle();
}

Role Core::role() const {
  if (state == Role::follower && !members.isVoter(cfg.id)) return Role::learner;
  return state;
}

// ---------------------------------------------------------------------------------------------
// Messages

void Core::send(Message m) {
  m.from = cfg.id;
  msgs.push_back(std::move(m));
}

void Core::step(Message m) {
  if (m.to != cfg.id || m.from == 0 || m.from == cfg.id) return;
  if (selfRemoved || members.isRemoved(m.from)) return;
  // No real cluster gets near 2^62 terms or entries; refusing such values keeps every `+ 1`
  // below from wrapping around.
  constexpr uint64_t kAbsurd = 1ULL << 62;
  if (m.term >= kAbsurd || m.logTerm >= kAbsurd || m.index >= kAbsurd || m.commit >= kAbsurd ||
      m.rejectHint >= kAbsurd || m.snapshot.index >= kAbsurd || m.snapshot.term >= kAbsurd ||
      m.entries.size() >= kAbsurd) {
    return;
  }
  if (m.type == MessageType::append) {
    // decode() guarantees contiguous entries; a hand-built message might not. A leader never
    // sends entries of a term later than its own, nor terms that go down.
    Term prev = m.logTerm;
    for (size_t k = 0; k < m.entries.size(); ++k) {
      const Entry& e = m.entries[k];
      if (e.index != m.index + 1 + k || e.term > m.term || e.term < prev) return;
      prev = e.term;
    }
  }
  if (m.type == MessageType::snapshot &&
      (m.chunkOffset > m.snapshotSize || m.chunk.size() > m.snapshotSize - m.chunkOffset)) {
    return;
  }

  if (m.term == 0) {
    if (m.type != MessageType::readIndex) return;  // only a forwarded read travels without a term
  } else if (m.term > currentTerm) {
    if (m.type == MessageType::vote || m.type == MessageType::preVote) {
      // Thesis §4.2.3: while we hear from a leader, a higher-term candidate is a disruption
      // (a removed or partitioned server), unless the leader itself asked for it (transfer).
      bool inLease = cfg.checkQuorum && lead != 0 && electionElapsed < cfg.electionTicks;
      if (!m.transfer && inLease) return;
    }
    if (m.type == MessageType::preVote) {
      // A pre-vote never changes our term.
    } else if (m.type == MessageType::preVoteResponse && !m.reject) {
      // Granted for the term we would campaign in; the term moves only if we win.
    } else if (m.type == MessageType::append || m.type == MessageType::heartbeat ||
               m.type == MessageType::snapshot) {
      becomeFollower(m.term, m.from);
    } else {
      becomeFollower(m.term, 0);
    }
  } else if (m.term < currentTerm) {
    if (m.type == MessageType::heartbeat || m.type == MessageType::append) {
      // §5.1: reject a stale request with our term, so a stale leader learns it and steps
      // down. Unlike etcd we always answer: a node whose term rose while it was away may hold
      // an old membership and send its vote requests only to former members, so its votes
      // cannot be counted on to reach, and depose, the current leader.
      Message r;
      r.type = MessageType::appendResponse;
      r.to = m.from;
      r.term = currentTerm;
      send(std::move(r));
    } else if (m.type == MessageType::preVote) {
      Message r;
      r.type = MessageType::preVoteResponse;
      r.to = m.from;
      r.term = currentTerm;
      r.reject = true;
      send(std::move(r));
    }
    settle();
    return;
  }

  if (m.type == MessageType::vote || m.type == MessageType::preVote) {
    handleVoteRequest(m);
  } else if (state == Role::leader) {
    stepLeader(m);
  } else if (state == Role::candidate || state == Role::preCandidate) {
    stepCandidate(m);
  } else {
    stepFollower(m);
  }
  settle();
}

void Core::handleVoteRequest(const Message& m) {
  bool canVote = votedFor == m.from || (votedFor == 0 && lead == 0) ||
                 (m.type == MessageType::preVote && m.term > currentTerm);
  Message r;
  r.type = m.type == MessageType::vote ? MessageType::voteResponse : MessageType::preVoteResponse;
  r.to = m.from;
  if (canVote && log.isUpToDate(m.index, m.logTerm)) {
    r.term = m.term;
    if (m.type == MessageType::vote) {
      electionElapsed = 0;
      votedFor = m.from;
    }
  } else {
    r.term = currentTerm;
    r.reject = true;
  }
  send(std::move(r));
}

void Core::stepLeader(Message& m) {
  if (m.type == MessageType::readIndex) {
    handleReadRequest(m.from, m.context);
    return;
  }
  if (m.type != MessageType::appendResponse && m.type != MessageType::heartbeatResponse &&
      m.type != MessageType::snapshotResponse) {
    return;
  }
  Progress* pr = findPeer(m.from);
  if (pr == nullptr) return;
  pr->inactiveTicks = 0;
  switch (m.type) {
    case MessageType::appendResponse: handleAppendResponse(m, *pr); break;
    case MessageType::heartbeatResponse: handleHeartbeatResponse(m, *pr); break;
    default: handleSnapshotResponse(m, *pr); break;
  }
}

void Core::handleAppendResponse(const Message& m, Progress& pr) {
  if (m.index > log.lastIndex()) return;  // acknowledges what we never sent
  if (m.reject) {
    Index nextProbe = m.rejectHint;
    if (m.logTerm > 0) nextProbe = log.findConflictByTerm(m.rejectHint, m.logTerm).first;
    if (pr.maybeDecrTo(m.index, nextProbe)) {
      if (pr.state == ProgressState::replicate) pr.becomeProbe();
      needFlush = true;
    }
    return;
  }
  bool updated = pr.maybeUpdate(m.index);
  if (!updated && !(pr.match == m.index && pr.state == ProgressState::probe)) return;
  if (pr.state == ProgressState::probe) {
    pr.becomeReplicate();
  } else if (pr.state == ProgressState::snapshot && pr.match + 1 >= log.firstIndex()) {
    pr.becomeProbe();
    pr.becomeReplicate();
  } else if (pr.state == ProgressState::replicate) {
    pr.inflights.freeLE(m.index);
  }
  maybeCommit();
  needFlush = true;
  if (m.from == leadTransferee && pr.match == log.lastIndex()) sendTimeoutNow(m.from);
}

void Core::handleHeartbeatResponse(const Message& m, Progress& pr) {
  pr.probeSent = false;
  if (pr.state == ProgressState::replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
  if (pr.match < log.lastIndex() && pr.state != ProgressState::snapshot) {
    pr.forceSend = true;
    needFlush = true;
  }
  if (m.context > pr.readAck) {
    pr.readAck = m.context;
    confirmReads();
  }
}

void Core::handleSnapshotResponse(const Message& m, Progress& pr) {
  if (pr.state != ProgressState::snapshot || m.index != pr.pendingSnapshot || !pr.snapData) return;
  uint64_t total = pr.snapData->size();
  uint64_t at = std::min<uint64_t>(m.context, total);
  if (m.reject) {
    // The follower has exactly `at` bytes in order (maybe fewer than we thought: it restarted).
    pr.snapAcked = at;
    pr.snapNext = at;
    pr.snapSentAny = false;
  } else if (at > pr.snapAcked) {
    pr.snapAcked = at;
    pr.snapStallTicks = 0;
    pr.snapNext = std::max(pr.snapNext, at);
  }
  needFlush = true;
}

void Core::stepCandidate(Message& m) {
  switch (m.type) {
    case MessageType::append:
      becomeFollower(m.term, m.from);
      handleAppend(m);
      return;
    case MessageType::heartbeat:
      becomeFollower(m.term, m.from);
      handleHeartbeat(m);
      return;
    case MessageType::snapshot:
      becomeFollower(m.term, m.from);
      handleSnapshotChunk(m);
      return;
    case MessageType::voteResponse:
    case MessageType::preVoteResponse: {
      bool pre = state == Role::preCandidate;
      if (m.type != (pre ? MessageType::preVoteResponse : MessageType::voteResponse)) return;
      size_t rejected = 0;
      size_t granted = poll(m.from, !m.reject, rejected);
      if (granted >= members.quorum()) {
        if (pre) {
          startCampaign(false, false);
        } else {
          becomeLeader();
        }
      } else if (rejected >= members.quorum()) {
        becomeFollower(currentTerm, 0);
      }
      return;
    }
    default:
      stepFollower(m);  // read answers and refusals are the same as for a follower
      return;
  }
}

void Core::stepFollower(Message& m) {
  switch (m.type) {
    case MessageType::append:
      electionElapsed = 0;
      ticksSinceLeader = 0;
      lead = m.from;
      handleAppend(m);
      return;
    case MessageType::heartbeat:
      electionElapsed = 0;
      ticksSinceLeader = 0;
      lead = m.from;
      handleHeartbeat(m);
      return;
    case MessageType::snapshot:
      electionElapsed = 0;
      ticksSinceLeader = 0;
      lead = m.from;
      handleSnapshotChunk(m);
      return;
    case MessageType::timeoutNow:
      if (state == Role::follower) startCampaign(false, true);  // thesis §3.10
      return;
    case MessageType::readIndex: {
      Message r;
      r.type = MessageType::readIndexResponse;
      r.to = m.from;
      r.term = currentTerm;
      r.context = m.context;
      r.reject = true;
      send(std::move(r));
      return;
    }
    case MessageType::readIndexResponse: {
      auto it = std::find_if(forwardedReads.begin(), forwardedReads.end(), [&](const ForwardedRead& f) {
        return f.requestId == m.context && f.leader == m.from;
      });
      if (it == forwardedReads.end()) return;  // timed out already, or a duplicate
      if (m.reject) {
        readStates.push_back({it->requestId, 0, ReadFailure::notLeader, lead});
      } else {
        readStates.push_back({it->requestId, m.index, ReadFailure::none, 0});
      }
      forwardedReads.erase(it);
      return;
    }
    default:
      return;
  }
}

void Core::handleAppend(Message& m) {
  Message r;
  r.type = MessageType::appendResponse;
  r.to = m.from;
  r.term = currentTerm;
  if (m.index < log.committed()) {
    r.index = log.committed();
    send(std::move(r));
    return;
  }
  Index lastNew = 0;
  Index prevIndex = m.index;
  Term prevTerm = m.logTerm;
  switch (log.maybeAppend(prevIndex, prevTerm, std::move(m.entries), lastNew)) {
    case RaftLog::AppendResult::appended:
      commitTo(std::min(m.commit, lastNew));
      r.index = lastNew;
      break;
    case RaftLog::AppendResult::conflictsWithCommitted:
      return;  // a correct leader never overwrites committed entries: drop it
    case RaftLog::AppendResult::mismatch: {
      auto [hintIndex, hintTerm] = log.findConflictByTerm(std::min(prevIndex, log.lastIndex()), prevTerm);
      r.index = prevIndex;
      r.reject = true;
      r.rejectHint = hintIndex;
      r.logTerm = hintTerm;
      break;
    }
  }
  send(std::move(r));
}

void Core::handleHeartbeat(const Message& m) {
  commitTo(m.commit);
  Message r;
  r.type = MessageType::heartbeatResponse;
  r.to = m.from;
  r.term = currentTerm;
  r.context = m.context;
  send(std::move(r));
}

void Core::handleSnapshotChunk(Message& m) {
  const SnapshotMeta& meta = m.snapshot;
  Message r;
  r.to = m.from;
  r.term = currentTerm;
  if (meta.index <= log.committed()) {
    incoming = {};
    r.type = MessageType::appendResponse;
    r.index = log.committed();
    send(std::move(r));
    return;
  }
  r.type = MessageType::snapshotResponse;
  r.index = meta.index;
  bool same = incoming.active && incoming.from == m.from && incoming.term == m.term &&
              incoming.meta.index == meta.index && incoming.meta.term == meta.term &&
              incoming.size == m.snapshotSize;
  if (!same) {
    if (m.chunkOffset != 0) {
      r.reject = true;
      r.context = 0;
      send(std::move(r));
      return;
    }
    incoming = {};
    incoming.from = m.from;
    incoming.term = m.term;
    incoming.meta = meta;
    incoming.size = m.snapshotSize;
    incoming.active = true;
  }
  uint64_t have = incoming.data.size();
  if (m.chunkOffset > have) {
    r.reject = true;  // a gap: a chunk was lost or overtaken
    r.context = have;
    send(std::move(r));
    return;
  }
  uint64_t end = m.chunkOffset + m.chunk.size();
  if (end > have) incoming.data.append(m.chunk, have - m.chunkOffset);
  if (incoming.data.size() < incoming.size) {
    r.context = incoming.data.size();
    send(std::move(r));
    return;
  }
  auto data = std::make_shared<const std::string>(std::move(incoming.data));
  SnapshotMeta done = std::move(incoming.meta);
  incoming = {};
  bool restored = restoreSnapshot(done, std::move(data));
  r.type = MessageType::appendResponse;
  r.index = restored ? log.lastIndex() : log.committed();
  send(std::move(r));
}

bool Core::restoreSnapshot(const SnapshotMeta& meta, std::shared_ptr<const std::string> data) {
  if (meta.index <= log.committed()) return false;
  if (log.matchTerm(meta.index, meta.term)) {
    // Our log already has it (§7): just learn that it is committed.
    commitTo(meta.index);
    return false;
  }
  Membership next = Membership::fromSnapshot(meta);
  if (next.voterCount() == 0) return false;  // no valid cluster has no voter: ignore it
  log.restore(meta.index, meta.term);
  members = std::move(next);
  membershipHistory.clear();
  membershipHistory.emplace_back(meta.index, members);
  adoptedThrough = meta.index;
  membershipDirty = true;
  selfRemoved = members.isRemoved(cfg.id);
  snapshot = Snapshot{meta, std::move(data)};
  pendingRestore = snapshot;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Leader replication

Progress* Core::findPeer(MemberId id) {
  for (Progress& pr : peers) {
    if (pr.id == id) return &pr;
  }
  return nullptr;
}

const Progress* Core::findPeer(MemberId id) const {
  for (const Progress& pr : peers) {
    if (pr.id == id) return &pr;
  }
  return nullptr;
}

const Progress* Core::progress(MemberId id) const {
  return state == Role::leader ? findPeer(id) : nullptr;
}

void Core::appendEntry(Entry entry) {
  entry.index = log.lastIndex() + 1;
  entry.term = currentTerm;
  log.append(std::move(entry));
  if (Progress* self = findPeer(cfg.id)) self->maybeUpdate(log.lastIndex());
  needFlush = true;
  maybeCommit();
}

bool Core::maybeCommit() {
  bool advanced = false;
  std::vector<Index>& matches = matchScratch;
  for (;;) {
    matches.clear();
    // The leader's own copy counts once it is on disk: its appends may leave before its write
    // (Ready::sendableBeforePersist), and a commit index must never cover an entry a crash can
    // take from the majority. A lone voter counts at once: its entries and their commit are
    // persisted by the same Ready, before anything acts on that commit.
    bool loneVoter = members.voterCount() == 1;
    for (const Member& m : members.members) {
      if (!m.voter) continue;
      const Progress* pr = findPeer(m.id);
      Index match = pr ? pr->match : 0;
      if (m.id == cfg.id && !loneVoter) match = std::min(match, log.stable());
      matches.push_back(match);
    }
    if (matches.empty()) break;
    Index idx = quorumIndex(matches);
    if (idx <= log.committed()) break;
    // §5.4.2: only an entry of the leader's own term is committed by counting replicas.
    if (!cfg.testOnlyCommitPreviousTermEntries && log.term(idx) != currentTerm) break;
    commitTo(idx);  // may adopt a membership change, which changes the voters: go again
    advanced = true;
    if (state != Role::leader) break;
  }
  if (advanced) {
    needFlush = true;
    releaseReadsBeforeCommit();
  }
  return advanced;
}

void Core::flushAppends() {
  needFlush = false;
  if (state != Role::leader) return;
  for (Progress& pr : peers) {
    if (pr.id == cfg.id) continue;
    if (pr.state == ProgressState::snapshot) {
      sendSnapshotChunks(pr);
      continue;
    }
    bool canBumpCommit = pr.sentCommit < std::min(log.committed(), pr.next - 1);
    bool sendIfEmpty = pr.forceSend || canBumpCommit;
    while (maybeSendAppend(pr, sendIfEmpty)) {
      sendIfEmpty = false;
      pr.forceSend = false;
    }
  }
}

bool Core::maybeSendAppend(Progress& pr, bool sendIfEmpty) {
  if (pr.paused()) return false;
  Index prevIndex = pr.next - 1;
  std::optional<Term> prevTerm = log.term(prevIndex);
  if (!prevTerm) {
    // What the follower needs next was compacted away (§7): it gets the snapshot.
    if (!snapshot) return false;  // cannot happen: the log is compacted only after a snapshot
    pr.becomeSnapshot(snapshot->meta.index);
    pr.snapData = snapshot->data;
    pr.snapMeta = snapshot->meta;
    sendSnapshotChunks(pr);
    return false;
  }
  Message m;
  m.type = MessageType::append;
  m.to = pr.id;
  m.term = currentTerm;
  m.index = prevIndex;
  m.logTerm = *prevTerm;
  m.commit = log.committed();
  log.copyEntries(pr.next, log.lastIndex(), cfg.maxMessageBytes - kMessageHeaderReserve, m.entries);
  if (m.entries.empty() && !sendIfEmpty) return false;
  pr.sentCommit = std::max(pr.sentCommit, m.commit);
  if (!m.entries.empty()) {
    pr.sentEntries(m.entries.back().index);
  } else if (pr.state == ProgressState::probe) {
    pr.probeSent = true;
  }
  send(std::move(m));
  return true;
}

void Core::sendSnapshotChunks(Progress& pr) {
  if (!pr.snapData) {
    pr.becomeProbe();
    return;
  }
  const std::string& data = *pr.snapData;
  uint64_t total = data.size();
  Message header;
  header.type = MessageType::snapshot;
  header.to = pr.id;
  header.term = currentTerm;
  header.snapshot = pr.snapMeta;
  header.snapshotSize = total;
  header.chunkOffset = total;  // the largest value it will carry, for the size estimate
  size_t headerBytes = encodedSize(header) + 10;  // + the chunk's length varint
  uint64_t chunkSize = cfg.maxMessageBytes > headerBytes + 64 ? cfg.maxMessageBytes - headerBytes : 64;
  uint64_t window = chunkSize * cfg.maxSnapshotChunksInFlight;
  while ((pr.snapNext < total || (total == 0 && !pr.snapSentAny)) &&
         pr.snapNext - pr.snapAcked < window) {
    uint64_t len = std::min(chunkSize, total - pr.snapNext);
    Message m = header;
    m.chunkOffset = pr.snapNext;
    m.chunk.assign(data, pr.snapNext, len);
    m.lastChunk = pr.snapNext + len == total;
    pr.snapNext += len;
    pr.snapSentAny = true;
    send(std::move(m));
    if (total == 0) break;
  }
}

void Core::sendHeartbeats() {
  readHeartbeatDue = false;
  for (const Progress& pr : peers) {
    if (pr.id == cfg.id) continue;
    Message m;
    m.type = MessageType::heartbeat;
    m.to = pr.id;
    m.term = currentTerm;
    m.commit = std::min(pr.match, log.committed());
    m.context = readRound;
    send(std::move(m));
  }
}

void Core::sendTimeoutNow(MemberId to) {
  Message m;
  m.type = MessageType::timeoutNow;
  m.to = to;
  m.term = currentTerm;
  send(std::move(m));
}

bool Core::quorumActive() const {
  size_t active = 0;
  for (const Member& m : members.members) {
    if (!m.voter) continue;
    if (m.id == cfg.id) {
      ++active;
    } else if (const Progress* pr = findPeer(m.id); pr && pr->inactiveTicks < cfg.electionTicks) {
      ++active;
    }
  }
  return active >= members.quorum();
}

// ---------------------------------------------------------------------------------------------
// Commit and membership

void Core::commitTo(Index index) {
  Index before = log.committed();
  log.commitTo(index);
  if (log.committed() > before) adoptCommittedMembership();
}

void Core::adoptCommittedMembership() {
  // Changes take effect when committed, identically on every node (membership.h).
  while (adoptedThrough < log.committed()) {
    Index i = std::max(adoptedThrough, log.snapIndex()) + 1;
    adoptedThrough = i;
    if (i > log.lastIndex()) break;
    const Entry& e = log.at(i);
    if (e.type != EntryType::membership) continue;
    std::string error;
    auto change = decodeChange(e.data, error);
    if (!change) continue;  // same bytes on every node: skipped everywhere alike
    Membership next = members;
    if (!next.apply(*change).empty()) continue;
    adopt(next, i);
  }
}

void Core::adopt(const Membership& next, Index index) {
  members = next;
  membershipHistory.emplace_back(index, members);
  membershipDirty = true;
  if (members.isRemoved(cfg.id) && !selfRemoved) {
    selfRemoved = true;
    if (state == Role::leader) stepDownPending = true;  // see settle()
  }
  if (state != Role::leader) return;
  for (const Member& m : members.members) {
    if (findPeer(m.id) != nullptr) continue;
    Progress pr(m.id, cfg.maxInflightMessages);
    pr.next = log.lastIndex() + 1;
    pr.inactiveTicks = cfg.electionTicks;
    peers.push_back(std::move(pr));
  }
  std::erase_if(peers, [&](const Progress& pr) { return !members.contains(pr.id); });
  std::sort(peers.begin(), peers.end(), [](const Progress& a, const Progress& b) { return a.id < b.id; });
  if (leadTransferee != 0 && !members.isVoter(leadTransferee)) abortTransfer();
  needFlush = true;
}

const Membership& Core::membershipAt(Index index) const {
  const Membership* found = &membershipHistory.front().second;
  for (const auto& [at, m] : membershipHistory) {
    if (at > index) break;
    found = &m;
  }
  return *found;
}

MembershipOutcome Core::proposeChange(MembershipChange change) {
  MembershipOutcome out;
  if (state != Role::leader || selfRemoved) {
    out.kind = MembershipOutcome::Kind::notLeader;
    out.leaderHint = state == Role::leader ? 0 : lead;
    return out;
  }
  if (leadTransferee != 0) {
    out.kind = MembershipOutcome::Kind::notLeader;
    out.leaderHint = leadTransferee;
    return out;
  }
  if (pendingConfIndex > log.committed()) {
    out.kind = MembershipOutcome::Kind::inProgress;
    return out;
  }
  MemberId id = change.member.id;
  std::string why = members.check(change);
  if (!why.empty()) {
    bool unknown = change.kind != ChangeKind::addLearner && !members.contains(id);
    out.kind = unknown ? MembershipOutcome::Kind::unknownMember : MembershipOutcome::Kind::invalid;
    out.reason = why;
    return out;
  }
  if (change.kind == ChangeKind::promote && !caughtUp(id)) {
    const Progress* pr = findPeer(id);
    out.kind = MembershipOutcome::Kind::quorumAtRisk;
    out.reason = "learner " + num(id) + " has not caught up (it has " + num(pr ? pr->match : 0) +
                 " of " + num(log.lastIndex()) + " entries); promote it once it has";
    return out;
  }
  if (change.kind == ChangeKind::remove && members.isVoter(id)) {
    // Refuse when the voters left that we can reach would be fewer than their quorum.
    size_t left = 0, reachable = 0;
    for (const Member& m : members.members) {
      if (!m.voter || m.id == id) continue;
      ++left;
      const Progress* pr = findPeer(m.id);
      if (m.id == cfg.id || (pr && pr->inactiveTicks < cfg.electionTicks)) ++reachable;
    }
    size_t quorum = left / 2 + 1;
    if (reachable < quorum) {
      out.kind = MembershipOutcome::Kind::quorumAtRisk;
      out.reason = "removing member " + num(id) + " would leave " + num(reachable) +
                   " reachable voters of " + num(left) + ", fewer than the quorum of " +
                   num(quorum) + "; bring members back first";
      return out;
    }
  }
  Member result = change.member;
  if (const Member* existing = members.find(id)) {
    Member copy = *existing;
    if (change.kind == ChangeKind::promote) copy.voter = true;
    if (change.kind == ChangeKind::update) {
      copy.nodeId = change.member.nodeId;
      copy.address = change.member.address;
    }
    result = copy;
  } else {
    result.voter = false;
  }
  appendEntry(Entry{0, 0, EntryType::membership, encodeChange(change)});
  pendingConfIndex = log.lastIndex();
  out.kind = MembershipOutcome::Kind::accepted;
  out.position = {log.lastIndex(), currentTerm};
  out.member = result;
  settle();
  return out;
}

MembershipOutcome Core::addMember(Member member) {
  if (state == Role::leader && member.id == 0) {
    do {
      member.id = rng.next();
    } while (member.id == 0 || members.contains(member.id) || members.isRemoved(member.id));
  }
  return proposeChange(MembershipChange{ChangeKind::addLearner, std::move(member), {}});
}

MembershipOutcome Core::promoteMember(MemberId id) {
  return proposeChange(MembershipChange{ChangeKind::promote, Member{id, {}, {}, true}, {}});
}

MembershipOutcome Core::removeMember(MemberId id) {
  return proposeChange(MembershipChange{ChangeKind::remove, Member{id, {}, {}, false}, {}});
}

MembershipOutcome Core::updateMember(Member member) {
  return proposeChange(MembershipChange{ChangeKind::update, std::move(member), {}});
}

bool Core::caughtUp(MemberId id) const {
  if (state != Role::leader) return false;
  const Progress* pr = findPeer(id);
  return pr != nullptr && pr->state == ProgressState::replicate &&
         pr->match + cfg.learnerCatchUpEntries >= log.lastIndex() &&
         pr->inactiveTicks < cfg.electionTicks;
}

// ---------------------------------------------------------------------------------------------
// Client requests

ProposeOutcome Core::propose(std::string data) {
  ProposeOutcome out;
  if (state != Role::leader || selfRemoved) {
    out.kind = ProposeOutcome::Kind::notLeader;
    out.leaderHint = state == Role::leader ? 0 : lead;
    return out;
  }
  if (leadTransferee != 0) {
    // Thesis §3.10: stop taking requests while handing over; the target is the place to retry.
    out.kind = ProposeOutcome::Kind::notLeader;
    out.leaderHint = leadTransferee;
    return out;
  }
  if (data.size() > cfg.entryLimit()) {
    out.kind = ProposeOutcome::Kind::tooLarge;
    out.limit = cfg.entryLimit();
    return out;
  }
  appendEntry(Entry{0, 0, EntryType::normal, std::move(data)});
  out.kind = ProposeOutcome::Kind::accepted;
  out.position = {log.lastIndex(), currentTerm};
  settle();
  return out;
}

TransferOutcome Core::transferLeadership(MemberId to) {
  TransferOutcome out;
  if (state != Role::leader || selfRemoved) {
    out.kind = TransferOutcome::Kind::notLeader;
    out.leaderHint = state == Role::leader ? 0 : lead;
    return out;
  }
  if (to == 0) {
    const Progress* best = nullptr;
    for (const Progress& pr : peers) {
      if (pr.id == cfg.id || !members.isVoter(pr.id)) continue;
      if (best == nullptr || pr.match > best->match) best = &pr;
    }
    if (best == nullptr) {
      out.kind = TransferOutcome::Kind::noCandidate;
      return out;
    }
    to = best->id;
  }
  if (to == cfg.id) {
    out.kind = TransferOutcome::Kind::alreadyLeader;
    out.target = to;
    return out;
  }
  if (!members.isVoter(to)) {
    out.kind = TransferOutcome::Kind::noCandidate;
    return out;
  }
  out.kind = TransferOutcome::Kind::started;
  out.target = to;
  if (leadTransferee == to) return out;
  leadTransferee = to;
  electionElapsed = 0;  // the transfer gets one election timeout
  Progress* pr = findPeer(to);
  if (pr != nullptr && pr->match == log.lastIndex()) {
    sendTimeoutNow(to);
  } else if (pr != nullptr) {
    // Catch it up first (its acknowledgement triggers timeoutNow); probe now rather than at
    // the next heartbeat, the transfer has only one election timeout.
    pr->probeSent = false;
    pr->forceSend = true;
    needFlush = true;
  }
  settle();
  return out;
}

ReadOutcome Core::readIndex(uint64_t requestId) {
  ReadOutcome out;
  if (state == Role::leader && !selfRemoved) {
    handleReadRequest(cfg.id, requestId);
    out.kind = ReadOutcome::Kind::pending;
    settle();
    return out;
  }
  if (lead == 0 || selfRemoved || state != Role::follower) {
    out.kind = ReadOutcome::Kind::notLeader;
    out.leaderHint = lead;
    return out;
  }
  Message m;
  m.type = MessageType::readIndex;
  m.to = lead;
  m.term = 0;
  m.context = requestId;
  send(std::move(m));
  forwardedReads.push_back({requestId, lead, ticks + 2 * cfg.electionTicks});
  out.kind = ReadOutcome::Kind::pending;
  return out;
}

// ---------------------------------------------------------------------------------------------
// ReadIndex (thesis §6.4)

bool Core::committedInCurrentTerm() const { return log.term(log.committed()) == currentTerm; }

void Core::handleReadRequest(MemberId origin, uint64_t requestId) {
  PendingRead read{0, 0, origin, requestId, ticks + 2 * cfg.electionTicks};
  if (!committedInCurrentTerm()) {
    // Until its no-op commits, a new leader does not know the latest commit index.
    readsBeforeCommit.push_back(read);
    return;
  }
  startRead(read);
}

void Core::startRead(PendingRead read) {
  read.index = log.committed();
  if (members.quorum() == 1 && members.isVoter(cfg.id)) {
    answerRead(read, ReadFailure::none);
    return;
  }
  read.round = ++readRound;
  pendingReads.push_back(read);
  readHeartbeatDue = true;  // one heartbeat round per Ready confirms every read queued so far
}

void Core::confirmReads() {
  while (!pendingReads.empty()) {
    const PendingRead& read = pendingReads.front();
    size_t acks = 0;
    for (const Member& m : members.members) {
      if (!m.voter) continue;
      const Progress* pr = findPeer(m.id);
      if (m.id == cfg.id || (pr && pr->readAck >= read.round)) ++acks;
    }
    if (acks < members.quorum()) return;
    answerRead(read, ReadFailure::none);
    pendingReads.pop_front();
  }
}

void Core::answerRead(const PendingRead& read, ReadFailure failure) {
  if (read.origin == cfg.id) {
    readStates.push_back({read.requestId, failure == ReadFailure::none ? read.index : 0, failure,
                          failure == ReadFailure::notLeader ? lead : 0});
    return;
  }
  Message m;
  m.type = MessageType::readIndexResponse;
  m.to = read.origin;
  m.term = currentTerm;
  m.index = read.index;
  m.context = read.requestId;
  m.reject = failure != ReadFailure::none;
  send(std::move(m));
}

void Core::failPendingReads(ReadFailure failure) {
  for (const PendingRead& read : pendingReads) answerRead(read, failure);
  for (const PendingRead& read : readsBeforeCommit) answerRead(read, failure);
  pendingReads.clear();
  readsBeforeCommit.clear();
}

void Core::releaseReadsBeforeCommit() {
  if (readsBeforeCommit.empty() || !committedInCurrentTerm()) return;
  std::vector<PendingRead> waiting;
  waiting.swap(readsBeforeCommit);
  for (PendingRead& read : waiting) startRead(read);
}

// ---------------------------------------------------------------------------------------------
// Snapshots

SnapshotMeta Core::snapshotTaken(Index index, std::string data) {
  if (index > log.applied()) {
    misuse("snapshotTaken(" + num(index) + ") is beyond the applied index " + num(log.applied()));
  }
  if (snapshot && index <= snapshot->meta.index) return snapshot->meta;
  std::optional<Term> t = log.term(index);
  if (!t) misuse("snapshotTaken(" + num(index) + ") names a compacted index");
  SnapshotMeta meta;
  meta.index = index;
  meta.term = *t;
  membershipAt(index).toSnapshot(meta);
  snapshot = Snapshot{meta, std::make_shared<const std::string>(std::move(data))};
  Index keep = cfg.logEntriesForSlowFollowers;
  Index compactTo = index > keep ? index - keep : 0;
  if (compactTo > log.snapIndex()) {
    log.compactTo(compactTo);
    // Keep the membership in force at the new compaction point and everything after it.
    size_t firstNeeded = 0;
    for (size_t k = 0; k < membershipHistory.size(); ++k) {
      if (membershipHistory[k].first <= compactTo) firstNeeded = k;
    }
    membershipHistory.erase(membershipHistory.begin(),
                            membershipHistory.begin() + static_cast<ptrdiff_t>(firstNeeded));
  }
  return meta;
}

// ---------------------------------------------------------------------------------------------
// Ready

void Core::settle() {
  if (stepDownPending && state == Role::leader) {
    // Thesis §4.2.2: a leader that removed itself steps down once the change is committed.
    // First tell everyone about the commit, and let the most up-to-date voter left take over.
    stepDownPending = false;
    sendHeartbeats();
    flushAppends();
    const Progress* best = nullptr;
    for (const Progress& pr : peers) {
      if (pr.id == cfg.id || !members.isVoter(pr.id)) continue;
      if (best == nullptr || pr.match > best->match) best = &pr;
    }
    MemberId successor = best != nullptr && best->match == log.lastIndex() ? best->id : 0;
    if (successor != 0) sendTimeoutNow(successor);
    becomeFollower(currentTerm, 0);
  }
}

SoftState Core::softState() const {
  return SoftState{lead, role(), state == Role::leader ? leadTransferee : 0, selfRemoved};
}

bool Core::hasReady() const {
  if (readyOutstanding) return false;
  if (state == Role::leader && (needFlush || readHeartbeatDue)) return true;
  if (!msgs.empty() || !readStates.empty() || pendingRestore || membershipDirty) return true;
  if (log.stable() < log.lastIndex() || log.applying() < log.committed()) return true;
  if (HardState{currentTerm, votedFor, log.committed()} != lastHardState) return true;
  return !lastSoftState || softState() != *lastSoftState;
}

Ready Core::ready() {
  if (readyOutstanding) misuse("ready() called again before advance() of the previous Ready");
  if (state == Role::leader) {
    if (needFlush) flushAppends();
    if (readHeartbeatDue) sendHeartbeats();
  }
  needFlush = false;
  readHeartbeatDue = false;

  Ready rd;
  SoftState ss = softState();
  if (!lastSoftState || ss != *lastSoftState) {
    rd.softState = ss;
    lastSoftState = ss;
  }
  HardState hs{currentTerm, votedFor, log.committed()};
  rd.durableTerm = lastHardState.term;
  if (hs != lastHardState) {
    rd.hardState = hs;
    lastHardState = hs;
  }
  if (pendingRestore) rd.snapshot = *pendingRestore;
  std::span<const Entry> unstable = log.view(log.stable() + 1, log.lastIndex());
  rd.entries.assign(unstable.begin(), unstable.end());
  rd.messages.swap(msgs);

  Index applyFrom = log.applying() + 1;
  if (rd.snapshot) applyFrom = std::max(applyFrom, rd.snapshot->meta.index + 1);
  if (applyFrom < log.firstIndex() && applyFrom <= log.committed()) {
    misuse("entries " + num(applyFrom) + ".. are due for apply but were compacted (bug)");
  }
  size_t bytes = 0;
  for (const Entry& e : log.view(applyFrom, log.committed())) {
    if (!rd.committed.empty() && bytes + e.data.size() > cfg.maxCommittedBytesPerReady) break;
    bytes += e.data.size();
    rd.committed.push_back(e);
  }
  if (!rd.committed.empty()) {
    log.applyingTo(rd.committed.back().index);
  } else if (rd.snapshot) {
    log.applyingTo(std::max(log.applying(), rd.snapshot->meta.index));
  }
  rd.readStates.swap(readStates);
  if (membershipDirty) {
    rd.membership = members;
    membershipDirty = false;
  }
  readyOutstanding = true;
  return rd;
}

void Core::advance(const Ready& rd) {
  if (!readyOutstanding) misuse("advance() without an outstanding Ready");
  readyOutstanding = false;
  if (rd.snapshot) {
    log.appliedTo(rd.snapshot->meta.index);
    if (pendingRestore && pendingRestore->meta.index == rd.snapshot->meta.index) {
      pendingRestore.reset();
    }
  }
  // The last handed-out entry still in our log (a step() may have replaced a suffix since):
  // by log matching, everything up to it is what the shell persisted.
  for (auto it = rd.entries.rbegin(); it != rd.entries.rend(); ++it) {
    if (log.matchTerm(it->index, it->term)) {
      log.stableTo(it->index, it->term);
      break;
    }
  }
  if (!rd.committed.empty()) log.appliedTo(rd.committed.back().index);
  // Followers may have acknowledged these entries while the leader's own write ran.
  if (state == Role::leader && !rd.entries.empty()) maybeCommit();
}

Status Core::status() const {
  Status s;
  s.id = cfg.id;
  s.leader = lead;
  s.term = currentTerm;
  s.role = role();
  s.commit = log.committed();
  s.applied = log.applied();
  s.lastIndex = log.lastIndex();
  s.snapshotIndex = snapshotIndex();
  s.members = members.members;
  s.ticksSinceLeaderContact = state == Role::leader ? 0 : ticksSinceLeader;
  s.removed = selfRemoved;
  return s;
}

}  // namespace swarm::raft
