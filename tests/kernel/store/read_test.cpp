// Reads: get, findByName, list order, sizes, and Docker-style resolve (ID, name, unique prefix).
#include "fixtures.h"

using namespace swarm::store;
using namespace swarm::store::testing;
using Catch::Matchers::Contains;

TEST_CASE("list returns objects in ID order and size counts them") {
  Store store;
  REQUIRE(create(store, service("b2", "two")).ok());
  REQUIRE(create(store, service("a1", "one")).ok());
  REQUIRE(create(store, service("c3", "three")).ok());
  std::vector<std::string> ids;
  for (const auto& object : store.list(Kind::service)) ids.push_back(object->id());
  CHECK(ids == std::vector<std::string>{"a1", "b2", "c3"});
  CHECK(store.size(Kind::service) == 3);
  CHECK(store.size(Kind::task) == 0);
  CHECK(store.list(Kind::node).empty());
}

TEST_CASE("get and findByName return null when absent and match names case-insensitively") {
  Store store;
  REQUIRE(create(store, service("svc1", "Web")).ok());
  CHECK(store.get(Kind::service, "svc1")->name() == "Web");
  CHECK(store.get(Kind::service, "svc2") == nullptr);
  CHECK(store.get(Kind::secret, "svc1") == nullptr);
  CHECK(store.findByName(Kind::service, "wEB")->id() == "svc1");
  CHECK(store.findByName(Kind::service, "") == nullptr);
  CHECK(store.findByName(Kind::config, "web") == nullptr);
}

TEST_CASE("the per-kind readers refuse an object of another kind") {
  Store store;
  REQUIRE(create(store, service("svc1", "web")).ok());
  auto object = store.get(Kind::service, "svc1");
  CHECK(object->service().getId() == "svc1");
  REQUIRE_THROWS_WITH(object->task(), Contains("service svc1 (web) is not a task"));
  CHECK(object->describe() == "service svc1 (web)");
}

TEST_CASE("resolve: exact ID, then name, then a unique ID prefix, like Docker") {
  Store store;
  REQUIRE(create(store, service("abc123", "web")).ok());
  REQUIRE(create(store, service("abd456", "abc")).ok());  // its name is the other's ID prefix
  REQUIRE(create(store, service("xyz789", "xyz789x")).ok());

  SECTION("an exact ID wins") { CHECK(store.resolve(Kind::service, "abc123").object->id() == "abc123"); }
  SECTION("then an exact name, in any case, even when it is also an ID prefix") {
    CHECK(store.resolve(Kind::service, "ABC").object->id() == "abd456");
    CHECK(store.resolve(Kind::service, "Web").object->id() == "abc123");
  }
  SECTION("then a unique ID prefix") {
    CHECK(store.resolve(Kind::service, "abd").object->id() == "abd456");
    CHECK(store.resolve(Kind::service, "x").object->id() == "xyz789");
  }
  SECTION("an ambiguous prefix lists the matches") {
    auto ambiguous = store.resolve(Kind::service, "ab");
    CHECK_FALSE(ambiguous.ok());
    CHECK(ambiguous.object == nullptr);
    CHECK(ambiguous.status == Status::invalid);
    CHECK_THAT(ambiguous.message, Contains("service ID prefix ab is ambiguous (2 matches found"));
    CHECK_THAT(ambiguous.message, Contains("abc123 (web)"));
    CHECK_THAT(ambiguous.message, Contains("abd456 (abc)"));
  }
  SECTION("nothing matches") {
    auto missing = store.resolve(Kind::service, "nope");
    CHECK(missing.status == Status::notFound);
    CHECK(missing.message == "no such service: nope");
    CHECK(store.resolve(Kind::node, "abc123").message == "no such node: abc123");
  }
  SECTION("an empty text is refused") {
    CHECK(store.resolve(Kind::service, "").status == Status::invalid);
  }
}

TEST_CASE("resolve: two nodes with one hostname are ambiguous by name, not by ID") {
  Store store;
  REQUIRE(create(store, node("n1", "worker")).ok());
  REQUIRE(create(store, node("n2", "worker")).ok());
  auto ambiguous = store.resolve(Kind::node, "worker");
  CHECK(ambiguous.status == Status::invalid);
  CHECK_THAT(ambiguous.message, Contains("node worker is ambiguous (2 matches found: n1, n2)"));
  CHECK(store.resolve(Kind::node, "n2").object->id() == "n2");
}

TEST_CASE("kind names and conversions") {
  CHECK(kindName(Kind::config) == "config");
  CHECK(kindFromName("secret") == Kind::secret);
  CHECK_FALSE(kindFromName("network"));
  for (Kind kind : kAllKinds) CHECK(fromSchema(toSchema(kind)) == kind);
  CHECK_FALSE(fromSchema(static_cast<schema::Kind>(6)));
  CHECK(hasUniqueNames(Kind::service));
  CHECK_FALSE(hasUniqueNames(Kind::task));
}
