#include "harness.h"

#include <cstdio>
#include <unistd.h>

namespace swarm::docker::test {
namespace {

std::string str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

Info toInfo(schema::ContainerInfo::Reader r) {
  Info i;
  i.taskId = str(r.getTaskId());
  i.containerId = str(r.getContainerId());
  i.serviceId = str(r.getServiceId());
  i.nodeId = str(r.getNodeId());
  i.image = str(r.getImage());
  i.error = str(r.getError());
  i.slot = r.getSlot();
  i.state = r.getState();
  i.health = r.getHealth();
  i.pid = r.getPid();
  i.exitCode = r.getExitCode();
  i.startedAt = r.getStartedAt();
  i.finishedAt = r.getFinishedAt();
  return i;
}

void setTexts(capnp::List<capnp::Text>::Builder out, const std::vector<std::string>& in) {
  for (unsigned i = 0; i < in.size(); ++i) out.set(i, in[i]);
}

class LogCollector final : public schema::LogSink::Server {
 public:
  explicit LogCollector(std::shared_ptr<std::vector<LogLineSeen>> lines) : lines(std::move(lines)) {}
  kj::Promise<void> line(LineContext context) override {
    auto l = context.getParams().getLine();
    auto data = l.getData();
    lines->push_back({l.getStream() == schema::LogLine::Stream::STDERR, l.getTimestamp(),
                      std::string(reinterpret_cast<const char*>(data.begin()), data.size())});
    return kj::READY_NOW;
  }
  kj::Promise<void> done(DoneContext) override { return kj::READY_NOW; }

 private:
  std::shared_ptr<std::vector<LogLineSeen>> lines;
};

class EventCollector final : public schema::EventSink::Server {
 public:
  explicit EventCollector(std::shared_ptr<std::vector<EventSeen>> seen) : seen(std::move(seen)) {}
  kj::Promise<void> event(EventContext context) override {
    auto e = context.getParams().getEvent();
    seen->push_back({e.getAction(), str(e.getTaskId()), str(e.getContainerId()), e.getExitCode(),
                     e.getHealth()});
    return kj::READY_NOW;
  }

