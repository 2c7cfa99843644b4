// Encoders against golden JSON written from moby's api/types/swarm (what `docker node inspect`,
// `docker service inspect`, ... print). Strings are compared after serialising, so field order
// (Go's struct order) is checked too.
#include "api/encode.h"
#include "api/text.h"

#include <boost/json.hpp>
#include <capnp/message.h>
#include <catch2/catch.hpp>

namespace json = boost::json;
using namespace swarm;

namespace {

// 2024-05-06T07:08:09.123456789Z
constexpr int64_t kCreated = 1714979289'123456789;
constexpr int64_t kUpdated = 1714979300'000000000;

std::string canonical(std::string_view golden) { return json::serialize(json::parse(golden)); }

void setLabel(capnp::List<schema::KeyValue>::Builder list, unsigned i, const char* key,
              const char* value) {
  list[i].setKey(key);
  list[i].setValue(value);
}

capnp::Data::Reader data(std::string_view text) {
  return capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(text.data()), text.size());
}

constexpr std::string_view kRootPem =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBezCCASGgAwIBAgIUFnu0YhBPVC8r3zpRlo2nRPOLsJYwCgYIKoZIzj0EAwIw\n"
    "EzERMA8GA1UEAwwIc3dhcm0tY2EwHhcNMjYxMjA0MTU1MjI3WhcNNDYxMTI5MTU1\n"
    "MjI3WjATMREwDwYDVQQDDAhzd2FybS1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEH\n"
    "A0IABNtJPXpa1+CrkmGJFGtI1Ux2wuaa51yG/gQkJapHLHUL1R9vSYJmeKetKa8U\n"
    "UyZMhX15ATTgxRTuZSeDf0BTnKmjUzBRMB0GA1UdDgQWBBT3FP6jtfYPhTSW8mSR\n"
    "vq/18KuRKjAfBgNVHSMEGDAWgBT3FP6jtfYPhTSW8mSRvq/18KuRKjAPBgNVHRMB\n"
    "Af8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQDkrymlxVtLf66UCfYrUkYMb3lq\n"
    "xUXzZ9mSAAMyTgJrZAIgaERCtxgxdcdzLPKHYVU61+HIlQGOKCsrZDLYLQwH8V0=\n"
    "-----END CERTIFICATE-----\n";
// DER subject and SubjectPublicKeyInfo of kRootPem, base64 (from `openssl x509`).
constexpr std::string_view kRootSubject = "MBMxETAPBgNVBAMMCHN3YXJtLWNh";
constexpr std::string_view kRootPublicKey =
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE20k9elrX4KuSYYkUa0jVTHbC5prnXIb+BCQlqkcsdQvVH29JgmZ4p60p"
    "rxRTJkyFfXkBNODFFO5lJ4N/QFOcqQ==";

std::string jsonString(std::string_view text) {
  return json::serialize(json::string_view(text.data(), text.size()));
}

