#include "src/fake_scheduler.h"

SWARM_PLUGIN(SWARM_PLUGIN_KIND_SCHEDULER, "fake-scheduler", "0.1.0", swarm::fakes::FakeScheduler)
