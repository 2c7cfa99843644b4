#include "peer_links.h"

#include "wire.h"

#include <kj/debug.h>

#include <arpa/inet.h>
#include <sys/socket.h>

namespace swarm::raft::tools {

namespace {

constexpr size_t kMaxPendingBytes = 64u << 20;  // per peer; beyond it messages are dropped
constexpr size_t kReadBufferBytes = 256 * 1024;
constexpr auto kRedialBackoff = 50 * kj::MILLISECONDS;

}  // namespace

std::string checkLoopbackAddress(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) return "'" + address + "' is not host:port";
  std::string host = address.substr(0, colon);
  std::string port = address.substr(colon + 1);
  in_addr a{};
  if (inet_pton(AF_INET, host.c_str(), &a) != 1 || (ntohl(a.s_addr) >> 24) != 127) {
    return "'" + address + "' is not a loopback address; raft-node only uses 127.0.0.0/8";
  }
  char* end = nullptr;
  long p = strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || p <= 0 || p > 65535) {
    return "'" + address + "' has no valid port";
  }
  return {};
}

void PeerLinks::Errors::taskFailed(kj::Exception&& e) {
  // Broken links are normal when a peer is killed; they are redialled on the next message.
  if (e.getType() != kj::Exception::Type::DISCONNECTED) {
    links.log(kj::str("peer link: ", e.getDescription()));
  }
}

PeerLinks::PeerLinks(kj::AsyncIoContext& io, uint64_t selfId, Logger log)
    : io(io), selfId(selfId), log(kj::mv(log)) {}

PeerLinks::~PeerLinks() noexcept(false) {}

kj::Promise<void> PeerLinks::listen(const std::string& address) {
  std::string problem = checkLoopbackAddress(address);
  KJ_REQUIRE(problem.empty(), problem);
  return io.provider->getNetwork().parseAddress(address).then(
      [this](kj::Own<kj::NetworkAddress> addr) {
        auto receiver = addr->listen();
        auto& r = *receiver;
        listener = kj::mv(receiver);
        tasks.add(acceptLoop(r));
      });
}

void PeerLinks::setConsensus(schema::Consensus::Client c) {
  consensus = kj::mv(c);
}

void PeerLinks::route(uint64_t id, const std::string& address) {
  if (id == selfId) return;
  std::string problem = checkLoopbackAddress(address);
  if (!problem.empty()) {
    log(kj::str("no route to member ", id, ": ", problem.c_str()));
    return;
  }
  auto& slot = peers[id];
  if (!slot) {
    slot = kj::heap<Peer>();
    slot->id = id;
    slot->nextAttempt = io.provider->getTimer().now();
  }
  if (slot->address != address) {
    disconnect(*slot);
    slot->address = address;
    slot->nextAttempt = io.provider->getTimer().now();
  }
}

void PeerLinks::send(uint64_t to, kj::ArrayPtr<const kj::byte> message) {
  auto it = peers.find(to);
  if (it == peers.end() || it->second->address.empty()) {
    ++droppedCount;
    return;
  }
  Peer& peer = *it->second;
  bool usable =
      peer.link != nullptr || peer.connecting || io.provider->getTimer().now() >= peer.nextAttempt;
  if (!usable || peer.pending.size() + message.size() > kMaxPendingBytes) {
    ++droppedCount;
    return;
  }
  appendFrame(peer.pending,
              std::string_view(reinterpret_cast<const char*>(message.begin()), message.size()));
  kick(peer);
}

void PeerLinks::kick(Peer& peer) {
  KJ_IF_MAYBE (link, peer.link) {
    if (peer.writing || peer.pending.empty()) return;
    peer.writing = true;
    Link& l = **link;
    l.inFlight.swap(peer.pending);
    peer.pending.clear();
    uint64_t generation = peer.generation;
    // evalNow: a write to a reset connection can throw at once, and PeerNetwork.send must never
    // fail (a failed streaming call breaks the plugin's whole stream).
    tasks.add(kj::evalNow([&]() { return l.stream->write(l.inFlight.data(), l.inFlight.size()); })
                  .then(
                      [this, &peer, &l, generation]() {
                        l.inFlight.clear();
                        if (peer.generation != generation) return;
                        peer.writing = false;
                        kick(peer);
                      },
                      [this, &peer, generation](kj::Exception&&) {
                        if (peer.generation == generation) disconnect(peer);
                      })
                  .attach(kj::addRef(l)));
  } else if (!peer.connecting) {
    connect(peer);
  }
}

