#include "store.h"

#include "fail.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <stdexcept>

namespace swarm::store {

// ---- watchers --------------------------------------------------------------------------------

namespace detail {
struct Watchers {
  struct Watcher {
    WatchCallback callback;
    WatchFilter filter;
  };
  // Held by shared_ptr so a callback that unsubscribes itself is not destroyed while it runs.
  std::map<uint64_t, std::shared_ptr<Watcher>> byId;
  uint64_t nextId = 1;
};
}  // namespace detail

Subscription::Subscription(std::weak_ptr<detail::Watchers> watchers, uint64_t id)
    : watchers(std::move(watchers)), id(id) {}

Subscription::Subscription(Subscription&& other) noexcept
    : watchers(std::move(other.watchers)), id(other.id) {
  other.id = 0;
}

Subscription& Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    reset();
    watchers = std::move(other.watchers);
    id = other.id;
    other.id = 0;
  }
  return *this;
}

Subscription::~Subscription() { reset(); }

void Subscription::reset() {
  if (auto list = watchers.lock()) list->byId.erase(id);
  watchers.reset();
  id = 0;
}

bool Subscription::active() const {
  auto list = watchers.lock();
  return list && list->byId.count(id) > 0;
}

// ---- statuses --------------------------------------------------------------------------------

std::string_view statusName(Status status) {
  switch (status) {
    case Status::ok: return "ok";
    case Status::conflict: return "conflict";
    case Status::notFound: return "not found";
    case Status::alreadyExists: return "already exists";
    case Status::invalid: return "invalid";
    case Status::replay: return "replay";
  }
  return "unknown";
}

int httpStatus(Status status) {
  switch (status) {
    case Status::ok: return 200;
    case Status::conflict: return 409;
    case Status::notFound: return 404;
    case Status::alreadyExists: return 409;
    case Status::invalid: return 400;
    case Status::replay: return 409;
  }
  return 500;
}

// ---- tables ----------------------------------------------------------------------------------

namespace {

using IdSet = std::set<std::string, std::less<>>;
using IdIndex = std::map<std::string, IdSet, std::less<>>;

void addTo(IdIndex& index, const std::string& key, const std::string& id) {
  if (!key.empty()) index[key].insert(id);
}

void removeFrom(IdIndex& index, const std::string& key, const std::string& id) {
  auto found = index.find(key);
  if (found == index.end()) return;
  found->second.erase(id);
  if (found->second.empty()) index.erase(found);
}

std::string serviceOf(const StoredObject& task) { return task.reader().getTask().getServiceId().cStr(); }
std::string nodeOf(const StoredObject& task) { return task.reader().getTask().getNodeId().cStr(); }

}  // namespace

void detail::Tables::put(Kind kind, const std::string& id, const ObjectRef& replacement) {
  Table& table = of(kind);
  auto found = table.byId.find(id);
  if (found != table.byId.end()) {
    ObjectRef previous = found->second;
    removeFrom(table.byName, lowerName(previous->name()), previous->id());
    if (kind == Kind::task) {
      removeFrom(tasksByService, serviceOf(*previous), previous->id());
      removeFrom(tasksByNode, nodeOf(*previous), previous->id());
    }
    if (!replacement) table.byId.erase(found);
  }
  if (!replacement) return;
  table.byId.insert_or_assign(id, replacement);
  addTo(table.byName, lowerName(replacement->name()), id);
  if (kind == Kind::task) {
    addTo(tasksByService, serviceOf(*replacement), id);
    addTo(tasksByNode, nodeOf(*replacement), id);
  }
}

