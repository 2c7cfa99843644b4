// GCC 12 reports a false -Wmaybe-uninitialized inside kj::_::ExceptionOr<T> for promises of
// std::string and boost::json::value (as kernel/src/manager/replication.cpp explains).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "docker_runtime.h"

#include "container_files.h"
#include "log_stream.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <kj/debug.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <vector>

namespace swarm::docker {
namespace {

namespace json = boost::json;
using schema::TaskError;
using Action = schema::RuntimeEvent::Action;

std::string str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

json::value parseJson(const Response& r, std::string_view what) {
  boost::system::error_code ec;
  auto value = json::parse(r.body, ec);
  if (ec) {
    kj::throwFatalException(KJ_EXCEPTION(FAILED, kj::str(std::string(what).c_str(),
                                                         ": docker sent a body that is not JSON: ",
                                                         ec.message().c_str())));
  }
  return value;
}

void setFailed(schema::Runtime::CreateResults::Builder results, TaskError::Kind kind,
               const std::string& message) {
  auto failed = results.initResult().initFailed();
  failed.setKind(kind);
  failed.setMessage(message);
}

// Image references are sent in URL paths and queries as they are, so only their own characters
// are allowed.
bool plausibleReference(std::string_view image) {
  for (char c : image) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '/' ||
          c == ':' || c == '@' || c == '+')) {
      return false;
    }
  }
  return !image.empty();
}

// How old a task's file directory must be before a sweep may take it (see sweepFiles).
constexpr int64_t kFilesGraceNanos = 60ll * 1000000000;

int64_t wallNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Docker's since= takes "<seconds>.<nanoseconds>".
std::string dockerTime(int64_t nanos) {
  char text[40];
  snprintf(text, sizeof(text), "%lld.%09lld", static_cast<long long>(nanos / 1000000000),
           static_cast<long long>(nanos % 1000000000));
  return text;
}

// Splits a stream of newline-separated JSON documents (pull progress, events).
class JsonLines {
 public:
  template <typename Each>
  void feed(std::string_view bytes, Each&& each) {
    pending.append(bytes.data(), bytes.size());
    size_t at = 0;
    for (size_t nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n', at)) {
      std::string_view line(pending.data() + at, nl - at);
      at = nl + 1;
      boost::system::error_code ec;
      auto value = json::parse(json::string_view(line.data(), line.size()), ec);
      if (!ec) each(value);
    }
    pending.erase(0, at);
  }

 private:
  std::string pending;
};

// One events() subscriber: follows GET /events, reconnecting (and saying daemonRestarted) when the
// daemon goes away and comes back. Dropping the handle cancels it.
class Subscription final : public schema::Handle::Server {
 public:
  Subscription(kj::Own<DockerHttp> docker, std::string filters, schema::EventSink::Client sink,
               kj::Timer& timer)
      : docker(kj::mv(docker)),
        filters(std::move(filters)),
        sink(kj::mv(sink)),
        timer(timer),
        // Replays from now, so nothing is lost between this call returning and the stream
        // opening.
        lastTime(wallNanos()),
        loop(follow().eagerlyEvaluate(nullptr)) {}

 private:
  kj::Promise<void> follow() {
    JsonLines lines;
    auto target = "/events?filters=" + urlEncode(filters) + "&since=" + dockerTime(lastTime);
    return docker
        ->stream("GET", target,
                 [this, lines = kj::mv(lines)](std::string_view bytes) mutable -> kj::Promise<void> {
                   std::vector<Event> batch;
                   lines.feed(bytes, [&](const json::value& v) {
                     KJ_IF_MAYBE (e, readEvent(v)) {
                       if (!e->taskId.empty() && fresh(*e)) batch.push_back(kj::mv(*e));
                     }
                   });
                   return deliver(kj::mv(batch), 0);
                 })
        .then([this](Response r) -> kj::Promise<void> {
          if (r.status != 200) throwHttpError("GET /events", r);
          return reconnect(0);  // the daemon ended the stream: it is going away
        })
        .catch_([this](kj::Exception&& e) -> kj::Promise<void> {
          if (sinkGone) return kj::READY_NOW;  // the subscriber left: stop following
          (void)e;
          return reconnect(0);
        });
  }

