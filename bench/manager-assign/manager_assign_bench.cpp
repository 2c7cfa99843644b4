// manager-assign-bench: how long a 3-manager swarm takes to assign and run a 10,000-replica
// service on 1,000 nodes. Three swarm-kernel managers (bundled plugins, fake runtime) on
// 127.0.0.1:24001-24003, joined as managers through the API and drained, so every task goes to
// the N simulated worker nodes (default 1,000) this process plays on one KJ event loop
// (bench/common/sim_node.h: join, its own mutual-TLS session to the leader, heartbeats).
//
// Each simulated node also does what a node's agent does with the dispatcher
// (kernel/src/manager/swarm_cluster.cpp, agent.cpp): it opens Manager.assignments(sink) on the
// leader (following SessionInfo.leader if the leader moves) and acts as a zero-latency fake
// runtime: for every task assigned to it, desired running, it reports the agent's forward states
// up to RUNNING through updateTaskStatus, batched every 100 ms, one batch in flight at a time.
// With a zero-latency runtime the agent's pending map holds only the last state by the time it
// flushes, so by default one RUNNING update per task goes out (--report=final); --report=each
// sends ACCEPTED, PREPARING, READY, STARTING, RUNNING in five successive batches.
//
// Measured from POST /services/create (R replicas, default 10,000):
//   create              the POST answered (the service committed)
//   first-task          the first task reached a node's assignment
//   assigned (nodes)    every task in some node's assignment, desired running
//   assigned (store)    GET /tasks on a follower shows every task with a node, state >= assigned
//   running (reported)  the simulated nodes' RUNNING updates all acknowledged by the leader
//   running (api)       GET /services?status=true on the leader: RunningTasks == R
//   running (store)     GET /tasks on the follower: every task running
// and the spread (tasks per node, min/max, from the API), the leader's and followers' RSS before
// the service and once it runs, the leader's CPU over the run, GET /tasks latency at R tasks.
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
#include <array>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#ifndef SWARM_BENCH_BUILD_TYPE
#define SWARM_BENCH_BUILD_TYPE "unknown"
#endif

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
namespace schema = swarm::schema;
namespace ss = swarm::store::schema;
using swarm::ctl::ApiClient;
using namespace swarm::bench;

constexpr int kManagers = 3;
constexpr int kFirstPort = 24001;  // managers on 127.0.0.1:24001-24003
constexpr auto kStatusFlush = 100 * kj::MILLISECONDS;  // the agent's report batching (swarm_cluster.cpp)
const char* const kServiceName = "assign-bench";

struct Options {
  bool quick = false;
  int nodes = 1000;
  int replicas = 10000;
  int joinConcurrency = 4;
  int heartbeatPeriodSeconds = 5;
  int timeoutSeconds = 600;
  bool reportEach = false;  // every forward state in its own batch, not only the last
};

std::string managerAddress(int i) { return "127.0.0.1:" + std::to_string(kFirstPort + i); }

// Steady-clock instants the simulator publishes to the main thread (0: not yet).
struct Instant {
  std::atomic<int64_t> ticks{0};
  void markOnce() {
    int64_t expected = 0;
    ticks.compare_exchange_strong(expected, Clock::now().time_since_epoch().count());
  }
  bool set() const { return ticks.load() != 0; }
  Clock::time_point at() const { return Clock::time_point(Clock::duration(ticks.load())); }
};

// What the simulator thread and the main thread share: atomics, or under `mutex`.
struct Shared {
  explicit Shared(int nodes) : assignedPerNode(static_cast<size_t>(nodes)) {}

  enum Phase { starting, joining, allJoined, connecting, running, failed };
  std::atomic<int> phase{starting};
  std::atomic<bool> stop{false};
  std::atomic<bool> connectGo{false};
  std::atomic<int> replicas{0};  // the service's, once created: the targets below
  std::atomic<int> joined{0}, connected{0};
  Clock::time_point joinStart, joinEnd, connectStart, connectEnd;  // published with the phase after them

  // Assignments and reports.
  std::vector<std::atomic<int>> assignedPerNode;  // tasks desired running in the node's last assignment
  std::atomic<int64_t> assigned{0};               // their sum
  std::atomic<int64_t> tasksSeen{0};              // distinct tasks that reached a node
  std::atomic<int64_t> runningAcked{0};           // RUNNING updates the leader acknowledged
  std::atomic<uint64_t> assignmentMessages{0}, assignmentTasks{0};  // tasks carried, all messages
  std::atomic<uint64_t> statusBatches{0}, statusUpdates{0}, statusErrors{0};
  std::atomic<uint64_t> beats{0}, beatErrors{0}, sessionsEnded{0}, leaderMoves{0};
  Instant firstTask, allAssigned, allRunningAcked;

  std::mutex mutex;
  std::string error, lastError;
  std::vector<double> joinMs, statusRttMs;
};

// The N simulated nodes on one KJ event loop (its own thread: the API client is synchronous).
class Simulator {
 public:
  Simulator(Shared& shared, const Options& options, std::string leader, std::string token)
      : shared(shared), options(options), leader(std::move(leader)), token(std::move(token)),
        io(kj::setupAsyncIo()), kit(io, SWARM_BENCH_TRANSPORT, SWARM_BENCH_PKI, "manager-assign-bench") {}

  ~Simulator() noexcept(false) {
    nodes.clear();  // sessions and loops before the plugins they run on
  }

