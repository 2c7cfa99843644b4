// An in-memory network of Raft cores for scenario tests (core_*, paper_*): a synchronous
// version of the I/O shell. Every Ready is persisted to a per-node model disk, its messages go
// through encode()/decode() into a queue, committed entries are applied to a toy state machine
// (a list of payloads), and deliverAll() runs until nothing moves. Tests control delivery with
// isolate()/cut()/dropIf and time with tick(). Not a fake of anything: these are real cores.
#pragma once

#include "raft/core.h"

#include <catch2/catch.hpp>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace swarm::raft::testnet {

inline std::string encodeState(const std::vector<std::string>& applied) {
  std::string out;
  for (const std::string& s : applied) {
    out += std::to_string(s.size());
    out += ':';
    out += s;
  }
  return out;
}

inline std::vector<std::string> decodeState(const std::string& in) {
  // Tolerant: fuzz tests may install garbage snapshots; they get one marker payload.
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < in.size()) {
    size_t colon = in.find(':', pos);
    if (colon == std::string::npos || colon == pos || colon - pos > 9) return {"<garbage>"};
    size_t n = 0;
    for (size_t k = pos; k < colon; ++k) {
      if (in[k] < '0' || in[k] > '9') return {"<garbage>"};
      n = n * 10 + static_cast<size_t>(in[k] - '0');
    }
    if (n > in.size() - colon - 1) return {"<garbage>"};
    out.push_back(in.substr(colon + 1, n));
    pos = colon + 1 + n;
  }
  return out;
}

struct Disk {
  HardState hardState;
  std::optional<Snapshot> snapshot;
  std::vector<Entry> entries;  // after the snapshot (possibly some before it: Core skips them)

  void persist(const Ready& rd) {
    if (rd.snapshot) {
      snapshot = rd.snapshot;
      entries.clear();
    }
    if (!rd.entries.empty()) {
      Index first = rd.entries.front().index;
      std::erase_if(entries, [&](const Entry& e) { return e.index >= first; });
      entries.insert(entries.end(), rd.entries.begin(), rd.entries.end());
    }
    if (rd.hardState) hardState = *rd.hardState;
  }
};

struct Node {
  MemberId id = 0;
  Config config;
  std::unique_ptr<Core> core;
  Disk disk;
  bool up = true;
  std::vector<std::string> applied;  // payloads of normal entries, the toy state machine
  std::vector<Entry> appliedEntries;  // every entry applied in this incarnation
  Index appliedIndex = 0;
  std::vector<ReadState> reads;
  std::vector<SoftState> softStates;
  std::vector<Membership> memberships;  // as reported through Ready
  size_t restoredSnapshots = 0;
};

class Network {
 public:
  using Tweak = std::function<void(Config&)>;

  Network(std::vector<MemberId> ids, Tweak tweak = {}, uint64_t seed = 1) : tweak(std::move(tweak)), seed(seed) {
    std::vector<Member> list;
    for (MemberId id : ids) list.push_back(Member{id, "node-" + std::to_string(id), "127.0.0.1:" + std::to_string(id), true});
    for (MemberId id : ids) {
      Node& n = add(id);
      n.core->bootstrap(list);
    }
    deliverAll();
  }

  // A node with a given persisted state (for paper figures); `applied` = its commit.
  Network(std::map<MemberId, InitialState> states, Tweak tweak = {}, uint64_t seed = 1)
      : tweak(std::move(tweak)), seed(seed) {
    for (auto& [id, st] : states) add(id, std::move(st));
  }

  Node& add(MemberId id, InitialState st = {}) {
    Node& n = nodes[id];
    n.id = id;
    n.config = makeConfig(id);
    n.disk.hardState = st.hardState;
    n.disk.snapshot = st.snapshot;
    n.disk.entries = st.entries;
    n.appliedIndex = st.applied;
    n.core = std::make_unique<Core>(n.config, std::move(st));
    return n;
  }

  Config makeConfig(MemberId id) const {
    Config c;
    c.id = id;
    c.randomSeed = seed;
    c.maxMessageBytes = 64 * 1024;
    if (tweak) tweak(c);
    return c;
  }

  Node& node(MemberId id) { return nodes.at(id); }
  Core& core(MemberId id) { return *nodes.at(id).core; }

  // Network control.
  void isolate(MemberId id) { isolated.insert(id); }
  void heal() {
    isolated.clear();
    cuts.clear();
  }
  void cut(MemberId a, MemberId b) {
    cuts.insert({a, b});
    cuts.insert({b, a});
  }
  std::function<bool(const Message&)> dropIf;  // true = drop this message
  std::vector<Message> delivered;              // every message delivered, for inspection
  std::vector<Message> dropped;

  bool allowed(const Message& m) const {
    if (isolated.count(m.from) || isolated.count(m.to)) return false;
    if (cuts.count({m.from, m.to})) return false;
    if (!nodes.count(m.to) || !nodes.at(m.to).up) return false;
    return !(dropIf && dropIf(m));
  }

