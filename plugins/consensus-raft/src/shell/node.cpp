#include "node.h"

#include <kj/debug.h>

#include <optional>

namespace swarm::raft::shell {

Node::Node() : io(sdk::asyncIo()) {}

Node::~Node() noexcept(false) {}

Replica& Node::running() {
  KJ_IF_MAYBE (r, replica) {
    (*r)->checkRunning();
    return **r;
  }
  sdk::fail("consensus-raft: call start() first");
}

kj::Promise<void> Node::start(StartContext context) {
  if (starting || replica != nullptr) {
    sdk::fail(
        "start(): already called; one plugin instance runs one member (restart the plugin "
        "to start it again)");
  }
  StartSettings settings;
  std::string why = readStartConfig(context.getParams().getConfig(), settings);
  if (!why.empty()) sdk::fail(why);

  std::optional<Storage> storage;
  try {
    storage.emplace(Storage::open(settings.storageDir, settings.dataKey));
  } catch (const StorageError& e) {
    // The storage's messages name the directory, the file and what to do.
    sdk::fail(kj::str("start(): ", e.what()));
  } catch (const std::exception& e) {
    sdk::fail(
        kj::str("start(): cannot open storageDir ", settings.storageDir.c_str(), ": ", e.what()));
  }

  auto params = context.getParams();
  starting = true;
  auto logger = [this](schema::LogLevel level, kj::StringPtr message) { log(level, message); };
  auto owned = kj::heap<Replica>(std::move(settings), std::move(*storage), params.getNetwork(),
                                 params.getMachine(), io.provider->getTimer(), kj::mv(logger));
  Replica& r = *owned;
  replica = kj::mv(owned);
  context.releaseParams();
  return kj::evalNow([&r]() { return r.boot(); })
      .then(
          [this, &r, context]() mutable {
            starting = false;
            r.fillStatus(context.getResults().initStatus());
            log(schema::LogLevel::INFO, "consensus-raft started");
          },
          [this](kj::Exception&& e) {
            // Nothing half-started stays behind: the storage closes, its lock goes with it.
            starting = false;
            replica = nullptr;
            kj::throwFatalException(kj::mv(e));
          });
}

kj::Promise<void> Node::step(StepContext context) {
  // A message before start() (or after a failure) is dropped like one to an unreachable member;
  // refusing it with an exception would break the kernel's stream of step() calls.
  KJ_IF_MAYBE (r, replica) {
    auto params = context.getParams();
    (*r)->step(params.getFrom(), params.getMessage());
  }
  return kj::READY_NOW;
}

namespace {

void writeProposeResult(const ProposeAnswer& a, schema::Consensus::ProposeResult::Builder out) {
  switch (a.kind) {
    case ProposeAnswer::Kind::committed: {
      auto position = out.initCommitted();
      position.setIndex(a.position.index);
      position.setTerm(a.position.term);
      break;
    }
    case ProposeAnswer::Kind::notLeader: out.setNotLeader(a.leaderHint); break;
    case ProposeAnswer::Kind::tooLarge: out.setTooLarge(a.limit); break;
    case ProposeAnswer::Kind::lostLeadership: out.setLostLeadership(); break;
  }
}

}  // namespace

kj::Promise<void> Node::propose(ProposeContext context) {
  auto answer = running().propose(context.getParams().getData());
  return answer.then([context](ProposeAnswer a) mutable {
    writeProposeResult(a, context.getResults().initResult());
  });
}

kj::Promise<void> Node::proposeBatch(ProposeBatchContext context) {
  Replica& replica = running();
  auto entries = context.getParams().getEntries();
  // Every entry reaches the core before the Ready loop runs, so they share one Ready: one
  // persist, one round of appends.
  auto answers = kj::heapArrayBuilder<kj::Promise<ProposeAnswer>>(entries.size());
  for (auto data : entries) answers.add(replica.propose(data));
  return kj::joinPromises(answers.finish()).then([context](kj::Array<ProposeAnswer> all) mutable {
    auto out = context.getResults().initResults(all.size());
    for (size_t i = 0; i < all.size(); ++i) writeProposeResult(all[i], out[i]);
  });
}

kj::Promise<void> Node::readBarrier(ReadBarrierContext context) {
  return running().readBarrier().then([context](ReadAnswer a) mutable {
    auto out = context.getResults().initResult();
    switch (a.kind) {
      case ReadAnswer::Kind::applied: out.setApplied(a.applied); break;
      case ReadAnswer::Kind::notLeader: out.setNotLeader(a.leaderHint); break;
      case ReadAnswer::Kind::noQuorum: out.setNoQuorum(); break;
    }
  });
}

kj::Promise<void> Node::status(StatusContext context) {
  running().fillStatus(context.getResults().initStatus());
  return kj::READY_NOW;
}

namespace {

template <typename Context>
kj::Promise<void> membershipReply(kj::Promise<MembershipAnswer> answer, Context context) {
  return answer.then([context](MembershipAnswer a) mutable {
    auto out = context.getResults().initResult();
    switch (a.kind) {
      case MembershipAnswer::Kind::done: toSchema(a.member, out.initDone()); break;
      case MembershipAnswer::Kind::notLeader: out.setNotLeader(a.leaderHint); break;
      case MembershipAnswer::Kind::unknownMember: out.setUnknownMember(); break;
      case MembershipAnswer::Kind::quorumAtRisk: out.setQuorumAtRisk(a.reason); break;
      case MembershipAnswer::Kind::inProgress: out.setInProgress(); break;
      case MembershipAnswer::Kind::invalid: out.setInvalid(a.reason); break;
    }
  });
}

}  // namespace

kj::Promise<void> Node::addMember(AddMemberContext context) {
  return membershipReply(running().addMember(fromSchema(context.getParams().getMember())), context);
}

kj::Promise<void> Node::promoteMember(PromoteMemberContext context) {
  return membershipReply(running().promoteMember(context.getParams().getId()), context);
}

kj::Promise<void> Node::removeMember(RemoveMemberContext context) {
  return membershipReply(running().removeMember(context.getParams().getId()), context);
}

kj::Promise<void> Node::transferLeadership(TransferLeadershipContext context) {
  return running()
      .transferLeadership(context.getParams().getTo())
      .then([context](TransferAnswer a) mutable {
        auto out = context.getResults().initResult();
        switch (a.kind) {
          case TransferAnswer::Kind::newLeader: out.setNewLeader(a.member); break;
          case TransferAnswer::Kind::notLeader: out.setNotLeader(a.member); break;
          case TransferAnswer::Kind::noCandidate: out.setNoCandidate(); break;
          case TransferAnswer::Kind::timedOut: out.setTimedOut(); break;
        }
      });
}

kj::Promise<void> Node::snapshotNow(SnapshotNowContext context) {
  return running().snapshotNow().then([context](SnapshotAnswer a) mutable {
    auto meta = context.getResults().initMeta();
    meta.setIndex(a.meta.index);
    meta.setTerm(a.meta.term);
    auto members = meta.initMembers(a.meta.members.size());
    for (size_t k = 0; k < a.meta.members.size(); ++k) toSchema(a.meta.members[k], members[k]);
    meta.setSizeBytes(a.sizeBytes);
  });
}

kj::Promise<void> Node::health(HealthContext context) {
  auto out = context.getResults().initHealth();
  KJ_IF_MAYBE (r, replica) {
    KJ_IF_MAYBE (why, (*r)->failed()) {
      out.setStatus(schema::Health::Status::FAILING);
      out.setMessage(kj::str("consensus-raft stopped: ", *why));
      return kj::READY_NOW;
    }
  }
  out.setStatus(schema::Health::Status::OK);
  return kj::READY_NOW;
}

kj::Promise<void> Node::shutdown(ShutdownContext) {
  // Everything is persisted synchronously, so there is nothing to drain: stop and let go of the
  // storage directory. Calls still waiting are failed as DISCONNECTED.
  KJ_IF_MAYBE (r, replica) {
    (*r)->shutdown();
  }
  return kj::READY_NOW;
}

}  // namespace swarm::raft::shell