  // Waits for the daemon to answer again, tells the subscriber, and follows from the last event.
  kj::Promise<void> reconnect(unsigned attempt) {
    auto delay = std::min<uint64_t>(100u << std::min(attempt, 5u), 2000) * kj::MILLISECONDS;
    return timer.afterDelay(delay)
        .then([this]() { return docker->call("GET", "/_ping"); })
        .then(
            [this](Response r) -> kj::Promise<void> {
              if (r.status != 200) return reconnect(5);
              auto request = sink.eventRequest();
              auto e = request.initEvent();
              e.setAction(Action::DAEMON_RESTARTED);
              e.setTime(wallNanos());
              return request.send()
                  .catch_([this](kj::Exception&& e) -> kj::Promise<void> {
                    sinkGone = true;
                    return kj::mv(e);
                  })
                  .then([this]() { return follow(); });
            },
            [this, attempt](kj::Exception&&) { return reconnect(attempt + 1); });
  }

  // Skips what a reconnect replays: anything older than the newest event delivered, and the
  // events already delivered at that same instant.
  bool fresh(const Event& e) {
    std::string key = e.containerId + "/" + std::to_string(static_cast<int>(e.action)) + "/" +
                      std::to_string(static_cast<int>(e.health));
    if (e.timeNanos < lastTime) return false;
    if (e.timeNanos > lastTime) {
      lastTime = e.timeNanos;
      atLastTime.clear();
    }
    for (auto& k : atLastTime) {
      if (k == key) return false;
    }
    atLastTime.push_back(kj::mv(key));
    return true;
  }

  kj::Promise<void> deliver(std::vector<Event> batch, size_t at) {
    if (at == batch.size()) return kj::READY_NOW;
    auto request = sink.eventRequest();
    auto out = request.initEvent();
    auto& e = batch[at];
    out.setAction(e.action);
    out.setTaskId(e.taskId);
    out.setContainerId(e.containerId);
    out.setTime(e.timeNanos);
    out.setExitCode(e.exitCode);
    out.setHealth(e.health);
    return request.send()
        .catch_([this](kj::Exception&& e) -> kj::Promise<void> {
          sinkGone = true;
          return kj::mv(e);
        })
        .then([this, batch = kj::mv(batch), at]() mutable { return deliver(kj::mv(batch), at + 1); });
  }

  kj::Own<DockerHttp> docker;
  std::string filters;
  schema::EventSink::Client sink;
  kj::Timer& timer;
  int64_t lastTime;
  std::vector<std::string> atLastTime;
  bool sinkGone = false;
  kj::Promise<void> loop;  // last: it uses every member above
};

// Sends LogEntry values to a LogSink in order, each after the previous was accepted.
kj::Promise<void> sendLines(schema::LogSink::Client sink, std::vector<LogEntry> lines, size_t at) {
  if (at == lines.size()) return kj::READY_NOW;
  auto request = sink.lineRequest();
  auto line = request.initLine();
  line.setStream(lines[at].fromStderr ? schema::LogLine::Stream::STDERR
                                      : schema::LogLine::Stream::STDOUT);
  line.setTimestamp(lines[at].timestampNanos);
  line.setData(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(lines[at].data.data()),
                                   lines[at].data.size()));
  return request.send().then([sink, lines = kj::mv(lines), at]() mutable {
    return sendLines(kj::mv(sink), kj::mv(lines), at + 1);
  });
}

}  // namespace

DockerRuntime::DockerRuntime()
    : docker(kj::refcounted<DockerHttp>(sdk::asyncIo().provider->getNetwork(), config.socket,
                                        "/v" + config.apiVersion)) {}

