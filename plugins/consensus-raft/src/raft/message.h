// Raft peer messages and their compact binary encoding.
//
// The shell sends encode(message) as the opaque `message :Data` of PeerNetwork.send and feeds
// what it receives through decode() into Core::step(). decode() is the trust boundary: it refuses
// anything malformed, truncated, oversized or with trailing bytes, with a one-line reason, and
// never crashes or allocates more than the input's size. A decoded message can still be
// semantically odd (a commit index beyond the log, a stale term); Core::step() tolerates those.
//
// Wire format, version 1 (integers are unsigned LEB128 varints):
//   u8 version (1), u8 type, u8 flags (bit 0 reject, 1 transfer, 2 lastChunk),
//   from, to, term, logTerm, index, commit, rejectHint, context,
//   append:   count, then per entry: term, u8 entry type, data (varint length + bytes);
//             entry k has index `index + 1 + k` (implicit, so entries are always contiguous)
//   snapshot: meta index, meta term, member count, per member: id, nodeId, address, u8 voter;
//             removed count, per removed: id; chunkOffset, snapshotSize, chunk (length + bytes)
//   other types: nothing more.
#pragma once

#include "types.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace swarm::raft {

enum class MessageType : uint8_t {
  append = 1,             // index/logTerm: the entry before `entries`; commit: leader's commit
  appendResponse = 2,     // index: last matching index, or the rejected index with reject set;
                          //   rejectHint/logTerm: where the leader should probe next (§5.3)
  vote = 3,               // index/logTerm: candidate's last entry; transfer: leadership transfer
  voteResponse = 4,
  preVote = 5,            // term: the term the sender would campaign in (its own is unchanged)
  preVoteResponse = 6,
  heartbeat = 7,          // commit: min(follower's match, leader's commit); context: read round
  heartbeatResponse = 8,  // context: the read round echoed back
  snapshot = 9,           // one chunk of the leader's snapshot
  snapshotResponse = 10,  // index: snapshot index; context: bytes received in order so far;
                          //   reject: a gap, resend from context
  readIndex = 11,         // follower -> leader; context: the follower's read request ID; term 0
  readIndexResponse = 12, // index: the read index; context: request ID; reject: not leader
  timeoutNow = 13,        // leader -> transfer target: campaign now
};

const char* messageTypeName(MessageType type);

struct Message {
  MessageType type = MessageType::append;
  MemberId from = 0;
  MemberId to = 0;
  Term term = 0;
  Term logTerm = 0;
  Index index = 0;
  Index commit = 0;
  Index rejectHint = 0;
  uint64_t context = 0;
  bool reject = false;
  bool transfer = false;
  std::vector<Entry> entries;  // append only; entries[k].index == index + 1 + k

  // Snapshot chunks (type snapshot only).
  SnapshotMeta snapshot;
  uint64_t chunkOffset = 0;   // where `chunk` starts in the snapshot's data
  uint64_t snapshotSize = 0;  // total size of the snapshot's data
  bool lastChunk = false;
  std::string chunk;

  bool operator==(const Message&) const = default;
};

std::string encode(const Message& message);

size_t encodedSize(const Message& message);
// Exactly encode(message).size(), without building it.

size_t encodedEntrySize(const Entry& entry);
// What one entry adds to an append message: used to batch entries under maxMessageBytes.

constexpr size_t kMessageHeaderReserve = 128;
// Upper bound of an append message's bytes besides its entries' payloads: the fixed part (three
// bytes and nine varints, at most 93 bytes) plus one entry's own framing (at most 21 bytes).
// Batches fill maxMessageBytes - this, and a proposal of maxMessageBytes - this always fits.

constexpr size_t kDefaultMaxDecodeBytes = 64u << 20;

std::optional<Message> decode(std::string_view bytes, std::string& error,
                              size_t maxBytes = kDefaultMaxDecodeBytes);
// Refuses (nullopt, `error` says why) input longer than maxBytes, truncated input, unknown
// version/type/entry type, flags that do not belong to the type, entry indexes that would
// overflow, a chunk that does not fit the declared snapshot size, and trailing bytes.

inline std::optional<Message> decode(std::string_view bytes) {
  std::string ignored;
  return decode(bytes, ignored);
}

}  // namespace swarm::raft
