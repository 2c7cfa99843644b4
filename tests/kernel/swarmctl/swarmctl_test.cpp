// swarmctl against FakeDockerApi (a real HTTP server on a Unix socket, named as a fake): the
// exact requests it sends, its tables and JSON output, its error messages and exit codes, and the
// plain-text progress display. The real binary is run with fork/exec; the text helpers are also
// checked in-process.
#include "fake_docker_api.h"

#include "cli.h"
#include "text.h"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>

namespace json = boost::json;
using swarm::ctl::testing::errorReply;
using swarm::ctl::testing::FakeDockerApi;
using swarm::ctl::testing::jsonReply;
using swarm::ctl::testing::RecordedRequest;
using swarm::ctl::testing::Reply;
using swarm::ctl::at;

namespace {

struct Result {
  int status = -1;
  std::string out;
  std::string err;
};

std::string readAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs the real swarmctl binary with `args`, `input` on stdin; stdout/stderr go to files.
Result runSwarmctl(const std::vector<std::string>& args, const std::string& input = "") {
  char dir[] = "/tmp/swarmctl-run-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  std::string base = dir;
  {
    std::ofstream(base + "/stdin") << input;
  }
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    int in = ::open((base + "/stdin").c_str(), O_RDONLY);
    int out = ::open((base + "/stdout").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = ::open((base + "/stderr").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::unsetenv("SWARMCTL_HOST");
    std::vector<char*> argv;
    std::string binary = SWARMCTL_BIN;
    argv.push_back(binary.data());
    std::vector<std::string> copies = args;
    for (auto& arg : copies) argv.push_back(arg.data());
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  Result result;
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = readAll(base + "/stdout");
  result.err = readAll(base + "/stderr");
  std::filesystem::remove_all(base);
  return result;
}

std::vector<std::string> withHost(const FakeDockerApi& api, std::vector<std::string> args) {
  args.insert(args.begin(), {"-H", api.host()});
  return args;
}

const char* kNodeSelf = "node1aaaaaaaaaaaaaaaaaaaa";
const char* kNodeTwo = "node2bbbbbbbbbbbbbbbbbbbb";
const char* kNodeThree = "node3cccccccccccccccccccc";

json::value node(const std::string& id, const std::string& hostname, const std::string& role,
                 const std::string& managerState, std::int64_t version = 10) {
  json::object value{
      {"ID", id},
      {"Version", json::object{{"Index", version}}},
      {"CreatedAt", "2024-01-01T00:00:00Z"},
      {"Spec", json::object{{"Labels", json::object{{"zone", "a"}}}, {"Role", role}, {"Availability", "active"}}},
      {"Description", json::object{{"Hostname", hostname},
                                   {"Engine", json::object{{"EngineVersion", "0.1.0"}}}}},
      {"Status", json::object{{"State", "ready"}, {"Addr", "127.0.0.1"}}}};
  if (managerState == "leader") {
    value["ManagerStatus"] = json::object{{"Leader", true}, {"Reachability", "reachable"}, {"Addr", "127.0.0.1:2377"}};
  } else if (!managerState.empty()) {
    value["ManagerStatus"] = json::object{{"Reachability", managerState}, {"Addr", "127.0.0.2:2377"}};
  }
  return value;
}

json::value info() {
  return json::object{{"Swarm", json::object{{"NodeID", kNodeSelf}, {"LocalNodeState", "active"},
                                             {"ControlAvailable", true}}}};
}

json::value swarmObject() {
  return json::object{
      {"ID", "cluster1"},
      {"Version", json::object{{"Index", 7}}},
      {"Spec", json::object{{"Name", "default"},
                            {"Orchestration", json::object{{"TaskHistoryRetentionLimit", 5}}}}},
      {"JoinTokens", json::object{{"Worker", "SWMTKN-1-digest-worker"}, {"Manager", "SWMTKN-1-digest-manager"}}}};
}

}  // namespace

TEST_CASE("swarm init posts the init request and prints the worker join command") {
  FakeDockerApi api;
  api.on("POST", "/swarm/init", jsonReply(json::value(kNodeSelf)));
  api.on("GET", std::string("/nodes/") + kNodeSelf, jsonReply(node(kNodeSelf, "alpha", "manager", "leader")));
  api.on("GET", "/swarm", jsonReply(swarmObject()));
  auto result = runSwarmctl(withHost(api, {"swarm", "init", "--advertise-addr", "127.0.0.1",
                                           "--cert-expiry", "1h30m", "--dispatcher-heartbeat", "5s",
                                           "--task-history-limit", "3", "--snapshot-interval", "500",
                                           "--availability", "drain"}));
  INFO(result.err);
  REQUIRE(result.status == 0);
  auto requests = api.requests();
  REQUIRE(requests.size() == 3);
  CHECK(requests[0].method == "POST");
  CHECK(requests[0].target == "/v1.41/swarm/init");
  CHECK(requests[0].json() == json::parse(R"({
      "ListenAddr": "0.0.0.0:2377", "AdvertiseAddr": "127.0.0.1:2377", "ForceNewCluster": false,
      "Spec": {"CAConfig": {"NodeCertExpiry": 5400000000000},
               "Dispatcher": {"HeartbeatPeriod": 5000000000},
               "Raft": {"SnapshotInterval": 500},
               "Orchestration": {"TaskHistoryRetentionLimit": 3}},
      "AutoLockManagers": false, "Availability": "drain"})"));
  CHECK(requests[1].target == std::string("/v1.41/nodes/") + kNodeSelf);
  CHECK(requests[2].target == "/v1.41/swarm");
  CHECK(result.out.find(std::string("Swarm initialized: current node (") + kNodeSelf + ") is now a manager.") != std::string::npos);
  CHECK(result.out.find("    swarmctl swarm join --token SWMTKN-1-digest-worker 127.0.0.1:2377\n") != std::string::npos);
  // The version was negotiated once, with HEAD /_ping.
  REQUIRE(api.pings().size() == 1);
  CHECK(api.pings()[0].method == "HEAD");
}

TEST_CASE("swarm join-token --rotate posts the unchanged spec with the version and rotate flags") {
  FakeDockerApi api;
  std::atomic<int> swarmReads{0};
  api.on("GET", "/swarm", [&](const RecordedRequest&) {
    auto value = swarmObject();
    if (swarmReads++ > 0) value.get_object()["JoinTokens"].get_object()["Worker"] = "SWMTKN-1-digest-rotated";
    return jsonReply(value);
  });
  api.on("POST", "/swarm/update", Reply{200, ""});
  api.on("GET", "/info", jsonReply(info()));
  api.on("GET", std::string("/nodes/") + kNodeSelf, jsonReply(node(kNodeSelf, "alpha", "manager", "leader")));
  auto result = runSwarmctl(withHost(api, {"swarm", "join-token", "--rotate", "worker"}));
  INFO(result.err);
  REQUIRE(result.status == 0);
  auto requests = api.requests();
  REQUIRE(requests.size() == 5);
  CHECK(requests[1].method == "POST");
  CHECK(requests[1].target ==
        "/v1.41/swarm/update?version=7&rotateWorkerToken=true&rotateManagerToken=false&rotateManagerUnlockKey=false");
  CHECK(requests[1].json() == at(swarmObject(), {"Spec"}));
  CHECK(result.out ==
        "Successfully rotated worker join token.\n\n"
        "To add a worker to this swarm, run the following command:\n\n"
        "    swarmctl swarm join --token SWMTKN-1-digest-rotated 127.0.0.1:2377\n\n");

  auto quiet = runSwarmctl(withHost(api, {"swarm", "join-token", "-q", "manager"}));
  CHECK(quiet.status == 0);
  CHECK(quiet.out == "SWMTKN-1-digest-manager\n");
}

TEST_CASE("node update sends the whole spec with ?version= and the label and availability changes") {
  FakeDockerApi api;
  api.on("GET", std::string("/nodes/") + kNodeTwo, jsonReply(node(kNodeTwo, "beta", "worker", "", 42)));
  api.on("POST", std::string("/nodes/") + kNodeTwo + "/update", Reply{200, ""});
  auto result = runSwarmctl(withHost(api, {"node", "update", "--availability", "drain",
                                           "--label-add", "disk=ssd", "--label-rm", "zone", kNodeTwo}));
  INFO(result.err);
  REQUIRE(result.status == 0);
  auto requests = api.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].method == "GET");
  CHECK(requests[1].target == std::string("/v1.41/nodes/") + kNodeTwo + "/update?version=42");
  CHECK(requests[1].json() ==
        json::parse(R"({"Labels":{"disk":"ssd"},"Role":"worker","Availability":"drain"})"));
  CHECK(result.out == std::string(kNodeTwo) + "\n");

