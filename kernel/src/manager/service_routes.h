// The Docker Engine API's service endpoints on the manager (/services*) and the task listing
// that `docker service ps`, `node ps` and the CLI's progress monitor read (/tasks*), with
// SwarmKit's control-API rules (sk:manager/controlapi/service.go, task.go) and the engine's
// filters (moby daemon/cluster/services.go, tasks.go, filters.go). Handlers run on the KJ thread
// against the SwarmNode's store; the orchestrators act on what they write.
//
// The pure parts (filters, ServiceStatus, up-to-date) take a store so tests can fill one directly.
#pragma once

#include "http/message.h"
#include "http/server.h"
#include "store/store.h"
#include "swarm_node.h"

#include <cstdint>
#include <vector>

namespace swarm::kernel {

// GET /services, /services/{id} (insertDefaults), /services/{id}/logs (501 for now);
// POST /services/create, /services/{id}/update; DELETE /services/{id}; GET /tasks, /tasks/{id}.
void addServiceRoutes(http::Server& server, SwarmNode& node);

// Docker's ServiceStatus (GET /services?status=true), counted as SwarmKit's ListServiceStatuses:
// running = tasks observed RUNNING; desired = Replicas (replicated), MaxConcurrent (replicated
// job), or for global modes the tasks desired RUNNING plus those desired COMPLETE and not yet
// complete; completed = COMPLETE tasks (jobs only). Jobs count only their current JobIteration.
struct ServiceStatus {
  uint64_t runningTasks = 0;
  uint64_t desiredTasks = 0;
  uint64_t completedTasks = 0;
};
ServiceStatus serviceStatus(const store::Store& store, const store::ObjectRef& service);

// The negation of SwarmKit's IsTaskDirty: the task runs the service's current spec, either by
// SpecVersion or because its task spec equals the service's (e.g. after a rollback to it). The
// placement-only exception (a constraint change the task's node still satisfies) is not applied:
// the kernel has no constraint evaluator, so such a task counts as dirty.
bool taskUpToDate(store::schema::Service::Reader service, schema::Task::Reader task);

// GET /services filters: id (prefix), name (prefix), label (key or key=value, all must match),
// mode (replicated, global, replicated-job, global-job), runtime. Throws http::Error 400 for an
// unknown filter.
void requireServiceFilters(const http::Filters& filters);
bool serviceMatches(const http::Filters& filters, const store::ObjectRef& service);

// GET /tasks: the tasks matching `filters`, in ID order. service and node values are resolved
// like Docker (ID, name, unique ID prefix; 404 when unknown, 400 when ambiguous); id and name
// (the task's name, Docker's naming.Task) are prefixes; label matches the service's labels;
// desired-state takes Docker's state names (400 for others); `_up-to-date` (any value) keeps the
// tasks taskUpToDate() accepts; runtime matches "container". Throws http::Error.
std::vector<store::ObjectRef> findTasks(const store::Store& store, const http::Filters& filters);

// Docker's task name: its Annotations name, else <service>.<slot, or node ID>.<task ID>.
std::string taskName(schema::Task::Reader task);

// SwarmKit's defaults.InterpolateService (GET /services/{id}?insertDefaults=true): the fields a
// spec left unset get the values the swarm applies (restart any/5 s, update and rollback
// parallelism 1/monitor 5 s/pause/stop-first, stop grace period 10 s, empty Resources, Placement
// and DNSConfig). Jobs get no UpdateConfig/RollbackConfig: they may not carry one.
void insertServiceDefaults(schema::ServiceSpec::Builder spec);

}  // namespace swarm::kernel