kj::Promise<void> DockerRuntime::onConfigure(const sdk::Settings& s) {
  s.requireOnly({"socket", "api-version", "network", "pull", "node-id", "files-dir"});
  config.socket = s.getOr("socket", "/var/run/docker.sock").cStr();
  if (config.socket.empty() || config.socket[0] != '/') {
    sdk::fail(kj::str("setting socket='", config.socket.c_str(),
                      "' must be the absolute path of dockerd's Unix socket, e.g. "
                      "/var/run/docker.sock"));
  }
  config.apiVersion = s.getOr("api-version", "1.41").cStr();
  {
    unsigned major = 0, minor = 0;
    char extra = 0;
    if (sscanf(config.apiVersion.c_str(), "%u.%u%c", &major, &minor, &extra) != 2 || major != 1) {
      sdk::fail(kj::str("setting api-version='", config.apiVersion.c_str(),
                        "' is not a Docker API version like 1.41"));
    }
  }
  std::string network = s.getOr("network", "none").cStr();
  if (network == "none") {
    config.create.defaultNetwork = NetworkMode::none;
  } else if (network == "host") {
    config.create.defaultNetwork = NetworkMode::host;
  } else {
    sdk::fail(kj::str("setting network='", network.c_str(), "' must be none or host"));
  }
  std::string pull = s.getOr("pull", "missing").cStr();
  if (pull == "missing") {
    config.pull = PullPolicy::missing;
  } else if (pull == "never") {
    config.pull = PullPolicy::never;
  } else {
    sdk::fail(kj::str("setting pull='", pull.c_str(),
                      "' must be missing (pull images that are not present) or never"));
  }
  config.nodeId = s.getOr("node-id", "").cStr();
  std::string filesDir = s.getOr("files-dir", RuntimeSettings{}.filesDir.c_str()).cStr();
  while (filesDir.size() > 1 && filesDir.back() == '/') filesDir.pop_back();
  if (filesDir.size() < 2 || filesDir[0] != '/' || filesDir.find("//") != std::string::npos ||
      filesDir.find("/./") != std::string::npos || filesDir.find("/../") != std::string::npos ||
      filesDir.ends_with("/.") || filesDir.ends_with("/..")) {
    sdk::fail(kj::str("setting files-dir='", filesDir.c_str(),
                      "' must be an absolute path without '.' or '..', below / and on a tmpfs, e.g. ",
                      RuntimeSettings{}.filesDir.c_str()));
  }
  config.filesDir = filesDir;
  taskFiles = TaskFiles(config.filesDir);
  docker = kj::refcounted<DockerHttp>(sdk::asyncIo().provider->getNetwork(), config.socket,
                                      "/v" + config.apiVersion);
  // Files of tasks whose containers went away while the plugin was not running. Best effort: a
  // daemon that is down now is swept at the next list().
  startupSweep = sweepFiles()
                     .catch_([this](kj::Exception&& e) {
                       log(sdk::LogLevel::WARN, kj::str("sweeping task files under ", config.filesDir.c_str(),
                                                        " on start failed: ", e.getDescription()));
                     })
                     .eagerlyEvaluate(nullptr);
  return kj::READY_NOW;
}

kj::Promise<void> DockerRuntime::sweepFiles() {
  auto directories = taskFiles.list();
  if (directories.empty()) return kj::READY_NOW;
  // Every node's containers of this runtime, not only node-id's: other nodes may share files-dir.
  json::object filters;
  filters["label"] = json::array{std::string(label::kRuntime) + "=" + label::kRuntimeValue};
  return docker->call("GET", "/containers/json?all=1&filters=" + urlEncode(json::serialize(filters)))
      .then([this, directories = std::move(directories)](Response r) {
        if (r.status != 200) throwHttpError("GET /containers/json", r);
        std::set<std::string> withContainer;
        auto listed = parseJson(r, "GET /containers/json");
        if (listed.is_array()) {
          for (auto& c : listed.as_array()) {
            if (auto* labels = member(c, "Labels")) withContainer.insert(text(*labels, label::kTaskId));
          }
        }
        int64_t now = wallNanos();
        for (auto& d : directories) {
          if (withContainer.count(d.taskId) != 0 || now - d.modifiedNanos < kFilesGraceNanos) continue;
          if (auto why = taskFiles.remove(d.taskId); !why.empty()) {
            log(sdk::LogLevel::WARN, kj::str("removing the files of task ", d.taskId.c_str(), ": ", why.c_str()));
          }
        }
      });
}

std::string DockerRuntime::ownLabelFilter(std::string_view extraLabel) const {
  json::array labels;
  labels.emplace_back(std::string(label::kRuntime) + "=" + label::kRuntimeValue);
  if (!config.nodeId.empty()) labels.emplace_back(std::string(label::kNodeId) + "=" + config.nodeId);
  if (!extraLabel.empty()) labels.emplace_back(json::string_view(extraLabel.data(), extraLabel.size()));
  json::object filters;
  filters["label"] = std::move(labels);
  return json::serialize(filters);
}

