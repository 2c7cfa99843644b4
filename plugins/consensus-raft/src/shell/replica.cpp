#include "replica.h"

#include "raft/message.h"

#include <swarm/sdk.h>

#include <kj/debug.h>
#include <kj/time.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <utility>

namespace swarm::raft::shell {

namespace {

constexpr size_t kRestoreChunkBytes = 256 * 1024;  // ByteSink.write size when restoring

schema::Role roleToSchema(Role role) {
  switch (role) {
    case Role::follower: return schema::Role::FOLLOWER;
    case Role::preCandidate: return schema::Role::PRE_CANDIDATE;
    case Role::candidate: return schema::Role::CANDIDATE;
    case Role::leader: return schema::Role::LEADER;
    case Role::learner: return schema::Role::LEARNER;
  }
  return schema::Role::FOLLOWER;
}

kj::Exception stoppedError(kj::StringPtr why) {
  return kj::Exception(kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__, kj::str(why));
}

// What StateMachine.snapshot writes, collected for the core and the storage.
struct SnapshotJob final : public kj::Refcounted {
  std::string data;
  bool done = false;
  kj::Own<kj::PromiseFulfiller<SnapshotAnswer>> result;
};

class CollectSink final : public schema::ByteSink::Server {
 public:
  explicit CollectSink(kj::Own<SnapshotJob> job) : job(kj::mv(job)) {}

  kj::Promise<void> write(WriteContext context) override {
    KJ_REQUIRE(!job->done, "ByteSink.write after done(): the snapshot was already complete");
    auto chunk = context.getParams().getChunk();
    job->data.append(reinterpret_cast<const char*>(chunk.begin()), chunk.size());
    return kj::READY_NOW;
  }

  kj::Promise<void> done(DoneContext) override {
    job->done = true;
    return kj::READY_NOW;
  }

