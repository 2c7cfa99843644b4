#include "storage.h"

#include "codec.h"
#include "file.h"
#include "record.h"

#include <sodium.h>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <iterator>
#include <set>
#include <utility>

namespace swarm::raft {

using storage::ByteReader;
using storage::ByteWriter;
using storage::DataKey;
using storage::DecodeError;
using storage::Fd;
using storage::FileKind;
using storage::Frame;
using storage::FrameStatus;
using storage::RecordPlace;
using storage::RecordType;
namespace fs = std::filesystem;

namespace {

constexpr const char* kRestoreAdvice =
    "restore from a peer: remove this member from the cluster and re-add it with an empty "
    "storage directory, or run --force-new-cluster on another manager";

std::string hexName(const char* prefix, uint64_t n, const char* suffix) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s%016" PRIx64 "%s", prefix, n, suffix);
  return buf;
}

std::string segmentName(uint64_t seq) { return hexName("wal-", seq, ".log"); }
std::string snapshotName(Index index) { return hexName("snap-", index, ".snap"); }

std::optional<uint64_t> parseName(std::string_view name, std::string_view prefix,
                                  std::string_view suffix) {
  if (name.size() != prefix.size() + 16 + suffix.size() || !name.starts_with(prefix) ||
      !name.ends_with(suffix)) {
    return std::nullopt;
  }
  auto hex = name.substr(prefix.size(), 16);
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  }
  uint64_t n = 0;
  std::from_chars(hex.data(), hex.data() + hex.size(), n, 16);
  return n;
}

[[noreturn]] void corrupt(const fs::path& file, uint64_t offset, const std::string& what) {
  throw StorageError(StorageError::Kind::corrupt,
                     file.string() + " is corrupt at byte " + std::to_string(offset) + ": " +
                         what + ". Refusing to start on damaged Raft storage; " + kRestoreAdvice);
}

[[noreturn]] void corruptDir(const fs::path& dir, const std::string& what) {
  throw StorageError(StorageError::Kind::corrupt,
                     "raft storage " + dir.string() + ": " + what +
                         ". Refusing to start on damaged Raft storage; " + kRestoreAdvice);
}

[[noreturn]] void misuse(const std::string& what) {
  throw StorageError(StorageError::Kind::misuse, "raft storage: " + what);
}

std::string describe(FrameStatus status) {
  switch (status) {
    case FrameStatus::ok: return "ok";
    case FrameStatus::incomplete: return "the file ends inside this record";
    case FrameStatus::badHeader: return "the record header fails its checksum";
    case FrameStatus::badBody: return "the record body fails its checksum";
  }
  return "?";
}

constexpr const char* kNotAuthentic =
    "the record's checksums pass but it does not authenticate under the data key (it was "
    "altered, moved from another position or file, or sealed with another key)";

// ---- payloads -----------------------------------------------------------------------------------

struct SegmentHeader {
  uint64_t seq = 0;
  Index lastIndex = 0;  // the log as it stood when the segment was started
  Term lastTerm = 0;
  HardState hardState;
  std::set<MemberId> removed;
};

std::string encodeSegmentHeader(const SegmentHeader& h) {
  std::string out;
  ByteWriter w(out);
  w.u64(h.seq);
  w.u64(h.lastIndex);
  w.u64(h.lastTerm);
  storage::encodeHardState(w, h.hardState);
  w.u32(static_cast<uint32_t>(h.removed.size()));
  for (auto id : h.removed) w.u64(id);
  return out;
}

SegmentHeader decodeSegmentHeader(std::string_view payload) {
  ByteReader r(payload);
  SegmentHeader h;
  h.seq = r.u64();
  h.lastIndex = r.u64();
  h.lastTerm = r.u64();
  h.hardState = storage::decodeHardState(r);
  for (uint32_t n = r.u32(); n > 0; --n) h.removed.insert(r.u64());
  r.expectDone();
  return h;
}

void encodeState(std::string& out, const HardState* hs, std::span<const Entry> entries) {
  ByteWriter w(out);
  w.u8(hs != nullptr ? 1 : 0);
  if (hs != nullptr) storage::encodeHardState(w, *hs);
  w.u32(static_cast<uint32_t>(entries.size()));
  if (entries.empty()) return;
  w.u64(entries.front().index);
  for (auto& e : entries) {
    w.u64(e.term);
    w.u8(static_cast<uint8_t>(e.type));
    w.bytes(e.data);
  }
}

struct StateRecord {
  std::optional<HardState> hardState;
  std::vector<Entry> entries;
};

StateRecord decodeState(std::string_view payload) {
  ByteReader r(payload);
  StateRecord s;
  auto flags = r.u8();
  if (flags > 1) throw DecodeError("unknown state flags");
  if (flags == 1) s.hardState = storage::decodeHardState(r);
  uint32_t count = r.u32();
  if (count > 0) {
    Index index = r.u64();
    if (index == 0) throw DecodeError("entry index 0");
    s.entries.reserve(count);
    for (uint32_t i = 0; i < count; ++i) {
      Entry e;
      e.index = index++;
      e.term = r.u64();
      e.type = storage::decodeEntryType(r.u8());
      e.data = std::string(r.bytes());
      s.entries.push_back(std::move(e));
    }
  }
  r.expectDone();
  return s;
}

