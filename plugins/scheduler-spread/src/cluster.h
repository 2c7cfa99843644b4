// The node snapshot of one schedule() call, read once from the request into flat arrays, plus
// everything the batch changes as it places tasks: available resources, host ports in use, task
// counts. Nothing outlives the call; strings are views into the request message.
#pragma once

#include "constraint.h"
#include "intern.h"

#include <swarm/schema/scheduler.capnp.h>

#include <kj/string.h>

#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace swarm::spread {

// Refuses the whole call: bad input from the caller, with what is wrong and what to do.
[[noreturn]] void refuse(kj::String message);

inline std::string_view view(capnp::Text::Reader text) { return {text.begin(), text.size()}; }

// Swarm's failure threshold: a node with this many recent failures of the service sorts last.
constexpr uint32_t kMaxRecentFailures = 5;

// Why the ready filter turns a node down (or `ready`). State is checked before availability.
enum class Readiness : uint8_t { ready, down, disconnected, unknown, paused, drained };

struct Label {
  uint32_t key;           // Cluster::labelKeys
  uint32_t value;         // Cluster::values (case folded)
  std::string_view text;  // the value as written, for spread branches
};

// One kind of generic resource on one node: a count and/or named units (one per entry).
struct GenericPool {
  uint32_t kind;  // Cluster::kinds
  int64_t discrete = 0;
  uint32_t namedBegin = 0, namedEnd = 0;  // into Cluster::named, sorted by name
  uint32_t namedFree = 0;
};

struct NamedUnit {
  uint32_t name;  // Cluster::names
  std::string_view text;
  bool taken = false;
};

struct Node {
  kj::StringPtr id;
  uint32_t idRank = 0;  // position in node ID order: the final tie-break
  Readiness readiness = Readiness::unknown;
  // Constraint attributes as Cluster::values IDs; a missing one is "".
  uint32_t idValue = 0, hostname = 0, role = 0, os = 0, arch = 0;
  uint32_t platformArch = 0;  // arch with x86_64 -> amd64 and aarch64 -> arm64
  bool hasIp = false;
  IpAddress ip;
  uint32_t labelsBegin = 0, labelsEnd = 0;              // Cluster::labels: node.labels.*
  uint32_t engineLabelsBegin = 0, engineLabelsEnd = 0;  // Cluster::labels: engine.labels.*
  uint32_t poolsBegin = 0, poolsEnd = 0;                // Cluster::pools

  // Changed by placements.
  int64_t nanoCpus = 0, memoryBytes = 0;  // available
  uint32_t totalTasks = 0;
  std::vector<uint64_t> hostPorts;  // hostPortKey()s in use
};

inline uint64_t hostPortKey(uint32_t protocol, uint32_t port) {
  return (uint64_t(protocol) << 32) | port;
}

class Cluster {
 public:
  // Reads `infos`. Per-service counts are kept only for the services in `services` (the batch's);
  // the rest only matter through NodeInfo.totalTasks. Refuses a node without an ID or a repeated
  // one.
  Cluster(capnp::List<schema::NodeInfo>::Reader infos, const Interner& services);
  KJ_DISALLOW_COPY(Cluster);

  uint32_t size() const { return static_cast<uint32_t>(nodes.size()); }
  uint32_t findNode(std::string_view id) const;  // kNone if absent

  // The value ID of label `key` among labels [begin, end), or the ID of "" when the node lacks it.
  uint32_t labelValue(uint32_t begin, uint32_t end, uint32_t key) const;
  std::string_view labelText(uint32_t begin, uint32_t end, uint32_t key) const;
  const GenericPool* pool(const Node& node, uint32_t kind) const;
  GenericPool* pool(const Node& node, uint32_t kind);

  // Active tasks of `service` on `node`, counting this batch's placements.
  uint32_t serviceTasks(uint32_t service, uint32_t node) const;
  void addServiceTask(uint32_t service, uint32_t node);
  // Nodes where serviceTasks() may be non-zero.
  const std::vector<uint32_t>& nodesWithService(uint32_t service) const {
    return serviceNodes[service];
  }
  // Nodes with at least kMaxRecentFailures recent failures of `service`, with the count.
  const std::vector<std::pair<uint32_t, uint32_t>>& failingNodes(uint32_t service) const {
    return failing[service];
  }

  std::vector<Node> nodes;
  std::vector<Label> labels;
  std::vector<GenericPool> pools;
  std::vector<NamedUnit> named;
  Interner labelKeys{Interner::Case::sensitive};
  Interner values{Interner::Case::folded};  // ID 0 is ""
  Interner kinds{Interner::Case::sensitive};
  Interner names{Interner::Case::sensitive};

 private:
  static uint64_t key(uint32_t service, uint32_t node) { return (uint64_t(service) << 32) | node; }

  std::unordered_map<std::string_view, uint32_t> byId;
  std::unordered_map<uint64_t, uint32_t> serviceCounts;
  std::vector<std::vector<uint32_t>> serviceNodes;
  std::vector<std::vector<std::pair<uint32_t, uint32_t>>> failing;
};

// Architecture names as the platform filter compares them.
std::string_view normalizeArch(std::string_view arch);

}  // namespace swarm::spread