 private:
  kj::Own<SnapshotJob> job;
};

kj::Promise<void> writeChunks(schema::ByteSink::Client sink,
                              std::shared_ptr<const std::string> data, size_t at) {
  if (at >= data->size()) return sink.doneRequest().send().ignoreResult();
  size_t n = std::min(kRestoreChunkBytes, data->size() - at);
  auto request = sink.writeRequest();
  request.setChunk(kj::arrayPtr(reinterpret_cast<const kj::byte*>(data->data() + at), n));
  return request.send().then([sink = kj::mv(sink), data = kj::mv(data), at, n]() mutable {
    return writeChunks(kj::mv(sink), kj::mv(data), at + n);
  });
}

}  // namespace

void Replica::ErrorHandler::taskFailed(kj::Exception&& exception) {
  if (loop) {
    replica.fatal(
        kj::str("the state machine or the Ready loop failed: ", exception.getDescription()));
    return;
  }
  // PeerNetwork.send is a capnp stream: after one failed call every later call on it fails too
  // (capnp/rpc.h, RpcFlowController::send), so this member could never send again. Stop with
  // the reason rather than linger as a member that hears but cannot speak; the kernel restarts
  // the plugin with a fresh PeerNetwork.
  replica.fatal(
      kj::str("PeerNetwork.send failed, which breaks the stream of sends for good (the "
              "kernel must drop an undeliverable message, never fail the call): ",
              exception.getDescription()));
}

Replica::Replica(StartSettings settings, Storage storage, schema::PeerNetwork::Client network,
                 schema::StateMachine::Client machine, kj::Timer& timer, Logger log)
    : settings(std::move(settings)),
      storage(std::move(storage)),
      network(kj::mv(network)),
      machine(kj::mv(machine)),
      timer(timer),
      log(kj::mv(log)),
      persister(kj::heap<Persister>()),
      nextTick(timer.now()),
      lastDropLog(timer.now()) {
  stats.since = timer.now();
}

Replica::~Replica() noexcept(false) {
  shutdown();
}

kj::Maybe<kj::StringPtr> Replica::failed() const {
  KJ_IF_MAYBE (f, failure) {
    return f->asPtr();
  }
  return nullptr;
}

void Replica::checkRunning() const {
  KJ_IF_MAYBE (f, failure) {
    sdk::fail(kj::str("consensus-raft stopped: ", *f));
  }
  if (stopped) kj::throwFatalException(stoppedError("consensus-raft is shutting down"));
  if (core == nullptr) sdk::fail("consensus-raft: start() has not finished yet; wait for it");
}

// ---- start --------------------------------------------------------------------------------

kj::Promise<void> Replica::boot() {
  try {
    return bootFromDisk();
  } catch (const std::exception& e) {
    // A snapshot file that fails its checks, say: say so as start()'s one line.
    sdk::fail(kj::str("start(): ", e.what()));
  }
}

kj::Promise<void> Replica::bootFromDisk() {
  Recovered rec = storage->takeRecovered();
  if (rec.tornTail) {
    const TornTail& torn = *rec.tornTail;
    log(schema::LogLevel::WARN,
        kj::str("recovered the Raft log after a crash mid-write: cut ", torn.bytesDropped,
                " bytes of a torn final record from ", torn.file.c_str(), " at offset ",
                torn.offset, " (nothing acknowledged was lost)"));
  }
  bool hasState = rec.snapshot || !rec.entries.empty() || rec.hardState.term != 0;
  auto dir = settings.storageDir.c_str();
  switch (settings.boot) {
    case Boot::newCluster:
    case Boot::join:
      if (hasState) {
        sdk::fail(kj::str("start(): storageDir ", dir, " already holds a Raft log (term ",
                          rec.hardState.term, ", last index ", storage->lastIndex(),
                          "); start with bootstrap.restart to recover it, or give ",
                          bootName(settings.boot), " an empty directory"));
      }
      break;
    case Boot::restart:
    case Boot::forceNewCluster:
      if (!hasState) {
        sdk::fail(
            kj::str("start(): storageDir ", dir, " holds no Raft state to ",
                    settings.boot == Boot::restart ? "restart from" : "force a new cluster from",
                    "; use bootstrap.newCluster or join for a new member"));
      }
      break;
  }

  InitialState initial;
  initial.hardState = rec.hardState;
  initial.entries = std::move(rec.entries);
  kj::Promise<void> restored = kj::READY_NOW;
  if (rec.snapshot) {
    // The store is a new incarnation: give it the snapshot first; the log after it follows
    // through apply() from the Ready loop.
    auto data = std::make_shared<const std::string>(storage->loadSnapshotData());
    initial.snapshot = Snapshot{*rec.snapshot, data};
    initial.applied = rec.snapshot->index;
    restored = restoreStore(*rec.snapshot, data).catch_([](kj::Exception&& e) {
      sdk::fail(kj::str("start(): StateMachine.restore of the persisted snapshot failed: ",
                        e.getDescription()));
    });
  }
  return restored.then([this, initial = std::move(initial)]() mutable {
    Index applied = initial.applied;
    try {
      core = std::make_unique<Core>(settings.coreConfig(), std::move(initial));
      if (settings.boot == Boot::newCluster) core->bootstrap(settings.initialMembers);
      if (settings.boot == Boot::forceNewCluster) core->forceNewCluster();
      // The only voter has no one to wait for: an election timeout would only delay its first
      // write (swarm init, a restarted one-manager swarm).
      const Membership& members = core->membership();
      if (members.voterCount() == 1 && members.isVoter(settings.memberId)) core->campaign();
    } catch (const std::exception& e) {
      core.reset();
      sdk::fail(kj::str("start(): ", e.what()));
    }
    machineApplied = applied;
    lastSoft = SoftState{core->leader(), core->role(), 0, core->removed()};
    nextTick = timer.now() + settings.tickMillis * kj::MILLISECONDS;
    tasks.add(tickLoop());
    afterInput();
  });
}

kj::Promise<void> Replica::tickLoop() {
  return timer.atTime(nextTick).then([this]() -> kj::Promise<void> {
    if (!running()) return kj::READY_NOW;
    core->tick();
    afterInput();
    if (timer.now() - stats.since >= 10 * kj::SECONDS) reportStats();
    // A loop that stalled (a busy CPU, a large snapshot) skips the ticks it missed instead of
    // firing them in a burst: a burst would time out elections that peers, stalled alike, never
    // had a chance to prevent.
    auto interval = settings.tickMillis * kj::MILLISECONDS;
    nextTick = std::max(nextTick + interval, timer.now());
    return tickLoop();
  });
}

void Replica::reportStats() {
  auto now = timer.now();
  double seconds = (now - stats.since) / kj::MILLISECONDS / 1000.0;
  if (stats.readies > 0) {
    auto& us = stats.persistMicros;
    std::sort(us.begin(), us.end());
    uint32_t p50 = us.empty() ? 0 : us[us.size() / 2];
    uint32_t p99 = us.empty() ? 0 : us[us.size() * 99 / 100];
    log(schema::LogLevel::DEBUG,
        kj::str("ready loop, last ", static_cast<uint64_t>(seconds), " s: ", stats.readies,
                " readies, ", stats.saves, " saves of ", stats.entriesSaved, " entries (",
                stats.saves == 0 ? 0 : stats.entriesSaved / stats.saves, " per save), persist p50 ",
                p50, " us p99 ", p99, " us, ", stats.applied, " entries applied, ", stats.proposals,
                " proposals; role ", roleName(core->role()), ", term ", core->term()));
  }
  stats = Stats{};
  stats.since = now;
}

// ---- the Ready loop -------------------------------------------------------------------------

void Replica::afterInput() {
  if (readyScheduled || !running() || !core->hasReady()) return;
  readyScheduled = true;
  tasks.add(kj::evalLast([this]() {
    readyScheduled = false;
    processReady();
  }));
}

void Replica::processReady() {
  if (!running() || readyOut || !core->hasReady()) return;
  try {
    auto rd = kj::heap<Ready>(core->ready());
    readyOut = true;
    ++stats.readies;
    // Committed entries below this Ready's new ones were persisted by earlier Readies (each one
    // finishes before the next starts): the store may have them now, while the disk writes the
    // rest. Durable before applied still holds; a received snapshot goes first, so then none.
    size_t early = 0;
    if (!rd->snapshot) {
      Index firstNew = rd->entries.empty() ? UINT64_MAX : rd->entries.front().index;
      while (early < rd->committed.size() && rd->committed[early].index < firstNew) ++early;
    }
    if (early > 0) enqueueApply(rd->committed, 0, early);
    // The leader's appends go out while its own disk works (Ready::sendableBeforePersist).
    for (const Message& m : rd->messages) {
      if (rd->sendableBeforePersist(m)) send(m);
    }

    // 1. persist, on the persister's thread. A commit index that moved is written too, not
    //    only term and vote: forceNewCluster keeps exactly what the persisted commit index
    //    covers, so a lagging one would drop acknowledged entries.
    bool save = !rd->entries.empty() || rd->hardState.has_value();
    if (!save && !rd->snapshot) {
      finishReady(*rd, early);
      return;
    }

    const Ready* ready = rd.get();
    Storage* disk = &*storage;
    if (save) {
      ++stats.saves;
      stats.entriesSaved += rd->entries.size();
    }
    auto started = kj::systemPreciseMonotonicClock().now();
    auto persisted = persister->run([ready, disk, save]() {
      try {
        if (ready->snapshot) {
          disk->installSnapshot(ready->snapshot->meta,
                                ready->snapshot->data ? *ready->snapshot->data : std::string());
        }
        if (save) disk->save(ready->hardState ? &*ready->hardState : nullptr, ready->entries);
      } catch (const std::exception& e) {
        kj::throwFatalException(
            kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__, kj::str(e.what())));
      }
    });
    tasks.add(persisted.then(
        [this, rd = kj::mv(rd), early, started]() {
          // The precise clock: the loop's timer only moves when the loop polls.
          stats.persistMicros.push_back(static_cast<uint32_t>(
              (kj::systemPreciseMonotonicClock().now() - started) / kj::MICROSECONDS));
          finishReady(*rd, early);
        },
        [this](kj::Exception&& e) {
          fatal(kj::str("persisting the Raft log in ", settings.storageDir.c_str(),
                        " failed: ", e.getDescription()));
        }));
  } catch (const std::exception& e) {
    fatal(kj::str("internal error in the Ready loop: ", e.what()));
  }
}