// What a snapshot did to the log, as decided when it was saved. Replay applies it as recorded
// rather than deciding again: after compaction it may not see the entries the decision needed.
enum class MarkerEffect : uint8_t {
  keep = 0,     // the log had the snapshot's last entry: entries after it stay
  replace = 1,  // the log now starts after the snapshot, empty
};

std::string encodeMarker(Index index, Term term, MarkerEffect effect) {
  std::string out;
  ByteWriter w(out);
  w.u64(index);
  w.u64(term);
  w.u8(static_cast<uint8_t>(effect));
  return out;
}

std::string encodeSnapshotMeta(const SnapshotMeta& meta, SnapshotKind kind) {
  std::string out;
  ByteWriter w(out);
  w.u64(meta.index);
  w.u64(meta.term);
  w.u32(static_cast<uint32_t>(meta.members.size()));
  for (auto& m : meta.members) storage::encodeMember(w, m);
  w.u32(static_cast<uint32_t>(meta.removed.size()));
  for (auto id : meta.removed) w.u64(id);
  w.u8(kind == SnapshotKind::received ? 1 : 0);
  return out;
}

SnapshotMeta decodeSnapshotMeta(std::string_view payload, SnapshotKind& kind) {
  ByteReader r(payload);
  SnapshotMeta meta;
  meta.index = r.u64();
  meta.term = r.u64();
  for (uint32_t n = r.u32(); n > 0; --n) meta.members.push_back(storage::decodeMember(r));
  for (uint32_t n = r.u32(); n > 0; --n) meta.removed.push_back(r.u64());
  auto k = r.u8();
  if (k > 1) throw DecodeError("unknown snapshot kind");
  kind = k == 1 ? SnapshotKind::received : SnapshotKind::taken;
  r.expectDone();
  return meta;
}

// ---- the log as replay sees it ------------------------------------------------------------------

// Entries known from the WAL, after `base`. The entries at or below base are covered by a
// snapshot; baseTerm is unknown when a record replaced entries below the oldest segment.
struct ReplayLog {
  Index base = 0;
  std::optional<Term> baseTerm = Term{0};
  std::vector<Entry> entries;

  Index last() const { return base + entries.size(); }
  std::optional<Term> lastTerm() const {
    return entries.empty() ? baseTerm : std::optional<Term>(entries.back().term);
  }
  std::optional<Term> termAt(Index i) const {
    if (i == base) return baseTerm;
    if (i < base || i > last()) return std::nullopt;
    return entries[i - base - 1].term;
  }

  // Returns false on a gap.
  bool append(std::vector<Entry>&& batch) {
    Index first = batch.front().index;
    if (first > last() + 1) return false;
    if (first <= base) {
      // Replaces entries older than this segment: they were uncommitted when written, and the
      // snapshot that allowed the older segments to be deleted covers this point.
      base = first - 1;
      baseTerm.reset();
      entries.clear();
    } else {
      entries.resize(first - base - 1);
    }
    for (auto& e : batch) entries.push_back(std::move(e));
    return true;
  }

  // Applies a snapshot marker. Returns what is inconsistent about it, or "" if it fits.
  std::string applyMarker(Index index, Term term, MarkerEffect effect) {
    if (effect == MarkerEffect::replace) {
      entries.clear();
      base = index;
      baseTerm = term;
      return "";
    }
    if (index < base) return "";  // covered already: the log starts after a later point
    auto have = termAt(index);
    if (index > last() || (have && *have != term)) {
      return "it keeps the log after a snapshot at index " + std::to_string(index) + " (term " +
             std::to_string(term) + ") that the log does not have";
    }
    entries.erase(entries.begin(), entries.begin() + static_cast<ptrdiff_t>(index - base));
    base = index;
    baseTerm = term;
    return "";
  }
};

struct SegmentFile {
  uint64_t seq = 0;
  Index headerLastIndex = 0;
};

struct SnapshotFileInfo {
  SnapshotMeta meta;
  SnapshotKind kind = SnapshotKind::taken;
  uint64_t bytes = 0;
};

void checkSnapshotMeta(const SnapshotMeta& meta) {
  if (meta.index == 0) misuse("saveSnapshot: snapshot index 0; a snapshot covers entries from 1");
}

}  // namespace

// ---- Storage::Impl ------------------------------------------------------------------------------

struct Storage::Impl {
  fs::path dir;
  DataKey key{};
  StorageOptions options;
  Fd lock;

  std::vector<SegmentFile> segments;  // oldest first; the last is being written
  Fd wal;
  uint64_t walSize = 0;
  uint64_t walRecords = 0;

  HardState hardState;
  std::set<MemberId> removed;
  Index baseIndex = 0;  // the log holds entries after this (the snapshot index, or 0)
  Term baseTerm = 0;
  Index lastIndex = 0;
  Term lastTerm = 0;
  std::vector<std::pair<Index, Term>> termRuns;  // (first index, term), entries after base

  std::optional<SnapshotMeta> snapshot;
  std::vector<Index> snapshotIndexes;  // files present, ascending