  void run() {
    kit.prepareJoins(token);
    for (int i = 0; i < options.nodes; ++i) {
      auto node = kj::heap<AgentNode>();
      node->index = static_cast<size_t>(i);
      node->hostname = "sim-node-" + std::to_string(i);
      nodes.push_back(kj::mv(node));
    }
    shared.joinStart = Clock::now();
    shared.phase = Shared::joining;
    kj::Vector<kj::Promise<void>> lanes;
    for (int lane = 0; lane < options.joinConcurrency; ++lane) lanes.add(joinLane());
    kit.limited(kj::joinPromises(lanes.releaseAsArray()), 60 + options.nodes, "joins");
    shared.joinEnd = Clock::now();
    shared.phase = Shared::allJoined;
    while (!shared.connectGo && !shared.stop) kit.timer.afterDelay(10 * kj::MILLISECONDS).wait(io.waitScope);

    shared.connectStart = Clock::now();
    shared.phase = Shared::connecting;
    for (auto& node : nodes) {
      kit.limited(kit.connect(*node, leader), 30, "member-mode dial");
      startSession(*node);
      node->beating = heartbeatLoop(*node).eagerlyEvaluate([this](kj::Exception&& e) { noteError(e); });
      node->reporting = reportLoop(*node).eagerlyEvaluate([this](kj::Exception&& e) { noteError(e); });
      ++shared.connected;
    }
    shared.connectEnd = Clock::now();
    shared.phase = Shared::running;
    while (!shared.stop) kit.timer.afterDelay(50 * kj::MILLISECONDS).wait(io.waitScope);
  }

 private:
  struct Task {
    uint16_t reported = 0;  // the last state sent (or the one the dispatcher had)
    bool runningCounted = false;
  };
  struct AgentNode : SimNode {
    size_t index = 0;
    std::map<std::string, Task> tasks;        // this node's tasks desired running
    std::map<std::string, uint16_t> pending;  // the next state to report, by task
    bool inFlight = false;
    // Destroyed before the session they use (SimNode's members).
    kj::Promise<void> session = nullptr, beating = nullptr, reporting = nullptr;
  };

  class Sink final : public ss::AssignmentSink::Server {
   public:
    Sink(Simulator& simulator, AgentNode& node) : simulator(simulator), node(node) {}
    kj::Promise<void> assigned(AssignedContext context) override {
      simulator.onAssignment(node, context.getParams().getAssignment());
      return kj::READY_NOW;
    }
    kj::Promise<void> logs(LogsContext) override {
      return KJ_EXCEPTION(UNIMPLEMENTED, "simulated nodes run no containers and keep no logs");
    }

   private:
    Simulator& simulator;
    AgentNode& node;
  };

  void noteError(const kj::Exception& e) {
    std::lock_guard lock(shared.mutex);
    shared.lastError = swarm::kernel::describe(e);
  }

  kj::Promise<void> joinLane() {
    if (nextJoin == nodes.size()) return kj::READY_NOW;
    AgentNode& node = *nodes[nextJoin++];
    return kit.join(node, leader, token).then([this](JoinTiming timing) {
      {
        std::lock_guard lock(shared.mutex);
        shared.joinMs.push_back(timing.totalMs);
      }
      ++shared.joined;
      return joinLane();
    });
  }

  // SwarmNode::ensureAssignmentStream: the dispatcher streams this node's whole task set into
  // the sink until the session ends.
  void startSession(AgentNode& node) {
    auto request = node.manager.assignmentsRequest();
    request.setSink(kj::heap<Sink>(*this, node));
    node.session = request.send().ignoreResult().then(
        [this]() { ++shared.sessionsEnded; },
        [this](kj::Exception&& e) {
          ++shared.sessionsEnded;
          noteError(e);
        }).eagerlyEvaluate(nullptr);
  }

  // Agent::assign with a runtime that does everything at once: a new task's next state is
  // pending at once. A complete assignment replaces the node's set (a task missing from it is no
  // longer this node's); an incremental one brings new or changed tasks and the IDs removed.
  void onAssignment(AgentNode& node, ss::Assignment::Reader assignment) {
    ++shared.assignmentMessages;
    auto list = assignment.getTasks();
    shared.assignmentTasks += list.size();
    std::map<std::string, Task> current;
    if (assignment.getIncremental()) {
      current = node.tasks;
      for (auto id : assignment.getRemovedTasks()) current.erase(std::string(id));
    }
    for (auto task : list) {
      std::string id = task.getId();
      uint16_t state = task.getStatus().getState();
      if (task.getDesiredState() > schema::TASK_STATE_RUNNING) {
        // To be stopped: the agent reports SHUTDOWN for a task it has not seen end.
        if (state < schema::TASK_STATE_COMPLETE) node.pending[id] = schema::TASK_STATE_SHUTDOWN;
        current.erase(id);
        continue;
      }
      auto known = node.tasks.find(id);
      Task entry = known != node.tasks.end() ? known->second : Task{state, false};
      if (known == node.tasks.end()) {
        shared.firstTask.markOnce();
        ++shared.tasksSeen;
        if (state < schema::TASK_STATE_RUNNING) node.pending[id] = nextState(state);
      }
      current.insert_or_assign(id, entry);
    }
    for (auto& [id, task] : node.tasks) {
      if (!current.count(id)) node.pending.erase(id);
    }
    node.tasks = kj::mv(current);
    int count = static_cast<int>(node.tasks.size());
    int before = shared.assignedPerNode[node.index].exchange(count);
    int64_t total = shared.assigned += count - before;
    if (total >= shared.replicas && shared.replicas > 0) shared.allAssigned.markOnce();
  }

