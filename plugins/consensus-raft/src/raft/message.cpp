#include "message.h"

#include "codec.h"

#include <limits>

namespace swarm::raft {

namespace {

constexpr uint8_t kVersion = 1;
constexpr uint8_t kFlagReject = 1;
constexpr uint8_t kFlagTransfer = 2;
constexpr uint8_t kFlagLastChunk = 4;
constexpr uint64_t kMaxMemberString = 4096;  // nodeId / address; real ones are far shorter

bool mayReject(MessageType t) {
  switch (t) {
    case MessageType::appendResponse:
    case MessageType::voteResponse:
    case MessageType::preVoteResponse:
    case MessageType::snapshotResponse:
    case MessageType::readIndexResponse:
      return true;
    default:
      return false;
  }
}

size_t bytesSize(size_t n) { return codec::varintSize(n) + n; }

size_t metaSize(const SnapshotMeta& meta) {
  size_t n = codec::varintSize(meta.index) + codec::varintSize(meta.term) +
             codec::varintSize(meta.members.size()) + codec::varintSize(meta.removed.size());
  for (const Member& m : meta.members) {
    n += codec::varintSize(m.id) + bytesSize(m.nodeId.size()) + bytesSize(m.address.size()) + 1;
  }
  for (MemberId id : meta.removed) n += codec::varintSize(id);
  return n;
}

}  // namespace

const char* messageTypeName(MessageType type) {
  switch (type) {
    case MessageType::append: return "append";
    case MessageType::appendResponse: return "appendResponse";
    case MessageType::vote: return "vote";
    case MessageType::voteResponse: return "voteResponse";
    case MessageType::preVote: return "preVote";
    case MessageType::preVoteResponse: return "preVoteResponse";
    case MessageType::heartbeat: return "heartbeat";
    case MessageType::heartbeatResponse: return "heartbeatResponse";
    case MessageType::snapshot: return "snapshot";
    case MessageType::snapshotResponse: return "snapshotResponse";
    case MessageType::readIndex: return "readIndex";
    case MessageType::readIndexResponse: return "readIndexResponse";
    case MessageType::timeoutNow: return "timeoutNow";
  }
  return "unknown";
}

size_t encodedEntrySize(const Entry& e) {
  return codec::varintSize(e.term) + 1 + bytesSize(e.data.size());
}

size_t encodedSize(const Message& m) {
  size_t n = 3;
  for (uint64_t v : {m.from, m.to, m.term, m.logTerm, m.index, m.commit, m.rejectHint, m.context}) {
    n += codec::varintSize(v);
  }
  if (m.type == MessageType::append) {
    n += codec::varintSize(m.entries.size());
    for (const Entry& e : m.entries) n += encodedEntrySize(e);
  } else if (m.type == MessageType::snapshot) {
    n += metaSize(m.snapshot) + codec::varintSize(m.chunkOffset) +
         codec::varintSize(m.snapshotSize) + bytesSize(m.chunk.size());
  }
  return n;
}

std::string encode(const Message& m) {
  std::string out;
  out.reserve(encodedSize(m));
  codec::Writer w(out);
  w.byte(kVersion);
  w.byte(static_cast<uint8_t>(m.type));
  uint8_t flags = 0;
  if (m.reject && mayReject(m.type)) flags |= kFlagReject;
  if (m.transfer && m.type == MessageType::vote) flags |= kFlagTransfer;
  if (m.lastChunk && m.type == MessageType::snapshot) flags |= kFlagLastChunk;
  w.byte(flags);
  for (uint64_t v : {m.from, m.to, m.term, m.logTerm, m.index, m.commit, m.rejectHint, m.context}) {
    w.varint(v);
  }
  if (m.type == MessageType::append) {
    w.varint(m.entries.size());
    for (const Entry& e : m.entries) {
      w.varint(e.term);
      w.byte(static_cast<uint8_t>(e.type));
      w.bytes(e.data);
    }
  } else if (m.type == MessageType::snapshot) {
    w.varint(m.snapshot.index);
    w.varint(m.snapshot.term);
    w.varint(m.snapshot.members.size());
    for (const Member& mem : m.snapshot.members) {
      w.varint(mem.id);
      w.bytes(mem.nodeId);
      w.bytes(mem.address);
      w.byte(mem.voter ? 1 : 0);
    }
    w.varint(m.snapshot.removed.size());
    for (MemberId id : m.snapshot.removed) w.varint(id);
    w.varint(m.chunkOffset);
    w.varint(m.snapshotSize);
    w.bytes(m.chunk);
  }
  return out;
}

std::optional<Message> decode(std::string_view bytes, std::string& error, size_t maxBytes) {
  if (bytes.size() > maxBytes) {
    error = "raft message of " + std::to_string(bytes.size()) + " bytes exceeds the limit of " +
            std::to_string(maxBytes) + " bytes";
    return std::nullopt;
  }
  codec::Reader r(bytes);
  Message m;
  uint8_t version = r.byte("version");
  if (r.ok() && version != kVersion) {
    error = "raft message has unknown version " + std::to_string(version) + " (this build speaks " +
            std::to_string(kVersion) + ")";
    return std::nullopt;
  }
  uint8_t type = r.byte("type");
  if (r.ok() && (type < 1 || type > static_cast<uint8_t>(MessageType::timeoutNow))) {
    error = "raft message has unknown type " + std::to_string(type);
    return std::nullopt;
  }
  m.type = static_cast<MessageType>(type);
  uint8_t flags = r.byte("flags");
  uint8_t allowed = (mayReject(m.type) ? kFlagReject : 0) |
                    (m.type == MessageType::vote ? kFlagTransfer : 0) |
                    (m.type == MessageType::snapshot ? kFlagLastChunk : 0);
  if (r.ok() && (flags & ~allowed) != 0) {
    error = std::string("raft ") + messageTypeName(m.type) + " message has invalid flags " +
            std::to_string(flags);
    return std::nullopt;
  }
  m.reject = flags & kFlagReject;
  m.transfer = flags & kFlagTransfer;
  m.lastChunk = flags & kFlagLastChunk;
  m.from = r.varint("from");
  m.to = r.varint("to");
  m.term = r.varint("term");
  m.logTerm = r.varint("logTerm");
  m.index = r.varint("index");
  m.commit = r.varint("commit");
  m.rejectHint = r.varint("rejectHint");
  m.context = r.varint("context");

  if (m.type == MessageType::append) {
    uint64_t n = r.count("entry count", 3);
    if (r.ok() && n > std::numeric_limits<Index>::max() - m.index) {
      r.fail("entry indexes overflow", "entries");
    }
    m.entries.reserve(n);
    for (uint64_t k = 0; k < n && r.ok(); ++k) {
      Entry e;
      e.index = m.index + 1 + k;
      e.term = r.varint("entry term");
      uint8_t et = r.byte("entry type");
      if (r.ok() && et > static_cast<uint8_t>(EntryType::empty)) r.fail("unknown entry type", "entry");
      e.type = static_cast<EntryType>(et);
      e.data = r.bytes("entry data", maxBytes);
      m.entries.push_back(std::move(e));
    }
  } else if (m.type == MessageType::snapshot) {
    m.snapshot.index = r.varint("snapshot index");
    m.snapshot.term = r.varint("snapshot term");
    uint64_t n = r.count("member count", 4);
    m.snapshot.members.reserve(n);
    for (uint64_t k = 0; k < n && r.ok(); ++k) {
      Member mem;
      mem.id = r.varint("member id");
      mem.nodeId = r.bytes("member nodeId", kMaxMemberString);
      mem.address = r.bytes("member address", kMaxMemberString);
      uint8_t voter = r.byte("member voter");
      if (r.ok() && voter > 1) r.fail("voter flag is not 0 or 1", "member");
      if (r.ok() && mem.id == 0) r.fail("member id is 0", "member");
      mem.voter = voter == 1;
      m.snapshot.members.push_back(std::move(mem));
    }
    uint64_t nr = r.count("removed count", 1);
    m.snapshot.removed.reserve(nr);
    for (uint64_t k = 0; k < nr && r.ok(); ++k) m.snapshot.removed.push_back(r.varint("removed id"));
    m.chunkOffset = r.varint("chunk offset");
    m.snapshotSize = r.varint("snapshot size");
    m.chunk = r.bytes("chunk", maxBytes);
    if (r.ok() && (m.chunkOffset > m.snapshotSize ||
                   m.chunk.size() > m.snapshotSize - m.chunkOffset)) {
      r.fail("chunk extends past the snapshot size", "chunk");
    }
    if (r.ok() && m.lastChunk && m.chunkOffset + m.chunk.size() != m.snapshotSize) {
      r.fail("last chunk does not end at the snapshot size", "chunk");
    }
  }
  if (r.ok() && !r.atEnd()) r.fail("trailing bytes", "end");
  if (!r.ok()) {
    error = "malformed raft message: " + r.failure();
    return std::nullopt;
  }
  return m;
}

}  // namespace swarm::raft
