// raft-node: one consensus-raft member as its own process, a stand-in for the kernel until the
// manager lands. It loads consensus-raft.so through the kernel's real plugin host
// (PluginInstance, in process by default), gives it a PeerNetwork over loopback TCP to the other
// raft-node processes (peer_links.h) and a key/value StateMachine (kv_machine.h), and serves a
// small client protocol on a Unix socket (wire.h) so tests and benchmarks can drive it from
// another process. Loopback and Unix sockets only.
//
//   raft-node --plugin consensus-raft.so --id 1 --listen 127.0.0.1:7001 --data /tmp/n1
//             --socket /tmp/n1.sock --bootstrap new
//             --member 1=127.0.0.1:7001 --member 2=127.0.0.1:7002 --member 3=127.0.0.1:7003
//
// It prints "raft-node <id> ready" on stdout once start() resolved and the socket listens, and
// exits 0 on SIGTERM/SIGINT after stopping the plugin, 1 if the plugin fails, 2 on bad usage.
#include "kv_machine.h"
#include "peer_links.h"
#include "wire.h"

#include "config.h"
#include "errors.h"
#include "logging.h"
#include "plugin_host.h"

#include <swarm/schema/consensus.capnp.h>

#include <kj/async-io.h>
#include <kj/async-unix.h>
#include <kj/debug.h>

#include <signal.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

// GCC 12 reports a false -Wmaybe-uninitialized inside kj::_::ExceptionOr<Answer> (a kj::Maybe
// around a struct with a std::string) for every ready-made Promise<Answer>.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace swarm::raft::tools {
namespace {

constexpr const char* kUsage =
    "usage: raft-node --plugin PATH --id N --listen 127.0.0.1:PORT --data DIR --socket PATH "
    "[options]\n"
    "  --bootstrap MODE        new (default), join, restart or force (forceNewCluster)\n"
    "  --member ID=HOST:PORT   an initial member for --bootstrap new (this node is added if\n"
    "                          absent); also a route to that member. Repeatable\n"
    "  --key HEX               the 32-byte data key as 64 hex digits (default: a fixed test key;\n"
    "                          raft-node is a test harness, never a place for real data)\n"
    "  --tick-ms N             tickMillis (default 100)\n"
    "  --election-ticks N      electionTicks (default 10)\n"
    "  --heartbeat-ticks N     heartbeatTicks (default 1)\n"
    "  --snapshot-interval N   snapshotInterval in applied entries (default 10000)\n"
    "  --keep-entries N        logEntriesForSlowFollowers (default 500)\n"
    "  --max-message-bytes N   maxMessageBytes (default 1048576)\n"
    "  --seed N                randomSeed (default 0: the plugin picks one)\n"
    "  --out-of-process        run the plugin in a swarm-plugin-runner child\n"
    "  --runner PATH           the swarm-plugin-runner binary (with --out-of-process)\n"
    "  --log-level LEVEL       trace, debug, info (default), warn, error\n";

[[noreturn]] void usage(const std::string& problem) {
  fprintf(stderr, "raft-node: %s\n%s", problem.c_str(), kUsage);
  exit(2);
}

uint64_t number(const std::string& flag, const std::string& value) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = strtoull(value.c_str(), &end, 10);
  if (value.empty() || *end != '\0' || errno != 0 || value[0] == '-') {
    usage(flag + " needs a whole number, got '" + value + "'");
  }
  return v;
}