void fillManager(schema::Node::Builder node) {
  node.setId("k7b9q2x4m1n8p3r6s5t0v2w7y");
  node.getMeta().getVersion().setIndex(42);
  node.getMeta().setCreatedAt(kCreated);
  node.getMeta().setUpdatedAt(kUpdated);
  auto spec = node.getSpec();
  auto labels = spec.getAnnotations().initLabels(2);
  setLabel(labels, 0, "zone", "b");
  setLabel(labels, 1, "disk", "ssd");  // out of order on purpose: Go sorts map keys
  spec.setDesiredRole(schema::NodeRole::MANAGER);
  spec.setAvailability(schema::NodeAvailability::DRAIN);
  spec.setMembership(schema::NodeMembership::ACCEPTED);
  auto description = node.getDescription();
  description.setHostname("node-1");
  description.getPlatform().setOs("linux");
  description.getPlatform().setArchitecture("x86_64");
  description.getResources().setNanoCpus(4'000'000'000);
  description.getResources().setMemoryBytes(8'346'984'448);
  auto generic = description.getResources().initGeneric(2);
  generic[0].setKind("gpu");
  generic[0].setNamed("GPU-1");
  generic[1].setKind("ssd");
  generic[1].setDiscrete(2);
  description.getEngine().setEngineVersion("27.3.1");
  setLabel(description.getEngine().initLabels(1), 0, "rack", "r1");
  auto plugins = description.getEngine().initPlugins(2);
  plugins[0].setType("Log");
  plugins[0].setName("json-file");
  plugins[1].setType("Network");
  plugins[1].setName("overlay");
  description.getTlsInfo().setTrustRoot(data(kRootPem));
  description.getTlsInfo().setCertIssuerSubject(data("\x30\x13"));
  description.getTlsInfo().setCertIssuerPublicKey(data("\x30\x59\x30"));
  node.getStatus().setState(schema::NodeState::READY);
  node.getStatus().setAddr("192.168.65.3");
  auto manager = node.getManagerStatus().initManager();
  manager.setLeader(true);
  manager.setReachability(schema::Reachability::REACHABLE);
  manager.setAddr("192.168.65.3:2377");
  manager.setRaftId(7);
}

}  // namespace

TEST_CASE("a manager node encodes as docker node inspect prints it") {
  capnp::MallocMessageBuilder message;
  auto node = message.initRoot<schema::Node>();
  fillManager(node);
  std::string expected = R"({
    "ID": "k7b9q2x4m1n8p3r6s5t0v2w7y",
    "Version": {"Index": 42},
    "CreatedAt": "2024-05-06T07:08:09.123456789Z",
    "UpdatedAt": "2024-05-06T07:08:20Z",
    "Spec": {"Labels": {"disk": "ssd", "zone": "b"}, "Role": "manager", "Availability": "drain"},
    "Description": {
      "Hostname": "node-1",
      "Platform": {"Architecture": "x86_64", "OS": "linux"},
      "Resources": {"NanoCPUs": 4000000000, "MemoryBytes": 8346984448, "GenericResources": [
        {"NamedResourceSpec": {"Kind": "gpu", "Value": "GPU-1"}},
        {"DiscreteResourceSpec": {"Kind": "ssd", "Value": 2}}]},
      "Engine": {"EngineVersion": "27.3.1", "Labels": {"rack": "r1"},
                 "Plugins": [{"Type": "Log", "Name": "json-file"},
                             {"Type": "Network", "Name": "overlay"}]},
      "TLSInfo": {"TrustRoot": )" + jsonString(kRootPem) + R"(,
                  "CertIssuerSubject": "MBM=", "CertIssuerPublicKey": "MFkw"}
    },
    "Status": {"State": "ready", "Addr": "192.168.65.3"},
    "ManagerStatus": {"Leader": true, "Reachability": "reachable", "Addr": "192.168.65.3:2377"}
  })";
  CHECK(json::serialize(api::encodeNode(node)) == canonical(expected));
}

TEST_CASE("a bare worker node omits what Go omits and keeps the structs Go keeps") {
  capnp::MallocMessageBuilder message;
  auto node = message.initRoot<schema::Node>();
  node.setId("w1");
  CHECK(json::serialize(api::encodeNode(node)) == canonical(R"({
    "ID": "w1", "Version": {}, "CreatedAt": "0001-01-01T00:00:00Z",
    "UpdatedAt": "0001-01-01T00:00:00Z",
    "Spec": {"Labels": {}, "Role": "worker", "Availability": "active"},
    "Description": {"Platform": {}, "Resources": {}, "Engine": {}, "TLSInfo": {}},
    "Status": {"State": "unknown"}
  })"));
}

