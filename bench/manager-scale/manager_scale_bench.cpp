// manager-scale-bench: one swarm-kernel manager (bundled plugins, fake runtime) with N simulated
// worker nodes, default 1,000, all in this process on one KJ event loop with transport-tls and
// pki-x509 loaded in process. Each simulated node does what SwarmNode::join and heartbeatOnce do
// (kernel/src/manager/swarm_cluster.cpp): makeCsr, a join-mode dial pinned to the token's root
// digest, Manager.join; later a member-mode connection of its own (its certificate, with
// reuse-connections = false so no two nodes share one) and Manager.heartbeat at the period the
// manager answers.
//
//   rss-before-init     VmRSS of the manager, plugins loaded, no swarm (2 s after start)
//   rss-after-init      VmRSS 2 s after POST /swarm/init (HeartbeatPeriod 5 s)
//   rss-idle            VmRSS and CPU% over `steady` seconds more, the swarm idle with one node
//   join                per node: makeCsr + handshake + Manager.join answered (p50/p99; the
//                       dial and the call apart), and the total for N nodes
//   rss-joined          VmRSS with N nodes in the store and none connected
//   all-ready           from the first member-mode dial until GET /nodes shows all N READY
//   heartbeat           latency of the first beat (it writes READY), of later beats in a quiet
//                       manager, and of later beats while GET /nodes runs back to back
//   heartbeats/s        answered heartbeats per second over the steady window
//   rss-with-nodes      VmRSS after `steady` seconds with N nodes heartbeating, and open fds
//   cpu-heartbeating    the manager's CPU% (utime+stime of all its threads) over that window
//   node-ls             GET /nodes latency p50/p99 at N nodes, heartbeats going on
//
// Loopback and Unix sockets only. Figures mean something only in Release on a quiet machine.
#include "client.h"
#include "errors.h"
#include "logging.h"
#include "sim_node.h"

#include <boost/json.hpp>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#ifndef SWARM_BENCH_BUILD_TYPE
#define SWARM_BENCH_BUILD_TYPE "unknown"
#endif

namespace {

namespace fs = std::filesystem;
namespace schema = swarm::schema;
namespace ss = swarm::store::schema;
using swarm::ctl::ApiClient;
using namespace swarm::bench;

struct Options {
  bool quick = false;
  int nodes = 1000;
  int joinConcurrency = 1;
  int nodeLsCalls = 200;
  int steadySeconds = 10;
  int heartbeatPeriodSeconds = 5;
  // The manager's transport plugin in a child process: its RSS then shows apart from the kernel's.
  bool transportOutOfProcess = false;
};

ApiClient client(const fs::path& socket) {
  return ApiClient(swarm::ctl::parseHostAddress("unix://" + socket.string()), std::chrono::milliseconds(60000));
}


// What the simulator thread and the main thread share. Vectors are the simulator's until the
// thread is joined; the rest is atomic or under `mutex`.
struct Shared {
  enum Phase { starting, joining, allJoined, connecting, beating, failed };
  std::atomic<int> phase{starting};
  std::atomic<bool> stop{false};
  std::atomic<bool> connectGo{false};  // the main thread measured the manager with N nodes joined
  std::atomic<int> joined{0};
  std::atomic<int> connected{0};
  std::atomic<uint64_t> beats{0};
  std::atomic<uint64_t> beatErrors{0};
  std::atomic<uint64_t> joinRetries{0};
  // Written before the phase that follows them is published.
  Clock::time_point joinStart, joinEnd, connectStart, connectEnd;

  std::mutex mutex;
  std::string error;
  std::string lastBeatError;

  // Which part of the run a heartbeat answer falls in, to tell apart beats in a quiet manager from
  // beats queued behind GET /nodes on its event loop.
  enum Window { settingUp, quiet, nodeLs };
  std::atomic<int> window{settingUp};

