// swarm-conformance: runs the behavioural cases of one plugin kind against a plugin library.
//
//   swarm-conformance --kind scheduler --plugin ./fake-scheduler.so [--out-of-process] ...
//
// Every case runs in a child process of its own: fork, a fresh KJ event loop, a fresh
// PluginInstance (in or out of process, through the kernel's real host code), configure(), the
// case, stop(). The child is there so that a plugin that hangs or crashes (an in-process plugin
// shares our address space) fails that one case and the runner goes on; the parent kills the
// child's process group after the per-case timeout and removes the case's scratch directory.
#include "conformance.h"

#include "config.h"
#include "errors.h"
#include "logging.h"
#include "plugin_host.h"
#include "plugin_library.h"

#include <capnp/capability.h>
#include <kj/async-io.h>
#include <kj/debug.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace swarm::conformance {
namespace {

using kernel::PluginConfig;
using kernel::PluginInstance;
using kernel::UserError;

constexpr const char* kUsage =
    "usage: swarm-conformance --kind KIND --plugin PATH.so [options]\n"
    "  --kind KIND           consensus, pki, scheduler, runtime or transport\n"
    "  --plugin PATH         the plugin library to test\n"
    "  --out-of-process      run the plugin in a child process (swarm-plugin-runner)\n"
    "  --runner PATH         the swarm-plugin-runner binary (default: next to this one)\n"
    "  --setting KEY=VALUE   a plugin setting, passed to configure(); repeatable\n"
    "  --param KEY=VALUE     an input for the cases, not the plugin (image=...); repeatable\n"
    "  --seed N              replay a run with this seed (default: random, printed)\n"
    "  --case TEXT           run only the cases whose name contains TEXT; repeatable\n"
    "  --timeout SECONDS     per-case limit (default 60)\n"
    "  --log-level LEVEL     plugin and host log level on stderr (default warning)\n"
    "  --list                print the case names for --kind and exit\n"
    "exit status: 0 all cases passed, 1 a case failed, 2 bad usage or the plugin could not load\n";

struct Options {
  schema::Kind kind = schema::Kind::UNSPECIFIED;
  std::string plugin;
  bool outOfProcess = false;
  std::string runner;
  std::vector<std::pair<std::string, std::string>> settings;
  std::vector<std::pair<std::string, std::string>> params;
  uint64_t seed = 0;
  bool seedGiven = false;
  std::vector<std::string> caseFilters;
  unsigned timeoutSeconds = 60;
  std::string logLevel = "warn";
  bool list = false;
};

[[noreturn]] void usageError(const std::string& message) {
  fprintf(stderr, "swarm-conformance: %s\n%s", message.c_str(), kUsage);
  exit(2);
}

std::pair<std::string, std::string> parseKeyValue(
    const std::string& flag, const std::string& arg,
    const std::vector<std::pair<std::string, std::string>>& seen) {
  auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0) {
    usageError(flag + " '" + arg + "' must be KEY=VALUE, e.g. " + flag + " latency-ms=5");
  }
  std::string key = arg.substr(0, eq);
  for (auto& [k, v] : seen) {
    if (k == key) usageError(flag + " '" + key + "' is given twice; keep one");
  }
  return {key, arg.substr(eq + 1)};
}

template <typename T>
T parseNumber(const std::string& flag, const std::string& arg, T min, T max) {
  T value{};
  auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), value);
  if (ec != std::errc() || end != arg.data() + arg.size() || value < min || value > max) {
    usageError(flag + " '" + arg + "' must be a whole number from " + std::to_string(min) + " to " +
               std::to_string(max));
  }
  return value;
}

Options parseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usageError(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--kind") {
      std::string name = value();
      o.kind = kernel::kindFromName(name);
      if (o.kind == schema::Kind::UNSPECIFIED) {
        usageError("unknown kind '" + name + "'; use one of: " + kernel::kindNames());
      }
    } else if (flag == "--plugin") {
      o.plugin = value();
    } else if (flag == "--out-of-process") {
      o.outOfProcess = true;
    } else if (flag == "--runner") {
      o.runner = value();
    } else if (flag == "--setting") {
      o.settings.push_back(parseKeyValue(flag, value(), o.settings));
    } else if (flag == "--param") {
      o.params.push_back(parseKeyValue(flag, value(), o.params));
    } else if (flag == "--seed") {
      o.seed = parseNumber<uint64_t>(flag, value(), 0, UINT64_MAX);
      o.seedGiven = true;
    } else if (flag == "--case") {
      o.caseFilters.push_back(value());
    } else if (flag == "--timeout") {
      o.timeoutSeconds = parseNumber<unsigned>(flag, value(), 1, 3600);
    } else if (flag == "--log-level") {
      o.logLevel = value();
      if (!kernel::parseLogLevel(o.logLevel)) {
        usageError("--log-level '" + o.logLevel +
                   "' is not known; use trace, debug, info, warning, error, critical or off");
      }
    } else if (flag == "--list") {
      o.list = true;
    } else if (flag == "--help" || flag == "-h") {
      printf("%s", kUsage);
      exit(0);
    } else {
      usageError("unknown argument '" + flag + "'");
    }
  }
  if (o.kind == schema::Kind::UNSPECIFIED) usageError("--kind is required");
  if (!o.list && o.plugin.empty()) usageError("--plugin is required");
  return o;
}

