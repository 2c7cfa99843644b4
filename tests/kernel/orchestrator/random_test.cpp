// Random cluster histories (scaling, updates to good and failing images, drains, nodes going
// DOWN and coming back, crashes, new nodes), checked against invariants at every step and for
// convergence once the cluster is healed. ORCHESTRATOR_TEST_SEEDS sets how many seeds run
// (default 6); ORCHESTRATOR_TEST_SEED replays one.
#include "simulation.h"

#include <cstdlib>
#include <random>

using namespace swarm::orchestrator;
using namespace swarm::orchestrator::testing;
using swarm::schema::NodeAvailability;
using swarm::schema::NodeState;
using UpdateState = swarm::store::schema::UpdateState;
namespace schema = swarm::schema;

namespace {

constexpr uint16_t kShutdown = schema::TASK_STATE_SHUTDOWN;
constexpr uint16_t kRunning = schema::TASK_STATE_RUNNING;

SpecEdit replicatedSpec(uint64_t replicas, std::string image, schema::UpdateConfig::Order order, uint64_t parallelism) {
  return [=](schema::ServiceSpec::Builder s) {
    s.getMode().setReplicated(replicas);
    s.getTask().getRuntime().getContainer().setImage(image);
    s.getTask().initRestart().setDelay(2 * kSecond);
    auto update = s.initUpdate();
    update.setOrder(order);
    update.setParallelism(parallelism);
  };
}

SpecEdit globalSpec(std::string image) {
  return [=](schema::ServiceSpec::Builder s) {
    s.getMode().setGlobal();
    s.getTask().getRuntime().getContainer().setImage(image);
    s.getTask().initRestart().setDelay(2 * kSecond);
  };
}

struct Replicated {
  std::string id;
  schema::UpdateConfig::Order order;
  uint64_t parallelism;
};

void checkStep(const Simulation& sim, const std::vector<Replicated>& services) {
  for (const auto& svc : services) {
    INFO("seed " << sim.seed << " (replay with ORCHESTRATOR_TEST_SEED=" << sim.seed << "), service "
                 << sim.service(svc.id)->name() << ", t=" << (sim.now - kT0) / kSecond << " s");
    uint64_t replicas = sim.service(svc.id)->service().getSpec().getMode().getReplicated();
    std::map<uint64_t, size_t> running;
    std::set<uint64_t> occupied;
    for (const auto& t : sim.tasks(svc.id)) {
      auto task = t->task();
      if (task.getDesiredState() >= kShutdown) continue;
      occupied.insert(task.getSlot());
      if (task.getStatus().getState() == kRunning) ++running[task.getSlot()];
    }
    // After every plan: no more slots than replicas, and one running task per slot (two while a
    // start-first replacement takes over).
    REQUIRE(occupied.size() <= replicas);
    size_t allowed = svc.order == schema::UpdateConfig::Order::START_FIRST ? 2 : 1;
    for (const auto& [slot, count] : running) REQUIRE(count <= allowed);
  }
}

void runSeed(uint64_t seed) {
  INFO("seed " << seed << " (replay with ORCHESTRATOR_TEST_SEED=" << seed << ")");
  Simulation sim(seed);
  std::mt19937_64 rng(seed);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  std::vector<std::string> nodes;
  for (size_t i = 0, n = 3 + pick(3); i < n; ++i) nodes.push_back(sim.addNode("node" + std::to_string(i)));

  std::vector<Replicated> services = {
      {"", schema::UpdateConfig::Order::STOP_FIRST, 1},
      {"", schema::UpdateConfig::Order::START_FIRST, 2},
  };
  std::vector<uint64_t> replicas = {1 + pick(5), 1 + pick(5)};
  for (size_t i = 0; i < services.size(); ++i) {
    services[i].id = sim.createService("svc" + std::to_string(i),
                                       replicatedSpec(replicas[i], "app:1", services[i].order, services[i].parallelism));
  }
  auto global = sim.createService("global", globalSpec("app:1"));
  sim.afterOrchestrate = [&] { checkStep(sim, services); };
  sim.badImages.insert("app:bad");

  int version = 1;
  for (int event = 0; event < 40; ++event) {
    switch (pick(7)) {
      case 0: {
        size_t i = pick(services.size());
        replicas[i] = pick(7);
        std::string current = sim.service(services[i].id)->service().getSpec().getTask().getRuntime().getContainer().getImage().cStr();
        sim.updateService(services[i].id, replicatedSpec(replicas[i], current, services[i].order, services[i].parallelism));
        break;
      }
      case 1: {
        size_t i = pick(services.size() + 1);
        std::string image = pick(3) == 0 ? "app:bad" : "app:" + std::to_string(++version);
        if (i == services.size()) {
          sim.updateService(global, globalSpec(image));
        } else {
          uint64_t r = sim.service(services[i].id)->service().getSpec().getMode().getReplicated();
          sim.updateService(services[i].id, replicatedSpec(r, image, services[i].order, services[i].parallelism));
        }
        break;
      }
      case 2: {
        auto& id = nodes[pick(nodes.size())];
        auto now = sim.store.get(Kind::node, id)->node().getSpec().getAvailability();
        sim.setAvailability(id, now == NodeAvailability::ACTIVE ? NodeAvailability::DRAIN : NodeAvailability::ACTIVE);
        break;
      }
      case 3: {
        auto& id = nodes[pick(nodes.size())];
        auto now = sim.store.get(Kind::node, id)->node().getStatus().getState();
        sim.setNodeState(id, now == NodeState::READY ? NodeState::DOWN : NodeState::READY);
        break;
      }
      case 4:
      case 5: {
        std::vector<ObjectRef> running;
        for (const auto& svc : services) {
          for (const auto& t : sim.runningTasks(svc.id)) running.push_back(t);
        }
        if (!running.empty()) sim.crashing.insert(running[pick(running.size())]->id());
        break;
      }
      case 6:
        if (nodes.size() < 7) nodes.push_back(sim.addNode("node" + std::to_string(nodes.size())));
        break;
    }
    sim.run(static_cast<int64_t>(1 + pick(12)) * kSecond);
  }

  // Heal: every node back, no more failures, and a good spec for every service.
  sim.badImages.clear();
  sim.crashing.clear();
  for (const auto& id : nodes) {
    if (sim.store.get(Kind::node, id)->node().getStatus().getState() != NodeState::READY) sim.setNodeState(id, NodeState::READY);
    if (sim.store.get(Kind::node, id)->node().getSpec().getAvailability() != NodeAvailability::ACTIVE) {
      sim.setAvailability(id, NodeAvailability::ACTIVE);
    }
  }
  for (size_t i = 0; i < services.size(); ++i) {
    uint64_t r = sim.service(services[i].id)->service().getSpec().getMode().getReplicated();
    replicas[i] = r;
    sim.updateService(services[i].id, replicatedSpec(r, "app:final", services[i].order, services[i].parallelism));
  }
  sim.updateService(global, globalSpec("app:final"));

  auto converged = [&] {
    for (size_t i = 0; i < services.size(); ++i) {
      if (!sim.settled(services[i].id, replicas[i], "app:final")) return false;
      auto state = sim.updateState(services[i].id);
      if (state == UpdateState::UPDATING || state == UpdateState::ROLLBACK_STARTED) return false;
    }
    auto perNode = sim.runningPerNode(global);
    if (perNode.size() != nodes.size()) return false;
    for (const auto& [node, count] : perNode) {
      if (count != 1) return false;
    }
    for (const auto& t : sim.runningTasks(global)) {
      if (sim.image(t) != "app:final") return false;
    }
    return pendingTasks(sim.store).empty() && planOrchestration(sim.store, sim.now, sim.random).empty();
  };
  REQUIRE(sim.runUntil(converged, 600 * kSecond));
  // Settled: the history limit holds in every slot and on every node.
  for (const auto& svc : services) {
    std::map<uint64_t, size_t> perSlot;
    for (const auto& t : sim.tasks(svc.id)) ++perSlot[t->task().getSlot()];
    for (const auto& [slot, count] : perSlot) REQUIRE(count <= static_cast<size_t>(kDefaultHistoryLimit));
  }
  std::map<std::string, size_t> perNode;
  for (const auto& t : sim.tasks(global)) ++perNode[t->task().getNodeId().cStr()];
  for (const auto& [node, count] : perNode) REQUIRE(count <= static_cast<size_t>(kDefaultHistoryLimit));
  // Same seed, same history: replaying gives the same store.
}

}  // namespace

