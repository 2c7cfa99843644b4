// The leader's orchestration loop: turns services into tasks and tasks into placements.
//
// One pass (after a store change, debounced, or when a restart delay ends) reads the store and
// proposes what it wants changed, each update at the version it read, so a concurrent write
// makes it conflict and the next pass decides again on fresh data:
//
//   reconcile   replicated services keep one runnable task per slot 1..Replicas (scale down shuts
//               the highest slots down); global services one per ready, non-drained node. A task
//               that ended, whose node is DOWN or drained, is replaced in its slot according to
//               the restart policy (condition, delay, attempts within the window). A task whose
//               spec is older than its service's is replaced, `Parallelism` at a time
//               (stop-first). Tasks of removed services are shut down and then deleted; dead
//               tasks beyond the cluster's history limit per slot are deleted.
//   schedule    NEW/PENDING tasks go to the scheduler plugin in one batch with the nodes'
//               free resources and task counts; placed tasks become ASSIGNED on their node,
//               the others keep the plugin's reason in their status message.
//
// Runs on the kernel's KJ thread, only while this manager leads.
#pragma once

#include "store/store.h"
#include "store/transaction.h"

#include <swarm/schema/scheduler.capnp.h>

#include <kj/async.h>
#include <kj/timer.h>
#include <spdlog/logger.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace swarm::kernel {

class Orchestration {
 public:
  using Write = std::function<kj::Promise<uint64_t>(store::TransactionBuilder)>;
  using Clock = std::function<int64_t()>;  // wall clock, nanoseconds

  Orchestration(store::Store& store, kj::Timer& timer, schema::Scheduler::Client scheduler, Write write,
                Clock clock);
  ~Orchestration();
  KJ_DISALLOW_COPY(Orchestration);

 private:
  void schedulePass(kj::Duration after);
  kj::Promise<void> pass();
  // Proposes `tx` if it holds anything, in chunks the store accepts.
  kj::Promise<void> commit(std::vector<store::TransactionBuilder> txs);
  void reconcile(std::vector<store::TransactionBuilder>& out, int64_t& wakeIn);
  kj::Promise<void> placePending();

  store::Store& store;
  kj::Timer& timer;
  schema::Scheduler::Client scheduler;
  Write write;
  Clock clock;
  std::shared_ptr<spdlog::logger> log;
  store::Subscription watch;
  bool passQueued = false;
  bool passRunning = false;
  bool passAgain = false;
  kj::Own<kj::TaskSet> tasks;
};

}  // namespace swarm::kernel
