#include "src/fake_transport.h"

SWARM_PLUGIN(SWARM_PLUGIN_KIND_TRANSPORT, "fake-transport", "0.1.0", swarm::fakes::FakeTransport)
