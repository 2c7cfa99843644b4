// A scheduler plugin that misbehaves on purpose, as its settings say:
//   fail-configure = <message>   configure() fails with that message (plugin init failure)
//   crash-after-ms = N           N ms after configure(), abort() the process (run it out of
//                                process: in process this would take the kernel down with it)
//   hang-on-shutdown = true      shutdown() never resolves and the plugin ignores disconnects
// (bad-stops-serving covers an in-process plugin that stops serving.)
#include <swarm/sdk.h>

#include <cstdlib>
#include <thread>

namespace {

class MisbehavingScheduler final : public swarm::sdk::PluginServer<swarm::schema::Scheduler> {
 public:
  kj::Promise<void> schedule(ScheduleContext context) override {
    auto tasks = context.getParams().getTasks();
    auto unplaced = context.getResults().initPlan().initUnplaced(tasks.size());
    for (size_t i = 0; i < tasks.size(); ++i) {
      unplaced[i].setTaskId(tasks[i].getId());
      unplaced[i].setReason("misbehaving test scheduler places nothing");
    }
    return kj::READY_NOW;
  }

  kj::Promise<void> shutdown(ShutdownContext) override {
    if (settings.getBool("hang-on-shutdown", false)) {
      // Block the plugin's thread: neither the reply nor the disconnect is ever handled.
      for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
    }
    return kj::READY_NOW;
  }

 protected:
  kj::Promise<void> onConfigure(const swarm::sdk::Settings& s) override {
    s.requireOnly({"fail-configure", "crash-after-ms", "hang-on-shutdown"});
    KJ_IF_MAYBE(message, s.get("fail-configure")) { swarm::sdk::fail(*message); }
    int64_t crashAfter = s.getInt("crash-after-ms", -1, -1, 3600000);
    if (crashAfter >= 0) {
      std::thread([crashAfter]() {
        std::this_thread::sleep_for(std::chrono::milliseconds(crashAfter));
        std::abort();
      }).detach();
    }
    return kj::READY_NOW;
  }
};

}  // namespace

SWARM_PLUGIN(SWARM_PLUGIN_KIND_SCHEDULER, "bad-misbehaving-scheduler", "0.0.1",
             MisbehavingScheduler)
