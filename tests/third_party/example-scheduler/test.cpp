// example-scheduler-test <example-scheduler.so>: unit tests a plugin author can write with nothing
// but the installed SDK. Loads the plugin through its C entry, serves it on a thread over a
// socketpair (what the kernel does in process), and checks plans and reasons through Cap'n Proto.
// The conformance suite (swarm-conformance --kind scheduler) checks what every scheduler must do;
// this checks what this one promises on top: its exact reasons, constraint details and ranking.
#include <swarm/plugin.h>
#include <swarm/schema/scheduler.capnp.h>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <dlfcn.h>
#include <sys/socket.h>

#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace schema = swarm::schema;
constexpr int64_t kGiB = 1ll << 30;

int failures = 0;

void check(bool ok, const std::string& what, const std::string& got) {
  if (ok) {
    printf("ok   %s\n", what.c_str());
  } else {
    printf("FAIL %s\n     got: %s\n", what.c_str(), got.c_str());
    ++failures;
  }
}

struct NodeDef {
  NodeDef(const char* id) : id(id) {}  // implicit: {"n1"} in a node list
  std::string id;
  schema::NodeState state = schema::NodeState::READY;
  schema::NodeAvailability availability = schema::NodeAvailability::ACTIVE;
  schema::NodeRole role = schema::NodeRole::WORKER;
  int64_t memory = 8 * kGiB;
  std::map<std::string, std::string> labels;
  std::map<std::string, int64_t> generic;
  std::map<std::string, uint32_t> tasksByService, recentFailures;
  uint32_t totalTasks = 0;
};

struct TaskDef {
  std::string id;
  std::string service = "svc";
  std::string nodeId;
  int64_t memory = 0;
  std::map<std::string, int64_t> generic;
  std::vector<std::string> constraints;
  uint64_t maxReplicas = 0;
};

struct Plan {
  std::map<std::string, std::string> assigned, unplaced;  // task -> node / reason
  std::string text() const {
    std::string s;
    for (auto& [t, n] : assigned) s += t + "->" + n + " ";
    for (auto& [t, r] : unplaced) s += t + " (" + r + ") ";
    return s;
  }
};

class LogToStderr final : public schema::Host::Server {
 protected:
  kj::Promise<void> log(LogContext context) override {
    fprintf(stderr, "plugin: %s\n", context.getParams().getMessage().cStr());
    return kj::READY_NOW;
  }
};

class Harness {
 public:
  Harness(kj::AsyncIoContext& io, int fd)
      : io(io), stream(io.lowLevelProvider->wrapSocketFd(fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP)),
        client(*stream), scheduler(client.bootstrap().castAs<schema::Scheduler>()) {
    auto request = scheduler.configureRequest();
    request.initSettings(0);
    request.setHost(kj::heap<LogToStderr>());
    request.send().wait(io.waitScope);
  }

  Plan schedule(const std::vector<NodeDef>& nodes, const std::vector<TaskDef>& tasks) {
    auto request = scheduler.scheduleRequest();
    auto nodeList = request.initNodes(nodes.size());
    for (unsigned i = 0; i < nodes.size(); ++i) fill(nodeList[i], nodes[i]);
    auto taskList = request.initTasks(tasks.size());
    for (unsigned i = 0; i < tasks.size(); ++i) fill(taskList[i], tasks[i]);
    auto response = request.send().wait(io.waitScope);
    Plan plan;
    for (auto a : response.getPlan().getAssignments()) plan.assigned[a.getTaskId()] = a.getNodeId();
    for (auto u : response.getPlan().getUnplaced()) plan.unplaced[u.getTaskId()] = u.getReason();
    return plan;
  }

 private:
  kj::AsyncIoContext& io;
  kj::Own<kj::AsyncIoStream> stream;
  capnp::TwoPartyClient client;
  schema::Scheduler::Client scheduler;

  template <typename Builder>
  static void setGeneric(Builder list, const std::map<std::string, int64_t>& generic) {
    unsigned i = 0;
    for (auto& [kind, units] : generic) {
      list[i].setKind(kind);
      list[i++].setDiscrete(units);
    }
  }

