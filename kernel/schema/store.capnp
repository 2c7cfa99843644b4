@0xc7d3b1f2a9e84d61;
# The manager's replicated store: the objects no plugin sees (Cluster, Service) plus the envelope
# of every store write (a Transaction, one consensus entry) and of a store snapshot.
#
# Kernel-internal, but it is on disk (inside the consensus plugin's log and snapshots) and on the
# wire between managers of different versions: evolve it by Cap'n Proto's rules only.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("swarm::store::schema");

using Common = import "/common.capnp";
using Pki = import "/pki.capnp";

# ---- Cluster (one object, named "default") ---------------------------------------------------

struct ClusterSpec {
  annotations @0 :Common.Annotations;
  # name is always "default".
  taskHistoryRetentionLimit @1 :Int64 = 5;
  # Tasks kept per slot (replicated) or per node (global), the running one included.
  snapshotInterval @2 :UInt64 = 10000;
  keepOldSnapshots @3 :UInt64;
  logEntriesForSlowFollowers @4 :UInt64 = 500;
  heartbeatTick @5 :UInt32 = 1;
  electionTick @6 :UInt32 = 10;
  dispatcherHeartbeatPeriod @7 :Int64 = 5000000000;
  # Nanoseconds.
  nodeCertExpiry @8 :Int64 = 7776000000000000;
  # Nanoseconds (90 days); at least one hour.
  externalCas @9 :List(Pki.ExternalCa);
  autoLockManagers @10 :Bool;
  taskDefaultLogDriver @11 :Common.Driver;
  defaultAvailability @12 :Common.NodeAvailability;
  # Availability of newly joined nodes.
}

struct RevokedCertificate {
  cn @0 :Text;
  # The node ID the certificate names.
  expiresAt @1 :Int64;
  # Kept until the certificate would have expired (plus a margin), then dropped.
}

struct Cluster {
  id @0 :Text;
  meta @1 :Common.Meta;
  spec @2 :ClusterSpec;
  rootCa @3 :Pki.RootCa;
  # The key is redacted by every API read.
  joinTokens @4 :Pki.JoinTokens;
  revoked @5 :List(RevokedCertificate);
  unlockKeySealed @6 :Data;
  # Autolock: the cluster's unlock key (32 bytes), so any manager can show it (swarm unlock-key);
  # empty when off. It is sealed at rest by the consensus log's own encryption.
  rootRotationInProgress @7 :Bool;
  lastForcedRotation @8 :UInt64;
}

# ---- Service ---------------------------------------------------------------------------------

enum UpdateState {
  none @0;
  updating @1;
  paused @2;
  completed @3;
  rollbackStarted @4;
  rollbackPaused @5;
  rollbackCompleted @6;
}

struct UpdateStatus {
  state @0 :UpdateState;
  startedAt @1 :Int64;
  completedAt @2 :Int64;
  message @3 :Text;
}

struct Service {
  id @0 :Text;
  meta @1 :Common.Meta;
  spec @2 :Common.ServiceSpec;
  specVersion @3 :Common.Version;
  previousSpec :union {
    noPrevious @4 :Void;
    previous @5 :Common.ServiceSpec;
  }
  previousSpecVersion @6 :Common.Version;
  endpointPorts @7 :List(Common.PortConfig);
  # Published ports as allocated.
  updateStatus @8 :UpdateStatus;
  jobIteration @9 :Common.Version;
  jobLastExecution @10 :Int64;
  pendingDelete @11 :Bool;
}

# ---- the envelope ----------------------------------------------------------------------------

struct Object {
  union {
    cluster @0 :Cluster;
    node @1 :Common.Node;
    service @2 :Service;
    task @3 :Common.Task;
    secret @4 :Common.Secret;
    config @5 :Common.Config;
  }
}

enum Kind {
  cluster @0;
  node @1;
  service @2;
  task @3;
  secret @4;
  config @5;
}

struct Action {
  union {
    create @0 :Object;
    # Refused if the ID exists, or (except tasks and nodes) the name is taken.
    update @1 :Object;
    # Refused unless the object exists at exactly expectedVersion.
    remove :group {
      kind @2 :Kind;
      id @3 :Text;
    }
    # Refused unless the object exists at exactly expectedVersion.
  }
  expectedVersion @4 :UInt64;
}

struct Transaction {
  # One consensus entry. Applied all or nothing, with the same outcome on every manager.
  actions @0 :List(Action);
  proposedAt @1 :Int64;
  # The proposer's clock: createdAt/updatedAt of what it writes, so every manager stores the same.
}

struct Snapshot {
  # The whole store as of appliedIndex: one message per chunk, objects in kind then ID order.
  appliedIndex @0 :UInt64;
  objects @1 :List(Object);
  sequence @2 :UInt32;
  # This chunk's position, from 0: a missing, repeated or reordered chunk is refused on restore.
  last @3 :Bool;
  # Set on the final chunk only: a truncated snapshot is refused on restore.
  digest @4 :Data;
  # Final chunk only: the store's digest (BLAKE2b-256 over appliedIndex and every object's
  # canonical bytes, in order); restore recomputes it, so corrupted content is refused.
}
