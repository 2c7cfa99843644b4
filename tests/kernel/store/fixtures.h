// Test objects and entries for the store tests: small, complete objects of each kind, built in
// their own messages, and helpers to apply encoded transactions.
#pragma once

#include "store.h"

#include <capnp/any.h>
#include <catch2/catch.hpp>
#include <capnp/message.h>
#include <capnp/schema.h>
#include <kj/memory.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace swarm::store::testing {

constexpr int64_t kT0 = 1714979289'000000000;  // 2024-05-06T07:08:09Z

// One object in its own message; reader() is valid while this lives.
struct Built {
  kj::Own<capnp::MallocMessageBuilder> message = kj::heap<capnp::MallocMessageBuilder>();
  schema::Object::Builder root() { return message->getRoot<schema::Object>(); }
  schema::Object::Reader reader() { return root().asReader(); }
};

inline Built service(const std::string& id, const std::string& name, uint64_t replicas = 1) {
  Built b;
  auto s = b.message->initRoot<schema::Object>().initService();
  s.setId(id);
  auto spec = s.initSpec();
  spec.initAnnotations().setName(name);
  spec.getMode().setReplicated(replicas);
  spec.initTask().getRuntime().initContainer().setImage("nginx:1.25");
  return b;
}

inline Built task(const std::string& id, const std::string& serviceId, const std::string& nodeId,
                  uint64_t slot = 1) {
  Built b;
  auto t = b.message->initRoot<schema::Object>().initTask();
  t.setId(id);
  t.setServiceId(serviceId);
  t.setNodeId(nodeId);
  t.setSlot(slot);
  t.initAnnotations().setName("web." + std::to_string(slot));
  t.setDesiredState(swarm::schema::TASK_STATE_RUNNING);
  return b;
}

inline Built node(const std::string& id, const std::string& hostname) {
  Built b;
  auto n = b.message->initRoot<schema::Object>().initNode();
  n.setId(id);
  n.initDescription().setHostname(hostname);
  n.initSpec().setAvailability(swarm::schema::NodeAvailability::ACTIVE);
  return b;
}

inline Built secret(const std::string& id, const std::string& name) {
  Built b;
  auto s = b.message->initRoot<schema::Object>().initSecret();
  s.setId(id);
  s.initSpec().initAnnotations().setName(name);
  s.getSpec().setData(kj::StringPtr("hunter2").asBytes());
  return b;
}

inline Built config(const std::string& id, const std::string& name) {
  Built b;
  auto c = b.message->initRoot<schema::Object>().initConfig();
  c.setId(id);
  c.initSpec().initAnnotations().setName(name);
  return b;
}

inline Built cluster(const std::string& id, const std::string& name = "default") {
  Built b;
  auto c = b.message->initRoot<schema::Object>().initCluster();
  c.setId(id);
  c.initSpec().initAnnotations().setName(name);
  return b;
}

// A copy of a stored object to modify for an update.
inline Built copyOf(const ObjectRef& object) {
  Built b;
  copyObject(b.message->initRoot<schema::Object>(), object->reader());
  return b;
}

inline kj::ArrayPtr<const kj::byte> bytesOf(const std::string& entry) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(entry.data()), entry.size());
}

inline ApplyResult applyEntry(Store& store, uint64_t index, const std::string& entry) {
  return store.apply(index, bytesOf(entry));
}

// Applies a transaction at the next index, proposed at kT0 + index seconds.
inline ApplyResult commit(Store& store, const TransactionBuilder& transaction) {
  uint64_t index = store.appliedIndex() + 1;
  return applyEntry(store, index,
                    transaction.encode(kT0 + static_cast<int64_t>(index) * 1'000'000'000));
}

inline ApplyResult create(Store& store, Built object) {
  TransactionBuilder transaction;
  transaction.create(object.reader());
  return commit(store, transaction);
}

// Every object's canonical bytes in kind then ID order: the content, without the applied index.
inline std::string contentOf(const Store& store) {
  std::string content;
  for (Kind kind : kAllKinds) {
    for (const auto& object : store.list(kind)) {
      auto bytes = object->canonicalWords().asBytes();
      content.append(reinterpret_cast<const char*>(bytes.begin()), bytes.size());
    }
  }
  return content;
}

// The snapshot's chunks, each as a string.
inline std::vector<std::string> snapshotOf(const Store& store, size_t chunkBytes) {
  std::vector<std::string> chunks;
  store.writeSnapshot(chunkBytes, [&](kj::ArrayPtr<const kj::byte> chunk) {
    chunks.emplace_back(reinterpret_cast<const char*>(chunk.begin()), chunk.size());
  });
  return chunks;
}

// Sets a struct's union discriminant to a raw value (to forge a member this build doesn't know).
template <typename Schema, typename Builder>
void setDiscriminant(Builder builder, uint16_t value) {
  auto offset = capnp::Schema::from<Schema>().getProto().getStruct().getDiscriminantOffset();
  auto data = capnp::toAny(builder).getDataSection();
  data[offset * 2] = static_cast<kj::byte>(value & 0xff);
  data[offset * 2 + 1] = static_cast<kj::byte>(value >> 8);
}

// A test's seed: STORE_TEST_SEED when set (to replay a failure), else `fallback`.
inline uint64_t testSeed(uint64_t fallback) {
  const char* text = std::getenv("STORE_TEST_SEED");
  return text != nullptr ? std::strtoull(text, nullptr, 10) : fallback;
}

}  // namespace swarm::store::testing

namespace Catch {
template <>
struct StringMaker<swarm::store::Status> {
  static std::string convert(swarm::store::Status status) {
    return std::string(swarm::store::statusName(status));
  }
};
template <>
struct StringMaker<swarm::store::ApplyResult> {
  static std::string convert(const swarm::store::ApplyResult& result) {
    return std::string(swarm::store::statusName(result.status)) +
           (result.message.empty() ? "" : ": " + result.message);
  }
};
}  // namespace Catch
