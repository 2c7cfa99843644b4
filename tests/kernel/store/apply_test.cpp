// Store::apply(): every rule and refusal, versions and timestamps, all-or-nothing, replays,
// malformed entries, and the TransactionBuilder's limits.
#include "fixtures.h"

#include <capnp/serialize.h>

using namespace swarm::store;
using namespace swarm::store::testing;
using Catch::Matchers::Contains;

namespace {

constexpr int64_t kSecond = 1'000'000'000;

ApplyResult updateOf(Store& store, Built object, uint64_t expectedVersion) {
  TransactionBuilder transaction;
  transaction.update(object.reader(), expectedVersion);
  return commit(store, transaction);
}

ApplyResult removeOf(Store& store, Kind kind, const std::string& id, uint64_t expectedVersion) {
  TransactionBuilder transaction;
  transaction.remove(kind, id, expectedVersion);
  return commit(store, transaction);
}

}  // namespace

TEST_CASE("create stores the object at the entry's index with its proposedAt as both times") {
  Store store;
  TransactionBuilder transaction;
  auto web = service("svc1", "web");
  transaction.create(web.reader());
  REQUIRE(applyEntry(store, 7, transaction.encode(kT0)).ok());

  auto stored = store.get(Kind::service, "svc1");
  REQUIRE(stored);
  CHECK(stored->kind() == Kind::service);
  CHECK(stored->id() == "svc1");
  CHECK(stored->name() == "web");
  CHECK(stored->version() == 7);
  CHECK(stored->createdAt() == kT0);
  CHECK(stored->updatedAt() == kT0);
  CHECK(stored->service().getSpec().getMode().getReplicated() == 1);
  CHECK(store.appliedIndex() == 7);
  CHECK(store.size(Kind::service) == 1);
}

TEST_CASE("whatever Meta the proposer wrote is replaced by the store's") {
  Store store;
  auto web = service("svc1", "web");
  auto meta = web.root().getService().getMeta();
  meta.initVersion().setIndex(999);
  meta.setCreatedAt(1);
  meta.setUpdatedAt(2);
  TransactionBuilder transaction;
  transaction.create(web.reader());
  REQUIRE(applyEntry(store, 3, transaction.encode(kT0)).ok());
  auto stored = store.get(Kind::service, "svc1");
  CHECK(stored->version() == 3);
  CHECK(stored->createdAt() == kT0);
  CHECK(stored->updatedAt() == kT0);
}

TEST_CASE("update keeps createdAt and sets the new version and updatedAt") {
  Store store;
  TransactionBuilder first;
  first.create(service("svc1", "web").reader());
  REQUIRE(applyEntry(store, 1, first.encode(kT0)).ok());
  auto before = store.get(Kind::service, "svc1");

  auto changed = copyOf(before);
  changed.root().getService().getSpec().getMode().setReplicated(5);
  TransactionBuilder second;
  second.update(changed.reader(), before->version());
  REQUIRE(applyEntry(store, 4, second.encode(kT0 + 60 * kSecond)).ok());

  auto after = store.get(Kind::service, "svc1");
  CHECK(after->version() == 4);
  CHECK(after->createdAt() == kT0);
  CHECK(after->updatedAt() == kT0 + 60 * kSecond);
  CHECK(after->service().getSpec().getMode().getReplicated() == 5);
  // Copy-on-write: the old reference still reads the old content.
  CHECK(before->version() == 1);
  CHECK(before->service().getSpec().getMode().getReplicated() == 1);
}

TEST_CASE("create of an existing ID is refused as alreadyExists") {
  Store store;
  REQUIRE(create(store, service("svc1", "web")).ok());
  auto result = create(store, service("svc1", "other"));
  CHECK(result.status == Status::alreadyExists);
  CHECK_THAT(result.message, Contains("service svc1 (web) already exists"));
  CHECK(store.findByName(Kind::service, "other") == nullptr);
}

TEST_CASE("the same ID in two kinds is two objects") {
  Store store;
  REQUIRE(create(store, service("x1", "web")).ok());
  REQUIRE(create(store, secret("x1", "web")).ok());
  CHECK(store.get(Kind::service, "x1")->kind() == Kind::service);
  CHECK(store.get(Kind::secret, "x1")->kind() == Kind::secret);
}

