// The Raft wire format: round trips, precise refusals, and a deterministic fuzz in the spirit of
// capnp's fuzz-test.c++ (random bytes, every single-bit flip and random double flips of valid
// messages, every truncation). Whatever decodes must round-trip and must be safe to step().
#include "core_testnet.h"
#include "raft/membership.h"
#include "raft/message.h"
#include "raft/rng.h"

#include <catch2/catch.hpp>

namespace swarm::raft {
namespace {

std::vector<Message> corpus() {
  std::vector<Message> out;
  Message app;
  app.type = MessageType::append;
  app.from = 1;
  app.to = 2;
  app.term = 7;
  app.index = 41;
  app.logTerm = 6;
  app.commit = 40;
  app.entries.push_back(Entry{42, 7, EntryType::normal, "hello"});
  app.entries.push_back(Entry{43, 7, EntryType::empty, ""});
  app.entries.push_back(Entry{44, 7, EntryType::membership, std::string(300, 'x')});
  out.push_back(app);

  Message resp;
  resp.type = MessageType::appendResponse;
  resp.from = 2;
  resp.to = 1;
  resp.term = 7;
  resp.index = 44;
  resp.reject = true;
  resp.rejectHint = 30;
  resp.logTerm = 5;
  out.push_back(resp);

  Message vote;
  vote.type = MessageType::vote;
  vote.from = 3;
  vote.to = 1;
  vote.term = 9;
  vote.index = 100;
  vote.logTerm = 8;
  vote.transfer = true;
  out.push_back(vote);

  Message hb;
  hb.type = MessageType::heartbeat;
  hb.from = 1;
  hb.to = 3;
  hb.term = UINT64_MAX;
  hb.commit = 1ULL << 40;
  hb.context = 12345678901234ULL;
  out.push_back(hb);

  Message snap;
  snap.type = MessageType::snapshot;
  snap.from = 1;
  snap.to = 2;
  snap.term = 4;
  snap.snapshot.index = 500;
  snap.snapshot.term = 3;
  snap.snapshot.members = {Member{1, "n1", "127.0.0.1:1", true}, Member{9, "n9", "127.0.0.1:9", false}};
  snap.snapshot.removed = {4, 5};
  snap.chunkOffset = 1000;
  snap.snapshotSize = 1010;
  snap.chunk = "0123456789";
  snap.lastChunk = true;
  out.push_back(snap);

  Message read;
  read.type = MessageType::readIndexResponse;
  read.from = 1;
  read.to = 2;
  read.term = 4;
  read.index = 77;
  read.context = 3;
  out.push_back(read);

  Message timeout;
  timeout.type = MessageType::timeoutNow;
  timeout.from = 1;
  timeout.to = 2;
  timeout.term = 4;
  out.push_back(timeout);
  return out;
}

// Feeds a decoded message to a live three-node cluster and checks it stays sane.
void stepSafely(testnet::Network& net, Message m, uint64_t salt) {
  MemberId target = 1 + salt % 3;
  m.to = target;
  if (salt % 2 == 0) m.from = 1 + (salt / 3) % 3;
  if (m.from == target) m.from = target % 3 + 1;
  REQUIRE_NOTHROW(net.core(target).step(std::move(m)));
  REQUIRE_NOTHROW(net.deliverAll());
  for (auto& [id, n] : net.nodes) {
    REQUIRE(n.core->commitIndex() <= n.core->lastIndex());
    REQUIRE(n.core->appliedIndex() <= n.core->commitIndex());
  }
}

TEST_CASE("every message type round-trips and encodedSize is exact") {
  for (const Message& m : corpus()) {
    std::string bytes = encode(m);
    CHECK(bytes.size() == encodedSize(m));
    std::string error;
    auto back = decode(bytes, error);
    INFO(messageTypeName(m.type) << ": " << error);
    REQUIRE(back.has_value());
    CHECK(*back == m);
  }
}

TEST_CASE("malformed messages are refused with a reason") {
  std::string error;
  Message app = corpus()[0];
  std::string good = encode(app);

  CHECK_FALSE(decode("", error));
  CHECK(error.find("truncated") != std::string::npos);

  std::string wrongVersion = good;
  wrongVersion[0] = 2;
  CHECK_FALSE(decode(wrongVersion, error));
  CHECK(error.find("unknown version 2") != std::string::npos);

  std::string wrongType = good;
  wrongType[1] = 99;
  CHECK_FALSE(decode(wrongType, error));
  CHECK(error.find("unknown type 99") != std::string::npos);

  std::string badFlags = good;
  badFlags[2] = 1;  // reject flag on an append
  CHECK_FALSE(decode(badFlags, error));
  CHECK(error.find("invalid flags") != std::string::npos);

  CHECK_FALSE(decode(good + "x", error));
  CHECK(error.find("trailing bytes") != std::string::npos);

  CHECK_FALSE(decode(good, error, good.size() - 1));
  CHECK(error.find("exceeds the limit") != std::string::npos);

  // A forged huge entry count must be refused before anything is allocated.
  std::string forged;
  forged += '\1';
  forged += '\1';
  forged += '\0';
  for (int k = 0; k < 8; ++k) forged += '\1';
  forged += "\xff\xff\xff\xff\xff\xff\xff\xff\x7f";
  CHECK_FALSE(decode(forged, error));
  CHECK(error.find("count exceeds message size") != std::string::npos);

  // Entry indexes that would wrap around.
  Message wrap = app;
  wrap.index = UINT64_MAX - 1;
  wrap.entries.resize(2);
  CHECK_FALSE(decode(encode(wrap), error));
  CHECK(error.find("overflow") != std::string::npos);

  // A snapshot chunk that claims to lie beyond the snapshot.
  Message snap = corpus()[4];
  snap.snapshotSize = 5;
  snap.lastChunk = false;
  CHECK_FALSE(decode(encode(snap), error));
  CHECK(error.find("chunk extends past") != std::string::npos);

  // An overlong varint.
  std::string overlong = good.substr(0, 3) + std::string(10, '\x80') + '\1';
  CHECK_FALSE(decode(overlong, error));
  CHECK(error.find("varint") != std::string::npos);
}

TEST_CASE("every truncation of a valid message is refused") {
  for (const Message& m : corpus()) {
    std::string bytes = encode(m);
    for (size_t n = 0; n < bytes.size(); ++n) {
      std::string error;
      INFO(messageTypeName(m.type) << " truncated to " << n);
      CHECK_FALSE(decode(std::string_view(bytes).substr(0, n), error));
      CHECK_FALSE(error.empty());
    }
  }
}

TEST_CASE("fuzz: bit flips of valid messages never crash and what decodes is safe to step") {
  testnet::Network net({1, 2, 3});
  net.elect(1);
  uint64_t decodedCount = 0, refused = 0, salt = 0;
  for (const Message& m : corpus()) {
    std::string bytes = encode(m);
    // Every single-bit flip.
    for (size_t bit = 0; bit < bytes.size() * 8; ++bit) {
      std::string flipped = bytes;
      flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
      std::string error;
      auto got = decode(flipped, error);
      if (!got) {
        ++refused;
        REQUIRE_FALSE(error.empty());
        continue;
      }
      ++decodedCount;
      INFO(messageTypeName(m.type) << " bit " << bit);
      REQUIRE(decode(encode(*got)) == got);
      stepSafely(net, std::move(*got), ++salt);
    }
  }
  // Random double flips over many seeds.
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    Rng rng(seed);
    std::vector<Message> msgs = corpus();
    std::string bytes = encode(msgs[rng.below(msgs.size())]);
    for (int k = 0; k < 2; ++k) {
      size_t bit = rng.below(bytes.size() * 8);
      bytes[bit / 8] = static_cast<char>(bytes[bit / 8] ^ (1 << (bit % 8)));
    }
    INFO("seed " << seed);
    std::string error;
    auto got = decode(bytes, error);
    if (got) {
      REQUIRE(decode(encode(*got)) == got);
      stepSafely(net, std::move(*got), seed);
    }
  }
  CHECK(decodedCount > 0);
  CHECK(refused > 0);
}

TEST_CASE("fuzz: random bytes never crash the decoder") {
  uint64_t decodedCount = 0;
  for (uint64_t seed = 1; seed <= 20000; ++seed) {
    Rng rng(seed);
    size_t len = rng.below(64);
    std::string bytes(len, '\0');
    for (char& c : bytes) c = static_cast<char>(rng.next());
    // Half of the inputs get a plausible header so the fuzz reaches the bodies.
    if (len >= 3 && seed % 2 == 0) {
      bytes[0] = 1;
      bytes[1] = static_cast<char>(1 + rng.below(13));
      bytes[2] = 0;
    }
    std::string error;
    auto got = decode(bytes, error);
    INFO("seed " << seed);
    if (got) {
      ++decodedCount;
      REQUIRE(decode(encode(*got)) == got);
    } else {
      REQUIRE_FALSE(error.empty());
    }
  }
  CHECK(decodedCount > 0);
}

TEST_CASE("membership changes round-trip and refuse garbage") {
  MembershipChange c{ChangeKind::addLearner, Member{7, "n7", "127.0.0.1:7", false}, {}};
  std::string error;
  auto back = decodeChange(encodeChange(c), error);
  REQUIRE(back.has_value());
  CHECK(*back == c);

  MembershipChange boot{ChangeKind::bootstrap, {}, {Member{1, "a", "x", true}, Member{2, "b", "y", true}}};
  back = decodeChange(encodeChange(boot), error);
  REQUIRE(back.has_value());
  CHECK(*back == boot);

  std::string bytes = encodeChange(c);
  for (size_t n = 0; n < bytes.size(); ++n) CHECK_FALSE(decodeChange(bytes.substr(0, n), error));
  bytes[1] = 42;
  CHECK_FALSE(decodeChange(bytes, error));
  CHECK(error.find("unknown kind") != std::string::npos);
}

}  // namespace
}  // namespace swarm::raft
