// runtime-docker: the Runtime interface (sdk/schema/runtime.capnp) on the Docker Engine API.
//
// Stateless by design: a task's container is found by its com.docker.swarm.task.id label on every
// call, so nothing is lost when the plugin restarts and list() is the recovery path. All I/O runs
// on the plugin's KJ event loop (DockerHttp), one connection per call.
#pragma once

#include "container_config.h"
#include "container_files.h"
#include "docker_http.h"

#include <swarm/sdk.h>

#include <boost/json/value.hpp>

#include <kj/async.h>

#include <map>
#include <set>
#include <string>

namespace swarm::docker {

enum class PullPolicy { missing, never };

struct RuntimeSettings {
  std::string socket = "/var/run/docker.sock";
  std::string apiVersion = "1.41";
  CreateOptions create;
  PullPolicy pull = PullPolicy::missing;
  std::string nodeId;  // when set, list() and events() see only this node's containers
  // Where tasks' secret and config files live on the host: a tmpfs, one directory per task.
  // /dev/shm is a tmpfs on every Linux (/run is not everywhere).
  std::string filesDir = "/dev/shm/swarm-kernel/task-files";
};

class DockerRuntime final : public sdk::PluginServer<schema::Runtime> {
 public:
  DockerRuntime();

  kj::Promise<void> describe(DescribeContext context) override;
  kj::Promise<void> create(CreateContext context) override;
  kj::Promise<void> start(StartContext context) override;
  kj::Promise<void> wait(WaitContext context) override;
  kj::Promise<void> stop(StopContext context) override;
  kj::Promise<void> remove(RemoveContext context) override;
  kj::Promise<void> inspect(InspectContext context) override;
  kj::Promise<void> list(ListContext context) override;
  kj::Promise<void> logs(LogsContext context) override;
  kj::Promise<void> events(EventsContext context) override;
  kj::Promise<void> health(HealthContext context) override;

 protected:
  kj::Promise<void> onConfigure(const sdk::Settings& s) override;

 private:
  // The label filter that selects this runtime's containers (and this node's, with node-id).
  std::string ownLabelFilter(std::string_view extraLabel = {}) const;
  // The container ID of the task's container, or nullptr when it has none: the one this plugin
  // saw last (create, list) without asking the daemon, else by its task label (the daemon scans
  // every container for that, so a call per task step would cost O(containers) each).
  kj::Promise<kj::Maybe<std::string>> findContainer(std::string taskId);
  // A container seen gone (404): the next lookup asks the daemon again.
  void forgetContainer(const std::string& taskId);
  kj::Promise<std::string> requireContainer(std::string taskId, kj::StringPtr call);
  // GET /containers/{id}/json; nullptr when the container is gone.
  kj::Promise<kj::Maybe<boost::json::value>> inspectContainer(std::string containerId);
  // Pulls `image` when it is not present; resolves with why it is unusable ("" when it is there).
  kj::Promise<std::string> ensureImage(std::string image);
  // Removes the file directories of tasks that have no container any more (any node's: the
  // directory is shared). Directories younger than a minute are kept: a create() may be between
  // writing them and creating its container.
  kj::Promise<void> sweepFiles();

  RuntimeSettings config;
  kj::Own<DockerHttp> docker;
  TaskFiles taskFiles{config.filesDir};
  // Task ID -> container ID, as last seen. A cache, never the truth: a miss or a 404 asks the
  // daemon, so the plugin still recovers from nothing but the daemon's containers.
  std::map<std::string, std::string> knownContainers;
  std::set<std::string> startedContainers;  // container IDs this plugin started (wait skips a look)
  kj::Promise<void> startupSweep = kj::READY_NOW;  // last: it uses the members above
};

}  // namespace swarm::docker
