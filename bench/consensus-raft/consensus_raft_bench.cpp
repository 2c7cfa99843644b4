// consensus-raft-bench: a real three-process consensus-raft cluster (raft-node, fsync on) on
// loopback, driven through the members' Unix sockets. Method and figures: bench/consensus-raft/
// README.md.
//
//   throughput  commits/s and commit latency (p50/p99) for payloads x concurrent proposers, all
//               proposing to the leader; a fresh cluster per combination
//   failover    kill -9 the leader, time until a new leader has committed a write; repeated, the
//               killed member restarted and caught up between runs
#include "cluster.h"

#include <kj/async-io.h>
#include <kj/debug.h>

#include <sys/sysinfo.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#ifndef SWARM_BENCH_BUILD_TYPE
#define SWARM_BENCH_BUILD_TYPE "unknown"
#endif

namespace swarm::raft::tools {
namespace {

using Clock = std::chrono::steady_clock;

constexpr double kTargetCommits64 = 20000;  // 64 B, 64 proposers
constexpr double kTargetP50Ms = 2;          // one proposer
constexpr double kTargetFailoverMs = 2000;  // p50

struct Options {
  bool quick = false;
  std::vector<size_t> payloads = {64, 4096};
  std::vector<size_t> proposers = {1, 64};
  double seconds = 10;
  double warmup = 2;
  int failoverRuns = 10;
  bool throughput = true;
  bool failover = true;
  uint64_t tickMs = 100;
  uint64_t electionTicks = 10;
  std::string nodeLogLevel = "warn";
  std::string raftNode = RAFT_BENCH_NODE;
  std::string plugin = RAFT_BENCH_PLUGIN;
};

[[noreturn]] void usage(const std::string& problem) {
  fprintf(stderr,
          "consensus-raft-bench: %s\n"
          "usage: consensus-raft-bench [--quick] [--scenarios=throughput,failover] "
          "[--payloads=64,4096]\n"
          "  [--proposers=1,64] [--seconds=10] [--warmup=2] [--failover-runs=10] [--tick-ms=100]\n"
          "  [--election-ticks=10] [--node-log-level=warn] [--raft-node=PATH] [--plugin=PATH]\n",
          problem.c_str());
  exit(2);
}

std::vector<size_t> numbers(const std::string& flag, const std::string& list) {
  std::vector<size_t> out;
  size_t at = 0;
  while (at <= list.size()) {
    size_t comma = list.find(',', at);
    std::string item = list.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    char* end = nullptr;
    unsigned long v = strtoul(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v == 0)
      usage(flag + " needs positive numbers, got '" + list + "'");
    out.push_back(v);
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* flag) -> std::string {
      std::string prefix = std::string(flag) + "=";
      return a.rfind(prefix, 0) == 0 ? a.substr(prefix.size()) : std::string();
    };
    if (a == "--quick") {
      o.quick = true;
    } else if (a == "-h" || a == "--help") {
      usage("options");
    } else if (auto v = value("--payloads"); !v.empty()) {
      o.payloads = numbers("--payloads", v);
    } else if (auto v = value("--proposers"); !v.empty()) {
      o.proposers = numbers("--proposers", v);
    } else if (auto v = value("--seconds"); !v.empty()) {
      o.seconds = atof(v.c_str());
    } else if (auto v = value("--warmup"); !v.empty()) {
      o.warmup = atof(v.c_str());
    } else if (auto v = value("--failover-runs"); !v.empty()) {
      o.failoverRuns = atoi(v.c_str());
    } else if (auto v = value("--tick-ms"); !v.empty()) {
      o.tickMs = numbers("--tick-ms", v)[0];
    } else if (auto v = value("--election-ticks"); !v.empty()) {
      o.electionTicks = numbers("--election-ticks", v)[0];
    } else if (auto v = value("--raft-node"); !v.empty()) {
      o.raftNode = v;
    } else if (auto v = value("--node-log-level"); !v.empty()) {
      o.nodeLogLevel = v;
    } else if (auto v = value("--plugin"); !v.empty()) {
      o.plugin = v;
    } else if (auto v = value("--scenarios"); !v.empty()) {
      o.throughput = v.find("throughput") != std::string::npos;
      o.failover = v.find("failover") != std::string::npos;
      if (!o.throughput && !o.failover) usage("--scenarios takes throughput and/or failover");
    } else {
      usage("unknown option '" + a + "'");
    }
  }
  if (o.quick) {
    o.seconds = std::min(o.seconds, 2.0);
    o.warmup = std::min(o.warmup, 0.5);
    o.failoverRuns = std::min(o.failoverRuns, 3);
  }
  if (o.seconds <= 0 || o.warmup < 0 || o.failoverRuns <= 0)
    usage("durations and runs must be positive");
  return o;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t k = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  return v[std::min(k, v.size() - 1)];
}

std::string loadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one;
  in >> one;
  return one;
}

