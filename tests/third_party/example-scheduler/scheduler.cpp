// example-scheduler: a scheduler plugin written the way a third party writes one: outside the
// swarm-kernel tree, built only against the installed SDK (find_package(SwarmKernelSDK)).
//
// Spread placement, as Docker Swarm does it. A task may go to a node that passes every filter, in
// this order (the first refusal counts):
//   ready        node status READY and availability ACTIVE
//   resources    the task's reserved CPU, memory and generic resources fit NodeInfo.available
//   constraints  every placement constraint holds (key==value / key!=value, values ignore case,
//                a missing label reads as "")
//   platform     one of placement.platforms matches the node (empty = any)
//   max replicas fewer than placement.maxReplicas tasks of the service on the node
// Among those it picks the node with the fewest tasks of the task's service, then the fewest tasks
// overall, then the lowest node ID; a node with 5 or more recent failures of the service goes
// last. Each placement counts towards the next task's choice. A task no node accepts comes back
// unplaced with the refusals counted, e.g.
//   "no suitable node (2 nodes drained; insufficient memory on 3 nodes)".
//
// Pure: no I/O, no clock, no randomness; the same input always gives the same plan.
#include <swarm/sdk.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace {

namespace schema = swarm::schema;

std::string toStd(kj::StringPtr s) { return std::string(s.begin(), s.size()); }

