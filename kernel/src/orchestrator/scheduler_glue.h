// The glue between the store and the scheduler plugin (sdk/schema/scheduler.capnp), without the
// call itself: the manager loop sends the request and hands the answer back.
//
//   auto batch = pendingTasks(store);                       // nothing to do when empty
//   auto request = scheduler.scheduleRequest();
//   buildSchedulerRequest(store, batch, now, request);      // ScheduleParams::Builder
//   ... request.send() ... then, with the response:
//   Plan plan = applySchedulerResult(store, batch, response.getPlan(), now);
//   propose each of plan.transactions
//
// Placed tasks become ASSIGNED on their node; unplaced ones stay PENDING with the scheduler's
// reason in status.err ("no suitable node (...)", what `docker service ps` shows), written only
// when the reason changed so that an unplaceable task does not make the loop spin. Each write
// expects the version the batch read: a task that changed meanwhile is skipped and goes into the
// next batch.
#pragma once

#include "plan.h"
#include "store/store.h"

#include <swarm/schema/scheduler.capnp.h>

#include <cstdint>
#include <vector>

namespace swarm::orchestrator {

struct SchedulerBatch {
  std::vector<store::ObjectRef> tasks;
  // NEW or PENDING tasks that want to run (desired READY..COMPLETE), oldest first. Global tasks
  // carry their node already: the scheduler only checks them against it.
  bool empty() const { return tasks.empty(); }
};

inline constexpr int64_t kRecentFailureWindow = 300'000'000'000;
// Swarm's: FAILED/REJECTED tasks of the last 5 minutes count against a node.

SchedulerBatch pendingTasks(const store::Store& store);

void buildSchedulerRequest(const store::Store& store, const SchedulerBatch& batch, int64_t now,
                           schema::Scheduler::ScheduleParams::Builder request);
// Every node of the store (the scheduler's ready filter turns down those not READY and ACTIVE,
// and counts them in its explanation) with: available = reported resources minus the
// reservations of its tasks observed ASSIGNED..RUNNING (discrete generic resources too);
// tasksByService/totalTasks = its assigned tasks that want to run and have not ended;
// recentFailures = FAILED/REJECTED tasks per service within kRecentFailureWindow; hostPorts =
// the host-mode ports of its tasks ASSIGNED..RUNNING. Then the batch's tasks.

Plan applySchedulerResult(const store::Store& store, const SchedulerBatch& batch, schema::Plan::Reader result,
                          int64_t now);
// Task IDs the batch did not send are ignored.

}  // namespace swarm::orchestrator