  Recovered recovered;
  std::string failure;  // set after a failed write: the Storage refuses further writes

  ~Impl() {
    sodium_munlock(key.data(), key.size());  // also zeroes it
  }

  fs::path segmentPath(uint64_t seq) const { return dir / segmentName(seq); }
  fs::path snapshotPath(Index index) const { return dir / snapshotName(index); }

  void checkWritable() const {
    if (!failure.empty()) {
      throw StorageError(StorageError::Kind::io,
                         "raft storage " + dir.string() + ": an earlier write failed (" + failure +
                             "); reopen the storage to recover before writing again");
    }
  }

  // Runs `write`; any failure poisons the Storage, because a partial record may be on disk.
  template <typename F>
  void guarded(F&& write) {
    checkWritable();
    try {
      write();
    } catch (const std::exception& e) {
      failure = e.what();
      throw;
    }
  }

  // ---- in-memory log positions ------------------------------------------------------------------

  std::optional<Term> termAt(Index i) const {
    if (i == baseIndex) return baseTerm;
    if (i < baseIndex || i > lastIndex) return std::nullopt;
    auto it = std::upper_bound(termRuns.begin(), termRuns.end(), i,
                               [](Index v, const auto& run) { return v < run.first; });
    return std::prev(it)->second;
  }

  void noteAppended(std::span<const Entry> entries) {
    Index first = entries.front().index;
    while (!termRuns.empty() && termRuns.back().first >= first) termRuns.pop_back();
    for (auto& e : entries) {
      if (termRuns.empty() || termRuns.back().second != e.term) termRuns.emplace_back(e.index, e.term);
    }
    lastIndex = entries.back().index;
    lastTerm = entries.back().term;
  }

  // Raft §7 for a snapshot taken here; a received one always replaces the log.
  MarkerEffect effectOf(Index index, Term term, SnapshotKind kind) const {
    return kind == SnapshotKind::taken && termAt(index) == term ? MarkerEffect::keep
                                                                : MarkerEffect::replace;
  }

  void noteSnapshot(Index index, Term term, MarkerEffect effect) {
    if (effect == MarkerEffect::keep) {
      std::vector<std::pair<Index, Term>> kept;
      if (index < lastIndex) kept.emplace_back(index + 1, *termAt(index + 1));
      for (auto& run : termRuns) {
        if (run.first > index + 1) kept.push_back(run);
      }
      termRuns = std::move(kept);
    } else {
      termRuns.clear();
      lastIndex = index;
      lastTerm = term;
    }
    baseIndex = index;
    baseTerm = term;
  }

  // ---- writing ----------------------------------------------------------------------------------

  // A new segment's header holds the in-memory state, so callers update that state only after
  // this returns; `mayRotate` is false where it is already ahead of the WAL.
  void appendWal(RecordType type, std::string_view payload, bool mayRotate = true) {
    if (mayRotate && walSize >= options.segmentBytes && walRecords > 1) rotate();
    std::string frame;
    storage::appendRecord(frame, key, {FileKind::wal, segments.back().seq, walRecords}, type,
                          payload);
    auto path = segmentPath(segments.back().seq);
    storage::writeAt(wal.get(), frame, walSize, path);
    storage::syncData(wal.get(), path);
    walSize += frame.size();
    ++walRecords;
  }

  std::string currentHeader(uint64_t seq) const {
    SegmentHeader h;
    h.seq = seq;
    h.lastIndex = lastIndex;
    h.lastTerm = lastTerm;
    h.hardState = hardState;
    h.removed = removed;
    return encodeSegmentHeader(h);
  }

  // Starts a new segment holding only its header: written under a temporary name, synced, then
  // renamed, so a segment file always has a complete header.
  Fd createSegment(uint64_t seq, uint64_t& size) {
    std::string frame;
    storage::appendRecord(frame, key, {FileKind::wal, 0, 0}, RecordType::segmentHeader,
                          currentHeader(seq));
    auto path = segmentPath(seq);
    auto tmp = fs::path(path.string() + ".tmp");
    Fd fd = storage::openFile(tmp, O_WRONLY | O_CREAT | O_TRUNC);
    storage::writeAt(fd.get(), frame, 0, tmp);
    storage::syncData(fd.get(), tmp);
    storage::renameFile(tmp, path);
    storage::syncDir(dir);
    size = frame.size();
    return fd;
  }

  void rotate() {
    uint64_t seq = segments.back().seq + 1;
    uint64_t size = 0;
    Fd fd = createSegment(seq, size);
    wal = std::move(fd);
    walSize = size;
    walRecords = 1;
    segments.push_back({seq, lastIndex});
  }

  // Snapshots never move back. One at the newest index again replaces that file (recovery
  // cannot tell a crash between that rename and its marker from a finished save, and keeps the
  // log after it: allowed by Raft §7 either way).
  void checkSnapshotOrder(const SnapshotMeta& meta, SnapshotKind) const {
    if (snapshot && meta.index < snapshot->index) {
      misuse("saveSnapshot: index " + std::to_string(meta.index) +
             " is older than the newest snapshot (index " + std::to_string(snapshot->index) +
             ")");
    }
  }