 private:
  std::shared_ptr<std::vector<EventSeen>> seen;
};

}  // namespace

const std::string& runId() {
  static const std::string id = "rdt" + std::to_string(getpid());
  return id;
}

std::pair<int, std::string> shell(const std::string& command) {
  std::string output;
  FILE* pipe = popen(command.c_str(), "r");
  KJ_REQUIRE(pipe != nullptr, "popen failed", command);
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

void removeRunContainers() {
  std::string docker = kDocker;
  shell("ids=$(" + docker + " ps -aq --filter label=" + kRunLabel + "=" + runId() +
        "); [ -z \"$ids\" ] || " + docker + " rm -f $ids >/dev/null");
}

std::string testFilesDir() { return "/dev/shm/" + runId() + "-task-files"; }

Runtime::Runtime(std::vector<std::pair<std::string, std::string>> settings)
    : io(kj::setupAsyncIo()), settings(std::move(settings)), runtime(nullptr) {
  bool named = false;
  for (auto& [key, value] : this->settings) named = named || key == "files-dir";
  if (!named) this->settings.emplace_back("files-dir", testFilesDir());
  startInstance();
}

Runtime::~Runtime() noexcept(false) {
  // Remove what this test made through the plugin, then anything left with the run's label.
  for (auto& id : created) {
    kj::runCatchingExceptions([&]() { remove(id); });
  }
  runtime = nullptr;
  if (instance) instance->stop().wait(io.waitScope);
  removeRunContainers();
  shell("rm -rf " + testFilesDir());
}

void Runtime::startInstance() {
  kernel::PluginConfig config;
  config.kind = schema::Kind::RUNTIME;
  config.library = RUNTIME_DOCKER_PLUGIN;
  config.isolation = kernel::Isolation::inProcess;
  config.onCrash = kernel::CrashPolicy::stop;
  config.settings = settings;
  kernel::PluginInstance::Options options;
  options.runnerPath = SWARM_PLUGIN_RUNNER;
  instance = kernel::PluginInstance::start(io, config, options);
  instance->configure().wait(io.waitScope);
  runtime = instance->bootstrap().castAs<schema::Runtime>();
}

void Runtime::restart() {
  runtime = nullptr;
  instance->stop().wait(io.waitScope);
  instance = nullptr;
  startInstance();
}

std::string Runtime::taskId(const std::string& tag) {
  return runId() + "-" + tag + "-" + std::to_string(++nextTask);
}

CreateOutcome Runtime::create(const TaskDef& def) {
  created.push_back(def.id);
  auto request = runtime.createRequest();
  auto task = request.initTask();
  task.setId(def.id);
  task.setServiceId(def.service + "-id");
  task.setSlot(def.slot);
  task.setNodeId(def.node);
  task.initServiceAnnotations().setName(def.service);
  auto spec = task.initSpec();
  auto c = spec.getRuntime().initContainer();
  c.setImage(def.image);
  setTexts(c.initCommand(static_cast<unsigned>(def.command.size())), def.command);
  setTexts(c.initEnv(static_cast<unsigned>(def.env.size())), def.env);
  auto labels = c.initLabels(static_cast<unsigned>(def.labels.size() + 1));
  labels[0].setKey(kRunLabel);
  labels[0].setValue(runId());
  for (unsigned i = 0; i < def.labels.size(); ++i) {
    labels[i + 1].setKey(def.labels[i].first);
    labels[i + 1].setValue(def.labels[i].second);
  }
  c.setInit(def.init ? schema::OptionalBool::YES : schema::OptionalBool::NO);
  c.setUser(def.user);
  c.setDir(def.dir);
  c.setHostname(def.hostname);
  if (!def.healthcheck.empty()) {
    auto h = c.initHealthcheck();
    setTexts(h.initTest(static_cast<unsigned>(def.healthcheck.size())), def.healthcheck);
    h.setInterval(def.healthInterval);
    h.setTimeout(5000000000);
    h.setRetries(3);
  }
  auto secretRefs = c.initSecrets(static_cast<unsigned>(def.secrets.size()));
  unsigned suppliedSecrets = 0;
  for (auto& s : def.secrets) suppliedSecrets += s.supplied ? 1 : 0;
  auto secretData = request.initSecrets(suppliedSecrets);
  for (unsigned i = 0, d = 0; i < def.secrets.size(); ++i) {
    auto& s = def.secrets[i];
    secretRefs[i].setSecretId(s.id);
    secretRefs[i].setSecretName(s.name);
    secretRefs[i].initFile().setName(s.target);
    secretRefs[i].getFile().setMode(s.mode);
    secretRefs[i].getFile().setUid(s.uid);
    secretRefs[i].getFile().setGid(s.gid);
    if (!s.supplied) continue;
    secretData[d].setReferenceId(s.id);
    secretData[d].setName(s.name);
    secretData[d].setData(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(s.data.data()), s.data.size()));
    ++d;
  }
  auto configRefs = c.initConfigs(static_cast<unsigned>(def.configs.size()));
  auto configData = request.initConfigs(static_cast<unsigned>(def.configs.size()));
  for (unsigned i = 0; i < def.configs.size(); ++i) {
    auto& s = def.configs[i];
    configRefs[i].setConfigId(s.id);
    configRefs[i].setConfigName(s.name);
    configRefs[i].getTarget().initFile().setName(s.target);
    configRefs[i].getTarget().getFile().setMode(s.mode);
    configRefs[i].getTarget().getFile().setUid(s.uid);
    configRefs[i].getTarget().getFile().setGid(s.gid);
    configData[i].setReferenceId(s.id);
    configData[i].setName(s.name);
    configData[i].setData(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(s.data.data()), s.data.size()));
  }
  auto mounts = c.initMounts(static_cast<unsigned>(def.mounts.size()));
  for (unsigned i = 0; i < def.mounts.size(); ++i) {
    mounts[i].setType(def.mounts[i].type);
    mounts[i].setSource(def.mounts[i].source);
    mounts[i].setTarget(def.mounts[i].target);
    mounts[i].setReadOnly(def.mounts[i].readOnly);
  }
  auto networks = spec.initNetworks(static_cast<unsigned>(def.networks.size()));
  for (unsigned i = 0; i < def.networks.size(); ++i) networks[i].setTarget(def.networks[i]);
  spec.initResources().initLimits().setMemoryBytes(def.memoryLimit);
  request.setClusterId("rdt-cluster");

