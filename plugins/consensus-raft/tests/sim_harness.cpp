#include "sim_harness.h"

#include "raft/core.h"
#include "raft/rng.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <sstream>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace swarm::raft::sim {
namespace {

constexpr uint64_t kTick = 100;  // simulated time units per raft tick
constexpr uint32_t kElectionTicks = 10;
constexpr Term kUnknownTerm = ~Term{0};
constexpr size_t kTraceSize = 80;

struct Failure {
  bool safety;
  std::string what;
};

uint64_t hashEntry(EntryType type, const std::string& data) {
  uint64_t h = 1469598103934665603ULL ^ static_cast<uint8_t>(type);
  for (unsigned char c : data) h = (h ^ c) * 1099511628211ULL;
  return h;
}

// Client payload: proposal ID (the client dedupes by it), attempt ID (unique per propose call),
// then padding.
std::string payload(uint64_t pid, uint64_t attempt, size_t pad) {
  std::string s(16 + pad, '.');
  std::memcpy(s.data(), &pid, 8);
  std::memcpy(s.data() + 8, &attempt, 8);
  return s;
}

std::pair<uint64_t, uint64_t> parsePayload(const std::string& s) {
  uint64_t pid = 0, attempt = 0;
  if (s.size() >= 16) {
    std::memcpy(&pid, s.data(), 8);
    std::memcpy(&attempt, s.data() + 8, 8);
  }
  return {pid, attempt};
}

enum class Ev : uint8_t { tick, deliver, sync, chaos, client, reader, restart, driver, stop, healStart, healCheck,
                          ambush };

struct Event {
  uint64_t time;
  uint64_t seq;
  Ev kind;
  uint32_t node;
  uint64_t arg;
};

struct Later {
  bool operator()(const Event& a, const Event& b) const {
    return a.time != b.time ? a.time > b.time : a.seq > b.seq;
  }
};

enum class Tr : uint8_t {
  tick, deliver, dropped, ready, sync, crash, restart, partition, heal, propose, ack, leader, member,
  read, stop, snapshot, join
};

struct TraceRec {
  uint64_t time;
  Tr what;
  uint64_t a, b, c, d, e;
};

struct Disk {
  HardState hardState;
  std::optional<Snapshot> snapshot;
  std::vector<Entry> entries;
};

struct Node {
  MemberId id = 0;
  bool started = false;
  bool up = false;
  bool stopped = false;
  uint64_t incarnation = 0;
  uint64_t phase = 0;
  std::unique_ptr<Core> core;
  Disk disk;
  std::optional<Ready> pending;
  // The state machine (in memory; lost on a crash).
  Index applied = 0;
  std::vector<uint64_t> order;  // proposal IDs in first-applied order
  std::unordered_set<uint64_t> seen;
  // Checker bookkeeping.
  Index checkedCommit = 0;
  bool wasLeader = false;
  Term leaderTerm = 0;
};

struct Client {
  uint64_t pid = 0;
  uint64_t attempt = 0;
  bool waiting = false;
  MemberId node = 0;
  Index index = 0;
  Term term = 0;
  uint64_t deadline = 0;
  MemberId guess = 0;
  MemberId avoid = 0;  // where the last attempt timed out
};

struct PendingRead {
  Index mustCover;  // highest index acknowledged to a client before the read started
};

struct MembershipOp {
  MemberId node;
  Index index;
  Term term;
  uint64_t deadline;
  bool duringPartition;
  bool removesLeader;
};

struct Canon {
  Term term = 0;
  uint64_t hash = 0;
  bool known = false;
  EntryType type = EntryType::normal;
  uint64_t pid = 0;
};

class Sim {
 public:
  explicit Sim(const Options& o) : opt(o), rng(o.seed * 0x9E3779B97F4A7C15ULL + 17) {}

  Result run() {
    Result result;
    try {
      setup();
      loop();
    } catch (const Failure& f) {
      result.ok = false;
      result.safety = f.safety;
      result.failure = f.what;
    } catch (const std::exception& e) {
      result.ok = false;
      result.safety = true;
      result.failure = std::string("exception from the core: ") + e.what();
    }
    if (!result.ok) result.trace = formatTrace();
    result.stats = stats;
    return result;
  }

 private:
  Options opt;
  Rng rng;
  uint64_t now = 0;
  uint64_t seq = 0;
  std::priority_queue<Event, std::vector<Event>, Later> events;
  std::vector<Node> nodes;
  std::unordered_map<MemberId, uint32_t> indexOf;
  std::vector<std::vector<char>> blocked;  // blocked[from][to]
  std::vector<std::string> wire;
  std::vector<uint64_t> freeWire;
  bool healing = false;
  bool finished = false;
  uint64_t healDeadline = 0;
  double dropRate = 0, dupRate = 0;
  Stats stats;
  std::vector<TraceRec> trace;
  size_t traceNext = 0;

  // Checker state.
  std::map<Term, MemberId> leaderOf;
  std::unordered_map<uint64_t, std::pair<uint64_t, Term>> entryIds;  // (index, term) -> (hash, prev term)
  std::vector<Canon> canon{1};
  Index canonMax = 0;
  Index canonContiguous = 0;
  std::vector<uint64_t> canonOrder;
  std::unordered_set<uint64_t> canonSeen;
  std::vector<size_t> orderLenAt{0};
  std::unordered_map<uint64_t, Index> attemptAt;
  std::unordered_map<uint64_t, Index> acked;  // pid -> index
  Index maxAcked = 0;

