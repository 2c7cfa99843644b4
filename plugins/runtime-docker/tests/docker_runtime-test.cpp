// runtime-docker.so against a real dockerd (tests/docker/start-dockerd.sh) and the local test
// image (tests/docker/test-image.sh), through the kernel's PluginInstance. Tagged [docker]; ctest
// runs them after the fixture that starts both.
#include "harness.h"

#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace swarm::docker::test {
namespace {

using schema::ContainerState;
using schema::HealthState;
using Kind = schema::TaskError::Kind;
using Action = schema::RuntimeEvent::Action;

constexpr int64_t kSecond = 1000000000;

std::string dockerInspect(const std::string& container, const std::string& format) {
  auto [status, out] = shell(std::string(kDocker) + " inspect --format '" + format + "' " + container);
  REQUIRE(status == 0);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::string dockerInspectInfo(const std::string& format) {
  auto [status, out] = shell(std::string(kDocker) + " info --format '" + format + "'");
  REQUIRE(status == 0);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::vector<std::string> lines(const std::vector<LogLineSeen>& seen, bool fromStderr) {
  std::vector<std::string> out;
  for (auto& l : seen) {
    if (l.fromStderr == fromStderr) out.push_back(l.data);
  }
  return out;
}

// A task that runs a shell script and exits.
TaskDef script(Runtime& rt, const std::string& tag, const std::string& body) {
  TaskDef t;
  t.id = rt.taskId(tag);
  t.command = {"sh", "-c", body};
  return t;
}

// Starts the task and waits for it to exit; returns its exit code.
int32_t runToExit(Runtime& rt, const std::string& id) {
  rt.start(id);
  return rt.await(rt.sendWait(id), "wait()").getExit().getExitCode();
}

TEST_CASE("runtime-docker: create, start, inspect, wait, stop and remove drive a real container", "[docker]") {
  Runtime rt;
  TaskDef t;
  t.id = rt.taskId("life");
  t.slot = 3;
  Info created = rt.createOk(t);
  CHECK(created.taskId == t.id);
  CHECK(created.state == ContainerState::CREATED);
  CHECK(created.containerId.size() == 64);
  CHECK(created.image == kImage);
  // Swarm's name and labels.
  CHECK(dockerInspect(created.containerId, "{{.Name}}") == "/rdt-svc.3." + t.id);
  CHECK(dockerInspect(created.containerId, "{{index .Config.Labels \"com.docker.swarm.task.id\"}}") == t.id);
  CHECK(dockerInspect(created.containerId, "{{index .Config.Labels \"com.docker.swarm.service.name\"}}") == "rdt-svc");
  CHECK(dockerInspect(created.containerId, "{{index .Config.Labels \"com.docker.swarm.node.id\"}}") == "rdt-node");
  CHECK(dockerInspect(created.containerId, "{{index .Config.Labels \"io.swarm-kernel.cluster.id\"}}") == "rdt-cluster");
  CHECK(dockerInspect(created.containerId, "{{.HostConfig.NetworkMode}}") == "none");
  CHECK(dockerInspect(created.containerId, "{{.HostConfig.Init}}") == "true");

  rt.start(t.id);
  Info running = rt.inspect(t.id);
  CHECK(running.state == ContainerState::RUNNING);
  CHECK(running.pid > 0);
  CHECK(running.startedAt > 0);
  CHECK(running.slot == 3);
  CHECK(running.serviceId == "rdt-svc-id");

  auto waiting = rt.sendWait(t.id);
  CHECK_FALSE(waiting.poll(rt.io.waitScope));  // still running
  rt.stop(t.id, 10 * kSecond);                 // under an init, SIGTERM ends sleep at once
  auto exit = rt.await(kj::mv(waiting), "wait()");
  Info stopped = rt.inspect(t.id);
  CHECK(stopped.state == ContainerState::EXITED);
  CHECK(exit.getExit().getExitCode() == stopped.exitCode);
  CHECK(stopped.exitCode == 143);  // 128 + SIGTERM
  CHECK(stopped.finishedAt >= stopped.startedAt);

  rt.remove(t.id);
  CHECK(rt.inspect(t.id).state == ContainerState::MISSING);
  rt.remove(t.id);  // missing = success
  CHECK(shell(std::string(kDocker) + " inspect " + created.containerId + " >/dev/null 2>&1").first != 0);
}

TEST_CASE("runtime-docker: a created task is found again, not duplicated", "[docker]") {
  Runtime rt;
  TaskDef t;
  t.id = rt.taskId("twice");
  Info first = rt.createOk(t);
  Info second = rt.createOk(t);
  CHECK(first.containerId == second.containerId);
}

// The task's directory of secret and config files on the host (harness: files-dir on /dev/shm).
std::string hostFilesOf(const std::string& taskId) { return testFilesDir() + "/" + taskId; }

TEST_CASE("runtime-docker: secrets and configs are files inside the container", "[docker]") {
  Runtime rt;
  auto t = script(rt, "secret",
                  "cat /run/secrets/db-password; echo; cat /etc/app/app.conf; echo;"
                  " stat -c '%a %u %g' /run/secrets/db-password /etc/app/app.conf /run/secrets/tls.key;"
                  " echo x 2>/dev/null >/run/secrets/db-password || echo read-only");
  TaskDef::File password{"sec-1", "db-password", "", "s3cret-value", 0400};
  TaskDef::File key{"sec-2", "tls-key", "tls.key", "-----KEY-----", 0440};
  key.uid = "1000";
  key.gid = "50";
  TaskDef::File config{"cfg-1", "app-config", "/etc/app/app.conf", "listen=8080", 0444};
  config.gid = "50";
  t.secrets = {password, key};
  t.configs = {config};
  t.init = false;
  Info info = rt.createOk(t);
  // On the host: the task's directory on the tmpfs, 0700, with generated names.
  struct stat st;
  REQUIRE(stat(hostFilesOf(t.id).c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  CHECK(shell("cat " + hostFilesOf(t.id) + "/secret-0").second == "s3cret-value");
  // Each file bind-mounted read-only onto its target (Docker lists mounts in no fixed order).
  std::vector<std::string> mounts;
  std::stringstream listed(dockerInspect(info.containerId, "{{range .Mounts}}{{println .Type .Source .Destination .RW}}{{end}}"));
  for (std::string line; std::getline(listed, line);) mounts.push_back(line);
  std::sort(mounts.begin(), mounts.end());
  CHECK(mounts == std::vector<std::string>{
                      "bind " + hostFilesOf(t.id) + "/config-0 /etc/app/app.conf false",
                      "bind " + hostFilesOf(t.id) + "/secret-0 /run/secrets/db-password false",
                      "bind " + hostFilesOf(t.id) + "/secret-1 /run/secrets/tls.key false"});

  CHECK(runToExit(rt, t.id) == 0);
  auto out = lines(rt.logs(t.id, false), false);
  REQUIRE(out.size() == 6);
  CHECK(out[0] == "s3cret-value");
  CHECK(out[1] == "listen=8080");
  CHECK(out[2] == "400 0 0");
  CHECK(out[3] == "444 0 50");
  CHECK(out[4] == "440 1000 50");
  CHECK(out[5] == "read-only");

  // Nothing of the data is in the container's writable layer. The mount points runc made there
  // (what `docker diff` lists as A /run/secrets/...) are empty files, as with Swarm's executor.
  std::string upper = dockerInspect(info.containerId, "{{.GraphDriver.Data.UpperDir}}");
  REQUIRE(!upper.empty());
  auto [diffStatus, diff] = shell(std::string(kDocker) + " diff " + info.containerId);
  REQUIRE(diffStatus == 0);
  INFO("docker diff: " << diff);
  CHECK_THAT(diff, Catch::Contains("A /run/secrets/db-password"));  // the upper dir is the right one
  CHECK(shell("test -f " + upper + "/run/secrets/db-password").first == 0);
  for (auto& data : {"s3cret-value", "-----KEY-----", "listen=8080"}) {
    INFO(data);
    CHECK(shell("grep -rqF -- '" + std::string(data) + "' " + upper).first == 1);  // 1: not found
  }
  CHECK(shell("find " + upper + " -type f -size +0").second.empty());

  rt.remove(t.id);
  CHECK(access(hostFilesOf(t.id).c_str(), F_OK) != 0);  // the host's copy went with the container
}

TEST_CASE("runtime-docker: a files-dir that is not on a tmpfs is a clear task error", "[docker]") {
  std::string disk = "/var/tmp";
  struct statfs fs;
  if (statfs(disk.c_str(), &fs) != 0 || fs.f_type == 0x01021994 /* TMPFS_MAGIC */) {
    WARN("/var/tmp is a tmpfs here: nothing to refuse");
    return;
  }
  std::string base = disk + "/" + runId() + "-task-files";
  Runtime rt({{"files-dir", base}});
  TaskDef t;
  t.id = rt.taskId("disk");
  t.secrets = {{"sec-1", "db-password", "", "s3cret-value", 0400}};
  auto outcome = rt.create(t);
  CHECK_FALSE(outcome.ok);
  CHECK(outcome.errorKind == Kind::OTHER);
  CHECK_THAT(outcome.message, Catch::Contains("files-dir " + base + " is on a disk filesystem, not on a tmpfs"));
  CHECK_THAT(outcome.message, Catch::Contains("files-dir at a directory on a tmpfs"));
  CHECK(rt.inspect(t.id).state == ContainerState::MISSING);
  CHECK(access(base.c_str(), F_OK) != 0);
  // A task without secrets or configs needs no files-dir.
  TaskDef plain;
  plain.id = rt.taskId("disk-plain");
  rt.createOk(plain);
}

TEST_CASE("runtime-docker: files of tasks whose containers are gone are swept on restart and by list", "[docker]") {
  Runtime rt;
  TaskDef kept, lost;
  kept.id = rt.taskId("sweep-kept");
  lost.id = rt.taskId("sweep-lost");
  kept.secrets = lost.secrets = {{"sec-1", "db-password", "", "s3cret-value", 0400}};
  rt.createOk(kept);
  Info lostInfo = rt.createOk(lost);
  // The container goes behind the plugin's back; a directory of a task that never had one appears.
  REQUIRE(shell(std::string(kDocker) + " rm -f " + lostInfo.containerId + " >/dev/null").first == 0);
  std::string orphan = testFilesDir() + "/" + rt.taskId("sweep-orphan");
  std::string young = testFilesDir() + "/" + rt.taskId("sweep-young");
  REQUIRE(mkdir(orphan.c_str(), 0700) == 0);
  REQUIRE(mkdir(young.c_str(), 0700) == 0);
  // Older than the sweep's grace minute, except `young` (a create() may be about to use it).
  for (auto& dir : {hostFilesOf(kept.id), hostFilesOf(lost.id), orphan}) {
    REQUIRE(shell("touch -d '2 minutes ago' " + dir).first == 0);
  }
  rt.restart();  // sweeps on start
  CHECK(rt.waitFor([&]() { return access(hostFilesOf(lost.id).c_str(), F_OK) != 0; }));
  CHECK(rt.waitFor([&]() { return access(orphan.c_str(), F_OK) != 0; }));
  CHECK(access(hostFilesOf(kept.id).c_str(), F_OK) == 0);
  CHECK(access(young.c_str(), F_OK) == 0);

  // list() sweeps too.
  REQUIRE(mkdir(orphan.c_str(), 0700) == 0);
  REQUIRE(shell("touch -d '2 minutes ago' " + orphan + " " + young).first == 0);
  rt.list();
  CHECK(access(orphan.c_str(), F_OK) != 0);
  CHECK(access(young.c_str(), F_OK) != 0);
  CHECK(access(hostFilesOf(kept.id).c_str(), F_OK) == 0);
}

TEST_CASE("runtime-docker: a secret the spec names but the caller did not supply is an invalid spec", "[docker]") {
  Runtime rt;
  TaskDef t;
  t.id = rt.taskId("nosecret");
  TaskDef::File unsupplied{"sec-1", "db-password", "", "x", 0400};
  unsupplied.supplied = false;
  t.secrets = {unsupplied};
  auto outcome = rt.create(t);
  CHECK_FALSE(outcome.ok);
  CHECK(outcome.errorKind == Kind::INVALID_SPEC);
  CHECK_THAT(outcome.message, Catch::Contains("secret db-password (sec-1) is referenced"));
  CHECK(rt.inspect(t.id).state == ContainerState::MISSING);
}

TEST_CASE("runtime-docker: the container spec is applied (env, user, dir, hostname, mounts, limits)", "[docker]") {
  Runtime rt;
  char dirTemplate[] = "/tmp/rdt-bind-XXXXXX";
  REQUIRE(mkdtemp(dirTemplate) != nullptr);
  std::string bindDir = dirTemplate;
  REQUIRE(chmod(bindDir.c_str(), 0755) == 0);  // the container runs as nobody
  { std::ofstream(bindDir + "/hello") << "from-the-host\n"; }
  auto t = script(rt, "spec",
                  "echo $GREETING; pwd; id -u; hostname; cat /data/hello;"
                  " grep -q ' /scratch tmpfs' /proc/mounts && echo tmpfs-mounted;"
                  " touch /data/x 2>/dev/null || echo read-only");
  t.env = {"GREETING=hello-env"};
  t.user = "65534";
  t.dir = "/tmp";
  t.hostname = "rdt-host";
  t.memoryLimit = 64 << 20;
  t.mounts = {{schema::Mount::Type::BIND, bindDir, "/data", true},
              {schema::Mount::Type::TMPFS, "", "/scratch", false}};
  Info info = rt.createOk(t);
  CHECK(dockerInspect(info.containerId, "{{.HostConfig.Memory}}") == std::to_string(64 << 20));
  CHECK(runToExit(rt, t.id) == 0);
  auto out = lines(rt.logs(t.id, false), false);
  CHECK(out == std::vector<std::string>{"hello-env", "/tmp", "65534", "rdt-host", "from-the-host",
                                        "tmpfs-mounted", "read-only"});
  shell("rm -rf " + bindDir);
}

TEST_CASE("runtime-docker: host networking is used when the task attaches to host", "[docker]") {
  Runtime rt;
  TaskDef t;
  t.id = rt.taskId("hostnet");
  t.networks = {"host"};
  Info info = rt.createOk(t);
  CHECK(dockerInspect(info.containerId, "{{.HostConfig.NetworkMode}}") == "host");
  TaskDef overlay;
  overlay.id = rt.taskId("overlay");
  overlay.networks = {"my-overlay"};
  auto refused = rt.create(overlay);
  CHECK_FALSE(refused.ok);
  CHECK(refused.errorKind == Kind::INVALID_SPEC);
  CHECK_THAT(refused.message, Catch::Contains("network 'my-overlay'"));
}

TEST_CASE("runtime-docker: list finds the containers again after the plugin restarts", "[docker]") {
  Runtime rt;
  std::vector<Info> made;
  for (uint64_t slot = 1; slot <= 2; ++slot) {
    TaskDef t;
    t.id = rt.taskId("list");
    t.slot = slot;
    made.push_back(rt.createOk(t));
  }
  rt.start(made[0].taskId);
  rt.restart();
  auto listed = rt.list();
  for (auto& m : made) {
    auto it = std::find_if(listed.begin(), listed.end(), [&](const Info& i) { return i.taskId == m.taskId; });
    REQUIRE(it != listed.end());
    CHECK(it->containerId == m.containerId);
    CHECK(it->serviceId == "rdt-svc-id");
    CHECK(it->nodeId == "rdt-node");
    CHECK(it->slot == m.slot);
  }
  auto first = std::find_if(listed.begin(), listed.end(), [&](const Info& i) { return i.taskId == made[0].taskId; });
  CHECK(first->state == ContainerState::RUNNING);
}

TEST_CASE("runtime-docker: node-id limits list to that node's containers", "[docker]") {
  Runtime rt({{"node-id", "rdt-node-a"}});
  TaskDef a, b;
  a.id = rt.taskId("node");
  a.node = "rdt-node-a";
  b.id = rt.taskId("node");
  b.node = "rdt-node-b";
  rt.createOk(a);
  rt.createOk(b);
  auto listed = rt.list();
  auto has = [&](const std::string& id) {
    return std::any_of(listed.begin(), listed.end(), [&](const Info& i) { return i.taskId == id; });
  };
  CHECK(has(a.id));
  CHECK_FALSE(has(b.id));
}

TEST_CASE("runtime-docker: a name taken by a foreign container is a name conflict", "[docker]") {
  Runtime rt;
  TaskDef t;
  t.id = rt.taskId("conflict");
  std::string name = "rdt-svc.1." + t.id;
  REQUIRE(shell(std::string(kDocker) + " create --name " + name + " --network none --label " + kRunLabel +
                "=" + runId() + " " + kImage + " sleep 1 >/dev/null")
              .first == 0);
  auto outcome = rt.create(t);
  CHECK_FALSE(outcome.ok);
  CHECK(outcome.errorKind == Kind::NAME_CONFLICT);
  CHECK_THAT(outcome.message, Catch::Contains(name));
  CHECK(rt.inspect(t.id).state == ContainerState::MISSING);
}

TEST_CASE("runtime-docker: an absent image with pulling off is image missing, no registry asked", "[docker]") {
  Runtime rt({{"pull", "never"}});
  TaskDef t;
  t.id = rt.taskId("nopull");
  t.image = "swarm-test/absent:never";
  auto outcome = rt.create(t);
  CHECK_FALSE(outcome.ok);
  CHECK(outcome.errorKind == Kind::IMAGE_MISSING);
  CHECK_THAT(outcome.message, Catch::Contains("pull=never"));
}

TEST_CASE("runtime-docker: a healthcheck reaches healthy and is reported by inspect and events", "[docker]") {
  Runtime rt;
  auto [handle, seen] = rt.subscribe();
  TaskDef t;
  t.id = rt.taskId("health");
  t.healthcheck = {"CMD-SHELL", "test -e /bin/sh"};
  t.healthInterval = kSecond / 5;
  rt.createOk(t);
  rt.start(t.id);
  CHECK(rt.inspect(t.id).health != HealthState::NONE);
  CHECK(rt.waitFor([&]() { return rt.inspect(t.id).health == HealthState::HEALTHY; }));
  CHECK(rt.waitFor([&, &seen = seen]() {
    return std::any_of(seen->begin(), seen->end(), [&](const EventSeen& e) {
      return e.taskId == t.id && e.action == Action::HEALTH_CHANGED && e.health == HealthState::HEALTHY;
    });
  }));
  TaskDef plain;
  plain.id = rt.taskId("nohealth");
  rt.createOk(plain);
  CHECK(rt.inspect(plain.id).health == HealthState::NONE);
}

TEST_CASE("runtime-docker: events report create, start, die with the exit code, and destroy", "[docker]") {
  Runtime rt;
  auto [handle, seen] = rt.subscribe();
  auto t = script(rt, "events", "exit 7");
  Info info = rt.createOk(t);
  CHECK(runToExit(rt, t.id) == 7);
  rt.remove(t.id);
  std::vector<Action> want{Action::CREATE, Action::START, Action::DIE, Action::DESTROY};
  auto mine = [&, &seen = seen]() {
    std::vector<EventSeen> out;
    for (auto& e : *seen) {
      if (e.taskId == t.id) out.push_back(e);
    }
    return out;
  };
  CHECK(rt.waitFor([&]() { return mine().size() >= want.size(); }));
  auto got = mine();
  std::vector<Action> actions;
  for (auto& e : got) actions.push_back(e.action);
  CHECK(actions == want);
  for (auto& e : got) CHECK(e.containerId == info.containerId);
  for (auto& e : got) {
    if (e.action == Action::DIE) CHECK(e.exitCode == 7);
  }
  handle = nullptr;  // unsubscribing stops the stream; the plugin keeps serving
  CHECK(rt.health() == schema::Health::Status::OK);
}

TEST_CASE("runtime-docker: logs separate stdout and stderr, with timestamps, and follow to the end", "[docker]") {
  Runtime rt;
  auto t = script(rt, "logs", "echo out-1; echo err-1 >&2; echo out-2; printf no-newline");
  rt.createOk(t);
  CHECK(runToExit(rt, t.id) == 0);
  auto seen = rt.logs(t.id, false);
  CHECK(lines(seen, false) == std::vector<std::string>{"out-1", "out-2", "no-newline"});
  CHECK(lines(seen, true) == std::vector<std::string>{"err-1"});
  for (auto& l : seen) CHECK(l.timestamp > 0);

  // follow: the call ends when the container exits, with everything it wrote.
  auto f = script(rt, "follow", "echo first; sleep 1; echo second");
  rt.createOk(f);
  rt.start(f.id);
  auto followed = rt.logs(f.id, true);
  CHECK(lines(followed, false) == std::vector<std::string>{"first", "second"});
  CHECK(rt.inspect(f.id).state == ContainerState::EXITED);
}

TEST_CASE("runtime-docker: describe reports the engine's resources, platform and version", "[docker]") {
  Runtime rt;
  capnp::MallocMessageBuilder message;
  auto d = rt.describe(message);
  CHECK(d.getResources().getNanoCpus() ==
        std::stoll(dockerInspectInfo("{{.NCPU}}")) * kSecond);
  CHECK(d.getResources().getMemoryBytes() == std::stoll(dockerInspectInfo("{{.MemTotal}}")));
  CHECK(std::string(d.getPlatform().getOs().cStr()) == "linux");
  CHECK(std::string(d.getPlatform().getArchitecture().cStr()) == dockerInspectInfo("{{.Architecture}}"));
  CHECK(std::string(d.getEngineVersion().cStr()) == dockerInspectInfo("{{.ServerVersion}}"));
  CHECK(std::string(d.getHostname().cStr()) == dockerInspectInfo("{{.Name}}"));
}

// ---- pulls from a loopback registry ----------------------------------------------------------

int freeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t len = sizeof(addr);
  REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  close(fd);
  return ntohs(addr.sin_port);
}

// Debian's docker-registry on 127.0.0.1:<free port>, storing under a scratch directory.
class LoopbackRegistry {
 public:
  LoopbackRegistry() {
    char dirTemplate[] = "/tmp/rdt-registry-XXXXXX";
    REQUIRE(mkdtemp(dirTemplate) != nullptr);
    dir = dirTemplate;
    port = freeLoopbackPort();
    address = "127.0.0.1:" + std::to_string(port);
    std::ofstream(dir + "/config.yml") << "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                                       << "    rootdirectory: " << dir << "/data\nhttp:\n  addr: "
                                       << address << "\n";
    pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      execl("/usr/bin/docker-registry", "docker-registry", "serve", (dir + "/config.yml").c_str(),
            static_cast<char*>(nullptr));
      _exit(127);
    }
    // Ready once /v2/ answers.
    bool up = false;
    for (int i = 0; i < 200 && !up; ++i) {
      up = shell("curl -sf -o /dev/null http://" + address + "/v2/").first == 0;
      if (!up) usleep(50000);
    }
    REQUIRE(up);
  }
  ~LoopbackRegistry() {
    kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
    shell("rm -rf " + dir);
  }

  std::string address;

 private:
  std::string dir;
  int port = 0;
  pid_t pid = -1;
};

TEST_CASE("runtime-docker: create pulls an absent image from a loopback registry", "[docker]") {
  LoopbackRegistry registry;
  std::string docker = kDocker;
  std::string ref = registry.address + "/swarm-test/pulled:" + runId();
  REQUIRE(shell(docker + " tag " + kImage + " " + ref).first == 0);
  REQUIRE(shell(docker + " push " + ref + " >/dev/null").first == 0);
  REQUIRE(shell(docker + " rmi " + ref + " >/dev/null").first == 0);  // only the tag: the image stays
  REQUIRE(shell(docker + " image inspect " + ref + " >/dev/null 2>&1").first != 0);

  {
    Runtime rt;
    TaskDef t;
    t.id = rt.taskId("pull");
    t.image = ref;
    Info info = rt.createOk(t);
    CHECK(info.image == ref);
    CHECK(shell(docker + " image inspect " + ref + " >/dev/null 2>&1").first == 0);
    rt.start(t.id);
    CHECK(rt.inspect(t.id).state == ContainerState::RUNNING);
  }
  shell(docker + " rmi " + ref + " >/dev/null 2>&1");
}

TEST_CASE("runtime-docker: an image the loopback registry does not have is image missing", "[docker]") {
  LoopbackRegistry registry;
  Runtime rt;
  TaskDef t;
  t.id = rt.taskId("absent");
  t.image = registry.address + "/nothing:here";
  auto outcome = rt.create(t);
  CHECK_FALSE(outcome.ok);
  CHECK(outcome.errorKind == Kind::IMAGE_MISSING);
  CHECK_THAT(outcome.message, Catch::Contains("nothing:here"));
  CHECK(rt.inspect(t.id).state == ContainerState::MISSING);
}

}  // namespace
}  // namespace swarm::docker::test
