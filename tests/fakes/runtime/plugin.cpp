#include "src/fake_runtime.h"

SWARM_PLUGIN(SWARM_PLUGIN_KIND_RUNTIME, "fake-runtime", "0.1.0", swarm::fakes::FakeRuntime)
