// raft-storage-bench: what durable, encrypted Raft log appends cost. Each save() seals one
// record (XChaCha20-Poly1305 + CRC32C), writes it and fdatasyncs once, so saves/s is also
// syncs/s. Method and output are described in bench/raft-storage/README.md.
#include "storage/storage.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#ifndef SWARM_BENCH_BUILD_TYPE
#define SWARM_BENCH_BUILD_TYPE "unknown"
#endif

namespace swarm::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using raft::Entry;
using raft::HardState;
using raft::Index;
using raft::Storage;
using raft::StorageOptions;

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Options {
  bool quick = false;
  fs::path dir;  // empty: a fresh directory under the system temp directory
  std::vector<size_t> entrySizes{64, 4096};
  std::vector<size_t> batches{1, 64};
  size_t saves = 0;  // 0: per-case defaults
};

const char* kUsage =
    "usage: raft-storage-bench [--quick] [--dir=PATH] [--sizes=64,4096] [--batches=1,64] "
    "[--saves=N]\n"
    "  --dir: where to write (default: a new directory under $TMPDIR, removed afterwards);\n"
    "         put it on the disk you want to measure. --quick: 10x fewer saves.\n";

std::vector<size_t> parseList(std::string_view flag, std::string_view value) {
  std::vector<size_t> out;
  while (!value.empty()) {
    auto comma = value.find(',');
    auto item = value.substr(0, comma);
    char* end = nullptr;
    std::string text(item);
    unsigned long long v = std::strtoull(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || v == 0) {
      throw UsageError(std::string(flag) + " takes positive integers separated by commas, got '" +
                       text + "'");
    }
    out.push_back(v);
    value = comma == std::string_view::npos ? "" : value.substr(comma + 1);
  }
  if (out.empty()) throw UsageError(std::string(flag) + " needs at least one value");
  return out;
}

Options parseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto eq = arg.find('=');
    auto flag = arg.substr(0, eq);
    auto value = eq == std::string_view::npos ? std::string_view() : arg.substr(eq + 1);
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (flag == "--quick") {
      o.quick = true;
    } else if (flag == "--dir") {
      if (value.empty()) throw UsageError("--dir needs a path: --dir=/var/lib/x");
      o.dir = std::string(value);
    } else if (flag == "--sizes") {
      o.entrySizes = parseList(flag, value);
    } else if (flag == "--batches") {
      o.batches = parseList(flag, value);
    } else if (flag == "--saves") {
      o.saves = parseList(flag, value).front();
    } else {
      throw UsageError("unknown option '" + std::string(arg) + "'; see --help");
    }
  }
  return o;
}

struct Result {
  size_t entryBytes = 0;
  size_t batch = 0;
  size_t saves = 0;
  double savesPerSec = 0;    // = fdatasyncs per second
  double entriesPerSec = 0;  // appends per second
  double mbPerSec = 0;       // entry payload bytes
  double p50Us = 0;
  double p99Us = 0;
  double recoverMs = 0;  // Storage::open of what was written
  size_t segments = 0;
};

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

Result runCase(const Options& o, const fs::path& root, size_t entryBytes, size_t batch) {
  Result r;
  r.entryBytes = entryBytes;
  r.batch = batch;
  // Enough saves for a stable rate, capped so a case writes at most ~256 MiB.
  size_t saves = o.saves != 0 ? o.saves : (batch == 1 ? 3000 : 600);
  saves = std::min(saves, std::max<size_t>(50, (256u << 20) / (entryBytes * batch)));
  if (o.quick) saves = std::max<size_t>(20, saves / 10);
  r.saves = saves;

  auto dir = root / ("case-" + std::to_string(entryBytes) + "-" + std::to_string(batch));
  std::vector<uint8_t> key(32, 0x42);
  std::vector<double> latencies;
  latencies.reserve(saves);
  std::string payload(entryBytes, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 131 + 7);
  {
    auto storage = Storage::open(dir, key, StorageOptions{});
    std::vector<Entry> entries(batch);
    for (auto& e : entries) e.data = payload;
    HardState hs{1, 1, 0};
    Index next = 1;
    // Warm-up: a few saves so the first segment's metadata is settled.
    for (int w = 0; w < 5; ++w) {
      for (auto& e : entries) e = Entry{next++, 1, raft::EntryType::normal, payload};
      storage.save(&hs, entries);
    }
    auto start = Clock::now();
    for (size_t i = 0; i < saves; ++i) {
      for (auto& e : entries) {
        e.index = next++;
        e.term = 1;
      }
      hs.commit = next - 1;
      auto t0 = Clock::now();
      storage.save(&hs, entries);
      latencies.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    double secs = std::chrono::duration<double>(Clock::now() - start).count();
    r.savesPerSec = static_cast<double>(saves) / secs;
    r.entriesPerSec = r.savesPerSec * static_cast<double>(batch);
    r.mbPerSec = r.entriesPerSec * static_cast<double>(entryBytes) / (1 << 20);
    r.segments = storage.segmentFiles().size();
  }
  r.p50Us = percentile(latencies, 0.50);
  r.p99Us = percentile(latencies, 0.99);

  auto t0 = Clock::now();
  {
    auto storage = Storage::open(dir, key, StorageOptions{});
    if (storage.recovered().entries.size() != (saves + 5) * batch) {
      throw std::runtime_error("recovered " + std::to_string(storage.recovered().entries.size()) +
                               " entries, expected " + std::to_string((saves + 5) * batch));
    }
  }
  r.recoverMs = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  fs::remove_all(dir);
  return r;
}

double loadAverage() {
  double load = -1;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &load) != 1) load = -1;
    std::fclose(f);
  }
  return load;
}

