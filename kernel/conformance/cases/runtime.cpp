// Runtime cases (sdk/schema/runtime.capnp): a task's container through its life, list() for
// recovery, idempotent remove, events.
//
// Task IDs carry the seed and the case, so a run against a real engine never meets containers of
// another run. Every case removes what it created, also when it fails. The image comes from
// --param image=... (default swarm-test/busybox:latest); the containers run `sleep 600` under an
// init, so they run until stopped and stop promptly on SIGTERM.
#include "conformance.h"

#include <swarm/schema/runtime.capnp.h>

#include <kj/debug.h>

#include <memory>
#include <string>
#include <vector>

namespace swarm::conformance {
namespace {

using schema::ContainerState;
using schema::RuntimeEvent;

constexpr auto kCallLimit = 30 * kj::SECONDS;  // create may pull an image
constexpr int64_t kGracePeriod = 2000000000;   // 2 s, in nanoseconds

const char* stateText(ContainerState s) {
  switch (s) {
    case ContainerState::MISSING:
      return "missing";
    case ContainerState::CREATED:
      return "created";
    case ContainerState::RUNNING:
      return "running";
    case ContainerState::PAUSED:
      return "paused";
    case ContainerState::RESTARTING:
      return "restarting";
    case ContainerState::EXITED:
      return "exited";
    case ContainerState::DEAD:
      return "dead";
  }
  return "?";
}

struct Info {
  std::string taskId, containerId, serviceId, nodeId;
  uint64_t slot = 0;
  ContainerState state = ContainerState::MISSING;
  int32_t exitCode = 0;
};

Info toInfo(schema::ContainerInfo::Reader r) {
  return {r.getTaskId(), r.getContainerId(), r.getServiceId(), r.getNodeId(),
          r.getSlot(),   r.getState(),       r.getExitCode()};
}

struct Event {
  RuntimeEvent::Action action;
  std::string taskId, containerId;
  int32_t exitCode;
};

// The case's end of events(): records everything, shared with the case so it outlives neither.
class EventRecorder final : public schema::EventSink::Server {
 public:
  explicit EventRecorder(std::shared_ptr<std::vector<Event>> seen) : seen(std::move(seen)) {}

  kj::Promise<void> event(EventContext context) override {
    auto e = context.getParams().getEvent();
    seen->push_back({e.getAction(), e.getTaskId(), e.getContainerId(), e.getExitCode()});
    return kj::READY_NOW;
  }

 private:
  std::shared_ptr<std::vector<Event>> seen;
};

// Drives the runtime for one case and remembers what it created, for cleanup.
class Driver {
 public:
  Driver(CaseContext& ctx, const char* tag)
      : ctx(ctx),
        runtime(ctx.as<schema::Runtime>()),
        prefix(kj::str("conf-", kj::hex(ctx.seed & 0xffffffffu), "-", tag).cStr()),
        serviceId(prefix + "-svc"),
        image(ctx.param("image", "swarm-test/busybox:latest")) {}

  std::string taskId(int n) const { return prefix + "-" + std::to_string(n); }

  // Sends create() for a task of this case's service; the result, as the runtime gave it.
  kj::Promise<capnp::Response<schema::Runtime::CreateResults>> sendCreate(const std::string& id,
                                                                          uint64_t slot,
                                                                          const std::string& img) {
    remember(id);
    auto request = runtime.createRequest();
    auto task = request.initTask();
    task.setId(id);
    task.setServiceId(serviceId);
    task.setSlot(slot);
    task.setNodeId("conformance-node");
    task.initAnnotations().setName(kj::str(serviceId, ".", slot));
    task.initServiceAnnotations().setName(serviceId);
    auto container = task.initSpec().getRuntime().initContainer();
    container.setImage(img);
    auto command = container.initCommand(2);
    command.set(0, "sleep");
    command.set(1, "600");
    container.setInit(schema::OptionalBool::YES);
    task.initStatus().setState(schema::TASK_STATE_ASSIGNED);
    task.setDesiredState(schema::TASK_STATE_RUNNING);
    request.setClusterId("conformance-cluster");
    return request.send();
  }

