// The C++ side of the plugin SDK: a plugin author writes one capnp server class and one
// SWARM_PLUGIN line; this header supplies the exported entry, the event loop and the lifecycle.
//
//   class MyScheduler final : public swarm::sdk::PluginServer<swarm::schema::Scheduler> {
//    public:
//     kj::Promise<void> schedule(ScheduleContext context) override { ... }
//   };
//   SWARM_PLUGIN(SWARM_PLUGIN_KIND_SCHEDULER, "my-scheduler", "1.0.0", MyScheduler)
//
// PluginServer implements Plugin's info/configure/health/shutdown with sensible defaults; override
// onConfigure() to read settings (throw KJ_FAIL_REQUIRE with a clear message to refuse them),
// health() or shutdown() where the plugin needs more.
#pragma once

#include <swarm/plugin.h>
#include <swarm/schema/consensus.capnp.h>
#include <swarm/schema/pki.capnp.h>
#include <swarm/schema/plugin.capnp.h>
#include <swarm/schema/runtime.capnp.h>
#include <swarm/schema/scheduler.capnp.h>
#include <swarm/schema/transport.capnp.h>

#include <capnp/capability.h>
#include <kj/async-io.h>
#include <kj/async.h>
#include <kj/function.h>
#include <kj/string.h>

namespace swarm::sdk {

using schema::LogLevel;

// Refuses a call with exactly `message` as the error the caller sees (KJ_FAIL_REQUIRE would prefix
// the macro's argument text). Use it for bad settings and bad input: say what is wrong and what to
// do.
[[noreturn]] void fail(kj::StringPtr message);

// A plugin's settings from plugins.conf, copied out of the configure() call.
class Settings {
 public:
  Settings() = default;
  explicit Settings(capnp::List<schema::KeyValue>::Reader entries);

  kj::Maybe<kj::StringPtr> get(kj::StringPtr key) const;
  kj::StringPtr getOr(kj::StringPtr key, kj::StringPtr fallback) const;
  // Whole-number setting; throws a clear error naming the key when the value is not a number in
  // [min, max].
  int64_t getInt(kj::StringPtr key, int64_t fallback, int64_t min, int64_t max) const;
  bool getBool(kj::StringPtr key, bool fallback) const;
  // Throws naming every key not in `known`, so a typo in plugins.conf is refused, not ignored.
  void requireOnly(std::initializer_list<kj::StringPtr> known) const;

  size_t size() const { return keys.size(); }

 private:
  kj::Vector<kj::String> keys;
  kj::Vector<kj::String> values;
};

// Shared lifecycle for every kind; Kind is the kind's bootstrap interface (schema::Scheduler...).
template <typename Kind>
class PluginServer : public Kind::Server {
 public:
  using Kind::Server::Server;

  kj::Promise<void> info(schema::Plugin::Server::InfoContext context) override {
    auto info = context.getResults().initInfo();
    KJ_IF_MAYBE(d, descriptor) {
      info.setKind(static_cast<schema::Kind>((*d)->kind));
      info.setName((*d)->name_plugin_static);
      info.setVersion((*d)->version_plugin_static);
      info.setAbiVersion((*d)->abi_version);
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> configure(schema::Plugin::Server::ConfigureContext context) override {
    auto params = context.getParams();
    host = params.getHost();
    settings = Settings(params.getSettings());
    return onConfigure(settings);
  }

  kj::Promise<void> health(schema::Plugin::Server::HealthContext context) override {
    context.getResults().initHealth().setStatus(schema::Health::Status::OK);
    return kj::READY_NOW;
  }

  kj::Promise<void> shutdown(schema::Plugin::Server::ShutdownContext) override { return kj::READY_NOW; }

  // Called by serve() before the first call arrives; info() reports it.
  void setDescriptor(const swarm_plugin_descriptor& d) { descriptor = &d; }

 protected:
  // Override to validate and apply settings; the default refuses any setting, so a plugin that
  // takes none does not silently ignore a typo.
  virtual kj::Promise<void> onConfigure(const Settings& s) {
    s.requireOnly({});
    return kj::READY_NOW;
  }

  // Logs through the kernel (on a line carrying the plugin's name). Before configure() it is
  // dropped. Fire-and-forget: logging never blocks the plugin's work.
  void log(LogLevel level, kj::StringPtr message) {
    KJ_IF_MAYBE(h, host) {
      auto request = h->logRequest();
      request.setLevel(level);
      request.setMessage(message);
      logTasks.add(request.send().ignoreResult());
    }
  }

  Settings settings;

 private:
  class LogErrors final : public kj::TaskSet::ErrorHandler {
   public:
    // A log line lost because the kernel went away is not worth reporting anywhere.
    void taskFailed(kj::Exception&&) override {}
  };

  kj::Maybe<const swarm_plugin_descriptor*> descriptor;
  kj::Maybe<schema::Host::Client> host;
  LogErrors logErrors;
  kj::TaskSet logTasks{logErrors};
};

// The KJ async I/O of the thread serving this plugin (network, timer, fd wrapping). Plugins do
// their I/O on the event loop that serves their RPC instead of starting threads. Valid from the
// bootstrap's construction until serve() returns; throws when called on any other thread.
kj::AsyncIoContext& asyncIo();

// Runs `bootstrap` as the Cap'n Proto two-party server on `fd` until the host disconnects. Sets up
// this thread's KJ event loop; catches everything (nothing may cross the C boundary).
int32_t serve(int fd, char* errorBuf, size_t errorBufSize,
              kj::Function<capnp::Capability::Client()> makeBootstrap) noexcept;

}  // namespace swarm::sdk

// Defines the plugin's one exported symbol. The descriptor is constant-initialized (no global
// constructor runs at load time).
#define SWARM_PLUGIN(KIND, NAME, VERSION, SERVER_CLASS)                                          \
  namespace {                                                                                    \
  int32_t swarmPluginServe(int fd, char* errorBuf, size_t errorBufSize);                         \
  constexpr swarm_plugin_descriptor swarmPluginDescriptor = {                                    \
      sizeof(swarm_plugin_descriptor), SWARM_PLUGIN_ABI_VERSION, (KIND), 0, (NAME), (VERSION),   \
      &swarmPluginServe};                                                                        \
  int32_t swarmPluginServe(int fd, char* errorBuf, size_t errorBufSize) {                        \
    return ::swarm::sdk::serve(fd, errorBuf, errorBufSize, []() -> ::capnp::Capability::Client { \
      auto server = ::kj::heap<SERVER_CLASS>();                                                  \
      server->setDescriptor(swarmPluginDescriptor);                                              \
      return ::kj::mv(server);                                                                   \
    });                                                                                          \
  }                                                                                              \
  }                                                                                              \
  extern "C" SWARM_PLUGIN_EXPORT const swarm_plugin_descriptor* swarm_plugin_entry(              \
      uint32_t hostAbiVersion) {                                                                 \
    return hostAbiVersion == SWARM_PLUGIN_ABI_VERSION ? &swarmPluginDescriptor : nullptr;        \
  }
