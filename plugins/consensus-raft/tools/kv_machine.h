// The raft-node harness's state machine: an in-memory key/value map standing in for the kernel's
// store. An entry `key=value` (no '=': the whole entry is the key, the value empty) sets the key.
// Besides the map it keeps what the cluster tests compare between members: the applied sequence
// (index and key of every normal entry, in apply order) and a digest over every applied entry.
// A snapshot is the whole KvStore serialized; restore() replaces it.
//
// Rule checks, reported in the KvReport instead of crashing the harness: entries must arrive at
// applied + 1, a restored snapshot's content must end at the snapshot's index.
#pragma once

#include <swarm/schema/consensus.capnp.h>

#include <kj/async.h>
#include <kj/function.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace swarm::raft::tools {

struct KvStore {
  uint64_t applied = 0;  // index of the last entry applied (any type)
  std::map<std::string, std::string> kv;
  std::vector<std::pair<uint64_t, std::string>> sequence;  // (index, key) of normal entries
  uint64_t digest = 14695981039346656037ull;               // FNV-1a over (index, data)

  // Applies one entry; returns "" or what rule it broke.
  std::string apply(uint64_t index, schema::Entry::Type type, std::string_view data);

  std::string serialize() const;
  static std::optional<KvStore> parse(std::string_view bytes);
  bool operator==(const KvStore&) const = default;
};

// What a node reports about its store (client op `dump`).
struct KvReport {
  KvStore store;
  uint64_t snapshotsTaken = 0;
  std::vector<uint64_t> restores;  // snapshot index of every restore() in this incarnation
  std::vector<std::string> violations;
  uint64_t leaderId = 0;  // as last reported through statusChanged
  uint64_t term = 0;
  uint64_t membershipChanges = 0;

  std::string serialize() const;
  static std::optional<KvReport> parse(std::string_view bytes);
};

class KvMachine final : public schema::StateMachine::Server {
 public:
  using Logger = kj::Function<void(kj::StringPtr)>;
  explicit KvMachine(KvReport& report, Logger log) : report(report), log(kj::mv(log)) {}

  kj::Promise<void> apply(ApplyContext context) override;
  kj::Promise<void> snapshot(SnapshotContext context) override;
  kj::Promise<void> restore(RestoreContext context) override;
  kj::Promise<void> membershipChanged(MembershipChangedContext context) override;
  kj::Promise<void> statusChanged(StatusChangedContext context) override;

 private:
  KvReport& report;  // owned by the harness, which outlives this capability's use
  Logger log;
};

}  // namespace swarm::raft::tools
