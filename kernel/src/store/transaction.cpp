#include "transaction.h"

#include "fail.h"

#include <capnp/serialize.h>

namespace swarm::store {
namespace {

void requireWritable(Kind kind, kj::StringPtr id) {
  if (id.size() == 0) {
    detail::fail("cannot write a " + std::string(kindName(kind)) +
                 " without an ID: generate one with newObjectId()");
  }
}

// Checked before the action is added, so a refused call leaves the builder as it was.
void requireWritable(schema::Object::Reader object) {
  auto kind = kindOf(object);
  if (!kind) {
    detail::fail("cannot write an object of unknown kind (union member " +
                 std::to_string(static_cast<unsigned>(object.which())) + ")");
  }
  requireWritable(*kind, idOf(object));
}

}  // namespace

void TransactionBuilder::append(kj::Own<capnp::MallocMessageBuilder> action) {
  actions.push_back(action->getRoot<schema::Action>().asReader());
  messages.push_back(kj::mv(action));
}

TransactionBuilder& TransactionBuilder::create(schema::Object::Reader object) {
  requireWritable(object);
  auto message = kj::heap<capnp::MallocMessageBuilder>();
  copyObject(message->initRoot<schema::Action>().initCreate(), object);
  append(kj::mv(message));
  return *this;
}

TransactionBuilder& TransactionBuilder::update(schema::Object::Reader object,
                                               uint64_t expectedVersion) {
  requireWritable(object);
  auto message = kj::heap<capnp::MallocMessageBuilder>();
  auto action = message->initRoot<schema::Action>();
  copyObject(action.initUpdate(), object);
  action.setExpectedVersion(expectedVersion);
  append(kj::mv(message));
  return *this;
}

TransactionBuilder& TransactionBuilder::remove(Kind kind, std::string_view id,
                                               uint64_t expectedVersion) {
  if (id.empty()) {
    detail::fail("cannot remove a " + std::string(kindName(kind)) + " without naming its ID");
  }
  auto message = kj::heap<capnp::MallocMessageBuilder>();
  auto action = message->initRoot<schema::Action>();
  auto remove = action.initRemove();
  remove.setKind(toSchema(kind));
  remove.setId(kj::StringPtr(std::string(id).c_str()));
  action.setExpectedVersion(expectedVersion);
  append(kj::mv(message));
  return *this;
}

// One object per kind, through the same create/update paths.
#define SWARM_STORE_KIND_WRITES(ReaderType, kind, setter)                                       \
  TransactionBuilder& TransactionBuilder::create(ReaderType object) {                          \
    requireWritable(kind, object.getId());                                                     \
    auto message = kj::heap<capnp::MallocMessageBuilder>();                                    \
    message->initRoot<schema::Action>().initCreate().setter(object);                           \
    append(kj::mv(message));                                                                   \
    return *this;                                                                              \
  }                                                                                            \
  TransactionBuilder& TransactionBuilder::update(ReaderType object, uint64_t expectedVersion) { \
    requireWritable(kind, object.getId());                                                     \
    auto message = kj::heap<capnp::MallocMessageBuilder>();                                    \
    auto action = message->initRoot<schema::Action>();                                         \
    action.initUpdate().setter(object);                                                        \
    action.setExpectedVersion(expectedVersion);                                                \
    append(kj::mv(message));                                                                   \
    return *this;                                                                              \
  }

SWARM_STORE_KIND_WRITES(schema::Cluster::Reader, Kind::cluster, setCluster)
SWARM_STORE_KIND_WRITES(swarm::schema::Node::Reader, Kind::node, setNode)
SWARM_STORE_KIND_WRITES(schema::Service::Reader, Kind::service, setService)
SWARM_STORE_KIND_WRITES(swarm::schema::Task::Reader, Kind::task, setTask)
SWARM_STORE_KIND_WRITES(swarm::schema::Secret::Reader, Kind::secret, setSecret)
SWARM_STORE_KIND_WRITES(swarm::schema::Config::Reader, Kind::config, setConfig)
#undef SWARM_STORE_KIND_WRITES

size_t TransactionBuilder::sizeEstimate() const {
  // Segment table and Transaction root + list tag, then each action's content.
  size_t words = 8;
  for (auto action : actions) {
    words += action.totalSize().wordCount;
  }
  return words * sizeof(capnp::word);
}

std::string TransactionBuilder::encode(int64_t proposedAt) const {
  if (actions.empty()) detail::fail("an empty transaction: add at least one create, update or remove");
  if (actions.size() > kMaxActions) {
    detail::fail("a transaction of " + std::to_string(actions.size()) + " changes: at most " +
                 std::to_string(kMaxActions) + " fit in one; split it into several");
  }
  capnp::MallocMessageBuilder message;
  auto transaction = message.initRoot<schema::Transaction>();
  transaction.setProposedAt(proposedAt);
  auto list = transaction.initActions(static_cast<unsigned>(actions.size()));
  for (unsigned i = 0; i < list.size(); ++i) {
    list.setWithCaveats(i, actions[i]);
  }
  auto words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  if (bytes.size() > kMaxEntryBytes) {
    detail::fail("a transaction of " + std::to_string(bytes.size()) + " bytes: at most " +
                 std::to_string(kMaxEntryBytes) + " fit in one consensus entry; split it");
  }
  return std::string(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
}

}  // namespace swarm::store
