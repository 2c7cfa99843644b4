// Decoders: bodies as the docker CLI sends them, decode -> encode round trips, and every
// validation error with its path and message.
#include "api/decode.h"
#include "api/encode.h"
#include "api/text.h"

#include <boost/json.hpp>
#include <capnp/message.h>
#include <catch2/catch.hpp>

namespace json = boost::json;
using namespace swarm;

namespace {

std::string canonical(std::string_view golden) { return json::serialize(json::parse(golden)); }

// The message of the BadRequest that `decode(body)` throws ("" if none).
template <typename Decode>
std::string errorOf(std::string_view body, Decode decode) {
  try {
    decode(json::parse(body));
  } catch (const api::BadRequest& e) {
    return e.what();
  }
  return "";
}

std::string nodeError(std::string_view body) {
  return errorOf(body, [](const json::value& v) {
    capnp::MallocMessageBuilder message;
    api::decodeNodeSpec(v, message.initRoot<schema::NodeSpec>());
  });
}

std::string secretError(std::string_view body) {
  return errorOf(body, [](const json::value& v) {
    capnp::MallocMessageBuilder message;
    api::decodeSecretSpec(v, message.initRoot<schema::SecretSpec>());
  });
}

std::string configError(std::string_view body) {
  return errorOf(body, [](const json::value& v) {
    capnp::MallocMessageBuilder message;
    api::decodeConfigSpec(v, message.initRoot<schema::ConfigSpec>());
  });
}

std::string swarmError(std::string_view body) {
  return errorOf(body, [](const json::value& v) {
    capnp::MallocMessageBuilder message;
    api::decodeSwarmSpec(v, message.initRoot<store::schema::ClusterSpec>());
  });
}

std::string initError(std::string_view body) {
  return errorOf(body, [](const json::value& v) {
    capnp::MallocMessageBuilder message;
    api::decodeInitRequest(v, message.initRoot<store::schema::ClusterSpec>());
  });
}

std::string joinError(std::string_view body) {
  return errorOf(body, [](const json::value& v) { api::decodeJoinRequest(v); });
}

std::string serviceError(std::string_view body) {
  return errorOf(body, [](const json::value& v) {
    capnp::MallocMessageBuilder message;
    api::decodeServiceSpec(v, message.initRoot<schema::ServiceSpec>());
  });
}

// A service body with `task` as its TaskTemplate.ContainerSpec fields after Image, and `rest`
// as further top-level fields.
std::string serviceBody(std::string_view container, std::string_view rest = "") {
  return std::string(R"({"Name": "web", "TaskTemplate": {"ContainerSpec": {"Image": "nginx")") +
         (container.empty() ? "" : ", ") + std::string(container) + "}}" +
         (rest.empty() ? "" : ", ") + std::string(rest) + "}";
}

std::string base64OfSize(size_t bytes) { return api::base64Encode(std::string(bytes, 'x')); }

}  // namespace

// ---- nodes ----------------------------------------------------------------------------------

TEST_CASE("a node spec as docker node update sends it decodes and encodes back") {
  capnp::MallocMessageBuilder message;
  auto node = message.initRoot<schema::Node>();
  node.setId("n1");
  api::decodeNodeSpec(json::parse(R"({"Name": "", "Labels": {"zone": "a", "disk": "ssd"},
                                      "Role": "manager", "Availability": "pause",
                                      "Unknown": {"ignored": [1, 2]}})"),
                      node.getSpec());
  CHECK(node.getSpec().getMembership() == schema::NodeMembership::ACCEPTED);
  CHECK(json::serialize(api::encodeNode(node).at("Spec")) ==
        R"({"Labels":{"disk":"ssd","zone":"a"},"Role":"manager","Availability":"pause"})");
  // Docker upper-cases enum strings before looking them up; names match case-insensitively.
  api::decodeNodeSpec(json::parse(R"({"role": "Worker", "AVAILABILITY": "DRAIN"})"),
                      node.getSpec());
  CHECK(node.getSpec().getDesiredRole() == schema::NodeRole::WORKER);
  CHECK(node.getSpec().getAvailability() == schema::NodeAvailability::DRAIN);
}

TEST_CASE("a bad node spec names the field and what is allowed") {
  CHECK(nodeError(R"({"Role": "worker", "Availability": "sleep"})") ==
        R"(Availability: "sleep" is not one of active, pause, drain)");
  CHECK(nodeError(R"({"Role": "boss", "Availability": "active"})") ==
        R"(Role: "boss" is not one of worker, manager)");
  CHECK(nodeError(R"({"Availability": "active"})") ==
        "Role: is required: one of worker, manager");
  CHECK(nodeError(R"({"Role": "worker"})") ==
        "Availability: is required: one of active, pause, drain");
  CHECK(nodeError(R"({"Role": 1, "Availability": "active"})") ==
        "Role: expected a string, got a number");
  CHECK(nodeError(R"({"Labels": {"a": 1}, "Role": "worker", "Availability": "active"})") ==
        "Labels.a: expected a string, got a number");
  CHECK(nodeError(R"({"Labels": ["a"], "Role": "worker", "Availability": "active"})") ==
        "Labels: expected an object, got an array");
  CHECK(nodeError(R"(["worker"])") == "request body: expected a JSON object, got an array");
  api::BadRequest error("Spec.Availability", "x");
  CHECK(error.path() == "Spec.Availability");
  CHECK(error.problem() == "x");
}

