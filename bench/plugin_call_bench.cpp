// plugin_call_bench: what one plugin call costs through the real boundary, against a direct C++
// virtual call. Method and output are described in bench/README.md.
//
// Modes:
//   direct          DirectEcho::inspect(), a virtual call into another translation unit
//   raw-socketpair  reference: the same echo server on a second thread behind a socketpair, with
//                   plain Cap'n Proto two-party RPC and none of the host (no Boost.DLL, no
//                   PluginInstance); the difference to in-process is what the host adds
//   in-process      bench-echo.so through PluginInstance::start, isolation = in-process
//   out-of-process  bench-echo.so through PluginInstance::start, isolation = out-of-process
#include "direct_echo.h"

#include "config.h"
#include "errors.h"
#include "logging.h"
#include "plugin_host.h"

#include <swarm/schema/runtime.capnp.h>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>
#include <kj/debug.h>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#ifndef SWARM_BENCH_ECHO_PLUGIN
#define SWARM_BENCH_ECHO_PLUGIN "bench-echo.so"
#endif
#ifndef SWARM_BENCH_RUNNER
#define SWARM_BENCH_RUNNER ""
#endif
#ifndef SWARM_BENCH_BUILD_TYPE
#define SWARM_BENCH_BUILD_TYPE "unknown"
#endif

namespace swarm::bench {

namespace {

using Clock = std::chrono::steady_clock;

constexpr double kTargetInProcessP50Us = 60;
constexpr double kTargetInProcessPipelined = 50000;

enum class Mode { direct, rawSocketpair, inProcess, outOfProcess };
constexpr Mode kAllModes[] = {Mode::direct, Mode::rawSocketpair, Mode::inProcess,
                              Mode::outOfProcess};

const char* modeName(Mode mode) {
  switch (mode) {
    case Mode::direct: return "direct";
    case Mode::rawSocketpair: return "raw-socketpair";
    case Mode::inProcess: return "in-process";
    case Mode::outOfProcess: return "out-of-process";
  }
  return "?";
}

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Options {
  bool quick = false;
  size_t warmup = 2000;
  size_t calls = 100000;      // sequential, measured
  size_t pipeCalls = 200000;  // pipelined, measured
  size_t window = 64;         // calls in flight when pipelined
  size_t batch = 100;         // direct calls per timed sample: one is too short for the clock
  std::vector<size_t> payloads{64, 4096};
  std::vector<Mode> modes{std::begin(kAllModes), std::end(kAllModes)};
  std::string pluginPath = SWARM_BENCH_ECHO_PLUGIN;
  std::string runnerPath = SWARM_BENCH_RUNNER;
};

struct Result {
  Mode mode;
  size_t payload;
  double p50Us, p99Us, seqCallsPerSec, pipeCallsPerSec;
  double startMs;  // start() + configure(); 0 where nothing starts
};

const char* kUsage =
    "usage: plugin-call-bench [--quick] [--modes=LIST] [--payloads=LIST] [--calls=N]\n"
    "                         [--warmup=N] [--pipe-calls=N] [--window=N] [--plugin=PATH]\n"
    "                         [--runner=PATH]\n"
    "Times a plugin call (Runtime.inspect echo) directly, over a raw socketpair, in process and\n"
    "out of process. LIST is comma-separated; modes: direct, raw-socketpair, in-process,\n"
    "out-of-process; payloads in bytes. --quick: 10x fewer calls.\n";

size_t parseCount(std::string_view flag, std::string_view value, size_t min) {
  size_t n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || end != value.data() + value.size() || n < min) {
    throw UsageError(std::string(flag) + "=" + std::string(value) + " must be a whole number >= " +
                     std::to_string(min));
  }
  return n;
}

std::vector<std::string_view> splitCommas(std::string_view list) {
  std::vector<std::string_view> items;
  while (true) {
    auto comma = list.find(',');
    items.push_back(list.substr(0, comma));
    if (comma == std::string_view::npos) return items;
    list.remove_prefix(comma + 1);
  }
}

Options parseOptions(int argc, char** argv) {
  Options o;
  std::optional<size_t> calls, warmup, pipeCalls;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto eq = arg.find('=');
    std::string_view flag = arg.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? "" : arg.substr(eq + 1);
    bool hasValue = eq != std::string_view::npos;
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (flag == "--quick") {
      if (hasValue) throw UsageError("--quick takes no value; write just --quick");
      o.quick = true;
    } else if (!hasValue) {
      throw UsageError("unknown option '" + std::string(arg) +
                       "' (options that take a value are written --name=value); see --help");
    } else if (flag == "--calls") {
      calls = parseCount(flag, value, 1);
    } else if (flag == "--warmup") {
      warmup = parseCount(flag, value, 0);
    } else if (flag == "--pipe-calls") {
      pipeCalls = parseCount(flag, value, 1);
    } else if (flag == "--window") {
      o.window = parseCount(flag, value, 1);
    } else if (flag == "--plugin") {
      o.pluginPath = value;
    } else if (flag == "--runner") {
      o.runnerPath = value;
    } else if (flag == "--payloads") {
      o.payloads.clear();
      for (auto item : splitCommas(value)) o.payloads.push_back(parseCount(flag, item, 1));
    } else if (flag == "--modes") {
      o.modes.clear();
      for (auto item : splitCommas(value)) {
        auto found = std::find_if(std::begin(kAllModes), std::end(kAllModes),
                                  [&](Mode m) { return item == modeName(m); });
        if (found == std::end(kAllModes)) {
          throw UsageError("unknown mode '" + std::string(item) +
                           "'; modes are direct, raw-socketpair, in-process, out-of-process");
        }
        o.modes.push_back(*found);
      }
    } else {
      throw UsageError("unknown option '" + std::string(flag) + "'; see --help");
    }
  }
  size_t scale = o.quick ? 10 : 1;
  o.calls = calls.value_or(o.calls / scale);
  o.warmup = warmup.value_or(o.warmup / scale);
  o.pipeCalls = pipeCalls.value_or(o.pipeCalls / scale);
  return o;
}

