// The orchestrators against a simulated cluster (simulation.h): each case drives services,
// nodes and failures with a manual clock and checks what Swarm would do.
#include "simulation.h"

#include <algorithm>

using namespace swarm::orchestrator;
using namespace swarm::orchestrator::testing;
using swarm::schema::NodeAvailability;
using swarm::schema::NodeState;
using UpdateState = swarm::store::schema::UpdateState;
namespace schema = swarm::schema;

namespace {

constexpr uint16_t kRunning = schema::TASK_STATE_RUNNING;
constexpr uint16_t kShutdown = schema::TASK_STATE_SHUTDOWN;

SpecEdit replicated(uint64_t replicas, std::string image = "app:1") {
  return [replicas, image](schema::ServiceSpec::Builder spec) {
    spec.getMode().setReplicated(replicas);
    spec.getTask().getRuntime().getContainer().setImage(image);
  };
}

std::vector<uint64_t> wantedSlots(const Simulation& sim, const std::string& service) {
  std::vector<uint64_t> slots;
  for (const auto& t : sim.tasks(service)) {
    if (t->task().getDesiredState() < kShutdown) slots.push_back(t->task().getSlot());
  }
  std::sort(slots.begin(), slots.end());
  return slots;
}

// Stop-first: a slot never has two wanted tasks observed RUNNING.
void requireOneRunningPerSlot(const Simulation& sim, const std::string& service) {
  std::map<uint64_t, int> running;
  for (const auto& t : sim.runningTasks(service)) ++running[t->task().getSlot()];
  for (const auto& [slot, count] : running) {
    INFO("seed " << sim.seed << " slot " << slot);
    REQUIRE(count <= 1);
  }
}

}  // namespace

TEST_CASE("a replicated service fills its slots and scales up and down", "[orchestrator]") {
  Simulation sim(testSeed(1));
  for (int i = 0; i < 3; ++i) sim.addNode("node" + std::to_string(i));
  auto web = sim.createService("web", replicated(3));
  REQUIRE(sim.runUntil([&] { return sim.settled(web, 3, "app:1"); }, 30 * kSecond));
  CHECK(wantedSlots(sim, web) == std::vector<uint64_t>{1, 2, 3});
  CHECK(sim.runningPerNode(web).size() == 3);  // spread: one per node
  for (const auto& t : sim.tasks(web)) {
    CHECK(std::string(t->task().getServiceAnnotations().getName().cStr()) == "web");
    CHECK(t->task().getSpec().getRuntime().getContainer().getImage() == "app:1");
  }

  sim.updateService(web, replicated(5));
  REQUIRE(sim.runUntil([&] { return sim.settled(web, 5, "app:1"); }, 30 * kSecond));
  CHECK(wantedSlots(sim, web) == std::vector<uint64_t>{1, 2, 3, 4, 5});
  CHECK(sim.updateState(web) == UpdateState::NONE);  // a scale changes no task: no rolling update

  sim.updateService(web, replicated(2));
  REQUIRE(sim.runUntil([&] { return sim.settled(web, 2, "app:1"); }, 30 * kSecond));
  CHECK(wantedSlots(sim, web) == std::vector<uint64_t>{1, 2});
  // The removed slots' tasks were stopped, then deleted.
  REQUIRE(sim.runUntil([&] { return sim.tasks(web).size() == 2; }, 30 * kSecond));
}