TEST_CASE("an object without an ID, or with a malformed one, is refused as invalid") {
  Store store;
  SECTION("the builder refuses a missing ID up front") {
    TransactionBuilder transaction;
    REQUIRE_THROWS_WITH(transaction.create(service("", "web").reader()),
                        Contains("without an ID"));
    CHECK(transaction.empty());
    REQUIRE_THROWS_WITH(transaction.remove(Kind::task, "", 0), Contains("without naming its ID"));
  }
  SECTION("apply refuses an entry written without the builder's checks") {
    capnp::MallocMessageBuilder message;
    auto transaction = message.initRoot<schema::Transaction>();
    auto action = transaction.initActions(1)[0];
    action.initCreate().initService().initSpec().initAnnotations().setName("web");
    auto words = capnp::messageToFlatArray(message);
    auto result = store.apply(1, words.asBytes());
    CHECK(result.status == Status::invalid);
    CHECK_THAT(result.message, Contains("a service without an ID"));
  }
  SECTION("IDs are ASCII letters, digits, '.', '_', '-'") {
    auto result = create(store, service("bad id", "web"));
    CHECK(result.status == Status::invalid);
    CHECK_THAT(result.message, Contains("is not an ID"));
  }
  CHECK(store.size(Kind::service) == 0);
}

TEST_CASE("cluster, service, secret and config names are unique, case-insensitively") {
  Store store;
  REQUIRE(create(store, service("svc1", "web")).ok());
  REQUIRE(create(store, secret("sec1", "db-password")).ok());
  REQUIRE(create(store, config("cfg1", "nginx.conf")).ok());
  REQUIRE(create(store, cluster("clu1", "default")).ok());

  auto clash = create(store, service("svc2", "WEB"));
  CHECK(clash.status == Status::alreadyExists);
  CHECK_THAT(clash.message, Contains("name conflicts with an existing object"));
  CHECK_THAT(clash.message, Contains("service svc1 (web)"));
  CHECK(create(store, secret("sec2", "DB-Password")).status == Status::alreadyExists);
  CHECK(create(store, config("cfg2", "NGINX.conf")).status == Status::alreadyExists);
  CHECK(create(store, cluster("clu2", "Default")).status == Status::alreadyExists);

  // A name is per kind: a secret may share a service's name.
  CHECK(create(store, secret("sec3", "web")).ok());

  SECTION("renaming into a taken name is refused; keeping one's own name is not") {
    REQUIRE(create(store, service("svc3", "api")).ok());
    auto api = store.get(Kind::service, "svc3");
    auto renamed = copyOf(api);
    renamed.root().getService().getSpec().getAnnotations().setName("Web");
    CHECK(updateOf(store, kj::mv(renamed), api->version()).status == Status::alreadyExists);

    auto recased = copyOf(api);
    recased.root().getService().getSpec().getAnnotations().setName("API");
    REQUIRE(updateOf(store, kj::mv(recased), api->version()).ok());
    CHECK(store.findByName(Kind::service, "api")->name() == "API");
  }
  SECTION("a removed object's name is free again") {
    REQUIRE(removeOf(store, Kind::service, "svc1", 0).ok());
    CHECK(create(store, service("svc2", "web")).ok());
  }
  SECTION("those kinds need a name") {
    auto nameless = create(store, service("svc9", ""));
    CHECK(nameless.status == Status::invalid);
    CHECK_THAT(nameless.message, Contains("has no name"));
  }
}

TEST_CASE("node and task names may repeat") {
  Store store;
  REQUIRE(create(store, node("n1", "worker")).ok());
  REQUIRE(create(store, node("n2", "WORKER")).ok());
  REQUIRE(create(store, task("t1", "svc1", "n1", 1)).ok());
  REQUIRE(create(store, task("t2", "svc2", "n1", 1)).ok());  // both named "web.1"
  CHECK(store.findAllByName(Kind::node, "worker").size() == 2);
  CHECK(store.findByName(Kind::node, "Worker")->id() == "n1");
  CHECK(store.findAllByName(Kind::task, "web.1").size() == 2);
}