  void snapshotDurable(const SnapshotMeta& meta, SnapshotKind kind) {
    auto effect = effectOf(meta.index, meta.term, kind);
    appendWal(RecordType::snapshotMarker, encodeMarker(meta.index, meta.term, effect));
    noteSnapshot(meta.index, meta.term, effect);
    snapshot = meta;
    if (snapshotIndexes.empty() || snapshotIndexes.back() != meta.index) {
      snapshotIndexes.push_back(meta.index);
    }
    size_t keep = std::max<uint32_t>(options.snapshotsToKeep, 1);
    if (snapshotIndexes.size() > keep) {
      size_t drop = snapshotIndexes.size() - keep;
      for (size_t i = 0; i < drop; ++i) storage::removeFile(snapshotPath(snapshotIndexes[i]));
      snapshotIndexes.erase(snapshotIndexes.begin(),
                            snapshotIndexes.begin() + static_cast<ptrdiff_t>(drop));
      storage::syncDir(dir);
    }
  }

  // ---- reading snapshots ------------------------------------------------------------------------

  // Reads and verifies a whole snapshot file; `chunk` (may be null) receives the data.
  SnapshotFileInfo readSnapshotFile(Index index,
                                    const std::function<void(std::string_view)>* chunk) const {
    auto path = snapshotPath(index);
    Fd fd = storage::openFile(path, O_RDONLY);
    uint64_t size = storage::fileSize(fd.get(), path);
    uint64_t offset = 0;
    uint64_t ordinal = 0;
    uint64_t chunks = 0;
    bool ended = false;
    SnapshotFileInfo info;
    std::string frame, payload;
    while (offset < size) {
      if (ended) corrupt(path, offset, "bytes follow the snapshot's end record");
      if (size - offset < storage::kFrameHeaderBytes) {
        corrupt(path, offset, "the file ends inside a record (the snapshot file was truncated)");
      }
      frame.resize(storage::kFrameHeaderBytes);
      storage::readAt(fd.get(), frame.data(), frame.size(), offset, path);
      Frame header = storage::parseFrameHeader(frame);
      if (header.status != FrameStatus::ok) corrupt(path, offset, describe(header.status));
      if (size - offset - storage::kFrameHeaderBytes < header.bodyLen) {
        corrupt(path, offset, "the file ends inside a record (the snapshot file was truncated)");
      }
      frame.resize(header.size());
      storage::readAt(fd.get(), frame.data() + storage::kFrameHeaderBytes, header.bodyLen,
                      offset + storage::kFrameHeaderBytes, path);
      Frame f = storage::parseFrame(frame);
      if (f.status != FrameStatus::ok) corrupt(path, offset, describe(f.status));
      RecordPlace place{FileKind::snapshot, ordinal == 0 ? 0 : index, ordinal};
      if (!storage::openRecord(key, place, f.type, f.body, payload)) {
        corrupt(path, offset, kNotAuthentic);
      }
      try {
        if (ordinal == 0) {
          if (f.type != RecordType::snapshotMeta) {
            corrupt(path, offset, "the first record is not the snapshot's metadata");
          }
          info.meta = decodeSnapshotMeta(payload, info.kind);
          if (info.meta.index != index) {
            corrupt(path, offset,
                    "the file holds the snapshot at index " + std::to_string(info.meta.index) +
                        ", not the one its name says (it was renamed or copied)");
          }
        } else if (f.type == RecordType::snapshotChunk) {
          info.bytes += payload.size();
          ++chunks;
          if (chunk != nullptr) (*chunk)(payload);
        } else if (f.type == RecordType::snapshotEnd) {
          ByteReader r(payload);
          uint64_t bytes = r.u64();
          uint64_t count = r.u64();
          r.expectDone();
          if (bytes != info.bytes || count != chunks) {
            corrupt(path, offset, "the end record does not match the data before it");
          }
          ended = true;
        } else {
          corrupt(path, offset, "a record of a type that does not belong in a snapshot");
        }
      } catch (const DecodeError& e) {
        corrupt(path, offset, std::string("the record does not decode (") + e.what() + ")");
      }
      offset += f.size();
      ++ordinal;
    }
    if (!ended) {
      corrupt(path, offset,
              "the file ends without its end record (the snapshot file was truncated)");
    }
    return info;
  }

  // ---- recovery ---------------------------------------------------------------------------------

  struct Replay {
    ReplayLog log;
    HardState hardState;
    std::set<MemberId> removed;
    Index firstHeaderLastIndex = 0;
    Index newestMarker = 0;
    fs::path newestMarkerFile;
    uint64_t newestMarkerOffset = 0;
    std::optional<TornTail> torn;
    uint64_t lastEnd = 0;
    uint64_t lastRecords = 0;
  };

