// The durability contract, observed at the system-call boundary (storage_syscalls.h): which
// file each fdatasync/fsync was for, in what order, and how large the file was by then. A kill -9
// test cannot see a missing sync (the page cache survives the process); this can.
#include "storage_syscalls.h"
#include "storage_util.h"

namespace swarm::raft::testing {
namespace {

struct Sync {
  std::string path;
  bool data = false;  // fdatasync (true) or fsync (false)
  uint64_t size = 0;  // the file's size when it was synced
};

const auto kKey = testKey(4);

// Records the syncs made while it lives.
class Recording {
 public:
  Recording() { syscalls::record(&calls_); }
  ~Recording() { syscalls::record(nullptr); }
  std::vector<Sync> take() {
    std::vector<Sync> syncs;
    writes_ = 0;
    for (auto& c : calls_) {
      if (c.op == syscalls::Op::pwrite) ++writes_;
      if (c.op == syscalls::Op::fdatasync || c.op == syscalls::Op::fsync) {
        syncs.push_back({c.path, c.op == syscalls::Op::fdatasync, c.size});
      }
    }
    calls_.clear();
    return syncs;
  }
  size_t writesTaken() const { return writes_; }  // pwrites among the calls take() returned

 private:
  std::vector<syscalls::Call> calls_;
  size_t writes_ = 0;
};

std::string describe(const std::vector<Sync>& syncs) {
  std::string out;
  for (auto& s : syncs) {
    out += (s.data ? "fdatasync " : "fsync ") + s.path + " (" + std::to_string(s.size) + ")\n";
  }
  return out;
}

TEST_CASE("every save is one fdatasync of the segment, after the whole record is written") {
  TempDir tmp;
  auto dir = tmp.path();
  auto s = Storage::open(dir, kKey);
  auto segment = (dir / "wal-0000000000000001.log").string();
  Recording rec;

  HardState hs{1, 1, 0};
  s.save(&hs, makeEntries(1, 64, 1, 4096));
  auto syncs = rec.take();
  INFO(describe(syncs));
  REQUIRE(syncs.size() == 1);
  CHECK(rec.writesTaken() == 1);  // 64 entries, one record, one write
  CHECK(syncs[0].path == segment);
  CHECK(syncs[0].data);
  CHECK(syncs[0].size == fileSize(segment));  // written in full before the sync

  for (Index i = 65; i <= 70; ++i) s.save(nullptr, makeEntries(i, 1, 1));
  CHECK(rec.take().size() == 6);
  s.save(nullptr, {});  // nothing to persist: no sync
  CHECK(rec.take().empty());
}

TEST_CASE("new files are synced, then renamed, then their directory is synced") {
  TempDir tmp;
  auto dir = tmp.path();
  StorageOptions options;
  options.segmentBytes = 1024;
  Recording rec;

  auto s = Storage::open(dir, kKey, options);
  {
    auto syncs = rec.take();
    INFO(describe(syncs));
    // The new directory's parent, the first segment (under its temporary name), the directory.
    REQUIRE(syncs.size() == 3);
    CHECK(syncs[0].path == dir.parent_path().string());
    CHECK(syncs[1].path == (dir / "wal-0000000000000001.log.tmp").string());
    CHECK(syncs[1].size > 0);
    CHECK(syncs[2].path == dir.string());
  }

  Index i = 1;
  while (s.segmentFiles().size() == 1) {
    s.save(nullptr, makeEntries(i, 1, 1, 100));
    ++i;
  }
  {
    auto syncs = rec.take();
    INFO(describe(syncs));
    REQUIRE(syncs.size() >= 3);
    // The save that rotated: new segment synced, directory synced, then the record itself.
    auto n = syncs.size();
    CHECK(syncs[n - 3].path == (dir / "wal-0000000000000002.log.tmp").string());
    CHECK(syncs[n - 2].path == dir.string());
    CHECK(syncs[n - 1].path == (dir / "wal-0000000000000002.log").string());
  }

  s.saveSnapshot(SnapshotMeta{i - 1, 1, {}, {}}, std::string(5000, 'x'));
  {
    auto syncs = rec.take();
    INFO(describe(syncs));
    REQUIRE(syncs.size() == 3);
    CHECK(syncs[0].path.ends_with(".snap.tmp"));
    CHECK(syncs[0].size > 5000);
    CHECK(syncs[1].path == dir.string());
    CHECK(syncs[2].path == (dir / "wal-0000000000000002.log").string());  // its marker
  }

  s.compact(i - 1);
  {
    auto syncs = rec.take();
    INFO(describe(syncs));
    REQUIRE(syncs.size() == 1);
    CHECK(syncs[0].path == dir.string());
    CHECK_FALSE(fs::exists(dir / "wal-0000000000000001.log"));
  }
}

TEST_CASE("recovery syncs the segment it truncates, and only then") {
  TempDir tmp;
  auto dir = tmp.path();
  { auto s = Storage::open(dir, kKey); s.save(nullptr, makeEntries(1, 3, 1)); }
  auto segment = dir / "wal-0000000000000001.log";
  Recording rec;
  { auto s = Storage::open(dir, kKey); }
  CHECK(rec.take().empty());  // a clean reopen writes nothing

  auto bytes = readFile(segment);
  writeFile(segment, bytes.substr(0, bytes.size() - 5));
  auto s = Storage::open(dir, kKey);
  auto syncs = rec.take();
  INFO(describe(syncs));
  REQUIRE(syncs.size() == 1);
  CHECK(syncs[0].path == segment.string());
  CHECK(syncs[0].size == fileSize(segment));
  CHECK(s.recovered().tornTail);
}

}  // namespace
}  // namespace swarm::raft::testing