TEST_CASE("a secret never carries its data, a config carries it in base64") {
  capnp::MallocMessageBuilder message;
  auto secret = message.initRoot<schema::Secret>();
  secret.setId("s1");
  secret.getMeta().getVersion().setIndex(3);
  secret.getMeta().setCreatedAt(kCreated);
  secret.getMeta().setUpdatedAt(kCreated);
  secret.getSpec().getAnnotations().setName("db-password");
  secret.getSpec().setData(data("hunter2-very-secret"));
  auto encoded = json::serialize(api::encodeSecret(secret));
  CHECK(encoded == canonical(R"({"ID": "s1", "Version": {"Index": 3},
    "CreatedAt": "2024-05-06T07:08:09.123456789Z", "UpdatedAt": "2024-05-06T07:08:09.123456789Z",
    "Spec": {"Name": "db-password", "Labels": {}}})"));
  CHECK(encoded.find(api::base64Encode("hunter2-very-secret")) == std::string::npos);
  CHECK(encoded.find("hunter2") == std::string::npos);

  secret.getSpec().initDriver().setName("vault");
  secret.getSpec().initTemplating().setName("golang");
  CHECK(json::serialize(api::encodeSecret(secret).at("Spec")) ==
        canonical(R"({"Name": "db-password", "Labels": {}, "Driver": {"Name": "vault"},
                      "Templating": {"Name": "golang"}})"));

  capnp::MallocMessageBuilder configMessage;
  auto config = configMessage.initRoot<schema::Config>();
  config.setId("c1");
  config.getSpec().getAnnotations().setName("nginx.conf");
  setLabel(config.getSpec().getAnnotations().initLabels(1), 0, "app", "web");
  config.getSpec().setData(data("server {}\n"));
  CHECK(json::serialize(api::encodeConfig(config)) == canonical(R"({"ID": "c1", "Version": {},
    "CreatedAt": "0001-01-01T00:00:00Z", "UpdatedAt": "0001-01-01T00:00:00Z",
    "Spec": {"Name": "nginx.conf", "Labels": {"app": "web"}, "Data": "c2VydmVyIHt9Cg=="}})"));
}

TEST_CASE("the swarm encodes with SwarmKit's defaults and its join tokens, never the CA key") {
  capnp::MallocMessageBuilder message;
  auto cluster = message.initRoot<store::schema::Cluster>();
  cluster.setId("abcdefghijklmnopqrstuvwxy");
  cluster.getMeta().getVersion().setIndex(11);
  cluster.getMeta().setCreatedAt(kCreated);
  cluster.getMeta().setUpdatedAt(kUpdated);
  cluster.getSpec().getAnnotations().setName("default");
  cluster.getRootCa().setCert(data(kRootPem));
  cluster.getRootCa().setKey(data("-----BEGIN EC PRIVATE KEY-----\nTOPSECRETKEY\n-----END"));
  cluster.getJoinTokens().setWorker("SWMTKN-1-aaa-worker");
  cluster.getJoinTokens().setManager("SWMTKN-1-aaa-manager");

  std::string spec = R"({"Name": "default", "Labels": {},
      "Orchestration": {"TaskHistoryRetentionLimit": 5},
      "Raft": {"SnapshotInterval": 10000, "KeepOldSnapshots": 0,
               "LogEntriesForSlowFollowers": 500, "ElectionTick": 10, "HeartbeatTick": 1},
      "Dispatcher": {"HeartbeatPeriod": 5000000000},
      "CAConfig": {"NodeCertExpiry": 7776000000000000},
      "TaskDefaults": {},
      "EncryptionConfig": {"AutoLockManagers": false}})";
  std::string info = R"("ID": "abcdefghijklmnopqrstuvwxy", "Version": {"Index": 11},
    "CreatedAt": "2024-05-06T07:08:09.123456789Z", "UpdatedAt": "2024-05-06T07:08:20Z",
    "Spec": )" + spec + R"(,
    "TLSInfo": {"TrustRoot": )" + jsonString(kRootPem) + R"(, "CertIssuerSubject": ")" +
                     std::string(kRootSubject) + R"(", "CertIssuerPublicKey": ")" +
                     std::string(kRootPublicKey) + R"("},
    "RootRotationInProgress": false, "DefaultAddrPool": ["10.0.0.0/8"], "SubnetSize": 24,
    "DataPathPort": 4789)";
  std::string swarm = json::serialize(api::encodeSwarm(cluster));
  CHECK(swarm == canonical("{" + info + R"(, "JoinTokens": {"Worker": "SWMTKN-1-aaa-worker",
                                                           "Manager": "SWMTKN-1-aaa-manager"}})"));
  CHECK(json::serialize(api::encodeClusterInfo(cluster)) == canonical("{" + info + "}"));
  CHECK(swarm.find("TOPSECRETKEY") == std::string::npos);
  CHECK(swarm.find("PRIVATE KEY") == std::string::npos);
  CHECK(json::serialize(api::encodeSwarmSpec(cluster.getSpec())) == canonical(spec));

  SECTION("changed settings, external CAs, a forced rotation and the network settings") {
    auto s = cluster.getSpec();
    setLabel(s.getAnnotations().initLabels(1), 0, "env", "prod");
    s.setTaskHistoryRetentionLimit(2);
    s.setKeepOldSnapshots(3);
    s.setNodeCertExpiry(3'600'000'000'000);
    auto cas = s.initExternalCas(1);
    cas[0].setUrl("https://ca.example:8888/sign");
    cas[0].setCaCert(data("PEM"));
    s.initTaskDefaultLogDriver().setName("journald");
    s.setAutoLockManagers(true);
    cluster.setLastForcedRotation(2);
    cluster.setRootRotationInProgress(true);
    api::NetworkSettings network;
    network.defaultAddrPool = {"10.10.0.0/16", "10.20.0.0/16"};
    network.subnetSize = 26;
    network.dataPathPort = 7789;
    auto out = api::encodeSwarm(cluster, network).as_object();
    CHECK(json::serialize(out.at("Spec")) == canonical(R"({"Name": "default",
      "Labels": {"env": "prod"}, "Orchestration": {"TaskHistoryRetentionLimit": 2},
      "Raft": {"SnapshotInterval": 10000, "KeepOldSnapshots": 3,
               "LogEntriesForSlowFollowers": 500, "ElectionTick": 10, "HeartbeatTick": 1},
      "Dispatcher": {"HeartbeatPeriod": 5000000000},
      "CAConfig": {"NodeCertExpiry": 3600000000000, "ExternalCAs": [{"Protocol": "cfssl",
                   "URL": "https://ca.example:8888/sign", "CACert": "PEM"}], "ForceRotate": 2},
      "TaskDefaults": {"LogDriver": {"Name": "journald"}},
      "EncryptionConfig": {"AutoLockManagers": true}})"));
    CHECK(out.at("RootRotationInProgress") == true);
    CHECK(json::serialize(out.at("DefaultAddrPool")) == R"(["10.10.0.0/16","10.20.0.0/16"])");
    CHECK(out.at("SubnetSize") == 26);
    CHECK(out.at("DataPathPort") == 7789);
  }

  SECTION("a root that is not PEM still gives its trust root, without issuer fields") {
    cluster.getRootCa().setCert(data("not a certificate"));
    CHECK(json::serialize(api::encodeSwarm(cluster).at("TLSInfo")) ==
          R"({"TrustRoot":"not a certificate"})");
  }
}

