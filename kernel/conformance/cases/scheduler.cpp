// Scheduler cases (sdk/schema/scheduler.capnp): a plan for a node snapshot and a batch of tasks.
//
// Every plan any case gets back is first held to the invariants the schema states for all plans
// (checkPlan): each task exactly once, assignments only to READY + ACTIVE nodes of the snapshot
// that satisfy the task's constraints and have room for its reservations, a preset node honoured,
// a reason for every unplaced task. Each case then checks the behaviour it is about, including
// that tasks which fit somewhere are actually placed (a scheduler that places nothing must fail).
#include "conformance.h"

#include <swarm/schema/scheduler.capnp.h>

#include <kj/debug.h>

#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace swarm::conformance {
namespace {

constexpr int64_t kGiB = int64_t(1) << 30;
constexpr int64_t kCpu = 1000000000;  // nanoCPUs in one CPU
constexpr auto kCallLimit = 10 * kj::SECONDS;

struct NodeDef {
  std::string id;
  std::string hostname;
  schema::NodeRole role = schema::NodeRole::WORKER;
  schema::NodeState state = schema::NodeState::READY;
  schema::NodeAvailability availability = schema::NodeAvailability::ACTIVE;
  std::vector<std::pair<std::string, std::string>> labels;
  int64_t memory = 16 * kGiB;   // available
  int64_t nanoCpus = 8 * kCpu;  // available
  std::vector<std::pair<std::string, uint32_t>> tasksByService;
  uint32_t totalTasks = 0;
};

NodeDef node(std::string id) {
  NodeDef n;
  n.hostname = "host-" + id;
  n.id = std::move(id);
  return n;
}

struct TaskDef {
  std::string id;
  std::string serviceId = "svc-1";
  uint64_t slot = 1;
  int64_t memory = 0;    // reservation
  int64_t nanoCpus = 0;  // reservation
  std::vector<std::string> constraints;
  std::string nodeId;  // preset (global service)
};

// `count` replicas of one service: ids "<prefix>-1".., slots 1..count.
std::vector<TaskDef> replicas(const std::string& prefix, const std::string& serviceId, int count,
                              int64_t memory = 0, int64_t nanoCpus = 0) {
  std::vector<TaskDef> tasks;
  for (int i = 1; i <= count; ++i) {
    TaskDef t;
    t.id = prefix + "-" + std::to_string(i);
    t.serviceId = serviceId;
    t.slot = static_cast<uint64_t>(i);
    t.memory = memory;
    t.nanoCpus = nanoCpus;
    tasks.push_back(std::move(t));
  }
  return tasks;
}

struct Plan {
  std::map<std::string, std::string> assigned;  // task -> node
  std::map<std::string, std::string> unplaced;  // task -> reason

