#include "cluster.h"

#include <kj/debug.h>

#include <algorithm>
#include <numeric>

namespace swarm::spread {
namespace {

Readiness readinessOf(schema::NodeState state, schema::NodeAvailability availability) {
  switch (state) {
    case schema::NodeState::READY:
      break;
    case schema::NodeState::DOWN:
      return Readiness::down;
    case schema::NodeState::DISCONNECTED:
      return Readiness::disconnected;
    default:
      return Readiness::unknown;
  }
  switch (availability) {
    case schema::NodeAvailability::ACTIVE:
      return Readiness::ready;
    case schema::NodeAvailability::PAUSE:
      return Readiness::paused;
    default:
      return Readiness::drained;
  }
}

}  // namespace

void refuse(kj::String message) {
  kj::throwFatalException(
      kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__, kj::mv(message)));
}

std::string_view normalizeArch(std::string_view arch) {
  if (equalsFolded(arch, "x86_64")) return "amd64";
  if (equalsFolded(arch, "aarch64")) return "arm64";
  return arch;
}

Cluster::Cluster(capnp::List<schema::NodeInfo>::Reader infos, const Interner& services)
    : serviceNodes(services.size()), failing(services.size()) {
  values.intern("");
  const uint32_t roleWorker = values.intern("worker");
  const uint32_t roleManager = values.intern("manager");
  const uint32_t count = infos.size();
  nodes.resize(count);
  byId.reserve(count);
  serviceCounts.reserve(count * 2);

  struct Entry {
    uint32_t kind;
    bool isNamed;
    int64_t discrete;
    std::string_view name;
  };
  std::vector<Entry> generic;  // one node's, reused

  for (uint32_t i = 0; i < count; ++i) {
    // Every getter below runs once per node: each pointer followed counts against the reader's
    // traversal limit, and the request can be large.
    auto info = infos[i];
    auto node = info.getNode();
    Node& out = nodes[i];
    out.id = node.getId();
    if (out.id.size() == 0) {
      refuse(kj::str("node at position ", i,
                     " of the snapshot has no node.id; every NodeInfo needs its node's ID"));
    }
    if (!byId.emplace(std::string_view(out.id.begin(), out.id.size()), i).second) {
      refuse(kj::str("node ", out.id, " appears twice in the snapshot; send each node once"));
    }
    out.idValue = values.intern(std::string_view(out.id.begin(), out.id.size()));
    out.role = node.getRole() == schema::NodeRole::MANAGER ? roleManager : roleWorker;

    auto spec = node.getSpec();
    auto status = node.getStatus();
    out.readiness = readinessOf(status.getState(), spec.getAvailability());
    if (status.hasAddr()) out.hasIp = parseNodeAddress(view(status.getAddr()), out.ip);

    out.labelsBegin = static_cast<uint32_t>(labels.size());
    if (spec.hasAnnotations()) {
      for (auto label : spec.getAnnotations().getLabels()) {
        std::string_view value = view(label.getValue());
        labels.push_back({labelKeys.intern(view(label.getKey())), values.intern(value), value});
      }
    }
    out.labelsEnd = static_cast<uint32_t>(labels.size());

    out.engineLabelsBegin = out.labelsEnd;
    if (node.hasDescription()) {
      auto description = node.getDescription();
      out.hostname = values.intern(view(description.getHostname()));
      if (description.hasPlatform()) {
        auto platform = description.getPlatform();
        out.os = values.intern(view(platform.getOs()));
        std::string_view arch = view(platform.getArchitecture());
        out.arch = values.intern(arch);
        out.platformArch = values.intern(normalizeArch(arch));
      }
      if (description.hasEngine()) {
        for (auto label : description.getEngine().getLabels()) {
          std::string_view value = view(label.getValue());
          labels.push_back({labelKeys.intern(view(label.getKey())), values.intern(value), value});
        }
      }
    }
    out.engineLabelsEnd = static_cast<uint32_t>(labels.size());

    auto available = info.getAvailable();
    out.nanoCpus = available.getNanoCpus();
    out.memoryBytes = available.getMemoryBytes();
    out.poolsBegin = out.poolsEnd = static_cast<uint32_t>(pools.size());
    if (available.hasGeneric()) {
      generic.clear();
      for (auto g : available.getGeneric()) {
        uint32_t kind = kinds.intern(view(g.getKind()));
        if (g.isNamed()) {
          generic.push_back({kind, true, 0, view(g.getNamed())});
        } else {
          generic.push_back({kind, false, g.getDiscrete(), {}});
        }
      }
      // Pools by kind, named units by name: claiming order is then fixed.
      std::sort(generic.begin(), generic.end(), [](const Entry& a, const Entry& b) {
        return a.kind != b.kind ? a.kind < b.kind : a.name < b.name;
      });
      for (auto& e : generic) {
        if (pools.size() == out.poolsBegin || pools.back().kind != e.kind) {
          GenericPool p;
          p.kind = e.kind;
          p.namedBegin = p.namedEnd = static_cast<uint32_t>(named.size());
          pools.push_back(p);
        }
        GenericPool& p = pools.back();
        if (e.isNamed) {
          named.push_back({names.intern(e.name), e.name, false});
          p.namedEnd = static_cast<uint32_t>(named.size());
          ++p.namedFree;
        } else if (e.discrete > 0) {
          p.discrete += e.discrete;
        }
      }
      out.poolsEnd = static_cast<uint32_t>(pools.size());
    }

    out.totalTasks = info.getTotalTasks();
    for (auto c : info.getTasksByService()) {
      uint32_t service = services.find(view(c.getServiceId()));
      if (service == kNone || c.getCount() == 0) continue;
      uint32_t& n = serviceCounts[key(service, i)];
      if (n == 0) serviceNodes[service].push_back(i);
      n += c.getCount();
    }
    for (auto c : info.getRecentFailures()) {
      uint32_t service = services.find(view(c.getServiceId()));
      if (service == kNone) continue;
      auto& list = failing[service];
      if (!list.empty() && list.back().first == i) {
        list.back().second += c.getCount();
      } else {
        list.push_back({i, c.getCount()});
      }
    }
    for (auto port : info.getHostPorts()) {
      if (port.getPublishedPort() != 0) {
        out.hostPorts.push_back(
            hostPortKey(static_cast<uint32_t>(port.getProtocol()), port.getPublishedPort()));
      }
    }
  }

  for (auto& list : failing) {
    list.erase(std::remove_if(list.begin(), list.end(),
                              [](auto& e) { return e.second < kMaxRecentFailures; }),
               list.end());
  }

  std::vector<uint32_t> order(count);
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [this](uint32_t a, uint32_t b) {
    return std::string_view(nodes[a].id.begin(), nodes[a].id.size()) <
           std::string_view(nodes[b].id.begin(), nodes[b].id.size());
  });
  for (uint32_t rank = 0; rank < count; ++rank) nodes[order[rank]].idRank = rank;
}