namespace {

// ---- digest ----------------------------------------------------------------------------------

constexpr size_t kDigestBytes = 32;

void hashUint64(crypto_generichash_state& state, uint64_t value) {
  unsigned char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(value >> (8 * i));
  crypto_generichash_update(&state, bytes, sizeof(bytes));
}

std::string digestOf(const detail::Tables& tables, uint64_t appliedIndex) {
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, kDigestBytes);
  hashUint64(state, appliedIndex);
  for (Kind kind : kAllKinds) {
    for (const auto& [id, object] : tables.of(kind).byId) {
      auto bytes = object->canonicalWords().asBytes();
      hashUint64(state, bytes.size());
      crypto_generichash_update(&state, bytes.begin(), bytes.size());
    }
  }
  std::string digest(kDigestBytes, '\0');
  crypto_generichash_final(&state, reinterpret_cast<unsigned char*>(digest.data()), digest.size());
  return digest;
}

std::string toHex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : bytes) {
    hex += kDigits[c >> 4];
    hex += kDigits[c & 15];
  }
  return hex;
}

// Entries and chunks arrive as bytes at any alignment; capnp reads whole, aligned words.
kj::Array<capnp::word> alignedCopy(kj::ArrayPtr<const kj::byte> bytes) {
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.begin(), words.size() * sizeof(capnp::word));
  return words;
}

std::string describeException(const kj::Exception& e) { return e.getDescription().cStr(); }

// Reading limits for untrusted bytes: capnp's defaults, with room to read a big message a few
// times over (the traversal limit counts every read).
capnp::ReaderOptions readerOptionsFor(const kj::Array<capnp::word>& words) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords =
      std::max<uint64_t>(options.traversalLimitInWords, uint64_t{4} * words.size());
  return options;
}

// ---- applying one action ---------------------------------------------------------------------

struct Undo {
  Kind kind;
  std::string id;
  ObjectRef previous;
};

ApplyResult refusal(Status status, std::string message) {
  return ApplyResult{status, std::move(message), 0};
}

// The object as the store keeps it: Meta set from the entry, canonical.
ObjectRef stamped(schema::Object::Reader object, uint64_t index, int64_t createdAt,
                  int64_t updatedAt) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<schema::Object>();
  copyObject(root, object);
  auto meta = metaOf(root);
  meta.initVersion().setIndex(index);
  meta.setCreatedAt(createdAt);
  meta.setUpdatedAt(updatedAt);
  return StoredObject::fromReader(root.asReader());
}

// A cluster/service/secret/config needs a name no other object of its kind has.
std::optional<ApplyResult> nameRefusal(const detail::Tables& tables, const StoredObject& object) {
  if (!hasUniqueNames(object.kind())) return std::nullopt;
  if (object.name().empty()) {
    return refusal(Status::invalid, describeObject(object.kind(), object.id()) +
                                        " has no name: every " +
                                        std::string(kindName(object.kind())) + " needs one");
  }
  const auto& table = tables.of(object.kind());
  auto holders = table.byName.find(lowerName(object.name()));
  if (holders == table.byName.end()) return std::nullopt;
  for (const auto& holder : holders->second) {
    if (holder == object.id()) continue;
    auto other = table.byId.find(holder);
    return refusal(Status::alreadyExists,
                   "name conflicts with an existing object: the name \"" + object.name() +
                       "\" is taken by " + other->second->describe());
  }
  return std::nullopt;
}

