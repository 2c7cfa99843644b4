// A small private PRNG for the Raft core (election jitter, fresh member IDs) and its tests.
// Seeded from the config so that a run is reproducible; never a process-global generator.
#pragma once

#include <cstdint>

namespace swarm::raft {

class Rng {
  // xoshiro256** (Blackman & Vigna), state filled by splitmix64 from one 64-bit seed. Not for
  // cryptography: member IDs only need to be distinct, not secret.
 public:
  explicit Rng(uint64_t seed) {
    for (auto& word : s) word = splitmix64(seed);
  }

  uint64_t next() {
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
  }

  uint64_t below(uint64_t bound) {
    // In [0, bound); bound 0 yields 0. The modulo bias is below 2^-40 for the small bounds used.
    return bound == 0 ? 0 : next() % bound;
  }

  bool chance(double p) { return static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }

  static uint64_t splitmix64(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t s[4];
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
};

}  // namespace swarm::raft
