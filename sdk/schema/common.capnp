@0xe3a3a706adda29e8;
# Common types shared by every plugin kind: the swarm object model as far as it crosses a plugin
# boundary (nodes, tasks, service specs, resources, identities), plus the small utility
# capabilities (byte sinks, cancellation handles).
#
# Evolution: Cap'n Proto rules only. New fields and enumerants get the next ordinal; nothing is
# renumbered, retyped or removed. tests/abi/ pins every ID and ordinal against schema-record.txt.
# Durations are Int64 nanoseconds and timestamps Int64 nanoseconds since the Unix epoch, as in the
# Docker Engine API.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("swarm::schema");

struct KeyValue {
  key @0 :Text;
  value @1 :Text;
}

struct Version {
  index @0 :UInt64;
  # The consensus index of the object's last change (Docker's Meta.Version.Index).
}

struct Meta {
  version @0 :Version;
  createdAt @1 :Int64;
  updatedAt @2 :Int64;
}

struct Annotations {
  name @0 :Text;
  labels @1 :List(KeyValue);
}

struct Driver {
  name @0 :Text;
  options @1 :List(KeyValue);
}

enum OptionalBool {
  # A boolean a spec may leave unset (Docker's *bool), e.g. ContainerSpec.init.
  unset @0;
  no @1;
  yes @2;
}

# ---- identities -----------------------------------------------------------------------------

enum NodeRole {
  worker @0;
  manager @1;
}

struct Identity {
  # A node's verified identity, read from its certificate: CN = nodeId, OU = role
  # (swarm-worker / swarm-manager), O = clusterId. Never taken from a claim in a request.
  nodeId @0 :Text;
  role @1 :NodeRole;
  clusterId @2 :Text;
}

struct Peer {
  # Who is on the other end of a connection.
  union {
    node @0 :Identity;
    # Authenticated by a certificate that chains to a cluster root.
    anonymous @1 :Void;
    # A joining node with no certificate yet: it may only call the CA's join service.
  }
}

# ---- resources and platform -----------------------------------------------------------------

struct GenericResource {
  kind @0 :Text;
  # e.g. "gpu", "ssd"
  union {
    discrete @1 :Int64;
    named @2 :Text;
  }
}

struct Resources {
  nanoCpus @0 :Int64;
  # 1e9 = one CPU.
  memoryBytes @1 :Int64;
  generic @2 :List(GenericResource);
  pids @3 :Int64;
  # Limits only (0 = unlimited).
}

struct ResourceRequirements {
  limits @0 :Resources;
  reservations @1 :Resources;
  # Only reservations matter to the scheduler; limits go to the runtime.
  swapBytes @2 :Int64 = -1;
  # -1 = unset.
  memorySwappiness @3 :Int64 = -1;
  # -1 = unset.
}

struct Platform {
  os @0 :Text;
  architecture @1 :Text;
}

# ---- nodes ----------------------------------------------------------------------------------

enum NodeAvailability {
  active @0;
  # Gets new tasks.
  pause @1;
  # Keeps its tasks, gets no new ones.
  drain @2;
  # Its tasks move elsewhere; gets none.
}

enum NodeState {
  unknown @0;
  down @1;
  ready @2;
  disconnected @3;
}

enum Reachability {
  unknown @0;
  unreachable @1;
  reachable @2;
}

enum NodeMembership {
  pending @0;
  accepted @1;
}

enum CertificateStatus {
  unknown @0;
  renew @1;
  pending @2;
  issued @3;
  failed @4;
  rotate @5;
}

struct EnginePlugin {
  type @0 :Text;
  name @1 :Text;
}

struct EngineDescription {
  engineVersion @0 :Text;
  labels @1 :List(KeyValue);
  # Matched by engine.labels.* constraints.
  plugins @2 :List(EnginePlugin);
}

struct TlsInfo {
  trustRoot @0 :Data;
  # PEM of the root the node trusts.
  certIssuerSubject @1 :Data;
  # DER subject of the issuer of the node's certificate.
  certIssuerPublicKey @2 :Data;
  # DER public key of that issuer.
}

struct NodeDescription {
  hostname @0 :Text;
  platform @1 :Platform;
  resources @2 :Resources;
  engine @3 :EngineDescription;
  tlsInfo @4 :TlsInfo;
  fips @5 :Bool;
}

struct NodeSpec {
  annotations @0 :Annotations;
  # annotations.labels are the node labels (node.labels.* constraints).
  desiredRole @1 :NodeRole;
  membership @2 :NodeMembership;
  availability @3 :NodeAvailability;
}

struct NodeStatus {
  state @0 :NodeState;
  message @1 :Text;
  addr @2 :Text;
  # The address the manager sees the node connect from.
}

struct ManagerStatus {
  raftId @0 :UInt64;
  addr @1 :Text;
  leader @2 :Bool;
  reachability @3 :Reachability;
}