// Printable and position-dependent, so a reordered or truncated echo does not compare equal.
std::string makePayload(size_t size) {
  std::string s(size, ' ');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 26) % 26);
  return s;
}

// Every call checks the echoed length; warm-up calls also compare every byte.
void checkEcho(std::string_view got, const std::string& want, bool everyByte) {
  if (got.size() != want.size() || (everyByte && got != want)) {
    throw std::runtime_error("echo came back wrong: sent " + std::to_string(want.size()) +
                             " bytes, got " + std::to_string(got.size()) +
                             (got.size() == want.size() ? " different ones" : ""));
  }
}

std::string_view view(capnp::Text::Reader text) { return {text.begin(), text.size()}; }

struct Sequential {
  double p50Us, p99Us, callsPerSec;
};

Sequential summarize(std::vector<double>& latencyNs, size_t calls, Clock::duration total) {
  std::sort(latencyNs.begin(), latencyNs.end());
  auto at = [&](double q) {
    size_t i = std::min(latencyNs.size() - 1, static_cast<size_t>(q * latencyNs.size()));
    return latencyNs[i] / 1000.0;
  };
  double seconds = std::chrono::duration<double>(total).count();
  return {at(0.50), at(0.99), calls / seconds};
}

// ---- direct ------------------------------------------------------------------------------------

// Times `calls` direct calls in batches of o.batch; each sample is a batch's mean per call.
struct DirectRun {
  std::vector<double> perCallNs;
  size_t calls;
  Clock::duration total;
};

DirectRun timeDirect(DirectEcho& echo, const std::string& payload, size_t calls,
                     const Options& o) {
  size_t batches = std::max<size_t>(1, calls / o.batch);
  DirectRun run{{}, batches * o.batch, {}};
  run.perCallNs.reserve(batches);
  size_t echoed = 0;
  auto start = Clock::now();
  for (size_t b = 0; b < batches; ++b) {
    auto t0 = Clock::now();
    for (size_t i = 0; i < o.batch; ++i) echoed += echo.inspect(payload).error.size();
    run.perCallNs.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count() /
                            o.batch);
  }
  run.total = Clock::now() - start;
  if (echoed != run.calls * payload.size()) checkEcho("", payload, false);
  return run;
}

Sequential sequentialDirect(DirectEcho& echo, const std::string& payload, const Options& o) {
  for (size_t i = 0; i < o.warmup; ++i) checkEcho(echo.inspect(payload).error, payload, true);
  auto run = timeDirect(echo, payload, o.calls, o);
  return summarize(run.perCallNs, run.calls, run.total);
}

// A synchronous call has nothing in flight to overlap: the same loop, over pipeCalls calls.
double pipelinedDirect(DirectEcho& echo, const std::string& payload, const Options& o) {
  auto run = timeDirect(echo, payload, o.pipeCalls, o);
  return run.calls / std::chrono::duration<double>(run.total).count();
}

// ---- RPC ---------------------------------------------------------------------------------------

