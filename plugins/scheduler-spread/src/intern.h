// Small integer IDs for the strings a schedule() call compares over and over (node IDs, label
// keys and values, service IDs), so the hot loops compare integers instead of text.
//
// An Interner holds views, never copies: every string it is given must outlive it. In practice
// they point into the request message, which lives for the whole call, or are literals.
#pragma once

#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace swarm::spread {

// "No such ID": a string never interned, an absent node, an unplaced task.
constexpr uint32_t kNone = UINT32_MAX;

// ASCII case-insensitive equality: constraint values compare like Swarm's strings.EqualFold
// (IDs, hostnames and labels are ASCII in practice; other bytes compare exactly).
bool equalsFolded(std::string_view a, std::string_view b);

// Fast 64-bit hash of bytes (FNV-1a with a final mix), optionally of their ASCII lower case.
uint64_t hashBytes(std::string_view text, uint64_t seed = 0);
uint64_t hashFolded(std::string_view text, uint64_t seed = 0);
inline uint64_t hashMix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

class Interner {
 public:
  enum class Case { sensitive, folded };
  explicit Interner(Case mode);

  // The ID of `text`, adding it if new. IDs are dense, in order of first sight.
  uint32_t intern(std::string_view text);
  // kNone when `text` was never interned.
  uint32_t find(std::string_view text) const;

  std::string_view text(uint32_t id) const { return texts[id]; }
  uint32_t size() const { return static_cast<uint32_t>(texts.size()); }

 private:
  struct Hash {
    bool folded;
    size_t operator()(std::string_view s) const { return folded ? hashFolded(s) : hashBytes(s); }
  };
  struct Equal {
    bool folded;
    bool operator()(std::string_view a, std::string_view b) const {
      return folded ? equalsFolded(a, b) : a == b;
    }
  };

  std::unordered_map<std::string_view, uint32_t, Hash, Equal> ids;
  std::vector<std::string_view> texts;
};

}  // namespace swarm::spread