  void replaySegment(Replay& r, SegmentFile& seg, bool first, bool last) {
    auto path = segmentPath(seg.seq);
    std::string bytes = storage::readWhole(path);
    std::string_view all(bytes);
    uint64_t offset = 0;
    uint64_t ordinal = 0;
    std::string payload;
    while (offset < bytes.size()) {
      Frame f = storage::parseFrame(all.substr(offset));
      if (f.status != FrameStatus::ok) {
        // Records are appended one per call and never rewritten, so a crash can only damage the
        // final one. Damage with an intact record after it is not a torn write.
        std::string why = describe(f.status);
        if (last && ordinal > 0) {
          if (!storage::validFrameFrom(all, offset + 1)) {
            r.torn = TornTail{path.string(), offset, bytes.size() - offset};
            break;
          }
          why += ", and intact records follow it, so it is not a torn write";
        }
        corrupt(path, offset, why);
      }
      RecordPlace place{FileKind::wal, ordinal == 0 ? 0 : seg.seq, ordinal};
      if (!storage::openRecord(key, place, f.type, f.body, payload)) {
        if (first && ordinal == 0) {
          throw StorageError(
              StorageError::Kind::wrongKey,
              "wrong data key for " + dir.string() + ": " + path.filename().string() +
                  " is intact (its checksums pass) but does not decrypt with the key given; "
                  "start with the data key this node's storage was created with (if it is lost, " +
                  kRestoreAdvice + ")");
        }
        corrupt(path, offset, kNotAuthentic);
      }
      try {
        applyRecord(r, seg, path, offset, ordinal, f.type, payload, first);
      } catch (const DecodeError& e) {
        corrupt(path, offset, std::string("the record does not decode (") + e.what() + ")");
      }
      offset += f.size();
      ++ordinal;
    }
    if (ordinal == 0) corrupt(path, 0, "the segment has no header record");
    r.lastEnd = offset;
    r.lastRecords = ordinal;
  }

  void applyRecord(Replay& r, SegmentFile& seg, const fs::path& path, uint64_t offset,
                   uint64_t ordinal, RecordType type, std::string_view payload, bool first) {
    if ((ordinal == 0) != (type == RecordType::segmentHeader)) {
      corrupt(path, offset,
              ordinal == 0 ? "the segment does not start with its header"
                           : "a segment header in the middle of a segment");
    }
    switch (type) {
      case RecordType::segmentHeader: {
        auto h = decodeSegmentHeader(payload);
        if (h.seq != seg.seq) {
          corrupt(path, offset,
                  "the file is segment " + std::to_string(h.seq) +
                      ", not the one its name says (it was renamed or copied)");
        }
        seg.headerLastIndex = h.lastIndex;
        if (first) {
          if (seg.seq == 1 && h.lastIndex != 0) corrupt(path, offset, "the first segment starts mid-log");
          r.log.base = h.lastIndex;
          r.log.baseTerm = h.lastTerm;
          r.hardState = h.hardState;
          r.removed = h.removed;
          r.firstHeaderLastIndex = h.lastIndex;
          return;
        }
        auto term = r.log.lastTerm();
        if (r.log.last() != h.lastIndex || (term && *term != h.lastTerm) ||
            r.hardState != h.hardState || r.removed != h.removed) {
          corrupt(path, offset,
                  "it does not continue " + segmentName(seg.seq - 1) +
                      ": its header says the log ended at index " + std::to_string(h.lastIndex) +
                      " (term " + std::to_string(h.lastTerm) + "), but the segments before it end at index " +
                      std::to_string(r.log.last()) +
                      (term ? " (term " + std::to_string(*term) + ")" : std::string()) +
                      " or with another hard state; records are missing from " +
                      segmentName(seg.seq - 1));
        }
        return;
      }
      case RecordType::state: {
        auto s = decodeState(payload);
        if (s.hardState) r.hardState = *s.hardState;
        if (!s.entries.empty()) {
          Index firstIndex = s.entries.front().index;
          if (!r.log.append(std::move(s.entries))) {
            corrupt(path, offset,
                    "its entries start at index " + std::to_string(firstIndex) +
                        " but the log before them ends at index " + std::to_string(r.log.last()));
          }
        }
        return;
      }
      case RecordType::snapshotMarker: {
        ByteReader reader(payload);
        Index index = reader.u64();
        Term term = reader.u64();
        auto effect = reader.u8();
        reader.expectDone();
        if (effect > 1) throw DecodeError("unknown snapshot marker effect");
        auto problem = r.log.applyMarker(index, term, static_cast<MarkerEffect>(effect));
        if (!problem.empty()) corrupt(path, offset, problem);
        if (index > r.newestMarker) {
          r.newestMarker = index;
          r.newestMarkerFile = path;
          r.newestMarkerOffset = offset;
        }
        return;
      }
      case RecordType::removed: {
        ByteReader reader(payload);
        r.removed.insert(reader.u64());
        reader.expectDone();
        return;
      }
      default:
        corrupt(path, offset, "a record of a type that does not belong in a WAL segment");
    }
  }