Sequential sequentialRpc(schema::Runtime::Client& client, kj::WaitScope& waitScope,
                         const std::string& payload, const Options& o) {
  kj::StringPtr text(payload.c_str(), payload.size());
  auto call = [&](bool everyByte) {
    auto request = client.inspectRequest();
    request.setTaskId(text);
    auto response = request.send().wait(waitScope);
    checkEcho(view(response.getInfo().getError()), payload, everyByte);
  };
  for (size_t i = 0; i < o.warmup; ++i) call(true);
  std::vector<double> latencyNs;
  latencyNs.reserve(o.calls);
  auto start = Clock::now();
  for (size_t i = 0; i < o.calls; ++i) {
    auto t0 = Clock::now();
    call(false);
    latencyNs.push_back(std::chrono::duration<double, std::nano>(Clock::now() - t0).count());
  }
  return summarize(latencyNs, o.calls, Clock::now() - start);
}

// Keeps `window` calls in flight: each answer sends the next call until `total` have been sent.
class Pipeline {
 public:
  Pipeline(schema::Runtime::Client& client, const std::string& payload, size_t total)
      : client(client), payload(payload), total(total) {}

  kj::Promise<void> run(size_t window) {
    auto slots = kj::heapArrayBuilder<kj::Promise<void>>(std::min(window, total));
    for (size_t i = 0; i < slots.capacity(); ++i) slots.add(next());
    return kj::joinPromises(slots.finish());
  }

 private:
  kj::Promise<void> next() {
    if (sent == total) return kj::READY_NOW;
    ++sent;
    auto request = client.inspectRequest();
    request.setTaskId(kj::StringPtr(payload.c_str(), payload.size()));
    return request.send().then([this](capnp::Response<schema::Runtime::InspectResults>&& r) {
      checkEcho(view(r.getInfo().getError()), payload, false);
      return next();
    });
  }

  schema::Runtime::Client& client;
  const std::string& payload;
  size_t total;
  size_t sent = 0;
};

double pipelinedRpc(schema::Runtime::Client& client, kj::WaitScope& waitScope,
                    const std::string& payload, const Options& o) {
  if (o.warmup > 0) Pipeline(client, payload, o.warmup).run(o.window).wait(waitScope);
  Pipeline pipeline(client, payload, o.pipeCalls);
  auto start = Clock::now();
  pipeline.run(o.window).wait(waitScope);
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return o.pipeCalls / seconds;
}

// The echo, served without the plugin host (same code as bench/plugin/plugin.cpp).
class RawEcho final : public schema::Runtime::Server {
 public:
  kj::Promise<void> inspect(InspectContext context) override {
    auto info = context.getResults().initInfo();
    info.setError(context.getParams().getTaskId());
    info.setState(schema::ContainerState::MISSING);
    return kj::READY_NOW;
  }
};

