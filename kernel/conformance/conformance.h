// swarm-conformance: behavioural cases any plugin of a kind must pass, run through the real plugin
// boundary (the kernel's PluginInstance, in or out of process).
//
// Each case gets a fresh plugin instance, already configured with the runner's --setting values,
// and drives it through its kind's bootstrap capability. A case fails by throwing (use
// SWARM_CHECK / KJ_REQUIRE with the values that matter); it passes by returning.
#pragma once

#include <swarm/schema/plugin.capnp.h>

#include <capnp/capability.h>
#include <kj/async-io.h>
#include <kj/debug.h>
#include <kj/timer.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace swarm::conformance {

struct CaseContext {
  kj::AsyncIoContext& io;
  kj::WaitScope& waitScope;
  capnp::Capability::Client bootstrap;  // castAs<schema::Scheduler>() etc.
  uint64_t seed;                        // for cases that randomize; printed on failure
  std::string scratchDir;               // an empty directory the case may use, removed afterwards

  // --param key=value pairs: inputs for the cases themselves (e.g. image=... for runtime cases),
  // never sent to the plugin, whose --setting values refuse unknown keys.
  std::vector<std::pair<std::string, std::string>> params;

  // Stops this plugin instance and starts and configures a fresh one with the same settings (a
  // consensus restart over the same storage). Updates `bootstrap` and returns it.
  std::function<capnp::Capability::Client()> restart;

  // Starts and configures another instance of the plugin under test (same library, settings and
  // isolation), stopped after the case; for cases that need two nodes (transport: a listener and a
  // dialer with different identities).
  std::function<capnp::Capability::Client()> startPeer;

  template <typename T>
  typename T::Client as() {
    return bootstrap.castAs<T>();
  }

  std::string param(const std::string& key, const std::string& fallback) const {
    for (auto& [k, v] : params) {
      if (k == key) return v;
    }
    return fallback;
  }

  // Waits for `promise`, failing the case with "<what>: no answer within <limit>" rather than
  // hanging until the runner's per-case timeout, so the failure says which step stalled.
  template <typename T>
  T within(kj::Promise<T>&& promise, kj::Duration limit, kj::StringPtr what) {
    return promise
        .exclusiveJoin(io.provider->getTimer().afterDelay(limit).then([what, limit]() -> T {
          kj::throwFatalException(kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                                                kj::str(what, ": no answer within ", limit)));
        }))
        .wait(waitScope);
  }
};

struct Case {
  std::string name;  // "scheduler: never assigns to a drained node"
  std::function<void(CaseContext&)> run;
};

// One list per kind; the runner also runs lifecycleCases() (info, health, shutdown) for every
// kind. Lists are built explicitly (no static registration).
std::vector<Case> lifecycleCases(schema::Kind kind);
std::vector<Case> consensusCases();
std::vector<Case> pkiCases();
std::vector<Case> schedulerCases();
std::vector<Case> runtimeCases();
std::vector<Case> transportCases();

// Fails the case with exactly `message` as the reason the runner prints.
[[noreturn]] inline void fail(kj::String message) {
  kj::throwFatalException(
      kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__, kj::mv(message)));
}

}  // namespace swarm::conformance

// Fails the case with the expression and a message built from the remaining arguments.
#define SWARM_CHECK(condition, ...) KJ_REQUIRE(condition, ##__VA_ARGS__)
