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
#include "config.h"
#include "errors.h"
#include "logging.h"
#include "plugin_host.h"
#include "transport_stream.h"

#include <swarm/schema/pki.capnp.h>
#include <swarm/schema/transport.capnp.h>
#include <swarm/store/cluster.capnp.h>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <boost/json.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
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

extern char** environ;

namespace {

namespace fs = std::filesystem;
namespace schema = swarm::schema;
namespace ss = swarm::store::schema;
using Clock = std::chrono::steady_clock;
using swarm::ctl::ApiClient;
using swarm::kernel::DialedStream;
using swarm::kernel::DialExpect;

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

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }
double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

long rssKiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// utime + stime of every thread of the process, in clock ticks (/proc/<pid>/stat fields 14, 15).
long cpuTicks(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return -1;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return utime + stime;
}

// VmRSS of the process's children (out-of-process plugins), summed.
long childrenRssKiB(pid_t pid) {
  long total = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::ifstream children(it->path() / "children");
    pid_t child = 0;
    while (children >> child) total += rssKiB(child);
  }
  return total;
}

size_t openFds(pid_t pid) {
  std::error_code ec;
  size_t n = 0;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    ++n;
  }
  return n;
}

double loadAverage() {
  double one = 0;
  std::ifstream("/proc/loadavg") >> one;
  return one;
}

// A loopback port nobody listens on right now (the manager binds it a moment later).
int freeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    ::close(fd);
    throw std::runtime_error(std::string("binding a loopback port: ") + std::strerror(err));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Each simulated node holds a connection in this process and one in the manager: lift the soft fd
// limit to the hard one (the manager inherits it).
void raiseFdLimit(int nodes) {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < static_cast<rlim_t>(nodes) + 256) {
    throw std::runtime_error("the open-file limit (" + std::to_string(limit.rlim_cur) + ") is too low for " +
                             std::to_string(nodes) + " nodes; raise it with ulimit -n or lower --nodes");
  }
}

pid_t spawnKernel(const fs::path& dir, const fs::path& conf, const fs::path& socket, const fs::path& log) {
  std::vector<std::string> args = {SWARM_BENCH_KERNEL, "--plugins",   conf.string(),   "--state-dir",
                                   (dir / "state").string(), "--api-socket", socket.string(), "--log-level",
                                   "warn"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, SWARM_BENCH_KERNEL, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("starting swarm-kernel failed: " + std::string(std::strerror(rc)));
  return pid;
}

void waitForSocket(const fs::path& socket, pid_t pid) {
  for (int i = 0; i < 400 && !fs::exists(socket); ++i) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) throw std::runtime_error("swarm-kernel exited during start-up");
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
}

ApiClient client(const fs::path& socket) {
  return ApiClient(swarm::ctl::parseHostAddress("unix://" + socket.string()), std::chrono::milliseconds(60000));
}