std::vector<Case> casesFor(schema::Kind kind) {
  std::vector<Case> cases = lifecycleCases(kind);
  std::vector<Case> own;
  switch (kind) {
    case schema::Kind::CONSENSUS:
      own = consensusCases();
      break;
    case schema::Kind::PKI:
      own = pkiCases();
      break;
    case schema::Kind::SCHEDULER:
      own = schedulerCases();
      break;
    case schema::Kind::RUNTIME:
      own = runtimeCases();
      break;
    case schema::Kind::TRANSPORT:
      own = transportCases();
      break;
    default:
      break;
  }
  for (auto& c : own) cases.push_back(std::move(c));
  return cases;
}

std::string describe(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const kj::Exception& e) {
    return kernel::describe(e);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

// ---- the child: one plugin instance, one case ----------------------------------------------

// What the child writes on its result pipe: one tag byte, then the reason.
constexpr char kPass = 'P';
constexpr char kFail = 'F';
constexpr char kSetupFailed = 'E';  // could not start or configure the plugin

void writeAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// Runs `c` (or, when null, only start + configure + stop: the probe) and reports on `fd`.
[[noreturn]] void childMain(const Options& o, const Case* c, uint64_t seed,
                            const std::string& scratchDir, int fd) {
  PluginConfig config;
  config.kind = o.kind;
  config.library = std::filesystem::absolute(o.plugin).lexically_normal().string();
  config.isolation =
      o.outOfProcess ? kernel::Isolation::outOfProcess : kernel::Isolation::inProcess;
  // A crash is a failure to report, never something to paper over with a restart.
  config.onCrash = kernel::CrashPolicy::stop;
  config.maxRestarts = 0;
  config.settings = o.settings;
  config.sourceFile = "swarm-conformance command line";
  PluginInstance::Options hostOptions;
  hostOptions.runnerPath = o.runner;

  std::string result;
  {
    auto io = kj::setupAsyncIo();
    kj::Own<PluginInstance> instance;
    try {
      instance = PluginInstance::start(io, config, hostOptions);
      instance->configure().wait(io.waitScope);
    } catch (...) {
      result = kSetupFailed + describe(std::current_exception());
    }
    std::vector<kj::Own<PluginInstance>> peers;  // from CaseContext::startPeer
    if (result.empty()) {
      std::string caseError;
      if (c != nullptr) {
        CaseContext ctx{io, io.waitScope, instance->bootstrap(), seed, scratchDir, o.params, {},
                        {}};
        ctx.restart = [&]() -> capnp::Capability::Client {
          instance->stop().wait(io.waitScope);
          instance = PluginInstance::start(io, config, hostOptions);
          instance->configure().wait(io.waitScope);
          ctx.bootstrap = instance->bootstrap();
          return ctx.bootstrap;
        };
        ctx.startPeer = [&]() -> capnp::Capability::Client {
          auto peer = PluginInstance::start(io, config, hostOptions);
          peer->configure().wait(io.waitScope);
          auto client = peer->bootstrap();
          peers.push_back(kj::mv(peer));
          return client;
        };
        try {
          c->run(ctx);
        } catch (...) {
          caseError = describe(std::current_exception());
          // A dropped connection usually means the plugin died: say so, with the host's reason.
          auto failed = instance->onFailure().exclusiveJoin(
              io.provider->getTimer().afterDelay(200 * kj::MILLISECONDS).then([]() {
                return kj::String();
              }));
          kj::String why = failed.wait(io.waitScope);
          if (why.size() > 0) caseError += std::string(" (the plugin failed: ") + why.cStr() + ")";
        }
      }
      std::string stopError;
      try {
        for (auto& peer : peers) peer->stop().wait(io.waitScope);
        instance->stop().wait(io.waitScope);
      } catch (...) {
        stopError = describe(std::current_exception());
      }
      if (!caseError.empty()) {
        result = kFail + caseError;
      } else if (!stopError.empty()) {
        result = kFail + ("stopping the plugin failed: " + stopError);
      } else {
        result = kPass;
      }
    }
  }
  writeAll(fd, result);
  close(fd);
  fflush(stdout);
  fflush(stderr);
  _exit(0);
}

// ---- the parent: isolation, timeout, scratch directory ---------------------------------------

struct Outcome {
  char tag;  // kPass, kFail, kSetupFailed
  std::string reason;
};

std::string signalDescription(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    return "killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  return "ended with wait status " + std::to_string(status);
}

Outcome runIsolated(const Options& o, const Case* c, uint64_t seed) {
  std::error_code ec;
  std::string tmpl =
      (std::filesystem::temp_directory_path(ec) / "swarm-conformance-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) {
    return {kSetupFailed, "cannot make a scratch directory under " +
                              std::filesystem::temp_directory_path(ec).string() + ": " +
                              strerror(errno) + "; set TMPDIR to a writable directory"};
  }
  const std::string scratchDir = tmpl;

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    std::filesystem::remove_all(scratchDir, ec);
    return {kSetupFailed, std::string("pipe: ") + strerror(errno)};
  }
  fflush(stdout);
  fflush(stderr);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    std::filesystem::remove_all(scratchDir, ec);
    return {kSetupFailed, std::string("fork: ") + strerror(errno)};
  }
  if (pid == 0) {
    close(fds[0]);
    // Own process group, so a timeout can kill the plugin runner too; die with the parent.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    childMain(o, c, seed, scratchDir, fds[1]);
  }
  close(fds[1]);
  setpgid(pid, pid);  // also from here, so the kill below cannot race the child's own call

  std::string message;
  bool timedOut = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.timeoutSeconds);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timedOut = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(left.count()));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) continue;  // re-check the deadline
    char buf[4096];
    ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the child is done (or died)
    message.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  if (timedOut) kill(-pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  kill(-pid, SIGKILL);  // anything the case left behind in its group (a hung plugin runner)
  std::filesystem::remove_all(scratchDir, ec);

  if (timedOut) {
    return {kFail, "no result within " + std::to_string(o.timeoutSeconds) +
                       " s (the plugin hung; raise --timeout if it is only slow)"};
  }
  if (message.empty()) {
    return {kFail, "the case process died without a result (" + signalDescription(status) +
                       "); the plugin crashed"};
  }
  return {message[0], message.substr(1)};
}