  std::vector<double> joinMs, joinDialMs, joinCallMs, memberDialMs, firstBeatMs;
  std::vector<double> beatMs[3];  // by Window; later beats only
};

// The N simulated nodes on one KJ event loop (its own thread: the API client is synchronous).
class Simulator {
 public:
  Simulator(Shared& shared, const Options& options, std::string address, std::string token)
      : shared(shared), options(options), address(std::move(address)), token(std::move(token)),
        io(kj::setupAsyncIo()), kit(io, SWARM_BENCH_TRANSPORT, SWARM_BENCH_PKI, "manager-scale-bench") {}

  ~Simulator() noexcept(false) {
    nodes.clear();  // connections and heartbeat loops before the plugins they run on
  }

  void run() {
    kit.prepareJoins(token);
    for (int i = 0; i < options.nodes; ++i) {
      auto node = kj::heap<BeatingNode>();
      node->hostname = "sim-node-" + std::to_string(i);
      nodes.push_back(kj::mv(node));
    }

    shared.joinStart = Clock::now();
    shared.phase = Shared::joining;
    kj::Vector<kj::Promise<void>> lanes;
    for (int lane = 0; lane < options.joinConcurrency; ++lane) lanes.add(joinLane());
    kj::joinPromises(lanes.releaseAsArray()).wait(io.waitScope);
    shared.joinEnd = Clock::now();
    for (auto& node : nodes) shared.joinRetries += node->joinRetries;
    shared.phase = Shared::allJoined;
    while (!shared.connectGo && !shared.stop) kit.timer.afterDelay(10 * kj::MILLISECONDS).wait(io.waitScope);

    shared.connectStart = Clock::now();
    shared.phase = Shared::connecting;
    // One node at a time, so each node's dial time stands alone.
    for (auto& node : nodes) {
      shared.memberDialMs.push_back(kit.limited(kit.connect(*node, address), 30, "member-mode dial"));
      node->beating = heartbeatLoop(*node).eagerlyEvaluate([this](kj::Exception&& e) {
        std::lock_guard lock(shared.mutex);
        shared.lastBeatError = swarm::kernel::describe(e);
      });
      ++shared.connected;
    }
    shared.connectEnd = Clock::now();
    shared.phase = Shared::beating;

    while (!shared.stop) kit.timer.afterDelay(50 * kj::MILLISECONDS).wait(io.waitScope);
  }

 private:
  struct BeatingNode : SimNode {
    bool firstBeat = true;
    kj::Promise<void> beating = nullptr;  // destroyed before the session it runs on
  };

  kj::Promise<void> joinLane() {
    if (nextJoin == nodes.size()) return kj::READY_NOW;
    BeatingNode& node = *nodes[nextJoin++];
    return kit.join(node, address, token).then([this](JoinTiming timing) {
      shared.joinMs.push_back(timing.totalMs);
      shared.joinDialMs.push_back(timing.dialMs);
      shared.joinCallMs.push_back(timing.callMs);
      ++shared.joined;
      return joinLane();
    });
  }

  // heartbeatOnce of a worker: beat, then wait the period the manager answered.
  kj::Promise<void> heartbeatLoop(BeatingNode& node) {
    if (shared.stop) return kj::READY_NOW;
    auto beat = node.manager.heartbeatRequest();
    beat.initDescription().setHostname(node.hostname);
    auto start = Clock::now();
    return beat.send()
        .then(
            [this, &node, start](capnp::Response<ss::Manager::HeartbeatResults>&& answer) {
              double took = ms(Clock::now() - start);
              (node.firstBeat ? shared.firstBeatMs : shared.beatMs[shared.window]).push_back(took);
              node.firstBeat = false;
              ++shared.beats;
              int64_t period = answer.getSession().getPeriod();
              // 0: not the dispatcher. With one manager that is only a moment after an election.
              return kit.timer.afterDelay(period > 0 ? period * kj::NANOSECONDS : 500 * kj::MILLISECONDS);
            },
            [this](kj::Exception&& e) {
              ++shared.beatErrors;
              {
                std::lock_guard lock(shared.mutex);
                shared.lastBeatError = swarm::kernel::describe(e);
              }
              return kit.timer.afterDelay(500 * kj::MILLISECONDS);
            })
        .then([this, &node]() { return heartbeatLoop(node); });
  }