// ---- secrets and configs --------------------------------------------------------------------

TEST_CASE("a secret decodes its base64 data and the encoder never returns it") {
  capnp::MallocMessageBuilder message;
  auto secret = message.initRoot<schema::Secret>();
  api::decodeSecretSpec(json::parse(R"({"Name": "db.password_1", "Labels": {"a": "b"},
                                        "Data": "aHVudGVyMg=="})"),
                        secret.getSpec());
  auto data = secret.getSpec().getData();
  CHECK(std::string(reinterpret_cast<const char*>(data.begin()), data.size()) == "hunter2");
  CHECK(json::serialize(api::encodeSecret(secret).at("Spec")) ==
        R"({"Name":"db.password_1","Labels":{"a":"b"}})");

  // An external driver holds the value: no Data needed.
  api::decodeSecretSpec(json::parse(R"({"Name": "ext", "Driver": {"Name": "vault",
                                        "Options": {"path": "kv/x"}}})"),
                        secret.getSpec());
  CHECK(secret.getSpec().getData().size() == 0);
  CHECK(std::string(secret.getSpec().getDriver().getName().cStr()) == "vault");
}

TEST_CASE("secret and config data sizes: 1 byte up to just under 500 KiB and 1000 KiB") {
  auto secret = [](size_t size) {
    return secretError(R"({"Name": "s", "Data": ")" + base64OfSize(size) + R"("})");
  };
  CHECK(secret(1) == "");
  CHECK(secret(500 * 1024 - 1) == "");
  CHECK(secret(500 * 1024) ==
        "Data: 512000 bytes is too large: the limit is 511999 bytes (less than 500 KiB)");
  CHECK(secretError(R"({"Name": "s"})") == "Data: must hold at least 1 byte");
  CHECK(secretError(R"({"Name": "s", "Data": ""})") == "Data: must hold at least 1 byte");
  CHECK(secretError(R"({"Name": "s", "Data": "aGk"})") ==
        "Data: is not valid base64 (standard alphabet, padded)");
  CHECK(secretError(R"({"Name": "s", "Data": 5})") == "Data: expected a string, got a number");

  auto config = [](size_t size) {
    return configError(R"({"Name": "c", "Data": ")" + base64OfSize(size) + R"("})");
  };
  CHECK(config(1000 * 1024 - 1) == "");
  CHECK(config(1000 * 1024) ==
        "Data: 1024000 bytes is too large: the limit is 1023999 bytes (less than 1000 KiB)");
  CHECK(configError(R"({"Name": "c"})") == "Data: must hold at least 1 byte");

  capnp::MallocMessageBuilder message;
  auto c = message.initRoot<schema::Config>();
  api::decodeConfigSpec(json::parse(R"({"Name": "nginx.conf", "Data": "c2VydmVyIHt9Cg==",
                                        "Templating": {"Name": "golang"}})"),
                        c.getSpec());
  CHECK(json::serialize(api::encodeConfig(c).at("Spec")) ==
        R"({"Name":"nginx.conf","Labels":{},"Data":"c2VydmVyIHt9Cg==","Templating":{"Name":"golang"}})");
}

TEST_CASE("secret and config names follow SwarmKit's rules") {
  auto named = [](std::string name) {
    return secretError(R"({"Name": )" + json::serialize(json::value(name)) +
                       R"(, "Data": "eA=="})");
  };
  CHECK(named("a") == "");
  CHECK(named("my-secret.v2_x") == "");
  CHECK(named(std::string(64, 'a')) == "");
  CHECK(named("") == "Name: a name is required");
  CHECK(named(std::string(65, 'a')) == "Name: \"" + std::string(65, 'a') +
                                           "\" is longer than 64 characters");
  std::string rules = " is not a valid name: use letters, digits, '-', '_' and '.', starting and "
                      "ending with a letter or digit";
  CHECK(named("-lead") == "Name: \"-lead\"" + rules);
  CHECK(named("trail.") == "Name: \"trail.\"" + rules);
  CHECK(named("with space") == "Name: \"with space\"" + rules);
  CHECK(configError(R"({"Name": "a/b", "Data": "eA=="})") == "Name: \"a/b\"" + rules);
}

// ---- the swarm ------------------------------------------------------------------------------