ClusterOptions clusterOptions(const Options& o, const char* label) {
  ClusterOptions c;
  c.raftNode = o.raftNode;
  c.plugin = o.plugin;
  c.tickMs = o.tickMs;
  c.electionTicks = o.electionTicks;
  c.logLevel = o.nodeLogLevel;  // member logs stay with SWARM_RAFT_KEEP_CLUSTER=1
  c.label = label;
  c.seed = 20261125;
  return c;
}

// Proposers in a closed loop: each sends its next proposal when the previous one committed.
class Load {
 public:
  Load(kj::AsyncIoContext& io, RaftClient& client, size_t proposers, size_t payload)
      : io(io), client(client), value(payload, 'v') {
    for (size_t i = 0; i < proposers; ++i) tasks.add(run(i, 0));
  }

  void measureFromNow() {
    latenciesUs.clear();
    commits = 0;
    started = Clock::now();
  }

  void stop() {
    stopping = true;
    while (active > 0) io.provider->getTimer().afterDelay(5 * kj::MILLISECONDS).wait(io.waitScope);
    ended = Clock::now();
    KJ_REQUIRE(failures.empty(), failures.front());
  }

  double seconds() const { return std::chrono::duration<double>(ended - started).count(); }
  std::vector<double> latenciesUs;
  uint64_t commits = 0;
  std::vector<std::string> failures;

 private:
  class Errors final : public kj::TaskSet::ErrorHandler {
   public:
    explicit Errors(Load& load) : load(load) {}
    void taskFailed(kj::Exception&& e) override {
      load.failures.push_back(e.getDescription().cStr());
    }

   private:
    Load& load;
  };

  kj::AsyncIoContext& io;
  RaftClient& client;
  std::string value;
  bool stopping = false;
  size_t active = 0;
  Clock::time_point started = Clock::now(), ended = Clock::now();
  Errors errors{*this};
  kj::TaskSet tasks{errors};

