// Test helpers for the storage tests: temporary directories, file surgery, and ModelStorage, a
// plain in-memory oracle with the semantics Storage promises (no files, no crypto), plus a seeded
// Workload that drives both with the same operations.
#pragma once

#include "storage/storage.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace swarm::raft::testing {

namespace fs = std::filesystem;

inline std::vector<uint8_t> testKey(uint8_t fill) {
  std::vector<uint8_t> key(32);
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(fill + i * 7);
  return key;
}

class TempDir {
 public:
  TempDir() {
    auto base = fs::temp_directory_path() / "swarm-raft-storage-XXXXXX";
    std::string tmpl = base.string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    root_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  fs::path path(const std::string& name = "raft") const { return root_ / name; }

 private:
  fs::path root_;
};

inline std::string readFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void writeFile(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline uint64_t fileSize(const fs::path& p) { return fs::file_size(p); }

// Snapshot of every file in a directory, to check that a refused open changed nothing and to
// restore a pristine copy between damage experiments.
using DirImage = std::map<std::string, std::string>;

inline DirImage imageOf(const fs::path& dir) {
  DirImage image;
  for (auto& e : fs::directory_iterator(dir)) image[e.path().filename()] = readFile(e.path());
  return image;
}

inline void restoreImage(const fs::path& dir, const DirImage& image) {
  for (auto& e : fs::directory_iterator(dir)) {
    if (!image.contains(e.path().filename())) fs::remove(e.path());
  }
  for (auto& [name, bytes] : image) writeFile(dir / name, bytes);
}

inline Entry makeEntry(Index index, Term term, std::string data,
                       EntryType type = EntryType::normal) {
  return Entry{index, term, type, std::move(data)};
}

inline std::vector<Entry> makeEntries(Index first, Index count, Term term, size_t size = 20) {
  std::vector<Entry> entries;
  for (Index i = first; i < first + count; ++i) {
    std::string data = "entry " + std::to_string(i) + " term " + std::to_string(term) + " ";
    data.resize(std::max(size, data.size()), static_cast<char>('a' + i % 26));
    entries.push_back(makeEntry(i, term, std::move(data)));
  }
  return entries;
}

// Expects `fn` to throw StorageError of `kind` whose message contains every string in `parts`.
template <typename F>
StorageError expectError(F&& fn, StorageError::Kind kind, std::vector<std::string> parts = {}) {
  try {
    fn();
  } catch (const StorageError& e) {
    INFO("message: " << e.what());
    CHECK(static_cast<int>(e.kind()) == static_cast<int>(kind));
    for (auto& part : parts) CHECK_THAT(e.what(), Catch::Matchers::Contains(part));
    return e;
  }
  FAIL("expected a StorageError, got none");
  throw std::logic_error("unreachable");
}

// ---- the oracle ---------------------------------------------------------------------------------

struct ModelStorage {
  HardState hardState;
  std::optional<SnapshotMeta> snapshot;
  std::string snapshotData;
  Index base = 0;
  Term baseTerm = 0;
  std::vector<Entry> log;  // entries after base
  std::set<MemberId> removed;

  Index last() const { return base + log.size(); }
  std::optional<Term> termAt(Index i) const {
    if (i == base) return baseTerm;
    if (i < base || i > last()) return std::nullopt;
    return log[i - base - 1].term;
  }
  Term lastTerm() const { return log.empty() ? baseTerm : log.back().term; }

  void save(const HardState* hs, const std::vector<Entry>& entries) {
    if (hs != nullptr) hardState = *hs;
    if (entries.empty()) return;
    log.resize(entries.front().index - base - 1);
    log.insert(log.end(), entries.begin(), entries.end());
  }

  void saveSnapshot(const SnapshotMeta& meta, const std::string& data,
                    SnapshotKind kind = SnapshotKind::taken) {
    if (kind == SnapshotKind::taken && termAt(meta.index) == meta.term) {
      log.erase(log.begin(), log.begin() + static_cast<ptrdiff_t>(meta.index - base));
    } else {
      log.clear();
    }
    base = meta.index;
    baseTerm = meta.term;
    snapshot = meta;
    snapshotData = data;
  }

  bool operator==(const ModelStorage&) const = default;
};

// Checks what a Storage recovered against the model; returns whether they match, with the first
// difference in `why`.
inline bool matches(const Storage& storage, const ModelStorage& model, std::string& why) {
  auto& rec = storage.recovered();
  if (rec.hardState != model.hardState) {
    why = "hard state differs: term " + std::to_string(rec.hardState.term) + " vs " +
          std::to_string(model.hardState.term) + ", commit " +
          std::to_string(rec.hardState.commit) + " vs " + std::to_string(model.hardState.commit);
    return false;
  }
  if (rec.snapshot != model.snapshot) {
    why = "snapshot meta differs (index " +
          std::to_string(rec.snapshot ? rec.snapshot->index : 0) + " vs " +
          std::to_string(model.snapshot ? model.snapshot->index : 0) + ")";
    return false;
  }
  if (rec.entries.size() != model.log.size()) {
    why = "entry count differs: " + std::to_string(rec.entries.size()) + " vs " +
          std::to_string(model.log.size()) + " (last index " +
          std::to_string(rec.entries.empty() ? 0 : rec.entries.back().index) + " vs " +
          std::to_string(model.last()) + ")";
    return false;
  }
  for (size_t i = 0; i < rec.entries.size(); ++i) {
    if (!(rec.entries[i] == model.log[i])) {
      why = "entry " + std::to_string(model.log[i].index) + " differs";
      return false;
    }
  }
  if (std::set<MemberId>(rec.removed.begin(), rec.removed.end()) != model.removed) {
    why = "removed members differ";
    return false;
  }
  if (model.snapshot && storage.loadSnapshotData() != model.snapshotData) {
    why = "snapshot data differs";
    return false;
  }
  if (storage.lastIndex() != model.last() || storage.lastTerm() != model.lastTerm()) {
    why = "last index/term differ";
    return false;
  }
  return true;
}

// ---- a seeded workload --------------------------------------------------------------------------

// Generates valid operations from the model's state and applies them to the model. A copy taken
// at any point continues with exactly the same operations (fork relies on that).
class Workload {
 public:
  struct Op {
    enum Kind { save, snapshot, compact, removeMember } kind = save;
    SnapshotKind snapshotKind = SnapshotKind::taken;
    bool withHardState = false;
    HardState hardState;
    std::vector<Entry> entries;
    SnapshotMeta meta;
    std::string data;
    Index upTo = 0;
    MemberId member = 0;
  };

  explicit Workload(uint64_t seed, bool snapshots = true) : rng_(seed), snapshots_(snapshots) {}

  const ModelStorage& model() const { return model_; }
  uint64_t count() const { return count_; }

  Op next() {
    Op op;
    auto roll = below(100);
    if (snapshots_ && roll < 4 && model_.last() > model_.base) {
      op.kind = Op::snapshot;
      // Usually one taken at an index the log has; sometimes one received from a leader,
      // anywhere from the snapshot to beyond the end of the log, with the log's term or a newer.
      auto roll2 = below(6);
      if (roll2 < 4) {
        op.meta.index = model_.base + 1 + below(model_.last() - model_.base);
        op.meta.term = *model_.termAt(op.meta.index);
        // Now and then a taken snapshot whose term does not match (§7: the log goes).
        if (roll2 == 3) op.meta.term += 1;
      } else {
        op.snapshotKind = SnapshotKind::received;
        op.meta.index = model_.base + 1 + below(model_.last() - model_.base + 5);
        op.meta.term = model_.lastTerm() + below(2);
      }
      op.meta.members = {Member{1 + below(5), "node-" + std::to_string(count_), "127.0.0.1:4242",
                                below(2) == 1}};
      if (below(2) == 0) op.meta.removed = {below(100), 100 + below(100)};
      op.data = bytes(below(3000));
      model_.saveSnapshot(op.meta, op.data, op.snapshotKind);
    } else if (snapshots_ && roll < 7 && model_.snapshot) {
      op.kind = Op::compact;
      op.upTo = model_.snapshot->index - std::min<Index>(model_.snapshot->index, below(20));
    } else if (roll < 8) {
      op.kind = Op::removeMember;
      op.member = 1000 + below(50);
      model_.removed.insert(op.member);
    } else {
      op.kind = Op::save;
      op.withHardState = below(4) > 0;
      term_ = std::max(term_, model_.lastTerm());
      if (below(30) == 0) ++term_;
      if (op.withHardState) {
        op.hardState = {term_, below(4), model_.base + below(model_.last() - model_.base + 1)};
      }
      if (below(10) > 0) {
        Index first = model_.last() + 1;
        // Sometimes replace a suffix, as a follower does on a conflict (never into the snapshot).
        if (model_.last() > model_.base && below(8) == 0) {
          first = model_.last() + 1 - std::min<Index>(model_.last() - model_.base, 1 + below(6));
          ++term_;
        }
        Index count = 1 + below(below(4) == 0 ? 64 : 4);
        for (Index i = first; i < first + count; ++i) {
          auto type = below(20) == 0 ? EntryType::membership : EntryType::normal;
          op.entries.push_back(makeEntry(i, term_, bytes(below(10) == 0 ? below(4096) : below(64)),
                                         type));
        }
      }
      if (!op.withHardState && op.entries.empty()) op.withHardState = true;
      if (op.withHardState && op.hardState.term == 0) op.hardState.term = term_;
      model_.save(op.withHardState ? &op.hardState : nullptr, op.entries);
    }
    ++count_;
    return op;
  }

  static void apply(Storage& storage, const Op& op) {
    switch (op.kind) {
      case Op::save:
        storage.save(op.withHardState ? &op.hardState : nullptr, op.entries);
        break;
      case Op::snapshot:
        if (op.snapshotKind == SnapshotKind::taken) {
          storage.saveSnapshot(op.meta, op.data);
        } else {
          storage.installSnapshot(op.meta, op.data);
        }
        break;
      case Op::compact:
        storage.compact(op.upTo);
        break;
      case Op::removeMember:
        storage.markRemoved(op.member);
        break;
    }
  }

 private:
  uint64_t below(uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  std::string bytes(size_t n) {
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng_());
    return s;
  }

  std::mt19937_64 rng_;
  bool snapshots_;
  ModelStorage model_;
  Term term_ = 1;
  uint64_t count_ = 0;
};

inline uint64_t envNumber(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 0);
}

}  // namespace swarm::raft::testing
