// The I/O shell through the real plugin boundary: consensus-raft.so loaded by the kernel's host
// (PluginInstance, in process), driven over Cap'n Proto like the kernel will. The state machine
// is the harness's KvMachine (tools/kv_machine.h); the peer networks are fakes defined here that
// hand messages straight to the other instance's step() on this test's event loop.
#include "kv_machine.h"
#include "wire.h"

#include "config.h"
#include "plugin_host.h"

#include <swarm/schema/consensus.capnp.h>

#include <catch2/catch.hpp>

#include <kj/async-io.h>
#include <kj/debug.h>

#include <filesystem>
#include <map>
#include <string>

namespace swarm::raft::tools {
namespace {

using schema::Consensus;

constexpr auto kLimit = 20 * kj::SECONDS;

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return s;
}

// Peers by member ID on this event loop; messages to an unknown member are dropped. Never fails
// a send (see Replica: a failed streaming call would silence the sender for good).
class FakeNetwork final : public schema::PeerNetwork::Server {
 public:
  explicit FakeNetwork(std::map<uint64_t, Consensus::Client>& peers, uint64_t self)
      : peers(peers), self(self) {}

  kj::Promise<void> send(SendContext context) override {
    auto params = context.getParams();
    auto it = peers.find(params.getTo());
    if (it != peers.end()) {
      auto request = it->second.stepRequest();
      request.setFrom(self);
      request.setMessage(params.getMessage());
      tasks.add(request.send());
    }
    return kj::READY_NOW;
  }
  kj::Promise<void> setMembers(SetMembersContext) override { return kj::READY_NOW; }

 private:
  class Ignore final : public kj::TaskSet::ErrorHandler {
    void taskFailed(kj::Exception&&) override {}
  };
  std::map<uint64_t, Consensus::Client>& peers;
  uint64_t self;
  Ignore ignore;
  kj::TaskSet tasks{ignore};
};

// A network whose send() always fails: what a broken kernel transport would do.
class FailingNetwork final : public schema::PeerNetwork::Server {
 public:
  kj::Promise<void> send(SendContext) override { KJ_FAIL_REQUIRE("fake transport is down"); }
  kj::Promise<void> setMembers(SetMembersContext) override { return kj::READY_NOW; }
};

struct Member {
  kj::Own<kernel::PluginInstance> plugin;
  Consensus::Client consensus = nullptr;
  KvReport report;
};

class Fixture {
 public:
  Fixture() : io(kj::setupAsyncIo()) {
    std::string templ = "/tmp/raft-shell-test-XXXXXX";
    REQUIRE(mkdtemp(templ.data()) != nullptr);
    dir = templ;
  }
  ~Fixture() noexcept(false) {
    for (auto& [id, m] : members) {
      m.consensus = nullptr;
      m.plugin->stop().wait(io.waitScope);
    }
    peers.clear();
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }

  Member& load(uint64_t id) {
    Member& m = members[id];
    kernel::PluginConfig config;
    config.kind = schema::Kind::CONSENSUS;
    config.library = CONSENSUS_RAFT_PLUGIN;
    config.onCrash = kernel::CrashPolicy::stop;
    m.plugin = kernel::PluginInstance::start(io, config, {});
    wait(m.plugin->configure(), "configure()");
    m.consensus = m.plugin->bootstrap().castAs<Consensus>();
    return m;
  }

  // A start() request for member `id` with sound defaults; tests change what they exercise.
  capnp::Request<Consensus::StartParams, Consensus::StartResults> startRequest(
      uint64_t id, std::vector<uint64_t> cluster,
      kj::Own<schema::PeerNetwork::Server> network = {}) {
    Member& m = members.count(id) ? members[id] : load(id);
    auto request = m.consensus.startRequest();
    auto c = request.initConfig();
    c.setMemberId(id);
    c.setStorageDir(dir + "/m" + std::to_string(id));
    std::string key(32, '\x11');
    c.setDataKey(capnp::Data::Reader(reinterpret_cast<const kj::byte*>(key.data()), key.size()));
    if (cluster.empty()) {
      c.getBootstrap().setJoin();
    } else {
      auto list = c.getBootstrap().initNewCluster(cluster.size());
      for (size_t k = 0; k < cluster.size(); ++k) {
        list[k].setId(cluster[k]);
        list[k].setAddress("127.0.0.1:" + std::to_string(7000 + cluster[k]));
        list[k].setVoter(true);
      }
    }
    c.setTickMillis(10);
    c.setRandomSeed(id * 7919);
    if (network.get() == nullptr) network = kj::heap<FakeNetwork>(peers, id);
    request.setNetwork(kj::mv(network));
    request.setMachine(kj::heap<KvMachine>(m.report, [](kj::StringPtr) {}));
    return request;
  }