struct NodeCertificate {
  role @0 :NodeRole;
  csr @1 :Data;
  status @2 :CertificateStatus;
  certificate @3 :Data;
  # PEM chain.
  cn @4 :Text;
}

struct Node {
  id @0 :Text;
  meta @1 :Meta;
  spec @2 :NodeSpec;
  description @3 :NodeDescription;
  status @4 :NodeStatus;
  managerStatus :union {
    none @5 :Void;
    manager @6 :ManagerStatus;
  }
  role @7 :NodeRole;
  # Observed role (the role manager reconciles it with spec.desiredRole).
  certificate @8 :NodeCertificate;
}

# ---- service and task specs -----------------------------------------------------------------

struct FileTarget {
  name @0 :Text;
  uid @1 :Text;
  gid @2 :Text;
  mode @3 :UInt32 = 292;
  # 0444.
}

struct SecretReference {
  secretId @0 :Text;
  secretName @1 :Text;
  file @2 :FileTarget;
}

struct ConfigReference {
  configId @0 :Text;
  configName @1 :Text;
  target :union {
    file @2 :FileTarget;
    runtime @3 :Void;
  }
}

struct Mount {
  enum Type {
    bind @0;
    volume @1;
    tmpfs @2;
    npipe @3;
    cluster @4;
  }
  enum Propagation {
    unset @0;
    rprivate @1;
    private @2;
    rshared @3;
    shared @4;
    rslave @5;
    slave @6;
  }
  type @0 :Type;
  source @1 :Text;
  target @2 :Text;
  readOnly @3 :Bool;
  consistency @4 :Text;
  bindPropagation @5 :Propagation;
  bindNonRecursive @6 :Bool;
  volumeNoCopy @7 :Bool;
  volumeLabels @8 :List(KeyValue);
  volumeDriver @9 :Driver;
  tmpfsSizeBytes @10 :Int64;
  tmpfsMode @11 :UInt32;
}

struct HealthConfig {
  test @0 :List(Text);
  # Docker's form: [] inherit, ["NONE"], ["CMD", args...], ["CMD-SHELL", command].
  interval @1 :Int64;
  timeout @2 :Int64;
  retries @3 :UInt32;
  startPeriod @4 :Int64;
  startInterval @5 :Int64;
}

struct DnsConfig {
  nameservers @0 :List(Text);
  search @1 :List(Text);
  options @2 :List(Text);
}

struct Ulimit {
  name @0 :Text;
  soft @1 :Int64;
  hard @2 :Int64;
}

struct ContainerSpec {
  image @0 :Text;
  labels @1 :List(KeyValue);
  command @2 :List(Text);
  # Entrypoint override.
  args @3 :List(Text);
  hostname @4 :Text;
  env @5 :List(Text);
  # NAME=VALUE
  dir @6 :Text;
  user @7 :Text;
  groups @8 :List(Text);
  init @9 :OptionalBool;
  tty @10 :Bool;
  openStdin @11 :Bool;
  readOnly @12 :Bool;
  mounts @13 :List(Mount);
  stopSignal @14 :Text;
  stopGracePeriod @15 :Int64 = -1;
  # -1 = unset (the runtime applies Docker's 10 s).
  secrets @16 :List(SecretReference);
  configs @17 :List(ConfigReference);
  hosts @18 :List(Text);
  dnsConfig @19 :DnsConfig;
  healthcheck @20 :HealthConfig;
  # Absent (hasHealthcheck() false) = the image's own.
  isolation @21 :Text;
  sysctls @22 :List(KeyValue);
  capabilityAdd @23 :List(Text);
  capabilityDrop @24 :List(Text);
  ulimits @25 :List(Ulimit);
  oomScoreAdj @26 :Int64;
  noNewPrivileges @27 :Bool;
}

struct GenericRuntimeSpec {
  kind @0 :Text;
  payload @1 :Data;
}

struct RestartPolicy {
  enum Condition {
    none @0;
    onFailure @1;
    any @2;
  }
  condition @0 :Condition = any;
  delay @1 :Int64 = 5000000000;
  maxAttempts @2 :UInt64;
  # 0 = unlimited.
  window @3 :Int64;
  # 0 = unbounded.
}

struct PlacementPreference {
  spreadDescriptor @0 :Text;
  # node.labels.<key> or engine.labels.<key>
}

struct Placement {
  constraints @0 :List(Text);
  # "key==value" / "key!=value", all must hold.
  preferences @1 :List(PlacementPreference);
  # In order of precedence (nested spread).
  maxReplicas @2 :UInt64;
  # Per node; 0 = unlimited.
  platforms @3 :List(Platform);
}

struct NetworkAttachmentConfig {
  target @0 :Text;
  # A network name or ID; "host" and "none" are the node-local networks.
  aliases @1 :List(Text);
  addresses @2 :List(Text);
  driverOpts @3 :List(KeyValue);
}