TEST_CASE("random cluster histories keep the invariants and converge", "[orchestrator][random]") {
  const char* one = std::getenv("ORCHESTRATOR_TEST_SEED");
  if (one != nullptr) {
    runSeed(std::strtoull(one, nullptr, 10));
    return;
  }
  const char* count = std::getenv("ORCHESTRATOR_TEST_SEEDS");
  uint64_t seeds = count != nullptr ? std::strtoull(count, nullptr, 10) : 6;
  for (uint64_t seed = 7001; seed < 7001 + seeds; ++seed) runSeed(seed);
}

TEST_CASE("the same seed gives the same cluster", "[orchestrator][random]") {
  auto digestOf = [](uint64_t seed) {
    Simulation sim(seed);
    for (int i = 0; i < 3; ++i) sim.addNode("node" + std::to_string(i));
    auto web = sim.createService("web", replicatedSpec(4, "app:1", schema::UpdateConfig::Order::STOP_FIRST, 1));
    sim.run(20 * kSecond);
    sim.updateService(web, replicatedSpec(4, "app:2", schema::UpdateConfig::Order::STOP_FIRST, 1));
    sim.run(60 * kSecond);
    return sim.store.digest();
  };
  uint64_t seed = testSeed(42);
  INFO("seed " << seed);
  CHECK(digestOf(seed) == digestOf(seed));
}