TEST_CASE("a global service follows nodes joining, draining and returning", "[orchestrator]") {
  Simulation sim(testSeed(2));
  auto a = sim.addNode("a", {{"zone", "east"}});
  auto b = sim.addNode("b", {{"zone", "east"}});
  auto west = sim.addNode("w", {{"zone", "west"}});
  auto agent = sim.createService("agent", [](schema::ServiceSpec::Builder spec) {
    spec.getMode().setGlobal();
    spec.getTask().initPlacement().initConstraints(1).set(0, "node.labels.zone==EAST");  // values ignore case
  });
  REQUIRE(sim.runUntil([&] { return sim.runningPerNode(agent).size() == 2; }, 30 * kSecond));
  CHECK(sim.runningPerNode(agent).count(west) == 0);
  for (const auto& t : sim.tasks(agent)) CHECK(t->task().getSlot() == 0);

  auto c = sim.addNode("c", {{"zone", "east"}});
  REQUIRE(sim.runUntil([&] { return sim.runningPerNode(agent).count(c) == 1; }, 30 * kSecond));

  sim.setAvailability(b, NodeAvailability::DRAIN);
  REQUIRE(sim.runUntil([&] { return sim.runningPerNode(agent).count(b) == 0; }, 30 * kSecond));
  for (const auto& t : sim.store.tasksOnNode(b)) {
    CHECK(t->task().getDesiredState() == kShutdown);
    CHECK(t->task().getStatus().getState() == kShutdown);
  }
  sim.run(20 * kSecond);
  CHECK(sim.runningPerNode(agent) == std::map<std::string, size_t>{{a, 1}, {c, 1}});

  sim.setAvailability(b, NodeAvailability::ACTIVE);
  REQUIRE(sim.runUntil([&] { return sim.runningPerNode(agent).count(b) == 1; }, 30 * kSecond));

  // A node whose label stops matching loses its task.
  sim.setNodeLabel(c, "zone", "west");
  REQUIRE(sim.runUntil([&] { return sim.runningPerNode(agent).count(c) == 0; }, 30 * kSecond));
  CHECK(sim.runningPerNode(agent).size() == 2);
}

TEST_CASE("restart delay and max attempts", "[orchestrator]") {
  Simulation sim(testSeed(3));
  sim.addNode("n1");
  auto web = sim.createService("web", [](schema::ServiceSpec::Builder spec) {
    auto restart = spec.getTask().initRestart();
    restart.setCondition(schema::RestartPolicy::Condition::ON_FAILURE);
    restart.setDelay(10 * kSecond);
    restart.setMaxAttempts(2);
  });
  REQUIRE(sim.runUntil([&] { return sim.settled(web, 1, "app:1"); }, 30 * kSecond));

  for (int attempt = 1; attempt <= 3; ++attempt) {
    INFO("failure " << attempt);
    auto victim = sim.runningTasks(web).at(0);
    sim.crashing.insert(victim->id());
    sim.agents();
    auto failed = sim.store.get(Kind::task, victim->id());
    REQUIRE(failed->task().getStatus().getState() == schema::TASK_STATE_FAILED);
    int64_t failedAt = failed->task().getStatus().getTimestamp();
    sim.orchestrate();
    if (attempt == 3) {
      // Two restarts were allowed: the slot keeps its failed task, and nothing is planned.
      sim.run(60 * kSecond);
      CHECK(sim.runningTasks(web).empty());
      CHECK(sim.tasks(web).size() == 3);
      CHECK(wantedSlots(sim, web) == std::vector<uint64_t>{1});
      CHECK(planOrchestration(sim.store, sim.now, sim.random).empty());
      break;
    }
    REQUIRE(sim.wakeAt == failedAt + 10 * kSecond);
    // Nothing replaces it before the delay.
    while (sim.now + kSecond < failedAt + 10 * kSecond) {
      sim.step();
      REQUIRE(sim.tasks(web).size() == static_cast<size_t>(attempt));
    }
    REQUIRE(sim.runUntil([&] { return sim.settled(web, 1, "app:1"); }, 30 * kSecond));
    CHECK(sim.tasks(web).size() == static_cast<size_t>(attempt + 1));
    CHECK(sim.store.get(Kind::task, victim->id())->task().getDesiredState() == kShutdown);
  }
}

