// Consensus cases (sdk/schema/consensus.capnp) on a single-member cluster in the case's scratch
// directory. The case plays the kernel: it implements StateMachine (the store) and PeerNetwork.
//
// Restart expectation, from the schema: StateMachine.apply delivers committed entries "in index
// order, each exactly once per incarnation of the store", and bootstrap `restart` recovers from
// storageDir. The kernel's store lives in memory, so a restarted plugin faces a new incarnation:
// it must hand that store everything committed before, through restore() (a snapshot it took)
// and/or apply(), each entry once, at its original index, by the time a readBarrier() resolves.
// We chose "re-apply" over "retain" because nothing else would rebuild an in-memory store.
#include "conformance.h"

#include <swarm/schema/consensus.capnp.h>

#include <kj/debug.h>

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace swarm::conformance {
namespace {

using schema::Consensus;
using schema::Entry;

constexpr auto kCallLimit = 15 * kj::SECONDS;
constexpr auto kElectionLimit = 15 * kj::SECONDS;
constexpr size_t kChunk = 16 * 1024;  // snapshot bytes per ByteSink.write

struct Applied {
  uint64_t index;
  uint64_t term;
  Entry::Type type;
  std::string data;
};

// The store as the plugin built it: restored snapshot content followed by applied entries.
struct Store {
  std::vector<Applied> entries;
  std::vector<std::string> violations;  // broken ordering rules, reported by the case
  unsigned restores = 0;

  uint64_t lastIndex() const { return entries.empty() ? 0 : entries.back().index; }

  void add(Applied e, const char* how) {
    if (!entries.empty() && e.index != lastIndex() + 1) {
      violations.push_back(kj::str(how, " index ", e.index, " after index ", lastIndex(),
                                   " (expected ", lastIndex() + 1, ")")
                               .cStr());
    }
    entries.push_back(std::move(e));
  }

  // Payloads of the normal entries, in store order.
  std::vector<std::pair<uint64_t, std::string>> payloads() const {
    std::vector<std::pair<uint64_t, std::string>> result;
    for (auto& e : entries) {
      if (e.type == Entry::Type::NORMAL) result.emplace_back(e.index, e.data);
    }
    return result;
  }
};

// The store's snapshot format (the case's own: the plugin only carries the bytes).
std::string serialize(const std::vector<Applied>& entries) {
  std::string out;
  auto put = [&](uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  for (auto& e : entries) {
    put(e.index, 8);
    put(e.term, 8);
    put(static_cast<uint64_t>(e.type), 1);
    put(e.data.size(), 4);
    out += e.data;
  }
  return out;
}

kj::Maybe<std::vector<Applied>> parse(const std::string& in) {
  std::vector<Applied> entries;
  size_t at = 0;
  auto get = [&](int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i)
      v |= uint64_t(static_cast<unsigned char>(in[at + i])) << (8 * i);
    at += bytes;
    return v;
  };
  while (at < in.size()) {
    if (in.size() - at < 21) return nullptr;
    Applied e;
    e.index = get(8);
    e.term = get(8);
    e.type = static_cast<Entry::Type>(get(1));
    uint64_t size = get(4);
    if (in.size() - at < size) return nullptr;
    e.data = in.substr(at, size);
    at += size;
    entries.push_back(std::move(e));
  }
  return kj::mv(entries);
}

class SnapshotReceiver final : public schema::ByteSink::Server {
 public:
  SnapshotReceiver(std::shared_ptr<Store> store, uint64_t index)
      : store(std::move(store)), index(index) {}

  kj::Promise<void> write(WriteContext context) override {
    auto chunk = context.getParams().getChunk();
    bytes.append(reinterpret_cast<const char*>(chunk.begin()), chunk.size());
    return kj::READY_NOW;
  }

  kj::Promise<void> done(DoneContext) override {
    KJ_IF_MAYBE (entries, parse(bytes)) {
      uint64_t last = entries->empty() ? 0 : entries->back().index;
      if (last != index) {
        store->violations.push_back(kj::str("restore() of a snapshot at index ", index,
                                            " whose content ends at index ", last)
                                        .cStr());
      }
      store->entries = kj::mv(*entries);
      ++store->restores;
    } else {
      store->violations.push_back(
          "restore() received bytes that are not a snapshot this store "
          "wrote (the plugin changed them)");
    }
    return kj::READY_NOW;
  }

 private:
  std::shared_ptr<Store> store;
  uint64_t index;
  std::string bytes;
};

class Machine final : public schema::StateMachine::Server {
 public:
  // With a delay, apply() takes that long to resolve and only then holds the entries, so a plugin
  // that does not wait for apply() before acknowledging a proposal shows.
  Machine(std::shared_ptr<Store> store, kj::Timer& timer, kj::Duration delay)
      : store(std::move(store)), timer(timer), delay(delay) {}

  kj::Promise<void> apply(ApplyContext context) override {
    if (delay == 0 * kj::SECONDS) {
      record(context.getParams().getEntries());
      return kj::READY_NOW;
    }
    return timer.afterDelay(delay).then(
        [this, context]() mutable { record(context.getParams().getEntries()); });
  }

  kj::Promise<void> snapshot(SnapshotContext context) override {
    auto sink = context.getParams().getSink();
    auto bytes = std::make_shared<std::string>(serialize(store->entries));
    uint64_t index = store->lastIndex();
    kj::Promise<void> writes = kj::READY_NOW;
    for (size_t at = 0; at < bytes->size(); at += kChunk) {
      writes = writes.then([sink, bytes, at]() mutable {
        auto request = sink.writeRequest();
        size_t n = std::min(kChunk, bytes->size() - at);
        request.setChunk(kj::arrayPtr(reinterpret_cast<const kj::byte*>(bytes->data() + at), n));
        return request.send();
      });
    }
    return writes.then([sink]() mutable { return sink.doneRequest().send().ignoreResult(); })
        .then([context, index]() mutable { context.getResults().setIndex(index); });
  }

  kj::Promise<void> restore(RestoreContext context) override {
    context.getResults().setSink(
        kj::heap<SnapshotReceiver>(store, context.getParams().getMeta().getIndex()));
    return kj::READY_NOW;
  }

  kj::Promise<void> membershipChanged(MembershipChangedContext) override { return kj::READY_NOW; }
  kj::Promise<void> statusChanged(StatusChangedContext) override { return kj::READY_NOW; }

 private:
  void record(capnp::List<Entry>::Reader entries) {
    for (auto e : entries) {
      auto data = e.getData();
      store->add({e.getIndex(), e.getTerm(), e.getType(),
                  std::string(reinterpret_cast<const char*>(data.begin()), data.size())},
                 "apply() of");
    }
  }

  std::shared_ptr<Store> store;
  kj::Timer& timer;
  kj::Duration delay;
};

// A single member has no peers: messages are counted and dropped, as for an unreachable member.
class Network final : public schema::PeerNetwork::Server {
 public:
  kj::Promise<void> send(SendContext) override { return kj::READY_NOW; }
  kj::Promise<void> setMembers(SetMembersContext) override { return kj::READY_NOW; }
};

const char* roleText(schema::Role r) {
  switch (r) {
    case schema::Role::FOLLOWER:
      return "follower";
    case schema::Role::PRE_CANDIDATE:
      return "pre-candidate";
    case schema::Role::CANDIDATE:
      return "candidate";
    case schema::Role::LEADER:
      return "leader";
    case schema::Role::LEARNER:
      return "learner";
  }
  return "?";
}

enum class Boot { NEW_CLUSTER, RESTART };

// The case's view of one consensus member.
class Member {
 public:
  explicit Member(CaseContext& ctx) : ctx(ctx), rng(ctx.seed) {
    id = ctx.seed % 1000000000 + 1;
    storageDir = ctx.scratchDir + "/consensus";
    mkdir(storageDir.c_str(), 0700);
    key = randomBytes(32);
  }

  std::string randomBytes(size_t n) {
    std::string bytes(n, '\0');
    for (auto& b : bytes) b = static_cast<char>(rng() & 0xff);
    return bytes;
  }

  // start() on the current plugin instance, with a fresh store (a new incarnation).
  kj::Promise<capnp::Response<Consensus::StartResults>> sendStart(Boot boot,
                                                                  const std::string& dataKey) {
    store = std::make_shared<Store>();
    auto request = ctx.as<Consensus>().startRequest();
    auto config = request.initConfig();
    config.setMemberId(id);
    config.setStorageDir(storageDir);
    config.setDataKey(
        kj::arrayPtr(reinterpret_cast<const kj::byte*>(dataKey.data()), dataKey.size()));
    if (boot == Boot::NEW_CLUSTER) {
      auto members = config.getBootstrap().initNewCluster(1);
      members[0].setId(id);
      members[0].setNodeId("conformance-node-1");
      members[0].setAddress("127.0.0.1:4242");
      members[0].setVoter(true);
    } else {
      config.getBootstrap().setRestart();
    }
    config.setTickMillis(10);
    config.setRandomSeed(ctx.seed | 1);
    request.setNetwork(kj::heap<Network>());
    request.setMachine(kj::heap<Machine>(store, ctx.io.provider->getTimer(), applyDelay));
    return request.send();
  }

  void start(Boot boot) { ctx.within(sendStart(boot, key), kCallLimit, "start()"); }

  // Starts and waits until this member leads.
  void startLeader(Boot boot) {
    start(boot);
    waitLeader();
  }

  void waitLeader() {
    auto& timer = ctx.io.provider->getTimer();
    auto deadline = timer.now() + kElectionLimit;
    for (;;) {
      auto s = status();
      if (s.getRole() == schema::Role::LEADER && s.getLeaderId() == id) return;
      if (timer.now() >= deadline) {
        fail(kj::str("a single-member cluster did not elect itself within ", kElectionLimit,
                     ": role ", roleText(s.getRole()), ", leader ", s.getLeaderId(), ", term ",
                     s.getTerm()));
      }
      timer.afterDelay(20 * kj::MILLISECONDS).wait(ctx.waitScope);
    }
  }

  capnp::Response<Consensus::StatusResults> statusResponse() {
    return ctx.within(ctx.as<Consensus>().statusRequest().send(), kCallLimit, "status()");
  }

  schema::Status::Reader status() {
    lastStatus = statusResponse();
    KJ_IF_MAYBE (s, lastStatus) {
      return s->getStatus();
    }
    KJ_UNREACHABLE;
  }

  kj::Promise<capnp::Response<Consensus::ProposeResults>> sendPropose(const std::string& data) {
    auto request = ctx.as<Consensus>().proposeRequest();
    request.setData(kj::arrayPtr(reinterpret_cast<const kj::byte*>(data.data()), data.size()));
    return request.send();
  }

  struct Position {
    uint64_t index, term;
  };

  static Position committed(Consensus::ProposeResult::Reader r, const std::string& what) {
    switch (r.which()) {
      case Consensus::ProposeResult::COMMITTED:
        return {r.getCommitted().getIndex(), r.getCommitted().getTerm()};
      case Consensus::ProposeResult::NOT_LEADER:
        fail(kj::str(what, ": notLeader (hint ", r.getNotLeader(), ") on the only member"));
      case Consensus::ProposeResult::TOO_LARGE:
        fail(kj::str(what, ": tooLarge (limit ", r.getTooLarge(), ")"));
      case Consensus::ProposeResult::LOST_LEADERSHIP:
        fail(kj::str(what, ": lostLeadership on the only member"));
    }
    fail(kj::str(what, ": unknown result"));
  }

  Position propose(const std::string& data) {
    auto response = ctx.within(sendPropose(data), kCallLimit, "propose()");
    return committed(response.getResult(), "propose()");
  }

  uint64_t readBarrier() {
    auto response =
        ctx.within(ctx.as<Consensus>().readBarrierRequest().send(), kCallLimit, "readBarrier()");
    auto r = response.getResult();
    if (!r.isApplied())
      fail(
          kj::str("readBarrier() on the leader of one member did not resolve"
                  " to applied"));
    return r.getApplied();
  }

  void expectNoViolations() {
    if (!store->violations.empty())
      fail(kj::str("the store saw: ", store->violations.front().c_str()));
  }

  // Every payload in `want` is in the store exactly once, at its index, in this order.
  void expectPayloads(const std::vector<std::pair<uint64_t, std::string>>& want, const char* when) {
    expectNoViolations();
    auto have = store->payloads();
    std::map<std::string, int> seen;
    for (auto& [index, data] : have) ++seen[data];
    for (auto& [index, data] : want) {
      if (seen[data] != 1) {
        fail(kj::str(when, ": the entry proposed at index ", index, " is in the store ", seen[data],
                     " times, expected once"));
      }
    }
    size_t at = 0;
    for (auto& [index, data] : have) {
      if (at < want.size() && data == want[at].second) {
        if (index != want[at].first) {
          fail(kj::str(when, ": the entry committed at index ", want[at].first,
                       " was applied at index ", index));
        }
        ++at;
      }
    }
    if (at != want.size()) {
      fail(kj::str(when, ": the store holds the proposed entries out of order"));
    }
  }

  CaseContext& ctx;
  std::mt19937_64 rng;
  uint64_t id;
  std::string storageDir;
  std::string key;
  std::shared_ptr<Store> store;
  kj::Duration applyDelay = 0 * kj::SECONDS;  // for the next start()

 private:
  kj::Maybe<capnp::Response<Consensus::StatusResults>> lastStatus;
};

// Proposes `count` distinct payloads one after another; returns (index, payload) pairs.
std::vector<std::pair<uint64_t, std::string>> proposeMany(Member& m, int count, const char* tag) {
  std::vector<std::pair<uint64_t, std::string>> done;
  uint64_t last = 0;
  for (int i = 0; i < count; ++i) {
    std::string data = kj::str(tag, "-", i, "-", kj::hex(m.rng())).cStr();
    auto pos = m.propose(data);
    if (pos.index <= last) {
      fail(kj::str("proposal ", i, " committed at index ", pos.index, ", after index ", last));
    }
    last = pos.index;
    done.emplace_back(pos.index, data);
  }
  return done;
}

// Whether any regular file under `dir` contains `needle`.
bool anyFileContains(const std::string& dir, const std::string& needle) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return false;
  bool found = false;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir + "/" + name;
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      found = anyFileContains(path, needle);
    } else if (S_ISREG(st.st_mode)) {
      std::ifstream in(path, std::ios::binary);
      std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      found = content.find(needle) != std::string::npos;
    }
    if (found) break;
  }
  closedir(d);
  return found;
}

