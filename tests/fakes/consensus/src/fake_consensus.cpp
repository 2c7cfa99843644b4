#include "fake_consensus.h"

#include <kj/debug.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>

namespace swarm::fakes {
namespace {

using schema::Entry;

std::string toString(capnp::Data::Reader data) {
  return std::string(reinterpret_cast<const char*>(data.begin()), data.size());
}

kj::ArrayPtr<const kj::byte> bytesOf(const std::string& s) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

// Receives the state machine's snapshot bytes for snapshotNow().
class Collector final : public schema::ByteSink::Server {
 public:
  explicit Collector(std::shared_ptr<std::string> bytes) : bytes(kj::mv(bytes)) {}

  kj::Promise<void> write(WriteContext context) override {
    auto chunk = context.getParams().getChunk();
    bytes->append(reinterpret_cast<const char*>(chunk.begin()), chunk.size());
    return kj::READY_NOW;
  }
  kj::Promise<void> done(DoneContext) override { return kj::READY_NOW; }

 private:
  std::shared_ptr<std::string> bytes;
};

}  // namespace

FakeConsensus::FakeConsensus() : applyTail(kj::Promise<void>(kj::READY_NOW).fork()), tasks(*this) {}

void FakeConsensus::taskFailed(kj::Exception&& exception) {
  log(schema::LogLevel::WARN, kj::str("status notification: ", exception.getDescription()));
}

void FakeConsensus::fillSelf(schema::Member::Builder member) const {
  member.setId(self.id);
  member.setNodeId(self.nodeId);
  member.setAddress(self.address);
  member.setVoter(true);
}

void FakeConsensus::fillStatus(schema::Status::Builder status) const {
  status.setMemberId(self.id);
  status.setLeaderId(leading() ? self.id : 0);
  status.setTerm(term);
  status.setRole(leading() ? schema::Role::LEADER : schema::Role::FOLLOWER);
  status.setCommitIndex(commitIndex);
  status.setAppliedIndex(appliedIndex);
  if (started) fillSelf(status.initMembers(1)[0]);
  status.setLastLeaderContact(0);
}

kj::Promise<void> FakeConsensus::sendApply(std::vector<LogEntry> batch) {
  KJ_IF_MAYBE (m, machine) {
    auto request = m->applyRequest();
    auto list = request.initEntries(static_cast<unsigned>(batch.size()));
    for (unsigned i = 0; i < batch.size(); ++i) {
      list[i].setIndex(batch[i].index);
      list[i].setTerm(batch[i].term);
      list[i].setType(static_cast<Entry::Type>(batch[i].type));
      list[i].setData(bytesOf(batch[i].data));
    }
    uint64_t last = batch.back().index;
    return request.send().then([this, last](auto) { appliedIndex = last; });
  }
  KJ_FAIL_ASSERT("apply before start()");
}

kj::Promise<void> FakeConsensus::enqueueApply(std::vector<LogEntry> batch) {
  auto next =
      applyTail.addBranch()
          .then([this, batch = kj::mv(batch)]() mutable { return sendApply(kj::mv(batch)); })
          .catch_([this](kj::Exception&& e) -> kj::Promise<void> {
            if (broken == nullptr) {
              broken = kj::str("the state machine refused entries: ", e.getDescription());
            }
            return kj::mv(e);
          });
  applyTail = next.fork();
  return applyTail.addBranch();
}

kj::Promise<void> FakeConsensus::sendSnapshot(Snapshot snapshot) {
  KJ_IF_MAYBE (m, machine) {
    auto request = m->restoreRequest();
    auto meta = request.initMeta();
    meta.setIndex(snapshot.index);
    meta.setTerm(snapshot.term);
    fillSelf(meta.initMembers(1)[0]);
    meta.setSizeBytes(snapshot.data.size());
    uint64_t index = snapshot.index;
    size_t chunk = std::min<uint64_t>(maxMessageBytes, 64 * 1024);
    auto data = std::make_shared<std::string>(kj::mv(snapshot.data));
    return request.send()
        .then([data, chunk](auto response) {
          auto sink = response.getSink();
          kj::Promise<void> writes = kj::READY_NOW;
          for (size_t at = 0; at < data->size(); at += chunk) {
            writes = writes.then([sink, data, at, chunk]() mutable {
              auto write = sink.writeRequest();
              write.setChunk(bytesOf(*data).slice(at, std::min(data->size(), at + chunk)));
              return write.send();
            });
          }
          return writes.then([sink]() mutable { return sink.doneRequest().send().ignoreResult(); });
        })
        .then([this, index]() { appliedIndex = index; });
  }
  KJ_FAIL_ASSERT("restore before start()");
}

kj::Promise<void> FakeConsensus::start(StartContext context) {
  if (started) sdk::fail("start() was already called on this fake-consensus instance");
  auto params = context.getParams();
  auto config = params.getConfig();
  if (config.getDataKey().size() != 32) {
    sdk::fail(kj::str("dataKey is ", config.getDataKey().size(), " bytes; it must be 32"));
  }
  std::string dir = config.getStorageDir();
  if (dir.empty()) sdk::fail("storageDir is empty; give the plugin a directory of its own");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) sdk::fail(kj::str("cannot create storageDir ", dir.c_str(), ": ", ec.message().c_str()));
  maxMessageBytes = std::max<uint64_t>(config.getMaxMessageBytes(), 1024);