  uint16_t nextState(uint16_t state) const {
    if (!options.reportEach) return schema::TASK_STATE_RUNNING;
    if (state < schema::TASK_STATE_ACCEPTED) return schema::TASK_STATE_ACCEPTED;
    if (state < schema::TASK_STATE_PREPARING) return schema::TASK_STATE_PREPARING;
    if (state < schema::TASK_STATE_READY) return schema::TASK_STATE_READY;
    if (state < schema::TASK_STATE_STARTING) return schema::TASK_STATE_STARTING;
    return schema::TASK_STATE_RUNNING;
  }

  // SwarmNode::reportLoop: every 100 ms, whatever is pending, one batch in flight at a time.
  kj::Promise<void> reportLoop(AgentNode& node) {
    return kit.timer.afterDelay(kStatusFlush).then([this, &node]() -> kj::Promise<void> {
      if (shared.stop) return kj::READY_NOW;
      if (node.pending.empty() || node.inFlight || node.connectedTo.empty()) return reportLoop(node);
      // Shared by both outcomes below.
      auto batch = std::make_shared<std::map<std::string, uint16_t>>(kj::mv(node.pending));
      node.pending.clear();
      auto request = node.manager.updateTaskStatusRequest();
      auto updates = request.initUpdates(static_cast<unsigned>(batch->size()));
      int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::system_clock::now().time_since_epoch()).count();
      unsigned i = 0;
      for (auto& [id, state] : *batch) {
        updates[i].setTaskId(id);
        auto status = updates[i].initStatus();
        status.setTimestamp(now);
        status.setState(state);
        status.setMessage(state == schema::TASK_STATE_RUNNING ? "started" : "simulated");
        // The fake runtime's container IDs are 64 hex digits; any will do here.
        status.initContainer().setContainerId(std::string(64, 'a' + static_cast<char>(node.index % 6)));
        ++i;
      }
      node.inFlight = true;
      ++shared.statusBatches;
      shared.statusUpdates += batch->size();
      auto sent = Clock::now();
      return request.send().then(
          [this, &node, batch, sent](auto&&) {
            node.inFlight = false;
            {
              std::lock_guard lock(shared.mutex);
              shared.statusRttMs.push_back(ms(Clock::now() - sent));
            }
            for (auto& [id, state] : *batch) {
              auto task = node.tasks.find(id);
              if (task == node.tasks.end()) continue;
              task->second.reported = std::max(task->second.reported, state);
              if (state < schema::TASK_STATE_RUNNING) {
                node.pending.emplace(id, nextState(state));
              } else if (state == schema::TASK_STATE_RUNNING && !task->second.runningCounted) {
                task->second.runningCounted = true;
                if (++shared.runningAcked >= shared.replicas && shared.replicas > 0) shared.allRunningAcked.markOnce();
              }
            }
            return reportLoop(node);
          },
          [this, &node, batch](kj::Exception&& e) {
            // Sent again, unless a later state of the same task replaced it meanwhile.
            node.inFlight = false;
            ++shared.statusErrors;
            noteError(e);
            for (auto& [id, state] : *batch) node.pending.emplace(id, state);
            return reportLoop(node);
          });
    });
  }

  // heartbeatOnce: beat, wait the period answered; period 0 means this is not the leader, so
  // follow SessionInfo.leader and open the assignment session there.
  kj::Promise<void> heartbeatLoop(AgentNode& node) {
    if (shared.stop) return kj::READY_NOW;
    auto beat = node.manager.heartbeatRequest();
    beat.initDescription().setHostname(node.hostname);
    return beat.send()
        .then(
            [this, &node](capnp::Response<ss::Manager::HeartbeatResults>&& answer) -> kj::Promise<void> {
              ++shared.beats;
              auto session = answer.getSession();
              if (session.getPeriod() > 0) return kit.timer.afterDelay(session.getPeriod() * kj::NANOSECONDS);
              std::string hint = session.getLeader();
              if (hint.empty() || hint == node.connectedTo) return kit.timer.afterDelay(500 * kj::MILLISECONDS);
              ++shared.leaderMoves;
              return followLeader(node, hint);
            },
            [this, &node](kj::Exception&& e) -> kj::Promise<void> {
              ++shared.beatErrors;
              noteError(e);
              return kit.timer.afterDelay(500 * kj::MILLISECONDS).then([this, &node]() {
                return followLeader(node, leader);
              });
            })
        .then([this, &node]() { return heartbeatLoop(node); });
  }

  kj::Promise<void> followLeader(AgentNode& node, std::string address) {
    node.session = nullptr;
    return kit.connect(node, address).then([this, &node](double) { startSession(node); });
  }

  Shared& shared;
  const Options& options;
  std::string leader, token;
  kj::AsyncIoContext io;
  SimNodeKit kit;
  std::deque<kj::Own<AgentNode>> nodes;
  size_t nextJoin = 0;
};

