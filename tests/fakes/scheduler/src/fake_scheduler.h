// fake-scheduler: a small scheduler that is correct for what it covers (see README.md).
#pragma once

#include <swarm/sdk.h>

namespace swarm::fakes {

class FakeScheduler final : public sdk::PluginServer<schema::Scheduler> {
 public:
  kj::Promise<void> schedule(ScheduleContext context) override;
};

}  // namespace swarm::fakes