capnp::Data::Reader bytes(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}
std::string text(capnp::Data::Reader d) { return std::string(reinterpret_cast<const char*>(d.begin()), d.size()); }

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
        io(kj::setupAsyncIo()), timer(io.provider->getTimer()) {}

  ~Simulator() noexcept(false) {
    nodes.clear();  // connections and heartbeat loops before the plugins they run on
    for (auto& plugin : plugins) {
      kj::runCatchingExceptions([&]() { plugin->stop().wait(io.waitScope); });
    }
  }

  void run() {
    transport = startPlugin(schema::Kind::TRANSPORT, SWARM_BENCH_TRANSPORT, {{"reuse-connections", "false"}})
                    .castAs<schema::Transport>();
    pki = startPlugin(schema::Kind::PKI, SWARM_BENCH_PKI, {}).castAs<schema::Pki>();

    auto digestRequest = pki.rootDigestOfTokenRequest();
    digestRequest.setToken(token);
    digest = limited(digestRequest.send(), 30, "rootDigestOfToken").getDigest();
    // Empty credentials: join mode, as SwarmNode::join sets them; the same for every join.
    auto joinMode = transport.setCredentialsRequest();
    joinMode.initCredentials();
    limited(joinMode.send(), 30, "setCredentials (join mode)");

    for (int i = 0; i < options.nodes; ++i) {
      auto node = kj::heap<SimNode>();
      node->hostname = "sim-node-" + std::to_string(i);
      nodes.push_back(kj::mv(node));
    }

    shared.joinStart = Clock::now();
    shared.phase = Shared::joining;
    kj::Vector<kj::Promise<void>> lanes;
    for (int lane = 0; lane < options.joinConcurrency; ++lane) lanes.add(joinLane());
    kj::joinPromises(lanes.releaseAsArray()).wait(io.waitScope);
    shared.joinEnd = Clock::now();
    shared.phase = Shared::allJoined;
    while (!shared.connectGo && !shared.stop) timer.afterDelay(10 * kj::MILLISECONDS).wait(io.waitScope);

    shared.connectStart = Clock::now();
    shared.phase = Shared::connecting;
    // One node at a time: setCredentials applies to the dials that follow it, so each connection
    // carries the certificate of the node it belongs to.
    for (auto& node : nodes) {
      limited(connect(*node), 30, "member-mode dial");
      ++shared.connected;
    }
    shared.connectEnd = Clock::now();
    shared.phase = Shared::beating;

    while (!shared.stop) timer.afterDelay(50 * kj::MILLISECONDS).wait(io.waitScope);
  }

 private:
  struct SimNode {
    std::string hostname;
    std::string key, chain, roots, nodeId, clusterId;
    int retries = 0;
    bool firstBeat = true;
    // Declared in the order they are built: destroyed heartbeat loop first, stream last.
    kj::Own<swarm::kernel::TransportStream> stream;
    kj::Own<capnp::TwoPartyClient> rpc;
    ss::Manager::Client manager = nullptr;
    kj::Promise<void> beating = nullptr;
  };

  capnp::Capability::Client startPlugin(schema::Kind kind, const char* library,
                                        std::vector<std::pair<std::string, std::string>> settings) {
    swarm::kernel::PluginConfig config;
    config.kind = kind;
    config.library = library;
    config.onCrash = swarm::kernel::CrashPolicy::stop;
    config.settings = std::move(settings);
    config.sourceFile = "manager-scale-bench";
    plugins.push_back(swarm::kernel::PluginInstance::start(io, config, {}));
    limited(plugins.back()->configure(), 30, library);
    return plugins.back()->bootstrap();
  }

  template <typename T>
  T limited(kj::Promise<T>&& promise, int limitSeconds, const char* what) {
    return promise
        .exclusiveJoin(timer.afterDelay(limitSeconds * kj::SECONDS).then([what, limitSeconds]() -> kj::Promise<T> {
          return KJ_EXCEPTION(FAILED, "no answer in time", what, limitSeconds);
        }))
        .wait(io.waitScope);
  }

  kj::Promise<void> joinLane() {
    if (nextJoin == nodes.size()) return kj::READY_NOW;
    SimNode& node = *nodes[nextJoin++];
    return joinOne(node).then([this]() {
      ++shared.joined;
      return joinLane();
    });
  }

  // What SwarmNode::join does per attempt, timed in three parts.
  kj::Promise<void> joinOne(SimNode& node) {
    auto start = Clock::now();
    auto csr = pki.makeCsrRequest();
    auto identity = csr.initIdentity();
    identity.setNodeId("joining");
    identity.setClusterId("joining");
    return csr.send()
        .then([this, &node, start](capnp::Response<schema::Pki::MakeCsrResults>&& made) {
          node.key = text(made.getKey());
          std::string csrPem = text(made.getCsr());
          auto dialStart = Clock::now();
          return swarm::kernel::dialStream(transport, address, DialExpect::joinRootDigest(digest))
              .then([this, &node, start, dialStart, csrPem = std::move(csrPem)](DialedStream dialed) {
                auto callStart = Clock::now();
                auto rpc = kj::heap<capnp::TwoPartyClient>(*dialed.stream);
                auto call = rpc->bootstrap().castAs<ss::Manager>().joinRequest();
                auto request = call.initRequest();
                request.setToken(token);
                request.setCsr(bytes(csrPem));
                request.setAvailability(schema::NodeAvailability::ACTIVE);
                request.setAdvertiseAddr("127.0.0.1:2377");
                auto description = request.initDescription();
                description.setHostname(node.hostname);
                description.getPlatform().setOs("linux");
                description.getPlatform().setArchitecture("x86_64");
                description.getEngine().setEngineVersion("manager-scale-bench");
                return call.send()
                    .then([this, &node, start, dialStart, callStart](
                              capnp::Response<ss::Manager::JoinResults>&& answer) {
                      auto response = answer.getResponse();
                      node.nodeId = response.getNodeId();
                      node.clusterId = response.getClusterId();
                      node.chain = text(response.getCertChain());
                      node.roots = text(response.getRootCerts());
                      auto done = Clock::now();
                      shared.joinMs.push_back(ms(done - start));
                      shared.joinDialMs.push_back(ms(callStart - dialStart));
                      shared.joinCallMs.push_back(ms(done - callStart));
                    })
                    .attach(kj::mv(rpc), kj::mv(dialed.stream));
              });
        })
        .catch_([this, &node](kj::Exception&& e) -> kj::Promise<void> {
          // SwarmNode::join asks again when the swarm is busy (503) or the dial backs off.
          std::string why = swarm::kernel::describe(e);
          bool transient = why.find("HTTP 503") != std::string::npos || why.find("backing off") != std::string::npos ||
                           why.find("not dialing again") != std::string::npos;
          if (!transient || ++node.retries > 20) {
            return KJ_EXCEPTION(FAILED, "join failed", node.hostname.c_str(), node.retries, why.c_str());
          }
          ++shared.joinRetries;
          return timer.afterDelay(200 * kj::MILLISECONDS).then([this, &node]() { return joinOne(node); });
        });
  }

  kj::Promise<void> connect(SimNode& node) {
    auto set = transport.setCredentialsRequest();
    auto credentials = set.initCredentials();
    credentials.setChain(bytes(node.chain));
    credentials.setKey(bytes(node.key));
    credentials.initRoots(1).set(0, bytes(node.roots));
    credentials.setClusterId(node.clusterId);
    credentials.setMinVersion(schema::TlsVersion::TLS12);
    return set.send()
        .then([this](auto&&) {
          auto dialStart = Clock::now();
          return swarm::kernel::dialStream(transport, address, DialExpect::manager())
              .then([this, dialStart](DialedStream dialed) {
                shared.memberDialMs.push_back(ms(Clock::now() - dialStart));
                return kj::mv(dialed);
              });
        })
        .then([this, &node](DialedStream dialed) {
          KJ_REQUIRE(dialed.peer.isManager(), "the listener is not a manager", dialed.peer.describe().c_str());
          node.stream = kj::mv(dialed.stream);
          node.rpc = kj::heap<capnp::TwoPartyClient>(*node.stream);
          node.manager = node.rpc->bootstrap().castAs<ss::Manager>();
          node.beating = heartbeatLoop(node).eagerlyEvaluate([this](kj::Exception&& e) {
            std::lock_guard lock(shared.mutex);
            shared.lastBeatError = swarm::kernel::describe(e);
          });
        });
  }

  // heartbeatOnce of a worker: beat, then wait the period the manager answered.
  kj::Promise<void> heartbeatLoop(SimNode& node) {
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
              return timer.afterDelay(period > 0 ? period * kj::NANOSECONDS : 500 * kj::MILLISECONDS);
            },
            [this](kj::Exception&& e) {
              ++shared.beatErrors;
              {
                std::lock_guard lock(shared.mutex);
                shared.lastBeatError = swarm::kernel::describe(e);
              }
              return timer.afterDelay(500 * kj::MILLISECONDS);
            })
        .then([this, &node]() { return heartbeatLoop(node); });
  }

  Shared& shared;
  const Options& options;
  std::string address, token, digest;
  kj::AsyncIoContext io;
  kj::Timer& timer;
  std::vector<kj::Own<swarm::kernel::PluginInstance>> plugins;
  schema::Transport::Client transport = nullptr;
  schema::Pki::Client pki = nullptr;
  std::deque<kj::Own<SimNode>> nodes;
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