  std::vector<Client> clients;
  uint64_t nextPid = 0, nextAttempt = 0, nextRead = 0;
  std::unordered_map<uint64_t, std::vector<uint32_t>> waits;  // (member, index) -> clients
  std::map<std::pair<MemberId, uint64_t>, PendingRead> reads;
  std::optional<MembershipOp> memberOp;
  size_t joinersStarted = 0;
  std::vector<Member> initialMembers;

  [[noreturn]] void fail(bool safety, const std::string& what) { throw Failure{safety, what}; }

  void note(Tr what, uint64_t a = 0, uint64_t b = 0, uint64_t c = 0, uint64_t d = 0, uint64_t e = 0) {
    TraceRec r{now, what, a, b, c, d, e};
    if (trace.size() < kTraceSize) {
      trace.push_back(r);
    } else {
      trace[traceNext] = r;
    }
    traceNext = (traceNext + 1) % kTraceSize;
  }

  std::string formatTrace() const {
    std::ostringstream out;
    size_t n = trace.size();
    size_t start = n < kTraceSize ? 0 : traceNext;
    for (size_t k = 0; k < n; ++k) {
      const TraceRec& r = trace[(start + k) % n];
      out << "  t=" << r.time / kTick << "." << r.time % kTick << " ";
      switch (r.what) {
        case Tr::tick: out << "n" << r.a << " tick"; break;
        case Tr::deliver:
          out << "deliver " << messageTypeName(static_cast<MessageType>(r.a)) << " " << r.b << "->" << r.c
              << " term " << r.d << " index " << r.e;
          break;
        case Tr::dropped:
          out << "drop " << messageTypeName(static_cast<MessageType>(r.a)) << " " << r.b << "->" << r.c;
          break;
        case Tr::ready:
          out << "n" << r.a << " ready: " << r.b << " entries, " << r.c << " messages, " << r.d
              << " to apply, commit " << r.e;
          break;
        case Tr::sync: out << "n" << r.a << " synced"; break;
        case Tr::crash: out << "n" << r.a << " CRASH" << (r.b ? " (lost an unsynced Ready)" : ""); break;
        case Tr::restart: out << "n" << r.a << " restart (term " << r.b << ", last index " << r.c << ")"; break;
        case Tr::partition: out << "partition kind " << r.a << " (" << r.b << ", " << r.c << ")"; break;
        case Tr::heal: out << (r.a ? "HEAL PHASE" : "heal partitions"); break;
        case Tr::propose:
          out << "client " << r.a << " propose p" << r.b << " on n" << r.c << ": outcome " << r.d
              << " index " << r.e;
          break;
        case Tr::ack: out << "client " << r.a << " acked p" << r.b << " at index " << r.c; break;
        case Tr::leader: out << "n" << r.a << " LEADER of term " << r.b; break;
        case Tr::member:
          out << "membership op " << r.a << " on member " << r.b << " via n" << r.c << ": outcome "
              << r.d;
          break;
        case Tr::read: out << "read on n" << r.a << " -> index " << r.b << " (must cover " << r.c << ")"; break;
        case Tr::stop: out << "n" << r.a << " stopped (removed)"; break;
        case Tr::snapshot: out << "n" << r.a << " snapshot at " << r.b << (r.c ? " (restored)" : " (taken)"); break;
        case Tr::join: out << "n" << r.a << " started to join"; break;
      }
      out << "\n";
    }
    return out.str();
  }

  void schedule(uint64_t at, Ev kind, uint32_t node = 0, uint64_t arg = 0) {
    events.push(Event{at, seq++, kind, node, arg});
  }

  Config configFor(MemberId id) const {
    Config c;
    c.id = id;
    c.electionTicks = kElectionTicks;
    c.heartbeatTicks = 1;
    c.maxMessageBytes = opt.maxMessageBytes;
    c.maxInflightMessages = 4;
    c.maxSnapshotChunksInFlight = 2;
    c.logEntriesForSlowFollowers = opt.logEntriesForSlowFollowers;
    c.learnerCatchUpEntries = 5;
    c.randomSeed = opt.seed * 7919 + 1;
    c.testOnlyCommitPreviousTermEntries = opt.commitPreviousTermBug;
    c.preVote = opt.preVote;
    c.checkQuorum = opt.checkQuorum;
    return c;
  }

  // ----------------------------------------------------------------------------------------
  // Setup and the event loop

  void setup() {
    size_t total = opt.voters + (opt.membershipSchedule ? opt.maxJoiners : 0);
    blocked.assign(total, std::vector<char>(total, 0));
    std::vector<Member> members;
    for (size_t k = 0; k < opt.voters; ++k) {
      MemberId id = k + 1;
      members.push_back(Member{id, "node-" + std::to_string(id), "sim:" + std::to_string(id), true});
    }
    nodes.resize(total);
    for (size_t k = 0; k < total; ++k) {
      nodes[k].id = k < opt.voters ? k + 1 : 1000 + (k - opt.voters);
      nodes[k].phase = rng.below(kTick);
      indexOf[nodes[k].id] = static_cast<uint32_t>(k);
    }
    initialMembers = members;
    for (size_t k = 0; k < opt.voters; ++k) {
      Node& n = nodes[k];
      n.core = std::make_unique<Core>(configFor(n.id));
      n.core->bootstrap(members);
      n.started = n.up = true;
      startTicks(static_cast<uint32_t>(k));
    }
    for (size_t k = 0; k < opt.voters; ++k) after(static_cast<uint32_t>(k));
    dropRate = opt.dropRate;
    dupRate = opt.dupRate;
    clients.resize(opt.clients);
    for (size_t c = 0; c < opt.clients; ++c) schedule(rng.below(kTick * 5), Ev::client, static_cast<uint32_t>(c));
    for (size_t r = 0; r < opt.readers; ++r) schedule(kTick * 20 + rng.below(kTick), Ev::reader);
    schedule(kTick, Ev::chaos);
    if (opt.membershipSchedule) schedule(kTick * 30, Ev::driver);
    schedule(kTick * opt.faultTicks, Ev::healStart);
  }