ApplyResult applyAction(detail::Tables& tables, schema::Action::Reader action, uint64_t index,
                        int64_t proposedAt, std::vector<Undo>& undo, std::vector<Event>& events) {
  switch (action.which()) {
    case schema::Action::CREATE: {
      ObjectRef created = stamped(action.getCreate(), index, proposedAt, proposedAt);
      Kind kind = created->kind();
      auto& table = tables.of(kind);
      auto existing = table.byId.find(created->id());
      if (existing != table.byId.end()) {
        return refusal(Status::alreadyExists, existing->second->describe() + " already exists");
      }
      if (auto refused = nameRefusal(tables, *created)) return *refused;
      undo.push_back({kind, created->id(), nullptr});
      tables.put(kind, created->id(), created);
      events.push_back({Event::Type::create, kind, nullptr, created, index});
      return {};
    }
    case schema::Action::UPDATE: {
      auto object = action.getUpdate();
      auto kind = kindOf(object);
      if (!kind) {
        return refusal(Status::invalid, "an update of an object of unknown kind (union member " +
                                            std::to_string(static_cast<unsigned>(object.which())) +
                                            ")");
      }
      std::string id = idOf(object).cStr();
      auto& table = tables.of(*kind);
      auto existing = table.byId.find(id);
      if (id.empty() || existing == table.byId.end()) {
        return refusal(Status::notFound, "no such " + std::string(kindName(*kind)) + ": " +
                                             (id.empty() ? "(empty ID)" : id));
      }
      ObjectRef previous = existing->second;
      if (action.getExpectedVersion() != previous->version()) {
        return refusal(Status::conflict,
                       "update out of sequence: " + previous->describe() + " is at version " +
                           std::to_string(previous->version()) + ", the update expected " +
                           std::to_string(action.getExpectedVersion()) +
                           "; read it again and retry");
      }
      ObjectRef updated = stamped(object, index, previous->createdAt(), proposedAt);
      if (auto refused = nameRefusal(tables, *updated)) return *refused;
      undo.push_back({*kind, id, previous});
      tables.put(*kind, id, updated);
      events.push_back({Event::Type::update, *kind, previous, updated, index});
      return {};
    }
    case schema::Action::REMOVE: {
      auto remove = action.getRemove();
      auto kind = fromSchema(remove.getKind());
      if (!kind) {
        return refusal(Status::invalid, "a removal of an unknown kind (enumerant " +
                                            std::to_string(static_cast<unsigned>(remove.getKind())) +
                                            ")");
      }
      std::string id = remove.getId().cStr();
      if (id.empty()) {
        return refusal(Status::invalid,
                       "a removal of a " + std::string(kindName(*kind)) + " without an ID");
      }
      auto& table = tables.of(*kind);
      auto existing = table.byId.find(id);
      if (existing == table.byId.end()) {
        return refusal(Status::notFound, "no such " + std::string(kindName(*kind)) + ": " + id);
      }
      ObjectRef previous = existing->second;
      uint64_t expected = action.getExpectedVersion();
      if (expected != 0 && expected != previous->version()) {
        return refusal(Status::conflict,
                       "remove out of sequence: " + previous->describe() + " is at version " +
                           std::to_string(previous->version()) + ", the removal expected " +
                           std::to_string(expected) + "; read it again and retry");
      }
      undo.push_back({*kind, id, previous});
      tables.put(*kind, id, nullptr);
      events.push_back({Event::Type::remove, *kind, previous, nullptr, index});
      return {};
    }
  }
  return refusal(Status::invalid, "an action of unknown type (union member " +
                                      std::to_string(static_cast<unsigned>(action.which())) + ")");
}

}  // namespace

// ---- the store -------------------------------------------------------------------------------

Store::Store() : watchers(std::make_shared<detail::Watchers>()) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
}

Store::~Store() = default;

ApplyResult Store::apply(uint64_t index, kj::ArrayPtr<const kj::byte> entry) {
  if (delivering) {
    detail::fail("Store::apply() was called from a watch callback: propose the change instead");
  }
  if (index <= applied) {
    return refusal(Status::replay, "entry " + std::to_string(index) +
                                       " is at or before the applied index " +
                                       std::to_string(applied) + ": already applied, ignored");
  }
  applied = index;  // refused or not, this entry is done with

  if (entry.size() == 0 || entry.size() % sizeof(capnp::word) != 0) {
    return refusal(Status::invalid, "entry " + std::to_string(index) +
                                        " is not a store transaction: " +
                                        std::to_string(entry.size()) +
                                        " bytes is not a whole number of 8-byte words");
  }

  std::vector<Undo> undo;
  std::vector<Event> events;
  size_t position = 0;
  auto rollBack = [&]() {
    for (auto it = undo.rbegin(); it != undo.rend(); ++it) tables.put(it->kind, it->id, it->previous);
  };
  try {
    auto words = alignedCopy(entry);
    capnp::FlatArrayMessageReader message(words, readerOptionsFor(words));
    auto transaction = message.getRoot<schema::Transaction>();
    auto actions = transaction.getActions();
    if (actions.size() == 0) {
      return refusal(Status::invalid, "an empty transaction: it has no actions");
    }
    int64_t proposedAt = transaction.getProposedAt();
    for (; position < actions.size(); ++position) {
      ApplyResult result = applyAction(tables, actions[position], index, proposedAt, undo, events);
      if (!result.ok()) {
        rollBack();
        result.action = position;
        return result;
      }
    }
  } catch (const kj::Exception& e) {
    rollBack();
    ApplyResult result = refusal(Status::invalid, "malformed transaction (entry " +
                                                      std::to_string(index) + ", action " +
                                                      std::to_string(position) +
                                                      "): " + describeException(e));
    result.action = position;
    return result;
  } catch (const std::exception& e) {
    rollBack();
    ApplyResult result = refusal(Status::invalid, "malformed transaction (entry " +
                                                      std::to_string(index) + ", action " +
                                                      std::to_string(position) + "): " + e.what());
    result.action = position;
    return result;
  }

  events.push_back({Event::Type::commit, Kind::cluster, nullptr, nullptr, index});
  deliver(events);
  return {};
}