void PeerLinks::connect(Peer& peer) {
  peer.connecting = true;
  uint64_t generation = peer.generation;
  tasks.add(io.provider->getNetwork()
                .parseAddress(peer.address)
                .then([](kj::Own<kj::NetworkAddress> addr) {
                  return addr->connect().attach(kj::mv(addr));
                })
                .then(
                    [this, &peer, generation](kj::Own<kj::AsyncIoStream> stream) {
                      if (peer.generation != generation) return;
                      peer.connecting = false;
                      std::string hello;
                      ByteWriter(hello).u64(selfId);
                      peer.pending.insert(0, hello);
                      auto link = kj::refcounted<Link>();
                      link->stream = kj::mv(stream);
                      watch(peer, *link, generation);
                      peer.link = kj::mv(link);
                      kick(peer);
                    },
                    [this, &peer, generation](kj::Exception&&) {
                      if (peer.generation != generation) return;
                      disconnect(peer);
                    }));
}

void PeerLinks::watch(Peer& peer, Link& link, uint64_t generation) {
  // The peer never writes on this connection, so a read that ends means it closed or died.
  // Without this a link to a member that was killed and restarted looks healthy until a write
  // fails, and that first write (a pre-vote, say) is lost: an election timeout wasted.
  tasks.add(link.stream->tryRead(link.probe, 1, sizeof(link.probe))
                .then([](size_t) {}, [](kj::Exception&&) {})
                .then([this, &peer, generation]() {
                  if (peer.generation == generation) disconnect(peer);
                })
                .attach(kj::addRef(link)));
}

void PeerLinks::disconnect(Peer& peer) {
  // What was queued is dropped with the link; Raft resends what still matters.
  ++peer.generation;
  KJ_IF_MAYBE (link, peer.link) {
    // Ends the watcher's read and any write in progress, so the link (and the peer's side of
    // it) goes away now rather than when the process exits.
    KJ_IF_MAYBE (fd, (*link)->stream->getFd()) {
      ::shutdown(*fd, SHUT_RDWR);
    }
  }
  peer.link = nullptr;
  peer.connecting = false;
  peer.writing = false;
  if (!peer.pending.empty()) ++droppedCount;
  peer.pending.clear();
  peer.nextAttempt = io.provider->getTimer().now() + kRedialBackoff;
}

kj::Promise<void> PeerLinks::acceptLoop(kj::ConnectionReceiver& receiver) {
  return receiver.accept().then([this, &receiver](kj::Own<kj::AsyncIoStream> stream) {
    auto in = kj::heap<Incoming>();
    in->stream = kj::mv(stream);
    in->readBuffer = kj::heapArray<kj::byte>(kReadBufferBytes);
    auto& ref = *in;
    tasks.add(readMore(ref).attach(kj::mv(in)));
    return acceptLoop(receiver);
  });
}

kj::Promise<void> PeerLinks::readMore(Incoming& in) {
  return in.stream->tryRead(in.readBuffer.begin(), 1, in.readBuffer.size())
      .then([this, &in](size_t n) -> kj::Promise<void> {
        if (n == 0) return kj::READY_NOW;  // the peer closed the link
        in.buffer.append(reinterpret_cast<const char*>(in.readBuffer.begin()), n);
        if (!in.hello) {
          if (in.buffer.size() < 8) return readMore(in);
          in.from = ByteReader(in.buffer).u64();
          in.buffer.erase(0, 8);
          in.hello = true;
        }
        kj::Maybe<kj::Promise<void>> last;
        bool ok = takeFrames(in.buffer, [&](std::string_view body) {
          KJ_IF_MAYBE (c, consensus) {
            auto request = c->stepRequest();
            request.setFrom(in.from);
            request.setMessage(
                kj::arrayPtr(reinterpret_cast<const kj::byte*>(body.data()), body.size()));
            KJ_IF_MAYBE (previous, last) {
              tasks.add(kj::mv(*previous));
            }
            last = request.send();
          }
        });
        if (!ok) {
          log(kj::str("member ", in.from, " sent a frame over the size limit; closing its link"));
          return kj::READY_NOW;
        }
        // Flow control: read on once the plugin's stream of step() calls has room.
        KJ_IF_MAYBE (l, last) {
          return l->then([this, &in]() { return readMore(in); });
        }
        return readMore(in);
      });
}

kj::Promise<void> PeerNetworkServer::send(SendContext context) {
  auto params = context.getParams();
  links.send(params.getTo(), params.getMessage());
  return kj::READY_NOW;
}

kj::Promise<void> PeerNetworkServer::setMembers(SetMembersContext context) {
  for (auto m : context.getParams().getMembers()) {
    if (m.getId() != selfId) links.route(m.getId(), m.getAddress());
  }
  return kj::READY_NOW;
}

}  // namespace swarm::raft::tools
