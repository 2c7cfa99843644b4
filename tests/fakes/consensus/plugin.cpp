#include "src/fake_consensus.h"

SWARM_PLUGIN(SWARM_PLUGIN_KIND_CONSENSUS, "fake-consensus", "0.1.0", swarm::fakes::FakeConsensus)