void Replica::finishReady(const Ready& rd, size_t early) {
  if (!running()) return;
  try {
    for (const Message& m : rd.messages) {  // 2
      if (!rd.sendableBeforePersist(m)) send(m);
    }
    if (rd.snapshot) {                             // 3
      lastSnapshotSize = rd.snapshot->data ? rd.snapshot->data->size() : 0;
      enqueueRestore(*rd.snapshot);
    }
    if (early < rd.committed.size()) enqueueApply(rd.committed, early, rd.committed.size());
    if (rd.softState) onSoftState(*rd.softState);  // 4
    if (rd.membership) onMembership(rd.membership->members);
    for (const ReadState& read : rd.readStates) onReadState(read);
    core->advance(rd);  // 5
    readyOut = false;
    reportStatus();
  } catch (const std::exception& e) {
    fatal(kj::str("internal error in the Ready loop: ", e.what()));
    return;
  }
  afterInput();
}

void Replica::send(const Message& message) {
  std::string bytes = encode(message);
  auto request = network.sendRequest();
  request.setTo(message.to);
  request.setMessage(kj::arrayPtr(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()));
  sendTasks.add(request.send());
}

void Replica::onSoftState(const SoftState& soft) {
  MemberId self = settings.memberId;
  if (lastSoft.role == Role::leader && soft.role != Role::leader) {
    // What was not committed when leadership went may or may not commit later.
    resolveCommitWaitsAbove(core->commitIndex());
  }
  for (auto& wait : transfers) {
    if (!wait.fulfiller->isWaiting()) continue;
    if (soft.leader != 0 && soft.leader != self) {
      wait.fulfiller->fulfill({TransferAnswer::Kind::newLeader, soft.leader});
    } else if (soft.role == Role::leader && soft.transferee == wait.target) {
      wait.sawTransfer = true;
    } else if (soft.role == Role::leader && soft.transferee == 0 && wait.sawTransfer) {
      wait.fulfiller->fulfill({TransferAnswer::Kind::timedOut, 0});
    }
  }
  std::erase_if(transfers, [](TransferWait& w) { return !w.fulfiller->isWaiting(); });
  if (soft.removed && !lastSoft.removed) {
    log(schema::LogLevel::WARN,
        kj::str("member ", self,
                " was removed from the cluster; it takes no further part (stop "
                "this node or start it fresh with join)"));
  }
  lastSoft = soft;
}

