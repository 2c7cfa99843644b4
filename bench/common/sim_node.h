// Simulated swarm nodes for the manager benchmarks (manager-scale, manager-assign): what
// SwarmNode::join and the agent's session do (kernel/src/manager/swarm_cluster.cpp), from one
// bench process on one KJ event loop, with transport-tls and pki-x509 loaded in process. Plus the
// helpers both benchmarks use to start swarm-kernel processes and read their RSS and CPU.
//
// A SimNodeKit owns the plugins every simulated node shares: one PKI and one transport with
// reuse-connections = false, so no two nodes share a connection. A node joins with join() (makeCsr,
// a join-mode dial pinned to the token's root digest, Manager.join) and gets its own member-mode
// connection, with its certificate, with connect().
#pragma once

#include "transport_stream.h"

#include <swarm/schema/pki.capnp.h>
#include <swarm/schema/transport.capnp.h>
#include <swarm/store/cluster.capnp.h>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace swarm::kernel {
class PluginInstance;
}

namespace swarm::bench {

using Clock = std::chrono::steady_clock;

double ms(Clock::duration d);
double seconds(Clock::duration d);
double percentile(std::vector<double> values, double p);  // p in [0, 1]; 0 for none

// /proc readings of a process.
long rssKiB(pid_t pid);                 // VmRSS, -1 when gone
long cpuTicks(const std::string& pid);  // utime + stime of all its threads ("self" for this one)
long childrenRssKiB(pid_t pid);         // VmRSS of its children (out-of-process plugins), summed
size_t openFds(pid_t pid);
double loadAverage();                   // one minute

// A loopback port nobody listens on right now (a manager binds it a moment later).
int freeLoopbackPort();
// Each simulated node holds a connection here and one in the manager: lifts the soft fd limit to
// the hard one (children inherit it), or says how to when even that is too low.
void raiseFdLimit(int nodes);

// A plugins.conf naming the bundled plugins, with the fake runtime.
void writePluginsConf(const std::filesystem::path& conf);
// swarm-kernel --plugins conf --state-dir stateDir --api-socket socket --log-level warn (or
// $SWARM_BENCH_KERNEL_LOG_LEVEL), its output into log.
pid_t spawnKernel(const char* binary, const std::filesystem::path& conf, const std::filesystem::path& stateDir,
                  const std::filesystem::path& socket, const std::filesystem::path& log);
// Waits (10 s at most) for the API socket; throws if the process exited meanwhile.
void waitForSocket(const std::filesystem::path& socket, pid_t pid);

std::string tail(const std::filesystem::path& file, size_t lines);  // indented, for error output
size_t lineCount(const std::filesystem::path& file);
size_t directoryBytes(const std::filesystem::path& dir);

capnp::Data::Reader bytes(const std::string& s);
std::string text(capnp::Data::Reader d);

// One simulated node: its identity once joined, and its member-mode session once connected.
struct SimNode {
  std::string hostname;
  std::string key, chain, roots, nodeId, clusterId;
  int joinRetries = 0;
  std::string connectedTo;  // the manager address of `manager`
  // Declared in the order they are built: destroyed client first, stream last.
  kj::Own<swarm::kernel::TransportStream> stream;
  kj::Own<capnp::TwoPartyClient> rpc;
  swarm::store::schema::Manager::Client manager = nullptr;

  void disconnect();
};

// Where one join's time went.
struct JoinTiming {
  double totalMs = 0;  // makeCsr + dial + Manager.join
  double dialMs = 0;   // the join-mode handshake
  double callMs = 0;   // Manager.join answered
};

class SimNodeKit {
 public:
  // Loads the plugins (transport and PKI libraries as built) on `io`'s event loop.
  SimNodeKit(kj::AsyncIoContext& io, const char* transportLibrary, const char* pkiLibrary, std::string benchName);
  ~SimNodeKit() noexcept(false);  // stops the plugins: drop every node's session first

  // The token's root digest and join-mode credentials; once, before any join().
  void prepareJoins(const std::string& token);

  // What SwarmNode::join does, asked again (up to 20 times, 200 ms apart) while the swarm is busy
  // (503) or the dial backs off, as SwarmNode::join does.
  kj::Promise<JoinTiming> join(SimNode& node, const std::string& managerAddress, const std::string& token);

  // A member-mode connection of the node's own (its certificate) to a manager, with a Manager
  // client on it. Connections are made one at a time (the transport's credentials apply to the
  // dials that follow them); resolves to the dial's time in ms. Replaces an earlier session.
  kj::Promise<double> connect(SimNode& node, const std::string& managerAddress);

  // Waits for the promise, failing after limitSeconds.
  template <typename T>
  T limited(kj::Promise<T>&& promise, int limitSeconds, const char* what) {
    return promise
        .exclusiveJoin(timer.afterDelay(limitSeconds * kj::SECONDS).then([what, limitSeconds]() -> kj::Promise<T> {
          return KJ_EXCEPTION(FAILED, "no answer in time", what, limitSeconds);
        }))
        .wait(io.waitScope);
  }

  kj::AsyncIoContext& io;
  kj::Timer& timer;

 private:
  capnp::Capability::Client startPlugin(swarm::schema::Kind kind, const char* library,
                                        std::vector<std::pair<std::string, std::string>> settings);
  kj::Promise<double> connectNow(SimNode& node, const std::string& managerAddress);

  std::string benchName;
  std::vector<kj::Own<swarm::kernel::PluginInstance>> plugins;
  swarm::schema::Transport::Client transport = nullptr;
  swarm::schema::Pki::Client pki = nullptr;
  std::string digest;
  bool joinMode = false;
  kj::ForkedPromise<void> connecting;  // the last connect(): the next one waits for it
};

}  // namespace swarm::bench