kj::Promise<kj::Maybe<std::string>> DockerRuntime::findContainer(std::string taskId) {
  if (auto known = knownContainers.find(taskId); known != knownContainers.end()) {
    return kj::Maybe<std::string>(known->second);
  }
  // The task ID is matched by the label; it is not checked here, but a label value with '='
  // cannot forge a different key.
  auto filter = ownLabelFilter(std::string(label::kTaskId) + "=" + taskId);
  return docker->call("GET", "/containers/json?all=1&filters=" + urlEncode(filter))
      .then([this, taskId](Response r) -> kj::Maybe<std::string> {
        if (r.status != 200) throwHttpError("GET /containers/json", r);
        auto list = parseJson(r, "GET /containers/json");
        if (!list.is_array() || list.as_array().empty()) return nullptr;
        std::string id = text(list.as_array()[0], "Id");
        knownContainers.insert_or_assign(taskId, id);
        return id;
      });
}

void DockerRuntime::forgetContainer(const std::string& taskId) {
  if (auto known = knownContainers.find(taskId); known != knownContainers.end()) {
    startedContainers.erase(known->second);
    knownContainers.erase(known);
  }
}

kj::Promise<std::string> DockerRuntime::requireContainer(std::string taskId, kj::StringPtr call) {
  return findContainer(taskId).then([taskId, call](kj::Maybe<std::string> id) -> std::string {
    KJ_IF_MAYBE (found, id) {
      return kj::mv(*found);
    }
    sdk::fail(kj::str(call, "(", taskId.c_str(), "): the task has no container; create() it first"));
  });
}

kj::Promise<kj::Maybe<json::value>> DockerRuntime::inspectContainer(std::string containerId) {
  return docker->call("GET", "/containers/" + containerId + "/json")
      .then([](Response r) -> kj::Maybe<json::value> {
        if (r.status == 404) return nullptr;
        if (r.status != 200) throwHttpError("GET /containers/{id}/json", r);
        return parseJson(r, "GET /containers/{id}/json");
      });
}

kj::Promise<std::string> DockerRuntime::ensureImage(std::string image) {
  return docker->call("GET", "/images/" + image + "/json").then([this, image](Response r) -> kj::Promise<std::string> {
    if (r.status == 200) return std::string();
    if (r.status != 404) throwHttpError("GET /images/{name}/json", r);
    if (config.pull == PullPolicy::never) {
      return "image " + image + " is not present on this node and pulling is off (pull=never)";
    }
    auto pull = imagePull(image);
    std::string target = "/images/create?fromImage=" + urlEncode(pull.fromImage);
    if (!pull.tag.empty()) target += "&tag=" + urlEncode(pull.tag);
    // Progress arrives as JSON lines; a failed pull still answers 200 and says "error" in a line.
    auto lines = kj::heap<JsonLines>();
    auto error = kj::heap<std::string>();
    auto& linesRef = *lines;
    auto& errorRef = *error;
    return docker
        ->stream("POST", target,
                 [&linesRef, &errorRef](std::string_view bytes) -> kj::Promise<void> {
                   linesRef.feed(bytes, [&](const json::value& v) {
                     if (auto e = text(v, "error"); !e.empty()) errorRef = e;
                   });
                   return kj::READY_NOW;
                 })
        .then([this, image, &errorRef](Response r) -> kj::Promise<std::string> {
          if (r.status != 200) errorRef = errorMessage(r);
          if (!errorRef.empty()) {
            return "image " + image + " is not present on this node and pulling it failed: " + errorRef;
          }
          return docker->call("GET", "/images/" + image + "/json").then([image](Response again) {
            if (again.status == 200) return std::string();
            return "image " + image + " is still not present after pulling it";
          });
        })
        .attach(kj::mv(lines), kj::mv(error));
  });
}

kj::Promise<void> DockerRuntime::describe(DescribeContext context) {
  return docker->call("GET", "/info").then([context](Response r) mutable {
    if (r.status != 200) throwHttpError("GET /info", r);
    readInfo(parseJson(r, "GET /info"), context.getResults().initDescription());
  });
}