  auto missing = runSwarmctl(withHost(api, {"node", "update", "--label-rm", "nope", kNodeTwo}));
  CHECK(missing.status == 1);
  CHECK(missing.err == "Error: key nope doesn't exist in node's labels\n");
}

TEST_CASE("node promote and demote change the role through GET then POST update") {
  FakeDockerApi api;
  api.on("GET", std::string("/nodes/") + kNodeTwo, jsonReply(node(kNodeTwo, "beta", "worker", "", 5)));
  api.on("GET", std::string("/nodes/") + kNodeThree, jsonReply(node(kNodeThree, "gamma", "manager", "reachable", 9)));
  api.on("POST", std::string("/nodes/") + kNodeTwo + "/update", Reply{200, ""});
  api.on("POST", std::string("/nodes/") + kNodeThree + "/update", Reply{200, ""});

  auto promote = runSwarmctl(withHost(api, {"node", "promote", kNodeTwo, kNodeThree}));
  INFO(promote.err);
  REQUIRE(promote.status == 0);
  CHECK(promote.out == std::string("Node ") + kNodeTwo + " promoted to a manager in the swarm.\n" +
                           "Node " + kNodeThree + " is already a manager.\n");
  auto requests = api.requests();
  REQUIRE(requests.size() == 3);  // the node already a manager is not updated
  CHECK(requests[1].target == std::string("/v1.41/nodes/") + kNodeTwo + "/update?version=5");
  CHECK(at(requests[1].json(), {"Role"}) == "manager");

  auto demote = runSwarmctl(withHost(api, {"node", "demote", kNodeThree}));
  REQUIRE(demote.status == 0);
  CHECK(demote.out == std::string("Manager ") + kNodeThree + " demoted in the swarm.\n");
  requests = api.requests();
  REQUIRE(requests.size() == 5);
  CHECK(requests[4].target == std::string("/v1.41/nodes/") + kNodeThree + "/update?version=9");
  CHECK(requests[4].json() ==
        json::parse(R"({"Labels":{"zone":"a"},"Role":"worker","Availability":"active"})"));
}

