#include "cluster.h"

#include <kj/debug.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>

namespace swarm::raft::tools {

namespace {

uint16_t freePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  KJ_SYSCALL(fd);
  KJ_DEFER(close(fd));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  KJ_SYSCALL(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)));
  socklen_t len = sizeof(a);
  KJ_SYSCALL(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len));
  return ntohs(a.sin_port);
}

std::string address(uint16_t port) {
  return "127.0.0.1:" + std::to_string(port);
}

}  // namespace

Cluster::Cluster(kj::AsyncIoContext& io, ClusterOptions o) : io(io), options(std::move(o)) {
  std::string templ = "/tmp/" + options.label + "-XXXXXX";
  KJ_REQUIRE(mkdtemp(templ.data()) != nullptr, "cannot create a scratch directory", templ);
  scratch = templ;
  for (size_t i = 1; i <= options.size; ++i) {
    Member m;
    m.id = i;
    m.port = freePort();
    m.data = scratch + "/n" + std::to_string(i);
    m.socket = scratch + "/n" + std::to_string(i) + ".sock";
    m.log = scratch + "/n" + std::to_string(i) + ".log";
    memberIds.push_back(i);
    members.emplace(i, std::move(m));
  }
}

Cluster::~Cluster() noexcept(false) {
  for (auto& [id, m] : members) {
    m.client = nullptr;
    if (m.pid > 0) reap(m, SIGKILL, 5 * kj::SECONDS);
  }
  const char* keep = getenv("SWARM_RAFT_KEEP_CLUSTER");
  if (keep == nullptr || std::string(keep) != "1") {
    std::error_code ignored;
    std::filesystem::remove_all(scratch, ignored);
  }
}

Cluster::Member& Cluster::member(uint64_t id) {
  auto it = members.find(id);
  KJ_REQUIRE(it != members.end(), "no such member", id);
  return it->second;
}

const Cluster::Member& Cluster::member(uint64_t id) const {
  auto it = members.find(id);
  KJ_REQUIRE(it != members.end(), "no such member", id);
  return it->second;
}

void Cluster::startAll() {
  for (auto& [id, m] : members) spawn(m, "new");
  for (auto id : memberIds) start(id, "");
}

void Cluster::start(uint64_t id, const std::string& bootstrap) {
  Member& m = member(id);
  if (!bootstrap.empty()) {
    KJ_REQUIRE(m.pid == 0, "member is already running", id);
    spawn(m, bootstrap);
  }
  // Ready once its client socket accepts (it listens only after start() resolved).
  auto& timer = io.provider->getTimer();
  auto deadline = timer.now() + 60 * kj::SECONDS;
  for (;;) {
    int status = 0;
    if (waitpid(m.pid, &status, WNOHANG) == m.pid) {
      m.pid = 0;
      KJ_FAIL_REQUIRE("raft-node exited while starting", id, status, logTail(id));
    }
    auto attempt = kj::runCatchingExceptions(
        [&]() { m.client = RaftClient::connect(io, m.socket).wait(io.waitScope); });
    if (attempt == nullptr) return;
    KJ_REQUIRE(timer.now() < deadline, "raft-node did not come up within 60 s", id, logTail(id));
    timer.afterDelay(20 * kj::MILLISECONDS).wait(io.waitScope);
  }
}

