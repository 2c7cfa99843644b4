// The swarm-kernel binary against good (fake) and deliberately broken plugins: every bad-input
// case exits non-zero with one clear line and leaves nothing running; lifecycle, crash handling
// and stop timeouts behave as documented in kernel/src/plugin_host.h.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

extern char** environ;

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

std::string readFile(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A per-test directory holding copies of the plugin libraries, so any process still running from
// it afterwards is recognisable by its command line.
class Scratch {
 public:
  Scratch() {
    static int counter = 0;
    dir = fs::temp_directory_path() /
          ("swarm-kernel-cli-" + std::to_string(getpid()) + "-" + std::to_string(++counter));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~Scratch() { fs::remove_all(dir); }

  std::string lib(const char* source) {
    fs::path target = dir / fs::path(source).filename();
    if (!fs::exists(target)) fs::copy_file(source, target);
    return target.string();
  }

  // Writes plugins.conf: the five fakes, with `overrides` replacing whole sections by kind.
  std::string config(std::map<std::string, std::string> overrides = {}) {
    std::map<std::string, std::string> sections = {
        {"consensus", "library = " + lib(FAKE_CONSENSUS) + "\n"},
        {"pki", "library = " + lib(FAKE_PKI) + "\n"},
        {"scheduler", "library = " + lib(FAKE_SCHEDULER) + "\n"},
        {"runtime", "library = " + lib(FAKE_RUNTIME) + "\n"},
        {"transport", "library = " + lib(FAKE_TRANSPORT) + "\n"},
    };
    for (auto& [kind, body] : overrides) sections[kind] = body;
    std::string text;
    for (auto kind : {"consensus", "pki", "scheduler", "runtime", "transport"}) {
      if (!sections[kind].empty()) text += std::string("[") + kind + "]\n" + sections[kind];
    }
    return write("plugins.conf", text);
  }

  std::string write(const std::string& name, const std::string& text) {
    fs::path path = dir / name;
    std::ofstream(path) << text;
    return path.string();
  }

  // Processes other than `except` whose command line mentions this directory (a kernel, or the
  // runners of its out-of-process plugins).
  std::vector<int> leftovers(int except = 0) const {
    std::vector<int> pids;
    for (auto& entry : fs::directory_iterator("/proc")) {
      std::string name = entry.path().filename();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::string cmdline = readFile(entry.path() / "cmdline");
      int pid = std::stoi(name);
      if (pid != except && cmdline.find(dir.string()) != std::string::npos) pids.push_back(pid);
    }
    return pids;
  }

  fs::path dir;
};

struct Result {
  int exitCode = -1;
  std::string output;  // stdout and stderr together
};

class KernelProcess {
 public:
  KernelProcess(const Scratch& scratch, std::vector<std::string> args)
      : outputPath(scratch.dir / ("kernel-output-" + std::to_string(++runs) + ".log")) {
    args.insert(args.begin(), SWARM_KERNEL_BIN);
    // Each run its own manager state and API socket: tests run in parallel.
    for (const char* flag : {"--state-dir", "--api-socket"}) {
      args.push_back(flag);
      args.push_back((scratch.dir / (std::string(flag + 2) + "-" + std::to_string(runs))).string());
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, outputPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    REQUIRE(posix_spawn(&pid, SWARM_KERNEL_BIN, &actions, nullptr, argv.data(), environ) == 0);
    posix_spawn_file_actions_destroy(&actions);
  }

  ~KernelProcess() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  }

  std::string output() const { return readFile(outputPath); }

  bool waitForOutput(const std::string& text, std::chrono::milliseconds timeout = 20s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (output().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  void signal(int signum) { REQUIRE(kill(pid, signum) == 0); }
  int processId() const { return pid; }

  Result wait(std::chrono::milliseconds timeout = 30s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        FAIL("swarm-kernel did not exit within " << timeout.count() << " ms; output:\n" << output());
      }
      std::this_thread::sleep_for(10ms);
    }
    pid = 0;
    Result result;
    result.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    result.output = output();
    return result;
  }

 private:
  static inline int runs = 0;
  fs::path outputPath;
  pid_t pid = 0;
};

Result runKernel(const Scratch& scratch, std::vector<std::string> args) {
  KernelProcess kernel(scratch, std::move(args));
  return kernel.wait();
}

// The error line the operator sees: exactly one line starting "swarm-kernel: error: ".
std::string errorLine(const Result& result) {
  std::istringstream lines(result.output);
  std::string line, found;
  int count = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("swarm-kernel: error: ", 0) == 0) {
      found = line;
      ++count;
    }
  }
  INFO("output:\n" << result.output);
  REQUIRE(count == 1);
  return found;
}

