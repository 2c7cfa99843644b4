#include "logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>

namespace swarm::kernel {

namespace {

std::mutex gLoggingMutex;
spdlog::sink_ptr gSink;
spdlog::level::level_enum gLevel = spdlog::level::info;

spdlog::sink_ptr sharedSink() {
  if (!gSink) {
    gSink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    gSink->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ [%n] %v");
  }
  return gSink;
}

}  // namespace

void initLogging(spdlog::level::level_enum level) {
  std::lock_guard lock(gLoggingMutex);
  gLevel = level;
  spdlog::apply_all([level](std::shared_ptr<spdlog::logger> l) { l->set_level(level); });
}

std::shared_ptr<spdlog::logger> logger(const std::string& name) {
  std::lock_guard lock(gLoggingMutex);
  if (auto existing = spdlog::get(name)) return existing;
  auto created = std::make_shared<spdlog::logger>(name, sharedSink());
  created->set_level(gLevel);
  created->flush_on(spdlog::level::warn);
  spdlog::register_logger(created);
  return created;
}

std::optional<spdlog::level::level_enum> parseLogLevel(const std::string& name) {
  for (auto level : {spdlog::level::trace, spdlog::level::debug, spdlog::level::info,
                     spdlog::level::warn, spdlog::level::err, spdlog::level::critical,
                     spdlog::level::off}) {
    if (name == spdlog::level::to_string_view(level)) return level;
  }
  // spdlog spells these "err" and "warning"; accept the words operators type.
  if (name == "error") return spdlog::level::err;
  if (name == "warn") return spdlog::level::warn;
  return std::nullopt;
}

}  // namespace swarm::kernel
