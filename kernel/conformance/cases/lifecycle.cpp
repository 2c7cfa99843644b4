// Lifecycle cases: what every plugin owes the host whatever its kind (sdk/schema/plugin.capnp).
// The runner has already called configure() with the --setting values.
#include "conformance.h"

#include <swarm/plugin.h>

#include <kj/debug.h>

#include <string>
#include <vector>

namespace swarm::conformance {
namespace {

constexpr auto kCallLimit = 10 * kj::SECONDS;

const char* kindText(schema::Kind kind) {
  switch (kind) {
    case schema::Kind::CONSENSUS:
      return "consensus";
    case schema::Kind::PKI:
      return "pki";
    case schema::Kind::SCHEDULER:
      return "scheduler";
    case schema::Kind::RUNTIME:
      return "runtime";
    case schema::Kind::TRANSPORT:
      return "transport";
    default:
      return "unspecified";
  }
}

const char* statusText(schema::Health::Status status) {
  switch (status) {
    case schema::Health::Status::OK:
      return "ok";
    case schema::Health::Status::DEGRADED:
      return "degraded";
    case schema::Health::Status::FAILING:
      return "failing";
  }
  return "unknown";
}

void checkInfo(schema::PluginInfo::Reader info, schema::Kind kind) {
  if (info.getKind() != kind) {
    fail(kj::str("info() reports kind ", kindText(info.getKind()),
                 ", but the plugin was loaded as ", kindText(kind)));
  }
  if (info.getName().size() == 0) fail(kj::str("info() reports an empty name"));
  if (info.getVersion().size() == 0) fail(kj::str("info() reports an empty version"));
  if (info.getAbiVersion() != SWARM_PLUGIN_ABI_VERSION) {
    fail(kj::str("info() reports ABI version ", info.getAbiVersion(), ", the host speaks ",
                 SWARM_PLUGIN_ABI_VERSION));
  }
}

void checkHealthy(schema::Health::Reader health) {
  auto status = health.getStatus();
  if (status != schema::Health::Status::OK && status != schema::Health::Status::DEGRADED) {
    fail(kj::str("health() is ", statusText(status), " after configure (status ",
                 static_cast<unsigned>(status), "): ", health.getMessage()));
  }
  if (status == schema::Health::Status::DEGRADED && health.getMessage().size() == 0) {
    fail(kj::str("health() is degraded without a message saying what needs attention"));
  }
}

void infoReportsIdentity(CaseContext& ctx, schema::Kind kind) {
  auto plugin = ctx.as<schema::Plugin>();
  auto response = ctx.within(plugin.infoRequest().send(), kCallLimit, "info()");
  checkInfo(response.getInfo(), kind);
}

void healthAfterConfigure(CaseContext& ctx) {
  auto plugin = ctx.as<schema::Plugin>();
  auto response = ctx.within(plugin.healthRequest().send(), kCallLimit, "health()");
  checkHealthy(response.getHealth());
}

void keepsAnswering(CaseContext& ctx, schema::Kind kind) {
  auto plugin = ctx.as<schema::Plugin>();
  // Sequential calls: the answers must not change between calls.
  auto first = ctx.within(plugin.infoRequest().send(), kCallLimit, "info()");
  kj::String name = kj::str(first.getInfo().getName());
  kj::String version = kj::str(first.getInfo().getVersion());
  for (int i = 0; i < 3; ++i) {
    auto again = ctx.within(plugin.infoRequest().send(), kCallLimit, "info() again");
    checkInfo(again.getInfo(), kind);
    if (again.getInfo().getName() != name || again.getInfo().getVersion() != version) {
      fail(kj::str("info() changed between calls: '", name, " ", version, "' then '",
                   again.getInfo().getName(), " ", again.getInfo().getVersion(), "'"));
    }
    auto health = ctx.within(plugin.healthRequest().send(), kCallLimit, "health()");
    checkHealthy(health.getHealth());
  }
  // Concurrent calls: every one is answered.
  constexpr size_t kCalls = 32;
  kj::Vector<kj::Promise<void>> calls;
  size_t answered = 0;
  for (size_t i = 0; i < kCalls; ++i) {
    if (i % 2 == 0) {
      calls.add(plugin.infoRequest().send().then([&answered, kind](auto response) {
        checkInfo(response.getInfo(), kind);
        ++answered;
      }));
    } else {
      calls.add(plugin.healthRequest().send().then([&answered](auto response) {
        checkHealthy(response.getHealth());
        ++answered;
      }));
    }
  }
  ctx.within(kj::joinPromises(calls.releaseAsArray()), kCallLimit,
             "32 concurrent info()/health() calls");
  if (answered != kCalls) {
    fail(kj::str(answered, " of ", kCalls, " concurrent calls were answered"));
  }
}

void shutdownResolves(CaseContext& ctx) {
  auto plugin = ctx.as<schema::Plugin>();
  ctx.within(plugin.shutdownRequest().send().ignoreResult(), kCallLimit, "shutdown()");
}

}  // namespace

std::vector<Case> lifecycleCases(schema::Kind kind) {
  return {
      {"lifecycle: info reports the kind, a name, a version and the ABI version",
       [kind](CaseContext& ctx) { infoReportsIdentity(ctx, kind); }},
      {"lifecycle: health is ok or degraded after configure", healthAfterConfigure},
      {"lifecycle: info and health keep answering, also many calls at once",
       [kind](CaseContext& ctx) { keepsAnswering(ctx, kind); }},
      {"lifecycle: shutdown resolves", shutdownResolves},
  };
}

}  // namespace swarm::conformance
