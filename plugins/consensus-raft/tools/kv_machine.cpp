#include "kv_machine.h"

#include "wire.h"

#include <kj/debug.h>

#include <algorithm>
#include <memory>

namespace swarm::raft::tools {

namespace {

constexpr size_t kSnapshotChunk = 64 * 1024;
constexpr uint32_t kStoreMagic = 0x4b565331;   // "KVS1"
constexpr uint32_t kReportMagic = 0x4b565231;  // "KVR1"

uint64_t fnv(uint64_t h, std::string_view bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string_view asView(capnp::Data::Reader d) {
  return std::string_view(reinterpret_cast<const char*>(d.begin()), d.size());
}

// Collects a snapshot's bytes and installs them on done().
class RestoreSink final : public schema::ByteSink::Server {
 public:
  RestoreSink(KvReport& report, uint64_t index) : report(report), index(index) {}

  kj::Promise<void> write(WriteContext context) override {
    auto chunk = context.getParams().getChunk();
    bytes.append(reinterpret_cast<const char*>(chunk.begin()), chunk.size());
    return kj::READY_NOW;
  }

  kj::Promise<void> done(DoneContext) override {
    auto parsed = KvStore::parse(bytes);
    // Refusing is right: the plugin must not carry on with a store it could not rebuild.
    KJ_REQUIRE(parsed.has_value(), "restore(): the snapshot bytes are not a KvStore", bytes.size());
    if (parsed->applied != index) {
      report.violations.push_back("restore() of a snapshot at index " + std::to_string(index) +
                                  " whose content ends at index " +
                                  std::to_string(parsed->applied));
    }
    report.store = std::move(*parsed);
    report.restores.push_back(index);
    return kj::READY_NOW;
  }

 private:
  KvReport& report;
  uint64_t index;
  std::string bytes;
};

kj::Promise<void> writeChunks(schema::ByteSink::Client sink, std::shared_ptr<std::string> bytes,
                              size_t at) {
  if (at >= bytes->size()) return sink.doneRequest().send().ignoreResult();
  auto request = sink.writeRequest();
  size_t n = std::min(kSnapshotChunk, bytes->size() - at);
  request.setChunk(kj::arrayPtr(reinterpret_cast<const kj::byte*>(bytes->data() + at), n));
  return request.send().then([sink = kj::mv(sink), bytes = kj::mv(bytes), at, n]() mutable {
    return writeChunks(kj::mv(sink), kj::mv(bytes), at + n);
  });
}

}  // namespace

std::string KvStore::apply(uint64_t index, schema::Entry::Type type, std::string_view data) {
  std::string problem;
  if (index != applied + 1) {
    problem = "apply() of index " + std::to_string(index) + " after index " +
              std::to_string(applied) + " (expected " + std::to_string(applied + 1) + ")";
  }
  applied = index;
  if (type != schema::Entry::Type::NORMAL) return problem;
  size_t eq = data.find('=');
  std::string key(data.substr(0, eq));
  std::string value(eq == std::string_view::npos ? std::string_view() : data.substr(eq + 1));
  kv[key] = std::move(value);
  sequence.emplace_back(index, std::move(key));
  std::string idx;
  ByteWriter(idx).u64(index);
  digest = fnv(fnv(digest, idx), data);
  return problem;
}

std::string KvStore::serialize() const {
  std::string out;
  ByteWriter w(out);
  w.u32(kStoreMagic);
  w.u64(applied);
  w.u64(digest);
  w.u64(kv.size());
  for (auto& [k, v] : kv) {
    w.str(k);
    w.str(v);
  }
  w.u64(sequence.size());
  for (auto& [index, key] : sequence) {
    w.u64(index);
    w.str(key);
  }
  return out;
}

std::optional<KvStore> KvStore::parse(std::string_view bytes) {
  ByteReader r(bytes);
  KvStore s;
  if (r.u32() != kStoreMagic) return std::nullopt;
  s.applied = r.u64();
  s.digest = r.u64();
  for (uint64_t n = r.u64(); n > 0 && r.ok(); --n) {
    std::string k = r.str();
    s.kv[std::move(k)] = r.str();
  }
  for (uint64_t n = r.u64(); n > 0 && r.ok(); --n) {
    uint64_t index = r.u64();
    s.sequence.emplace_back(index, r.str());
  }
  if (!r.ok() || !r.atEnd()) return std::nullopt;
  return s;
}

std::string KvReport::serialize() const {
  std::string out;
  ByteWriter w(out);
  w.u32(kReportMagic);
  w.str(store.serialize());
  w.u64(snapshotsTaken);
  w.u32(static_cast<uint32_t>(restores.size()));
  for (uint64_t i : restores) w.u64(i);
  w.u32(static_cast<uint32_t>(violations.size()));
  for (auto& v : violations) w.str(v);
  w.u64(leaderId);
  w.u64(term);
  w.u64(membershipChanges);
  return out;
}

std::optional<KvReport> KvReport::parse(std::string_view bytes) {
  ByteReader r(bytes);
  KvReport report;
  if (r.u32() != kReportMagic) return std::nullopt;
  auto store = KvStore::parse(r.str());
  if (!store) return std::nullopt;
  report.store = std::move(*store);
  report.snapshotsTaken = r.u64();
  for (uint32_t n = r.u32(); n > 0 && r.ok(); --n) report.restores.push_back(r.u64());
  for (uint32_t n = r.u32(); n > 0 && r.ok(); --n) report.violations.push_back(r.str());
  report.leaderId = r.u64();
  report.term = r.u64();
  report.membershipChanges = r.u64();
  if (!r.ok() || !r.atEnd()) return std::nullopt;
  return report;
}

kj::Promise<void> KvMachine::apply(ApplyContext context) {
  for (auto e : context.getParams().getEntries()) {
    std::string problem = report.store.apply(e.getIndex(), e.getType(), asView(e.getData()));
    if (!problem.empty()) {
      log(kj::str("state machine rule broken: ", problem.c_str()));
      report.violations.push_back(std::move(problem));
    }
  }
  return kj::READY_NOW;
}

kj::Promise<void> KvMachine::snapshot(SnapshotContext context) {
  auto bytes = std::make_shared<std::string>(report.store.serialize());
  uint64_t index = report.store.applied;
  ++report.snapshotsTaken;
  return writeChunks(context.getParams().getSink(), kj::mv(bytes), 0)
      .then([context, index]() mutable { context.getResults().setIndex(index); });
}

kj::Promise<void> KvMachine::restore(RestoreContext context) {
  context.getResults().setSink(
      kj::heap<RestoreSink>(report, context.getParams().getMeta().getIndex()));
  return kj::READY_NOW;
}

kj::Promise<void> KvMachine::membershipChanged(MembershipChangedContext context) {
  ++report.membershipChanges;
  auto members = context.getParams().getMembers();
  kj::Vector<kj::String> list;
  for (auto m : members)
    list.add(kj::str(m.getId(), m.getVoter() ? "" : " (learner)", " at ", m.getAddress()));
  log(kj::str("members: ", kj::strArray(list, ", ")));
  return kj::READY_NOW;
}

kj::Promise<void> KvMachine::statusChanged(StatusChangedContext context) {
  auto s = context.getParams().getStatus();
  if (s.getLeaderId() != report.leaderId || s.getTerm() != report.term) {
    log(kj::str("leader ", s.getLeaderId(), " in term ", s.getTerm()));
  }
  report.leaderId = s.getLeaderId();
  report.term = s.getTerm();
  return kj::READY_NOW;
}

}  // namespace swarm::raft::tools
