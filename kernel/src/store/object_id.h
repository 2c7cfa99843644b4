// Object IDs as swarmkit makes them (sk:identity/randomid.go): 17 random bytes, the top bit set
// so the number always has 27 base-36 digits, and digits 2..26 kept: 25 characters of [0-9a-z].
#pragma once

#include <kj/common.h>

#include <cstdint>
#include <functional>
#include <string>

namespace swarm::store {

using RandomSource = std::function<void(kj::ArrayPtr<kj::byte>)>;
// Fills the buffer with random bytes.

std::string newObjectId(const RandomSource& random);

RandomSource systemRandom();
// libsodium's randombytes_buf: what production uses.
RandomSource seededRandom(uint64_t seed);
// A deterministic generator (std::mt19937_64) for tests and simulations; never for real IDs.

}  // namespace swarm::store