TEST_CASE("node rm sends DELETE with force=1 and reports each failure") {
  FakeDockerApi api;
  api.on("DELETE", std::string("/nodes/") + kNodeTwo, Reply{200, ""});
  api.on("DELETE", std::string("/nodes/") + kNodeThree,
         errorReply(400, "rpc error: node " + std::string(kNodeThree) + " is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal"));
  auto result = runSwarmctl(withHost(api, {"node", "rm", "--force", kNodeTwo, kNodeThree}));
  CHECK(result.status == 1);
  CHECK(result.out == std::string(kNodeTwo) + "\n");
  CHECK(result.err.find("Error response from daemon: rpc error: node " + std::string(kNodeThree) +
                        " is a cluster manager") == 0);
  auto requests = api.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].method == "DELETE");
  CHECK(requests[0].target == std::string("/v1.41/nodes/") + kNodeTwo + "?force=1");
}

TEST_CASE("secret and config create send the data base64-encoded") {
  FakeDockerApi api;
  api.on("POST", "/secrets/create", jsonReply(json::object{{"ID", "secretid1"}}, 201));
  api.on("POST", "/configs/create", jsonReply(json::object{{"ID", "configid1"}}, 201));
  auto secret = runSwarmctl(withHost(api, {"secret", "create", "--label", "env=prod", "db-password", "-"}),
                            "hunter2\n");
  INFO(secret.err);
  REQUIRE(secret.status == 0);
  CHECK(secret.out == "secretid1\n");

  auto file = api.dir / "app.conf";
  std::ofstream(file) << "a";
  auto config = runSwarmctl(withHost(api, {"config", "create", "app", file.string()}));
  REQUIRE(config.status == 0);
  CHECK(config.out == "configid1\n");

  auto requests = api.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].target == "/v1.41/secrets/create");
  CHECK(requests[0].json() == json::parse(R"({"Name":"db-password","Labels":{"env":"prod"},"Data":"aHVudGVyMgo="})"));
  CHECK(requests[1].json() == json::parse(R"({"Name":"app","Labels":{},"Data":"YQ=="})"));

  auto unreadable = runSwarmctl(withHost(api, {"config", "create", "x", "/nonexistent/file"}));
  CHECK(unreadable.status == 1);
  CHECK(unreadable.err == "Error: cannot read /nonexistent/file: No such file or directory\n");
}

