// The manager's replicated store (docs/store.md): in-memory objects with versions, changed only
// by applying committed consensus entries (transactions, TransactionBuilder) in index order, on
// every manager alike.
//
// Invariants:
//  - apply() is deterministic: its outcome and the resulting content depend only on the store's
//    content and the entry. It is all or nothing: a refused transaction changes no object.
//  - appliedIndex() only grows through apply(), refused transactions included; an entry at or
//    below it is refused as a replay and changes nothing.
//  - Objects are immutable and shared (object.h): an ObjectRef stays readable forever.
//  - Watchers see each applied transaction's changes in order, then one commit event, after the
//    whole transaction is in; a restore gives one reset event.
//  - Single-threaded: the kernel's KJ thread; no locks.
#pragma once

#include "object.h"
#include "object_id.h"
#include "transaction.h"

#include <kj/memory.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace swarm::store {

enum class Status : uint8_t {
  ok,
  conflict,       // the object is not at the expected version ("update out of sequence")
  notFound,       // no such object (update/remove), no match (resolve)
  alreadyExists,  // the ID exists, or the name is taken
  invalid,        // malformed entry or object, ambiguous resolve
  replay,         // an entry at or below appliedIndex()
};

std::string_view statusName(Status status);
int httpStatus(Status status);
// Docker's: ok 200, conflict 409, notFound 404, alreadyExists 409, invalid 400, replay 409.

struct ApplyResult {
  Status status = Status::ok;
  std::string message;
  // Empty when ok; otherwise complete and naming the object, e.g.
  // "update out of sequence: service 3x9... (web) is at version 12, the update expected 10".
  size_t action = 0;
  // The refused action's position in the transaction.

  bool ok() const { return status == Status::ok; }
};

struct Resolution {
  ObjectRef object;  // null unless ok
  Status status = Status::ok;
  std::string message;

  bool ok() const { return status == Status::ok; }
};

struct Event {
  enum class Type : uint8_t { create, update, remove, commit, reset };
  Type type;
  Kind kind = Kind::cluster;  // create/update/remove only
  ObjectRef oldObject;        // update, remove
  ObjectRef newObject;        // create, update
  uint64_t index = 0;         // the entry's index; reset: the restored appliedIndex
};

using WatchCallback = std::function<void(const Event&)>;
using WatchFilter = std::function<bool(const Event&)>;
// Chooses create/update/remove events; commit and reset always pass.

namespace detail {
struct Watchers;
}

class Subscription {
  // Stops the watch when destroyed or reset(); safe from inside any callback, and after the
  // store is gone.
 public:
  Subscription() = default;
  Subscription(Subscription&& other) noexcept;
  Subscription& operator=(Subscription&& other) noexcept;
  ~Subscription();

  void reset();
  bool active() const;

 private:
  friend class Store;
  Subscription(std::weak_ptr<detail::Watchers> watchers, uint64_t id);

  std::weak_ptr<detail::Watchers> watchers;
  uint64_t id = 0;
};

class Store;

namespace detail {
struct Tables {
  struct Table {
    std::map<std::string, ObjectRef, std::less<>> byId;
    std::map<std::string, std::set<std::string, std::less<>>, std::less<>> byName;
    // lowerName(name) -> IDs; nameless objects are not indexed.
  };
  std::array<Table, kAllKinds.size()> kinds;
  std::map<std::string, std::set<std::string, std::less<>>, std::less<>> tasksByService;
  std::map<std::string, std::set<std::string, std::less<>>, std::less<>> tasksByNode;

  Table& of(Kind kind) { return kinds[static_cast<size_t>(kind)]; }
  const Table& of(Kind kind) const { return kinds[static_cast<size_t>(kind)]; }
  void put(Kind kind, const std::string& id, const ObjectRef& replacement);
  // Makes (kind, id) hold `replacement` (null: absent), keeping every index in step.
};
}  // namespace detail

