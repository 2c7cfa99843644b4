// Feeds a snapshot in and asserts on the plan: nodes and tasks are plain structs, turned into the
// schema's ScheduleParams and either handed to the pure core (runCore: serialized and read back
// with default reader limits, as the plugin would read it) or sent through the real plugin
// boundary (Plugin: the kernel's PluginInstance, in or out of process). Plans come back as
// ordered maps, so results from both paths compare with ==.
#pragma once

#include "plugin_host.h"

#include <swarm/schema/scheduler.capnp.h>

#include <kj/async-io.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace swarm::spread::test {

constexpr int64_t kGiB = int64_t(1) << 30;
constexpr int64_t kCpu = 1000000000;  // nanoCPUs in one CPU

// The seed for randomised tests: SCHEDULER_SPREAD_TEST_SEED, or a fixed default. Tests print it
// on failure (INFO) so a run can be replayed.
uint64_t testSeed();

struct Generic {
  std::string kind;
  int64_t count = 0;  // discrete
  std::string name;   // named unit when not empty
};

struct Port {
  uint32_t port;
  schema::PortConfig::Protocol protocol = schema::PortConfig::Protocol::TCP;
};

using Labels = std::vector<std::pair<std::string, std::string>>;
using Counts = std::vector<std::pair<std::string, uint32_t>>;

struct NodeDef {
  std::string id;
  std::string hostname;
  schema::NodeRole role = schema::NodeRole::WORKER;
  schema::NodeState state = schema::NodeState::READY;
  schema::NodeAvailability availability = schema::NodeAvailability::ACTIVE;
  Labels labels;
  Labels engineLabels;
  std::string os = "linux";
  std::string arch = "x86_64";
  std::string addr;
  int64_t memory = 16 * kGiB;   // available
  int64_t nanoCpus = 8 * kCpu;  // available
  std::vector<Generic> generic;
  Counts tasksByService;
  uint32_t totalTasks = 0;
  Counts recentFailures;
  std::vector<Port> hostPorts;
};

// A ready, active worker "host-<id>" with 16 GiB and 8 CPUs available.
NodeDef node(std::string id);
// node-1 .. node-<count>.
std::vector<NodeDef> nodes(int count);

struct TaskDef {
  std::string id;
  std::string serviceId = "svc-1";
  uint64_t specVersion = 1;
  uint64_t slot = 1;
  std::string nodeId;  // preset (global service)
  int64_t memory = 0;
  int64_t nanoCpus = 0;
  std::vector<Generic> generic;
  std::vector<std::string> constraints;
  std::vector<std::string> preferences;  // spread descriptors
  uint64_t maxReplicas = 0;
  std::vector<std::pair<std::string, std::string>> platforms;  // (os, arch)
  std::vector<Port> hostPorts;
};

// `count` tasks of `service` with IDs "<prefix>-1".., slots 1..count, and `shape`'s spec.
// The tasks of several batches, in order.
std::vector<TaskDef> concat(std::initializer_list<std::vector<TaskDef>> parts);

std::vector<TaskDef> replicas(const std::string& prefix, const std::string& service, int count,
                              const TaskDef& shape = {});

struct Result {
  std::map<std::string, std::string> assigned;  // task -> node
  std::map<std::string, std::string> unplaced;  // task -> reason
  std::vector<std::string> order;               // task IDs as the plan lists them

  std::map<std::string, int> perNode() const;
  int on(const std::string& node) const;
  std::string nodeOf(const std::string& task) const;  // "" if unplaced
  std::string reason(const std::string& task) const;  // "" if placed
  bool operator==(const Result& o) const { return assigned == o.assigned && unplaced == o.unplaced; }
};

std::string describe(const Result& result);

void fillRequest(schema::Scheduler::ScheduleParams::Builder request,
                 const std::vector<NodeDef>& nodes, const std::vector<TaskDef>& tasks);
Result readPlan(schema::Plan::Reader plan);

// The pure core: schedule() + writePlan() on an in-memory message.
Result runCore(const std::vector<NodeDef>& nodes, const std::vector<TaskDef>& tasks);
// The error schedule() refuses the batch with ("" if it does not).
std::string coreError(const std::vector<NodeDef>& nodes, const std::vector<TaskDef>& tasks);

// scheduler-spread.so through the kernel's PluginInstance.
class Plugin {
 public:
  enum class Isolation { inProcess, outOfProcess };
  explicit Plugin(Isolation isolation = Isolation::inProcess);
  ~Plugin() noexcept(false);

  Result schedule(const std::vector<NodeDef>& nodes, const std::vector<TaskDef>& tasks);
  // The error the call fails with ("" if it succeeds).
  std::string scheduleError(const std::vector<NodeDef>& nodes, const std::vector<TaskDef>& tasks);
  schema::Scheduler::Client& client() { return scheduler; }
  kj::WaitScope& waitScope() { return io.waitScope; }

 private:
  kj::AsyncIoContext io;
  kj::Own<kernel::PluginInstance> instance;
  schema::Scheduler::Client scheduler;
};

// Starts the plugin with `settings` and returns why configure() refused them ("" if it did not).
std::string configureError(std::vector<std::pair<std::string, std::string>> settings);

bool contains(const std::string& text, const std::string& part);

}  // namespace swarm::spread::test
