// The raft-node harness's own byte formats: little-endian integers and length-prefixed strings,
// the frames of its peer links and client socket, and the client protocol (requests and replies).
// Test and benchmark plumbing only; the plugin itself speaks Cap'n Proto to the kernel.
//
// Client protocol, on a Unix socket, pipelined (replies carry the request's id, in any order):
//   frame   = u32 length, body
//   request = u8 op, u64 id, payload        reply = u64 id, u8 code, payload
//   propose  data                       ok: u64 index, u64 term
//   read     -                          ok: u64 applied index
//   status   -                          ok: see encodeStatus
//   transfer u64 to (0 = any)           ok: u64 new leader
//   snapshot -                          ok: u64 index, u64 term, u64 size
//   dump     -                          ok: the node's KvReport (kv_machine.h)
//   add      u64 id, str address        ok: u64 id (the member as added, a learner)
//   promote  u64 id                     ok: u64 id
//   remove   u64 id                     ok: u64 id
//   Other codes: notLeader (u64 hint), tooLarge (u64 limit), error (str message), quorumAtRisk
//   and invalid (str reason), and the rest without payload.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace swarm::raft::tools {

constexpr uint32_t kMaxFrameBytes = 128u << 20;

enum class Op : uint8_t {
  propose = 1,
  read = 2,
  status = 3,
  transfer = 4,
  snapshot = 5,
  dump = 6,
  add = 7,
  promote = 8,
  remove = 9,
};

enum class Code : uint8_t {
  ok = 0,
  notLeader = 1,
  tooLarge = 2,
  lostLeadership = 3,
  noQuorum = 4,
  error = 5,
  timedOut = 6,
  noCandidate = 7,
  inProgress = 8,
  unknownMember = 9,
  quorumAtRisk = 10,
  invalid = 11,
};

const char* codeName(Code code);

class ByteWriter {
 public:
  explicit ByteWriter(std::string& out) : out(out) {}
  void u8(uint8_t v) { out.push_back(static_cast<char>(v)); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  void str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    out.append(s);
  }

 private:
  std::string& out;
};

class ByteReader {
  // Never reads past the end: a short input sets ok() to false and yields zeros.
 public:
  explicit ByteReader(std::string_view in) : in(in) {}
  bool ok() const { return good; }
  bool atEnd() const { return pos == in.size(); }
  std::string_view rest() {
    auto r = in.substr(pos);
    pos = in.size();
    return r;
  }
  uint8_t u8() { return static_cast<uint8_t>(take(1)); }
  uint32_t u32() { return static_cast<uint32_t>(take(4)); }
  uint64_t u64() { return take(8); }
  std::string str() {
    uint32_t n = u32();
    if (!good || n > in.size() - pos) {
      good = false;
      return {};
    }
    std::string s(in.substr(pos, n));
    pos += n;
    return s;
  }

 private:
  std::string_view in;
  size_t pos = 0;
  bool good = true;

  uint64_t take(int bytes) {
    if (!good || in.size() - pos < static_cast<size_t>(bytes)) {
      good = false;
      return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t(static_cast<uint8_t>(in[pos + i])) << (8 * i);
    pos += bytes;
    return v;
  }
};

// Appends one frame (u32 length + body) to `out`.
inline void appendFrame(std::string& out, std::string_view body) {
  ByteWriter(out).u32(static_cast<uint32_t>(body.size()));
  out.append(body);
}

// Splits complete frames off the front of `buffer`; returns false on a frame over the limit.
template <typename Fn>
bool takeFrames(std::string& buffer, Fn&& onFrame) {
  size_t at = 0;
  while (buffer.size() - at >= 4) {
    uint32_t n = 0;
    for (int i = 0; i < 4; ++i) n |= uint32_t(static_cast<uint8_t>(buffer[at + i])) << (8 * i);
    if (n > kMaxFrameBytes) return false;
    if (buffer.size() - at - 4 < n) break;
    onFrame(std::string_view(buffer).substr(at + 4, n));
    at += 4 + n;
  }
  buffer.erase(0, at);
  return true;
}

struct NodeStatus {
  uint64_t memberId = 0;
  uint64_t leaderId = 0;
  uint64_t term = 0;
  uint8_t role = 0;  // schema::Role numbering: 0 follower .. 3 leader, 4 learner
  uint64_t commitIndex = 0;
  uint64_t appliedIndex = 0;
  uint64_t lastLeaderContactNs = 0;
  struct Member {
    uint64_t id = 0;
    bool voter = false;
    std::string address;
  };
  std::vector<Member> members;

  bool isLeader() const { return role == 3 && leaderId == memberId; }
};

std::string encodeStatus(const NodeStatus& s);
bool decodeStatus(std::string_view in, NodeStatus& out);

}  // namespace swarm::raft::tools