void electsItself(CaseContext& ctx) {
  Member m(ctx);
  m.startLeader(Boot::NEW_CLUSTER);
  auto s = m.status();
  if (s.getMemberId() != m.id) {
    fail(kj::str("status() reports member ", s.getMemberId(), ", started as ", m.id));
  }
  if (s.getTerm() < 1) fail(kj::str("the leader reports term 0"));
  bool self = false;
  for (auto member : s.getMembers()) {
    self = self || (member.getId() == m.id && member.getVoter());
  }
  if (!self) fail(kj::str("status() does not list this member as a voter"));
}

void proposeAppliesOnce(CaseContext& ctx) {
  Member m(ctx);
  m.applyDelay = 50 * kj::MILLISECONDS;
  m.startLeader(Boot::NEW_CLUSTER);
  std::string data = "entry-" + m.randomBytes(16);
  auto pos = m.propose(data);
  // propose() resolves only once applied locally: the store must have it now.
  bool applied = false;
  for (auto& e : m.store->entries) {
    if (e.index == pos.index) {
      if (e.type != Entry::Type::NORMAL || e.data != data) {
        fail(kj::str("index ", pos.index, " was applied with other content than proposed"));
      }
      applied = true;
    }
  }
  if (!applied) {
    fail(kj::str("propose() resolved at index ", pos.index, " before the entry was applied"));
  }
  // And it is never applied again.
  ctx.io.provider->getTimer().afterDelay(200 * kj::MILLISECONDS).wait(ctx.waitScope);
  m.expectPayloads({{pos.index, data}}, "after one proposal");
}