  void startTicks(uint32_t k) {
    Node& n = nodes[k];
    uint64_t next = (now / kTick + 1) * kTick + n.phase;
    schedule(next, Ev::tick, k, n.incarnation);
  }

  void loop() {
    while (!finished) {
      if (events.empty()) fail(false, "the simulation ran out of events");
      Event ev = events.top();
      events.pop();
      now = ev.time;
      ++stats.events;
      switch (ev.kind) {
        case Ev::tick: onTick(ev.node, ev.arg); break;
        case Ev::deliver: onDeliver(ev.node, ev.arg); break;
        case Ev::sync: onSync(ev.node, ev.arg); break;
        case Ev::chaos: onChaos(); break;
        case Ev::client: onClient(ev.node); break;
        case Ev::reader: onReader(); break;
        case Ev::restart: restart(ev.node); break;
        case Ev::driver: onDriver(); break;
        case Ev::stop: stop(ev.node); break;
        case Ev::healStart: onHealStart(); break;
        case Ev::healCheck: onHealCheck(); break;
        case Ev::ambush: onAmbush(ev.node, ev.arg); break;
      }
    }
  }

  void onTick(uint32_t k, uint64_t incarnation) {
    Node& n = nodes[k];
    if (!n.up || n.incarnation != incarnation) return;
    note(Tr::tick, n.id);
    n.core->tick();
    after(k);
    schedule(now + kTick, Ev::tick, k, incarnation);
  }

  // ----------------------------------------------------------------------------------------
  // Checks after every event at a node

  void after(uint32_t k) {
    Node& n = nodes[k];
    if (!n.up) return;
    Core& c = *n.core;
    if (c.role() == Role::leader) {
      auto [it, inserted] = leaderOf.emplace(c.term(), n.id);
      if (!inserted && it->second != n.id) {
        fail(true, "election safety: members " + std::to_string(it->second) + " and " +
                       std::to_string(n.id) + " both lead term " + std::to_string(c.term()));
      }
      if (!n.wasLeader || n.leaderTerm != c.term()) {
        n.wasLeader = true;
        n.leaderTerm = c.term();
        ++stats.leaders;
        note(Tr::leader, n.id, c.term());
        checkLeaderCompleteness(n);
        if (!healing && rng.chance(opt.ambushNewLeaders)) {
          schedule(now + rng.below(2 * kTick), Ev::ambush, k, c.term());
        }
      }
    } else {
      n.wasLeader = false;
    }
    Index commit = c.commitIndex();
    if (commit > n.checkedCommit && c.role() == Role::leader && c.termAt(commit) != c.term()) {
      ++stats.oldTermCommits;
    }
    if (commit > n.checkedCommit) {
      for (Index i = std::max(n.checkedCommit, c.raftLog().snapIndex()) + 1; i <= commit; ++i) {
        recordCommitted(n.id, c.raftLog().at(i));
      }
      n.checkedCommit = commit;
    }
    if (!opt.membershipSchedule) checkCommittedAreSafe();
    maybeTakeReady(k);
  }

  // A node's log as it would campaign with: in memory when up, on disk when down.
  struct LogView {
    Index lastIndex = 0;
    Term lastTerm = 0;
    bool hasCanonMax = true;
  };

  LogView viewOf(const Node& n) const {
    LogView v;
    Term want = canon[canonMax].term;
    if (n.up) {
      const Core& c = *n.core;
      v.lastIndex = c.lastIndex();
      v.lastTerm = c.raftLog().lastTerm();
      v.hasCanonMax = canonMax <= c.raftLog().snapIndex() || c.termAt(canonMax) == want;
      return v;
    }
    Index snapIndex = n.disk.snapshot ? n.disk.snapshot->meta.index : 0;
    v.lastIndex = snapIndex;
    v.lastTerm = n.disk.snapshot ? n.disk.snapshot->meta.term : 0;
    if (!n.disk.entries.empty() && n.disk.entries.back().index > snapIndex) {
      v.lastIndex = n.disk.entries.back().index;
      v.lastTerm = n.disk.entries.back().term;
    }
    v.hasCanonMax = canonMax <= snapIndex;
    if (!v.hasCanonMax) {
      auto it = std::lower_bound(n.disk.entries.begin(), n.disk.entries.end(), canonMax,
                                 [](const Entry& e, Index i) { return e.index < i; });
      v.hasCanonMax = it != n.disk.entries.end() && it->index == canonMax && it->term == want;
    }
    return v;
  }

