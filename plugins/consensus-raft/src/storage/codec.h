// Little-endian byte encoding for record payloads. Payloads are authenticated before they are
// decoded, so a decode failure means a bug or a format from another version, never line noise;
// it is still reported (DecodeError), never trusted.
#pragma once

#include "../raft/types.h"

#include <bit>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

namespace swarm::raft::storage {

static_assert(std::endian::native == std::endian::little,
              "the on-disk format is little-endian and written with memcpy");

class DecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ByteWriter {
 public:
  explicit ByteWriter(std::string& out) : out_(out) {}
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(uint32_t v) { raw(&v, 4); }
  void u64(uint64_t v) { raw(&v, 8); }
  void bytes(std::string_view v) {  // length-prefixed
    u32(static_cast<uint32_t>(v.size()));
    out_.append(v);
  }
  void raw(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }

 private:
  std::string& out_;
};

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  uint8_t u8() { return static_cast<uint8_t>(take(1)[0]); }
  uint32_t u32() { return load<uint32_t>(); }
  uint64_t u64() { return load<uint64_t>(); }
  std::string_view bytes() { return take(u32()); }
  bool done() const { return pos_ == in_.size(); }
  void expectDone() const {
    if (!done()) throw DecodeError("trailing bytes after the payload");
  }

 private:
  template <typename T>
  T load() {
    T v;
    auto s = take(sizeof v);
    std::memcpy(&v, s.data(), sizeof v);
    return v;
  }
  std::string_view take(size_t n) {
    if (in_.size() - pos_ < n) throw DecodeError("payload ends early");
    auto s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }

  std::string_view in_;
  size_t pos_ = 0;
};

void encodeHardState(ByteWriter& w, const HardState& hs);
HardState decodeHardState(ByteReader& r);
void encodeMember(ByteWriter& w, const Member& m);
Member decodeMember(ByteReader& r);
EntryType decodeEntryType(uint8_t v);

}  // namespace swarm::raft::storage