TEST_CASE("service create sends the ServiceSpec built from the flags") {
  FakeDockerApi api;
  api.on("GET", "/secrets", jsonReply(json::array{json::object{{"ID", "sid1"}, {"Spec", json::object{{"Name", "db"}}}}}));
  api.on("POST", "/services/create", jsonReply(json::object{{"ID", "svc1"}, {"Warnings", json::array{"image is not pinned"}}}, 201));
  auto result = runSwarmctl(withHost(api, {
      "service", "create", "-d", "--name", "web", "--replicas", "3", "--env", "A=1", "--label", "tier=front",
      "--constraint", "node.role==worker", "--placement-pref", "spread=node.labels.zone",
      "--reserve-cpu", "0.5", "--reserve-memory", "64m", "--limit-memory", "1g",
      "--restart-condition", "on-failure", "--restart-delay", "10s",
      "--update-parallelism", "2", "--update-delay", "1m30s",
      "--network", "host", "--mount", "type=bind,source=/srv,target=/data,readonly",
      "--secret", "db", "-p", "8080:80",
      "busybox:1", "sleep", "60"}));
  INFO(result.err);
  REQUIRE(result.status == 0);
  CHECK(result.out == "svc1\n");
  CHECK(result.err == "image is not pinned\n");
  auto requests = api.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].target == "/v1.41/secrets?filters=%7B%22name%22%3A%7B%22db%22%3Atrue%7D%7D");
  CHECK(requests[1].method == "POST");
  CHECK(requests[1].target == "/v1.41/services/create");
  CHECK(requests[1].json() == json::parse(R"({
    "Name": "web",
    "Labels": {"tier": "front"},
    "TaskTemplate": {
      "ContainerSpec": {
        "Image": "busybox:1", "Args": ["sleep", "60"], "Env": ["A=1"],
        "Mounts": [{"Type": "bind", "Source": "/srv", "Target": "/data", "ReadOnly": true}],
        "Secrets": [{"File": {"Name": "db", "UID": "0", "GID": "0", "Mode": 292},
                     "SecretID": "sid1", "SecretName": "db"}]
      },
      "Placement": {"Constraints": ["node.role==worker"],
                    "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}]},
      "Networks": [{"Target": "host"}],
      "Resources": {"Reservations": {"NanoCPUs": 500000000, "MemoryBytes": 67108864},
                    "Limits": {"MemoryBytes": 1073741824}},
      "RestartPolicy": {"Condition": "on-failure", "Delay": 10000000000}
    },
    "EndpointSpec": {"Ports": [{"Protocol": "tcp", "PublishMode": "ingress", "PublishedPort": 8080, "TargetPort": 80}]},
    "Mode": {"Replicated": {"Replicas": 3}},
    "UpdateConfig": {"Parallelism": 2, "FailureAction": "pause", "Monitor": 5000000000,
                     "MaxFailureRatio": 0, "Order": "stop-first", "Delay": 90000000000}
  })"));
}

TEST_CASE("service scale updates the replicas with ?version=") {
  FakeDockerApi api;
  json::value service = json::object{
      {"ID", "svc1"}, {"Version", json::object{{"Index", 31}}},
      {"Spec", json::object{{"Name", "web"}, {"Mode", json::object{{"Replicated", json::object{{"Replicas", 1}}}}},
                            {"TaskTemplate", json::object{{"ContainerSpec", json::object{{"Image", "busybox"}}}}}}}};
  api.on("GET", "/services/web", jsonReply(service));
  api.on("POST", "/services/svc1/update", jsonReply(json::object{{"Warnings", nullptr}}));
  auto result = runSwarmctl(withHost(api, {"service", "scale", "-d", "web=4"}));
  INFO(result.err);
  REQUIRE(result.status == 0);
  CHECK(result.out == "web scaled to 4\n");
  auto requests = api.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[1].target == "/v1.41/services/svc1/update?version=31");
  json::value expected = at(service, {"Spec"});
  expected.get_object()["Mode"] = json::parse(R"({"Replicated":{"Replicas":4}})");
  CHECK(requests[1].json() == expected);

  auto bad = runSwarmctl(withHost(api, {"service", "scale", "web=many"}));
  CHECK(bad.status == 2);
  CHECK(bad.err.find("invalid replicas value 'many' for web") != std::string::npos);
}

