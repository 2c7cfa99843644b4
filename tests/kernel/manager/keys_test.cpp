#include "errors.h"
#include "keys.h"

#include <catch2/catch.hpp>

using namespace swarm::kernel;

namespace {

std::string errorOf(auto&& call) {
  try {
    call();
  } catch (const UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("an unlock key prints as Docker's SWMKEY-1 form and parses back") {
  SecretKey key = randomKey();
  std::string text = formatUnlockKey(key);
  CHECK(text.rfind("SWMKEY-1-", 0) == 0);
  CHECK(text.size() == 9 + 43);  // 32 bytes of unpadded base64
  CHECK(parseUnlockKey(text) == key);
  CHECK(randomKey() != key);
}

TEST_CASE("a malformed unlock key is refused with what a valid one looks like") {
  std::string good = formatUnlockKey(randomKey());
  CHECK(errorOf([] { parseUnlockKey("SWMTKN-1-abc"); }).find("does not start with SWMKEY-1-") !=
        std::string::npos);
  CHECK(errorOf([] { parseUnlockKey("SWMKEY-1-"); }).find("not 32 bytes of base64") !=
        std::string::npos);
  CHECK(errorOf([&] { parseUnlockKey(good.substr(0, good.size() - 1)); }).find("43 base64") !=
        std::string::npos);
  CHECK(errorOf([&] { parseUnlockKey(good + "A"); }).find("not 32 bytes") != std::string::npos);
  CHECK(errorOf([&] { parseUnlockKey(good.substr(0, 20) + "!" + good.substr(21)); })
            .find("not 32 bytes") != std::string::npos);
}

TEST_CASE("sealed keys open only with the same key and purpose, and refuse tampering") {
  SecretKey key = randomKey();
  std::string secret(32, '\x07');
  std::string sealed = seal(key, secret, "raft data key");
  CHECK(sealed.find(secret) == std::string::npos);
  CHECK(unseal(key, sealed, "raft data key") == secret);
  CHECK(seal(key, secret, "raft data key") != sealed);  // a fresh nonce each time

  CHECK(errorOf([&] { unseal(randomKey(), sealed, "raft data key"); })
            .find("the unlock key does not open this node's sealed raft data key") !=
        std::string::npos);
  CHECK(errorOf([&] { unseal(key, sealed, "TLS key"); }).find("sealed TLS key") !=
        std::string::npos);
  std::string flipped = sealed;
  flipped[flipped.size() / 2] ^= 1;
  CHECK_FALSE(errorOf([&] { unseal(key, flipped, "raft data key"); }).empty());
  CHECK(errorOf([&] { unseal(key, sealed.substr(0, 10), "raft data key"); }).find("truncated") !=
        std::string::npos);
}
