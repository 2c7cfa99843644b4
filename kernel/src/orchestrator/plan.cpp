#include "plan.h"

#include <capnp/message.h>

#include <algorithm>

namespace swarm::orchestrator {
namespace {

namespace ss = store::schema;

// Swarm's Batch cuts at 200 changes or about three quarters of the maximum entry size, leaving
// room for the envelope and for the estimate being off by a little.
constexpr size_t kBatchBytes = store::TransactionBuilder::kMaxEntryBytes * 3 / 4;

}  // namespace

size_t Plan::actionCount() const {
  size_t count = 0;
  for (const auto& tx : transactions) count += tx.actionCount();
  return count;
}

store::TransactionBuilder& PlanWriter::room(size_t actions) {
  auto& txs = plan.transactions;
  if (txs.empty() || txs.back().actionCount() + actions > store::TransactionBuilder::kMaxActions ||
      txs.back().sizeEstimate() > kBatchBytes) {
    txs.emplace_back();
  }
  return txs.back();
}

void PlanWriter::wakeAt(int64_t at) {
  if (!plan.wakeAt || at < *plan.wakeAt) plan.wakeAt = at;
}

void setDesiredState(store::TransactionBuilder& tx, const store::ObjectRef& task, uint16_t desired) {
  capnp::MallocMessageBuilder message;
  auto object = message.initRoot<ss::Object>();
  object.setTask(task->task());
  object.getTask().setDesiredState(desired);
  tx.update(object.asReader(), task->version());
}

void removeTask(store::TransactionBuilder& tx, const store::ObjectRef& task) {
  tx.remove(store::Kind::task, task->id(), task->version());
}

std::string createTask(store::TransactionBuilder& tx, ss::Service::Reader service, const NewTask& what,
                       int64_t now, const store::RandomSource& random) {
  auto spec = service.getSpec();
  capnp::MallocMessageBuilder message;
  auto task = message.initRoot<ss::Object>().initTask();
  std::string id = store::newObjectId(random);
  task.setId(id);
  task.setSpec(spec.getTask());
  task.setSpecVersion(service.getSpecVersion());
  task.setServiceId(service.getId());
  task.setSlot(what.slot);
  task.setNodeId(what.nodeId);
  task.setServiceAnnotations(spec.getAnnotations());
  task.setDesiredState(what.desiredState);
  if (service.hasJobIteration()) task.setJobIteration(service.getJobIteration());
  if (spec.getTask().hasNetworks()) task.setNetworks(spec.getTask().getNetworks());
  auto status = task.initStatus();
  status.setTimestamp(now);
  status.setState(schema::TASK_STATE_PENDING);
  status.setMessage("pending task scheduling");
  // The scheduler's host-port filter reads a task's host-mode ports from its status (the
  // allocator's job in Swarm): the allocated ones, else the spec's.
  std::vector<schema::PortConfig::Reader> hostPorts;
  auto ports = service.hasEndpointPorts() ? service.getEndpointPorts()
                                          : spec.getEndpoint().getPorts();
  for (auto port : ports) {
    if (port.getPublishMode() == schema::PortConfig::PublishMode::HOST) hostPorts.push_back(port);
  }
  if (!hostPorts.empty()) {
    auto list = status.initPorts(static_cast<unsigned>(hostPorts.size()));
    for (unsigned i = 0; i < hostPorts.size(); ++i) list.setWithCaveats(i, hostPorts[i]);
  }
  tx.create(message.getRoot<ss::Object>().asReader());
  return id;
}

}  // namespace swarm::orchestrator
