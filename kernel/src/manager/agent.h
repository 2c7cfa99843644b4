// The agent: runs the tasks the dispatcher assigns to this node with the runtime plugin, each
// through the forward-only task state machine (ACCEPTED, PREPARING, READY, STARTING, RUNNING,
// then COMPLETE, FAILED, SHUTDOWN or REJECTED), and reports what it observes.
//
//   assign()  an Assignment (complete, or incremental: applied to the last one): new tasks
//             start, tasks whose desired state moved past RUNNING are stopped, tasks no longer
//             assigned are stopped and their containers removed.
//   recovery  the first assignment after start adopts the containers the runtime already runs
//             for assigned tasks (list()), reporting them without restarting them, and removes
//             the ones no longer assigned.
//   reports   the latest status per task, until the dispatcher took it (takeUpdates /
//             updatesDelivered), so a lost report is sent again and never goes backwards.
//
// All on the kernel's KJ thread.
#pragma once

#include <swarm/schema/runtime.capnp.h>
#include <swarm/store/cluster.capnp.h>

#include <capnp/message.h>
#include <kj/async.h>
#include <kj/timer.h>

#include <spdlog/logger.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace swarm::kernel {

// `base` (a complete assignment) with an incremental one applied: the complete set it stands for
// (tasks, secrets and configs changed replace the base's, removed ones go, new ones are added).
void mergeAssignment(store::schema::Assignment::Reader base, store::schema::Assignment::Reader changes,
                     store::schema::Assignment::Builder out);

class Agent {
 public:
  Agent(kj::Timer& timer, schema::Runtime::Client runtime, std::string nodeId, std::string clusterId);
  ~Agent();
  KJ_DISALLOW_COPY(Agent);

  void assign(store::schema::Assignment::Reader assignment);

  // The statuses to send, latest per task; null when there are none. Until updatesDelivered(),
  // later observations replace them and a failed delivery keeps them for the next try.
  kj::Own<capnp::MallocMessageBuilder> takeUpdates();
  void updatesDelivered(bool ok);

  size_t taskCount() const { return controllers.size(); }

 private:
  struct Controller;
  void drive(Controller& c);
  void run(Controller& c, kj::Promise<void> work);
  void report(Controller& c, uint16_t state, std::string message, std::string err = "", int32_t exitCode = 0);
  kj::Promise<void> prepare(Controller& c);
  kj::Promise<void> start(Controller& c);
  kj::Promise<void> waitHealthy(Controller& c);
  kj::Promise<void> waitExit(Controller& c);
  kj::Promise<void> stop(Controller& c);
  kj::Promise<void> retire(std::string taskId);
  kj::Promise<void> recover();
  // Bring-ups (create, then start) run a bounded number at a time, as the engine creates and
  // starts containers fastest at about 16 in flight; the others wait their turn in order.
  bool admitBringUp(Controller& c);
  void endBringUp(Controller& c);
  static constexpr size_t kBringUpsInFlight = 16;
  size_t bringUps = 0;
  std::deque<std::string> waitingBringUps;

  kj::Timer& timer;
  schema::Runtime::Client runtime;
  std::string nodeId, clusterId;
  std::shared_ptr<spdlog::logger> log;
  std::map<std::string, kj::Own<Controller>> controllers;
  // What the tasks reference, from the latest assignment.
  kj::Own<capnp::MallocMessageBuilder> lastAssignment;
  // Recovery: containers found at start, by task ID, until the first assignment adopts them.
  struct Found {
    schema::ContainerState state;
    int32_t exitCode = 0;
  };
  std::optional<std::map<std::string, Found>> existing;
  kj::ForkedPromise<void> recovered;
  struct Pending {
    kj::Own<capnp::MallocMessageBuilder> status;  // a TaskStatus root
  };
  std::map<std::string, Pending> pending, inFlight;
  kj::Own<kj::TaskSet> tasks;
};

}  // namespace swarm::kernel
