@0xc939d408ef64dd9d;
# Runtime: runs a task's container on this node (plugins/runtime-docker, tests/fakes/runtime).
#
# Containers are keyed by task ID. Everything the runtime creates carries labels tying it to
# cluster, node, service, task and slot, so list() can find it again after a restart. Operations
# are idempotent where the Docker CLI's are: removing a missing container succeeds.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("swarm::schema");

using Common = import "common.capnp";
using Plugin = import "plugin.capnp";

enum ContainerState {
  missing @0;
  created @1;
  running @2;
  paused @3;
  restarting @4;
  exited @5;
  dead @6;
}

enum HealthState {
  none @0;
  # No healthcheck.
  starting @1;
  healthy @2;
  unhealthy @3;
}

struct ContainerInfo {
  taskId @0 :Text;
  containerId @1 :Text;
  serviceId @2 :Text;
  nodeId @3 :Text;
  slot @4 :UInt64;
  state @5 :ContainerState;
  health @6 :HealthState;
  pid @7 :Int32;
  exitCode @8 :Int32;
  startedAt @9 :Int64;
  finishedAt @10 :Int64;
  error @11 :Text;
  image @12 :Text;
}

struct FileData {
  # A secret or config the container gets as a file. Never written to the host's disk in clear.
  referenceId @0 :Text;
  name @1 :Text;
  data @2 :Data;
}

struct TaskError {
  enum Kind {
    other @0;
    imageMissing @1;
    # Not present locally and the pull failed.
    nameConflict @2;
    daemonDown @3;
    daemonRestarted @4;
    invalidSpec @5;
  }
  kind @0 :Kind;
  message @1 :Text;
}

struct CreateResult {
  union {
    created @0 :ContainerInfo;
    failed @1 :TaskError;
  }
}

struct ExitStatus {
  exitCode @0 :Int32;
  oomKilled @1 :Bool;
  error @2 :Text;
}

struct LogOptions {
  stdout @0 :Bool = true;
  stderr @1 :Bool = true;
  follow @2 :Bool;
  tail @3 :Int64 = -1;
  # -1 = all.
  since @4 :Int64;
  timestamps @5 :Bool;
}

struct LogLine {
  enum Stream {
    stdout @0;
    stderr @1;
  }
  stream @0 :Stream;
  timestamp @1 :Int64;
  data @2 :Data;
}

interface LogSink {
  line @0 (line :LogLine) -> stream;
  done @1 ();
}

struct RuntimeEvent {
  enum Action {
    create @0;
    start @1;
    die @2;
    stop @3;
    kill @4;
    destroy @5;
    healthChanged @6;
    oom @7;
    daemonRestarted @8;
  }
  action @0 :Action;
  taskId @1 :Text;
  containerId @2 :Text;
  time @3 :Int64;
  exitCode @4 :Int32;
  health @5 :HealthState;
}

interface EventSink {
  event @0 (event :RuntimeEvent) -> stream;
}

struct RuntimeDescription {
  engineVersion @0 :Text;
  platform @1 :Common.Platform;
  resources @2 :Common.Resources;
  labels @3 :List(Common.KeyValue);
  hostname @4 :Text;
}

interface Runtime extends(Plugin.Plugin) {
  describe @0 () -> (description :RuntimeDescription);
  # What the node offers (reported in NodeDescription).
  create @1 (task :Common.Task, clusterId :Text, secrets :List(FileData), configs :List(FileData))
      -> (result :CreateResult);
  # Pulls the image when absent, then creates the container (not started). Creating a task that
  # already has a container returns the existing one.
  start @2 (taskId :Text);
  wait @3 (taskId :Text) -> (exit :ExitStatus);
  # Resolves when the container exits.
  stop @4 (taskId :Text, gracePeriod :Int64);
  # Stop signal, then kill after gracePeriod (-1 = the spec's, or 10 s).
  remove @5 (taskId :Text);
  inspect @6 (taskId :Text) -> (info :ContainerInfo);
  # state = missing when there is none.
  list @7 () -> (containers :List(ContainerInfo));
  # Every container this runtime created on this node, for recovery after a restart.
  logs @8 (taskId :Text, options :LogOptions, sink :LogSink);
  # Resolves when the logs end (never, with follow, until cancelled).
  events @9 (sink :EventSink) -> (subscription :Common.Handle);
}
