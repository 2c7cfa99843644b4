// Damaged storage: a torn final record is cut off; every other kind of damage (bit flips, missing
// or truncated files, moved records, a wrong key) is refused with an error naming the file and
// byte offset, and the refused open changes nothing on disk.
#include "storage_util.h"

#include <cstring>

namespace swarm::raft::testing {
namespace {

const auto kKey = testKey(1);

struct Record {
  size_t offset;
  size_t size;
};

// Record boundaries, read independently of the code under test: a 16-byte frame header whose
// first 4 bytes are the body length.
std::vector<Record> recordsOf(const std::string& bytes) {
  std::vector<Record> records;
  size_t offset = 0;
  while (offset + 16 <= bytes.size()) {
    uint32_t len;
    std::memcpy(&len, bytes.data() + offset, 4);
    if (offset + 16 + len > bytes.size()) break;
    records.push_back({offset, 16 + len});
    offset += 16 + len;
  }
  REQUIRE(offset == bytes.size());
  return records;
}

std::string atByte(size_t offset) { return "is corrupt at byte " + std::to_string(offset) + ":"; }

const char* kAdvice = "remove this member from the cluster and re-add it";

TEST_CASE("a torn final record is cut off at every byte offset, and appends continue") {
  TempDir tmp;
  auto dir = tmp.path();
  HardState hs{2, 1, 3};
  {
    auto s = Storage::open(dir, kKey);
    s.save(&hs, makeEntries(1, 3, 2));
    s.save(nullptr, makeEntries(4, 2, 2));
    HardState last{2, 1, 5};
    s.save(&last, makeEntries(6, 2, 2));  // the record that gets torn
  }
  auto segment = dir / "wal-0000000000000001.log";
  auto image = imageOf(dir);
  auto full = image[segment.filename()];
  auto last = recordsOf(full).back();
  std::string before = full.substr(0, last.offset);

  auto check = [&](const std::string& damaged, const std::string& what, bool expectTorn) {
    INFO(what);
    restoreImage(dir, image);
    writeFile(segment, damaged);
    {
      auto s = Storage::open(dir, kKey);
      auto& rec = s.recovered();
      CHECK(rec.hardState == hs);
      CHECK(rec.entries == makeEntries(1, 5, 2));
      REQUIRE(rec.tornTail.has_value() == expectTorn);
      if (expectTorn) {
        CHECK(rec.tornTail->file == segment.string());
        CHECK(rec.tornTail->offset == last.offset);
        CHECK(rec.tornTail->bytesDropped == damaged.size() - last.offset);
      }
      CHECK(fileSize(segment) == last.offset);
      s.save(nullptr, makeEntries(6, 1, 3));
    }
    auto s = Storage::open(dir, kKey);
    CHECK_FALSE(s.recovered().tornTail);
    auto expected = makeEntries(1, 5, 2);
    expected.push_back(makeEntries(6, 1, 3)[0]);
    CHECK(s.recovered().entries == expected);
  };

  for (size_t cut = last.offset; cut < full.size(); ++cut) {
    // The file ends mid-record, or has its full length with zeros where data never landed.
    check(full.substr(0, cut), "cut at byte " + std::to_string(cut), cut > last.offset);
    check(full.substr(0, cut) + std::string(full.size() - cut, '\0'),
          "zeros from byte " + std::to_string(cut), true);
  }
}

// Flips one seeded bit in every byte of `record` of `file` in turn; each open must be refused as
// corruption naming the file and the record's offset, and leave the files as they were.
void flipEveryByte(const fs::path& dir, const DirImage& image, const std::string& file,
                   const Record& record, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (size_t b = record.offset; b < record.offset + record.size; ++b) {
    auto bit = static_cast<int>(rng() % 8);
    INFO("seed " << seed << ", " << file << " byte " << b << " bit " << bit);
    auto damaged = image;
    damaged[file][b] = static_cast<char>(damaged[file][b] ^ (1 << bit));
    restoreImage(dir, damaged);
    expectError([&] { Storage::open(dir, kKey); }, StorageError::Kind::corrupt,
                {(dir / file).string(), atByte(record.offset), kAdvice});
    CHECK(imageOf(dir) == damaged);
  }
}

TEST_CASE("a bit flip anywhere in a middle record is refused, naming file and offset") {
  TempDir tmp;
  auto dir = tmp.path();
  StorageOptions options;
  options.segmentBytes = 1024;
  {
    auto s = Storage::open(dir, kKey, options);
    for (Index i = 1; i <= 30; i += 2) {
      HardState hs{1, 1, i};
      s.save(&hs, makeEntries(i, 2, 1, 40));
    }
    REQUIRE(s.segmentFiles().size() >= 3);
  }
  auto image = imageOf(dir);
  auto seed = envNumber("SWARM_RAFT_STORAGE_SEED", 7);

  SECTION("in a closed segment") {
    auto file = "wal-0000000000000001.log";
    auto records = recordsOf(image[file]);
    REQUIRE(records.size() >= 4);
    flipEveryByte(dir, image, file, records[2], seed);
    flipEveryByte(dir, image, file, records.back(), seed + 1);  // last of a closed segment
  }
  SECTION("in the segment being written, with intact records after it") {
    std::string file = std::prev(image.end(), 1)->first;  // LOCK sorts first; wal-* last
    REQUIRE(file.starts_with("wal-"));
    auto records = recordsOf(image[file]);
    REQUIRE(records.size() >= 3);
    flipEveryByte(dir, image, file, records[records.size() - 2], seed);
  }
  SECTION("in a segment header, which is damage and not a wrong key") {
    auto file = "wal-0000000000000001.log";
    flipEveryByte(dir, image, file, recordsOf(image[file])[0], seed);
  }
}

TEST_CASE("a bit flip in the final record looks like a torn write and is reported as one") {
  TempDir tmp;
  auto dir = tmp.path();
  {
    auto s = Storage::open(dir, kKey);
    s.save(nullptr, makeEntries(1, 2, 1));
    s.save(nullptr, makeEntries(3, 1, 1));
  }
  auto file = dir / "wal-0000000000000001.log";
  auto bytes = readFile(file);
  auto last = recordsOf(bytes).back();
  bytes[last.offset + last.size / 2] ^= 0x10;
  writeFile(file, bytes);
  auto s = Storage::open(dir, kKey);
  REQUIRE(s.recovered().tornTail);
  CHECK(s.recovered().tornTail->offset == last.offset);
  CHECK(s.recovered().entries == makeEntries(1, 2, 1));
}

TEST_CASE("a damaged snapshot file is refused: truncated or bit-flipped at every byte") {
  TempDir tmp;
  auto dir = tmp.path();
  StorageOptions options;
  options.snapshotChunkBytes = 40;
  {
    auto s = Storage::open(dir, kKey, options);
    s.save(nullptr, makeEntries(1, 4, 1));
    s.saveSnapshot(SnapshotMeta{3, 1, {Member{9, "n", "127.0.0.1:1", true}}, {4, 5}},
                   std::string(100, 's'));
  }
  auto image = imageOf(dir);
  const std::string snap = "snap-0000000000000003.snap";
  auto full = image[snap];
  auto records = recordsOf(full);
  REQUIRE(records.size() == 5);  // meta, 3 chunks, end

  for (size_t cut = 0; cut < full.size(); ++cut) {
    INFO("snapshot cut at byte " << cut);
    auto damaged = image;
    damaged[snap] = full.substr(0, cut);
    restoreImage(dir, damaged);
    auto e = expectError([&] { Storage::open(dir, kKey, options); }, StorageError::Kind::corrupt,
                         {(dir / snap).string(), "truncated", kAdvice});
    CHECK(imageOf(dir) == damaged);
  }
  for (auto& record : records) flipEveryByte(dir, image, snap, record, 99);

  // Bytes appended after the end record are damage too.
  auto damaged = image;
  damaged[snap] += std::string(20, 'x');
  restoreImage(dir, damaged);
  expectError([&] { Storage::open(dir, kKey, options); }, StorageError::Kind::corrupt,
              {(dir / snap).string(), atByte(full.size()), "bytes follow"});
}

TEST_CASE("a wrong data key is named as such, never as damage, and changes nothing") {
  TempDir tmp;
  auto dir = tmp.path();
  StorageOptions options;
  options.segmentBytes = 1024;
  auto other = testKey(2);
  {
    auto s = Storage::open(dir, kKey, options);
    expectError([&] { Storage::open(tmp.path("other"), std::vector<uint8_t>(31), options); },
                StorageError::Kind::misuse, {"32 bytes"});
  }
  auto check = [&] {
    auto image = imageOf(dir);
    expectError([&] { Storage::open(dir, other, options); }, StorageError::Kind::wrongKey,
                {"wrong data key for " + dir.string(), "created with"});
    CHECK(imageOf(dir) == image);
  };
  check();  // only a segment header
  {
    auto s = Storage::open(dir, kKey, options);
    for (Index i = 1; i <= 60; ++i) s.save(nullptr, makeEntries(i, 1, 1, 50));
    s.saveSnapshot(SnapshotMeta{50, 1, {}, {}}, "data");
    s.compact(50);
    REQUIRE(s.segmentFiles().front() != "wal-0000000000000001.log");
  }
  check();  // compacted: the first segment is no longer number 1
  auto s = Storage::open(dir, kKey, options);
  CHECK(s.recovered().entries == makeEntries(51, 10, 1, 50));
}

TEST_CASE("missing files are refused: a middle segment, the first ones, a snapshot") {
  TempDir tmp;
  auto dir = tmp.path();
  StorageOptions options;
  options.segmentBytes = 1024;
  {
    auto s = Storage::open(dir, kKey, options);
    for (Index i = 1; i <= 60; ++i) s.save(nullptr, makeEntries(i, 1, 1, 50));
    REQUIRE(s.segmentFiles().size() >= 4);
  }
  auto image = imageOf(dir);

  SECTION("a segment in the middle") {
    fs::remove(dir / "wal-0000000000000002.log");
    expectError([&] { Storage::open(dir, kKey, options); }, StorageError::Kind::corrupt,
                {"wal-0000000000000002.log is missing", dir.string(), kAdvice});
  }
  SECTION("the first segment, with no snapshot to cover it") {
    fs::remove(dir / "wal-0000000000000001.log");
    expectError([&] { Storage::open(dir, kKey, options); }, StorageError::Kind::corrupt,
                {"segments before wal-0000000000000002.log are missing", kAdvice});
  }
  SECTION("the snapshot the log refers to") {
    {
      auto s = Storage::open(dir, kKey, options);
      s.saveSnapshot(SnapshotMeta{30, 1, {}, {}}, "x");
    }
    fs::remove(dir / "snap-000000000000001e.snap");
    expectError([&] { Storage::open(dir, kKey, options); }, StorageError::Kind::corrupt,
                {"records a snapshot at index 30", "snap-000000000000001e.snap is missing"});
  }
  SECTION("the snapshot that covers compacted segments") {
    {
      auto s = Storage::open(dir, kKey, options);
      s.saveSnapshot(SnapshotMeta{40, 1, {}, {}}, "x");
      s.compact(40);
      for (Index i = 61; i <= 100; ++i) s.save(nullptr, makeEntries(i, 1, 1, 50));
      s.compact(40);
    }
    fs::remove(dir / "snap-0000000000000028.snap");
    expectError([&] { Storage::open(dir, kKey, options); }, StorageError::Kind::corrupt,
                {"are missing", "neither a segment nor a snapshot"});
  }
  SECTION("the tail of a closed segment, cut at a record boundary") {
    auto file = dir / "wal-0000000000000002.log";
    auto bytes = image["wal-0000000000000002.log"];
    auto records = recordsOf(bytes);
    writeFile(file, bytes.substr(0, records.back().offset));
    expectError([&] { Storage::open(dir, kKey, options); }, StorageError::Kind::corrupt,
                {(dir / "wal-0000000000000003.log").string(), atByte(0),
                 "records are missing from wal-0000000000000002.log"});
  }
}

TEST_CASE("records moved within or between files fail authentication") {
  TempDir tmp;
  auto dir = tmp.path();
  StorageOptions options;
  options.segmentBytes = 1024;
  {
    auto s = Storage::open(dir, kKey, options);
    for (Index i = 1; i <= 60; ++i) s.save(nullptr, makeEntries(i, 1, 1, 50));  // equal sizes
  }
  auto image = imageOf(dir);
  const std::string one = "wal-0000000000000001.log", two = "wal-0000000000000002.log";
  auto r1 = recordsOf(image[one]);
  auto r2 = recordsOf(image[two]);
  REQUIRE(r1[2].size == r1[3].size);
  REQUIRE(r1[2].size == r2[2].size);

  SECTION("two records swapped") {
    auto damaged = image;
    auto& b = damaged[one];
    std::string a = b.substr(r1[2].offset, r1[2].size);
    std::string c = b.substr(r1[3].offset, r1[3].size);
    b.replace(r1[2].offset, a.size(), c);
    b.replace(r1[3].offset, c.size(), a);
    restoreImage(dir, damaged);
    expectError([&] { Storage::open(dir, kKey, options); }, StorageError::Kind::corrupt,
                {(dir / one).string(), atByte(r1[2].offset), "does not authenticate"});
  }
  SECTION("a record copied from another segment into the same position") {
    auto damaged = image;
    damaged[one].replace(r1[2].offset, r1[2].size, image[two].substr(r2[2].offset, r2[2].size));
    restoreImage(dir, damaged);
    expectError([&] { Storage::open(dir, kKey, options); }, StorageError::Kind::corrupt,
                {(dir / one).string(), atByte(r1[2].offset), "does not authenticate"});
  }
  SECTION("a segment copied over another") {
    auto damaged = image;
    damaged[two] = image[one];
    restoreImage(dir, damaged);
    expectError([&] { Storage::open(dir, kKey, options); }, StorageError::Kind::corrupt,
                {(dir / two).string(), atByte(0), "renamed or copied"});
  }
}

TEST_CASE("a crash between a snapshot file and its log record recovers as if it completed") {
  TempDir tmp;
  auto dir = tmp.path();
  StorageOptions options;
  options.segmentBytes = 1024;
  size_t segments = 0;
  {
    auto s = Storage::open(dir, kKey, options);
    // Fill the segment to its limit, so that the snapshot's record starts a new segment.
    Index i = 1;
    while (fileSize(dir / s.segmentFiles().back()) < options.segmentBytes) {
      s.save(nullptr, makeEntries(i, 1, 1, 60));
      ++i;
    }
    segments = s.segmentFiles().size();
    s.saveSnapshot(SnapshotMeta{8, 2, {}, {}}, "leader's state");  // conflicts: the log goes
    REQUIRE(s.segmentFiles().size() == segments + 1);
  }
  // Remove the snapshot's WAL record (and the segment it began), as if the process died right
  // after the snapshot file's rename.
  fs::remove(dir / ("wal-000000000000000" + std::to_string(segments + 1) + ".log"));
  {
    auto s = Storage::open(dir, kKey, options);
    CHECK(s.recovered().snapshot->index == 8);
    CHECK(s.recovered().entries.empty());
    CHECK(s.lastIndex() == 8);
    CHECK(s.segmentFiles().size() == segments);  // recorded in the full segment, no rotation
    for (Index i = 9; i <= 40; ++i) s.save(nullptr, makeEntries(i, 1, 2, 60));  // rotates
  }
  for (int round = 0; round < 2; ++round) {
    auto s = Storage::open(dir, kKey, options);
    CHECK(s.recovered().entries == makeEntries(9, 32, 2, 60));
    CHECK(s.segmentFiles().size() > segments);
  }
}

TEST_CASE("a crash between an installed snapshot and its log record still replaces the log") {
  TempDir tmp;
  auto dir = tmp.path();
  {
    auto s = Storage::open(dir, kKey);
    s.save(nullptr, makeEntries(1, 10, 1));
    s.installSnapshot(SnapshotMeta{6, 1, {}, {}}, "from the leader");  // matches entry 6
  }
  auto segment = dir / "wal-0000000000000001.log";
  auto bytes = readFile(segment);
  writeFile(segment, bytes.substr(0, recordsOf(bytes).back().offset));
  {
    auto s = Storage::open(dir, kKey);
    CHECK(s.recovered().snapshot->index == 6);
    CHECK(s.recovered().entries.empty());
    s.save(nullptr, makeEntries(7, 3, 2));
  }
  // Recorded now: later entries are not swept away by the snapshot again.
  auto s = Storage::open(dir, kKey);
  CHECK(s.recovered().entries == makeEntries(7, 3, 2));
}

TEST_CASE("leftover temporary files from a crash are removed on open") {
  TempDir tmp;
  auto dir = tmp.path();
  { auto s = Storage::open(dir, kKey); }
  writeFile(dir / "wal-0000000000000002.log.tmp", "half a segment");
  writeFile(dir / "snap-0000000000000005.snap.tmp", "half a snapshot");
  writeFile(dir / "unrelated.txt", "kept");
  auto s = Storage::open(dir, kKey);
  CHECK_FALSE(fs::exists(dir / "wal-0000000000000002.log.tmp"));
  CHECK_FALSE(fs::exists(dir / "snap-0000000000000005.snap.tmp"));
  CHECK(fs::exists(dir / "unrelated.txt"));
  CHECK(s.segmentFiles() == std::vector<std::string>{"wal-0000000000000001.log"});
}

}  // namespace
}  // namespace swarm::raft::testing