TEST_CASE("a swarm update merges only the fields it gives") {
  capnp::MallocMessageBuilder message;
  auto spec = message.initRoot<store::schema::ClusterSpec>();
  spec.getAnnotations().setName("default");
  spec.setKeepOldSnapshots(4);
  auto rotation = api::decodeSwarmSpec(json::parse(R"({
      "Name": "default", "Labels": {"team": "infra"},
      "Orchestration": {"TaskHistoryRetentionLimit": 10},
      "Raft": {"SnapshotInterval": 0, "LogEntriesForSlowFollowers": 700},
      "Dispatcher": {"HeartbeatPeriod": 10000000000},
      "CAConfig": {"NodeCertExpiry": 3600000000000, "ForceRotate": 3,
                   "ExternalCAs": [{"Protocol": "cfssl", "URL": "https://ca:8888",
                                    "CACert": "PEM", "Options": {"k": "v"}}]},
      "TaskDefaults": {"LogDriver": {"Name": "json-file", "Options": {"max-size": "10m"}}},
      "EncryptionConfig": {"AutoLockManagers": true}})"),
                                       spec);
  CHECK(rotation.forceRotate == 3);
  CHECK(rotation.signingCaCert.empty());
  CHECK(json::serialize(api::encodeSwarmSpec(spec)) == canonical(R"({
      "Name": "default", "Labels": {"team": "infra"},
      "Orchestration": {"TaskHistoryRetentionLimit": 10},
      "Raft": {"SnapshotInterval": 10000, "KeepOldSnapshots": 4,
               "LogEntriesForSlowFollowers": 700, "ElectionTick": 10, "HeartbeatTick": 1},
      "Dispatcher": {"HeartbeatPeriod": 10000000000},
      "CAConfig": {"NodeCertExpiry": 3600000000000, "ExternalCAs": [{"Protocol": "cfssl",
                   "URL": "https://ca:8888", "Options": {"k": "v"}, "CACert": "PEM"}]},
      "TaskDefaults": {"LogDriver": {"Name": "json-file", "Options": {"max-size": "10m"}}},
      "EncryptionConfig": {"AutoLockManagers": true}})"));

  // An empty body changes nothing; GET -> POST of the same spec is a fixed point.
  std::string before = json::serialize(api::encodeSwarmSpec(spec));
  api::decodeSwarmSpec(json::parse("{}"), spec);
  CHECK(json::serialize(api::encodeSwarmSpec(spec)) == before);
  api::decodeSwarmSpec(json::parse(before), spec);
  CHECK(json::serialize(api::encodeSwarmSpec(spec)) == before);
  // Present-but-empty Labels and ExternalCAs clear them.
  api::decodeSwarmSpec(json::parse(R"({"Labels": {}, "CAConfig": {"ExternalCAs": []}})"), spec);
  CHECK(spec.getAnnotations().getLabels().size() == 0);
  CHECK(spec.getExternalCas().size() == 0);
}

TEST_CASE("a bad swarm spec names the field") {
  CHECK(swarmError(R"({"Name": "prod"})") ==
        R"(Name: "prod" is not allowed: the swarm is always named "default")");
  CHECK(swarmError(R"({"CAConfig": {"NodeCertExpiry": 3599999999999}})") ==
        "CAConfig.NodeCertExpiry: 3599999999999ns is too short: node certificates must last at "
        "least 1h (3600000000000)");
  CHECK(swarmError(R"({"CAConfig": {"NodeCertExpiry": 3600000000000}})") == "");
  CHECK(swarmError(R"({"Dispatcher": {"HeartbeatPeriod": -1}})") ==
        "Dispatcher.HeartbeatPeriod: -1 is negative");
  CHECK(swarmError(R"({"Raft": {"KeepOldSnapshots": -2}})") ==
        "Raft.KeepOldSnapshots: -2 is negative");
  CHECK(swarmError(R"({"Raft": {"ElectionTick": 1}})") ==
        "Raft.ElectionTick: 1 must be greater than HeartbeatTick (1)");
  CHECK(swarmError(R"({"Orchestration": {"TaskHistoryRetentionLimit": 2.5}})") ==
        "Orchestration.TaskHistoryRetentionLimit: expected an integer, got 2.5");
  CHECK(swarmError(R"({"CAConfig": {"ExternalCAs": [{"Protocol": "acme", "URL": "x"}]}})") ==
        R"(CAConfig.ExternalCAs[0].Protocol: "acme" is not one of cfssl)");
  CHECK(swarmError(R"({"CAConfig": {"ExternalCAs": [{"Protocol": "cfssl"}]}})") ==
        "CAConfig.ExternalCAs[0].URL: is required");
  CHECK(swarmError(R"({"CAConfig": {"SigningCAKey": "KEY"}})") ==
        "CAConfig.SigningCAKey: is given without SigningCACert");
  CHECK(swarmError(R"({"EncryptionConfig": {"AutoLockManagers": "yes"}})") ==
        "EncryptionConfig.AutoLockManagers: expected true or false, got a string");
  CHECK(swarmError(R"({"Raft": []})") == "Raft: expected an object, got an array");
}

TEST_CASE("swarm init: the CLI's body decodes into a request and a spec over the defaults") {
  capnp::MallocMessageBuilder message;
  auto spec = message.initRoot<store::schema::ClusterSpec>();
  auto request = api::decodeInitRequest(json::parse(R"({
      "ListenAddr": "0.0.0.0:2377", "AdvertiseAddr": "192.168.1.10", "DataPathAddr": "",
      "DataPathPort": 7789, "DefaultAddrPool": ["10.20.0.0/16"], "SubnetSize": 26,
      "ForceNewCluster": false, "AutoLockManagers": true, "Availability": "drain",
      "Spec": {"Orchestration": {}, "Raft": {"ElectionTick": 0, "HeartbeatTick": 0},
               "Dispatcher": {}, "CAConfig": {"SigningCACert": "CERT", "SigningCAKey": "KEY"},
               "TaskDefaults": {}, "EncryptionConfig": {"AutoLockManagers": false}}})"),
                                        spec);
  CHECK(request.listenAddr == "0.0.0.0:2377");
  CHECK(request.advertiseAddr == "192.168.1.10");
  CHECK(request.dataPathPort == 7789);
  CHECK(request.defaultAddrPool == std::vector<std::string>{"10.20.0.0/16"});
  CHECK(request.subnetSize == 26);
  CHECK(request.availability == schema::NodeAvailability::DRAIN);
  CHECK(request.autoLockManagers);
  CHECK(spec.getAutoLockManagers());
  CHECK(request.ca.signingCaCert == "CERT");
  CHECK(request.ca.signingCaKey == "KEY");
  CHECK(std::string(spec.getAnnotations().getName().cStr()) == "default");
  CHECK(spec.getElectionTick() == 10);
  CHECK(spec.getNodeCertExpiry() == 7'776'000'000'000'000);

  auto minimal = api::decodeInitRequest(json::parse(R"({"ListenAddr": "0.0.0.0:2377"})"), spec);
  CHECK(minimal.availability == schema::NodeAvailability::ACTIVE);
  CHECK(minimal.dataPathPort == 0);
}

