// The schema <-> Docker JSON translation, on messages built in memory (no daemon).
#include "container_config.h"

#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <capnp/message.h>

namespace swarm::docker {
namespace {

namespace json = boost::json;

struct TaskMessage {
  capnp::MallocMessageBuilder message;
  schema::Task::Builder task = message.initRoot<schema::Task>();
  schema::ContainerSpec::Builder spec = task.initSpec().getRuntime().initContainer();

  TaskMessage() {
    task.setId("t1");
    task.setServiceId("svc-id");
    task.setSlot(2);
    task.setNodeId("node-1");
    task.initServiceAnnotations().setName("web");
    spec.setImage("swarm-test/busybox:latest");
  }

  json::value body() {
    auto plan = planCreate(task.asReader(), "cluster-1", {});
    INFO(plan.error);
    REQUIRE(plan.error.empty());
    return json::parse(plan.body);
  }
  std::string refused(CreateOptions options = {}) {
    auto plan = planCreate(task.asReader(), "cluster-1", options);
    REQUIRE_FALSE(plan.error.empty());
    return plan.error;
  }
};

const json::value& at(const json::value& v, std::initializer_list<const char*> path) {
  const json::value* cur = &v;
  for (auto key : path) {
    INFO(key << " in " << json::serialize(*cur));
    auto* next = member(*cur, key);
    REQUIRE(next != nullptr);
    cur = next;
  }
  return *cur;
}

TEST_CASE("runtime-docker: config: the container is named and labelled as Swarm does") {
  TaskMessage m;
  auto l = m.spec.initLabels(2);
  l[0].setKey("team");
  l[0].setValue("a");
  l[1].setKey("com.docker.swarm.task.id");
  l[1].setValue("forged");  // system labels override the spec's
  auto plan = planCreate(m.task.asReader(), "cluster-1", {});
  CHECK(plan.name == "web.2.t1");
  auto body = json::parse(plan.body);
  auto& labels = at(body, {"Labels"});
  CHECK(text(labels, "team") == "a");
  CHECK(text(labels, "com.docker.swarm.task") == "");
  CHECK(text(labels, "com.docker.swarm.task.id") == "t1");
  CHECK(text(labels, "com.docker.swarm.task.name") == "web.2.t1");
  CHECK(text(labels, "com.docker.swarm.node.id") == "node-1");
  CHECK(text(labels, "com.docker.swarm.service.id") == "svc-id");
  CHECK(text(labels, "com.docker.swarm.service.name") == "web");
  CHECK(text(labels, "io.swarm-kernel.task.slot") == "2");
  CHECK(text(labels, "io.swarm-kernel.cluster.id") == "cluster-1");
  CHECK(text(labels, "io.swarm-kernel.runtime") == "runtime-docker");
  CHECK(text(body, "Image") == "swarm-test/busybox:latest");
  CHECK(text(at(body, {"HostConfig"}), "NetworkMode") == "none");
}

TEST_CASE("runtime-docker: config: a global task (slot 0) is named by its node") {
  TaskMessage m;
  m.task.setSlot(0);
  CHECK(containerName(m.task.asReader()) == "web.node-1.t1");
  m.task.getServiceAnnotations().setName("");
  CHECK(containerName(m.task.asReader()) == "svc-id.node-1.t1");
}

TEST_CASE("runtime-docker: config: command, env, user, healthcheck, init and stop settings map to Docker's fields") {
  TaskMessage m;
  auto cmd = m.spec.initCommand(1);
  cmd.set(0, "sleep");
  auto args = m.spec.initArgs(1);
  args.set(0, "60");
  auto env = m.spec.initEnv(1);
  env.set(0, "A=1");
  m.spec.setUser("1000:1000");
  m.spec.setDir("/work");
  m.spec.setHostname("box");
  m.spec.setInit(schema::OptionalBool::YES);
  m.spec.setStopSignal("SIGINT");
  m.spec.setStopGracePeriod(1500000000);  // 1.5 s -> 2 s: never shorter
  auto h = m.spec.initHealthcheck();
  auto test = h.initTest(2);
  test.set(0, "CMD-SHELL");
  test.set(1, "true");
  h.setInterval(200000000);
  h.setRetries(4);
  auto hosts = m.spec.initHosts(1);
  hosts.set(0, "10.0.0.1 db db.local");
  auto generic = m.task.initAssignedGenericResources(2);
  generic[0].setKind("gpu");
  generic[0].setNamed("GPU-1");
  generic[1].setKind("gpu");
  generic[1].setNamed("GPU-2");
  auto body = m.body();
  CHECK(json::serialize(at(body, {"Entrypoint"})) == R"(["sleep"])");
  CHECK(json::serialize(at(body, {"Cmd"})) == R"(["60"])");
  CHECK(json::serialize(at(body, {"Env"})) == R"(["A=1","DOCKER_RESOURCE_GPU=GPU-1,GPU-2"])");
  CHECK(text(body, "User") == "1000:1000");
  CHECK(text(body, "WorkingDir") == "/work");
  CHECK(text(body, "Hostname") == "box");
  CHECK(text(body, "StopSignal") == "SIGINT");
  CHECK(integer(body, "StopTimeout") == 2);
  CHECK(json::serialize(at(body, {"Healthcheck", "Test"})) == R"(["CMD-SHELL","true"])");
  CHECK(integer(at(body, {"Healthcheck"}), "Interval") == 200000000);
  CHECK(integer(at(body, {"Healthcheck"}), "Retries") == 4);
  CHECK(at(body, {"HostConfig", "Init"}).as_bool());
  CHECK(json::serialize(at(body, {"HostConfig", "ExtraHosts"})) == R"(["db:10.0.0.1","db.local:10.0.0.1"])");
}

TEST_CASE("runtime-docker: config: mounts, limits and reservations map to HostConfig") {
  TaskMessage m;
  auto mounts = m.spec.initMounts(3);
  mounts[0].setType(schema::Mount::Type::BIND);
  mounts[0].setSource("/srv");
  mounts[0].setTarget("/data");
  mounts[0].setReadOnly(true);
  mounts[0].setBindPropagation(schema::Mount::Propagation::RSLAVE);
  mounts[1].setType(schema::Mount::Type::VOLUME);
  mounts[1].setSource("cache");
  mounts[1].setTarget("/cache");
  mounts[1].setVolumeNoCopy(true);
  mounts[2].setType(schema::Mount::Type::TMPFS);
  mounts[2].setTarget("/tmp");
  mounts[2].setTmpfsSizeBytes(1 << 20);
  auto resources = m.task.getSpec().initResources();
  resources.initLimits().setNanoCpus(500000000);
  resources.getLimits().setMemoryBytes(64 << 20);
  resources.getLimits().setPids(100);
  resources.initReservations().setMemoryBytes(32 << 20);
  auto body = m.body();
  auto& host = at(body, {"HostConfig"});
  CHECK(json::serialize(at(host, {"Mounts"})) ==
        R"([{"Target":"/data","ReadOnly":true,"Type":"bind","Source":"/srv","BindOptions":{"Propagation":"rslave"}},)"
        R"({"Target":"/cache","ReadOnly":false,"Type":"volume","Source":"cache","VolumeOptions":{"NoCopy":true}},)"
        R"({"Target":"/tmp","ReadOnly":false,"Type":"tmpfs","TmpfsOptions":{"SizeBytes":1048576}}])");
  CHECK(integer(host, "NanoCpus") == 500000000);
  CHECK(integer(host, "Memory") == 64 << 20);
  CHECK(integer(host, "PidsLimit") == 100);
  CHECK(integer(host, "MemoryReservation") == 32 << 20);
  CHECK(member(host, "MemorySwap") == nullptr);  // -1 = unset
}

TEST_CASE("runtime-docker: config: specs a container cannot have are refused with the reason") {
  {
    TaskMessage m;
    m.spec.setImage("");
    CHECK_THAT(m.refused(), Catch::Contains("no container image"));
  }
  {
    TaskMessage m;
    m.task.getSpec().initNetworks(1)[0].setTarget("ingress");
    CHECK_THAT(m.refused(), Catch::Contains("network 'ingress'"));
  }
  {
    TaskMessage m;
    auto mount = m.spec.initMounts(1)[0];
    mount.setType(schema::Mount::Type::BIND);
    mount.setTarget("/x");
    CHECK_THAT(m.refused(), Catch::Contains("bind mount at /x has no source"));
  }
  {
    TaskMessage m;
    m.spec.initHosts(1).set(0, "10.0.0.1");
    CHECK_THAT(m.refused(), Catch::Contains("hosts entry '10.0.0.1'"));
  }
  {
    TaskMessage m;
    m.task.getSpec().getRuntime().initGeneric().setKind("plugin");
    CHECK_THAT(m.refused(), Catch::Contains("generic runtime"));
  }
}

TEST_CASE("runtime-docker: config: the task's network attachment or the default picks host or none") {
  TaskMessage m;
  CreateOptions host;
  host.defaultNetwork = NetworkMode::host;
  auto plan = planCreate(m.task.asReader(), "c", host);
  CHECK(text(at(json::parse(plan.body), {"HostConfig"}), "NetworkMode") == "host");
  m.task.getSpec().initNetworks(1)[0].setTarget("none");
  plan = planCreate(m.task.asReader(), "c", host);
  CHECK(text(at(json::parse(plan.body), {"HostConfig"}), "NetworkMode") == "none");
}

TEST_CASE("runtime-docker: config: image references pull one tag") {
  CHECK(imagePull("busybox").fromImage == "busybox");
  CHECK(imagePull("busybox").tag == "latest");
  CHECK(imagePull("127.0.0.1:5000/a/b").fromImage == "127.0.0.1:5000/a/b");
  CHECK(imagePull("127.0.0.1:5000/a/b").tag == "latest");
  CHECK(imagePull("127.0.0.1:5000/a/b:v1").fromImage == "127.0.0.1:5000/a/b");
  CHECK(imagePull("127.0.0.1:5000/a/b:v1").tag == "v1");
  auto digest = imagePull("x/y@sha256:abc");
  CHECK(digest.fromImage == "x/y@sha256:abc");
  CHECK(digest.tag.empty());
}

TEST_CASE("runtime-docker: config: Docker's times parse to nanoseconds, its zero time to 0") {
  CHECK(parseTime("1970-01-01T00:00:01.5Z") == 1500000000);
  CHECK(parseTime("2026-12-04T18:46:48.949476154Z") == 1796410008949476154);
  CHECK(parseTime("2026-12-04T19:46:48.949476154+01:00") == 1796410008949476154);
  CHECK(parseTime("0001-01-01T00:00:00Z") == 0);
  CHECK(parseTime("not a time") == 0);
}

TEST_CASE("runtime-docker: config: inspect bodies become ContainerInfo") {
  auto v = json::parse(R"({"Id":"abc","Config":{"Image":"img","Labels":{
      "com.docker.swarm.task.id":"t1","com.docker.swarm.service.id":"s","com.docker.swarm.node.id":"n",
      "io.swarm-kernel.task.slot":"4"}},
      "State":{"Status":"running","Pid":42,"ExitCode":0,"StartedAt":"1970-01-01T00:00:02Z",
      "FinishedAt":"0001-01-01T00:00:00Z","Health":{"Status":"unhealthy"}}})");
  capnp::MallocMessageBuilder message;
  auto info = message.initRoot<schema::ContainerInfo>();
  readInspect(v, info);
  CHECK(info.getTaskId() == "t1");
  CHECK(info.getContainerId() == "abc");
  CHECK(info.getServiceId() == "s");
  CHECK(info.getNodeId() == "n");
  CHECK(info.getSlot() == 4);
  CHECK(info.getState() == schema::ContainerState::RUNNING);
  CHECK(info.getHealth() == schema::HealthState::UNHEALTHY);
  CHECK(info.getPid() == 42);
  CHECK(info.getStartedAt() == 2000000000);
  CHECK(info.getFinishedAt() == 0);
  CHECK(info.getImage() == "img");
}