  std::string startError(
      capnp::Request<Consensus::StartParams, Consensus::StartResults>&& request) {
    std::string error;
    KJ_IF_MAYBE (e, kj::runCatchingExceptions([&]() { wait(request.send(), "start()"); })) {
      error = e->getDescription().cStr();
    }
    return error;
  }

  void start(uint64_t id, std::vector<uint64_t> cluster) {
    wait(startRequest(id, std::move(cluster)).send(), "start()");
    peers.emplace(id, members[id].consensus);
  }

  template <typename T>
  T wait(kj::Promise<T>&& promise, const char* what) {
    return promise
        .exclusiveJoin(io.provider->getTimer().afterDelay(kLimit).then(
            [what]() -> T { KJ_FAIL_REQUIRE("no answer in time", what); }))
        .wait(io.waitScope);
  }

  schema::Status::Reader status(uint64_t id) {
    lastStatus = wait(members[id].consensus.statusRequest().send(), "status()");
    KJ_IF_MAYBE (s, lastStatus) {
      return s->getStatus();
    }
    KJ_UNREACHABLE;
  }

  void waitUntil(const char* what, kj::Function<bool()> done) {
    auto& timer = io.provider->getTimer();
    auto deadline = timer.now() + kLimit;
    while (!done()) {
      KJ_REQUIRE(timer.now() < deadline, "condition not reached in time", what);
      timer.afterDelay(10 * kj::MILLISECONDS).wait(io.waitScope);
    }
  }

  void waitLeader(uint64_t id) {
    waitUntil("leader", [&]() {
      auto s = status(id);
      return s.getRole() == schema::Role::LEADER && s.getLeaderId() == id;
    });
  }

  Consensus::ProposeResult::Reader propose(uint64_t id, const std::string& data) {
    auto request = members[id].consensus.proposeRequest();
    request.setData(
        capnp::Data::Reader(reinterpret_cast<const kj::byte*>(data.data()), data.size()));
    lastPropose = wait(request.send(), "propose()");
    KJ_IF_MAYBE (p, lastPropose) {
      return p->getResult();
    }
    KJ_UNREACHABLE;
  }

  kj::AsyncIoContext io;
  std::string dir;
  std::map<uint64_t, Member> members;
  std::map<uint64_t, Consensus::Client> peers;

