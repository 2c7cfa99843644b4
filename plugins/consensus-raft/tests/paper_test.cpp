// Named cases from the Raft paper ("In Search of an Understandable Consensus Algorithm",
// extended version: §N) and Ongaro's thesis ("Consensus: Bridging Theory and Practice": thesis
// §N). Each case builds the situation the text describes on real cores (core_testnet.h) and
// checks the outcome the text promises.
#include "core_testnet.h"

#include <catch2/catch.hpp>

namespace swarm::raft {
namespace {

using testnet::Network;

Member voter(MemberId id) { return Member{id, "node-" + std::to_string(id), "127.0.0.1:" + std::to_string(id), true}; }

std::string bootstrapEntryData(std::vector<MemberId> ids) {
  MembershipChange c{ChangeKind::bootstrap, {}, {}};
  for (MemberId id : ids) c.members.push_back(voter(id));
  return encodeChange(c);
}

// A persisted state whose log has the given terms; entry 1 is the bootstrap membership.
InitialState stateWithTerms(std::vector<Term> terms, std::vector<MemberId> ids) {
  InitialState st;
  Index i = 1;
  for (Term t : terms) {
    if (i == 1) {
      st.entries.push_back(Entry{1, t, EntryType::membership, bootstrapEntryData(ids)});
    } else {
      st.entries.push_back(Entry{i, t, EntryType::normal, "i" + std::to_string(i) + "t" + std::to_string(t)});
    }
    ++i;
  }
  st.hardState = {terms.back(), 0, 1};
  st.applied = 0;
  return st;
}

void campaignUntilLeader(Network& net, MemberId id, int tries = 4) {
  for (int k = 0; k < tries && net.core(id).role() != Role::leader; ++k) {
    net.core(id).campaign();
    net.deliverAll();
  }
  REQUIRE(net.core(id).role() == Role::leader);
}

size_t countDelivered(const Network& net, MessageType type, MemberId to) {
  size_t n = 0;
  for (const Message& m : net.delivered) n += m.type == type && m.to == to;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Leader election

TEST_CASE("§5.2 a follower that hears from no leader campaigns after its timeout and wins a majority") {
  Network net({1, 2, 3});
  int t = 0;
  while (net.core(1).role() == Role::follower && t < 30) {
    net.tick(1);
    ++t;
  }
  CHECK(t >= 10);  // not before electionTicks
  CHECK(t < 20);   // randomized within [electionTicks, 2 * electionTicks)
  net.deliverAll();
  CHECK(net.core(1).role() == Role::leader);
  CHECK(net.core(1).term() == 2);
  for (MemberId id : {2, 3}) {
    CHECK(net.core(id).leader() == 1);
    CHECK(net.core(id).vote() == 1);
    CHECK(net.core(id).term() == 2);
  }
}

TEST_CASE("§5.2 randomized timeouts: ticking everyone in lockstep elects exactly one leader") {
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    INFO("seed " << seed);
    Network net({1, 2, 3, 4, 5}, {}, seed);
    int ticks = 0;
    while (net.leader() == 0 && ticks < 200) {
      net.tickAll();
      net.deliverAll();
      ++ticks;
    }
    MemberId l = net.leader();
    REQUIRE(l != 0);
    for (auto& [id, n] : net.nodes) {
      if (id == l) continue;
      CHECK(n.core->role() != Role::leader);
      CHECK(n.core->leader() == l);
    }
  }
}

TEST_CASE("§5.2 a server grants at most one vote per term, first come first served") {
  Core c([] {
    Config cfg;
    cfg.id = 3;
    cfg.checkQuorum = false;
    return cfg;
  }());
  c.bootstrap({voter(1), voter(2), voter(3)});
  c.advance(c.ready());
  auto ask = [&](MemberId from) {
    Message v;
    v.type = MessageType::vote;
    v.from = from;
    v.to = 3;
    v.term = 2;
    v.index = 1;
    v.logTerm = 1;
    c.step(v);
    Ready rd = c.ready();
    c.advance(rd);
    REQUIRE(rd.messages.size() == 1);
    return !rd.messages[0].reject;
  };
  CHECK(ask(1));
  CHECK_FALSE(ask(2));
  CHECK(ask(1));  // a repeated request from the same candidate (its first reply may be lost)
  CHECK(c.vote() == 1);
}

TEST_CASE("§5.4.1 election restriction: a candidate whose log lacks committed entries cannot win") {
  Network net({1, 2, 3}, [](Config& c) { c.checkQuorum = false; });
  net.elect(1);
  net.isolate(3);
  net.propose(1, "committed on 1 and 2 only");
  net.deliverAll();
  REQUIRE(net.core(2).commitIndex() == net.core(1).lastIndex());
  net.crash(1);
  net.heal();
  net.core(3).campaign();
  net.deliverAll();
  CHECK(net.core(3).role() != Role::leader);
  bool refused = false;
  for (const Message& m : net.delivered) {
    refused = refused || (m.from == 2 && m.to == 3 && m.type == MessageType::preVoteResponse && m.reject);
  }
  CHECK(refused);
  net.core(2).campaign();
  net.deliverAll();
  CHECK(net.core(2).role() == Role::leader);
  CHECK(net.node(3).applied.back() == "committed on 1 and 2 only");
}

// ---------------------------------------------------------------------------------------------
// Log replication

TEST_CASE("§5.3 Figure 7: a new leader brings every kind of divergent follower log in line") {
  const std::vector<Term> leaderLog = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
  const std::vector<std::pair<const char*, std::vector<Term>>> followers = {
      {"(a) missing one entry", {1, 1, 1, 4, 4, 5, 5, 6, 6}},
      {"(b) missing many entries", {1, 1, 1, 4}},
      {"(c) one extra uncommitted entry", {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6}},
      {"(d) extra entries of a later term", {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}},
      {"(e) missing entries and extra ones", {1, 1, 1, 4, 4, 4, 4}},
      {"(f) extra entries of terms 2 and 3", {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}},
  };
  for (const auto& [name, log] : followers) {
    INFO(name);
    std::map<MemberId, InitialState> states;
    states[1] = stateWithTerms(leaderLog, {1, 2, 3});
    states[1].hardState.term = 8;  // the leader of term 8 in the figure
    states[2] = stateWithTerms(log, {1, 2, 3});
    states[3] = stateWithTerms(leaderLog, {1, 2, 3});
    Network net(std::move(states));
    campaignUntilLeader(net, 1);
    net.deliverAll();
    CHECK(testnet::terms(net.core(2)) == testnet::terms(net.core(1)));
    CHECK(net.core(2).lastIndex() == leaderLog.size() + 1);  // plus the new leader's no-op
    for (Index i = 2; i <= leaderLog.size(); ++i) {
      CHECK(net.core(2).raftLog().at(i).data == net.core(1).raftLog().at(i).data);
    }
    CHECK(net.core(2).commitIndex() == net.core(1).lastIndex());
  }
}

// Figure 8, with our leaders' no-op entries: index 2 is term 2's no-op, index 3 plays the
// figure's index 2. Runs the figure's steps (a)-(d); returns what S1 committed at index 3 before
// it crashed, and what S5 committed there afterwards.
struct Figure8Outcome {
  std::optional<Term> s1CommittedAt3;
  Term finalTermAt3 = 0;
  bool s1AppliedAt3 = false;
};

Figure8Outcome runFigure8(bool buggy) {
  Network net({1, 2, 3, 4, 5}, [buggy](Config& c) {
    // The paper's algorithm, without the thesis' later additions; one entry per append.
    c.preVote = false;
    c.checkQuorum = false;
    c.maxMessageBytes = 512;
    c.testOnlyCommitPreviousTermEntries = buggy;
  });
  // (a) S1 leads term 2 and replicates index 3 to S2 only.
  net.elect(1);
  for (MemberId id : {3, 4, 5}) net.isolate(id);
  net.propose(1, std::string(380, 'A'));  // big enough that an append carries one entry
  net.deliverAll();
  REQUIRE(net.core(2).termAt(3) == Term{2});
  // (b) S1 crashes; S5 wins term 3 with S3 and S4 and writes index 3 locally only.
  net.crash(1);
  net.heal();
  net.isolate(2);
  net.dropIf = [](const Message& m) { return m.from == 5 && m.type == MessageType::append; };
  campaignUntilLeader(net, 5);
  REQUIRE(net.core(5).termAt(3) == Term{3});
  // (c) S5 crashes; S1 restarts, wins term 4 and replicates index 3 (term 2) to S3, but its own
  // term-4 entry reaches nobody: index 3 is now on a majority (S1, S2, S3).
  net.crash(5);
  net.heal();
  net.restart(1);
  net.dropIf = [&net](const Message& m) {
    if (m.type != MessageType::append) return false;
    // Probes the follower must refuse (it lacks the previous entry) may pass: they only move
    // S1 back to index 3.
    if (!net.core(m.to).termAt(m.index)) return false;
    for (const Entry& e : m.entries) {
      if (e.term == 4) return true;
    }
    return false;
  };
  campaignUntilLeader(net, 1);
  net.deliverAll();
  REQUIRE(net.core(3).termAt(3) == Term{2});
  Figure8Outcome out;
  if (net.core(1).commitIndex() >= 3) out.s1CommittedAt3 = net.core(1).termAt(3);
  for (const Entry& e : net.node(1).appliedEntries) out.s1AppliedAt3 = out.s1AppliedAt3 || e.index == 3;
  // (d) S1 crashes; S5 restarts and wins term 5 (its last term, 3, beats everyone's 2), then
  // overwrites index 3 everywhere and commits it with its own no-op.
  net.crash(1);
  net.dropIf = nullptr;
  net.restart(5);
  campaignUntilLeader(net, 5);
  net.deliverAll();
  REQUIRE(net.core(5).commitIndex() >= 4);
  out.finalTermAt3 = *net.core(5).termAt(3);
  return out;
}

TEST_CASE("§5.4.2 Figure 8: an old-term entry on a majority is not committed by counting replicas") {
  Figure8Outcome ok = runFigure8(false);
  CHECK_FALSE(ok.s1CommittedAt3.has_value());  // S1 waited for an entry of its own term
  CHECK_FALSE(ok.s1AppliedAt3);
  CHECK(ok.finalTermAt3 == 3);  // overwriting it later was therefore safe

  // With the bug (commit by counting replicas), S1 commits and applies index 3 from term 2,
  // and the cluster later commits a different entry there: state machine safety is broken.
  Figure8Outcome bad = runFigure8(true);
  REQUIRE(bad.s1CommittedAt3.has_value());
  CHECK(*bad.s1CommittedAt3 == 2);
  CHECK(bad.s1AppliedAt3);
  CHECK(bad.finalTermAt3 == 3);
}

TEST_CASE("§5.4.2 Figure 8 (e): once S1 replicates an entry of its own term, both commit") {
  Network net({1, 2, 3, 4, 5}, [](Config& c) {
    c.preVote = false;
    c.checkQuorum = false;
  });
  net.elect(1);
  for (MemberId id : {3, 4, 5}) net.isolate(id);
  net.propose(1, "A");
  net.deliverAll();
  CHECK(net.core(1).commitIndex() == 2);  // index 3 is on S1 and S2 only
  net.heal();
  net.isolate(4);
  net.isolate(5);
  net.propose(1, "B");  // term 2 is still S1's term here; replicated to S1, S2, S3
  net.deliverAll();
  CHECK(net.core(1).commitIndex() == 4);
  // S5, with a shorter log, can no longer win: the majority holds the committed entries.
  net.crash(1);
  net.heal();
  net.core(5).campaign();
  net.deliverAll();
  CHECK(net.core(5).role() != Role::leader);
}

// ---------------------------------------------------------------------------------------------
// Disruption, leases and quorum checks

TEST_CASE("thesis §9.6 pre-vote: a partitioned node that rejoins does not disrupt the leader") {
  Network net({1, 2, 3});
  net.elect(1);
  Term t = net.core(1).term();
  net.isolate(3);
  net.propose(1, "while 3 was away");
  net.tick(3, 100);  // 3 campaigns many times, but only ever pre-votes
  net.deliverAll();
  CHECK(net.core(3).term() == t);
  net.heal();
  net.tickAll(2);
  net.deliverAll();
  CHECK(net.core(1).role() == Role::leader);
  CHECK(net.core(1).term() == t);
  CHECK(net.core(3).leader() == 1);
  CHECK(net.node(3).applied.back() == "while 3 was away");

  SECTION("without pre-vote the same node deposes the leader") {
    Network bare({1, 2, 3}, [](Config& c) {
      c.preVote = false;
      c.checkQuorum = false;
    });
    bare.elect(1);
    Term before = bare.core(1).term();
    bare.isolate(3);
    bare.propose(1, "x");
    bare.deliverAll();
    bare.tick(3, 100);
    bare.deliverAll();
    CHECK(bare.core(3).term() > before + 3);
    bare.heal();
    bare.tick(3, 40);  // its next campaign reaches the others
    bare.deliverAll();
    CHECK(bare.core(1).term() > before);  // the leader had to step down
  }
}

TEST_CASE("thesis §6.2 check-quorum: a leader that cannot reach a majority steps down within an election timeout") {
  Network net({1, 2, 3});
  net.elect(1);
  Term t = net.core(1).term();
  net.isolate(1);
  int ticks = 0;
  while (net.core(1).role() == Role::leader && ticks < 100) {
    net.tick(1);
    net.deliverAll();
    ++ticks;
  }
  CHECK(ticks <= 2 * 10);
  CHECK(net.core(1).role() == Role::follower);
  CHECK(net.core(1).term() == t);
  CHECK(net.core(1).propose("x").kind == ProposeOutcome::Kind::notLeader);

  SECTION("without check-quorum it stays leader forever") {
    Network bare({1, 2, 3}, [](Config& c) { c.checkQuorum = false; });
    bare.elect(1);
    bare.isolate(1);
    bare.tick(1, 100);
    bare.deliverAll();
    CHECK(bare.core(1).role() == Role::leader);
  }
}

TEST_CASE("thesis §4.2.3 a follower in contact with its leader ignores a disruptive vote request") {
  Network net({1, 2, 3});
  net.elect(1);
  Term t = net.core(2).term();
  Message v;
  v.type = MessageType::vote;
  v.from = 3;
  v.to = 2;
  v.term = t + 10;
  v.index = 1000;
  v.logTerm = t;
  net.core(2).step(v);
  CHECK(net.core(2).term() == t);
  CHECK(net.core(2).leader() == 1);
  v.transfer = true;  // unless the leader itself asked for it
  net.core(2).step(v);
  CHECK(net.core(2).term() == t + 10);
}

// ---------------------------------------------------------------------------------------------
// Reads

TEST_CASE("thesis §6.4 ReadIndex: the leader answers after a heartbeat round confirms it still leads") {
  Network net({1, 2, 3});
  net.elect(1);
  net.propose(1, "x");
  net.deliverAll();
  Index commit = net.core(1).commitIndex();
  size_t heartbeatsBefore = countDelivered(net, MessageType::heartbeat, 2) + countDelivered(net, MessageType::heartbeat, 3);
  REQUIRE(net.core(1).readIndex(7).kind == ReadOutcome::Kind::pending);
  CHECK(net.node(1).reads.empty());
  net.deliverAll();
  REQUIRE(net.node(1).reads.size() == 1);
  CHECK(net.node(1).reads[0] == ReadState{7, commit, ReadFailure::none, 0});
  CHECK(countDelivered(net, MessageType::heartbeat, 2) + countDelivered(net, MessageType::heartbeat, 3) > heartbeatsBefore);

  SECTION("a follower forwards the read and gets the leader's commit index") {
    REQUIRE(net.core(2).readIndex(9).kind == ReadOutcome::Kind::pending);
    net.deliverAll();
    REQUIRE(net.node(2).reads.size() == 1);
    CHECK(net.node(2).reads[0] == ReadState{9, commit, ReadFailure::none, 0});
  }
  SECTION("a leader cut off from the majority never confirms; the read fails") {
    net.isolate(1);
    REQUIRE(net.core(1).readIndex(8).kind == ReadOutcome::Kind::pending);
    net.deliverAll();
    CHECK(net.node(1).reads.size() == 1);
    net.tick(1, 30);
    net.deliverAll();
    REQUIRE(net.node(1).reads.size() == 2);
    CHECK(net.node(1).reads[1].requestId == 8);
    CHECK(net.node(1).reads[1].failure != ReadFailure::none);
  }
  SECTION("a node that knows no leader refuses at once") {
    net.crash(1);
    net.tick(2, 30);
    net.isolate(2);
    net.tick(2, 30);
    net.deliverAll();
    CHECK(net.core(2).readIndex(5).kind == ReadOutcome::Kind::notLeader);
  }
}

TEST_CASE("thesis §6.4 ReadIndex: a new leader answers only after committing an entry of its term") {
  Network net({1, 2, 3}, [](Config& c) { c.checkQuorum = false; });  // no lease: 3 votes at once
  net.elect(1);
  net.propose(1, "x");
  net.deliverAll();
  net.crash(1);
  net.dropIf = [](const Message& m) { return m.type == MessageType::append; };
  campaignUntilLeader(net, 2);
  Index noop = net.core(2).lastIndex();
  REQUIRE(net.core(2).commitIndex() < noop);
  REQUIRE(net.core(2).readIndex(10).kind == ReadOutcome::Kind::pending);
  net.tick(2, 2);
  net.deliverAll();
  CHECK(net.node(2).reads.empty());
  net.dropIf = nullptr;
  net.tick(2);
  net.deliverAll();
  REQUIRE(net.node(2).reads.size() == 1);
  CHECK(net.node(2).reads[0].failure == ReadFailure::none);
  CHECK(net.node(2).reads[0].index >= noop);
}

// ---------------------------------------------------------------------------------------------
// Leadership transfer

TEST_CASE("thesis §3.10 leadership transfer: the leader catches the target up, then sends TimeoutNow") {
  Network net({1, 2, 3});
  net.elect(1);
  Term t = net.core(1).term();
  net.isolate(3);
  for (int k = 0; k < 5; ++k) net.propose(1, "p" + std::to_string(k));
  net.deliverAll();
  net.heal();
  REQUIRE(net.core(1).progress(3)->match < net.core(1).lastIndex());
  TransferOutcome out = net.core(1).transferLeadership(3);
  REQUIRE(out.kind == TransferOutcome::Kind::started);
  CHECK(out.target == 3);
  ProposeOutcome refused = net.core(1).propose("during transfer");
  CHECK(refused.kind == ProposeOutcome::Kind::notLeader);
  CHECK(refused.leaderHint == 3);
  net.deliverAll();
  CHECK(net.core(3).role() == Role::leader);
  CHECK(net.core(3).term() == t + 1);
  CHECK(net.core(1).role() == Role::follower);
  CHECK(net.node(3).applied.size() == 5);
  CHECK(countDelivered(net, MessageType::timeoutNow, 3) == 1);

  SECTION("to = 0 picks the most up-to-date voter; to = self is already done") {
    CHECK(net.core(3).transferLeadership(3).kind == TransferOutcome::Kind::alreadyLeader);
    out = net.core(3).transferLeadership(0);
    REQUIRE(out.kind == TransferOutcome::Kind::started);
    net.deliverAll();
    CHECK(net.core(out.target).role() == Role::leader);
  }
  SECTION("a follower refuses with a hint") {
    out = net.core(2).transferLeadership(1);
    CHECK(out.kind == TransferOutcome::Kind::notLeader);
    CHECK(out.leaderHint == 3);
  }
}

TEST_CASE("thesis §3.10 leadership transfer to an unreachable node times out after an election timeout") {
  Network net({1, 2, 3});
  net.elect(1);
  net.isolate(3);
  REQUIRE(net.core(1).transferLeadership(3).kind == TransferOutcome::Kind::started);
  net.deliverAll();
  CHECK(net.node(1).softStates.back().transferee == 3);
  for (int k = 0; k < 10; ++k) {
    CHECK(net.core(1).propose("refused").kind == ProposeOutcome::Kind::notLeader);
    net.tick(1);
    net.deliverAll();
  }
  CHECK(net.core(1).role() == Role::leader);
  CHECK(net.node(1).softStates.back().transferee == 0);
  CHECK(net.core(1).propose("after").kind == ProposeOutcome::Kind::accepted);
}

// ---------------------------------------------------------------------------------------------
// Snapshots

TEST_CASE("§7 a follower behind the compacted log installs the leader's snapshot sent in several chunks") {
  auto tweak = [](Config& c) {
    c.maxMessageBytes = 512;
    c.logEntriesForSlowFollowers = 2;
  };
  Network net({1, 2, 3}, tweak);
  net.elect(1);
  net.isolate(3);
  for (int k = 0; k < 40; ++k) net.propose(1, "entry-" + std::to_string(k) + std::string(30, '.'));
  net.deliverAll();
  SnapshotMeta meta = net.takeSnapshot(1);
  REQUIRE(net.core(1).firstIndex() > net.core(3).lastIndex() + 1);
  net.propose(1, "after the snapshot");
  net.deliverAll();

  bool lose = GENERATE(false, true);
  INFO((lose ? "with the second chunk lost once" : "no loss"));
  int seen = 0;
  if (lose) {
    net.dropIf = [&seen](const Message& m) {
      return m.type == MessageType::snapshot && m.chunkOffset > 0 && seen++ == 0;
    };
  }
  net.heal();
  for (int k = 0; k < 20 && net.core(3).lastIndex() < net.core(1).lastIndex(); ++k) {
    net.tick(1);
    net.deliverAll();
  }
  size_t chunks = countDelivered(net, MessageType::snapshot, 3);
  CHECK(chunks >= 3);
  for (const Message& m : net.delivered) {
    if (m.type == MessageType::snapshot) CHECK(encodedSize(m) <= 512);
  }
  CHECK(net.node(3).restoredSnapshots == 1);
  CHECK(net.core(3).snapshotIndex() == meta.index);
  CHECK(net.node(3).applied == net.node(1).applied);
  CHECK(net.core(3).lastIndex() == net.core(1).lastIndex());
  CHECK(net.core(1).progress(3)->state == ProgressState::replicate);
  if (lose) CHECK(net.dropped.size() >= 1);
  // Restarting from what the follower persisted gives the same state.
  net.crash(3);
  net.restart(3);
  net.deliverAll();
  CHECK(net.node(3).applied == net.node(1).applied);
}

// ---------------------------------------------------------------------------------------------
// Membership

TEST_CASE("thesis §4.2.2 removing the leader: it steps down once the change commits, the rest go on") {
  Network net({1, 2, 3});
  net.elect(1);
  net.propose(1, "before");
  MembershipOutcome out = net.core(1).removeMember(1);
  REQUIRE(out.kind == MembershipOutcome::Kind::accepted);
  CHECK(net.core(1).role() == Role::leader);  // still leading while the change is in flight
  net.deliverAll();
  CHECK(net.core(1).removed());
  CHECK(net.core(1).role() != Role::leader);
  CHECK(net.node(1).softStates.back().removed);
  for (int k = 0; k < 30 && net.leader() == 0; ++k) {
    net.tickAll();
    net.deliverAll();
  }
  MemberId l = net.leader();
  REQUIRE((l == 2 || l == 3));
  CHECK(net.core(l).membership().voterCount() == 2);
  CHECK(net.core(l).membership().isRemoved(1));
  net.propose(l, "after");
  net.deliverAll();
  CHECK(net.node(2).applied.back() == "after");
  CHECK(net.node(3).applied.back() == "after");
  // The removed node neither campaigns nor listens.
  Term t = net.core(1).term();
  net.tick(1, 50);
  net.deliverAll();
  CHECK(net.core(1).term() == t);
  CHECK(net.core(1).role() != Role::leader);
}

TEST_CASE("thesis §4.1 and §4.2.1 a member added during a partition joins as a learner, catches up, is promoted") {
  Network net({1, 2, 3});
  net.elect(1);
  for (int k = 0; k < 5; ++k) net.propose(1, "p" + std::to_string(k));
  net.deliverAll();
  net.isolate(3);
  net.add(4);  // a joining node: empty state, waits to be contacted
  MembershipOutcome out = net.core(1).addMember(Member{4, "node-4", "127.0.0.1:4", true});
  REQUIRE(out.kind == MembershipOutcome::Kind::accepted);
  CHECK_FALSE(out.member.voter);
  net.deliverAll();
  CHECK(net.core(1).membership().contains(4));
  CHECK(net.core(4).role() == Role::learner);
  CHECK(net.core(4).lastIndex() == net.core(1).lastIndex());
  CHECK(net.node(4).applied.size() == 5);
  // A learner does not count: the quorum is still 2 of {1, 2, 3}.
  CHECK(net.core(1).membership().quorum() == 2);
  net.tick(1);
  net.deliverAll();
  REQUIRE(net.core(1).caughtUp(4));
  out = net.core(1).promoteMember(4);
  REQUIRE(out.kind == MembershipOutcome::Kind::accepted);
  net.deliverAll();
  CHECK(net.core(4).membership().isVoter(4));
  CHECK(net.core(4).role() == Role::follower);
  // Four voters, quorum three: 1, 2 and 4 commit without 3.
  Position p = net.propose(1, "with the new voter");
  net.deliverAll();
  CHECK(net.core(1).commitIndex() >= p.index);
  net.heal();
  net.tick(1);
  net.deliverAll();
  CHECK(net.core(3).membership().isVoter(4));
  CHECK(net.node(3).applied.back() == "with the new voter");
}

TEST_CASE("thesis §4.1 one change at a time, removals that lose the quorum are refused, removed IDs stay out") {
  Network net({1, 2, 3});
  net.elect(1);
  net.tick(1);
  net.deliverAll();
  MembershipOutcome a = net.core(1).addMember(Member{4, "n4", "a4", false});
  REQUIRE(a.kind == MembershipOutcome::Kind::accepted);
  MembershipOutcome b = net.core(1).addMember(Member{5, "n5", "a5", false});
  CHECK(b.kind == MembershipOutcome::Kind::inProgress);
  net.deliverAll();

  MembershipOutcome p = net.core(1).promoteMember(4);  // 4 never answers: not caught up
  CHECK(p.kind == MembershipOutcome::Kind::quorumAtRisk);
  CHECK(p.reason.find("has not caught up") != std::string::npos);

  net.isolate(3);
  net.tick(1, 10);
  net.deliverAll();
  MembershipOutcome r = net.core(1).removeMember(2);
  CHECK(r.kind == MembershipOutcome::Kind::quorumAtRisk);
  CHECK(r.reason == "removing member 2 would leave 1 reachable voters of 2, fewer than the quorum of 2; "
                    "bring members back first");

  r = net.core(1).removeMember(4);  // a learner: never a quorum risk
  REQUIRE(r.kind == MembershipOutcome::Kind::accepted);
  net.deliverAll();
  MembershipOutcome again = net.core(1).addMember(Member{4, "n4", "a4", false});
  CHECK(again.kind == MembershipOutcome::Kind::invalid);
  CHECK(again.reason.find("never reused") != std::string::npos);
  CHECK(net.core(1).removeMember(42).kind == MembershipOutcome::Kind::unknownMember);
  CHECK(net.core(1).promoteMember(42).kind == MembershipOutcome::Kind::unknownMember);
  CHECK(net.core(2).removeMember(3).kind == MembershipOutcome::Kind::notLeader);

  MembershipOutcome fresh = net.core(1).addMember(Member{0, "n6", "a6", false});
  REQUIRE(fresh.kind == MembershipOutcome::Kind::accepted);
  CHECK(fresh.member.id != 0);
  CHECK(fresh.member.id != 4);
}

}  // namespace
}  // namespace swarm::raft
