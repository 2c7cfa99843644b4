// TransactionBuilder: collects the writes of one store transaction and encodes them as one
// consensus entry (schema::Transaction), for Replication::propose(). Nothing is checked against
// the store here: the store decides on apply, on every manager alike (store.h).
#pragma once

#include "object.h"

#include <capnp/message.h>
#include <kj/memory.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace swarm::store {

class TransactionBuilder {
 public:
  static constexpr size_t kMaxActions = 200;
  static constexpr size_t kMaxEntryBytes = 1536 * 1024;
  // Swarm's limits (sk:manager/state/store/memory.go): split bigger batches into several
  // transactions (actionCount() and sizeEstimate() tell when).

  TransactionBuilder& create(schema::Object::Reader object);
  // Refused on apply if the ID exists, or (cluster, service, secret, config) the name is taken.
  TransactionBuilder& update(schema::Object::Reader object, uint64_t expectedVersion);
  // Replaces the whole object; refused on apply unless it exists at exactly expectedVersion (the
  // version the caller read). The store sets Meta; whatever the caller put there is ignored.
  TransactionBuilder& remove(Kind kind, std::string_view id, uint64_t expectedVersion);
  // Refused on apply unless the object exists at exactly expectedVersion. expectedVersion 0 means
  // "whatever its version": for internal callers (task reaper, node removal) only; the API always
  // passes the version the user gave.

  TransactionBuilder& create(schema::Cluster::Reader cluster);
  TransactionBuilder& create(swarm::schema::Node::Reader node);
  TransactionBuilder& create(schema::Service::Reader service);
  TransactionBuilder& create(swarm::schema::Task::Reader task);
  TransactionBuilder& create(swarm::schema::Secret::Reader secret);
  TransactionBuilder& create(swarm::schema::Config::Reader config);
  TransactionBuilder& update(schema::Cluster::Reader cluster, uint64_t expectedVersion);
  TransactionBuilder& update(swarm::schema::Node::Reader node, uint64_t expectedVersion);
  TransactionBuilder& update(schema::Service::Reader service, uint64_t expectedVersion);
  TransactionBuilder& update(swarm::schema::Task::Reader task, uint64_t expectedVersion);
  TransactionBuilder& update(swarm::schema::Secret::Reader secret, uint64_t expectedVersion);
  TransactionBuilder& update(swarm::schema::Config::Reader config, uint64_t expectedVersion);
  // The same, for one kind's reader. Every create/update throws kj::Exception when the object has
  // an unknown kind or no ID (it could never apply).

  size_t actionCount() const { return actions.size(); }
  bool empty() const { return actions.empty(); }
  size_t sizeEstimate() const;
  // Bytes of the encoded entry, give or take a few words.

  std::string encode(int64_t proposedAt) const;
  // The entry. proposedAt (ns since the epoch, the proposer's clock) becomes createdAt/updatedAt
  // of what it writes. Throws kj::Exception when empty, over kMaxActions or over kMaxEntryBytes.

 private:
  void append(kj::Own<capnp::MallocMessageBuilder> action);
  // Adds a completely built action (a refused or failed one never enters the builder).

  std::vector<kj::Own<capnp::MallocMessageBuilder>> messages;
  std::vector<schema::Action::Reader> actions;
  // actions[i] reads messages[i], complete once the create/update/remove call returned.
};

}  // namespace swarm::store