  Shared& shared;
  const Options& options;
  std::string address, token;
  kj::AsyncIoContext io;
  SimNodeKit kit;
  std::deque<kj::Own<BeatingNode>> nodes;
  size_t nextJoin = 0;
};

void simulate(Shared& shared, const Options& options, std::string address, std::string token) {
  try {
    Simulator simulator(shared, options, std::move(address), std::move(token));
    KJ_IF_MAYBE (e, kj::runCatchingExceptions([&]() { simulator.run(); })) {
      std::lock_guard lock(shared.mutex);
      shared.error = swarm::kernel::describe(*e);
      shared.phase = Shared::failed;
    }
  } catch (const std::exception& e) {
    std::lock_guard lock(shared.mutex);
    shared.error = e.what();
    shared.phase = Shared::failed;
  }
}

struct NodeCounts {
  size_t simulated = 0, ready = 0, down = 0, total = 0;
  size_t bodyBytes = 0;
};

NodeCounts countNodes(ApiClient& api) {
  auto response = api.call("GET", "/nodes");
  NodeCounts counts;
  counts.bodyBytes = response.body.size();
  auto list = boost::json::parse(response.body).as_array();
  counts.total = list.size();
  for (const auto& value : list) {
    const auto& node = value.as_object();
    std::string hostname = node.at("Description").at("Hostname").as_string().c_str();
    if (hostname.rfind("sim-node-", 0) != 0) continue;
    ++counts.simulated;
    std::string state = node.at("Status").at("State").as_string().c_str();
    if (state == "ready") ++counts.ready;
    if (state == "down") ++counts.down;
  }
  return counts;
}

int usage(FILE* out, int code) {
  std::fputs(
      "usage: manager-scale-bench [--quick] [--nodes=N] [--join-concurrency=N] [--node-ls-calls=N]\n"
      "                           [--steady-seconds=N] [--heartbeat-period=SECONDS]\n"
      "  --nodes               simulated worker nodes (default 1000; --quick: 100)\n"
      "  --join-concurrency    joins in flight at once (default 1: per-node times are service times)\n"
      "  --node-ls-calls       GET /nodes calls timed at N nodes (default 200; --quick: 50)\n"
      "  --steady-seconds      heartbeating window for RSS, CPU and heartbeats/s (default 10; --quick: 5)\n"
      "  --heartbeat-period    Spec.Dispatcher.HeartbeatPeriod in seconds (default 5)\n"
      "  --manager-transport-out-of-process\n"
      "                        run the manager's transport plugin in a child process, to see its RSS apart\n",
      out);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (std::find(args.begin(), args.end(), "--quick") != args.end()) {
    o.quick = true;
    o.nodes = 100;
    o.nodeLsCalls = 50;
    o.steadySeconds = 5;
  }
  try {
    for (const auto& a : args) {
      auto value = [&](const char* prefix) { return std::max(1, std::stoi(a.substr(std::strlen(prefix)))); };
      if (a == "--quick") continue;
      if (a == "--help" || a == "-h") return usage(stdout, 0);
      if (a.rfind("--nodes=", 0) == 0) {
        o.nodes = value("--nodes=");
      } else if (a.rfind("--join-concurrency=", 0) == 0) {
        o.joinConcurrency = value("--join-concurrency=");
      } else if (a.rfind("--node-ls-calls=", 0) == 0) {
        o.nodeLsCalls = value("--node-ls-calls=");
      } else if (a.rfind("--steady-seconds=", 0) == 0) {
        o.steadySeconds = value("--steady-seconds=");
      } else if (a == "--manager-transport-out-of-process") {
        o.transportOutOfProcess = true;
      } else if (a.rfind("--heartbeat-period=", 0) == 0) {
        o.heartbeatPeriodSeconds = value("--heartbeat-period=");
      } else {
        std::fprintf(stderr, "manager-scale-bench: unknown option '%s'; see --help\n", a.c_str());
        return 2;
      }
    }
    raiseFdLimit(o.nodes);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "manager-scale-bench: %s; see --help\n", e.what());
    return 2;
  }
  swarm::kernel::initLogging(spdlog::level::warn);

