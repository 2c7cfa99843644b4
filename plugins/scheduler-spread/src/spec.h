// What a task asks of a node, in two forms:
//
//   TaskKey  the scheduling-relevant fields of one task, read once from the request as views.
//            Equal keys mean interchangeable tasks, so the batch is grouped by key (Swarm groups
//            by service + spec version; grouping by the fields themselves also keeps apart tasks
//            of one version that differ, and merges versions that schedule alike).
//   Group    one key compiled against the snapshot's interned strings, with its tasks. A group
//            whose spec cannot be understood (a malformed constraint, an unknown spread
//            descriptor, a negative reservation) carries the reason instead, and none of its
//            tasks is placed.
#pragma once

#include "cluster.h"
#include "constraint.h"

#include <swarm/schema/common.capnp.h>

#include <kj/string.h>

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace swarm::spread {

// A platform field the task leaves empty matches any node.
constexpr uint32_t kAny = kNone - 1;

struct GenericRequest {
  std::string_view kind;
  std::string_view name;  // a named unit (count unused), or empty for a discrete count
  int64_t count = 0;
  bool named = false;

  bool operator==(const GenericRequest&) const = default;
};

struct TaskKey {
  std::string_view service;
  int64_t nanoCpus = 0;
  int64_t memoryBytes = 0;
  uint64_t maxReplicas = 0;
  std::vector<GenericRequest> generic;
  std::vector<std::string_view> constraints;
  std::vector<std::string_view> preferences;
  std::vector<std::pair<std::string_view, std::string_view>> platforms;  // (os, architecture)
  // Host-mode published ports (hostPortKey()), from Task.status.ports: the schema's Task has no
  // endpoint of its own, so the kernel puts the allocated ports there.
  std::vector<uint64_t> hostPorts;

  // Refills this key from `task`, reusing its vectors' storage.
  void read(schema::Task::Reader task);
  uint64_t hash() const;
  bool operator==(const TaskKey&) const = default;
};

struct CompiledConstraint {
  Constraint parsed;
  uint32_t labelKey = kNone;  // Cluster::labelKeys; kNone: no node has the label
  uint32_t value = kNone;     // Cluster::values; kNone: no node has this value anywhere
  IpMatcher ip;
};

struct PlatformWant {
  uint32_t os = kAny;    // Cluster::values, kAny, or kNone (no node runs it)
  uint32_t arch = kAny;  // normalised
};

struct KindRequest {
  uint32_t kind;  // Cluster::kinds, or kNone (no node has any)
  int64_t count;
  std::string_view text;
};

struct NamedRequest {
  uint32_t kind;  // Cluster::kinds or kNone
  uint32_t name;  // Cluster::names or kNone
  std::string_view kindText, nameText;
};

struct Spread {
  SpreadDescriptor descriptor;
  uint32_t key = kNone;  // Cluster::labelKeys; kNone: every node is in the "" branch
};

struct Group {
  explicit Group(const TaskKey& key, uint32_t service) : key(key), service(service) {}
  // kj::Maybe's move is not declared noexcept; without this std::vector would copy on growth.
  Group(Group&&) noexcept = default;
  Group& operator=(Group&&) noexcept = default;

  // Resolves the key against the snapshot; sets `invalid` when the spec cannot be scheduled.
  void compile(const Cluster& cluster);

  TaskKey key;
  uint32_t service;  // the batch's service interner
  kj::Maybe<kj::String> invalid;
  bool reserves = false;  // any reservation: the resource filter applies (Swarm skips it otherwise)
  std::vector<CompiledConstraint> constraints;
  std::vector<PlatformWant> platforms;
  std::vector<KindRequest> kinds;  // one per kind, counts summed
  std::vector<NamedRequest> namedUnits;
  std::vector<Spread> spreads;

  std::vector<uint32_t> freeTasks;  // input positions of the tasks without a preset node, in order
  uint32_t nextSameHash = kNone;    // the next group whose key has the same hash
};

}  // namespace swarm::spread
