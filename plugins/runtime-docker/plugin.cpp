#include "src/docker_runtime.h"

SWARM_PLUGIN(SWARM_PLUGIN_KIND_RUNTIME, "runtime-docker", "0.1.0", swarm::docker::DockerRuntime)
