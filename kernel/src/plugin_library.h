// A plugin shared library, loaded and checked: exactly one entry symbol, ABI version, kind.
#pragma once

#include "config.h"

#include <swarm/plugin.h>

#include <boost/dll/shared_library.hpp>

#include <string>

namespace swarm::kernel {

class PluginLibrary {
 public:
  // Loads `path` (RTLD_NOW | RTLD_LOCAL), resolves swarm_plugin_entry and checks the descriptor.
  // Throws UserError naming the path and what to do for: missing/unloadable file, no entry
  // symbol, NULL descriptor (plugin refuses this host's ABI), struct size or ABI version mismatch,
  // and (when expectedKind is not UNSPECIFIED) a kind other than the one configured.
  static PluginLibrary load(const std::string& path, schema::Kind expectedKind);

  const swarm_plugin_descriptor& descriptor() const { return *desc; }
  schema::Kind kind() const { return static_cast<schema::Kind>(desc->kind); }
  const std::string& name() const { return pluginName; }
  const std::string& version() const { return pluginVersion; }
  const std::string& path() const { return libraryPath; }

 private:
  PluginLibrary() = default;
  boost::dll::shared_library library;
  const swarm_plugin_descriptor* desc = nullptr;
  std::string pluginName, pluginVersion, libraryPath;
};

}  // namespace swarm::kernel
