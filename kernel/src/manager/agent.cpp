// GCC 12 reports a false -Wmaybe-uninitialized inside kj::_::ExceptionOr<T> (see replication.cpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "agent.h"

#include "errors.h"
#include "logging.h"

#include <kj/debug.h>

#include <chrono>
#include <set>

namespace swarm::kernel {
namespace {

namespace ss = store::schema;
constexpr auto kHealthPoll = 500 * kj::MILLISECONDS;
constexpr auto kWaitRetry = 1 * kj::SECONDS;

class IgnoreFailures final : public kj::TaskSet::ErrorHandler {
 public:
  void taskFailed(kj::Exception&&) override {}  // each task handles its own failure
};
IgnoreFailures ignoreFailures;

int64_t wallNow() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool terminal(uint16_t state) { return state >= schema::TASK_STATE_COMPLETE; }

}  // namespace

struct Agent::Controller {
  std::string taskId;
  kj::Own<capnp::MallocMessageBuilder> task = kj::heap<capnp::MallocMessageBuilder>();
  uint16_t reported = 0;  // the last state reported (or the one the dispatcher had)
  bool created = false, started = false, exited = false, stopping = false, retired = false;
  bool waiting = false;  // for the container's exit, which never blocks stopping it
  std::string containerId;
  bool busy = false;
  bool bringingUp = false, queuedForBringUp = false;