std::string tail(const fs::path& file, size_t lines) {
  std::ifstream in(file);
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (last.size() > lines) last.pop_front();
  }
  std::string out;
  for (auto& l : last) out += "  " + l + "\n";
  return out;
}

size_t lineCount(const fs::path& file) {
  std::ifstream in(file);
  size_t n = 0;
  std::string line;
  while (std::getline(in, line)) ++n;
  return n;
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
  {
    std::ofstream out(conf);
    out << "[consensus]\nlibrary = " << SWARM_BENCH_CONSENSUS << "\n"
        << "[pki]\nlibrary = " << SWARM_BENCH_PKI << "\n"
        << "[scheduler]\nlibrary = " << SWARM_BENCH_SCHEDULER << "\n"
        << "[runtime]\nlibrary = " << SWARM_BENCH_RUNTIME << "\n"
        << "[transport]\nlibrary = " << SWARM_BENCH_TRANSPORT << "\n";
    if (o.transportOutOfProcess) out << "isolation = out-of-process\n";
  }
  fs::path socket = dir / "api.sock";
  fs::path managerLog = dir / "manager.log";
  pid_t pid = 0;
  try {
    pid = spawnKernel(dir, conf, socket, managerLog);
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
    size_t storeBytes = 0;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir / "state", ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (it->is_regular_file(ec)) storeBytes += it->file_size(ec);
    }
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
