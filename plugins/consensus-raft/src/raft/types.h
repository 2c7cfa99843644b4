// Plain data shared by the Raft core (core.h), its storage (storage/) and the I/O shell
// (node.cpp). No I/O, no clock, no threads here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace swarm::raft {

using MemberId = uint64_t;  // random, never reused; 0 = none
using Index = uint64_t;     // log index; 0 = before the first entry
using Term = uint64_t;

enum class EntryType : uint8_t {
  normal = 0,      // a kernel payload
  membership = 1,  // data = encoded MembershipChange (core.h)
  empty = 2,       // a new leader's no-op
};

struct Entry {
  Index index = 0;
  Term term = 0;
  EntryType type = EntryType::normal;
  std::string data;  // bytes
  bool operator==(const Entry&) const = default;
};

struct Member {
  MemberId id = 0;
  std::string nodeId;
  std::string address;
  bool voter = false;  // false = learner
  bool operator==(const Member&) const = default;
};

// What must be on disk before any message that depends on it is sent (Raft §5, Figure 2).
struct HardState {
  Term term = 0;
  MemberId vote = 0;
  Index commit = 0;
  bool operator==(const HardState&) const = default;
};

struct SnapshotMeta {
  Index index = 0;  // last entry the snapshot covers
  Term term = 0;    // its term
  std::vector<Member> members;  // membership as of index
  std::vector<MemberId> removed;  // IDs removed as of index, sorted: refused forever, never reused
  bool operator==(const SnapshotMeta&) const = default;
};

}  // namespace swarm::raft
