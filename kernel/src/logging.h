// spdlog set-up: one stderr sink shared by the kernel's logger and one logger per plugin, so each
// plugin's lines carry its name: "2026-11-25T10:00:00.000 info [scheduler-spread] ...".
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <optional>
#include <string>

namespace swarm::kernel {

void initLogging(spdlog::level::level_enum level);

// The logger named `name`, created on first use with the shared sink and the current level.
std::shared_ptr<spdlog::logger> logger(const std::string& name);

// "trace" ... "critical", "off"; nullopt for anything else.
std::optional<spdlog::level::level_enum> parseLogLevel(const std::string& name);

}  // namespace swarm::kernel