// A second thread serving RawEcho on one end of a socketpair, as the stack probe measured it.
class RawSocketpair {
 public:
  explicit RawSocketpair(kj::AsyncIoContext& io) {
    int fds[2];
    KJ_SYSCALL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
    thread = std::thread([fd = fds[1]]() {
      KJ_IF_MAYBE(e, kj::runCatchingExceptions([fd]() {
                    auto io = kj::setupAsyncIo();
                    auto stream = io.lowLevelProvider->wrapSocketFd(
                        fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
                    capnp::TwoPartyVatNetwork network(*stream, capnp::rpc::twoparty::Side::SERVER);
                    auto rpc = capnp::makeRpcServer(network, kj::heap<RawEcho>());
                    network.onDisconnect().wait(io.waitScope);
                  })) {
        std::fprintf(stderr, "raw-socketpair server failed: %s\n", e->getDescription().cStr());
      }
    });
    stream = io.lowLevelProvider->wrapSocketFd(fds[0], kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
    client = kj::heap<capnp::TwoPartyClient>(*stream);
  }

  ~RawSocketpair() {
    client = nullptr;
    stream = nullptr;  // the server sees the disconnect and its thread returns
    thread.join();
  }

  schema::Runtime::Client bootstrap() { return client->bootstrap().castAs<schema::Runtime>(); }

 private:
  std::thread thread;
  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyClient> client;
};

// ---- running and reporting ---------------------------------------------------------------------

void runRpcMode(Mode mode, kj::AsyncIoContext& io, const Options& o, std::vector<Result>& out) {
  auto& waitScope = io.waitScope;
  auto started = Clock::now();
  kj::Own<RawSocketpair> raw;
  kj::Own<kernel::PluginInstance> plugin;
  schema::Runtime::Client client = nullptr;
  if (mode == Mode::rawSocketpair) {
    raw = kj::heap<RawSocketpair>(io);
    client = raw->bootstrap();
  } else {
    kernel::PluginConfig config;
    config.kind = schema::Kind::RUNTIME;
    config.library = o.pluginPath;
    config.isolation =
        mode == Mode::inProcess ? kernel::Isolation::inProcess : kernel::Isolation::outOfProcess;
    config.onCrash = kernel::CrashPolicy::stop;  // a crash must end the run, not hide in a restart
    kernel::PluginInstance::Options options;
    options.runnerPath = o.runnerPath;
    plugin = kernel::PluginInstance::start(io, config, options);
    plugin->configure().wait(waitScope);
    client = plugin->bootstrap().castAs<schema::Runtime>();
  }
  double startMs = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  if (mode == Mode::rawSocketpair) startMs = 0;

  for (size_t size : o.payloads) {
    std::string payload = makePayload(size);
    auto seq = sequentialRpc(client, waitScope, payload, o);
    double pipe = pipelinedRpc(client, waitScope, payload, o);
    out.push_back({mode, size, seq.p50Us, seq.p99Us, seq.callsPerSec, pipe, startMs});
  }
  if (plugin) plugin->stop().wait(waitScope);
}

void runDirect(const Options& o, std::vector<Result>& out) {
  auto echo = newDirectEcho();
  for (size_t size : o.payloads) {
    std::string payload = makePayload(size);
    auto seq = sequentialDirect(*echo, payload, o);
    double pipe = pipelinedDirect(*echo, payload, o);
    out.push_back({Mode::direct, size, seq.p50Us, seq.p99Us, seq.callsPerSec, pipe, 0});
  }
}

const Result* find(const std::vector<Result>& results, Mode mode, size_t payload) {
  for (auto& r : results) {
    if (r.mode == mode && r.payload == payload) return &r;
  }
  return nullptr;
}

std::string payloadLabel(size_t bytes) {
  if (bytes % 1024 == 0) return std::to_string(bytes / 1024) + " KiB";
  return std::to_string(bytes) + " B";
}

// Enough digits to read a direct call (tens of ns) and an RPC (tens of µs) in one column.
std::string micros(double us) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), us < 1 ? "%.4f" : us < 100 ? "%.1f" : "%.0f", us);
  return buf;
}

std::string ratio(const Result* base, double mine, double theirs) {
  if (base == nullptr || theirs <= 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), mine / theirs < 10 ? "%.2fx" : "%.0fx", mine / theirs);
  return buf;
}

void printTable(const std::vector<Result>& results, const Options& o, double loadBefore,
                double loadAfter) {
  std::printf(
      "\nplugin call: Runtime.inspect echo; seq = %zu calls after %zu warm-up; pipe = %zu calls, "
      "%zu in flight\n%u CPUs, load average %.2f before, %.2f after\n\n",
      o.calls, o.warmup, o.pipeCalls, o.window, std::thread::hardware_concurrency(), loadBefore,
      loadAfter);
  std::printf("%-15s %7s %10s %10s %12s %12s %9s %9s %9s %9s\n", "mode", "payload", "p50 us",
              "p99 us", "seq calls/s", "pipe calls/s", "p50/dir", "pipe/dir", "p50/raw",
              "pipe/raw");
  for (auto& r : results) {
    const Result* direct = find(results, Mode::direct, r.payload);
    const Result* raw =
        r.mode == Mode::direct ? nullptr : find(results, Mode::rawSocketpair, r.payload);
    // Ratios are "times slower": latency over latency, throughput over throughput inverted.
    std::printf("%-15s %7s %10s %10s %12.0f %12.0f %9s %9s %9s %9s\n", modeName(r.mode),
                payloadLabel(r.payload).c_str(), micros(r.p50Us).c_str(), micros(r.p99Us).c_str(),
                r.seqCallsPerSec, r.pipeCallsPerSec,
                ratio(direct, r.p50Us, direct ? direct->p50Us : 0).c_str(),
                ratio(direct, direct ? direct->pipeCallsPerSec : 0, r.pipeCallsPerSec).c_str(),
                ratio(raw, r.p50Us, raw ? raw->p50Us : 0).c_str(),
                ratio(raw, raw ? raw->pipeCallsPerSec : 0, r.pipeCallsPerSec).c_str());
  }
  for (auto& r : results) {
    if (r.startMs > 0 && r.payload == results.front().payload) {
      std::printf("%s: start + configure took %.1f ms\n", modeName(r.mode), r.startMs);
    }
  }
  bool any = false;
  for (auto& r : results) {
    if (r.mode != Mode::inProcess) continue;
    if (!any) std::printf("\ntargets (reported, not asserted):\n");
    any = true;
    std::printf("  in-process %-6s p50 %6.1f us (target <= %.0f): %s;  pipelined %7.0f calls/s "
                "(target >= %.0f): %s\n",
                payloadLabel(r.payload).c_str(), r.p50Us, kTargetInProcessP50Us,
                r.p50Us <= kTargetInProcessP50Us ? "met" : "MISSED", r.pipeCallsPerSec,
                kTargetInProcessPipelined,
                r.pipeCallsPerSec >= kTargetInProcessPipelined ? "met" : "MISSED");
  }
}

