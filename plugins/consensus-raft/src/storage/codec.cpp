#include "codec.h"

namespace swarm::raft::storage {

void encodeHardState(ByteWriter& w, const HardState& hs) {
  w.u64(hs.term);
  w.u64(hs.vote);
  w.u64(hs.commit);
}

HardState decodeHardState(ByteReader& r) {
  HardState hs;
  hs.term = r.u64();
  hs.vote = r.u64();
  hs.commit = r.u64();
  return hs;
}

void encodeMember(ByteWriter& w, const Member& m) {
  w.u64(m.id);
  w.u8(m.voter ? 1 : 0);
  w.bytes(m.nodeId);
  w.bytes(m.address);
}

Member decodeMember(ByteReader& r) {
  Member m;
  m.id = r.u64();
  auto voter = r.u8();
  if (voter > 1) throw DecodeError("member voter flag is not 0 or 1");
  m.voter = voter == 1;
  m.nodeId = std::string(r.bytes());
  m.address = std::string(r.bytes());
  return m;
}

EntryType decodeEntryType(uint8_t v) {
  if (v > static_cast<uint8_t>(EntryType::empty)) throw DecodeError("unknown entry type");
  return static_cast<EntryType>(v);
}

}  // namespace swarm::raft::storage
