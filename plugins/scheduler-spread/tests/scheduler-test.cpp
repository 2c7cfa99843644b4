// The scheduler's decisions through the pure core: ranking, placement preferences, preset nodes,
// grouping, determinism, refusals of bad batches, and seeded random batches held to an oracle.
#include "harness.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace swarm::spread::test {
namespace {

using schema::NodeAvailability;
using schema::NodeRole;
using schema::NodeState;
using Protocol = schema::PortConfig::Protocol;

TaskDef spreadOver(std::vector<std::string> preferences) {
  TaskDef t;
  t.preferences = std::move(preferences);
  return t;
}

// Tasks per label value of `key` (nodes without it under "").
std::map<std::string, int> perLabel(const Result& result, const std::vector<NodeDef>& ns,
                                    const std::string& key) {
  std::map<std::string, int> out;
  for (auto& n : ns) {
    std::string value;
    for (auto& [k, v] : n.labels) {
      if (k == key) value = v;
    }
    out[value] += result.on(n.id);
  }
  return out;
}

TEST_CASE("scheduler-spread: ranking: fewest tasks of the same service first") {
  auto ns = nodes(3);
  ns[0].tasksByService = {{"svc-1", 2}};
  ns[0].totalTasks = 2;
  ns[1].tasksByService = {{"svc-1", 1}};
  ns[1].totalTasks = 1;
  ns[2].tasksByService = {{"svc-other", 10}};  // busiest overall, but none of svc-1
  ns[2].totalTasks = 10;
  auto result = runCore(ns, replicas("t", "svc-1", 3));
  INFO(describe(result));
  CHECK(result.nodeOf("t-1") == "node-3");
  CHECK(result.nodeOf("t-2") == "node-2");  // node-2 (1, 1 total) beats node-3 (1, 11 total)
  CHECK(result.nodeOf("t-3") == "node-3");
}

TEST_CASE("scheduler-spread: ranking: then fewest tasks overall") {
  auto ns = nodes(3);
  ns[0].totalTasks = 5;
  ns[1].totalTasks = 3;
  ns[2].totalTasks = 4;
  auto result = runCore(ns, replicas("t", "svc-1", 4));
  INFO(describe(result));
  CHECK(result.nodeOf("t-1") == "node-2");
  CHECK(result.nodeOf("t-2") == "node-3");
  CHECK(result.nodeOf("t-3") == "node-1");
  CHECK(result.nodeOf("t-4") == "node-2");  // all at 1 of the service: node-2 has 4 in total
}

TEST_CASE("scheduler-spread: ranking: then node ID, whatever the snapshot's order") {
  std::vector<NodeDef> ns = {node("node-c"), node("node-a"), node("node-b")};
  auto result = runCore(ns, replicas("t", "svc-1", 4));
  INFO(describe(result));
  CHECK(result.nodeOf("t-1") == "node-a");
  CHECK(result.nodeOf("t-2") == "node-b");
  CHECK(result.nodeOf("t-3") == "node-c");
  CHECK(result.nodeOf("t-4") == "node-a");
}

TEST_CASE("scheduler-spread: ranking: nodes where the service keeps failing go last") {
  auto ns = nodes(4);
  ns[0].recentFailures = {{"svc-1", 5}};  // the emptiest node, but failing svc-1
  ns[1].recentFailures = {{"svc-1", 4}};  // under the threshold: no effect
  ns[1].totalTasks = 3;
  ns[2].recentFailures = {{"svc-other", 9}};  // another service's failures: no effect
  ns[2].totalTasks = 5;
  ns[3].recentFailures = {{"svc-1", 7}};
  ns[3].labels = {{"pool", "x"}};
  ns[0].labels = {{"pool", "x"}};
  auto result = runCore(ns, replicas("t", "svc-1", 4));
  INFO(describe(result));
  CHECK(result.on("node-1") == 0);
  CHECK(result.on("node-4") == 0);
  CHECK(result.on("node-2") == 2);
  CHECK(result.on("node-3") == 2);

  // When only failing nodes pass the filters they are used, fewer failures first: failures
  // outrank the spread, as in Swarm's nodeLess.
  TaskDef pool;
  pool.constraints = {"node.labels.pool==x"};
  result = runCore(ns, replicas("p", "svc-1", 2, pool));
  INFO(describe(result));
  CHECK(result.on("node-1") == 2);
}

TEST_CASE("scheduler-spread: spread: replicas even out across equal nodes") {
  auto result = runCore(nodes(3), replicas("t", "svc-1", 10));
  INFO(describe(result));
  CHECK(result.on("node-1") == 4);
  CHECK(result.on("node-2") == 3);
  CHECK(result.on("node-3") == 3);
}

TEST_CASE("scheduler-spread: preferences: one level splits tasks evenly across values, counting tasks there") {
  auto ns = nodes(6);
  ns[0].labels = {{"zone", "a"}};
  ns[1].labels = {{"zone", "a"}};
  ns[2].labels = {{"zone", "b"}};
  for (int i = 3; i < 6; ++i) ns[i].labels = {{"zone", "c"}};
  ns[0].tasksByService = {{"svc-1", 2}};
  ns[0].totalTasks = 2;
  auto result = runCore(ns, replicas("t", "svc-1", 7, spreadOver({"node.labels.zone"})));
  INFO(describe(result));
  // 2 + 7 = 9 tasks over 3 zones: 3 each.
  auto zones = perLabel(result, ns, "zone");
  CHECK(zones["a"] == 1);
  CHECK(zones["b"] == 3);
  CHECK(zones["c"] == 3);
  CHECK(result.on("node-2") == 1);  // inside zone a, the node without tasks
  CHECK(result.on("node-4") == 1);
  CHECK(result.on("node-5") == 1);
  CHECK(result.on("node-6") == 1);
}

TEST_CASE("scheduler-spread: preferences: nodes without the label form the \"\" group") {
  auto ns = nodes(4);
  ns[0].labels = {{"zone", "a"}};
  ns[1].labels = {{"zone", "b"}};
  auto result = runCore(ns, replicas("t", "svc-1", 6, spreadOver({"node.labels.zone"})));
  INFO(describe(result));
  CHECK(result.on("node-1") == 2);
  CHECK(result.on("node-2") == 2);
  CHECK(result.on("node-3") == 1);
  CHECK(result.on("node-4") == 1);
}

TEST_CASE("scheduler-spread: preferences: an uneven split favours branches in value order") {
  // Swarm walks a Go map here, so which branch gets the extra task is random there.
  std::vector<NodeDef> ns = {node("node-1"), node("node-2"), node("node-3")};
  ns[0].labels = {{"zone", "c"}};
  ns[1].labels = {{"zone", "b"}};
  // node-3 has no zone: "" sorts first
  auto result = runCore(ns, replicas("t", "svc-1", 5, spreadOver({"node.labels.zone"})));
  INFO(describe(result));
  CHECK(result.on("node-3") == 2);
  CHECK(result.on("node-2") == 2);
  CHECK(result.on("node-1") == 1);
}

TEST_CASE("scheduler-spread: preferences: nested, one tree level per preference") {
  auto ns = nodes(4);
  ns[0].labels = {{"zone", "a"}, {"rack", "1"}};
  ns[1].labels = {{"zone", "a"}, {"rack", "2"}};
  ns[2].labels = {{"zone", "a"}, {"rack", "2"}};
  ns[3].labels = {{"zone", "b"}, {"rack", "1"}};
  auto result = runCore(
      ns, replicas("t", "svc-1", 8, spreadOver({"node.labels.zone", "node.labels.rack"})));
  INFO(describe(result));
  CHECK(result.on("node-4") == 4);  // zone b: 4
  CHECK(result.on("node-1") == 2);  // zone a, rack 1: 2
  CHECK(result.on("node-2") == 1);  // zone a, rack 2: 2 over two nodes
  CHECK(result.on("node-3") == 1);

  // Without the preferences the same batch simply spreads over the nodes.
  result = runCore(ns, replicas("t", "svc-1", 8));
  for (auto& n : ns) CHECK(result.on(n.id) == 2);
}

TEST_CASE("scheduler-spread: preferences: engine labels spread too") {
  auto ns = nodes(3);
  ns[0].engineLabels = {{"disk", "ssd"}};
  ns[1].engineLabels = {{"disk", "ssd"}};
  ns[2].engineLabels = {{"disk", "hdd"}};
  auto result = runCore(ns, replicas("t", "svc-1", 4, spreadOver({"engine.labels.disk"})));
  INFO(describe(result));
  CHECK(result.on("node-3") == 2);
  CHECK(result.on("node-1") == 1);
  CHECK(result.on("node-2") == 1);
}

TEST_CASE("scheduler-spread: preferences: a branch that runs out of room drops out, the others take the rest") {
  auto ns = nodes(3);
  ns[0].labels = {{"zone", "a"}};
  ns[0].memory = kGiB;
  ns[1].labels = {{"zone", "b"}};
  ns[2].labels = {{"zone", "b"}};
  TaskDef shape = spreadOver({"node.labels.zone"});
  shape.memory = kGiB;
  auto result = runCore(ns, replicas("t", "svc-1", 6, shape));
  INFO(describe(result));
  CHECK(result.unplaced.empty());
  CHECK(result.on("node-1") == 1);
  CHECK(result.on("node-2") == 3);
  CHECK(result.on("node-3") == 2);
}

TEST_CASE("scheduler-spread: preferences: after a branch fills up the others stay even") {
  // Branch counts are live: Swarm's scheduleNTasksOnSubtree reads them as they were before the
  // pass, which would put 5 in zone b and 3 in zone c here.
  auto ns = nodes(3);
  ns[0].labels = {{"zone", "a"}};
  ns[0].memory = kGiB;
  ns[1].labels = {{"zone", "b"}};
  ns[2].labels = {{"zone", "c"}};
  TaskDef shape = spreadOver({"node.labels.zone"});
  shape.memory = kGiB;
  auto result = runCore(ns, replicas("t", "svc-1", 9, shape));
  INFO(describe(result));
  CHECK(result.on("node-1") == 1);
  CHECK(result.on("node-2") == 4);
  CHECK(result.on("node-3") == 4);
}

TEST_CASE("scheduler-spread: preferences: a descriptor other than node.labels / engine.labels is refused") {
  auto result = runCore(nodes(2), replicas("t", "svc-1", 2, spreadOver({"node.hostname"})));
  INFO(describe(result));
  CHECK(result.reason("t-1") ==
        "invalid placement preference \"node.hostname\": spread over node.labels.<key> or "
        "engine.labels.<key>");
  CHECK(result.reason("t-2") == result.reason("t-1"));
}

TEST_CASE("scheduler-spread: preset node: a task with a node ID is only checked against that node") {
  auto ns = nodes(4);
  ns[0].tasksByService = {{"svc-g", 5}};  // the busiest, yet the preset node
  ns[0].totalTasks = 9;
  ns[1].availability = NodeAvailability::DRAIN;
  ns[2].memory = kGiB / 2;
  ns[3].memory = 64 * kGiB;  // empty and roomy: must still not take the others
  std::vector<TaskDef> tasks;
  for (const char* preset : {"node-1", "node-2", "node-3", "node-gone"}) {
    TaskDef t;
    t.id = std::string("g-") + preset;
    t.serviceId = "svc-g";
    t.slot = 0;
    t.nodeId = preset;
    t.memory = kGiB;
    tasks.push_back(t);
  }
  auto result = runCore(ns, tasks);
  INFO(describe(result));
  CHECK(result.nodeOf("g-node-1") == "node-1");
  CHECK(result.reason("g-node-2") == "no suitable node (preset node node-2 is drained)");
  CHECK(result.reason("g-node-3") == "no suitable node (preset node node-3: insufficient memory)");
  CHECK(result.reason("g-node-gone") ==
        "no suitable node (preset node node-gone is not in the snapshot)");
}

TEST_CASE("scheduler-spread: preset node: preset tasks go first and take what they need") {
  auto ns = nodes(1);
  ns[0].memory = kGiB;
  TaskDef replicated;
  replicated.id = "r-1";
  replicated.serviceId = "svc-r";
  replicated.memory = kGiB;
  TaskDef global = replicated;
  global.id = "g-1";
  global.serviceId = "svc-g";
  global.nodeId = "node-1";
  auto result = runCore(ns, {replicated, global});
  INFO(describe(result));
  CHECK(result.nodeOf("g-1") == "node-1");
  CHECK(result.reason("r-1") == "no suitable node (insufficient memory on 1 node)");
}

TEST_CASE("scheduler-spread: grouping: tasks of one service version with different specs keep their own filters") {
  auto ns = nodes(3);
  TaskDef toTwo;
  toTwo.constraints = {"node.id==node-2"};
  TaskDef toThree;
  toThree.constraints = {"node.id==node-3"};
  auto tasks = concat({replicas("two", "svc-1", 2, toTwo), replicas("any", "svc-1", 2),
                       replicas("three", "svc-1", 1, toThree)});
  auto result = runCore(ns, tasks);
  INFO(describe(result));
  CHECK(result.nodeOf("two-1") == "node-2");
  CHECK(result.nodeOf("two-2") == "node-2");
  CHECK(result.nodeOf("three-1") == "node-3");
  // The unconstrained pair sees node-2's two tasks of svc-1 and avoids it.
  std::set<std::string> any{result.nodeOf("any-1"), result.nodeOf("any-2")};
  CHECK(any == std::set<std::string>{"node-1", "node-3"});
}

TEST_CASE("scheduler-spread: grouping: later groups of a service see the earlier groups' placements") {
  TaskDef v2;
  v2.specVersion = 2;
  v2.memory = kGiB;
  auto tasks = concat({replicas("v1", "svc-1", 2), replicas("v2", "svc-1", 2, v2)});
  auto result = runCore(nodes(4), tasks);
  INFO(describe(result));
  for (auto& n : nodes(4)) CHECK(result.on(n.id) == 1);
}

// ---- seeded random batches -------------------------------------------------------------------

struct Scenario {
  std::vector<NodeDef> nodes;
  std::vector<TaskDef> tasks;
};

// Per service the same maxReplicas, so the oracle can check it on final counts.
uint64_t maxReplicasOf(int service) { return service % 3 == 0 ? 2 : 0; }

Scenario randomScenario(uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto pick = [&](uint64_t n) { return rng() % n; };
  const char* zones[] = {"a", "b", "c"};
  Scenario s;
  int nodeCount = 5 + static_cast<int>(pick(25));
  for (int i = 0; i < nodeCount; ++i) {
    NodeDef n = node("node-" + std::to_string(pick(1000000)) + "-" + std::to_string(i));
    n.memory = static_cast<int64_t>(1 + pick(8)) * kGiB;
    n.nanoCpus = static_cast<int64_t>(1 + pick(8)) * kCpu / 2;
    if (pick(5) != 0) n.labels.push_back({"zone", zones[pick(3)]});
    n.labels.push_back({"rack", "r" + std::to_string(pick(3))});
    if (pick(4) == 0) n.role = NodeRole::MANAGER;
    switch (pick(10)) {
      case 0: n.availability = NodeAvailability::DRAIN; break;
      case 1: n.availability = NodeAvailability::PAUSE; break;
      case 2: n.state = NodeState::DOWN; break;
      default: break;
    }
    if (pick(3) == 0) n.generic = {{"gpu", static_cast<int64_t>(pick(3)), ""}};
    if (pick(6) == 0) n.hostPorts = {{80, Protocol::TCP}};
    for (int svc = 0; svc < 6; ++svc) {
      if (pick(4) == 0) {
        uint32_t c = static_cast<uint32_t>(1 + pick(3));
        n.tasksByService.push_back({"svc-" + std::to_string(svc), c});
        n.totalTasks += c;
      }
    }
    n.totalTasks += static_cast<uint32_t>(pick(5));
    if (pick(8) == 0) n.recentFailures = {{"svc-1", static_cast<uint32_t>(4 + pick(4))}};
    s.nodes.push_back(std::move(n));
  }
  int taskCount = 20 + static_cast<int>(pick(100));
  for (int i = 0; i < taskCount; ++i) {
    TaskDef t;
    t.id = "task-" + std::to_string(i);
    int svc = static_cast<int>(pick(6));
    t.serviceId = "svc-" + std::to_string(svc);
    t.specVersion = 1 + pick(2);
    t.maxReplicas = maxReplicasOf(svc);
    if (pick(2) == 0) t.memory = static_cast<int64_t>(pick(4)) * kGiB / 2;
    if (pick(3) == 0) t.nanoCpus = static_cast<int64_t>(pick(4)) * kCpu / 4;
    if (pick(6) == 0) t.generic = {{"gpu", 1, ""}};
    switch (pick(6)) {
      case 0: t.constraints = {std::string("node.labels.zone==") + zones[pick(3)]}; break;
      case 1: t.constraints = {std::string("node.labels.zone!=") + zones[pick(3)]}; break;
      case 2: t.constraints = {"node.role==manager"}; break;
      default: break;
    }
    switch (pick(4)) {
      case 0: t.preferences = {"node.labels.zone"}; break;
      case 1: t.preferences = {"node.labels.zone", "node.labels.rack"}; break;
      default: break;
    }
    if (pick(8) == 0) t.hostPorts = {{pick(2) == 0 ? 80u : 443u, Protocol::TCP}};
    if (pick(10) == 0) {
      t.nodeId = pick(5) == 0 ? std::string("node-gone") : s.nodes[pick(s.nodes.size())].id;
    }
    s.tasks.push_back(std::move(t));
  }
  return s;
}

std::string labelOf(const NodeDef& n, const std::string& key) {
  for (auto& [k, v] : n.labels) {
    if (k == key) return v;
  }
  return {};
}

// The constraints the scenarios use, evaluated independently of the code under test.
bool satisfies(const NodeDef& n, const std::string& c) {
  bool equal = c.find("==") != std::string::npos;
  size_t op = equal ? c.find("==") : c.find("!=");
  std::string key = c.substr(0, op), want = c.substr(op + 2), have;
  if (key == "node.role") {
    have = n.role == NodeRole::MANAGER ? "manager" : "worker";
  } else {
    have = labelOf(n, key.substr(std::string("node.labels.").size()));
  }
  return (have == want) == equal;
}

// Holds `result` to what every plan must be, and checks that a task left unplaced really fits
// nowhere: every node fails one of its filters in the final state (placements only ever take
// room away, so a node that refused the task when its group ran still refuses it).
void checkAgainstOracle(const Scenario& s, const Result& result) {
  std::map<std::string, const NodeDef*> byId;
  for (auto& n : s.nodes) byId[n.id] = &n;
  struct Use {
    int64_t memory = 0, cpu = 0, gpu = 0;
    std::map<std::string, int> perService;
    std::multiset<uint32_t> ports;
  };
  std::map<std::string, Use> use;
  REQUIRE(result.assigned.size() + result.unplaced.size() == s.tasks.size());
  for (auto& t : s.tasks) {
    bool placed = result.assigned.count(t.id) > 0;
    REQUIRE((placed || result.unplaced.count(t.id) > 0));
    if (!placed) {
      CHECK_FALSE(result.reason(t.id).empty());
      continue;
    }
    const std::string& where = result.nodeOf(t.id);
    REQUIRE(byId.count(where));
    const NodeDef& n = *byId[where];
    if (!t.nodeId.empty()) CHECK(where == t.nodeId);
    CHECK(n.state == NodeState::READY);
    CHECK(n.availability == NodeAvailability::ACTIVE);
    for (auto& c : t.constraints) CHECK(satisfies(n, c));
    Use& u = use[where];
    u.memory += t.memory;
    u.cpu += t.nanoCpus;
    for (auto& g : t.generic) u.gpu += g.count;
    ++u.perService[t.serviceId];
    for (auto& p : t.hostPorts) u.ports.insert(p.port);
  }
  auto existing = [](const NodeDef& n, const std::string& service) {
    for (auto& [svc, c] : n.tasksByService) {
      if (svc == service) return static_cast<int>(c);
    }
    return 0;
  };
  for (auto& n : s.nodes) {
    Use& u = use[n.id];
    CHECK(u.memory <= n.memory);
    CHECK(u.cpu <= n.nanoCpus);
    int64_t gpus = n.generic.empty() ? 0 : n.generic[0].count;
    CHECK(u.gpu <= gpus);
    for (auto& p : n.hostPorts) u.ports.insert(p.port);
    for (uint32_t port : {80u, 443u}) CHECK(u.ports.count(port) <= 1);
    for (auto& [service, added] : u.perService) {
      uint64_t max = maxReplicasOf(std::stoi(service.substr(4)));
      if (max != 0) {
        int before = existing(n, service);
        CHECK(before + added <= static_cast<int>(std::max<uint64_t>(max, before)));
        if (before >= static_cast<int>(max)) CHECK(added == 0);
      }
    }
  }
  // Completeness.
  for (auto& t : s.tasks) {
    if (result.assigned.count(t.id)) continue;
    for (auto& n : s.nodes) {
      if (!t.nodeId.empty() && n.id != t.nodeId) continue;
      Use& u = use[n.id];
      bool fits = n.state == NodeState::READY && n.availability == NodeAvailability::ACTIVE;
      bool reserves = t.memory != 0 || t.nanoCpus != 0 || !t.generic.empty();
      int64_t gpus = n.generic.empty() ? 0 : n.generic[0].count;
      if (reserves) {
        fits = fits && u.memory + t.memory <= n.memory && u.cpu + t.nanoCpus <= n.nanoCpus &&
               u.gpu + (t.generic.empty() ? 0 : 1) <= gpus;
      }
      for (auto& c : t.constraints) fits = fits && satisfies(n, c);
      for (auto& p : t.hostPorts) fits = fits && u.ports.count(p.port) == 0;
      if (t.maxReplicas != 0) {
        fits = fits && static_cast<uint64_t>(existing(n, t.serviceId) + u.perService[t.serviceId]) <
                           t.maxReplicas;
      }
      INFO("task " << t.id << " is unplaced (" << result.reason(t.id) << ") but fits " << n.id);
      CHECK_FALSE(fits);
    }
  }
}

TEST_CASE("scheduler-spread: random batches: every plan keeps the invariants and places what fits") {
  uint64_t seed = testSeed();
  for (uint64_t round = 0; round < 40; ++round) {
    INFO("seed " << seed << " round " << round << " (SCHEDULER_SPREAD_TEST_SEED replays)");
    Scenario s = randomScenario(seed + round);
    Result result = runCore(s.nodes, s.tasks);
    INFO(describe(result));
    checkAgainstOracle(s, result);
  }
}

TEST_CASE("scheduler-spread: determinism: the same input gives the same plan, whatever the order of the nodes") {
  uint64_t seed = testSeed();
  for (uint64_t round = 0; round < 10; ++round) {
    INFO("seed " << seed << " round " << round);
    Scenario s = randomScenario(seed ^ (0x5eedull + round));
    Result first = runCore(s.nodes, s.tasks);
    CHECK(runCore(s.nodes, s.tasks) == first);
    std::mt19937_64 rng(seed + round);
    std::shuffle(s.nodes.begin(), s.nodes.end(), rng);
    Result shuffled = runCore(s.nodes, s.tasks);
    CHECK(shuffled == first);
  }
}

TEST_CASE("scheduler-spread: plan: lists every task once, in input order, assignments first") {
  auto ns = nodes(2);
  ns[1].availability = NodeAvailability::DRAIN;
  TaskDef big;
  big.memory = 64 * kGiB;
  auto tasks = concat({replicas("a", "svc-a", 2), replicas("big", "svc-big", 2, big),
                       replicas("b", "svc-b", 2)});
  auto result = runCore(ns, tasks);
  CHECK(result.order == std::vector<std::string>{"a-1", "a-2", "b-1", "b-2", "big-1", "big-2"});
}

TEST_CASE("scheduler-spread: bad batch: missing or repeated IDs refuse the whole call with what to fix") {
  auto tasks = replicas("t", "svc-1", 3);
  tasks[2].id = "t-1";
  CHECK(coreError(nodes(2), tasks) ==
        "task t-1 appears twice in the batch (positions 0 and 2); send each task once");
  tasks[2].id = "";
  CHECK(coreError(nodes(2), tasks) ==
        "task at position 2 of the batch has no id; every task needs its ID");
  auto ns = nodes(3);
  ns[2].id = "node-1";
  CHECK(coreError(ns, replicas("t", "svc-1", 1)) ==
        "node node-1 appears twice in the snapshot; send each node once");
  ns[2].id = "";
  CHECK(coreError(ns, replicas("t", "svc-1", 1)) ==
        "node at position 2 of the snapshot has no node.id; every NodeInfo needs its node's ID");
  CHECK(coreError(nodes(2), {}) == "");
}

TEST_CASE("scheduler-spread: scale: 20,000 replicas of 20 services spread evenly over 1,000 nodes") {
  auto ns = nodes(1000);
  std::vector<TaskDef> tasks;
  for (int s = 0; s < 20; ++s) {
    auto more = replicas("s" + std::to_string(s), "svc-" + std::to_string(s), 1000);
    tasks.insert(tasks.end(), more.begin(), more.end());
  }
  auto result = runCore(ns, tasks);
  REQUIRE(result.assigned.size() == 20000);
  for (auto& [n, count] : result.perNode()) CHECK(count == 20);
}

}  // namespace
}  // namespace swarm::spread::test