  kj::Promise<void> run(size_t proposer, uint64_t n) {
    if (stopping) return kj::READY_NOW;
    // A bounded key space per proposer keeps the store small whatever the run length.
    // The proposal is exactly `payload` bytes: key, '=', then filler.
    std::string data;
    data.reserve(value.size() + 24);
    data.append("p")
        .append(std::to_string(proposer))
        .append("-")
        .append(std::to_string(n % 16))
        .append("=");
    data.resize(std::max(value.size(), data.size() + 1), 'v');
    auto t0 = Clock::now();
    ++active;
    return client.call(Op::propose, data).then([this, proposer, n, t0](Reply r) {
      --active;
      KJ_REQUIRE(r.code == Code::ok, "a proposal to the leader did not commit", r.describe());
      if (t0 >= started) {
        ++commits;
        latenciesUs.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
      return run(proposer, n + 1);
    });
  }
};

struct ThroughputResult {
  size_t payload, proposers;
  double commitsPerSec, p50Ms, p99Ms, seconds;
  uint64_t commits;
};

ThroughputResult throughput(kj::AsyncIoContext& io, const Options& o, size_t payload,
                            size_t proposers) {
  Cluster cluster(io, clusterOptions(o, "raft-bench"));
  cluster.startAll();
  uint64_t leader = cluster.waitLeader();
  Load load(io, cluster.client(leader), proposers, payload);
  cluster.sleep(static_cast<int64_t>(o.warmup * 1000) * kj::MILLISECONDS);
  load.measureFromNow();
  uint64_t termAtStart = cluster.status(leader).term;
  cluster.sleep(static_cast<int64_t>(o.seconds * 1000) * kj::MILLISECONDS);
  load.stop();
  KJ_REQUIRE(cluster.waitLeader() == leader,
             "leadership changed during the run; the figures would mix in an election");
  // Pre-vote keeps a failed election from bumping the term, so an unchanged term on the leader
  // means no member ever started a real election during the run.
  uint64_t termAtEnd = cluster.status(leader).term;
  KJ_REQUIRE(termAtEnd == termAtStart, "an election happened during the run", termAtStart,
             termAtEnd);
  printf("  %zu B x %zu proposers: no election during the %.0f s run (term %llu throughout)\n",
         payload, proposers, o.seconds, static_cast<unsigned long long>(termAtStart));
  return {payload,
          proposers,
          load.commits / load.seconds(),
          percentile(load.latenciesUs, 0.5) / 1000,
          percentile(load.latenciesUs, 0.99) / 1000,
          load.seconds(),
          load.commits};
}

// Proposes to every member claiming to lead until one commits; returns when it did.
void commitSomewhere(kj::AsyncIoContext& io, Cluster& cluster, uint64_t n, kj::Duration limit) {
  auto& timer = io.provider->getTimer();
  auto deadline = timer.now() + limit;
  for (;;) {
    for (auto id : cluster.ids()) {
      if (!cluster.running(id)) continue;
      auto attempt = kj::runCatchingExceptions([&]() {
        Reply r =
            cluster.call(id, Op::propose, "failover-" + std::to_string(n) + "=x", 5 * kj::SECONDS);
        KJ_REQUIRE(r.code == Code::ok);
      });
      if (attempt == nullptr) return;
    }
    KJ_REQUIRE(timer.now() < deadline, "no member committed a write after the leader was killed",
               cluster.logTails(10));
    timer.afterDelay(2 * kj::MILLISECONDS).wait(io.waitScope);
  }
}

std::vector<double> failover(kj::AsyncIoContext& io, const Options& o) {
  Cluster cluster(io, clusterOptions(o, "raft-bench-failover"));
  cluster.startAll();
  std::vector<double> ms;
  for (int run = 0; run < o.failoverRuns; ++run) {
    uint64_t leader = cluster.waitLeader(60 * kj::SECONDS);
    commitSomewhere(io, cluster, 1000 + run, 30 * kj::SECONDS);
    // Let the followers hear a heartbeat, as a leader that has been up a while would have.
    cluster.sleep(static_cast<int64_t>(3 * o.tickMs) * kj::MILLISECONDS);
    auto t0 = Clock::now();
    cluster.kill(leader);
    commitSomewhere(io, cluster, 2000 + run, 60 * kj::SECONDS);
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    fprintf(stderr, "failover run %d: %.0f ms\n", run + 1, ms.back());
    cluster.start(leader, "restart");
    uint64_t commit = cluster.status(cluster.waitLeader(60 * kj::SECONDS)).commitIndex;
    cluster.waitApplied(commit, 60 * kj::SECONDS);
  }
  return ms;
}

}  // namespace
}  // namespace swarm::raft::tools

