// scheduler-spread.so through the real plugin boundary: loaded by the kernel's PluginInstance,
// served on a socketpair in process or in swarm-plugin-runner, called over Cap'n Proto.
#include "harness.h"

#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

namespace swarm::spread::test {
namespace {

using schema::NodeAvailability;
using Isolation = Plugin::Isolation;

// A mixed batch: labels, reservations, constraints, preferences, a preset node, a drained node.
void mixedBatch(uint64_t seed, std::vector<NodeDef>& ns, std::vector<TaskDef>& tasks) {
  std::mt19937_64 rng(seed);
  ns = nodes(12);
  const char* zones[] = {"a", "b", "c"};
  for (auto& n : ns) {
    n.labels = {{"zone", zones[rng() % 3]}};
    n.memory = static_cast<int64_t>(1 + rng() % 4) * kGiB;
  }
  ns[3].availability = NodeAvailability::DRAIN;
  TaskDef web;
  web.memory = kGiB / 2;
  web.preferences = {"node.labels.zone"};
  TaskDef db;
  db.constraints = {"node.labels.zone==a"};
  db.memory = kGiB;
  TaskDef global;
  global.nodeId = "node-5";
  tasks = replicas("web", "svc-web", 20, web);
  auto more = replicas("db", "svc-db", 6, db);
  tasks.insert(tasks.end(), more.begin(), more.end());
  more = replicas("g", "svc-g", 1, global);
  tasks.insert(tasks.end(), more.begin(), more.end());
}

TEST_CASE("scheduler-spread: plugin: plans through the boundary equal the pure function's, in and out of process") {
  uint64_t seed = testSeed();
  INFO("seed " << seed);
  std::vector<NodeDef> ns;
  std::vector<TaskDef> tasks;
  mixedBatch(seed, ns, tasks);
  Result expected = runCore(ns, tasks);
  REQUIRE(expected.assigned.size() > 10);
  for (auto isolation : {Isolation::inProcess, Isolation::outOfProcess}) {
    Plugin plugin(isolation);
    Result got = plugin.schedule(ns, tasks);
    INFO(describe(got));
    CHECK(got == expected);
    CHECK(got.order == expected.order);
  }
}

TEST_CASE("scheduler-spread: plugin: unplaced tasks carry the explanation") {
  auto ns = nodes(5);
  for (int i = 0; i < 3; ++i) ns[i].memory = kGiB;
  ns[3].availability = NodeAvailability::DRAIN;
  ns[4].availability = NodeAvailability::DRAIN;
  TaskDef big;
  big.memory = 2 * kGiB;
  Plugin plugin;
  Result result = plugin.schedule(ns, replicas("t", "svc-1", 1, big));
  CHECK(result.reason("t-1") == "no suitable node (insufficient memory on 3 nodes; 2 nodes drained)");
}

TEST_CASE("scheduler-spread: plugin: a batch with a repeated task ID is refused with the reason") {
  auto tasks = replicas("t", "svc-1", 2);
  tasks[1].id = "t-1";
  Plugin plugin;
  CHECK_THAT(plugin.scheduleError(nodes(1), tasks),
             Catch::Contains("task t-1 appears twice in the batch (positions 0 and 1); send each "
                             "task once"));
  // The plugin keeps serving after a refusal.
  CHECK(plugin.schedule(nodes(1), replicas("t", "svc-1", 2)).assigned.size() == 2);
}

TEST_CASE("scheduler-spread: plugin: takes no settings and says which one it refused") {
  CHECK(configureError({}) == "");
  CHECK_THAT(configureError({{"strategy", "binpack"}}), Catch::Contains("strategy"));
}

TEST_CASE("scheduler-spread: plugin: info names the plugin and its kind") {
  Plugin plugin;
  auto response = plugin.client().infoRequest().send().wait(plugin.waitScope());
  CHECK(std::string(response.getInfo().getName()) == "scheduler-spread");
  CHECK(response.getInfo().getKind() == schema::Kind::SCHEDULER);
}

TEST_CASE("scheduler-spread: plugin: 20,000 tasks on 1,000 nodes in one call") {
  auto ns = nodes(1000);
  TaskDef shape;
  shape.memory = kGiB;
  shape.preferences = {"node.labels.zone"};
  for (size_t i = 0; i < ns.size(); ++i) ns[i].labels = {{"zone", "z" + std::to_string(i % 4)}};
  std::vector<TaskDef> tasks;
  for (int s = 0; s < 20; ++s) {
    auto more = replicas("s" + std::to_string(s), "svc-" + std::to_string(s), 1000, shape);
    tasks.insert(tasks.end(), more.begin(), more.end());
  }
  Plugin plugin;
  Result result = plugin.schedule(ns, tasks);
  // 16 GiB per node, 1 GiB per task: 16 per node, 16,000 in all; the rest explain why.
  CHECK(result.assigned.size() == 16000);
  for (auto& [n, count] : result.perNode()) CHECK(count == 16);
  REQUIRE(result.unplaced.size() == 4000);
  CHECK(result.unplaced.begin()->second == "no suitable node (insufficient memory on 1000 nodes)");
}

}  // namespace
}  // namespace swarm::spread::test