TEST_CASE("bad init and join requests name the field") {
  CHECK(initError("{}") == R"(ListenAddr: is required, e.g. "0.0.0.0:2377")");
  std::string listen = R"({"ListenAddr": "0.0.0.0:2377", )";
  CHECK(initError(listen + R"("DataPathPort": 80})") ==
        "DataPathPort: 80 is out of range: use 1024..49151 (0 = 4789)");
  CHECK(initError(listen + R"("DataPathPort": 49152})") ==
        "DataPathPort: 49152 is out of range: use 1024..49151 (0 = 4789)");
  CHECK(initError(listen + R"("DataPathPort": 1024})") == "");
  CHECK(initError(listen + R"("DefaultAddrPool": ["10.0.0.0"]})") ==
        R"(DefaultAddrPool[0]: "10.0.0.0" is not an IPv4 CIDR such as "10.0.0.0/8")");
  CHECK(initError(listen + R"("DefaultAddrPool": "10.0.0.0/8"})") ==
        "DefaultAddrPool: expected an array, got a string");
  CHECK(initError(listen + R"("SubnetSize": 33})") == "SubnetSize: 33 is above the maximum 32");
  CHECK(initError(listen + R"("Availability": "sleep"})") ==
        R"(Availability: "sleep" is not one of active, pause, drain)");
  CHECK(initError(listen + R"("Spec": {"Name": "x"}})") ==
        R"(Spec.Name: "x" is not allowed: the swarm is always named "default")");
  CHECK(initError(listen + R"("Spec": {"CAConfig": {"NodeCertExpiry": 60000000000}}})") ==
        "Spec.CAConfig.NodeCertExpiry: 60000000000ns is too short: node certificates must last "
        "at least 1h (3600000000000)");
  CHECK(initError(listen + R"("ForceNewCluster": 1})") ==
        "ForceNewCluster: expected true or false, got a number");

  auto join = api::decodeJoinRequest(json::parse(R"({"ListenAddr": "0.0.0.0:2377",
      "AdvertiseAddr": "eth0", "RemoteAddrs": ["10.0.0.1:2377"], "JoinToken": "SWMTKN-1-x",
      "Availability": "pause"})"));
  CHECK(join.remoteAddrs == std::vector<std::string>{"10.0.0.1:2377"});
  CHECK(join.joinToken == "SWMTKN-1-x");
  CHECK(join.advertiseAddr == "eth0");
  CHECK(join.availability == schema::NodeAvailability::PAUSE);
  CHECK(joinError(R"({"ListenAddr": "0.0.0.0:2377", "JoinToken": "t"})") ==
        R"(RemoteAddrs: at least one manager address is required, e.g. ["192.168.1.10:2377"])");
  CHECK(joinError(R"({"ListenAddr": "a", "RemoteAddrs": [""], "JoinToken": "t"})") ==
        "RemoteAddrs[0]: is empty");
  CHECK(joinError(R"({"ListenAddr": "a", "RemoteAddrs": [7], "JoinToken": "t"})") ==
        "RemoteAddrs[0]: expected a string, got a number");
  CHECK(joinError(R"({"ListenAddr": "a", "RemoteAddrs": ["m:2377"]})") ==
        "JoinToken: is required, e.g. the SWMTKN-1-... token `docker swarm join-token worker` "
        "prints");
}

// ---- services -------------------------------------------------------------------------------

