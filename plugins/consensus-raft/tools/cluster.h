// A cluster of raft-node processes on loopback, for the cluster tests and the benchmark: it
// picks free ports, starts, kills (-9), stops and restarts members, and talks to each through
// its Unix socket (raft_client.h). Calls here block on the caller's KJ event loop with a time
// limit, so background work on that loop (a write load) keeps running while they wait.
//
// Each member's data directory, socket and log (stdout + stderr of the process) live under one
// scratch directory, removed afterwards unless SWARM_RAFT_KEEP_CLUSTER=1.
#pragma once

#include "kv_machine.h"
#include "raft_client.h"
#include "wire.h"

#include <kj/async-io.h>

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace swarm::raft::tools {

struct ClusterOptions {
  std::string raftNode;  // the raft-node binary
  std::string plugin;    // consensus-raft.so
  std::string runner;    // swarm-plugin-runner, with outOfProcess
  bool outOfProcess = false;
  size_t size = 3;
  uint64_t tickMs = 20;
  uint64_t electionTicks = 10;
  uint64_t heartbeatTicks = 1;
  uint64_t snapshotInterval = 10000;
  uint64_t keepEntries = 500;
  uint64_t seed = 1;
  std::string logLevel = "info";
  std::string label = "raft-cluster";  // prefix of the scratch directory
};

class Cluster {
 public:
  Cluster(kj::AsyncIoContext& io, ClusterOptions options);
  ~Cluster() noexcept(false);
  KJ_DISALLOW_COPY(Cluster);

  const std::vector<uint64_t>& ids() const { return memberIds; }
  const std::string& dir() const { return scratch; }

  void startAll();  // every member with --bootstrap new; returns once all listen
  void start(uint64_t id, const std::string& bootstrap);  // "new", "restart", ...; waits for ready
  void kill(uint64_t id);                                 // SIGKILL, reaped
  void stop(uint64_t id);                                 // SIGTERM, reaped (SIGKILL after 10 s)
  bool running(uint64_t id) const;

  RaftClient& client(uint64_t id);
  // The connection to a running member, without waiting (usable from event callbacks); throws
  // DISCONNECTED if there is none. start() connects, call() reconnects.
  void reconnect(uint64_t id);

  Reply call(uint64_t id, Op op, std::string_view payload = {},
             kj::Duration limit = 10 * kj::SECONDS);
  // Blocks on the event loop: never from inside an event callback.
  NodeStatus status(uint64_t id);
  KvReport dump(uint64_t id);

  uint64_t waitLeader(kj::Duration limit = 30 * kj::SECONDS);
  // The member that the running members agree leads (a majority reports it as leader in the
  // highest term seen), polled every 20 ms. Throws after `limit`.

  void waitApplied(uint64_t index, kj::Duration limit = 30 * kj::SECONDS);
  // Until every running member has applied at least `index`.

  std::string logTail(uint64_t id, size_t lines = 30) const;
  std::string logTails(size_t lines = 30) const;  // every member's, for failure messages
  void sleep(kj::Duration d);

 private:
  struct Member {
    uint64_t id = 0;
    uint16_t port = 0;
    std::string data, socket, log;
    pid_t pid = 0;
    kj::Maybe<kj::Own<RaftClient>> client;
  };

  kj::AsyncIoContext& io;
  ClusterOptions options;
  std::string scratch;
  std::vector<uint64_t> memberIds;
  std::map<uint64_t, Member> members;

  Member& member(uint64_t id);
  const Member& member(uint64_t id) const;
  void spawn(Member& m, const std::string& bootstrap);
  void reap(Member& m, int signal, kj::Duration limit);
};

}  // namespace swarm::raft::tools
