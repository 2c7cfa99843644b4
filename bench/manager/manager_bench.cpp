// manager-bench: one swarm-kernel manager process with the bundled plugins (a fake runtime until
// runtime-docker exists), driven through its Docker-compatible API on a Unix socket, as the docker
// CLI drives it.
//
//   rss-idle-before-init   VmRSS of the process, in no swarm yet, plugins loaded
//   init                   POST /swarm/init until it answered (PKI, Raft bootstrap, election, the
//                          first store transaction)
//   rss-idle               VmRSS 2 s after init, the swarm idle
//   node-ls                GET /nodes latency, p50/p99 over many calls
//   secret-create          POST /secrets/create, N concurrent clients: writes/s and latency (each
//                          one a replicated, fsynced store transaction)
//   rss-after-writes       VmRSS once the secrets are in
//   manager-join           two more swarm-kernel processes join as managers: POST /swarm/join
//                          until answered, and until the new manager lists every secret (caught
//                          up through a snapshot or the log)
//   follower-write         secret create through a follower (handed to the leader)
//
// Loopback and Unix sockets only. Figures mean something only in Release on a quiet machine.
#include "sim_node.h"
#include "client.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#ifndef SWARM_BENCH_BUILD_TYPE
#define SWARM_BENCH_BUILD_TYPE "unknown"
#endif

