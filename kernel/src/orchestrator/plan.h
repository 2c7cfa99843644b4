// What a planner hands back to the manager loop: the store transactions to propose, in order,
// and when it wants to be called again even if the store does not change.
#pragma once

#include "store/object.h"
#include "store/object_id.h"
#include "store/transaction.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace swarm::orchestrator {

struct Plan {
  std::vector<store::TransactionBuilder> transactions;
  // Each within TransactionBuilder's limits (200 actions, 1.5 MiB); writes that must happen
  // together (shut a task down and create its replacement) are always in the same one. Every
  // update and remove carries the version the planner read, so each transaction either applies
  // as planned or is refused as a conflict; the transactions do not depend on each other.
  std::optional<int64_t> wakeAt;
  // Absolute time (ns, the planner's clock) at which a restart delay, update delay, monitor
  // window or start timeout ends: plan again then. Unset: only store changes matter.

  bool empty() const { return transactions.empty(); }
  size_t actionCount() const;
};

class PlanWriter {
  // Appends actions to a Plan, opening a new transaction when the current one has no room.
  // Remembers which objects it already wrote, so one plan never writes an object twice (a second
  // write would expect the version the first one replaced, and refuse the whole transaction).
 public:
  explicit PlanWriter(Plan& plan) : plan(plan) {}

  store::TransactionBuilder& room(size_t actions);
  // A transaction with room for `actions` more actions, all of which go into it (atomic).
  void wakeAt(int64_t at);
  bool touched(const std::string& id) const { return written.count(id) > 0; }
  void touch(const std::string& id) { written.insert(id); }

 private:
  Plan& plan;
  std::set<std::string> written;
};

// Task writes, each at the version read (`task` is what the store holds).
void setDesiredState(store::TransactionBuilder& tx, const store::ObjectRef& task, uint16_t desired);
void removeTask(store::TransactionBuilder& tx, const store::ObjectRef& task);

struct NewTask {
  uint64_t slot = 0;     // replicated: 1..N; replicated job: 0..total-1; global: 0
  std::string nodeId;    // global modes: the node; otherwise empty (the scheduler picks)
  uint16_t desiredState = 0;
};
std::string createTask(store::TransactionBuilder& tx, store::schema::Service::Reader service,
                       const NewTask& what, int64_t now, const store::RandomSource& random);
// A task of the service's current spec, PENDING ("pending task scheduling": there is no
// allocator step, so it is ready for the scheduler at once). Returns its ID.

}  // namespace swarm::orchestrator