TEST_CASE("max attempts count only within the window, and condition none never restarts",
          "[orchestrator]") {
  Simulation sim(testSeed(4));
  sim.addNode("n1");
  auto windowed = sim.createService("windowed", [](schema::ServiceSpec::Builder spec) {
    auto restart = spec.getTask().initRestart();
    restart.setDelay(1 * kSecond);
    restart.setMaxAttempts(1);
    restart.setWindow(30 * kSecond);
  });
  auto once = sim.createService("once", [](schema::ServiceSpec::Builder spec) {
    spec.getTask().initRestart().setCondition(schema::RestartPolicy::Condition::NONE);
  });
  REQUIRE(sim.runUntil([&] { return sim.settled(windowed, 1, "app:1") && sim.settled(once, 1, "app:1"); },
                       30 * kSecond));
  auto crash = [&](const std::string& service) {
    sim.crashing.insert(sim.runningTasks(service).at(0)->id());
  };
  crash(windowed);
  crash(once);
  sim.step();
  REQUIRE(sim.runUntil([&] { return sim.settled(windowed, 1, "app:1"); }, 30 * kSecond));
  CHECK(sim.runningTasks(once).empty());
  // A second failure 40 s after the first: the first is outside the window, so it restarts.
  sim.run(40 * kSecond);
  crash(windowed);
  REQUIRE(sim.runUntil([&] { return sim.settled(windowed, 1, "app:1") && sim.tasks(windowed).size() == 3; },
                       30 * kSecond));
  // A third one at once: one restart within the window already, so none more.
  crash(windowed);
  sim.run(30 * kSecond);
  CHECK(sim.runningTasks(windowed).empty());
  CHECK(sim.tasks(windowed).size() == 3);
  CHECK(sim.tasks(once).size() == 1);
}

TEST_CASE("rolling update with parallelism and delay", "[orchestrator]") {
  Simulation sim(testSeed(5));
  for (int i = 0; i < 4; ++i) sim.addNode("node" + std::to_string(i));
  auto spec = [](std::string image) {
    return [image](schema::ServiceSpec::Builder s) {
      s.getMode().setReplicated(4);
      s.getTask().getRuntime().getContainer().setImage(image);
      auto update = s.initUpdate();
      update.setParallelism(2);
      update.setDelay(10 * kSecond);
    };
  };
  auto web = sim.createService("web", spec("app:1"));
  REQUIRE(sim.runUntil([&] { return sim.settled(web, 4, "app:1"); }, 30 * kSecond));
  sim.afterOrchestrate = [&] { requireOneRunningPerSlot(sim, web); };

  sim.updateService(web, spec("app:2"));
  sim.step();
  CHECK(sim.updateState(web) == UpdateState::UPDATING);
  CHECK(std::string(sim.service(web)->service().getUpdateStatus().getMessage().cStr()) == "update in progress");
  size_t maxInProgress = 0;
  REQUIRE(sim.runUntil(
      [&] {
        size_t inProgress = 0;
        for (const auto& t : sim.tasks(web)) {
          auto task = t->task();
          if (sim.image(t) == "app:2" && task.getDesiredState() < kShutdown && task.getStatus().getState() != kRunning) {
            ++inProgress;
          }
        }
        maxInProgress = std::max(maxInProgress, inProgress);
        return sim.updateState(web) == UpdateState::COMPLETED;
      },
      120 * kSecond));
  CHECK(maxInProgress <= 2);
  CHECK(sim.settled(web, 4, "app:2"));
  CHECK(std::string(sim.service(web)->service().getUpdateStatus().getMessage().cStr()) == "update completed");
  // Two batches: the second created at least `delay` after the first ran.
  std::vector<int64_t> created;
  for (const auto& t : sim.tasks(web)) {
    if (sim.image(t) == "app:2") created.push_back(t->createdAt());
  }
  std::sort(created.begin(), created.end());
  REQUIRE(created.size() == 4);
  CHECK(created[0] == created[1]);
  CHECK(created[2] == created[3]);
  CHECK(created[2] - created[1] >= 10 * kSecond);
  // Completion waits delay + monitor (5 s default) after the last task ran.
  auto completedAt = sim.service(web)->service().getUpdateStatus().getCompletedAt();
  CHECK(completedAt - created[3] >= 15 * kSecond);
}