uint32_t Cluster::findNode(std::string_view id) const {
  auto it = byId.find(id);
  return it == byId.end() ? kNone : it->second;
}

uint32_t Cluster::labelValue(uint32_t begin, uint32_t end, uint32_t key) const {
  // The last entry wins when a key repeats, as when Swarm reads the list into a map.
  for (uint32_t i = end; i > begin; --i) {
    if (labels[i - 1].key == key) return labels[i - 1].value;
  }
  return 0;
}

std::string_view Cluster::labelText(uint32_t begin, uint32_t end, uint32_t key) const {
  for (uint32_t i = end; i > begin; --i) {
    if (labels[i - 1].key == key) return labels[i - 1].text;
  }
  return {};
}

const GenericPool* Cluster::pool(const Node& node, uint32_t kind) const {
  for (uint32_t i = node.poolsBegin; i < node.poolsEnd; ++i) {
    if (pools[i].kind == kind) return &pools[i];
  }
  return nullptr;
}

GenericPool* Cluster::pool(const Node& node, uint32_t kind) {
  return const_cast<GenericPool*>(static_cast<const Cluster*>(this)->pool(node, kind));
}

uint32_t Cluster::serviceTasks(uint32_t service, uint32_t node) const {
  auto it = serviceCounts.find(key(service, node));
  return it == serviceCounts.end() ? 0 : it->second;
}

void Cluster::addServiceTask(uint32_t service, uint32_t node) {
  uint32_t& n = serviceCounts[key(service, node)];
  if (n == 0) serviceNodes[service].push_back(node);
  ++n;
}

}  // namespace swarm::spread
