#include "intern.h"

namespace swarm::spread {
namespace {

inline unsigned char lower(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<unsigned char>(c + ('a' - 'A')) : c;
}

inline uint64_t finish(uint64_t h) {
  // FNV-1a's low bits are weak for short keys; unordered_map uses them for buckets.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
constexpr uint64_t kFnvPrime = 0x100000001b3ull;

}  // namespace

bool equalsFolded(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(static_cast<unsigned char>(a[i])) != lower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

uint64_t hashBytes(std::string_view text, uint64_t seed) {
  uint64_t h = kFnvOffset ^ seed;
  for (unsigned char c : text) h = (h ^ c) * kFnvPrime;
  return finish(h);
}

uint64_t hashFolded(std::string_view text, uint64_t seed) {
  uint64_t h = kFnvOffset ^ seed;
  for (unsigned char c : text) h = (h ^ lower(c)) * kFnvPrime;
  return finish(h);
}

Interner::Interner(Case mode)
    : ids(16, Hash{mode == Case::folded}, Equal{mode == Case::folded}) {}

uint32_t Interner::intern(std::string_view text) {
  auto [it, added] = ids.try_emplace(text, static_cast<uint32_t>(texts.size()));
  if (added) texts.push_back(text);
  return it->second;
}

uint32_t Interner::find(std::string_view text) const {
  auto it = ids.find(text);
  return it == ids.end() ? kNone : it->second;
}

}  // namespace swarm::spread
