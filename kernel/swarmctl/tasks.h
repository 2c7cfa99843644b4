// Task tables (service ps, node ps) and the convergence display of service create/update/scale/
// rollback.
#pragma once

#include "cli.h"

#include <boost/json/array.hpp>

#include <string>

namespace swarm::ctl {

// docker's ps table: ID, NAME (service.slot, history rows as " \_ "), IMAGE, NODE, DESIRED STATE,
// CURRENT STATE ("Running 2 minutes ago"), ERROR, PORTS. Names come from GET /services/{id} and
// GET /nodes/{id}, each fetched once.
void printTasks(Context& context, boost::json::array tasks, bool quiet, bool noTrunc);

// Polls GET /services/{id} and its up-to-date tasks every 200 ms until the service converged,
// printing per-slot (or per-node) progress and "verify: Service converged". On a terminal the
// lines are redrawn in place; otherwise each change is printed once as a plain line. Throws
// CliError when the update pauses or rolls back.
void waitForService(Context& context, const std::string& serviceId, bool rollback);

}  // namespace swarm::ctl