TEST_CASE("a service spec as docker service create sends it round-trips") {
  // Written from the CLI's request: fields the CLI sends empty come back omitted, as from Docker.
  std::string body = R"({
    "Name": "web", "Labels": {"tier": "front"},
    "TaskTemplate": {
      "ContainerSpec": {
        "Image": "nginx:1.27@sha256:abc", "Labels": {"l": "v"}, "Command": ["nginx"],
        "Args": ["-g", "daemon off;"], "Hostname": "{{.Task.Name}}", "Env": ["A=1", "B="],
        "Dir": "/srv", "User": "www", "Groups": ["adm"],
        "Privileges": {"CredentialSpec": null, "SELinuxContext": null, "NoNewPrivileges": true},
        "Init": false, "StopSignal": "SIGQUIT", "TTY": true, "OpenStdin": true,
        "ReadOnly": true,
        "Mounts": [
          {"Type": "volume", "Source": "data", "Target": "/data",
           "VolumeOptions": {"NoCopy": true, "Labels": {"x": "y"},
                             "DriverConfig": {"Name": "local", "Options": {"o": "bind"}}}},
          {"Type": "bind", "Source": "/etc/hosts", "Target": "/h",
           "BindOptions": {"Propagation": "rslave", "NonRecursive": true}},
          {"Type": "tmpfs", "Target": "/tmp", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 1023}}],
        "StopGracePeriod": 0,
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000, "Timeout": 2000000000,
                        "StartPeriod": 3000000000, "StartInterval": 4000000000, "Retries": 5},
        "Hosts": ["10.0.0.5 db"],
        "DNSConfig": {"Nameservers": ["1.1.1.1"], "Search": ["example.com"], "Options": ["ndots:2"]},
        "Secrets": [{"File": {"Name": "pw", "UID": "0", "GID": "0", "Mode": 256},
                     "SecretID": "sid", "SecretName": "pw"}],
        "Configs": [{"File": {"Name": "/etc/app.conf", "UID": "1", "GID": "2", "Mode": 292},
                     "ConfigID": "cid", "ConfigName": "app"},
                    {"Runtime": {}, "ConfigID": "cid2", "ConfigName": "cred"}],
        "Isolation": "default", "Sysctls": {"net.core.somaxconn": "1024"},
        "CapabilityAdd": ["CAP_NET_ADMIN"], "CapabilityDrop": ["CAP_MKNOD"],
        "Ulimits": [{"Name": "nofile", "Hard": 2048, "Soft": 1024}], "OomScoreAdj": -500
      },
      "Resources": {"Limits": {"NanoCPUs": 2000000000, "MemoryBytes": 536870912, "Pids": 100},
                    "Reservations": {"NanoCPUs": 1000000, "MemoryBytes": 4194304,
                      "GenericResources": [{"DiscreteResourceSpec": {"Kind": "gpu", "Value": 1}},
                                           {"NamedResourceSpec": {"Kind": "fpga", "Value": "f1"}}]},
                    "SwapBytes": 0, "MemorySwappiness": 60},
      "RestartPolicy": {"Condition": "on-failure", "Delay": 1000000000, "MaxAttempts": 3,
                        "Window": 60000000000},
      "Placement": {"Constraints": ["node.role==worker", "node.labels.zone != b"],
                    "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
                    "MaxReplicas": 2, "Platforms": [{"Architecture": "amd64", "OS": "linux"}]},
      "Networks": [{"Target": "backend", "Aliases": ["api"], "DriverOpts": {"a": "b"}}],
      "LogDriver": {"Name": "json-file", "Options": {"max-size": "10m"}},
      "ForceUpdate": 2,
      "Runtime": "container"
    },
    "Mode": {"Replicated": {"Replicas": 3}},
    "UpdateConfig": {"Parallelism": 2, "Delay": 10000000000, "FailureAction": "rollback",
                     "Monitor": 5000000000, "MaxFailureRatio": 0.25, "Order": "start-first"},
    "RollbackConfig": {"Parallelism": 1, "FailureAction": "pause", "Monitor": 5000000000,
                       "MaxFailureRatio": 0, "Order": "stop-first"},
    "EndpointSpec": {"Mode": "vip", "Ports": [
      {"Name": "http", "Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080,
       "PublishMode": "ingress"},
      {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 53, "PublishMode": "host"}]}
  })";
  capnp::MallocMessageBuilder message;
  auto spec = message.initRoot<schema::ServiceSpec>();
  api::decodeServiceSpec(json::parse(body), spec);
  std::string encoded = json::serialize(api::encodeServiceSpec(spec));
  CHECK(encoded == canonical(body));

  // And the encoding decodes to the same spec again.
  capnp::MallocMessageBuilder again;
  api::decodeServiceSpec(json::parse(encoded), again.initRoot<schema::ServiceSpec>());
  CHECK(json::serialize(api::encodeServiceSpec(again.getRoot<schema::ServiceSpec>())) == encoded);
}