kj::Promise<void> DockerRuntime::create(CreateContext context) {
  auto params = context.getParams();
  auto task = params.getTask();
  if (task.getId().size() == 0) sdk::fail("create(): the task has no ID; every task needs one");
  std::string taskId = str(task.getId());
  CreatePlan plan = planCreate(task, str(params.getClusterId()), config.create);
  if (!plan.error.empty()) {
    setFailed(context.getResults(), TaskError::Kind::INVALID_SPEC, plan.error);
    return kj::READY_NOW;
  }
  auto spec = task.getSpec().getRuntime().getContainer();
  std::string image = str(spec.getImage());
  if (!plausibleReference(image)) {
    setFailed(context.getResults(), TaskError::Kind::INVALID_SPEC,
              "task " + taskId + ": image '" + image + "' is not an image reference");
    return kj::READY_NOW;
  }
  FilePlan files = planFiles(spec, params.getSecrets(), params.getConfigs());
  if (!files.error.empty()) {
    setFailed(context.getResults(), TaskError::Kind::INVALID_SPEC, "task " + taskId + ": " + files.error);
    return kj::READY_NOW;
  }

  // A container just created is what the create body said, in state created: no need to ask.
  auto reportCreated = [this, context, taskId, body = plan.body](std::string id) mutable {
    knownContainers.insert_or_assign(taskId, id);
    json::object created;
    created["Id"] = id;
    created["Config"] = json::parse(body);
    created["State"] = json::object{{"Status", "created"}};
    readInspect(created, context.getResults().initResult().initCreated());
  };
  // Reports the container with ID `id` as the result.
  auto report = [this, context, taskId](std::string id) mutable {
    knownContainers.insert_or_assign(taskId, id);
    return inspectContainer(id).then([this, context, id, taskId](kj::Maybe<json::value> inspected) mutable {
      KJ_IF_MAYBE (v, inspected) {
        readInspect(*v, context.getResults().initResult().initCreated());
      } else {
        forgetContainer(taskId);
        setFailed(context.getResults(), TaskError::Kind::OTHER,
                  "container " + id + " disappeared right after it was created");
      }
    });
  };

  // Writes the files onto the host's tmpfs, creates the container with them bind-mounted, and
  // reports it. The files go again whenever no container of this task is left to use them.
  std::string containerName = plan.name;
  auto make = [this, context, taskId, plan = kj::mv(plan), files = kj::mv(files),
               report, reportCreated]() mutable -> kj::Promise<void> {
    std::string body = plan.body;
    if (!files.files.empty()) {
      if (auto why = taskFiles.write(taskId, files.files); !why.empty()) {
        setFailed(context.getResults(), TaskError::Kind::OTHER,
                  "task " + taskId + ": writing its secrets and configs failed: " + why);
        return kj::READY_NOW;
      }
      body = addFileMounts(body, files.files, taskFiles.directoryOf(taskId));
    }
    auto dropFiles = [this, taskId]() {
      if (auto why = taskFiles.remove(taskId); !why.empty()) {
        log(sdk::LogLevel::WARN, kj::str("removing the files of task ", taskId.c_str(), ": ", why.c_str()));
      }
    };
    return docker->call("POST", "/containers/create?name=" + urlEncode(plan.name), kj::mv(body))
        .catch_([dropFiles](kj::Exception&& e) -> Response {
          // Only when the daemon never got the request: after a dropped connection the container
          // may exist and need its files (the sweep takes them if it does not).
          if (daemonFailureOf(e) == DaemonFailure::down) dropFiles();
          kj::throwFatalException(kj::mv(e));
        })
        .then([this, context, taskId, name = plan.name, report, reportCreated,
               dropFiles](Response r) mutable -> kj::Promise<void> {
          auto results = context.getResults();
          if (r.status != 201 && r.status != 409) dropFiles();
          switch (r.status) {
            case 201:
              break;
            case 409:
              // Either a create() of the same task won the race (its container uses the files
              // just written again, with the same data), or the name is someone else's.
              return findContainer(taskId).then([context, name, r, report, dropFiles](
                                                    kj::Maybe<std::string> mine) mutable -> kj::Promise<void> {
                KJ_IF_MAYBE (id, mine) {
                  return report(kj::mv(*id));
                }
                dropFiles();
                setFailed(context.getResults(), TaskError::Kind::NAME_CONFLICT,
                          "container name " + name + " is taken by a container this runtime did not "
                          "create for the task (" + errorMessage(r) + "); remove that container");
                return kj::READY_NOW;
              });
            case 404:
              setFailed(results, TaskError::Kind::IMAGE_MISSING, errorMessage(r));
              return kj::READY_NOW;
            case 400:
              setFailed(results, TaskError::Kind::INVALID_SPEC,
                        "task " + taskId + ": docker refused the container spec: " + errorMessage(r));
              return kj::READY_NOW;
            default:
              setFailed(results, TaskError::Kind::OTHER,
                        "creating container " + name + " failed: docker answered " +
                            std::to_string(r.status) + ": " + errorMessage(r));
              return kj::READY_NOW;
          }
          reportCreated(text(parseJson(r, "POST /containers/create"), "Id"));
          return kj::READY_NOW;
        });
  };

  // Created before? The container's name is the task's own (service.slot.task ID), so one inspect
  // by name answers it without a scan of every container.
  return inspectContainer(urlEncode(containerName))
      .then([taskId](kj::Maybe<json::value> named) -> kj::Maybe<std::string> {
        KJ_IF_MAYBE (v, named) {
          auto* config = member(*v, "Config");
          auto* labels = config == nullptr ? nullptr : member(*config, "Labels");
          if (labels != nullptr && text(*labels, label::kTaskId) == taskId) return text(*v, "Id");
        }
        return nullptr;  // none, or someone else's under that name: create() reports the conflict
      })
      .then([this, context, image, report, make = kj::mv(make)](
                kj::Maybe<std::string> existing) mutable -> kj::Promise<void> {
        KJ_IF_MAYBE (id, existing) {
          return report(kj::mv(*id));  // created before: the same container again
        }
        return ensureImage(image).then(
            [context, make = kj::mv(make)](std::string missing) mutable -> kj::Promise<void> {
              if (!missing.empty()) {
                setFailed(context.getResults(), TaskError::Kind::IMAGE_MISSING, missing);
                return kj::READY_NOW;
              }
              return make();
            });
      })
      .catch_([context](kj::Exception&& e) mutable {
        TaskError::Kind kind = TaskError::Kind::OTHER;
        switch (daemonFailureOf(e)) {
          case DaemonFailure::down:
            kind = TaskError::Kind::DAEMON_DOWN;
            break;
          case DaemonFailure::restarted:
            kind = TaskError::Kind::DAEMON_RESTARTED;
            break;
          case DaemonFailure::none:
            break;
        }
        setFailed(context.getResults(), kind, e.getDescription().cStr());
      });
}