void requireRefused(Scratch& scratch, const std::string& config, const std::string& expected) {
  Result result = runKernel(scratch, {"--plugins", config});
  INFO("output:\n" << result.output);
  CHECK(result.exitCode == 1);
  CHECK_THAT(errorLine(result), Catch::Contains(expected));
  CHECK(scratch.leftovers().empty());
}

}  // namespace

TEST_CASE("usage errors exit 2 and point at --help") {
  Scratch scratch;
  Result none = runKernel(scratch, {});
  CHECK(none.exitCode == 2);
  CHECK_THAT(none.output, Catch::Contains("--plugins <plugins.conf> is required"));
  Result unknown = runKernel(scratch, {"--plugins", "x.conf", "--frobnicate"});
  CHECK(unknown.exitCode == 2);
  CHECK_THAT(unknown.output, Catch::Contains("unknown option '--frobnicate'"));
  Result level = runKernel(scratch, {"--plugins", "x.conf", "--log-level", "loud"});
  CHECK(level.exitCode == 2);
  CHECK_THAT(level.output, Catch::Contains("unknown log level 'loud'"));
}

TEST_CASE("version and help flags answer without a config") {
  Scratch scratch;
  Result version = runKernel(scratch, {"--version"});
  CHECK(version.exitCode == 0);
  CHECK_THAT(version.output, Catch::Contains("(plugin ABI 1)"));
  Result help = runKernel(scratch, {"--help"});
  CHECK(help.exitCode == 0);
  CHECK_THAT(help.output, Catch::Contains("Usage: swarm-kernel --plugins <plugins.conf>"));
}

TEST_CASE("a missing config file is refused") {
  Scratch scratch;
  auto path = (scratch.dir / "nope.conf").string();
  requireRefused(scratch, path, path + ": config file not found");
}

TEST_CASE("a config syntax error names the line") {
  Scratch scratch;
  auto path = scratch.write("plugins.conf", "[consensus]\nlibrary = x.so\nnonsense\n");
  requireRefused(scratch, path, path + ":3: expected 'key = value' or '[kind]'");
}

TEST_CASE("unknown, duplicate and missing kinds are refused") {
  Scratch scratch;
  auto unknown = scratch.write("unknown.conf", "[gossip]\nlibrary = g.so\n");
  requireRefused(scratch, unknown, unknown + ":1: unknown plugin kind 'gossip'");
  auto duplicate = scratch.write("duplicate.conf", "[pki]\nlibrary = a.so\n[pki]\nlibrary = b.so\n");
  requireRefused(scratch, duplicate, duplicate + ":3: duplicate kind [pki] (first at line 1)");
  auto missing = scratch.config({{"runtime", ""}});
  requireRefused(scratch, missing, "missing required kind [runtime]");
}

TEST_CASE("a missing library is refused with its config line") {
  Scratch scratch;
  auto absent = (scratch.dir / "absent.so").string();
  auto config = scratch.config({{"runtime", "library = " + absent + "\n"}});
  requireRefused(scratch, config, ":7: [runtime] plugin library " + absent + " not found");
}

TEST_CASE("a file that is not a shared library is refused") {
  Scratch scratch;
  auto config = scratch.config({{"scheduler", "library = " + std::string(NOT_A_LIBRARY) + "\n"}});
  requireRefused(scratch, config, "cannot be loaded");
}

TEST_CASE("a library without the entry symbol is refused") {
  Scratch scratch;
  auto config = scratch.config({{"scheduler", "library = " + scratch.lib(BAD_NO_ENTRY) + "\n"}});
  requireRefused(scratch, config, "does not export 'swarm_plugin_entry'; it is not a swarm-kernel plugin");
}

TEST_CASE("an ABI version mismatch is refused") {
  Scratch scratch;
  auto config = scratch.config({{"scheduler", "library = " + scratch.lib(BAD_ABI_MISMATCH) + "\n"}});
  requireRefused(scratch, config,
                 "was built for plugin ABI version 42 but this kernel speaks version 1; rebuild "
                 "the plugin against this kernel's SDK");
}

