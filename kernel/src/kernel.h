// The kernel process: starts every configured plugin, keeps them healthy, stops them in order.
//
//   start()  load, start and configure each plugin in file order; on any failure stop those
//            already started and throw a UserError naming file, line, kind and what to do
//   run()    until SIGTERM/SIGINT (exit 0) or a plugin fails for good (exit 1); health() polls
//   stop()   reverse order, each within the stop timeout
#pragma once

#include "config.h"
#include "plugin_host.h"

#include <kj/async-io.h>
#include <spdlog/logger.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace swarm::kernel {

struct KernelOptions {
  PluginInstance::Options plugin;
  std::chrono::milliseconds healthInterval{10000};
};

class Kernel {
 public:
  Kernel(kj::AsyncIoContext& io, KernelConfig config, KernelOptions options);
  ~Kernel() noexcept(false);

  void start();
  // One health() round over every plugin; false if any did not answer ok or degraded.
  bool checkHealth();
  struct Outcome {
    int exitCode;  // 0 after a stop signal, 1 after a plugin failure
    std::string why;
  };
  // Blocks until a stop signal or a plugin failure, then stops every plugin. Needs SIGTERM and
  // SIGINT captured (kj::UnixEventPort::captureSignal) before any thread was started.
  // `beforeStop` runs on the outcome, before the plugins stop (the manager closes its API).
  Outcome run(const std::function<void()>& beforeStop = {});
  void stop();

  PluginInstance& plugin(schema::Kind kind);

 private:
  kj::Promise<void> healthRound();
  kj::Promise<void> healthLoop();
  std::string where(const PluginConfig& config) const;

  kj::AsyncIoContext& io;
  KernelConfig config;
  KernelOptions options;
  std::shared_ptr<spdlog::logger> log;
  std::vector<kj::Own<PluginInstance>> plugins;  // in start order
  std::vector<schema::Health::Status> lastHealth;
};

}  // namespace swarm::kernel
