// scheduler-spread-bench: placements per second for a 100,000-task batch (100 services x 1,000
// replicas) onto 5,000 nodes, and the latency of a 1,000-task batch on the same snapshot.
//
//   in-process      Scheduler.schedule() with the whole snapshot and batch in one capnp call to
//                   scheduler-spread.so started by the kernel's PluginInstance (its own thread,
//                   a socketpair). Timed from send() to the reply: the request's transfer, the
//                   plugin reading it, scheduling, writing the plan and the reply's transfer.
//   out-of-process  the same call with the plugin in swarm-plugin-runner.
//   direct          the pure function: schedule() on the serialized request read back by a
//                   FlatArrayMessageReader (what the plugin reads), then writePlan().
//
// The batch mixes what a real one holds: CPU/memory reservations, GPU (generic) reservations,
// node and engine label constraints, role constraints, one- and two-level spread preferences,
// platforms, max replicas per node and host-mode ports. Some GPU tasks cannot be placed, so
// the explanation path runs too. Every mode must produce the same plan (a checksum is compared).
//
// --full-tasks adds a container spec (image, env, labels) to every task, as a kernel sending the
// whole Task would: the request then exceeds capnp's default 64 MiB reader limit and the
// boundary modes fail with "Message is too large" until both ends raise it (see README).
#include "plugin_host.h"
#include "scheduler.h"

#include <swarm/schema/scheduler.capnp.h>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/async-io.h>
#include <kj/debug.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef SWARM_BENCH_SCHEDULER_PLUGIN
#define SWARM_BENCH_SCHEDULER_PLUGIN "scheduler-spread.so"
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
constexpr double kTargetPlacementsPerSec = 50000;
constexpr int64_t kGiB = int64_t(1) << 30;
constexpr int64_t kMiB = int64_t(1) << 20;
constexpr int64_t kCpu = 1000000000;
constexpr uint64_t kSeed = 20261125;

struct Options {
  bool quick = false;
  bool fullTasks = false;
  bool outOfProcess = true;
  int nodes = 5000;
  int services = 100;
  int replicas = 1000;
  int runs = 3;          // timed runs of the big batch per mode
  int smallCalls = 50;   // 1,000-task batches for the latency figure
};

const char* USAGE =
    "usage: scheduler-spread-bench [--quick] [--full-tasks] [--no-out-of-process] [--nodes=N]\n"
    "                              [--services=N] [--replicas=N] [--runs=N]\n"
    "Times scheduler-spread on 100 services x 1,000 replicas over 5,000 nodes: through the plugin\n"
    "boundary (in and out of process) and as a direct call. --quick: one run, 10 small calls.\n";

int intArg(const std::string& arg, size_t prefix, int max) {
  char* end = nullptr;
  long n = strtol(arg.c_str() + prefix, &end, 10);
  if (*end != '\0' || n < 1 || n > max) {
    throw std::invalid_argument(arg.substr(0, prefix - 1) + " takes a number from 1 to " +
                                std::to_string(max));
  }
  return static_cast<int>(n);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick") {
      o.quick = true;
    } else if (arg == "--full-tasks") {
      o.fullTasks = true;
    } else if (arg == "--no-out-of-process") {
      o.outOfProcess = false;
    } else if (arg.rfind("--nodes=", 0) == 0) {
      o.nodes = intArg(arg, 8, 1000000);
    } else if (arg.rfind("--services=", 0) == 0) {
      o.services = intArg(arg, 11, 100000);
    } else if (arg.rfind("--replicas=", 0) == 0) {
      o.replicas = intArg(arg, 11, 1000000);
    } else if (arg.rfind("--runs=", 0) == 0) {
      o.runs = intArg(arg, 7, 1000);
    } else if (arg == "-h" || arg == "--help") {
      std::printf("%s", USAGE);
      exit(0);
    } else {
      throw std::invalid_argument("unknown argument '" + arg + "'; see --help");
    }
  }
  if (o.quick) {
    o.runs = 1;
    o.smallCalls = 10;
  }
  return o;
}

double loadAverage() {
  double load = 0;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &load) != 1) load = 0;
    std::fclose(f);
  }
  return load;
}

// Swarm-like 25-character IDs.
std::string randomId(std::mt19937_64& rng) {
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string id(25, '0');
  for (auto& c : id) c = kDigits[rng() % 36];
  return id;
}

struct Ids {
  std::vector<std::string> nodes, services, tasks;
};

