// Storage round trips: what is saved is what a reopen recovers, through suffix overwrites,
// snapshots, compaction and segment rotation; plus refusals of bad calls.
#include "storage_util.h"

#include "storage/crc32c.h"

#include <sys/wait.h>

#include <cstring>

namespace swarm::raft::testing {
namespace {

const auto kKey = testKey(1);

Storage openAt(const fs::path& dir, StorageOptions options = {}) {
  return Storage::open(dir, kKey, options);
}

TEST_CASE("crc32c matches the Castagnoli check values") {
  using storage::crc32c;
  CHECK(crc32c(std::string_view("123456789")) == 0xE3069283u);
  CHECK(crc32c(std::string_view("")) == 0u);
  std::string zeros(32, '\0');
  CHECK(crc32c(zeros) == 0x8A9136AAu);  // RFC 3720 B.4
  // Incremental == one shot, across the 8-byte fast path and the byte tail.
  std::string text = "The quick brown fox jumps over the lazy dog, twice over.";
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    auto a = std::string_view(text).substr(0, cut);
    auto b = std::string_view(text).substr(cut);
    CHECK(crc32c(b, crc32c(a)) == crc32c(text));
  }
}

TEST_CASE("a fresh directory recovers empty, then hard state and entries round-trip") {
  TempDir tmp;
  auto dir = tmp.path();
  {
    auto s = openAt(dir);
    auto& rec = s.recovered();
    CHECK(rec.hardState == HardState{});
    CHECK_FALSE(rec.snapshot);
    CHECK(rec.entries.empty());
    CHECK(rec.removed.empty());
    CHECK_FALSE(rec.tornTail);
    CHECK(s.lastIndex() == 0);
    CHECK(s.firstIndex() == 1);
    CHECK((fs::status(dir).permissions() & fs::perms::others_all) == fs::perms::none);

    HardState hs{3, 7, 2};
    auto entries = makeEntries(1, 5, 3);
    entries[2].type = EntryType::membership;
    entries[3].type = EntryType::empty;
    entries[4].data = std::string("\0\xff binary \0", 11);
    s.save(&hs, entries);
    HardState hs2{3, 7, 5};
    s.save(&hs2, {});  // hard state alone
    s.save(nullptr, makeEntries(6, 1, 3));  // entries alone
    CHECK(s.lastIndex() == 6);
    CHECK(s.lastTerm() == 3);
  }
  auto s = openAt(dir);
  auto rec = s.takeRecovered();
  CHECK(rec.hardState == HardState{3, 7, 5});
  auto expected = makeEntries(1, 5, 3);
  expected[2].type = EntryType::membership;
  expected[3].type = EntryType::empty;
  expected[4].data = std::string("\0\xff binary \0", 11);
  expected.push_back(makeEntries(6, 1, 3)[0]);
  CHECK(rec.entries == expected);
  CHECK(s.recovered().entries.empty());  // moved out
  CHECK(s.lastIndex() == 6);
}

TEST_CASE("nothing stored is readable without the key") {
  TempDir tmp;
  auto dir = tmp.path();
  const std::string secret = "plaintext-that-must-not-appear-on-disk";
  {
    auto s = openAt(dir);
    std::vector<Entry> entries{makeEntry(1, 1, secret)};
    s.save(nullptr, entries);
    SnapshotMeta meta{1, 1, {Member{1, "node-" + secret, "127.0.0.1:1", true}}, {}};
    s.saveSnapshot(meta, secret + secret);
  }
  for (auto& [name, bytes] : imageOf(dir)) {
    INFO(name);
    CHECK(bytes.find(secret) == std::string::npos);
    CHECK(bytes.find("node-") == std::string::npos);
  }
}

TEST_CASE("entries that overlap the log replace its suffix") {
  TempDir tmp;
  auto dir = tmp.path();
  {
    auto s = openAt(dir);
    s.save(nullptr, makeEntries(1, 10, 1));
    s.save(nullptr, makeEntries(7, 2, 2));  // conflict at 7: 7..10 of term 1 go away
    CHECK(s.lastIndex() == 8);
    CHECK(s.lastTerm() == 2);
    s.save(nullptr, makeEntries(9, 3, 2));
    s.save(nullptr, makeEntries(3, 1, 3));  // shrinks the log to 3 entries
    CHECK(s.lastIndex() == 3);
    CHECK(s.lastTerm() == 3);
  }
  auto s = openAt(dir);
  auto expected = makeEntries(1, 2, 1);
  expected.push_back(makeEntries(3, 1, 3)[0]);
  CHECK(s.recovered().entries == expected);
  CHECK(s.lastIndex() == 3);
  CHECK(s.lastTerm() == 3);
}

TEST_CASE("snapshots: data and meta round-trip, the log restarts after them") {
  TempDir tmp;
  auto dir = tmp.path();
  std::string data(300000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31 + i / 7);
  SnapshotMeta meta{6, 2,
                    {Member{11, "node-a", "127.0.0.1:4001", true},
                     Member{12, "node-b", "127.0.0.1:4002", false}},
                    {3, 9, 1ull << 60}};
  StorageOptions options;
  options.snapshotChunkBytes = 64 * 1024;  // several chunks
  {
    auto s = openAt(dir, options);
    s.save(nullptr, makeEntries(1, 4, 1));
    s.save(nullptr, makeEntries(5, 6, 2));
    s.saveSnapshot(meta, data);
    CHECK(s.firstIndex() == 7);
    CHECK(s.lastIndex() == 10);  // the log has entry 6 at term 2: 7..10 stay
    CHECK(s.loadSnapshotData() == data);
    s.save(nullptr, makeEntries(11, 1, 2));
  }
  {
    auto s = openAt(dir, options);
    auto& rec = s.recovered();
    REQUIRE(rec.snapshot);
    CHECK(*rec.snapshot == meta);
    CHECK(rec.entries == [] {
      auto e = makeEntries(7, 4, 2);
      e.push_back(makeEntries(11, 1, 2)[0]);
      return e;
    }());
    CHECK(s.loadSnapshotData() == data);
    std::string streamed;
    size_t chunks = 0;
    s.readSnapshot([&](std::string_view chunk) {
      streamed.append(chunk);
      ++chunks;
    });
    CHECK(streamed == data);
    CHECK(chunks == 5);
    expectError([&] { s.save(nullptr, makeEntries(6, 1, 2)); }, StorageError::Kind::misuse,
                {"at or below the snapshot"});
  }
}

TEST_CASE("a snapshot whose last entry conflicts with the log drops the whole log (Raft §7)") {
  TempDir tmp;
  auto dir = tmp.path();
  {
    auto s = openAt(dir);
    s.save(nullptr, makeEntries(1, 10, 1));
    s.saveSnapshot(SnapshotMeta{8, 3, {}, {}}, "from the leader");  // entry 8 is term 1, not 3
    CHECK(s.firstIndex() == 9);
    CHECK(s.lastIndex() == 8);
    CHECK(s.lastTerm() == 3);
    s.saveSnapshot(SnapshotMeta{20, 4, {}, {}}, "beyond the log");
    CHECK(s.lastIndex() == 20);
    s.save(nullptr, makeEntries(21, 2, 4));
  }
  auto s = openAt(dir);
  CHECK(s.recovered().snapshot->index == 20);
  CHECK(s.recovered().entries == makeEntries(21, 2, 4));
  CHECK(s.loadSnapshotData() == "beyond the log");
  expectError([&] { s.saveSnapshot(SnapshotMeta{19, 4, {}, {}}, "older"); },
              StorageError::Kind::misuse, {"older than the newest snapshot"});
}

TEST_CASE("an installed snapshot replaces the whole log, even where the log matches it") {
  TempDir tmp;
  auto dir = tmp.path();
  {
    auto s = openAt(dir);
    s.save(nullptr, makeEntries(1, 10, 1));
    s.installSnapshot(SnapshotMeta{5, 1, {}, {}}, "received");  // entry 5 has term 1
    CHECK(s.lastIndex() == 5);
    CHECK(s.lastTerm() == 1);
    s.save(nullptr, makeEntries(6, 2, 2));
  }
  auto s = openAt(dir);
  CHECK(s.recovered().entries == makeEntries(6, 2, 2));
  CHECK(s.loadSnapshotData() == "received");
}

TEST_CASE("a snapshot's effect on the log replays as recorded, even below the oldest segment") {
  // The log's oldest segment starts at index L; later a snapshot received at I < L replaces the
  // log and the next segment starts at I. Replay cannot see entry I any more, so it must apply
  // the recorded effect rather than decide again.
  TempDir tmp;
  auto dir = tmp.path();
  StorageOptions options;
  options.segmentBytes = 1024;
  ModelStorage model;
  auto s = openAt(dir, options);
  auto save = [&](const HardState* hs, std::vector<Entry> entries) {
    s.save(hs, entries);
    model.save(hs, entries);
  };
  auto saveUntilRotation = [&](Term term) {
    auto segments = s.segmentFiles().size();
    while (s.segmentFiles().size() == segments) save(nullptr, makeEntries(s.lastIndex() + 1, 1, term, 60));
  };
  saveUntilRotation(1);
  saveUntilRotation(1);
  Index oldestStart = s.lastIndex() - 1;  // where the segment to be kept oldest begins
  saveUntilRotation(1);
  save(nullptr, makeEntries(s.lastIndex() + 1, 3, 1, 60));

  Index installAt = oldestStart - 3;
  SnapshotMeta received{installAt, 2, {}, {}};
  s.installSnapshot(received, "received");
  model.saveSnapshot(received, "received", SnapshotKind::received);
  auto segments = s.segmentFiles().size();
  HardState hs{2, 0, 0};
  while (s.segmentFiles().size() == segments) save(&hs, {});  // a segment starting at installAt
  save(nullptr, makeEntries(installAt + 1, 6, 2, 60));

  SnapshotMeta taken{oldestStart, 2, {}, {}};
  s.saveSnapshot(taken, "taken");
  model.saveSnapshot(taken, "taken");
  s.compact(oldestStart);
  CHECK(s.segmentFiles().front() != "wal-0000000000000001.log");

  for (int round = 0; round < 2; ++round) {
    { auto closing = std::move(s); }  // one owner at a time
    s = openAt(dir, options);
    std::string why;
    bool ok = matches(s, model, why);
    INFO(why);
    CHECK(ok);
  }
}

TEST_CASE("segments rotate at the size limit, and one save is one record") {
  TempDir tmp;
  auto dir = tmp.path();
  StorageOptions options;
  options.segmentBytes = 4096;
  HardState hs{1, 1, 0};
  {
    auto s = openAt(dir, options);
    for (Index i = 1; i <= 200; i += 4) {
      hs.commit = i;
      s.save(&hs, makeEntries(i, 4, 1, 100));
    }
    CHECK(s.segmentFiles().size() >= 6);
    // A segment is closed once it reaches the limit, so none exceeds it by more than one save.
    for (auto& name : s.segmentFiles()) CHECK(fileSize(dir / name) < 4096 + 1024);
    // A batch bigger than a segment still goes in as one record.
    s.save(nullptr, makeEntries(201, 100, 1, 100));
  }
  auto s = openAt(dir, options);
  CHECK(s.segmentFiles().front() == "wal-0000000000000001.log");
  // Every segment is its header plus whole saves: 51 saves, 51 records besides the headers.
  size_t records = 0;
  for (auto& name : s.segmentFiles()) {
    auto bytes = readFile(dir / name);
    for (size_t offset = 0; offset < bytes.size(); ++records) {
      uint32_t len;
      std::memcpy(&len, bytes.data() + offset, 4);
      offset += 16 + len;
    }
  }
  CHECK(records - s.segmentFiles().size() == 51);
  CHECK(s.recovered().hardState == hs);
  CHECK(s.recovered().entries == [] {
    auto e = makeEntries(1, 200, 1, 100);
    auto more = makeEntries(201, 100, 1, 100);
    e.insert(e.end(), more.begin(), more.end());
    return e;
  }());
  CHECK(fileSize(dir / s.segmentFiles().back()) > 10000);
}

TEST_CASE("compaction deletes only whole segments below the point and old snapshots are pruned") {
  TempDir tmp;
  auto dir = tmp.path();
  StorageOptions options;
  options.segmentBytes = 2048;
  options.snapshotsToKeep = 2;
  ModelStorage model;
  {
    auto s = openAt(dir, options);
    for (Index i = 1; i <= 300; i += 3) {
      auto batch = makeEntries(i, 3, 1 + i / 100, 60);
      s.save(nullptr, batch);
      model.save(nullptr, batch);
    }
    auto before = s.segmentFiles();
    REQUIRE(before.size() > 8);
    expectError([&] { s.compact(10); }, StorageError::Kind::misuse, {"beyond the newest snapshot"});

    for (Index snap : {100, 150, 200}) {
      SnapshotMeta meta{snap, *model.termAt(snap), {}, {}};
      std::string data = "state at " + std::to_string(snap);
      s.saveSnapshot(meta, data);
      model.saveSnapshot(meta, data);
    }
    CHECK(s.snapshotFiles() ==
          std::vector<std::string>{"snap-0000000000000096.snap", "snap-00000000000000c8.snap"});
    CHECK_FALSE(fs::exists(dir / "snap-0000000000000064.snap"));

    s.compact(180);
    auto after = s.segmentFiles();
    CHECK(after.size() < before.size());
    CHECK(after.back() == before.back());
    // Every deleted segment held only entries <= 180: the first kept one starts at or below it
    // and the one before it started... checked by recovering below.
    CHECK(fs::exists(dir / after.front()));
    CHECK_FALSE(fs::exists(dir / before.front()));

    s.compact(180);  // idempotent
    CHECK(s.segmentFiles() == after);
    s.save(nullptr, makeEntries(301, 1, 9));
    model.save(nullptr, makeEntries(301, 1, 9));
  }
  auto s = openAt(dir, options);
  std::string why;
  bool ok = matches(s, model, why);
  INFO(why);
  CHECK(ok);
  CHECK(s.recovered().entries.front().index == 201);
}

TEST_CASE("removed member IDs and the hard state survive compaction of their segments") {
  TempDir tmp;
  auto dir = tmp.path();
  StorageOptions options;
  options.segmentBytes = 1024;
  {
    auto s = openAt(dir, options);
    HardState hs{5, 2, 1};
    s.save(&hs, makeEntries(1, 1, 5));
    s.markRemoved(42);
    s.markRemoved(7);
    s.markRemoved(42);  // once is enough
    for (Index i = 2; i <= 100; ++i) s.save(nullptr, makeEntries(i, 1, 5, 80));
    s.saveSnapshot(SnapshotMeta{100, 5, {}, {}}, "s");
    s.compact(100);
    CHECK(s.segmentFiles().size() == 1);
  }
  auto s = openAt(dir, options);
  CHECK(s.recovered().removed == std::vector<MemberId>{7, 42});
  CHECK(s.recovered().hardState == HardState{5, 2, 1});
  CHECK(s.recovered().entries.empty());
  CHECK(s.lastIndex() == 100);
  CHECK(s.lastTerm() == 5);
}

TEST_CASE("a streamed snapshot is written in chunks and an abandoned one leaves nothing") {
  TempDir tmp;
  auto dir = tmp.path();
  StorageOptions options;
  options.snapshotChunkBytes = 1000;
  auto s = openAt(dir, options);
  s.save(nullptr, makeEntries(1, 5, 1));
  {
    auto writer = s.beginSnapshot(SnapshotMeta{3, 1, {}, {}}, SnapshotKind::taken);
    writer.write("abandoned");
    CHECK(fs::exists(dir / "snap-0000000000000003.snap.tmp"));
  }
  CHECK_FALSE(fs::exists(dir / "snap-0000000000000003.snap.tmp"));
  CHECK_FALSE(s.snapshot());

  std::string expected;
  auto writer = s.beginSnapshot(SnapshotMeta{4, 1, {}, {}}, SnapshotKind::taken);
  for (int i = 0; i < 50; ++i) {
    std::string piece(static_cast<size_t>(i * 37 % 1500), static_cast<char>('A' + i % 26));
    writer.write(piece);
    expected += piece;
  }
  writer.commit();
  CHECK(s.snapshot()->index == 4);
  CHECK(s.loadSnapshotData() == expected);
  std::vector<size_t> sizes;
  s.readSnapshot([&](std::string_view chunk) { sizes.push_back(chunk.size()); });
  for (size_t i = 0; i + 1 < sizes.size(); ++i) CHECK(sizes[i] == 1000);
}

TEST_CASE("bad calls are refused with a clear error and change nothing") {
  TempDir tmp;
  auto dir = tmp.path();
  expectError([&] { Storage::open(dir, std::vector<uint8_t>(16), {}); },
              StorageError::Kind::misuse, {"32 bytes, got 16"});
  StorageOptions tiny;
  tiny.segmentBytes = 10;
  expectError([&] { Storage::open(dir, kKey, tiny); }, StorageError::Kind::misuse,
              {"segmentBytes"});

  auto s = openAt(dir);
  s.save(nullptr, makeEntries(1, 3, 1));
  expectError([&] { s.save(nullptr, makeEntries(5, 1, 1)); }, StorageError::Kind::misuse,
              {"start at index 5", "ends at index 3"});
  auto gap = makeEntries(4, 3, 1);
  gap[2].index = 9;
  expectError([&] { s.save(nullptr, gap); }, StorageError::Kind::misuse, {"contiguous"});
  expectError([&] { s.loadSnapshotData(); }, StorageError::Kind::misuse, {"no snapshot"});
  expectError([&] { s.saveSnapshot(SnapshotMeta{0, 0, {}, {}}, ""); }, StorageError::Kind::misuse,
              {"index 0"});
  expectError([&] { openAt(dir); }, StorageError::Kind::misuse,
              {"in use by another process", "LOCK"});
  CHECK(s.lastIndex() == 3);

  auto file = tmp.path("plain-file");
  writeFile(file, "x");
  expectError([&] { openAt(file); }, StorageError::Kind::misuse, {"not a directory"});
}

TEST_CASE("the directory lock is released when the storage closes or its process dies") {
  TempDir tmp;
  auto dir = tmp.path();
  { auto s = openAt(dir); }
  { auto s = openAt(dir); }
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    try {
      auto s = openAt(dir);
      char c = 1;
      if (::write(ready[1], &c, 1) != 1) ::_exit(3);
      ::pause();
    } catch (...) {
    }
    ::_exit(2);
  }
  ::close(ready[1]);
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);  // the child holds the storage now
  ::close(ready[0]);
  expectError([&] { openAt(dir); }, StorageError::Kind::misuse, {"in use by another process"});
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFSIGNALED(status));
  auto s = openAt(dir);
  CHECK(s.lastIndex() == 0);
}

