// GCC 12 reports a false -Wmaybe-uninitialized inside kj::_::ExceptionOr<Response>.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "api_routes.h"
#include "route_helpers.h"
#include "service_routes.h"

#include "api/decode.h"
#include "api/encode.h"
#include "api/errors.h"
#include "api/text.h"
#include "keys.h"
#include "logging.h"
#include "store/object_id.h"
#include "store/transaction.h"

#include <swarm/schema/pki.capnp.h>

#include <sys/utsname.h>

#include <algorithm>
#include <cctype>

namespace swarm::kernel {
namespace {

namespace json = boost::json;
using http::Error;
using http::Request;
using http::Response;
using store::Kind;
using store::ObjectRef;

constexpr int64_t kDefaultHeartbeatPeriod = 1'000'000'000;

using routes::freshRead;
using routes::guarded;
using routes::labelsMatch;
using routes::prefixMatches;
using routes::str;

ObjectRef clusterOf(SwarmNode& node) {
  auto clusters = node.store().list(Kind::cluster);
  if (clusters.empty()) throw Error(503, "the swarm's cluster object is not replicated here yet; retry");
  return clusters.front();
}

// As resolve(), plus "self" for this node (the docker CLI sends it for node update).
ObjectRef resolveNode(SwarmNode& node, const std::string& text) {
  return routes::resolve(node.store(), Kind::node, text == "self" ? node.nodeId() : text);
}

// Node JSON with what this manager knows now: who leads.
json::value nodeJson(SwarmNode& node, const ObjectRef& object) {
  auto reader = object->reader().getNode();
  json::value value = api::encodeNode(reader);
  auto& o = value.as_object();
  if (auto* manager = o.if_contains("ManagerStatus")) {
    const ConsensusView& view = node.replication().view();
    bool leader = reader.getManagerStatus().isManager() &&
                  reader.getManagerStatus().getManager().getRaftId() == view.leaderId &&
                  view.leaderId != 0;
    if (leader) {
      manager->as_object()["Leader"] = true;
    } else {
      manager->as_object().erase("Leader");
    }
  }
  return value;
}

// ---- /_ping, /version, /info ----------------------------------------------------------------

std::string swarmHeader(SwarmNode& node) {
  switch (node.state()) {
    case LocalState::active: return node.isManager() ? "active/manager" : "active/worker";
    case LocalState::locked: return "locked";
    case LocalState::pending: return "pending";
    case LocalState::error: return "error";
    case LocalState::inactive: return "inactive";
  }
  return "inactive";
}

std::string kernelVersion() {
  struct utsname u {};
  return uname(&u) == 0 ? u.release : "";
}

std::string goArch() {
  struct utsname u {};
  if (uname(&u) != 0) return "";
  std::string m = u.machine;
  if (m == "x86_64") return "amd64";
  if (m == "aarch64") return "arm64";
  return m;
}

json::value versionJson(const ApiInfo& info, const http::ServerOptions& options) {
  json::object component{{"Name", "Engine"},
                         {"Version", info.version},
                         {"Details", json::object{{"ApiVersion", options.maxApiVersion.toString()},
                                                  {"MinAPIVersion", options.minApiVersion.toString()},
                                                  {"Os", "linux"},
                                                  {"Arch", goArch()},
                                                  {"KernelVersion", kernelVersion()}}}};
  return json::object{{"Platform", json::object{{"Name", "swarm-kernel"}}},
                      {"Components", json::array{component}},
                      {"Version", info.version},
                      {"ApiVersion", options.maxApiVersion.toString()},
                      {"MinAPIVersion", options.minApiVersion.toString()},
                      {"GitCommit", ""},
                      {"GoVersion", ""},
                      {"Os", "linux"},
                      {"Arch", goArch()},
                      {"KernelVersion", kernelVersion()}};
}

json::value infoJson(SwarmNode& node, const ApiInfo& info) {
  json::object swarm{{"NodeID", node.nodeId()},
                     {"NodeAddr", node.advertiseAddr().substr(0, node.advertiseAddr().rfind(':'))},
                     {"LocalNodeState", localStateName(node.state())},
                     {"ControlAvailable", node.isManager()},
                     {"Error", ""},
                     {"RemoteManagers", nullptr}};
  if (node.isManager()) {
    json::array remotes;
    size_t managers = 0;
    for (const auto& n : node.store().list(Kind::node)) {
      auto reader = n->reader().getNode();
      if (!reader.getManagerStatus().isManager()) continue;
      ++managers;
      remotes.push_back(json::object{{"NodeID", n->id()},
                                     {"Addr", str(reader.getManagerStatus().getManager().getAddr())}});
    }
    swarm["RemoteManagers"] = std::move(remotes);
    swarm["Nodes"] = node.store().size(Kind::node);
    swarm["Managers"] = managers;
    if (!node.store().list(Kind::cluster).empty()) {
      swarm["Cluster"] = api::encodeClusterInfo(clusterOf(node)->reader().getCluster());
    }
  }
  return json::object{{"ID", node.nodeId()},
                      {"Containers", 0},
                      {"ContainersRunning", 0},
                      {"ContainersPaused", 0},
                      {"ContainersStopped", 0},
                      {"Images", 0},
                      {"Driver", ""},
                      {"Name", info.hostname},
                      {"ServerVersion", info.version},
                      {"OperatingSystem", "swarm-kernel"},
                      {"OSType", "linux"},
                      {"Architecture", goArch()},
                      {"KernelVersion", kernelVersion()},
                      {"DockerRootDir", info.stateDir},
                      {"Swarm", std::move(swarm)},
                      {"Labels", json::array{}},
                      {"ExperimentalBuild", false}};
}

// ---- /swarm ---------------------------------------------------------------------------------

kj::Promise<Response> swarmUpdate(SwarmNode& node, Request request) {
  node.requireManager();
  auto version = request.query.unsignedInteger("version");
  if (!version) throw Error(400, "invalid swarm version '': give ?version=<Version.Index of GET /swarm>");
  bool rotateWorker = request.query.flag("rotateWorkerToken");
  bool rotateManager = request.query.flag("rotateManagerToken");
  bool rotateUnlock = request.query.flag("rotateManagerUnlockKey");
  ObjectRef current = clusterOf(node);
  auto body = request.json();
  auto message = kj::heap<capnp::MallocMessageBuilder>();
  auto object = message->initRoot<store::schema::Object>();
  object.setCluster(current->reader().getCluster());
  auto cluster = object.getCluster();
  auto ca = api::decodeSwarmSpec(body, cluster.getSpec());
  bool rotateRoot = !ca.signingCaCert.empty() ||
                    (ca.forceRotate != 0 && ca.forceRotate != cluster.getLastForcedRotation());
  if (rotateRoot && ca.forceRotate != 0) cluster.setLastForcedRotation(ca.forceRotate);
  // Autolock on, off, or a new key: every manager re-seals its keys when the change applies.
  bool autolock = cluster.getSpec().getAutoLockManagers();
  bool wasOn = current->reader().getCluster().getSpec().getAutoLockManagers();
  if (autolock && (!wasOn || rotateUnlock)) {
    SecretKey key = randomKey();
    cluster.setUnlockKeySealed(kj::arrayPtr(key.data(), key.size()));
  } else if (!autolock) {
    cluster.setUnlockKeySealed(nullptr);
  }
  kj::Promise<void> tokens = kj::READY_NOW;
  if (rotateWorker || rotateManager) {
    auto pki = node.pki();
    auto rotate = pki.makeJoinTokensRequest();
    auto keep = rotate.initRotate();
    auto old = cluster.getJoinTokens();
    if (!rotateWorker) keep.setWorker(old.getWorker());
    if (!rotateManager) keep.setManager(old.getManager());
    tokens = rotate.send().then([cluster](capnp::Response<schema::Pki::MakeJoinTokensResults>&& r) mutable {
      cluster.setJoinTokens(r.getTokens());
    });
  }
  uint64_t expected = *version;
  if (rotateRoot) {
    // The rotation re-digests the join tokens itself (and rotates secrets the query asked for
    // first).
    return tokens.then([&node, message = kj::mv(message), ca, expected]() mutable {
                   return node.rotateRoot(kj::mv(message), ca, expected);
                 })
        .then([]() { return Response::empty(200); });
  }
  return tokens
      .then([&node, cluster, expected]() {
        store::TransactionBuilder tx;
        capnp::MallocMessageBuilder copy;
        copy.initRoot<store::schema::Object>().setCluster(cluster.asReader());
        tx.update(copy.getRoot<store::schema::Object>().asReader(), expected);
        return node.write(kj::mv(tx));
      })
      .then([](uint64_t) { return Response::empty(200); })
      .attach(kj::mv(message));
}

// ---- nodes ----------------------------------------------------------------------------------

bool nodeMatches(const http::Filters& f, const ObjectRef& object) {
  auto n = object->reader().getNode();
  if (!prefixMatches(f, "id", object->id())) return false;
  if (f.has("name")) {
    std::string hostname = str(n.getDescription().getHostname());
    if (!prefixMatches(f, "name", object->name()) && !prefixMatches(f, "name", hostname)) return false;
  }
  if (f.has("role")) {
    std::string role = n.getSpec().getDesiredRole() == schema::NodeRole::MANAGER ? "manager" : "worker";
    auto roles = f.values("role");
    if (std::find(roles.begin(), roles.end(), role) == roles.end()) return false;
  }
  if (f.has("membership")) {
    std::string membership =
        n.getSpec().getMembership() == schema::NodeMembership::ACCEPTED ? "accepted" : "pending";
    auto wanted = f.values("membership");
    if (std::find(wanted.begin(), wanted.end(), membership) == wanted.end()) return false;
  }
  if (!labelsMatch(f, "label", n.getDescription().getEngine().getLabels())) return false;
  if (!labelsMatch(f, "node.label", n.getSpec().getAnnotations().getLabels())) return false;
  return true;
}

size_t managerCount(SwarmNode& node) {
  size_t count = 0;
  for (const auto& n : node.store().list(Kind::node)) {
    if (n->reader().getNode().getSpec().getDesiredRole() == schema::NodeRole::MANAGER) ++count;
  }
  return count;
}

// Swarm's CanRemoveMember: the voters left, without the one demoted, must still have a reachable
// majority.
void requireQuorumWithout(SwarmNode& node, const ObjectRef& demoted) {
  auto n = demoted->reader().getNode();
  if (!n.getManagerStatus().isManager()) return;
  uint64_t memberId = n.getManagerStatus().getManager().getRaftId();
  size_t voters = 0, reachable = 0;
  bool isVoter = false;
  for (const auto& [id, member] : node.raftMembers()) {
    if (!member.voter) continue;
    if (id == memberId) {
      isVoter = true;
      continue;
    }
    ++voters;
    if (node.managerReachable(member.nodeId)) ++reachable;
  }
  if (!isVoter) return;
  if (reachable < voters / 2 + 1) {
    throw Error(400, "rpc error: code = FailedPrecondition desc = can't remove member from the raft: "
                     "this would result in a loss of quorum (" + std::to_string(reachable) + " of the " +
                     std::to_string(voters) + " managers left are reachable)");
  }
}

kj::Promise<Response> nodeUpdate(SwarmNode& node, Request request) {
  node.requireManager();
  auto version = request.query.unsignedInteger("version");
  if (!version) throw Error(400, "invalid node version '': give ?version=<Version.Index of the node>");
  ObjectRef current = resolveNode(node, request.param("id"));
  auto message = kj::heap<capnp::MallocMessageBuilder>();
  auto object = message->initRoot<store::schema::Object>();
  object.setNode(current->reader().getNode());
  auto updated = object.getNode();
  api::decodeNodeSpec(request.json(), updated.getSpec());
  bool wasManager = current->reader().getNode().getSpec().getDesiredRole() == schema::NodeRole::MANAGER;
  bool demoting = wasManager && updated.getSpec().getDesiredRole() == schema::NodeRole::WORKER;
  if (demoting && managerCount(node) <= 1) {
    throw Error(400, "attempting to demote the last manager of the swarm");
  }
  bool promoting = !wasManager && updated.getSpec().getDesiredRole() == schema::NodeRole::MANAGER;
  if (demoting) requireQuorumWithout(node, current);
  if (demoting || promoting) {
    // Docker's API has no room for a warning here: the log says it.
    size_t managers = managerCount(node) + (promoting ? 1 : 0) - (demoting ? 1 : 0);
    if (managers > 7) {
      logger("api")->warn("the swarm will have {} managers: more than 7 slow every write and buy no "
                          "scale; 3, 5 or 7 is usual", managers);
    } else if (managers % 2 == 0) {
      logger("api")->warn("the swarm will have an even number of managers ({}): it tolerates no more "
                          "failures than {} would; use an odd number", managers, managers - 1);
    }
  }
  store::TransactionBuilder tx;
  tx.update(object.asReader(), *version);
  return node.write(kj::mv(tx)).then([](uint64_t) { return Response::empty(200); }).attach(kj::mv(message));
}

kj::Promise<Response> nodeRemove(SwarmNode& node, Request request) {
  node.requireManager();
  bool force = request.query.flag("force");
  ObjectRef current = resolveNode(node, request.param("id"));
  auto n = current->reader().getNode();
  if (current->id() == node.nodeId()) {
    throw Error(400, "node " + current->id() + " is this manager; it cannot remove itself (use "
                     "swarm leave --force on it instead)");
  }
  if (n.getSpec().getDesiredRole() == schema::NodeRole::MANAGER || n.getManagerStatus().isManager()) {
    throw Error(400, "rpc error: code = FailedPrecondition desc = node " + current->id() +
                         " is a cluster manager and is a member of the raft cluster. It must be "
                         "demoted to worker before removal");
  }
  if (!force && n.getStatus().getState() == schema::NodeState::READY) {
    throw Error(400, "rpc error: code = FailedPrecondition desc = node " + current->id() +
                         " is not down and can't be removed");
  }
  // The removal and the revocation of its certificate are one transaction: the node is refused
  // from the moment it is gone.
  ObjectRef cluster = clusterOf(node);
  capnp::MallocMessageBuilder message;
  auto object = message.initRoot<store::schema::Object>();
  object.setCluster(cluster->reader().getCluster());
  auto c = object.getCluster();
  auto old = cluster->reader().getCluster().getRevoked();
  auto revoked = c.initRevoked(old.size() + 1);
  for (uint32_t i = 0; i < old.size(); ++i) revoked.setWithCaveats(i, old[i]);
  revoked[old.size()].setCn(current->id());
  revoked[old.size()].setExpiresAt(INT64_MAX);  // until its certificate's expiry is tracked
  store::TransactionBuilder tx;
  tx.remove(Kind::node, current->id(), current->version());
  tx.update(object.asReader(), cluster->version());
  return node.write(kj::mv(tx)).then([](uint64_t) { return Response::empty(200); });
}

// ---- secrets and configs ----------------------------------------------------------------------

template <Kind kind>
bool namedMatches(const http::Filters& f, const ObjectRef& object) {
  if (!prefixMatches(f, "id", object->id())) return false;
  if (!prefixMatches(f, "name", object->name())) return false;
  if (f.has("names")) {
    auto names = f.values("names");
    if (std::find(names.begin(), names.end(), object->name()) == names.end()) return false;
  }
  auto labels = kind == Kind::secret ? object->reader().getSecret().getSpec().getAnnotations().getLabels()
                                     : object->reader().getConfig().getSpec().getAnnotations().getLabels();
  return labelsMatch(f, "label", labels);
}

json::value encodeNamed(Kind kind, const ObjectRef& object) {
  return kind == Kind::secret ? api::encodeSecret(object->reader().getSecret())
                              : api::encodeConfig(object->reader().getConfig());
}

// Services that reference secret or config `id`, by name.
std::vector<std::string> usersOf(SwarmNode& node, Kind kind, const std::string& id) {
  std::vector<std::string> users;
  for (const auto& s : node.store().list(Kind::service)) {
    auto runtime = s->reader().getService().getSpec().getTask().getRuntime();
    if (!runtime.isContainer()) continue;
    auto container = runtime.getContainer();
    bool uses = false;
    if (kind == Kind::secret) {
      for (auto ref : container.getSecrets()) uses = uses || str(ref.getSecretId()) == id;
    } else {
      for (auto ref : container.getConfigs()) uses = uses || str(ref.getConfigId()) == id;
    }
    if (uses) users.push_back(s->name());
  }
  return users;
}

// Only the labels of a secret or config may change, as in Swarm: the rest of the decoded spec
// must be what is stored.
template <typename Spec, typename Decode>
void takeLabelsOnly(const json::value& body, typename Spec::Builder have, Decode decode) {
  capnp::MallocMessageBuilder wanted;
  auto spec = wanted.initRoot<Spec>();
  decode(body, spec, api::SpecFor::update);
  if (spec.getAnnotations().getName() != have.getAnnotations().getName() ||
      (spec.getData().size() > 0 && spec.getData() != have.getData())) {
    throw Error(400, "rpc error: code = InvalidArgument desc = only updates to Labels are allowed");
  }
  have.getAnnotations().setLabels(spec.getAnnotations().getLabels());
}

void addNamedRoutes(http::Server& server, SwarmNode& node, Kind kind, const std::string& plural) {
  const std::string what(store::kindName(kind));
  server.route("GET", "/" + plural, [&node, kind](Request request) {
    return freshRead(node, [&node, kind, request = kj::mv(request)]() mutable -> kj::Promise<Response> {
      auto filters = request.query.filters();
      filters.requireKnown({"id", "label", "name", "names"});
      json::array out;
      for (const auto& o : node.store().list(kind)) {
        bool match = kind == Kind::secret ? namedMatches<Kind::secret>(filters, o)
                                          : namedMatches<Kind::config>(filters, o);
        if (match) out.push_back(encodeNamed(kind, o));
      }
      return Response::json(200, out);
    });
  });
  server.route("POST", "/" + plural + "/create", [&node, kind](Request request) {
    return guarded([&]() -> kj::Promise<Response> {
      node.requireManager();
      auto body = request.json();
      capnp::MallocMessageBuilder message;
      auto object = message.initRoot<store::schema::Object>();
      std::string id = store::newObjectId(store::systemRandom());
      if (kind == Kind::secret) {
        auto secret = object.initSecret();
        secret.setId(id);
        api::decodeSecretSpec(body, secret.getSpec());
      } else {
        auto config = object.initConfig();
        config.setId(id);
        api::decodeConfigSpec(body, config.getSpec());
      }
      // Docker's wording; the store refuses a taken name again when the entry applies.
      std::string name = store::nameOf(object.asReader());
      if (node.store().findByName(kind, name)) {
        throw Error(409, "rpc error: code = AlreadyExists desc = " + std::string(store::kindName(kind)) +
                             " " + name + " already exists");
      }
      store::TransactionBuilder tx;
      tx.create(object.asReader());
      return node.write(kj::mv(tx)).then([id](uint64_t) {
        return Response::json(201, json::object{{"ID", id}});
      });
    });
  });
  server.route("GET", "/" + plural + "/{id}", [&node, kind](Request request) {
    return freshRead(node, [&node, kind, request = kj::mv(request)]() mutable -> kj::Promise<Response> {
      return Response::json(200, encodeNamed(kind, routes::resolve(node.store(), kind, request.param("id"))));
    });
  });
  server.route("DELETE", "/" + plural + "/{id}", [&node, kind, what](Request request) {
    return guarded([&]() -> kj::Promise<Response> {
      node.requireManager();
      ObjectRef current = routes::resolve(node.store(), kind, request.param("id"));
      auto users = usersOf(node, kind, current->id());
      if (!users.empty()) {
        std::string list;
        for (const auto& u : users) list += (list.empty() ? "" : ", ") + u;
        throw Error(400, what + " '" + current->name() + "' is in use by the following service: " + list);
      }
      store::TransactionBuilder tx;
      tx.remove(kind, current->id(), current->version());
      return node.write(kj::mv(tx)).then([](uint64_t) { return Response::empty(204); });
    });
  });
  server.route("POST", "/" + plural + "/{id}/update", [&node, kind](Request request) {
    return guarded([&]() -> kj::Promise<Response> {
      node.requireManager();
      auto version = request.query.unsignedInteger("version");
      if (!version) throw Error(400, "invalid version '': give ?version=<Version.Index>");
      ObjectRef current = routes::resolve(node.store(), kind, request.param("id"));
      capnp::MallocMessageBuilder message;
      auto object = message.initRoot<store::schema::Object>();
      auto body = request.json();
      if (kind == Kind::secret) {
        object.setSecret(current->reader().getSecret());
        takeLabelsOnly<schema::SecretSpec>(body, object.getSecret().getSpec(), api::decodeSecretSpec);
      } else {
        object.setConfig(current->reader().getConfig());
        takeLabelsOnly<schema::ConfigSpec>(body, object.getConfig().getSpec(), api::decodeConfigSpec);
      }
      store::TransactionBuilder tx;
      tx.update(object.asReader(), *version);
      return node.write(kj::mv(tx)).then([](uint64_t) { return Response::empty(200); });
    });
  });
}

}  // namespace

void addApiRoutes(http::Server& server, SwarmNode& node, ApiInfo info) {
  const http::ServerOptions options = server.options();

  server.route("GET", "/_ping", [&node](Request) {
    return kj::Promise<Response>(Response::text(200, "OK")
                                     .withHeader("Swarm", swarmHeader(node))
                                     .withHeader("Cache-Control", "no-cache, no-store, must-revalidate")
                                     .withHeader("Pragma", "no-cache"));
  });
  server.route("GET", "/version", [info, options](Request) {
    return kj::Promise<Response>(Response::json(200, versionJson(info, options)));
  });
  server.route("GET", "/info", [&node, info](Request) {
    return kj::Promise<Response>(Response::json(200, infoJson(node, info)));
  });

  server.route("GET", "/swarm", [&node](Request) {
    return freshRead(node, [&node]() mutable -> kj::Promise<Response> {
      return Response::json(200, api::encodeSwarm(clusterOf(node)->reader().getCluster()));
    });
  });
  server.route("POST", "/swarm/init", [&node](Request request) {
    return guarded([&]() -> kj::Promise<Response> {
      auto spec = kj::heap<capnp::MallocMessageBuilder>();
      auto defaults = spec->initRoot<store::schema::ClusterSpec>();
      // Swarm beats every 5 s and needs 15 s to call a node down; this swarm's default beats every
      // second, down after 3 s (docs/decisions/0004-heartbeat-default.md). Given, Swarm's rules hold.
      defaults.setDispatcherHeartbeatPeriod(kDefaultHeartbeatPeriod);
      auto init = api::decodeInitRequest(request.json(), defaults);
      return node.init(std::move(init), kj::mv(spec)).then([](std::string id) {
        return Response::json(200, json::value(id));
      });
    });
  });
  server.route("POST", "/swarm/join", [&node](Request request) {
    return guarded([&]() -> kj::Promise<Response> {
      return node.join(api::decodeJoinRequest(request.json())).then([]() { return Response::empty(200); });
    });
  });
  server.route("POST", "/swarm/leave", [&node](Request request) {
    return guarded([&]() -> kj::Promise<Response> {
      return node.leave(request.query.flag("force")).then([]() { return Response::empty(200); });
    });
  });
  server.route("POST", "/swarm/update", [&node](Request request) {
    return guarded([&]() { return swarmUpdate(node, std::move(request)); });
  });
  server.route("GET", "/swarm/unlockkey", [&node](Request) {
    return guarded([&]() -> kj::Promise<Response> {
      node.requireManager();
      return Response::json(200, json::object{{"UnlockKey", node.unlockKey().value_or("")}});
    });
  });
  server.route("POST", "/swarm/unlock", [&node](Request request) {
    return guarded([&]() -> kj::Promise<Response> {
      auto body = request.json();
      const json::value* key = body.is_object() ? body.as_object().if_contains("UnlockKey") : nullptr;
      if (key == nullptr || !key->is_string()) {
        throw Error(400, "UnlockKey: give the unlock key as a string (SWMKEY-1-...)");
      }
      return node.unlock(std::string(key->as_string())).then([]() { return Response::empty(200); });
    });
  });

  server.route("GET", "/nodes", [&node](Request request) {
    return freshRead(node, [&node, request = kj::mv(request)]() mutable -> kj::Promise<Response> {
      auto filters = request.query.filters();
      filters.requireKnown({"id", "label", "membership", "name", "node.label", "role"});
      json::array out;
      for (const auto& n : node.store().list(Kind::node)) {
        if (nodeMatches(filters, n)) out.push_back(nodeJson(node, n));
      }
      return Response::json(200, out);
    });
  });
  server.route("GET", "/nodes/{id}", [&node](Request request) {
    return freshRead(node, [&node, request = kj::mv(request)]() mutable -> kj::Promise<Response> {
      return Response::json(200, nodeJson(node, resolveNode(node, request.param("id"))));
    });
  });
  server.route("POST", "/nodes/{id}/update", [&node](Request request) {
    return guarded([&]() { return nodeUpdate(node, std::move(request)); });
  });
  server.route("DELETE", "/nodes/{id}", [&node](Request request) {
    return guarded([&]() { return nodeRemove(node, std::move(request)); });
  });

  addServiceRoutes(server, node);

  addNamedRoutes(server, node, Kind::secret, "secrets");
  addNamedRoutes(server, node, Kind::config, "configs");
}

}  // namespace swarm::kernel