TEST_CASE("node ls prints an aligned table with the self marker and manager status") {
  FakeDockerApi api;
  api.on("GET", "/nodes", jsonReply(json::array{node(kNodeThree, "gamma-long-hostname", "manager", "unreachable"),
                                                node(kNodeSelf, "alpha", "manager", "leader"),
                                                node(kNodeTwo, "beta", "worker", "")}));
  api.on("GET", "/info", jsonReply(info()));
  auto result = runSwarmctl(withHost(api, {"node", "ls", "--filter", "role=manager"}));
  INFO(result.err);
  REQUIRE(result.status == 0);
  CHECK(result.out ==
        "ID                           HOSTNAME             STATUS  AVAILABILITY  MANAGER STATUS  ENGINE VERSION\n"
        "node1aaaaaaaaaaaaaaaaaaaa *  alpha                Ready   Active        Leader          0.1.0\n"
        "node2bbbbbbbbbbbbbbbbbbbb    beta                 Ready   Active                        0.1.0\n"
        "node3cccccccccccccccccccc    gamma-long-hostname  Ready   Active        Unreachable     0.1.0\n");
  auto requests = api.requests();
  REQUIRE(requests.size() == 2);
  CHECK(requests[0].path == "/nodes");
  CHECK(requests[0].query.at("filters") == R"({"role":{"manager":true}})");
  CHECK(requests[1].path == "/info");

  auto quiet = runSwarmctl(withHost(api, {"node", "ls", "-q"}));
  CHECK(quiet.out == std::string(kNodeSelf) + "\n" + kNodeTwo + "\n" + kNodeThree + "\n");
}

TEST_CASE("format json prints the raw API objects as one JSON array") {
  FakeDockerApi api;
  json::array nodes{node(kNodeSelf, "alpha", "manager", "leader")};
  api.on("GET", "/nodes", jsonReply(nodes));
  auto result = runSwarmctl(withHost(api, {"--format", "json", "node", "ls"}));
  REQUIRE(result.status == 0);
  CHECK(json::parse(result.out) == json::value(nodes));
  CHECK(result.out.rfind("[\n    {\n        \"ID\": ", 0) == 0);

  api.on("GET", "/services", jsonReply(json::array{}));
  auto services = runSwarmctl(withHost(api, {"service", "ls", "--format=json"}));
  REQUIRE(services.status == 0);
  CHECK(services.out == "[]\n");
  CHECK(api.requests().back().query.at("status") == "true");

  auto bad = runSwarmctl(withHost(api, {"--format", "yaml", "node", "ls"}));
  CHECK(bad.status == 2);
  CHECK(bad.err.rfind("swarmctl: --format 'yaml' must be json or table\n", 0) == 0);
}

TEST_CASE("server errors are printed as Error response from daemon with exit status 1") {
  FakeDockerApi api;
  api.on("GET", "/nodes/missing", errorReply(404, "node missing not found"));
  api.on("POST", "/services/create", errorReply(409, "rpc error: code = AlreadyExists desc = name conflicts with an existing object"));
  api.on("GET", "/nodes", errorReply(503, "This node is not a swarm manager. Use \"swarmctl swarm init\" or \"swarmctl swarm join\" to connect this node to swarm and try again."));

  auto notFound = runSwarmctl(withHost(api, {"node", "inspect", "missing"}));
  CHECK(notFound.status == 1);
  CHECK(notFound.err == "Error response from daemon: node missing not found\n");

  auto conflict = runSwarmctl(withHost(api, {"service", "create", "-d", "--name", "web", "busybox"}));
  CHECK(conflict.status == 1);
  CHECK(conflict.err == "Error response from daemon: rpc error: code = AlreadyExists desc = name conflicts with an existing object\n");

  auto unavailable = runSwarmctl(withHost(api, {"node", "ls"}));
  CHECK(unavailable.status == 1);
  CHECK(unavailable.err.rfind("Error response from daemon: This node is not a swarm manager.", 0) == 0);
  CHECK(unavailable.out.empty());
}