  // Commitment is only sound if no node lacking a committed entry could still be elected: in
  // correct Raft every node missing one is less up-to-date than a majority (the §5.4.3 proof).
  // Checking this at every step catches an unsafe commit when it happens, not only in the rare
  // schedules where such a node then actually wins (Figure 8, step d).
  void checkCommittedAreSafe() {
    if (canonMax == 0) return;
    std::vector<LogView> views;
    for (size_t k = 0; k < opt.voters; ++k) views.push_back(viewOf(nodes[k]));
    size_t quorum = opt.voters / 2 + 1;
    for (size_t k = 0; k < opt.voters; ++k) {
      if (views[k].hasCanonMax) continue;
      size_t grant = 0;
      for (const LogView& v : views) {
        grant += views[k].lastTerm > v.lastTerm || (views[k].lastTerm == v.lastTerm && views[k].lastIndex >= v.lastIndex);
      }
      if (grant >= quorum) {
        fail(true, "committed index " + std::to_string(canonMax) + " (term " + std::to_string(canon[canonMax].term) +
                       ") is missing on member " + std::to_string(nodes[k].id) +
                       ", which could still win an election: its log is as up-to-date as " +
                       std::to_string(grant) + " of " + std::to_string(opt.voters) + " voters'");
      }
    }
  }

  void checkLeaderCompleteness(const Node& n) {
    const Core& c = *n.core;
    for (Index i = c.raftLog().snapIndex() + 1; i <= canonMax; ++i) {
      if (!canon[i].known) continue;
      std::optional<Term> t = c.termAt(i);
      if (!t || *t != canon[i].term) {
        fail(true, "leader completeness: member " + std::to_string(n.id) + ", new leader of term " +
                       std::to_string(c.term()) + ", lacks committed index " + std::to_string(i) +
                       " (term " + std::to_string(canon[i].term) + ")");
      }
    }
  }

  void recordCommitted(MemberId who, const Entry& e) {
    if (canon.size() <= e.index) canon.resize(e.index + 1);
    Canon& x = canon[e.index];
    uint64_t h = hashEntry(e.type, e.data);
    if (x.known) {
      if (x.term != e.term || x.hash != h) {
        fail(true, "state machine safety: index " + std::to_string(e.index) + " was committed as term " +
                       std::to_string(x.term) + " and, on member " + std::to_string(who) +
                       ", as a different entry of term " + std::to_string(e.term));
      }
      return;
    }
    x.known = true;
    x.term = e.term;
    x.hash = h;
    x.type = e.type;
    canonMax = std::max(canonMax, e.index);
    if (e.type == EntryType::normal) {
      auto [pid, attempt] = parsePayload(e.data);
      x.pid = pid;
      auto [it, inserted] = attemptAt.emplace(attempt, e.index);
      if (!inserted && it->second != e.index) {
        fail(true, "the log duplicated client attempt " + std::to_string(attempt) + ": committed at indexes " +
                       std::to_string(it->second) + " and " + std::to_string(e.index));
      }
    }
    while (canonContiguous + 1 < canon.size() && canon[canonContiguous + 1].known) {
      ++canonContiguous;
      const Canon& y = canon[canonContiguous];
      if (y.type == EntryType::normal && canonSeen.insert(y.pid).second) canonOrder.push_back(y.pid);
      orderLenAt.push_back(canonOrder.size());
    }
  }

  void checkEntryId(const Entry& e, std::optional<Term> prev) {
    uint64_t key = (e.index << 20) | e.term;
    uint64_t h = hashEntry(e.type, e.data);
    Term p = prev.value_or(kUnknownTerm);
    auto [it, inserted] = entryIds.emplace(key, std::make_pair(h, p));
    if (inserted) return;
    if (it->second.first != h) {
      fail(true, "log matching: (index " + std::to_string(e.index) + ", term " + std::to_string(e.term) +
                     ") names two different entries");
    }
    if (p != kUnknownTerm) {
      if (it->second.second == kUnknownTerm) {
        it->second.second = p;
      } else if (it->second.second != p) {
        fail(true, "log matching: entry (index " + std::to_string(e.index) + ", term " +
                       std::to_string(e.term) + ") follows term " + std::to_string(p) +
                       " in one log and term " + std::to_string(it->second.second) + " in another");
      }
    }
  }

  void maybeTakeReady(uint32_t k) {
    Node& n = nodes[k];
    if (!n.up || n.pending || !n.core->hasReady()) return;
    Ready rd = n.core->ready();
    const Core& c = *n.core;
    if (c.term() >= (1u << 20)) fail(false, "term overflowed the checker's key space");
    for (size_t j = 0; j < rd.entries.size(); ++j) {
      std::optional<Term> prev = j == 0 ? c.termAt(rd.entries[0].index - 1) : rd.entries[j - 1].term;
      checkEntryId(rd.entries[j], prev);
    }
    for (const Message& m : rd.messages) {
      if (m.from != n.id) fail(true, "a message from member " + std::to_string(n.id) + " names another sender");
      for (size_t j = 0; j < m.entries.size(); ++j) {
        checkEntryId(m.entries[j], j == 0 ? m.logTerm : m.entries[j - 1].term);
      }
    }
    note(Tr::ready, n.id, rd.entries.size(), rd.messages.size(), rd.committed.size(),
         rd.hardState ? rd.hardState->commit : c.commitIndex());
    // As the shell does: the leader's appends leave before its disk write (a crash may then lose
    // entries that followers already hold).
    for (const Message& m : rd.messages) {
      if (rd.sendableBeforePersist(m)) send(k, m);
    }
    n.pending = std::move(rd);
    schedule(now + rng.below(opt.maxDiskDelay + 1), Ev::sync, k, n.incarnation);
  }

  // ----------------------------------------------------------------------------------------
  // The shell: sync a Ready (persist, send, restore, apply, advance)