  std::map<std::string, int> perNode() const {
    std::map<std::string, int> counts;
    for (auto& [task, nodeId] : assigned) ++counts[nodeId];
    return counts;
  }
  bool operator==(const Plan&) const = default;
};

std::string describe(const Plan& plan) {
  std::string s = "assigned {";
  for (auto& [t, n] : plan.assigned) s += " " + t + "->" + n;
  s += " } unplaced {";
  for (auto& [t, r] : plan.unplaced) s += " " + t + " (" + r + ")";
  return s + " }";
}

const char* stateText(schema::NodeState s) {
  switch (s) {
    case schema::NodeState::UNKNOWN:
      return "unknown";
    case schema::NodeState::DOWN:
      return "down";
    case schema::NodeState::READY:
      return "ready";
    case schema::NodeState::DISCONNECTED:
      return "disconnected";
  }
  return "?";
}

const char* availabilityText(schema::NodeAvailability a) {
  switch (a) {
    case schema::NodeAvailability::ACTIVE:
      return "active";
    case schema::NodeAvailability::PAUSE:
      return "pause";
    case schema::NodeAvailability::DRAIN:
      return "drain";
  }
  return "?";
}

// The constraint keys the cases use, evaluated the way the schema describes ("key==value" /
// "key!=value"; a missing label compares as the empty string).
bool satisfies(const NodeDef& n, const std::string& constraint) {
  bool equal = true;
  auto op = constraint.find("==");
  if (op == std::string::npos) {
    op = constraint.find("!=");
    equal = false;
  }
  KJ_ASSERT(op != std::string::npos, "case bug: bad constraint", constraint);
  std::string key = constraint.substr(0, op);
  std::string want = constraint.substr(op + 2);
  std::string have;
  if (key == "node.id") {
    have = n.id;
  } else if (key == "node.hostname") {
    have = n.hostname;
  } else if (key == "node.role") {
    have = n.role == schema::NodeRole::MANAGER ? "manager" : "worker";
  } else if (key.rfind("node.labels.", 0) == 0) {
    for (auto& [k, v] : n.labels) {
      if (k == key.substr(12)) have = v;
    }
  } else {
    KJ_FAIL_ASSERT("case bug: constraint key not modelled", key);
  }
  return (have == want) == equal;
}

// Holds `plan` to the invariants every plan must keep.
void checkPlan(const std::vector<NodeDef>& nodes, const std::vector<TaskDef>& tasks,
               const Plan& plan) {
  std::map<std::string, const NodeDef*> byId;
  for (auto& n : nodes) byId[n.id] = &n;
  std::map<std::string, int64_t> memoryUsed, cpuUsed;
  for (auto& t : tasks) {
    bool isAssigned = plan.assigned.count(t.id) > 0;
    bool isUnplaced = plan.unplaced.count(t.id) > 0;
    if (!isAssigned && !isUnplaced) fail(kj::str("task ", t.id, " is missing from the plan"));
    if (isAssigned && isUnplaced) {
      fail(kj::str("task ", t.id, " is both assigned and unplaced"));
    }
    if (isUnplaced) {
      if (plan.unplaced.at(t.id).empty()) {
        fail(kj::str("task ", t.id, " is unplaced without a reason"));
      }
      continue;
    }
    const std::string& nodeId = plan.assigned.at(t.id);
    auto it = byId.find(nodeId);
    if (it == byId.end()) {
      fail(kj::str("task ", t.id, " is assigned to ", nodeId, ", which is not in the snapshot"));
    }
    const NodeDef& n = *it->second;
    if (!t.nodeId.empty() && nodeId != t.nodeId) {
      fail(kj::str("task ", t.id, " was preset to node ", t.nodeId, " but assigned to ", nodeId));
    }
    if (n.state != schema::NodeState::READY) {
      fail(kj::str("task ", t.id, " is assigned to node ", nodeId, ", which is ",
                   stateText(n.state), ", not ready"));
    }
    if (n.availability != schema::NodeAvailability::ACTIVE) {
      fail(kj::str("task ", t.id, " is assigned to node ", nodeId, ", whose availability is ",
                   availabilityText(n.availability)));
    }
    for (auto& c : t.constraints) {
      if (!satisfies(n, c)) {
        fail(kj::str("task ", t.id, " is assigned to node ", nodeId,
                     ", which fails its constraint ", c));
      }
    }
    memoryUsed[nodeId] += t.memory;
    cpuUsed[nodeId] += t.nanoCpus;
    if (memoryUsed[nodeId] > n.memory) {
      fail(kj::str("node ", nodeId, " has ", n.memory, " bytes of memory available but is given ",
                   memoryUsed[nodeId], " bytes of reservations"));
    }
    if (cpuUsed[nodeId] > n.nanoCpus) {
      fail(kj::str("node ", nodeId, " has ", n.nanoCpus, " nanoCPUs available but is given ",
                   cpuUsed[nodeId], " nanoCPUs of reservations"));
    }
  }
  std::set<std::string> inputs;
  for (auto& t : tasks) inputs.insert(t.id);
  for (auto& [t, n] : plan.assigned) {
    if (!inputs.count(t))
      fail(kj::str("the plan assigns task ", t, ", which was not in the batch"));
  }
  for (auto& [t, r] : plan.unplaced) {
    if (!inputs.count(t)) fail(kj::str("the plan lists task ", t, ", which was not in the batch"));
  }
}

void fillNode(schema::NodeInfo::Builder info, const NodeDef& d) {
  auto n = info.initNode();
  n.setId(d.id);
  auto spec = n.initSpec();
  auto labels = spec.initAnnotations().initLabels(static_cast<unsigned>(d.labels.size()));
  for (unsigned i = 0; i < d.labels.size(); ++i) {
    labels[i].setKey(d.labels[i].first);
    labels[i].setValue(d.labels[i].second);
  }
  spec.setDesiredRole(d.role);
  spec.setMembership(schema::NodeMembership::ACCEPTED);
  spec.setAvailability(d.availability);
  auto description = n.initDescription();
  description.setHostname(d.hostname);
  auto platform = description.initPlatform();
  platform.setOs("linux");
  platform.setArchitecture("x86_64");
  auto total = description.initResources();
  total.setMemoryBytes(d.memory);
  total.setNanoCpus(d.nanoCpus);
  n.initStatus().setState(d.state);
  n.setRole(d.role);
  if (d.role == schema::NodeRole::MANAGER) {
    n.getManagerStatus().initManager().setReachability(schema::Reachability::REACHABLE);
  }
  auto available = info.initAvailable();
  available.setMemoryBytes(d.memory);
  available.setNanoCpus(d.nanoCpus);
  auto counts = info.initTasksByService(static_cast<unsigned>(d.tasksByService.size()));
  for (unsigned i = 0; i < d.tasksByService.size(); ++i) {
    counts[i].setServiceId(d.tasksByService[i].first);
    counts[i].setCount(d.tasksByService[i].second);
  }
  info.setTotalTasks(d.totalTasks);
}

void fillTask(schema::Task::Builder t, const TaskDef& d) {
  t.setId(d.id);
  t.setServiceId(d.serviceId);
  t.setSlot(d.slot);
  t.setNodeId(d.nodeId);
  t.initServiceAnnotations().setName(d.serviceId);
  auto spec = t.initSpec();
  spec.getRuntime().initContainer().setImage("swarm-test/busybox:latest");
  auto reservations = spec.initResources().initReservations();
  reservations.setMemoryBytes(d.memory);
  reservations.setNanoCpus(d.nanoCpus);
  auto constraints =
      spec.initPlacement().initConstraints(static_cast<unsigned>(d.constraints.size()));
  for (unsigned i = 0; i < d.constraints.size(); ++i) constraints.set(i, d.constraints[i]);
  t.initStatus().setState(schema::TASK_STATE_PENDING);
  t.setDesiredState(schema::TASK_STATE_RUNNING);
}

// Asks the plugin for a plan, converts it and checks the invariants every plan keeps.
Plan schedule(CaseContext& ctx, const std::vector<NodeDef>& nodes,
              const std::vector<TaskDef>& tasks) {
  auto request = ctx.as<schema::Scheduler>().scheduleRequest();
  auto nodeList = request.initNodes(static_cast<unsigned>(nodes.size()));
  for (unsigned i = 0; i < nodes.size(); ++i) fillNode(nodeList[i], nodes[i]);
  auto taskList = request.initTasks(static_cast<unsigned>(tasks.size()));
  for (unsigned i = 0; i < tasks.size(); ++i) fillTask(taskList[i], tasks[i]);
  auto response = ctx.within(request.send(), kCallLimit, "schedule()");

  Plan plan;
  auto reply = response.getPlan();
  for (auto a : reply.getAssignments()) {
    std::string taskId = a.getTaskId();
    if (!plan.assigned.emplace(taskId, a.getNodeId()).second) {
      fail(kj::str("task ", taskId, " is assigned more than once"));
    }
  }
  for (auto u : reply.getUnplaced()) {
    std::string taskId = u.getTaskId();
    if (!plan.unplaced.emplace(taskId, u.getReason()).second) {
      fail(kj::str("task ", taskId, " is listed as unplaced more than once"));
    }
  }
  checkPlan(nodes, tasks, plan);
  return plan;
}

void expectAllPlaced(const std::vector<TaskDef>& tasks, const Plan& plan, const char* why) {
  for (auto& t : tasks) {
    if (!plan.assigned.count(t.id)) {
      fail(kj::str("task ", t.id, " was left unplaced although ", why, ": ", describe(plan)));
    }
  }
}

void expectAllUnplaced(const std::vector<TaskDef>& tasks, const Plan& plan, const char* why) {
  for (auto& t : tasks) {
    if (!plan.unplaced.count(t.id)) {
      fail(kj::str("task ", t.id, " was placed although ", why, ": ", describe(plan)));
    }
  }
}

// A seeded mixed batch: some nodes unusable, tasks of several services with and without
// reservations and constraints, some of them impossible to place.
void randomScenario(uint64_t seed, std::vector<NodeDef>& nodes, std::vector<TaskDef>& tasks) {
  std::mt19937_64 rng(seed);
  auto pick = [&](uint64_t n) { return rng() % n; };
  const char* zones[] = {"a", "b", "c"};
  int nodeCount = 4 + static_cast<int>(pick(6));
  for (int i = 0; i < nodeCount; ++i) {
    NodeDef n = node("node-" + std::to_string(i));
    n.memory = static_cast<int64_t>(1 + pick(8)) * kGiB;
    n.nanoCpus = static_cast<int64_t>(1 + pick(8)) * kCpu / 2;
    n.labels = {{"zone", zones[pick(3)]}};
    if (pick(4) == 0) n.role = schema::NodeRole::MANAGER;
    switch (pick(8)) {
      case 0:
        n.availability = schema::NodeAvailability::DRAIN;
        break;
      case 1:
        n.availability = schema::NodeAvailability::PAUSE;
        break;
      case 2:
        n.state = schema::NodeState::DOWN;
        break;
      default:
        break;
    }
    n.totalTasks = static_cast<uint32_t>(pick(5));
    nodes.push_back(std::move(n));
  }
  int taskCount = 20 + static_cast<int>(pick(30));
  for (int i = 0; i < taskCount; ++i) {
    TaskDef t;
    t.id = "task-" + std::to_string(i);
    t.serviceId = "svc-" + std::to_string(pick(4));
    t.slot = static_cast<uint64_t>(i + 1);
    if (pick(2) == 0) t.memory = static_cast<int64_t>(pick(4)) * kGiB / 2;
    if (pick(3) == 0) t.nanoCpus = static_cast<int64_t>(pick(4)) * kCpu / 4;
    switch (pick(6)) {
      case 0:
        t.constraints = {std::string("node.labels.zone==") + zones[pick(3)]};
        break;
      case 1:
        t.constraints = {"node.role==manager"};
        break;
      case 2:
        t.constraints = {"node.labels.zone==nowhere"};
        break;
      default:
        break;
    }
    tasks.push_back(std::move(t));
  }
}

std::vector<NodeDef> equalNodes(int count) {
  std::vector<NodeDef> nodes;
  for (int i = 1; i <= count; ++i) nodes.push_back(node("node-" + std::to_string(i)));
  return nodes;
}

void mixedBatchEachTaskOnce(CaseContext& ctx) {
  for (uint64_t round = 0; round < 5; ++round) {
    std::vector<NodeDef> nodes;
    std::vector<TaskDef> tasks;
    randomScenario(ctx.seed + round, nodes, tasks);
    schedule(ctx, nodes, tasks);  // checkPlan holds it to the invariants
  }
}

void emptyBatchEmptyPlan(CaseContext& ctx) {
  for (auto& nodes : {equalNodes(3), std::vector<NodeDef>{}}) {
    auto plan = schedule(ctx, nodes, {});
    if (!plan.assigned.empty() || !plan.unplaced.empty()) {
      fail(kj::str("a batch with no tasks gave ", describe(plan)));
    }
  }
}

void noNodesAllUnplaced(CaseContext& ctx) {
  auto tasks = replicas("t", "svc-1", 3);
  auto plan = schedule(ctx, {}, tasks);
  expectAllUnplaced(tasks, plan, "the snapshot has no nodes");
}

void neverToNodeNotReady(CaseContext& ctx) {
  std::vector<NodeDef> nodes = equalNodes(4);
  nodes[0].state = schema::NodeState::DOWN;
  nodes[1].state = schema::NodeState::DISCONNECTED;
  nodes[2].state = schema::NodeState::UNKNOWN;
  auto tasks = replicas("t", "svc-1", 6);
  auto plan = schedule(ctx, nodes, tasks);
  expectAllPlaced(tasks, plan, "node-4 is ready, active and has room");
  // Without the ready node nothing can be placed.
  nodes.pop_back();
  plan = schedule(ctx, nodes, tasks);
  expectAllUnplaced(tasks, plan, "no node is ready");
}

void neverToPausedOrDrained(CaseContext& ctx) {
  std::vector<NodeDef> nodes = equalNodes(3);
  nodes[0].availability = schema::NodeAvailability::PAUSE;
  nodes[1].availability = schema::NodeAvailability::DRAIN;
  nodes[1].role = schema::NodeRole::MANAGER;
  auto tasks = replicas("t", "svc-1", 6);
  auto plan = schedule(ctx, nodes, tasks);
  expectAllPlaced(tasks, plan, "node-3 is ready, active and has room");
  nodes.pop_back();
  plan = schedule(ctx, nodes, tasks);
  expectAllUnplaced(tasks, plan, "every node is paused or drained");
}

void memoryFillUp(CaseContext& ctx) {
  std::vector<NodeDef> nodes = {node("node-1")};
  nodes[0].memory = 2 * kGiB;
  auto tasks = replicas("t", "svc-1", 5, kGiB);
  auto plan = schedule(ctx, nodes, tasks);
  if (plan.assigned.size() != 2) {
    fail(
        kj::str("5 tasks reserving 1 GiB each on one node with 2 GiB available: expected "
                "exactly 2 placed, got ",
                describe(plan)));
  }
  // A second node with 1 GiB takes exactly one more.
  nodes.push_back(node("node-2"));
  nodes[1].memory = kGiB;
  plan = schedule(ctx, nodes, tasks);
  auto counts = plan.perNode();
  if (counts["node-1"] != 2 || counts["node-2"] != 1) {
    fail(kj::str("expected 2 tasks on node-1 (2 GiB) and 1 on node-2 (1 GiB), got ",
                 describe(plan)));
  }
}

void cpuFillUp(CaseContext& ctx) {
  std::vector<NodeDef> nodes = {node("node-1"), node("node-2")};
  nodes[0].nanoCpus = 3 * kCpu / 2;  // room for three half-CPU tasks
  nodes[1].nanoCpus = kCpu / 4;      // room for none
  auto tasks = replicas("t", "svc-1", 4, 0, kCpu / 2);
  auto plan = schedule(ctx, nodes, tasks);
  auto counts = plan.perNode();
  if (counts["node-1"] != 3 || plan.unplaced.size() != 1) {
    fail(
        kj::str("4 tasks reserving 0.5 CPU with 1.5 + 0.25 CPUs available: expected 3 on "
                "node-1 and 1 unplaced, got ",
                describe(plan)));
  }
}

void noReservationsNoLimit(CaseContext& ctx) {
  std::vector<NodeDef> nodes = {node("node-1")};
  nodes[0].memory = 0;
  nodes[0].nanoCpus = 0;
  auto tasks = replicas("t", "svc-1", 3);
  auto plan = schedule(ctx, nodes, tasks);
  expectAllPlaced(tasks, plan, "they reserve nothing");
}

void spreadAcrossEqualNodes(CaseContext& ctx) {
  auto nodes = equalNodes(3);
  for (int count : {3, 6}) {
    auto tasks = replicas("t", "svc-1", count);
    auto plan = schedule(ctx, nodes, tasks);
    for (auto& n : nodes) {
      if (plan.perNode()[n.id] != count / 3) {
        fail(kj::str(count, " replicas on 3 equal nodes: expected ", count / 3, " per node, got ",
                     describe(plan)));
      }
    }
  }
}

void spreadCountsServiceTasksFirst(CaseContext& ctx) {
  auto nodes = equalNodes(3);
  nodes[0].tasksByService = {{"svc-1", 2}};
  nodes[0].totalTasks = 2;
  nodes[1].tasksByService = {{"svc-1", 1}};
  nodes[1].totalTasks = 1;
  nodes[2].tasksByService = {{"svc-other", 10}};  // busiest overall, but none of svc-1
  nodes[2].totalTasks = 10;
  auto tasks = replicas("t", "svc-1", 3);
  for (auto& t : tasks) t.slot += 3;
  auto plan = schedule(ctx, nodes, tasks);
  auto counts = plan.perNode();
  if (counts["node-1"] != 0 || counts["node-2"] != 1 || counts["node-3"] != 2) {
    fail(
        kj::str("nodes running 2, 1 and 0 tasks of svc-1 given 3 more: expected 0, 1 and "
                "2 new ones (2 each in total), got ",
                describe(plan)));
  }
}

void nodeLabelConstraints(CaseContext& ctx) {
  auto nodes = equalNodes(4);
  nodes[0].labels = {{"zone", "a"}};
  nodes[1].labels = {{"zone", "a"}};
  nodes[2].labels = {{"zone", "b"}};
  // node-4 has no zone label
  auto inA = replicas("a", "svc-a", 4);
  for (auto& t : inA) t.constraints = {"node.labels.zone==a"};
  auto notA = replicas("n", "svc-n", 4);
  for (auto& t : notA) t.constraints = {"node.labels.zone!=a"};
  auto inC = replicas("c", "svc-c", 2);
  for (auto& t : inC) t.constraints = {"node.labels.zone==c"};
  std::vector<TaskDef> tasks;
  for (auto* group : {&inA, &notA, &inC}) tasks.insert(tasks.end(), group->begin(), group->end());
  auto plan = schedule(ctx, nodes, tasks);  // checkPlan: assignments satisfy constraints
  expectAllPlaced(inA, plan, "two nodes have zone=a");
  expectAllPlaced(notA, plan, "two nodes are not in zone a");
  expectAllUnplaced(inC, plan, "no node has zone=c");
  auto counts = plan.perNode();
  if (counts["node-1"] != 2 || counts["node-2"] != 2) {
    fail(kj::str("4 replicas constrained to the 2 zone=a nodes should spread 2 + 2, got ",
                 describe(plan)));
  }
}

void roleHostnameIdConstraints(CaseContext& ctx) {
  auto nodes = equalNodes(3);
  nodes[0].role = schema::NodeRole::MANAGER;
  auto managers = replicas("m", "svc-m", 2);
  for (auto& t : managers) t.constraints = {"node.role==manager"};
  auto workers = replicas("w", "svc-w", 2);
  for (auto& t : workers) t.constraints = {"node.role!=manager"};
  auto byHost = replicas("h", "svc-h", 2);
  for (auto& t : byHost) t.constraints = {"node.hostname==host-node-2"};
  auto notById = replicas("i", "svc-i", 2);
  for (auto& t : notById) t.constraints = {"node.id!=node-1", "node.id!=node-2"};
  auto both = replicas("b", "svc-b", 1);
  both[0].constraints = {"node.role==manager", "node.id==node-3"};  // never both
  std::vector<TaskDef> tasks;
  for (auto* g : {&managers, &workers, &byHost, &notById, &both}) {
    tasks.insert(tasks.end(), g->begin(), g->end());
  }
  auto plan = schedule(ctx, nodes, tasks);
  for (auto* g : {&managers, &workers, &byHost, &notById}) {
    expectAllPlaced(*g, plan, "a node satisfies its constraints");
  }
  expectAllUnplaced(both, plan, "its two constraints exclude each other");
}

void presetNodeOnly(CaseContext& ctx) {
  auto nodes = equalNodes(4);
  nodes[0].tasksByService = {{"svc-g", 5}};  // the busiest, yet the preset node
  nodes[0].totalTasks = 9;
  nodes[1].availability = schema::NodeAvailability::DRAIN;
  nodes[2].memory = kGiB / 2;
  std::vector<TaskDef> tasks(4);
  const char* presets[] = {"node-1", "node-2", "node-3", "node-gone"};
  for (int i = 0; i < 4; ++i) {
    tasks[i].id = std::string("g-") + presets[i];
    tasks[i].serviceId = "svc-g";
    tasks[i].slot = 0;
    tasks[i].nodeId = presets[i];
    tasks[i].memory = kGiB;
  }
  nodes[3].memory = 64 * kGiB;  // empty and roomy: must still not take the others
  auto plan = schedule(ctx, nodes, tasks);
  expectAllPlaced({tasks[0]}, plan, "its preset node-1 is ready, active and has room");
  expectAllUnplaced({tasks[1]}, plan, "its preset node-2 is drained");
  expectAllUnplaced({tasks[2]}, plan, "its preset node-3 lacks memory");
  expectAllUnplaced({tasks[3]}, plan, "its preset node is not in the snapshot");
}

void sameInputSamePlan(CaseContext& ctx) {
  // A seeded mix, and equal empty nodes where every choice is a tie.
  std::vector<NodeDef> mixedNodes;
  std::vector<TaskDef> mixedTasks;
  randomScenario(ctx.seed ^ 0x5eed, mixedNodes, mixedTasks);
  std::vector<TaskDef> tied;
  for (const char* service : {"svc-a", "svc-b", "svc-c"}) {
    auto more = replicas(service, service, 5);
    tied.insert(tied.end(), more.begin(), more.end());
  }
  std::pair<std::vector<NodeDef>, std::vector<TaskDef>> inputs[] = {{mixedNodes, mixedTasks},
                                                                    {equalNodes(4), tied}};
  for (auto& [nodes, tasks] : inputs) {
    Plan first = schedule(ctx, nodes, tasks);
    for (int i = 0; i < 3; ++i) {
      Plan again = schedule(ctx, nodes, tasks);
      if (!(again == first)) {
        fail(kj::str("the same input gave two plans: ", describe(first), " and then ",
                     describe(again)));
      }
    }
  }
}

}  // namespace

