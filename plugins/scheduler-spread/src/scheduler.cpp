#include "scheduler.h"

#include "cluster.h"
#include "pipeline.h"
#include "spec.h"

#include <algorithm>
#include <numeric>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace swarm::spread {
namespace {

kj::ArrayPtr<const char> chars(std::string_view s) { return {s.data(), s.size()}; }

// A node in a leaf's heap with its rank packed into two words, compared as (hi, lo):
// hi = recent failures (when at or over the threshold) << 32 | tasks of the service,
// lo = tasks in total << 32 | position in node ID order.
struct HeapEntry {
  uint64_t hi, lo;
  uint32_t node;
};

// std::*_heap keep the greatest element in front; with "greater" meaning "worse" the best node
// is in front.
inline bool worse(const HeapEntry& a, const HeapEntry& b) {
  return a.hi != b.hi ? a.hi > b.hi : a.lo > b.lo;
}

// The branch of every node for one spread descriptor; branch IDs follow the label values' order.
struct SpreadLevel {
  std::vector<uint32_t> branchOf;
};

// Schedules the free tasks of one group after another over the shared cluster state.
class GroupScheduler {
 public:
  GroupScheduler(Plan& plan, Cluster& cluster)
      : plan(plan),
        cluster(cluster),
        serviceTasks(cluster.size(), 0),
        failures(cluster.size(), 0),
        leafOf(cluster.size(), 0) {}

  void run(Group& group);

 private:
  struct Branch {
    explicit Branch(uint32_t parent) : parent(parent) {}
    uint32_t parent;
    uint32_t tasks = 0;  // the service's tasks on every node under it, this batch included
    std::vector<std::pair<uint32_t, uint32_t>> children;  // (branch ID, tree index), by ID
    std::vector<HeapEntry> heap;                          // leaves: the nodes passing the filters
  };

  HeapEntry entry(uint32_t node) const {
    return {(uint64_t(failures[node]) << 32) | serviceTasks[node],
            (uint64_t(cluster.nodes[node].totalTasks) << 32) | cluster.nodes[node].idRank, node};
  }

  const SpreadLevel& level(const Spread& spread);
  void buildTree();
  uint32_t scheduleOn(uint32_t branch, uint32_t want);
  uint32_t fillLeaf(uint32_t leaf, uint32_t want);

  Plan& plan;
  Cluster& cluster;
  Group* group = nullptr;
  size_t next = 0;  // the group's next free task

  // Per node, for the group being scheduled: its service's tasks, and recent failures of the
  // service when at or over kMaxRecentFailures (else 0). Reset after each group.
  std::vector<uint32_t> serviceTasks;
  std::vector<uint32_t> failures;
  std::vector<uint32_t> leafOf;
  std::vector<Branch> tree;
  std::unordered_map<uint64_t, uint32_t> childIndex;
  std::unordered_map<uint64_t, SpreadLevel> levels;  // by (source, label key), for the whole call
};

const SpreadLevel& GroupScheduler::level(const Spread& spread) {
  uint64_t key = (uint64_t(spread.descriptor.source) << 32) | spread.key;
  auto [it, added] = levels.try_emplace(key);
  SpreadLevel& out = it->second;
  if (!added) return out;
  const uint32_t n = cluster.size();
  std::vector<std::string_view> values(n);
  if (spread.key != kNone) {
    bool engine = spread.descriptor.source == SpreadDescriptor::Source::engineLabels;
    for (uint32_t i = 0; i < n; ++i) {
      const Node& node = cluster.nodes[i];
      values[i] = engine ? cluster.labelText(node.engineLabelsBegin, node.engineLabelsEnd, spread.key)
                         : cluster.labelText(node.labelsBegin, node.labelsEnd, spread.key);
    }
  }
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return values[a] < values[b]; });
  out.branchOf.resize(n);
  uint32_t branch = 0;
  for (uint32_t i = 0; i < n; ++i) {
    if (i > 0 && values[order[i]] != values[order[i - 1]]) ++branch;
    out.branchOf[order[i]] = branch;
  }
  return out;
}

