#include "plugin_host.h"

#include "errors.h"
#include "logging.h"

#include <swarm/schema/plugin.capnp.h>

#include <capnp/rpc-twoparty.h>
#include <kj/debug.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <thread>

#ifndef SWARM_RUNNER_INSTALL_PATH
#define SWARM_RUNNER_INSTALL_PATH "/usr/local/libexec/swarm-kernel/swarm-plugin-runner"
#endif

namespace swarm::kernel {

namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr int kChildPluginFd = 3;
constexpr auto kCrashWindow = std::chrono::seconds(60);
constexpr kj::Duration kReapPollInterval = 10 * kj::MILLISECONDS;

kj::Duration toKj(std::chrono::milliseconds ms) { return ms.count() * kj::MILLISECONDS; }

spdlog::level::level_enum toSpdlog(schema::LogLevel level) {
  switch (level) {
    case schema::LogLevel::TRACE: return spdlog::level::trace;
    case schema::LogLevel::DEBUG: return spdlog::level::debug;
    case schema::LogLevel::INFO: return spdlog::level::info;
    case schema::LogLevel::WARN: return spdlog::level::warn;
    case schema::LogLevel::ERROR: return spdlog::level::err;
    case schema::LogLevel::CRITICAL: return spdlog::level::critical;
  }
  return spdlog::level::info;
}

std::string describeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    return "was killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  return "ended with wait status " + std::to_string(status);
}

std::pair<int, int> makeSocketPair() {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    throw UserError(std::string("cannot create a socketpair for a plugin: ") + strerror(errno));
  }
  return {fds[0], fds[1]};
}

std::string defaultRunnerPath() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto beside = self.parent_path() / "swarm-plugin-runner";
    if (std::filesystem::exists(beside, ec)) return beside.string();
  }
  return SWARM_RUNNER_INSTALL_PATH;
}

// What the kernel offers every plugin: logging under the plugin's name.
class HostImpl final : public schema::Host::Server {
 public:
  explicit HostImpl(std::shared_ptr<spdlog::logger> pluginLog) : pluginLog(std::move(pluginLog)) {}

  kj::Promise<void> log(LogContext context) override {
    auto params = context.getParams();
    pluginLog->log(toSpdlog(params.getLevel()), "{}", params.getMessage().cStr());
    return kj::READY_NOW;
  }

 private:
  std::shared_ptr<spdlog::logger> pluginLog;
};

// Carries the fulfiller onto the plugin thread: std::thread needs a callable whose destructor
// does not throw, and kj::Own's may.
struct ServeFulfiller {
  explicit ServeFulfiller(kj::Own<kj::CrossThreadPromiseFulfiller<kj::String>> f)
      : fulfiller(kj::mv(f)) {}
  ServeFulfiller(ServeFulfiller&&) = default;
  ~ServeFulfiller() noexcept {}
  kj::Own<kj::CrossThreadPromiseFulfiller<kj::String>> fulfiller;
};

// The kernel's end of one serving connection.
struct Session {
  Session(kj::AsyncIoContext& io, int fd)
      : stream(io.lowLevelProvider->wrapSocketFd(fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP)),
        client(kj::heap<capnp::TwoPartyClient>(*stream)),
        bootstrap(client->bootstrap()) {}

  kj::Own<kj::AsyncIoStream> stream;
  kj::Own<capnp::TwoPartyClient> client;
  capnp::Capability::Client bootstrap;
  // Declared last so it is destroyed before the network it watches.
  kj::Maybe<kj::Promise<void>> disconnectWatch;
};

class PluginBase : public PluginInstance, protected kj::TaskSet::ErrorHandler {
 public:
  PluginBase(kj::AsyncIoContext& io, PluginLibrary library, PluginConfig config, Options options)
      : io(io),
        library(std::move(library)),
        cfg(std::move(config)),
        options(std::move(options)),
        log(logger(this->library.name())) {
    auto paf = kj::newPromiseAndFulfiller<void>();
    failed = paf.promise.fork();
    failedFulfiller = kj::mv(paf.fulfiller);
  }