TEST_CASE("an update whose tasks fail pauses", "[orchestrator]") {
  Simulation sim(testSeed(6));
  for (int i = 0; i < 3; ++i) sim.addNode("node" + std::to_string(i));
  auto web = sim.createService("web", replicated(3));
  REQUIRE(sim.runUntil([&] { return sim.settled(web, 3, "app:1"); }, 30 * kSecond));
  sim.badImages.insert("app:bad");
  sim.updateService(web, replicated(3, "app:bad"));
  REQUIRE(sim.runUntil([&] { return sim.updateState(web) == UpdateState::PAUSED; }, 60 * kSecond));
  std::string message = sim.service(web)->service().getUpdateStatus().getMessage().cStr();
  CHECK(message.rfind("update paused due to failure or early termination of task ", 0) == 0);
  sim.run(60 * kSecond);
  CHECK(sim.updateState(web) == UpdateState::PAUSED);
  // Parallelism 1: only the first slot was touched; the others still run the old image.
  std::set<uint64_t> touched;
  for (const auto& t : sim.tasks(web)) {
    if (sim.image(t) == "app:bad") touched.insert(t->task().getSlot());
  }
  CHECK(touched.size() == 1);
  CHECK(sim.runningTasks(web).size() == 2);

  // A new update (the fix) resumes from the paused state.
  sim.updateService(web, replicated(3, "app:2"));
  REQUIRE(sim.runUntil([&] { return sim.updateState(web) == UpdateState::COMPLETED; }, 120 * kSecond));
  CHECK(sim.settled(web, 3, "app:2"));
}

TEST_CASE("failure action rollback brings the old spec back", "[orchestrator]") {
  Simulation sim(testSeed(7));
  for (int i = 0; i < 3; ++i) sim.addNode("node" + std::to_string(i));
  auto spec = [](std::string image) {
    return [image](schema::ServiceSpec::Builder s) {
      s.getMode().setReplicated(3);
      s.getTask().getRuntime().getContainer().setImage(image);
      s.initUpdate().setFailureAction(schema::UpdateConfig::FailureAction::ROLLBACK);
      s.initRollback().setParallelism(0);
    };
  };
  auto web = sim.createService("web", spec("app:1"));
  REQUIRE(sim.runUntil([&] { return sim.settled(web, 3, "app:1"); }, 30 * kSecond));
  sim.badImages.insert("app:bad");
  sim.afterOrchestrate = [&] { requireOneRunningPerSlot(sim, web); };
  sim.updateService(web, spec("app:bad"));
  REQUIRE(sim.runUntil([&] { return sim.updateState(web) == UpdateState::ROLLBACK_STARTED; }, 60 * kSecond));
  std::string message = sim.service(web)->service().getUpdateStatus().getMessage().cStr();
  CHECK(message.rfind("update rolled back due to failure or early termination of task ", 0) == 0);
  REQUIRE(sim.runUntil([&] { return sim.updateState(web) == UpdateState::ROLLBACK_COMPLETED; }, 120 * kSecond));
  CHECK(std::string(sim.service(web)->service().getUpdateStatus().getMessage().cStr()) == "rollback completed");
  CHECK(sim.service(web)->service().getSpec().getTask().getRuntime().getContainer().getImage() == "app:1");
  CHECK(sim.settled(web, 3, "app:1"));
}