TEST_CASE("random operations match the model across reopens (seeded)") {
  auto seeds = envNumber("SWARM_RAFT_STORAGE_SEED", 0) != 0
                   ? std::vector<uint64_t>{envNumber("SWARM_RAFT_STORAGE_SEED", 0)}
                   : std::vector<uint64_t>{11, 12, 13};
  for (auto seed : seeds) {
    INFO("seed " << seed << " (replay with SWARM_RAFT_STORAGE_SEED=" << seed << ")");
    TempDir tmp;
    auto dir = tmp.path();
    StorageOptions options;
    options.segmentBytes = 8192;
    options.snapshotChunkBytes = 700;
    Workload work(seed);
    std::mt19937_64 reopen(seed ^ 0x5eed);
    auto s = std::make_unique<Storage>(openAt(dir, options));
    for (int i = 0; i < 400; ++i) {
      auto op = work.next();
      Workload::apply(*s, op);
      if (reopen() % 40 == 0) {
        s.reset();
        s = std::make_unique<Storage>(openAt(dir, options));
        std::string why;
        bool ok = matches(*s, work.model(), why);
        INFO("after op " << i << ": " << why);
        REQUIRE(ok);
      }
    }
    s.reset();
    auto last = openAt(dir, options);
    std::string why;
    bool ok = matches(last, work.model(), why);
    INFO(why);
    CHECK(ok);
  }
}

}  // namespace
}  // namespace swarm::raft::testing
