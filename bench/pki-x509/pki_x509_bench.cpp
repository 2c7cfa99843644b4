// pki-x509-bench: node-certificate issuances per second (and the calls around them) through the
// plugin boundary: pki-x509.so started by the kernel's host code (PluginInstance, in process by
// default), driven from this thread.
//
//   issue         Pki.issue of one CSR (made once by makeCsr), local P-256 root key: CSR check
//                 (parse, signature, curve) + build and sign the certificate + PEM
//   issue-pipe    the same with 32 calls in flight: what one plugin instance sustains
//   make-csr      Pki.makeCsr: a P-256 key, a signed CSR, PEM of both (the node's side)
//   verify        Pki.verify of one issued chain (chain building + signature + identity)
//   check-token   Pki.checkJoinToken of the manager token (parse + constant-time compare)
//
// The plugin is single-threaded, so issue-pipe is the plugin's ceiling and issue adds one round
// trip per call. Figures only mean something in Release on a quiet machine.
#include "plugin_host.h"

#include <swarm/schema/pki.capnp.h>

#include <kj/async-io.h>
#include <kj/debug.h>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef SWARM_BENCH_PKI_PLUGIN
#define SWARM_BENCH_PKI_PLUGIN "pki-x509.so"
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
constexpr double TARGET_ISSUES_PER_S = 1000;  // a 1000-node swarm re-issued in about a second
constexpr size_t WINDOW = 32;

struct Options {
  bool quick = false;
  bool outOfProcess = false;
  size_t calls = 5000;
};

const char* USAGE =
    "usage: pki-x509-bench [--quick] [--calls=N] [--out-of-process]\n"
    "Times pki-x509 calls through the plugin boundary. --quick: a tenth of the calls.\n";

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick") {
      o.quick = true;
    } else if (arg == "--out-of-process") {
      o.outOfProcess = true;
    } else if (arg.rfind("--calls=", 0) == 0) {
      char* end = nullptr;
      unsigned long long n = strtoull(arg.c_str() + 8, &end, 10);
      if (*end != '\0' || n == 0 || n > 10000000)
        throw std::invalid_argument("--calls takes a number from 1 to 10000000");
      o.calls = n;
    } else if (arg == "-h" || arg == "--help") {
      std::printf("%s", USAGE);
      exit(0);
    } else {
      throw std::invalid_argument("unknown argument '" + arg + "'; see --help");
    }
  }
  if (o.quick) o.calls = std::max<size_t>(o.calls / 10, 1);
  return o;
}

capnp::Data::Reader bytes(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}
std::string text(capnp::Data::Reader d) {
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}

double cpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

double loadAverage() {
  double load = 0;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &load) != 1) load = 0;
    std::fclose(f);
  }
  return load;
}

struct Result {
  const char* name;
  size_t calls;
  double seconds;
  double cpu;  // CPU seconds of this process (both sides when in process)
};

class Bench {
 public:
  Bench(kj::AsyncIoContext& io, const Options& o) : io(io), options(o), pki(nullptr) {
    kernel::PluginConfig config;
    config.kind = schema::Kind::PKI;
    config.library = SWARM_BENCH_PKI_PLUGIN;
    config.isolation =
        o.outOfProcess ? kernel::Isolation::outOfProcess : kernel::Isolation::inProcess;
    config.onCrash = kernel::CrashPolicy::stop;
    kernel::PluginInstance::Options hostOptions;
    hostOptions.runnerPath = SWARM_BENCH_RUNNER;
    plugin = kernel::PluginInstance::start(io, config, hostOptions);
    plugin->configure().wait(io.waitScope);
    pki = plugin->bootstrap().castAs<schema::Pki>();

    auto create = pki.createRootRequest();
    create.initRequest().initGenerate();
    auto root = create.send().wait(io.waitScope);
    auto load = pki.loadRootRequest();
    load.setRoot(root.getRoot());
    load.send().wait(io.waitScope);
    auto tokens = pki.makeJoinTokensRequest().send().wait(io.waitScope);
    managerToken = tokens.getTokens().getManager();
    workerToken = tokens.getTokens().getWorker();
    auto csrRequest = pki.makeCsrRequest();
    fillIdentity(csrRequest.initIdentity());
    csr = text(csrRequest.send().wait(io.waitScope).getCsr());
    chain = text(issueRequest().send().wait(io.waitScope).getCertificate().getChain());
  }

  ~Bench() noexcept(false) {
    pki = nullptr;
    plugin->stop().wait(io.waitScope);
  }

  std::vector<Result> run() {
    std::vector<Result> results;
    size_t n = options.calls;
    results.push_back(time("issue", n, [&] { issueRequest().send().wait(io.waitScope); }));
    results.push_back(timePipelined("issue-pipe", n));
    results.push_back(time("make-csr", n, [&] {
      auto request = pki.makeCsrRequest();
      fillIdentity(request.initIdentity());
      request.send().wait(io.waitScope);
    }));
    results.push_back(time("verify", n, [&] {
      auto request = pki.verifyRequest();
      request.setChain(bytes(chain));
      auto response = request.send().wait(io.waitScope);
      KJ_ASSERT(response.getCheck().isValid());
    }));
    results.push_back(time("check-token", n * 4, [&] {
      auto request = pki.checkJoinTokenRequest();
      request.setToken(managerToken);
      request.initCurrent().setManager(managerToken);
      request.getCurrent().setWorker(workerToken);
      auto response = request.send().wait(io.waitScope);
      KJ_ASSERT(response.getCheck().isRole());
    }));
    return results;
  }

