// The Docker Engine API's system and swarm endpoints on the manager's HTTP server: /_ping,
// /version, /info, /swarm*, /nodes*, /secrets*, /configs*; the services and tasks are in
// service_routes.h. Handlers run on the KJ thread against the SwarmNode and its store.
#pragma once

#include "http/server.h"
#include "swarm_node.h"

#include <string>

namespace swarm::kernel {

struct ApiInfo {
  std::string version;  // swarm-kernel's version
  std::string hostname;
  std::string stateDir;
};

void addApiRoutes(http::Server& server, SwarmNode& node, ApiInfo info);

}  // namespace swarm::kernel