  const std::string& name() const override { return library.name(); }
  const PluginConfig& config() const override { return cfg; }
  unsigned restarts() const override { return restartCount; }

  capnp::Capability::Client bootstrap() override {
    KJ_IF_MAYBE(s, session) { return (*s)->bootstrap; }
    return capnp::Capability::Client(
        KJ_EXCEPTION(DISCONNECTED, "plugin is not running", library.name()));
  }

  kj::Promise<void> configure() override {
    auto request = bootstrap().castAs<schema::Plugin>().configureRequest();
    auto settings = request.initSettings(cfg.settings.size());
    for (size_t i = 0; i < cfg.settings.size(); ++i) {
      settings[i].setKey(cfg.settings[i].first);
      settings[i].setValue(cfg.settings[i].second);
    }
    request.setHost(kj::heap<HostImpl>(log));
    auto call = request.send().ignoreResult();
    return io.provider->getTimer()
        .timeoutAfter(toKj(options.configureTimeout), kj::mv(call))
        .catch_([this](kj::Exception&& e) -> kj::Promise<void> {
          std::string reason = e.getType() == kj::Exception::Type::OVERLOADED &&
                                       e.getDescription().startsWith("operation timed out")
                                   ? "configure() did not answer within " +
                                         std::to_string(options.configureTimeout.count()) + " ms"
                                   : describe(e);
          return kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                               kj::str(reason.c_str()));
        });
  }

  kj::Promise<kj::String> onFailure() override {
    return failed.addBranch().then([this]() { return kj::str(failureReason.c_str()); });
  }

  kj::Promise<void> stop() override {
    KJ_IF_MAYBE(p, stopped) { return p->addBranch(); }
    stopping = true;
    auto done = gracefulShutdown().then([this]() { return terminate(); }).fork();
    auto branch = done.addBranch();
    stopped = kj::mv(done);
    return branch;
  }

 protected:
  // Subclasses: end the serving side after the connection is dropped.
  virtual kj::Promise<void> terminate() = 0;

  void reportFailure(const std::string& reason) {
    if (failedFulfiller->isWaiting()) {
      failureReason = reason;
      log->error("{}", reason);
      failedFulfiller->fulfill();
    }
  }

  void taskFailed(kj::Exception&& e) override {
    log->error("plugin host task failed: {}", describe(e));
  }

  kj::AsyncIoContext& io;
  PluginLibrary library;
  PluginConfig cfg;
  Options options;
  std::shared_ptr<spdlog::logger> log;
  kj::Maybe<kj::Own<Session>> session;
  bool stopping = false;
  unsigned restartCount = 0;
  kj::TaskSet tasks{*this};

 private:
  kj::Promise<void> gracefulShutdown() {
    if (session == nullptr) return kj::READY_NOW;
    auto call = bootstrap().castAs<schema::Plugin>().shutdownRequest().send().ignoreResult();
    return io.provider->getTimer()
        .timeoutAfter(toKj(options.stopTimeout), kj::mv(call))
        .catch_([this](kj::Exception&& e) {
          log->warn("shutdown() did not complete cleanly: {}", describe(e));
        });
  }

  kj::ForkedPromise<void> failed = nullptr;
  kj::Own<kj::PromiseFulfiller<void>> failedFulfiller;
  std::string failureReason;
  kj::Maybe<kj::ForkedPromise<void>> stopped;
};

// Serves the plugin on a thread of the kernel process. A plugin that crashes the process cannot
// be contained here: use isolation = out-of-process for that.
class InProcessPlugin final : public PluginBase {
 public:
  using PluginBase::PluginBase;

  ~InProcessPlugin() noexcept(false) override {
    session = nullptr;
    if (thread.joinable()) abandonThread();
  }

  int pid() const override { return 0; }