  auto sealed = kj::heap<SealedLog>(dir, toString(config.getDataKey()));
  kj::Maybe<Snapshot> snapshot;
  auto bootstrap = config.getBootstrap();
  switch (bootstrap.which()) {
    case schema::StartConfig::Bootstrap::NEW_CLUSTER: {
      auto members = bootstrap.getNewCluster();
      if (members.size() != 1) {
        sdk::fail(kj::str("fake-consensus is single-node only: newCluster lists ", members.size(),
                          " members; bootstrap with this node alone, or use the consensus-raft "
                          "plugin for a multi-member cluster"));
      }
      auto m = members[0];
      if (m.getId() == 0) sdk::fail("newCluster's member has ID 0; give it a non-zero ID");
      if (config.getMemberId() != 0 && config.getMemberId() != m.getId()) {
        sdk::fail(kj::str("memberId ", config.getMemberId(), " is not the newCluster member (",
                          m.getId(), ")"));
      }
      self = {m.getId(), m.getNodeId(), m.getAddress()};
      sealed->create(self);
      break;
    }
    case schema::StartConfig::Bootstrap::JOIN:
      sdk::fail(
          "fake-consensus is single-node only and cannot join a cluster; use the "
          "consensus-raft plugin");
    case schema::StartConfig::Bootstrap::RESTART:
    case schema::StartConfig::Bootstrap::FORCE_NEW_CLUSTER: {
      // With one member, forcing a new cluster is the same as restarting.
      auto replay = sealed->open();
      if (config.getMemberId() != 0 && config.getMemberId() != replay.self.id) {
        sdk::fail(kj::str("storageDir ", dir.c_str(), " belongs to member ", replay.self.id,
                          ", not ", config.getMemberId()));
      }
      self = replay.self;
      if (replay.hasSnapshot) {
        snapshotIndex = lastIndex = replay.snapshot.index;
        snapshotTerm = term = replay.snapshot.term;
        snapshot = kj::mv(replay.snapshot);
      }
      for (auto& e : replay.entries) {
        lastIndex = e.index;
        term = std::max(term, e.term);
      }
      entries = kj::mv(replay.entries);
      break;
    }
  }

  // A new term, opened with a no-op entry as a Raft leader does.
  ++term;
  LogEntry noop{lastIndex + 1, term, static_cast<uint8_t>(Entry::Type::EMPTY), ""};
  sealed->append(noop);
  lastIndex = commitIndex = noop.index;
  entries.push_back(noop);
  disk = kj::mv(sealed);
  machine = params.getMachine();
  started = true;