void Replica::onMembership(const std::vector<Member>& members) {
  auto request = network.setMembersRequest();
  fillMembers(request.initMembers(members.size()), members);
  tasks.add(request.send().ignoreResult().catch_([this](kj::Exception&& e) {
    log(schema::LogLevel::WARN, kj::str("PeerNetwork.setMembers failed: ", e.getDescription()));
  }));
  enqueueMachine(false, [this, members]() -> kj::Promise<void> {
    auto request = machine.membershipChangedRequest();
    fillMembers(request.initMembers(members.size()), members);
    return request.send().ignoreResult().catch_([this](kj::Exception&& e) {
      log(schema::LogLevel::WARN,
          kj::str("StateMachine.membershipChanged failed: ", e.getDescription()));
    });
  });
}

void Replica::onReadState(const ReadState& read) {
  auto it = readsAtCore.find(read.requestId);
  if (it == readsAtCore.end()) return;
  auto fulfiller = kj::mv(it->second);
  readsAtCore.erase(it);
  switch (read.failure) {
    case ReadFailure::none:
      if (machineApplied >= read.index) {
        fulfiller->fulfill({ReadAnswer::Kind::applied, machineApplied, 0});
      } else {
        readsAwaitingApply.emplace(read.index, kj::mv(fulfiller));
      }
      return;
    case ReadFailure::notLeader:
      fulfiller->fulfill({ReadAnswer::Kind::notLeader, 0, read.leaderHint});
      return;
    case ReadFailure::noQuorum: fulfiller->fulfill({ReadAnswer::Kind::noQuorum, 0, 0}); return;
  }
}

void Replica::reportStatus() {
  MemberId leader = core->leader();
  Term term = core->term();
  Role role = core->role();
  if (reportedStatus && leader == reportedLeader && term == reportedTerm && role == reportedRole) {
    return;
  }
  reportedStatus = true;
  reportedLeader = leader;
  reportedTerm = term;
  reportedRole = role;
  enqueueMachine(false, [this]() -> kj::Promise<void> {
    auto request = machine.statusChangedRequest();
    fillStatus(request.initStatus());
    return request.send().ignoreResult().catch_([this](kj::Exception&& e) {
      log(schema::LogLevel::WARN,
          kj::str("StateMachine.statusChanged failed: ", e.getDescription()));
    });
  });
}