TEST_CASE("an address with no server says which address failed and that the manager may be down") {
  char dir[] = "/tmp/swarmctl-none-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  std::string host = std::string("unix://") + dir + "/absent.sock";
  auto result = runSwarmctl({"-H", host, "node", "ls"});
  ::rmdir(dir);
  CHECK(result.status == 1);
  CHECK(result.err.find("Cannot connect to the swarm-kernel manager at " + host) == 0);
  CHECK(result.err.find("Is the manager running?") != std::string::npos);

  auto badHost = runSwarmctl({"-H", "http://x", "node", "ls"});
  CHECK(badHost.status == 2);
  CHECK(badHost.err.find("neither unix:///PATH nor tcp://HOST:PORT") != std::string::npos);
}

TEST_CASE("bad usage prints the verb's usage and exits 2") {
  auto unknownFlag = runSwarmctl({"node", "ls", "--bogus"});
  CHECK(unknownFlag.status == 2);
  CHECK(unknownFlag.err.rfind("swarmctl: unknown flag: --bogus\n\nUsage:  swarmctl node ls [OPTIONS]\n", 0) == 0);

  auto missingArg = runSwarmctl({"node", "update", "--availability", "drain"});
  CHECK(missingArg.status == 2);
  CHECK(missingArg.err.rfind("swarmctl: \"swarmctl node update\" requires exactly 1 argument, got 0\n", 0) == 0);

  auto badDuration = runSwarmctl({"swarm", "init", "--cert-expiry", "ten"});
  CHECK(badDuration.status == 2);
  CHECK(badDuration.err.find("--cert-expiry 'ten' is not a duration") != std::string::npos);

  auto badValue = runSwarmctl({"node", "update", "--availability", "sleepy", "n1"});
  CHECK(badValue.status == 2);
  CHECK(badValue.err.find("--availability 'sleepy' must be active, pause or drain") != std::string::npos);

  auto unknownVerb = runSwarmctl({"node", "frobnicate"});
  CHECK(unknownVerb.status == 2);
  CHECK(unknownVerb.err.find("unknown command 'swarmctl node frobnicate'") != std::string::npos);

  auto help = runSwarmctl({"service", "scale", "--help"});
  CHECK(help.status == 0);
  CHECK(help.out.rfind("Usage:  swarmctl service scale [OPTIONS] SERVICE=REPLICAS", 0) == 0);
}

TEST_CASE("the progress display prints plain lines and converges over a few polls") {
  FakeDockerApi api;
  json::value service = json::object{
      {"ID", "svc1"}, {"Version", json::object{{"Index", 3}}},
      {"Spec", json::object{{"Name", "web"},
                            {"Mode", json::object{{"Replicated", json::object{{"Replicas", 2}}}}},
                            {"UpdateConfig", json::object{{"Monitor", 1000000}}}}}};
  api.on("POST", "/services/create", jsonReply(json::object{{"ID", "svc1"}}, 201));
  api.on("GET", "/services/svc1", jsonReply(service));
  api.on("GET", "/nodes", jsonReply(json::array{node(kNodeSelf, "alpha", "manager", "leader")}));
  std::atomic<int> polls{0};
  api.on("GET", "/tasks", [&](const RecordedRequest&) {
    int poll = polls++;
    auto task = [](int slot, const char* state) {
      return json::object{{"ID", "task" + std::to_string(slot)}, {"Slot", slot}, {"NodeID", kNodeSelf},
                          {"DesiredState", "running"}, {"Status", json::object{{"State", state}}}};
    };
    if (poll == 0) return jsonReply(json::array{});
    if (poll == 1) return jsonReply(json::array{task(1, "preparing"), task(2, "pending")});
    return jsonReply(json::array{task(1, "running"), task(2, "running")});
  });
  auto result = runSwarmctl(withHost(api, {"service", "create", "--name", "web", "--replicas", "2", "busybox"}));
  INFO(result.err);
  REQUIRE(result.status == 0);
  CHECK(result.out ==
        "svc1\n"
        "overall progress: 0 out of 2 tasks\n"
        "1/2: preparing\n"
        "2/2: pending\n"
        "1/2: running\n"
        "2/2: running\n"
        "overall progress: 2 out of 2 tasks\n"
        "verify: Waiting 1 seconds to verify that tasks are stable...\n"
        "verify: Service converged\n");
  CHECK(result.out.find("\x1b[") == std::string::npos);
  bool sawUpToDateFilter = false;
  for (const auto& request : api.requests()) {
    if (request.path == "/tasks") {
      sawUpToDateFilter = request.query.at("filters") == R"({"service":{"svc1":true},"_up-to-date":{"true":true}})";
    }
  }
  CHECK(sawUpToDateFilter);
  CHECK(polls == 3);
}

