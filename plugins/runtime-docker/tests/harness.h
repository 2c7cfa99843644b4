// runtime-docker.so against a real dockerd, through the kernel's PluginInstance (in process): a
// task builder, a client with one method per Runtime call, and cleanup of everything a test made.
//
// Every container a test creates carries the label io.swarm-kernel.test-run=<run>, so cleanup
// removes exactly those and never touches anyone else's containers on a shared daemon.
#pragma once

#include "plugin_host.h"

#include <swarm/schema/runtime.capnp.h>

#include <capnp/message.h>
#include <kj/async-io.h>
#include <kj/debug.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace swarm::docker::test {

constexpr const char* kImage = "swarm-test/busybox:latest";
constexpr const char* kRunLabel = "io.swarm-kernel.test-run";
// Debian's CLI, matching its dockerd (another docker on PATH may be a different version).
constexpr const char* kDocker = "/usr/bin/docker";

// A unique-per-process tag for names and the cleanup label.
const std::string& runId();

// Runs a shell command; returns its exit status and standard output (stderr goes to the log).
std::pair<int, std::string> shell(const std::string& command);

struct TaskDef {
  std::string id;
  std::string service = "rdt-svc";
  uint64_t slot = 1;
  std::string node = "rdt-node";
  std::string image = kImage;
  std::vector<std::string> command{"sleep", "600"};
  std::vector<std::string> env;
  std::vector<std::pair<std::string, std::string>> labels;
  bool init = true;
  std::string user, dir, hostname;
  std::vector<std::string> healthcheck;  // Docker's Test form; empty: none
  int64_t healthInterval = 0;
  struct File {
    std::string id, name, target, data;
    uint32_t mode = 0444;
    bool supplied = true;  // false: the spec references it but create() gets no data for it
    std::string uid{}, gid{};  // numeric; empty: root
  };
  std::vector<File> secrets, configs;
  struct MountDef {
    schema::Mount::Type type;
    std::string source, target;
    bool readOnly = false;
  };
  std::vector<MountDef> mounts;
  std::vector<std::string> networks;
  int64_t memoryLimit = 0;
};

struct Info {
  std::string taskId, containerId, serviceId, nodeId, image, error;
  uint64_t slot = 0;
  schema::ContainerState state = schema::ContainerState::MISSING;
  schema::HealthState health = schema::HealthState::NONE;
  int32_t pid = 0, exitCode = 0;
  int64_t startedAt = 0, finishedAt = 0;
};

struct CreateOutcome {
  bool ok = false;
  Info info;
  schema::TaskError::Kind errorKind = schema::TaskError::Kind::OTHER;
  std::string message;
};

struct LogLineSeen {
  bool fromStderr;
  int64_t timestamp;
  std::string data;
};

struct EventSeen {
  schema::RuntimeEvent::Action action;
  std::string taskId, containerId;
  int32_t exitCode;
  schema::HealthState health;
};

class Runtime {
 public:
  explicit Runtime(std::vector<std::pair<std::string, std::string>> settings = {});
  ~Runtime() noexcept(false);

  std::string taskId(const std::string& tag);  // unique per run and call

  CreateOutcome create(const TaskDef& task);
  Info createOk(const TaskDef& task);  // fails the test on a TaskError
  void start(const std::string& taskId);
  kj::Promise<capnp::Response<schema::Runtime::WaitResults>> sendWait(const std::string& taskId);
  void stop(const std::string& taskId, int64_t gracePeriod);
  void remove(const std::string& taskId);
  Info inspect(const std::string& taskId);
  std::vector<Info> list();
  std::vector<LogLineSeen> logs(const std::string& taskId, bool follow);
  schema::RuntimeDescription::Reader describe(capnp::MallocMessageBuilder& into);
  schema::Health::Status health(std::string* message = nullptr);

  // Subscribes; events land in the returned vector as the loop runs.
  std::pair<schema::Handle::Client, std::shared_ptr<std::vector<EventSeen>>> subscribe();

  // Runs the event loop until `done()` or `seconds` pass; returns done().
  template <typename Done>
  bool waitFor(Done&& done, int seconds = 30) {
    auto& timer = io.provider->getTimer();
    auto deadline = timer.now() + seconds * kj::SECONDS;
    while (!done()) {
      if (timer.now() >= deadline) return false;
      timer.afterDelay(50 * kj::MILLISECONDS).wait(io.waitScope);
    }
    return true;
  }

  // Waits for a promise, failing after 60 s rather than hanging the test.
  template <typename T>
  T await(kj::Promise<T>&& promise, const char* what);

  // Restarts the plugin instance (the same settings): a fresh process state, as after a crash.
  void restart();

  kj::AsyncIoContext io;

 private:
  void startInstance();

  std::vector<std::pair<std::string, std::string>> settings;
  kj::Own<kernel::PluginInstance> instance;
  schema::Runtime::Client runtime;
  std::vector<std::string> created;
  unsigned nextTask = 0;
};

template <typename T>
T Runtime::await(kj::Promise<T>&& promise, const char* what) {
  return promise
      .exclusiveJoin(io.provider->getTimer().afterDelay(60 * kj::SECONDS).then([what]() -> T {
        KJ_FAIL_REQUIRE("no answer within 60 s", what);
      }))
      .wait(io.waitScope);
}

// Removes every container labelled with this run (a safety net after each test).
void removeRunContainers();

// The files-dir a Runtime gets unless its settings name one: on /dev/shm (a tmpfs), per run, as the
// default under /run need not be a tmpfs on a test machine.
std::string testFilesDir();

}  // namespace swarm::docker::test