TEST_CASE("a plugin that refuses the host's ABI is refused") {
  Scratch scratch;
  auto config = scratch.config({{"scheduler", "library = " + scratch.lib(BAD_REFUSES_HOST) + "\n"}});
  requireRefused(scratch, config, "refuses this kernel's plugin ABI version 1");
}

TEST_CASE("an unknown kind in the descriptor and a truncated descriptor are refused") {
  Scratch scratch;
  auto unknown = scratch.config({{"scheduler", "library = " + scratch.lib(BAD_UNKNOWN_KIND) + "\n"}});
  requireRefused(scratch, unknown, "declares unknown kind 42");
  auto truncated = scratch.config({{"scheduler", "library = " + scratch.lib(BAD_TRUNCATED) + "\n"}});
  requireRefused(scratch, truncated, "has a truncated descriptor (8 bytes");
}

TEST_CASE("a plugin of another kind is refused") {
  Scratch scratch;
  auto config = scratch.config({{"scheduler", "library = " + scratch.lib(FAKE_RUNTIME) + "\n"}});
  requireRefused(scratch, config,
                 "is a runtime plugin, but it is configured as scheduler; put it under [runtime] "
                 "or point [scheduler] at a scheduler plugin");
}

TEST_CASE("a plugin init failure is reported with the plugin's reason, and nothing is left running") {
  Scratch scratch;
  // The plugins before it run out of process, so a leftover would be visible.
  std::string outOfProcess = "isolation = out-of-process\n";
  auto config = scratch.config({
      {"consensus", "library = " + scratch.lib(FAKE_CONSENSUS) + "\n" + outOfProcess},
      {"pki", "library = " + scratch.lib(FAKE_PKI) + "\n" + outOfProcess},
      {"scheduler", "library = " + scratch.lib(BAD_MISBEHAVING) + "\n" + outOfProcess +
                        "setting.fail-configure = setting 'zone' is required; add setting.zone\n"},
  });
  requireRefused(scratch, config,
                 "[scheduler] plugin 'bad-misbehaving-scheduler' failed to initialize: setting "
                 "'zone' is required; add setting.zone");
}

TEST_CASE("an unknown plugin setting is refused by the plugin") {
  Scratch scratch;
  auto config = scratch.config(
      {{"scheduler", "library = " + scratch.lib(BAD_MISBEHAVING) + "\nsetting.colour = blue\n"}});
  requireRefused(scratch, config,
                 "failed to initialize: unknown setting colour; this plugin accepts: fail-configure, "
                 "crash-after-ms, hang-on-shutdown");
}

TEST_CASE("check mode starts, configures and health-checks every plugin, in and out of process") {
  Scratch scratch;
  auto config = scratch.config({
      {"pki", "library = " + scratch.lib(FAKE_PKI) + "\nisolation = out-of-process\n"},
      {"runtime", "library = " + scratch.lib(FAKE_RUNTIME) + "\nisolation = out-of-process\n"},
  });
  Result result = runKernel(scratch, {"--plugins", config, "--check"});
  INFO("output:\n" << result.output);
  CHECK(result.exitCode == 0);
  CHECK_THAT(result.output, Catch::Contains("all 5 plugins running"));
  CHECK_THAT(result.output, Catch::Contains("check passed"));
  CHECK(scratch.leftovers().empty());
}

TEST_CASE("SIGTERM and SIGINT stop every plugin in order and exit 0") {
  for (int signum : {SIGTERM, SIGINT}) {
    Scratch scratch;
    auto config = scratch.config({
        {"transport", "library = " + scratch.lib(FAKE_TRANSPORT) + "\nisolation = out-of-process\n"},
    });
    KernelProcess kernel(scratch, {"--plugins", config});
    REQUIRE(kernel.waitForOutput("all 5 plugins running"));
    CHECK(scratch.leftovers(kernel.processId()).size() == 1);  // the transport's runner
    kernel.signal(signum);
    Result result = kernel.wait();
    INFO("output:\n" << result.output);
    CHECK(result.exitCode == 0);
    CHECK_THAT(result.output, Catch::Contains(signum == SIGTERM ? "received SIGTERM; stopping"
                                                                : "received SIGINT; stopping"));
    // Reverse start order: transport first, consensus last.
    auto transportStopped = result.output.find("[fake-transport] stopped");
    auto consensusStopped = result.output.find("[fake-consensus] stopped");
    CHECK(transportStopped != std::string::npos);
    CHECK(consensusStopped != std::string::npos);
    CHECK(transportStopped < consensusStopped);
    CHECK(scratch.leftovers().empty());
  }
}

