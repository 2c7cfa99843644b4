// A crash at every point where the storage changes a file, deterministically: a seeded workload
// runs in a fresh directory until the chosen write, sync, rename, unlink or truncate (or half of
// a write) "kills" it (storage_syscalls.h). Recovery must give the state after the operations
// that completed, or after the one in flight too; the workload then goes on from there, through
// further segment rotations, and a second reopen must still agree with the model.
//
// SWARM_RAFT_STORAGE_SEED=<s> picks the workload, SWARM_RAFT_STORAGE_CRASH_OPS=<n> its length,
// SWARM_RAFT_STORAGE_CRASH_POINT=<call> replays one crash point.
#include "storage_syscalls.h"
#include "storage_util.h"

namespace swarm::raft::testing {
namespace {

const auto kKey = testKey(5);

StorageOptions pointOptions() {
  StorageOptions options;
  options.segmentBytes = 2048;
  options.snapshotChunkBytes = 512;
  return options;
}

// Arms a crash point for its lifetime, so that whatever happens the fault injection ends.
class Armed {
 public:
  Armed(uint64_t point, bool half) { syscalls::armCrash(point, half); }
  ~Armed() { syscalls::disarm(); }
  Armed(const Armed&) = delete;
  Armed& operator=(const Armed&) = delete;
};

const char* opName(syscalls::Op op) {
  switch (op) {
    case syscalls::Op::pwrite: return "pwrite";
    case syscalls::Op::fdatasync: return "fdatasync";
    case syscalls::Op::fsync: return "fsync";
    case syscalls::Op::rename: return "rename";
    case syscalls::Op::unlink: return "unlink";
    case syscalls::Op::ftruncate: return "ftruncate";
  }
  return "?";
}

TEST_CASE("a crash at every call that changes a file recovers the completed operations") {
  uint64_t seed = envNumber("SWARM_RAFT_STORAGE_SEED", 21);
  uint64_t opCount = envNumber("SWARM_RAFT_STORAGE_CRASH_OPS", 70);
  INFO("seed " << seed << ", " << opCount << " ops (SWARM_RAFT_STORAGE_SEED, "
               << "SWARM_RAFT_STORAGE_CRASH_OPS)");

  // A process crash leaves the page cache intact, so real syncs only cost time here.
  struct SkipSyncs {
    SkipSyncs() { syscalls::skipRealSyncs(true); }
    ~SkipSyncs() { syscalls::skipRealSyncs(false); }
  } skipSyncs;

  // The workload as it stands before each operation.
  std::vector<Workload> before;
  std::vector<Workload::Op> ops;
  Workload work(seed);
  for (uint64_t i = 0; i < opCount; ++i) {
    before.push_back(work);
    ops.push_back(work.next());
  }
  before.push_back(work);

  // A run without a crash, to number the calls.
  std::vector<syscalls::Call> calls;
  {
    TempDir tmp;
    syscalls::record(&calls);
    {
      Armed never(UINT64_MAX, false);
      auto s = Storage::open(tmp.path(), kKey, pointOptions());
      for (auto& op : ops) Workload::apply(s, op);
    }
    syscalls::record(nullptr);
  }
  REQUIRE(calls.size() > 2 * opCount);
  size_t runs = 0;
  uint64_t only = envNumber("SWARM_RAFT_STORAGE_CRASH_POINT", UINT64_MAX);

  for (uint64_t point = 0; point < calls.size(); ++point) {
    if (only != UINT64_MAX && point != only) continue;
    for (bool half : {false, true}) {
      if (half && (calls[point].op != syscalls::Op::pwrite || calls[point].size < 2)) continue;
      ++runs;
      INFO("crash at call " << point << " (" << opName(calls[point].op) << " of "
                            << fs::path(calls[point].path).filename().string()
                            << (half ? ", half written" : "") << ")");
      TempDir tmp;
      auto dir = tmp.path();
      size_t done = 0;
      bool crashed = false;
      {
        Armed armed(point, half);
        try {
          auto s = Storage::open(dir, kKey, pointOptions());
          for (; done < ops.size(); ++done) Workload::apply(s, ops[done]);
        } catch (const StorageError& e) {
          CHECK(e.kind() == StorageError::Kind::io);
        }
        crashed = syscalls::crashed();
      }
      REQUIRE(crashed);
      REQUIRE(done < ops.size());

      std::optional<Workload> now;
      {
        auto s = Storage::open(dir, kKey, pointOptions());
        std::string whyDone, whyInFlight;
        if (matches(s, before[done].model(), whyDone)) {
          now = before[done];
        } else if (matches(s, before[done + 1].model(), whyInFlight)) {
          now = before[done + 1];
        }
        INFO("after " << done << " operations; vs completed: " << whyDone
                      << "; vs in flight: " << whyInFlight);
        REQUIRE(now);
        // Go on from the recovered state, far enough to rotate segments.
        for (int i = 0; i < 25; ++i) Workload::apply(s, now->next());
      }
      auto s = Storage::open(dir, kKey, pointOptions());
      std::string why;
      bool ok = matches(s, now->model(), why);
      INFO("continuing after recovery: " << why);
      REQUIRE(ok);
    }
  }
  INFO(runs << " crash points");
  CHECK(runs > (only == UINT64_MAX ? calls.size() : 0));
}

}  // namespace
}  // namespace swarm::raft::testing
