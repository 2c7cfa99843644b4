// The Scheduler capability: reads the request, runs schedule() (scheduler.h) and writes the plan.
// No settings: anything in plugins.conf for it is refused by the SDK's default onConfigure().
#pragma once

#include <swarm/sdk.h>

namespace swarm::spread {

class SchedulerServer final : public sdk::PluginServer<schema::Scheduler> {
 public:
  kj::Promise<void> schedule(ScheduleContext context) override;
};

}  // namespace swarm::spread
