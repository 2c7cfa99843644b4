#include "harness.h"

#include "scheduler.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/debug.h>

#include <cstdlib>

namespace swarm::spread::test {
namespace {

constexpr auto kCallLimit = 60 * kj::SECONDS;

void setLabels(capnp::List<schema::KeyValue>::Builder out, const Labels& labels) {
  for (unsigned i = 0; i < labels.size(); ++i) {
    out[i].setKey(labels[i].first);
    out[i].setValue(labels[i].second);
  }
}

void setGeneric(capnp::List<schema::GenericResource>::Builder out,
                const std::vector<Generic>& generic) {
  for (unsigned i = 0; i < generic.size(); ++i) {
    out[i].setKind(generic[i].kind);
    if (generic[i].name.empty()) {
      out[i].setDiscrete(generic[i].count);
    } else {
      out[i].setNamed(generic[i].name);
    }
  }
}

void setCounts(capnp::List<schema::ServiceCount>::Builder out, const Counts& counts) {
  for (unsigned i = 0; i < counts.size(); ++i) {
    out[i].setServiceId(counts[i].first);
    out[i].setCount(counts[i].second);
  }
}

void setPorts(capnp::List<schema::PortConfig>::Builder out, const std::vector<Port>& ports) {
  for (unsigned i = 0; i < ports.size(); ++i) {
    out[i].setProtocol(ports[i].protocol);
    out[i].setTargetPort(ports[i].port);
    out[i].setPublishedPort(ports[i].port);
    out[i].setPublishMode(schema::PortConfig::PublishMode::HOST);
  }
}

void fillNode(schema::NodeInfo::Builder info, const NodeDef& d) {
  auto n = info.initNode();
  n.setId(d.id);
  auto spec = n.initSpec();
  setLabels(spec.initAnnotations().initLabels(static_cast<unsigned>(d.labels.size())), d.labels);
  spec.setDesiredRole(d.role);
  spec.setMembership(schema::NodeMembership::ACCEPTED);
  spec.setAvailability(d.availability);
  auto description = n.initDescription();
  description.setHostname(d.hostname);
  auto platform = description.initPlatform();
  platform.setOs(d.os);
  platform.setArchitecture(d.arch);
  auto total = description.initResources();
  total.setMemoryBytes(d.memory);
  total.setNanoCpus(d.nanoCpus);
  setLabels(description.initEngine().initLabels(static_cast<unsigned>(d.engineLabels.size())),
            d.engineLabels);
  auto status = n.initStatus();
  status.setState(d.state);
  status.setAddr(d.addr);
  n.setRole(d.role);
  auto available = info.initAvailable();
  available.setMemoryBytes(d.memory);
  available.setNanoCpus(d.nanoCpus);
  setGeneric(available.initGeneric(static_cast<unsigned>(d.generic.size())), d.generic);
  setCounts(info.initTasksByService(static_cast<unsigned>(d.tasksByService.size())),
            d.tasksByService);
  info.setTotalTasks(d.totalTasks);
  setCounts(info.initRecentFailures(static_cast<unsigned>(d.recentFailures.size())),
            d.recentFailures);
  setPorts(info.initHostPorts(static_cast<unsigned>(d.hostPorts.size())), d.hostPorts);
}

void fillTask(schema::Task::Builder t, const TaskDef& d) {
  t.setId(d.id);
  t.setServiceId(d.serviceId);
  t.initSpecVersion().setIndex(d.specVersion);
  t.setSlot(d.slot);
  t.setNodeId(d.nodeId);
  auto spec = t.initSpec();
  spec.getRuntime().initContainer().setImage("swarm-test/busybox:latest");
  auto reservations = spec.initResources().initReservations();
  reservations.setMemoryBytes(d.memory);
  reservations.setNanoCpus(d.nanoCpus);
  setGeneric(reservations.initGeneric(static_cast<unsigned>(d.generic.size())), d.generic);
  auto placement = spec.initPlacement();
  auto constraints = placement.initConstraints(static_cast<unsigned>(d.constraints.size()));
  for (unsigned i = 0; i < d.constraints.size(); ++i) constraints.set(i, d.constraints[i]);
  auto preferences = placement.initPreferences(static_cast<unsigned>(d.preferences.size()));
  for (unsigned i = 0; i < d.preferences.size(); ++i) {
    preferences[i].setSpreadDescriptor(d.preferences[i]);
  }
  placement.setMaxReplicas(d.maxReplicas);
  auto platforms = placement.initPlatforms(static_cast<unsigned>(d.platforms.size()));
  for (unsigned i = 0; i < d.platforms.size(); ++i) {
    platforms[i].setOs(d.platforms[i].first);
    platforms[i].setArchitecture(d.platforms[i].second);
  }
  auto status = t.initStatus();
  status.setState(schema::TASK_STATE_PENDING);
  setPorts(status.initPorts(static_cast<unsigned>(d.hostPorts.size())), d.hostPorts);
  t.setDesiredState(schema::TASK_STATE_RUNNING);
}

std::string errorOf(kj::Maybe<kj::Exception> failure) {
  KJ_IF_MAYBE(e, failure) { return e->getDescription().cStr(); }
  return {};
}

kj::Own<kernel::PluginInstance> startPlugin(
    kj::AsyncIoContext& io, std::vector<std::pair<std::string, std::string>> settings,
    bool outOfProcess) {
  kernel::PluginConfig config;
  config.kind = schema::Kind::SCHEDULER;
  config.library = SCHEDULER_SPREAD_PLUGIN;
  config.isolation = outOfProcess ? kernel::Isolation::outOfProcess : kernel::Isolation::inProcess;
  config.onCrash = kernel::CrashPolicy::stop;
  config.settings = std::move(settings);
  kernel::PluginInstance::Options options;
  options.runnerPath = SWARM_PLUGIN_RUNNER;
  return kernel::PluginInstance::start(io, config, options);
}

}  // namespace

uint64_t testSeed() {
  const char* env = getenv("SCHEDULER_SPREAD_TEST_SEED");
  return env != nullptr ? strtoull(env, nullptr, 10) : 20261125;
}

NodeDef node(std::string id) {
  NodeDef n;
  n.hostname = "host-" + id;
  n.id = std::move(id);
  return n;
}

std::vector<NodeDef> nodes(int count) {
  std::vector<NodeDef> out;
  for (int i = 1; i <= count; ++i) out.push_back(node("node-" + std::to_string(i)));
  return out;
}

std::vector<TaskDef> replicas(const std::string& prefix, const std::string& service, int count,
                              const TaskDef& shape) {
  std::vector<TaskDef> out;
  for (int i = 1; i <= count; ++i) {
    TaskDef t = shape;
    t.id = prefix + "-" + std::to_string(i);
    t.serviceId = service;
    t.slot = static_cast<uint64_t>(i);
    out.push_back(std::move(t));
  }
  return out;
}

std::map<std::string, int> Result::perNode() const {
  std::map<std::string, int> counts;
  for (auto& [task, n] : assigned) ++counts[n];
  return counts;
}

int Result::on(const std::string& n) const {
  int count = 0;
  for (auto& [task, where] : assigned) count += where == n;
  return count;
}

std::string Result::nodeOf(const std::string& task) const {
  auto it = assigned.find(task);
  return it == assigned.end() ? std::string() : it->second;
}

std::string Result::reason(const std::string& task) const {
  auto it = unplaced.find(task);
  return it == unplaced.end() ? std::string() : it->second;
}

std::string describe(const Result& result) {
  std::string s = "assigned {";
  for (auto& [t, n] : result.assigned) s += " " + t + "->" + n;
  s += " } unplaced {";
  for (auto& [t, r] : result.unplaced) s += " " + t + " (" + r + ")";
  return s + " }";
}

void fillRequest(schema::Scheduler::ScheduleParams::Builder request,
                 const std::vector<NodeDef>& nodes, const std::vector<TaskDef>& tasks) {
  auto nodeList = request.initNodes(static_cast<unsigned>(nodes.size()));
  for (unsigned i = 0; i < nodes.size(); ++i) fillNode(nodeList[i], nodes[i]);
  auto taskList = request.initTasks(static_cast<unsigned>(tasks.size()));
  for (unsigned i = 0; i < tasks.size(); ++i) fillTask(taskList[i], tasks[i]);
}

Result readPlan(schema::Plan::Reader plan) {
  Result result;
  for (auto a : plan.getAssignments()) {
    std::string task = a.getTaskId();
    KJ_ASSERT(result.assigned.emplace(task, a.getNodeId()).second, "assigned twice", task);
    result.order.push_back(task);
  }
  for (auto u : plan.getUnplaced()) {
    std::string task = u.getTaskId();
    KJ_ASSERT(result.unplaced.emplace(task, u.getReason()).second, "unplaced twice", task);
    KJ_ASSERT(!result.assigned.count(task), "both assigned and unplaced", task);
    result.order.push_back(task);
  }
  return result;
}

Result runCore(const std::vector<NodeDef>& nodes, const std::vector<TaskDef>& tasks) {
  capnp::MallocMessageBuilder request;
  fillRequest(request.initRoot<schema::Scheduler::ScheduleParams>(), nodes, tasks);
  // Read back from bytes with default limits: what the plugin's RPC layer hands it.
  auto words = capnp::messageToFlatArray(request);
  capnp::FlatArrayMessageReader reader(words);
  auto params = reader.getRoot<schema::Scheduler::ScheduleParams>();
  Plan plan = spread::schedule(params.getNodes(), params.getTasks());
  capnp::MallocMessageBuilder reply;
  auto out = reply.initRoot<schema::Plan>();
  writePlan(plan, out);
  return readPlan(out.asReader());
}

std::string coreError(const std::vector<NodeDef>& nodes, const std::vector<TaskDef>& tasks) {
  return errorOf(kj::runCatchingExceptions([&]() { runCore(nodes, tasks); }));
}

Plugin::Plugin(Isolation isolation) : io(kj::setupAsyncIo()), scheduler(nullptr) {
  instance = startPlugin(io, {}, isolation == Isolation::outOfProcess);
  instance->configure().wait(io.waitScope);
  scheduler = instance->bootstrap().castAs<schema::Scheduler>();
}

Plugin::~Plugin() noexcept(false) {
  scheduler = nullptr;
  if (instance) instance->stop().wait(io.waitScope);
}

Result Plugin::schedule(const std::vector<NodeDef>& nodes, const std::vector<TaskDef>& tasks) {
  auto request = scheduler.scheduleRequest();
  fillRequest(request, nodes, tasks);
  auto response =
      request.send()
          .exclusiveJoin(io.provider->getTimer().afterDelay(kCallLimit).then(
              []() -> capnp::Response<schema::Scheduler::ScheduleResults> {
                KJ_FAIL_REQUIRE("schedule(): no answer within 60 s");
              }))
          .wait(io.waitScope);
  return readPlan(response.getPlan());
}

std::string Plugin::scheduleError(const std::vector<NodeDef>& nodes,
                                  const std::vector<TaskDef>& tasks) {
  return errorOf(kj::runCatchingExceptions([&]() { schedule(nodes, tasks); }));
}

std::string configureError(std::vector<std::pair<std::string, std::string>> settings) {
  auto io = kj::setupAsyncIo();
  auto instance = startPlugin(io, std::move(settings), false);
  std::string error =
      errorOf(kj::runCatchingExceptions([&]() { instance->configure().wait(io.waitScope); }));
  instance->stop().wait(io.waitScope);
  return error;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::vector<TaskDef> concat(std::initializer_list<std::vector<TaskDef>> parts) {
  std::vector<TaskDef> out;
  for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

}  // namespace swarm::spread::test