kj::Promise<void> DockerRuntime::start(StartContext context) {
  std::string taskId = str(context.getParams().getTaskId());
  return requireContainer(taskId, "start").then([this, taskId](std::string id) {
    return docker->call("POST", "/containers/" + id + "/start").then([this, taskId, id](Response r) {
      if (r.status == 404) forgetContainer(taskId);
      if (r.status != 204 && r.status != 304) throwHttpError("start", r);  // 304: already running
      startedContainers.insert(id);
    });
  });
}

kj::Promise<void> DockerRuntime::wait(WaitContext context) {
  std::string taskId = str(context.getParams().getTaskId());
  return requireContainer(taskId, "wait")
      .then([this, taskId](std::string id) {
        // not-running resolves at once for a created container, so such a one waits for its first
        // exit. One this plugin started is past that: no need to look.
        kj::Promise<kj::Maybe<json::value>> look = nullptr;
        if (startedContainers.count(id) != 0) {
          look = kj::Maybe<json::value>(nullptr);
        } else {
          look = inspectContainer(id);
        }
        return look.then([this, id, taskId](kj::Maybe<json::value> inspected) {
          std::string condition = "not-running";
          KJ_IF_MAYBE (v, inspected) {
            auto* state = member(*v, "State");
            if (state != nullptr && text(*state, "Status") == "created") condition = "next-exit";
          }
          return docker->call("POST", "/containers/" + id + "/wait?condition=" + condition)
              .then([this, id, taskId](Response r) {
                if (r.status == 404) forgetContainer(taskId);
                if (r.status != 200) throwHttpError("wait", r);
                auto body = parseJson(r, "POST /containers/{id}/wait");
                return inspectContainer(id).then([body = kj::mv(body)](kj::Maybe<json::value> after) {
                  return std::make_pair(body, kj::mv(after));
                });
              });
        });
      })
      .then([context](std::pair<json::value, kj::Maybe<json::value>> outcome) mutable {
        auto exit = context.getResults().initExit();
        auto& [body, after] = outcome;
        exit.setExitCode(static_cast<int32_t>(integer(body, "StatusCode")));
        if (auto* error = member(body, "Error"); error != nullptr && error->is_object()) {
          exit.setError(text(*error, "Message"));
        }
        KJ_IF_MAYBE (v, after) {
          if (auto* state = member(*v, "State")) {
            auto* oom = member(*state, "OOMKilled");
            exit.setOomKilled(oom != nullptr && oom->is_bool() && oom->as_bool());
          }
        }
      });
}

