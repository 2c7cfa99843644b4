// The RPC sessions between swarm-kernel processes (kernel/schema/cluster.capnp), over the
// transport plugin's mutual-TLS connections:
//
//   PeerLinks    this node's dialed sessions, one per manager address, shared by every user (Raft
//                messages, forwarded writes and joins, heartbeats). A session that breaks is
//                forgotten and dialed again on next use.
//   RaftPeers    the consensus plugin's PeerNetwork: routes a member's messages over PeerLinks
//                and never waits or fails (an undeliverable message is dropped; Raft retries).
//   ServedPeers  the accepting side: one RPC session per accepted connection, serving the
//                Manager interface an `OnPeer` factory makes for the caller's verified identity.
//
// All on the kernel's KJ thread.
#pragma once

#include "transport_stream.h"

#include <swarm/schema/consensus.capnp.h>
#include <swarm/store/cluster.capnp.h>

#include <capnp/rpc-twoparty.h>
#include <kj/async.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace swarm::kernel {

using ManagerClient = store::schema::Manager::Client;

class PeerLinks {
 public:
  using TransportSource = std::function<schema::Transport::Client()>;
  explicit PeerLinks(TransportSource transport);
  ~PeerLinks();
  KJ_DISALLOW_COPY(PeerLinks);

  // The Manager capability at `address`, dialing once if no session is open; concurrent callers
  // share the dial. Rejects with the transport's refusal.
  kj::Promise<ManagerClient> get(const std::string& address, DialExpect expect = DialExpect::manager());
  // The session if one is open now (never dials).
  kj::Maybe<ManagerClient> connected(const std::string& address);
  // Forgets a session a call found broken; the next get() dials again.
  void drop(const std::string& address);
  // Closes every session (leave, credentials changed).
  void clear();

 private:
  struct Link;
  TransportSource transport;
  std::map<std::string, kj::Own<Link>> links;
  std::map<std::string, kj::ForkedPromise<void>> dialing;
  uint64_t generation = 0;  // clear() makes dials in flight land nowhere
  kj::Own<kj::TaskSet> tasks;
};

// What the consensus plugin told the network about the members (setMembers).
struct RaftMember {
  uint64_t id = 0;
  std::string nodeId;
  std::string address;
  bool voter = false;
};

class RaftPeers final : public schema::PeerNetwork::Server {
 public:
  RaftPeers(PeerLinks& links, uint64_t selfId);

  kj::Promise<void> send(SendContext context) override;
  kj::Promise<void> setMembers(SetMembersContext context) override;

  // A joining manager's first view of the members (from the join answer), until its log says.
  void seed(capnp::List<schema::Member>::Reader members);
  const std::map<uint64_t, RaftMember>& members() const { return memberMap; }
  // "" when unknown.
  std::string addressOf(uint64_t memberId) const;

 private:
  PeerLinks& links;
  uint64_t selfId;
  std::map<uint64_t, RaftMember> memberMap;
  kj::Own<kj::TaskSet> tasks;
};

class ServedPeers {
 public:
  using OnPeer = std::function<capnp::Capability::Client(const PeerIdentity&)>;
  explicit ServedPeers(OnPeer onPeer);
  ~ServedPeers();
  KJ_DISALLOW_COPY(ServedPeers);

  // For StreamAcceptor: serves the connection until either side closes it.
  void accept(kj::Own<TransportStream> stream, PeerIdentity peer);
  void clear();

 private:
  struct Session;
  OnPeer onPeer;
  uint64_t nextId = 1;
  std::map<uint64_t, kj::Own<Session>> sessions;
  kj::Own<kj::TaskSet> tasks;
};

}  // namespace swarm::kernel