Ids makeIds(const Options& o) {
  std::mt19937_64 rng(kSeed);
  Ids ids;
  for (int i = 0; i < o.nodes; ++i) ids.nodes.push_back(randomId(rng));
  for (int i = 0; i < o.services; ++i) ids.services.push_back(randomId(rng));
  for (long i = 0; i < long(o.services) * o.replicas; ++i) ids.tasks.push_back(randomId(rng));
  return ids;
}

void fillNodes(capnp::List<schema::NodeInfo>::Builder out, const Ids& ids) {
  std::mt19937_64 rng(kSeed + 1);
  const unsigned count = out.size();
  for (unsigned i = 0; i < count; ++i) {
    auto info = out[i];
    auto n = info.initNode();
    n.setId(ids.nodes[i]);
    bool manager = i % 10 == 0;
    n.setRole(manager ? schema::NodeRole::MANAGER : schema::NodeRole::WORKER);
    auto spec = n.initSpec();
    spec.setDesiredRole(n.getRole());
    spec.setMembership(schema::NodeMembership::ACCEPTED);
    spec.setAvailability(i % 50 == 7 ? schema::NodeAvailability::DRAIN
                                     : schema::NodeAvailability::ACTIVE);
    auto labels = spec.initAnnotations().initLabels(3);
    labels[0].setKey("zone");
    labels[0].setValue("zone-" + std::to_string(i % 5));
    labels[1].setKey("rack");
    labels[1].setValue("rack-" + std::to_string(i % 100));
    labels[2].setKey("tier");
    labels[2].setValue(i % 3 == 0 ? "gold" : "silver");
    auto description = n.initDescription();
    description.setHostname("host-" + std::to_string(i));
    auto platform = description.initPlatform();
    platform.setOs("linux");
    platform.setArchitecture(i % 10 == 3 ? "aarch64" : "x86_64");
    int64_t memory = static_cast<int64_t>(16 + 16 * (rng() % 4)) * kGiB;
    int64_t cpus = static_cast<int64_t>(8 + 8 * (rng() % 4)) * kCpu;
    auto total = description.initResources();
    total.setMemoryBytes(memory);
    total.setNanoCpus(cpus);
    auto engineLabels = description.initEngine().initLabels(1);
    engineLabels[0].setKey("storage");
    engineLabels[0].setValue(i % 4 == 0 ? "ssd" : "hdd");
    auto status = n.initStatus();
    status.setState(i % 100 == 42 ? schema::NodeState::DOWN : schema::NodeState::READY);
    status.setAddr("10." + std::to_string(i / 65536) + "." + std::to_string(i / 256 % 256) + "." +
                   std::to_string(i % 256));
    auto available = info.initAvailable();
    available.setMemoryBytes(memory - 2 * kGiB);
    available.setNanoCpus(cpus - kCpu);
    if (i % 20 == 5) {
      auto generic = available.initGeneric(1);
      generic[0].setKind("gpu");
      generic[0].setDiscrete(4);
    }
    // A few tasks of a few services already running.
    auto counts = info.initTasksByService(3);
    uint32_t totalTasks = 0;
    for (unsigned j = 0; j < 3; ++j) {
      counts[j].setServiceId(ids.services[rng() % ids.services.size()]);
      uint32_t c = static_cast<uint32_t>(1 + rng() % 2);
      counts[j].setCount(c);
      totalTasks += c;
    }
    info.setTotalTasks(totalTasks + static_cast<uint32_t>(rng() % 4));
    if (i % 97 == 0) {
      auto failures = info.initRecentFailures(1);
      failures[0].setServiceId(ids.services[rng() % ids.services.size()]);
      failures[0].setCount(6);
    }
    if (i % 30 == 0) {
      auto ports = info.initHostPorts(1);
      ports[0].setProtocol(schema::PortConfig::Protocol::TCP);
      ports[0].setPublishedPort(8013);
      ports[0].setTargetPort(80);
      ports[0].setPublishMode(schema::PortConfig::PublishMode::HOST);
    }
  }
}

