// GCC 12 reports a false -Wmaybe-uninitialized inside kj::_::ExceptionOr<Outcome> (a kj::Maybe
// around a struct with std::optional and std::string members) for every ready-made promise.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "replication.h"

#include "errors.h"

#include <kj/debug.h>

#include <algorithm>
#include <memory>


namespace swarm::kernel {
namespace {

constexpr size_t kSnapshotChunkBytes = 256 * 1024;
// Outcomes kept for local proposers: a proposer asks as soon as its entry applied, so this only
// has to cover the entries applied in one batch of apply() calls.
constexpr size_t kRecentOutcomes = 65536;

kj::ArrayPtr<const kj::byte> bytesOf(const std::string& s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

class TaskErrors final : public kj::TaskSet::ErrorHandler {
 public:
  void taskFailed(kj::Exception&&) override {}  // each task reports its own failure
};
TaskErrors taskErrors;

// Feeds a snapshot's chunks, in order, to the store's restore; swaps the store in on done().
class RestoreSink final : public schema::ByteSink::Server {
 public:
  RestoreSink(store::Store& store, uint64_t index) : restore(store.beginRestore()), index(index) {}

  kj::Promise<void> write(WriteContext context) override {
    auto chunk = context.getParams().getChunk();
    restore->addChunk(chunk);
    return kj::READY_NOW;
  }

  kj::Promise<void> done(DoneContext) override {
    // A snapshot the store cannot take fails the plugin's restore, never half-applies: finish()
    // checks everything before it replaces the store (and throws kj::Exception otherwise).
    restore->finish(index);
    return kj::READY_NOW;
  }

 private:
  kj::Own<store::Restore> restore;
  uint64_t index;
};

kj::Promise<void> writeChunks(schema::ByteSink::Client sink,
                              std::shared_ptr<std::vector<std::string>> chunks, size_t at) {
  if (at >= chunks->size()) return sink.doneRequest().send().ignoreResult();
  auto request = sink.writeRequest();
  request.setChunk(bytesOf((*chunks)[at]));
  return request.send().then([sink = kj::mv(sink), chunks = kj::mv(chunks), at]() mutable {
    return writeChunks(kj::mv(sink), kj::mv(chunks), at + 1);
  });
}

}  // namespace

Replication::Replication(store::Store& store)
    : store(store), tasks(kj::heap<kj::TaskSet>(taskErrors)) {}

void Replication::attach(schema::Consensus::Client client) { consensus = kj::mv(client); }

void Replication::detach() {
  consensus = nullptr;
  for (auto& q : queued) {
    q.fulfiller->fulfill(
        Outcome{0, std::nullopt, ProposeError{ProposeError::Kind::stopped, 0, "the manager is stopping"}});
  }
  queued.clear();
}

void Replication::onViewChange(std::function<void(const ConsensusView&)> callback) {
  viewCallback = std::move(callback);
}

kj::Promise<Replication::Outcome> Replication::propose(std::string entry) {
  if (consensus == nullptr) {
    return Outcome{0, std::nullopt,
                   ProposeError{ProposeError::Kind::stopped, 0,
                                "this node is not a manager of a running swarm"}};
  }
  auto paf = kj::newPromiseAndFulfiller<Outcome>();
  queued.push_back({std::move(entry), kj::mv(paf.fulfiller)});
  if (!batchScheduled) {
    batchScheduled = true;
    tasks->add(kj::evalLast([this]() { return sendBatch(); }));
  }
  return kj::mv(paf.promise);
}

kj::Promise<void> Replication::sendBatch() {
  batchScheduled = false;
  auto batch = std::make_shared<std::vector<Queued>>(std::move(queued));
  queued.clear();
  if (batch->empty()) return kj::READY_NOW;
  KJ_IF_MAYBE (client, consensus) {
    auto request = client->proposeBatchRequest();
    auto entries = request.initEntries(batch->size());
    for (size_t i = 0; i < batch->size(); ++i) entries.set(i, bytesOf((*batch)[i].entry));
    return request.send().then(
        [this, batch](capnp::Response<schema::Consensus::ProposeBatchResults>&& response) {
          auto results = response.getResults();
          for (size_t i = 0; i < batch->size(); ++i) {
            Outcome outcome;
            if (i >= results.size()) {
              outcome.failed = ProposeError{ProposeError::Kind::lostLeadership, 0,
                                            "the consensus plugin answered fewer proposals"};
            } else {
              auto r = results[i];
              switch (r.which()) {
                case schema::Consensus::ProposeResult::COMMITTED: {
                  outcome.index = r.getCommitted().getIndex();
                  auto found = recentOutcomes.find(outcome.index);
                  if (found != recentOutcomes.end()) {
                    outcome.applied = found->second;
                    recentOutcomes.erase(found);
                  } else {
                    outcome.failed = ProposeError{ProposeError::Kind::lostLeadership, 0,
                                                  "the entry committed but its outcome was not "
                                                  "recorded here; read the object back"};
                  }
                  break;
                }
                case schema::Consensus::ProposeResult::NOT_LEADER: {
                  uint64_t hint = r.getNotLeader();
                  outcome.failed = ProposeError{
                      hint == 0 ? ProposeError::Kind::noLeader : ProposeError::Kind::notLeader,
                      hint, ""};
                  break;
                }
                case schema::Consensus::ProposeResult::TOO_LARGE:
                  outcome.failed = ProposeError{
                      ProposeError::Kind::tooLarge, 0,
                      "the change is larger than the " + std::to_string(r.getTooLarge()) +
                          " bytes one consensus entry may carry; split it"};
                  break;
                case schema::Consensus::ProposeResult::LOST_LEADERSHIP:
                  outcome.failed = ProposeError{ProposeError::Kind::lostLeadership, 0,
                                                "leadership moved before the change committed; "
                                                "it may or may not have been applied"};
                  break;
              }
            }
            (*batch)[i].fulfiller->fulfill(kj::mv(outcome));
          }
        },
        [batch](kj::Exception&& e) {
          for (auto& q : *batch) {
            q.fulfiller->fulfill(Outcome{0, std::nullopt,
                                         ProposeError{ProposeError::Kind::stopped, 0,
                                                      "the consensus plugin failed: " + describe(e)}});
          }
        });
  }
  for (auto& q : *batch) {
    q.fulfiller->fulfill(Outcome{0, std::nullopt,
                                 ProposeError{ProposeError::Kind::stopped, 0, "the manager is stopping"}});
  }
  return kj::READY_NOW;
}

kj::Promise<std::optional<ProposeError>> Replication::readBarrier() {
  KJ_IF_MAYBE (client, consensus) {
    return client->readBarrierRequest().send().then(
        [](capnp::Response<schema::Consensus::ReadBarrierResults>&& response)
            -> std::optional<ProposeError> {
          auto r = response.getResult();
          switch (r.which()) {
            case schema::Consensus::ReadResult::APPLIED: return std::nullopt;
            case schema::Consensus::ReadResult::NOT_LEADER:
              return ProposeError{r.getNotLeader() == 0 ? ProposeError::Kind::noLeader
                                                        : ProposeError::Kind::notLeader,
                                  r.getNotLeader(), ""};
            case schema::Consensus::ReadResult::NO_QUORUM:
              return ProposeError{ProposeError::Kind::noLeader, 0, ""};
          }
          return ProposeError{ProposeError::Kind::noLeader, 0, ""};
        });
  }
  return std::optional<ProposeError>(
      ProposeError{ProposeError::Kind::stopped, 0, "this node is not a manager of a running swarm"});
}

kj::Promise<void> Replication::apply(ApplyContext context) {
  for (auto e : context.getParams().getEntries()) {
    if (e.getType() != schema::Entry::Type::NORMAL) continue;  // the plugin's own entries
    store::ApplyResult result = store.apply(e.getIndex(), e.getData());
    recentOutcomes[e.getIndex()] = std::move(result);
  }
  while (recentOutcomes.size() > kRecentOutcomes) recentOutcomes.erase(recentOutcomes.begin());
  return kj::READY_NOW;
}

kj::Promise<void> Replication::snapshot(SnapshotContext context) {
  auto chunks = std::make_shared<std::vector<std::string>>();
  uint64_t index = store.appliedIndex();
  store.writeSnapshot(kSnapshotChunkBytes, [&](kj::ArrayPtr<const kj::byte> chunk) {
    chunks->emplace_back(reinterpret_cast<const char*>(chunk.begin()), chunk.size());
  });
  return writeChunks(context.getParams().getSink(), kj::mv(chunks), 0)
      .then([context, index]() mutable { context.getResults().setIndex(index); });
}

kj::Promise<void> Replication::restore(RestoreContext context) {
  context.getResults().setSink(
      kj::heap<RestoreSink>(store, context.getParams().getMeta().getIndex()));
  return kj::READY_NOW;
}

kj::Promise<void> Replication::membershipChanged(MembershipChangedContext context) {
  consensusView.members.clear();
  for (auto m : context.getParams().getMembers()) {
    consensusView.members.emplace_back(m.getId(), std::string(m.getNodeId().cStr()));
  }
  if (viewCallback) viewCallback(consensusView);
  return kj::READY_NOW;
}

kj::Promise<void> Replication::statusChanged(StatusChangedContext context) {
  auto s = context.getParams().getStatus();
  consensusView.memberId = s.getMemberId();
  consensusView.leaderId = s.getLeaderId();
  consensusView.term = s.getTerm();
  consensusView.role = s.getRole();
  if (viewCallback) viewCallback(consensusView);
  return kj::READY_NOW;
}

}  // namespace swarm::kernel
