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
#include <kj/timer.h>

#include <functional>
#include <string>
#include <vector>

namespace swarm::conformance {

struct CaseContext {
  kj::AsyncIoContext& io;
  kj::WaitScope& waitScope;
  capnp::Capability::Client bootstrap;  // castAs<schema::Scheduler>() etc.
  uint64_t seed;                        // for cases that randomize; printed on failure
  std::string scratchDir;               // an empty directory the case may use, removed afterwards

  template <typename T>
  typename T::Client as() {
    return bootstrap.castAs<T>();
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

}  // namespace swarm::conformance

// Fails the case with the expression and a message built from the remaining arguments.
#define SWARM_CHECK(condition, ...) KJ_REQUIRE(condition, ##__VA_ARGS__)