  // The new incarnation of the store gets everything: the snapshot, then every entry after it.
  kj::Promise<void> delivery = kj::READY_NOW;
  KJ_IF_MAYBE (s, snapshot) {
    delivery = sendSnapshot(kj::mv(*s));
  }
  applyTail = delivery.fork();
  std::vector<LogEntry> batch;
  kj::Promise<void> replayed = kj::READY_NOW;
  for (size_t i = 0; i < entries.size(); ++i) {
    batch.push_back(entries[i]);
    if (batch.size() == 256 || i + 1 == entries.size()) {
      replayed = enqueueApply(kj::mv(batch));
      batch.clear();
    }
  }
  return replayed.then([this, context]() mutable {
    fillStatus(context.getResults().initStatus());
    KJ_IF_MAYBE (m, machine) {
      auto members = m->membershipChangedRequest();
      fillSelf(members.initMembers(1)[0]);
      tasks.add(members.send().ignoreResult());
      auto changed = m->statusChangedRequest();
      fillStatus(changed.initStatus());
      tasks.add(changed.send().ignoreResult());
    }
  });
}

kj::Promise<void> FakeConsensus::step(StepContext context) {
  // A single member has no peers; whatever arrives is not for it.
  log(schema::LogLevel::WARN,
      kj::str("dropped a ", context.getParams().getMessage().size(), "-byte message from member ",
              context.getParams().getFrom(), ": fake-consensus is single-node and has no peers"));
  return kj::READY_NOW;
}

kj::Maybe<LogEntry> FakeConsensus::admit(capnp::Data::Reader data,
                                         schema::Consensus::ProposeResult::Builder result) {
  if (!leading()) {
    result.setNotLeader(0);
    return nullptr;
  }
  if (data.size() > maxMessageBytes) {
    result.setTooLarge(maxMessageBytes);
    return nullptr;
  }
  KJ_IF_MAYBE (b, broken) {
    sdk::fail(*b);
  }
  LogEntry e{lastIndex + 1, term, static_cast<uint8_t>(Entry::Type::NORMAL), toString(data)};
  KJ_IF_MAYBE (l, disk) {
    (*l)->append(e);
  }  // durable before anything else sees it
  lastIndex = commitIndex = e.index;
  entries.push_back(e);
  auto committed = result.initCommitted();  // written now, readable once the apply resolves
  committed.setIndex(e.index);
  committed.setTerm(e.term);
  return kj::mv(e);
}

kj::Promise<void> FakeConsensus::propose(ProposeContext context) {
  KJ_IF_MAYBE (e, admit(context.getParams().getData(), context.getResults().initResult())) {
    return enqueueApply({kj::mv(*e)}).attach(kj::mv(context));
  }
  return kj::READY_NOW;
}

kj::Promise<void> FakeConsensus::proposeBatch(ProposeBatchContext context) {
  auto entries = context.getParams().getEntries();
  auto results = context.getResults().initResults(entries.size());
  std::vector<LogEntry> batch;
  for (uint32_t i = 0; i < entries.size(); ++i) {
    KJ_IF_MAYBE (e, admit(entries[i], results[i])) {
      batch.push_back(kj::mv(*e));
    }
  }
  if (batch.empty()) return kj::READY_NOW;
  return enqueueApply(kj::mv(batch)).attach(kj::mv(context));
}

kj::Promise<void> FakeConsensus::readBarrier(ReadBarrierContext context) {
  if (!leading()) {
    context.getResults().initResult().setNotLeader(0);
    return kj::READY_NOW;
  }
  uint64_t index = commitIndex;
  return applyTail.addBranch().then(
      [context, index]() mutable { context.getResults().initResult().setApplied(index); });
}

kj::Promise<void> FakeConsensus::status(StatusContext context) {
  fillStatus(context.getResults().initStatus());
  return kj::READY_NOW;
}