void Cluster::spawn(Member& m, const std::string& bootstrap) {
  std::vector<std::string> args = {options.raftNode,
                                   "--plugin",
                                   options.plugin,
                                   "--id",
                                   std::to_string(m.id),
                                   "--listen",
                                   address(m.port),
                                   "--data",
                                   m.data,
                                   "--socket",
                                   m.socket,
                                   "--bootstrap",
                                   bootstrap,
                                   "--tick-ms",
                                   std::to_string(options.tickMs),
                                   "--election-ticks",
                                   std::to_string(options.electionTicks),
                                   "--heartbeat-ticks",
                                   std::to_string(options.heartbeatTicks),
                                   "--snapshot-interval",
                                   std::to_string(options.snapshotInterval),
                                   "--keep-entries",
                                   std::to_string(options.keepEntries),
                                   "--seed",
                                   std::to_string(options.seed * 1000 + m.id),
                                   "--log-level",
                                   options.logLevel};
  for (auto& [id, other] : members) {
    args.push_back("--member");
    args.push_back(std::to_string(id) + "=" + address(other.port));
  }
  if (options.outOfProcess) {
    args.push_back("--out-of-process");
    args.push_back("--runner");
    args.push_back(options.runner);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int logFd = open(m.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  KJ_SYSCALL(logFd, m.log);
  pid_t parent = getpid();
  pid_t pid = fork();
  KJ_SYSCALL(pid);
  if (pid == 0) {
    // The child dies with the test: no stray members if the test process is killed.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(logFd, 1);
    dup2(logFd, 2);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(logFd);
  m.pid = pid;
  m.client = nullptr;
}

void Cluster::reap(Member& m, int signal, kj::Duration limit) {
  if (m.pid <= 0) return;
  m.client = nullptr;
  ::kill(m.pid, signal);
  auto& timer = io.provider->getTimer();
  auto deadline = timer.now() + limit;
  for (;;) {
    int status = 0;
    pid_t r = waitpid(m.pid, &status, WNOHANG);
    if (r == m.pid || r < 0) break;
    if (timer.now() >= deadline) {
      ::kill(m.pid, SIGKILL);
      waitpid(m.pid, &status, 0);
      break;
    }
    timer.afterDelay(5 * kj::MILLISECONDS).wait(io.waitScope);
  }
  m.pid = 0;
}

void Cluster::kill(uint64_t id) {
  reap(member(id), SIGKILL, 10 * kj::SECONDS);
}

void Cluster::stop(uint64_t id) {
  reap(member(id), SIGTERM, 10 * kj::SECONDS);
}

bool Cluster::running(uint64_t id) const {
  return member(id).pid > 0;
}

RaftClient& Cluster::client(uint64_t id) {
  Member& m = member(id);
  KJ_IF_MAYBE (c, m.client) {
    if (m.pid > 0 && !(*c)->broken()) return **c;
  }
  kj::throwFatalException(KJ_EXCEPTION(DISCONNECTED, "no connection to member", id));
}

void Cluster::reconnect(uint64_t id) {
  Member& m = member(id);
  KJ_REQUIRE(m.pid > 0, "member is not running", id);
  m.client = RaftClient::connect(io, m.socket).wait(io.waitScope);
}

Reply Cluster::call(uint64_t id, Op op, std::string_view payload, kj::Duration limit) {
  auto& timer = io.provider->getTimer();
  bool live = false;
  KJ_IF_MAYBE (c, member(id).client) {
    live = !(*c)->broken();
  }
  if (!live) reconnect(id);
  return client(id)
      .call(op, payload)
      .exclusiveJoin(timer.afterDelay(limit).then([id, op]() -> Reply {
        KJ_FAIL_REQUIRE("raft-node did not answer in time", id, static_cast<int>(op));
      }))
      .wait(io.waitScope);
}

NodeStatus Cluster::status(uint64_t id) {
  Reply r = call(id, Op::status);
  KJ_REQUIRE(r.code == Code::ok, "status failed", id, r.describe());
  NodeStatus s;
  KJ_REQUIRE(decodeStatus(r.payload, s), "malformed status reply", id);
  return s;
}

KvReport Cluster::dump(uint64_t id) {
  Reply r = call(id, Op::dump);
  KJ_REQUIRE(r.code == Code::ok, "dump failed", id, r.describe());
  auto report = KvReport::parse(r.payload);
  KJ_REQUIRE(report.has_value(), "malformed dump reply", id);
  return kj::mv(*report);
}

uint64_t Cluster::waitLeader(kj::Duration limit) {
  auto& timer = io.provider->getTimer();
  auto deadline = timer.now() + limit;
  for (;;) {
    std::map<std::pair<uint64_t, uint64_t>, size_t> votes;  // (term, leader) -> members saying so
    uint64_t best = 0, bestTerm = 0;
    size_t runningCount = 0;
    for (auto id : memberIds) {
      if (!running(id)) continue;
      ++runningCount;
      auto s = kj::runCatchingExceptions([&]() {
        NodeStatus st = status(id);
        if (st.leaderId != 0) ++votes[{st.term, st.leaderId}];
      });
      (void)s;
    }
    for (auto& [key, n] : votes) {
      if (n * 2 > memberIds.size() && key.first >= bestTerm) {
        bestTerm = key.first;
        best = key.second;
      }
    }
    if (best != 0 && running(best)) {
      // The leader must agree itself (a deposed leader still named by stale followers doesn't).
      auto confirmed = kj::runCatchingExceptions([&]() {
        NodeStatus st = status(best);
        KJ_REQUIRE(st.isLeader() && st.term == bestTerm);
      });
      if (confirmed == nullptr) return best;
    }
    KJ_REQUIRE(timer.now() < deadline, "no leader agreed on in time", runningCount, logTails(10));
    timer.afterDelay(20 * kj::MILLISECONDS).wait(io.waitScope);
  }
}

void Cluster::waitApplied(uint64_t index, kj::Duration limit) {
  auto& timer = io.provider->getTimer();
  auto deadline = timer.now() + limit;
  for (;;) {
    bool all = true;
    for (auto id : memberIds) {
      if (running(id) && status(id).appliedIndex < index) all = false;
    }
    if (all) return;
    KJ_REQUIRE(timer.now() < deadline, "members did not apply the index in time", index,
               logTails(10));
    timer.afterDelay(20 * kj::MILLISECONDS).wait(io.waitScope);
  }
}

std::string Cluster::logTail(uint64_t id, size_t lines) const {
  std::ifstream in(member(id).log);
  std::deque<std::string> tail;
  std::string line;
  while (std::getline(in, line)) {
    tail.push_back(line);
    if (tail.size() > lines) tail.pop_front();
  }
  std::string out = "--- member " + std::to_string(id) + " (" + member(id).log + ")\n";
  for (auto& l : tail) out += l + "\n";
  return out;
}

std::string Cluster::logTails(size_t lines) const {
  std::string out;
  for (auto id : memberIds) out += logTail(id, lines);
  return out;
}

void Cluster::sleep(kj::Duration d) {
  io.provider->getTimer().afterDelay(d).wait(io.waitScope);
}

}  // namespace swarm::raft::tools