  Info create(const std::string& id, uint64_t slot = 1) {
    auto response = ctx.within(sendCreate(id, slot, image), kCallLimit, "create()");
    auto result = response.getResult();
    if (result.isFailed()) {
      fail(kj::str("create(", id, ") failed: ", result.getFailed().getMessage(),
                   " (pass a local image with --param image=... if the default is missing)"));
    }
    Info info = toInfo(result.getCreated());
    if (info.taskId != id) {
      fail(kj::str("create(", id, ") returned a container for task '", info.taskId, "'"));
    }
    if (info.containerId.empty()) fail(kj::str("create(", id, ") returned no container ID"));
    return info;
  }

  void start(const std::string& id) {
    auto request = runtime.startRequest();
    request.setTaskId(id);
    ctx.within(request.send().ignoreResult(), kCallLimit, "start()");
  }

  void stop(const std::string& id) {
    auto request = runtime.stopRequest();
    request.setTaskId(id);
    request.setGracePeriod(kGracePeriod);
    ctx.within(request.send().ignoreResult(), kCallLimit, "stop()");
  }

  void remove(const std::string& id) {
    auto request = runtime.removeRequest();
    request.setTaskId(id);
    ctx.within(request.send().ignoreResult(), kCallLimit, "remove()");
  }

  Info inspect(const std::string& id) {
    auto request = runtime.inspectRequest();
    request.setTaskId(id);
    return toInfo(ctx.within(request.send(), kCallLimit, "inspect()").getInfo());
  }

  std::vector<Info> list() {
    auto response = ctx.within(runtime.listRequest().send(), kCallLimit, "list()");
    std::vector<Info> result;
    for (auto c : response.getContainers()) result.push_back(toInfo(c));
    return result;
  }

  kj::Promise<capnp::Response<schema::Runtime::WaitResults>> sendWait(const std::string& id) {
    auto request = runtime.waitRequest();
    request.setTaskId(id);
    return request.send();
  }

  void expectState(const std::string& id, ContainerState want, const char* after) {
    Info info = inspect(id);
    if (info.state != want) {
      fail(kj::str("after ", after, ", inspect(", id, ") shows ", stateText(info.state),
                   ", expected ", stateText(want)));
    }
  }

  // Stops and removes everything this case created; errors are ignored (the container may be
  // gone already, or the runtime may be what failed).
  void cleanup() {
    for (auto& id : created) {
      kj::runCatchingExceptions([&]() {
        auto request = runtime.stopRequest();
        request.setTaskId(id);
        request.setGracePeriod(0);
        ctx.within(request.send().ignoreResult(), kCallLimit, "cleanup stop()");
      });
      kj::runCatchingExceptions([&]() { remove(id); });
    }
  }

  schema::Runtime::Client client() { return runtime; }

 private:
  void remember(const std::string& id) {
    for (auto& c : created) {
      if (c == id) return;
    }
    created.push_back(id);
  }

  CaseContext& ctx;
  schema::Runtime::Client runtime;
  std::string prefix;

 public:
  const std::string serviceId;
  const std::string image;

 private:
  std::vector<std::string> created;
};

// Runs `body` with a Driver and always cleans up after it.
template <typename Body>
void withDriver(CaseContext& ctx, const char* tag, Body&& body) {
  Driver driver(ctx, tag);
  kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&]() { body(driver); });
  driver.cleanup();
  KJ_IF_MAYBE (e, failure) {
    kj::throwFatalException(kj::mv(*e));
  }
}

const Info* findTask(const std::vector<Info>& list, const std::string& id) {
  const Info* found = nullptr;
  for (auto& c : list) {
    if (c.taskId == id) {
      if (found != nullptr) fail(kj::str("list() reports task ", id, " twice"));
      found = &c;
    }
  }
  return found;
}

void containerStates(CaseContext& ctx) {
  withDriver(ctx, "states", [&](Driver& rt) {
    auto id = rt.taskId(1);
    Info created = rt.create(id);
    if (created.state != ContainerState::CREATED) {
      fail(kj::str("create() reports state ", stateText(created.state), ", expected created"));
    }
    rt.expectState(id, ContainerState::CREATED, "create()");
    rt.start(id);
    rt.expectState(id, ContainerState::RUNNING, "start()");
    rt.stop(id);
    rt.expectState(id, ContainerState::EXITED, "stop()");
    rt.remove(id);
    rt.expectState(id, ContainerState::MISSING, "remove()");
  });
}