void Store::deliver(const std::vector<Event>& events) {
  if (watchers->byId.empty()) return;
  // Who was subscribed when the transaction applied; later subscribers start with the next one.
  std::vector<uint64_t> ids;
  ids.reserve(watchers->byId.size());
  for (const auto& entry : watchers->byId) ids.push_back(entry.first);

  struct Delivering {
    bool& flag;
    explicit Delivering(bool& flag) : flag(flag) { flag = true; }
    ~Delivering() { flag = false; }
  } guard(delivering);
  auto list = watchers;  // keeps the list alive even if a callback destroys the store's handle
  std::exception_ptr firstError;
  for (const Event& event : events) {
    bool filtered = event.type != Event::Type::commit && event.type != Event::Type::reset;
    for (uint64_t id : ids) {
      auto found = list->byId.find(id);
      if (found == list->byId.end()) continue;  // unsubscribed meanwhile
      std::shared_ptr<detail::Watchers::Watcher> watcher = found->second;
      try {
        if (filtered && watcher->filter && !watcher->filter(event)) continue;
        watcher->callback(event);
      } catch (...) {
        if (!firstError) firstError = std::current_exception();
      }
    }
  }
  if (firstError) std::rethrow_exception(firstError);
}

Subscription Store::subscribe(WatchCallback callback, WatchFilter filter) {
  uint64_t id = watchers->nextId++;
  watchers->byId.emplace(id, std::make_shared<detail::Watchers::Watcher>(
                                 detail::Watchers::Watcher{std::move(callback), std::move(filter)}));
  return Subscription(watchers, id);
}

// ---- reads -----------------------------------------------------------------------------------

ObjectRef Store::get(Kind kind, std::string_view id) const {
  const auto& byId = tables.of(kind).byId;
  auto found = byId.find(id);
  return found == byId.end() ? nullptr : found->second;
}

std::vector<ObjectRef> Store::findAllByName(Kind kind, std::string_view name) const {
  std::vector<ObjectRef> found;
  const auto& table = tables.of(kind);
  auto ids = table.byName.find(lowerName(name));
  if (name.empty() || ids == table.byName.end()) return found;
  for (const auto& id : ids->second) found.push_back(table.byId.find(id)->second);
  return found;
}

ObjectRef Store::findByName(Kind kind, std::string_view name) const {
  const auto& table = tables.of(kind);
  auto ids = table.byName.find(lowerName(name));
  if (name.empty() || ids == table.byName.end()) return nullptr;
  return table.byId.find(*ids->second.begin())->second;
}

std::vector<ObjectRef> Store::list(Kind kind) const {
  std::vector<ObjectRef> all;
  const auto& byId = tables.of(kind).byId;
  all.reserve(byId.size());
  for (const auto& entry : byId) all.push_back(entry.second);
  return all;
}