struct TaskSpec {
  runtime :union {
    container @0 :ContainerSpec;
    generic @1 :GenericRuntimeSpec;
  }
  resources @2 :ResourceRequirements;
  restart @3 :RestartPolicy;
  placement @4 :Placement;
  logDriver @5 :Driver;
  networks @6 :List(NetworkAttachmentConfig);
  forceUpdate @7 :UInt64;
  # A counter; bumping it forces a rolling restart.
}

struct UpdateConfig {
  enum FailureAction {
    pause @0;
    continue @1;
    rollback @2;
  }
  enum Order {
    stopFirst @0;
    startFirst @1;
  }
  parallelism @0 :UInt64 = 1;
  # 0 = all at once.
  delay @1 :Int64;
  failureAction @2 :FailureAction;
  monitor @3 :Int64 = 5000000000;
  maxFailureRatio @4 :Float32;
  order @5 :Order;
}

struct PortConfig {
  enum Protocol {
    tcp @0;
    udp @1;
    sctp @2;
  }
  enum PublishMode {
    ingress @0;
    host @1;
  }
  name @0 :Text;
  protocol @1 :Protocol;
  targetPort @2 :UInt32;
  publishedPort @3 :UInt32;
  publishMode @4 :PublishMode;
}

struct EndpointSpec {
  enum Mode {
    vip @0;
    dnsrr @1;
  }
  mode @0 :Mode;
  ports @1 :List(PortConfig);
}

struct ServiceSpec {
  annotations @0 :Annotations;
  task @1 :TaskSpec;
  mode :union {
    replicated @2 :UInt64;
    # Number of replicas.
    global @3 :Void;
    replicatedJob :group {
      maxConcurrent @4 :UInt64;
      totalCompletions @5 :UInt64;
    }
    globalJob @6 :Void;
  }
  update @7 :UpdateConfig;
  # Absent = defaults. Jobs carry none.
  rollback @8 :UpdateConfig;
  endpoint @9 :EndpointSpec;
}

# ---- tasks ----------------------------------------------------------------------------------

# Task states. A task's state only increases; values are spaced so that a state can be inserted
# between two others without renumbering, and two observations compare by value (the greater
# one happened later). Same values as SwarmKit.
const taskStateNew :UInt16 = 0;
const taskStatePending :UInt16 = 64;
const taskStateAssigned :UInt16 = 192;
const taskStateAccepted :UInt16 = 256;
const taskStatePreparing :UInt16 = 320;
const taskStateReady :UInt16 = 384;
const taskStateStarting :UInt16 = 448;
const taskStateRunning :UInt16 = 512;
const taskStateComplete :UInt16 = 576;
const taskStateShutdown :UInt16 = 640;
const taskStateFailed :UInt16 = 704;
const taskStateRejected :UInt16 = 768;
const taskStateRemove :UInt16 = 800;
const taskStateOrphaned :UInt16 = 832;

struct ContainerStatus {
  containerId @0 :Text;
  pid @1 :Int32;
  exitCode @2 :Int32;
}

struct TaskStatus {
  timestamp @0 :Int64;
  state @1 :UInt16;
  # One of the taskState* constants.
  message @2 :Text;
  err @3 :Text;
  container @4 :ContainerStatus;
  ports @5 :List(PortConfig);
  appliedBy @6 :Text;
  appliedAt @7 :Int64;
}

struct Task {
  id @0 :Text;
  meta @1 :Meta;
  spec @2 :TaskSpec;
  # A copy of the service's task spec at creation; never mutated.
  specVersion @3 :Version;
  serviceId @4 :Text;
  slot @5 :UInt64;
  # Replicated: 1..N. Global: 0 (identified by nodeId). Replicated job: 0..totalCompletions-1.
  nodeId @6 :Text;
  annotations @7 :Annotations;
  serviceAnnotations @8 :Annotations;
  status @9 :TaskStatus;
  desiredState @10 :UInt16;
  # Written only by managers.
  assignedGenericResources @11 :List(GenericResource);
  jobIteration @12 :Version;
  networks @13 :List(NetworkAttachmentConfig);
}

struct SecretSpec {
  annotations @0 :Annotations;
  data @1 :Data;
  templating @2 :Driver;
  driver @3 :Driver;
}

struct Secret {
  id @0 :Text;
  meta @1 :Meta;
  spec @2 :SecretSpec;
}

struct ConfigSpec {
  annotations @0 :Annotations;
  data @1 :Data;
  templating @2 :Driver;
}

struct Config {
  id @0 :Text;
  meta @1 :Meta;
  spec @2 :ConfigSpec;
}

# ---- small capabilities ---------------------------------------------------------------------

interface ByteSink {
  # A flow-controlled byte stream in one direction (chunks of a snapshot, a connection's bytes).
  write @0 (chunk :Data) -> stream;
  done @1 ();
  # The end: no more writes. Resolves once the receiver has taken everything.
}

interface Handle {
  # An ongoing subscription or resource; dropping the last reference cancels it.
}