void hundredInOrder(CaseContext& ctx) {
  Member m(ctx);
  m.startLeader(Boot::NEW_CLUSTER);
  auto done = proposeMany(m, 100, "seq");
  m.expectPayloads(done, "after 100 proposals");
}

void batchInOrder(CaseContext& ctx) {
  Member m(ctx);
  m.startLeader(Boot::NEW_CLUSTER);
  auto before = proposeMany(m, 3, "pre");
  auto request = ctx.as<Consensus>().proposeBatchRequest();
  std::vector<std::string> data;
  auto entries = request.initEntries(40);
  for (uint32_t i = 0; i < entries.size(); ++i) {
    data.push_back(kj::str("batch-", i, "-", kj::hex(m.rng())).cStr());
    entries.set(i, kj::arrayPtr(reinterpret_cast<const kj::byte*>(data.back().data()),
                                data.back().size()));
  }
  auto response = ctx.within(request.send(), kCallLimit, "proposeBatch() of 40 entries");
  auto results = response.getResults();
  if (results.size() != data.size()) {
    fail(kj::str("proposeBatch() of ", data.size(), " entries answered ", results.size()));
  }
  std::vector<std::pair<uint64_t, std::string>> done = before;
  for (uint32_t i = 0; i < results.size(); ++i) {
    auto pos = Member::committed(results[i], "proposeBatch()");
    if (pos.index <= done.back().first) {
      fail(kj::str("batch entry ", i, " committed at index ", pos.index, ", not after index ",
                   done.back().first, ": a batch keeps its order"));
    }
    done.emplace_back(pos.index, data[i]);
  }
  // Resolved means applied: the whole batch is in the store now, in order, once each.
  m.expectPayloads(done, "after proposeBatch()");
  auto after = proposeMany(m, 2, "post");
  done.insert(done.end(), after.begin(), after.end());
  m.expectPayloads(done, "after proposals following a batch");

  auto empty = ctx.within(ctx.as<Consensus>().proposeBatchRequest().send(), kCallLimit,
                          "proposeBatch() of no entries");
  if (empty.getResults().size() != 0) fail(kj::str("proposeBatch() of no entries answered some"));
}