TEST_CASE("runtime-docker: config: events become RuntimeEvents; others are skipped") {
  auto die = readEvent(json::parse(R"({"Type":"container","Action":"die","Actor":{"ID":"c1",
      "Attributes":{"com.docker.swarm.task.id":"t1","exitCode":"137"}},"time":5,"timeNano":5000000007})"));
  KJ_IF_MAYBE (e, die) {
    CHECK(e->action == schema::RuntimeEvent::Action::DIE);
    CHECK(e->taskId == "t1");
    CHECK(e->containerId == "c1");
    CHECK(e->exitCode == 137);
    CHECK(e->timeNanos == 5000000007);
  } else {
    FAIL("die was skipped");
  }
  auto health = readEvent(json::parse(R"({"Type":"container","Action":"health_status: healthy","Actor":{"ID":"c1","Attributes":{}}})"));
  KJ_IF_MAYBE (e, health) {
    CHECK(e->action == schema::RuntimeEvent::Action::HEALTH_CHANGED);
    CHECK(e->health == schema::HealthState::HEALTHY);
  } else {
    FAIL("health_status was skipped");
  }
  CHECK(readEvent(json::parse(R"({"Type":"container","Action":"exec_start: sh"})")) == nullptr);
  CHECK(readEvent(json::parse(R"({"Type":"network","Action":"connect"})")) == nullptr);
}

TEST_CASE("runtime-docker: config: /info becomes the node description") {
  auto v = json::parse(R"({"NCPU":4,"MemTotal":8589934592,"OSType":"linux","Architecture":"x86_64",
      "Name":"host-1","ServerVersion":"20.10.24","Labels":["zone=a","flag"]})");
  capnp::MallocMessageBuilder message;
  auto d = message.initRoot<schema::RuntimeDescription>();
  readInfo(v, d);
  CHECK(d.getResources().getNanoCpus() == 4000000000);
  CHECK(d.getResources().getMemoryBytes() == 8589934592);
  CHECK(d.getPlatform().getOs() == "linux");
  CHECK(d.getPlatform().getArchitecture() == "x86_64");
  CHECK(d.getHostname() == "host-1");
  CHECK(d.getEngineVersion() == "20.10.24");
  REQUIRE(d.getLabels().size() == 2);
  CHECK(d.getLabels()[0].getKey() == "zone");
  CHECK(d.getLabels()[0].getValue() == "a");
  CHECK(d.getLabels()[1].getKey() == "flag");
  CHECK(d.getLabels()[1].getValue() == "");
}

}  // namespace
}  // namespace swarm::docker