namespace {
std::vector<ObjectRef> tasksIn(const detail::Tables& tables, const IdIndex& index,
                               std::string_view key) {
  std::vector<ObjectRef> tasks;
  auto ids = index.find(key);
  if (key.empty() || ids == index.end()) return tasks;
  const auto& byId = tables.of(Kind::task).byId;
  for (const auto& id : ids->second) tasks.push_back(byId.find(id)->second);
  return tasks;
}
}  // namespace

std::vector<ObjectRef> Store::tasksOfService(std::string_view serviceId) const {
  return tasksIn(tables, tables.tasksByService, serviceId);
}

std::vector<ObjectRef> Store::tasksOnNode(std::string_view nodeId) const {
  return tasksIn(tables, tables.tasksByNode, nodeId);
}

size_t Store::size(Kind kind) const { return tables.of(kind).byId.size(); }

Resolution Store::resolve(Kind kind, std::string_view text) const {
  std::string kindWord(kindName(kind));
  if (text.empty()) {
    return {nullptr, Status::invalid, "no " + kindWord + " given: name one by ID or name"};
  }
  const auto& table = tables.of(kind);
  if (auto exact = table.byId.find(text); exact != table.byId.end()) {
    return {exact->second, Status::ok, ""};
  }
  auto named = findAllByName(kind, text);
  if (named.size() == 1) return {named.front(), Status::ok, ""};
  if (named.size() > 1) {
    std::string ids;
    for (const auto& object : named) ids += (ids.empty() ? "" : ", ") + object->id();
    return {nullptr, Status::invalid,
            kindWord + " " + std::string(text) + " is ambiguous (" +
                std::to_string(named.size()) + " matches found: " + ids + "); use an ID"};
  }
  std::vector<ObjectRef> prefixed;
  for (auto it = table.byId.lower_bound(text);
       it != table.byId.end() && std::string_view(it->first).substr(0, text.size()) == text; ++it) {
    prefixed.push_back(it->second);
  }
  if (prefixed.size() == 1) return {prefixed.front(), Status::ok, ""};
  if (prefixed.size() > 1) {
    std::string ids;
    for (const auto& object : prefixed) ids += (ids.empty() ? "" : ", ") + object->describe();
    return {nullptr, Status::invalid,
            kindWord + " ID prefix " + std::string(text) + " is ambiguous (" +
                std::to_string(prefixed.size()) + " matches found: " + ids +
                "); give more of the ID"};
  }
  return {nullptr, Status::notFound, "no such " + kindWord + ": " + std::string(text)};
}

std::string Store::digest() const { return toHex(digestOf(tables, applied)); }

// ---- snapshots -------------------------------------------------------------------------------

void Store::writeSnapshot(size_t chunkBytes, const ChunkSink& sink) const {
  const std::string digestBytes = digestOf(tables, applied);
  uint32_t sequence = 0;
  std::vector<const StoredObject*> pending;
  size_t pendingBytes = 0;
  auto flush = [&](bool last) {
    capnp::MallocMessageBuilder message;
    auto chunk = message.initRoot<schema::Snapshot>();
    chunk.setAppliedIndex(applied);
    chunk.setSequence(sequence++);
    chunk.setLast(last);
    if (last) {
      chunk.setDigest(kj::arrayPtr(reinterpret_cast<const kj::byte*>(digestBytes.data()),
                                   digestBytes.size()));
    }
    auto objects = chunk.initObjects(static_cast<unsigned>(pending.size()));
    for (unsigned i = 0; i < objects.size(); ++i) copyObject(objects[i], pending[i]->reader());
    auto words = capnp::messageToFlatArray(message);
    sink(words.asBytes());
    pending.clear();
    pendingBytes = 0;
  };
  for (Kind kind : kAllKinds) {
    for (const auto& [id, object] : tables.of(kind).byId) {
      size_t bytes = object->canonicalWords().asBytes().size();
      if (!pending.empty() && pendingBytes + bytes > chunkBytes) flush(false);
      pending.push_back(object.get());
      pendingBytes += bytes;
    }
  }
  flush(true);
}

