// The scheduler as one pure function: a node snapshot and a batch of pending tasks in, a plan
// out. No I/O, no clock, no randomness: the same input gives the same plan, byte for byte.
//
// HOW A BATCH IS PLACED (Swarm's scheduler, sk:manager/scheduler/scheduler.go, made exact)
//   1. Tasks are grouped by TaskKey (service + everything that decides placement; spec.h).
//   2. Tasks with a preset node (global services) go first, in input order: each is checked
//      against its node only, and placed there or refused with the reason.
//   3. Then each group in order of first appearance, with one decision tree for the group:
//        - one tree level per spread preference, one branch per label value, in value order;
//          nodes without the label form the "" branch. Every node counts towards its branch's
//          tasks of the service; only nodes passing every filter (pipeline.h) enter the leaves.
//        - at each level the group's tasks are split so that branches end up even, counting
//          the tasks already there; a branch that runs out of room drops out and the rest is
//          split among the others (Swarm's scheduleNTasksOnSubtree, with live counts).
//        - a leaf is a min-heap of its nodes ranked by: fewer than kMaxRecentFailures recent
//          failures of the service (else more failures is worse), then fewer tasks of the
//          service, then fewer tasks in total, then node ID. Each task takes the best node; the
//          node's filters are re-checked (resources, host ports, max replicas) and it goes
//          back into the heap if it still passes. Swarm fills nodes to the level of the next
//          one and then goes round-robin, which approximates the same order.
//      Tasks of a group left over when no branch has room are unplaced, all with one reason
//      that counts, over every node, the first filter that turns it down.
//   Cost: O(nodes) per group to build its tree, O(log nodes) per placed task.
//
// A batch the caller got wrong (a task or node without an ID, an ID given twice) is refused as a
// whole by throwing; a task whose own spec is wrong is only unplaced, with the reason.
#pragma once

#include "intern.h"

#include <swarm/schema/scheduler.capnp.h>

#include <kj/string.h>

#include <cstdint>
#include <vector>

namespace swarm::spread {

struct Plan {
  std::vector<kj::StringPtr> taskIds;  // input order; views into the request
  std::vector<uint32_t> nodeOf;        // per task: index of its node in the snapshot, or kNone
  std::vector<uint32_t> reasonOf;      // per unplaced task: index into `reasons`
  std::vector<kj::String> reasons;     // shared by the tasks of a group
  std::vector<kj::StringPtr> nodeIds;  // snapshot order
  uint32_t assigned = 0;
};

Plan schedule(capnp::List<schema::NodeInfo>::Reader nodes,
              capnp::List<schema::Task>::Reader tasks);

// Writes `plan` as the schema's Plan, each list in input order.
void writePlan(const Plan& plan, schema::Plan::Builder out);

}  // namespace swarm::spread