void concurrentProposals(CaseContext& ctx) {
  Member m(ctx);
  m.startLeader(Boot::NEW_CLUSTER);
  std::vector<std::string> data;
  kj::Vector<kj::Promise<capnp::Response<Consensus::ProposeResults>>> calls;
  for (int i = 0; i < 50; ++i) {
    data.push_back(kj::str("par-", i, "-", kj::hex(m.rng())).cStr());
    calls.add(m.sendPropose(data.back()));
  }
  auto responses =
      ctx.within(kj::joinPromises(calls.releaseAsArray()), kCallLimit, "50 concurrent propose()");
  std::vector<std::pair<uint64_t, std::string>> done;
  for (size_t i = 0; i < responses.size(); ++i) {
    auto pos = Member::committed(responses[i].getResult(), "a concurrent propose()");
    done.emplace_back(pos.index, data[i]);
  }
  std::sort(done.begin(), done.end());
  for (size_t i = 1; i < done.size(); ++i) {
    if (done[i].first == done[i - 1].first) {
      fail(kj::str("two proposals were both committed at index ", done[i].first));
    }
  }
  m.expectPayloads(done, "after 50 concurrent proposals");
}

void readBarrierCoversCommits(CaseContext& ctx) {
  Member m(ctx);
  m.startLeader(Boot::NEW_CLUSTER);
  auto done = proposeMany(m, 10, "rb");
  uint64_t barrier = m.readBarrier();
  if (barrier < done.back().first) {
    fail(kj::str("readBarrier() returned index ", barrier, ", before the last commit at ",
                 done.back().first));
  }
  if (m.store->lastIndex() < barrier) {
    fail(kj::str("readBarrier() returned index ", barrier,
                 " but the store has applied only up "
                 "to ",
                 m.store->lastIndex()));
  }
}