  void spawn() {
    auto [kernelFd, pluginFd] = makeSocketPair();
    auto paf = kj::newPromiseAndCrossThreadFulfiller<kj::String>();
    const swarm_plugin_descriptor& descriptor = library.descriptor();
    thread = std::thread([&descriptor, pluginFd = pluginFd,
                          done = ServeFulfiller{kj::mv(paf.fulfiller)}]() mutable {
      char error[1024] = {0};
      int32_t status = descriptor.serve(pluginFd, error, sizeof(error));
      done.fulfiller->fulfill(status == SWARM_SERVE_OK
                             ? kj::str("")
                             : kj::str("serve() returned ", status, ": ", error));
    });
    session = kj::heap<Session>(io, kernelFd);
    threadDone = paf.promise
                     .then([this](kj::String result) { serveResult = result.cStr(); })
                     .fork();
    tasks.add(threadDone.addBranch().then([this]() {
      if (!stopping) {
        reportFailure("in-process plugin stopped serving unexpectedly" +
                      (serveResult.empty() ? std::string() : ": " + serveResult));
      }
    }));
    log->info("started in-process from {}", library.path());
  }

 protected:
  kj::Promise<void> terminate() override {
    session = nullptr;  // the plugin's serve() sees the disconnect and returns
    return io.provider->getTimer()
        .timeoutAfter(toKj(options.stopTimeout), threadDone.addBranch())
        .then(
            [this]() {
              thread.join();
              if (!serveResult.empty()) log->warn("{}", serveResult);
              log->info("stopped");
            },
            [this](kj::Exception&&) {
              log->error("did not stop within {} ms; abandoning its thread",
                         options.stopTimeout.count());
              abandonThread();
            });
  }

 private:
  void abandonThread() {
    thread.detach();
    // The detached thread still runs the library's code: it must never be unloaded.
    static std::vector<PluginLibrary>* abandoned = new std::vector<PluginLibrary>();
    abandoned->push_back(std::move(library));
  }

  std::thread thread;
  kj::ForkedPromise<void> threadDone = nullptr;
  std::string serveResult;
};

// Serves the plugin in a child process (`swarm-plugin-runner <library> 3`), restarting it with
// exponential backoff when it crashes, per the config's on-crash policy.
class OutOfProcessPlugin final : public PluginBase {
 public:
  using PluginBase::PluginBase;

  ~OutOfProcessPlugin() noexcept(false) override {
    session = nullptr;
    if (childPid > 0) {
      ::kill(childPid, SIGKILL);
      int status;
      ::waitpid(childPid, &status, 0);
    }
  }

  int pid() const override { return childPid; }

