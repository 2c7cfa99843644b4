// GCC 12 reports a false -Wmaybe-uninitialized inside kj::_::ExceptionOr<T> (see replication.cpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "orchestration.h"

#include "errors.h"
#include "logging.h"
#include "service_routes.h"
#include "store/object_id.h"

#include <capnp/message.h>
#include <kj/debug.h>

#include <algorithm>
#include <map>
#include <set>

namespace swarm::kernel {
namespace {

namespace ss = store::schema;
using store::Kind;
using store::ObjectRef;
using Mode = schema::ServiceSpec::Mode;

constexpr auto kDebounce = 10 * kj::MILLISECONDS;
constexpr int64_t kSecond = 1'000'000'000;
constexpr uint16_t kRunning = schema::TASK_STATE_RUNNING;

class IgnoreFailures final : public kj::TaskSet::ErrorHandler {
 public:
  void taskFailed(kj::Exception&&) override {}
};
IgnoreFailures ignoreFailures;

bool terminal(uint16_t state) { return state >= schema::TASK_STATE_COMPLETE; }
// Desired to run (or to have run) and not told to stop.
bool runnable(schema::Task::Reader t) { return t.getDesiredState() <= kRunning; }

// Appends one change, starting a new transaction when this one is full.
class Batch {
 public:
  explicit Batch(std::vector<store::TransactionBuilder>& out) : out(out) {}
  store::TransactionBuilder& next() {
    if (out.empty() || out.back().actionCount() >= 100 ||
        out.back().sizeEstimate() > store::TransactionBuilder::kMaxEntryBytes / 2) {
      out.emplace_back();
    }
    return out.back();
  }

