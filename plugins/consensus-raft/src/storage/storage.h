// Durable, encrypted storage for the Raft log: a write-ahead log in segment files plus sealed
// snapshot files, shaped for the shell's Ready loop:
//
//   auto storage = Storage::open(dir, dataKey);   // recovers; throws StorageError if it cannot
//   auto rec = storage.takeRecovered();            // hard state, snapshot meta, entries after it
//   per Ready:
//     if (rd.snapshot) storage.installSnapshot(meta, data);   // received from the leader
//     storage.save(hardStateOrNull, rd.entries);  // durable when it returns (one fdatasync)
//     ... only now send messages that depend on it, then apply ...
//   after Core::snapshotTaken:
//     storage.saveSnapshot(meta, data);  storage.compact(meta.index - keep);
//
// The on-disk format and the recovery rules are in plugins/consensus-raft/README.md ("Storage").
// Everything stored is sealed with the 32-byte data key (XChaCha20-Poly1305) and checksummed
// (CRC32C). Recovery truncates a torn final record and refuses every other kind of damage.
//
// Not thread-safe: one thread drives a Storage. One process per directory (a LOCK file is held).
// After an I/O error the Storage refuses every further write (the disk state is unknown until
// the next open recovers it).
#pragma once

#include "../raft/types.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace swarm::raft {

class StorageError : public std::runtime_error {
 public:
  enum class Kind {
    corrupt,   // damaged, truncated, missing or altered data: restore from a peer
    wrongKey,  // the data key does not open this directory
    io,        // an OS call failed (disk full, permissions); writes stop until reopened
    misuse,    // a bad argument or call order (a gap in the log, a short key, dir in use)
  };
  StorageError(Kind kind, const std::string& message)
      : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

struct StorageOptions {
  uint64_t segmentBytes = 64ull << 20;
  // A segment is closed and a new one started once it reaches this size (a segment can exceed
  // it by one record). At least 512.
  uint32_t snapshotsToKeep = 2;
  // The newest snapshot and this many minus one older ones are kept. At least 1.
  uint32_t snapshotChunkBytes = 1u << 20;
  // Snapshot data is sealed in records of this size.
};

struct TornTail {
  std::string file;     // the last segment
  uint64_t offset = 0;  // where the torn record began; the file now ends here
  uint64_t bytesDropped = 0;
};

struct Recovered {
  HardState hardState;
  std::optional<SnapshotMeta> snapshot;
  std::vector<Entry> entries;
  // Contiguous, from snapshot index + 1 (or 1 without a snapshot) to the last saved entry.
  std::vector<MemberId> removed;  // sorted
  std::optional<TornTail> tornTail;
  // Set when recovery cut off a partially written final record (a crash mid-write): nothing
  // acknowledged is lost by that, but the shell should log it.
};

class SnapshotWriter;

enum class SnapshotKind {
  taken,     // of this node's state machine (Core::snapshotTaken): the log after it stays
  received,  // from the leader (Ready::snapshot): it replaces the whole log
};

class Storage {
 public:
  static Storage open(const std::filesystem::path& dir, std::span<const uint8_t> dataKey,
                      const StorageOptions& options = {});
  // Creates `dir` (mode 0700) if absent, or recovers what is in it. Throws StorageError:
  // wrongKey if dataKey does not open it, corrupt for damage (naming file and byte offset),
  // misuse for a key that is not 32 bytes or a directory another process holds.

  Storage(Storage&&) noexcept;
  Storage& operator=(Storage&&) noexcept;
  ~Storage();

  const Recovered& recovered() const;
  Recovered takeRecovered();
  // What open() found. takeRecovered() moves it out (later calls see it empty).

  void save(const HardState* hardState, std::span<const Entry> entries);
  // Persists the hard state (if not null) and the entries as one record with one fdatasync.
  // `entries` must be contiguous, start after the snapshot and at most at lastIndex() + 1;
  // starting at or below lastIndex() replaces that suffix (conflict truncation). Atomic: after
  // a crash either all of it is there or none.

  void saveSnapshot(const SnapshotMeta& meta, std::string_view data);
  void installSnapshot(const SnapshotMeta& meta, std::string_view data);
  SnapshotWriter beginSnapshot(const SnapshotMeta& meta, SnapshotKind kind);
  // Writes a sealed snapshot file (tmp + fdatasync + rename + directory fsync), then records it
  // in the log (one more fdatasync). Entries up to meta.index leave the log. saveSnapshot (kind
  // taken) keeps the entries after meta.index if the log has an entry at meta.index with
  // meta.term, else drops them too (Raft §7); installSnapshot (kind received) drops them all.
  // meta.index must not be below the previous snapshot's. Older snapshot files beyond
  // snapshotsToKeep are deleted.

  std::string loadSnapshotData() const;
  void readSnapshot(const std::function<void(std::string_view chunk)>& chunk) const;
  // The newest snapshot's data, verified. Misuse if there is no snapshot.

  void compact(Index upTo);
  // Deletes segments holding only entries at or below upTo, which must not be above the newest
  // snapshot. The segment being written is never deleted.

  void markRemoved(MemberId id);
  // Durably records a removed member ID (recovered in Recovered::removed).

  const std::optional<SnapshotMeta>& snapshot() const;
  const HardState& hardState() const;
  Index firstIndex() const;  // first index the log can hold: snapshot index + 1
  Index lastIndex() const;   // last saved entry, or the snapshot index when none follows
  Term lastTerm() const;
  const std::filesystem::path& dir() const;
  std::vector<std::string> segmentFiles() const;  // names, oldest first
  std::vector<std::string> snapshotFiles() const;  // names, oldest first

 private:
  struct Impl;
  explicit Storage(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  friend class SnapshotWriter;
};

class SnapshotWriter {
  // Streams a snapshot into a sealed file; commit() makes it the newest snapshot. Destroying it
  // uncommitted removes the partial file. The Storage must outlive it.
 public:
  SnapshotWriter(SnapshotWriter&&) noexcept;
  SnapshotWriter& operator=(SnapshotWriter&&) = delete;
  ~SnapshotWriter();

  void write(std::string_view data);
  void commit();

 private:
  struct State;
  explicit SnapshotWriter(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
  friend class Storage;
};

}  // namespace swarm::raft