TEST_CASE("start-first keeps every replica running through an update", "[orchestrator]") {
  for (auto order : {schema::UpdateConfig::Order::START_FIRST, schema::UpdateConfig::Order::STOP_FIRST}) {
    bool startFirst = order == schema::UpdateConfig::Order::START_FIRST;
    INFO((startFirst ? "start-first" : "stop-first"));
    Simulation sim(testSeed(8));
    for (int i = 0; i < 2; ++i) sim.addNode("node" + std::to_string(i));
    auto spec = [order](std::string image) {
      return [order, image](schema::ServiceSpec::Builder s) {
        s.getMode().setReplicated(2);
        s.getTask().getRuntime().getContainer().setImage(image);
        s.initUpdate().setOrder(order);
      };
    };
    auto web = sim.createService("web", spec("app:1"));
    REQUIRE(sim.runUntil([&] { return sim.settled(web, 2, "app:1"); }, 30 * kSecond));
    size_t fewest = 2, most = 0;
    sim.afterOrchestrate = [&] {
      size_t observed = 0;  // RUNNING as the agents report it, whatever the desired state
      for (const auto& t : sim.tasks(web)) observed += t->task().getStatus().getState() == kRunning;
      fewest = std::min(fewest, observed);
      most = std::max(most, observed);
    };
    sim.updateService(web, spec("app:2"));
    REQUIRE(sim.runUntil([&] { return sim.updateState(web) == UpdateState::COMPLETED; }, 120 * kSecond));
    CHECK(sim.settled(web, 2, "app:2"));
    if (startFirst) {
      CHECK(fewest == 2);  // the old task stops only once its replacement runs
      CHECK(most == 3);
    } else {
      CHECK(fewest == 1);
      CHECK(most == 2);
    }
  }
}

TEST_CASE("drained tasks move, and a returning node gets nothing unless the service rebalances",
          "[orchestrator]") {
  for (bool rebalance : {false, true}) {
    INFO("rebalance " << rebalance);
    Simulation sim(testSeed(9));
    std::vector<std::string> nodes;
    for (int i = 0; i < 3; ++i) nodes.push_back(sim.addNode("node" + std::to_string(i)));
    auto web = sim.createService("web", [rebalance](schema::ServiceSpec::Builder s) {
      s.getMode().setReplicated(6);
      s.getTask().getRuntime().getContainer().setImage("app:1");
      if (rebalance) {
        auto labels = s.getAnnotations().initLabels(1);
        labels[0].setKey(std::string(kRebalanceLabel));
        labels[0].setValue("true");
      }
    });
    REQUIRE(sim.runUntil([&] { return sim.settled(web, 6, "app:1"); }, 30 * kSecond));
    sim.afterOrchestrate = [&] { requireOneRunningPerSlot(sim, web); };
    sim.setAvailability(nodes[0], NodeAvailability::DRAIN);
    REQUIRE(sim.runUntil([&] { return sim.settled(web, 6, "app:1") && sim.runningPerNode(web).count(nodes[0]) == 0; },
                         30 * kSecond));
    CHECK(sim.runningPerNode(web) == std::map<std::string, size_t>{{nodes[1], 3}, {nodes[2], 3}});

    sim.setAvailability(nodes[0], NodeAvailability::ACTIVE);
    if (!rebalance) {
      sim.run(120 * kSecond);
      CHECK(sim.runningPerNode(web).count(nodes[0]) == 0);
    } else {
      REQUIRE(sim.runUntil(
          [&] {
            return sim.settled(web, 6, "app:1") &&
                   sim.runningPerNode(web) ==
                       std::map<std::string, size_t>{{nodes[0], 2}, {nodes[1], 2}, {nodes[2], 2}};
          },
          120 * kSecond));
      sim.run(30 * kSecond);  // and then it stays
      CHECK(sim.runningPerNode(web).size() == 3);
      CHECK(planOrchestration(sim.store, sim.now, sim.random).empty());
    }
  }
}

TEST_CASE("a DOWN node's tasks are replaced at once", "[orchestrator]") {
  Simulation sim(testSeed(10));
  for (int i = 0; i < 3; ++i) sim.addNode("node" + std::to_string(i));
  auto web = sim.createService("web", replicated(2));
  REQUIRE(sim.runUntil([&] { return sim.settled(web, 2, "app:1"); }, 30 * kSecond));
  auto victim = sim.runningTasks(web).at(0);
  std::string lost = victim->task().getNodeId().cStr();
  sim.setNodeState(lost, NodeState::DOWN);
  sim.orchestrate();
  CHECK(sim.store.get(Kind::task, victim->id())->task().getDesiredState() == kShutdown);
  CHECK(!sim.wakeAt.has_value());  // no restart delay for a lost node
  REQUIRE(sim.runUntil([&] { return sim.settled(web, 2, "app:1"); }, 10 * kSecond));
  CHECK(sim.runningPerNode(web).count(lost) == 0);
  // Back: its agent stops the old task; nothing moves back.
  sim.setNodeState(lost, NodeState::READY);
  sim.run(10 * kSecond);
  CHECK(sim.store.get(Kind::task, victim->id())->task().getStatus().getState() == kShutdown);
  CHECK(sim.settled(web, 2, "app:1"));
  CHECK(sim.runningPerNode(web).count(lost) == 0);
}

