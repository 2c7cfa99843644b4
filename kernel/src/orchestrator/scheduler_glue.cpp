#include "scheduler_glue.h"

#include <capnp/message.h>

#include <algorithm>
#include <map>
#include <string>

namespace swarm::orchestrator {
namespace {

namespace ss = store::schema;
using store::Kind;
using store::ObjectRef;

bool placed(schema::Task::Reader t) {
  uint16_t s = t.getStatus().getState();
  return s >= schema::TASK_STATE_ASSIGNED && s <= schema::TASK_STATE_RUNNING;
}

template <typename Counts>
void writeCounts(const Counts& counts, capnp::List<schema::ServiceCount>::Builder out) {
  unsigned i = 0;
  for (const auto& [service, count] : counts) {
    out[i].setServiceId(service);
    out[i].setCount(count);
    ++i;
  }
}

}  // namespace

SchedulerBatch pendingTasks(const store::Store& store) {
  SchedulerBatch batch;
  for (const auto& t : store.list(Kind::task)) {
    auto task = t->task();
    if (task.getStatus().getState() <= schema::TASK_STATE_PENDING &&
        task.getDesiredState() < schema::TASK_STATE_SHUTDOWN) {
      batch.tasks.push_back(t);
    }
  }
  std::sort(batch.tasks.begin(), batch.tasks.end(), [](const ObjectRef& a, const ObjectRef& b) {
    return a->createdAt() != b->createdAt() ? a->createdAt() < b->createdAt() : a->id() < b->id();
  });
  return batch;
}

void buildSchedulerRequest(const store::Store& store, const SchedulerBatch& batch, int64_t now,
                           schema::Scheduler::ScheduleParams::Builder request) {
  auto nodeRefs = store.list(Kind::node);
  auto infos = request.initNodes(static_cast<unsigned>(nodeRefs.size()));
  for (unsigned i = 0; i < nodeRefs.size(); ++i) {
    auto node = nodeRefs[i]->node();
    auto info = infos[i];
    info.setNode(node);
    auto reported = node.getDescription().getResources();
    int64_t cpu = reported.getNanoCpus();
    int64_t memory = reported.getMemoryBytes();
    std::map<std::string, int64_t> discreteUsed;
    std::map<std::string, uint32_t> perService, failures;
    uint32_t total = 0;
    std::vector<schema::PortConfig::Reader> ports;
    for (const auto& t : store.tasksOnNode(nodeRefs[i]->id())) {
      auto task = t->task();
      uint16_t state = task.getStatus().getState();
      if ((state == schema::TASK_STATE_FAILED || state == schema::TASK_STATE_REJECTED) &&
          task.getStatus().getTimestamp() >= now - kRecentFailureWindow) {
        ++failures[task.getServiceId()];
      }
      if (!placed(task)) continue;
      auto reservations = task.getSpec().getResources().getReservations();
      cpu -= reservations.getNanoCpus();
      memory -= reservations.getMemoryBytes();
      for (auto g : reservations.getGeneric()) {
        if (g.isDiscrete()) discreteUsed[g.getKind()] += g.getDiscrete();
      }
      for (auto port : task.getStatus().getPorts()) {
        if (port.getPublishMode() == schema::PortConfig::PublishMode::HOST) ports.push_back(port);
      }
      if (task.getDesiredState() < schema::TASK_STATE_SHUTDOWN) {
        ++perService[task.getServiceId()];
        ++total;
      }
    }
    auto available = info.initAvailable();
    available.setNanoCpus(std::max<int64_t>(0, cpu));
    available.setMemoryBytes(std::max<int64_t>(0, memory));
    auto generic = available.initGeneric(reported.getGeneric().size());
    for (unsigned k = 0; k < reported.getGeneric().size(); ++k) {
      auto g = reported.getGeneric()[k];
      generic.setWithCaveats(k, g);
      if (g.isDiscrete()) {
        auto used = discreteUsed.find(g.getKind());
        if (used != discreteUsed.end()) generic[k].setDiscrete(std::max<int64_t>(0, g.getDiscrete() - used->second));
      }
    }
    writeCounts(perService, info.initTasksByService(static_cast<unsigned>(perService.size())));
    info.setTotalTasks(total);
    writeCounts(failures, info.initRecentFailures(static_cast<unsigned>(failures.size())));
    auto hostPorts = info.initHostPorts(static_cast<unsigned>(ports.size()));
    for (unsigned k = 0; k < ports.size(); ++k) hostPorts.setWithCaveats(k, ports[k]);
  }
  auto tasks = request.initTasks(static_cast<unsigned>(batch.tasks.size()));
  for (unsigned i = 0; i < batch.tasks.size(); ++i) tasks.setWithCaveats(i, batch.tasks[i]->task());
}

Plan applySchedulerResult(const store::Store& store, const SchedulerBatch& batch, schema::Plan::Reader result,
                          int64_t now) {
  std::map<std::string, ObjectRef, std::less<>> sent;
  for (const auto& t : batch.tasks) sent.emplace(t->id(), t);
  Plan plan;
  PlanWriter out(plan);
  // The task as the batch read it, if it is still so in the store.
  auto unchanged = [&](capnp::Text::Reader id) -> ObjectRef {
    auto it = sent.find(std::string_view(id.cStr(), id.size()));
    if (it == sent.end() || out.touched(it->second->id())) return nullptr;
    auto current = store.get(Kind::task, it->second->id());
    if (!current || current->version() != it->second->version()) return nullptr;
    return it->second;
  };
  for (auto assignment : result.getAssignments()) {
    auto ref = unchanged(assignment.getTaskId());
    if (!ref) continue;
    capnp::MallocMessageBuilder message;
    auto object = message.initRoot<ss::Object>();
    object.setTask(ref->task());
    auto task = object.getTask();
    task.setNodeId(assignment.getNodeId());
    auto status = task.getStatus();
    status.setState(schema::TASK_STATE_ASSIGNED);
    status.setMessage("scheduler assigned task to node");
    status.setErr("");
    status.setTimestamp(now);
    out.room(1).update(object.asReader(), ref->version());
    out.touch(ref->id());
  }
  for (auto unplaced : result.getUnplaced()) {
    auto ref = unchanged(unplaced.getTaskId());
    if (!ref) continue;
    auto current = ref->task();
    if (current.getStatus().getErr() == unplaced.getReason() &&
        current.getStatus().getState() == schema::TASK_STATE_PENDING) {
      continue;  // already says so
    }
    capnp::MallocMessageBuilder message;
    auto object = message.initRoot<ss::Object>();
    object.setTask(current);
    auto status = object.getTask().getStatus();
    status.setState(schema::TASK_STATE_PENDING);
    status.setMessage("pending task scheduling");
    status.setErr(unplaced.getReason());
    status.setTimestamp(now);
    out.room(1).update(object.asReader(), ref->version());
    out.touch(ref->id());
  }
  return plan;
}

}  // namespace swarm::orchestrator