TEST_CASE("a node is named by its spec name, else its hostname") {
  Store store;
  auto named = node("n1", "host-a");
  named.root().getNode().getSpec().initAnnotations().setName("edge");
  REQUIRE(create(store, kj::mv(named)).ok());
  REQUIRE(create(store, node("n2", "host-b")).ok());
  CHECK(store.get(Kind::node, "n1")->name() == "edge");
  CHECK(store.get(Kind::node, "n2")->name() == "host-b");
  CHECK(store.findByName(Kind::node, "host-a") == nullptr);
}

TEST_CASE("update needs the object at exactly the expected version") {
  Store store;
  REQUIRE(create(store, service("svc1", "web")).ok());
  auto current = store.get(Kind::service, "svc1");

  SECTION("a stale version is an out-of-sequence conflict") {
    auto result = updateOf(store, copyOf(current), current->version() + 1);
    CHECK(result.status == Status::conflict);
    CHECK_THAT(result.message, Contains("update out of sequence"));
    CHECK_THAT(result.message, Contains("service svc1 (web) is at version 1"));
    CHECK(httpStatus(result.status) == 409);
  }
  SECTION("version 0 is not a wildcard for updates") {
    CHECK(updateOf(store, copyOf(current), 0).status == Status::conflict);
  }
  SECTION("two writers from the same read: the second one conflicts") {
    REQUIRE(updateOf(store, copyOf(current), current->version()).ok());
    CHECK(updateOf(store, copyOf(current), current->version()).status == Status::conflict);
  }
  SECTION("an update of a missing object is notFound") {
    auto result = updateOf(store, service("svc404", "nothing"), 1);
    CHECK(result.status == Status::notFound);
    CHECK(result.message == "no such service: svc404");
    CHECK(httpStatus(result.status) == 404);
  }
}

TEST_CASE("remove checks the version, and expectedVersion 0 removes whatever the version") {
  Store store;
  REQUIRE(create(store, service("svc1", "web")).ok());
  REQUIRE(create(store, service("svc2", "api")).ok());

  auto conflict = removeOf(store, Kind::service, "svc1", 99);
  CHECK(conflict.status == Status::conflict);
  CHECK_THAT(conflict.message, Contains("remove out of sequence"));
  CHECK(store.get(Kind::service, "svc1"));

  CHECK(removeOf(store, Kind::service, "svc1", 1).ok());
  CHECK(store.get(Kind::service, "svc1") == nullptr);
  CHECK(removeOf(store, Kind::service, "svc2", 0).ok());
  CHECK(store.size(Kind::service) == 0);

  auto missing = removeOf(store, Kind::service, "svc1", 0);
  CHECK(missing.status == Status::notFound);
  CHECK(missing.message == "no such service: svc1");
}

TEST_CASE("a refused transaction changes nothing, and the applied index still advances") {
  Store store;
  REQUIRE(create(store, service("svc1", "web")).ok());
  std::string before = contentOf(store);

  auto current = store.get(Kind::service, "svc1");
  auto changed = copyOf(current);
  changed.root().getService().getSpec().getMode().setReplicated(9);

  TransactionBuilder refused;
  refused.create(service("svc2", "api").reader());
  refused.create(task("t1", "svc2", "n1").reader());
  refused.update(changed.reader(), current->version());
  refused.create(service("svc4", "API").reader());  // clashes with svc2, created just above
  auto result = commit(store, refused);
  CHECK(result.status == Status::alreadyExists);
  CHECK(result.action == 3);
  CHECK(store.appliedIndex() == 2);
  CHECK(contentOf(store) == before);
  CHECK(store.get(Kind::service, "svc2") == nullptr);
  CHECK(store.tasksOfService("svc2").empty());
  CHECK(store.findByName(Kind::service, "api") == nullptr);
  CHECK(store.get(Kind::service, "svc1")->service().getSpec().getMode().getReplicated() == 1);

  SECTION("the same transaction without the clash applies whole") {
    TransactionBuilder fixed;
    fixed.create(service("svc2", "api").reader());
    fixed.create(task("t1", "svc2", "n1").reader());
    fixed.update(changed.reader(), current->version());
    REQUIRE(commit(store, fixed).ok());
    CHECK(store.get(Kind::service, "svc2"));
    CHECK(store.tasksOfService("svc2").size() == 1);
    CHECK(store.get(Kind::service, "svc1")->service().getSpec().getMode().getReplicated() == 9);
  }
}