  void onSync(uint32_t k, uint64_t incarnation) {
    Node& n = nodes[k];
    if (!n.up || n.incarnation != incarnation || !n.pending) return;
    Ready rd = std::move(*n.pending);
    n.pending.reset();
    note(Tr::sync, n.id);
    // 1. Persist.
    if (rd.snapshot) {
      n.disk.snapshot = rd.snapshot;
      n.disk.entries.clear();
    }
    if (!rd.entries.empty()) {
      Index first = rd.entries.front().index;
      std::erase_if(n.disk.entries, [&](const Entry& e) { return e.index >= first; });
      n.disk.entries.insert(n.disk.entries.end(), rd.entries.begin(), rd.entries.end());
    }
    if (rd.hardState) n.disk.hardState = *rd.hardState;
    // 2. Send.
    for (const Message& m : rd.messages) {
      if (!rd.sendableBeforePersist(m)) send(k, m);
    }
    // 3. Restore and apply.
    if (rd.snapshot) restoreMachine(k, *rd.snapshot);
    for (const Entry& e : rd.committed) applyEntry(k, e);
    // 4. Roles, reads.
    if (rd.softState && rd.softState->removed && !n.stopped) {
      schedule(now + rng.below(5 * kTick), Ev::stop, k);
    }
    for (const ReadState& r : rd.readStates) onReadState(n, r);
    // 5. Advance, then snapshot if due.
    n.core->advance(rd);
    Core& c = *n.core;
    if (n.applied == c.appliedIndex() && n.applied >= c.snapshotIndex() + opt.snapshotInterval) {
      std::string data = encodeMachine(n);
      SnapshotMeta meta = c.snapshotTaken(n.applied, data);
      n.disk.snapshot = Snapshot{meta, std::make_shared<const std::string>(std::move(data))};
      Index first = c.firstIndex();
      std::erase_if(n.disk.entries, [&](const Entry& e) { return e.index < first; });
      note(Tr::snapshot, n.id, meta.index, 0);
    }
    after(k);
  }

  static std::string encodeMachine(const Node& n) {
    std::string s(8 * (2 + n.order.size()), '\0');
    uint64_t count = n.order.size();
    std::memcpy(s.data(), &n.applied, 8);
    std::memcpy(s.data() + 8, &count, 8);
    if (count > 0) std::memcpy(s.data() + 16, n.order.data(), 8 * count);
    return s;
  }

  void restoreMachine(uint32_t k, const Snapshot& snap) {
    Node& n = nodes[k];
    const std::string& s = *snap.data;
    uint64_t applied = 0, count = 0;
    if (s.size() < 16) fail(true, "member " + std::to_string(n.id) + " received a truncated snapshot");
    std::memcpy(&applied, s.data(), 8);
    std::memcpy(&count, s.data() + 8, 8);
    if (s.size() != 16 + 8 * count || applied != snap.meta.index) {
      fail(true, "member " + std::to_string(n.id) + " received a snapshot whose content does not match its meta");
    }
    n.order.assign(count, 0);
    if (count > 0) std::memcpy(n.order.data(), s.data() + 16, 8 * count);
    n.seen = std::unordered_set<uint64_t>(n.order.begin(), n.order.end());
    n.applied = applied;
    ++stats.snapshotsRestored;
    note(Tr::snapshot, n.id, applied, 1);
    if (canonContiguous >= applied) {
      size_t len = orderLenAt[applied];
      if (n.order.size() != len || !std::equal(n.order.begin(), n.order.end(), canonOrder.begin())) {
        fail(true, "member " + std::to_string(n.id) + " restored a snapshot at index " +
                       std::to_string(applied) + " that differs from the committed log");
      }
    }
    // Clients waiting for an index the snapshot covered will not see it applied here.
    for (Client& c : clients) {
      if (c.waiting && c.node == n.id && c.index <= applied) abandonWait(c);
    }
  }

  void applyEntry(uint32_t k, const Entry& e) {
    Node& n = nodes[k];
    if (e.index != n.applied + 1) {
      fail(true, "member " + std::to_string(n.id) + " was handed index " + std::to_string(e.index) +
                     " to apply after index " + std::to_string(n.applied));
    }
    recordCommitted(n.id, e);
    uint64_t pid = 0, attempt = 0;
    if (e.type == EntryType::normal) {
      std::tie(pid, attempt) = parsePayload(e.data);
      if (n.seen.insert(pid).second) n.order.push_back(pid);  // the client's dedupe
    }
    n.applied = e.index;
    if (canonContiguous >= e.index && n.order.size() != orderLenAt[e.index]) {
      fail(true, "member " + std::to_string(n.id) + "'s state after index " + std::to_string(e.index) +
                     " differs from the committed log");
    }
    auto w = waits.find(waitKey(n.id, e.index));
    if (w == waits.end()) return;
    std::vector<uint32_t> waiting = std::move(w->second);
    waits.erase(w);
    for (uint32_t ci : waiting) {
      Client& c = clients[ci];
      if (!c.waiting || c.node != n.id || c.index != e.index) continue;
      c.waiting = false;
      if (e.type == EntryType::normal && e.term == c.term && attempt == c.attempt) {
        acked.emplace(c.pid, e.index);
        maxAcked = std::max(maxAcked, e.index);
        ++stats.acked;
        note(Tr::ack, ci, c.pid, e.index);
        c.pid = 0;
      }
      // Otherwise the entry was replaced: the proposal may or may not commit; retry it.
    }
  }

  static uint64_t waitKey(MemberId id, Index index) { return (id << 40) ^ index; }

  void abandonWait(Client& c) {
    c.waiting = false;  // the stale entry in `waits` is ignored when it fires
  }