// Service `s`'s placement mix; the same for all its replicas.
void fillTaskSpec(schema::TaskSpec::Builder spec, int s, bool full) {
  if (full) {
    auto container = spec.getRuntime().initContainer();
    container.setImage("registry.local:5000/team-" + std::to_string(s) +
                       "/app:1.4.2@sha256:3f1e9a0c5d7b2e8f4a6c1d9e0b7a5c3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c7b");
    auto env = container.initEnv(3);
    env.set(0, "SERVICE_INDEX=" + std::to_string(s));
    env.set(1, "LOG_LEVEL=info");
    env.set(2, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    auto labels = container.initLabels(1);
    labels[0].setKey("com.example.team");
    labels[0].setValue("team-" + std::to_string(s));
  }
  auto reservations = spec.initResources().initReservations();
  if (s % 4 == 0) {
    reservations.setMemoryBytes(256 * kMiB);
    reservations.setNanoCpus(kCpu / 10);
  }
  if (s % 25 == 1) {
    auto generic = reservations.initGeneric(1);
    generic[0].setKind("gpu");
    generic[0].setDiscrete(1);
  }
  auto placement = spec.initPlacement();
  std::vector<std::string> constraints;
  if (s % 5 == 0) constraints.push_back("node.labels.zone!=zone-4");
  if (s % 7 == 0) constraints.push_back("node.role==worker");
  if (s % 11 == 0) constraints.push_back("engine.labels.storage==ssd");
  auto c = placement.initConstraints(static_cast<unsigned>(constraints.size()));
  for (unsigned i = 0; i < constraints.size(); ++i) c.set(i, constraints[i]);
  if (s % 6 == 0) {
    auto p = placement.initPreferences(2);
    p[0].setSpreadDescriptor("node.labels.zone");
    p[1].setSpreadDescriptor("node.labels.rack");
  } else if (s % 3 == 0) {
    placement.initPreferences(1)[0].setSpreadDescriptor("node.labels.zone");
  }
  if (s % 10 == 9) placement.setMaxReplicas(1);
  if (s % 8 == 0) {
    auto platforms = placement.initPlatforms(1);
    platforms[0].setOs("linux");
    platforms[0].setArchitecture("amd64");
  }
}

void fillTasks(capnp::List<schema::Task>::Builder out, const Ids& ids, int services,
               int replicas, size_t firstTask, bool full) {
  for (int s = 0; s < services; ++s) {
    for (int r = 0; r < replicas; ++r) {
      unsigned index = static_cast<unsigned>(s * replicas + r);
      auto t = out[index];
      t.setId(ids.tasks[firstTask + index]);
      t.setServiceId(ids.services[s]);
      t.initSpecVersion().setIndex(static_cast<uint64_t>(10 + s));
      t.setSlot(static_cast<uint64_t>(r + 1));
      if (full) t.initServiceAnnotations().setName("service-" + std::to_string(s));
      fillTaskSpec(t.initSpec(), s, full);
      auto status = t.initStatus();
      status.setState(schema::TASK_STATE_PENDING);
      if (s == 13) {  // host-mode published port 8013
        auto ports = status.initPorts(1);
        ports[0].setProtocol(schema::PortConfig::Protocol::TCP);
        ports[0].setPublishedPort(8013);
        ports[0].setTargetPort(80);
        ports[0].setPublishMode(schema::PortConfig::PublishMode::HOST);
      }
      t.setDesiredState(schema::TASK_STATE_RUNNING);
    }
  }
}

void fillRequest(schema::Scheduler::ScheduleParams::Builder request, const Ids& ids,
                 int services, int replicas, size_t firstTask, bool full) {
  fillNodes(request.initNodes(static_cast<unsigned>(ids.nodes.size())), ids);
  fillTasks(request.initTasks(static_cast<unsigned>(services * replicas)), ids, services,
            replicas, firstTask, full);
}

// Assignments and unplaced tasks, and a checksum of (task, node) pairs in plan order.
struct PlanSummary {
  size_t assigned = 0, unplaced = 0;
  uint64_t checksum = 1469598103934665603ull;
  std::string sampleReason;

  bool operator==(const PlanSummary& o) const {
    return assigned == o.assigned && unplaced == o.unplaced && checksum == o.checksum;
  }
};

void mix(uint64_t& h, kj::StringPtr s) {
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  h = (h ^ 0xff) * 1099511628211ull;
}

PlanSummary summarize(schema::Plan::Reader plan) {
  PlanSummary out;
  for (auto a : plan.getAssignments()) {
    mix(out.checksum, a.getTaskId());
    mix(out.checksum, a.getNodeId());
    ++out.assigned;
  }
  for (auto u : plan.getUnplaced()) {
    mix(out.checksum, u.getTaskId());
    mix(out.checksum, u.getReason());
    if (out.sampleReason.empty()) out.sampleReason = u.getReason();
    ++out.unplaced;
  }
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

struct BigResult {
  std::string mode;
  bool ok = false;
  std::string error;
  PlanSummary plan;
  double bestSeconds = 0, medianSeconds = 0;
  double buildSeconds = 0;  // building the request (boundary modes)
};

struct SmallResult {
  std::string mode;
  std::vector<double> ms;
};

kj::Own<kernel::PluginInstance> startPlugin(kj::AsyncIoContext& io, bool outOfProcess) {
  kernel::PluginConfig config;
  config.kind = schema::Kind::SCHEDULER;
  config.library = SWARM_BENCH_SCHEDULER_PLUGIN;
  config.isolation = outOfProcess ? kernel::Isolation::outOfProcess : kernel::Isolation::inProcess;
  config.onCrash = kernel::CrashPolicy::stop;
  kernel::PluginInstance::Options options;
  options.runnerPath = SWARM_BENCH_RUNNER;
  auto plugin = kernel::PluginInstance::start(io, config, options);
  plugin->configure().wait(io.waitScope);
  return plugin;
}

// The big batch through the boundary, `runs` times.
BigResult boundaryBig(kj::AsyncIoContext& io, const Options& o, const Ids& ids, bool outOfProcess) {
  BigResult r;
  r.mode = outOfProcess ? "out-of-process" : "in-process";
  auto plugin = startPlugin(io, outOfProcess);
  auto scheduler = plugin->bootstrap().castAs<schema::Scheduler>();
  std::vector<double> times;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                for (int run = 0; run < o.runs; ++run) {
                  auto start = Clock::now();
                  auto request = scheduler.scheduleRequest();
                  fillRequest(request, ids, o.services, o.replicas, 0, o.fullTasks);
                  auto sent = Clock::now();
                  auto response = request.send().wait(io.waitScope);
                  auto done = Clock::now();
                  PlanSummary plan = summarize(response.getPlan());
                  KJ_REQUIRE(run == 0 || plan == r.plan, "the plan changed between runs");
                  r.plan = plan;
                  r.buildSeconds = std::chrono::duration<double>(sent - start).count();
                  times.push_back(std::chrono::duration<double>(done - sent).count());
                }
              })) {
    r.error = e->getDescription().cStr();
  } else {
    r.ok = true;
    r.bestSeconds = *std::min_element(times.begin(), times.end());
    r.medianSeconds = median(times);
  }
  scheduler = nullptr;
  plugin->stop().wait(io.waitScope);
  return r;
}