 private:
  static void fillIdentity(schema::Identity::Builder id) {
    id.setNodeId("bench0node0000000000000001");
    id.setRole(schema::NodeRole::WORKER);
    id.setClusterId("bench0cluster000000000001");
  }

  capnp::Request<schema::Pki::IssueParams, schema::Pki::IssueResults> issueRequest() {
    auto request = pki.issueRequest();
    request.setCsr(bytes(csr));
    fillIdentity(request.initIdentity());
    return request;
  }

  template <typename F>
  Result time(const char* name, size_t calls, F&& call) {
    for (size_t i = 0; i < std::min<size_t>(calls / 10, 200); ++i) call();  // warm-up
    double cpu = cpuSeconds();
    auto start = Clock::now();
    for (size_t i = 0; i < calls; ++i) call();
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return {name, calls, seconds, cpuSeconds() - cpu};
  }

  // A sliding window of WINDOW calls: each answer sends the next.
  Result timePipelined(const char* name, size_t calls) {
    double cpu = cpuSeconds();
    auto start = Clock::now();
    size_t sent = 0, done = 0;
    kj::TaskSet::ErrorHandler* handler = &errors;
    kj::TaskSet tasks(*handler);
    kj::Function<void()> sendOne;
    sendOne = [&]() {
      ++sent;
      tasks.add(issueRequest().send().then([&](auto&&) {
        ++done;
        if (sent < calls) sendOne();
      }));
    };
    for (size_t i = 0; i < std::min(WINDOW, calls); ++i) sendOne();
    tasks.onEmpty().wait(io.waitScope);
    KJ_ASSERT(done == calls, done, calls);
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return {name, calls, seconds, cpuSeconds() - cpu};
  }

  class Errors final : public kj::TaskSet::ErrorHandler {
   public:
    void taskFailed(kj::Exception&& e) override { kj::throwFatalException(kj::mv(e)); }
  };

  kj::AsyncIoContext& io;
  Options options;
  kj::Own<kernel::PluginInstance> plugin;
  schema::Pki::Client pki;
  Errors errors;
  std::string managerToken, workerToken, csr, chain;
};

void report(const Options& o, const std::vector<Result>& results, double loadBefore,
            double loadAfter) {
  const char* mode = o.outOfProcess ? "out-of-process" : "in-process";
  std::printf("pki-x509-bench (%s, %s build, load %.2f -> %.2f)\n\n", mode, SWARM_BENCH_BUILD_TYPE,
              loadBefore, loadAfter);
  std::printf("%-12s %9s %12s %12s %14s\n", "call", "calls", "calls/s", "us/call", "cpu us/call");
  for (auto& r : results) {
    std::printf("%-12s %9zu %12.0f %12.1f %14.1f\n", r.name, r.calls, r.calls / r.seconds,
                r.seconds / r.calls * 1e6, r.cpu / r.calls * 1e6);
  }
  for (auto& r : results) {
    if (std::strcmp(r.name, "issue-pipe") == 0) {
      std::printf("\ntarget (reported, not asserted): issue-pipe >= %.0f issuances/s: %s\n",
                  TARGET_ISSUES_PER_S,
                  r.calls / r.seconds >= TARGET_ISSUES_PER_S ? "met" : "NOT met");
    }
  }
  std::printf(
      "\n{\"bench\":\"pki-x509\",\"record\":\"setup\",\"buildType\":\"%s\",\"mode\":\"%s\","
      "\"quick\":%s,"
      "\"loadBefore\":%.2f,\"loadAfter\":%.2f}\n",
      SWARM_BENCH_BUILD_TYPE, mode, o.quick ? "true" : "false", loadBefore, loadAfter);
  for (auto& r : results) {
    std::printf(
        "{\"bench\":\"pki-x509\",\"record\":\"result\",\"call\":\"%s\",\"calls\":%zu,\"perSecond\":"
        "%.1f,"
        "\"usPerCall\":%.2f,\"cpuUsPerCall\":%.2f}\n",
        r.name, r.calls, r.calls / r.seconds, r.seconds / r.calls * 1e6, r.cpu / r.calls * 1e6);
  }
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
    auto io = kj::setupAsyncIo();
    double loadBefore = loadAverage();
    std::vector<Result> results;
    {
      Bench bench(io, o);
      results = bench.run();
    }
    report(o, results, loadBefore, loadAverage());
    return 0;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "pki-x509-bench: %s\n%s", e.what(), USAGE);
    return 2;
  } catch (const kj::Exception& e) {
    std::fprintf(stderr, "pki-x509-bench: %s\n", e.getDescription().cStr());
    return 1;
  }
}