void Replica::fatal(kj::StringPtr why) {
  if (failure != nullptr || stopped) return;
  failure = kj::str(why);
  log(schema::LogLevel::ERROR, kj::str("consensus-raft stopped: ", why));
  failWaits(kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                          kj::str("consensus-raft stopped: ", why)));
  releaseStorage();
}

void Replica::releaseStorage() {
  // The write in progress finishes first: the storage is never closed under it. Then the
  // directory (and its lock) is free for a restarted plugin.
  persister->stop();
  storage.reset();
}

void Replica::shutdown() {
  if (stopped) return;
  stopped = true;
  failWaits(stoppedError("consensus-raft is shutting down"));
  releaseStorage();
}

void Replica::failWaits(const kj::Exception& why) {
  for (auto& [index, wait] : commitWaits) wait.fulfiller->reject(kj::cp(why));
  commitWaits.clear();
  for (auto& [id, fulfiller] : readsAtCore) fulfiller->reject(kj::cp(why));
  readsAtCore.clear();
  for (auto& [index, fulfiller] : readsAwaitingApply) fulfiller->reject(kj::cp(why));
  readsAwaitingApply.clear();
  for (auto& wait : transfers) wait.fulfiller->reject(kj::cp(why));
  transfers.clear();
  for (auto& waiter : snapshotWaiters) waiter->reject(kj::cp(why));
  snapshotWaiters.clear();
}

// ---- the state machine ------------------------------------------------------------------------

void Replica::enqueueMachine(bool barrier, kj::Function<kj::Promise<void>()> start) {
  machineOps.push_back({barrier, kj::mv(start)});
  pumpMachine();
}

void Replica::pumpMachine() {
  while (!machineOps.empty() && !barrierRunning && failure == nullptr) {
    if (machineOps.front().barrier) {
      if (machineInFlight > 0) return;  // a restore waits for every earlier call to return
      barrierRunning = true;
    }
    MachineOp op = kj::mv(machineOps.front());
    machineOps.pop_front();
    ++machineInFlight;
    bool barrier = op.barrier;
    tasks.add(kj::evalNow([&]() { return op.start(); }).then([this, barrier]() {
      --machineInFlight;
      if (barrier) barrierRunning = false;
      pumpMachine();
    }));
  }
}

void Replica::enqueueApply(const std::vector<Entry>& committed, size_t from, size_t to) {
  auto request = machine.applyRequest();
  auto list = request.initEntries(to - from);
  std::vector<Term> terms;
  terms.reserve(to - from);
  for (size_t k = from; k < to; ++k) {
    const Entry& e = committed[k];
    auto out = list[k - from];
    out.setIndex(e.index);
    out.setTerm(e.term);
    switch (e.type) {
      case EntryType::normal: out.setType(schema::Entry::Type::NORMAL); break;
      case EntryType::membership: out.setType(schema::Entry::Type::MEMBERSHIP); break;
      case EntryType::empty: out.setType(schema::Entry::Type::EMPTY); break;
    }
    out.setData(kj::arrayPtr(reinterpret_cast<const kj::byte*>(e.data.data()), e.data.size()));
    terms.push_back(e.term);
  }
  Index first = committed[from].index;
  enqueueMachine(false,
                 [this, request = kj::mv(request), first,
                  terms = std::move(terms)]() mutable -> kj::Promise<void> {
                   return request.send().ignoreResult().then(
                       [this, first, terms = std::move(terms)]() mutable {
                         onApplied(first, std::move(terms));
                       });
                 });
}

void Replica::onApplied(Index first, std::vector<Term> terms) {
  Index last = first + terms.size() - 1;
  stats.applied += terms.size();
  machineApplied = std::max(machineApplied, last);
  for (auto it = commitWaits.lower_bound(first); it != commitWaits.end() && it->first <= last;) {
    it->second.fulfiller->fulfill(terms[it->first - first] == it->second.term);
    it = commitWaits.erase(it);
  }
  releaseReads();
  maybeAutoSnapshot();
}

void Replica::enqueueRestore(const Snapshot& snapshot) {
  SnapshotMeta meta = snapshot.meta;
  auto data = snapshot.data ? snapshot.data : std::make_shared<const std::string>();
  enqueueMachine(true, [this, meta, data]() -> kj::Promise<void> {
    return restoreStore(meta, data).then([this, index = meta.index]() {
      machineApplied = index;
      // Proposals at or below the snapshot were never applied here one by one: whether they
      // committed is unknown to this member.
      resolveCommitWaitsUpTo(index);
      releaseReads();
    });
  });
}

