// Real clusters: three raft-node processes (tools/raft_node.cpp), each with consensus-raft.so in
// process, talking over loopback TCP; the test drives them through their Unix sockets. Nothing
// here asserts on time: limits are generous and only turn a hang into a failure.
//
// The workload is seeded (SWARM_RAFT_CLUSTER_SEED replays one; the seed is printed on failure).
// Member logs stay in the scratch directory with SWARM_RAFT_KEEP_CLUSTER=1 and their tails are
// part of every failure message.
#include "cluster.h"

#include <catch2/catch.hpp>

#include <kj/debug.h>

#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <string>

namespace swarm::raft::tools {
namespace {

uint64_t testSeed() {
  const char* env = getenv("SWARM_RAFT_CLUSTER_SEED");
  return env != nullptr ? strtoull(env, nullptr, 10) : 20261125;
}

ClusterOptions options(uint64_t seed) {
  ClusterOptions o;
  o.raftNode = RAFT_NODE_PATH;
  o.plugin = CONSENSUS_RAFT_PLUGIN;
  o.seed = seed;
  o.tickMs = 20;
  o.electionTicks = 10;
  return o;
}

// Keeps `concurrency` proposals in flight against whoever leads, each with a fresh key. A write
// is acknowledged (committed at an index), or uncertain (the node died or lost leadership with
// it in flight: it may or may not have committed), never retried under the same key, so that
// "exactly once" is checkable. notLeader means nothing was appended: the same write goes to the
// hinted leader.
class Writer {
 public:
  Writer(kj::AsyncIoContext& io, Cluster& cluster, uint64_t seed, size_t concurrency,
         std::string tag)
      : io(io), cluster(cluster), rng(seed), tag(std::move(tag)) {
    for (size_t i = 0; i < concurrency; ++i) tasks.add(next());
  }

  void stop() {
    stopping = true;
    auto& timer = io.provider->getTimer();
    auto deadline = timer.now() + 60 * kj::SECONDS;
    while (inFlight > 0) {
      KJ_REQUIRE(timer.now() < deadline, "writes still in flight 60 s after the load stopped",
                 inFlight);
      timer.afterDelay(10 * kj::MILLISECONDS).wait(io.waitScope);
    }
  }

  void waitAcked(size_t n, kj::Duration limit = 60 * kj::SECONDS) {
    auto& timer = io.provider->getTimer();
    auto deadline = timer.now() + limit;
    while (acked.size() < n) {
      KJ_REQUIRE(errors.empty(), errors.front());
      KJ_REQUIRE(timer.now() < deadline, "the cluster stopped acknowledging writes", acked.size(),
                 n, cluster.logTails(15));
      timer.afterDelay(10 * kj::MILLISECONDS).wait(io.waitScope);
    }
  }

  std::map<std::string, uint64_t> acked;  // key -> index it was committed at
  std::map<std::string, std::string> values;
  std::set<std::string> uncertain;
  std::vector<std::string> errors;

 private:
  class Errors final : public kj::TaskSet::ErrorHandler {
   public:
    explicit Errors(Writer& w) : w(w) {}
    void taskFailed(kj::Exception&& e) override { w.errors.push_back(e.getDescription().cStr()); }

   private:
    Writer& w;
  };

  kj::AsyncIoContext& io;
  Cluster& cluster;
  std::mt19937_64 rng;
  std::string tag;
  uint64_t keys = 0;
  uint64_t leader = 0;
  bool stopping = false;
  size_t inFlight = 0;
  Errors handler{*this};
  kj::TaskSet tasks{handler};

  kj::Promise<void> next() {
    if (stopping) return kj::READY_NOW;
    std::string key = tag + std::to_string(keys++);
    std::string value = std::to_string(rng());
    values[key] = value;
    return attempt(key, key + "=" + value, 0);
  }

  kj::Promise<void> attempt(std::string key, std::string data, int tries) {
    KJ_REQUIRE(tries < 2000, "no member accepted a write after 2000 tries", key);
    if (leader == 0 || !cluster.running(leader)) {
      return findLeader().then([this, key = kj::mv(key), data = kj::mv(data), tries]() mutable {
        return attempt(kj::mv(key), kj::mv(data), tries + 1);
      });
    }
    uint64_t target = leader;
    ++inFlight;
    return kj::evalNow([&]() { return cluster.client(target).call(Op::propose, data); })
        .then(
            [this, key, data, tries, target](Reply r) mutable -> kj::Promise<void> {
              --inFlight;
              switch (r.code) {
                case Code::ok: acked[key] = r.u64At(0); return next();
                case Code::notLeader:
                  leader = r.u64At(0) != target ? r.u64At(0) : 0;
                  if (leader == 0) {
                    return pause().then(
                        [this, key = kj::mv(key), data = kj::mv(data), tries]() mutable {
                          return attempt(kj::mv(key), kj::mv(data), tries + 1);
                        });
                  }
                  return attempt(kj::mv(key), kj::mv(data), tries + 1);
                case Code::lostLeadership:
                  uncertain.insert(key);
                  if (leader == target) leader = 0;
                  return next();
                default: KJ_FAIL_REQUIRE("propose failed", key, r.describe());
              }
            },
            [this, key, target](kj::Exception&&) -> kj::Promise<void> {
              // The member went away with the write in flight.
              --inFlight;
              uncertain.insert(key);
              if (leader == target) leader = 0;
              return pause().then([this]() { return next(); });
            });
  }

