#include "orchestrator.h"

#include "node_match.h"

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace swarm::orchestrator {
namespace {

namespace ss = store::schema;
using store::Kind;
using store::ObjectRef;
using Mode = schema::ServiceSpec::Mode;
using UpdateState = ss::UpdateState;
using Condition = schema::RestartPolicy::Condition;

constexpr uint16_t kAssigned = schema::TASK_STATE_ASSIGNED;
constexpr uint16_t kReady = schema::TASK_STATE_READY;
constexpr uint16_t kRunning = schema::TASK_STATE_RUNNING;
constexpr uint16_t kComplete = schema::TASK_STATE_COMPLETE;
constexpr uint16_t kShutdown = schema::TASK_STATE_SHUTDOWN;
constexpr uint16_t kFailed = schema::TASK_STATE_FAILED;
constexpr uint16_t kRejected = schema::TASK_STATE_REJECTED;
constexpr uint16_t kRemove = schema::TASK_STATE_REMOVE;

// Desired to run (READY, RUNNING) or to run to completion (jobs): the slot's current task(s).
bool wanted(schema::Task::Reader t) { return t.getDesiredState() < kShutdown; }
bool ended(schema::Task::Reader t) { return t.getStatus().getState() > kRunning; }
bool neverAssigned(schema::Task::Reader t) { return t.getStatus().getState() < kAssigned; }
// Ended on its own: exited, failed or refused (not stopped by a manager).
bool exitedOrFailed(schema::Task::Reader t) {
  auto s = t.getStatus().getState();
  return s == kComplete || s == kFailed || s == kRejected;
}
bool olderFirst(const ObjectRef& a, const ObjectRef& b) {
  return a->createdAt() != b->createdAt() ? a->createdAt() < b->createdAt() : a->id() < b->id();
}

bool sameTaskSpec(schema::TaskSpec::Reader a, schema::TaskSpec::Reader b) {
  auto left = capnp::canonicalize(a);
  auto right = capnp::canonicalize(b);
  return left.size() == right.size() &&
         std::memcmp(left.begin(), right.begin(), left.size() * sizeof(capnp::word)) == 0;
}

// Swarm's !IsTaskDirty: the task runs the service's spec, by version or by content (a rollback,
// or an update that changed only the UpdateConfig or the replica count).
bool upToDate(ss::Service::Reader service, schema::Task::Reader task) {
  return task.getSpecVersion().getIndex() == service.getSpecVersion().getIndex() ||
         sameTaskSpec(service.getSpec().getTask(), task.getSpec());
}

bool hasLabel(capnp::List<schema::KeyValue>::Reader labels, std::string_view key, std::string_view value) {
  for (auto label : labels) {
    if (std::string_view(label.getKey().cStr()) == key && std::string_view(label.getValue().cStr()) == value) {
      return true;
    }
  }
  return false;
}

struct NodeView {
  schema::Node::Reader node;
  schema::NodeState state;
  schema::NodeAvailability availability;
};

// The tasks of one slot (replicated, replicated job) or of one node (global modes), oldest first.
struct Group {
  uint64_t slot = 0;
  std::string nodeId;
  std::vector<ObjectRef> tasks;
  bool busy = false;      // a restart or node-loss replacement acted or waits: the updater leaves it
  bool declined = false;  // its last task ended and the restart policy declined a replacement
};

struct ServiceContext {
  ObjectRef ref;
  ss::Service::Reader service;
  bool job = false;
  bool global = false;
  uint16_t runTarget = kRunning;  // what "run" means: RUNNING, or COMPLETE for jobs
};

class Planner {
 public:
  Planner(const store::Store& store, int64_t now, const store::RandomSource& random, Plan& plan)
      : store(store), now(now), random(random), plan(plan), out(plan) {}

  void run() {
    for (const auto& ref : store.list(Kind::node)) {
      auto n = ref->node();
      nodes.emplace(ref->id(), NodeView{n, n.getStatus().getState(), n.getSpec().getAvailability()});
    }
    auto clusters = store.list(Kind::cluster);
    if (!clusters.empty()) historyLimit = clusters.front()->cluster().getSpec().getTaskHistoryRetentionLimit();

    for (const auto& ref : store.list(Kind::service)) {
      auto service = ref->service();
      if (service.getPendingDelete()) continue;
      ServiceContext ctx{ref, service};
      auto mode = service.getSpec().getMode();
      ctx.job = mode.isReplicatedJob() || mode.isGlobalJob();
      ctx.global = mode.isGlobal() || mode.isGlobalJob();
      ctx.runTarget = ctx.job ? kComplete : kRunning;
      switch (mode.which()) {
        case Mode::REPLICATED: planReplicated(ctx); break;
        case Mode::GLOBAL: planGlobal(ctx); break;
        case Mode::REPLICATED_JOB: planReplicatedJob(ctx); break;
        case Mode::GLOBAL_JOB: planGlobalJob(ctx); break;
      }
    }
    reapRemoved();
  }

 private:
  // ---- nodes -----------------------------------------------------------------------------------

  const NodeView* node(std::string_view id) const {
    auto it = nodes.find(std::string(id));
    return it == nodes.end() ? nullptr : &it->second;
  }
  // Its agent will report nothing more: the node was removed or is DOWN.
  bool nodeGone(std::string_view id) const {
    auto n = node(id);
    return n == nullptr || n->state == schema::NodeState::DOWN;
  }
  // Swarm's InvalidNode for an assigned task: removed, DOWN or drained.
  bool nodeLost(schema::Task::Reader t) const {
    if (t.getNodeId().size() == 0) return false;
    auto n = node(t.getNodeId().cStr());
    return n == nullptr || n->state == schema::NodeState::DOWN ||
           n->availability == schema::NodeAvailability::DRAIN;
  }
  bool matches(const NodeView& n, const ServiceContext& ctx) const {
    return nodeMatchesConstraints(n.node, ctx.service.getSpec().getTask().getPlacement().getConstraints());
  }

  // ---- writes ----------------------------------------------------------------------------------

  void shutdown(store::TransactionBuilder& tx, const ObjectRef& t, uint16_t desired = kShutdown) {
    setDesiredState(tx, t, desired);
    out.touch(t->id());
  }
  void create(store::TransactionBuilder& tx, const ServiceContext& ctx, uint64_t slot, const std::string& nodeId,
              uint16_t desired) {
    out.touch(createTask(tx, ctx.service, {slot, nodeId, desired}, now, random));
  }
  void writeService(const ServiceContext& ctx, const std::function<void(ss::Service::Builder)>& edit) {
    if (out.touched(ctx.ref->id())) return;  // one change per plan; the next plan sees it
    capnp::MallocMessageBuilder message;
    auto object = message.initRoot<ss::Object>();
    object.setService(ctx.service);
    edit(object.getService());
    out.room(1).update(object.asReader(), ctx.ref->version());
    out.touch(ctx.ref->id());
  }

  // ---- restart supervisor ------------------------------------------------------------------------

  struct Verdict {
    bool restart = false;
    int64_t at = 0;
  };

  // Decided as of the task's end (its status timestamp), so the answer never changes later.
  Verdict restartVerdict(const ServiceContext& ctx, const Group& g, const ObjectRef& ref) const {
    auto task = ref->task();
    auto policy = task.getSpec().getRestart();
    auto condition = policy.getCondition();
    if (ctx.job && condition == Condition::ANY) condition = Condition::ON_FAILURE;
    uint16_t state = task.getStatus().getState();
    if (condition == Condition::NONE) return {};
    if (condition == Condition::ON_FAILURE && state == kComplete) return {};
    int64_t end = task.getStatus().getTimestamp();
    if (policy.getMaxAttempts() > 0) {
      uint64_t restarts = 0;
      for (const auto& other : g.tasks) {
        if (other == ref || !olderFirst(other, ref)) continue;
        auto o = other->task();
        if (o.getSpecVersion().getIndex() != task.getSpecVersion().getIndex() || !exitedOrFailed(o)) continue;
        if (policy.getWindow() > 0 && o.getStatus().getTimestamp() <= end - policy.getWindow()) continue;
        ++restarts;
      }
      if (restarts >= policy.getMaxAttempts()) return {};
    }
    // Swarm applies no delay when the node was drained.
    auto n = node(task.getNodeId().cStr());
    bool drained = n != nullptr && n->availability == schema::NodeAvailability::DRAIN;
    int64_t delay = drained ? 0 : std::max<int64_t>(0, policy.getDelay());
    return {true, end + delay};
  }

  // Another wanted task of the group that is (or may become) running where it is.
  bool hasLiveOther(const Group& g, const ObjectRef& except) const {
    for (const auto& t : g.tasks) {
      if (t == except || out.touched(t->id())) continue;
      auto task = t->task();
      if (wanted(task) && !ended(task) && !nodeLost(task)) return true;
    }
    return false;
  }

  void supervise(const ServiceContext& ctx, Group& g) {
    for (const auto& t : g.tasks) {
      auto task = t->task();
      if (!wanted(task) || out.touched(t->id())) continue;
      if (ctx.job && task.getStatus().getState() == kComplete) continue;  // done
      bool lost = nodeLost(task);
      bool hasEnded = ended(task);
      if (!lost && !hasEnded) continue;
      g.busy = true;
      if (hasLiveOther(g, t)) {
        shutdown(out.room(1), t);
        continue;
      }
      if (lost && !hasEnded) {
        // The node is DOWN, removed or drained: replace at once. On a drained node the old task
        // still runs until its agent stops it, so the replacement waits READY (stop-first).
        auto& tx = out.room(2);
        shutdown(tx, t);
        if (!ctx.global) {
          create(tx, ctx, g.slot, g.nodeId, nodeGone(task.getNodeId().cStr()) ? ctx.runTarget : kReady);
        }
        continue;
      }
      Verdict verdict = restartVerdict(ctx, g, t);
      if (!verdict.restart) {
        g.busy = false;
        g.declined = true;
        continue;
      }
      if (verdict.at > now) {
        out.wakeAt(verdict.at);
        continue;
      }
      auto& tx = out.room(2);
      shutdown(tx, t);
      create(tx, ctx, g.slot, g.nodeId, ctx.runTarget);
    }
  }

  // READY replacements (stop-first) start once every other task of the group stopped, its node is
  // gone, or kOldTaskTimeout passed.
  void promote(const ServiceContext& ctx, Group& g) {
    for (const auto& t : g.tasks) {
      auto task = t->task();
      if (task.getDesiredState() != kReady || out.touched(t->id())) continue;
      bool othersStopped = true;
      for (const auto& o : g.tasks) {
        if (o == t) continue;
        auto other = o->task();
        uint16_t s = other.getStatus().getState();
        if (s >= kAssigned && s <= kRunning && !nodeGone(other.getNodeId().cStr())) othersStopped = false;
      }
      int64_t deadline = t->createdAt() + kOldTaskTimeout;
      if (othersStopped || now >= deadline) {
        shutdown(out.room(1), t, ctx.runTarget);
      } else {
        out.wakeAt(deadline);
      }
    }
  }

  // ---- updater -----------------------------------------------------------------------------------

  void planUpdate(const ServiceContext& ctx, const std::vector<Group*>& kept) {
    auto service = ctx.service;
    auto spec = service.getSpec();
    auto status = service.getUpdateStatus();
    UpdateState state = service.hasUpdateStatus() ? status.getState() : UpdateState::NONE;
    bool paused = state == UpdateState::PAUSED || state == UpdateState::ROLLBACK_PAUSED;
    bool active = state == UpdateState::UPDATING || state == UpdateState::ROLLBACK_STARTED;
    bool rollingBack = state == UpdateState::ROLLBACK_STARTED;
    auto config = rollingBack ? spec.getRollback() : spec.getUpdate();  // unset: the defaults
    int64_t startedAt = status.getStartedAt();

    struct Dirty {
      Group* group;
      std::vector<ObjectRef> old;
    };
    std::vector<Dirty> dirty;
    size_t inFlight = 0, touchedByUpdate = 0;
    bool waiting = false;
    int64_t lastRunningAt = 0;
    std::set<const Group*> failedGroups;
    ObjectRef firstFailure;

    for (Group* g : kept) {
      if (g->busy) waiting = true;
      std::vector<ObjectRef> old, current;
      bool updatedHere = false;
      for (const auto& t : g->tasks) {
        auto task = t->task();
        bool fresh = upToDate(service, task);
        if (active && fresh && t->createdAt() >= startedAt) {
          updatedHere = true;
          if (exitedOrFailed(task) && task.getStatus().getTimestamp() >= startedAt) {
            failedGroups.insert(g);
            if (!firstFailure || task.getStatus().getTimestamp() < firstFailure->task().getStatus().getTimestamp()) {
              firstFailure = t;
            }
          }
        }
        // What the store says (a task promoted by this plan still counts as in flight).
        if (!wanted(task)) continue;
        (fresh ? current : old).push_back(t);
      }
      if (updatedHere) ++touchedByUpdate;
      if (g->busy) continue;
      if (!old.empty() && current.empty()) {
        dirty.push_back({g, std::move(old)});
        continue;
      }
      if (current.empty()) continue;
      auto newest = current.back()->task();
      if (!old.empty()) {
        // Start-first in progress: the old task goes once the new one runs.
        if (newest.getStatus().getState() == kRunning) {
          for (const auto& o : old) {
            if (!out.touched(o->id())) shutdown(out.room(1), o);
          }
        } else if (!ended(newest)) {
          ++inFlight;
        }
        continue;
      }
      if (active && current.back()->createdAt() >= startedAt) {
        uint16_t s = newest.getStatus().getState();
        if (s < kRunning) {
          ++inFlight;
        } else if (s == kRunning) {
          int64_t runningAt = newest.getStatus().getTimestamp();
          lastRunningAt = std::max(lastRunningAt, runningAt);
          if (now < runningAt + config.getDelay()) {
            ++inFlight;
            out.wakeAt(runningAt + config.getDelay());
          }
        }
      }
    }

    if (paused) return;
    if (!active) {
      if (dirty.empty()) return;
      writeService(ctx, [&](ss::Service::Builder s) {
        auto st = s.initUpdateStatus();
        st.setState(rollingBack ? UpdateState::ROLLBACK_STARTED : UpdateState::UPDATING);
        st.setStartedAt(now);
        st.setMessage("update in progress");
      });
      startedAt = now;
      active = true;
    } else if (!failedGroups.empty() &&
               config.getFailureAction() != schema::UpdateConfig::FailureAction::CONTINUE) {
      size_t slots = std::max<size_t>(1, touchedByUpdate + dirty.size());
      if (static_cast<float>(failedGroups.size()) / static_cast<float>(slots) > config.getMaxFailureRatio()) {
        failureAction(ctx, config.getFailureAction(), rollingBack, firstFailure->id());
        return;
      }
    }

    uint64_t parallelism = config.getParallelism();
    size_t budget = parallelism == 0 ? dirty.size() : (inFlight >= parallelism ? 0 : parallelism - inFlight);
    bool startFirst = config.getOrder() == schema::UpdateConfig::Order::START_FIRST;
    for (size_t i = 0; i < std::min(budget, dirty.size()); ++i) replaceOutdated(ctx, dirty[i].group, dirty[i].old, startFirst);

    if (!dirty.empty() || inFlight > 0 || waiting) return;
    int64_t doneAt = lastRunningAt == 0 ? now : lastRunningAt + config.getDelay() + config.getMonitor();
    if (now < doneAt) {
      out.wakeAt(doneAt);
      return;
    }
    writeService(ctx, [&](ss::Service::Builder s) {
      auto st = s.getUpdateStatus();
      st.setState(rollingBack ? UpdateState::ROLLBACK_COMPLETED : UpdateState::COMPLETED);
      st.setMessage(rollingBack ? "rollback completed" : "update completed");
      st.setCompletedAt(now);
    });
  }

  void replaceOutdated(const ServiceContext& ctx, Group* g, const std::vector<ObjectRef>& old, bool startFirst) {
    if (startFirst) {
      // One old task keeps serving until the new one runs (the newest running one, if any);
      // leftovers of an earlier start-first update stop now, so a slot never runs three.
      ObjectRef keep = old.back();
      for (const auto& o : old) {
        if (o->task().getStatus().getState() == kRunning) keep = o;
      }
      auto& tx = out.room(old.size());
      for (const auto& o : old) {
        if (o != keep && !out.touched(o->id())) shutdown(tx, o);
      }
      create(tx, ctx, g->slot, g->nodeId, ctx.runTarget);
      return;
    }
    auto& tx = out.room(old.size() + 1);
    bool stillRunning = false;
    for (const auto& o : old) {
      auto task = o->task();
      uint16_t s = task.getStatus().getState();
      if (s >= kAssigned && s <= kRunning && !nodeGone(task.getNodeId().cStr())) stillRunning = true;
      shutdown(tx, o);
    }
    create(tx, ctx, g->slot, g->nodeId, stillRunning ? kReady : ctx.runTarget);
  }

  void failureAction(const ServiceContext& ctx, schema::UpdateConfig::FailureAction action, bool rollingBack,
                     const std::string& taskId) {
    auto service = ctx.service;
    bool canRollBack = service.getPreviousSpec().isPrevious();
    if (action == schema::UpdateConfig::FailureAction::ROLLBACK && !rollingBack && canRollBack) {
      writeService(ctx, [&](ss::Service::Builder s) {
        s.setSpec(service.getPreviousSpec().getPrevious());
        s.getPreviousSpec().setPrevious(service.getSpec());
        s.setSpecVersion(service.getPreviousSpecVersion());
        s.setPreviousSpecVersion(service.getSpecVersion());
        auto st = s.getUpdateStatus();
        st.setState(UpdateState::ROLLBACK_STARTED);
        st.setMessage("update rolled back due to failure or early termination of task " + taskId);
      });
      return;
    }
    writeService(ctx, [&](ss::Service::Builder s) {
      auto st = s.getUpdateStatus();
      st.setState(rollingBack ? UpdateState::ROLLBACK_PAUSED : UpdateState::PAUSED);
      std::string message = (rollingBack ? "rollback paused" : "update paused") +
                            std::string(" due to failure or early termination of task ") + taskId;
      if (action == schema::UpdateConfig::FailureAction::ROLLBACK && !rollingBack) {
        message += " (no previous spec to roll back to)";
      }
      st.setMessage(message);
    });
  }

  // ---- rebalancing (opt-in) ----------------------------------------------------------------------

  void rebalance(const ServiceContext& ctx, const std::vector<Group*>& kept, size_t actionsBefore) {
    auto service = ctx.service;
    if (!hasLabel(service.getSpec().getAnnotations().getLabels(), kRebalanceLabel, "true")) return;
    auto state = service.getUpdateStatus().getState();
    if (state == UpdateState::UPDATING || state == UpdateState::ROLLBACK_STARTED) return;
    if (plan.actionCount() != actionsBefore) return;  // one step at a time, from a settled service
    std::map<std::string, std::vector<std::pair<uint64_t, ObjectRef>>> byNode;
    for (const auto& [id, n] : nodes) {
      if (n.state == schema::NodeState::READY && n.availability == schema::NodeAvailability::ACTIVE && matches(n, ctx)) {
        byNode[id];
      }
    }
    for (Group* g : kept) {
      ObjectRef only;
      for (const auto& t : g->tasks) {
        if (!wanted(t->task())) continue;
        if (only) return;  // a slot in transition
        only = t;
      }
      if (!only) return;
      auto task = only->task();
      auto it = byNode.find(task.getNodeId().cStr());
      if (task.getStatus().getState() != kRunning || it == byNode.end()) return;
      it->second.emplace_back(g->slot, only);
    }
    if (byNode.size() < 2) return;
    auto most = byNode.begin(), least = byNode.begin();
    for (auto it = byNode.begin(); it != byNode.end(); ++it) {
      if (it->second.size() > most->second.size()) most = it;
      if (it->second.size() < least->second.size()) least = it;
    }
    if (most->second.size() < least->second.size() + 2) return;
    auto moving = std::max_element(most->second.begin(), most->second.end(),
                                   [](const auto& a, const auto& b) { return a.first < b.first; });
    auto& tx = out.room(2);
    shutdown(tx, moving->second);
    create(tx, ctx, moving->first, "", kReady);
  }

  // ---- task history --------------------------------------------------------------------------------

  void trimHistory(const ServiceContext& ctx, std::vector<Group*> groups) {
    int64_t limit = historyLimit;
    if (limit < 0) return;
    uint64_t attempts = ctx.service.getSpec().getTask().getRestart().getMaxAttempts();
    if (attempts > 0) limit = std::max<int64_t>(limit, static_cast<int64_t>(attempts) + 1);
    for (Group* g : groups) {
      int64_t count = static_cast<int64_t>(g->tasks.size());
      for (const auto& t : g->tasks) {
        if (count <= limit) break;
        auto task = t->task();
        if (out.touched(t->id()) || task.getDesiredState() < kShutdown || !(ended(task) || neverAssigned(task))) continue;
        removeTask(out.room(1), t);
        out.touch(t->id());
        --count;
      }
    }
  }

  // Tasks desired REMOVE go once they can no longer run; tasks of removed services get REMOVE.
  void reapRemoved() {
    for (const auto& t : store.list(Kind::task)) {
      if (out.touched(t->id())) continue;
      auto task = t->task();
      auto service = store.get(Kind::service, task.getServiceId().cStr());
      bool orphan = !service || service->service().getPendingDelete();
      bool canGo = ended(task) || neverAssigned(task) || nodeGone(task.getNodeId().cStr());
      if (task.getDesiredState() >= kRemove || orphan) {
        if (canGo) {
          removeTask(out.room(1), t);
          out.touch(t->id());
        } else if (task.getDesiredState() < kRemove) {
          shutdown(out.room(1), t, kRemove);
        }
      }
    }
  }

  // ---- modes ---------------------------------------------------------------------------------------

  void planReplicated(const ServiceContext& ctx) {
    size_t actionsBefore = plan.actionCount();
    std::map<uint64_t, Group> groups;
    for (const auto& t : store.tasksOfService(ctx.ref->id())) {
      auto& g = groups[t->task().getSlot()];
      g.slot = t->task().getSlot();
      g.tasks.push_back(t);
    }
    std::vector<uint64_t> occupied;
    for (auto& [slot, g] : groups) {
      std::sort(g.tasks.begin(), g.tasks.end(), olderFirst);
      if (std::any_of(g.tasks.begin(), g.tasks.end(), [](const ObjectRef& t) { return wanted(t->task()); })) {
        occupied.push_back(slot);
      }
    }
    uint64_t replicas = ctx.service.getSpec().getMode().getReplicated();
    std::vector<Group*> kept;
    for (size_t i = 0; i < occupied.size(); ++i) {
      Group& g = groups[occupied[i]];
      if (i < replicas) {
        kept.push_back(&g);
        continue;
      }
      for (const auto& t : g.tasks) {  // scale down: the highest slots go
        if (wanted(t->task()) && !out.touched(t->id())) shutdown(out.room(1), t, kRemove);
      }
    }
    for (Group* g : kept) {
      supervise(ctx, *g);
      promote(ctx, *g);
    }
    std::set<uint64_t> taken(occupied.begin(), occupied.end());
    size_t missing = replicas > occupied.size() ? replicas - occupied.size() : 0;
    for (uint64_t slot = 1; missing > 0; ++slot) {
      if (taken.count(slot)) continue;
      create(out.room(1), ctx, slot, "", kRunning);
      --missing;
    }
    planUpdate(ctx, kept);
    rebalance(ctx, kept, actionsBefore);
    std::vector<Group*> all;
    for (auto& [slot, g] : groups) all.push_back(&g);
    trimHistory(ctx, all);
  }

  void planGlobal(const ServiceContext& ctx) {
    std::map<std::string, Group> groups;
    for (const auto& t : store.tasksOfService(ctx.ref->id())) {
      auto& g = groups[t->task().getNodeId().cStr()];
      g.nodeId = t->task().getNodeId().cStr();
      g.tasks.push_back(t);
    }
    for (auto& [id, g] : groups) std::sort(g.tasks.begin(), g.tasks.end(), olderFirst);
    auto eligible = [&](const std::string& id) {
      auto n = node(id);
      return n != nullptr && n->state != schema::NodeState::DOWN &&
             n->availability != schema::NodeAvailability::DRAIN && matches(*n, ctx);
    };
    for (auto& [id, g] : groups) {
      if (eligible(id)) continue;
      for (const auto& t : g.tasks) {
        if (wanted(t->task()) && !out.touched(t->id())) shutdown(out.room(1), t);
      }
    }
    std::vector<Group*> kept;
    for (const auto& [id, n] : nodes) {
      if (!eligible(id)) continue;
      Group& g = groups[id];
      g.nodeId = id;
      bool paused = n.availability == schema::NodeAvailability::PAUSE;
      bool hasWanted = std::any_of(g.tasks.begin(), g.tasks.end(), [](const ObjectRef& t) { return wanted(t->task()); });
      if (!hasWanted) {
        if (!paused) create(out.room(1), ctx, 0, id, kRunning);
        continue;
      }
      supervise(ctx, g);
      promote(ctx, g);
      if (!paused) kept.push_back(&g);
    }
    planUpdate(ctx, kept);
    std::vector<Group*> all;
    for (auto& [id, g] : groups) all.push_back(&g);
    trimHistory(ctx, all);
  }

  // Tasks of an older job iteration are removed; returns those of the current one.
  std::vector<ObjectRef> currentIteration(const ServiceContext& ctx) {
    uint64_t iteration = ctx.service.getJobIteration().getIndex();
    std::vector<ObjectRef> current;
    for (const auto& t : store.tasksOfService(ctx.ref->id())) {
      auto task = t->task();
      if (task.getJobIteration().getIndex() == iteration) {
        current.push_back(t);
      } else if (task.getDesiredState() < kRemove && !out.touched(t->id())) {
        shutdown(out.room(1), t, kRemove);
      }
    }
    std::sort(current.begin(), current.end(), olderFirst);
    return current;
  }

  static bool completed(const Group& g) {
    return std::any_of(g.tasks.begin(), g.tasks.end(),
                       [](const ObjectRef& t) { return t->task().getStatus().getState() == kComplete; });
  }
  static bool hasWantedTask(const Group& g) {
    return std::any_of(g.tasks.begin(), g.tasks.end(), [](const ObjectRef& t) { return wanted(t->task()); });
  }

  void planReplicatedJob(const ServiceContext& ctx) {
    auto job = ctx.service.getSpec().getMode().getReplicatedJob();
    uint64_t maxConcurrent = job.getMaxConcurrent() > 0 ? job.getMaxConcurrent() : 1;
    uint64_t total = job.getTotalCompletions() > 0 ? job.getTotalCompletions() : maxConcurrent;
    std::map<uint64_t, Group> groups;
    for (const auto& t : currentIteration(ctx)) {
      auto& g = groups[t->task().getSlot()];
      g.slot = t->task().getSlot();
      g.tasks.push_back(t);
    }
    uint64_t active = 0;
    std::set<uint64_t> taken;
    for (auto& [slot, g] : groups) {
      if (completed(g)) {
        taken.insert(slot);
        continue;
      }
      if (!hasWantedTask(g)) continue;
      taken.insert(slot);
      supervise(ctx, g);
      promote(ctx, g);
      if (!g.declined) ++active;
    }
    for (uint64_t slot = 0; slot < total && active < maxConcurrent; ++slot) {
      if (taken.count(slot)) continue;
      create(out.room(1), ctx, slot, "", kComplete);
      ++active;
    }
  }

  void planGlobalJob(const ServiceContext& ctx) {
    std::map<std::string, Group> groups;
    for (const auto& t : currentIteration(ctx)) {
      auto& g = groups[t->task().getNodeId().cStr()];
      g.nodeId = t->task().getNodeId().cStr();
      g.tasks.push_back(t);
    }
    auto eligible = [&](const std::string& id) {
      auto n = node(id);
      return n != nullptr && n->state != schema::NodeState::DOWN &&
             n->availability == schema::NodeAvailability::ACTIVE && matches(*n, ctx);
    };
    for (auto& [id, g] : groups) {
      if (eligible(id) || completed(g)) continue;
      for (const auto& t : g.tasks) {
        auto task = t->task();
        if (wanted(task) && !ended(task) && !out.touched(t->id())) shutdown(out.room(1), t);
      }
    }
    for (const auto& [id, n] : nodes) {
      if (!eligible(id)) continue;
      Group& g = groups[id];
      g.nodeId = id;
      if (completed(g)) continue;
      if (!hasWantedTask(g)) {
        create(out.room(1), ctx, 0, id, kComplete);
        continue;
      }
      supervise(ctx, g);
      promote(ctx, g);
    }
  }

  const store::Store& store;
  int64_t now;
  const store::RandomSource& random;
  Plan& plan;
  PlanWriter out;
  std::map<std::string, NodeView> nodes;
  int64_t historyLimit = kDefaultHistoryLimit;
};

}  // namespace

Plan planOrchestration(const store::Store& store, int64_t now, const store::RandomSource& random) {
  Plan plan;
  Planner(store, now, random, plan).run();
  return plan;
}

}  // namespace swarm::orchestrator