  void onReadState(const Node& n, const ReadState& r) {
    auto it = reads.find({n.id, r.requestId});
    if (it == reads.end()) return;
    Index mustCover = it->second.mustCover;
    reads.erase(it);
    if (r.failure != ReadFailure::none) return;
    ++stats.reads;
    note(Tr::read, n.id, r.index, mustCover);
    if (r.index < mustCover) {
      fail(true, "ReadIndex linearizability: a read on member " + std::to_string(n.id) + " returned index " +
                     std::to_string(r.index) + ", but a write acknowledged at index " +
                     std::to_string(mustCover) + " finished before the read started");
    }
    if (r.index > canonMax) {
      fail(true, "ReadIndex returned index " + std::to_string(r.index) + ", beyond anything committed (" +
                     std::to_string(canonMax) + ")");
    }
  }

  // ----------------------------------------------------------------------------------------
  // Network

  void send(uint32_t from, const Message& m) {
    ++stats.messages;
    auto it = indexOf.find(m.to);
    if (it == indexOf.end()) return;
    uint32_t to = it->second;
    if (blocked[from][to] || rng.chance(dropRate)) {
      note(Tr::dropped, static_cast<uint64_t>(m.type), m.from, m.to);
      return;
    }
    std::string bytes = encode(m);
    int copies = rng.chance(dupRate) ? 2 : 1;
    for (int c = 0; c < copies; ++c) {
      uint64_t slot;
      if (!freeWire.empty()) {
        slot = freeWire.back();
        freeWire.pop_back();
        wire[slot] = bytes;
      } else {
        slot = wire.size();
        wire.push_back(bytes);
      }
      schedule(now + 1 + rng.below(opt.maxDelay), Ev::deliver, to, slot);
    }
  }

  void onDeliver(uint32_t k, uint64_t slot) {
    std::string bytes = std::move(wire[slot]);
    wire[slot].clear();
    freeWire.push_back(slot);
    Node& n = nodes[k];
    if (!n.up) return;
    std::string error;
    std::optional<Message> m = decode(bytes, error);
    if (!m) fail(true, "a message a core produced does not decode: " + error);
    uint32_t from = indexOf.count(m->from) ? indexOf[m->from] : k;
    if (blocked[from][k]) {
      note(Tr::dropped, static_cast<uint64_t>(m->type), m->from, m->to);
      return;
    }
    note(Tr::deliver, static_cast<uint64_t>(m->type), m->from, m->to, m->term,
         m->type == MessageType::snapshot ? m->chunkOffset : m->index);
    n.core->step(std::move(*m));
    after(k);
  }

  // ----------------------------------------------------------------------------------------
  // Faults

  std::vector<uint32_t> liveNodes() const {
    std::vector<uint32_t> out;
    for (uint32_t k = 0; k < nodes.size(); ++k) {
      if (nodes[k].up) out.push_back(k);
    }
    return out;
  }

  void onChaos() {
    if (healing) return;
    std::vector<uint32_t> live = liveNodes();
    if (!live.empty() && rng.chance(opt.crashPerTick)) {
      uint32_t k = live[rng.below(live.size())];
      crash(k);
      schedule(now + kTick * (1 + rng.below(opt.maxRestartTicks)), Ev::restart, k);
    }
    if (std::optional<uint32_t> lk = findLeader(); lk && rng.chance(opt.leaderCrashPerTick)) {
      crash(*lk);
      schedule(now + kTick * (1 + rng.below(opt.maxRestartTicks)), Ev::restart, *lk);
    }
    if (rng.chance(opt.partitionPerTick)) {
      std::vector<uint32_t> started;
      for (uint32_t k = 0; k < nodes.size(); ++k) {
        if (nodes[k].started) started.push_back(k);
      }
      uint64_t kind = rng.below(3);
      uint32_t a = started[rng.below(started.size())];
      uint32_t b = started[rng.below(started.size())];
      if (kind == 0) {  // isolate a
        for (uint32_t x = 0; x < nodes.size(); ++x) blocked[a][x] = blocked[x][a] = 1;
      } else if (kind == 1) {  // one-way: a can no longer reach b
        blocked[a][b] = 1;
      } else {  // split in two random groups
        std::vector<char> side(nodes.size());
        for (char& s : side) s = static_cast<char>(rng.below(2));
        for (uint32_t x = 0; x < nodes.size(); ++x) {
          for (uint32_t y = 0; y < nodes.size(); ++y) {
            if (side[x] != side[y]) blocked[x][y] = 1;
          }
        }
      }
      note(Tr::partition, kind, nodes[a].id, nodes[b].id);
    }
    if (rng.chance(opt.healPerTick)) {
      for (auto& row : blocked) std::fill(row.begin(), row.end(), 0);
      note(Tr::heal, 0);
    }
    schedule(now + kTick, Ev::chaos);
  }

  void onAmbush(uint32_t k, Term term) {
    Node& n = nodes[k];
    if (healing || !n.up || n.core->term() != term || n.core->role() != Role::leader) return;
    if (rng.chance(0.5)) {
      crash(k);
      schedule(now + kTick * (1 + rng.below(opt.maxRestartTicks)), Ev::restart, k);
    } else {
      for (uint32_t x = 0; x < nodes.size(); ++x) blocked[k][x] = blocked[x][k] = 1;
      note(Tr::partition, 3, n.id, 0);
    }
  }

