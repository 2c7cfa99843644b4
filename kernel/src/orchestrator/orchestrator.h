// The leader's orchestrators as one pure planner (see README.md in this directory for the loop
// the manager runs around it). Given the store and the time, it returns the transactions that move
// the cluster towards what the services ask for, and when to look again. It keeps no state of its
// own: everything it needs (restart history, update progress, rollback) is read back from the
// store, so a new leader picks up exactly where the old one stopped.
//
// One call does, for every service (Swarm's replicated, global and jobs orchestrators, restart
// supervisor, updater and task reaper, sk:manager/orchestrator/*):
//
//   slots       replicated: slots 1..Replicas each keep one wanted task (desired READY..COMPLETE);
//               scale-up fills the lowest free slot numbers, scale-down sets the highest slots'
//               tasks to desired REMOVE. Global: one task per node that is not DOWN, not drained
//               and matches the constraints (a paused node keeps its task but gets no new one or
//               update); tasks on other nodes are shut down. Replicated job: slots
//               0..TotalCompletions-1, at most MaxConcurrent running, desired COMPLETE; global
//               job: one per ACTIVE matching node. Tasks of an older JobIteration get REMOVE.
//   restarts    a wanted task that ended gets a replacement in its slot (or on its node) after
//               RestartPolicy.delay counted from its end, if the condition allows (none; on-failure
//               never after COMPLETE; any, which for jobs means on-failure) and fewer than
//               MaxAttempts tasks of the same spec version ended in the slot within Window before
//               it. A declined task keeps its slot, desired RUNNING, as the slot's tombstone: the
//               slot stays empty until the service's spec changes. A task whose node is DOWN,
//               removed or drained is shut down and replaced at once (no delay, no policy check;
//               on a drained node the replacement waits READY until the old task stopped).
//   updates     slots whose wanted task runs an older spec (spec version and content differ)
//               are replaced Parallelism at a time (0 = all), each in the configured order
//               (stop-first: the old task is shut down and the new one created READY atomically,
//               promoted to RUNNING once the old one stopped or after 60 s; start-first: the new
//               one starts, the old one is shut down when it is RUNNING). The next slot starts when
//               a new task has been RUNNING for UpdateConfig.delay. Failures of tasks created since
//               the update started count per slot; failed slots / updated slots > MaxFailureRatio
//               triggers the failure action (pause, continue, rollback: the previous spec comes
//               back with RollbackConfig; a failing rollback pauses). After the last slot, one
//               more delay + monitor period without failures completes it. Progress lives in
//               Service.updateStatus.
//   rebalance   opt-in, per service, with the label com.swarm-kernel.rebalance=true (Swarm never
//               moves running tasks): when every slot runs, one task at a time moves from the
//               most loaded eligible node while it holds two or more tasks more than the least.
//   history     per slot (replicated) or node (global), at most Cluster taskHistoryRetentionLimit
//               tasks (default 5; negative keeps all; at least MaxAttempts + 1), oldest stopped
//               ones deleted first. Tasks desired REMOVE are deleted once stopped, never assigned,
//               or on a DOWN/removed node; tasks of removed services are set to REMOVE first.
//
// Deviations from Swarm, for a planner without memory: an update's failures count while the
// update runs (Swarm: within Monitor of each task reaching RUNNING); the failure ratio divides by
// the slots this update touched or still has to touch (Swarm: the dirty slots at its start).
#pragma once

#include "plan.h"
#include "store/store.h"

#include <cstdint>
#include <string_view>

namespace swarm::orchestrator {

inline constexpr std::string_view kRebalanceLabel = "com.swarm-kernel.rebalance";
// Service label; the value "true" opts the service into rebalancing.
inline constexpr int64_t kOldTaskTimeout = 60'000'000'000;
// Swarm's defaultOldTaskTimeout: a READY replacement starts after this even if the old task was
// never seen stopping.
inline constexpr int64_t kDefaultHistoryLimit = 5;

Plan planOrchestration(const store::Store& store, int64_t now, const store::RandomSource& random);
// `now`: the leader's clock (ns since the epoch); propose the transactions with proposedAt = now
// (or later), since task ages and update progress are read from createdAt. `random` makes the new
// tasks' IDs (systemRandom() in production, seededRandom() in tests).

}  // namespace swarm::orchestrator
