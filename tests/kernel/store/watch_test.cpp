// Watches: event order, commit after the whole transaction, filters, unsubscribing during
// delivery, and the reset event of a restore.
#include "fixtures.h"

using namespace swarm::store;
using namespace swarm::store::testing;
using Catch::Matchers::Contains;

namespace {

std::string describeEvent(const Event& event) {
  switch (event.type) {
    case Event::Type::create: return "create " + event.newObject->id() + "@" + std::to_string(event.index);
    case Event::Type::update:
      return "update " + event.newObject->id() + " v" + std::to_string(event.oldObject->version()) +
             "->v" + std::to_string(event.newObject->version());
    case Event::Type::remove: return "remove " + event.oldObject->id() + "@" + std::to_string(event.index);
    case Event::Type::commit: return "commit@" + std::to_string(event.index);
    case Event::Type::reset: return "reset@" + std::to_string(event.index);
  }
  return "?";
}

}  // namespace

TEST_CASE("watchers get a transaction's changes in order, then one commit") {
  Store store;
  std::vector<std::string> seen;
  auto subscription = store.subscribe([&](const Event& event) { seen.push_back(describeEvent(event)); });

  REQUIRE(create(store, service("svc1", "web")).ok());
  TransactionBuilder transaction;
  transaction.create(task("t1", "svc1", "n1").reader());
  transaction.update(service("svc1", "web", 3).reader(), 1);
  transaction.remove(Kind::task, "t1", 0);
  REQUIRE(commit(store, transaction).ok());

  CHECK(seen == std::vector<std::string>{"create svc1@1", "commit@1", "create t1@2",
                                         "update svc1 v1->v2", "remove t1@2", "commit@2"});
}

TEST_CASE("events carry the kind and the old and new objects") {
  Store store;
  REQUIRE(create(store, secret("sec1", "pw")).ok());
  std::vector<Event> events;
  auto subscription = store.subscribe([&](const Event& event) { events.push_back(event); });
  auto current = store.get(Kind::secret, "sec1");
  auto relabelled = copyOf(current);
  relabelled.root().getSecret().getSpec().getAnnotations().initLabels(1)[0].setKey("team");
  TransactionBuilder transaction;
  transaction.update(relabelled.reader(), current->version());
  REQUIRE(commit(store, transaction).ok());

  REQUIRE(events.size() == 2);
  CHECK(events[0].type == Event::Type::update);
  CHECK(events[0].kind == Kind::secret);
  CHECK(events[0].oldObject == current);
  CHECK(events[0].newObject == store.get(Kind::secret, "sec1"));
  CHECK(events[0].newObject->secret().getSpec().getAnnotations().getLabels().size() == 1);
  CHECK(events[0].index == 2);
}

TEST_CASE("events are delivered once the whole transaction is in the store") {
  Store store;
  std::vector<bool> bothPresent;
  auto subscription = store.subscribe([&](const Event& event) {
    if (event.type == Event::Type::create) {
      bothPresent.push_back(store.get(Kind::service, "svc1") && store.get(Kind::service, "svc2"));
    }
  });
  TransactionBuilder transaction;
  transaction.create(service("svc1", "web").reader());
  transaction.create(service("svc2", "api").reader());
  REQUIRE(commit(store, transaction).ok());
  CHECK(bothPresent == std::vector<bool>{true, true});
}

TEST_CASE("a refused transaction delivers nothing") {
  Store store;
  REQUIRE(create(store, service("svc1", "web")).ok());
  int events = 0;
  auto subscription = store.subscribe([&](const Event&) { ++events; });
  TransactionBuilder transaction;
  transaction.create(service("svc2", "api").reader());
  transaction.create(service("svc3", "web").reader());
  CHECK(commit(store, transaction).status == Status::alreadyExists);
  CHECK(events == 0);
}

TEST_CASE("a filter chooses changes while commit and reset always pass") {
  Store store;
  std::vector<std::string> seen;
  auto tasksOnly = store.subscribe([&](const Event& event) { seen.push_back(describeEvent(event)); },
                                   [](const Event& event) { return event.kind == Kind::task; });
  TransactionBuilder transaction;
  transaction.create(service("svc1", "web").reader());
  transaction.create(task("t1", "svc1", "n1").reader());
  REQUIRE(commit(store, transaction).ok());
  CHECK(seen == std::vector<std::string>{"create t1@1", "commit@1"});
}

TEST_CASE("a callback may unsubscribe itself and others during delivery") {
  Store store;
  std::vector<std::string> seen;
  Subscription first, second, third;
  first = store.subscribe([&](const Event& event) {
    seen.push_back("first " + describeEvent(event));
    first.reset();   // itself, while running
    third.reset();   // another, not yet called for this event
  });
  second = store.subscribe([&](const Event& event) { seen.push_back("second " + describeEvent(event)); });
  third = store.subscribe([&](const Event& event) { seen.push_back("third " + describeEvent(event)); });

  REQUIRE(create(store, service("svc1", "web")).ok());
  CHECK(seen == std::vector<std::string>{"first create svc1@1", "second create svc1@1",
                                         "second commit@1"});
  CHECK_FALSE(first.active());
  CHECK(second.active());
  CHECK_FALSE(third.active());

  seen.clear();
  second.reset();
  REQUIRE(create(store, service("svc2", "api")).ok());
  CHECK(seen.empty());
}

TEST_CASE("a subscriber added during delivery starts with the next transaction") {
  Store store;
  std::vector<std::string> late;
  Subscription lateSubscription;
  auto subscription = store.subscribe([&](const Event& event) {
    if (event.type == Event::Type::commit && !lateSubscription.active()) {
      lateSubscription = store.subscribe([&](const Event& e) { late.push_back(describeEvent(e)); });
    }
  });
  REQUIRE(create(store, service("svc1", "web")).ok());
  CHECK(late.empty());
  REQUIRE(create(store, service("svc2", "api")).ok());
  CHECK(late == std::vector<std::string>{"create svc2@2", "commit@2"});
}

TEST_CASE("apply from a watch callback is refused and a throwing callback does not starve others") {
  Store store;
  int othersSaw = 0;
  TransactionBuilder nested;
  nested.create(service("svc9", "nested").reader());
  std::string nestedEntry = nested.encode(kT0);
  auto reentrant = store.subscribe([&](const Event& event) {
    if (event.type == Event::Type::commit) applyEntry(store, 100, nestedEntry);
  });
  auto other = store.subscribe([&](const Event&) { ++othersSaw; });
  REQUIRE_THROWS_WITH(create(store, service("svc1", "web")), Contains("from a watch callback"));
  CHECK(othersSaw == 2);                           // create and commit
  CHECK(store.get(Kind::service, "svc1"));         // the transaction itself is applied
  CHECK(store.get(Kind::service, "svc9") == nullptr);
  CHECK(store.appliedIndex() == 1);
}

TEST_CASE("a subscription may outlive its store") {
  Subscription subscription;
  {
    Store store;
    subscription = store.subscribe([](const Event&) {});
    CHECK(subscription.active());
  }
  CHECK_FALSE(subscription.active());
  subscription.reset();  // harmless
}

TEST_CASE("a restore delivers one reset event") {
  Store source;
  REQUIRE(create(source, service("svc1", "web")).ok());
  Store target;
  std::vector<std::string> seen;
  auto subscription = target.subscribe([&](const Event& event) { seen.push_back(describeEvent(event)); });
  auto restore = target.beginRestore();
  for (const auto& chunk : snapshotOf(source, 1024)) restore->addChunk(bytesOf(chunk));
  restore->finish();
  CHECK(seen == std::vector<std::string>{"reset@1"});
}
