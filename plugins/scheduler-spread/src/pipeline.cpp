#include "pipeline.h"

#include <kj/vector.h>

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

namespace swarm::spread {
namespace {

kj::ArrayPtr<const char> chars(std::string_view s) { return {s.data(), s.size()}; }

bool matches(const CompiledConstraint& c, const Cluster& cluster, const Node& node) {
  using A = Constraint::Attribute;
  uint32_t have = 0;
  switch (c.parsed.attribute) {
    case A::nodeId:
      have = node.idValue;
      break;
    case A::hostname:
      have = node.hostname;
      break;
    case A::role:
      have = node.role;
      break;
    case A::os:
      have = node.os;
      break;
    case A::arch:
      have = node.arch;
      break;
    case A::nodeLabel:
      have = c.labelKey == kNone ? 0 : cluster.labelValue(node.labelsBegin, node.labelsEnd, c.labelKey);
      break;
    case A::engineLabel:
      have = c.labelKey == kNone
                 ? 0
                 : cluster.labelValue(node.engineLabelsBegin, node.engineLabelsEnd, c.labelKey);
      break;
    case A::ip: {
      // A malformed address or block never matches, with either operator (Swarm).
      if (!c.ip.valid) return false;
      bool within = node.hasIp && c.ip.matches(node.ip);
      return within == c.parsed.equal;
    }
    case A::unknown:
      return false;
  }
  return (have == c.value) == c.parsed.equal;
}

const NamedUnit* findUnit(const Cluster& cluster, const GenericPool* pool, uint32_t name) {
  if (pool == nullptr) return nullptr;
  for (uint32_t i = pool->namedBegin; i < pool->namedEnd; ++i) {
    if (cluster.named[i].name == name) return &cluster.named[i];
  }
  return nullptr;
}

Refusal checkResources(const Group& group, const Cluster& cluster, const Node& node) {
  if (group.key.nanoCpus > node.nanoCpus) return {Filter::resources, 0};
  if (group.key.memoryBytes > node.memoryBytes) return {Filter::resources, 1};
  const uint32_t kindCount = static_cast<uint32_t>(group.kinds.size());
  for (uint32_t i = 0; i < kindCount; ++i) {
    auto& k = group.kinds[i];
    const GenericPool* p = k.kind == kNone ? nullptr : cluster.pool(node, k.kind);
    int64_t available = p == nullptr ? 0 : p->discrete + p->namedFree;
    // Units the task asks for by name are not there for its counted request of the same kind.
    for (auto& n : group.namedUnits) {
      if (n.kind == k.kind) --available;
    }
    if (available < k.count) return {Filter::resources, 2 + i};
  }
  for (uint32_t j = 0; j < group.namedUnits.size(); ++j) {
    auto& n = group.namedUnits[j];
    const NamedUnit* unit =
        n.kind == kNone ? nullptr : findUnit(cluster, cluster.pool(node, n.kind), n.name);
    if (unit == nullptr || unit->taken) return {Filter::resources, 2 + kindCount + j};
  }
  return {};
}

Refusal checkPorts(const Group& group, const Node& node) {
  for (uint32_t i = 0; i < group.key.hostPorts.size(); ++i) {
    if (std::find(node.hostPorts.begin(), node.hostPorts.end(), group.key.hostPorts[i]) !=
        node.hostPorts.end()) {
      return {Filter::hostPorts, i};
    }
  }
  return {};
}

kj::String nodeCount(uint32_t n) { return n == 1 ? kj::str("1 node") : kj::str(n, " nodes"); }

const char* protocolName(uint32_t protocol) {
  switch (static_cast<schema::PortConfig::Protocol>(protocol)) {
    case schema::PortConfig::Protocol::TCP:
      return "tcp";
    case schema::PortConfig::Protocol::UDP:
      return "udp";
    case schema::PortConfig::Protocol::SCTP:
      return "sctp";
  }
  return "?";
}

const char* readinessWord(Readiness r) {
  switch (r) {
    case Readiness::ready:
      return "ready";
    case Readiness::down:
      return "down";
    case Readiness::disconnected:
      return "disconnected";
    case Readiness::unknown:
      return "not ready";
    case Readiness::paused:
      return "paused";
    case Readiness::drained:
      return "drained";
  }
  return "?";
}

// What the refusal says, and whether "on N nodes" fits after it (it does not when the
// refusal holds everywhere by construction, as for a constraint with an unknown key).
std::pair<kj::String, bool> what(const Group& group, Refusal r) {
  switch (r.filter) {
    case Filter::pass:
    case Filter::ready:
      break;
    case Filter::resources: {
      if (r.detail == 0) return {kj::str("insufficient CPU"), true};
      if (r.detail == 1) return {kj::str("insufficient memory"), true};
      uint32_t i = r.detail - 2;
      if (i < group.kinds.size()) {
        return {kj::str("insufficient generic resource ", chars(group.kinds[i].text)), true};
      }
      auto& n = group.namedUnits[i - group.kinds.size()];
      return {kj::str("generic resource ", chars(n.kindText), "=", chars(n.nameText),
                      " unavailable"),
              true};
    }
    case Filter::constraints: {
      auto& c = group.constraints[r.detail];
      if (c.parsed.attribute == Constraint::Attribute::unknown) {
        return {kj::str("constraint \"", chars(c.parsed.text), "\" has an unknown key ",
                        chars(c.parsed.key), " and never holds (known keys: ",
                        kKnownConstraintKeys, ")"),
                false};
      }
      if (c.parsed.attribute == Constraint::Attribute::ip && !c.ip.valid) {
        return {kj::str("constraint \"", chars(c.parsed.text), "\" never holds: ",
                        chars(c.parsed.value), " is not an IP address or CIDR block"),
                false};
      }
      return {kj::str("constraint \"", chars(c.parsed.text), "\" not satisfied"), true};
    }
    case Filter::platform:
      return {kj::str("unsupported platform"), true};
    case Filter::hostPorts: {
      uint64_t port = group.key.hostPorts[r.detail];
      return {kj::str("host-mode port ", uint32_t(port & 0xffffffffu), "/",
                      protocolName(uint32_t(port >> 32)), " already in use"),
              true};
    }
    case Filter::maxReplicas:
      return {kj::str("max replicas per node (", group.key.maxReplicas, ") reached"), true};
  }
  return {kj::str("refused"), true};
}

kj::String describe(const Group& group, Refusal r, uint32_t count) {
  if (r.filter == Filter::ready) {
    return kj::str(nodeCount(count), " ", readinessWord(static_cast<Readiness>(r.detail)));
  }
  auto [text, countable] = what(group, r);
  return countable ? kj::str(text, " on ", nodeCount(count)) : kj::mv(text);
}

}  // namespace

Refusal check(const Group& group, const Cluster& cluster, uint32_t index) {
  const Node& node = cluster.nodes[index];
  if (node.readiness != Readiness::ready) {
    return {Filter::ready, static_cast<uint32_t>(node.readiness)};
  }
  if (group.reserves) {
    Refusal r = checkResources(group, cluster, node);
    if (!r.passed()) return r;
  }
  for (uint32_t i = 0; i < group.constraints.size(); ++i) {
    if (!matches(group.constraints[i], cluster, node)) return {Filter::constraints, i};
  }
  if (!group.platforms.empty()) {
    bool supported = false;
    for (auto& want : group.platforms) {
      if ((want.os == kAny || want.os == node.os) &&
          (want.arch == kAny || want.arch == node.platformArch)) {
        supported = true;
        break;
      }
    }
    if (!supported) return {Filter::platform, 0};
  }
  if (!group.key.hostPorts.empty()) {
    Refusal r = checkPorts(group, node);
    if (!r.passed()) return r;
  }
  if (group.key.maxReplicas != 0 &&
      cluster.serviceTasks(group.service, index) >= group.key.maxReplicas) {
    return {Filter::maxReplicas, 0};
  }
  return {};
}

Refusal recheck(const Group& group, const Cluster& cluster, uint32_t index) {
  const Node& node = cluster.nodes[index];
  if (group.reserves) {
    Refusal r = checkResources(group, cluster, node);
    if (!r.passed()) return r;
  }
  if (!group.key.hostPorts.empty()) {
    Refusal r = checkPorts(group, node);
    if (!r.passed()) return r;
  }
  if (group.key.maxReplicas != 0 &&
      cluster.serviceTasks(group.service, index) >= group.key.maxReplicas) {
    return {Filter::maxReplicas, 0};
  }
  return {};
}

void place(const Group& group, Cluster& cluster, uint32_t index) {
  Node& node = cluster.nodes[index];
  node.nanoCpus -= group.key.nanoCpus;
  node.memoryBytes -= group.key.memoryBytes;
  for (auto& n : group.namedUnits) {
    GenericPool* p = cluster.pool(node, n.kind);
    for (uint32_t i = p->namedBegin; i < p->namedEnd; ++i) {
      NamedUnit& unit = cluster.named[i];
      if (unit.name == n.name && !unit.taken) {
        unit.taken = true;
        --p->namedFree;
        break;
      }
    }
  }
  for (auto& k : group.kinds) {
    // Counted requests take from the node's count first, then free named units in name order.
    GenericPool* p = cluster.pool(node, k.kind);
    int64_t need = k.count;
    int64_t fromCount = std::min(p->discrete, need);
    p->discrete -= fromCount;
    need -= fromCount;
    for (uint32_t i = p->namedBegin; i < p->namedEnd && need > 0; ++i) {
      NamedUnit& unit = cluster.named[i];
      if (!unit.taken) {
        unit.taken = true;
        --p->namedFree;
        --need;
      }
    }
  }
  node.hostPorts.insert(node.hostPorts.end(), group.key.hostPorts.begin(),
                        group.key.hostPorts.end());
  ++node.totalTasks;
  cluster.addServiceTask(group.service, index);
}

kj::String explain(const Group& group, const Cluster& cluster) {
  if (cluster.size() == 0) return kj::str("no suitable node (the snapshot has no nodes)");
  std::map<Refusal, uint32_t> counts;
  for (uint32_t i = 0; i < cluster.size(); ++i) {
    Refusal r = check(group, cluster, i);
    if (!r.passed()) ++counts[r];
  }
  if (counts.empty()) return kj::str("no suitable node");
  std::vector<std::pair<Refusal, uint32_t>> parts(counts.begin(), counts.end());
  // Most nodes first; pipeline order among equals (the map's order, kept by a stable sort).
  std::stable_sort(parts.begin(), parts.end(),
                   [](auto& a, auto& b) { return a.second > b.second; });
  kj::Vector<kj::String> texts;
  for (auto& [r, n] : parts) texts.add(describe(group, r, n));
  return kj::str("no suitable node (", kj::strArray(texts, "; "), ")");
}

kj::String explainPreset(const Group& group, const Cluster& cluster, uint32_t node,
                         Refusal refusal) {
  kj::StringPtr id = cluster.nodes[node].id;
  if (refusal.filter == Filter::ready) {
    return kj::str("no suitable node (preset node ", id, " is ",
                   readinessWord(static_cast<Readiness>(refusal.detail)), ")");
  }
  return kj::str("no suitable node (preset node ", id, ": ", what(group, refusal).first, ")");
}

}  // namespace swarm::spread