  // Runs one Ready cycle on a node, as the shell would: persist, send, restore, apply, advance.
  bool processReady(MemberId id) {
    Node& n = nodes.at(id);
    if (!n.up || !n.core->hasReady()) return false;
    Ready rd = n.core->ready();
    n.disk.persist(rd);
    for (Message& m : rd.messages) {
      std::string error;
      auto decoded = decode(encode(m), error);
      REQUIRE(decoded.has_value());
      REQUIRE(*decoded == m);
      queue.push_back(std::move(*decoded));
    }
    if (rd.snapshot) {
      n.applied = decodeState(*rd.snapshot->data);
      n.appliedIndex = rd.snapshot->meta.index;
      ++n.restoredSnapshots;
    }
    for (const Entry& e : rd.committed) {
      REQUIRE(e.index == n.appliedIndex + 1);
      n.appliedIndex = e.index;
      n.appliedEntries.push_back(e);
      if (e.type == EntryType::normal) n.applied.push_back(e.data);
    }
    for (const ReadState& r : rd.readStates) n.reads.push_back(r);
    if (rd.softState) n.softStates.push_back(*rd.softState);
    if (rd.membership) n.memberships.push_back(*rd.membership);
    n.core->advance(rd);
    return true;
  }

  // Delivers until quiet. Returns the number of messages delivered.
  size_t deliverAll(size_t limit = 1000000) {
    size_t count = 0;
    for (;;) {
      bool any = false;
      for (auto& [id, n] : nodes) any = processReady(id) || any;
      if (queue.empty() && !any) return count;
      while (!queue.empty()) {
        Message m = std::move(queue.front());
        queue.pop_front();
        if (!allowed(m)) {
          dropped.push_back(std::move(m));
          continue;
        }
        delivered.push_back(m);
        nodes.at(m.to).core->step(std::move(m));
        REQUIRE(++count < limit);
      }
    }
  }

  void tick(MemberId id, int n = 1) {
    for (int k = 0; k < n; ++k) {
      if (nodes.at(id).up) nodes.at(id).core->tick();
    }
  }
  void tickAll(int n = 1) {
    for (int k = 0; k < n; ++k) {
      for (auto& [id, node] : nodes) {
        if (node.up) node.core->tick();
      }
    }
  }

  // Ticks every node until `id` leads (it campaigns when its election timer fires).
  void elect(MemberId id) {
    core(id).campaign();
    deliverAll();
    REQUIRE(core(id).role() == Role::leader);
  }

  MemberId leader() const {
    MemberId best = 0;
    Term bestTerm = 0;
    for (auto& [id, n] : nodes) {
      if (n.up && n.core->role() == Role::leader && n.core->term() >= bestTerm) {
        best = id;
        bestTerm = n.core->term();
      }
    }
    return best;
  }

  Position propose(MemberId id, std::string data) {
    ProposeOutcome out = core(id).propose(std::move(data));
    REQUIRE(out.kind == ProposeOutcome::Kind::accepted);
    return out.position;
  }

  void crash(MemberId id) {
    Node& n = nodes.at(id);
    n.up = false;
    n.core.reset();
    std::erase_if(queue, [&](const Message& m) { return m.to == id; });
  }

  // Restarts from the model disk: the state machine restores the snapshot, then replays.
  void restart(MemberId id) {
    Node& n = nodes.at(id);
    InitialState st;
    st.hardState = n.disk.hardState;
    st.snapshot = n.disk.snapshot;
    st.entries = n.disk.entries;
    st.applied = n.disk.snapshot ? n.disk.snapshot->meta.index : 0;
    n.applied = n.disk.snapshot ? decodeState(*n.disk.snapshot->data) : std::vector<std::string>{};
    n.appliedEntries.clear();
    n.appliedIndex = st.applied;
    n.core = std::make_unique<Core>(n.config, std::move(st));
    n.up = true;
  }

  SnapshotMeta takeSnapshot(MemberId id) {
    Node& n = nodes.at(id);
    std::string data = encodeState(n.applied);
    SnapshotMeta meta = n.core->snapshotTaken(n.appliedIndex, data);
    n.disk.snapshot = Snapshot{meta, std::make_shared<const std::string>(std::move(data))};
    Index first = n.core->firstIndex();
    std::erase_if(n.disk.entries, [&](const Entry& e) { return e.index < first; });
    return meta;
  }

  std::map<MemberId, Node> nodes;
  std::deque<Message> queue;

 private:
  Tweak tweak;
  uint64_t seed;
  std::set<MemberId> isolated;
  std::set<std::pair<MemberId, MemberId>> cuts;
};

// Log terms of a core, from firstIndex to lastIndex.
inline std::vector<Term> terms(const Core& c) {
  std::vector<Term> out;
  for (Index i = c.firstIndex(); i <= c.lastIndex(); ++i) out.push_back(*c.termAt(i));
  return out;
}

}  // namespace swarm::raft::testnet
