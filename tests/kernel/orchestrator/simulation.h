// A deterministic cluster for the orchestrator tests: a store, a manual clock, the planners
// (orchestrator and scheduler glue, with scheduler-spread's pure core as the scheduler) and fake
// agents that move the tasks of READY nodes through their states, failing the ones the test
// chooses. Every write goes through a transaction applied at the next index, as on a manager.
#pragma once

#include "orchestrator/orchestrator.h"
#include "orchestrator/scheduler_glue.h"
#include "store/store.h"

#include <capnp/message.h>
#include <catch2/catch.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace swarm::orchestrator::testing {

namespace ss = store::schema;
using store::Kind;
using store::ObjectRef;

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kT0 = 1714979289 * kSecond;

using SpecEdit = std::function<void(schema::ServiceSpec::Builder)>;

// A test's seed: ORCHESTRATOR_TEST_SEED when set (to replay a failure), else `fallback`.
uint64_t testSeed(uint64_t fallback);

class Simulation {
 public:
  explicit Simulation(uint64_t seed);

  // ---- the cluster, written as the API and the dispatcher would ----
  std::string addNode(const std::string& hostname, std::vector<std::pair<std::string, std::string>> labels = {});
  void setNodeState(const std::string& id, schema::NodeState state);
  void setAvailability(const std::string& id, schema::NodeAvailability availability);
  void setNodeLabel(const std::string& id, const std::string& key, const std::string& value);
  void setHistoryLimit(int64_t limit);
  std::string createService(const std::string& name, const SpecEdit& edit);
  // A replicated service of image "app:1", 1 replica, unless `edit` says otherwise.
  void updateService(const std::string& id, const SpecEdit& edit);
  // As the API's update: the old spec becomes the previous one, specVersion = the version
  // updated, updateStatus cleared; a job's iteration goes up.
  void removeService(const std::string& id);

  // ---- the fake agents ----
  std::set<std::string> badImages;  // tasks of these images fail when they start
  std::set<std::string> crashing;   // task IDs to fail at the next agent step
  int64_t jobDuration = 2 * kSecond;

  // ---- driving ----
  void orchestrate();  // plan and commit; remembers when the plan wants to be woken
  void schedule();     // pending tasks through scheduler-spread's core
  void agents();       // one state transition per task on READY nodes
  void step(int64_t dt = kSecond);
  void run(int64_t duration, int64_t dt = kSecond);
  bool runUntil(const std::function<bool()>& done, int64_t limit, int64_t dt = kSecond);
  std::function<void()> afterOrchestrate;  // invariant checks, called after each orchestrate()

  // ---- reading ----
  ObjectRef service(const std::string& id) const { return store.get(Kind::service, id); }
  std::vector<ObjectRef> tasks(const std::string& serviceId) const { return store.tasksOfService(serviceId); }
  std::vector<ObjectRef> runningTasks(const std::string& serviceId) const;
  // Desired to run and observed RUNNING.
  std::map<std::string, size_t> runningPerNode(const std::string& serviceId) const;
  std::string image(const ObjectRef& task) const;
  ss::UpdateState updateState(const std::string& serviceId) const;
  bool settled(const std::string& serviceId, size_t replicas, const std::string& image) const;
  // Exactly `replicas` wanted tasks, one per slot, all RUNNING the image, no other wanted task.

  store::ApplyResult commit(const store::TransactionBuilder& tx);

  store::Store store;
  int64_t now = kT0;
  uint64_t seed;
  store::RandomSource random;
  std::optional<int64_t> wakeAt;
  size_t conflicts = 0;
  size_t plans = 0;

 private:
  void agentStep(const ObjectRef& task);
  void writeTask(const ObjectRef& task, uint16_t state, const std::string& err = "");
};

}  // namespace swarm::orchestrator::testing
