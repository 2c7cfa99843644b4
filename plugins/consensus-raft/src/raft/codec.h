// Internal: the byte-level pieces of the Raft wire format (message.cpp, membership.cpp).
// Integers are unsigned LEB128 varints; strings are a varint length then the bytes. The reader
// never trusts a length: every read is checked against what is left, and a failure is sticky and
// remembers the first thing that went wrong, so callers check once at the end.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace swarm::raft::codec {

inline size_t varintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

class Writer {
 public:
  explicit Writer(std::string& target) : out(target) {}
  void byte(uint8_t b) { out.push_back(static_cast<char>(b)); }
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out.push_back(static_cast<char>(v));
  }
  void bytes(std::string_view s) {
    varint(s.size());
    out.append(s);
  }

 private:
  std::string& out;
};

class Reader {
 public:
  explicit Reader(std::string_view input) : in(input) {}

  bool ok() const { return error.empty(); }
  const std::string& failure() const { return error; }
  size_t remaining() const { return in.size() - pos; }
  bool atEnd() const { return pos == in.size(); }

  uint8_t byte(const char* what) {
    if (!ok()) return 0;
    if (pos >= in.size()) return fail("truncated", what), 0;
    return static_cast<uint8_t>(in[pos++]);
  }

  uint64_t varint(const char* what) {
    if (!ok()) return 0;
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos >= in.size()) return fail("truncated", what), 0;
      uint8_t b = static_cast<uint8_t>(in[pos++]);
      if (shift == 63 && b > 1) return fail("varint overflows 64 bits", what), 0;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    return fail("varint longer than 10 bytes", what), 0;
  }

  // A length-prefixed byte string, refused when longer than `limit` or than what is left.
  std::string_view bytes(const char* what, uint64_t limit) {
    uint64_t n = varint(what);
    if (!ok()) return {};
    if (n > limit) return fail("too long", what), std::string_view();
    if (n > remaining()) return fail("truncated", what), std::string_view();
    std::string_view s = in.substr(pos, n);
    pos += n;
    return s;
  }

  // A count of items each at least `minItemBytes` long: refused when the rest cannot hold them,
  // so a forged count never makes the caller allocate.
  uint64_t count(const char* what, size_t minItemBytes) {
    uint64_t n = varint(what);
    if (ok() && n > remaining() / minItemBytes) fail("count exceeds message size", what);
    return ok() ? n : 0;
  }

  void fail(const char* problem, const char* what) {
    if (!ok()) return;
    error = std::string(problem) + " (" + what + " at byte " + std::to_string(pos) + ")";
  }

 private:
  std::string_view in;
  size_t pos = 0;
  std::string error;
};

}  // namespace swarm::raft::codec