namespace {

void fillServiceSpec(schema::ServiceSpec::Builder spec) {
  spec.getAnnotations().setName("web");
  setLabel(spec.getAnnotations().initLabels(1), 0, "tier", "front");
  auto task = spec.getTask();
  auto c = task.getRuntime().initContainer();
  c.setImage("nginx:1.27@sha256:abc");
  auto args = c.initArgs(2);
  args.set(0, "-g");
  args.set(1, "daemon off;");
  c.initEnv(1).set(0, "A=1");
  c.setInit(schema::OptionalBool::YES);
  c.setStopGracePeriod(10'000'000'000);
  auto mounts = c.initMounts(2);
  mounts[0].setType(schema::Mount::Type::VOLUME);
  mounts[0].setSource("data");
  mounts[0].setTarget("/data");
  mounts[0].setVolumeNoCopy(true);
  mounts[1].setType(schema::Mount::Type::BIND);
  mounts[1].setSource("/etc/hosts");
  mounts[1].setTarget("/h");
  mounts[1].setReadOnly(true);
  mounts[1].setBindPropagation(schema::Mount::Propagation::RSLAVE);
  auto health = c.initHealthcheck();
  auto test = health.initTest(2);
  test.set(0, "CMD-SHELL");
  test.set(1, "curl -f localhost");
  health.setInterval(30'000'000'000);
  health.setRetries(3);
  auto secrets = c.initSecrets(1);
  secrets[0].setSecretId("sec1");
  secrets[0].setSecretName("db-password");
  secrets[0].getFile().setName("db-password");
  secrets[0].getFile().setUid("0");
  secrets[0].getFile().setGid("0");
  auto configs = c.initConfigs(1);
  configs[0].setConfigId("cfg1");
  configs[0].setConfigName("cred");
  configs[0].getTarget().setRuntime();
  c.initDnsConfig().initNameservers(1).set(0, "10.0.0.2");
  auto resources = task.initResources();
  resources.initLimits().setMemoryBytes(536'870'912);
  resources.initReservations().setNanoCpus(500'000'000);
  task.initRestart().setCondition(schema::RestartPolicy::Condition::ON_FAILURE);
  task.getRestart().setMaxAttempts(3);
  auto placement = task.initPlacement();
  placement.initConstraints(1).set(0, "node.role==worker");
  placement.initPreferences(1)[0].setSpreadDescriptor("node.labels.zone");
  placement.setMaxReplicas(2);
  auto platforms = placement.initPlatforms(1);
  platforms[0].setOs("linux");
  platforms[0].setArchitecture("amd64");
  task.initNetworks(1)[0].setTarget("backend");
  task.setForceUpdate(1);
  spec.getMode().setReplicated(3);
  auto update = spec.initUpdate();
  update.setParallelism(2);
  update.setDelay(10'000'000'000);
  update.setFailureAction(schema::UpdateConfig::FailureAction::ROLLBACK);
  update.setMaxFailureRatio(0.25f);
  update.setOrder(schema::UpdateConfig::Order::START_FIRST);
  auto ports = spec.initEndpoint().initPorts(1);
  ports[0].setTargetPort(80);
  ports[0].setPublishedPort(8080);
}

constexpr std::string_view kServiceSpecGolden = R"({
  "Name": "web", "Labels": {"tier": "front"},
  "TaskTemplate": {
    "ContainerSpec": {
      "Image": "nginx:1.27@sha256:abc", "Args": ["-g", "daemon off;"], "Env": ["A=1"],
      "Init": true,
      "Mounts": [
        {"Type": "volume", "Source": "data", "Target": "/data", "VolumeOptions": {"NoCopy": true}},
        {"Type": "bind", "Source": "/etc/hosts", "Target": "/h", "ReadOnly": true,
         "BindOptions": {"Propagation": "rslave"}}],
      "StopGracePeriod": 10000000000,
      "Healthcheck": {"Test": ["CMD-SHELL", "curl -f localhost"], "Interval": 30000000000,
                      "Retries": 3},
      "DNSConfig": {"Nameservers": ["10.0.0.2"]},
      "Secrets": [{"File": {"Name": "db-password", "UID": "0", "GID": "0", "Mode": 292},
                   "SecretID": "sec1", "SecretName": "db-password"}],
      "Configs": [{"Runtime": {}, "ConfigID": "cfg1", "ConfigName": "cred"}]
    },
    "Resources": {"Limits": {"MemoryBytes": 536870912}, "Reservations": {"NanoCPUs": 500000000}},
    "RestartPolicy": {"Condition": "on-failure", "Delay": 5000000000, "MaxAttempts": 3},
    "Placement": {"Constraints": ["node.role==worker"],
                  "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
                  "MaxReplicas": 2, "Platforms": [{"Architecture": "amd64", "OS": "linux"}]},
    "Networks": [{"Target": "backend"}],
    "ForceUpdate": 1,
    "Runtime": "container"
  },
  "Mode": {"Replicated": {"Replicas": 3}},
  "UpdateConfig": {"Parallelism": 2, "Delay": 10000000000, "FailureAction": "rollback",
                   "Monitor": 5000000000, "MaxFailureRatio": 0.25, "Order": "start-first"},
  "EndpointSpec": {"Mode": "vip", "Ports": [{"Protocol": "tcp", "TargetPort": 80,
                                             "PublishedPort": 8080, "PublishMode": "ingress"}]}
})";

}  // namespace

TEST_CASE("a service encodes with Spec, PreviousSpec, Endpoint and UpdateStatus") {
  capnp::MallocMessageBuilder message;
  auto service = message.initRoot<store::schema::Service>();
  service.setId("svc1");
  service.getMeta().getVersion().setIndex(20);
  service.getMeta().setCreatedAt(kCreated);
  service.getMeta().setUpdatedAt(kUpdated);
  fillServiceSpec(service.getSpec());
  auto previous = service.getPreviousSpec().initPrevious();
  previous.getAnnotations().setName("web");
  previous.getTask().getRuntime().initContainer().setImage("nginx:1.26");
  previous.getMode().setReplicated(1);
  auto ports = service.initEndpointPorts(1);
  ports[0].setTargetPort(80);
  ports[0].setPublishedPort(8080);
  service.getUpdateStatus().setState(store::schema::UpdateState::ROLLBACK_STARTED);
  service.getUpdateStatus().setStartedAt(kCreated);
  service.getUpdateStatus().setMessage("update rolled back due to failure");

  auto out = api::encodeService(service);
  std::string expected = std::string(R"({"ID": "svc1", "Version": {"Index": 20},
    "CreatedAt": "2024-05-06T07:08:09.123456789Z", "UpdatedAt": "2024-05-06T07:08:20Z",
    "Spec": )") + std::string(kServiceSpecGolden) + R"(,
    "PreviousSpec": {"Name": "web", "Labels": {},
      "TaskTemplate": {"ContainerSpec": {"Image": "nginx:1.26"}, "ForceUpdate": 0,
                       "Runtime": "container"},
      "Mode": {"Replicated": {"Replicas": 1}}},
    "Endpoint": {"Spec": {"Mode": "vip", "Ports": [{"Protocol": "tcp", "TargetPort": 80,
                          "PublishedPort": 8080, "PublishMode": "ingress"}]},
                 "Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080,
                            "PublishMode": "ingress"}]},
    "UpdateStatus": {"State": "rollback_started", "StartedAt": "2024-05-06T07:08:09.123456789Z",
                     "Message": "update rolled back due to failure"}})";
  CHECK(json::serialize(out) == canonical(expected));
}