void statusReportsLeader(CaseContext& ctx) {
  Member m(ctx);
  m.startLeader(Boot::NEW_CLUSTER);
  auto done = proposeMany(m, 5, "st");
  auto s = m.status();
  if (s.getRole() != schema::Role::LEADER || s.getLeaderId() != m.id) {
    fail(kj::str("status() reports role ", roleText(s.getRole()), " and leader ", s.getLeaderId(),
                 "; expected leader ", m.id));
  }
  if (s.getCommitIndex() < done.back().first || s.getAppliedIndex() < done.back().first) {
    fail(kj::str("status() reports commit index ", s.getCommitIndex(), " and applied index ",
                 s.getAppliedIndex(), " after a commit at ", done.back().first));
  }
  if (s.getLastLeaderContact() != 0) {
    fail(kj::str("the leader reports lastLeaderContact ", s.getLastLeaderContact(),
                 "; the schema says 0 when it is the leader"));
  }
}

void restartReapplies(CaseContext& ctx) {
  Member m(ctx);
  m.startLeader(Boot::NEW_CLUSTER);
  auto done = proposeMany(m, 20, "rs");
  ctx.restart();
  m.startLeader(Boot::RESTART);
  m.readBarrier();
  m.expectPayloads(done, "after a restart");
  auto next = m.propose("after-restart");
  if (next.index <= done.back().first) {
    fail(kj::str("after a restart a new entry was committed at index ", next.index,
                 ", not after the last one before it (", done.back().first, ")"));
  }
  // A second restart still has everything, the new entry included.
  done.emplace_back(next.index, "after-restart");
  ctx.restart();
  m.startLeader(Boot::RESTART);
  m.readBarrier();
  m.expectPayloads(done, "after a second restart");
}