struct Options {
  std::string plugin;
  uint64_t id = 0;
  std::string listen;
  std::string data;
  std::string socket;
  std::string bootstrap = "new";
  std::vector<std::pair<uint64_t, std::string>> members;
  std::string key;
  uint64_t tickMs = 100, electionTicks = 10, heartbeatTicks = 1;
  uint64_t snapshotInterval = 10000, keepEntries = 500, maxMessageBytes = 1048576, seed = 0;
  bool outOfProcess = false;
  std::string runner;
  std::string logLevel = "info";
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      fputs(kUsage, stdout);
      exit(0);
    }
    if (flag == "--out-of-process") {
      o.outOfProcess = true;
      continue;
    }
    if (i + 1 >= argc) usage(flag + " needs a value");
    std::string v = argv[++i];
    if (flag == "--plugin")
      o.plugin = v;
    else if (flag == "--id")
      o.id = number(flag, v);
    else if (flag == "--listen")
      o.listen = v;
    else if (flag == "--data")
      o.data = v;
    else if (flag == "--socket")
      o.socket = v;
    else if (flag == "--bootstrap")
      o.bootstrap = v;
    else if (flag == "--member") {
      size_t eq = v.find('=');
      if (eq == std::string::npos) usage("--member needs ID=HOST:PORT, got '" + v + "'");
      o.members.emplace_back(number(flag, v.substr(0, eq)), v.substr(eq + 1));
    } else if (flag == "--key")
      o.key = v;
    else if (flag == "--tick-ms")
      o.tickMs = number(flag, v);
    else if (flag == "--election-ticks")
      o.electionTicks = number(flag, v);
    else if (flag == "--heartbeat-ticks")
      o.heartbeatTicks = number(flag, v);
    else if (flag == "--snapshot-interval")
      o.snapshotInterval = number(flag, v);
    else if (flag == "--keep-entries")
      o.keepEntries = number(flag, v);
    else if (flag == "--max-message-bytes")
      o.maxMessageBytes = number(flag, v);
    else if (flag == "--seed")
      o.seed = number(flag, v);
    else if (flag == "--runner")
      o.runner = v;
    else if (flag == "--log-level")
      o.logLevel = v;
    else
      usage("unknown option '" + flag + "'");
  }
  if (o.plugin.empty()) usage("--plugin is required");
  if (o.id == 0) usage("--id is required and must not be 0");
  if (o.listen.empty()) usage("--listen is required");
  if (o.data.empty()) usage("--data is required");
  if (o.socket.empty()) usage("--socket is required");
  if (o.socket.size() >= sizeof(sockaddr_un::sun_path)) {
    usage("--socket path is too long for a Unix socket (at most 107 bytes)");
  }
  if (o.bootstrap != "new" && o.bootstrap != "join" && o.bootstrap != "restart" &&
      o.bootstrap != "force") {
    usage("--bootstrap must be new, join, restart or force, got '" + o.bootstrap + "'");
  }
  if (o.tickMs > 60000 || o.electionTicks > UINT32_MAX || o.heartbeatTicks > UINT32_MAX) {
    usage("--tick-ms, --election-ticks or --heartbeat-ticks is out of range");
  }
  std::string problem = checkLoopbackAddress(o.listen);
  if (!problem.empty()) usage("--listen " + problem);
  for (auto& [id, address] : o.members) {
    problem = checkLoopbackAddress(address);
    if (!problem.empty()) usage("--member " + problem);
    if (id == 0) usage("--member IDs must not be 0");
  }
  if (!kernel::parseLogLevel(o.logLevel)) usage("unknown --log-level '" + o.logLevel + "'");
  return o;
}

std::string dataKey(const Options& o) {
  if (o.key.empty()) return std::string(32, '\x5a');  // see --key in the usage text
  if (o.key.size() != 64)
    usage("--key needs 64 hex digits (32 bytes), got " + std::to_string(o.key.size()));
  std::string key(32, '\0');
  for (size_t i = 0; i < 32; ++i) {
    auto hex = [&](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      usage("--key has a character that is not a hex digit");
    };
    key[i] = static_cast<char>(hex(o.key[2 * i]) * 16 + hex(o.key[2 * i + 1]));
  }
  return key;
}