int run(const Options& o) {
  auto all = casesFor(o.kind);
  std::vector<const Case*> selected;
  for (auto& c : all) {
    bool match = o.caseFilters.empty();
    for (auto& f : o.caseFilters) match = match || c.name.find(f) != std::string::npos;
    if (match) selected.push_back(&c);
  }
  if (o.list) {
    for (auto* c : selected) printf("%s\n", c->name.c_str());
    return 0;
  }
  if (selected.empty()) {
    usageError("no " + std::string(kernel::kindName(o.kind)) +
               " case matches the --case filter; --list shows the names");
  }

  std::string pluginLine;
  try {
    auto library = kernel::PluginLibrary::load(o.plugin, o.kind);
    pluginLine = library.name() + " " + library.version();
  } catch (const UserError& e) {
    fprintf(stderr, "swarm-conformance: %s\n", e.what());
    return 2;
  }

  uint64_t seed = o.seed;
  if (!o.seedGiven) {
    std::random_device random;
    seed = (static_cast<uint64_t>(random()) << 32) | random();
  }
  printf("swarm-conformance: %s plugin %s (%s), %s, seed %llu\n", kernel::kindName(o.kind),
         pluginLine.c_str(), o.plugin.c_str(), o.outOfProcess ? "out-of-process" : "in-process",
         static_cast<unsigned long long>(seed));

  // Start and configure once before any case, so a refused setting or a missing runner is one
  // clear usage error rather than the same failure under every case name.
  Outcome probe = runIsolated(o, nullptr, seed);
  if (probe.tag != kPass) {
    fprintf(stderr, "swarm-conformance: cannot start and configure %s: %s\n", o.plugin.c_str(),
            probe.reason.c_str());
    return 2;
  }

  unsigned passed = 0, failed = 0;
  for (auto* c : selected) {
    Outcome outcome = runIsolated(o, c, seed);
    if (outcome.tag == kPass) {
      printf("PASS %s\n", c->name.c_str());
      ++passed;
    } else {
      std::string reason = outcome.reason;
      for (auto& ch : reason) {
        if (ch == '\n') ch = ' ';  // one line per case
      }
      if (outcome.tag == kSetupFailed) reason = "starting the plugin failed: " + reason;
      printf("FAIL %s: %s\n", c->name.c_str(), reason.c_str());
      ++failed;
    }
    fflush(stdout);
  }
  if (failed == 0) {
    printf("%u passed, 0 failed (seed %llu)\n", passed, static_cast<unsigned long long>(seed));
  } else {
    printf("%u passed, %u failed (seed %llu; replay with --seed %llu)\n", passed, failed,
           static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace swarm::conformance

int main(int argc, char** argv) {
  auto options = swarm::conformance::parseArgs(argc, argv);
  swarm::kernel::initLogging(*swarm::kernel::parseLogLevel(options.logLevel));
  try {
    return swarm::conformance::run(options);
  } catch (const swarm::kernel::UserError& e) {
    fprintf(stderr, "swarm-conformance: %s\n", e.what());
    return 2;
  }
}