int run(int argc, char** argv) {
  Options o = parseOptions(argc, argv);
  if (std::string_view(SWARM_BENCH_BUILD_TYPE) != "Release") {
    std::fprintf(stderr, "warning: built as %s, not Release; the figures are not representative\n",
                 SWARM_BENCH_BUILD_TYPE);
  }
  fs::path root = o.dir;
  bool ownRoot = root.empty();
  if (ownRoot) {
    std::string tmpl = (fs::temp_directory_path() / "raft-storage-bench-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    root = tmpl;
  } else {
    fs::create_directories(root);
  }

  double loadBefore = loadAverage();
  std::vector<Result> results;
  for (size_t size : o.entrySizes) {
    for (size_t batch : o.batches) {
      std::fprintf(stderr, "raft-storage-bench: %zu B entries, batch %zu...\n", size, batch);
      results.push_back(runCase(o, root, size, batch));
    }
  }
  double loadAfter = loadAverage();
  if (ownRoot) fs::remove_all(root);

  std::printf("raft-storage-bench (%s build, %s): each save() = 1 sealed record + 1 fdatasync\n",
              SWARM_BENCH_BUILD_TYPE, o.quick ? "quick" : "full");
  std::printf("dir %s, %u CPUs, load average %.2f before, %.2f after\n", root.c_str(),
              std::thread::hardware_concurrency(), loadBefore, loadAfter);
  std::printf("%7s %6s %7s %12s %14s %9s %10s %10s %11s %9s\n", "entry", "batch", "saves",
              "fsyncs/s", "appends/s", "MiB/s", "p50 us", "p99 us", "recover ms", "segments");
  for (auto& r : results) {
    std::printf("%7zu %6zu %7zu %12.0f %14.0f %9.2f %10.0f %10.0f %11.1f %9zu\n", r.entryBytes,
                r.batch, r.saves, r.savesPerSec, r.entriesPerSec, r.mbPerSec, r.p50Us, r.p99Us,
                r.recoverMs, r.segments);
  }
  std::printf("\n{\"bench\":\"raft-storage\",\"record\":\"setup\",\"buildType\":\"%s\","
              "\"quick\":%s,\"cpus\":%u,\"loadBefore\":%.2f,\"loadAfter\":%.2f}\n",
              SWARM_BENCH_BUILD_TYPE, o.quick ? "true" : "false",
              std::thread::hardware_concurrency(), loadBefore, loadAfter);
  for (auto& r : results) {
    std::printf("{\"bench\":\"raft-storage\",\"record\":\"result\",\"entryBytes\":%zu,"
                "\"batch\":%zu,\"saves\":%zu,\"fsyncsPerSec\":%.0f,\"appendsPerSec\":%.0f,"
                "\"mibPerSec\":%.2f,\"p50Us\":%.1f,\"p99Us\":%.1f,\"recoverMs\":%.2f,"
                "\"segments\":%zu}\n",
                r.entryBytes, r.batch, r.saves, r.savesPerSec, r.entriesPerSec, r.mbPerSec,
                r.p50Us, r.p99Us, r.recoverMs, r.segments);
  }
  return 0;
}

}  // namespace
}  // namespace swarm::bench

int main(int argc, char** argv) {
  try {
    return swarm::bench::run(argc, argv);
  } catch (const swarm::bench::UsageError& e) {
    std::fprintf(stderr, "raft-storage-bench: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "raft-storage-bench: %s\n", e.what());
    return 1;
  }
}