kj::Promise<void> Replica::restoreStore(SnapshotMeta meta,
                                        std::shared_ptr<const std::string> data) {
  auto request = machine.restoreRequest();
  auto out = request.initMeta();
  out.setIndex(meta.index);
  out.setTerm(meta.term);
  fillMembers(out.initMembers(meta.members.size()), meta.members);
  out.setSizeBytes(data->size());
  return request.send().then(
      [data =
           kj::mv(data)](capnp::Response<schema::StateMachine::RestoreResults>&& response) mutable {
        return writeChunks(response.getSink(), kj::mv(data), 0);
      });
}

void Replica::releaseReads() {
  while (!readsAwaitingApply.empty() && readsAwaitingApply.begin()->first <= machineApplied) {
    readsAwaitingApply.begin()->second->fulfill({ReadAnswer::Kind::applied, machineApplied, 0});
    readsAwaitingApply.erase(readsAwaitingApply.begin());
  }
}

void Replica::resolveCommitWaitsUpTo(Index upTo) {
  while (!commitWaits.empty() && commitWaits.begin()->first <= upTo) {
    commitWaits.begin()->second.fulfiller->fulfill(false);
    commitWaits.erase(commitWaits.begin());
  }
}

void Replica::resolveCommitWaitsAbove(Index above) {
  for (auto it = commitWaits.upper_bound(above); it != commitWaits.end();) {
    it->second.fulfiller->fulfill(false);
    it = commitWaits.erase(it);
  }
}

kj::Promise<bool> Replica::waitCommitted(Position position) {
  auto paf = kj::newPromiseAndFulfiller<bool>();
  commitWaits.emplace(position.index, CommitWait{position.term, kj::mv(paf.fulfiller)});
  return kj::mv(paf.promise);
}

// ---- snapshots ------------------------------------------------------------------------------

void Replica::maybeAutoSnapshot() {
  if (!running() || snapshotInProgress) return;
  if (machineApplied < core->snapshotIndex() + settings.snapshotInterval) return;
  tasks.add(takeSnapshot().then([](SnapshotAnswer) {},
                                [this](kj::Exception&& e) {
                                  log(schema::LogLevel::WARN,
                                      kj::str("automatic snapshot at applied index ",
                                              machineApplied, " failed: ", e.getDescription()));
                                }));
}

kj::Promise<SnapshotAnswer> Replica::snapshotNow() {
  checkRunning();
  return takeSnapshot();
}

kj::Promise<SnapshotAnswer> Replica::takeSnapshot() {
  if (snapshotInProgress) {
    // One at a time; the caller wants one taken after its call, so it takes the next.
    auto paf = kj::newPromiseAndFulfiller<void>();
    snapshotWaiters.push_back(kj::mv(paf.fulfiller));
    return paf.promise.then([this]() {
      checkRunning();
      return takeSnapshot();
    });
  }
  snapshotInProgress = true;
  auto job = kj::refcounted<SnapshotJob>();
  auto paf = kj::newPromiseAndFulfiller<SnapshotAnswer>();
  job->result = kj::mv(paf.fulfiller);
  enqueueMachine(false, [this, job = kj::mv(job)]() mutable -> kj::Promise<void> {
    auto request = machine.snapshotRequest();
    request.setSink(kj::heap<CollectSink>(kj::addRef(*job)));
    SnapshotJob& state = *job;
    return request.send()
        .then([this, &state](capnp::Response<schema::StateMachine::SnapshotResults>&& response) {
          if (!state.done) {
            sdk::fail(
                "StateMachine.snapshot returned before calling done() on the sink; its "
                "snapshot would be incomplete");
          }
          return finishSnapshot(response.getIndex(), std::move(state.data));
        })
        .then([&state](SnapshotAnswer answer) { state.result->fulfill(kj::mv(answer)); },
              [&state](kj::Exception&& e) { state.result->reject(kj::mv(e)); })
        .then([this]() {
          snapshotInProgress = false;
          auto waiters = std::move(snapshotWaiters);
          snapshotWaiters.clear();
          if (!waiters.empty()) {
            // Only the first starts the next snapshot; the others queue behind it again.
            for (auto& waiter : waiters) waiter->fulfill();
          }
        })
        .attach(kj::mv(job));
  });
  return kj::mv(paf.promise);
}