 private:
  std::vector<store::TransactionBuilder>& out;
};

void setDesired(Batch& batch, const ObjectRef& ref, uint16_t desired) {
  capnp::MallocMessageBuilder message;
  auto object = message.initRoot<ss::Object>();
  object.setTask(ref->task());
  object.getTask().setDesiredState(desired);
  batch.next().update(object.asReader(), ref->version());
}

// A new task for `slot` (replicated) or `nodeId` (global), carrying the service's current spec.
void newTask(Batch& batch, const ObjectRef& serviceRef, uint64_t slot, const std::string& nodeId, int64_t now) {
  auto service = serviceRef->service();
  capnp::MallocMessageBuilder message;
  auto task = message.initRoot<ss::Object>().initTask();
  task.setId(store::newObjectId(store::systemRandom()));
  task.setSpec(service.getSpec().getTask());
  task.setSpecVersion(service.getSpecVersion());
  task.setServiceId(service.getId());
  task.setSlot(slot);
  task.setNodeId(nodeId);
  task.setServiceAnnotations(service.getSpec().getAnnotations());
  auto status = task.getStatus();
  status.setTimestamp(now);
  status.setState(schema::TASK_STATE_PENDING);
  status.setMessage("pending task scheduling");
  task.setDesiredState(kRunning);
  task.setJobIteration(service.getJobIteration());
  batch.next().create(message.getRoot<ss::Object>().asReader());
}

struct NodeView {
  bool ready = false;    // READY (UNKNOWN counts: Swarm replaces nothing for it)
  bool down = false;
  bool drained = false;
  bool paused = false;
};

std::map<std::string, NodeView> nodeViews(const store::Store& store) {
  std::map<std::string, NodeView> out;
  for (const auto& ref : store.list(Kind::node)) {
    auto n = ref->node();
    NodeView v;
    auto state = n.getStatus().getState();
    v.ready = state == schema::NodeState::READY;
    v.down = state == schema::NodeState::DOWN;
    v.drained = n.getSpec().getAvailability() == schema::NodeAvailability::DRAIN;
    v.paused = n.getSpec().getAvailability() == schema::NodeAvailability::PAUSE;
    out[ref->id()] = v;
  }
  return out;
}

// The restart policy's verdict on a slot whose task ended: replace now, later (returns the
// time), or never.
struct RestartVerdict {
  bool replace = false;
  int64_t at = 0;
};

RestartVerdict restartVerdict(schema::Task::Reader ended, const std::vector<ObjectRef>& history, int64_t now,
                              bool nodeGone) {
  auto policy = ended.getSpec().getRestart();
  uint16_t state = ended.getStatus().getState();
  bool failed = state == schema::TASK_STATE_FAILED || state == schema::TASK_STATE_REJECTED;
  if (!nodeGone && ended.getDesiredState() <= kRunning) {
    switch (policy.getCondition()) {
      case schema::RestartPolicy::Condition::NONE: return {};
      case schema::RestartPolicy::Condition::ON_FAILURE:
        if (!failed) return {};
        break;
      case schema::RestartPolicy::Condition::ANY: break;
    }
  }
  if (!nodeGone && policy.getMaxAttempts() > 0) {
    uint64_t attempts = 0;
    for (const auto& t : history) {
      auto task = t->task();
      if (!terminal(task.getStatus().getState())) continue;
      if (policy.getWindow() > 0 && task.getStatus().getTimestamp() < now - policy.getWindow()) continue;
      ++attempts;
    }
    if (attempts > policy.getMaxAttempts()) return {};
  }
  // A lost node's tasks move at once; an ended task waits the delay (Swarm's 5 s default).
  int64_t delay = nodeGone ? 0 : std::max<int64_t>(0, policy.getDelay());
  return {true, ended.getStatus().getTimestamp() + delay};
}

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
  std::vector<store::TransactionBuilder> txs;
  int64_t wakeIn = -1;
  reconcile(txs, wakeIn);
  if (wakeIn >= 0) {
    tasks->add(timer.afterDelay(std::max<int64_t>(wakeIn, 1'000'000) * kj::NANOSECONDS).then([this]() {
      schedulePass(kDebounce);
    }));
  }
  return commit(kj::mv(txs)).then([this]() { return placePending(); });
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

void Orchestration::reconcile(std::vector<store::TransactionBuilder>& out, int64_t& wakeIn) {
  Batch batch(out);
  int64_t now = clock();
  auto nodes = nodeViews(store);
  int64_t historyLimit = 5;
  auto clusters = store.list(Kind::cluster);
  if (!clusters.empty()) historyLimit = clusters.front()->cluster().getSpec().getTaskHistoryRetentionLimit();
  auto wake = [&](int64_t at) {
    int64_t in = at - now;
    if (wakeIn < 0 || in < wakeIn) wakeIn = in;
  };
  auto nodeGone = [&](schema::Task::Reader t) {
    if (t.getNodeId().size() == 0) return false;
    auto it = nodes.find(t.getNodeId());
    return it == nodes.end() || it->second.down || it->second.drained;
  };

  std::set<std::string> services;
  for (const auto& serviceRef : store.list(Kind::service)) {
    services.insert(serviceRef->id());
    auto service = serviceRef->service();
    auto spec = service.getSpec();
    auto mode = spec.getMode();
    auto all = store.tasksOfService(serviceRef->id());

    // Group by slot (replicated) or node (global).
    bool global = mode.which() == Mode::GLOBAL;
    if (mode.which() != Mode::REPLICATED && !global) continue;  // jobs: not orchestrated yet
    std::map<std::string, std::vector<ObjectRef>> groups;
    for (const auto& t : all) {
      auto task = t->task();
      std::string key = global ? std::string(task.getNodeId().cStr()) : std::to_string(task.getSlot());
      groups[key].push_back(t);
    }
    std::set<std::string> wanted;
    if (global) {
      for (const auto& [id, v] : nodes) {
        // A paused node keeps its task but gets no new one.
        if (!v.down && !v.drained && (!v.paused || groups.count(id))) wanted.insert(id);
      }
    } else {
      for (uint64_t slot = 1; slot <= mode.getReplicated(); ++slot) wanted.insert(std::to_string(slot));
    }
    // Rolling update: at most `parallelism` slots change at once (0 = all).
    uint64_t parallelism = spec.hasUpdate() ? spec.getUpdate().getParallelism() : 1;
    uint64_t updating = 0;
    for (const auto& [key, group] : groups) {
      for (const auto& t : group) {
        auto task = t->task();
        if (runnable(task) && taskUpToDate(service, task) &&
            task.getStatus().getState() < kRunning && !terminal(task.getStatus().getState())) {
          ++updating;  // a new task still starting
        }
      }
    }

    for (const auto& key : wanted) {
      auto& group = groups[key];
      std::sort(group.begin(), group.end(), [](const ObjectRef& a, const ObjectRef& b) {
        return a->createdAt() < b->createdAt();
      });
      ObjectRef live;  // the slot's runnable task, if any
      for (const auto& t : group) {
        if (runnable(t->task())) live = t;
      }
      bool replace = false;
      if (live) {
        auto task = live->task();
        bool gone = nodeGone(task);
        if (terminal(task.getStatus().getState()) || gone) {
          auto verdict = restartVerdict(task, group, now, gone);
          if (gone && !terminal(task.getStatus().getState())) setDesired(batch, live, schema::TASK_STATE_SHUTDOWN);
          // Not restarted: the ended task keeps its slot (and says why it ended).
          if (!verdict.replace) continue;
          if (verdict.at > now) {
            wake(verdict.at);
            continue;
          }
          if (!gone) setDesired(batch, live, schema::TASK_STATE_SHUTDOWN);
          replace = true;
        } else if (!taskUpToDate(service, task)) {
          if (parallelism != 0 && updating >= parallelism) continue;
          ++updating;
          setDesired(batch, live, schema::TASK_STATE_SHUTDOWN);  // stop-first
          replace = true;
        }
      } else {
        replace = true;
      }
      if (replace) {
        if (global) {
          newTask(batch, serviceRef, 0, key, now);
        } else {
          newTask(batch, serviceRef, std::stoull(key), "", now);
        }
      }
    }
    // Slots beyond the replica count, and nodes no longer eligible for a global service.
    for (const auto& [key, group] : groups) {
      if (wanted.count(key)) continue;
      for (const auto& t : group) {
        if (runnable(t->task())) setDesired(batch, t, schema::TASK_STATE_SHUTDOWN);
      }
    }
    // History: dead tasks per slot beyond the limit go, oldest first.
    if (historyLimit >= 0) {
      for (auto& [key, group] : groups) {
        std::vector<ObjectRef> dead;
        for (const auto& t : group) {
          auto task = t->task();
          if (!runnable(task) && terminal(task.getStatus().getState())) dead.push_back(t);
        }
        std::sort(dead.begin(), dead.end(), [](const ObjectRef& a, const ObjectRef& b) {
          return a->createdAt() < b->createdAt();
        });
        size_t keep = static_cast<size_t>(historyLimit);
        for (size_t i = 0; i + keep < dead.size(); ++i) batch.next().remove(Kind::task, dead[i]->id(), dead[i]->version());
      }
    }
  }

  // Tasks whose service is gone: stop them, then delete them once they ended (or never ran).
  for (const auto& t : store.list(Kind::task)) {
    auto task = t->task();
    if (services.count(task.getServiceId())) continue;
    uint16_t state = task.getStatus().getState();
    bool neverRan = state < schema::TASK_STATE_ASSIGNED || task.getNodeId().size() == 0;
    auto node = nodes.find(task.getNodeId());
    bool nodeLost = node == nodes.end() || node->second.down;
    if (terminal(state) || neverRan || nodeLost) {
      batch.next().remove(Kind::task, t->id(), t->version());
    } else if (task.getDesiredState() < schema::TASK_STATE_REMOVE) {
      setDesired(batch, t, schema::TASK_STATE_REMOVE);
    }
  }
}

// ---- the scheduler glue -------------------------------------------------------------------------

kj::Promise<void> Orchestration::placePending() {
  std::vector<ObjectRef> pending;
  for (const auto& t : store.list(Kind::task)) {
    auto task = t->task();
    uint16_t state = task.getStatus().getState();
    if (task.getDesiredState() > kRunning || state > schema::TASK_STATE_PENDING) continue;
    if (task.getNodeId().size() > 0) {
      // Global tasks come with their node: assign them directly.
      continue;
    }
    pending.push_back(t);
  }
  // Global tasks: no scheduling decision, only the state.
  std::vector<store::TransactionBuilder> direct;
  Batch batch(direct);
  for (const auto& t : store.list(Kind::task)) {
    auto task = t->task();
    if (task.getDesiredState() > kRunning || task.getStatus().getState() > schema::TASK_STATE_PENDING) continue;
    if (task.getNodeId().size() == 0) continue;
    capnp::MallocMessageBuilder message;
    auto object = message.initRoot<ss::Object>();
    object.setTask(task);
    auto status = object.getTask().getStatus();
    status.setState(schema::TASK_STATE_ASSIGNED);
    status.setMessage("scheduler assigned task to node");
    status.setTimestamp(clock());
    batch.next().update(object.asReader(), t->version());
  }
  auto directWrites = commit(kj::mv(direct));
  if (pending.empty()) return directWrites;

  auto request = scheduler.scheduleRequest();
  auto nodeRefs = store.list(Kind::node);
  auto nodeList = request.initNodes(static_cast<unsigned>(nodeRefs.size()));
  for (unsigned i = 0; i < nodeRefs.size(); ++i) {
    auto n = nodeRefs[i]->node();
    auto info = nodeList[i];
    info.setNode(n);
    // Free resources: what the node offers minus what its live tasks reserve.
    int64_t cpu = n.getDescription().getResources().getNanoCpus();
    int64_t memory = n.getDescription().getResources().getMemoryBytes();
    std::map<std::string, uint32_t> perService;
    uint32_t total = 0;
    for (const auto& t : store.tasksOnNode(nodeRefs[i]->id())) {
      auto task = t->task();
      if (!runnable(task) || terminal(task.getStatus().getState())) continue;
      cpu -= task.getSpec().getResources().getReservations().getNanoCpus();
      memory -= task.getSpec().getResources().getReservations().getMemoryBytes();
      ++perService[task.getServiceId()];
      ++total;
    }
    auto available = info.initAvailable();
    available.setNanoCpus(std::max<int64_t>(0, cpu));
    available.setMemoryBytes(std::max<int64_t>(0, memory));
    available.setGeneric(n.getDescription().getResources().getGeneric());
    auto counts = info.initTasksByService(static_cast<unsigned>(perService.size()));
    unsigned k = 0;
    for (const auto& [service, count] : perService) {
      counts[k].setServiceId(service);
      counts[k].setCount(count);
      ++k;
    }
    info.setTotalTasks(total);
  }
  auto taskList = request.initTasks(static_cast<unsigned>(pending.size()));
  for (unsigned i = 0; i < pending.size(); ++i) taskList.setWithCaveats(i, pending[i]->task());
  std::map<std::string, ObjectRef> byId;
  for (const auto& t : pending) byId[t->id()] = t;
  return directWrites.then([request = kj::mv(request)]() mutable { return request.send(); })
      .then([this, byId = kj::mv(byId)](capnp::Response<schema::Scheduler::ScheduleResults>&& answer) mutable {
        std::vector<store::TransactionBuilder> txs;
        Batch batch(txs);
        int64_t now = clock();
        auto plan = answer.getPlan();
        for (auto a : plan.getAssignments()) {
          auto it = byId.find(a.getTaskId());
          if (it == byId.end()) continue;
          capnp::MallocMessageBuilder message;
          auto object = message.initRoot<ss::Object>();
          object.setTask(it->second->task());
          auto task = object.getTask();
          task.setNodeId(a.getNodeId());
          auto status = task.getStatus();
          status.setState(schema::TASK_STATE_ASSIGNED);
          status.setMessage("scheduler assigned task to node");
          status.setErr("");
          status.setTimestamp(now);
          batch.next().update(object.asReader(), it->second->version());
        }
        for (auto u : plan.getUnplaced()) {
          auto it = byId.find(u.getTaskId());
          if (it == byId.end()) continue;
          auto current = it->second->task();
          if (current.getStatus().getErr() == u.getReason()) continue;  // already says so
          capnp::MallocMessageBuilder message;
          auto object = message.initRoot<ss::Object>();
          object.setTask(current);
          auto status = object.getTask().getStatus();
          status.setState(schema::TASK_STATE_PENDING);
          status.setMessage("pending task scheduling");
          status.setErr(u.getReason());
          status.setTimestamp(now);
          batch.next().update(object.asReader(), it->second->version());
        }
        return commit(kj::mv(txs));
      });
}

}  // namespace swarm::kernel