void snapshotSurvivesRestart(CaseContext& ctx) {
  Member m(ctx);
  m.startLeader(Boot::NEW_CLUSTER);
  auto done = proposeMany(m, 10, "snap");
  auto response =
      ctx.within(ctx.as<Consensus>().snapshotNowRequest().send(), kCallLimit, "snapshotNow()");
  if (response.getMeta().getIndex() < done.back().first) {
    fail(kj::str("snapshotNow() reports index ", response.getMeta().getIndex(),
                 ", before the last applied entry at ", done.back().first));
  }
  auto more = proposeMany(m, 5, "post");
  done.insert(done.end(), more.begin(), more.end());
  ctx.restart();
  m.startLeader(Boot::RESTART);
  m.readBarrier();
  m.expectPayloads(done, "after a snapshot and a restart");
}

void wrongKeyRefused(CaseContext& ctx) {
  Member m(ctx);
  m.startLeader(Boot::NEW_CLUSTER);
  auto done = proposeMany(m, 3, "key");
  ctx.restart();
  std::string wrong = m.key;
  wrong[0] = static_cast<char>(wrong[0] ^ 0x5a);
  auto attempt = kj::runCatchingExceptions(
      [&]() { ctx.within(m.sendStart(Boot::RESTART, wrong), kCallLimit, "start()"); });
  KJ_IF_MAYBE (e, attempt) {
    if (e->getDescription().size() == 0) fail(kj::str("start() refused without a message"));
  } else {
    fail(kj::str("start() with the wrong data key succeeded; it must refuse with an error"));
  }
  // The right key still recovers everything: the refused attempt changed nothing.
  ctx.restart();
  m.startLeader(Boot::RESTART);
  m.readBarrier();
  m.expectPayloads(done, "after a refused wrong-key restart");
}

void notStoredInClear(CaseContext& ctx) {
  Member m(ctx);
  m.startLeader(Boot::NEW_CLUSTER);
  std::string marker = "clear-text-marker-" + m.randomBytes(24);
  m.propose(marker);
  if (anyFileContains(m.storageDir, marker)) {
    fail(kj::str("a proposed payload is readable in clear under the storage directory"));
  }
}

void malformedStepHarmless(CaseContext& ctx) {
  Member m(ctx);
  m.startLeader(Boot::NEW_CLUSTER);
  for (int i = 0; i < 3; ++i) {
    auto request = ctx.as<Consensus>().stepRequest();
    request.setFrom(m.id + 1 + i);
    std::string garbage = m.randomBytes(static_cast<size_t>(1 + 37 * i));
    request.setMessage(
        kj::arrayPtr(reinterpret_cast<const kj::byte*>(garbage.data()), garbage.size()));
    // Refusing (an exception) and dropping are both fine; crashing is not.
    kj::runCatchingExceptions(
        [&]() { ctx.within(request.send(), kCallLimit, "step() with garbage"); });
  }
  m.waitLeader();
  auto pos = m.propose("after-garbage");
  m.expectPayloads({{pos.index, "after-garbage"}}, "after malformed peer messages");
}

}  // namespace

std::vector<Case> consensusCases() {
  return {
      {"consensus: a single-member cluster elects itself leader", electsItself},
      {"consensus: propose commits and applies the entry once before it resolves",
       proposeAppliesOnce},
      {"consensus: 100 proposals apply in order with increasing indexes", hundredInOrder},
      {"consensus: 50 concurrent proposals each commit exactly once", concurrentProposals},
      {"consensus: proposeBatch commits each entry in order and resolves once all are applied",
       batchInOrder},
      {"consensus: readBarrier covers everything committed", readBarrierCoversCommits},
      {"consensus: status reports this member as leader with its commit and applied indexes",
       statusReportsLeader},
      {"consensus: a restart over the same storage re-applies everything committed",
       restartReapplies},
      {"consensus: a snapshot from snapshotNow and later entries survive a restart",
       snapshotSurvivesRestart},
      {"consensus: a restart with the wrong data key is refused with an error", wrongKeyRefused},
      {"consensus: committed entries are not stored in clear", notStoredInClear},
      {"consensus: a malformed peer message is refused without harm", malformedStepHarmless},
  };
}

}  // namespace swarm::conformance
