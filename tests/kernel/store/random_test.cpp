// Randomized: garbage and bit-flipped entries never crash and never half-apply; two stores fed
// one random transaction stream end equal (digest), and so does a store restored from a
// snapshot taken midway. Seeds are fixed by default and printed on failure; set
// STORE_TEST_SEED to replay one.
#include "fixtures.h"

#include <random>

using namespace swarm::store;
using namespace swarm::store::testing;

namespace {

// Random transactions over a small ID and name space, so conflicts, name clashes, stale
// versions and missing objects are frequent.
class TransactionStream {
 public:
  explicit TransactionStream(uint64_t seed) : random(seed), ids(seededRandom(seed ^ 0x5eed)) {}

  // An entry built against `view` (what the proposer read, possibly stale).
  std::string next(const Store& view) {
    TransactionBuilder transaction;
    size_t actions = 1 + random() % 6;
    for (size_t i = 0; i < actions; ++i) addAction(transaction, view);
    return transaction.encode(kT0 + static_cast<int64_t>(random() % 1'000'000));
  }

 private:
  std::string pickName() { return "name" + std::to_string(random() % 12); }

  Built randomObject(Kind kind, const std::string& id) {
    switch (kind) {
      case Kind::service: return service(id, pickName(), random() % 5);
      case Kind::task:
        return task(id, "svc" + std::to_string(random() % 4), "node" + std::to_string(random() % 3),
                    random() % 4);
      case Kind::node: return node(id, "host" + std::to_string(random() % 3));
      case Kind::secret: return secret(id, pickName());
      case Kind::config: return config(id, pickName());
      case Kind::cluster: return cluster(id, random() % 2 ? "default" : "other");
    }
    return service(id, pickName());
  }

  void addAction(TransactionBuilder& transaction, const Store& view) {
    Kind kind = kAllKinds[random() % kAllKinds.size()];
    auto existing = view.list(kind);
    int choice = static_cast<int>(random() % 10);
    if (existing.empty() || choice < 4) {
      // Mostly fresh IDs, sometimes a reused one (alreadyExists).
      std::string id = (!existing.empty() && choice == 0) ? existing[random() % existing.size()]->id()
                                                          : newObjectId(ids);
      transaction.create(randomObject(kind, id).reader());
    } else if (choice < 8) {
      auto target = existing[random() % existing.size()];
      uint64_t version = target->version() - (random() % 5 == 0 ? 1 : 0);  // sometimes stale
      transaction.update(randomObject(kind, target->id()).reader(), version);
    } else {
      auto target = existing[random() % existing.size()];
      uint64_t version = random() % 3 == 0 ? 0 : target->version() + (random() % 6 == 0 ? 1 : 0);
      transaction.remove(kind, random() % 8 == 0 ? "missing" : target->id(), version);
    }
  }

  std::mt19937_64 random;
  RandomSource ids;
};

}  // namespace

TEST_CASE("two stores fed the same random transaction stream end with equal digests") {
  uint64_t seed = testSeed(7001);
  INFO("seed " << seed << " (replay with STORE_TEST_SEED=" << seed << ")");
  TransactionStream stream(seed);
  Store first, second;
  std::vector<std::string> midwaySnapshot;
  size_t okCount = 0;
  for (uint64_t index = 1; index <= 600; ++index) {
    std::string entry = stream.next(first);
    auto a = applyEntry(first, index, entry);
    auto b = applyEntry(second, index, entry);
    REQUIRE(a.status == b.status);
    REQUIRE(a.message == b.message);
    okCount += a.ok() ? 1 : 0;
    if (index == 300) midwaySnapshot = snapshotOf(first, 700);
  }
  CHECK(first.digest() == second.digest());
  // The stream exercised both outcomes.
  CHECK(okCount > 100);
  CHECK(okCount < 600);

  // A store restored midway and fed the rest also ends equal.
  Store third;
  auto restore = third.beginRestore();
  for (const auto& chunk : midwaySnapshot) restore->addChunk(bytesOf(chunk));
  restore->finish();
  CHECK(third.appliedIndex() == 300);
  TransactionStream replay(seed);
  Store replayView;
  for (uint64_t index = 1; index <= 600; ++index) {
    std::string entry = replay.next(replayView);
    applyEntry(replayView, index, entry);
    auto result = applyEntry(third, index, entry);
    if (index <= 300) REQUIRE(result.status == Status::replay);
  }
  CHECK(third.digest() == first.digest());
}

TEST_CASE("random garbage entries never crash and change nothing") {
  uint64_t seed = testSeed(424242);
  INFO("seed " << seed << " (replay with STORE_TEST_SEED=" << seed << ")");
  std::mt19937_64 random(seed);
  Store store;
  REQUIRE(create(store, service("svc1", "web")).ok());
  std::string before = contentOf(store);
  for (int round = 0; round < 2000; ++round) {
    size_t size = random() % 256;
    if (random() % 2) size &= ~size_t{7};  // half of them whole words, to get past the length check
    std::string garbage(size, '\0');
    for (char& c : garbage) c = static_cast<char>(random());
    uint64_t index = store.appliedIndex() + 1;
    auto result = applyEntry(store, index, garbage);
    REQUIRE(store.appliedIndex() == index);
    if (!result.ok()) {
      REQUIRE_FALSE(result.message.empty());
      REQUIRE(contentOf(store) == before);
    }
  }
}

TEST_CASE("bit flips of valid entries never crash and never half-apply") {
  uint64_t seed = testSeed(99);
  INFO("seed " << seed << " (replay with STORE_TEST_SEED=" << seed << ")");
  std::mt19937_64 random(seed);
  TransactionStream stream(seed);
  Store store;
  for (uint64_t index = 1; index <= 50; ++index) applyEntry(store, index, stream.next(store));

  for (int round = 0; round < 1500; ++round) {
    std::string entry = stream.next(store);
    for (int flips = 1 + static_cast<int>(random() % 3); flips > 0; --flips) {
      size_t bit = random() % (entry.size() * 8);
      entry[bit / 8] = static_cast<char>(entry[bit / 8] ^ (1 << (bit % 8)));
    }
    std::string before = contentOf(store);
    uint64_t index = store.appliedIndex() + 1;
    auto result = applyEntry(store, index, entry);
    REQUIRE(store.appliedIndex() == index);
    if (!result.ok()) REQUIRE(contentOf(store) == before);
  }
}