TEST_CASE("job services carry JobStatus and their mode's counts") {
  capnp::MallocMessageBuilder message;
  auto service = message.initRoot<store::schema::Service>();
  service.setId("job1");
  service.getSpec().getTask().getRuntime().initContainer().setImage("busybox");
  auto job = service.getSpec().getMode().initReplicatedJob();
  job.setMaxConcurrent(2);
  job.setTotalCompletions(6);
  service.getJobIteration().setIndex(4);
  service.setJobLastExecution(kUpdated);
  auto out = api::encodeService(service).as_object();
  CHECK(json::serialize(out.at("Spec").at("Mode")) ==
        R"({"ReplicatedJob":{"MaxConcurrent":2,"TotalCompletions":6}})");
  CHECK(json::serialize(out.at("JobStatus")) ==
        R"({"JobIteration":{"Index":4},"LastExecution":"2024-05-06T07:08:20Z"})");
  CHECK(json::serialize(out.at("Endpoint")) == R"({"Spec":{}})");
  CHECK_FALSE(out.contains("UpdateStatus"));
  CHECK_FALSE(out.contains("PreviousSpec"));

  service.getSpec().getMode().setGlobalJob();
  CHECK(json::serialize(api::encodeService(service).at("Spec").at("Mode")) == R"({"GlobalJob":{}})");
  service.getSpec().getMode().setGlobal();
  auto global = api::encodeService(service).as_object();
  CHECK(json::serialize(global.at("Spec").at("Mode")) == R"({"Global":{}})");
  CHECK_FALSE(global.contains("JobStatus"));
}