  void crash(uint32_t k) {
    Node& n = nodes[k];
    if (!n.up) return;
    note(Tr::crash, n.id, n.pending.has_value());
    if (n.pending) ++stats.lostReadies;
    ++stats.crashes;
    n.up = false;
    ++n.incarnation;
    n.pending.reset();
    n.core.reset();
    n.applied = 0;
    n.order.clear();
    n.seen.clear();
    n.wasLeader = false;
    for (Client& c : clients) {
      if (c.waiting && c.node == n.id) abandonWait(c);
    }
  }

  void restart(uint32_t k) {
    Node& n = nodes[k];
    if (n.up || n.stopped || !n.started) return;
    InitialState st;
    st.hardState = n.disk.hardState;
    st.snapshot = n.disk.snapshot;
    st.entries = n.disk.entries;
    n.order.clear();
    n.seen.clear();
    n.applied = 0;
    if (n.disk.snapshot) {
      restoreMachine(k, *n.disk.snapshot);
      st.applied = n.disk.snapshot->meta.index;
    }
    bool blank = !n.disk.snapshot && n.disk.entries.empty() && n.disk.hardState == HardState{};
    n.core = std::make_unique<Core>(configFor(n.id), std::move(st));
    // An initial member that crashed before persisting anything bootstraps again, as the shell
    // does when it finds empty storage and a new-cluster configuration.
    if (blank && k < opt.voters) n.core->bootstrap(initialMembers);
    n.up = true;
    ++n.incarnation;
    n.checkedCommit = n.core->raftLog().snapIndex();
    note(Tr::restart, n.id, n.core->term(), n.core->lastIndex());
    startTicks(k);
    after(k);
  }

  void stop(uint32_t k) {
    Node& n = nodes[k];
    if (n.stopped) return;
    note(Tr::stop, n.id);
    crash(k);
    n.stopped = true;
  }

  // ----------------------------------------------------------------------------------------
  // Clients, readers, membership

  std::optional<uint32_t> findLeader() const {
    std::optional<uint32_t> best;
    for (uint32_t k = 0; k < nodes.size(); ++k) {
      const Node& n = nodes[k];
      if (!n.up || n.core->role() != Role::leader) continue;
      if (!best || n.core->term() > nodes[*best].core->term()) best = k;
    }
    return best;
  }

  void onClient(uint32_t ci) {
    Client& c = clients[ci];
    schedule(now + 20 + rng.below(80), Ev::client, ci);
    if (c.waiting) {
      if (now >= c.deadline) {
        abandonWait(c);
        c.guess = 0;  // that node may be a deposed or removed leader that does not know it:
        c.avoid = c.node;  // try elsewhere next, whatever hints say
      }
      return;
    }
    if (c.pid == 0) {
      if (healing) return;
      c.pid = ++nextPid;
    }
    std::vector<uint32_t> live = liveNodes();
    if (live.empty()) return;
    uint32_t k = live[rng.below(live.size())];
    if (c.guess != 0 && c.guess != c.avoid && indexOf.count(c.guess) && nodes[indexOf[c.guess]].up &&
        rng.chance(0.9)) {
      k = indexOf[c.guess];
    } else if (nodes[k].id == c.avoid && live.size() > 1) {
      k = live[(std::find(live.begin(), live.end(), k) - live.begin() + 1) % live.size()];
    }
    c.avoid = 0;  // only for the attempt right after the timeout
    Node& n = nodes[k];
    c.attempt = ++nextAttempt;
    ProposeOutcome out = n.core->propose(payload(c.pid, c.attempt, rng.below(opt.maxPadding + 1)));
    note(Tr::propose, ci, c.pid, n.id, static_cast<uint64_t>(out.kind), out.position.index);
    switch (out.kind) {
      case ProposeOutcome::Kind::accepted:
        c.waiting = true;
        c.node = n.id;
        c.index = out.position.index;
        c.term = out.position.term;
        c.deadline = now + 4 * kElectionTicks * kTick;
        c.guess = n.id;
        waits[waitKey(n.id, c.index)].push_back(ci);
        break;
      case ProposeOutcome::Kind::notLeader:
        c.guess = out.leaderHint;
        break;
      case ProposeOutcome::Kind::tooLarge:
        fail(false, "a small proposal was refused as too large (limit " + std::to_string(out.limit) + ")");
    }
    after(k);
  }

  void onReader() {
    schedule(now + kTick + rng.below(3 * kTick), Ev::reader);
    std::vector<uint32_t> live = liveNodes();
    if (live.empty()) return;
    uint32_t k = live[rng.below(live.size())];
    Node& n = nodes[k];
    uint64_t id = ++nextRead;
    if (n.core->readIndex(id).kind == ReadOutcome::Kind::pending) reads[{n.id, id}] = PendingRead{maxAcked};
    after(k);
  }

