#include "cluster_net.h"

#include "errors.h"
#include "logging.h"

#include <kj/debug.h>

namespace swarm::kernel {
namespace {

class IgnoreFailures final : public kj::TaskSet::ErrorHandler {
 public:
  void taskFailed(kj::Exception&&) override {}  // each task handles its own failure
};
IgnoreFailures ignoreFailures;

}  // namespace

// ---- PeerLinks --------------------------------------------------------------------------------

struct PeerLinks::Link {
  kj::Own<TransportStream> stream;
  kj::Own<capnp::TwoPartyClient> rpc;  // after stream: destroyed first
  ManagerClient client;

  Link(kj::Own<TransportStream> s)
      : stream(kj::mv(s)), rpc(kj::heap<capnp::TwoPartyClient>(*stream)),
        client(rpc->bootstrap().castAs<store::schema::Manager>()) {}
  ~Link() noexcept(false) {
    // A close the peer sees, so the transport never hands this connection to a later dial.
    rpc = nullptr;
    stream->shutdownWrite();
  }
};

PeerLinks::PeerLinks(TransportSource transport)
    : transport(std::move(transport)), tasks(kj::heap<kj::TaskSet>(ignoreFailures)) {}

PeerLinks::~PeerLinks() = default;

kj::Maybe<ManagerClient> PeerLinks::connected(const std::string& address) {
  auto it = links.find(address);
  if (it == links.end()) return nullptr;
  return it->second->client;
}

kj::Promise<ManagerClient> PeerLinks::get(const std::string& address, DialExpect expect) {
  KJ_IF_MAYBE (client, connected(address)) {
    return *client;
  }
  auto inFlight = dialing.find(address);
  if (inFlight == dialing.end()) {
    uint64_t dialGeneration = generation;
    auto dialed = dialStream(transport(), address, kj::mv(expect))
                      .then([this, address, dialGeneration](DialedStream dialed) {
                        dialing.erase(address);
                        if (dialGeneration != generation) {
                          kj::throwFatalException(KJ_EXCEPTION(DISCONNECTED, "the node left the swarm"));
                        }
                        auto link = kj::heap<Link>(kj::mv(dialed.stream));
                        // Forget the session when the connection ends, so the next use dials again.
                        Link* raw = link.get();
                        tasks->add(link->rpc->onDisconnect().then([this, address, raw]() {
                          auto it = links.find(address);
                          if (it != links.end() && it->second.get() == raw) links.erase(it);
                        }));
                        links[address] = kj::mv(link);
                      },
                      [this, address](kj::Exception&& e) {
                        dialing.erase(address);
                        kj::throwFatalException(kj::mv(e));
                      });
    inFlight = dialing.emplace(address, dialed.fork()).first;
  }
  return inFlight->second.addBranch().then([this, address]() -> ManagerClient {
    KJ_IF_MAYBE (client, connected(address)) {
      return *client;
    }
    kj::throwFatalException(KJ_EXCEPTION(DISCONNECTED, "the session to the manager closed at once", address));
  });
}

void PeerLinks::drop(const std::string& address) { links.erase(address); }

void PeerLinks::clear() {
  ++generation;
  links.clear();
}

// ---- RaftPeers --------------------------------------------------------------------------------

RaftPeers::RaftPeers(PeerLinks& links, uint64_t selfId)
    : links(links), selfId(selfId), tasks(kj::heap<kj::TaskSet>(ignoreFailures)) {}

std::string RaftPeers::addressOf(uint64_t memberId) const {
  auto it = memberMap.find(memberId);
  return it == memberMap.end() ? std::string() : it->second.address;
}

kj::Promise<void> RaftPeers::send(SendContext context) {
  auto params = context.getParams();
  auto it = memberMap.find(params.getTo());
  if (it == memberMap.end() || it->second.address.empty()) return kj::READY_NOW;
  std::string address = it->second.address;
  KJ_IF_MAYBE (client, links.connected(address)) {
    auto step = client->raftStepRequest();
    step.setFrom(selfId);
    step.setMessage(params.getMessage());
    tasks->add(step.send().catch_([this, address](kj::Exception&&) { links.drop(address); }));
  } else {
    // Dropped: Raft resends. The dial makes the next message go through.
    tasks->add(links.get(address, DialExpect::node(it->second.nodeId)).ignoreResult().catch_([address](kj::Exception&& e) {
      logger("swarm")->debug("consensus peer {} unreachable: {}", address, describe(e));
    }));
  }
  return kj::READY_NOW;
}

void RaftPeers::seed(capnp::List<schema::Member>::Reader members) {
  for (auto member : members) {
    memberMap[member.getId()] = RaftMember{member.getId(), member.getNodeId(), member.getAddress(), member.getVoter()};
  }
}

kj::Promise<void> RaftPeers::setMembers(SetMembersContext context) {
  auto members = context.getParams().getMembers();
  if (members.size() == 0) return kj::READY_NOW;  // a joining member before its log: keep the seed
  memberMap.clear();
  for (auto member : members) {
    memberMap[member.getId()] = RaftMember{member.getId(), member.getNodeId(), member.getAddress(), member.getVoter()};
  }
  return kj::READY_NOW;
}

// ---- ServedPeers ------------------------------------------------------------------------------

struct ServedPeers::Session {
  kj::Own<TransportStream> stream;
  kj::Own<capnp::TwoPartyClient> rpc;
  Session(kj::Own<TransportStream> s, capnp::Capability::Client bootstrap)
      : stream(kj::mv(s)),
        rpc(kj::heap<capnp::TwoPartyClient>(*stream, kj::mv(bootstrap), capnp::rpc::twoparty::Side::SERVER)) {}
  ~Session() noexcept(false) { rpc = nullptr; }
};

ServedPeers::ServedPeers(OnPeer onPeer)
    : onPeer(std::move(onPeer)), tasks(kj::heap<kj::TaskSet>(ignoreFailures)) {}

ServedPeers::~ServedPeers() = default;

void ServedPeers::accept(kj::Own<TransportStream> stream, PeerIdentity peer) {
  uint64_t id = nextId++;
  auto session = kj::heap<Session>(kj::mv(stream), onPeer(peer));
  tasks->add(session->rpc->onDisconnect().then([this, id]() { sessions.erase(id); }));
  sessions[id] = kj::mv(session);
}

void ServedPeers::clear() { sessions.clear(); }

}  // namespace swarm::kernel
