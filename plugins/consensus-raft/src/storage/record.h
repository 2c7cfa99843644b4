// The sealed record, the one unit of everything stored (WAL segments and snapshot files):
//
//   offset  size  field
//   0       4     bodyLen     bytes of body that follow the 16-byte frame header
//   4       1     type        RecordType
//   5       3     reserved    zero
//   8       4     bodyCrc     CRC32C of body
//   12      4     headerCrc   CRC32C of bytes 0..11
//   16      24    nonce       random per record
//   40      ...   ciphertext  XChaCha20-Poly1305 IETF of the payload, 16-byte tag at its end
//
// The associated data binds each record to its place: file kind, format version, type, file
// number (segment sequence or snapshot index; 0 for a file's first record, whose payload names
// it instead) and the record's ordinal in the file. A record copied to another file or position
// therefore fails authentication even though its checksums pass.
//
// Two checksums: the header CRC makes a damaged length detectable (so a bit flip there can never
// look like a record running past the end of the file), and the body CRC makes damage detectable
// without the key. A record whose checksums pass but which does not decrypt is either sealed
// under another key or deliberately altered; that is how recovery tells a wrong key from damage.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace swarm::raft::storage {

using DataKey = std::array<unsigned char, 32>;

enum class FileKind : uint8_t { wal = 'W', snapshot = 'S' };

enum class RecordType : uint8_t {
  segmentHeader = 1,   // first record of a WAL segment
  state = 2,           // one save(): optional hard state + a batch of entries
  snapshotMarker = 3,  // a snapshot became durable: the log now starts after it
  removed = 4,         // a member ID that stays refused
  snapshotMeta = 16,   // first record of a snapshot file
  snapshotChunk = 17,  // snapshot data
  snapshotEnd = 18,    // total size and chunk count; nothing may follow
};

bool knownRecordType(uint8_t type);

constexpr uint8_t kFormatVersion = 1;
constexpr size_t kFrameHeaderBytes = 16;
constexpr size_t kNonceBytes = 24;
constexpr size_t kTagBytes = 16;
constexpr size_t kSealOverhead = kNonceBytes + kTagBytes;
constexpr uint32_t kMaxBodyBytes = 1u << 30;  // one save() or snapshot chunk, sealed

struct RecordPlace {
  FileKind kind;
  uint64_t fileNumber;  // segment sequence / snapshot index; 0 for a file's first record
  uint64_t ordinal;     // position in the file, from 0
};

void appendRecord(std::string& out, const DataKey& key, const RecordPlace& place, RecordType type,
                  std::string_view payload);
// Seals `payload` and appends the whole frame to `out`. Throws std::length_error beyond
// kMaxBodyBytes.

enum class FrameStatus {
  ok,          // both checksums pass
  incomplete,  // the file ends inside the frame
  badHeader,   // header checksum, reserved bytes, length or type is wrong
  badBody,     // body checksum is wrong
};

struct Frame {
  FrameStatus status = FrameStatus::incomplete;
  RecordType type{};
  uint32_t bodyLen = 0;
  std::string_view body;  // valid when status == ok
  size_t size() const { return kFrameHeaderBytes + bodyLen; }
};

Frame parseFrameHeader(std::string_view header);
// `header` holds at least kFrameHeaderBytes. Returns ok or badHeader with bodyLen set.

Frame parseFrame(std::string_view bytes);
// A frame at the start of `bytes` (which may run on past it).

bool validFrameFrom(std::string_view bytes, size_t from);
// Whether a frame whose checksums pass starts at any offset >= from. Used to tell a torn tail
// (nothing valid after the damage) from damage in the middle of a file.

bool openRecord(const DataKey& key, const RecordPlace& place, RecordType type,
                std::string_view body, std::string& payload);
// Decrypts a checked frame's body into `payload`; false if it does not authenticate.

}  // namespace swarm::raft::storage