// The 1-minute load average: figures taken while the machine was busy say so.
double loadAverage() {
  double load = -1;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &load) != 1) load = -1;
    std::fclose(f);
  }
  return load;
}

// One JSON object per line, every line starting with {"bench":"plugin-call", for notes to quote.
void printJsonLines(const std::vector<Result>& results, const Options& o, double loadBefore,
                    double loadAfter) {
  std::printf("\n{\"bench\":\"plugin-call\",\"record\":\"setup\",\"buildType\":\"%s\","
              "\"quick\":%s,\"cpus\":%u,\"loadBefore\":%.2f,\"loadAfter\":%.2f,"
              "\"warmup\":%zu,\"seqCalls\":%zu,\"pipeCalls\":%zu,\"window\":%zu,"
              "\"directBatch\":%zu}\n",
              SWARM_BENCH_BUILD_TYPE, o.quick ? "true" : "false",
              std::thread::hardware_concurrency(), loadBefore, loadAfter, o.warmup, o.calls,
              o.pipeCalls, o.window, o.batch);
  for (auto& r : results) {
    const Result* direct = find(results, Mode::direct, r.payload);
    const Result* raw =
        r.mode == Mode::direct ? nullptr : find(results, Mode::rawSocketpair, r.payload);
    std::printf("{\"bench\":\"plugin-call\",\"record\":\"result\",\"mode\":\"%s\","
                "\"payloadBytes\":%zu,\"p50Us\":%.4f,\"p99Us\":%.4f,\"seqCallsPerSec\":%.0f,"
                "\"pipeCallsPerSec\":%.0f,\"startMs\":%.2f",
                modeName(r.mode), r.payload, r.p50Us, r.p99Us, r.seqCallsPerSec,
                r.pipeCallsPerSec, r.startMs);
    if (direct) {
      std::printf(",\"p50VsDirect\":%.1f,\"pipeVsDirect\":%.1f", r.p50Us / direct->p50Us,
                  direct->pipeCallsPerSec / r.pipeCallsPerSec);
    }
    if (raw) {
      std::printf(",\"p50VsRaw\":%.3f,\"pipeVsRaw\":%.3f", r.p50Us / raw->p50Us,
                  raw->pipeCallsPerSec / r.pipeCallsPerSec);
    }
    std::printf("}\n");
  }
}

int run(int argc, char** argv) {
  Options o = parseOptions(argc, argv);
  kernel::initLogging(spdlog::level::warn);
  if (std::string_view(SWARM_BENCH_BUILD_TYPE) != "Release") {
    std::fprintf(stderr, "warning: built as %s, not Release; the figures are not representative\n",
                 SWARM_BENCH_BUILD_TYPE);
  }
  double loadBefore = loadAverage();
  auto io = kj::setupAsyncIo();
  std::vector<Result> results;
  for (Mode mode : o.modes) {
    std::fprintf(stderr, "plugin-call-bench: running %s...\n", modeName(mode));
    if (mode == Mode::direct) {
      runDirect(o, results);
    } else {
      runRpcMode(mode, io, o, results);
    }
  }
  double loadAfter = loadAverage();
  printTable(results, o, loadBefore, loadAfter);
  printJsonLines(results, o, loadBefore, loadAfter);
  return 0;
}

}  // namespace

}  // namespace swarm::bench

int main(int argc, char** argv) {
  try {
    return swarm::bench::run(argc, argv);
  } catch (const swarm::bench::UsageError& e) {
    std::fprintf(stderr, "plugin-call-bench: %s\n", e.what());
    return 2;
  } catch (const swarm::kernel::UserError& e) {
    std::fprintf(stderr, "plugin-call-bench: %s\n", e.what());
    return 1;
  } catch (const kj::Exception& e) {
    std::fprintf(stderr, "plugin-call-bench: %s\n", e.getDescription().cStr());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "plugin-call-bench: %s\n", e.what());
    return 1;
  }
}
