@0xc65a0774eb39fdc8;
# The lifecycle every plugin offers, whatever its kind. Each kind's bootstrap interface extends
# Plugin, so the host drives any plugin's lifecycle the same way:
#
#   info() -> configure(settings, host) -> [kind-specific calls, health() polls] -> shutdown()
#
# and then disconnects, which ends the plugin's serve().

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("swarm::schema");

using Common = import "common.capnp";

enum Kind {
  # Same numbering as swarm_plugin_kind in swarm/plugin.h.
  unspecified @0;
  consensus @1;
  pki @2;
  scheduler @3;
  runtime @4;
  transport @5;
}

struct PluginInfo {
  kind @0 :Kind;
  name @1 :Text;
  version @2 :Text;
  abiVersion @3 :UInt32;
  # SWARM_PLUGIN_ABI_VERSION the plugin was built against.
}

enum LogLevel {
  trace @0;
  debug @1;
  info @2;
  warn @3;
  error @4;
  critical @5;
}

struct Health {
  enum Status {
    ok @0;
    degraded @1;
    # Working, but something needs attention (message says what).
    failing @2;
    # Cannot do its job; the host reports it and may stop the node.
  }
  status @0 :Status;
  message @1 :Text;
}

interface Host {
  # What the kernel offers every plugin. Kind-specific capabilities (peer messaging, storage) are
  # handed over in that kind's own calls, never looked up globally.
  log @0 (level :LogLevel, message :Text);
  # Logged by the kernel on a line carrying the plugin's name.
}

interface Plugin {
  info @0 () -> (info :PluginInfo);
  configure @1 (settings :List(Common.KeyValue), host :Host);
  # Called once, first. Settings are the plugin's lines of plugins.conf. Failing here is a plugin
  # init failure: the message must name the bad setting and what to do.
  health @2 () -> (health :Health);
  shutdown @3 ();
  # Stop taking work, finish what is in flight, release resources; resolves when drained. The
  # host then disconnects.
}
