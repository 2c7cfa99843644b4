// The core's API contract: config and state validation, outcomes as values, the Ready/advance
// rules, restart, batching and flow control, determinism by seed.
#include "core_testnet.h"

#include <catch2/catch.hpp>

namespace swarm::raft {
namespace {

using testnet::Network;

Config configFor(MemberId id) {
  Config c;
  c.id = id;
  c.randomSeed = 7;
  return c;
}

TEST_CASE("a bad config is refused with what to fix") {
  auto refusal = [](Config c) {
    try {
      Core core(c);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  Config c = configFor(1);
  c.id = 0;
  CHECK(refusal(c).find("id is 0") != std::string::npos);
  c = configFor(1);
  c.heartbeatTicks = 10;
  CHECK(refusal(c).find("heartbeatTicks (10) must be smaller than electionTicks (10)") != std::string::npos);
  c = configFor(1);
  c.maxMessageBytes = 100;
  CHECK(refusal(c).find("maxMessageBytes (100) must be at least 512") != std::string::npos);
  c = configFor(1);
  c.maxEntryBytes = c.maxMessageBytes;
  CHECK(refusal(c).find("lower it or raise maxMessageBytes") != std::string::npos);
  CHECK(refusal(configFor(1)).empty());
}

TEST_CASE("an inconsistent persisted state is refused with what is wrong") {
  auto refusal = [](InitialState st) {
    try {
      Core core(configFor(1), std::move(st));
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  InitialState gap;
  gap.hardState = {2, 0, 1};
  gap.entries = {Entry{1, 1, EntryType::normal, "a"}, Entry{3, 1, EntryType::normal, "c"}};
  CHECK(refusal(gap).find("not contiguous after index 0: found index 3 where 2 was expected") !=
        std::string::npos);

  InitialState lost;
  lost.hardState = {2, 0, 5};
  lost.entries = {Entry{1, 1, EntryType::normal, "a"}};
  CHECK(refusal(lost).find("commit index 5 is beyond the last persisted entry 1") != std::string::npos);

  InitialState applied;
  applied.hardState = {2, 0, 1};
  applied.snapshot = Snapshot{SnapshotMeta{4, 1, {Member{1, "", "", true}}, {}}, nullptr};
  applied.applied = 2;
  CHECK(refusal(applied).find("restore the state machine from the snapshot first") != std::string::npos);

  InitialState terms;
  terms.hardState = {1, 0, 0};
  terms.entries = {Entry{1, 3, EntryType::normal, "a"}};
  CHECK(refusal(terms).find("hard state term 1 is below the last entry's term 3") != std::string::npos);
}

TEST_CASE("a single-node cluster commits at once, entries and their commit share one Ready") {
  Core core(configFor(1));
  core.bootstrap({Member{1, "n1", "a", true}});
  Ready rd = core.ready();
  REQUIRE(rd.entries.size() == 1);
  CHECK(rd.entries[0].type == EntryType::membership);
  REQUIRE(rd.committed.size() == 1);
  REQUIRE(rd.hardState);
  CHECK(rd.hardState->commit == 1);
  REQUIRE(rd.membership);
  CHECK(rd.membership->voterCount() == 1);
  REQUIRE(rd.softState);
  core.advance(rd);

  core.campaign();
  CHECK(core.role() == Role::leader);
  ProposeOutcome out = core.propose("x");
  REQUIRE(out.kind == ProposeOutcome::Kind::accepted);
  CHECK(out.position == Position{3, 2});  // after entry 1 and the leader's no-op at 2
  rd = core.ready();
  CHECK(rd.entries.size() == 2);
  REQUIRE(rd.committed.size() == 2);
  CHECK(rd.committed.back().data == "x");
  CHECK(rd.messages.empty());
  core.advance(rd);
  CHECK(core.appliedIndex() == 3);
  CHECK_FALSE(core.hasReady());
}

TEST_CASE("a leader's appends may leave before its disk write, unless their commit covers it") {
  // Three voters: the append carrying a new entry may go out at once (thesis §10.2.1).
  Network net({1, 2, 3});
  net.elect(1);
  net.core(1).propose("x");
  Ready rd = net.core(1).ready();
  REQUIRE(rd.entries.size() == 1);
  size_t early = 0;
  for (const Message& m : rd.messages) {
    if (m.type == MessageType::append) {
      CHECK(rd.sendableBeforePersist(m));
      ++early;
    }
  }
  CHECK(early == 2);
  net.core(1).advance(rd);

  // One voter and a learner: the leader commits at append time, so the append telling the
  // learner so must wait until the leader's disk has the entry.
  std::vector<Member> members{Member{1, "n1", "a", true}, Member{2, "n2", "b", false}};
  Core core(configFor(1));
  Core learner(configFor(2));
  core.bootstrap(members);
  learner.bootstrap(members);
  core.campaign();
  REQUIRE(core.role() == Role::leader);
  auto pump = [](Core& from, Core& to) {
    if (!from.hasReady()) return false;
    Ready r = from.ready();
    for (const Message& m : r.messages) to.step(m);
    from.advance(r);
    return true;
  };
  for (int round = 0; round < 20 && (pump(core, learner) | pump(learner, core)); ++round) {
  }
  REQUIRE(learner.appliedIndex() == core.appliedIndex());
  REQUIRE(core.propose("y").kind == ProposeOutcome::Kind::accepted);
  rd = core.ready();
  REQUIRE(rd.entries.size() == 1);
  REQUIRE(rd.hardState);
  CHECK(rd.hardState->commit == rd.entries[0].index);
  bool sawAppend = false;
  for (const Message& m : rd.messages) {
    if (m.type != MessageType::append || m.to != 2) continue;
    sawAppend = true;
    CHECK(m.commit >= rd.entries[0].index);
    CHECK_FALSE(rd.sendableBeforePersist(m));
  }
  CHECK(sawAppend);

  // Votes and responses always wait for the disk.
  Message vote;
  vote.type = MessageType::voteResponse;
  vote.term = rd.durableTerm;
  CHECK_FALSE(rd.sendableBeforePersist(vote));
}

TEST_CASE("propose outcomes: notLeader with a hint, tooLarge with the limit, accepted") {
  Network net({1, 2, 3});
  net.elect(1);
  ProposeOutcome out = net.core(2).propose("x");
  CHECK(out.kind == ProposeOutcome::Kind::notLeader);
  CHECK(out.leaderHint == 1);

  uint64_t limit = net.core(1).config().entryLimit();
  out = net.core(1).propose(std::string(limit + 1, 'x'));
  CHECK(out.kind == ProposeOutcome::Kind::tooLarge);
  CHECK(out.limit == limit);

  out = net.core(1).propose(std::string(limit, 'x'));  // exactly the limit fits in one message
  REQUIRE(out.kind == ProposeOutcome::Kind::accepted);
  net.deliverAll();
  for (MemberId id : {1, 2, 3}) {
    CHECK(net.core(id).commitIndex() >= out.position.index);
    CHECK(net.core(id).termAt(out.position.index) == out.position.term);
    CHECK(net.node(id).applied.back().size() == limit);
  }
  for (const Message& m : net.delivered) CHECK(encodedSize(m) <= net.core(1).config().maxMessageBytes);
}

TEST_CASE("ready() and advance() must alternate") {
  Core core(configFor(1));
  core.bootstrap({Member{1, "", "", true}});
  CHECK_THROWS_AS(core.advance(Ready{}), std::logic_error);
  Ready rd = core.ready();
  CHECK_FALSE(core.hasReady());
  CHECK_THROWS_AS(core.ready(), std::logic_error);
  core.advance(rd);
}

TEST_CASE("a step between ready() and advance() that replaces handed-out entries re-emits them") {
  // Node 2 follows leader 1 (term 2) and gets entries 3..4; before it persists them, a new
  // leader 3 (term 3) replaces entry 4. Acknowledging the old Ready must not mark the new
  // entry 4 as persisted.
  Config c = configFor(2);
  Core f(c);
  f.bootstrap({Member{1, "", "", true}, Member{2, "", "", true}, Member{3, "", "", true}});
  f.advance(f.ready());
  Message app;
  app.type = MessageType::append;
  app.from = 1;
  app.to = 2;
  app.term = 2;
  app.index = 1;
  app.logTerm = 1;
  app.entries = {Entry{2, 2, EntryType::empty, ""}, Entry{3, 2, EntryType::normal, "a"},
                 Entry{4, 2, EntryType::normal, "b"}};
  f.step(app);
  Ready rd = f.ready();
  REQUIRE(rd.entries.size() == 3);
  REQUIRE(rd.messages.size() == 1);
  CHECK(rd.messages[0].index == 4);  // the acknowledgement waits in this Ready until persisted

  Message app2;
  app2.type = MessageType::append;
  app2.from = 3;
  app2.to = 2;
  app2.term = 3;
  app2.index = 3;
  app2.logTerm = 2;
  app2.entries = {Entry{4, 3, EntryType::empty, ""}};
  f.step(app2);
  f.advance(rd);
  CHECK(f.raftLog().stable() == 3);
  Ready rd2 = f.ready();
  REQUIRE(rd2.entries.size() == 1);
  CHECK(rd2.entries[0].index == 4);
  CHECK(rd2.entries[0].term == 3);
  f.advance(rd2);
  CHECK(f.raftLog().stable() == 4);
}

TEST_CASE("restart replays committed entries after the applied index, once each") {
  Network net({1, 2, 3});
  net.elect(1);
  for (int k = 0; k < 5; ++k) net.propose(1, "p" + std::to_string(k));
  net.deliverAll();
  std::vector<std::string> before = net.node(2).applied;
  REQUIRE(before.size() == 5);
  net.crash(2);
  net.restart(2);
  CHECK(net.core(2).appliedIndex() == 0);
  net.deliverAll();
  CHECK(net.node(2).applied == before);
  CHECK(net.core(2).term() == net.core(1).term());
  CHECK(net.core(2).vote() == 1);  // the vote survived the restart
  CHECK(net.core(2).membership().voterCount() == 3);  // replayed from the log
}

TEST_CASE("a crash loses only what was not handed back through advance()") {
  Network net({1, 2, 3});
  net.elect(1);
  net.propose(1, "durable");
  net.deliverAll();
  // The leader takes a Ready with a new entry but crashes before persisting it.
  net.propose(1, "lost");
  Ready rd = net.core(1).ready();
  REQUIRE(rd.entries.size() == 1);
  net.crash(1);
  net.restart(1);
  CHECK(net.core(1).lastIndex() == rd.entries[0].index - 1);
  net.deliverAll();
  CHECK(net.node(1).applied == std::vector<std::string>{"durable"});
}

TEST_CASE("forceNewCluster keeps the whole log and makes this node the only voter") {
  Network net({1, 2, 3});
  net.elect(1);
  net.propose(1, "kept");
  net.deliverAll();
  net.isolate(1);
  net.propose(1, "uncommitted");
  net.deliverAll();
  net.crash(1);
  net.crash(2);
  net.crash(3);
  net.restart(1);
  net.core(1).forceNewCluster();
  net.deliverAll();
  const Membership& m = net.core(1).membership();
  CHECK(m.members.size() == 1);
  CHECK(m.isRemoved(2));
  CHECK(m.isRemoved(3));
  net.tick(1, 25);
  net.deliverAll();
  CHECK(net.core(1).role() == Role::leader);
  // The tail it had appended commits too: its commit index may have lagged an acknowledged entry.
  CHECK(net.node(1).applied == std::vector<std::string>{"kept", "uncommitted"});
  net.propose(1, "after");
  net.deliverAll();
  CHECK(net.node(1).applied.back() == "after");
}

TEST_CASE("the same seed gives the same election timing, another member ID does not") {
  auto firstCampaignTick = [](MemberId id, uint64_t seed) {
    Config c = configFor(id);
    c.randomSeed = seed;
    Core core(c);
    core.bootstrap({Member{id, "", "", true}, Member{id + 1, "", "", true}, Member{id + 2, "", "", true}});
    for (int t = 1; t < 100; ++t) {
      core.tick();
      if (core.role() == Role::preCandidate) return t;
    }
    return -1;
  };
  for (uint64_t seed = 1; seed < 20; ++seed) {
    int t = firstCampaignTick(1, seed);
    CHECK(t >= 10);
    CHECK(t < 20);
    CHECK(firstCampaignTick(1, seed) == t);
  }
  bool differs = false;
  for (uint64_t seed = 1; seed < 20; ++seed) differs = differs || firstCampaignTick(1, seed) != firstCampaignTick(2, seed);
  CHECK(differs);
}

TEST_CASE("proposals between two Readies go out as one batched append per follower") {
  Network net({1, 2, 3}, [](Config& c) { c.maxMessageBytes = 4096; });
  net.elect(1);
  for (int k = 0; k < 20; ++k) net.propose(1, std::string(64, 'a' + k % 26));
  Ready rd = net.core(1).ready();
  size_t appends = 0;
  for (const Message& m : rd.messages) {
    if (m.type != MessageType::append) continue;
    ++appends;
    CHECK(m.entries.size() == 20);
  }
  CHECK(appends == 2);
  net.core(1).advance(rd);

  // With 64-byte entries and a 512-byte budget the same batch needs several messages; in
  // replicate state they are pipelined up to maxInflightMessages.
  Network small({1, 2, 3}, [](Config& c) {
    c.maxMessageBytes = 512;
    c.maxInflightMessages = 2;
  });
  small.elect(1);
  for (int k = 0; k < 40; ++k) small.propose(1, std::string(64, 'x'));
  rd = small.core(1).ready();
  size_t toTwo = 0;
  for (const Message& m : rd.messages) {
    if (m.type != MessageType::append || m.to != 2) continue;
    ++toTwo;
    CHECK(encodedSize(m) <= 512);
  }
  CHECK(toTwo == 2);  // the window is full until acknowledgements arrive
  small.node(1).disk.persist(rd);
  for (Message& m : rd.messages) small.queue.push_back(std::move(m));
  small.core(1).advance(rd);
  small.deliverAll();
  for (MemberId id : {1, 2, 3}) CHECK(small.node(id).applied.size() == 40);
}

TEST_CASE("a follower in probe state gets one append until it answers") {
  Network net({1, 2, 3});
  net.elect(1);
  net.isolate(3);
  for (int k = 0; k < 3; ++k) net.propose(1, "x");
  net.deliverAll();
  const Progress* pr = net.core(1).progress(3);
  REQUIRE(pr != nullptr);
  // Appends to 3 were lost; the heartbeat response path is the only way back. Heartbeats go out
  // every tick but the probe stays single.
  net.heal();
  net.dropIf = [](const Message& m) { return m.to == 3 && m.type == MessageType::append; };
  net.tick(1, 3);
  net.deliverAll();
  net.dropIf = nullptr;
  net.tick(1);
  net.deliverAll();
  CHECK(net.core(3).lastIndex() == net.core(1).lastIndex());
  CHECK(net.core(1).progress(3)->state == ProgressState::replicate);
}

TEST_CASE("messages from removed members are ignored") {
  Network net({1, 2, 3});
  net.elect(1);
  auto out = net.core(1).removeMember(3);
  REQUIRE(out.kind == MembershipOutcome::Kind::accepted);
  net.deliverAll();
  REQUIRE(net.core(2).membership().isRemoved(3));
  Term before = net.core(2).term();
  Message vote;
  vote.type = MessageType::vote;
  vote.from = 3;
  vote.to = 2;
  vote.term = before + 5;
  vote.index = 1000;
  vote.logTerm = 1000;
  net.core(2).step(vote);
  CHECK(net.core(2).term() == before);
  CHECK_FALSE(net.core(2).hasReady());
}

TEST_CASE("snapshotTaken compacts but keeps logEntriesForSlowFollowers entries") {
  Network net({1, 2, 3}, [](Config& c) { c.logEntriesForSlowFollowers = 5; });
  net.elect(1);
  for (int k = 0; k < 20; ++k) net.propose(1, "p" + std::to_string(k));
  net.deliverAll();
  CHECK(net.core(1).snapshotDue(20));
  CHECK_FALSE(net.core(1).snapshotDue());  // the default interval is 10,000 entries
  SnapshotMeta meta = net.takeSnapshot(1);
  CHECK_FALSE(net.core(1).snapshotDue(20));
  CHECK(meta.index == net.core(1).appliedIndex());
  CHECK(meta.term == net.core(1).term());
  CHECK(meta.members.size() == 3);
  CHECK(net.core(1).firstIndex() == meta.index - 5 + 1);
  CHECK(net.core(1).snapshotIndex() == meta.index);
  CHECK_THROWS_AS(net.core(1).snapshotTaken(meta.index + 100, "x"), std::logic_error);
}

TEST_CASE("updateMember changes an address everywhere and the shell hears of it through Ready") {
  Network net({1, 2, 3});
  net.elect(1);
  MembershipOutcome out = net.core(1).updateMember(Member{2, "node-2", "10.0.0.2:4242", false});
  REQUIRE(out.kind == MembershipOutcome::Kind::accepted);
  CHECK(out.member.voter);  // an update keeps the role
  CHECK(out.member.address == "10.0.0.2:4242");
  net.deliverAll();
  for (MemberId id : {1, 2, 3}) {
    CHECK(net.core(id).membership().find(2)->address == "10.0.0.2:4242");
    REQUIRE_FALSE(net.node(id).memberships.empty());
    CHECK(net.node(id).memberships.back().find(2)->address == "10.0.0.2:4242");
  }
  CHECK(net.core(1).updateMember(Member{9, "x", "y", false}).kind == MembershipOutcome::Kind::unknownMember);

  MembershipOutcome refused = net.core(3).updateMember(Member{3, "", "", false});
  CHECK(refused.kind == MembershipOutcome::Kind::notLeader);
  CHECK(refused.leaderHint == 1);
}

}  // namespace
}  // namespace swarm::raft