// The pure function on the serialized request, read back with `limitWords` as the traversal
// limit (the plugin side reads with capnp's default unless the SDK raises it).
BigResult directBig(kj::ArrayPtr<const capnp::word> words, uint64_t limitWords, int runs,
                    const char* mode) {
  BigResult r;
  r.mode = mode;
  std::vector<double> times;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() {
                for (int run = 0; run < runs; ++run) {
                  auto start = Clock::now();
                  capnp::ReaderOptions options;
                  options.traversalLimitInWords = limitWords;
                  capnp::FlatArrayMessageReader reader(words, options);
                  auto params = reader.getRoot<schema::Scheduler::ScheduleParams>();
                  spread::Plan plan = spread::schedule(params.getNodes(), params.getTasks());
                  capnp::MallocMessageBuilder reply;
                  auto out = reply.initRoot<schema::Plan>();
                  spread::writePlan(plan, out);
                  times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
                  r.plan = summarize(out.asReader());
                }
              })) {
    r.error = e->getDescription().cStr();
  } else {
    r.ok = true;
    r.bestSeconds = *std::min_element(times.begin(), times.end());
    r.medianSeconds = median(times);
  }
  return r;
}

// The traversal schedule() charges on `words`: the smallest limit it runs under (bisection).
uint64_t wordsRead(kj::ArrayPtr<const capnp::word> words) {
  auto runsUnder = [&](uint64_t limit) {
    capnp::ReaderOptions options;
    options.traversalLimitInWords = limit;
    return kj::runCatchingExceptions([&]() {
             capnp::FlatArrayMessageReader reader(words, options);
             auto params = reader.getRoot<schema::Scheduler::ScheduleParams>();
             spread::schedule(params.getNodes(), params.getTasks());
           }) == nullptr;
  };
  uint64_t low = 0, high = words.size() * 2;
  while (low + 1 < high) {
    uint64_t mid = low + (high - low) / 2;
    (runsUnder(mid) ? high : low) = mid;
  }
  return high;
}

