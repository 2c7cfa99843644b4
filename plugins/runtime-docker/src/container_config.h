// Translation between the swarm schema and the Docker Engine API's JSON (API 1.41), with no I/O:
// the create body for a task, inspect/event/info bodies back into schema structs. Everything here
// is a pure function, tested on its own in tests/container_config-test.cpp.
#pragma once

#include <swarm/schema/runtime.capnp.h>

#include <boost/json/value.hpp>

#include <kj/common.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace swarm::docker {

// Labels on every container this runtime creates. The com.docker.swarm.* ones are Swarm's own
// (moby daemon/cluster/executor/container/container.go); the rest tie the container to the
// cluster, the slot and this runtime, so list() finds exactly ours after a restart.
namespace label {
constexpr const char* kTask = "com.docker.swarm.task";
constexpr const char* kTaskId = "com.docker.swarm.task.id";
constexpr const char* kTaskName = "com.docker.swarm.task.name";
constexpr const char* kNodeId = "com.docker.swarm.node.id";
constexpr const char* kServiceId = "com.docker.swarm.service.id";
constexpr const char* kServiceName = "com.docker.swarm.service.name";
constexpr const char* kSlot = "io.swarm-kernel.task.slot";
constexpr const char* kClusterId = "io.swarm-kernel.cluster.id";
constexpr const char* kRuntime = "io.swarm-kernel.runtime";
constexpr const char* kRuntimeValue = "runtime-docker";
}  // namespace label

enum class NetworkMode { none, host };

struct CreateOptions {
  NetworkMode defaultNetwork = NetworkMode::none;
};

// A create body, or why the task cannot become a container (an invalidSpec TaskError).
struct CreatePlan {
  std::string error;  // non-empty: the spec is refused with this message
  std::string name;   // <service>.<slot or node>.<task>, as Swarm names it
  std::string body;   // JSON for POST /containers/create
};

// Swarm's container name: <service name>.<slot>.<task ID>; a global task (slot 0) uses the node ID.
std::string containerName(schema::Task::Reader task);

CreatePlan planCreate(schema::Task::Reader task, std::string_view clusterId,
                      const CreateOptions& options);

// Splits an image reference into fromImage and tag for POST /images/create, so a reference without
// a tag pulls :latest only (an empty tag would pull every tag). A digest stays in fromImage.
struct ImagePull {
  std::string fromImage;
  std::string tag;
};
ImagePull imagePull(std::string_view reference);

// RFC 3339 with nanoseconds (Docker's times) -> ns since the epoch; 0 for Docker's zero time
// (0001-01-01...) or text that is not a time.
int64_t parseTime(std::string_view text);

schema::ContainerState containerState(std::string_view dockerStatus);
schema::HealthState healthState(std::string_view dockerHealth);

// Fills `info` from GET /containers/{id}/json.
void readInspect(const boost::json::value& inspect, schema::ContainerInfo::Builder info);

// One event from GET /events, as the runtime reports it; nullptr for events it does not report.
struct Event {
  schema::RuntimeEvent::Action action;
  std::string taskId, containerId;
  int64_t timeNanos = 0;
  int32_t exitCode = 0;
  schema::HealthState health = schema::HealthState::NONE;
};
kj::Maybe<Event> readEvent(const boost::json::value& event);

// Fills `description` from GET /info.
void readInfo(const boost::json::value& info, schema::RuntimeDescription::Builder description);

// Small JSON accessors that tolerate missing members (Docker omits empty ones).
const boost::json::value* member(const boost::json::value& v, std::string_view key);
std::string text(const boost::json::value& v, std::string_view key);
int64_t integer(const boost::json::value& v, std::string_view key);

}  // namespace swarm::docker