void simulate(Shared& shared, const Options& options, std::string leader, std::string token) {
  try {
    Simulator simulator(shared, options, std::move(leader), std::move(token));
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

std::string str(const json::value& v) { return std::string(v.as_string().c_str()); }

// The manager nodes as GET /nodes shows them.
struct ManagerView {
  int reachable = 0;
  std::string leaderAddress, leaderId;
  std::vector<std::string> ids;
};

ManagerView managers(ApiClient& api) {
  ManagerView view;
  json::value nodes = api.get("/nodes");  // held: the loop reads into it
  for (const auto& value : nodes.as_array()) {
    const auto& node = value.as_object();
    const auto* status = node.if_contains("ManagerStatus");
    if (status == nullptr) continue;
    view.ids.push_back(str(node.at("ID")));
    if (str(status->at("Reachability")) == "reachable") ++view.reachable;
    if (const auto* isLeader = status->as_object().if_contains("Leader"); isLeader && isLeader->as_bool()) {
      view.leaderAddress = str(status->at("Addr"));
      view.leaderId = str(node.at("ID"));
    }
  }
  return view;
}

size_t readySimNodes(ApiClient& api) {
  size_t ready = 0;
  json::value nodes = api.get("/nodes");
  for (const auto& value : nodes.as_array()) {
    const auto& node = value.as_object();
    if (str(node.at("Description").at("Hostname")).rfind("sim-node-", 0) != 0) continue;
    if (str(node.at("Status").at("State")) == "ready") ++ready;
  }
  return ready;
}

// The service's tasks as the store shows them.
struct TaskCounts {
  size_t total = 0, assigned = 0, running = 0;
  std::map<std::string, int> perNode;  // running or not, by node
  size_t bodyBytes = 0;
  double ms = 0;
};

TaskCounts serviceTasks(ApiClient& api) {
  auto start = Clock::now();
  auto response = api.call("GET", "/tasks",
                           {{"filters", "{\"service\":[\"" + std::string(kServiceName) + "\"],\"desired-state\":[\"running\"]}"}});
  TaskCounts counts;
  counts.ms = ms(Clock::now() - start);
  counts.bodyBytes = response.body.size();
  static const std::vector<std::string> kAssignedOrLater = {"assigned", "accepted", "preparing", "ready",
                                                             "starting", "running"};
  json::value tasks = json::parse(response.body);
  for (const auto& value : tasks.as_array()) {
    const auto& task = value.as_object();
    ++counts.total;
    std::string nodeId = task.if_contains("NodeID") ? str(task.at("NodeID")) : "";
    std::string state = str(task.at("Status").at("State"));
    if (!nodeId.empty() && std::find(kAssignedOrLater.begin(), kAssignedOrLater.end(), state) != kAssignedOrLater.end()) {
      ++counts.assigned;
      ++counts.perNode[nodeId];
    }
    if (state == "running") ++counts.running;
  }
  return counts;
}

int64_t runningByServiceStatus(ApiClient& api) {
  json::value services = api.get("/services", {{"status", "true"}});
  for (const auto& value : services.as_array()) {
    const auto& service = value.as_object();
    if (str(service.at("Spec").at("Name")) != kServiceName) continue;
    return service.at("ServiceStatus").at("RunningTasks").to_number<int64_t>();
  }
  return -1;
}

// The manager that leads now (its index), asked of each manager in turn for up to 30 s: under
// load a leader may lose its leadership, and a follower's read may answer 503 meanwhile.
int currentLeader(std::deque<ApiClient>& apis, int hint) {
  for (int attempt = 0; attempt < 300; ++attempt) {
    for (int k = 0; k < kManagers; ++k) {
      int i = (hint + k) % kManagers;
      try {
        std::string leader = managers(apis[i]).leaderAddress;
        for (int j = 0; j < kManagers; ++j) {
          if (managerAddress(j) == leader) return j;
        }
      } catch (const swarm::ctl::DaemonError&) {
        // this one does not know either; ask the next
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw std::runtime_error("no manager knew of a leader for 30 s");
}

void drain(ApiClient& api, const std::string& nodeId) {
  auto node = api.get("/nodes/" + nodeId);
  auto spec = node.at("Spec");
  spec.as_object()["Availability"] = "drain";
  api.post("/nodes/" + nodeId + "/update",
           {{"version", std::to_string(node.at("Version").at("Index").to_number<uint64_t>())}}, spec);
}

int usage(FILE* out, int code) {
  std::fputs(
      "usage: manager-assign-bench [--quick] [--nodes=N] [--replicas=N] [--join-concurrency=N]\n"
      "                            [--heartbeat-period=SECONDS] [--report=final|each] [--timeout=SECONDS]\n"
      "  --nodes               simulated worker nodes (default 1000; --quick: 200)\n"
      "  --replicas            replicas of the service (default 10000; --quick: 2000)\n"
      "  --join-concurrency    joins in flight at once (default 4)\n"
      "  --heartbeat-period    Spec.Dispatcher.HeartbeatPeriod in seconds (default 5)\n"
      "  --report              final: each task's last state only, as the agent sends with a zero-latency\n"
      "                        runtime (default); each: every forward state in its own batch\n"
      "  --timeout             give up on the service after this long (default 600)\n"
      "Managers listen on 127.0.0.1:24001-24003.\n",
      out);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (std::find(args.begin(), args.end(), "--quick") != args.end()) {
    o.quick = true;
    o.nodes = 200;
    o.replicas = 2000;
  }
  try {
    for (const auto& a : args) {
      auto value = [&](const char* prefix) { return std::max(1, std::stoi(a.substr(std::strlen(prefix)))); };
      if (a == "--quick") continue;
      if (a == "--help" || a == "-h") return usage(stdout, 0);
      if (a.rfind("--nodes=", 0) == 0) {
        o.nodes = value("--nodes=");
      } else if (a.rfind("--replicas=", 0) == 0) {
        o.replicas = value("--replicas=");
      } else if (a.rfind("--join-concurrency=", 0) == 0) {
        o.joinConcurrency = value("--join-concurrency=");
      } else if (a.rfind("--heartbeat-period=", 0) == 0) {
        o.heartbeatPeriodSeconds = value("--heartbeat-period=");
      } else if (a.rfind("--timeout=", 0) == 0) {
        o.timeoutSeconds = value("--timeout=");
      } else if (a == "--report=each" || a == "--report=final") {
        o.reportEach = a == "--report=each";
      } else {
        std::fprintf(stderr, "manager-assign-bench: unknown option '%s'; see --help\n", a.c_str());
        return 2;
      }
    }
    raiseFdLimit(o.nodes);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "manager-assign-bench: %s; see --help\n", e.what());
    return 2;
  }
  swarm::kernel::initLogging(spdlog::level::warn);

  char pattern[] = "/tmp/manager-assign-bench.XXXXXX";
  if (mkdtemp(pattern) == nullptr) {
    std::perror("manager-assign-bench: mkdtemp");
    return 1;
  }
  fs::path dir = pattern;
  fs::path conf = dir / "plugins.conf";
  writePluginsConf(conf);
  std::array<pid_t, kManagers> pids{};
  std::array<fs::path, kManagers> sockets, logs;
  Shared shared(o.nodes);
  std::optional<std::thread> simulator;
  bool keep = std::getenv("MANAGER_ASSIGN_BENCH_KEEP") != nullptr;  // keep the logs for a post-mortem
  auto finish = [&](int code) {
    shared.stop = true;
    if (simulator) simulator->join();
    for (pid_t pid : pids) {
      if (pid > 0) kill(pid, SIGTERM);
    }
    for (pid_t pid : pids) {
      if (pid > 0) waitpid(pid, nullptr, 0);
    }
    if (code != 0) {
      for (int i = 0; i < kManagers; ++i) {
        std::fprintf(stderr, "manager %d's last log lines:\n%s", i + 1, tail(logs[i], 20).c_str());
      }
    }
    std::error_code ec;
    if (keep) {
      std::fprintf(stderr, "logs kept in %s\n", dir.c_str());
    } else {
      fs::remove_all(dir, ec);
    }
    return code;
  };
  std::string step;  // what the main thread is doing: on stderr as it goes, and in an error
  auto enter = [&](const char* what) {
    step = what;
    std::fprintf(stderr, "manager-assign-bench: %s\n", what);
  };
  auto simulatorFailed = [&]() {
    if (shared.phase != Shared::failed) return;
    std::lock_guard lock(shared.mutex);
    throw std::runtime_error("simulated nodes: " + shared.error);
  };

  try {
    double loadBefore = loadAverage();
    enter("starting the managers");
    for (int i = 0; i < kManagers; ++i) {
      sockets[i] = dir / ("api" + std::to_string(i + 1) + ".sock");
      logs[i] = dir / ("manager" + std::to_string(i + 1) + ".log");
      pids[i] = spawnKernel(SWARM_BENCH_KERNEL, conf, dir / ("state" + std::to_string(i + 1)), sockets[i], logs[i]);
    }
    std::deque<ApiClient> apis;  // not movable: built in place
    for (int i = 0; i < kManagers; ++i) {
      waitForSocket(sockets[i], pids[i]);
      apis.emplace_back(swarm::ctl::parseHostAddress("unix://" + sockets[i].string()), std::chrono::milliseconds(120000));
      apis.back().apiVersion();
    }

    enter("forming the 3-manager swarm");
    // ---- a 3-manager swarm, managers drained ------------------------------------------------------
    auto t0 = Clock::now();
    apis[0].post("/swarm/init", {},
                 json::object{{"ListenAddr", managerAddress(0)},
                              {"AdvertiseAddr", managerAddress(0)},
                              {"Spec", {{"Dispatcher", {{"HeartbeatPeriod", int64_t{o.heartbeatPeriodSeconds} * 1'000'000'000}}}}}});
    auto tokens = apis[0].get("/swarm").at("JoinTokens");
    for (int i = 1; i < kManagers; ++i) {
      // Built field by field: nested initializer lists of arrays trip GCC 12's dangling-pointer warning.
      json::object join;
      join["ListenAddr"] = managerAddress(i);
      join["AdvertiseAddr"] = managerAddress(i);
      join["RemoteAddrs"].emplace_array().emplace_back(managerAddress(0));
      join["JoinToken"] = tokens.at("Manager");
      apis[i].post("/swarm/join", {}, json::value(std::move(join)));
    }
    ManagerView view;
    for (auto deadline = Clock::now() + std::chrono::seconds(60);;) {
      view = managers(apis[0]);
      if (view.reachable == kManagers && !view.leaderAddress.empty()) break;
      if (Clock::now() > deadline) {
        throw std::runtime_error("the managers did not form a swarm in 60 s: " + std::to_string(view.reachable) +
                                 " reachable, leader '" + view.leaderAddress + "'");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    double swarmSeconds = seconds(Clock::now() - t0);
    enter("draining the managers");
    for (const auto& id : view.ids) drain(apis[0], id);
    int leaderIndex = -1;  // the manager leading now
    for (int i = 0; i < kManagers; ++i) {
      if (managerAddress(i) == view.leaderAddress) leaderIndex = i;
    }
    if (leaderIndex < 0) throw std::runtime_error("the leader's address " + view.leaderAddress + " is none of ours");
    const int firstLeader = leaderIndex;  // RSS and CPU are this process's, wherever leadership goes
    const int firstFollower = (leaderIndex + 1) % kManagers;
    pid_t leaderPid = pids[leaderIndex];
    int leaderChanges = 0;
    // A read on whichever manager leads now: a 503 sends it to the leader found again.
    auto onLeader = [&](auto&& read) {
      for (int attempt = 1;; ++attempt) {
        try {
          return read(apis[leaderIndex]);
        } catch (const swarm::ctl::DaemonError& e) {
          if (e.status != 503 || attempt == 5) throw;
          int now = currentLeader(apis, leaderIndex);
          if (now != leaderIndex) ++leaderChanges;
          leaderIndex = now;
        }
      }
    };

    // ---- N nodes join, connect to the leader, heartbeat and open their assignment sessions ------
    enter("joining the simulated nodes");
    simulator.emplace(simulate, std::ref(shared), std::cref(o), view.leaderAddress, str(tokens.at("Worker")));
    while (shared.phase < Shared::allJoined) {
      simulatorFailed();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    shared.connectGo = true;
    enter("waiting for the nodes to be READY (GET /nodes on the leader)");
    auto readyDeadline = Clock::now() + std::chrono::seconds(120 + o.nodes / 5);
    Clock::time_point allReady;
    for (;;) {
      simulatorFailed();
      size_t ready = onLeader(readySimNodes);
      if (ready == static_cast<size_t>(o.nodes) && shared.phase == Shared::running) {
        allReady = Clock::now();
        break;
      }
      if (Clock::now() > readyDeadline) {
        throw std::runtime_error("only " + std::to_string(ready) + " of " + std::to_string(o.nodes) + " nodes READY (" +
                                 std::to_string(shared.connected.load()) + " connected)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    std::this_thread::sleep_for(std::chrono::seconds(2));  // the READY writes settle
    long rssLeaderBefore = rssKiB(leaderPid);
    long rssFollowerBefore = rssKiB(pids[firstFollower]);

    // ---- the service --------------------------------------------------------------------------
    json::object service;
    service["Name"] = kServiceName;
    auto& container = service["TaskTemplate"].emplace_object()["ContainerSpec"].emplace_object();
    container["Image"] = "swarm-test/busybox:latest";
    auto& command = container["Args"].emplace_array();
    command.emplace_back("sleep");
    command.emplace_back("1d");
    service["Mode"].emplace_object()["Replicated"].emplace_object()["Replicas"] = o.replicas;
    shared.replicas = o.replicas;
    long cpu0 = cpuTicks(std::to_string(leaderPid)), self0 = cpuTicks("self");
    auto created = Clock::now();
    enter("POST /services/create on the leader");
    apis[leaderIndex].post("/services/create", {}, service);
    enter("waiting for the service to run (GET /services on the leader, GET /tasks on a follower)");
    double createMs = ms(Clock::now() - created);

    // Polled until all run: ServiceStatus on the leader (cheap) each turn, the whole task list on
    // a follower (what `docker service ps` reads) as often as it answers.
    std::optional<Clock::time_point> apiRunning, storeAssigned, storeRunning;
    std::vector<double> taskListMs;
    TaskCounts last;
    auto nextTaskList = Clock::now();
    int followerRead503 = 0;
    std::string lastFollowerError;
    auto deadline = created + std::chrono::seconds(o.timeoutSeconds);
    while (!(apiRunning && storeAssigned && storeRunning && shared.allRunningAcked.set())) {
      simulatorFailed();
      if (!apiRunning && onLeader(runningByServiceStatus) >= o.replicas) apiRunning = Clock::now();
      if ((!storeAssigned || !storeRunning) && Clock::now() >= nextTaskList) {
        // Every 500 ms at most: a list of R tasks costs the follower (and this 2-core machine) a lot.
        nextTaskList = Clock::now() + std::chrono::milliseconds(500);
        try {
          last = serviceTasks(apis[(leaderIndex + 1) % kManagers]);
          taskListMs.push_back(last.ms);
          auto now = Clock::now();
          if (!storeAssigned && last.assigned >= static_cast<size_t>(o.replicas)) storeAssigned = now;
          if (!storeRunning && last.running >= static_cast<size_t>(o.replicas)) storeRunning = now;
        } catch (const swarm::ctl::DaemonError& e) {
          // A follower's read waits for the leader to confirm its read index; under load that can
          // time out and answer 503 "no leader" although the leader is fine. Counted, asked again.
          if (e.status != 503) throw;
          ++followerRead503;
          lastFollowerError = e.what();
        }
      }
      if (Clock::now() > deadline) {
        throw std::runtime_error(
            "the service did not converge in " + std::to_string(o.timeoutSeconds) + " s: the nodes hold " +
            std::to_string(shared.assigned.load()) + " tasks and had " + std::to_string(shared.runningAcked.load()) +
            " RUNNING acknowledged; the follower's store shows " + std::to_string(last.assigned) + " assigned, " +
            std::to_string(last.running) + " running of " + std::to_string(last.total) + "; " +
            std::to_string(shared.statusErrors.load()) + " status batches failed");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    auto converged = Clock::now();
    long cpu1 = cpuTicks(std::to_string(leaderPid)), self1 = cpuTicks("self");
    double window = seconds(converged - created);
    long rssLeaderRunning = rssKiB(leaderPid);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    long rssLeaderAfter = rssKiB(leaderPid);
    long rssFollowerAfter = rssKiB(pids[firstFollower]);
    size_t leaderFds = openFds(leaderPid);
    // The spread, from the leader's store.
    enter("reading the spread (GET /tasks on the leader)");
    TaskCounts settled = onLeader(serviceTasks);
    int spreadMin = settled.perNode.size() < static_cast<size_t>(o.nodes) ? 0 : o.replicas, spreadMax = 0;
    for (const auto& [id, n] : settled.perNode) {
      spreadMin = std::min(spreadMin, n);
      spreadMax = std::max(spreadMax, n);
    }
    std::vector<double> getTasksLeader;
    for (int i = 0; i < 5; ++i) getTasksLeader.push_back(onLeader(serviceTasks).ms);
    simulatorFailed();
    shared.stop = true;
    simulator->join();
    simulator.reset();
    std::string lastError;
    {
      std::lock_guard lock(shared.mutex);
      lastError = shared.lastError;
    }
    size_t leaderLogLines = lineCount(logs[firstLeader]);

    auto since = [&](const Instant& i) { return i.set() ? seconds(i.at() - created) : -1.0; };
    auto sinceOpt = [&](const std::optional<Clock::time_point>& t) { return t ? seconds(*t - created) : -1.0; };
    long ticksPerSecond = sysconf(_SC_CLK_TCK);
    double leaderCpu = 100.0 * static_cast<double>(cpu1 - cpu0) / static_cast<double>(ticksPerSecond) / window;
    double benchCpu = 100.0 * static_cast<double>(self1 - self0) / static_cast<double>(ticksPerSecond) / window;
    double firstTask = since(shared.firstTask), nodesAssigned = since(shared.allAssigned);
    double runningAcked = since(shared.allRunningAcked);
    double storeAssignedS = sinceOpt(storeAssigned), storeRunningS = sinceOpt(storeRunning);
    double apiRunningS = sinceOpt(apiRunning);
    double joinTotal = seconds(shared.joinEnd - shared.joinStart);
    double readyS = seconds(allReady - shared.connectStart);

    std::printf("manager-assign-bench (%s build, %u CPUs, load average %.2f before, %.2f after)\n",
                SWARM_BENCH_BUILD_TYPE, std::thread::hardware_concurrency(), loadBefore, loadAverage());
    std::printf("3 managers (drained, bundled plugins, fake runtime) on 127.0.0.1:24001-24003, leader %s;\n"
                "%d simulated nodes in this process, each with its own mutual-TLS session to the leader;\n"
                "one service of %d replicas; heartbeat period %d s; status reports: %s\n\n",
                view.leaderAddress.c_str(), o.nodes, o.replicas, o.heartbeatPeriodSeconds,
                o.reportEach ? "every state" : "last state per batch");
    std::printf("%-22s %12s  %s\n", "metric", "value", "note");
    std::printf("%-22s %9.2f s   init, 2 managers joined, all reachable with a leader\n", "swarm", swarmSeconds);
    std::printf("%-22s %9.2f s   %d nodes, %d at a time, join p50 %.1f ms\n", "join total", joinTotal, o.nodes,
                o.joinConcurrency, percentile(shared.joinMs, 0.5));
    std::printf("%-22s %9.2f s   from the first member dial until GET /nodes shows all %d READY\n", "all-ready", readyS,
                o.nodes);
    std::printf("%-22s %9.1f MB  the leader, %d nodes READY, no service (a follower: %.1f MB)\n", "rss-leader-before",
                rssLeaderBefore / 1024.0, o.nodes, rssFollowerBefore / 1024.0);
    std::printf("%-22s %9.1f ms  POST /services/create, %d replicas\n", "create", createMs, o.replicas);
    std::printf("%-22s %9.2f s   the first task in a node's assignment\n", "first-task", firstTask);
    std::printf("%-22s %9.2f s   all %d tasks in the nodes' assignments (desired running)\n", "assigned (nodes)",
                nodesAssigned, o.replicas);
    std::printf("%-22s %9.2f s   GET /tasks on a follower: all with a node, state >= assigned\n", "assigned (store)",
                storeAssignedS);
    std::printf("%-22s %9.2f s   every RUNNING update acknowledged by the leader\n", "running (reported)", runningAcked);
    std::printf("%-22s %9.2f s   GET /services?status=true on the leader: RunningTasks = %d\n", "running (api)",
                apiRunningS, o.replicas);
    std::printf("%-22s %9.2f s   GET /tasks on the follower: all running\n", "running (store)", storeRunningS);
    std::printf("%-22s %6d-%-5d   tasks per node (min-max over %d nodes; %zu nodes hold tasks)\n", "spread", spreadMin,
                spreadMax, o.nodes, settled.perNode.size());
    std::printf("%-22s %9.1f MB  the leader once all run (%.1f MB 2 s later; a follower: %.1f MB)\n",
                "rss-leader-running", rssLeaderRunning / 1024.0, rssLeaderAfter / 1024.0, rssFollowerAfter / 1024.0);
    std::printf("%-22s %9.1f %%   leader, all threads, from create to all running (this process: %.1f%%)\n",
                "cpu-leader", leaderCpu, benchCpu);
    std::printf("%-22s %9.1f ms  p99 %.1f ms, the follower while converging (%zu calls, %.1f MB per answer)\n",
                "get-tasks p50", percentile(taskListMs, 0.5), percentile(taskListMs, 0.99), taskListMs.size(),
                settled.bodyBytes / 1048576.0);
    std::printf("%-22s %9.1f ms  on the leader, converged (5 calls)\n", "get-tasks leader p50",
                percentile(getTasksLeader, 0.5));
    std::printf("%-22s %9d     GET /tasks on the follower answered 503%s%s\n", "follower-read-503", followerRead503,
                lastFollowerError.empty() ? "" : ": ", lastFollowerError.c_str());
    std::printf("%-22s %9d     the leader at create: %s; at the end: %s (RSS and CPU above: the first)\n",
                "leader-changes", leaderChanges, managerAddress(firstLeader).c_str(),
                managerAddress(leaderIndex).c_str());
    std::printf("%-22s %9llu     carrying %llu tasks in all (the complete set first, then changes)\n", "assignment messages",
                static_cast<unsigned long long>(shared.assignmentMessages.load()),
                static_cast<unsigned long long>(shared.assignmentTasks.load()));
    std::printf("%-22s %9llu     %llu updates, round trip p50 %.1f ms p99 %.1f ms, %llu failed\n", "status batches",
                static_cast<unsigned long long>(shared.statusBatches.load()),
                static_cast<unsigned long long>(shared.statusUpdates.load()), percentile(shared.statusRttMs, 0.5),
                percentile(shared.statusRttMs, 0.99), static_cast<unsigned long long>(shared.statusErrors.load()));
    std::printf("%-22s %9llu     failed; %llu leader moves, %llu assignment sessions ended; leader: %zu fds, %zu log lines%s%s\n",
                "heartbeats", static_cast<unsigned long long>(shared.beatErrors.load()),
                static_cast<unsigned long long>(shared.leaderMoves.load()),
                static_cast<unsigned long long>(shared.sessionsEnded.load()), leaderFds, leaderLogLines,
                lastError.empty() ? "" : "; last error: ", lastError.c_str());
    std::printf(
        "{\"bench\":\"manager-assign\",\"record\":\"result\",\"buildType\":\"%s\",\"cpus\":%u,\"loadBefore\":%.2f,"
        "\"loadAfter\":%.2f,\"managers\":%d,\"nodes\":%d,\"replicas\":%d,\"heartbeatPeriodS\":%d,\"reportEach\":%s,"
        "\"swarmS\":%.2f,\"joinTotalS\":%.2f,\"allReadyS\":%.2f,\"rssLeaderBeforeKiB\":%ld,\"rssFollowerBeforeKiB\":%ld,"
        "\"createMs\":%.1f,\"firstTaskS\":%.3f,\"assignedNodesS\":%.3f,\"assignedStoreS\":%.3f,"
        "\"runningReportedS\":%.3f,\"runningApiS\":%.3f,\"runningStoreS\":%.3f,\"spreadMin\":%d,\"spreadMax\":%d,"
        "\"nodesWithTasks\":%zu,\"rssLeaderRunningKiB\":%ld,\"rssLeaderAfterKiB\":%ld,\"rssFollowerAfterKiB\":%ld,"
        "\"leaderCpuPercent\":%.1f,\"benchCpuPercent\":%.1f,\"getTasksFollowerP50Ms\":%.1f,\"getTasksLeaderP50Ms\":%.1f,"
        "\"getTasksBytes\":%zu,\"assignmentMessages\":%llu,\"assignmentTasks\":%llu,\"statusBatches\":%llu,"
        "\"statusUpdates\":%llu,\"statusErrors\":%llu,\"statusRttP50Ms\":%.1f,\"statusRttP99Ms\":%.1f,"
        "\"heartbeatErrors\":%llu,\"leaderMoves\":%llu,\"leaderFds\":%zu,\"followerRead503\":%d,\"leaderChanges\":%d}\n",
        SWARM_BENCH_BUILD_TYPE, std::thread::hardware_concurrency(), loadBefore, loadAverage(), kManagers, o.nodes,
        o.replicas, o.heartbeatPeriodSeconds, o.reportEach ? "true" : "false", swarmSeconds, joinTotal, readyS,
        rssLeaderBefore, rssFollowerBefore, createMs, firstTask, nodesAssigned, storeAssignedS, runningAcked,
        apiRunningS, storeRunningS, spreadMin, spreadMax, settled.perNode.size(), rssLeaderRunning, rssLeaderAfter,
        rssFollowerAfter, leaderCpu, benchCpu, percentile(taskListMs, 0.5), percentile(getTasksLeader, 0.5),
        settled.bodyBytes, static_cast<unsigned long long>(shared.assignmentMessages.load()),
        static_cast<unsigned long long>(shared.assignmentTasks.load()),
        static_cast<unsigned long long>(shared.statusBatches.load()),
        static_cast<unsigned long long>(shared.statusUpdates.load()),
        static_cast<unsigned long long>(shared.statusErrors.load()), percentile(shared.statusRttMs, 0.5),
        percentile(shared.statusRttMs, 0.99), static_cast<unsigned long long>(shared.beatErrors.load()),
        static_cast<unsigned long long>(shared.leaderMoves.load()), leaderFds, followerRead503, leaderChanges);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "manager-assign-bench: %s: %s\n", step.c_str(), e.what());
    return finish(1);
  }
  return finish(0);
}