TEST_CASE("one transaction may create, update and remove the same object in turn") {
  Store store;
  TransactionBuilder transaction;
  transaction.create(service("svc1", "web").reader());
  auto changed = service("svc1", "web", 3);
  transaction.update(changed.reader(), 5);  // the create above puts it at version 5
  REQUIRE(applyEntry(store, 5, transaction.encode(kT0)).ok());
  CHECK(store.get(Kind::service, "svc1")->service().getSpec().getMode().getReplicated() == 3);

  TransactionBuilder again;
  again.remove(Kind::service, "svc1", 5);
  again.create(service("svc1", "web", 7).reader());
  REQUIRE(applyEntry(store, 6, again.encode(kT0 + kSecond)).ok());
  auto recreated = store.get(Kind::service, "svc1");
  CHECK(recreated->version() == 6);
  CHECK(recreated->createdAt() == kT0 + kSecond);
}

TEST_CASE("entries at or before the applied index are refused as replays") {
  Store store;
  TransactionBuilder transaction;
  transaction.create(service("svc1", "web").reader());
  std::string entry = transaction.encode(kT0);
  REQUIRE(applyEntry(store, 10, entry).ok());
  std::string digest = store.digest();

  for (uint64_t index : {uint64_t{10}, uint64_t{3}, uint64_t{0}}) {
    auto replay = applyEntry(store, index, entry);
    CHECK(replay.status == Status::replay);
    CHECK_THAT(replay.message, Contains("already applied"));
  }
  CHECK(store.appliedIndex() == 10);
  CHECK(store.digest() == digest);
  // The index 0 never applies, even to an empty store.
  Store fresh;
  CHECK(applyEntry(fresh, 0, entry).status == Status::replay);
}

TEST_CASE("malformed entries are refused with a clear error and change nothing") {
  Store store;
  REQUIRE(create(store, service("svc1", "web")).ok());
  std::string before = contentOf(store);
  uint64_t index = store.appliedIndex();

  auto refusedWith = [&](kj::ArrayPtr<const kj::byte> entry, const std::string& words) {
    auto result = store.apply(++index, entry);
    CHECK(result.status == Status::invalid);
    CHECK_THAT(result.message, Contains(words));
    CHECK(store.appliedIndex() == index);
    CHECK(contentOf(store) == before);
  };

  SECTION("not whole words") {
    std::string odd = "abc";
    refusedWith(bytesOf(odd), "not a whole number of 8-byte words");
    refusedWith(nullptr, "not a whole number of 8-byte words");
  }
  SECTION("a segment table promising more than there is") {
    std::string bogus("\x00\x00\x00\x00\xff\x00\x00\x00", 8);
    refusedWith(bytesOf(bogus), "malformed transaction");
  }
  SECTION("an empty transaction") {
    capnp::MallocMessageBuilder message;
    message.initRoot<schema::Transaction>().setProposedAt(kT0);
    refusedWith(capnp::messageToFlatArray(message).asBytes(), "no actions");
  }
  SECTION("an object of a kind this build does not know") {
    capnp::MallocMessageBuilder message;
    auto action = message.initRoot<schema::Transaction>().initActions(1)[0];
    auto object = action.initCreate();
    object.initService().setId("svc2");
    setDiscriminant<schema::Object>(object, 41);
    refusedWith(capnp::messageToFlatArray(message).asBytes(), "unknown kind (union member 41)");
  }
  SECTION("an action this build does not know") {
    capnp::MallocMessageBuilder message;
    auto action = message.initRoot<schema::Transaction>().initActions(1)[0];
    action.initCreate().initService().setId("svc2");
    setDiscriminant<schema::Action>(action, 7);
    refusedWith(capnp::messageToFlatArray(message).asBytes(), "action of unknown type");
  }
  SECTION("a removal of an unknown kind or without an ID") {
    capnp::MallocMessageBuilder message;
    auto action = message.initRoot<schema::Transaction>().initActions(1)[0];
    action.initRemove().setKind(static_cast<schema::Kind>(17));
    action.getRemove().setId("svc1");
    refusedWith(capnp::messageToFlatArray(message).asBytes(), "unknown kind (enumerant 17)");
    action.getRemove().setKind(schema::Kind::SERVICE);
    action.getRemove().setId("");
    refusedWith(capnp::messageToFlatArray(message).asBytes(), "without an ID");
  }
  SECTION("a valid action followed by a malformed one") {
    capnp::MallocMessageBuilder message;
    auto actions = message.initRoot<schema::Transaction>().initActions(2);
    actions[0].initCreate().initService().setId("svc2");
    actions[0].getCreate().getService().initSpec().initAnnotations().setName("api");
    actions[1].initCreate().initSecret();  // no ID
    refusedWith(capnp::messageToFlatArray(message).asBytes(), "a secret without an ID");
  }
}

