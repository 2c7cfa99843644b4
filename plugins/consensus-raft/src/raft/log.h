// The in-memory Raft log of one node: every entry after the last compaction point, plus the
// indexes that say how far they are persisted, committed and applied.
//
//   compacted | firstIndex() ...... stable ...... committed ...... lastIndex()
//   (snapshot)  [------ persisted ---][--- not yet handed back through advance() ---]
//
// Invariants: snapIndex() < firstIndex() == snapIndex() + 1; snapIndex() <= stable() <=
// lastIndex(); committed() <= lastIndex(); applied() <= applying() <= committed() except right
// after restore(), where applied() may trail snapIndex() until the snapshot is handed out.
#pragma once

#include "types.h"

#include <optional>
#include <span>
#include <utility>
#include <vector>

namespace swarm::raft {

class RaftLog {
 public:
  Index snapIndex() const { return offset; }
  Term snapTerm() const { return offsetTerm; }
  Index firstIndex() const { return offset + 1; }
  Index lastIndex() const { return offset + entries.size(); }
  Term lastTerm() const { return entries.empty() ? offsetTerm : entries.back().term; }
  Index stable() const { return stableIndex; }
  Index committed() const { return commitIndex; }
  Index applied() const { return appliedIndex; }
  Index applying() const { return applyingIndex; }

  std::optional<Term> term(Index i) const;
  // The term at i, for snapIndex() <= i <= lastIndex(); nullopt when compacted or beyond.

  bool matchTerm(Index i, Term t) const {
    auto got = term(i);
    return got && *got == t;
  }

  bool isUpToDate(Index lastI, Term lastT) const {
    // §5.4.1: a log ending in a later term, or the same term and at least as long, is as
    // up-to-date as ours.
    return lastT > lastTerm() || (lastT == lastTerm() && lastI >= lastIndex());
  }

  const Entry& at(Index i) const { return entries[i - offset - 1]; }
  // Requires firstIndex() <= i <= lastIndex().

  std::span<const Entry> view(Index lo, Index hi) const;
  // Entries [lo, hi], clamped to what is in memory.

  void copyEntries(Index lo, Index hi, size_t maxBytes, std::vector<Entry>& out) const;
  // Appends copies of entries [lo, hi] to `out`, stopping before maxBytes of encoded entries are
  // exceeded, but always at least one when lo <= hi.

  void append(Entry entry);
  // A leader's new entry; entry.index must be lastIndex() + 1.

  enum class AppendResult { appended, mismatch, conflictsWithCommitted };
  AppendResult maybeAppend(Index prevIndex, Term prevTerm, std::vector<Entry>&& incoming,
                           Index& lastNew);
  // A follower's handling of an append (§5.3): if our entry at prevIndex has prevTerm, drop any
  // conflicting suffix and add what is new; lastNew = prevIndex + incoming.size(). Refuses a
  // conflict at or below the commit index (a misbehaving peer; a correct leader never sends it).

  Index findConflict(const std::vector<Entry>& incoming) const;
  // Index of the first incoming entry whose term differs from ours or that we lack; 0 if none.

  std::pair<Index, Term> findConflictByTerm(Index index, Term t) const;
  // The largest index <= `index` whose term is <= t, with that term (term 0 if unknown because
  // compacted): the fast log backtracking of the paper's §5.3 note, as in etcd.

  void commitTo(Index i);   // raises committed; clamps to lastIndex()
  void stableTo(Index i, Term t);
  // The shell persisted entries through i (term t): ignored if the entry has since been
  // replaced (its term changed), which can happen when a step() ran between ready() and advance().
  void applyingTo(Index i) { applyingIndex = i; }
  void appliedTo(Index i);

  void compactTo(Index i);
  // Drops entries through i (<= applied()), keeping the term of i for matching.

  void restore(Index i, Term t);
  // Replaces the whole log by a snapshot ending at (i, t): everything through i is committed.

  void reset(Index snapI, Term snapT, std::vector<Entry>&& persisted, Index commit, Index applied);
  // Restart: the persisted state (entries after snapI), all of it stable.

 private:
  Index offset = 0;
  Term offsetTerm = 0;
  std::vector<Entry> entries;  // entries[k].index == offset + 1 + k
  Index stableIndex = 0;
  Index commitIndex = 0;
  Index appliedIndex = 0;
  Index applyingIndex = 0;

  void truncateAndAppend(std::span<Entry> tail);
};

}  // namespace swarm::raft
