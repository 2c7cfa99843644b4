// The filter pipeline, in Swarm's order (sk:manager/scheduler/pipeline.go); the first filter
// that turns a node down stops the evaluation and is the one the explanation counts:
//
//   ready        node status READY and availability ACTIVE
//   resources    reserved CPU, memory and generic resources fit what the node has available
//                (NodeInfo.available minus this batch's placements); skipped when the task
//                reserves nothing
//   constraints  every placement constraint holds
//   platform     one of Placement.platforms matches the node (x86_64 = amd64, aarch64 = arm64,
//                empty field = any); skipped when the list is empty
//   host ports   none of the task's host-mode published ports is in use on the node (including
//                by this batch)
//   max replicas fewer than Placement.maxReplicas tasks of the service on the node (counting
//                this batch); skipped when 0
//
// Swarm's plugin filter (volume and network driver plugins on the node) has no input in the
// schema's Task and is not applied.
//
// Explanations follow Swarm's shape: "no suitable node (<part>; <part>)", parts sorted by how
// many nodes they cover, most first, e.g. "insufficient memory on 3 nodes; 2 nodes drained".
#pragma once

#include "cluster.h"
#include "spec.h"

#include <kj/string.h>

#include <cstdint>

namespace swarm::spread {

enum class Filter : uint8_t { pass, ready, resources, constraints, platform, hostPorts, maxReplicas };

struct Refusal {
  Filter filter = Filter::pass;
  // ready: the Readiness. resources: 0 CPU, 1 memory, 2 + i Group::kinds[i],
  // 2 + kinds.size() + j Group::namedUnits[j]. constraints: the index. hostPorts: the index into
  // TaskKey::hostPorts. Otherwise 0.
  uint32_t detail = 0;

  bool passed() const { return filter == Filter::pass; }
  bool operator<(const Refusal& o) const {
    return filter != o.filter ? filter < o.filter : detail < o.detail;
  }
};

// Every filter, in order.
Refusal check(const Group& group, const Cluster& cluster, uint32_t node);
// Only the filters a placement on `node` can change: resources, host ports, max replicas.
Refusal recheck(const Group& group, const Cluster& cluster, uint32_t node);

// Places one task of `group` on `node`: claims its reservations and host ports and counts it.
// The caller has checked that it fits.
void place(const Group& group, Cluster& cluster, uint32_t node);

// Why no node of the cluster (in its current state) takes a task of `group`.
kj::String explain(const Group& group, const Cluster& cluster);
// Why the preset `node` does not take a task of `group` (`refusal` from check()).
kj::String explainPreset(const Group& group, const Cluster& cluster, uint32_t node,
                         Refusal refusal);

}  // namespace swarm::spread
