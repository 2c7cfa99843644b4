// A running plugin, seen from the kernel's KJ event loop.
//
// In-process: the kernel makes a socketpair and calls the descriptor's serve() on a thread of its
// own, which runs the plugin's event loop. Out-of-process: the kernel starts
// `swarm-plugin-runner <library> <fd>` with one end of a socketpair; the child loads the same .so
// and calls serve() on it. Either way the kernel talks Cap'n Proto two-party RPC on its end.
//
// Lifecycle: start() -> configure() -> calls and health() polls -> stop(). If the plugin's
// connection drops while running, the instance counts a crash: in-process, or with
// on-crash = stop, it reports failure through onFailure(); out-of-process with on-crash = restart,
// it restarts the child with exponential backoff (re-running configure()), and reports failure
// only after max-restarts crashes within a minute.
#pragma once

#include "config.h"
#include "plugin_library.h"

#include <capnp/capability.h>
#include <kj/async-io.h>
#include <kj/function.h>

#include <chrono>
#include <memory>
#include <string>

namespace swarm::kernel {

class PluginInstance {
 public:
  // Where the out-of-process runner binary lives; default: next to the running executable, then
  // the install libexec dir. Tests and swarm-conformance may point elsewhere.
  struct Options {
    std::string runnerPath;
    std::chrono::milliseconds stopTimeout{5000};
    std::chrono::milliseconds configureTimeout{30000};
  };

  virtual ~PluginInstance() noexcept(false) = default;

  // Loads the library (errors: see PluginLibrary::load) and starts serving; does not configure.
  static kj::Own<PluginInstance> start(kj::AsyncIoContext& io, const PluginConfig& config,
                                       const Options& options);

  // The plugin's name as it reports it (descriptor), used on log lines.
  virtual const std::string& name() const = 0;
  virtual const PluginConfig& config() const = 0;

  // The kind's bootstrap capability (cast it: bootstrap().castAs<schema::Scheduler>()). After a
  // restart this is a new capability; fetch it per use rather than keeping it.
  virtual capnp::Capability::Client bootstrap() = 0;

  // Calls Plugin.configure with the config's settings and a Host capability that logs through
  // spdlog under the plugin's name. Fails with a UserError-worthy message on plugin init failure.
  virtual kj::Promise<void> configure() = 0;

  // Resolves (never rejects) with a reason when the plugin has failed for good: an in-process
  // plugin's connection dropped, or an out-of-process one crashed more than policy allows.
  virtual kj::Promise<kj::String> onFailure() = 0;

  // Orderly stop: Plugin.shutdown() within the timeout, then disconnect; joins the thread or
  // waits for the child (SIGKILL after the timeout). Idempotent.
  virtual kj::Promise<void> stop() = 0;

  // Child pid when out of process (0 in-process); restarts so far.
  virtual int pid() const = 0;
  virtual unsigned restarts() const = 0;
};

}  // namespace swarm::kernel