TEST_CASE("a task encodes with its status, container and desired state") {
  capnp::MallocMessageBuilder message;
  auto task = message.initRoot<schema::Task>();
  task.setId("t1");
  task.getMeta().getVersion().setIndex(9);
  task.getMeta().setCreatedAt(kCreated);
  task.getMeta().setUpdatedAt(kUpdated);
  task.getSpec().getRuntime().initContainer().setImage("nginx:1.27");
  task.setServiceId("svc1");
  task.setSlot(2);
  task.setNodeId("n1");
  auto status = task.getStatus();
  status.setTimestamp(kUpdated + 5);
  status.setState(schema::TASK_STATE_RUNNING);
  status.setMessage("started");
  status.getContainer().setContainerId("c0ffee");
  status.getContainer().setPid(4242);
  auto ports = status.initPorts(1);
  ports[0].setProtocol(schema::PortConfig::Protocol::UDP);
  ports[0].setTargetPort(53);
  ports[0].setPublishedPort(5353);
  ports[0].setPublishMode(schema::PortConfig::PublishMode::HOST);
  task.setDesiredState(schema::TASK_STATE_RUNNING);
  auto generic = task.initAssignedGenericResources(1);
  generic[0].setKind("gpu");
  generic[0].setNamed("GPU-0");
  CHECK(json::serialize(api::encodeTask(task)) == canonical(R"({
    "ID": "t1", "Version": {"Index": 9}, "CreatedAt": "2024-05-06T07:08:09.123456789Z",
    "UpdatedAt": "2024-05-06T07:08:20Z", "Labels": {},
    "Spec": {"ContainerSpec": {"Image": "nginx:1.27"}, "ForceUpdate": 0, "Runtime": "container"},
    "ServiceID": "svc1", "Slot": 2, "NodeID": "n1",
    "Status": {"Timestamp": "2024-05-06T07:08:20.000000005Z", "State": "running",
               "Message": "started",
               "ContainerStatus": {"ContainerID": "c0ffee", "PID": 4242, "ExitCode": 0},
               "PortStatus": {"Ports": [{"Protocol": "udp", "TargetPort": 53,
                                         "PublishedPort": 5353, "PublishMode": "host"}]}},
    "DesiredState": "running",
    "GenericResources": [{"NamedResourceSpec": {"Kind": "gpu", "Value": "GPU-0"}}],
    "Volumes": null
  })"));

  SECTION("a failed job task: error, exit code, job iteration, no container yet") {
    status.setState(schema::TASK_STATE_REJECTED);
    status.setErr("no suitable node");
    status.getContainer().setContainerId("");
    task.getJobIteration().setIndex(1);
    task.setSlot(0);
    auto out = api::encodeTask(task).as_object();
    CHECK(json::serialize(out.at("Status")) ==
          canonical(R"({"Timestamp": "2024-05-06T07:08:20.000000005Z", "State": "rejected",
            "Message": "started", "Err": "no suitable node",
            "PortStatus": {"Ports": [{"Protocol": "udp", "TargetPort": 53,
                                      "PublishedPort": 5353, "PublishMode": "host"}]}})"));
    CHECK(json::serialize(out.at("JobIteration")) == R"({"Index":1})");
    CHECK_FALSE(out.contains("Slot"));
  }
}