capnp::Data::Reader bytesOf(std::string_view s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

std::string u64s(std::initializer_list<uint64_t> values) {
  std::string out;
  ByteWriter w(out);
  for (uint64_t v : values) w.u64(v);
  return out;
}

struct Answer {
  Code code = Code::error;
  std::string payload;
};

class Harness {
 public:
  Harness(kj::AsyncIoContext& io, Options options)
      : io(io),
        options(std::move(options)),
        log(kernel::logger("raft-node-" + std::to_string(this->options.id))),
        links(io, this->options.id, [this](kj::StringPtr m) { log->info("{}", m.cStr()); }) {}

  int run() {
    links.listen(options.listen).wait(io.waitScope);
    for (auto& [id, address] : options.members) links.route(id, address);

    kernel::PluginConfig config;
    config.kind = schema::Kind::CONSENSUS;
    config.library = options.plugin;
    config.isolation =
        options.outOfProcess ? kernel::Isolation::outOfProcess : kernel::Isolation::inProcess;
    config.onCrash = kernel::CrashPolicy::stop;
    kernel::PluginInstance::Options hostOptions;
    hostOptions.runnerPath = options.runner;
    instance = kernel::PluginInstance::start(io, config, hostOptions);
    instance->configure().wait(io.waitScope);
    consensus = instance->bootstrap().castAs<schema::Consensus>();
    links.setConsensus(consensus);

    auto started = sendStart().wait(io.waitScope);
    auto s = started.getStatus();
    log->info("started: member {}, term {}, commit {}", s.getMemberId(), s.getTerm(),
              s.getCommitIndex());

    unlink(options.socket.c_str());
    auto addr = io.provider->getNetwork()
                    .parseAddress(kj::str("unix:", options.socket.c_str()))
                    .wait(io.waitScope);
    auto receiver = addr->listen();
    tasks.add(acceptLoop(*receiver));
    printf("raft-node %llu ready\n", static_cast<unsigned long long>(options.id));
    fflush(stdout);

    auto stop = io.unixEventPort.onSignal(SIGTERM)
                    .exclusiveJoin(io.unixEventPort.onSignal(SIGINT))
                    .then([](siginfo_t) { return kj::str(); })
                    .exclusiveJoin(instance->onFailure());
    kj::String failure = stop.wait(io.waitScope);
    if (failure.size() > 0) {
      log->error("the plugin failed: {}", failure.cStr());
      return 1;
    }
    log->info("stopping");
    instance->stop().wait(io.waitScope);
    unlink(options.socket.c_str());
    return 0;
  }

 private:
  struct Connection final : public kj::Refcounted {
    kj::Own<kj::AsyncIoStream> stream;
    std::string buffer;
    kj::Array<kj::byte> readBuffer = kj::heapArray<kj::byte>(256 * 1024);
    std::string pending;
    std::string inFlight;
    bool writing = false;
    bool broken = false;
  };
  class Errors final : public kj::TaskSet::ErrorHandler {
   public:
    void taskFailed(kj::Exception&&) override {}  // a client that went away
  };

  kj::AsyncIoContext& io;
  Options options;
  std::shared_ptr<spdlog::logger> log;
  KvReport report;
  PeerLinks links;
  kj::Own<kernel::PluginInstance> instance;
  schema::Consensus::Client consensus = nullptr;
  Errors errors;
  kj::TaskSet tasks{errors};

  kj::Promise<capnp::Response<schema::Consensus::StartResults>> sendStart() {
    auto request = consensus.startRequest();
    auto c = request.initConfig();
    c.setMemberId(options.id);
    c.setStorageDir(options.data);
    std::string key = dataKey(options);
    c.setDataKey(bytesOf(key));
    if (options.bootstrap == "new") {
      auto members = options.members;
      bool self = false;
      for (auto& [id, address] : members) self = self || id == options.id;
      if (!self) members.emplace_back(options.id, options.listen);
      auto list = c.getBootstrap().initNewCluster(members.size());
      for (size_t k = 0; k < members.size(); ++k) {
        list[k].setId(members[k].first);
        list[k].setNodeId(kj::str("raft-node-", members[k].first));
        list[k].setAddress(members[k].second);
        list[k].setVoter(true);
      }
    } else if (options.bootstrap == "join") {
      c.getBootstrap().setJoin();
    } else if (options.bootstrap == "restart") {
      c.getBootstrap().setRestart();
    } else {
      c.getBootstrap().setForceNewCluster();
    }
    c.setTickMillis(static_cast<uint32_t>(options.tickMs));
    c.setElectionTicks(static_cast<uint32_t>(options.electionTicks));
    c.setHeartbeatTicks(static_cast<uint32_t>(options.heartbeatTicks));
    c.setSnapshotInterval(options.snapshotInterval);
    c.setLogEntriesForSlowFollowers(options.keepEntries);
    c.setMaxMessageBytes(options.maxMessageBytes);
    c.setRandomSeed(options.seed);
    request.setNetwork(kj::heap<PeerNetworkServer>(links, options.id));
    request.setMachine(
        kj::heap<KvMachine>(report, [this](kj::StringPtr m) { log->info("{}", m.cStr()); }));
    return request.send();
  }

  kj::Promise<void> acceptLoop(kj::ConnectionReceiver& receiver) {
    return receiver.accept().then([this, &receiver](kj::Own<kj::AsyncIoStream> stream) {
      auto conn = kj::refcounted<Connection>();
      conn->stream = kj::mv(stream);
      tasks.add(readLoop(kj::mv(conn)));
      return acceptLoop(receiver);
    });
  }

  kj::Promise<void> readLoop(kj::Own<Connection> conn) {
    auto& c = *conn;
    return c.stream->tryRead(c.readBuffer.begin(), 1, c.readBuffer.size())
        .then([this, conn = kj::mv(conn)](size_t n) mutable -> kj::Promise<void> {
          if (n == 0) return kj::READY_NOW;
          conn->buffer.append(reinterpret_cast<const char*>(conn->readBuffer.begin()), n);
          bool ok = takeFrames(conn->buffer, [&](std::string_view body) {
            ByteReader r(body);
            Op op = static_cast<Op>(r.u8());
            uint64_t id = r.u64();
            std::string payload(r.rest());
            if (!r.ok()) return;
            tasks.add(kj::evalNow([&]() { return handle(op, payload); })
                          .catch_([](kj::Exception&& e) {
                            std::string m = kernel::describe(e);
                            std::string out;
                            ByteWriter(out).str(m);
                            return Answer{Code::error, out};
                          })
                          .then([this, id, c = kj::addRef(*conn)](Answer a) mutable {
                            std::string body;
                            ByteWriter w(body);
                            w.u64(id);
                            w.u8(static_cast<uint8_t>(a.code));
                            body += a.payload;
                            appendFrame(c->pending, body);
                            flush(*c);
                          }));
          });
          if (!ok) return kj::READY_NOW;
          return readLoop(kj::mv(conn));
        });
  }

  void flush(Connection& c) {
    if (c.writing || c.broken || c.pending.empty()) return;
    c.writing = true;
    c.inFlight.swap(c.pending);
    c.pending.clear();
    tasks.add(c.stream->write(c.inFlight.data(), c.inFlight.size())
                  .then(
                      [this, &c]() {
                        c.writing = false;
                        c.inFlight.clear();
                        flush(c);
                      },
                      [&c](kj::Exception&&) { c.broken = true; })
                  .attach(kj::addRef(c)));
  }

  static Answer answerOf(schema::Consensus::ProposeResult::Reader result) {
    switch (result.which()) {
      case schema::Consensus::ProposeResult::COMMITTED:
        return {Code::ok, u64s({result.getCommitted().getIndex(), result.getCommitted().getTerm()})};
      case schema::Consensus::ProposeResult::NOT_LEADER:
        return {Code::notLeader, u64s({result.getNotLeader()})};
      case schema::Consensus::ProposeResult::TOO_LARGE:
        return {Code::tooLarge, u64s({result.getTooLarge()})};
      case schema::Consensus::ProposeResult::LOST_LEADERSHIP: return {Code::lostLeadership, {}};
    }
    return {Code::error, {}};
  }

  // Proposals that arrive from every client within one turn of the event loop cross the plugin
  // boundary as one proposeBatch(), as the kernel's store coalesces concurrent writes.
  struct QueuedProposal {
    std::string data;
    kj::Own<kj::PromiseFulfiller<Answer>> fulfiller;
  };
  std::vector<QueuedProposal> queuedProposals;
  bool batchScheduled = false;

  kj::Promise<Answer> queueProposal(const std::string& payload) {
    auto paf = kj::newPromiseAndFulfiller<Answer>();
    queuedProposals.push_back({payload, kj::mv(paf.fulfiller)});
    if (!batchScheduled) {
      batchScheduled = true;
      tasks.add(kj::evalLast([this]() { return sendBatch(); }));
    }
    return kj::mv(paf.promise);
  }

  kj::Promise<void> sendBatch() {
    batchScheduled = false;
    auto batch = std::make_shared<std::vector<QueuedProposal>>(std::move(queuedProposals));
    queuedProposals.clear();
    auto request = consensus.proposeBatchRequest();
    auto entries = request.initEntries(batch->size());
    for (size_t i = 0; i < batch->size(); ++i) entries.set(i, bytesOf((*batch)[i].data));
    return request.send().then(
        [batch](capnp::Response<schema::Consensus::ProposeBatchResults>&& r) {
          auto results = r.getResults();
          for (size_t i = 0; i < batch->size(); ++i) {
            (*batch)[i].fulfiller->fulfill(i < results.size() ? answerOf(results[i])
                                                              : Answer{Code::error, {}});
          }
        },
        [batch](kj::Exception&& e) {
          for (auto& q : *batch) q.fulfiller->reject(kj::cp(e));
        });
  }

  kj::Promise<Answer> handle(Op op, const std::string& payload) {
    ByteReader args(payload);
    switch (op) {
      case Op::propose: return queueProposal(payload);
      case Op::read:
        return consensus.readBarrierRequest().send().then(
            [](capnp::Response<schema::Consensus::ReadBarrierResults>&& r) -> Answer {
              auto result = r.getResult();
              switch (result.which()) {
                case schema::Consensus::ReadResult::APPLIED:
                  return {Code::ok, u64s({result.getApplied()})};
                case schema::Consensus::ReadResult::NOT_LEADER:
                  return {Code::notLeader, u64s({result.getNotLeader()})};
                case schema::Consensus::ReadResult::NO_QUORUM: return {Code::noQuorum, {}};
              }
              return {Code::error, {}};
            });
      case Op::status:
        return consensus.statusRequest().send().then(
            [](capnp::Response<schema::Consensus::StatusResults>&& r) -> Answer {
              auto s = r.getStatus();
              NodeStatus out;
              out.memberId = s.getMemberId();
              out.leaderId = s.getLeaderId();
              out.term = s.getTerm();
              out.role = static_cast<uint8_t>(s.getRole());
              out.commitIndex = s.getCommitIndex();
              out.appliedIndex = s.getAppliedIndex();
              out.lastLeaderContactNs = static_cast<uint64_t>(s.getLastLeaderContact());
              for (auto m : s.getMembers())
                out.members.push_back({m.getId(), m.getVoter(), m.getAddress()});
              return {Code::ok, encodeStatus(out)};
            });
      case Op::transfer: {
        auto request = consensus.transferLeadershipRequest();
        request.setTo(args.u64());
        return request.send().then(
            [](capnp::Response<schema::Consensus::TransferLeadershipResults>&& r) -> Answer {
              auto result = r.getResult();
              switch (result.which()) {
                case schema::Consensus::TransferResult::NEW_LEADER:
                  return {Code::ok, u64s({result.getNewLeader()})};
                case schema::Consensus::TransferResult::NOT_LEADER:
                  return {Code::notLeader, u64s({result.getNotLeader()})};
                case schema::Consensus::TransferResult::NO_CANDIDATE:
                  return {Code::noCandidate, {}};
                case schema::Consensus::TransferResult::TIMED_OUT: return {Code::timedOut, {}};
              }
              return {Code::error, {}};
            });
      }
      case Op::snapshot:
        return consensus.snapshotNowRequest().send().then(
            [](capnp::Response<schema::Consensus::SnapshotNowResults>&& r) -> Answer {
              auto m = r.getMeta();
              return {Code::ok, u64s({m.getIndex(), m.getTerm(), m.getSizeBytes()})};
            });
      case Op::dump: return Answer{Code::ok, report.serialize()};
      case Op::add: {
        auto request = consensus.addMemberRequest();
        auto m = request.initMember();
        uint64_t id = args.u64();
        std::string address = args.str();
        std::string problem = checkLoopbackAddress(address);
        KJ_REQUIRE(problem.empty(), problem);
        m.setId(id);
        m.setNodeId(kj::str("raft-node-", id));
        m.setAddress(address);
        links.route(id, address);
        return membership(request.send());
      }
      case Op::promote: {
        auto request = consensus.promoteMemberRequest();
        request.setId(args.u64());
        return membership(request.send());
      }
      case Op::remove: {
        auto request = consensus.removeMemberRequest();
        request.setId(args.u64());
        return membership(request.send());
      }
    }
    std::string out;
    ByteWriter(out).str("unknown op " + std::to_string(static_cast<int>(op)));
    return Answer{Code::error, out};
  }

  template <typename Response>
  kj::Promise<Answer> membership(kj::Promise<Response>&& call) {
    return call.then([](Response&& r) -> Answer {
      auto result = r.getResult();
      switch (result.which()) {
        case schema::Consensus::MembershipResult::DONE:
          return {Code::ok, u64s({result.getDone().getId()})};
        case schema::Consensus::MembershipResult::NOT_LEADER:
          return {Code::notLeader, u64s({result.getNotLeader()})};
        case schema::Consensus::MembershipResult::UNKNOWN_MEMBER: return {Code::unknownMember, {}};
        case schema::Consensus::MembershipResult::QUORUM_AT_RISK: {
          std::string out;
          ByteWriter(out).str(std::string(result.getQuorumAtRisk().cStr()));
          return {Code::quorumAtRisk, out};
        }
        case schema::Consensus::MembershipResult::IN_PROGRESS: return {Code::inProgress, {}};
        case schema::Consensus::MembershipResult::INVALID: {
          std::string out;
          ByteWriter(out).str(std::string(result.getInvalid().cStr()));
          return {Code::invalid, out};
        }
      }
      return {Code::error, {}};
    });
  }
};

}  // namespace
}  // namespace swarm::raft::tools

int main(int argc, char** argv) {
  using namespace swarm;
  auto options = raft::tools::parse(argc, argv);
  kernel::initLogging(*kernel::parseLogLevel(options.logLevel));
  kj::UnixEventPort::captureSignal(SIGTERM);
  kj::UnixEventPort::captureSignal(SIGINT);
  auto io = kj::setupAsyncIo();
  int status = 0;
  KJ_IF_MAYBE (e, kj::runCatchingExceptions([&]() {
                 raft::tools::Harness harness(io, options);
                 status = harness.run();
               })) {
    fprintf(stderr, "raft-node %llu: %s\n", static_cast<unsigned long long>(options.id),
            kernel::describe(*e).c_str());
    return 1;
  }
  return status;
}