int main(int argc, char** argv) {
  using namespace swarm::raft::tools;
  Options o = parse(argc, argv);
  auto io = kj::setupAsyncIo();
  std::string loadBefore = loadAverage();
  printf("consensus-raft-bench (%s build, %d CPUs, load average %s before)\n",
         SWARM_BENCH_BUILD_TYPE, get_nprocs(), loadBefore.c_str());
  printf("3 raft-node processes on loopback, fsync on, tickMillis %llu, electionTicks %llu\n\n",
         static_cast<unsigned long long>(o.tickMs),
         static_cast<unsigned long long>(o.electionTicks));
  std::vector<std::string> json;
  json.push_back(std::string("{\"bench\":\"consensus-raft\",\"record\":\"setup\",\"build\":\"") +
                 SWARM_BENCH_BUILD_TYPE + "\",\"cpus\":" + std::to_string(get_nprocs()) +
                 ",\"loadBefore\":" + loadBefore + ",\"seconds\":" + std::to_string(o.seconds) +
                 ",\"tickMs\":" + std::to_string(o.tickMs) +
                 ",\"electionTicks\":" + std::to_string(o.electionTicks) + "}");
  int status = 0;
  KJ_IF_MAYBE (
      e, kj::runCatchingExceptions([&]() {
        if (o.throughput) {
          printf("%-8s %-10s %12s %10s %10s %10s\n", "payload", "proposers", "commits/s", "p50 ms",
                 "p99 ms", "commits");
          for (size_t payload : o.payloads) {
            for (size_t proposers : o.proposers) {
              auto r = throughput(io, o, payload, proposers);
              printf("%-8zu %-10zu %12.0f %10.2f %10.2f %10llu\n", r.payload, r.proposers,
                     r.commitsPerSec, r.p50Ms, r.p99Ms, static_cast<unsigned long long>(r.commits));
              fflush(stdout);
              char line[512];
              snprintf(line, sizeof(line),
                       "{\"bench\":\"consensus-raft\",\"record\":\"throughput\",\"payload\":%zu,"
                       "\"proposers\":%zu,\"commitsPerSec\":%.0f,\"p50Ms\":%.3f,\"p99Ms\":%.3f,"
                       "\"commits\":%llu,\"seconds\":%.2f}",
                       r.payload, r.proposers, r.commitsPerSec, r.p50Ms, r.p99Ms,
                       static_cast<unsigned long long>(r.commits), r.seconds);
              json.push_back(line);
              if (payload == 64 && proposers == 64) {
                printf("  target >= %.0f commits/s at 64 B with 64 proposers: %s\n",
                       kTargetCommits64, r.commitsPerSec >= kTargetCommits64 ? "met" : "MISSED");
              }
              if (proposers == 1 && payload == 64) {
                printf("  target p50 <= %.0f ms with one proposer: %s\n", kTargetP50Ms,
                       r.p50Ms <= kTargetP50Ms ? "met" : "MISSED");
              }
            }
          }
          printf("\n");
        }
        if (o.failover) {
          auto ms = failover(io, o);
          double p50 = percentile(ms, 0.5);
          printf("failover (kill -9 the leader until a new leader commits), %zu runs:\n",
                 ms.size());
          printf("  p50 %.0f ms, min %.0f ms, max %.0f ms; target p50 <= %.0f ms: %s\n", p50,
                 *std::min_element(ms.begin(), ms.end()), *std::max_element(ms.begin(), ms.end()),
                 kTargetFailoverMs, p50 <= kTargetFailoverMs ? "met" : "MISSED");
          std::string runs;
          for (double m : ms) {
            if (!runs.empty()) runs.append(",");
            runs.append(std::to_string(static_cast<int>(m)));
          }
          json.push_back("{\"bench\":\"consensus-raft\",\"record\":\"failover\",\"runs\":[" + runs +
                         "],\"p50Ms\":" + std::to_string(static_cast<int>(p50)) + "}");
        }
      })) {
    fprintf(stderr, "consensus-raft-bench: %s\n", e->getDescription().cStr());
    status = 1;
  }
  printf("load average %s after\n\n", loadAverage().c_str());
  for (auto& line : json) printf("%s\n", line.c_str());
  return status;
}
