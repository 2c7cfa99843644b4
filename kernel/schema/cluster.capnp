@0xa1823d419b6d4265;
# Node-to-node RPC between swarm-kernel processes. It runs over the transport plugin's mutual-TLS
# connections (kernel/src/manager/transport_stream.h): every manager serves `Manager` on its
# listen address to each connection, and each call checks the caller's identity as the transport
# verified it from its certificate (never a claim in the request). Errors are exceptions whose
# description is "HTTP <status>: <message>", the API's answer for the same failure.
#
# Kernel-internal, but on the wire between managers of different versions: evolve it by Cap'n
# Proto's rules only.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("swarm::store::schema");

using Common = import "/common.capnp";
using Consensus = import "/consensus.capnp";
using Runtime = import "/runtime.capnp";

struct JoinRequest {
  token @0 :Text;
  # SWMTKN-1-<root digest>-<secret>; the secret chooses the role.
  csr @1 :Data;
  # PEM; the key stays on the joining node. Its subject is ignored: the CA sets CN/OU/O.
  availability @2 :Common.NodeAvailability;
  description @3 :Common.NodeDescription;
  advertiseAddr @4 :Text;
  # host:port other managers dial (Raft), for a manager.
}

struct JoinResponse {
  nodeId @0 :Text;
  clusterId @1 :Text;
  role @2 :Common.NodeRole;
  certChain @3 :Data;
  # PEM: the node's certificate, CN = nodeId, OU = role, O = clusterId.
  rootCerts @4 :Data;
  raftMemberId @5 :UInt64;
  # A manager's consensus member ID (added as a learner; promoted once it caught up). 0 on a worker.
  managers @6 :List(Text);
  # The managers' addresses, for sessions and failover.
  members @7 :List(Consensus.Member);
  # The consensus members: a new manager must answer the leader before its log tells it who is who.
}

struct ProposeOutcome {
  index @0 :UInt64;
  # The entry's index: the caller waits until its own store applied it, so a read after a write
  # sees the write.
  status @1 :UInt16;
  # 200 when the store applied the transaction; else the API status of its refusal.
  message @2 :Text;
}

struct SessionInfo {
  period @0 :Int64;
  # Nanoseconds until the next heartbeat is due (the cluster's dispatcher period, jittered).
  managers @1 :List(Text);
  leader @2 :Text;
  # The leader's address ("" when unknown).
  desiredRole @3 :Common.NodeRole;
  # The role the swarm wants this node in (node promote/demote): a node whose role differs asks
  # for it with changeRole().
  renewCertificate @4 :Bool;
  # The swarm wants this node to get a new certificate (a root CA rotation): renewCertificate().
  trustedRoots @5 :List(Data);
  # The root CAs the node should trust, one PEM certificate each: the cluster's root, and during a
  # root rotation also the previous one.
}

struct RoleChange {
  role @0 :Common.NodeRole;
  certChain @1 :Data;
  # PEM: a certificate for the new role (OU), for the key of the CSR sent.
  raftMemberId @2 :UInt64;
  members @3 :List(Consensus.Member);
  # For a new manager: its consensus member ID (a learner) and the members, as in JoinResponse.
}

struct Assignment {
  sequence @0 :UInt64;
  # Grows with every assignment sent on a session.
  tasks @1 :List(Common.Task);
  # Complete (the first of a session): every task the swarm has for this node (state ASSIGNED or
  # later, not yet removed), so a task missing from it is no longer this node's to run.
  # Incremental: the tasks new to the node or whose desired state changed since the last one.
  secrets @2 :List(Common.Secret);
  configs @3 :List(Common.Config);
  # What those tasks reference (incremental: the new or changed ones).
  incremental @4 :Bool;
  # false: the complete set, replacing what the node had; true: changes to apply to it.
  removedTasks @5 :List(Text);
  removedSecrets @6 :List(Text);
  removedConfigs @7 :List(Text);
  # Incremental: IDs no longer the node's (tasks) or no longer referenced by its tasks.
}

interface AssignmentSink {
  assigned @0 (assignment :Assignment) -> stream;
  logs @1 (taskId :Text, options :Runtime.LogOptions, sink :Runtime.LogSink);
  # A task's container log from this node's runtime, into sink; resolves when it ends (never with
  # follow, until cancelled). The agent's side of `docker service logs`.
}

struct TaskStatusUpdate {
  taskId @0 :Text;
  status @1 :Common.TaskStatus;
}

interface Manager {
  join @0 (request :JoinRequest) -> (response :JoinResponse);
  # The CA's join service: the only call open to an anonymous (join mode) peer. Any manager takes
  # it and hands it to the leader.
  raftStep @1 (from :UInt64, message :Data) -> stream;
  # A consensus message from member `from`. Managers only.
  propose @2 (entry :Data) -> (outcome :ProposeOutcome);
  # A store transaction proposed by a follower manager on the leader. Managers only.
  heartbeat @3 (description :Common.NodeDescription) -> (session :SessionInfo);
  # A node's liveness (the dispatcher): the leader marks it READY, and DOWN when heartbeats stop
  # for three periods. Any node of the cluster.
  changeRole @4 (csr :Data, advertiseAddr :Text) -> (change :RoleChange);
  # The caller takes the role the swarm wants it in: promotion adds it to the consensus as a
  # learner; a demoted manager, already removed from the consensus by the leader, gets a worker
  # certificate. Refused (409) while the leader is still carrying out the change.
  assignments @5 (sink :AssignmentSink);
  # The dispatcher streams the caller's tasks into sink (the whole set at once, then the changes,
  # debounced); resolves when the session ends (leadership lost, the node removed).
  updateTaskStatus @6 (updates :List(TaskStatusUpdate));
  # Observed task states, batched by the agent. Only forward moves of the caller's own tasks apply.
  taskLogs @7 (nodeId :Text, taskId :Text, options :Runtime.LogOptions, sink :Runtime.LogSink);
  # A follower manager's `service logs`: the leader asks the node through its assignment session.
  # Managers only.
  renewCertificate @8 (csr :Data) -> (certChain :Data, trustedRoots :List(Data));
  # A certificate for the caller's key, same identity, from the cluster's current root (when its
  # own nears expiry, or a root rotation asks for it), and the roots to trust. The leader issues.
}