kj::Promise<void> DockerRuntime::stop(StopContext context) {
  int64_t grace = context.getParams().getGracePeriod();
  std::string taskId = str(context.getParams().getTaskId());
  return findContainer(taskId)
      .then([this, grace, taskId](kj::Maybe<std::string> found) -> kj::Promise<void> {
        KJ_IF_MAYBE (id, found) {
          // Docker sends the stop signal, waits t seconds, then kills. No t: the container's own
          // StopTimeout (from the spec), else 10 s.
          std::string target = "/containers/" + *id + "/stop";
          if (grace >= 0) target += "?t=" + std::to_string((grace + 999999999) / 1000000000);
          return docker->call("POST", target).then([this, taskId](Response r) {
            if (r.status == 404) forgetContainer(taskId);
            // 304: not running; 404: gone meanwhile. Both leave it stopped.
            if (r.status != 204 && r.status != 304 && r.status != 404) throwHttpError("stop", r);
          });
        }
        return kj::READY_NOW;  // no container: nothing runs
      });
}

kj::Promise<void> DockerRuntime::remove(RemoveContext context) {
  std::string taskId = str(context.getParams().getTaskId());
  return findContainer(taskId)
      .then([this](kj::Maybe<std::string> found) -> kj::Promise<void> {
        KJ_IF_MAYBE (id, found) {
          // force: a running container is killed first, as Swarm's executor does; v: its anonymous
          // volumes go with it.
          return docker->call("DELETE", "/containers/" + *id + "?force=1&v=1").then([](Response r) {
            // 404: gone meanwhile; 409: a removal is already in progress.
            if (r.status != 204 && r.status != 404 && r.status != 409) throwHttpError("remove", r);
          });
        }
        return kj::READY_NOW;  // removing what is not there succeeds
      })
      .then([this, taskId]() {
        forgetContainer(taskId);
        // The container is gone (or going): its secrets and configs go with it. A failure here
        // does not fail the removal; the next sweep tries again.
        if (auto why = taskFiles.remove(taskId); !why.empty()) {
          log(sdk::LogLevel::WARN, kj::str("removing the files of task ", taskId.c_str(), ": ", why.c_str()));
        }
      });
}

kj::Promise<void> DockerRuntime::inspect(InspectContext context) {
  std::string taskId = str(context.getParams().getTaskId());
  return findContainer(taskId)
      .then([this](kj::Maybe<std::string> found) -> kj::Promise<kj::Maybe<json::value>> {
        KJ_IF_MAYBE (id, found) {
          return inspectContainer(*id);
        }
        return kj::Maybe<json::value>(nullptr);
      })
      .then([this, context, taskId](kj::Maybe<json::value> inspected) mutable {
        auto info = context.getResults().initInfo();
        KJ_IF_MAYBE (v, inspected) {
          readInspect(*v, info);
        } else {
          forgetContainer(taskId);
          info.setTaskId(taskId);
          info.setState(schema::ContainerState::MISSING);
        }
      });
}

