#include "object.h"

#include "fail.h"

#include <capnp/dynamic.h>
#include <capnp/message.h>

namespace swarm::store {
namespace {

using Which = schema::Object::Which;

constexpr size_t kMaxIdLength = 128;

bool isIdCharacter(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
         c == '_' || c == '-';
}

[[noreturn]] void unknownMember(schema::Object::Reader object) {
  detail::fail("an object of unknown kind (union member " +
               std::to_string(static_cast<unsigned>(object.which())) +
               "): this manager is older than the one that wrote it, or the data is corrupt");
}

// Reads every text reachable in the object, so a text without its NUL terminator (which the copy
// into canonical form does not check) is refused now instead of throwing at a later reader.
void requireReadableTexts(capnp::DynamicValue::Reader value);

void requireReadableTexts(capnp::DynamicStruct::Reader object) {
  auto visit = [&](capnp::StructSchema::Field field) {
    auto proto = field.getProto();
    if (proto.isGroup()) {
      requireReadableTexts(object.get(field));
      return;
    }
    switch (field.getType().which()) {
      case capnp::schema::Type::TEXT:
      case capnp::schema::Type::STRUCT:
      case capnp::schema::Type::LIST:
        if (object.has(field)) requireReadableTexts(object.get(field));
        return;
      default: return;
    }
  };
  for (auto field : object.getSchema().getNonUnionFields()) visit(field);
  KJ_IF_MAYBE (member, object.which()) { visit(*member); }
}

void requireReadableTexts(capnp::DynamicValue::Reader value) {
  switch (value.getType()) {
    case capnp::DynamicValue::STRUCT: requireReadableTexts(value.as<capnp::DynamicStruct>()); return;
    case capnp::DynamicValue::LIST:
      for (auto element : value.as<capnp::DynamicList>()) requireReadableTexts(element);
      return;
    default: return;  // texts were checked by get(); other values need no check
  }
}

}  // namespace

std::string_view kindName(Kind kind) {
  switch (kind) {
    case Kind::cluster: return "cluster";
    case Kind::node: return "node";
    case Kind::service: return "service";
    case Kind::task: return "task";
    case Kind::secret: return "secret";
    case Kind::config: return "config";
  }
  return "object";
}

std::optional<Kind> kindFromName(std::string_view name) {
  for (Kind kind : kAllKinds) {
    if (kindName(kind) == name) return kind;
  }
  return std::nullopt;
}

schema::Kind toSchema(Kind kind) { return static_cast<schema::Kind>(kind); }

std::optional<Kind> fromSchema(schema::Kind kind) {
  auto value = static_cast<unsigned>(kind);
  if (value >= kAllKinds.size()) return std::nullopt;
  return static_cast<Kind>(value);
}

std::optional<Kind> kindOf(schema::Object::Reader object) {
  switch (object.which()) {
    case Which::CLUSTER: return Kind::cluster;
    case Which::NODE: return Kind::node;
    case Which::SERVICE: return Kind::service;
    case Which::TASK: return Kind::task;
    case Which::SECRET: return Kind::secret;
    case Which::CONFIG: return Kind::config;
  }
  return std::nullopt;
}

bool hasUniqueNames(Kind kind) { return kind != Kind::node && kind != Kind::task; }

std::string lowerName(std::string_view name) {
  std::string lowered(name);
  for (char& c : lowered) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return lowered;
}

std::string describeObject(Kind kind, std::string_view id, std::string_view name) {
  std::string text(kindName(kind));
  text += ' ';
  text += id;
  if (!name.empty()) {
    text += " (";
    text += name;
    text += ')';
  }
  return text;
}

void copyObject(schema::Object::Builder to, schema::Object::Reader from) {
  switch (from.which()) {
    case Which::CLUSTER: to.setCluster(from.getCluster()); return;
    case Which::NODE: to.setNode(from.getNode()); return;
    case Which::SERVICE: to.setService(from.getService()); return;
    case Which::TASK: to.setTask(from.getTask()); return;
    case Which::SECRET: to.setSecret(from.getSecret()); return;
    case Which::CONFIG: to.setConfig(from.getConfig()); return;
  }
  unknownMember(from);
}

swarm::schema::Meta::Builder metaOf(schema::Object::Builder object) {
  switch (object.which()) {
    case Which::CLUSTER: return object.getCluster().getMeta();
    case Which::NODE: return object.getNode().getMeta();
    case Which::SERVICE: return object.getService().getMeta();
    case Which::TASK: return object.getTask().getMeta();
    case Which::SECRET: return object.getSecret().getMeta();
    case Which::CONFIG: return object.getConfig().getMeta();
  }
  unknownMember(object.asReader());
}

swarm::schema::Meta::Reader metaOf(schema::Object::Reader object) {
  switch (object.which()) {
    case Which::CLUSTER: return object.getCluster().getMeta();
    case Which::NODE: return object.getNode().getMeta();
    case Which::SERVICE: return object.getService().getMeta();
    case Which::TASK: return object.getTask().getMeta();
    case Which::SECRET: return object.getSecret().getMeta();
    case Which::CONFIG: return object.getConfig().getMeta();
  }
  unknownMember(object);
}

kj::StringPtr idOf(schema::Object::Reader object) {
  switch (object.which()) {
    case Which::CLUSTER: return object.getCluster().getId();
    case Which::NODE: return object.getNode().getId();
    case Which::SERVICE: return object.getService().getId();
    case Which::TASK: return object.getTask().getId();
    case Which::SECRET: return object.getSecret().getId();
    case Which::CONFIG: return object.getConfig().getId();
  }
  unknownMember(object);
}

std::string nameOf(schema::Object::Reader object) {
  switch (object.which()) {
    case Which::CLUSTER: return object.getCluster().getSpec().getAnnotations().getName().cStr();
    case Which::NODE: {
      auto node = object.getNode();
      kj::StringPtr name = node.getSpec().getAnnotations().getName();
      return name.size() > 0 ? name.cStr() : node.getDescription().getHostname().cStr();
    }
    case Which::SERVICE: return object.getService().getSpec().getAnnotations().getName().cStr();
    case Which::TASK: return object.getTask().getAnnotations().getName().cStr();
    case Which::SECRET: return object.getSecret().getSpec().getAnnotations().getName().cStr();
    case Which::CONFIG: return object.getConfig().getSpec().getAnnotations().getName().cStr();
  }
  unknownMember(object);
}

std::shared_ptr<const StoredObject> StoredObject::fromReader(schema::Object::Reader object) {
  auto kind = kindOf(object);
  if (!kind) unknownMember(object);
  kj::StringPtr id = idOf(object);
  if (id.size() == 0) {
    detail::fail("a " + std::string(kindName(*kind)) + " without an ID: every object needs one");
  }
  if (id.size() > kMaxIdLength) {
    detail::fail(std::string(kindName(*kind)) + " ID of " + std::to_string(id.size()) +
                 " characters: at most " + std::to_string(kMaxIdLength) + " are allowed");
  }
  for (char c : id) {
    if (!isIdCharacter(c)) {
      detail::fail(std::string(kindName(*kind)) + " ID \"" + std::string(id.cStr()) +
                   "\" is not an ID: use ASCII letters, digits, '.', '_' and '-' only");
    }
  }
  // canonicalize() copies through the checked reader, so the result is well-formed and may be
  // read without bounds checks from now on.
  auto words = capnp::canonicalize(object);
  requireReadableTexts(capnp::toDynamic(capnp::readMessageUnchecked<schema::Object>(words.begin())));
  return std::make_shared<const StoredObject>(Private{}, *kind, kj::mv(words));
}

StoredObject::StoredObject(Private, Kind kind, kj::Array<capnp::word> words)
    : kind_(kind), words_(kj::mv(words)) {
  auto object = reader();
  id_ = idOf(object).cStr();
  name_ = nameOf(object);
  version_ = metaOf(object).getVersion().getIndex();
}

int64_t StoredObject::createdAt() const { return metaOf(reader()).getCreatedAt(); }
int64_t StoredObject::updatedAt() const { return metaOf(reader()).getUpdatedAt(); }

schema::Object::Reader StoredObject::reader() const {
  return capnp::readMessageUnchecked<schema::Object>(words_.begin());
}

namespace {
void requireKind(const StoredObject& object, Kind wanted) {
  if (object.kind() != wanted) {
    detail::fail(object.describe() + " is not a " + std::string(kindName(wanted)));
  }
}
}  // namespace

schema::Cluster::Reader StoredObject::cluster() const {
  requireKind(*this, Kind::cluster);
  return reader().getCluster();
}
swarm::schema::Node::Reader StoredObject::node() const {
  requireKind(*this, Kind::node);
  return reader().getNode();
}
schema::Service::Reader StoredObject::service() const {
  requireKind(*this, Kind::service);
  return reader().getService();
}
swarm::schema::Task::Reader StoredObject::task() const {
  requireKind(*this, Kind::task);
  return reader().getTask();
}
swarm::schema::Secret::Reader StoredObject::secret() const {
  requireKind(*this, Kind::secret);
  return reader().getSecret();
}
swarm::schema::Config::Reader StoredObject::config() const {
  requireKind(*this, Kind::config);
  return reader().getConfig();
}

std::string StoredObject::describe() const { return describeObject(kind_, id_, name_); }

}  // namespace swarm::store
