#include "plugin_library.h"

#include "errors.h"

#include <boost/dll/shared_library.hpp>

#include <cstddef>
#include <filesystem>
#include <system_error>

namespace swarm::kernel {

namespace {

// Smallest descriptor this host can use: everything up to and including serve.
constexpr size_t kMinDescriptorSize =
    offsetof(swarm_plugin_descriptor, serve) + sizeof(swarm_plugin_descriptor::serve);

}  // namespace

PluginLibrary PluginLibrary::load(const std::string& path, schema::Kind expectedKind) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw UserError("plugin library " + path + " not found; check the 'library' path");
  }
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw UserError("plugin library " + path + " is not a regular file; point 'library' at the .so");
  }

  PluginLibrary result;
  result.libraryPath = path;
  try {
    result.library.load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    throw UserError("plugin library " + path + " cannot be loaded: " + e.what() +
                    "; it must be a shared library built for this machine with its dependencies "
                    "installed");
  }
  if (!result.library.has(SWARM_PLUGIN_ENTRY_SYMBOL)) {
    throw UserError("plugin library " + path + " does not export '" SWARM_PLUGIN_ENTRY_SYMBOL
                    "'; it is not a swarm-kernel plugin (build it with the SDK's SWARM_PLUGIN "
                    "macro and swarm_add_plugin)");
  }
  auto entry = result.library.get<const swarm_plugin_descriptor*(uint32_t)>(
      SWARM_PLUGIN_ENTRY_SYMBOL);
  const swarm_plugin_descriptor* d = entry(SWARM_PLUGIN_ABI_VERSION);
  if (d == nullptr) {
    throw UserError("plugin library " + path + " refuses this kernel's plugin ABI version " +
                    std::to_string(SWARM_PLUGIN_ABI_VERSION) +
                    "; rebuild the plugin against this kernel's SDK");
  }
  if (d->abi_version != SWARM_PLUGIN_ABI_VERSION) {
    throw UserError("plugin library " + path + " was built for plugin ABI version " +
                    std::to_string(d->abi_version) + " but this kernel speaks version " +
                    std::to_string(SWARM_PLUGIN_ABI_VERSION) +
                    "; rebuild the plugin against this kernel's SDK");
  }
  if (d->struct_size < kMinDescriptorSize) {
    throw UserError("plugin library " + path + " has a truncated descriptor (" +
                    std::to_string(d->struct_size) + " bytes, need at least " +
                    std::to_string(kMinDescriptorSize) +
                    "); rebuild the plugin against this kernel's SDK");
  }
  if (d->serve == nullptr || d->name_plugin_static == nullptr ||
      d->version_plugin_static == nullptr || d->name_plugin_static[0] == '\0') {
    throw UserError("plugin library " + path +
                    " has an incomplete descriptor (no serve function, name or version); fix "
                    "the plugin's SWARM_PLUGIN line");
  }
  auto kind = static_cast<schema::Kind>(d->kind);
  if (d->kind < SWARM_PLUGIN_KIND_CONSENSUS || d->kind > SWARM_PLUGIN_KIND_TRANSPORT) {
    throw UserError("plugin library " + path + " declares unknown kind " + std::to_string(d->kind) +
                    "; a plugin must be one of: " + kindNames());
  }
  if (expectedKind != schema::Kind::UNSPECIFIED && kind != expectedKind) {
    throw UserError("plugin library " + path + " ('" + d->name_plugin_static + "') is a " +
                    kindName(kind) + " plugin, but it is configured as " + kindName(expectedKind) +
                    "; put it under [" + kindName(kind) + "] or point [" + kindName(expectedKind) +
                    "] at a " + kindName(expectedKind) + " plugin");
  }
  result.desc = d;
  result.pluginName = d->name_plugin_static;
  result.pluginVersion = d->version_plugin_static;
  return result;
}

}  // namespace swarm::kernel