kj::Promise<SnapshotAnswer> Replica::finishSnapshot(Index index, std::string data) {
  checkRunning();
  if (index > core->appliedIndex()) {
    sdk::fail(kj::str("StateMachine.snapshot reported index ", index,
                      ", beyond the last entry handed to apply() (", core->appliedIndex(),
                      "); it must report the applied index its content is as of"));
  }
  uint64_t size = data.size();
  auto copy = std::make_shared<const std::string>(data);  // the core keeps one, the disk gets this
  SnapshotMeta meta = core->snapshotTaken(index, std::move(data));
  if (meta.index != index) {
    // A newer snapshot arrived from the leader meanwhile; it stays the latest.
    return SnapshotAnswer{meta, lastSnapshotSize};
  }
  // Queued behind the Readies that persisted the entries it covers, so the log the storage
  // compacts already holds the entry at meta.index.
  Storage* disk = &*storage;
  return persister
      ->run([disk, meta, copy]() {
        try {
          disk->saveSnapshot(meta, *copy);
          disk->compact(meta.index);
        } catch (const std::exception& e) {
          kj::throwFatalException(
              kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__, kj::str(e.what())));
        }
      })
      .then(
          [this, meta, size]() {
            lastSnapshotSize = size;
            log(schema::LogLevel::INFO,
                kj::str("snapshot at index ", meta.index, " (term ", meta.term, ", ", size,
                        " bytes) saved; log compacted"));
            return SnapshotAnswer{meta, size};
          },
          [this, index](kj::Exception&& e) -> SnapshotAnswer {
            fatal(kj::str("saving the snapshot at index ", index, " in ",
                          settings.storageDir.c_str(), " failed: ", e.getDescription()));
            kj::throwFatalException(kj::mv(e));
          });
}

// ---- calls ----------------------------------------------------------------------------------

void Replica::step(MemberId from, kj::ArrayPtr<const kj::byte> bytes) {
  if (!running()) return;
  std::string error;
  auto message =
      decode(std::string_view(reinterpret_cast<const char*>(bytes.begin()), bytes.size()), error);
  if (!message) {
    dropped(kj::str("a malformed message from member ", from, " (", bytes.size(),
                    " bytes): ", error.c_str()));
    return;
  }
  if (message->from != from) {
    dropped(kj::str("a message that claims to come from member ", message->from,
                    " but was delivered as from member ", from));
    return;
  }
  core->step(std::move(*message));
  afterInput();
}

void Replica::dropped(kj::String what) {
  // One line per second at most: a peer sending garbage must not flood the log.
  ++droppedMessages;
  auto now = timer.now();
  if (droppedMessages == 1 || now - lastDropLog >= 1 * kj::SECONDS) {
    lastDropLog = now;
    log(schema::LogLevel::WARN,
        kj::str("dropped ", what, " (", droppedMessages, " dropped so far)"));
  }
}

kj::Promise<ProposeAnswer> Replica::propose(kj::ArrayPtr<const kj::byte> data) {
  checkRunning();
  ++stats.proposals;
  ProposeOutcome out =
      core->propose(std::string(reinterpret_cast<const char*>(data.begin()), data.size()));
  afterInput();
  switch (out.kind) {
    case ProposeOutcome::Kind::notLeader:
      return ProposeAnswer{ProposeAnswer::Kind::notLeader, {}, out.leaderHint, 0};
    case ProposeOutcome::Kind::tooLarge:
      return ProposeAnswer{ProposeAnswer::Kind::tooLarge, {}, 0, out.limit};
    case ProposeOutcome::Kind::accepted: break;
  }
  Position position = out.position;
  return waitCommitted(position).then([position](bool ours) {
    return ours ? ProposeAnswer{ProposeAnswer::Kind::committed, position, 0, 0}
                : ProposeAnswer{ProposeAnswer::Kind::lostLeadership, {}, 0, 0};
  });
}

