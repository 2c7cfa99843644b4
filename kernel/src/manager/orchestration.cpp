// GCC 12 reports a false -Wmaybe-uninitialized inside kj::_::ExceptionOr<T> (see replication.cpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "orchestration.h"

#include "errors.h"
#include "logging.h"
#include "orchestrator/orchestrator.h"
#include "orchestrator/scheduler_glue.h"

#include <algorithm>
#include <map>
#include <set>

namespace swarm::kernel {
namespace {

constexpr auto kDebounce = 10 * kj::MILLISECONDS;

class IgnoreFailures final : public kj::TaskSet::ErrorHandler {
 public:
  void taskFailed(kj::Exception&&) override {}
};
IgnoreFailures ignoreFailures;

}  // namespace

Orchestration::Orchestration(store::Store& store, kj::Timer& timer, schema::Scheduler::Client scheduler, Write write,
                             Clock clock)
    : store(store), timer(timer), scheduler(kj::mv(scheduler)), write(std::move(write)), clock(std::move(clock)),
      log(logger("orchestrator")), tasks(kj::heap<kj::TaskSet>(ignoreFailures)) {
  watch = store.subscribe([this](const store::Event& event) {
    if (event.type == store::Event::Type::commit || event.type == store::Event::Type::reset) schedulePass(kDebounce);
  });
  schedulePass(kDebounce);
}

Orchestration::~Orchestration() = default;

void Orchestration::schedulePass(kj::Duration after) {
  if (passRunning) {
    passAgain = true;
    return;
  }
  if (passQueued && after >= kDebounce) return;
  passQueued = true;
  tasks->add(timer.afterDelay(after).then([this]() {
    passQueued = false;
    if (passRunning) {
      passAgain = true;
      return kj::Promise<void>(kj::READY_NOW);
    }
    passRunning = true;
    return pass().catch_([this](kj::Exception&& e) { log->debug("orchestration pass: {}", describe(e)); })
        .then([this]() {
          passRunning = false;
          if (passAgain) {
            passAgain = false;
            schedulePass(kDebounce);
          }
        });
  }));
}

kj::Promise<void> Orchestration::pass() {
  int64_t now = clock();
  auto plan = orchestrator::planOrchestration(store, now, store::systemRandom());
  if (plan.wakeAt) {
    int64_t in = std::max<int64_t>(*plan.wakeAt - now, 1'000'000);
    tasks->add(timer.afterDelay(in * kj::NANOSECONDS).then([this]() { schedulePass(kDebounce); }));
  }
  return commit(kj::mv(plan.transactions)).then([this]() { return placePending(); });
}

kj::Promise<void> Orchestration::commit(std::vector<store::TransactionBuilder> txs) {
  kj::Vector<kj::Promise<void>> writes;
  for (auto& tx : txs) {
    if (tx.empty()) continue;
    // A conflict means someone wrote first: the next pass decides again.
    writes.add(write(kj::mv(tx)).ignoreResult().catch_([this](kj::Exception&& e) {
      log->debug("orchestration write: {}", describe(e));
    }));
  }
  return kj::joinPromises(writes.releaseAsArray());
}

kj::Promise<void> Orchestration::placePending() {
  auto batch = kj::heap<orchestrator::SchedulerBatch>(orchestrator::pendingTasks(store));
  if (batch->tasks.empty()) return kj::READY_NOW;
  auto request = scheduler.scheduleRequest();
  orchestrator::buildSchedulerRequest(store, *batch, clock(), request);
  return request.send().then(
      [this, batch = kj::mv(batch)](capnp::Response<schema::Scheduler::ScheduleResults>&& answer) {
        return commit(orchestrator::applySchedulerResult(store, *batch, answer.getPlan(), clock()).transactions);
      });
}

}  // namespace swarm::kernel
