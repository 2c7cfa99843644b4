// plugins.conf: which library serves each plugin kind, how it runs, and its settings.
//
// Format (documented in docs/plugins-conf.md):
//
//   # comment
//   [scheduler]                       one section per kind: consensus pki scheduler runtime transport
//   library = plugins/scheduler.so    required; relative paths are relative to the config file
//   isolation = in-process            in-process (default) | out-of-process
//   on-crash = restart                out-of-process only: restart (default) | stop
//   restart-backoff-ms = 200          first restart delay, doubled per crash up to 10x (default 200)
//   max-restarts = 5                  crashes tolerated within 60 s before the kernel stops (default 5)
//   setting.<key> = <value>           passed to the plugin's configure() as <key> = <value>
//
// Any other key is an error, so a typo never silently changes behaviour.
#pragma once

#include <swarm/schema/plugin.capnp.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace swarm::kernel {

enum class Isolation { inProcess, outOfProcess };
enum class CrashPolicy { restart, stop };

struct PluginConfig {
  schema::Kind kind = schema::Kind::UNSPECIFIED;
  std::string library;  // resolved path
  Isolation isolation = Isolation::inProcess;
  CrashPolicy onCrash = CrashPolicy::restart;
  std::chrono::milliseconds restartBackoff{200};
  unsigned maxRestarts = 5;
  std::vector<std::pair<std::string, std::string>> settings;
  std::string sourceFile;  // where this section came from, for error messages
  unsigned sourceLine = 0;
};

struct KernelConfig {
  std::string path;
  std::vector<PluginConfig> plugins;  // in file order, one per kind
};

// The kinds every node needs; the kernel refuses to start without each of them.
const std::vector<schema::Kind>& requiredKinds();

// "consensus" <-> Kind::CONSENSUS. kindFromName returns UNSPECIFIED for an unknown name.
const char* kindName(schema::Kind kind);
schema::Kind kindFromName(const std::string& name);
std::string kindNames();  // "consensus, pki, scheduler, runtime, transport"

// Throws UserError naming the file and line for: unreadable file, syntax error, unknown kind,
// duplicate kind, unknown key, bad value, missing library, missing required kind.
KernelConfig loadConfig(const std::string& path);
KernelConfig parseConfig(const std::string& text, const std::string& path);

}  // namespace swarm::kernel
