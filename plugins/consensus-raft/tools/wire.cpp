#include "wire.h"

namespace swarm::raft::tools {

const char* codeName(Code code) {
  switch (code) {
    case Code::ok: return "ok";
    case Code::notLeader: return "notLeader";
    case Code::tooLarge: return "tooLarge";
    case Code::lostLeadership: return "lostLeadership";
    case Code::noQuorum: return "noQuorum";
    case Code::error: return "error";
    case Code::timedOut: return "timedOut";
    case Code::noCandidate: return "noCandidate";
    case Code::inProgress: return "inProgress";
    case Code::unknownMember: return "unknownMember";
    case Code::quorumAtRisk: return "quorumAtRisk";
    case Code::invalid: return "invalid";
  }
  return "unknown";
}

std::string encodeStatus(const NodeStatus& s) {
  std::string out;
  ByteWriter w(out);
  w.u64(s.memberId);
  w.u64(s.leaderId);
  w.u64(s.term);
  w.u8(s.role);
  w.u64(s.commitIndex);
  w.u64(s.appliedIndex);
  w.u64(s.lastLeaderContactNs);
  w.u32(static_cast<uint32_t>(s.members.size()));
  for (auto& m : s.members) {
    w.u64(m.id);
    w.u8(m.voter ? 1 : 0);
    w.str(m.address);
  }
  return out;
}

bool decodeStatus(std::string_view in, NodeStatus& s) {
  ByteReader r(in);
  s.memberId = r.u64();
  s.leaderId = r.u64();
  s.term = r.u64();
  s.role = r.u8();
  s.commitIndex = r.u64();
  s.appliedIndex = r.u64();
  s.lastLeaderContactNs = r.u64();
  uint32_t n = r.u32();
  s.members.clear();
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    NodeStatus::Member m;
    m.id = r.u64();
    m.voter = r.u8() != 0;
    m.address = r.str();
    s.members.push_back(std::move(m));
  }
  return r.ok() && r.atEnd();
}

}  // namespace swarm::raft::tools
