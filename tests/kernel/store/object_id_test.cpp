// Object IDs: swarmkit's format from known bytes, the seeded source's reproducibility, and the
// system source's spread.
#include "fixtures.h"

#include <set>

using namespace swarm::store;

namespace {

RandomSource fixedBytes(std::vector<kj::byte> bytes) {
  return [bytes](kj::ArrayPtr<kj::byte> buffer) {
    REQUIRE(buffer.size() == bytes.size());
    std::copy(bytes.begin(), bytes.end(), buffer.begin());
  };
}

bool isBase36(const std::string& id) {
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'); });
}

}  // namespace

TEST_CASE("newObjectId turns 17 bytes into 25 base-36 characters as swarmkit does") {
  // Expected values computed independently: int.from_bytes(bytes with the top bit set), written
  // in base 36, digits 2 to 26.
  std::vector<kj::byte> zero(17, 0);
  CHECK(newObjectId(fixedBytes(zero)) == "hvy0lj3x0b883f8e30fyp2172");
  std::vector<kj::byte> counting;
  for (int i = 1; i <= 17; ++i) counting.push_back(static_cast<kj::byte>(i));
  CHECK(newObjectId(fixedBytes(counting)) == "ib7wwa7iw3swndjw6xned85q8");
  std::vector<kj::byte> ones(17, 0xff);
  std::string top = newObjectId(fixedBytes(ones));
  CHECK(top.size() == 25);
  CHECK(isBase36(top));
}

TEST_CASE("a seeded source repeats its IDs and the system source does not") {
  auto a = seededRandom(5);
  auto b = seededRandom(5);
  for (int i = 0; i < 10; ++i) CHECK(newObjectId(a) == newObjectId(b));
  CHECK(newObjectId(seededRandom(5)) != newObjectId(seededRandom(6)));

  auto system = systemRandom();
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = newObjectId(system);
    CHECK(id.size() == 25);
    CHECK(isBase36(id));
    seen.insert(id);
  }
  CHECK(seen.size() == 1000);
}
