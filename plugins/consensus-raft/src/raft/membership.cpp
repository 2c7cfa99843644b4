#include "membership.h"

#include "codec.h"

#include <algorithm>

namespace swarm::raft {

namespace {

constexpr uint8_t kChangeVersion = 1;
constexpr uint64_t kMaxMemberString = 4096;

void writeMember(codec::Writer& w, const Member& m) {
  w.varint(m.id);
  w.bytes(m.nodeId);
  w.bytes(m.address);
  w.byte(m.voter ? 1 : 0);
}

Member readMember(codec::Reader& r) {
  Member m;
  m.id = r.varint("member id");
  m.nodeId = r.bytes("member nodeId", kMaxMemberString);
  m.address = r.bytes("member address", kMaxMemberString);
  uint8_t voter = r.byte("member voter");
  if (r.ok() && voter > 1) r.fail("voter flag is not 0 or 1", "member");
  m.voter = voter == 1;
  return m;
}

std::string idText(MemberId id) { return std::to_string(id); }

std::string checkList(const std::vector<Member>& list) {
  if (list.empty()) return "the member list is empty";
  std::vector<MemberId> ids;
  bool anyVoter = false;
  for (const Member& m : list) {
    if (m.id == 0) return "member ID 0 is reserved";
    ids.push_back(m.id);
    anyVoter = anyVoter || m.voter;
  }
  std::sort(ids.begin(), ids.end());
  if (std::adjacent_find(ids.begin(), ids.end()) != ids.end()) return "duplicate member ID";
  if (!anyVoter) return "the member list has no voter";
  return {};
}

}  // namespace

std::string encodeChange(const MembershipChange& c) {
  std::string out;
  codec::Writer w(out);
  w.byte(kChangeVersion);
  w.byte(static_cast<uint8_t>(c.kind));
  writeMember(w, c.member);
  w.varint(c.members.size());
  for (const Member& m : c.members) writeMember(w, m);
  return out;
}

std::optional<MembershipChange> decodeChange(std::string_view bytes, std::string& error) {
  codec::Reader r(bytes);
  MembershipChange c;
  uint8_t version = r.byte("version");
  if (r.ok() && version != kChangeVersion) r.fail("unknown version", "version");
  uint8_t kind = r.byte("kind");
  if (r.ok() && kind > static_cast<uint8_t>(ChangeKind::forceNewCluster)) {
    r.fail("unknown kind", "kind");
  }
  c.kind = static_cast<ChangeKind>(kind);
  c.member = readMember(r);
  uint64_t n = r.count("member count", 4);
  for (uint64_t k = 0; k < n && r.ok(); ++k) c.members.push_back(readMember(r));
  if (r.ok() && !r.atEnd()) r.fail("trailing bytes", "end");
  if (!r.ok()) {
    error = "malformed membership change: " + r.failure();
    return std::nullopt;
  }
  return c;
}

Membership Membership::fromSnapshot(const SnapshotMeta& meta) {
  Membership m;
  m.members = meta.members;
  m.removed = meta.removed;
  std::sort(m.members.begin(), m.members.end(),
            [](const Member& a, const Member& b) { return a.id < b.id; });
  std::sort(m.removed.begin(), m.removed.end());
  m.removed.erase(std::unique(m.removed.begin(), m.removed.end()), m.removed.end());
  return m;
}

void Membership::toSnapshot(SnapshotMeta& meta) const {
  meta.members = members;
  meta.removed = removed;
}

const Member* Membership::find(MemberId id) const {
  auto it = std::lower_bound(members.begin(), members.end(), id,
                             [](const Member& m, MemberId v) { return m.id < v; });
  return it != members.end() && it->id == id ? &*it : nullptr;
}

bool Membership::isVoter(MemberId id) const {
  const Member* m = find(id);
  return m != nullptr && m->voter;
}

bool Membership::isRemoved(MemberId id) const {
  return std::binary_search(removed.begin(), removed.end(), id);
}

size_t Membership::voterCount() const {
  return std::count_if(members.begin(), members.end(), [](const Member& m) { return m.voter; });
}

std::vector<MemberId> Membership::voters() const {
  std::vector<MemberId> out;
  for (const Member& m : members) {
    if (m.voter) out.push_back(m.id);
  }
  return out;
}

std::string Membership::check(const MembershipChange& c) const {
  MemberId id = c.member.id;
  switch (c.kind) {
    case ChangeKind::bootstrap:
      if (!members.empty() || !removed.empty()) return "the cluster is already bootstrapped";
      return checkList(c.members);
    case ChangeKind::forceNewCluster:
      if (c.members.size() != 1 || !c.members[0].voter || c.members[0].id == 0) {
        return "forceNewCluster needs exactly one voter";
      }
      if (isRemoved(c.members[0].id)) return "member " + idText(c.members[0].id) + " was removed";
      return {};
    case ChangeKind::addLearner:
      if (id == 0) return "member ID 0 is reserved";
      if (isRemoved(id)) {
        return "member ID " + idText(id) + " was removed and is never reused; use a new ID";
      }
      if (contains(id)) return "member " + idText(id) + " is already in the cluster";
      return {};
    case ChangeKind::promote: {
      const Member* m = find(id);
      if (m == nullptr) return "member " + idText(id) + " is not in the cluster";
      if (m->voter) return "member " + idText(id) + " is already a voter";
      return {};
    }
    case ChangeKind::remove: {
      const Member* m = find(id);
      if (m == nullptr) return "member " + idText(id) + " is not in the cluster";
      if (m->voter && voterCount() == 1) return "cannot remove the last voter";
      return {};
    }
    case ChangeKind::update:
      if (!contains(id)) return "member " + idText(id) + " is not in the cluster";
      return {};
  }
  return "unknown membership change";
}

std::string Membership::apply(const MembershipChange& c) {
  std::string why = check(c);
  if (!why.empty()) return why;
  auto insertSorted = [this](Member m) {
    auto it = std::lower_bound(members.begin(), members.end(), m.id,
                               [](const Member& x, MemberId v) { return x.id < v; });
    members.insert(it, std::move(m));
  };
  auto markRemoved = [this](MemberId id) {
    auto it = std::lower_bound(removed.begin(), removed.end(), id);
    if (it == removed.end() || *it != id) removed.insert(it, id);
  };
  switch (c.kind) {
    case ChangeKind::bootstrap:
      for (const Member& m : c.members) insertSorted(m);
      break;
    case ChangeKind::forceNewCluster: {
      for (const Member& m : members) {
        if (m.id != c.members[0].id) markRemoved(m.id);
      }
      members.clear();
      insertSorted(c.members[0]);
      break;
    }
    case ChangeKind::addLearner: {
      Member m = c.member;
      m.voter = false;
      insertSorted(std::move(m));
      break;
    }
    case ChangeKind::promote:
      for (Member& m : members) {
        if (m.id == c.member.id) m.voter = true;
      }
      break;
    case ChangeKind::remove:
      std::erase_if(members, [&](const Member& m) { return m.id == c.member.id; });
      markRemoved(c.member.id);
      break;
    case ChangeKind::update:
      for (Member& m : members) {
        if (m.id == c.member.id) {
          m.nodeId = c.member.nodeId;
          m.address = c.member.address;
        }
      }
      break;
  }
  return {};
}

}  // namespace swarm::raft