// 1,000-task batches (10 services x 100 replicas, the same mix) on the full snapshot.
SmallResult boundarySmall(kj::AsyncIoContext& io, const Options& o, const Ids& ids) {
  SmallResult r{"in-process", {}};
  auto plugin = startPlugin(io, false);
  auto scheduler = plugin->bootstrap().castAs<schema::Scheduler>();
  for (int call = -2; call < o.smallCalls; ++call) {  // two warm-up calls
    auto request = scheduler.scheduleRequest();
    fillRequest(request, ids, 10, 100, 0, o.fullTasks);
    auto start = Clock::now();
    auto response = request.send().wait(io.waitScope);
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    KJ_ASSERT(response.getPlan().getAssignments().size() > 0);
    if (call >= 0) r.ms.push_back(ms);
  }
  scheduler = nullptr;
  plugin->stop().wait(io.waitScope);
  return r;
}

SmallResult directSmall(const Options& o, const Ids& ids) {
  SmallResult r{"direct", {}};
  capnp::MallocMessageBuilder message;
  fillRequest(message.initRoot<schema::Scheduler::ScheduleParams>(), ids, 10, 100, 0, o.fullTasks);
  auto words = capnp::messageToFlatArray(message);
  for (int call = -2; call < o.smallCalls; ++call) {
    auto start = Clock::now();
    capnp::FlatArrayMessageReader reader(words);
    auto params = reader.getRoot<schema::Scheduler::ScheduleParams>();
    spread::Plan plan = spread::schedule(params.getNodes(), params.getTasks());
    capnp::MallocMessageBuilder reply;
    spread::writePlan(plan, reply.initRoot<schema::Plan>());
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (call >= 0) r.ms.push_back(ms);
  }
  return r;
}

}  // namespace
}  // namespace swarm::bench