  void onDriver() {
    if (healing) return;
    schedule(now + kTick * (2 + rng.below(4)), Ev::driver);
    if (memberOp) {
      auto it = indexOf.find(memberOp->node);
      Node& n = nodes[it->second];
      if (!n.up || now > memberOp->deadline) {
        memberOp.reset();
      } else if (n.applied >= memberOp->index) {
        if (canon.size() > memberOp->index && canon[memberOp->index].known &&
            canon[memberOp->index].term == memberOp->term) {
          ++stats.membershipChanges;
          stats.changesDuringPartition += memberOp->duringPartition;
          stats.leaderRemovals += memberOp->removesLeader;
        }
        memberOp.reset();
      }
      return;
    }
    std::optional<uint32_t> lk = findLeader();
    if (!lk) return;
    Node& leader = nodes[*lk];
    Core& L = *leader.core;
    const Membership& m = L.membership();
    uint64_t roll = rng.below(100);
    MembershipOutcome out;
    uint64_t op = 0;
    MemberId target = 0;
    if (roll < 35) {
      op = 1;  // add a learner
      std::vector<uint32_t> candidates;
      for (uint32_t k = static_cast<uint32_t>(opt.voters); k < nodes.size(); ++k) {
        const Node& j = nodes[k];
        if (j.started && !j.stopped && !m.contains(j.id) && !m.isRemoved(j.id)) candidates.push_back(k);
      }
      if (candidates.empty() && joinersStarted < opt.maxJoiners) {
        uint32_t k = static_cast<uint32_t>(opt.voters + joinersStarted++);
        Node& j = nodes[k];
        j.core = std::make_unique<Core>(configFor(j.id));
        j.started = j.up = true;
        note(Tr::join, j.id);
        startTicks(k);
        after(k);
        candidates.push_back(k);
      }
      if (candidates.empty()) return;
      target = nodes[candidates[rng.below(candidates.size())]].id;
      out = L.addMember(Member{target, "node-" + std::to_string(target), "sim:" + std::to_string(target), false});
    } else if (roll < 65) {
      op = 2;  // promote a caught-up learner
      std::vector<MemberId> learners;
      for (const Member& x : m.members) {
        if (!x.voter) learners.push_back(x.id);
      }
      if (learners.empty()) return;
      target = learners[rng.below(learners.size())];
      if (!L.caughtUp(target)) return;
      out = L.promoteMember(target);
    } else {
      op = 3;  // remove a member, maybe the leader itself
      std::vector<MemberId> candidates;
      for (const Member& x : m.members) {
        if (!x.voter || m.voterCount() > 2) candidates.push_back(x.id);
      }
      if (candidates.empty()) return;
      target = candidates[rng.below(candidates.size())];
      out = L.removeMember(target);
    }
    note(Tr::member, op, target, leader.id, static_cast<uint64_t>(out.kind));
    if (out.kind == MembershipOutcome::Kind::accepted) {
      bool partitioned = false;
      for (const auto& row : blocked) partitioned = partitioned || std::count(row.begin(), row.end(), 1) > 0;
      memberOp = MembershipOp{leader.id, out.position.index, out.position.term, now + 60 * kTick,
                              partitioned, op == 3 && target == leader.id};
    }
    after(*lk);
  }

  // ----------------------------------------------------------------------------------------
  // Healing and the end state

  void onHealStart() {
    healing = true;
    note(Tr::heal, 1);
    dropRate = 0;
    dupRate = 0;
    for (auto& row : blocked) std::fill(row.begin(), row.end(), 0);
    for (uint32_t k = 0; k < nodes.size(); ++k) restart(k);
    healDeadline = now + kTick * opt.healTicks;
    schedule(now + kTick, Ev::healCheck);
  }

  void onHealCheck() {
    if (converged()) {
      finalChecks();
      finished = true;
      return;
    }
    if (now >= healDeadline) fail(false, "no convergence " + std::to_string(opt.healTicks) + " ticks after healing: " + describeState());
    schedule(now + kTick, Ev::healCheck);
  }

  bool converged() {
    for (const Client& c : clients) {
      if (c.waiting || c.pid != 0) return false;
    }
    // (A node may always have a Ready out for heartbeats; what counts is what it applied.)
    std::optional<uint32_t> lk = findLeader();
    if (!lk) return false;
    const Core& L = *nodes[*lk].core;
    if (L.commitIndex() != L.lastIndex()) return false;
    for (const Member& m : L.membership().members) {
      auto it = indexOf.find(m.id);
      if (it == indexOf.end()) return false;
      const Node& n = nodes[it->second];
      if (!n.up || n.applied != L.lastIndex()) return false;
    }
    return true;
  }

  std::string describeState() {
    std::ostringstream out;
    std::optional<uint32_t> lk = findLeader();
    out << "leader " << (lk ? nodes[*lk].id : 0);
    for (const Node& n : nodes) {
      if (!n.started) continue;
      out << "; n" << n.id << (n.stopped ? " stopped" : n.up ? "" : " down");
      if (n.up) {
        out << " " << roleName(n.core->role()) << " term " << n.core->term() << " last " << n.core->lastIndex()
            << " commit " << n.core->commitIndex() << " applied " << n.applied << " voters "
            << n.core->membership().voterCount();
      }
    }
    size_t busy = 0;
    for (const Client& c : clients) busy += c.waiting || c.pid != 0;
    out << "; busy clients " << busy;
    return out.str();
  }

  void finalChecks() {
    std::optional<uint32_t> lk = findLeader();
    const Core& L = *nodes[*lk].core;
    for (const Member& m : L.membership().members) {
      const Node& n = nodes[indexOf[m.id]];
      for (const auto& [pid, index] : acked) {
        if (n.applied >= index && !n.seen.count(pid)) {
          fail(true, "acknowledged proposal p" + std::to_string(pid) + " (index " + std::to_string(index) +
                         ") is missing on member " + std::to_string(n.id));
        }
      }
      if (canonContiguous >= n.applied &&
          !std::equal(n.order.begin(), n.order.end(), canonOrder.begin(), canonOrder.begin() + orderLenAt[n.applied])) {
        fail(true, "member " + std::to_string(n.id) + " applied proposals in a different order");
      }
    }
  }
};

}  // namespace

Result run(const Options& options) { return Sim(options).run(); }

}  // namespace swarm::raft::sim