TEST_CASE("jobs run to completion and again on a new iteration", "[orchestrator]") {
  Simulation sim(testSeed(11));
  for (int i = 0; i < 3; ++i) sim.addNode("node" + std::to_string(i));
  auto batch = sim.createService("batch", [](schema::ServiceSpec::Builder s) {
    auto job = s.getMode().initReplicatedJob();
    job.setMaxConcurrent(2);
    job.setTotalCompletions(5);
  });
  auto everywhere = sim.createService("everywhere", [](schema::ServiceSpec::Builder s) { s.getMode().setGlobalJob(); });
  auto completeCount = [&](const std::string& service) {
    size_t n = 0;
    for (const auto& t : sim.tasks(service)) n += t->task().getStatus().getState() == schema::TASK_STATE_COMPLETE;
    return n;
  };
  size_t mostRunning = 0;
  sim.afterOrchestrate = [&] {
    size_t running = 0;
    for (const auto& t : sim.tasks(batch)) {
      auto task = t->task();
      running += task.getDesiredState() < kShutdown && task.getStatus().getState() < schema::TASK_STATE_COMPLETE;
    }
    mostRunning = std::max(mostRunning, running);
  };
  REQUIRE(sim.runUntil([&] { return completeCount(batch) == 5 && completeCount(everywhere) == 3; }, 120 * kSecond));
  sim.run(30 * kSecond);
  CHECK(sim.tasks(batch).size() == 5);
  CHECK(mostRunning == 2);
  std::set<uint64_t> slots;
  for (const auto& t : sim.tasks(batch)) slots.insert(t->task().getSlot());
  CHECK(slots == std::set<uint64_t>{0, 1, 2, 3, 4});
  CHECK(sim.tasks(everywhere).size() == 3);

  // A failed job task is retried (condition any = on-failure for jobs).
  sim.updateService(batch, [](schema::ServiceSpec::Builder) {});
  REQUIRE(sim.runUntil([&] { return !sim.runningTasks(batch).empty(); }, 30 * kSecond));
  sim.crashing.insert(sim.runningTasks(batch).at(0)->id());
  REQUIRE(sim.runUntil([&] { return completeCount(batch) == 5; }, 120 * kSecond));
  sim.run(30 * kSecond);
  for (const auto& t : sim.tasks(batch)) CHECK(t->task().getJobIteration().getIndex() == 1);
  CHECK(sim.tasks(batch).size() == 6);  // five completions and the failed attempt
}

TEST_CASE("task history is trimmed per slot", "[orchestrator]") {
  Simulation sim(testSeed(12));
  sim.addNode("n1");
  sim.setHistoryLimit(2);
  auto web = sim.createService("web", [](schema::ServiceSpec::Builder s) { s.getTask().initRestart().setDelay(0); });
  REQUIRE(sim.runUntil([&] { return sim.settled(web, 1, "app:1"); }, 30 * kSecond));
  size_t most = 0;
  for (int i = 0; i < 6; ++i) {
    sim.crashing.insert(sim.runningTasks(web).at(0)->id());
    REQUIRE(sim.runUntil([&] { return sim.settled(web, 1, "app:1") && sim.crashing.empty(); }, 30 * kSecond));
    most = std::max(most, sim.tasks(web).size());
  }
  CHECK(sim.tasks(web).size() == 2);
  CHECK(most <= 3);  // briefly the limit plus the replacement still being placed
}