  static void fill(schema::NodeInfo::Builder info, const NodeDef& d) {
    auto node = info.initNode();
    node.setId(d.id);
    node.setRole(d.role);
    node.initStatus().setState(d.state);
    auto spec = node.initSpec();
    spec.setAvailability(d.availability);
    auto labels = spec.initAnnotations().initLabels(d.labels.size());
    unsigned i = 0;
    for (auto& [k, v] : d.labels) {
      labels[i].setKey(k);
      labels[i++].setValue(v);
    }
    node.initDescription().setHostname("host-" + d.id);
    auto available = info.initAvailable();
    available.setMemoryBytes(d.memory);
    available.setNanoCpus(4'000'000'000);
    setGeneric(available.initGeneric(d.generic.size()), d.generic);
    auto counts = info.initTasksByService(d.tasksByService.size());
    i = 0;
    for (auto& [s, n] : d.tasksByService) {
      counts[i].setServiceId(s);
      counts[i++].setCount(n);
    }
    auto failed = info.initRecentFailures(d.recentFailures.size());
    i = 0;
    for (auto& [s, n] : d.recentFailures) {
      failed[i].setServiceId(s);
      failed[i++].setCount(n);
    }
    info.setTotalTasks(d.totalTasks);
  }

  static void fill(schema::Task::Builder task, const TaskDef& d) {
    task.setId(d.id);
    task.setServiceId(d.service);
    task.setNodeId(d.nodeId);
    auto spec = task.initSpec();
    auto reservations = spec.initResources().initReservations();
    reservations.setMemoryBytes(d.memory);
    setGeneric(reservations.initGeneric(d.generic.size()), d.generic);
    auto placement = spec.initPlacement();
    placement.setMaxReplicas(d.maxReplicas);
    auto constraints = placement.initConstraints(d.constraints.size());
    for (unsigned i = 0; i < d.constraints.size(); ++i) constraints.set(i, d.constraints[i]);
  }
};

std::vector<TaskDef> tasks(const std::string& prefix, int count, std::function<void(TaskDef&)> edit = {}) {
  std::vector<TaskDef> out;
  for (int i = 1; i <= count; ++i) {
    TaskDef t;
    t.id = prefix + std::to_string(i);
    if (edit) edit(t);
    out.push_back(t);
  }
  return out;
}

void run(Harness& h) {
  {
    std::vector<NodeDef> nodes = {{"n1"}, {"n2"}, {"n3"}, {"n4"}, {"n5"}};
    nodes[0].availability = nodes[1].availability = schema::NodeAvailability::DRAIN;
    for (int i = 2; i < 5; ++i) nodes[i].memory = kGiB;
    auto plan = h.schedule(nodes, tasks("t", 1, [](TaskDef& t) { t.memory = 2 * kGiB; }));
    check(plan.unplaced["t1"] == "no suitable node (2 nodes drained; insufficient memory on 3 nodes)",
          "a reason counts every node's refusal, in filter order", plan.text());
  }
  {
    std::vector<NodeDef> nodes = {{"n1"}, {"n2"}};
    nodes[0].state = schema::NodeState::DOWN;
    nodes[1].availability = schema::NodeAvailability::PAUSE;
    auto plan = h.schedule(nodes, tasks("t", 1));
    check(plan.unplaced["t1"] == "no suitable node (1 node not ready; 1 node paused)",
          "not ready and paused nodes are named, singular", plan.text());
  }
  {
    std::vector<NodeDef> nodes = {{"n1"}, {"n2"}};
    nodes[0].labels = {{"zone", "East"}};
    auto east = tasks("e", 2, [](TaskDef& t) { t.constraints = {"node.labels.zone == east"}; });
    auto plan = h.schedule(nodes, east);
    check(plan.assigned["e1"] == "n1" && plan.assigned["e2"] == "n1",
          "constraint values ignore case and surrounding blanks", plan.text());
    auto notEast = tasks("x", 1, [](TaskDef& t) { t.constraints = {"node.labels.zone!=east"}; });
    plan = h.schedule(nodes, notEast);
    check(plan.assigned["x1"] == "n2", "a missing label satisfies != (it reads as \"\")", plan.text());
    auto west = tasks("w", 1, [](TaskDef& t) { t.constraints = {"node.labels.zone==west"}; });
    plan = h.schedule(nodes, west);
    check(plan.unplaced["w1"] == "no suitable node (constraint node.labels.zone==west not satisfied on 2 nodes)",
          "an unsatisfied constraint is named in the reason", plan.text());
  }
  {
    std::vector<NodeDef> nodes = {{"n1"}};
    auto bad = tasks("b", 1, [](TaskDef& t) { t.constraints = {"node.labels.zone=east"}; });
    auto unknown = tasks("u", 1, [](TaskDef& t) { t.constraints = {"node.ip==127.0.0.1"}; });
    auto plan = h.schedule(nodes, bad);
    check(plan.unplaced["b1"].rfind("invalid constraint 'node.labels.zone=east': expected", 0) == 0,
          "a constraint without == or != is refused with a reason", plan.text());
    plan = h.schedule(nodes, unknown);
    check(plan.unplaced["u1"].find("unknown key 'node.ip'") != std::string::npos,
          "a constraint on an unknown key is refused with a reason", plan.text());
  }
  {
    std::vector<NodeDef> nodes = {{"n1"}, {"n2"}};
    nodes[0].totalTasks = 7;
    nodes[1].totalTasks = 3;
    nodes[1].tasksByService = {{"svc", 1}};
    auto plan = h.schedule(nodes, tasks("t", 3));
    check(plan.assigned["t1"] == "n1" && plan.assigned["t2"] == "n2" && plan.assigned["t3"] == "n1",
          "ranks by the service's tasks, then total tasks, then node ID", plan.text());
    nodes[0].recentFailures = {{"svc", 5}};
    plan = h.schedule(nodes, tasks("t", 1));
    check(plan.assigned["t1"] == "n2", "a node with 5 recent failures of the service goes last",
          plan.text());
  }
  {
    std::vector<NodeDef> nodes = {{"n1"}, {"n2"}};
    nodes[0].generic = {{"gpu", 2}};
    auto plan = h.schedule(nodes, tasks("g", 3, [](TaskDef& t) { t.generic = {{"gpu", 1}}; }));
    check(plan.assigned["g1"] == "n1" && plan.assigned["g2"] == "n1" &&
              plan.unplaced["g3"] == "no suitable node (insufficient gpu on 2 nodes)",
          "generic resources are reserved per batch", plan.text());
  }
  {
    std::vector<NodeDef> nodes = {{"n1"}, {"n2"}};
    auto plan = h.schedule(nodes, tasks("m", 3, [](TaskDef& t) { t.maxReplicas = 1; }));
    check(plan.assigned.size() == 2 &&
              plan.unplaced["m3"] == "no suitable node (max replicas per node reached on 2 nodes)",
          "placement.maxReplicas caps the service per node", plan.text());
  }
  {
    std::vector<NodeDef> nodes = {{"n1"}};
    auto plan = h.schedule(nodes, tasks("p", 1, [](TaskDef& t) { t.nodeId = "gone"; }));
    check(plan.unplaced["p1"] == "no suitable node (assigned node gone is not in the snapshot)",
          "a preset node missing from the snapshot is named", plan.text());
    plan = h.schedule({}, tasks("e", 1));
    check(plan.unplaced["e1"] == "no suitable node (no nodes in the snapshot)",
          "an empty snapshot is explained", plan.text());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: example-scheduler-test <example-scheduler.so>\n");
    return 2;
  }
  void* library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    fprintf(stderr, "example-scheduler-test: cannot load %s: %s\n", argv[1], dlerror());
    return 2;
  }
  auto entry = reinterpret_cast<swarm_plugin_entry_fn>(dlsym(library, SWARM_PLUGIN_ENTRY_SYMBOL));
  const swarm_plugin_descriptor* descriptor = entry ? entry(SWARM_PLUGIN_ABI_VERSION) : nullptr;
  if (descriptor == nullptr || descriptor->kind != SWARM_PLUGIN_KIND_SCHEDULER) {
    fprintf(stderr, "example-scheduler-test: %s is not a scheduler plugin for ABI %u\n", argv[1],
            SWARM_PLUGIN_ABI_VERSION);
    return 2;
  }

  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    perror("socketpair");
    return 2;
  }
  char error[512] = "";
  int32_t served = -1;
  std::thread plugin([&]() { served = descriptor->serve(fds[1], error, sizeof(error)); });
  try {
    auto io = kj::setupAsyncIo();
    Harness harness(io, fds[0]);
    run(harness);
  } catch (const kj::Exception& e) {  // leaving the block disconnects, which ends serve()
    fprintf(stderr, "FAIL talking to the plugin: %s\n", e.getDescription().cStr());
    ++failures;
  }
  plugin.join();
  if (served != SWARM_SERVE_OK) {
    fprintf(stderr, "example-scheduler-test: serve() returned %d: %s\n", served, error);
    ++failures;
  }
  printf("%s: %d failure(s)\n", failures ? "FAILED" : "passed", failures);
  return failures ? 1 : 0;
}
