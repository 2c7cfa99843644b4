// Cluster membership: who votes, who only learns, and which IDs are gone for good.
//
// Changes are single-server (Raft thesis §4.1): add a learner, promote it, remove a member, or
// update an address, one at a time. Each change is a log entry of type `membership` whose data is
// encodeChange(change); every node adopts it when the entry commits, so all nodes pass through
// the same sequence of memberships at the same log indexes. apply() is deterministic and refuses
// an invalid change without modifying anything, so a bad entry is a no-op everywhere alike.
#pragma once

#include "types.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace swarm::raft {

enum class ChangeKind : uint8_t {
  bootstrap = 0,        // members: the initial cluster (entry 1 of a new cluster)
  addLearner = 1,       // member: the new member (voter ignored: it joins as a learner)
  promote = 2,          // member.id: learner -> voter
  remove = 3,           // member.id: leaves; its ID joins `removed` forever
  update = 4,           // member: same ID, new nodeId/address
  forceNewCluster = 5,  // members: the sole survivor; everyone else becomes removed
};

struct MembershipChange {
  ChangeKind kind = ChangeKind::addLearner;
  Member member;
  std::vector<Member> members;
  bool operator==(const MembershipChange&) const = default;
};

std::string encodeChange(const MembershipChange& change);
std::optional<MembershipChange> decodeChange(std::string_view bytes, std::string& error);

class Membership {
 public:
  std::vector<Member> members;    // sorted by id
  std::vector<MemberId> removed;  // sorted; never shrinks
  // Invariant: no ID is both in members and in removed; IDs are non-zero and unique.

  static Membership fromSnapshot(const SnapshotMeta& meta);
  void toSnapshot(SnapshotMeta& meta) const;

  const Member* find(MemberId id) const;
  bool contains(MemberId id) const { return find(id) != nullptr; }
  bool isVoter(MemberId id) const;
  bool isRemoved(MemberId id) const;
  size_t voterCount() const;
  size_t quorum() const { return voterCount() / 2 + 1; }
  std::vector<MemberId> voters() const;

  std::string check(const MembershipChange& change) const;
  // "" when the change can apply to this membership, else why not (one line).

  std::string apply(const MembershipChange& change);
  // Applies check()ed changes; returns check()'s reason and changes nothing otherwise.

  bool operator==(const Membership&) const = default;
};

}  // namespace swarm::raft
