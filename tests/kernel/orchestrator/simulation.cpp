#include "simulation.h"

#include <scheduler.h>  // scheduler-spread's pure core

#include <cstdlib>

namespace swarm::orchestrator::testing {

uint64_t testSeed(uint64_t fallback) {
  const char* text = std::getenv("ORCHESTRATOR_TEST_SEED");
  return text != nullptr ? std::strtoull(text, nullptr, 10) : fallback;
}

Simulation::Simulation(uint64_t seed) : seed(seed), random(store::seededRandom(seed)) {
  capnp::MallocMessageBuilder message;
  auto cluster = message.initRoot<ss::Object>().initCluster();
  cluster.setId("cluster0");
  cluster.initSpec().initAnnotations().setName("default");
  store::TransactionBuilder tx;
  tx.create(message.getRoot<ss::Object>().asReader());
  REQUIRE(commit(tx).ok());
}

store::ApplyResult Simulation::commit(const store::TransactionBuilder& tx) {
  std::string entry = tx.encode(now);
  auto result = store.apply(store.appliedIndex() + 1,
                            kj::arrayPtr(reinterpret_cast<const kj::byte*>(entry.data()), entry.size()));
  if (result.status == store::Status::conflict) ++conflicts;
  return result;
}

namespace {

template <typename Edit>
void updateObject(Simulation& sim, const ObjectRef& ref, Edit edit) {
  capnp::MallocMessageBuilder message;
  auto object = message.initRoot<ss::Object>();
  store::copyObject(object, ref->reader());
  edit(object);
  store::TransactionBuilder tx;
  tx.update(object.asReader(), ref->version());
  auto result = sim.commit(tx);
  REQUIRE(result.ok());
}

}  // namespace

std::string Simulation::addNode(const std::string& hostname, std::vector<std::pair<std::string, std::string>> labels) {
  capnp::MallocMessageBuilder message;
  auto node = message.initRoot<ss::Object>().initNode();
  std::string id = store::newObjectId(random);
  node.setId(id);
  auto spec = node.initSpec();
  spec.setAvailability(schema::NodeAvailability::ACTIVE);
  spec.setMembership(schema::NodeMembership::ACCEPTED);
  auto list = spec.initAnnotations().initLabels(static_cast<unsigned>(labels.size()));
  for (unsigned i = 0; i < labels.size(); ++i) {
    list[i].setKey(labels[i].first);
    list[i].setValue(labels[i].second);
  }
  auto description = node.initDescription();
  description.setHostname(hostname);
  description.initPlatform().setOs("linux");
  description.getPlatform().setArchitecture("x86_64");
  description.initResources().setNanoCpus(4'000'000'000);
  description.getResources().setMemoryBytes(8LL << 30);
  node.initStatus().setState(schema::NodeState::READY);
  store::TransactionBuilder tx;
  tx.create(message.getRoot<ss::Object>().asReader());
  REQUIRE(commit(tx).ok());
  return id;
}

void Simulation::setNodeState(const std::string& id, schema::NodeState state) {
  updateObject(*this, store.get(Kind::node, id), [&](ss::Object::Builder o) { o.getNode().getStatus().setState(state); });
}

void Simulation::setAvailability(const std::string& id, schema::NodeAvailability availability) {
  updateObject(*this, store.get(Kind::node, id),
               [&](ss::Object::Builder o) { o.getNode().getSpec().setAvailability(availability); });
}

void Simulation::setNodeLabel(const std::string& id, const std::string& key, const std::string& value) {
  updateObject(*this, store.get(Kind::node, id), [&](ss::Object::Builder o) {
    auto annotations = o.getNode().getSpec().getAnnotations();
    std::vector<std::pair<std::string, std::string>> labels;
    for (auto l : annotations.getLabels()) {
      if (std::string(l.getKey().cStr()) != key) labels.emplace_back(l.getKey().cStr(), l.getValue().cStr());
    }
    labels.emplace_back(key, value);
    auto list = annotations.initLabels(static_cast<unsigned>(labels.size()));
    for (unsigned i = 0; i < labels.size(); ++i) {
      list[i].setKey(labels[i].first);
      list[i].setValue(labels[i].second);
    }
  });
}

void Simulation::setHistoryLimit(int64_t limit) {
  updateObject(*this, store.get(Kind::cluster, "cluster0"),
               [&](ss::Object::Builder o) { o.getCluster().getSpec().setTaskHistoryRetentionLimit(limit); });
}

std::string Simulation::createService(const std::string& name, const SpecEdit& edit) {
  capnp::MallocMessageBuilder message;
  auto service = message.initRoot<ss::Object>().initService();
  std::string id = store::newObjectId(random);
  service.setId(id);
  auto spec = service.initSpec();
  spec.initAnnotations().setName(name);
  spec.getMode().setReplicated(1);
  spec.initTask().getRuntime().initContainer().setImage("app:1");
  edit(spec);
  service.initSpecVersion();
  if (spec.getMode().isReplicatedJob() || spec.getMode().isGlobalJob()) service.initJobIteration();
  store::TransactionBuilder tx;
  tx.create(message.getRoot<ss::Object>().asReader());
  REQUIRE(commit(tx).ok());
  return id;
}

void Simulation::updateService(const std::string& id, const SpecEdit& edit) {
  auto ref = store.get(Kind::service, id);
  REQUIRE(ref);
  updateObject(*this, ref, [&](ss::Object::Builder o) {
    auto s = o.getService();
    auto was = ref->service();
    s.getPreviousSpec().setPrevious(was.getSpec());
    s.setPreviousSpecVersion(was.getSpecVersion());
    s.initSpecVersion().setIndex(ref->version());
    s.initUpdateStatus();
    if (was.getSpec().getMode().isReplicatedJob() || was.getSpec().getMode().isGlobalJob()) {
      s.initJobIteration().setIndex(was.getJobIteration().getIndex() + 1);
    }
    edit(s.getSpec());
  });
}

void Simulation::removeService(const std::string& id) {
  auto ref = store.get(Kind::service, id);
  store::TransactionBuilder tx;
  tx.remove(Kind::service, id, ref->version());
  REQUIRE(commit(tx).ok());
}

void Simulation::orchestrate() {
  Plan plan = planOrchestration(store, now, random);
  ++plans;
  for (const auto& tx : plan.transactions) {
    REQUIRE(tx.actionCount() <= store::TransactionBuilder::kMaxActions);
    auto result = commit(tx);
    // Nothing else writes between planning and committing here, so every write must apply.
    INFO("seed " << seed << ": " << result.message);
    REQUIRE(result.ok());
  }
  wakeAt = plan.wakeAt;
  if (afterOrchestrate) afterOrchestrate();
}

void Simulation::schedule() {
  auto batch = pendingTasks(store);
  if (batch.empty()) return;
  capnp::MallocMessageBuilder request;
  auto params = request.initRoot<schema::Scheduler::ScheduleParams>();
  buildSchedulerRequest(store, batch, now, params);
  auto decided = spread::schedule(params.asReader().getNodes(), params.asReader().getTasks());
  capnp::MallocMessageBuilder response;
  auto plan = response.initRoot<schema::Plan>();
  spread::writePlan(decided, plan);
  Plan writes = applySchedulerResult(store, batch, plan.asReader(), now);
  for (const auto& tx : writes.transactions) REQUIRE(commit(tx).ok());
}

std::string Simulation::image(const ObjectRef& task) const {
  return task->task().getSpec().getRuntime().getContainer().getImage().cStr();
}

void Simulation::writeTask(const ObjectRef& ref, uint16_t state, const std::string& err) {
  capnp::MallocMessageBuilder message;
  auto object = message.initRoot<ss::Object>();
  object.setTask(ref->task());
  auto status = object.getTask().getStatus();
  status.setState(state);
  status.setTimestamp(now);
  if (!err.empty()) status.setErr(err);
  store::TransactionBuilder tx;
  tx.update(object.asReader(), ref->version());
  commit(tx);  // a conflict: the agent reports again at its next step
}

void Simulation::agentStep(const ObjectRef& ref) {
  auto task = ref->task();
  uint16_t state = task.getStatus().getState();
  uint16_t desired = task.getDesiredState();
  if (state < schema::TASK_STATE_ASSIGNED || state > schema::TASK_STATE_RUNNING) return;
  if (desired >= schema::TASK_STATE_SHUTDOWN) {
    writeTask(ref, schema::TASK_STATE_SHUTDOWN);
    return;
  }
  bool failing = badImages.count(image(ref)) > 0 || crashing.count(ref->id()) > 0;
  if (state < schema::TASK_STATE_READY) {
    writeTask(ref, schema::TASK_STATE_READY);
  } else if (state == schema::TASK_STATE_READY && desired >= schema::TASK_STATE_RUNNING) {
    writeTask(ref, failing ? schema::TASK_STATE_FAILED : schema::TASK_STATE_RUNNING,
              failing ? "task: non-zero exit (1)" : "");
  } else if (state == schema::TASK_STATE_RUNNING) {
    if (failing) {
      writeTask(ref, schema::TASK_STATE_FAILED, "task: non-zero exit (1)");
      crashing.erase(ref->id());
    } else if (desired == schema::TASK_STATE_COMPLETE && now - task.getStatus().getTimestamp() >= jobDuration) {
      writeTask(ref, schema::TASK_STATE_COMPLETE);
    }
  }
}

void Simulation::agents() {
  for (const auto& n : store.list(Kind::node)) {
    if (n->node().getStatus().getState() != schema::NodeState::READY) continue;
    for (const auto& t : store.tasksOnNode(n->id())) agentStep(t);
  }
}

void Simulation::step(int64_t dt) {
  orchestrate();
  schedule();
  agents();
  orchestrate();
  now += dt;
}

void Simulation::run(int64_t duration, int64_t dt) {
  for (int64_t end = now + duration; now < end;) step(dt);
}

bool Simulation::runUntil(const std::function<bool()>& done, int64_t limit, int64_t dt) {
  for (int64_t end = now + limit; now < end;) {
    if (done()) return true;
    step(dt);
  }
  return done();
}

std::vector<ObjectRef> Simulation::runningTasks(const std::string& serviceId) const {
  std::vector<ObjectRef> out;
  for (const auto& t : tasks(serviceId)) {
    auto task = t->task();
    if (task.getDesiredState() < schema::TASK_STATE_SHUTDOWN && task.getStatus().getState() == schema::TASK_STATE_RUNNING) {
      out.push_back(t);
    }
  }
  return out;
}

std::map<std::string, size_t> Simulation::runningPerNode(const std::string& serviceId) const {
  std::map<std::string, size_t> out;
  for (const auto& t : runningTasks(serviceId)) ++out[t->task().getNodeId().cStr()];
  return out;
}

ss::UpdateState Simulation::updateState(const std::string& serviceId) const {
  return service(serviceId)->service().getUpdateStatus().getState();
}

bool Simulation::settled(const std::string& serviceId, size_t replicas, const std::string& wantedImage) const {
  std::map<uint64_t, size_t> perSlot;
  size_t wantedCount = 0;
  for (const auto& t : tasks(serviceId)) {
    auto task = t->task();
    if (task.getDesiredState() >= schema::TASK_STATE_SHUTDOWN) continue;
    ++wantedCount;
    if (task.getStatus().getState() != schema::TASK_STATE_RUNNING || image(t) != wantedImage) return false;
    ++perSlot[task.getSlot()];
  }
  if (wantedCount != replicas || perSlot.size() != replicas) return false;
  for (const auto& [slot, count] : perSlot) {
    if (count != 1) return false;
  }
  return true;
}

}  // namespace swarm::orchestrator::testing