kj::Promise<void> FakeConsensus::addMember(AddMemberContext context) {
  if (!leading()) {
    context.getResults().initResult().setNotLeader(0);
    return kj::READY_NOW;
  }
  sdk::fail(
      "fake-consensus is single-node only and cannot add members; use the consensus-raft "
      "plugin");
}

kj::Promise<void> FakeConsensus::promoteMember(PromoteMemberContext context) {
  auto result = context.getResults().initResult();
  if (!leading()) {
    result.setNotLeader(0);
  } else if (context.getParams().getId() == self.id) {
    fillSelf(result.initDone());
  } else {
    result.setUnknownMember();
  }
  return kj::READY_NOW;
}

kj::Promise<void> FakeConsensus::removeMember(RemoveMemberContext context) {
  auto result = context.getResults().initResult();
  if (!leading()) {
    result.setNotLeader(0);
  } else if (context.getParams().getId() == self.id) {
    result.setQuorumAtRisk("removing the only member would leave no quorum");
  } else {
    result.setUnknownMember();
  }
  return kj::READY_NOW;
}

kj::Promise<void> FakeConsensus::transferLeadership(TransferLeadershipContext context) {
  auto result = context.getResults().initResult();
  if (!leading()) {
    result.setNotLeader(0);
  } else {
    result.setNoCandidate();
  }
  return kj::READY_NOW;
}

kj::Promise<void> FakeConsensus::snapshotNow(SnapshotNowContext context) {
  if (!leading()) sdk::fail("snapshotNow() before start(): there is nothing to snapshot");
  return applyTail.addBranch()
      .then([this]() {
        KJ_IF_MAYBE (m, machine) {
          auto bytes = std::make_shared<std::string>();
          auto request = m->snapshotRequest();
          request.setSink(kj::heap<Collector>(bytes));
          return request.send().then([bytes](auto response) {
            return std::make_pair(response.getIndex(), kj::mv(*bytes));
          });
        }
        KJ_UNREACHABLE;
      })
      .then([this, context](std::pair<uint64_t, std::string> taken) mutable {
        uint64_t index = taken.first;
        uint64_t indexTerm = 0;
        if (index == snapshotIndex) {
          indexTerm = snapshotTerm;
        } else {
          for (auto& e : entries) {
            if (e.index == index) indexTerm = e.term;
          }
        }
        if (indexTerm == 0 || index > appliedIndex) {
          sdk::fail(kj::str("the state machine's snapshot claims index ", index,
                            ", which is not an applied entry (applied up to ", appliedIndex, ")"));
        }
        std::vector<LogEntry> later;
        for (auto& e : entries) {
          if (e.index > index) later.push_back(e);
        }
        size_t size = taken.second.size();
        KJ_IF_MAYBE (l, disk) {
          (*l)->saveSnapshot({index, indexTerm, kj::mv(taken.second)}, self, later);
        }
        entries = kj::mv(later);
        snapshotIndex = index;
        snapshotTerm = indexTerm;
        auto meta = context.getResults().initMeta();
        meta.setIndex(index);
        meta.setTerm(indexTerm);
        fillSelf(meta.initMembers(1)[0]);
        meta.setSizeBytes(size);
      });
}

kj::Promise<void> FakeConsensus::health(HealthContext context) {
  auto health = context.getResults().initHealth();
  KJ_IF_MAYBE (b, broken) {
    health.setStatus(schema::Health::Status::FAILING);
    health.setMessage(*b);
  } else {
    health.setStatus(schema::Health::Status::OK);
  }
  return kj::READY_NOW;
}

kj::Promise<void> FakeConsensus::shutdown(ShutdownContext) {
  // Take no new work, let queued applies finish, then close the log.
  stopping = true;
  return applyTail.addBranch().catch_([](kj::Exception&&) {}).then([this]() { disk = nullptr; });
}

}  // namespace swarm::fakes
