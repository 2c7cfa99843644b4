// The store's objects: one immutable, canonical Cap'n Proto message of schema::Object each,
// shared by reference (ObjectRef). The store never mutates an object: an update makes a new one
// (copy-on-write), so a reader taken from an ObjectRef stays valid for as long as that ObjectRef
// lives, whatever the store applies meanwhile.
#pragma once

#include <swarm/store/store.capnp.h>

#include <capnp/common.h>
#include <kj/array.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace swarm::store {

enum class Kind : uint8_t { cluster, node, service, task, secret, config };
// Same order as schema::Kind: the snapshot order and the order of list()/digest() across kinds.

inline constexpr std::array<Kind, 6> kAllKinds = {Kind::cluster, Kind::node,   Kind::service,
                                                  Kind::task,    Kind::secret, Kind::config};

std::string_view kindName(Kind kind);
// "cluster", "node", "service", "task", "secret", "config": the word used in every message.
std::optional<Kind> kindFromName(std::string_view name);
schema::Kind toSchema(Kind kind);
std::optional<Kind> fromSchema(schema::Kind kind);
// nullopt for an enumerant this build does not know (a newer writer, or garbage).
std::optional<Kind> kindOf(schema::Object::Reader object);
// nullopt for a union member this build does not know.

bool hasUniqueNames(Kind kind);
// Cluster, service, secret and config names are unique, case-insensitively (swarmkit's name
// index); node and task names are not (nodes are named by hostname, which may repeat).

std::string lowerName(std::string_view name);
// The name index key: ASCII lower case, like swarmkit's.

class StoredObject {
  struct Private {};

 public:
  static std::shared_ptr<const StoredObject> fromReader(schema::Object::Reader object);
  // Copies `object` (untrusted) into canonical form. Throws kj::Exception with a clear message
  // when it is malformed, of an unknown kind, or its ID is empty or not an ID (ASCII letters,
  // digits, '.', '_', '-'; at most 128 characters).

  StoredObject(Private, Kind kind, kj::Array<capnp::word> words);

  Kind kind() const { return kind_; }
  const std::string& id() const { return id_; }
  uint64_t version() const { return version_; }
  // Meta.Version.Index: the consensus index of the object's last change.
  const std::string& name() const { return name_; }
  // Annotations name; a node's is its spec name, else its hostname. "" when it has none.
  int64_t createdAt() const;
  int64_t updatedAt() const;

  schema::Object::Reader reader() const;
  schema::Cluster::Reader cluster() const;
  swarm::schema::Node::Reader node() const;
  schema::Service::Reader service() const;
  swarm::schema::Task::Reader task() const;
  swarm::schema::Secret::Reader secret() const;
  swarm::schema::Config::Reader config() const;
  // The per-kind readers throw kj::Exception when the object is of another kind.

  kj::ArrayPtr<const capnp::word> canonicalWords() const { return words_; }
  // The canonical encoding (one segment, root pointer first): equal content, equal words.
  std::string describe() const;
  // "service 3x9...(web)": how messages name the object.

 private:
  Kind kind_;
  kj::Array<capnp::word> words_;
  std::string id_;
  std::string name_;
  uint64_t version_ = 0;
};

using ObjectRef = std::shared_ptr<const StoredObject>;
// Null when absent.

std::string describeObject(Kind kind, std::string_view id, std::string_view name = {});
// "service <id> (<name>)", or "service <id>" without a name.

void copyObject(schema::Object::Builder to, schema::Object::Reader from);
// Deep copy of the union's member; throws kj::Exception for an unknown member.

swarm::schema::Meta::Builder metaOf(schema::Object::Builder object);
swarm::schema::Meta::Reader metaOf(schema::Object::Reader object);
kj::StringPtr idOf(schema::Object::Reader object);
std::string nameOf(schema::Object::Reader object);
// By kind, as StoredObject::name(); unknown members throw kj::Exception.

}  // namespace swarm::store