namespace {

namespace fs = std::filesystem;
using swarm::ctl::ApiClient;
using namespace swarm::bench;

struct Options {
  bool quick = false;
  int nodeLsCalls = 2000;
  int secrets = 2000;
  int clients = 16;
};

// Starts swarm-kernel with its state, socket and log under dir/<name>.
pid_t startKernel(const fs::path& dir, const fs::path& conf, const std::string& name) {
  return spawnKernel(SWARM_BENCH_KERNEL, conf, dir / (name + "-state"), dir / (name + ".sock"), dir / (name + ".log"));
}

ApiClient client(const fs::path& socket) {
  return ApiClient(swarm::ctl::parseHostAddress("unix://" + socket.string()),
                   std::chrono::milliseconds(30000));
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      o.quick = true;
      o.nodeLsCalls = 200;
      o.secrets = 200;
    } else if (a.rfind("--clients=", 0) == 0) {
      o.clients = std::max(1, std::stoi(a.substr(10)));
    } else if (a.rfind("--secrets=", 0) == 0) {
      o.secrets = std::max(1, std::stoi(a.substr(10)));
    } else if (a == "--help") {
      std::puts("usage: manager-bench [--quick] [--clients=N] [--secrets=N]");
      return 0;
    } else {
      std::fprintf(stderr, "manager-bench: unknown option '%s'; see --help\n", a.c_str());
      return 2;
    }
  }

  char pattern[] = "/tmp/manager-bench.XXXXXX";
  if (mkdtemp(pattern) == nullptr) {
    std::perror("manager-bench: mkdtemp");
    return 1;
  }
  fs::path dir = pattern;
  fs::path conf = dir / "plugins.conf";
  writePluginsConf(conf);
  fs::path socket = dir / "api.sock";
  std::vector<pid_t> joiners;
  pid_t pid = 0;
  try {
    pid = startKernel(dir, conf, "api");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "manager-bench: %s\n", e.what());
    return 1;
  }
  auto finish = [&](int code) {
    for (pid_t p : joiners) kill(p, SIGTERM);
    for (pid_t p : joiners) waitpid(p, nullptr, 0);
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
    std::error_code ec;
    fs::remove_all(dir, ec);
    return code;
  };

  try {
    double loadBefore = loadAverage();
    waitForSocket(socket, pid);
    auto api = client(socket);
    api.apiVersion();
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    long rssBefore = rssKiB(pid);

    auto t0 = Clock::now();
    api.post("/swarm/init", {}, boost::json::object{{"ListenAddr", "127.0.0.1:2377"},
                                                    {"AdvertiseAddr", "127.0.0.1:2377"}});
    double initMs = ms(Clock::now() - t0);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    long rssIdle = rssKiB(pid);

    std::vector<double> nodeLs;
    for (int i = 0; i < o.nodeLsCalls; ++i) {
      auto s = Clock::now();
      api.get("/nodes");
      nodeLs.push_back(ms(Clock::now() - s));
    }

    std::atomic<int> next{0};
    std::vector<std::vector<double>> latencies(o.clients);
    std::vector<std::thread> threads;
    auto w0 = Clock::now();
    for (int c = 0; c < o.clients; ++c) {
      threads.emplace_back([&, c]() {
        auto mine = client(socket);
        for (int i = next++; i < o.secrets; i = next++) {
          auto s = Clock::now();
          mine.post("/secrets/create", {},
                    boost::json::object{{"Name", "bench-" + std::to_string(i)}, {"Data", "c2VjcmV0"}});
          latencies[c].push_back(ms(Clock::now() - s));
        }
      });
    }
    for (auto& t : threads) t.join();
    double writeSeconds = std::chrono::duration<double>(Clock::now() - w0).count();
    std::vector<double> all;
    for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
    long rssAfter = rssKiB(pid);

    // Two managers join; each must catch up with every secret.
    auto token = api.get("/swarm").at("JoinTokens").at("Manager").as_string();
    std::vector<double> joinMs, caughtUpMs;
    for (int j = 0; j < 2; ++j) {
      std::string name = "joiner" + std::to_string(j);
      joiners.push_back(startKernel(dir, conf, name));
      waitForSocket(dir / (name + ".sock"), joiners.back());
      auto joiner = client(dir / (name + ".sock"));
      joiner.apiVersion();
      std::string address = "127.0.0.1:" + std::to_string(2378 + j);
      auto s = Clock::now();
      joiner.post("/swarm/join", {}, boost::json::object{{"ListenAddr", address}, {"AdvertiseAddr", address},
                                                         {"RemoteAddrs", boost::json::array{"127.0.0.1:2377"}},
                                                         {"JoinToken", token}});
      joinMs.push_back(ms(Clock::now() - s));
      for (;;) {
        try {
          if (joiner.get("/secrets").as_array().size() >= static_cast<size_t>(o.secrets)) break;
        } catch (const std::exception&) {
          // Not caught up enough to answer yet.
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      caughtUpMs.push_back(ms(Clock::now() - s));
    }
    auto follower = client(dir / "joiner0.sock");
    std::vector<double> followerWrites;
    for (int i = 0; i < 200; ++i) {
      auto s = Clock::now();
      follower.post("/secrets/create", {},
                    boost::json::object{{"Name", "via-follower-" + std::to_string(i)}, {"Data", "c2VjcmV0"}});
      followerWrites.push_back(ms(Clock::now() - s));
    }

    std::printf("manager-bench (%s build, load average %.2f before, %.2f after)\n", SWARM_BENCH_BUILD_TYPE,
                loadBefore, loadAverage());
    std::printf("one manager, bundled plugins in process, API on a Unix socket\n\n");
    std::printf("%-24s %12s  %s\n", "metric", "value", "note");
    std::printf("%-24s %9.1f MB  %s\n", "rss-idle-before-init", rssBefore / 1024.0, "plugins loaded, no swarm");
    std::printf("%-24s %9.1f ms  %s\n", "init", initMs, "POST /swarm/init");
    std::printf("%-24s %9.1f MB  %s\n", "rss-idle", rssIdle / 1024.0, "target <= 30 MB (dockerd in swarm mode ~105 MB)");
    std::printf("%-24s %9.3f ms  p99 %.3f ms over %d calls (1 node)\n", "node-ls p50",
                percentile(nodeLs, 0.5), percentile(nodeLs, 0.99), o.nodeLsCalls);
    std::printf("%-24s %9.0f /s  %d secrets, %d clients, p50 %.2f ms, p99 %.2f ms\n", "secret-create",
                o.secrets / writeSeconds, o.secrets, o.clients, percentile(all, 0.5), percentile(all, 0.99));
    std::printf("%-24s %9.1f MB  %s\n", "rss-after-writes", rssAfter / 1024.0, "with the secrets stored");
    std::printf("%-24s %9.1f ms  second manager %.1f ms (POST /swarm/join answered)\n", "manager-join",
                joinMs[0], joinMs[1]);
    std::printf("%-24s %9.1f ms  second manager %.1f ms (until it lists all %d secrets)\n", "manager-caught-up",
                caughtUpMs[0], caughtUpMs[1], o.secrets);
    std::printf("%-24s %9.2f ms  p99 %.2f ms, secret create through a follower, one client\n",
                "follower-write p50", percentile(followerWrites, 0.5), percentile(followerWrites, 0.99));
    std::printf("{\"bench\":\"manager\",\"rssIdleBeforeInitKiB\":%ld,\"initMs\":%.1f,\"rssIdleKiB\":%ld,"
                "\"nodeLsP50Ms\":%.3f,\"nodeLsP99Ms\":%.3f,\"secretCreatePerSec\":%.0f,"
                "\"secretCreateP50Ms\":%.2f,\"secretCreateP99Ms\":%.2f,\"rssAfterWritesKiB\":%ld,"
                "\"managerJoinMs\":[%.1f,%.1f],\"managerCaughtUpMs\":[%.1f,%.1f],\"followerWriteP50Ms\":%.2f}\n",
                rssBefore, initMs, rssIdle, percentile(nodeLs, 0.5), percentile(nodeLs, 0.99),
                o.secrets / writeSeconds, percentile(all, 0.5), percentile(all, 0.99), rssAfter, joinMs[0],
                joinMs[1], caughtUpMs[0], caughtUpMs[1], percentile(followerWrites, 0.5));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "manager-bench: %s\n", e.what());
    return finish(1);
  }
  return finish(0);
}
