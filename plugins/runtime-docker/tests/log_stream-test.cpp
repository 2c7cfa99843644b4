// Docker's multiplexed log stream, fed in random splits (seeded; RUNTIME_DOCKER_TEST_SEED replays).
#include "log_stream.h"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <random>

namespace swarm::docker {
namespace {

uint64_t testSeed() {
  const char* env = getenv("RUNTIME_DOCKER_TEST_SEED");
  return env != nullptr ? strtoull(env, nullptr, 10) : 20261125;
}

std::string frame(int stream, const std::string& payload) {
  std::string f(8, '\0');
  f[0] = static_cast<char>(stream);
  size_t n = payload.size();
  f[4] = static_cast<char>(n >> 24);
  f[5] = static_cast<char>(n >> 16);
  f[6] = static_cast<char>(n >> 8);
  f[7] = static_cast<char>(n);
  return f + payload;
}

std::vector<LogEntry> feedInPieces(LogDemuxer& d, const std::string& bytes, std::mt19937_64& rng) {
  std::vector<LogEntry> out;
  size_t at = 0;
  while (at < bytes.size()) {
    size_t n = std::min<size_t>(bytes.size() - at, 1 + rng() % 13);
    for (auto& e : d.feed(std::string_view(bytes).substr(at, n))) out.push_back(e);
    at += n;
  }
  for (auto& e : d.finish()) out.push_back(e);
  return out;
}

TEST_CASE("runtime-docker: logs: frames split anywhere give the same lines, streams and times") {
  uint64_t seed = testSeed();
  INFO("seed " << seed << " (RUNTIME_DOCKER_TEST_SEED)");
  std::string stream = frame(1, "2026-12-04T18:46:48.000000001Z hello\n") +
                       frame(2, "2026-12-04T18:46:48.000000002Z oops\n") +
                       frame(1, "2026-12-04T18:46:49Z " + std::string(300, 'x') + "\n") +
                       frame(1, "2026-12-04T18:46:50Z tail-without-newline");
  for (int round = 0; round < 50; ++round) {
    std::mt19937_64 rng(seed + round);
    LogDemuxer d(false);
    auto lines = feedInPieces(d, stream, rng);
    REQUIRE(lines.size() == 4);
    CHECK(lines[0].data == "hello");
    CHECK_FALSE(lines[0].fromStderr);
    CHECK(lines[0].timestampNanos == 1796410008000000001);
    CHECK(lines[1].data == "oops");
    CHECK(lines[1].fromStderr);
    CHECK(lines[2].data == std::string(300, 'x'));
    CHECK(lines[3].data == "tail-without-newline");
  }
}

TEST_CASE("runtime-docker: logs: a TTY stream is raw stdout with CRLF line ends") {
  LogDemuxer d(true);
  auto lines = d.feed("2026-12-04T18:46:48Z one\r\n2026-12-04T18:46:48Z two\r\n");
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].data == "one");
  CHECK(lines[1].data == "two");
  CHECK_FALSE(lines[1].fromStderr);
}

}  // namespace
}  // namespace swarm::docker