kj::Promise<ReadAnswer> Replica::readBarrier() {
  checkRunning();
  uint64_t id = nextReadId++;
  ReadOutcome out = core->readIndex(id);
  afterInput();
  if (out.kind == ReadOutcome::Kind::notLeader) {
    return ReadAnswer{ReadAnswer::Kind::notLeader, 0, out.leaderHint};
  }
  auto paf = kj::newPromiseAndFulfiller<ReadAnswer>();
  readsAtCore.emplace(id, kj::mv(paf.fulfiller));
  return kj::mv(paf.promise);
}

kj::Promise<MembershipAnswer> Replica::membershipResult(MembershipOutcome out) {
  afterInput();
  switch (out.kind) {
    case MembershipOutcome::Kind::notLeader:
      return MembershipAnswer{MembershipAnswer::Kind::notLeader, {}, out.leaderHint, {}};
    case MembershipOutcome::Kind::unknownMember:
      return MembershipAnswer{MembershipAnswer::Kind::unknownMember, {}, 0, out.reason};
    case MembershipOutcome::Kind::quorumAtRisk:
      return MembershipAnswer{MembershipAnswer::Kind::quorumAtRisk, {}, 0, out.reason};
    case MembershipOutcome::Kind::inProgress:
      return MembershipAnswer{MembershipAnswer::Kind::inProgress, {}, 0, {}};
    case MembershipOutcome::Kind::invalid:
      return MembershipAnswer{MembershipAnswer::Kind::invalid, {}, 0, out.reason};
    case MembershipOutcome::Kind::accepted: break;
  }
  return waitCommitted(out.position).then([this, member = out.member](bool ours) {
    if (ours) return MembershipAnswer{MembershipAnswer::Kind::done, member, 0, {}};
    return MembershipAnswer{MembershipAnswer::Kind::notLeader, {}, core ? core->leader() : 0, {}};
  });
}

kj::Promise<MembershipAnswer> Replica::addMember(Member member) {
  checkRunning();
  return membershipResult(core->addMember(std::move(member)));
}

kj::Promise<MembershipAnswer> Replica::promoteMember(MemberId id) {
  checkRunning();
  return membershipResult(core->promoteMember(id));
}

kj::Promise<MembershipAnswer> Replica::removeMember(MemberId id) {
  checkRunning();
  return membershipResult(core->removeMember(id));
}

kj::Promise<TransferAnswer> Replica::transferLeadership(MemberId to) {
  checkRunning();
  TransferOutcome out = core->transferLeadership(to);
  afterInput();
  switch (out.kind) {
    case TransferOutcome::Kind::notLeader:
      return TransferAnswer{TransferAnswer::Kind::notLeader, out.leaderHint};
    case TransferOutcome::Kind::noCandidate:
      return TransferAnswer{TransferAnswer::Kind::noCandidate, 0};
    case TransferOutcome::Kind::alreadyLeader:
      return TransferAnswer{TransferAnswer::Kind::newLeader, settings.memberId};
    case TransferOutcome::Kind::started: break;
  }
  auto paf = kj::newPromiseAndFulfiller<TransferAnswer>();
  transfers.push_back({out.target, false, kj::mv(paf.fulfiller)});
  // The core gives a transfer one election timeout; this bound only guards against a transfer
  // whose end the core never reports.
  auto limit = (2 * settings.electionTicks + 10) * settings.tickMillis * kj::MILLISECONDS;
  return paf.promise.exclusiveJoin(timer.afterDelay(limit).then([]() {
    return TransferAnswer{TransferAnswer::Kind::timedOut, 0};
  }));
}

void Replica::fillMembers(capnp::List<schema::Member>::Builder out,
                          const std::vector<Member>& members) const {
  for (size_t k = 0; k < members.size(); ++k) toSchema(members[k], out[k]);
}

void Replica::fillStatus(schema::Status::Builder out) const {
  KJ_REQUIRE(core != nullptr, "status before start() finished");
  Status s = core->status();
  out.setMemberId(s.id);
  out.setLeaderId(s.leader);
  out.setTerm(s.term);
  out.setRole(roleToSchema(s.role));
  out.setCommitIndex(s.commit);
  out.setAppliedIndex(machineApplied);
  fillMembers(out.initMembers(s.members.size()), s.members);
  out.setLastLeaderContact(static_cast<int64_t>(s.ticksSinceLeaderContact) * settings.tickMillis *
                           1000000);
}

}  // namespace swarm::raft::shell
