// Which nodes a service may run on, as the global orchestrators decide it (Swarm's
// constraint.NodeMatches): every placement constraint must hold. The constraint language is
// parsed by scheduler-spread's core (spread::parseConstraint), so both read it alike; the match
// against a store Node is here. The scheduler still applies its full pipeline (resources,
// platform, ports) to what the orchestrators create.
#pragma once

#include <swarm/schema/common.capnp.h>

namespace swarm::orchestrator {

bool nodeMatchesConstraints(schema::Node::Reader node, capnp::List<capnp::Text>::Reader constraints);
// Swarm's rules: "key==value" / "key!=value", values compared ignoring case, a missing attribute
// is "", a node.ip value is an address or CIDR; a malformed constraint or an unknown key never
// matches (so a global service with one runs nowhere, and the scheduler explains why for a
// replicated one).

}  // namespace swarm::orchestrator
