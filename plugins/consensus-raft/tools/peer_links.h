// The raft-node harness's stand-in for the kernel's transport: PeerNetwork over plain TCP between
// harness processes on loopback. Each node listens on its member address; a link to a peer is
// one outgoing connection that starts with the sender's member ID (u64) and then carries frames
// (u32 length + the plugin's message). Incoming frames become Consensus.step(from, message).
//
// Best effort, like the real transport: a message to a peer that is down, unknown or too far
// behind is dropped (Raft resends); a broken connection is redialled on the next message after a
// short backoff. Loopback only: any other address is refused.
#pragma once

#include <swarm/schema/consensus.capnp.h>

#include <kj/async-io.h>
#include <kj/function.h>
#include <kj/timer.h>

#include <cstdint>
#include <map>
#include <string>

namespace swarm::raft::tools {

std::string checkLoopbackAddress(const std::string& address);
// "" when `address` is 127.x.y.z:port, else what is wrong.

class PeerLinks {
 public:
  using Logger = kj::Function<void(kj::StringPtr)>;
  PeerLinks(kj::AsyncIoContext& io, uint64_t selfId, Logger log);
  ~PeerLinks() noexcept(false);
  KJ_DISALLOW_COPY(PeerLinks);

  kj::Promise<void> listen(const std::string& address);
  // Resolves once the listening socket is bound; accepting goes on in the background.

  void setConsensus(schema::Consensus::Client consensus);
  // Where incoming messages go; until set they are dropped.

  void route(uint64_t id, const std::string& address);
  // Where member `id` listens; a changed address drops the old link.

  void send(uint64_t to, kj::ArrayPtr<const kj::byte> message);

  uint64_t dropped() const { return droppedCount; }

 private:
  struct Link final : public kj::Refcounted {
    // One connection. A write in progress holds a reference, so dropping a link never frees the
    // stream or the bytes under a pending write.
    kj::Own<kj::AsyncIoStream> stream;
    std::string inFlight;  // the bytes of the write() in progress
    kj::byte probe[16];    // watch(): reads here only end when the peer closes
  };
  struct Peer {
    uint64_t id = 0;
    std::string address;
    kj::Maybe<kj::Own<Link>> link;
    bool connecting = false;
    bool writing = false;
    std::string pending;  // frames not yet handed to write()
    kj::TimePoint nextAttempt = kj::origin<kj::TimePoint>();
    uint64_t generation = 0;  // bumped on every disconnect, so stale completions are ignored
  };
  struct Incoming {
    kj::Own<kj::AsyncIoStream> stream;
    std::string buffer;
    kj::Array<kj::byte> readBuffer;
    uint64_t from = 0;
    bool hello = false;
  };
  class Errors final : public kj::TaskSet::ErrorHandler {
   public:
    explicit Errors(PeerLinks& links) : links(links) {}
    void taskFailed(kj::Exception&& e) override;

   private:
    PeerLinks& links;
  };

  kj::AsyncIoContext& io;
  uint64_t selfId;
  Logger log;
  kj::Maybe<schema::Consensus::Client> consensus;
  std::map<uint64_t, kj::Own<Peer>> peers;
  kj::Maybe<kj::Own<kj::ConnectionReceiver>> listener;
  uint64_t droppedCount = 0;
  Errors errors{*this};
  kj::TaskSet tasks{errors};

  void kick(Peer& peer);
  void connect(Peer& peer);
  void watch(Peer& peer, Link& link, uint64_t generation);
  void disconnect(Peer& peer);
  kj::Promise<void> acceptLoop(kj::ConnectionReceiver& receiver);
  kj::Promise<void> readMore(Incoming& in);
};

class PeerNetworkServer final : public schema::PeerNetwork::Server {
 public:
  explicit PeerNetworkServer(PeerLinks& links, uint64_t selfId) : links(links), selfId(selfId) {}
  kj::Promise<void> send(SendContext context) override;
  kj::Promise<void> setMembers(SetMembersContext context) override;

 private:
  PeerLinks& links;
  uint64_t selfId;
};

}  // namespace swarm::raft::tools