  void recover() {
    // Leftovers of a crash while creating a file: never renamed, so never part of the state.
    bool removedTmp = false;
    std::vector<uint64_t> seqs;
    std::vector<Index> snaps;
    for (auto& name : storage::listDir(dir)) {
      if (name.ends_with(".tmp") && (name.starts_with("wal-") || name.starts_with("snap-"))) {
        storage::removeFile(dir / name);
        removedTmp = true;
      } else if (auto seq = parseName(name, "wal-", ".log")) {
        seqs.push_back(*seq);
      } else if (auto index = parseName(name, "snap-", ".snap")) {
        snaps.push_back(*index);
      }
    }
    if (removedTmp) storage::syncDir(dir);
    std::sort(seqs.begin(), seqs.end());
    std::sort(snaps.begin(), snaps.end());

    if (seqs.empty()) {
      if (!snaps.empty()) {
        corruptDir(dir, "it holds snapshot files but no WAL segment (wal-*.log): the log is missing");
      }
      uint64_t size = 0;
      wal = createSegment(1, size);
      walSize = size;
      walRecords = 1;
      segments.push_back({1, 0});
      return;
    }
    if (seqs.front() == 0) corruptDir(dir, segmentName(0) + " is not a valid segment name");
    for (size_t i = 1; i < seqs.size(); ++i) {
      if (seqs[i] != seqs[i - 1] + 1) {
        corruptDir(dir, "segment " + segmentName(seqs[i - 1] + 1) + " is missing (the segments go from " +
                            segmentName(seqs[i - 1]) + " to " + segmentName(seqs[i]) + ")");
      }
    }

    Replay r;
    for (auto seq : seqs) segments.push_back({seq, 0});
    for (size_t i = 0; i < segments.size(); ++i) {
      replaySegment(r, segments[i], i == 0, i + 1 == segments.size());
    }

    std::optional<SnapshotFileInfo> snap;
    if (!snaps.empty()) snap = readSnapshotFile(snaps.back(), nullptr);
    Index snapIndex = snap ? snap->meta.index : 0;

    if (segments.front().seq != 1 && (!snap || snapIndex < r.firstHeaderLastIndex)) {
      corruptDir(dir, "the segments before " + segmentName(segments.front().seq) +
                          " are missing: the log up to index " +
                          std::to_string(r.firstHeaderLastIndex) + " is in neither a segment nor " +
                          (snap ? "the newest snapshot (" + snapshotName(snapIndex) + ")"
                                : std::string("a snapshot")));
    }

    if (r.newestMarker > snapIndex) {
      corrupt(r.newestMarkerFile, r.newestMarkerOffset,
              "it records a snapshot at index " + std::to_string(r.newestMarker) + " but " +
                  (snap ? "the newest snapshot file is " + snapshotName(snapIndex)
                        : std::string("there is no snapshot file")) +
                  ": " + snapshotName(r.newestMarker) + " is missing");
    }
    // Normally the newest snapshot's marker was replayed, or compaction deleted the segment that
    // held it and the WAL starts exactly at the snapshot. If the WAL has no marker for it yet
    // starts before it, the process died between the snapshot file's rename and its marker:
    // finish the job, deciding as saving it would have (the file says how it came).
    std::optional<MarkerEffect> unrecorded;
    if (snap && r.newestMarker < snapIndex && r.log.base < snapIndex) {
      auto have = r.log.termAt(snapIndex);
      unrecorded = snap->kind == SnapshotKind::taken && have && *have == snap->meta.term
                       ? MarkerEffect::keep
                       : MarkerEffect::replace;
      r.log.applyMarker(snapIndex, snap->meta.term, *unrecorded);
    }
    if (r.log.base != snapIndex) {
      corruptDir(dir, "the log does not start where the snapshot ends (index " +
                          std::to_string(r.log.base) + " vs " + std::to_string(snapIndex) + ")");
    }

    // Everything checks out: only now change files.
    auto lastPath = segmentPath(segments.back().seq);
    wal = storage::openFile(lastPath, O_WRONLY);
    if (r.torn) {
      storage::truncateFile(wal.get(), r.torn->offset, lastPath);
      storage::syncData(wal.get(), lastPath);
    }
    walSize = r.lastEnd;
    walRecords = r.lastRecords;

    hardState = r.hardState;
    removed = r.removed;
    baseIndex = snapIndex;
    baseTerm = snap ? snap->meta.term : 0;
    lastIndex = baseIndex;
    lastTerm = baseTerm;
    if (!r.log.entries.empty()) noteAppended(r.log.entries);
    snapshot = snap ? std::optional(snap->meta) : std::nullopt;
    snapshotIndexes = snaps;

    // Record it now, so that the next replay reaches the same log. No rotation: a new segment's
    // header would already describe the log after the marker.
    if (unrecorded) {
      appendWal(RecordType::snapshotMarker, encodeMarker(snapIndex, snap->meta.term, *unrecorded),
                /*mayRotate=*/false);
    }

    recovered.hardState = hardState;
    recovered.snapshot = snapshot;
    recovered.entries = std::move(r.log.entries);
    recovered.removed.assign(removed.begin(), removed.end());
    recovered.tornTail = r.torn;
  }
};

// ---- Storage ------------------------------------------------------------------------------------

