#include "kernel.h"

#include "errors.h"
#include "logging.h"

#include <kj/async-unix.h>
#include <kj/debug.h>

#include <signal.h>

namespace swarm::kernel {

namespace {

const char* healthName(schema::Health::Status status) {
  switch (status) {
    case schema::Health::Status::OK: return "ok";
    case schema::Health::Status::DEGRADED: return "degraded";
    case schema::Health::Status::FAILING: return "failing";
  }
  return "unknown";
}

}  // namespace

Kernel::Kernel(kj::AsyncIoContext& io, KernelConfig config, KernelOptions options)
    : io(io), config(std::move(config)), options(std::move(options)), log(logger("kernel")) {}

Kernel::~Kernel() noexcept(false) {
  // stop() is the orderly path; instances left here are torn down by their destructors.
}

std::string Kernel::where(const PluginConfig& c) const {
  return c.sourceFile + ":" + std::to_string(c.sourceLine) + ": [" + kindName(c.kind) + "] ";
}

PluginInstance& Kernel::plugin(schema::Kind kind) {
  for (auto& p : plugins) {
    if (p->config().kind == kind) return *p;
  }
  throw UserError(std::string("no ") + kindName(kind) + " plugin is running");
}

void Kernel::start() {
  try {
    for (auto& pluginConfig : config.plugins) {
      try {
        plugins.push_back(PluginInstance::start(io, pluginConfig, options.plugin));
      } catch (const UserError& e) {
        throw UserError(where(pluginConfig) + e.what());
      }
      auto& instance = *plugins.back();
      auto info = instance.bootstrap().castAs<schema::Plugin>().infoRequest().send();
      auto infoResult = io.provider->getTimer()
                            .timeoutAfter(options.plugin.configureTimeout.count() * kj::MILLISECONDS,
                                          kj::mv(info))
                            .then([](capnp::Response<schema::Plugin::InfoResults>&& r) {
                              return r.getInfo().getKind();
                            });
      schema::Kind reported;
      try {
        reported = infoResult.wait(io.waitScope);
      } catch (const kj::Exception& e) {
        throw UserError(where(pluginConfig) + "plugin '" + instance.name() +
                        "' did not answer info(): " + describe(e) +
                        "; it failed while starting, check its log lines above");
      }
      if (reported != pluginConfig.kind) {
        throw UserError(where(pluginConfig) + "plugin '" + instance.name() +
                        "' reports kind " + kindName(reported) + " over RPC but its descriptor "
                        "says " + kindName(pluginConfig.kind) + "; fix the plugin");
      }
      try {
        instance.configure().wait(io.waitScope);
      } catch (const kj::Exception& e) {
        throw UserError(where(pluginConfig) + "plugin '" + instance.name() +
                        "' failed to initialize: " + describe(e));
      }
      log->info("{} plugin '{}' {} is running", kindName(pluginConfig.kind), instance.name(),
                instance.config().isolation == Isolation::inProcess ? "in-process"
                                                                     : "out-of-process");
    }
  } catch (...) {
    stop();
    throw;
  }
  lastHealth.assign(plugins.size(), schema::Health::Status::OK);
  log->info("all {} plugins running", plugins.size());
}

kj::Promise<void> Kernel::healthRound() {
  auto checks = kj::heapArrayBuilder<kj::Promise<void>>(plugins.size());
  for (size_t i = 0; i < plugins.size(); ++i) {
    auto& instance = *plugins[i];
    auto call = instance.bootstrap().castAs<schema::Plugin>().healthRequest().send();
    checks.add(io.provider->getTimer()
                   .timeoutAfter(options.healthInterval.count() * kj::MILLISECONDS, kj::mv(call))
                   .then(
                       [this, i](capnp::Response<schema::Plugin::HealthResults>&& r) {
                         auto health = r.getHealth();
                         auto& p = *plugins[i];
                         auto status = health.getStatus();
                         if (status != lastHealth[i] || status == schema::Health::Status::FAILING) {
                           auto level = status == schema::Health::Status::OK
                                            ? spdlog::level::info
                                            : status == schema::Health::Status::DEGRADED
                                                  ? spdlog::level::warn
                                                  : spdlog::level::err;
                           log->log(level, "{} plugin '{}' health {}{}{}",
                                    kindName(p.config().kind), p.name(), healthName(status),
                                    health.getMessage().size() > 0 ? ": " : "",
                                    health.getMessage().cStr());
                         }
                         lastHealth[i] = status;
                       },
                       [this, i](kj::Exception&& e) {
                         auto& p = *plugins[i];
                         log->warn("{} plugin '{}' did not answer health(): {}",
                                   kindName(p.config().kind), p.name(), describe(e));
                         lastHealth[i] = schema::Health::Status::FAILING;
                       }));
  }
  return kj::joinPromises(checks.finish());
}

bool Kernel::checkHealth() {
  healthRound().wait(io.waitScope);
  for (auto status : lastHealth) {
    if (status == schema::Health::Status::FAILING) return false;
  }
  return true;
}

kj::Promise<void> Kernel::healthLoop() {
  return io.provider->getTimer()
      .afterDelay(options.healthInterval.count() * kj::MILLISECONDS)
      .then([this]() { return healthRound(); })
      .then([this]() { return healthLoop(); });
}

Kernel::Outcome Kernel::run(const std::function<void()>& beforeStop) {
  auto signalled = [this](int signum, const char* name) {
    return io.unixEventPort.onSignal(signum).then([name](siginfo_t) {
      return Outcome{0, std::string("received ") + name};
    });
  };
  kj::Promise<Outcome> outcome = signalled(SIGTERM, "SIGTERM").exclusiveJoin(signalled(SIGINT, "SIGINT"));
  for (auto& p : plugins) {
    PluginInstance* instance = p.get();
    outcome = outcome.exclusiveJoin(instance->onFailure().then([instance](kj::String reason) {
      return Outcome{1, std::string(kindName(instance->config().kind)) + " plugin '" +
                            instance->name() + "' failed: " + reason.cStr()};
    }));
  }
  outcome = outcome.exclusiveJoin(healthLoop().then([]() { return Outcome{1, "health loop ended"}; }));
  Outcome result = outcome.wait(io.waitScope);
  if (result.exitCode == 0) {
    log->info("{}; stopping", result.why);
  } else {
    log->error("{}; stopping", result.why);
  }
  if (beforeStop) beforeStop();
  stop();
  return result;
}

void Kernel::stop() {
  while (!plugins.empty()) {
    auto instance = kj::mv(plugins.back());
    plugins.pop_back();
    try {
      instance->stop().wait(io.waitScope);
    } catch (const kj::Exception& e) {
      log->error("stopping plugin '{}': {}", instance->name(), describe(e));
    }
  }
}

}  // namespace swarm::kernel
