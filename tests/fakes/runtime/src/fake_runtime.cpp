#include "fake_runtime.h"

#include <kj/debug.h>

#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>

namespace swarm::fakes {
namespace {

using schema::ContainerState;
using Action = schema::RuntimeEvent::Action;

constexpr int32_t kStoppedExitCode = 143;  // 128 + SIGTERM, as a stopped container reports
constexpr int32_t kKilledExitCode = 137;   // 128 + SIGKILL: removed while running

int64_t nowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// 64 hex digits, like an engine's container ID; unique per number.
std::string containerIdFor(uint64_t number) {
  std::string id;
  uint64_t x = number;
  for (int i = 0; i < 4; ++i) {
    // splitmix64: distinct numbers give distinct, random-looking words.
    x += 0x9e3779b97f4a7c15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    char word[17];
    snprintf(word, sizeof(word), "%016" PRIx64, z);
    id += word;
  }
  return id;
}

class Subscription final : public schema::Handle::Server {
 public:
  Subscription(kj::Own<FakeRuntime::Subscribers> subscribers, uint64_t id)
      : subscribers(kj::mv(subscribers)), id(id) {}
  ~Subscription() noexcept(false) { subscribers->sinks.erase(id); }

 private:
  kj::Own<FakeRuntime::Subscribers> subscribers;
  uint64_t id;
};

}  // namespace

FakeRuntime::FakeRuntime()
    : timer(sdk::asyncIo().provider->getTimer()),
      subscribers(kj::refcounted<Subscribers>()),
      tasks(*this) {}

kj::Promise<void> FakeRuntime::onConfigure(const sdk::Settings& s) {
  s.requireOnly({"latency-ms", "fail-create-every", "exit-code", "run-ms"});
  latencyMs = static_cast<uint64_t>(s.getInt("latency-ms", 0, 0, 60000));
  failCreateEvery = static_cast<uint64_t>(s.getInt("fail-create-every", 0, 0, 1000000));
  exitCode = static_cast<int32_t>(s.getInt("exit-code", 0, 0, 255));
  runMs = static_cast<uint64_t>(s.getInt("run-ms", 0, 0, 86400000));
  return kj::READY_NOW;
}

void FakeRuntime::taskFailed(kj::Exception&& exception) {
  log(schema::LogLevel::WARN, kj::str("event delivery: ", exception.getDescription()));
}

kj::Promise<void> FakeRuntime::latency() {
  if (latencyMs == 0) return kj::READY_NOW;
  return timer.afterDelay(latencyMs * kj::MILLISECONDS);
}

kj::Maybe<FakeRuntime::Container&> FakeRuntime::tryFind(kj::StringPtr taskId) {
  auto it = containers.find(std::string(taskId.cStr()));
  if (it == containers.end()) return nullptr;
  return it->second;
}

FakeRuntime::Container& FakeRuntime::find(kj::StringPtr taskId) {
  KJ_IF_MAYBE (c, tryFind(taskId)) {
    return *c;
  }
  sdk::fail(kj::str("no container for task ", taskId, "; create() it first"));
}

void FakeRuntime::fill(schema::ContainerInfo::Builder info, const Container& c) {
  info.setTaskId(c.taskId);
  info.setContainerId(c.containerId);
  info.setServiceId(c.serviceId);
  info.setNodeId(c.nodeId);
  info.setSlot(c.slot);
  info.setState(c.state);
  info.setHealth(schema::HealthState::NONE);
  info.setPid(c.pid);
  info.setExitCode(c.exitCode);
  info.setStartedAt(c.startedAt);
  info.setFinishedAt(c.finishedAt);
  info.setError(c.error);
  info.setImage(c.image);
}

void FakeRuntime::emit(Action action, const Container& c) {
  for (auto& [id, sink] : subscribers->sinks) {
    auto request = sink.eventRequest();
    auto e = request.initEvent();
    e.setAction(action);
    e.setTaskId(c.taskId);
    e.setContainerId(c.containerId);
    e.setTime(nowNanos());
    e.setExitCode(c.exitCode);
    e.setHealth(schema::HealthState::NONE);
    // A sink that fails is gone (its subscriber disconnected): stop sending to it.
    tasks.add(request.send().catch_([subs = kj::addRef(*subscribers),
                                     id = id](kj::Exception&&) mutable { subs->sinks.erase(id); }));
  }
}

void FakeRuntime::exitContainer(Container& c, int32_t code, kj::StringPtr error) {
  c.state = ContainerState::EXITED;
  c.exitCode = code;
  c.error = error;
  c.pid = 0;
  c.finishedAt = nowNanos();
  c.running = nullptr;  // cancels the run-ms timer if that is not what ended it
  for (auto& waiter : c.waiters) waiter->fulfill({code, std::string(error.cStr())});
  c.waiters.clear();
  emit(Action::DIE, c);
}

kj::Promise<void> FakeRuntime::describe(DescribeContext context) {
  auto d = context.getResults().initDescription();
  d.setEngineVersion("fake-runtime 0.1.0");
  struct utsname u;
  auto platform = d.initPlatform();
  platform.setOs("linux");
  platform.setArchitecture(uname(&u) == 0 ? u.machine : "unknown");
  auto resources = d.initResources();
  resources.setMemoryBytes(int64_t(8) << 30);
  resources.setNanoCpus(int64_t(4) * 1000000000);
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  d.setHostname(host[0] != '\0' ? host : "fake-runtime");
  return kj::READY_NOW;
}

kj::Promise<void> FakeRuntime::create(CreateContext context) {
  return latency().then([this, context]() mutable {
    auto task = context.getParams().getTask();
    auto result = context.getResults().initResult();
    if (task.getId().size() == 0) sdk::fail("create(): the task has no ID");
    KJ_IF_MAYBE (existing, tryFind(task.getId())) {
      fill(result.initCreated(), *existing);
      return;
    }
    auto runtime = task.getSpec().getRuntime();
    if (!runtime.isContainer() || runtime.getContainer().getImage().size() == 0) {
      auto failed = result.initFailed();
      failed.setKind(schema::TaskError::Kind::INVALID_SPEC);
      failed.setMessage(
          kj::str("task ", task.getId(), " has no container image; set the service's image"));
      return;
    }
    ++creates;
    if (failCreateEvery > 0 && creates % failCreateEvery == 0) {
      auto failed = result.initFailed();
      failed.setKind(schema::TaskError::Kind::OTHER);
      failed.setMessage(kj::str("fake-runtime: injected create failure for task ", task.getId(),
                                " (fail-create-every=", failCreateEvery, ")"));
      return;
    }
    Container c;
    c.taskId = task.getId();
    c.containerId = containerIdFor(nextNumber++);
    c.serviceId = task.getServiceId();
    c.nodeId = task.getNodeId();
    c.image = runtime.getContainer().getImage();
    c.slot = task.getSlot();
    auto& added = containers.emplace(c.taskId, kj::mv(c)).first->second;
    fill(result.initCreated(), added);
    emit(Action::CREATE, added);
  });
}

kj::Promise<void> FakeRuntime::start(StartContext context) {
  return latency().then([this, context]() mutable {
    auto& c = find(context.getParams().getTaskId());
    if (c.state == ContainerState::RUNNING) return;
    c.state = ContainerState::RUNNING;
    c.pid = static_cast<int32_t>(1000 + nextNumber++ % 30000);
    c.exitCode = 0;
    c.error.clear();
    c.startedAt = nowNanos();
    c.finishedAt = 0;
    emit(Action::START, c);
    if (runMs > 0) {
      std::string taskId = c.taskId;
      c.running = timer.afterDelay(runMs * kj::MILLISECONDS)
                      .then([this, taskId]() {
                        KJ_IF_MAYBE (running, tryFind(taskId)) {
                          exitContainer(*running, exitCode, "");
                        }
                      })
                      .eagerlyEvaluate(nullptr);
    }
  });
}

kj::Promise<void> FakeRuntime::wait(WaitContext context) {
  return latency().then([this, context]() mutable -> kj::Promise<void> {
    auto& c = find(context.getParams().getTaskId());
    if (c.state == ContainerState::EXITED) {
      auto exit = context.getResults().initExit();
      exit.setExitCode(c.exitCode);
      exit.setError(c.error);
      return kj::READY_NOW;
    }
    auto paf = kj::newPromiseAndFulfiller<Exit>();
    c.waiters.push_back(kj::mv(paf.fulfiller));
    return paf.promise.then([context](Exit e) mutable {
      auto exit = context.getResults().initExit();
      exit.setExitCode(e.code);
      exit.setError(e.error);
    });
  });
}

kj::Promise<void> FakeRuntime::stop(StopContext context) {
  return latency().then([this, context]() mutable {
    auto& c = find(context.getParams().getTaskId());
    if (c.state != ContainerState::RUNNING) return;
    exitContainer(c, kStoppedExitCode, "");
    emit(Action::STOP, c);
  });
}

kj::Promise<void> FakeRuntime::remove(RemoveContext context) {
  return latency().then([this, context]() mutable {
    auto it = containers.find(std::string(context.getParams().getTaskId().cStr()));
    if (it == containers.end()) return;  // removing what is not there succeeds
    auto& c = it->second;
    if (c.state == ContainerState::RUNNING) {
      exitContainer(c, kKilledExitCode, "removed while running");
    }
    for (auto& waiter : c.waiters) waiter->reject(KJ_EXCEPTION(FAILED, "container removed"));
    emit(Action::DESTROY, c);
    containers.erase(it);
  });
}

kj::Promise<void> FakeRuntime::inspect(InspectContext context) {
  return latency().then([this, context]() mutable {
    auto taskId = context.getParams().getTaskId();
    auto info = context.getResults().initInfo();
    KJ_IF_MAYBE (c, tryFind(taskId)) {
      fill(info, *c);
    } else {
      info.setTaskId(taskId);
      info.setState(ContainerState::MISSING);
    }
  });
}

kj::Promise<void> FakeRuntime::list(ListContext context) {
  return latency().then([this, context]() mutable {
    auto out = context.getResults().initContainers(static_cast<unsigned>(containers.size()));
    unsigned i = 0;
    for (auto& [taskId, c] : containers) fill(out[i++], c);
  });
}

kj::Promise<void> FakeRuntime::logs(LogsContext context) {
  // Nothing runs, so there is no output; with follow, the stream ends when the container exits.
  return latency().then([this, context]() mutable -> kj::Promise<void> {
    auto params = context.getParams();
    auto& c = find(params.getTaskId());
    auto sink = params.getSink();
    kj::Promise<void> end = kj::READY_NOW;
    if (params.getOptions().getFollow() && c.state != ContainerState::EXITED) {
      auto paf = kj::newPromiseAndFulfiller<Exit>();
      c.waiters.push_back(kj::mv(paf.fulfiller));
      end = paf.promise.ignoreResult();
    }
    return end.then([sink]() mutable { return sink.doneRequest().send().ignoreResult(); });
  });
}

kj::Promise<void> FakeRuntime::events(EventsContext context) {
  uint64_t id = subscribers->nextId++;
  subscribers->sinks.emplace(id, context.getParams().getSink());
  context.getResults().setSubscription(kj::heap<Subscription>(kj::addRef(*subscribers), id));
  return kj::READY_NOW;
}

}  // namespace swarm::fakes
