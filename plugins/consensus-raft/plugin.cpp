#include "src/shell/node.h"

SWARM_PLUGIN(SWARM_PLUGIN_KIND_CONSENSUS, "consensus-raft", "0.1.0", swarm::raft::shell::Node)