TEST_CASE("an update resumes on a new leader from the store alone", "[orchestrator]") {
  Simulation sim(testSeed(13));
  for (int i = 0; i < 3; ++i) sim.addNode("node" + std::to_string(i));
  auto spec = [](std::string image) {
    return [image](schema::ServiceSpec::Builder s) {
      s.getMode().setReplicated(3);
      s.getTask().getRuntime().getContainer().setImage(image);
      s.initUpdate().setDelay(20 * kSecond);
    };
  };
  auto web = sim.createService("web", spec("app:1"));
  REQUIRE(sim.runUntil([&] { return sim.settled(web, 3, "app:1"); }, 30 * kSecond));
  sim.updateService(web, spec("app:2"));
  sim.run(10 * kSecond);
  REQUIRE(sim.updateState(web) == UpdateState::UPDATING);

  // The new leader: a fresh manager restored from the old one's snapshot, another ID source.
  Simulation next(sim.seed + 1000);
  next.now = sim.now;
  std::vector<std::string> chunks;
  sim.store.writeSnapshot(64 * 1024, [&](kj::ArrayPtr<const kj::byte> c) { chunks.emplace_back(c.asChars().begin(), c.size()); });
  auto restore = next.store.beginRestore();
  for (const auto& c : chunks) restore->addChunk(kj::arrayPtr(reinterpret_cast<const kj::byte*>(c.data()), c.size()));
  restore->finish();
  next.afterOrchestrate = [&] { requireOneRunningPerSlot(next, web); };
  REQUIRE(next.runUntil([&] { return next.updateState(web) == UpdateState::COMPLETED; }, 180 * kSecond));
  CHECK(next.settled(web, 3, "app:2"));
  std::vector<int64_t> created;
  for (const auto& t : next.tasks(web)) {
    if (next.image(t) == "app:2") created.push_back(t->createdAt());
  }
  std::sort(created.begin(), created.end());
  REQUIRE(created.size() == 3);
  CHECK(created[1] - created[0] >= 20 * kSecond);  // the delay held across the change of leader
  CHECK(created[2] - created[1] >= 20 * kSecond);
}

TEST_CASE("an unplaceable task keeps the scheduler's reason, written once", "[orchestrator]") {
  Simulation sim(testSeed(14));
  sim.addNode("n1");
  auto web = sim.createService("web", [](schema::ServiceSpec::Builder s) {
    s.getTask().initPlacement().initConstraints(1).set(0, "node.labels.zone==nowhere");
  });
  sim.run(5 * kSecond);
  auto tasks = sim.tasks(web);
  REQUIRE(tasks.size() == 1);
  auto status = tasks[0]->task().getStatus();
  CHECK(status.getState() == schema::TASK_STATE_PENDING);
  CHECK(std::string(status.getErr().cStr()).find("no suitable node") != std::string::npos);
  // Another pass finds the same reason and writes nothing.
  auto batch = pendingTasks(sim.store);
  capnp::MallocMessageBuilder request;
  auto params = request.initRoot<schema::Scheduler::ScheduleParams>();
  buildSchedulerRequest(sim.store, batch, sim.now, params);
  capnp::MallocMessageBuilder response;
  auto plan = response.initRoot<schema::Plan>();
  auto unplaced = plan.initUnplaced(1);
  unplaced[0].setTaskId(tasks[0]->id());
  unplaced[0].setReason(status.getErr());
  CHECK(applySchedulerResult(sim.store, batch, plan.asReader(), sim.now).empty());
  CHECK(planOrchestration(sim.store, sim.now, sim.random).empty());
}

TEST_CASE("big plans are split into transactions the store accepts", "[orchestrator]") {
  Simulation sim(testSeed(15));
  sim.addNode("n1");
  auto web = sim.createService("web", replicated(450));
  Plan plan = planOrchestration(sim.store, sim.now, sim.random);
  CHECK(plan.transactions.size() == 3);
  CHECK(plan.actionCount() == 450);
  for (const auto& tx : plan.transactions) {
    CHECK(tx.actionCount() <= swarm::store::TransactionBuilder::kMaxActions);
    CHECK(sim.commit(tx).ok());
  }
  CHECK(sim.tasks(web).size() == 450);
}
