// The leader's orchestration loop around the planners of kernel/src/orchestrator (README.md
// there has the contract): after a store change (debounced) or when the plan's wake-up time comes,
// it plans, proposes the plan's transactions and waits for their fate before planning again (so
// one store state is never planned twice), then sends the pending tasks to the scheduler plugin
// in one batch and proposes the placements. A refused transaction (a version conflict with a
// concurrent write) is simply planned again from the next store state.
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