kj::Own<Restore> Store::beginRestore() { return kj::heap<Restore>(*this); }

Restore::Restore(Store& store) : store(store) {}

void Restore::refuse(const std::string& message) {
  failed = true;
  detail::fail(message);
}

void Restore::requireUsable() const {
  if (failed) detail::fail("this snapshot restore already failed: start a new one");
  if (finished) detail::fail("this snapshot restore is already finished");
}

void Restore::addChunk(kj::ArrayPtr<const kj::byte> bytes) {
  requireUsable();
  uint32_t number = chunks;
  try {
    if (sawLast) refuse("it arrived after the chunk marked last");
    if (bytes.size() == 0 || bytes.size() % sizeof(capnp::word) != 0) {
      refuse(std::to_string(bytes.size()) + " bytes is not a whole number of 8-byte words");
    }
    auto words = alignedCopy(bytes);
    capnp::FlatArrayMessageReader message(words, readerOptionsFor(words));
    auto chunk = message.getRoot<schema::Snapshot>();
    if (chunk.getSequence() != number) {
      refuse("it carries sequence number " + std::to_string(chunk.getSequence()) +
             ": chunks are missing, repeated or out of order");
    }
    if (number == 0) {
      appliedIndex = chunk.getAppliedIndex();
    } else if (chunk.getAppliedIndex() != appliedIndex) {
      refuse("it is of applied index " + std::to_string(chunk.getAppliedIndex()) +
             " while the first chunk was of " + std::to_string(appliedIndex));
    }
    for (auto object : chunk.getObjects()) {
      ObjectRef stored = StoredObject::fromReader(object);
      std::pair<Kind, std::string> key{stored->kind(), stored->id()};
      if (lastKey && key <= *lastKey) {
        refuse(stored->describe() + " is out of order or repeated (objects come in kind then ID order)");
      }
      if (hasUniqueNames(stored->kind())) {
        if (stored->name().empty()) refuse(stored->describe() + " has no name");
        if (auto other = staged.of(stored->kind()).byName.find(lowerName(stored->name()));
            other != staged.of(stored->kind()).byName.end()) {
          refuse("two " + std::string(kindName(stored->kind())) + "s are named \"" +
                 stored->name() + "\" (case-insensitively): " + *other->second.begin() + " and " +
                 stored->id());
        }
      }
      staged.put(stored->kind(), stored->id(), stored);
      lastKey = std::move(key);
    }
    if (chunk.getLast()) {
      sawLast = true;
      auto digest = chunk.getDigest();
      claimedDigest.assign(reinterpret_cast<const char*>(digest.begin()), digest.size());
    }
    ++chunks;
  } catch (const kj::Exception& e) {
    failed = true;
    detail::fail("snapshot chunk " + std::to_string(number) + " refused: " + describeException(e));
  }
}

void Restore::finish() {
  requireUsable();
  if (!sawLast) {
    refuse("snapshot refused: it is incomplete (" + std::to_string(chunks) +
           " chunks arrived, none marked last)");
  }
  finish(appliedIndex);
}

void Restore::finish(uint64_t index) {
  requireUsable();
  if (!sawLast) {
    refuse("snapshot refused: it is incomplete (" + std::to_string(chunks) +
           " chunks arrived, none marked last)");
  }
  if (index < appliedIndex) {
    refuse("snapshot refused: its content is of applied index " + std::to_string(appliedIndex) +
           " but it was announced as of index " + std::to_string(index) + ", which is earlier");
  }
  if (digestOf(staged, appliedIndex) != claimedDigest) {
    refuse("snapshot refused: its content does not match the digest in its last chunk (corrupt)");
  }
  if (store.delivering) {
    detail::fail("Restore::finish() was called from a watch callback");
  }
  finished = true;
  store.tables = std::move(staged);
  store.applied = index;
  store.deliver({Event{Event::Type::reset, Kind::cluster, nullptr, nullptr, index}});
}

}  // namespace swarm::store