int main(int argc, char** argv) {
  using namespace swarm::bench;
  try {
    Options o = parse(argc, argv);
    if (std::strcmp(SWARM_BENCH_BUILD_TYPE, "Release") != 0) {
      std::fprintf(stderr,
                   "warning: built as %s, not Release; the figures are not representative\n",
                   SWARM_BENCH_BUILD_TYPE);
    }
    const long taskCount = long(o.services) * o.replicas;
    double loadBefore = loadAverage();
    Ids ids = makeIds(o);

    // The request as bytes: its size, and the direct runs.
    auto buildStart = Clock::now();
    capnp::MallocMessageBuilder message;
    fillRequest(message.initRoot<swarm::schema::Scheduler::ScheduleParams>(), ids, o.services,
                o.replicas, 0, o.fullTasks);
    double buildSeconds = std::chrono::duration<double>(Clock::now() - buildStart).count();
    auto words = capnp::messageToFlatArray(message);
    const double requestMiB = static_cast<double>(words.size()) * 8 / (1 << 20);
    const uint64_t defaultLimit = capnp::ReaderOptions().traversalLimitInWords;

    std::vector<BigResult> big;
    // Two limits matter at capnp's default ReaderOptions (8 Mi words = 64 MiB): RPC refuses to
    // send or receive a message that size or larger, and the receiver's reads of the message
    // (every pointer followed, counted again on each follow) must stay under it.
    const bool fitsRpc = words.size() < defaultLimit;
    const uint64_t readWords = wordsRead(words);
    big.push_back(directBig(words, uint64_t(1) << 40, o.runs, "direct"));
    auto io = kj::setupAsyncIo();
    big.push_back(boundaryBig(io, o, ids, false));
    if (o.outOfProcess) big.push_back(boundaryBig(io, o, ids, true));

    std::vector<SmallResult> small;
    small.push_back(directSmall(o, ids));
    if (big[1].ok || !o.fullTasks) small.push_back(boundarySmall(io, o, ids));
    double loadAfter = loadAverage();

    std::printf("scheduler-spread-bench (%s build, load %.2f -> %.2f)\n", SWARM_BENCH_BUILD_TYPE,
                loadBefore, loadAfter);
    std::printf("batch: %ld tasks (%d services x %d replicas) onto %d nodes%s\n", taskCount,
                o.services, o.replicas, o.nodes, o.fullTasks ? ", tasks with container specs" : "");
    std::printf("request: %.1f MiB, %s capnp's default message limit (%.0f MiB); schedule() reads "
                "%.1f MiB of it (traversal)\n",
                requestMiB, fitsRpc ? "under" : "OVER", static_cast<double>(defaultLimit) * 8 / (1 << 20),
                static_cast<double>(readWords) * 8 / (1 << 20));
    std::printf("building the request: %.0f ms\n\n", buildSeconds * 1e3);
    std::printf("%-16s %9s %9s %11s %11s %14s %10s\n", "mode", "placed", "unplaced", "best ms",
                "median ms", "placements/s", "build ms");
    const BigResult* reference = nullptr;
    for (auto& r : big) {
      if (!r.ok) {
        std::printf("%-16s failed: %s\n", r.mode.c_str(), r.error.c_str());
        continue;
      }
      if (reference == nullptr) reference = &r;
      if (!(r.plan == reference->plan)) {
        throw std::runtime_error("mode " + r.mode + " produced a different plan than " +
                                 reference->mode);
      }
      std::printf("%-16s %9zu %9zu %11.1f %11.1f %14.0f %10.0f\n", r.mode.c_str(),
                  r.plan.assigned, r.plan.unplaced, r.bestSeconds * 1e3, r.medianSeconds * 1e3,
                  static_cast<double>(r.plan.assigned) / r.medianSeconds, r.buildSeconds * 1e3);
    }
    if (reference != nullptr && !reference->plan.sampleReason.empty()) {
      std::printf("an unplaced task's reason: %s\n", reference->plan.sampleReason.c_str());
    }
    std::printf("\n1,000-task batch on the %d-node snapshot:\n", o.nodes);
    std::printf("%-16s %7s %9s %9s\n", "mode", "calls", "p50 ms", "p99 ms");
    for (auto& s : small) {
      std::printf("%-16s %7zu %9.2f %9.2f\n", s.mode.c_str(), s.ms.size(), percentile(s.ms, 0.5),
                  percentile(s.ms, 0.99));
    }
    for (auto& r : big) {
      if (r.ok && r.mode == "in-process") {
        double rate = static_cast<double>(r.plan.assigned) / r.medianSeconds;
        std::printf("\ntarget (reported, not asserted): in-process >= %.0f placements/s: %s\n",
                    kTargetPlacementsPerSec, rate >= kTargetPlacementsPerSec ? "met" : "NOT met");
      }
    }

    std::printf(
        "\n{\"bench\":\"scheduler-spread\",\"record\":\"setup\",\"buildType\":\"%s\",\"quick\":%s,"
        "\"tasks\":%ld,\"nodes\":%d,\"fullTasks\":%s,\"requestMiB\":%.1f,"
        "\"fitsDefaultMessageLimit\":%s,\"readMiB\":%.1f,\"loadBefore\":%.2f,\"loadAfter\":%.2f}\n",
        SWARM_BENCH_BUILD_TYPE, o.quick ? "true" : "false", taskCount, o.nodes,
        o.fullTasks ? "true" : "false", requestMiB, fitsRpc ? "true" : "false",
        static_cast<double>(readWords) * 8 / (1 << 20), loadBefore, loadAfter);
    for (auto& r : big) {
      if (!r.ok) continue;
      std::printf(
          "{\"bench\":\"scheduler-spread\",\"record\":\"batch\",\"mode\":\"%s\",\"placed\":%zu,"
          "\"unplaced\":%zu,\"bestMs\":%.1f,\"medianMs\":%.1f,\"placementsPerSec\":%.0f,"
          "\"buildMs\":%.1f}\n",
          r.mode.c_str(), r.plan.assigned, r.plan.unplaced, r.bestSeconds * 1e3,
          r.medianSeconds * 1e3, static_cast<double>(r.plan.assigned) / r.medianSeconds,
          r.buildSeconds * 1e3);
    }
    for (auto& s : small) {
      std::printf(
          "{\"bench\":\"scheduler-spread\",\"record\":\"small\",\"mode\":\"%s\",\"tasks\":1000,"
          "\"calls\":%zu,\"p50Ms\":%.2f,\"p99Ms\":%.2f}\n",
          s.mode.c_str(), s.ms.size(), percentile(s.ms, 0.5), percentile(s.ms, 0.99));
    }
    return 0;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "scheduler-spread-bench: %s\n%s", e.what(), USAGE);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "scheduler-spread-bench: %s\n", e.what());
    return 1;
  } catch (const kj::Exception& e) {
    std::fprintf(stderr, "scheduler-spread-bench: %s\n", e.getDescription().cStr());
    return 1;
  }
}