  schema::Task::Reader spec() { return task->getRoot<schema::Task>().asReader(); }
};

void mergeAssignment(ss::Assignment::Reader base, ss::Assignment::Reader changes, ss::Assignment::Builder out) {
  auto merge = [](auto baseList, auto changedList, capnp::List<capnp::Text>::Reader removedIds, auto init) {
    std::set<std::string> replaced;
    for (auto id : removedIds) replaced.emplace(id.cStr());
    for (auto item : changedList) replaced.emplace(item.getId().cStr());
    std::vector<decltype(changedList[0])> kept;
    for (auto item : baseList) {
      if (!replaced.count(item.getId().cStr())) kept.push_back(item);
    }
    auto list = init(static_cast<unsigned>(kept.size() + changedList.size()));
    unsigned i = 0;
    for (auto item : kept) list.setWithCaveats(i++, item);
    for (auto item : changedList) list.setWithCaveats(i++, item);
  };
  out.setSequence(changes.getSequence());
  out.setIncremental(false);
  merge(base.getTasks(), changes.getTasks(), changes.getRemovedTasks(), [&](unsigned n) { return out.initTasks(n); });
  merge(base.getSecrets(), changes.getSecrets(), changes.getRemovedSecrets(), [&](unsigned n) { return out.initSecrets(n); });
  merge(base.getConfigs(), changes.getConfigs(), changes.getRemovedConfigs(), [&](unsigned n) { return out.initConfigs(n); });
}

Agent::Agent(kj::Timer& timer, schema::Runtime::Client runtime, std::string nodeId, std::string clusterId)
    : timer(timer), runtime(kj::mv(runtime)), nodeId(std::move(nodeId)), clusterId(std::move(clusterId)),
      log(logger("agent")), recovered(nullptr), tasks(kj::heap<kj::TaskSet>(ignoreFailures)) {
  recovered = recover().fork();
}

Agent::~Agent() = default;

// The containers the runtime already has for this node: a restarted agent adopts them instead of
// starting its tasks again.
kj::Promise<void> Agent::recover() {
  return runtime.listRequest().send().then(
      [this](capnp::Response<schema::Runtime::ListResults>&& listed) {
        std::map<std::string, Found> found;
        for (auto c : listed.getContainers()) {
          if (c.getNodeId().size() > 0 && c.getNodeId() != nodeId) continue;
          found[c.getTaskId()] = Found{c.getState(), c.getExitCode()};
        }
        if (!found.empty()) log->info("found {} container(s) from before this start", found.size());
        existing = kj::mv(found);
      },
      [this](kj::Exception&& e) {
        log->warn("could not list the runtime's containers ({}); tasks start afresh", describe(e));
        existing = std::map<std::string, Found>{};
      });
}

void Agent::assign(ss::Assignment::Reader assignment) {
  auto copy = kj::heap<capnp::MallocMessageBuilder>();
  if (assignment.getIncremental() && lastAssignment.get() != nullptr) {
    mergeAssignment(lastAssignment->getRoot<ss::Assignment>().asReader(), assignment, copy->initRoot<ss::Assignment>());
  } else {
    copy->setRoot(assignment);
  }
  if (existing == std::nullopt) {
    // Not recovered yet: apply once the runtime answered list().
    lastAssignment = kj::mv(copy);
    tasks->add(recovered.addBranch().then([this]() {
      if (lastAssignment.get() == nullptr) return;
      auto held = kj::mv(lastAssignment);
      assign(held->getRoot<ss::Assignment>().asReader());
    }));
    return;
  }
  lastAssignment = kj::mv(copy);
  auto current = lastAssignment->getRoot<ss::Assignment>().asReader();
  std::set<std::string> assigned;
  for (auto task : current.getTasks()) {
    std::string id = task.getId();
    assigned.insert(id);
    auto it = controllers.find(id);
    if (it == controllers.end()) {
      auto c = kj::heap<Controller>();
      c->taskId = id;
      c->reported = task.getStatus().getState();
      auto found = existing->find(id);
      if (found != existing->end()) {
        // Adopted: whatever it is doing, it keeps doing.
        c->created = true;
        c->started = found->second.state != schema::ContainerState::CREATED;
        c->exited = found->second.state == schema::ContainerState::EXITED ||
                    found->second.state == schema::ContainerState::DEAD;
        existing->erase(found);
      }
      it = controllers.emplace(id, kj::mv(c)).first;
    }
    it->second->task->setRoot(task);
    drive(*it->second);
  }
  for (auto& [id, c] : controllers) {
    if (!assigned.count(id) && !c->retired) {
      c->retired = true;
      tasks->add(retire(id));
    }
  }
  // Containers of tasks the swarm no longer has for this node.
  for (auto& [id, found] : *existing) {
    log->info("removing the container of task {}: no longer assigned to this node", id);
    auto remove = runtime.removeRequest();
    remove.setTaskId(id);
    tasks->add(remove.send().ignoreResult());
  }
  existing->clear();
}

void Agent::run(Controller& c, kj::Promise<void> work) {
  c.busy = true;
  std::string id = c.taskId;
  tasks->add(work.catch_([this, id](kj::Exception&& e) {
                   auto it = controllers.find(id);
                   if (it == controllers.end()) return;
                   log->warn("task {}: {}", id, describe(e));
                   if (!terminal(it->second->reported)) {
                     report(*it->second, schema::TASK_STATE_FAILED, "failed", describe(e));
                   }
                 })
                 .then([this, id]() {
                   auto it = controllers.find(id);
                   if (it == controllers.end()) return;
                   it->second->busy = false;
                   if (!it->second->retired) drive(*it->second);
                 }));
}

bool Agent::admitBringUp(Controller& c) {
  if (c.bringingUp) return true;
  if (bringUps >= kBringUpsInFlight) {
    if (!c.queuedForBringUp) {
      c.queuedForBringUp = true;
      waitingBringUps.push_back(c.taskId);
    }
    return false;
  }
  c.queuedForBringUp = false;
  c.bringingUp = true;
  ++bringUps;
  return true;
}

void Agent::endBringUp(Controller& c) {
  if (!c.bringingUp) return;
  c.bringingUp = false;
  --bringUps;
  while (!waitingBringUps.empty() && bringUps < kBringUpsInFlight) {
    std::string next = waitingBringUps.front();
    waitingBringUps.pop_front();
    auto it = controllers.find(next);
    if (it == controllers.end() || !it->second->queuedForBringUp) continue;
    it->second->queuedForBringUp = false;
    drive(*it->second);
  }
}

void Agent::drive(Controller& c) {
  auto task = c.spec();
  uint16_t desired = task.getDesiredState();
  if (c.retired || terminal(c.reported) || desired > schema::TASK_STATE_RUNNING || c.started) {
    c.queuedForBringUp = false;
    if (!c.busy || c.started) endBringUp(c);
  }
  if (c.busy || c.retired) return;
  if (desired > schema::TASK_STATE_RUNNING) {
    if (c.started && !c.exited && !c.stopping) {
      run(c, stop(c));
    } else if (!terminal(c.reported)) {
      report(c, schema::TASK_STATE_SHUTDOWN, "shutdown");
    }
    return;
  }
  if (terminal(c.reported)) return;
  if (!c.created || !c.started) {
    if (!admitBringUp(c)) return;  // driven again when its turn comes
  }
  if (!c.created) {
    run(c, prepare(c));
  } else if (!c.started) {
    run(c, start(c));
  } else if (!c.waiting) {
    // Running (or found exited after a restart): its exit decides the task's end.
    if (!c.exited && c.reported < schema::TASK_STATE_RUNNING) report(c, schema::TASK_STATE_RUNNING, "started");
    c.waiting = true;
    std::string id = c.taskId;
    tasks->add(waitExit(c)
                   .catch_([this, id](kj::Exception&& e) {
                     // Not even a look at the container worked (the daemon is restarting): the
                     // drive() below waits again, so its exit is not lost.
                     log->debug("task {}: inspecting its container failed: {}", id, describe(e));
                   })
                   .then([this, id]() {
                     auto it = controllers.find(id);
                     if (it == controllers.end()) return;
                     it->second->waiting = false;
                     if (!it->second->retired) drive(*it->second);
                   }));
  }
}

void Agent::report(Controller& c, uint16_t state, std::string message, std::string err, int32_t exitCode) {
  if (state <= c.reported && !(state == c.reported && state == 0)) return;  // forward only
  c.reported = state;
  auto status = kj::heap<capnp::MallocMessageBuilder>();
  auto s = status->initRoot<schema::TaskStatus>();
  s.setTimestamp(wallNow());
  s.setState(state);
  s.setMessage(message);
  s.setErr(err);
  auto container = s.initContainer();
  container.setContainerId(c.containerId);
  container.setExitCode(exitCode);
  pending[c.taskId] = Pending{kj::mv(status)};
}

kj::Promise<void> Agent::prepare(Controller& c) {
  report(c, schema::TASK_STATE_ACCEPTED, "accepted");
  report(c, schema::TASK_STATE_PREPARING, "preparing");
  auto request = runtime.createRequest();
  request.setTask(c.spec());
  request.setClusterId(clusterId);
  // The secrets and configs this task references, with their data.
  auto assignment = lastAssignment->getRoot<ss::Assignment>().asReader();
  auto container = c.spec().getSpec().getRuntime().getContainer();
  auto wantedSecrets = container.getSecrets();
  auto secrets = request.initSecrets(wantedSecrets.size());
  for (unsigned i = 0; i < wantedSecrets.size(); ++i) {
    secrets[i].setReferenceId(wantedSecrets[i].getSecretId());
    secrets[i].setName(wantedSecrets[i].getSecretName());
    for (auto s : assignment.getSecrets()) {
      if (s.getId() == wantedSecrets[i].getSecretId()) secrets[i].setData(s.getSpec().getData());
    }
  }
  auto wantedConfigs = container.getConfigs();
  auto configs = request.initConfigs(wantedConfigs.size());
  for (unsigned i = 0; i < wantedConfigs.size(); ++i) {
    configs[i].setReferenceId(wantedConfigs[i].getConfigId());
    configs[i].setName(wantedConfigs[i].getConfigName());
    for (auto s : assignment.getConfigs()) {
      if (s.getId() == wantedConfigs[i].getConfigId()) configs[i].setData(s.getSpec().getData());
    }
  }
  std::string id = c.taskId;
  return request.send().then([this, id](capnp::Response<schema::Runtime::CreateResults>&& created) {
    auto it = controllers.find(id);
    if (it == controllers.end()) return;
    Controller& c = *it->second;
    auto result = created.getResult();
    if (result.isFailed()) {
      auto failure = result.getFailed();
      report(c, schema::TASK_STATE_REJECTED, "rejected", failure.getMessage());
      return;
    }
    c.created = true;
    c.containerId = result.getCreated().getContainerId();
    report(c, schema::TASK_STATE_READY, "prepared");
  });
}

kj::Promise<void> Agent::start(Controller& c) {
  report(c, schema::TASK_STATE_STARTING, "starting");
  auto request = runtime.startRequest();
  request.setTaskId(c.taskId);
  std::string id = c.taskId;
  return request.send().ignoreResult().then([this, id]() -> kj::Promise<void> {
    auto it = controllers.find(id);
    if (it == controllers.end()) return kj::READY_NOW;
    it->second->started = true;
    endBringUp(*it->second);  // a long healthcheck holds up no other bring-up
    // A container with a healthcheck (the spec's or the image's) is running only once healthy,
    // Swarm's rule; one without is running now.
    return waitHealthy(*it->second);
  });
}

kj::Promise<void> Agent::waitHealthy(Controller& c) {
  auto request = runtime.inspectRequest();
  request.setTaskId(c.taskId);
  std::string id = c.taskId;
  return request.send().then([this, id](capnp::Response<schema::Runtime::InspectResults>&& inspected) -> kj::Promise<void> {
    auto it = controllers.find(id);
    if (it == controllers.end() || it->second->retired) return kj::READY_NOW;
    Controller& c = *it->second;
    auto info = inspected.getInfo();
    if (info.getState() != schema::ContainerState::RUNNING) return kj::READY_NOW;  // waitExit reports it
    switch (info.getHealth()) {
      case schema::HealthState::HEALTHY:
      case schema::HealthState::NONE: report(c, schema::TASK_STATE_RUNNING, "started"); return kj::READY_NOW;
      case schema::HealthState::UNHEALTHY: {
        report(c, schema::TASK_STATE_FAILED, "unhealthy", "task: unhealthy container");
        auto stopRequest = runtime.stopRequest();
        stopRequest.setTaskId(id);
        stopRequest.setGracePeriod(-1);
        return stopRequest.send().ignoreResult();
      }
      case schema::HealthState::STARTING: break;
    }
    return timer.afterDelay(kHealthPoll).then([this, id]() -> kj::Promise<void> {
      auto again = controllers.find(id);
      if (again == controllers.end() || again->second->retired) return kj::READY_NOW;
      return waitHealthy(*again->second);
    });
  });
}

kj::Promise<void> Agent::waitExit(Controller& c) {
  auto request = runtime.waitRequest();
  request.setTaskId(c.taskId);
  std::string id = c.taskId;
  return request.send().then(
      [this, id](capnp::Response<schema::Runtime::WaitResults>&& waited) -> kj::Promise<void> {
        auto it = controllers.find(id);
        if (it == controllers.end()) return kj::READY_NOW;
        Controller& c = *it->second;
        c.exited = true;
        auto exit = waited.getExit();
        int32_t code = exit.getExitCode();
        if (c.stopping) {
          report(c, schema::TASK_STATE_SHUTDOWN, "shutdown", "", code);
        } else if (code == 0 && exit.getError().size() == 0) {
          report(c, schema::TASK_STATE_COMPLETE, "finished", "", code);
        } else {
          std::string err = exit.getError().size() > 0 ? std::string(exit.getError().cStr())
                                                       : "task: non-zero exit (" + std::to_string(code) + ")";
          if (exit.getOomKilled()) err = "task: out of memory (OOM killed), exit (" + std::to_string(code) + ")";
          report(c, schema::TASK_STATE_FAILED, "failed", err, code);
        }
        return kj::READY_NOW;
      },
      [this, id](kj::Exception&& e) -> kj::Promise<void> {
        // The runtime lost track for a moment (the daemon restarted): look again shortly.
        log->debug("task {}: waiting for its container failed: {}", id, describe(e));
        return timer.afterDelay(kWaitRetry).then([this, id]() -> kj::Promise<void> {
          auto it = controllers.find(id);
          if (it == controllers.end() || it->second->retired) return kj::READY_NOW;
          auto inspect = runtime.inspectRequest();
          inspect.setTaskId(id);
          return inspect.send().then([this, id](capnp::Response<schema::Runtime::InspectResults>&& r) {
            auto again = controllers.find(id);
            if (again == controllers.end()) return;
            auto state = r.getInfo().getState();
            if (state == schema::ContainerState::MISSING) {
              report(*again->second, schema::TASK_STATE_FAILED, "failed", "task: its container is gone");
            }
            // Otherwise drive() waits again.
          });
        });
      });
}

kj::Promise<void> Agent::stop(Controller& c) {
  c.stopping = true;
  auto request = runtime.stopRequest();
  request.setTaskId(c.taskId);
  request.setGracePeriod(-1);  // the spec's stop grace period
  std::string id = c.taskId;
  return request.send().ignoreResult().then([this, id]() {
    auto it = controllers.find(id);
    if (it == controllers.end()) return;
    it->second->exited = true;
    report(*it->second, schema::TASK_STATE_SHUTDOWN, "shutdown");
  });
}

kj::Promise<void> Agent::retire(std::string taskId) {
  auto it = controllers.find(taskId);
  if (it == controllers.end()) return kj::READY_NOW;
  bool running = it->second->started && !it->second->exited;
  kj::Promise<void> stopped = kj::READY_NOW;
  if (running) {
    auto request = runtime.stopRequest();
    request.setTaskId(taskId);
    request.setGracePeriod(-1);
    stopped = request.send().ignoreResult().catch_([](kj::Exception&&) {});
  }
  return stopped.then([this, taskId]() {
    auto remove = runtime.removeRequest();
    remove.setTaskId(taskId);
    return remove.send().ignoreResult();
  }).then([this, taskId]() {
    auto it = controllers.find(taskId);
    if (it != controllers.end() && it->second->retired) {
      endBringUp(*it->second);
      controllers.erase(it);
    }
    pending.erase(taskId);
  }, [this, taskId](kj::Exception&& e) {
    log->warn("removing the container of task {} failed: {}", taskId, describe(e));
    auto it = controllers.find(taskId);
    if (it != controllers.end() && it->second->retired) {
      endBringUp(*it->second);
      controllers.erase(it);
    }
  });
}

kj::Own<capnp::MallocMessageBuilder> Agent::takeUpdates() {
  if (pending.empty() || !inFlight.empty()) return kj::Own<capnp::MallocMessageBuilder>();
  auto message = kj::heap<capnp::MallocMessageBuilder>();
  auto list = message->initRoot<ss::Manager::UpdateTaskStatusParams>().initUpdates(static_cast<unsigned>(pending.size()));
  unsigned i = 0;
  for (auto& [id, p] : pending) {
    list[i].setTaskId(id);
    list[i].setStatus(p.status->getRoot<schema::TaskStatus>().asReader());
    ++i;
  }
  inFlight = kj::mv(pending);
  pending.clear();
  return message;
}

void Agent::updatesDelivered(bool ok) {
  if (!ok) {
    // Sent again, unless a later observation of the same task replaced it meanwhile.
    for (auto& [id, p] : inFlight) pending.emplace(id, kj::mv(p));
  }
  inFlight.clear();
}

}  // namespace swarm::kernel
