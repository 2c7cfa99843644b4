#include "fake_scheduler.h"

#include <kj/debug.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <string>
#include <vector>

namespace swarm::fakes {
namespace {

// A node as the batch sees it: what it offers, minus what this batch has already put on it.
struct Candidate {
  std::string id;
  schema::Node::Reader node;
  schema::NodeInfo::Reader info;
  int64_t memory = 0;
  int64_t nanoCpus = 0;
  std::map<std::string, uint32_t> perService;
  uint32_t total = 0;
};

struct Constraint {
  std::string key;
  bool equal = true;
  std::string value;
};

std::string trim(const std::string& s) {
  auto begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t") - begin + 1);
}

bool equalsIgnoringCase(const std::string& a, const std::string& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// "key==value" or "key!=value"; an empty result means the text is malformed.
kj::Maybe<Constraint> parseConstraint(const std::string& text) {
  Constraint c;
  auto op = text.find("==");
  if (op == std::string::npos) {
    op = text.find("!=");
    c.equal = false;
  }
  if (op == std::string::npos) return nullptr;
  c.key = trim(text.substr(0, op));
  c.value = trim(text.substr(op + 2));
  if (c.key.empty() || c.value.find_first_of("=!") != std::string::npos) return nullptr;
  return kj::mv(c);
}

kj::Maybe<std::string> label(capnp::List<schema::KeyValue>::Reader labels, const std::string& key) {
  for (auto kv : labels) {
    if (kv.getKey() == key.c_str()) return std::string(kv.getValue().cStr());
  }
  return nullptr;
}

// Swarm's rules: values compare ignoring case, a missing attribute is "", an unknown key never
// matches.
bool matches(const Constraint& c, const Candidate& n) {
  std::string have;
  auto node = n.node;
  if (c.key == "node.id") {
    have = node.getId();
  } else if (c.key == "node.hostname") {
    have = node.getDescription().getHostname();
  } else if (c.key == "node.role") {
    have = node.getRole() == schema::NodeRole::MANAGER ? "manager" : "worker";
  } else if (c.key == "node.ip") {
    have = node.getStatus().getAddr();
  } else if (c.key == "node.platform.os") {
    have = node.getDescription().getPlatform().getOs();
  } else if (c.key == "node.platform.arch") {
    have = node.getDescription().getPlatform().getArchitecture();
  } else if (c.key.rfind("node.labels.", 0) == 0) {
    KJ_IF_MAYBE (v, label(node.getSpec().getAnnotations().getLabels(), c.key.substr(12))) {
      have = *v;
    }
  } else if (c.key.rfind("engine.labels.", 0) == 0) {
    KJ_IF_MAYBE (v, label(node.getDescription().getEngine().getLabels(), c.key.substr(14))) {
      have = *v;
    }
  } else {
    return false;
  }
  return equalsIgnoringCase(have, c.value) == c.equal;
}

// Why nodes were refused, counted for the unplaced reason, in filter order.
enum Refusal { NOT_READY, PAUSED, DRAINED, MEMORY, CPU, CONSTRAINTS, MAX_REPLICAS, REFUSAL_COUNT };

const char* refusalText(Refusal r, bool plural) {
  switch (r) {
    case NOT_READY:
      return plural ? "nodes not ready" : "node not ready";
    case PAUSED:
      return plural ? "nodes paused" : "node paused";
    case DRAINED:
      return plural ? "nodes drained" : "node drained";
    case MEMORY:
      return "insufficient memory on";
    case CPU:
      return "insufficient CPU on";
    case CONSTRAINTS:
      return "scheduling constraints not satisfied on";
    case MAX_REPLICAS:
      return "max replicas per node reached on";
    case REFUSAL_COUNT:
      break;
  }
  return "?";
}

std::string reasonText(const unsigned (&counts)[REFUSAL_COUNT]) {
  std::string parts;
  for (int r = 0; r < REFUSAL_COUNT; ++r) {
    unsigned n = counts[r];
    if (n == 0) continue;
    if (!parts.empty()) parts += "; ";
    bool plural = n != 1;
    if (r == NOT_READY || r == PAUSED || r == DRAINED) {
      parts += std::to_string(n) + " " + refusalText(Refusal(r), plural);
    } else {
      parts += std::string(refusalText(Refusal(r), plural)) + " " + std::to_string(n) +
               (plural ? " nodes" : " node");
    }
  }
  return "no suitable node (" + parts + ")";
}

kj::Maybe<Refusal> refusal(const Candidate& n, schema::Task::Reader task,
                           const std::vector<Constraint>& constraints) {
  if (n.node.getStatus().getState() != schema::NodeState::READY) return NOT_READY;
  switch (n.node.getSpec().getAvailability()) {
    case schema::NodeAvailability::ACTIVE:
      break;
    case schema::NodeAvailability::PAUSE:
      return PAUSED;
    case schema::NodeAvailability::DRAIN:
      return DRAINED;
  }
  auto reserve = task.getSpec().getResources().getReservations();
  if (reserve.getMemoryBytes() > 0 && reserve.getMemoryBytes() > n.memory) return MEMORY;
  if (reserve.getNanoCpus() > 0 && reserve.getNanoCpus() > n.nanoCpus) return CPU;
  for (auto& c : constraints) {
    if (!matches(c, n)) return CONSTRAINTS;
  }
  uint64_t maxReplicas = task.getSpec().getPlacement().getMaxReplicas();
  if (maxReplicas > 0) {
    auto it = n.perService.find(task.getServiceId());
    if (it != n.perService.end() && it->second >= maxReplicas) return MAX_REPLICAS;
  }
  return nullptr;
}

// Spread: fewest tasks of the service, then fewest tasks overall, then node ID.
bool better(const Candidate& a, const Candidate& b, const std::string& service) {
  auto count = [&](const Candidate& n) {
    auto it = n.perService.find(service);
    return it == n.perService.end() ? 0u : it->second;
  };
  if (count(a) != count(b)) return count(a) < count(b);
  if (a.total != b.total) return a.total < b.total;
  return a.id < b.id;
}

}  // namespace

kj::Promise<void> FakeScheduler::schedule(ScheduleContext context) {
  auto params = context.getParams();
  std::vector<Candidate> nodes;
  for (auto info : params.getNodes()) {
    Candidate c;
    c.node = info.getNode();
    c.info = info;
    c.id = c.node.getId();
    c.memory = info.getAvailable().getMemoryBytes();
    c.nanoCpus = info.getAvailable().getNanoCpus();
    for (auto sc : info.getTasksByService()) c.perService[sc.getServiceId()] += sc.getCount();
    c.total = info.getTotalTasks();
    nodes.push_back(kj::mv(c));
  }
  std::sort(nodes.begin(), nodes.end(),
            [](const Candidate& a, const Candidate& b) { return a.id < b.id; });

  struct Decision {
    std::string taskId, nodeId, reason;
  };
  std::vector<Decision> decisions;
  for (auto task : params.getTasks()) {
    Decision d{task.getId(), "", ""};
    std::vector<Constraint> constraints;
    for (auto text : task.getSpec().getPlacement().getConstraints()) {
      KJ_IF_MAYBE (c, parseConstraint(text)) {
        constraints.push_back(kj::mv(*c));
      } else {
        d.reason =
            kj::str("invalid constraint '", text, "': write it as key==value or key!=value").cStr();
      }
    }
    std::string preset = task.getNodeId();
    if (d.reason.empty() && params.getNodes().size() == 0) {
      d.reason = "no suitable node (no nodes in the cluster)";
    }
    if (d.reason.empty()) {
      unsigned counts[REFUSAL_COUNT] = {};
      Candidate* best = nullptr;
      bool presetFound = false;
      for (auto& n : nodes) {
        if (!preset.empty() && n.id != preset) continue;
        presetFound = true;
        KJ_IF_MAYBE (r, refusal(n, task, constraints)) {
          ++counts[*r];
          continue;
        }
        if (best == nullptr || better(n, *best, task.getServiceId())) best = &n;
      }
      if (!preset.empty() && !presetFound) {
        d.reason = "node " + preset + " is not in the cluster";
      } else if (best == nullptr) {
        d.reason = reasonText(counts);
      } else {
        auto reserve = task.getSpec().getResources().getReservations();
        best->memory -= reserve.getMemoryBytes();
        best->nanoCpus -= reserve.getNanoCpus();
        ++best->perService[task.getServiceId()];
        ++best->total;
        d.nodeId = best->id;
      }
    }
    decisions.push_back(kj::mv(d));
  }

  unsigned assigned = 0;
  for (auto& d : decisions) assigned += d.nodeId.empty() ? 0 : 1;
  auto plan = context.getResults().initPlan();
  auto assignments = plan.initAssignments(assigned);
  auto unplaced = plan.initUnplaced(static_cast<unsigned>(decisions.size()) - assigned);
  unsigned a = 0, u = 0;
  for (auto& d : decisions) {
    if (!d.nodeId.empty()) {
      assignments[a].setTaskId(d.taskId);
      assignments[a++].setNodeId(d.nodeId);
    } else {
      unplaced[u].setTaskId(d.taskId);
      unplaced[u++].setReason(d.reason);
    }
  }
  return kj::READY_NOW;
}

}  // namespace swarm::fakes