Storage::Storage(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Storage::Storage(Storage&&) noexcept = default;
Storage& Storage::operator=(Storage&&) noexcept = default;
Storage::~Storage() = default;

Storage Storage::open(const fs::path& dir, std::span<const uint8_t> dataKey,
                      const StorageOptions& options) {
  if (sodium_init() < 0) {
    throw StorageError(StorageError::Kind::io, "raft storage: libsodium failed to initialise");
  }
  if (dataKey.size() != std::tuple_size_v<DataKey>) {
    misuse("the data key must be 32 bytes, got " + std::to_string(dataKey.size()));
  }
  if (options.segmentBytes < 512) {
    misuse("segmentBytes must be at least 512, got " + std::to_string(options.segmentBytes));
  }
  if (options.snapshotsToKeep < 1) misuse("snapshotsToKeep must be at least 1");
  if (options.snapshotChunkBytes < 1 ||
      options.snapshotChunkBytes > storage::kMaxBodyBytes - storage::kSealOverhead) {
    misuse("snapshotChunkBytes must be between 1 and " +
           std::to_string(storage::kMaxBodyBytes - storage::kSealOverhead));
  }

  auto impl = std::make_unique<Impl>();
  impl->dir = dir;
  std::copy(dataKey.begin(), dataKey.end(), impl->key.begin());
  sodium_mlock(impl->key.data(), impl->key.size());  // best effort: keep it out of swap
  impl->options = options;

  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      storage::throwIo("creating directory", dir, errno);
    }
    auto parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
    storage::syncDir(parent);
  } else if (!fs::is_directory(dir, ec)) {
    misuse(dir.string() + " is not a directory; point the storage at a directory of its own");
  }

  auto lockPath = dir / "LOCK";
  impl->lock = storage::openFile(lockPath, O_RDWR | O_CREAT);
  if (::flock(impl->lock.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      misuse(dir.string() + " is in use by another process (it holds " + lockPath.string() +
             "); stop that process first, a storage directory has one owner");
    }
    storage::throwIo("locking", lockPath, errno);
  }

  impl->recover();
  return Storage(std::move(impl));
}

const Recovered& Storage::recovered() const { return impl_->recovered; }

Recovered Storage::takeRecovered() { return std::exchange(impl_->recovered, Recovered{}); }

void Storage::save(const HardState* hardState, std::span<const Entry> entries) {
  auto& s = *impl_;
  s.checkWritable();
  if (hardState == nullptr && entries.empty()) return;
  if (!entries.empty()) {
    Index first = entries.front().index;
    if (first <= s.baseIndex) {
      misuse("save: entry index " + std::to_string(first) + " is at or below the snapshot (index " +
             std::to_string(s.baseIndex) + "); entries there can no longer change");
    }
    if (first > s.lastIndex + 1) {
      misuse("save: entries start at index " + std::to_string(first) +
             " but the log ends at index " + std::to_string(s.lastIndex) +
             "; entries must follow on without a gap");
    }
    for (size_t i = 1; i < entries.size(); ++i) {
      if (entries[i].index != entries[i - 1].index + 1) {
        misuse("save: entry " + std::to_string(i) + " has index " +
               std::to_string(entries[i].index) + " after " +
               std::to_string(entries[i - 1].index) + "; a batch must be contiguous");
      }
    }
  }
  std::string payload;
  encodeState(payload, hardState, entries);
  if (payload.size() > storage::kMaxBodyBytes - storage::kSealOverhead) {
    misuse("save: a batch of " + std::to_string(payload.size()) + " bytes exceeds the " +
           std::to_string(storage::kMaxBodyBytes - storage::kSealOverhead) +
           "-byte record limit; save fewer entries at a time");
  }
  s.guarded([&] { s.appendWal(RecordType::state, payload); });
  if (hardState != nullptr) s.hardState = *hardState;
  if (!entries.empty()) s.noteAppended(entries);
}

// ---- snapshots ----------------------------------------------------------------------------------

struct SnapshotWriter::State {
  Storage::Impl* storage = nullptr;
  SnapshotMeta meta;
  SnapshotKind kind = SnapshotKind::taken;
  fs::path tmp;
  Fd fd;
  uint64_t offset = 0;
  uint64_t ordinal = 0;
  uint64_t bytes = 0;
  uint64_t chunks = 0;
  std::string pending;
  bool done = false;

  void appendRecord(RecordType type, std::string_view payload) {
    std::string frame;
    RecordPlace place{FileKind::snapshot, ordinal == 0 ? 0 : meta.index, ordinal};
    storage::appendRecord(frame, storage->key, place, type, payload);
    storage::writeAt(fd.get(), frame, offset, tmp);
    offset += frame.size();
    ++ordinal;
  }

  void flushChunk(std::string_view data) {
    appendRecord(RecordType::snapshotChunk, data);
    bytes += data.size();
    ++chunks;
  }
};

SnapshotWriter::SnapshotWriter(std::unique_ptr<State> state) : state_(std::move(state)) {}
SnapshotWriter::SnapshotWriter(SnapshotWriter&&) noexcept = default;

SnapshotWriter::~SnapshotWriter() {
  if (state_ && !state_->done) {
    state_->fd.reset();
    ::unlink(state_->tmp.c_str());
  }
}