  void spawn() {
    std::string runner = options.runnerPath.empty() ? defaultRunnerPath() : options.runnerPath;
    if (::access(runner.c_str(), X_OK) != 0) {
      throw UserError("out-of-process plugins need swarm-plugin-runner, not found at " + runner +
                      "; install it next to swarm-kernel or use isolation = in-process");
    }
    auto [kernelFd, childFd] = makeSocketPair();
    std::string fdArg = std::to_string(kChildPluginFd);
    const char* argv[] = {runner.c_str(), library.path().c_str(), fdArg.c_str(), nullptr};
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
      int err = errno;
      ::close(kernelFd);
      ::close(childFd);
      throw UserError(std::string("cannot fork a plugin process: ") + strerror(err));
    }
    if (pid == 0) {
      // Child: only async-signal-safe calls until exec. Dies with the kernel, so a killed kernel
      // leaves no plugin behind.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) _exit(127);
      if (childFd == kChildPluginFd) {
        ::fcntl(childFd, F_SETFD, 0);
      } else if (::dup2(childFd, kChildPluginFd) < 0) {
        _exit(127);
      }
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::execv(argv[0], const_cast<char* const*>(argv));
      _exit(127);
    }
    ::close(childFd);
    childPid = pid;
    exitWatch = nullptr;
    uint64_t generation = ++spawnGeneration;
    auto fresh = kj::heap<Session>(io, kernelFd);
    fresh->disconnectWatch =
        fresh->client->onDisconnect()
            .then([this, generation]() {
              // Not inline: handling it destroys the session that owns this promise.
              tasks.add(kj::evalLater([this, generation]() { return childGone(generation); }));
            })
            .eagerlyEvaluate([](kj::Exception&&) {});
    session = kj::mv(fresh);
    log->info("started out-of-process (pid {}) from {}", childPid, library.path());
  }

 protected:
  kj::Promise<void> terminate() override {
    session = nullptr;  // the child's serve() sees the disconnect, returns, and the child exits
    if (childPid <= 0) return kj::READY_NOW;
    return waitForExit().then([this]() { log->info("stopped ({})", exitStatus); });
  }

 private:
  kj::Promise<void> childGone(uint64_t generation) {
    if (generation != spawnGeneration || stopping) return kj::READY_NOW;
    session = nullptr;
    return waitForExit().then([this, generation]() -> kj::Promise<void> {
      if (generation != spawnGeneration || stopping) return kj::READY_NOW;
      return handleCrash();
    });
  }

  // Reaps the current child, killing it if it has not exited within the stop timeout.
  kj::Promise<void> waitForExit() {
    KJ_IF_MAYBE(w, exitWatch) { return w->addBranch(); }
    auto deadline = io.provider->getTimer().now() + toKj(options.stopTimeout);
    auto watch = reap(childPid, deadline).fork();
    auto branch = watch.addBranch();
    exitWatch = kj::mv(watch);
    return branch;
  }

  kj::Promise<void> reap(pid_t pid, kj::TimePoint deadline) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) {
      exitStatus = r == pid ? describeWaitStatus(status) : "was already reaped";
      if (pid == childPid) childPid = 0;
      return kj::READY_NOW;
    }
    auto& timer = io.provider->getTimer();
    if (timer.now() >= deadline) {
      log->warn("process {} did not exit within {} ms; killing it", pid,
                options.stopTimeout.count());
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      exitStatus = describeWaitStatus(status);
      if (pid == childPid) childPid = 0;
      return kj::READY_NOW;
    }
    return timer.afterDelay(kReapPollInterval).then([this, pid, deadline]() {
      return reap(pid, deadline);
    });
  }

  kj::Promise<void> handleCrash() {
    auto now = SteadyClock::now();
    crashTimes.push_back(now);
    while (!crashTimes.empty() && now - crashTimes.front() > kCrashWindow) crashTimes.pop_front();
    std::string what = "plugin process " + exitStatus;
    if (cfg.onCrash == CrashPolicy::stop) {
      reportFailure(what + " (on-crash = stop)");
      return kj::READY_NOW;
    }
    if (crashTimes.size() > cfg.maxRestarts) {
      reportFailure(what + "; it crashed " + std::to_string(crashTimes.size()) +
                    " times within 60 s (max-restarts = " + std::to_string(cfg.maxRestarts) +
                    "), giving up");
      return kj::READY_NOW;
    }
    auto backoff = cfg.restartBackoff * (1u << std::min<size_t>(crashTimes.size() - 1, 3));
    backoff = std::min(backoff, cfg.restartBackoff * 10);
    log->error("{}; restarting in {} ms", what, backoff.count());
    return io.provider->getTimer().afterDelay(toKj(backoff)).then([this]() -> kj::Promise<void> {
      if (stopping) return kj::READY_NOW;
      try {
        spawn();
      } catch (const UserError& e) {
        reportFailure(std::string("restart failed: ") + e.what());
        return kj::READY_NOW;
      }
      ++restartCount;
      return configure().then(
          [this]() { log->info("restarted (restart {})", restartCount); },
          [this](kj::Exception&& e) {
            reportFailure("restarted plugin failed to initialize: " + describe(e));
          });
    });
  }

  pid_t childPid = 0;
  uint64_t spawnGeneration = 0;
  kj::Maybe<kj::ForkedPromise<void>> exitWatch;
  std::string exitStatus;
  std::deque<SteadyClock::time_point> crashTimes;
};

}  // namespace

kj::Own<PluginInstance> PluginInstance::start(kj::AsyncIoContext& io, const PluginConfig& config,
                                              const Options& options) {
  auto library = PluginLibrary::load(config.library, config.kind);
  if (config.isolation == Isolation::inProcess) {
    auto plugin = kj::heap<InProcessPlugin>(io, std::move(library), config, options);
    plugin->spawn();
    return plugin;
  }
  auto plugin = kj::heap<OutOfProcessPlugin>(io, std::move(library), config, options);
  plugin->spawn();
  return plugin;
}

}  // namespace swarm::kernel
