// Building blocks of the core: the in-memory log, replication progress and its flow control,
// quorum math against a naive oracle, and membership rules.
#include "raft/log.h"
#include "raft/membership.h"
#include "raft/progress.h"
#include "raft/rng.h"

#include <catch2/catch.hpp>

#include <algorithm>

namespace swarm::raft {
namespace {

std::vector<Entry> entriesWithTerms(Index first, std::vector<Term> terms) {
  std::vector<Entry> out;
  for (Term t : terms) {
    out.push_back(Entry{first, t, EntryType::normal, "i" + std::to_string(first) + "t" + std::to_string(t)});
    ++first;
  }
  return out;
}

RaftLog logWithTerms(std::vector<Term> terms) {
  RaftLog log;
  log.reset(0, 0, entriesWithTerms(1, terms), 0, 0);
  return log;
}

TEST_CASE("log: terms, matching and the up-to-date rule (§5.4.1)") {
  RaftLog log = logWithTerms({1, 1, 2, 3});
  CHECK(log.firstIndex() == 1);
  CHECK(log.lastIndex() == 4);
  CHECK(log.lastTerm() == 3);
  CHECK(log.term(0) == Term{0});
  CHECK(log.term(3) == Term{2});
  CHECK_FALSE(log.term(5).has_value());
  CHECK(log.matchTerm(2, 1));
  CHECK_FALSE(log.matchTerm(2, 2));
  CHECK(log.isUpToDate(4, 3));
  CHECK(log.isUpToDate(1, 4));       // later last term wins even if shorter
  CHECK_FALSE(log.isUpToDate(9, 2));  // earlier last term loses even if longer
  CHECK_FALSE(log.isUpToDate(3, 3));  // same term, shorter
}

TEST_CASE("log: maybeAppend truncates a conflicting suffix and never a committed entry (§5.3)") {
  RaftLog log = logWithTerms({1, 1, 2, 2});
  log.commitTo(2);
  Index lastNew = 0;

  SECTION("mismatch at prev") {
    CHECK(log.maybeAppend(3, 1, entriesWithTerms(4, {3}), lastNew) == RaftLog::AppendResult::mismatch);
    CHECK(log.lastIndex() == 4);
  }
  SECTION("matching entries are kept, new ones appended") {
    CHECK(log.maybeAppend(2, 1, entriesWithTerms(3, {2, 2, 2}), lastNew) == RaftLog::AppendResult::appended);
    CHECK(lastNew == 5);
    CHECK(log.lastIndex() == 5);
    CHECK(log.stable() == 4);  // nothing persisted was replaced
  }
  SECTION("a conflict replaces the suffix and marks it unstable again") {
    CHECK(log.maybeAppend(2, 1, entriesWithTerms(3, {3}), lastNew) == RaftLog::AppendResult::appended);
    CHECK(lastNew == 3);
    CHECK(log.lastIndex() == 3);
    CHECK(log.term(3) == Term{3});
    CHECK(log.stable() == 2);
  }
  SECTION("a stale, shorter append does not truncate") {
    CHECK(log.maybeAppend(1, 1, entriesWithTerms(2, {1}), lastNew) == RaftLog::AppendResult::appended);
    CHECK(lastNew == 2);
    CHECK(log.lastIndex() == 4);
  }
  SECTION("conflicting with a committed entry is refused") {
    CHECK(log.maybeAppend(1, 1, entriesWithTerms(2, {5}), lastNew) ==
          RaftLog::AppendResult::conflictsWithCommitted);
    CHECK(log.term(2) == Term{1});
  }
}

TEST_CASE("log: findConflictByTerm backs up a whole term at a time") {
  RaftLog log = logWithTerms({1, 1, 1, 4, 4, 5, 5, 6, 6, 6});
  CHECK(log.findConflictByTerm(10, 6) == std::pair<Index, Term>{10, 6});
  CHECK(log.findConflictByTerm(10, 5) == std::pair<Index, Term>{7, 5});
  CHECK(log.findConflictByTerm(10, 3) == std::pair<Index, Term>{3, 1});
  CHECK(log.findConflictByTerm(10, 0) == std::pair<Index, Term>{0, 0});
  CHECK(log.findConflictByTerm(99, 6) == std::pair<Index, Term>{10, 6});  // clamps to lastIndex
}

TEST_CASE("log: stableTo ignores an acknowledgement for entries that were replaced") {
  RaftLog log = logWithTerms({1, 1});
  log.reset(0, 0, entriesWithTerms(1, {1, 1}), 0, 0);
  Index lastNew = 0;
  REQUIRE(log.maybeAppend(2, 1, entriesWithTerms(3, {2, 2}), lastNew) == RaftLog::AppendResult::appended);
  CHECK(log.stable() == 2);
  // Entries 3..4 (term 2) were handed out; before the shell acknowledges, a new leader replaces 4.
  REQUIRE(log.maybeAppend(3, 2, entriesWithTerms(4, {3}), lastNew) == RaftLog::AppendResult::appended);
  log.stableTo(4, 2);
  CHECK(log.stable() == 2);  // (4, 2) is gone: the new entry 4 must still be persisted
  log.stableTo(4, 3);
  CHECK(log.stable() == 4);
}

TEST_CASE("log: compaction keeps the term of the compaction point, restore replaces everything") {
  RaftLog log = logWithTerms({1, 1, 2, 2, 3});
  log.commitTo(5);
  log.appliedTo(4);
  log.compactTo(3);
  CHECK(log.firstIndex() == 4);
  CHECK(log.term(3) == Term{2});
  CHECK_FALSE(log.term(2).has_value());
  CHECK(log.view(1, 5).size() == 2);
  CHECK_THROWS_AS(log.compactTo(5), std::logic_error);  // beyond applied

  log.restore(20, 7);
  CHECK(log.firstIndex() == 21);
  CHECK(log.lastIndex() == 20);
  CHECK(log.lastTerm() == 7);
  CHECK(log.committed() == 20);
  CHECK(log.stable() == 20);
}

TEST_CASE("log: copyEntries batches under a byte limit but always sends one") {
  RaftLog log;
  std::vector<Entry> es;
  for (Index i = 1; i <= 10; ++i) es.push_back(Entry{i, 1, EntryType::normal, std::string(100, 'a')});
  log.reset(0, 0, std::move(es), 0, 0);
  std::vector<Entry> out;
  log.copyEntries(1, 10, 350, out);
  CHECK(out.size() == 3);  // each entry is 100 bytes + 3 of framing
  out.clear();
  log.copyEntries(1, 10, 10, out);
  CHECK(out.size() == 1);
}

TEST_CASE("inflights: a ring of unacknowledged appends") {
  Inflights in(3);
  in.add(5);
  in.add(9);
  in.add(12);
  CHECK(in.full());
  in.freeLE(9);
  CHECK(in.size() == 1);
  in.add(15);
  in.add(20);
  CHECK(in.full());
  in.freeFirstOne();
  CHECK(in.size() == 2);
  in.freeLE(100);
  CHECK(in.size() == 0);
}

TEST_CASE("progress: probe, replicate and snapshot transitions") {
  Progress pr(2, 2);
  pr.next = 11;
  CHECK(pr.state == ProgressState::probe);
  CHECK_FALSE(pr.paused());
  pr.sentEntries(12);
  CHECK(pr.paused());  // one probe at a time
  CHECK_FALSE(pr.maybeDecrTo(5, 3));  // stale: not the latest probe
  CHECK(pr.maybeDecrTo(10, 6));       // the follower's log ends at 6
  CHECK(pr.next == 7);
  CHECK_FALSE(pr.paused());

  CHECK(pr.maybeUpdate(8));
  CHECK(pr.match == 8);
  pr.becomeReplicate();
  CHECK(pr.next == 9);
  pr.sentEntries(12);
  pr.sentEntries(15);
  CHECK(pr.next == 16);
  CHECK(pr.paused());  // window of 2
  pr.inflights.freeLE(12);
  CHECK_FALSE(pr.paused());
  CHECK_FALSE(pr.maybeDecrTo(7, 7));  // below match: stale
  CHECK(pr.maybeDecrTo(13, 9));
  CHECK(pr.next == 9);

  pr.becomeSnapshot(100);
  CHECK(pr.paused());
  pr.becomeProbe();
  CHECK(pr.next == 101);
}

TEST_CASE("quorum index agrees with a naive oracle over random configurations") {
  for (uint64_t seed = 1; seed <= 2000; ++seed) {
    Rng rng(seed);
    size_t n = 1 + rng.below(9);
    std::vector<Index> matches(n);
    for (Index& m : matches) m = rng.below(20);
    // Oracle: the largest index that at least n/2+1 voters have.
    Index oracle = 0;
    for (Index candidate = 0; candidate <= 20; ++candidate) {
      size_t have = std::count_if(matches.begin(), matches.end(), [&](Index m) { return m >= candidate; });
      if (have >= n / 2 + 1) oracle = candidate;
    }
    std::vector<Index> copy = matches;
    INFO("seed " << seed);
    CHECK(quorumIndex(copy) == oracle);
  }
}

TEST_CASE("membership: single-server changes, removed IDs never come back") {
  Membership m;
  std::string why = m.apply({ChangeKind::bootstrap, {}, {Member{3, "c", "", true}, Member{1, "a", "", true}}});
  REQUIRE(why.empty());
  CHECK(m.voterCount() == 2);
  CHECK(m.quorum() == 2);
  CHECK(m.members.front().id == 1);  // kept sorted

  CHECK(m.apply({ChangeKind::addLearner, Member{5, "e", "x", true}, {}}).empty());
  CHECK_FALSE(m.isVoter(5));  // joins as a learner whatever it asked
  CHECK(m.quorum() == 2);
  CHECK(m.apply({ChangeKind::addLearner, Member{5, "e", "x", false}, {}}).find("already") != std::string::npos);
  CHECK(m.apply({ChangeKind::promote, Member{5, {}, {}, false}, {}}).empty());
  CHECK(m.isVoter(5));
  CHECK(m.apply({ChangeKind::promote, Member{5, {}, {}, false}, {}}).find("already a voter") != std::string::npos);

  CHECK(m.apply({ChangeKind::remove, Member{3, {}, {}, false}, {}}).empty());
  CHECK(m.isRemoved(3));
  CHECK_FALSE(m.contains(3));
  std::string again = m.apply({ChangeKind::addLearner, Member{3, "c", "", false}, {}});
  CHECK(again.find("never reused") != std::string::npos);

  CHECK(m.apply({ChangeKind::update, Member{5, "e2", "y", false}, {}}).empty());
  CHECK(m.find(5)->address == "y");
  CHECK(m.find(5)->voter);  // update keeps the role

  Membership before = m;
  CHECK_FALSE(m.apply({ChangeKind::remove, Member{42, {}, {}, false}, {}}).empty());
  CHECK(m == before);  // a refused change changes nothing

  CHECK(m.apply({ChangeKind::remove, Member{1, {}, {}, false}, {}}).empty());
  CHECK(m.apply({ChangeKind::remove, Member{5, {}, {}, false}, {}}) == "cannot remove the last voter");

  CHECK(m.apply({ChangeKind::forceNewCluster, {}, {Member{5, "e", "y", true}}}).empty());
  CHECK(m.members.size() == 1);
}

}  // namespace
}  // namespace swarm::raft