  auto response = await(request.send(), "create()");
  CreateOutcome out;
  auto result = response.getResult();
  if (result.isCreated()) {
    out.ok = true;
    out.info = toInfo(result.getCreated());
  } else {
    out.errorKind = result.getFailed().getKind();
    out.message = str(result.getFailed().getMessage());
  }
  return out;
}

Info Runtime::createOk(const TaskDef& task) {
  auto out = create(task);
  KJ_REQUIRE(out.ok, "create() failed", task.id, out.message);
  return out.info;
}

void Runtime::start(const std::string& id) {
  auto request = runtime.startRequest();
  request.setTaskId(id);
  await(request.send().ignoreResult(), "start()");
}

kj::Promise<capnp::Response<schema::Runtime::WaitResults>> Runtime::sendWait(const std::string& id) {
  auto request = runtime.waitRequest();
  request.setTaskId(id);
  return request.send();
}

void Runtime::stop(const std::string& id, int64_t gracePeriod) {
  auto request = runtime.stopRequest();
  request.setTaskId(id);
  request.setGracePeriod(gracePeriod);
  await(request.send().ignoreResult(), "stop()");
}

void Runtime::remove(const std::string& id) {
  auto request = runtime.removeRequest();
  request.setTaskId(id);
  await(request.send().ignoreResult(), "remove()");
}

Info Runtime::inspect(const std::string& id) {
  auto request = runtime.inspectRequest();
  request.setTaskId(id);
  return toInfo(await(request.send(), "inspect()").getInfo());
}

std::vector<Info> Runtime::list() {
  auto response = await(runtime.listRequest().send(), "list()");
  std::vector<Info> out;
  for (auto c : response.getContainers()) out.push_back(toInfo(c));
  return out;
}

std::vector<LogLineSeen> Runtime::logs(const std::string& id, bool follow) {
  auto lines = std::make_shared<std::vector<LogLineSeen>>();
  auto request = runtime.logsRequest();
  request.setTaskId(id);
  request.initOptions().setFollow(follow);
  request.setSink(kj::heap<LogCollector>(lines));
  await(request.send().ignoreResult(), "logs()");
  return *lines;
}

schema::RuntimeDescription::Reader Runtime::describe(capnp::MallocMessageBuilder& into) {
  auto response = await(runtime.describeRequest().send(), "describe()");
  into.setRoot(response.getDescription());
  return into.getRoot<schema::RuntimeDescription>().asReader();
}

schema::Health::Status Runtime::health(std::string* message) {
  auto response = await(runtime.healthRequest().send(), "health()");
  if (message != nullptr) *message = str(response.getHealth().getMessage());
  return response.getHealth().getStatus();
}

std::pair<schema::Handle::Client, std::shared_ptr<std::vector<EventSeen>>> Runtime::subscribe() {
  auto seen = std::make_shared<std::vector<EventSeen>>();
  auto request = runtime.eventsRequest();
  request.setSink(kj::heap<EventCollector>(seen));
  auto response = await(request.send(), "events()");
  return {response.getSubscription(), seen};
}

}  // namespace swarm::docker::test