 private:
  kj::Maybe<capnp::Response<Consensus::StatusResults>> lastStatus;
  kj::Maybe<capnp::Response<Consensus::ProposeResults>> lastPropose;
};

TEST_CASE("start() refuses a bad StartConfig with a line naming the field") {
  Fixture f;
  struct Bad {
    const char* what;
    std::function<void(schema::StartConfig::Builder)> change;
    std::vector<std::string> mentions;
  };
  std::vector<Bad> cases = {
      {"short key",
       [](auto c) {
         c.setDataKey(capnp::Data::Reader(reinterpret_cast<const kj::byte*>("abc"), 3));
       },
       {"datakey", "3 bytes", "32"}},
      {"no storageDir", [](auto c) { c.setStorageDir(""); }, {"storagedir"}},
      {"tickMillis 0", [](auto c) { c.setTickMillis(0); }, {"tickmillis"}},
      {"election <= heartbeat",
       [](auto c) {
         c.setElectionTicks(2);
         c.setHeartbeatTicks(2);
       },
       {"electionticks", "heartbeatticks"}},
      {"snapshotInterval 0", [](auto c) { c.setSnapshotInterval(0); }, {"snapshotinterval"}},
      {"tiny messages", [](auto c) { c.setMaxMessageBytes(100); }, {"maxmessagebytes"}},
      {"memberId 0", [](auto c) { c.setMemberId(0); }, {"memberid"}},
      {"join without ID",
       [](auto c) {
         c.setMemberId(0);
         c.getBootstrap().setJoin();
       },
       {"addmember"}},
      {"not in newCluster", [](auto c) { c.setMemberId(99); }, {"99", "newcluster"}},
  };
  for (auto& bad : cases) {
    INFO(bad.what);
    auto request = f.startRequest(1, {1});
    bad.change(request.getConfig());
    std::string error = lower(f.startError(kj::mv(request)));
    REQUIRE(!error.empty());
    for (auto& word : bad.mentions) CHECK(error.find(word) != std::string::npos);
    CHECK(error.find('\n') == std::string::npos);
  }
  // None of the refusals left anything behind: a good start() works in the same instance.
  f.start(1, {1});
  f.waitLeader(1);
}

TEST_CASE("start() refuses to restart without state, to bootstrap over state, and a second call") {
  Fixture f;
  auto restart = f.startRequest(1, {1});
  restart.getConfig().getBootstrap().setRestart();
  std::string error = lower(f.startError(kj::mv(restart)));
  CHECK(error.find("holds no raft state") != std::string::npos);

  f.start(1, {1});
  f.waitLeader(1);
  CHECK(f.propose(1, "k=v").isCommitted());
  error = lower(f.startError(f.startRequest(1, {1})));
  CHECK(error.find("already called") != std::string::npos);

  // A second instance on the same directory: new over an existing log is refused (once the
  // first one let go of it).
  f.members[1].consensus = nullptr;
  f.members[1].plugin->stop().wait(f.io.waitScope);
  f.members.erase(1);
  f.peers.clear();
  error = lower(f.startError(f.startRequest(1, {1})));
  CHECK(error.find("already holds a raft log") != std::string::npos);
}

TEST_CASE("calls before start() are refused and peer messages before it are dropped") {
  Fixture f;
  Member& m = f.load(1);
  auto attempt =
      kj::runCatchingExceptions([&]() { f.wait(m.consensus.statusRequest().send(), "status()"); });
  KJ_IF_MAYBE (e, attempt) {
    CHECK(lower(e->getDescription().cStr()).find("start() first") != std::string::npos);
  } else {
    FAIL("status() before start() succeeded");
  }
  auto step = m.consensus.stepRequest();
  step.setFrom(2);
  step.setMessage(capnp::Data::Reader(reinterpret_cast<const kj::byte*>("\x01\x03"), 2));
  f.wait(step.send(), "step()");
  f.start(1, {1});
  f.waitLeader(1);
}

TEST_CASE(
    "a proposal over the entry limit is tooLarge, and a member without a leader says notLeader") {
  Fixture f;
  f.start(1, {1});
  f.waitLeader(1);
  auto big = f.propose(1, std::string(1 << 20, 'x'));
  REQUIRE(big.isTooLarge());
  CHECK(big.getTooLarge() < (1u << 20));
  CHECK(f.propose(1, std::string(big.getTooLarge(), 'y')).isCommitted());

  // Member 2 of a two-member cluster whose other member never starts: no leader, ever.
  f.start(2, {2, 3});
  auto r = f.propose(2, "k=v");
  REQUIRE(r.isNotLeader());
  CHECK(r.getNotLeader() == 0);
  auto read = f.wait(f.members[2].consensus.readBarrierRequest().send(), "readBarrier()");
  CHECK(read.getResult().isNotLeader());
}

TEST_CASE(
    "a PeerNetwork whose send() fails stops the member with the reason, reported by health()") {
  Fixture f;
  f.load(1);
  f.wait(f.startRequest(1, {1, 2}, kj::heap<FailingNetwork>()).send(), "start()");
  auto& m = f.members[1];
  f.waitUntil("health failing", [&]() {
    auto h = f.wait(m.consensus.healthRequest().send(), "health()");
    return h.getHealth().getStatus() == schema::Health::Status::FAILING;
  });
  auto h = f.wait(m.consensus.healthRequest().send(), "health()");
  CHECK(lower(h.getHealth().getMessage().cStr()).find("peernetwork.send failed") !=
        std::string::npos);
  auto attempt = kj::runCatchingExceptions([&]() { f.propose(1, "k=v"); });
  CHECK(attempt != nullptr);
}

TEST_CASE(
    "a member added as a learner joins, catches up through a snapshot, is promoted and takes "
    "over") {
  Fixture f;
  auto first = f.startRequest(1, {1});
  first.getConfig().setSnapshotInterval(20);
  first.getConfig().setLogEntriesForSlowFollowers(5);
  f.wait(first.send(), "start()");
  f.peers.emplace(1, f.members[1].consensus);
  f.waitLeader(1);
  for (int i = 0; i < 60; ++i) REQUIRE(f.propose(1, "k" + std::to_string(i) + "=v").isCommitted());
  REQUIRE(f.members[1].report.snapshotsTaken >= 1);

  auto add = f.members[1].consensus.addMemberRequest();
  add.initMember().setAddress("127.0.0.1:7002");
  auto added = f.wait(add.send(), "addMember()");
  REQUIRE(added.getResult().isDone());
  uint64_t id = added.getResult().getDone().getId();
  CHECK(id != 0);
  CHECK(!added.getResult().getDone().getVoter());

  auto join = f.startRequest(id, {});
  f.wait(join.send(), "start() with join");
  f.peers.emplace(id, f.members[id].consensus);
  // The leader's log was compacted long before: the learner gets the snapshot, then the rest.
  f.waitUntil("learner caught up",
              [&]() { return f.status(id).getAppliedIndex() >= f.status(1).getCommitIndex(); });
  CHECK(f.status(id).getRole() == schema::Role::LEARNER);
  CHECK(!f.members[id].report.restores.empty());
  CHECK(f.members[id].report.store.kv == f.members[1].report.store.kv);
  CHECK(f.members[id].report.leaderId == 1);
  CHECK(f.members[id].report.membershipChanges >= 1);

  f.waitUntil("promoted", [&]() {
    auto promote = f.members[1].consensus.promoteMemberRequest();
    promote.setId(id);
    auto r = f.wait(promote.send(), "promoteMember()");
    return r.getResult().isDone();
  });
  auto transfer = f.members[1].consensus.transferLeadershipRequest();
  transfer.setTo(id);
  auto moved = f.wait(transfer.send(), "transferLeadership()");
  REQUIRE(moved.getResult().isNewLeader());
  CHECK(moved.getResult().getNewLeader() == id);
  f.waitLeader(id);
  auto old = f.propose(1, "on-old=1");
  REQUIRE(old.isNotLeader());
  CHECK(old.getNotLeader() == id);
  CHECK(f.propose(id, "on-new=1").isCommitted());

  // Removing member 1 from a two-voter cluster leaves one voter, a quorum of itself.
  auto remove = f.members[id].consensus.removeMemberRequest();
  remove.setId(1);
  auto removed = f.wait(remove.send(), "removeMember()");
  REQUIRE(removed.getResult().isDone());
  CHECK(f.propose(id, "alone=1").isCommitted());
  auto members = f.status(id).getMembers();
  REQUIRE(members.size() == 1);
  CHECK(members[0].getId() == id);

  // A removed ID is never reused: adding it back can never succeed, and says so.
  auto again = f.members[id].consensus.addMemberRequest();
  again.initMember().setId(1);
  auto refused = f.wait(again.send(), "addMember() of a removed ID");
  REQUIRE(refused.getResult().isInvalid());
  CHECK(lower(refused.getResult().getInvalid().cStr()).find("never reused") != std::string::npos);
}

TEST_CASE("forceNewCluster keeps every entry the member holds and drops the other members") {
  Fixture f;
  f.start(1, {1, 2});
  f.start(2, {1, 2});
  f.waitUntil("a leader", [&]() { return f.status(1).getLeaderId() != 0; });
  uint64_t leader = f.status(1).getLeaderId();
  std::vector<std::string> keys;
  for (int i = 0; i < 20; ++i) {
    keys.push_back("k" + std::to_string(i));
    REQUIRE(f.propose(leader, keys.back() + "=v").isCommitted());
  }
  // Committed by both members, so on member 1's disk, though its persisted commit index may lag.
  for (uint64_t id : {1, 2}) {
    f.members[id].consensus = nullptr;
    f.members[id].plugin->stop().wait(f.io.waitScope);
    f.members.erase(id);
  }
  f.peers.clear();

  // Member 2 is gone for good; member 1 carries on alone with everything that was committed.
  auto force = f.startRequest(1, {});
  force.getConfig().getBootstrap().setForceNewCluster();
  f.wait(force.send(), "start() with forceNewCluster");
  f.waitLeader(1);
  f.wait(f.members[1].consensus.readBarrierRequest().send(), "readBarrier()");
  for (auto& key : keys) CHECK(f.members[1].report.store.kv.count(key) == 1);
  CHECK(f.members[1].report.violations.empty());
  auto members = f.status(1).getMembers();
  REQUIRE(members.size() == 1);
  CHECK(members[0].getId() == 1);
  CHECK(f.propose(1, "after=1").isCommitted());
}

}  // namespace
}  // namespace swarm::raft::tools