void GroupScheduler::buildTree() {
  const uint32_t n = cluster.size();
  tree.clear();
  tree.emplace_back(kNone);
  if (group->spreads.empty()) {
    std::fill(leafOf.begin(), leafOf.end(), 0u);
  } else {
    std::vector<const SpreadLevel*> path;
    for (auto& spread : group->spreads) path.push_back(&level(spread));
    childIndex.clear();
    for (uint32_t node = 0; node < n; ++node) {
      uint32_t at = 0;
      for (auto* l : path) {
        uint32_t branch = l->branchOf[node];
        auto [it, added] =
            childIndex.try_emplace((uint64_t(at) << 32) | branch, static_cast<uint32_t>(tree.size()));
        if (added) {
          tree.emplace_back(at);
          tree[at].children.emplace_back(branch, it->second);
        }
        at = it->second;
      }
      leafOf[node] = at;
    }
    for (auto& b : tree) std::sort(b.children.begin(), b.children.end());
  }
  // Tasks of the service already on each branch: every node counts, eligible or not (Swarm).
  for (uint32_t node : cluster.nodesWithService(group->service)) {
    for (uint32_t at = leafOf[node]; at != kNone; at = tree[at].parent) {
      tree[at].tasks += serviceTasks[node];
    }
  }
  for (uint32_t node = 0; node < n; ++node) {
    if (check(*group, cluster, node).passed()) tree[leafOf[node]].heap.push_back(entry(node));
  }
  for (auto& b : tree) {
    if (b.heap.size() > 1) std::make_heap(b.heap.begin(), b.heap.end(), worse);
  }
}

uint32_t GroupScheduler::fillLeaf(uint32_t leaf, uint32_t want) {
  auto& heap = tree[leaf].heap;
  uint32_t done = 0;
  while (done < want && !heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), worse);
    uint32_t node = heap.back().node;
    heap.pop_back();
    uint32_t task = group->freeTasks[next++];
    place(*group, cluster, node);
    ++serviceTasks[node];
    plan.nodeOf[task] = node;
    ++plan.assigned;
    ++done;
    if (recheck(*group, cluster, node).passed()) {
      heap.push_back(entry(node));
      std::push_heap(heap.begin(), heap.end(), worse);
    }
  }
  return done;
}

uint32_t GroupScheduler::scheduleOn(uint32_t branch, uint32_t want) {
  if (tree[branch].children.empty()) return fillLeaf(branch, want);
  // Copied: the children's counts change below, the list itself does not.
  const auto children = tree[branch].children;
  const size_t k = children.size();
  std::vector<bool> full(k, false);
  size_t fullCount = 0;
  uint64_t usableTasks = 0;  // tasks on the branches that still have room
  for (auto& c : children) usableTasks += tree[c.second].tasks;
  uint32_t placed = 0;
  // Even out the branches until all tasks are placed or no branch has room. Each round places
  // at least one task or retires a branch, so the loop ends.
  while (placed < want && fullCount < k) {
    uint64_t open = k - fullCount;
    uint64_t total = usableTasks + (want - placed);
    uint64_t desired = total / open;
    uint64_t remainder = total % open;
    for (size_t i = 0; i < k && placed < want; ++i) {
      if (full[i]) continue;
      uint32_t child = children[i].second;
      uint64_t have = tree[child].tasks;
      if (have < desired || (have == desired && remainder > 0)) {
        uint64_t assign = desired - have + (remainder > 0 ? 1 : 0);
        assign = std::min<uint64_t>(assign, want - placed);
        uint32_t got = scheduleOn(child, static_cast<uint32_t>(assign));
        tree[child].tasks += got;
        usableTasks += got;
        placed += got;
        if (got < assign) {
          full[i] = true;
          ++fullCount;
          usableTasks -= tree[child].tasks;
        } else if (remainder > 0) {
          --remainder;
        }
      }
    }
  }
  return placed;
}

void GroupScheduler::run(Group& g) {
  group = &g;
  next = 0;
  const uint32_t service = g.service;
  for (uint32_t node : cluster.nodesWithService(service)) {
    serviceTasks[node] = cluster.serviceTasks(service, node);
  }
  for (auto [node, count] : cluster.failingNodes(service)) failures[node] = count;

  buildTree();
  scheduleOn(0, static_cast<uint32_t>(g.freeTasks.size()));

  if (next < g.freeTasks.size()) {
    uint32_t reason = static_cast<uint32_t>(plan.reasons.size());
    plan.reasons.push_back(explain(g, cluster));
    for (size_t i = next; i < g.freeTasks.size(); ++i) plan.reasonOf[g.freeTasks[i]] = reason;
  }

  for (uint32_t node : cluster.nodesWithService(service)) serviceTasks[node] = 0;
  for (auto [node, count] : cluster.failingNodes(service)) failures[node] = 0;
  tree.clear();
  group = nullptr;
}

}  // namespace

