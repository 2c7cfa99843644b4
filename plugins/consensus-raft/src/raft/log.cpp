#include "log.h"

#include "message.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace swarm::raft {

std::optional<Term> RaftLog::term(Index i) const {
  if (i == offset) return offsetTerm;
  if (i < offset || i > lastIndex()) return std::nullopt;
  return entries[i - offset - 1].term;
}

std::span<const Entry> RaftLog::view(Index lo, Index hi) const {
  lo = std::max(lo, firstIndex());
  hi = std::min(hi, lastIndex());
  if (lo > hi) return {};
  return std::span<const Entry>(entries).subspan(lo - offset - 1, hi - lo + 1);
}

void RaftLog::copyEntries(Index lo, Index hi, size_t maxBytes, std::vector<Entry>& out) const {
  size_t bytes = 0;
  for (const Entry& e : view(lo, hi)) {
    size_t size = encodedEntrySize(e);
    if (bytes > 0 && bytes + size > maxBytes) break;
    bytes += size;
    out.push_back(e);
  }
}

void RaftLog::append(Entry entry) {
  if (entry.index != lastIndex() + 1) {
    throw std::logic_error("raft log: appending index " + std::to_string(entry.index) +
                           " after " + std::to_string(lastIndex()));
  }
  entries.push_back(std::move(entry));
}

Index RaftLog::findConflict(const std::vector<Entry>& incoming) const {
  for (const Entry& e : incoming) {
    if (!matchTerm(e.index, e.term)) return e.index;
  }
  return 0;
}

RaftLog::AppendResult RaftLog::maybeAppend(Index prevIndex, Term prevTerm,
                                           std::vector<Entry>&& incoming, Index& lastNew) {
  if (!matchTerm(prevIndex, prevTerm)) return AppendResult::mismatch;
  lastNew = prevIndex + incoming.size();
  // Entries at or below our compaction point are committed and match; skip them.
  size_t skip = 0;
  while (skip < incoming.size() && incoming[skip].index <= offset) ++skip;
  Index conflict = 0;
  for (size_t k = skip; k < incoming.size(); ++k) {
    if (!matchTerm(incoming[k].index, incoming[k].term)) {
      conflict = incoming[k].index;
      break;
    }
  }
  if (conflict == 0) return AppendResult::appended;
  if (conflict <= commitIndex) return AppendResult::conflictsWithCommitted;
  std::span<Entry> tail(incoming);
  truncateAndAppend(tail.subspan(conflict - prevIndex - 1));
  return AppendResult::appended;
}

void RaftLog::truncateAndAppend(std::span<Entry> tail) {
  if (tail.empty()) return;
  Index first = tail.front().index;
  // first is in (offset, lastIndex() + 1]: maybeAppend only gets here past a matching prefix.
  entries.resize(first - offset - 1);
  stableIndex = std::min(stableIndex, first - 1);
  for (Entry& e : tail) entries.push_back(std::move(e));
}

std::pair<Index, Term> RaftLog::findConflictByTerm(Index index, Term t) const {
  index = std::min(index, lastIndex());
  for (; index > 0; --index) {
    auto ours = term(index);
    if (!ours) return {index, 0};
    if (*ours <= t) return {index, *ours};
  }
  return {0, 0};
}

void RaftLog::commitTo(Index i) {
  i = std::min(i, lastIndex());
  if (i > commitIndex) commitIndex = i;
}

void RaftLog::stableTo(Index i, Term t) {
  if (i > stableIndex && matchTerm(i, t)) stableIndex = i;
}

void RaftLog::appliedTo(Index i) {
  appliedIndex = std::max(appliedIndex, i);
  applyingIndex = std::max(applyingIndex, appliedIndex);
}

void RaftLog::compactTo(Index i) {
  if (i <= offset) return;
  if (i > appliedIndex || i > lastIndex()) {
    throw std::logic_error("raft log: compacting to " + std::to_string(i) +
                           " beyond the applied index " + std::to_string(appliedIndex));
  }
  offsetTerm = *term(i);
  entries.erase(entries.begin(), entries.begin() + static_cast<ptrdiff_t>(i - offset));
  offset = i;
}

void RaftLog::restore(Index i, Term t) {
  entries.clear();
  offset = i;
  offsetTerm = t;
  stableIndex = i;
  commitIndex = i;
}

void RaftLog::reset(Index snapI, Term snapT, std::vector<Entry>&& persisted, Index commit,
                    Index applied) {
  offset = snapI;
  offsetTerm = snapT;
  entries = std::move(persisted);
  stableIndex = lastIndex();
  commitIndex = commit;
  appliedIndex = applied;
  applyingIndex = applied;
}

}  // namespace swarm::raft