TEST_CASE("service defaults: replicated 1 without a mode, job counts, Go's zero values") {
  capnp::MallocMessageBuilder message;
  auto spec = message.initRoot<schema::ServiceSpec>();
  api::decodeServiceSpec(json::parse(serviceBody("")), spec);
  CHECK(spec.getMode().isReplicated());
  CHECK(spec.getMode().getReplicated() == 1);
  CHECK_FALSE(spec.hasUpdate());
  CHECK_FALSE(spec.hasEndpoint());
  CHECK(spec.getTask().getRuntime().getContainer().getStopGracePeriod() == -1);
  CHECK(spec.getTask().getRuntime().getContainer().getInit() == schema::OptionalBool::UNSET);
  CHECK(json::serialize(api::encodeServiceSpec(spec)) ==
        canonical(R"({"Name": "web", "Labels": {},
          "TaskTemplate": {"ContainerSpec": {"Image": "nginx"}, "ForceUpdate": 0,
                           "Runtime": "container"},
          "Mode": {"Replicated": {"Replicas": 1}}})"));

  auto modeOf = [](std::string_view mode) {
    capnp::MallocMessageBuilder m;
    auto s = m.initRoot<schema::ServiceSpec>();
    api::decodeServiceSpec(json::parse(serviceBody("", mode)), s);
    return json::serialize(api::encodeServiceSpec(s).at("Mode"));
  };
  CHECK(modeOf(R"("Mode": {})") == R"({"Replicated":{"Replicas":1}})");
  CHECK(modeOf(R"("Mode": {"Replicated": {}})") == R"({"Replicated":{"Replicas":1}})");
  CHECK(modeOf(R"("Mode": {"Replicated": {"Replicas": 0}})") == R"({"Replicated":{"Replicas":0}})");
  CHECK(modeOf(R"("Mode": {"Global": {}, "Replicated": null})") == R"({"Global":{}})");
  CHECK(modeOf(R"("Mode": {"ReplicatedJob": {}})") ==
        R"({"ReplicatedJob":{"MaxConcurrent":1,"TotalCompletions":1}})");
  CHECK(modeOf(R"("Mode": {"ReplicatedJob": {"MaxConcurrent": 3}})") ==
        R"({"ReplicatedJob":{"MaxConcurrent":3,"TotalCompletions":3}})");
  CHECK(modeOf(R"("Mode": {"ReplicatedJob": {"MaxConcurrent": 2, "TotalCompletions": 9}})") ==
        R"({"ReplicatedJob":{"MaxConcurrent":2,"TotalCompletions":9}})");
  CHECK(modeOf(R"("Mode": {"GlobalJob": {}})") == R"({"GlobalJob":{}})");

  // An UpdateConfig field left out is Go's zero, not SwarmKit's default.
  capnp::MallocMessageBuilder m2;
  auto s2 = m2.initRoot<schema::ServiceSpec>();
  api::decodeServiceSpec(json::parse(serviceBody("", R"("UpdateConfig": {})")), s2);
  CHECK(json::serialize(api::encodeServiceSpec(s2).at("UpdateConfig")) ==
        R"({"Parallelism":0,"FailureAction":"pause","MaxFailureRatio":0,"Order":"stop-first"})");

  // The deprecated ServiceSpec.Networks still attaches the task.
  capnp::MallocMessageBuilder m3;
  auto s3 = m3.initRoot<schema::ServiceSpec>();
  api::decodeServiceSpec(json::parse(serviceBody("", R"("Networks": [{"Target": "old"}])")), s3);
  CHECK(std::string(s3.getTask().getNetworks()[0].getTarget().cStr()) == "old");
}

TEST_CASE("service names follow SwarmKit's DNS-label rule") {
  auto named = [](std::string name) {
    return serviceError(R"({"Name": )" + json::serialize(json::value(name)) +
                        R"(, "TaskTemplate": {"ContainerSpec": {"Image": "x"}}})");
  };
  CHECK(named("") == "");  // the caller picks a name, as the engine does
  CHECK(named("a") == "");
  CHECK(named("my_web-1") == "");
  CHECK(named(std::string(63, 'a')) == "");
  CHECK(named(std::string(64, 'a')) ==
        "Name: \"" + std::string(64, 'a') + "\" is longer than 63 characters");
  std::string rules = " is not a valid name: use letters, digits, '-' and '_', starting and "
                      "ending with a letter or digit";
  CHECK(named("web.1") == "Name: \"web.1\"" + rules);
  CHECK(named("-web") == "Name: \"-web\"" + rules);
  CHECK(named("web_") == "Name: \"web_\"" + rules);
}