class Restore {
  // Replaces the store's content with a snapshot (Store::writeSnapshot's chunks, in order). Nothing
  // changes until finish() has checked everything: the chunk sequence, the order and uniqueness of
  // IDs and names, and the digest the writer put in the last chunk. Every refusal throws
  // kj::Exception with a clear message and leaves the store untouched; after one, this Restore
  // refuses everything (start another).
 public:
  explicit Restore(Store& store);

  void addChunk(kj::ArrayPtr<const kj::byte> chunk);
  void finish();
  // The snapshot's own appliedIndex becomes the store's.
  void finish(uint64_t index);
  // `index` is the consensus plugin's snapshot index; it may be past the content's appliedIndex
  // (its own entries follow), never before it. It becomes the store's appliedIndex.

 private:
  [[noreturn]] void refuse(const std::string& message);
  void requireUsable() const;

  Store& store;
  detail::Tables staged;
  uint32_t chunks = 0;
  uint64_t appliedIndex = 0;
  bool sawLast = false;
  bool failed = false;
  bool finished = false;
  std::string claimedDigest;
  std::optional<std::pair<Kind, std::string>> lastKey;
};

class Store {
 public:
  Store();
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  ApplyResult apply(uint64_t index, kj::ArrayPtr<const kj::byte> entry);
  // Applies one committed entry (TransactionBuilder::encode()). Never throws for a bad entry: it
  // is refused (invalid) and appliedIndex still advances. create: refused if the ID exists
  // (alreadyExists), the ID is missing (invalid), or a cluster/service/secret/config name is
  // taken, case-insensitively (alreadyExists) or empty (invalid). update: the object must exist
  // (notFound) at version == expectedVersion (conflict); a name change must not collide. remove:
  // like update; expectedVersion 0 removes whatever the version. Written objects get
  // Meta.Version.Index = index and updatedAt = the entry's proposedAt; createdAt = proposedAt on
  // create and is kept on update. Calling apply() from a watch callback throws (propose instead).

  ObjectRef get(Kind kind, std::string_view id) const;
  ObjectRef findByName(Kind kind, std::string_view name) const;
  // Case-insensitive; for nodes and tasks (names may repeat) the match with the lowest ID.
  std::vector<ObjectRef> findAllByName(Kind kind, std::string_view name) const;
  std::vector<ObjectRef> list(Kind kind) const;
  // In ID order.
  std::vector<ObjectRef> tasksOfService(std::string_view serviceId) const;
  std::vector<ObjectRef> tasksOnNode(std::string_view nodeId) const;
  // In task ID order.
  size_t size(Kind kind) const;
  uint64_t appliedIndex() const { return applied; }

  Resolution resolve(Kind kind, std::string_view text) const;
  // Like Docker: an exact ID, else an exact (case-insensitive) name, else a unique ID prefix.
  // notFound: "no such service: <text>"; invalid: an ambiguous name or prefix, listing matches.

  Subscription subscribe(WatchCallback callback, WatchFilter filter = {});
  // Events of later applies and restores, in order. A callback must not throw (if one does, the
  // others still get the event and apply()/finish() rethrows afterwards); it may subscribe or
  // unsubscribe anyone, itself included (a new subscriber starts with the next transaction).

  using ChunkSink = std::function<void(kj::ArrayPtr<const kj::byte>)>;
  void writeSnapshot(size_t chunkBytes, const ChunkSink& sink) const;
  // The whole store as serialized schema::Snapshot messages, objects in kind then ID order, each
  // chunk at most about chunkBytes (one object bigger than that gets a chunk of its own). At
  // least one chunk; the last carries last = true and the digest.
  kj::Own<Restore> beginRestore();

  std::string digest() const;
  // Hex BLAKE2b-256 over appliedIndex and every object's canonical bytes in snapshot order: two
  // stores with equal digests have equal content.

 private:
  friend class Restore;
  void deliver(const std::vector<Event>& events);

  detail::Tables tables;
  uint64_t applied = 0;
  std::shared_ptr<detail::Watchers> watchers;
  bool delivering = false;
};

}  // namespace swarm::store