TEST_CASE("the progress display fails when the update pauses") {
  FakeDockerApi api;
  json::value service = json::object{
      {"ID", "svc1"}, {"Version", json::object{{"Index", 3}}},
      {"Spec", json::object{{"Name", "web"}, {"Mode", json::object{{"Replicated", json::object{{"Replicas", 1}}}}}}},
      {"UpdateStatus", json::object{{"State", "paused"}, {"Message", "update paused due to failure or early termination of task t1"}}}};
  api.on("GET", "/services/web", jsonReply(service));
  api.on("GET", "/services/svc1", jsonReply(service));
  api.on("POST", "/services/svc1/update", jsonReply(json::object{}));
  auto result = runSwarmctl(withHost(api, {"service", "update", "--image", "busybox:2", "web"}));
  CHECK(result.status == 1);
  CHECK(result.out == "web\n");
  CHECK(result.err == "Error: service update paused: update paused due to failure or early termination of task t1\n");
  auto requests = api.requests();
  REQUIRE(requests.size() >= 2);
  CHECK(requests[1].target == "/v1.41/services/svc1/update?version=3");
  CHECK(at(requests[1].json(), {"TaskTemplate", "ContainerSpec", "Image"}) == "busybox:2");
}

TEST_CASE("Go durations parse and print like Go's") {
  using swarm::ctl::formatDuration;
  using swarm::ctl::parseDuration;
  CHECK(parseDuration("90s") == 90000000000LL);
  CHECK(parseDuration("1h30m") == 5400000000000LL);
  CHECK(parseDuration("5m") == 300000000000LL);
  CHECK(parseDuration("1.5s") == 1500000000LL);
  CHECK(parseDuration("300ms") == 300000000LL);
  CHECK(parseDuration("0") == 0);
  CHECK_FALSE(parseDuration("10"));
  CHECK_FALSE(parseDuration("5x"));
  CHECK_FALSE(parseDuration(""));
  CHECK(formatDuration(5400000000000LL) == "1h30m0s");
  CHECK(formatDuration(1500000000LL) == "1.5s");
  CHECK(formatDuration(300000000LL) == "300ms");
  CHECK(formatDuration(0) == "0s");
}

TEST_CASE("relative times read like docker's") {
  using namespace std::chrono;
  using swarm::ctl::humanDuration;
  CHECK(humanDuration(milliseconds(300)) == "Less than a second");
  CHECK(humanDuration(seconds(1)) == "1 second");
  CHECK(humanDuration(seconds(45)) == "45 seconds");
  CHECK(humanDuration(seconds(61)) == "About a minute");
  CHECK(humanDuration(minutes(2)) == "2 minutes");
  CHECK(humanDuration(minutes(70)) == "About an hour");
  CHECK(humanDuration(hours(5)) == "5 hours");
  CHECK(humanDuration(hours(24 * 3)) == "3 days");
  auto now = *swarm::ctl::parseTimestamp("2024-01-01T00:02:00Z");
  CHECK(swarm::ctl::timeAgo("2024-01-01T00:00:00.123456789Z", now) == "About a minute ago");
  CHECK(swarm::ctl::timeAgo("2023-12-31T23:58:00Z", now) == "4 minutes ago");
  CHECK(swarm::ctl::timeAgo("0001-01-01T00:00:00Z", now).empty());
}

TEST_CASE("tables size each column to its widest cell with two spaces between") {
  swarm::ctl::Table table({"A", "LONG HEADER", "C"});
  table.add({"wide cell", "x", ""});
  std::ostringstream out;
  table.print(out);
  CHECK(out.str() == "A          LONG HEADER  C\nwide cell  x\n");
  CHECK(swarm::ctl::base64Encode("hunter2\n") == "aHVudGVyMgo=");
  CHECK(swarm::ctl::base64Encode("ab") == "YWI=");
}
