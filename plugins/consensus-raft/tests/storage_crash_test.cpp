// Crash simulation: a child process runs a seeded workload against a Storage and reports each
// operation on a pipe once the call has returned; the parent kills it with SIGKILL at a seeded
// point. Recovery must then hold exactly the state after the last acknowledged operation, or after
// the one that was in flight. Several rounds per seed continue in the same directory.
//
// SWARM_RAFT_STORAGE_CRASH_SEEDS=<n> runs n seeds (default 4); SWARM_RAFT_STORAGE_SEED=<s> runs
// only seed s.
#include "storage_util.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <thread>

namespace swarm::raft::testing {
namespace {

const auto kKey = testKey(3);

StorageOptions crashOptions() {
  StorageOptions options;
  options.segmentBytes = 16 * 1024;  // rotation and compaction happen within a round
  options.snapshotChunkBytes = 1024;
  return options;
}

// Child: opens the storage, then applies operations forever, writing each one's number to `ack`
// after the call returned. Never returns.
[[noreturn]] void runChild(const fs::path& dir, Workload work, int ack, uint64_t maxOps) {
  try {
    auto storage = Storage::open(dir, kKey, crashOptions());
    for (uint64_t i = 0; i < maxOps; ++i) {
      uint64_t n = work.count();
      Workload::apply(storage, work.next());
      if (::write(ack, &n, sizeof n) != sizeof n) ::_exit(3);
    }
    ::_exit(0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "crash-test child failed: %s\n", e.what());
    ::_exit(2);
  }
}

// One round: fork, wait for `acksBeforeKill` acknowledgements plus `delayUs`, SIGKILL, and return
// the number of the last acknowledged operation (or nullopt if none).
std::optional<uint64_t> crashRound(const fs::path& dir, const Workload& work,
                                   uint64_t acksBeforeKill, uint64_t delayUs, int& exitCode) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(fds[0]);
    runChild(dir, work, fds[1], 100000);
  }
  ::close(fds[1]);
  std::optional<uint64_t> lastAck;
  uint64_t acks = 0;
  bool killed = false;
  auto readAck = [&]() -> bool {
    uint64_t n;
    ssize_t got = ::read(fds[0], &n, sizeof n);
    if (got != sizeof n) return false;  // EOF: the child is gone (a pipe write is atomic)
    lastAck = n;
    ++acks;
    return true;
  };
  while (!killed) {
    if (acks >= acksBeforeKill) {
      std::this_thread::sleep_for(std::chrono::microseconds(delayUs));
      ::kill(child, SIGKILL);
      killed = true;
      break;
    }
    if (!readAck()) break;
  }
  while (readAck()) {
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  return lastAck;
}

TEST_CASE("kill -9 at a random point loses nothing that was acknowledged") {
  std::vector<uint64_t> seeds;
  if (auto one = envNumber("SWARM_RAFT_STORAGE_SEED", 0)) {
    seeds.push_back(one);
  } else {
    auto count = envNumber("SWARM_RAFT_STORAGE_CRASH_SEEDS", 4);
    for (uint64_t i = 0; i < count; ++i) seeds.push_back(1000 + i);
  }
  for (auto seed : seeds) {
    INFO("seed " << seed << " (replay with SWARM_RAFT_STORAGE_SEED=" << seed << ")");
    TempDir tmp;
    auto dir = tmp.path();
    std::mt19937_64 rng(seed);
    Workload work(seed);  // at the state the storage last recovered to
    for (int round = 0; round < 3; ++round) {
      uint64_t acksBeforeKill = rng() % 250;
      uint64_t delayUs = rng() % 3000;
      INFO("round " << round << ": kill after " << acksBeforeKill << " acks + " << delayUs
                    << " us, continuing from op " << work.count());
      int exitCode = 0;
      auto lastAck = crashRound(dir, work, acksBeforeKill, delayUs, exitCode);
      REQUIRE((exitCode == -SIGKILL || exitCode == 0));

      // The candidates: everything acknowledged, and possibly the operation in flight.
      Workload acked = work;
      if (lastAck) {
        REQUIRE(*lastAck >= work.count());
        while (acked.count() <= *lastAck) acked.next();
      }
      Workload inFlight = acked;
      inFlight.next();

      auto storage = Storage::open(dir, kKey, crashOptions());
      std::string whyAcked, whyInFlight;
      bool isAcked = matches(storage, acked.model(), whyAcked);
      bool isInFlight = !isAcked && matches(storage, inFlight.model(), whyInFlight);
      INFO("last ack " << (lastAck ? std::to_string(*lastAck) : "none") << "; vs acknowledged: "
                       << whyAcked << "; vs in flight: " << whyInFlight);
      REQUIRE((isAcked || isInFlight));
      work = isAcked ? acked : inFlight;
    }
  }
}

}  // namespace
}  // namespace swarm::raft::testing