TEST_CASE("TransactionBuilder refuses empty, too many and too large transactions") {
  TransactionBuilder transaction;
  REQUIRE_THROWS_WITH(transaction.encode(kT0), Contains("empty transaction"));

  for (size_t i = 0; i < TransactionBuilder::kMaxActions; ++i) {
    transaction.remove(Kind::task, "t" + std::to_string(i), 0);
  }
  CHECK_NOTHROW(transaction.encode(kT0));
  transaction.remove(Kind::task, "one-too-many", 0);
  CHECK(transaction.actionCount() == 201);
  REQUIRE_THROWS_WITH(transaction.encode(kT0), Contains("at most 200"));

  TransactionBuilder large;
  for (int i = 0; i < 4; ++i) {
    auto big = secret("sec" + std::to_string(i), "big" + std::to_string(i));
    std::string data(400 * 1024, 'x');
    big.root().getSecret().getSpec().setData(kj::StringPtr(data.c_str()).asBytes());
    large.create(big.reader());
  }
  CHECK(large.sizeEstimate() > TransactionBuilder::kMaxEntryBytes);
  REQUIRE_THROWS_WITH(large.encode(kT0), Contains("fit in one consensus entry"));
}

TEST_CASE("the builder's per-kind overloads write the same entry as the Object form") {
  auto web = service("svc1", "web");
  TransactionBuilder generic;
  generic.create(web.reader());
  TransactionBuilder specific;
  specific.create(web.reader().getService());
  CHECK(generic.encode(kT0) == specific.encode(kT0));
  CHECK(generic.sizeEstimate() >= generic.encode(kT0).size());
}

TEST_CASE("tasks are indexed by service and node, following updates and removals") {
  Store store;
  TransactionBuilder setup;
  setup.create(task("t1", "svc1", "n1").reader());
  setup.create(task("t2", "svc1", "").reader());
  setup.create(task("t3", "svc2", "n1").reader());
  REQUIRE(commit(store, setup).ok());

  auto ids = [](const std::vector<ObjectRef>& objects) {
    std::vector<std::string> out;
    for (const auto& object : objects) out.push_back(object->id());
    return out;
  };
  CHECK(ids(store.tasksOfService("svc1")) == std::vector<std::string>{"t1", "t2"});
  CHECK(ids(store.tasksOnNode("n1")) == std::vector<std::string>{"t1", "t3"});
  CHECK(store.tasksOnNode("").empty());

  auto t2 = store.get(Kind::task, "t2");
  auto assigned = copyOf(t2);
  assigned.root().getTask().setNodeId("n2");
  REQUIRE(updateOf(store, kj::mv(assigned), t2->version()).ok());
  CHECK(ids(store.tasksOnNode("n2")) == std::vector<std::string>{"t2"});

  REQUIRE(removeOf(store, Kind::task, "t1", 0).ok());
  CHECK(ids(store.tasksOfService("svc1")) == std::vector<std::string>{"t2"});
  CHECK(ids(store.tasksOnNode("n1")) == std::vector<std::string>{"t3"});
}

TEST_CASE("statuses map to Docker's HTTP statuses") {
  CHECK(httpStatus(Status::ok) == 200);
  CHECK(httpStatus(Status::conflict) == 409);
  CHECK(httpStatus(Status::notFound) == 404);
  CHECK(httpStatus(Status::alreadyExists) == 409);
  CHECK(httpStatus(Status::invalid) == 400);
  CHECK(statusName(Status::notFound) == "not found");
}