TEST_CASE("every service validation error names its path") {
  const std::pair<std::string, std::string> cases[] = {
      {R"({"Name": "web"})", "TaskTemplate: is required: it holds the ContainerSpec to run"},
      {R"({"TaskTemplate": {}})", "TaskTemplate.ContainerSpec: is required: it names the Image to run"},
      {R"({"TaskTemplate": {"ContainerSpec": {}}})",
       R"(TaskTemplate.ContainerSpec.Image: is required: the image to run, e.g. "nginx:latest")"},
      {R"({"TaskTemplate": {"PluginSpec": {"Name": "p"}, "ContainerSpec": {"Image": "x"}}})",
       "TaskTemplate.PluginSpec: is not supported by this swarm: services run containers "
       "(ContainerSpec)"},
      {R"({"TaskTemplate": {"Runtime": "plugin", "ContainerSpec": {"Image": "x"}}})",
       R"(TaskTemplate.Runtime: "plugin" is not supported: only "container")"},
      {serviceBody("", R"("Mode": {"Replicated": {"Replicas": -1}})"),
       "Mode.Replicated.Replicas: -1 is negative"},
      {serviceBody("", R"("Mode": {"Replicated": {"Replicas": "3"}})"),
       "Mode.Replicated.Replicas: expected an integer, got a string"},
      {serviceBody("", R"("Mode": {"Replicated": {"Replicas": 1.5}})"),
       "Mode.Replicated.Replicas: expected an integer, got 1.5"},
      {serviceBody("", R"("Mode": {"Replicated": {}, "Global": {}})"),
       "Mode: give exactly one of Replicated, Global, ReplicatedJob, GlobalJob (got Replicated "
       "and Global)"},
      {serviceBody("", R"("Mode": {"GlobalJob": {}}, "UpdateConfig": {"Parallelism": 1})"),
       "UpdateConfig: jobs do not take an UpdateConfig; leave it out"},
      {serviceBody("", R"("Mode": "replicated")"), "Mode: expected an object, got a string"},
      {serviceBody("", R"("UpdateConfig": {"FailureAction": "explode"})"),
       R"(UpdateConfig.FailureAction: "explode" is not one of pause, continue, rollback)"},
      {serviceBody("", R"("RollbackConfig": {"Order": "random"})"),
       R"(RollbackConfig.Order: "random" is not one of stop-first, start-first)"},
      {serviceBody("", R"("UpdateConfig": {"MaxFailureRatio": 1.5})"),
       "UpdateConfig.MaxFailureRatio: 1.5 is not between 0 and 1"},
      {serviceBody("", R"("UpdateConfig": {"Delay": -5})"), "UpdateConfig.Delay: -5 is negative"},
      {serviceBody(R"("Env": ["=x"])"),
       R"(TaskTemplate.ContainerSpec.Env[0]: "=x" is not an environment variable: use NAME=VALUE)"},
      {serviceBody(R"("Args": "ls")"),
       "TaskTemplate.ContainerSpec.Args: expected an array, got a string"},
      {serviceBody(R"("Init": "yes")"),
       "TaskTemplate.ContainerSpec.Init: expected true or false, got a string"},
      {serviceBody(R"("StopGracePeriod": -1)"),
       "TaskTemplate.ContainerSpec.StopGracePeriod: -1 is negative"},
      {serviceBody(R"("Mounts": [{"Target": "/x"}])"),
       "TaskTemplate.ContainerSpec.Mounts[0].Type: is required: one of bind, volume, tmpfs, "
       "npipe, cluster"},
      {serviceBody(R"("Mounts": [{"Type": "nfs", "Target": "/x"}])"),
       R"(TaskTemplate.ContainerSpec.Mounts[0].Type: "nfs" is not one of bind, volume, tmpfs, npipe, cluster)"},
      {serviceBody(R"("Mounts": [{"Type": "volume"}])"),
       "TaskTemplate.ContainerSpec.Mounts[0].Target: is required: the path in the container"},
      {serviceBody(R"("Mounts": [{"Type": "bind", "Target": "/x"}])"),
       "TaskTemplate.ContainerSpec.Mounts[0].Source: is required for a bind mount: the path on "
       "the host"},
      {serviceBody(R"("Mounts": [{"Type": "volume", "Target": "/x", "BindOptions": {}}])"),
       "TaskTemplate.ContainerSpec.Mounts[0].BindOptions: is only for a bind mount, not volume"},
      {serviceBody(R"("Mounts": [{"Type": "tmpfs", "Source": "s", "Target": "/x"}])"),
       "TaskTemplate.ContainerSpec.Mounts[0].Source: must be empty for a tmpfs mount"},
      {serviceBody(R"("Mounts": [{"Type": "volume", "Target": "/x"}, {"Type": "tmpfs", "Target": "/x"}])"),
       R"(TaskTemplate.ContainerSpec.Mounts[1].Target: "/x" is mounted twice)"},
      {serviceBody(R"("Mounts": [{"Type": "bind", "Source": "/a", "Target": "/x", "BindOptions": {"Propagation": "up"}}])"),
       R"(TaskTemplate.ContainerSpec.Mounts[0].BindOptions.Propagation: "up" is not one of , rprivate, private, rshared, shared, rslave, slave)"},
      {serviceBody(R"("Healthcheck": {"Test": ["RUN", "x"]})"),
       R"(TaskTemplate.ContainerSpec.Healthcheck.Test[0]: "RUN" is not one of NONE, CMD, CMD-SHELL)"},
      {serviceBody(R"("Healthcheck": {"Interval": 999})"),
       "TaskTemplate.ContainerSpec.Healthcheck.Interval: 999ns is too short: at least 1ms "
       "(1000000), or 0 for the default"},
      {serviceBody(R"("Secrets": [{"SecretName": "pw", "File": {"Name": "pw"}}])"),
       "TaskTemplate.ContainerSpec.Secrets[0].SecretID: is required"},
      {serviceBody(R"("Secrets": [{"SecretID": "s", "SecretName": "pw"}])"),
       "TaskTemplate.ContainerSpec.Secrets[0].File: is required: where the secret appears"},
      {serviceBody(R"("Secrets": [{"SecretID": "a", "SecretName": "a", "File": {"Name": "t"}}],
                      "Configs": [{"ConfigID": "b", "ConfigName": "b", "File": {"Name": "t"}}])"),
       R"(TaskTemplate.ContainerSpec.Configs[0].File.Name: "t" is the target of another reference)"},
      {serviceBody(R"("Configs": [{"ConfigID": "b", "ConfigName": "b"}])"),
       "TaskTemplate.ContainerSpec.Configs[0]: give exactly one of File, Runtime"},
      {serviceBody(R"("Privileges": {"CredentialSpec": {"File": "x"}})"),
       "TaskTemplate.ContainerSpec.Privileges.CredentialSpec: is not supported by this swarm yet"},
      {serviceBody(R"("Isolation": "vm")"),
       R"(TaskTemplate.ContainerSpec.Isolation: "vm" is not one of , default, process, hyperv)"},
      {serviceBody(R"("Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 5}])"),
       "TaskTemplate.ContainerSpec.Ulimits[0].Soft: 10 is above the hard limit 5"},
      {serviceBody(R"("OomScoreAdj": 1001)"),
       "TaskTemplate.ContainerSpec.OomScoreAdj: 1001 is above the maximum 1000"},
      {R"({"TaskTemplate": {"ContainerSpec": {"Image": "x"}, "Resources": {"Limits": {"NanoCPUs": 999999}}}})",
       "TaskTemplate.Resources.Limits.NanoCPUs: 999999 is too small: at least 1000000 (0.001 CPU)"},
      {R"({"TaskTemplate": {"ContainerSpec": {"Image": "x"}, "Resources": {"Reservations": {"MemoryBytes": 4194303}}}})",
       "TaskTemplate.Resources.Reservations.MemoryBytes: 4194303 is too small: at least 4194304 "
       "(4 MiB)"},
      {R"({"TaskTemplate": {"ContainerSpec": {"Image": "x"}, "Resources": {"Limits": {"MemoryBytes": -1}}}})",
       "TaskTemplate.Resources.Limits.MemoryBytes: -1 is negative"},
      {R"({"TaskTemplate": {"ContainerSpec": {"Image": "x"}, "Resources": {"Reservations": {"GenericResources": [{}]}}}})",
       "TaskTemplate.Resources.Reservations.GenericResources[0]: give exactly one of "
       "NamedResourceSpec, DiscreteResourceSpec"},
      {R"({"TaskTemplate": {"ContainerSpec": {"Image": "x"}, "RestartPolicy": {"Condition": "always"}}})",
       R"(TaskTemplate.RestartPolicy.Condition: "always" is not one of none, on-failure, any)"},
      {R"({"TaskTemplate": {"ContainerSpec": {"Image": "x"}, "Placement": {"Constraints": ["node.role=manager"]}}})",
       R"(TaskTemplate.Placement.Constraints[0]: "node.role=manager" is not a constraint: use key==value or key!=value, e.g. "node.role==manager")"},
      {R"({"TaskTemplate": {"ContainerSpec": {"Image": "x"}, "Placement": {"Preferences": [{"Spread": {"SpreadDescriptor": "zone"}}]}}})",
       R"(TaskTemplate.Placement.Preferences[0].Spread.SpreadDescriptor: "zone" is not a spread descriptor: use node.labels.<key> or engine.labels.<key>)"},
      {R"({"TaskTemplate": {"ContainerSpec": {"Image": "x"}, "Networks": [{"Aliases": ["a"]}]}})",
       "TaskTemplate.Networks[0].Target: is required: a network name or ID"},
      {serviceBody("", R"("EndpointSpec": {"Mode": "rr"})"),
       R"(EndpointSpec.Mode: "rr" is not one of vip, dnsrr)"},
      {serviceBody("", R"("EndpointSpec": {"Ports": [{"PublishedPort": 80}]})"),
       "EndpointSpec.Ports[0].TargetPort: is required: 1..65535"},
      {serviceBody("", R"("EndpointSpec": {"Ports": [{"TargetPort": 70000}]})"),
       "EndpointSpec.Ports[0].TargetPort: 70000 is above the maximum 65535"},
      {serviceBody("", R"("EndpointSpec": {"Ports": [{"TargetPort": 80, "Protocol": "icmp"}]})"),
       R"(EndpointSpec.Ports[0].Protocol: "icmp" is not one of tcp, udp, sctp)"},
      {serviceBody("", R"("EndpointSpec": {"Mode": "dnsrr", "Ports": [{"TargetPort": 80, "PublishedPort": 80}]})"),
       R"(EndpointSpec.Ports[0]: a port published in ingress mode cannot be used with dnsrr; use PublishMode "host" or EndpointSpec.Mode "vip")"},
      {serviceBody("", R"("EndpointSpec": {"Ports": [{"TargetPort": 80, "PublishedPort": 80}, {"TargetPort": 81, "PublishedPort": 80}]})"),
       "EndpointSpec.Ports[1].PublishedPort: 80/tcp is published twice"},
      {serviceBody("", R"("Labels": {"a": true})"), "Labels.a: expected a string, got a boolean"},
  };
  for (auto& [body, message] : cases) {
    INFO(body);
    CHECK(serviceError(body) == message);
  }
}