Plan schedule(capnp::List<schema::NodeInfo>::Reader nodes,
              capnp::List<schema::Task>::Reader tasks) {
  Plan plan;
  const uint32_t count = tasks.size();
  plan.taskIds.resize(count);
  plan.nodeOf.assign(count, kNone);
  plan.reasonOf.assign(count, kNone);

  // 1. Read the batch once, grouping tasks by key.
  Interner services(Interner::Case::sensitive);
  std::vector<Group> groups;
  std::unordered_map<uint64_t, uint32_t> groupByHash;  // the latest group with that key hash
  std::vector<uint32_t> groupOf(count);
  std::vector<std::pair<uint32_t, std::string_view>> presets;  // (task, node ID)
  std::unordered_map<std::string_view, uint32_t> seen;
  seen.reserve(count);
  TaskKey key;
  for (uint32_t i = 0; i < count; ++i) {
    auto task = tasks[i];
    kj::StringPtr id = task.getId();
    if (id.size() == 0) {
      refuse(kj::str("task at position ", i, " of the batch has no id; every task needs its ID"));
    }
    auto [first, added] = seen.try_emplace(std::string_view(id.begin(), id.size()), i);
    if (!added) {
      refuse(kj::str("task ", id, " appears twice in the batch (positions ", first->second, " and ",
                     i, "); send each task once"));
    }
    plan.taskIds[i] = id;

    key.read(task);
    uint64_t hash = key.hash();
    uint32_t g = kNone;
    auto chain = groupByHash.find(hash);
    if (chain != groupByHash.end()) {
      for (g = chain->second; g != kNone && !(groups[g].key == key); g = groups[g].nextSameHash) {
      }
    }
    if (g == kNone) {
      g = static_cast<uint32_t>(groups.size());
      groups.emplace_back(key, services.intern(key.service));
      if (chain != groupByHash.end()) {
        groups[g].nextSameHash = chain->second;
        chain->second = g;
      } else {
        groupByHash.emplace(hash, g);
      }
    }
    groupOf[i] = g;
    std::string_view preset = task.hasNodeId() ? view(task.getNodeId()) : std::string_view();
    if (preset.empty()) {
      groups[g].freeTasks.push_back(i);
    } else {
      presets.emplace_back(i, preset);
    }
  }

  // 2. Read the snapshot; resolve every group against it.
  Cluster cluster(nodes, services);
  plan.nodeIds.reserve(cluster.size());
  for (auto& node : cluster.nodes) plan.nodeIds.push_back(node.id);
  for (auto& g : groups) g.compile(cluster);

  std::vector<uint32_t> invalidReason(groups.size(), kNone);
  auto unplace = [&](uint32_t task, uint32_t g) {
    if (invalidReason[g] == kNone) {
      invalidReason[g] = static_cast<uint32_t>(plan.reasons.size());
      KJ_IF_MAYBE(why, groups[g].invalid) { plan.reasons.push_back(kj::str(*why)); }
    }
    plan.reasonOf[task] = invalidReason[g];
  };

  // 3. Preset nodes first, like Swarm's global tasks.
  for (auto [task, nodeId] : presets) {
    uint32_t g = groupOf[task];
    Group& group = groups[g];
    if (group.invalid != nullptr) {
      unplace(task, g);
      continue;
    }
    uint32_t node = cluster.findNode(nodeId);
    kj::Maybe<kj::String> why;
    if (node == kNone) {
      why = kj::str("no suitable node (preset node ", chars(nodeId), " is not in the snapshot)");
    } else {
      Refusal refusal = check(group, cluster, node);
      if (refusal.passed()) {
        place(group, cluster, node);
        plan.nodeOf[task] = node;
        ++plan.assigned;
        continue;
      }
      why = explainPreset(group, cluster, node, refusal);
    }
    plan.reasonOf[task] = static_cast<uint32_t>(plan.reasons.size());
    KJ_IF_MAYBE(w, why) { plan.reasons.push_back(kj::mv(*w)); }
  }

  // 4. The other tasks, group by group.
  GroupScheduler scheduler(plan, cluster);
  for (uint32_t g = 0; g < groups.size(); ++g) {
    Group& group = groups[g];
    if (group.freeTasks.empty()) continue;
    if (group.invalid != nullptr) {
      for (uint32_t task : group.freeTasks) unplace(task, g);
      continue;
    }
    scheduler.run(group);
  }
  return plan;
}

void writePlan(const Plan& plan, schema::Plan::Builder out) {
  const uint32_t count = static_cast<uint32_t>(plan.taskIds.size());
  auto assignments = out.initAssignments(plan.assigned);
  auto unplaced = out.initUnplaced(count - plan.assigned);
  uint32_t a = 0, u = 0;
  for (uint32_t i = 0; i < count; ++i) {
    if (plan.nodeOf[i] != kNone) {
      auto entry = assignments[a++];
      entry.setTaskId(plan.taskIds[i]);
      entry.setNodeId(plan.nodeIds[plan.nodeOf[i]]);
    } else {
      auto entry = unplaced[u++];
      entry.setTaskId(plan.taskIds[i]);
      entry.setReason(plan.reasons[plan.reasonOf[i]]);
    }
  }
}

}  // namespace swarm::spread
