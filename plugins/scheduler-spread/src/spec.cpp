#include "spec.h"

#include <algorithm>

namespace swarm::spread {
namespace {

kj::ArrayPtr<const char> chars(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace

void TaskKey::read(schema::Task::Reader task) {
  // Each getter runs once (see Cluster): hasX() is free, getX() counts against the traversal limit.
  service = view(task.getServiceId());
  nanoCpus = memoryBytes = 0;
  maxReplicas = 0;
  generic.clear();
  constraints.clear();
  preferences.clear();
  platforms.clear();
  hostPorts.clear();
  if (task.hasSpec()) {
    auto spec = task.getSpec();
    if (spec.hasResources()) {
      auto resources = spec.getResources();
      if (resources.hasReservations()) {
        auto r = resources.getReservations();
        nanoCpus = r.getNanoCpus();
        memoryBytes = r.getMemoryBytes();
        if (r.hasGeneric()) {
          for (auto g : r.getGeneric()) {
            GenericRequest request;
            request.kind = view(g.getKind());
            if (g.isNamed()) {
              request.named = true;
              request.name = view(g.getNamed());
            } else {
              request.count = g.getDiscrete();
            }
            generic.push_back(request);
          }
        }
      }
    }
    if (spec.hasPlacement()) {
      auto placement = spec.getPlacement();
      maxReplicas = placement.getMaxReplicas();
      if (placement.hasConstraints()) {
        for (auto c : placement.getConstraints()) constraints.push_back(view(c));
      }
      if (placement.hasPreferences()) {
        for (auto p : placement.getPreferences()) preferences.push_back(view(p.getSpreadDescriptor()));
      }
      if (placement.hasPlatforms()) {
        for (auto p : placement.getPlatforms()) {
          platforms.emplace_back(view(p.getOs()), view(p.getArchitecture()));
        }
      }
    }
  }
  if (task.hasStatus()) {
    auto status = task.getStatus();
    if (status.hasPorts()) {
      for (auto port : status.getPorts()) {
        if (port.getPublishMode() == schema::PortConfig::PublishMode::HOST &&
            port.getPublishedPort() != 0) {
          hostPorts.push_back(
              hostPortKey(static_cast<uint32_t>(port.getProtocol()), port.getPublishedPort()));
        }
      }
    }
  }
}

uint64_t TaskKey::hash() const {
  uint64_t h = hashBytes(service);
  h = hashMix(h, static_cast<uint64_t>(nanoCpus));
  h = hashMix(h, static_cast<uint64_t>(memoryBytes));
  h = hashMix(h, maxReplicas);
  for (auto& g : generic) {
    h = hashMix(h, hashBytes(g.kind, g.named));
    h = hashMix(h, g.named ? hashBytes(g.name) : static_cast<uint64_t>(g.count));
  }
  h = hashMix(h, constraints.size());
  for (auto c : constraints) h = hashMix(h, hashBytes(c));
  h = hashMix(h, preferences.size());
  for (auto p : preferences) h = hashMix(h, hashBytes(p));
  h = hashMix(h, platforms.size());
  for (auto& [os, arch] : platforms) h = hashMix(h, hashBytes(arch, hashBytes(os)));
  for (auto port : hostPorts) h = hashMix(h, port);
  return h;
}

void Group::compile(const Cluster& cluster) {
  if (key.nanoCpus < 0 || key.memoryBytes < 0) {
    invalid = kj::str("invalid reservation (", key.nanoCpus, " nanoCPUs, ", key.memoryBytes,
                      " bytes of memory): reservations cannot be negative");
    return;
  }
  reserves = key.nanoCpus != 0 || key.memoryBytes != 0;

  for (auto& g : key.generic) {
    if (g.named) {
      namedUnits.push_back({cluster.kinds.find(g.kind), cluster.names.find(g.name), g.kind, g.name});
      reserves = true;
      continue;
    }
    if (g.count < 0) {
      invalid = kj::str("invalid generic resource reservation ", chars(g.kind), "=", g.count,
                        ": counts cannot be negative");
      return;
    }
    if (g.count == 0) continue;
    reserves = true;
    uint32_t kind = cluster.kinds.find(g.kind);
    auto same = std::find_if(kinds.begin(), kinds.end(),
                             [&](const KindRequest& k) { return k.text == g.kind; });
    if (same != kinds.end()) {
      same->count += g.count;
    } else {
      kinds.push_back({kind, g.count, g.kind});
    }
  }

  for (auto text : key.constraints) {
    CompiledConstraint c;
    KJ_IF_MAYBE(error, parseConstraint(text, c.parsed)) {
      invalid = kj::str("invalid constraint \"", chars(text), "\": ", *error);
      return;
    }
    using A = Constraint::Attribute;
    if (c.parsed.attribute == A::nodeLabel || c.parsed.attribute == A::engineLabel) {
      c.labelKey = cluster.labelKeys.find(c.parsed.labelKey);
    }
    if (c.parsed.attribute == A::ip) c.ip = parseIpMatcher(c.parsed.value);
    c.value = cluster.values.find(c.parsed.value);
    constraints.push_back(c);
  }

  for (auto& [os, arch] : key.platforms) {
    PlatformWant want;
    if (!os.empty()) want.os = cluster.values.find(os);
    if (!arch.empty()) want.arch = cluster.values.find(normalizeArch(arch));
    platforms.push_back(want);
  }

  for (auto text : key.preferences) {
    Spread spread;
    KJ_IF_MAYBE(error, parseSpread(text, spread.descriptor)) {
      invalid = kj::str("invalid placement preference \"", chars(text), "\": ", *error);
      return;
    }
    spread.key = cluster.labelKeys.find(spread.descriptor.key);
    spreads.push_back(spread);
  }
}

}  // namespace swarm::spread
