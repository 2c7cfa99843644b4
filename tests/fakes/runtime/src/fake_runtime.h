// fake-runtime: containers that exist only in memory (see README.md). Nothing is executed; a
// "container" runs until stopped, or for run-ms, on the plugin's KJ timer.
#pragma once

#include <swarm/sdk.h>

#include <kj/async.h>
#include <kj/refcount.h>
#include <kj/timer.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace swarm::fakes {

class FakeRuntime final : public sdk::PluginServer<schema::Runtime>,
                          private kj::TaskSet::ErrorHandler {
 public:
  FakeRuntime();

  kj::Promise<void> describe(DescribeContext context) override;
  kj::Promise<void> create(CreateContext context) override;
  kj::Promise<void> start(StartContext context) override;
  kj::Promise<void> wait(WaitContext context) override;
  kj::Promise<void> stop(StopContext context) override;
  kj::Promise<void> remove(RemoveContext context) override;
  kj::Promise<void> inspect(InspectContext context) override;
  kj::Promise<void> list(ListContext context) override;
  kj::Promise<void> logs(LogsContext context) override;
  kj::Promise<void> events(EventsContext context) override;

  // The event sinks of events() callers, shared with their subscription handles so a handle can
  // unsubscribe whichever of the two goes first.
  struct Subscribers : public kj::Refcounted {
    std::map<uint64_t, schema::EventSink::Client> sinks;
    uint64_t nextId = 1;
  };

 protected:
  kj::Promise<void> onConfigure(const sdk::Settings& s) override;

 private:
  struct Exit {
    int32_t code;
    std::string error;
  };

  struct Container {
    std::string taskId, containerId, serviceId, nodeId, image;
    uint64_t slot = 0;
    schema::ContainerState state = schema::ContainerState::CREATED;
    int32_t pid = 0;
    int32_t exitCode = 0;
    std::string error;
    int64_t startedAt = 0, finishedAt = 0;
    std::vector<kj::Own<kj::PromiseFulfiller<Exit>>> waiters;
    kj::Maybe<kj::Promise<void>> running;  // the run-ms timer while it runs
  };

  void taskFailed(kj::Exception&& exception) override;

  // Every operation waits latency-ms first, as a real engine would take a while.
  kj::Promise<void> latency();
  Container& find(kj::StringPtr taskId);  // throws "no container for task ..."
  kj::Maybe<Container&> tryFind(kj::StringPtr taskId);
  void exitContainer(Container& c, int32_t code, kj::StringPtr error);
  void emit(schema::RuntimeEvent::Action action, const Container& c);
  static void fill(schema::ContainerInfo::Builder info, const Container& c);

  kj::Timer& timer;
  uint64_t latencyMs = 0;
  uint64_t failCreateEvery = 0;
  int32_t exitCode = 0;
  uint64_t runMs = 0;

  uint64_t creates = 0;                         // new containers made, for fail-create-every
  uint64_t nextNumber = 1;                      // container IDs and pids
  std::map<std::string, Container> containers;  // by task ID
  kj::Own<Subscribers> subscribers;
  kj::TaskSet tasks;  // event deliveries
};

}  // namespace swarm::fakes
