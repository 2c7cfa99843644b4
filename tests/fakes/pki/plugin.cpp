#include "src/fake_pki.h"

SWARM_PLUGIN(SWARM_PLUGIN_KIND_PKI, "fake-pki", "0.1.0", swarm::fakes::FakePki)
