@0x853b33cca762774b;
# Scheduler: a pure function from a node snapshot and a batch of pending tasks to assignments
# (plugins/scheduler-spread). No I/O, no clock: the same input gives the same plan.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("swarm::schema");

using Common = import "common.capnp";
using Plugin = import "plugin.capnp";

struct ServiceCount {
  serviceId @0 :Text;
  count @1 :UInt32;
}

struct NodeInfo {
  node @0 :Common.Node;
  available @1 :Common.Resources;
  # Reported resources minus the reservations of tasks on the node in ASSIGNED..RUNNING.
  tasksByService @2 :List(ServiceCount);
  # Active tasks (desired state <= COMPLETE) per service.
  totalTasks @3 :UInt32;
  recentFailures @4 :List(ServiceCount);
  # FAILED or REJECTED tasks per service in the recent past (Swarm: 5 minutes).
  hostPorts @5 :List(Common.PortConfig);
  # Host-mode published ports in use.
}

struct Assignment {
  taskId @0 :Text;
  nodeId @1 :Text;
}

struct Unplaced {
  taskId @0 :Text;
  reason @1 :Text;
  # Human-readable, shown by `service ps`, e.g.
  # "no suitable node (insufficient memory on 3 nodes; 2 nodes drained)".
}

struct Plan {
  assignments @0 :List(Assignment);
  unplaced @1 :List(Unplaced);
  # Every input task appears exactly once, in one of the two lists.
}

interface Scheduler extends(Plugin.Plugin) {
  schedule @0 (nodes :List(NodeInfo), tasks :List(Common.Task)) -> (plan :Plan);
  # Tasks that already carry a nodeId (global services) are only checked against that node.
}