void waitResolvesWithExit(CaseContext& ctx) {
  withDriver(ctx, "wait", [&](Driver& rt) {
    auto id = rt.taskId(1);
    rt.create(id);
    rt.start(id);
    auto waiting = rt.sendWait(id);
    rt.stop(id);
    auto exit = ctx.within(kj::mv(waiting), kCallLimit, "wait() after stop()");
    Info info = rt.inspect(id);
    if (info.state != ContainerState::EXITED) {
      fail(kj::str("wait() resolved but inspect() shows ", stateText(info.state)));
    }
    if (exit.getExit().getExitCode() != info.exitCode) {
      fail(kj::str("wait() reports exit code ", exit.getExit().getExitCode(),
                   " but inspect() reports ", info.exitCode));
    }
    // Waiting on a container that has already exited resolves at once, the same way.
    auto again = ctx.within(rt.sendWait(id), kCallLimit, "wait() on an exited container");
    if (again.getExit().getExitCode() != info.exitCode) {
      fail(kj::str("a second wait() reports exit code ", again.getExit().getExitCode(),
                   ", the first ", exit.getExit().getExitCode()));
    }
  });
}

void listReportsContainers(CaseContext& ctx) {
  withDriver(ctx, "list", [&](Driver& rt) {
    std::vector<Info> made;
    for (int slot = 1; slot <= 3; ++slot) {
      made.push_back(rt.create(rt.taskId(slot), static_cast<uint64_t>(slot)));
    }
    rt.start(made[0].taskId);
    auto listed = rt.list();
    for (int slot = 1; slot <= 3; ++slot) {
      const Info& want = made[static_cast<size_t>(slot - 1)];
      const Info* got = findTask(listed, want.taskId);
      if (got == nullptr) fail(kj::str("list() omits the container of task ", want.taskId));
      if (got->containerId != want.containerId || got->serviceId != rt.serviceId ||
          got->slot != static_cast<uint64_t>(slot)) {
        fail(kj::str("list() reports task ", want.taskId, " as container '", got->containerId,
                     "', service '", got->serviceId, "', slot ", got->slot, "; expected '",
                     want.containerId, "', '", rt.serviceId, "', ", slot));
      }
    }
    rt.remove(made[1].taskId);
    listed = rt.list();
    if (findTask(listed, made[1].taskId) != nullptr) {
      fail(kj::str("list() still reports task ", made[1].taskId, " after remove()"));
    }
    for (size_t i : {size_t(0), size_t(2)}) {
      if (findTask(listed, made[i].taskId) == nullptr) {
        fail(kj::str("list() lost task ", made[i].taskId, " when another was removed"));
      }
    }
  });
}

void removeUnknownSucceeds(CaseContext& ctx) {
  withDriver(ctx, "rm", [&](Driver& rt) {
    auto never = rt.taskId(99);
    rt.remove(never);
    rt.expectState(never, ContainerState::MISSING, "remove() of an unknown task");
    auto id = rt.taskId(1);
    rt.create(id);
    rt.remove(id);
    rt.remove(id);  // twice: still fine
    rt.expectState(id, ContainerState::MISSING, "remove() twice");
  });
}

void inspectUnknownMissing(CaseContext& ctx) {
  withDriver(ctx, "missing", [&](Driver& rt) {
    Info info = rt.inspect(rt.taskId(7));
    if (info.state != ContainerState::MISSING) {
      fail(kj::str("inspect() of an unknown task shows ", stateText(info.state)));
    }
  });
}

void createTwiceSameContainer(CaseContext& ctx) {
  withDriver(ctx, "twice", [&](Driver& rt) {
    auto id = rt.taskId(1);
    Info first = rt.create(id);
    Info second = rt.create(id);
    if (first.containerId != second.containerId) {
      fail(kj::str("the second create() made container '", second.containerId, "' besides '",
                   first.containerId, "'"));
    }
    auto listed = rt.list();
    const Info* got = findTask(listed, id);  // fails on duplicates
    if (got == nullptr || got->containerId != first.containerId) {
      fail(kj::str("list() does not report the one container of task ", id));
    }
  });
}