bool equalsIgnoreCase(const std::string& a, const std::string& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string trim(const std::string& s) {
  size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t") - begin + 1);
}

std::string plural(uint32_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// ---- constraints -------------------------------------------------------------------------------

struct Constraint {
  std::string text;  // as written, for reasons
  std::string key;
  bool equal;
  std::string value;
};

// Parses "key==value" / "key!=value"; nullopt plus a reason for anything else, including keys
// this scheduler does not know (refused rather than silently never matching).
std::optional<Constraint> parseConstraint(const std::string& text, std::string& error) {
  size_t op = text.find("==");
  bool equal = true;
  size_t ne = text.find("!=");
  if (ne != std::string::npos && (op == std::string::npos || ne < op)) {
    op = ne;
    equal = false;
  }
  if (op == std::string::npos) {
    error = "invalid constraint '" + text + "': expected <key>==<value> or <key>!=<value>";
    return std::nullopt;
  }
  Constraint c{text, trim(text.substr(0, op)), equal, trim(text.substr(op + 2))};
  if (c.key.empty() || c.value.empty()) {
    error = "invalid constraint '" + text + "': both the key and the value must be non-empty";
    return std::nullopt;
  }
  static const char* const exact[] = {"node.id", "node.hostname", "node.role", "node.platform.os",
                                      "node.platform.arch"};
  bool known = std::find(std::begin(exact), std::end(exact), c.key) != std::end(exact);
  for (const char* prefix : {"node.labels.", "engine.labels."}) {
    std::string p = prefix;
    if (c.key.size() > p.size() && c.key.compare(0, p.size(), p) == 0) known = true;
  }
  if (!known) {
    error = "invalid constraint '" + text + "': unknown key '" + c.key +
            "'; use node.id, node.hostname, node.role, node.platform.os, node.platform.arch, "
            "node.labels.<name> or engine.labels.<name>";
    return std::nullopt;
  }
  return c;
}

std::string labelValue(capnp::List<schema::KeyValue>::Reader labels, const std::string& key) {
  for (auto label : labels) {
    if (toStd(label.getKey()) == key) return toStd(label.getValue());
  }
  return "";  // a missing label compares as the empty string
}

std::string attribute(schema::Node::Reader node, const std::string& key) {
  if (key == "node.id") return toStd(node.getId());
  if (key == "node.hostname") return toStd(node.getDescription().getHostname());
  if (key == "node.role") return node.getRole() == schema::NodeRole::MANAGER ? "manager" : "worker";
  if (key == "node.platform.os") return toStd(node.getDescription().getPlatform().getOs());
  if (key == "node.platform.arch") return toStd(node.getDescription().getPlatform().getArchitecture());
  const std::string nodeLabels = "node.labels.", engineLabels = "engine.labels.";
  if (key.compare(0, nodeLabels.size(), nodeLabels) == 0) {
    return labelValue(node.getSpec().getAnnotations().getLabels(), key.substr(nodeLabels.size()));
  }
  return labelValue(node.getDescription().getEngine().getLabels(), key.substr(engineLabels.size()));
}

std::string normalizeArch(const std::string& arch) {
  if (equalsIgnoreCase(arch, "x86_64")) return "amd64";
  if (equalsIgnoreCase(arch, "aarch64")) return "arm64";
  return arch;
}

// ---- the batch's view of the nodes ---------------------------------------------------------------

// A node as this batch sees it: what the snapshot said, minus what this batch placed on it.
struct Candidate {
  schema::Node::Reader node;
  std::string id;
  int64_t nanoCpus;
  int64_t memoryBytes;
  std::map<std::string, int64_t> generic;  // available units per kind
  std::map<std::string, uint32_t> tasksByService;
  std::map<std::string, uint32_t> recentFailures;
  uint64_t totalTasks;
};

struct Demand {
  int64_t nanoCpus;
  int64_t memoryBytes;
  std::map<std::string, int64_t> generic;
};

std::map<std::string, int64_t> genericUnits(capnp::List<schema::GenericResource>::Reader list) {
  std::map<std::string, int64_t> units;
  for (auto r : list) {
    // A named resource ("gpu" = "GPU-7f3a") is one unit of its kind.
    units[toStd(r.getKind())] += r.isDiscrete() ? r.getDiscrete() : 1;
  }
  return units;
}

std::map<std::string, uint32_t> serviceCounts(capnp::List<schema::ServiceCount>::Reader list) {
  std::map<std::string, uint32_t> counts;
  for (auto c : list) counts[toStd(c.getServiceId())] += c.getCount();
  return counts;
}

// Why a node refused a task. Ordered by filter, so reasons list refusals in pipeline order.
enum class Stage { notReady, paused, drained, resources, constraint, platform, maxReplicas };
using Refusal = std::pair<Stage, std::string>;  // stage, subject (resource kind, constraint text)

std::string describe(const Refusal& refusal, uint32_t nodes) {
  const std::string& subject = refusal.second;
  switch (refusal.first) {
    case Stage::notReady: return plural(nodes, "node", "nodes") + " not ready";
    case Stage::paused: return plural(nodes, "node", "nodes") + " paused";
    case Stage::drained: return plural(nodes, "node", "nodes") + " drained";
    case Stage::resources: return "insufficient " + subject + " on " + plural(nodes, "node", "nodes");
    case Stage::constraint:
      return "constraint " + subject + " not satisfied on " + plural(nodes, "node", "nodes");
    case Stage::platform: return "unsupported platform on " + plural(nodes, "node", "nodes");
    case Stage::maxReplicas: return "max replicas per node reached on " + plural(nodes, "node", "nodes");
  }
  return "refused by " + plural(nodes, "node", "nodes");
}

class Batch {
 public:
  explicit Batch(capnp::List<schema::NodeInfo>::Reader nodes) {
    for (auto info : nodes) {
      auto available = info.getAvailable();
      candidates.push_back(Candidate{info.getNode(), toStd(info.getNode().getId()), available.getNanoCpus(),
                                     available.getMemoryBytes(), genericUnits(available.getGeneric()),
                                     serviceCounts(info.getTasksByService()),
                                     serviceCounts(info.getRecentFailures()), info.getTotalTasks()});
    }
  }

  // The chosen node's ID, or the reason no node was suitable.
  std::pair<std::optional<std::string>, std::string> place(schema::Task::Reader task) {
    auto spec = task.getSpec();
    auto placement = spec.getPlacement();
    std::vector<Constraint> constraints;
    for (auto text : placement.getConstraints()) {
      std::string error;
      auto c = parseConstraint(toStd(text), error);
      if (!c) return {std::nullopt, error};
      constraints.push_back(*c);
    }
    auto reservations = spec.getResources().getReservations();
    Demand demand{reservations.getNanoCpus(), reservations.getMemoryBytes(),
                  genericUnits(reservations.getGeneric())};
    std::string service = toStd(task.getServiceId());

    std::string pinned = toStd(task.getNodeId());
    std::map<Refusal, uint32_t> refusals;
    Candidate* best = nullptr;
    bool pinnedFound = false;
    for (auto& candidate : candidates) {
      // A task that already carries a node (global services) is only checked against that node.
      if (!pinned.empty() && candidate.id != pinned) continue;
      pinnedFound = true;
      if (auto refusal = check(candidate, demand, constraints, placement, service)) {
        ++refusals[*refusal];
      } else if (best == nullptr || rank(candidate, service) < rank(*best, service)) {
        best = &candidate;
      }
    }

    if (best != nullptr) {
      take(*best, demand, service);
      return {best->id, ""};
    }
    if (!pinned.empty() && !pinnedFound) {
      return {std::nullopt, "no suitable node (assigned node " + pinned + " is not in the snapshot)"};
    }
    if (refusals.empty()) return {std::nullopt, "no suitable node (no nodes in the snapshot)"};
    std::string reason = "no suitable node (";
    bool first = true;
    for (auto& [refusal, nodes] : refusals) {
      reason += (first ? "" : "; ") + describe(refusal, nodes);
      first = false;
    }
    return {std::nullopt, reason + ")"};
  }

 private:
  std::vector<Candidate> candidates;

  static std::optional<Refusal> check(const Candidate& c, const Demand& demand,
                                      const std::vector<Constraint>& constraints,
                                      schema::Placement::Reader placement, const std::string& service) {
    if (c.node.getStatus().getState() != schema::NodeState::READY) return Refusal{Stage::notReady, ""};
    switch (c.node.getSpec().getAvailability()) {
      case schema::NodeAvailability::ACTIVE: break;
      case schema::NodeAvailability::PAUSE: return Refusal{Stage::paused, ""};
      case schema::NodeAvailability::DRAIN: return Refusal{Stage::drained, ""};
    }
    // Only non-zero reservations are checked, as in Swarm.
    if (demand.nanoCpus > 0 && demand.nanoCpus > c.nanoCpus) return Refusal{Stage::resources, "cpu"};
    if (demand.memoryBytes > 0 && demand.memoryBytes > c.memoryBytes) return Refusal{Stage::resources, "memory"};
    for (auto& [kind, units] : demand.generic) {
      auto it = c.generic.find(kind);
      if (units > 0 && (it == c.generic.end() || it->second < units)) return Refusal{Stage::resources, kind};
    }
    for (auto& constraint : constraints) {
      if (equalsIgnoreCase(attribute(c.node, constraint.key), constraint.value) != constraint.equal) {
        return Refusal{Stage::constraint, constraint.text};
      }
    }
    if (placement.getPlatforms().size() > 0) {
      auto platform = c.node.getDescription().getPlatform();
      std::string os = toStd(platform.getOs()), arch = normalizeArch(toStd(platform.getArchitecture()));
      bool any = false;
      for (auto p : placement.getPlatforms()) {
        std::string wantOs = toStd(p.getOs()), wantArch = normalizeArch(toStd(p.getArchitecture()));
        any = any || ((wantOs.empty() || equalsIgnoreCase(wantOs, os)) &&
                      (wantArch.empty() || equalsIgnoreCase(wantArch, arch)));
      }
      if (!any) return Refusal{Stage::platform, ""};
    }
    if (placement.getMaxReplicas() > 0 && count(c.tasksByService, service) >= placement.getMaxReplicas()) {
      return Refusal{Stage::maxReplicas, ""};
    }
    return std::nullopt;
  }

  static uint32_t count(const std::map<std::string, uint32_t>& counts, const std::string& service) {
    auto it = counts.find(service);
    return it == counts.end() ? 0 : it->second;
  }

  // Lower is better: healthy first, then spread by service, then by total, then by ID.
  static std::tuple<bool, uint32_t, uint64_t, const std::string&> rank(const Candidate& c,
                                                                       const std::string& service) {
    return {count(c.recentFailures, service) >= 5, count(c.tasksByService, service), c.totalTasks, c.id};
  }

  static void take(Candidate& c, const Demand& demand, const std::string& service) {
    c.nanoCpus -= demand.nanoCpus;
    c.memoryBytes -= demand.memoryBytes;
    for (auto& [kind, units] : demand.generic) c.generic[kind] -= units;
    ++c.tasksByService[service];
    ++c.totalTasks;
  }
};

class ExampleScheduler final : public swarm::sdk::PluginServer<schema::Scheduler> {
 public:
  kj::Promise<void> schedule(ScheduleContext context) override {
    auto params = context.getParams();
    auto tasks = params.getTasks();
    Batch batch(params.getNodes());

    // Pre-assigned tasks (global services) first, as Swarm does, then the rest in input order.
    std::vector<uint32_t> order;
    for (uint32_t i = 0; i < tasks.size(); ++i) {
      if (tasks[i].getNodeId().size() > 0) order.push_back(i);
    }
    for (uint32_t i = 0; i < tasks.size(); ++i) {
      if (tasks[i].getNodeId().size() == 0) order.push_back(i);
    }

    std::vector<std::pair<uint32_t, std::string>> assigned, unplaced;
    for (uint32_t i : order) {
      auto [node, reason] = batch.place(tasks[i]);
      if (node) {
        assigned.emplace_back(i, *node);
      } else {
        unplaced.emplace_back(i, reason);
      }
    }

    auto plan = context.getResults().initPlan();
    auto outAssigned = plan.initAssignments(assigned.size());
    for (uint32_t i = 0; i < assigned.size(); ++i) {
      outAssigned[i].setTaskId(tasks[assigned[i].first].getId());
      outAssigned[i].setNodeId(assigned[i].second);
    }
    auto outUnplaced = plan.initUnplaced(unplaced.size());
    for (uint32_t i = 0; i < unplaced.size(); ++i) {
      outUnplaced[i].setTaskId(tasks[unplaced[i].first].getId());
      outUnplaced[i].setReason(unplaced[i].second);
    }
    return kj::READY_NOW;
  }
};

}  // namespace

SWARM_PLUGIN(SWARM_PLUGIN_KIND_SCHEDULER, "example-scheduler", "0.1.0", ExampleScheduler)
