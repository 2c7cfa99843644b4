// GCC 12 reports a false -Wmaybe-uninitialized inside kj::_::ExceptionOr<Response>.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "service_routes.h"

#include "route_helpers.h"

#include "api/decode.h"
#include "api/encode.h"
#include "api/errors.h"
#include "api/text.h"
#include "store/object_id.h"
#include "store/transaction.h"

#include <capnp/message.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

namespace swarm::kernel {
namespace {

namespace json = boost::json;
using http::Error;
using http::Request;
using http::Response;
using store::Kind;
using store::ObjectRef;
using Mode = schema::ServiceSpec::Mode;

using routes::freshRead;
using routes::labelsMatch;
using routes::prefixMatches;
using routes::resolve;

// Status timestamps (UpdateStatus.StartedAt, JobStatus.LastExecution) are the proposer's wall
// clock, as SwarmKit's time.Now() in the control API.
int64_t wallClockNanos() {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
}

// Equal content, as Go's reflect.DeepEqual on the protobuf structs SwarmKit compares.
template <typename Reader>
bool sameContent(Reader a, Reader b) {
  auto left = capnp::canonicalize(a);
  auto right = capnp::canonicalize(b);
  return left.size() == right.size() &&
         std::memcmp(left.begin(), right.begin(), left.size() * sizeof(capnp::word)) == 0;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// ---- filters ----------------------------------------------------------------------------------

bool exactMatches(const http::Filters& filters, std::string_view key, std::string_view value) {
  if (!filters.has(key)) return true;
  auto values = filters.values(key);
  return std::find(values.begin(), values.end(), value) != values.end();
}

const char* modeName(schema::ServiceSpec::Reader spec) {
  switch (spec.getMode().which()) {
    case Mode::REPLICATED: return "replicated";
    case Mode::GLOBAL: return "global";
    case Mode::REPLICATED_JOB: return "replicated-job";
    case Mode::GLOBAL_JOB: return "global-job";
  }
  return "";
}

bool isJob(schema::ServiceSpec::Reader spec) {
  auto mode = spec.getMode().which();
  return mode == Mode::REPLICATED_JOB || mode == Mode::GLOBAL_JOB;
}

// SwarmKit's naming.Runtime.
std::string runtimeName(schema::TaskSpec::Reader spec) {
  return spec.getRuntime().isContainer() ? "container" : routes::str(spec.getRuntime().getGeneric().getKind());
}

std::optional<uint16_t> taskStateByName(std::string_view name) {
  static constexpr std::array<uint16_t, 15> kStates{
      schema::TASK_STATE_NEW,      128 /* allocated */,        schema::TASK_STATE_PENDING,
      schema::TASK_STATE_ASSIGNED, schema::TASK_STATE_ACCEPTED, schema::TASK_STATE_PREPARING,
      schema::TASK_STATE_READY,    schema::TASK_STATE_STARTING, schema::TASK_STATE_RUNNING,
      schema::TASK_STATE_COMPLETE, schema::TASK_STATE_SHUTDOWN, schema::TASK_STATE_FAILED,
      schema::TASK_STATE_REJECTED, schema::TASK_STATE_REMOVE,   schema::TASK_STATE_ORPHANED};
  std::string wanted = lower(name);
  for (uint16_t state : kStates) {
    if (api::taskStateName(state) == wanted) return state;
  }
  return std::nullopt;
}


// ---- JSON -------------------------------------------------------------------------------------

json::value serviceJson(const store::Store& store, const ObjectRef& object, bool withStatus) {
  json::value value = api::encodeService(object->reader().getService());
  if (!withStatus) return value;
  auto& out = value.as_object();
  ServiceStatus status = serviceStatus(store, object);
  // Go's field order: ServiceStatus comes before JobStatus.
  json::value jobStatus;
  if (auto* job = out.if_contains("JobStatus")) {
    jobStatus = std::move(*job);
    out.erase("JobStatus");
  }
  out["ServiceStatus"] = json::object{{"RunningTasks", status.runningTasks},
                                      {"DesiredTasks", status.desiredTasks},
                                      {"CompletedTasks", status.completedTasks}};
  if (!jobStatus.is_null()) out["JobStatus"] = std::move(jobStatus);
  return value;
}

// ---- the control API's checks -----------------------------------------------------------------

// The API's decoder refusals are bad requests.
void decodeSpec(const json::value& body, schema::ServiceSpec::Builder spec) {
  try {
    api::decodeServiceSpec(body, spec);
  } catch (const api::BadRequest& e) {
    throw Error(400, e.what());
  }
}

// SwarmKit's checkSecretExistence / checkConfigExistence: each reference names an existing
// object by ID, with its current name.
void requireReferencedObjects(const store::Store& store, schema::ServiceSpec::Reader spec) {
  if (!spec.getTask().getRuntime().isContainer()) return;
  auto container = spec.getTask().getRuntime().getContainer();
  auto check = [&](Kind kind, const std::vector<std::pair<std::string, std::string>>& references) {
    std::string missing;
    size_t count = 0;
    for (const auto& [id, name] : references) {
      ObjectRef found = store.get(kind, id);
      if (found && found->name() == name) continue;
      missing += (missing.empty() ? "" : ", ") + name;
      ++count;
    }
    if (count == 0) return;
    std::string what(store::kindName(kind));
    throw Error(400, "rpc error: code = InvalidArgument desc = " + what + (count > 1 ? "s" : "") +
                         " not found: " + missing + " (create it first with docker " + what +
                         " create, or reference it by its current ID and name)");
  };
  std::vector<std::pair<std::string, std::string>> secrets, configs;
  for (auto ref : container.getSecrets()) secrets.emplace_back(routes::str(ref.getSecretId()), routes::str(ref.getSecretName()));
  for (auto ref : container.getConfigs()) configs.emplace_back(routes::str(ref.getConfigId()), routes::str(ref.getConfigName()));
  check(Kind::secret, secrets);
  check(Kind::config, configs);
}

// SwarmKit's checkPortConflicts: a published port may not be taken by another service, in its
// spec or as allocated. Several services may share a host-mode port (the scheduler keeps them
// apart); an ingress port is the swarm's alone.
void requireFreePorts(const store::Store& store, schema::ServiceSpec::Reader spec, std::string_view self) {
  using Key = std::pair<schema::PortConfig::Protocol, uint32_t>;
  std::set<Key> ingress, host;
  for (auto port : spec.getEndpoint().getPorts()) {
    if (port.getPublishedPort() == 0) continue;
    Key key{port.getProtocol(), port.getPublishedPort()};
    (port.getPublishMode() == schema::PortConfig::PublishMode::HOST ? host : ingress).insert(key);
  }
  if (ingress.empty() && host.empty()) return;
  auto refuse = [](const ObjectRef& other, uint32_t port, const char* as) {
    throw Error(400, "rpc error: code = InvalidArgument desc = port '" + std::to_string(port) +
                         "' is already in use by service '" + other->name() + "' (" + other->id() +
                         ") as " + as + "; publish another port or remove it from that service");
  };
  auto check = [&](const ObjectRef& other, capnp::List<schema::PortConfig>::Reader ports) {
    for (auto port : ports) {
      if (port.getPublishedPort() == 0) continue;
      Key key{port.getProtocol(), port.getPublishedPort()};
      if (port.getPublishMode() == schema::PortConfig::PublishMode::HOST) {
        if (ingress.count(key)) refuse(other, port.getPublishedPort(), "a host-published port");
      } else if (ingress.count(key) || host.count(key)) {
        refuse(other, port.getPublishedPort(), "an ingress port");
      }
    }
  };
  for (const auto& other : store.list(Kind::service)) {
    if (other->id() == self) continue;
    auto service = other->reader().getService();
    check(other, service.getSpec().getEndpoint().getPorts());
    check(other, service.getEndpointPorts());
  }
}

// The engine names a service the user left unnamed (moby's namesgenerator: adjective_surname).
std::string unusedServiceName(const store::Store& store) {
  static constexpr std::array<std::string_view, 24> kAdjectives{
      "admiring", "bold",    "brave",   "clever",  "dazzling", "eager",   "elegant", "festive",
      "focused",  "gallant", "gifted",  "happy",   "jolly",    "keen",    "lucid",   "modest",
      "nifty",    "quirky",  "relaxed", "serene",  "sharp",    "stoic",   "vibrant", "zealous"};
  static constexpr std::array<std::string_view, 24> kSurnames{
      "agnesi",   "archimedes", "babbage", "bohr",     "curie",    "darwin",  "einstein", "euler",
      "faraday",  "feynman",    "galois",  "hopper",   "hypatia",  "kepler",  "lamport",  "lovelace",
      "meitner",  "noether",    "pascal",  "ritchie",  "shannon",  "tesla",   "turing",   "wozniak"};
  auto random = store::systemRandom();
  for (int attempt = 0;; ++attempt) {
    std::array<kj::byte, 2> pick{};
    random(kj::arrayPtr(pick.data(), pick.size()));
    std::string name = std::string(kAdjectives[pick[0] % kAdjectives.size()]) + "_" +
                       std::string(kSurnames[pick[1] % kSurnames.size()]);
    // As moby does after a collision: a digit makes the name new. Past a few tries the short
    // lists are crowded, and a piece of a fresh ID settles it.
    if (attempt > 0) name += std::to_string(pick[0] % 10);
    if (attempt > 20) name += "_" + store::newObjectId(random).substr(0, 8);
    if (!store.findByName(Kind::service, name)) return name;
  }
}

// ---- handlers ---------------------------------------------------------------------------------

using Handler = kj::Promise<Response> (*)(SwarmNode&, Request);


kj::Promise<Response> listServices(SwarmNode& node, Request request) {
  node.requireManager();
  auto filters = request.query.filters();
  requireServiceFilters(filters);
  bool withStatus = request.query.flag("status");
  json::array out;
  for (const auto& service : node.store().list(Kind::service)) {
    if (serviceMatches(filters, service)) out.push_back(serviceJson(node.store(), service, withStatus));
  }
  return Response::json(200, out);
}

kj::Promise<Response> inspectService(SwarmNode& node, Request request) {
  node.requireManager();
  bool insertDefaults = request.query.flag("insertDefaults");
  ObjectRef service = resolve(node.store(), Kind::service, request.param("id"));
  if (!insertDefaults) return Response::json(200, api::encodeService(service->reader().getService()));
  capnp::MallocMessageBuilder message;
  message.setRoot(service->reader().getService());
  auto copy = message.getRoot<store::schema::Service>();
  insertServiceDefaults(copy.getSpec());
  return Response::json(200, api::encodeService(copy.asReader()));
}

kj::Promise<Response> createService(SwarmNode& node, Request request) {
  node.requireManager();
  auto body = request.json();  // X-Registry-Auth: images are the runtime's business, not the store's
  capnp::MallocMessageBuilder message;
  auto object = message.initRoot<store::schema::Object>();
  auto service = object.initService();
  std::string id = store::newObjectId(store::systemRandom());
  service.setId(id);
  decodeSpec(body, service.initSpec());
  auto spec = service.getSpec();
  const store::Store& store = node.store();
  if (spec.getAnnotations().getName().size() == 0) spec.getAnnotations().setName(unusedServiceName(store));
  std::string name = routes::str(spec.getAnnotations().getName());
  if (store.findByName(Kind::service, name)) {
    // SwarmKit's wording (clients match on "name conflicts with an existing object").
    throw Error(409, "rpc error: code = AlreadyExists desc = name conflicts with an existing object: "
                     "service " + name + " already exists");
  }
  requireReferencedObjects(store, spec);
  requireFreePorts(store, spec, "");
  service.initSpecVersion();  // index 0: the version tasks of the first spec carry
  if (isJob(spec)) {
    service.initJobIteration();
    service.setJobLastExecution(wallClockNanos());
  }
  store::TransactionBuilder tx;
  tx.create(object.asReader());
  return node.write(kj::mv(tx)).then([id](uint64_t) {
    return Response::json(201, json::object{{"ID", id}, {"Warnings", nullptr}});
  });
}

kj::Promise<Response> updateService(SwarmNode& node, Request request) {
  node.requireManager();
  auto version = request.query.unsignedInteger("version");
  if (!version) {
    throw Error(400, "invalid service version '': give ?version=<Version.Index of GET /services/{id}>");
  }
  std::string rollback = request.query.get("rollback").value_or("");
  if (rollback != "" && rollback != "none" && rollback != "previous") {
    throw Error(400, "unrecognized rollback option " + rollback + ": use rollback=previous (or none)");
  }
  // Registry credentials are not kept in the spec here, so where to take them from changes nothing.
  std::string authFrom = request.query.get("registryAuthFrom").value_or("");
  if (authFrom != "" && authFrom != "spec" && authFrom != "previous-spec") {
    throw Error(400, "unsupported registryAuthFrom value '" + authFrom + "': use spec or previous-spec");
  }
  const store::Store& store = node.store();
  ObjectRef current = resolve(store, Kind::service, request.param("id"));
  auto was = current->reader().getService();

  // The body is decoded and checked even for a rollback, as SwarmKit validates every request.
  capnp::MallocMessageBuilder requested;
  auto spec = requested.initRoot<schema::ServiceSpec>();
  decodeSpec(request.json(), spec);
  requireReferencedObjects(store, spec);
  if (spec.hasEndpoint() && !(was.getSpec().hasEndpoint() &&
                              sameContent(spec.asReader().getEndpoint(), was.getSpec().getEndpoint()))) {
    requireFreePorts(store, spec, current->id());
  }
  if (spec.getMode().which() != was.getSpec().getMode().which()) {
    throw Error(501, std::string("rpc error: code = Unimplemented desc = service mode change is not allowed (") +
                         modeName(was.getSpec()) + " to " + modeName(spec) +
                         "); remove the service and create it again in the new mode");
  }
  if (spec.getAnnotations().getName() != was.getSpec().getAnnotations().getName()) {
    throw Error(501, "rpc error: code = Unimplemented desc = renaming services is not supported (" +
                         current->name() + " to " + routes::str(spec.getAnnotations().getName()) +
                         "); send the service's current Name");
  }

  capnp::MallocMessageBuilder message;
  auto object = message.initRoot<store::schema::Object>();
  object.setService(was);
  auto service = object.getService();
  if (isJob(was.getSpec())) {
    // Every update of a job runs it again.
    service.initJobIteration().setIndex(was.getJobIteration().getIndex() + 1);
    service.setJobLastExecution(wallClockNanos());
  }
  if (rollback == "previous") {
    if (!was.getPreviousSpec().isPrevious()) {
      throw Error(400, "rpc error: code = FailedPrecondition desc = service " + current->id() +
                           " does not have a previous spec: it was never updated");
    }
    service.setSpec(was.getPreviousSpec().getPrevious());
    service.getPreviousSpec().setPrevious(was.getSpec());
    service.setSpecVersion(was.getPreviousSpecVersion());
    service.setPreviousSpecVersion(was.getSpecVersion());
    auto status = service.initUpdateStatus();
    status.setState(store::schema::UpdateState::ROLLBACK_STARTED);
    status.setMessage("manually requested rollback");
    status.setStartedAt(wallClockNanos());
  } else {
    service.getPreviousSpec().setPrevious(was.getSpec());
    service.setPreviousSpecVersion(was.getSpecVersion());
    service.setSpec(spec.asReader());
    // As SwarmKit: the service version the update was made against, not comparable to Meta.
    service.initSpecVersion().setIndex(*version);
    service.initUpdateStatus();
  }
  store::TransactionBuilder tx;
  tx.update(object.asReader(), *version);
  return node.write(kj::mv(tx)).then([](uint64_t) {
    return Response::json(200, json::object{{"Warnings", nullptr}});
  });
}

kj::Promise<Response> removeService(SwarmNode& node, Request request) {
  node.requireManager();
  ObjectRef current = resolve(node.store(), Kind::service, request.param("id"));
  // As SwarmKit's RemoveService: the service goes at once; the orchestrators see it gone and set
  // its tasks' desired state to REMOVE, and the task reaper deletes them.
  store::TransactionBuilder tx;
  tx.remove(Kind::service, current->id(), current->version());
  return node.write(kj::mv(tx)).then([](uint64_t) { return Response::empty(200); });
}

// ---- logs ---------------------------------------------------------------------------------------

// One client's log stream; the sinks the nodes hold may outlive it, so they reach the writer
// through this and drop lines once it is closed.
struct LogTarget : public kj::Refcounted {
  http::StreamWriter* out = nullptr;
};

// Lines from a node's runtime, as the engine's multiplexed stream: an 8-byte header (stream,
// 0, 0, 0, big-endian length) per line; with timestamps the time first, with details the node,
// service and task IDs the docker CLI turns into `name.slot@node |`.
class LogFrames final : public schema::LogSink::Server {
 public:
  LogFrames(kj::Own<LogTarget> target, std::string details, bool timestamps)
      : target(kj::mv(target)), details(std::move(details)), timestamps(timestamps) {}

  kj::Promise<void> line(LineContext context) override {
    if (target->out == nullptr) return kj::READY_NOW;
    auto line = context.getParams().getLine();
    std::string payload;
    if (timestamps) payload += api::formatTime(line.getTimestamp()) + " ";
    if (!details.empty()) payload += details + " ";
    auto data = line.getData();
    payload.append(reinterpret_cast<const char*>(data.begin()), data.size());
    if (payload.empty() || payload.back() != '\n') payload += '\n';  // one line per frame, as dockerd sends
    std::string frame(8, '\0');
    frame[0] = line.getStream() == schema::LogLine::Stream::STDERR ? 2 : 1;
    uint32_t size = static_cast<uint32_t>(payload.size());
    for (int i = 0; i < 4; ++i) frame[4 + i] = static_cast<char>((size >> (24 - 8 * i)) & 0xff);
    frame += payload;
    return target->out->write(std::move(frame));
  }
  kj::Promise<void> done(DoneContext) override { return kj::READY_NOW; }

 private:
  kj::Own<LogTarget> target;
  std::string details;
  bool timestamps;
};

// GET /services/{id}/logs and /tasks/{id}/logs: every task's log from its node, one task after
// the other, or all at once with follow (until the client goes).
kj::Promise<Response> streamLogs(SwarmNode& node, const Request& request, std::vector<ObjectRef> tasks) {
  auto& q = request.query;
  auto options = kj::heap<capnp::MallocMessageBuilder>();
  auto o = options->initRoot<schema::LogOptions>();
  o.setStdout(q.flag("stdout"));
  o.setStderr(q.flag("stderr"));
  if (!o.getStdout() && !o.getStderr()) throw Error(400, "Bad parameters: you must choose at least one stream");
  bool follow = q.flag("follow");
  o.setFollow(follow);
  std::string tail = q.get("tail").value_or("all");
  if (tail == "all" || tail.empty()) {
    o.setTail(-1);
  } else if (std::all_of(tail.begin(), tail.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    o.setTail(std::stoll(tail));
  } else {
    throw Error(400, "invalid tail value '" + tail + "': give a number of lines or all");
  }
  bool timestamps = q.flag("timestamps");
  o.setTimestamps(timestamps);
  bool details = q.flag("details");
  struct Source {
    std::string nodeId, taskId, details;
  };
  std::vector<Source> sources;
  for (const auto& t : tasks) {
    auto task = t->task();
    if (task.getNodeId().size() == 0 || task.getStatus().getState() < schema::TASK_STATE_ASSIGNED) continue;
    std::string prefix;
    if (details) {
      prefix = "com.docker.swarm.node.id=" + routes::str(task.getNodeId()) + ",com.docker.swarm.service.id=" +
               routes::str(task.getServiceId()) + ",com.docker.swarm.task.id=" + t->id();
    }
    sources.push_back({routes::str(task.getNodeId()), t->id(), prefix});
  }
  auto producer = [&node, sources = std::move(sources), options = kj::mv(options), follow,
                   timestamps](http::StreamWriter& out) mutable -> kj::Promise<void> {
    auto target = kj::refcounted<LogTarget>();
    target->out = &out;
    // The options message and the target live until the returned promise is done (attached).
    auto one = [&node, opts = options.get(), target = target.get(), timestamps](const Source& source) {
      return kj::evalNow([&]() {
               return node.taskLogs(source.nodeId, source.taskId, opts->getRoot<schema::LogOptions>().asReader(),
                                    kj::heap<LogFrames>(kj::addRef(*target), source.details, timestamps));
             })
          .catch_([](kj::Exception&&) {});  // a node that is gone has no log to give; the others do
    };
    kj::Promise<void> all = kj::READY_NOW;
    if (follow) {
      kj::Vector<kj::Promise<void>> each;
      for (const auto& source : sources) each.add(one(source));
      all = kj::joinPromises(each.releaseAsArray());
    } else {
      for (const auto& source : sources) all = all.then([one, source]() mutable { return one(source); });
    }
    // However it ends, the nodes' sinks stop writing to this stream.
    auto close = kj::defer([target = kj::mv(target)]() mutable { target->out = nullptr; });
    return all.exclusiveJoin(out.whenDisconnected()).attach(kj::mv(close), kj::mv(options));
  };
  return kj::Promise<Response>(
      Response::stream(200, "application/vnd.docker.multiplexed-stream", kj::mv(producer)));
}

kj::Promise<Response> serviceLogs(SwarmNode& node, Request request) {
  node.requireManager();
  ObjectRef service = resolve(node.store(), Kind::service, request.param("id"));
  return streamLogs(node, request, node.store().tasksOfService(service->id()));
}

kj::Promise<Response> taskLogs(SwarmNode& node, Request request) {
  node.requireManager();
  return streamLogs(node, request, {resolve(node.store(), Kind::task, request.param("id"))});
}

kj::Promise<Response> listTasks(SwarmNode& node, Request request) {
  node.requireManager();
  json::array out;
  for (const auto& task : findTasks(node.store(), request.query.filters())) {
    out.push_back(api::encodeTask(task->reader().getTask()));
  }
  return Response::json(200, out);
}

kj::Promise<Response> inspectTask(SwarmNode& node, Request request) {
  node.requireManager();
  ObjectRef task = resolve(node.store(), Kind::task, request.param("id"));
  return Response::json(200, api::encodeTask(task->reader().getTask()));
}

}  // namespace

// ---- the pure parts ---------------------------------------------------------------------------

ServiceStatus serviceStatus(const store::Store& store, const store::ObjectRef& object) {
  ServiceStatus status;
  auto service = object->reader().getService();
  auto spec = service.getSpec();
  bool global = false;
  switch (spec.getMode().which()) {
    case Mode::REPLICATED: status.desiredTasks = spec.getMode().getReplicated(); break;
    case Mode::REPLICATED_JOB: status.desiredTasks = spec.getMode().getReplicatedJob().getMaxConcurrent(); break;
    case Mode::GLOBAL:
    case Mode::GLOBAL_JOB: global = true; break;
  }
  bool job = isJob(spec);
  for (const auto& ref : store.tasksOfService(object->id())) {
    auto task = ref->reader().getTask();
    uint16_t state = task.getStatus().getState();
    if (job) {
      // Tasks of earlier runs of the job do not count.
      if (!task.hasJobIteration() || task.getJobIteration().getIndex() != service.getJobIteration().getIndex()) {
        continue;
      }
      if (state == schema::TASK_STATE_COMPLETE) ++status.completedTasks;
    }
    if (state == schema::TASK_STATE_RUNNING) ++status.runningTasks;
    // A global service wants one task per eligible node: the orchestrator's tasks say how many.
    if (global && task.getDesiredState() == schema::TASK_STATE_RUNNING) ++status.desiredTasks;
    if (global && state != schema::TASK_STATE_COMPLETE && task.getDesiredState() == schema::TASK_STATE_COMPLETE) {
      ++status.desiredTasks;
    }
  }
  return status;
}

bool taskUpToDate(store::schema::Service::Reader service, schema::Task::Reader task) {
  if (task.hasSpecVersion() && service.hasSpecVersion() &&
      task.getSpecVersion().getIndex() == service.getSpecVersion().getIndex()) {
    return true;
  }
  // Another spec version may still hold the same task spec (a rollback, an update of the
  // UpdateConfig only): then the task is as wanted.
  return sameContent(service.getSpec().getTask(), task.getSpec());
}

void requireServiceFilters(const http::Filters& filters) {
  filters.requireKnown({"id", "label", "mode", "name", "runtime"});
}

bool serviceMatches(const http::Filters& filters, const store::ObjectRef& object) {
  auto spec = object->reader().getService().getSpec();
  return prefixMatches(filters, "id", object->id()) &&
         prefixMatches(filters, "name", object->name()) &&
         labelsMatch(filters, "label", spec.getAnnotations().getLabels()) &&
         exactMatches(filters, "mode", modeName(spec)) &&
         exactMatches(filters, "runtime", runtimeName(spec.getTask()));
}

std::string taskName(schema::Task::Reader task) {
  if (task.getAnnotations().getName().size() > 0) return routes::str(task.getAnnotations().getName());
  std::string slot = task.getSlot() != 0 ? std::to_string(task.getSlot()) : routes::str(task.getNodeId());
  return routes::str(task.getServiceAnnotations().getName()) + "." + slot + "." + routes::str(task.getId());
}

std::vector<store::ObjectRef> findTasks(const store::Store& store, const http::Filters& filters) {
  // `_up-to-date` is the CLI's hidden filter for its progress monitor.
  filters.requireKnown({"desired-state", "id", "label", "name", "node", "service", "runtime", "_up-to-date"});
  // As the engine: service and node arguments become IDs first, and an unknown one is an error.
  auto resolveAll = [&](Kind kind, std::string_view key) {
    std::set<std::string> ids;
    for (const auto& text : filters.values(key)) ids.insert(resolve(store, kind, text)->id());
    return ids;
  };
  std::set<std::string> services = resolveAll(Kind::service, "service");
  std::set<std::string> nodes = resolveAll(Kind::node, "node");
  std::set<uint16_t> desired;
  for (const auto& name : filters.values("desired-state")) {
    if (name.empty()) continue;
    auto state = taskStateByName(name);
    if (!state) {
      throw Error(400, "Invalid desired-state filter: '" + name +
                           "' (use a task state: running, shutdown, accepted, complete, ...)");
    }
    desired.insert(*state);
  }
  bool upToDate = filters.has("_up-to-date");
  std::vector<std::string> runtimes =
      filters.has("runtime") ? filters.values("runtime") : std::vector<std::string>{"", "container"};

  std::map<std::string, ObjectRef> candidates;  // by ID: the order Docker's store lists
  if (!services.empty()) {
    for (const auto& id : services) {
      for (const auto& t : store.tasksOfService(id)) candidates.emplace(t->id(), t);
    }
  } else if (!nodes.empty()) {
    for (const auto& id : nodes) {
      for (const auto& t : store.tasksOnNode(id)) candidates.emplace(t->id(), t);
    }
  } else {
    for (const auto& t : store.list(Kind::task)) candidates.emplace(t->id(), t);
  }

  std::vector<ObjectRef> out;
  for (const auto& [id, ref] : candidates) {
    auto task = ref->reader().getTask();
    if (!services.empty() && !services.count(routes::str(task.getServiceId()))) continue;
    if (!nodes.empty() && !nodes.count(routes::str(task.getNodeId()))) continue;
    if (!prefixMatches(filters, "id", id)) continue;
    if (!prefixMatches(filters, "name", taskName(task))) continue;
    if (!labelsMatch(filters, "label", task.getServiceAnnotations().getLabels())) continue;
    if (std::find(runtimes.begin(), runtimes.end(), runtimeName(task.getSpec())) == runtimes.end()) continue;
    if (!desired.empty() && !desired.count(task.getDesiredState())) continue;
    if (upToDate) {
      ObjectRef service = store.get(Kind::service, routes::str(task.getServiceId()));
      if (!service || !taskUpToDate(service->reader().getService(), task)) continue;
    }
    out.push_back(ref);
  }
  return out;
}

void insertServiceDefaults(schema::ServiceSpec::Builder spec) {
  auto task = spec.getTask();
  if (task.getRuntime().isContainer()) {
    auto container = task.getRuntime().getContainer();
    if (container.getStopGracePeriod() < 0) container.setStopGracePeriod(10'000'000'000);
    if (!container.hasDnsConfig()) container.initDnsConfig();
  }
  // A fresh struct reads as the schema's defaults, which are SwarmKit's.
  if (!task.hasResources()) task.initResources();
  if (!task.hasRestart()) task.initRestart();
  if (!task.hasPlacement()) task.initPlacement();
  if (!isJob(spec.asReader())) {
    if (!spec.hasUpdate()) spec.initUpdate();
    if (!spec.hasRollback()) spec.initRollback();
  }
}

void addServiceRoutes(http::Server& server, SwarmNode& node) {
  auto read = [&node](Handler handler) {
    return [&node, handler](Request request) {
      return freshRead(node, [&node, handler, request = kj::mv(request)]() mutable { return handler(node, kj::mv(request)); });
    };
  };
  auto write = [&node](Handler handler) {
    return [&node, handler](Request request) { return handler(node, std::move(request)); };
  };
  server.route("GET", "/services", read(listServices));
  server.route("POST", "/services/create", write(createService));
  server.route("GET", "/services/{id}", read(inspectService));
  server.route("POST", "/services/{id}/update", write(updateService));
  server.route("DELETE", "/services/{id}", write(removeService));
  server.route("GET", "/services/{id}/logs", read(serviceLogs));
  server.route("GET", "/tasks/{id}/logs", read(taskLogs));
  server.route("GET", "/tasks", read(listTasks));
  server.route("GET", "/tasks/{id}", read(inspectTask));
}

}  // namespace swarm::kernel