void SnapshotWriter::write(std::string_view data) {
  auto& st = *state_;
  if (st.done) misuse("SnapshotWriter::write after commit");
  size_t chunk = st.storage->options.snapshotChunkBytes;
  if (st.pending.empty()) {
    while (data.size() >= chunk) {
      st.flushChunk(data.substr(0, chunk));
      data.remove_prefix(chunk);
    }
  }
  while (!data.empty()) {
    size_t take = std::min(chunk - st.pending.size(), data.size());
    st.pending.append(data.substr(0, take));
    data.remove_prefix(take);
    if (st.pending.size() == chunk) {
      st.flushChunk(st.pending);
      st.pending.clear();
    }
  }
}

void SnapshotWriter::commit() {
  auto& st = *state_;
  auto& s = *st.storage;
  if (st.done) misuse("SnapshotWriter::commit called twice");
  s.checkWritable();
  s.checkSnapshotOrder(st.meta, st.kind);
  if (!st.pending.empty()) {
    st.flushChunk(st.pending);
    st.pending.clear();
  }
  std::string end;
  ByteWriter w(end);
  w.u64(st.bytes);
  w.u64(st.chunks);
  st.appendRecord(RecordType::snapshotEnd, end);
  storage::syncData(st.fd.get(), st.tmp);
  st.fd.reset();
  storage::renameFile(st.tmp, s.snapshotPath(st.meta.index));
  st.done = true;
  s.guarded([&] {
    storage::syncDir(s.dir);
    s.snapshotDurable(st.meta, st.kind);
  });
}

SnapshotWriter Storage::beginSnapshot(const SnapshotMeta& meta, SnapshotKind kind) {
  auto& s = *impl_;
  s.checkWritable();
  checkSnapshotMeta(meta);
  s.checkSnapshotOrder(meta, kind);
  auto st = std::make_unique<SnapshotWriter::State>();
  st->storage = &s;
  st->meta = meta;
  st->kind = kind;
  st->tmp = fs::path(s.snapshotPath(meta.index).string() + ".tmp");
  st->fd = storage::openFile(st->tmp, O_WRONLY | O_CREAT | O_TRUNC);
  SnapshotWriter writer(std::move(st));  // from here on, a failure removes the file
  writer.state_->appendRecord(RecordType::snapshotMeta, encodeSnapshotMeta(meta, kind));
  return writer;
}

void Storage::saveSnapshot(const SnapshotMeta& meta, std::string_view data) {
  auto writer = beginSnapshot(meta, SnapshotKind::taken);
  writer.write(data);
  writer.commit();
}

void Storage::installSnapshot(const SnapshotMeta& meta, std::string_view data) {
  auto writer = beginSnapshot(meta, SnapshotKind::received);
  writer.write(data);
  writer.commit();
}

void Storage::readSnapshot(const std::function<void(std::string_view)>& chunk) const {
  if (!impl_->snapshot) misuse("readSnapshot: there is no snapshot");
  impl_->readSnapshotFile(impl_->snapshot->index, &chunk);
}

std::string Storage::loadSnapshotData() const {
  std::string data;
  readSnapshot([&data](std::string_view chunk) { data.append(chunk); });
  return data;
}

void Storage::compact(Index upTo) {
  auto& s = *impl_;
  s.checkWritable();
  if (!s.snapshot || upTo > s.snapshot->index) {
    misuse("compact(" + std::to_string(upTo) + ") is beyond the newest snapshot (" +
           (s.snapshot ? "index " + std::to_string(s.snapshot->index) : std::string("none")) +
           "); save a snapshot covering those entries first");
  }
  size_t drop = 0;
  // Segment k holds nothing needed once the segment after it started at or below upTo.
  while (drop + 1 < s.segments.size() && s.segments[drop + 1].headerLastIndex <= upTo) ++drop;
  if (drop == 0) return;
  s.guarded([&] {
    for (size_t i = 0; i < drop; ++i) storage::removeFile(s.segmentPath(s.segments[i].seq));
    s.segments.erase(s.segments.begin(), s.segments.begin() + static_cast<ptrdiff_t>(drop));
    storage::syncDir(s.dir);
  });
}

void Storage::markRemoved(MemberId id) {
  auto& s = *impl_;
  s.checkWritable();
  if (s.removed.contains(id)) return;
  std::string payload;
  ByteWriter(payload).u64(id);
  s.guarded([&] { s.appendWal(RecordType::removed, payload); });
  s.removed.insert(id);
}

const std::optional<SnapshotMeta>& Storage::snapshot() const { return impl_->snapshot; }
const HardState& Storage::hardState() const { return impl_->hardState; }
Index Storage::firstIndex() const { return impl_->baseIndex + 1; }
Index Storage::lastIndex() const { return impl_->lastIndex; }
Term Storage::lastTerm() const { return impl_->lastTerm; }
const fs::path& Storage::dir() const { return impl_->dir; }

std::vector<std::string> Storage::segmentFiles() const {
  std::vector<std::string> names;
  for (auto& seg : impl_->segments) names.push_back(segmentName(seg.seq));
  return names;
}

std::vector<std::string> Storage::snapshotFiles() const {
  std::vector<std::string> names;
  for (auto index : impl_->snapshotIndexes) names.push_back(snapshotName(index));
  return names;
}

}  // namespace swarm::raft