  kj::Promise<void> pause() { return io.provider->getTimer().afterDelay(20 * kj::MILLISECONDS); }

  kj::Promise<void> findLeader() {
    // Ask every running member; a member that leads says so about itself.
    kj::Vector<kj::Promise<uint64_t>> asks;
    for (auto id : cluster.ids()) {
      if (!cluster.running(id)) continue;
      asks.add(kj::evalNow([&]() { return cluster.client(id).call(Op::status); })
                   .then([](Reply r) -> uint64_t {
                     NodeStatus s;
                     return r.code == Code::ok && decodeStatus(r.payload, s) && s.isLeader()
                                ? s.memberId
                                : 0;
                   })
                   .catch_([](kj::Exception&&) -> uint64_t { return 0; }));
    }
    return kj::joinPromises(asks.releaseAsArray())
        .then([this](kj::Array<uint64_t> found) -> kj::Promise<void> {
          for (uint64_t id : found) {
            if (id != 0) leader = id;
          }
          if (leader != 0) return kj::READY_NOW;
          return pause().then([this]() { return findLeader(); });
        });
  }
};

// Every running member has applied the same store, and it holds every acknowledged write exactly
// once at its index, every uncertain write at most once, and nothing else.
void checkConverged(Cluster& cluster, const Writer& writer, uint64_t seed) {
  INFO("seed " << seed << "; member logs under " << cluster.dir());
  uint64_t leader = cluster.waitLeader();
  // A read barrier on the leader commits nothing new but tells the index everything reached.
  Reply barrier = cluster.call(leader, Op::read);
  REQUIRE(barrier.code == Code::ok);
  uint64_t commit = barrier.u64At(0);
  cluster.waitApplied(commit);

  std::vector<std::pair<uint64_t, KvReport>> reports;
  for (auto id : cluster.ids()) {
    if (cluster.running(id)) reports.emplace_back(id, cluster.dump(id));
  }
  std::string problems;
  for (auto& [id, r] : reports) {
    for (auto& v : r.violations) problems += "member " + std::to_string(id) + ": " + v + "\n";
  }
  // Compare the stores as of the same index: a member may already have applied one more entry
  // (a new leader's no-op) than another.
  auto& reference = reports.front().second.store;
  for (auto& [id, r] : reports) {
    auto& s = r.store;
    auto prefix = [](const KvStore& a, const KvStore& b) {
      return a.sequence.size() <= b.sequence.size() &&
             std::equal(a.sequence.begin(), a.sequence.end(), b.sequence.begin());
    };
    if (!(s.applied == reference.applied ? s.sequence == reference.sequence &&
                                               s.kv == reference.kv && s.digest == reference.digest
                                         : prefix(s, reference) || prefix(reference, s))) {
      problems += "member " + std::to_string(id) + " applied a different sequence than member " +
                  std::to_string(reports.front().first) + " (" + std::to_string(s.sequence.size()) +
                  " vs " + std::to_string(reference.sequence.size()) + " writes)\n";
    }
  }
  const KvStore* longest = &reference;
  for (auto& [id, r] : reports) {
    if (r.store.sequence.size() > longest->sequence.size()) longest = &r.store;
  }
  std::map<std::string, std::vector<uint64_t>> seen;
  for (auto& [index, key] : longest->sequence) seen[key].push_back(index);
  for (auto& [key, index] : writer.acked) {
    auto it = seen.find(key);
    if (it == seen.end() || it->second.size() != 1) {
      problems += "acknowledged write " + key + " is applied " +
                  std::to_string(it == seen.end() ? 0 : it->second.size()) + " times\n";
    } else if (it->second[0] != index) {
      problems += "acknowledged write " + key + " was committed at index " + std::to_string(index) +
                  " but applied at index " + std::to_string(it->second[0]) + "\n";
    } else if (longest->kv.at(key) != writer.values.at(key)) {
      problems += "acknowledged write " + key + " has another value in the store\n";
    }
  }
  for (auto& [key, indexes] : seen) {
    if (writer.acked.count(key) != 0) continue;
    if (writer.uncertain.count(key) == 0)
      problems += "the store holds " + key + ", which nobody wrote\n";
    if (indexes.size() > 1) problems += "uncertain write " + key + " is applied more than once\n";
  }
  if (!problems.empty()) FAIL(problems + cluster.logTails(20));
}

TEST_CASE("three processes elect a leader, survive kill -9 of it under load, and converge") {
  uint64_t seed = testSeed();
  INFO("seed " << seed);
  auto io = kj::setupAsyncIo();
  Cluster cluster(io, options(seed));
  INFO("member logs under " << cluster.dir());
  cluster.startAll();
  uint64_t first = cluster.waitLeader();

  Writer writer(io, cluster, seed, 16, "w");
  writer.waitAcked(300);

  cluster.kill(first);
  uint64_t second = cluster.waitLeader();
  CHECK(second != first);
  size_t before = writer.acked.size();
  writer.waitAcked(before + 300);  // a new leader commits new writes

  cluster.start(first, "restart");  // the killed member catches up
  writer.waitAcked(writer.acked.size() + 200);
  writer.stop();
  REQUIRE(writer.errors.empty());
  checkConverged(cluster, writer, seed);
  // The restarted member re-applied its log into a fresh store and caught up on the rest.
  KvReport restarted = cluster.dump(first);
  CHECK(restarted.store.sequence.size() >= writer.acked.size());
}

TEST_CASE("a member that fell behind the leader's snapshot catches up through it") {
  uint64_t seed = testSeed() + 1;
  INFO("seed " << seed);
  auto io = kj::setupAsyncIo();
  auto o = options(seed);
  o.snapshotInterval = 40;
  o.keepEntries = 20;
  Cluster cluster(io, o);
  INFO("member logs under " << cluster.dir());
  cluster.startAll();
  uint64_t leader = cluster.waitLeader();
  uint64_t lagging = 0, other = 0;
  for (auto id : cluster.ids()) {
    if (id == leader) continue;
    (lagging == 0 ? lagging : other) = id;
  }

  Writer writer(io, cluster, seed, 4, "a");
  writer.waitAcked(20);
  uint64_t laggingApplied = cluster.status(lagging).appliedIndex;
  cluster.kill(lagging);
  writer.waitAcked(400);  // ten snapshot intervals: the leader's log no longer reaches back

  KvReport leaderReport = cluster.dump(leader);
  CHECK(leaderReport.snapshotsTaken >= 1);

  cluster.start(lagging, "restart");
  writer.waitAcked(writer.acked.size() + 50);

  // The member that kept up took snapshots of its own: a restart restores the newest one and
  // replays only the log after it.
  KvReport otherBefore = cluster.dump(other);
  CHECK(otherBefore.snapshotsTaken >= 1);
  cluster.kill(other);
  cluster.start(other, "restart");
  writer.waitAcked(writer.acked.size() + 50);
  writer.stop();
  REQUIRE(writer.errors.empty());
  checkConverged(cluster, writer, seed);

  KvReport caughtUp = cluster.dump(lagging);
  INFO("the lagging member had applied " << laggingApplied << " when it was killed");
  REQUIRE(!caughtUp.restores.empty());
  CHECK(caughtUp.restores.back() > laggingApplied + o.keepEntries);
  KvReport restored = cluster.dump(other);
  REQUIRE(!restored.restores.empty());
  CHECK(restored.restores.front() >= o.snapshotInterval);
}

TEST_CASE("leadership moves to the member asked for and writes follow it") {
  uint64_t seed = testSeed() + 2;
  INFO("seed " << seed);
  auto io = kj::setupAsyncIo();
  Cluster cluster(io, options(seed));
  INFO("member logs under " << cluster.dir());
  cluster.startAll();
  uint64_t leader = cluster.waitLeader();
  Writer writer(io, cluster, seed, 4, "t");
  writer.waitAcked(50);
  uint64_t target = leader == cluster.ids().back() ? cluster.ids().front() : cluster.ids().back();
  std::string to;
  ByteWriter(to).u64(target);
  Reply r = cluster.call(leader, Op::transfer, to);
  REQUIRE(r.describe() == "ok");
  CHECK(r.u64At(0) == target);
  CHECK(cluster.waitLeader() == target);
  writer.waitAcked(writer.acked.size() + 50);
  writer.stop();
  checkConverged(cluster, writer, seed);
}

}  // namespace
}  // namespace swarm::raft::tools