TEST_CASE("decoding follows Go: unknown fields ignored, null as absent, names case-insensitive") {
  capnp::MallocMessageBuilder message;
  auto spec = message.initRoot<schema::ServiceSpec>();
  api::decodeServiceSpec(json::parse(R"({
    "name": "web", "Labels": null, "Future": {"x": 1},
    "taskTemplate": {"containerSpec": {"image": "nginx", "Env": null, "Mounts": null},
                     "RestartPolicy": null},
    "Mode": {"Replicated": {"Replicas": null}}, "UpdateConfig": null, "EndpointSpec": null})"),
                         spec);
  CHECK(std::string(spec.getAnnotations().getName().cStr()) == "web");
  CHECK(std::string(spec.getTask().getRuntime().getContainer().getImage().cStr()) == "nginx");
  CHECK(spec.getMode().getReplicated() == 1);
  CHECK_FALSE(spec.getTask().hasRestart());
  CHECK_FALSE(spec.hasUpdate());
  // An exact match wins over a case-insensitive one.
  api::decodeServiceSpec(json::parse(R"({"name": "lower", "Name": "exact",
                                         "TaskTemplate": {"ContainerSpec": {"Image": "x"}}})"),
                         spec);
  CHECK(std::string(spec.getAnnotations().getName().cStr()) == "exact");
}