TEST_CASE("enum values are spelled as Docker spells them") {
  using namespace api;
  CHECK(nodeRoleName(schema::NodeRole::WORKER) == "worker");
  CHECK(nodeRoleName(schema::NodeRole::MANAGER) == "manager");
  CHECK(nodeAvailabilityName(schema::NodeAvailability::PAUSE) == "pause");
  CHECK(nodeStateName(schema::NodeState::DOWN) == "down");
  CHECK(nodeStateName(schema::NodeState::DISCONNECTED) == "disconnected");
  CHECK(reachabilityName(schema::Reachability::UNREACHABLE) == "unreachable");
  const std::pair<uint16_t, const char*> states[] = {
      {0, "new"},         {128, "allocated"}, {64, "pending"},   {192, "assigned"},
      {256, "accepted"},  {320, "preparing"}, {384, "ready"},    {448, "starting"},
      {512, "running"},   {576, "complete"},  {640, "shutdown"}, {704, "failed"},
      {768, "rejected"},  {800, "remove"},    {832, "orphaned"}, {999, "999"}};
  for (auto& [value, name] : states) CHECK(taskStateName(value) == name);
  using store::schema::UpdateState;
  CHECK(updateStateName(UpdateState::UPDATING) == "updating");
  CHECK(updateStateName(UpdateState::PAUSED) == "paused");
  CHECK(updateStateName(UpdateState::COMPLETED) == "completed");
  CHECK(updateStateName(UpdateState::ROLLBACK_PAUSED) == "rollback_paused");
  CHECK(updateStateName(UpdateState::ROLLBACK_COMPLETED) == "rollback_completed");
}