TEST_CASE("an out-of-process plugin that crashes is restarted with backoff, then given up on") {
  Scratch scratch;
  auto config = scratch.config({{"scheduler", "library = " + scratch.lib(BAD_MISBEHAVING) +
                                                  "\nisolation = out-of-process\n"
                                                  "restart-backoff-ms = 20\nmax-restarts = 2\n"
                                                  "setting.crash-after-ms = 200\n"}});
  Result result = runKernel(scratch, {"--plugins", config});
  INFO("output:\n" << result.output);
  CHECK(result.exitCode == 1);
  CHECK_THAT(result.output, Catch::Contains("plugin process was killed by signal 6 (Aborted); restarting in 20 ms"));
  CHECK_THAT(result.output, Catch::Contains("restarting in 40 ms"));
  CHECK_THAT(result.output, Catch::Contains("restarted (restart 2)"));
  CHECK_THAT(errorLine(result),
             Catch::Contains("it crashed 3 times within 60 s (max-restarts = 2), giving up"));
  CHECK(scratch.leftovers().empty());
}

TEST_CASE("an out-of-process crash with on-crash = stop stops the kernel") {
  Scratch scratch;
  auto config = scratch.config({{"scheduler", "library = " + scratch.lib(BAD_MISBEHAVING) +
                                                  "\nisolation = out-of-process\non-crash = stop\n"
                                                  "setting.crash-after-ms = 100\n"}});
  Result result = runKernel(scratch, {"--plugins", config});
  INFO("output:\n" << result.output);
  CHECK(result.exitCode == 1);
  CHECK_THAT(result.output, Catch::Contains("scheduler plugin 'bad-misbehaving-scheduler' failed: "
                                            "plugin process was killed by signal 6 (Aborted) "
                                            "(on-crash = stop); stopping"));
  CHECK_THAT(result.output, Catch::Contains("[fake-consensus] stopped"));
  CHECK(scratch.leftovers().empty());
}

TEST_CASE("an in-process plugin that stops serving is reported and the kernel stops in order") {
  Scratch scratch;
  auto config = scratch.config({{"scheduler", "library = " + scratch.lib(BAD_STOPS_SERVING) + "\n"}});
  Result result = runKernel(scratch, {"--plugins", config});
  INFO("output:\n" << result.output);
  CHECK(result.exitCode == 1);
  CHECK_THAT(result.output,
             Catch::Contains("scheduler plugin 'bad-stops-serving' failed: in-process plugin "
                             "stopped serving unexpectedly: serve() returned 2: simulated crash: "
                             "stopped serving on its own; stopping"));
  CHECK_THAT(result.output, Catch::Contains("[fake-transport] stopped"));
}

TEST_CASE("a plugin that hangs on shutdown is abandoned (in process) or killed (out of process)") {
  for (bool outOfProcess : {false, true}) {
    Scratch scratch;
    auto config = scratch.config(
        {{"scheduler", "library = " + scratch.lib(BAD_MISBEHAVING) + "\n" +
                           (outOfProcess ? "isolation = out-of-process\n" : "") +
                           "setting.hang-on-shutdown = true\n"}});
    KernelProcess kernel(scratch, {"--plugins", config, "--stop-timeout-ms", "300"});
    REQUIRE(kernel.waitForOutput("all 5 plugins running"));
    kernel.signal(SIGTERM);
    Result result = kernel.wait();
    INFO("output:\n" << result.output);
    CHECK(result.exitCode == 0);
    CHECK_THAT(result.output, Catch::Contains("shutdown() did not complete cleanly"));
    CHECK_THAT(result.output,
               Catch::Contains(outOfProcess ? "did not exit within 300 ms; killing it"
                                            : "did not stop within 300 ms; abandoning its thread"));
    CHECK_THAT(result.output, Catch::Contains("[fake-consensus] stopped"));
    CHECK(scratch.leftovers().empty());
  }
}