void noImageRefused(CaseContext& ctx) {
  withDriver(ctx, "noimage", [&](Driver& rt) {
    auto id = rt.taskId(1);
    auto response = ctx.within(rt.sendCreate(id, 1, ""), kCallLimit, "create()");
    auto result = response.getResult();
    if (!result.isFailed()) fail(kj::str("create() of a task with no image succeeded"));
    if (result.getFailed().getMessage().size() == 0) {
      fail(kj::str("create() refused a task with no image without a message"));
    }
    rt.expectState(id, ContainerState::MISSING, "a refused create()");
  });
}

void eventsStartAndDie(CaseContext& ctx) {
  withDriver(ctx, "events", [&](Driver& rt) {
    auto seen = std::make_shared<std::vector<Event>>();
    auto request = rt.client().eventsRequest();
    request.setSink(kj::heap<EventRecorder>(seen));
    auto subscription = ctx.within(request.send(), kCallLimit, "events()").getSubscription();

    auto id = rt.taskId(1);
    Info info = rt.create(id);
    rt.start(id);
    rt.stop(id);
    int32_t exitCode = rt.inspect(id).exitCode;

    // Events may trail the calls; give them a moment.
    auto& timer = ctx.io.provider->getTimer();
    auto deadline = timer.now() + 10 * kj::SECONDS;
    int startAt = -1, dieAt = -1;
    for (;;) {
      startAt = dieAt = -1;
      for (size_t i = 0; i < seen->size(); ++i) {
        auto& e = (*seen)[i];
        if (e.taskId != id) continue;
        if (e.action == RuntimeEvent::Action::START && startAt < 0) startAt = int(i);
        if (e.action == RuntimeEvent::Action::DIE && dieAt < 0) dieAt = int(i);
      }
      if ((startAt >= 0 && dieAt >= 0) || timer.now() >= deadline) break;
      timer.afterDelay(10 * kj::MILLISECONDS).wait(ctx.waitScope);
    }
    if (startAt < 0) fail(kj::str("no start event for task ", id, " within 10 s"));
    if (dieAt < 0) fail(kj::str("no die event for task ", id, " within 10 s of stop()"));
    if (dieAt < startAt) fail(kj::str("the die event came before the start event"));
    for (int at : {startAt, dieAt}) {
      auto& e = (*seen)[static_cast<size_t>(at)];
      if (e.containerId != info.containerId) {
        fail(kj::str("an event for task ", id, " names container '", e.containerId,
                     "', create() returned '", info.containerId, "'"));
      }
    }
    auto& die = (*seen)[static_cast<size_t>(dieAt)];
    if (die.exitCode != exitCode) {
      fail(kj::str("the die event reports exit code ", die.exitCode, ", inspect() ", exitCode));
    }
  });
}

void describeReportsNode(CaseContext& ctx) {
  auto response =
      ctx.within(ctx.as<schema::Runtime>().describeRequest().send(), kCallLimit, "describe()");
  auto d = response.getDescription();
  if (d.getResources().getMemoryBytes() <= 0 || d.getResources().getNanoCpus() <= 0) {
    fail(kj::str("describe() reports ", d.getResources().getMemoryBytes(), " bytes and ",
                 d.getResources().getNanoCpus(),
                 " nanoCPUs; the scheduler needs the node's real totals"));
  }
  if (d.getPlatform().getOs().size() == 0 || d.getPlatform().getArchitecture().size() == 0) {
    fail(kj::str("describe() reports no platform OS or architecture"));
  }
  if (d.getHostname().size() == 0) fail(kj::str("describe() reports no hostname"));
}

}  // namespace

std::vector<Case> runtimeCases() {
  return {
      {"runtime: create, start, stop and remove move a container through its states",
       containerStates},
      {"runtime: wait resolves with the exit status once the container stops",
       waitResolvesWithExit},
      {"runtime: list reports created containers with task, service and slot, not removed ones",
       listReportsContainers},
      {"runtime: removing a task that has no container succeeds", removeUnknownSucceeds},
      {"runtime: inspect of a task that has no container reports missing", inspectUnknownMissing},
      {"runtime: creating a task twice returns the same container", createTwiceSameContainer},
      {"runtime: a task without an image is refused with a task error", noImageRefused},
      {"runtime: events delivers start and die for a started and stopped task", eventsStartAndDie},
      {"runtime: describe reports the node's resources, platform and hostname",
       describeReportsNode},
  };
}

}  // namespace swarm::conformance