  char pattern[] = "/tmp/manager-scale-bench.XXXXXX";
  if (mkdtemp(pattern) == nullptr) {
    std::perror("manager-scale-bench: mkdtemp");
    return 1;
  }
  fs::path dir = pattern;
  fs::path conf = dir / "plugins.conf";
  writePluginsConf(conf);
  // The transport section is the last one: its isolation setting goes at the end.
  if (o.transportOutOfProcess) std::ofstream(conf, std::ios::app) << "isolation = out-of-process\n";
  fs::path socket = dir / "api.sock";
  fs::path managerLog = dir / "manager.log";
  pid_t pid = 0;
  try {
    pid = spawnKernel(SWARM_BENCH_KERNEL, conf, dir / "state", socket, managerLog);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "manager-scale-bench: %s\n", e.what());
    return 1;
  }

  Shared shared;
  std::optional<std::thread> simulator;
  auto finish = [&](int code) {
    shared.stop = true;
    if (simulator) simulator->join();
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
    if (code != 0) std::fprintf(stderr, "the manager's last log lines:\n%s", tail(managerLog, 30).c_str());
    std::error_code ec;
    fs::remove_all(dir, ec);
    return code;
  };
  auto simulatorFailed = [&]() {
    if (shared.phase != Shared::failed) return;
    std::lock_guard lock(shared.mutex);
    throw std::runtime_error("simulated nodes: " + shared.error);
  };

  try {
    double loadBefore = loadAverage();
    waitForSocket(socket, pid);
    auto api = client(socket);
    api.apiVersion();
    std::this_thread::sleep_for(std::chrono::seconds(2));
    long rssBefore = rssKiB(pid);

    std::string address = "127.0.0.1:" + std::to_string(freeLoopbackPort());
    auto t0 = Clock::now();
    api.post("/swarm/init", {},
             boost::json::object{
                 {"ListenAddr", address},
                 {"AdvertiseAddr", address},
                 {"Spec", {{"Dispatcher", {{"HeartbeatPeriod", int64_t{o.heartbeatPeriodSeconds} * 1'000'000'000}}}}}});
    double initMs = ms(Clock::now() - t0);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    long rssInit = rssKiB(pid);
    std::string token = api.get("/swarm").at("JoinTokens").at("Worker").as_string().c_str();
    long ticksPerSecond = sysconf(_SC_CLK_TCK);
    auto cpuPercent = [&](long ticks, double window) {
      return 100.0 * static_cast<double>(ticks) / static_cast<double>(ticksPerSecond) / window;
    };
    // The swarm idle with its one node: what the manager costs before any other node exists.
    long idle0 = cpuTicks(std::to_string(pid));
    auto i0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(o.steadySeconds));
    double idleCpu = cpuPercent(cpuTicks(std::to_string(pid)) - idle0, seconds(Clock::now() - i0));
    long rssIdle = rssKiB(pid);

    simulator.emplace(simulate, std::ref(shared), std::cref(o), address, token);

    // All joined, then all READY (GET /nodes polled as `docker node ls` would be).
    auto joinDeadline = Clock::now() + std::chrono::seconds(60 + o.nodes);
    while (shared.phase < Shared::allJoined) {
      simulatorFailed();
      if (Clock::now() > joinDeadline) {
        throw std::runtime_error("joins took too long: " + std::to_string(shared.joined.load()) + " of " +
                                 std::to_string(o.nodes) + " nodes joined");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // The store holds N nodes; no node is connected yet (join connections are closed).
    std::this_thread::sleep_for(std::chrono::seconds(1));
    long rssJoined = rssKiB(pid);
    size_t storeBytes = directoryBytes(dir / "state");
    shared.connectGo = true;
    while (shared.phase < Shared::connecting) {
      simulatorFailed();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    auto readyDeadline = Clock::now() + std::chrono::seconds(120 + o.nodes / 5);
    NodeCounts counts;
    Clock::time_point allReady;
    for (;;) {
      simulatorFailed();
      counts = countNodes(api);
      if (counts.ready == static_cast<size_t>(o.nodes)) {
        allReady = Clock::now();
        break;
      }
      if (Clock::now() > readyDeadline) {
        throw std::runtime_error("only " + std::to_string(counts.ready) + " of " + std::to_string(o.nodes) +
                                 " nodes READY after " + std::to_string(seconds(Clock::now() - shared.connectStart)) +
                                 " s (" + std::to_string(shared.connected.load()) + " connected, " +
                                 std::to_string(shared.beats.load()) + " heartbeats answered, " +
                                 std::to_string(shared.beatErrors.load()) + " failed)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    while (shared.phase < Shared::beating) {
      simulatorFailed();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }

    // Steady state: every node heartbeating; let the first-beat writes settle first.
    std::this_thread::sleep_for(std::chrono::seconds(2));
    long cpu0 = cpuTicks(std::to_string(pid)), self0 = cpuTicks("self");
    uint64_t beats0 = shared.beats, errors0 = shared.beatErrors;
    auto w0 = Clock::now();
    shared.window = Shared::quiet;
    std::this_thread::sleep_for(std::chrono::seconds(o.steadySeconds));
    shared.window = Shared::settingUp;
    long cpu1 = cpuTicks(std::to_string(pid)), self1 = cpuTicks("self");
    uint64_t beats1 = shared.beats, errors1 = shared.beatErrors;
    double window = seconds(Clock::now() - w0);
    long rssNodes = rssKiB(pid);
    size_t fds = openFds(pid);
    long rssBench = rssKiB(getpid());
    long rssPluginChildren = childrenRssKiB(pid);
    double managerCpu = cpuPercent(cpu1 - cpu0, window);
    double benchCpu = cpuPercent(self1 - self0, window);
    double beatsPerSecond = static_cast<double>(beats1 - beats0) / window;
    simulatorFailed();

    std::vector<double> nodeLs;
    size_t nodeLsBytes = 0;
    shared.window = Shared::nodeLs;
    for (int i = 0; i < o.nodeLsCalls; ++i) {
      auto s = Clock::now();
      auto response = api.call("GET", "/nodes");
      nodeLs.push_back(ms(Clock::now() - s));
      nodeLsBytes = response.body.size();
    }
    shared.window = Shared::settingUp;
    NodeCounts after = countNodes(api);
    long rssEnd = rssKiB(pid);

    shared.stop = true;
    simulator->join();
    simulator.reset();
    simulatorFailed();
    std::string lastBeatError = shared.lastBeatError;
    size_t managerLogLines = lineCount(managerLog);

    double joinTotal = seconds(shared.joinEnd - shared.joinStart);
    double connectTotal = seconds(shared.connectEnd - shared.connectStart);
    double readySeconds = seconds(allReady - shared.connectStart);
    std::printf("manager-scale-bench (%s build, %u CPUs, load average %.2f before, %.2f after)\n",
                SWARM_BENCH_BUILD_TYPE, std::thread::hardware_concurrency(), loadBefore, loadAverage());
    std::printf("one manager, bundled plugins in process, fake runtime; %d simulated worker nodes in this process,\n"
                "each with its own mutual-TLS connection; heartbeat period %d s; joins %d at a time\n\n",
                o.nodes, o.heartbeatPeriodSeconds, o.joinConcurrency);
    std::printf("%-22s %12s  %s\n", "metric", "value", "note");
    std::printf("%-22s %9.1f MB  %s\n", "rss-before-init", rssBefore / 1024.0, "plugins loaded, no swarm");
    std::printf("%-22s %9.1f ms  %s\n", "init", initMs, "POST /swarm/init");
    std::printf("%-22s %9.1f MB  %s\n", "rss-after-init", rssInit / 1024.0,
                "idle, one node; target <= 30 MB (dockerd in swarm mode ~105 MB)");
    std::printf("%-22s %9.1f MB  the swarm idle %d s later; CPU %.1f%% over those %d s\n", "rss-idle", rssIdle / 1024.0,
                o.steadySeconds, idleCpu, o.steadySeconds);
    std::printf("%-22s %9.2f ms  p99 %.2f ms; dial (handshake) p50 %.2f ms, Manager.join p50 %.2f ms\n",
                "join p50", percentile(shared.joinMs, 0.5), percentile(shared.joinMs, 0.99),
                percentile(shared.joinDialMs, 0.5), percentile(shared.joinCallMs, 0.5));
    std::printf("%-22s %9.2f s   %d nodes, %.0f joins/s, %llu retried (503 or backoff)\n", "join total", joinTotal,
                o.nodes, o.nodes / joinTotal, static_cast<unsigned long long>(shared.joinRetries.load()));
    std::printf("%-22s %9.1f MB  %d nodes in the store, none connected; state dir %.1f MB\n", "rss-joined",
                rssJoined / 1024.0, o.nodes, storeBytes / 1048576.0);
    std::printf("%-22s %9.2f s   %d member-mode dials one by one (p50 %.2f ms), heartbeats start as each is up\n",
                "connect total", connectTotal, o.nodes, percentile(shared.memberDialMs, 0.5));
    std::printf("%-22s %9.2f s   from the first member dial until GET /nodes shows all %d READY\n", "all-ready",
                readySeconds, o.nodes);
    std::printf("%-22s %9.2f ms  p99 %.2f ms (the first beat writes READY to the store)\n", "first heartbeat p50",
                percentile(shared.firstBeatMs, 0.5), percentile(shared.firstBeatMs, 0.99));
    const auto& quietBeats = shared.beatMs[Shared::quiet];
    const auto& nodeLsBeats = shared.beatMs[Shared::nodeLs];
    std::printf("%-22s %9.2f ms  p99 %.2f ms, later beats in the steady window (no API calls)\n", "heartbeat p50",
                percentile(quietBeats, 0.5), percentile(quietBeats, 0.99));
    if (nodeLsBeats.empty()) {
      std::printf("%-22s %12s  no beat fell in the GET /nodes calls (too few calls)\n", "heartbeat+node-ls p50", "-");
    } else {
      std::printf("%-22s %9.2f ms  p99 %.2f ms, later beats while GET /nodes is called back to back\n",
                  "heartbeat+node-ls p50", percentile(nodeLsBeats, 0.5), percentile(nodeLsBeats, 0.99));
    }
    std::printf("%-22s %9.1f /s  over %.1f s (expected ~%.0f/s: N / period), %llu failed\n", "heartbeats", beatsPerSecond,
                window, static_cast<double>(o.nodes) / o.heartbeatPeriodSeconds,
                static_cast<unsigned long long>(errors1 - errors0));
    std::printf("%-22s %9.1f MB  after %d s of %d nodes heartbeating; %zu open fds (this process: %.1f MB)\n",
                "rss-with-nodes", rssNodes / 1024.0, o.steadySeconds + 2, o.nodes, fds, rssBench / 1024.0);
    if (o.transportOutOfProcess) {
      std::printf("%-22s %9.1f MB  the manager's transport plugin, out of process (not in the line above)\n",
                  "rss-transport-child", rssPluginChildren / 1024.0);
    }
    std::printf("%-22s %9.1f %%   manager, all threads, over the window (this process: %.1f%%)\n", "cpu-heartbeating",
                managerCpu, benchCpu);
    std::printf("%-22s %9.2f ms  p99 %.2f ms over %d calls, %zu nodes, %.0f KB per answer\n", "node-ls p50",
                percentile(nodeLs, 0.5), percentile(nodeLs, 0.99), o.nodeLsCalls, after.total, nodeLsBytes / 1024.0);
    std::printf("%-22s %9zu     of %d READY at the end (%zu down), %llu heartbeats failed in all%s%s\n", "ready-at-end",
                after.ready, o.nodes, after.down, static_cast<unsigned long long>(shared.beatErrors.load()),
                lastBeatError.empty() ? "" : "; last: ", lastBeatError.c_str());
    std::printf("%-22s %9.1f MB  after the node-ls calls; the manager logged %zu lines at warn or above\n",
                "rss-end", rssEnd / 1024.0, managerLogLines);
    std::printf(
        "{\"bench\":\"manager-scale\",\"record\":\"result\",\"buildType\":\"%s\",\"cpus\":%u,\"loadBefore\":%.2f,"
        "\"loadAfter\":%.2f,\"nodes\":%d,\"joinConcurrency\":%d,\"heartbeatPeriodS\":%d,"
        "\"rssBeforeInitKiB\":%ld,\"initMs\":%.1f,\"rssAfterInitKiB\":%ld,\"rssIdleKiB\":%ld,\"idleCpuPercent\":%.1f,"
        "\"rssJoinedKiB\":%ld,\"stateDirBytes\":%zu,\"joinP50Ms\":%.2f,\"joinP99Ms\":%.2f,"
        "\"joinDialP50Ms\":%.2f,\"joinCallP50Ms\":%.2f,\"joinTotalS\":%.2f,\"joinRetries\":%llu,"
        "\"connectTotalS\":%.2f,\"allReadyS\":%.2f,\"firstBeatP50Ms\":%.2f,\"firstBeatP99Ms\":%.2f,"
        "\"beatP50Ms\":%.2f,\"beatP99Ms\":%.2f,\"beatDuringNodeLsP50Ms\":%.2f,\"beatDuringNodeLsP99Ms\":%.2f,"
        "\"benchRssKiB\":%ld,\"transportOutOfProcess\":%s,\"pluginChildrenRssKiB\":%ld,\"heartbeatsPerSec\":%.1f,\"rssWithNodesKiB\":%ld,\"managerFds\":%zu,"
        "\"managerCpuPercent\":%.1f,\"benchCpuPercent\":%.1f,\"nodeLsP50Ms\":%.2f,\"nodeLsP99Ms\":%.2f,"
        "\"nodeLsBytes\":%zu,\"readyAtEnd\":%zu,\"heartbeatErrors\":%llu,\"rssEndKiB\":%ld}\n",
        SWARM_BENCH_BUILD_TYPE, std::thread::hardware_concurrency(), loadBefore, loadAverage(), o.nodes,
        o.joinConcurrency, o.heartbeatPeriodSeconds, rssBefore, initMs, rssInit, rssIdle, idleCpu, rssJoined, storeBytes, percentile(shared.joinMs, 0.5),
        percentile(shared.joinMs, 0.99), percentile(shared.joinDialMs, 0.5), percentile(shared.joinCallMs, 0.5),
        joinTotal, static_cast<unsigned long long>(shared.joinRetries.load()), connectTotal, readySeconds,
        percentile(shared.firstBeatMs, 0.5), percentile(shared.firstBeatMs, 0.99), percentile(quietBeats, 0.5),
        percentile(quietBeats, 0.99), percentile(nodeLsBeats, 0.5), percentile(nodeLsBeats, 0.99), rssBench,
        o.transportOutOfProcess ? "true" : "false", rssPluginChildren,
        beatsPerSecond, rssNodes, fds, managerCpu, benchCpu,
        percentile(nodeLs, 0.5), percentile(nodeLs, 0.99), nodeLsBytes, after.ready,
        static_cast<unsigned long long>(shared.beatErrors.load()), rssEnd);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "manager-scale-bench: %s\n", e.what());
    return finish(1);
  }
  return finish(0);
}