std::vector<Case> schedulerCases() {
  return {
      {"scheduler: every task of a mixed batch appears exactly once in the plan",
       mixedBatchEachTaskOnce},
      {"scheduler: an empty batch gives an empty plan", emptyBatchEmptyPlan},
      {"scheduler: with no nodes every task is unplaced with a reason", noNodesAllUnplaced},
      {"scheduler: never assigns to a node that is not ready", neverToNodeNotReady},
      {"scheduler: never assigns to a paused or drained node", neverToPausedOrDrained},
      {"scheduler: fills a node only up to its available memory", memoryFillUp},
      {"scheduler: fills a node only up to its available CPU", cpuFillUp},
      {"scheduler: tasks without reservations are not limited by resources", noReservationsNoLimit},
      {"scheduler: spreads replicas of a service across equal nodes", spreadAcrossEqualNodes},
      {"scheduler: spread counts the service's tasks on each node before their total load",
       spreadCountsServiceTasksFirst},
      {"scheduler: honours node.labels constraints", nodeLabelConstraints},
      {"scheduler: honours node.role, node.hostname and node.id constraints",
       roleHostnameIdConstraints},
      {"scheduler: a task with a preset node is only checked against that node", presetNodeOnly},
      {"scheduler: the same input gives the same plan", sameInputSamePlan},
  };
}

}  // namespace swarm::conformance
