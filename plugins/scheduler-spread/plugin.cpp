#include "src/scheduler_server.h"

SWARM_PLUGIN(SWARM_PLUGIN_KIND_SCHEDULER, "scheduler-spread", "0.1.0", swarm::spread::SchedulerServer)