kj::Promise<void> DockerRuntime::list(ListContext context) {
  // list() is the recovery path: it also takes the files of tasks whose containers are gone.
  auto sweep = sweepFiles().catch_([this](kj::Exception&& e) {
    log(sdk::LogLevel::WARN, kj::str("sweeping task files under ", config.filesDir.c_str(),
                                     " failed: ", e.getDescription()));
  }).eagerlyEvaluate(nullptr);
  auto listing = docker->call("GET", "/containers/json?all=1&filters=" + urlEncode(ownLabelFilter()))
      .then([this](Response r) {
        if (r.status != 200) throwHttpError("GET /containers/json", r);
        auto listed = parseJson(r, "GET /containers/json");
        kj::Vector<kj::Promise<kj::Maybe<json::value>>> inspections;
        if (listed.is_array()) {
          for (auto& c : listed.as_array()) inspections.add(inspectContainer(text(c, "Id")));
        }
        return kj::joinPromises(inspections.releaseAsArray());
      })
      .then([this, context](kj::Array<kj::Maybe<json::value>> inspected) mutable {
        std::vector<const json::value*> present;  // containers removed meanwhile are left out
        for (auto& i : inspected) {
          KJ_IF_MAYBE (v, i) {
            present.push_back(v);
            auto* config = member(*v, "Config");
            auto* labels = config == nullptr ? nullptr : member(*config, "Labels");
            if (labels != nullptr) knownContainers.insert_or_assign(text(*labels, label::kTaskId), text(*v, "Id"));
          }
        }
        auto out = context.getResults().initContainers(static_cast<unsigned>(present.size()));
        for (unsigned i = 0; i < present.size(); ++i) readInspect(*present[i], out[i]);
      });
  return listing.then([sweep = kj::mv(sweep)]() mutable { return kj::mv(sweep); });
}

kj::Promise<void> DockerRuntime::logs(LogsContext context) {
  auto params = context.getParams();
  auto options = params.getOptions();
  auto sink = params.getSink();
  std::string query = std::string("stdout=") + (options.getStdout() ? "1" : "0") +
                      "&stderr=" + (options.getStderr() ? "1" : "0") +
                      "&follow=" + (options.getFollow() ? "1" : "0") + "&timestamps=1" +
                      "&tail=" + (options.getTail() < 0 ? "all" : std::to_string(options.getTail()));
  if (options.getSince() > 0) query += "&since=" + dockerTime(options.getSince());
  return requireContainer(str(params.getTaskId()), "logs")
      .then([this](std::string id) {
        return inspectContainer(id).then([id](kj::Maybe<json::value> v) {
          bool tty = false;
          KJ_IF_MAYBE (inspected, v) {
            if (auto* config = member(*inspected, "Config")) {
              auto* t = member(*config, "Tty");
              tty = t != nullptr && t->is_bool() && t->as_bool();
            }
          }
          return std::make_pair(id, tty);
        });
      })
      .then([this, sink, query](std::pair<std::string, bool> container) mutable {
        auto demuxer = kj::heap<LogDemuxer>(container.second);
        auto& demuxerRef = *demuxer;
        return docker
            ->stream("GET", "/containers/" + container.first + "/logs?" + query,
                     [sink, &demuxerRef](std::string_view bytes) mutable {
                       return sendLines(sink, demuxerRef.feed(bytes), 0);
                     })
            .then([sink, &demuxerRef](Response r) mutable {
              if (r.status != 200) throwHttpError("logs", r);
              return sendLines(sink, demuxerRef.finish(), 0);
            })
            .then([sink]() mutable { return sink.doneRequest().send().ignoreResult(); })
            .attach(kj::mv(demuxer));
      });
}

kj::Promise<void> DockerRuntime::events(EventsContext context) {
  json::object filters = json::parse(ownLabelFilter()).as_object();
  filters["type"] = json::array{"container"};
  context.getResults().setSubscription(
      kj::heap<Subscription>(kj::addRef(*docker), json::serialize(filters),
                             context.getParams().getSink(), sdk::asyncIo().provider->getTimer()));
  return kj::READY_NOW;
}

kj::Promise<void> DockerRuntime::health(HealthContext context) {
  return docker->call("GET", "/_ping")
      .then(
          [context](Response r) mutable {
            auto health = context.getResults().initHealth();
            if (r.status == 200) {
              health.setStatus(schema::Health::Status::OK);
            } else {
              health.setStatus(schema::Health::Status::FAILING);
              health.setMessage(kj::str("dockerd answered /_ping with ", r.status, ": ",
                                        errorMessage(r).c_str()));
            }
          },
          [this, context](kj::Exception&& e) mutable {
            auto health = context.getResults().initHealth();
            health.setStatus(schema::Health::Status::FAILING);
            health.setMessage(e.getDescription());
          });
}

}  // namespace swarm::docker
