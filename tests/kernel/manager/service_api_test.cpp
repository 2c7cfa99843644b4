// The service endpoints: the counting and filtering functions over a store filled directly (no
// orchestrator makes tasks yet), then a real manager process driven over its API socket the way
// the docker CLI and swarmctl do (create, ls, inspect, update, rollback, rm, filters, bad input).
#include "manager_process.h"
#include "service_routes.h"

#include "api/encode.h"
#include "fixtures.h"
#include "http/message.h"

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <cctype>
#include <cstdio>
#include <regex>
#include <string>

using namespace swarm::test;
using swarm::http::Error;
using swarm::http::Filters;
using swarm::kernel::findTasks;
using swarm::kernel::serviceStatus;
using swarm::kernel::taskUpToDate;
namespace st = swarm::store::testing;
namespace schema = swarm::schema;

namespace {

// A stored service at spec version `specVersion`.
st::Built serviceAt(const std::string& id, const std::string& name, uint64_t replicas, uint64_t specVersion) {
  auto b = st::service(id, name, replicas);
  b.root().getService().initSpecVersion().setIndex(specVersion);
  return b;
}

// A task of `serviceName` in `state`, desired `desired`, made from the spec version given, with
// the same task spec as st::service()'s unless `image` differs.
st::Built taskOf(const std::string& id, const std::string& serviceId, const std::string& serviceName,
                 const std::string& nodeId, uint64_t slot, uint16_t state, uint16_t desired,
                 uint64_t specVersion, const std::string& image = "nginx:1.25") {
  auto b = st::task(id, serviceId, nodeId, slot);
  auto t = b.root().getTask();
  t.getAnnotations().setName("");  // named as Docker names it: service.slot.id
  t.initServiceAnnotations().setName(serviceName);
  t.initSpec().getRuntime().initContainer().setImage(image);
  t.initSpecVersion().setIndex(specVersion);
  t.initStatus().setState(state);
  t.setDesiredState(desired);
  return b;
}

std::vector<std::string> idsOf(const std::vector<swarm::store::ObjectRef>& objects) {
  std::vector<std::string> ids;
  for (const auto& o : objects) ids.push_back(o->id());
  return ids;
}

// The status of the http::Error `call` throws (0 if none).
template <typename Call>
unsigned errorStatus(Call&& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.status();
  }
  return 0;
}

constexpr uint16_t kRunning = schema::TASK_STATE_RUNNING;
constexpr uint16_t kShutdown = schema::TASK_STATE_SHUTDOWN;
constexpr uint16_t kComplete = schema::TASK_STATE_COMPLETE;
constexpr uint16_t kPending = schema::TASK_STATE_PENDING;

}  // namespace

TEST_CASE("ServiceStatus counts running tasks and desired tasks per mode, as SwarmKit does") {
  swarm::store::Store store;

  SECTION("replicated: desired is Replicas; every running task counts, old ones too") {
    REQUIRE(st::create(store, serviceAt("svc1", "web", 3, 10)).ok());
    REQUIRE(st::create(store, taskOf("t1", "svc1", "web", "n1", 1, kRunning, kRunning, 10)).ok());
    REQUIRE(st::create(store, taskOf("t2", "svc1", "web", "n2", 2, kPending, kRunning, 10)).ok());
    REQUIRE(st::create(store, taskOf("t3", "svc1", "web", "n1", 3, kRunning, kShutdown, 4)).ok());
    auto status = serviceStatus(store, store.get(swarm::store::Kind::service, "svc1"));
    CHECK(status.runningTasks == 2);
    CHECK(status.desiredTasks == 3);
    CHECK(status.completedTasks == 0);
  }

  SECTION("global: desired is the tasks desired running (one per eligible node)") {
    auto b = serviceAt("svc1", "agent", 0, 1);
    b.root().getService().getSpec().getMode().setGlobal();
    REQUIRE(st::create(store, std::move(b)).ok());
    REQUIRE(st::create(store, taskOf("t1", "svc1", "agent", "n1", 0, kRunning, kRunning, 1)).ok());
    REQUIRE(st::create(store, taskOf("t2", "svc1", "agent", "n2", 0, kPending, kRunning, 1)).ok());
    REQUIRE(st::create(store, taskOf("t3", "svc1", "agent", "n3", 0, kRunning, kRunning, 1)).ok());
    REQUIRE(st::create(store, taskOf("t4", "svc1", "agent", "n4", 0, kShutdown, kShutdown, 1)).ok());
    auto status = serviceStatus(store, store.get(swarm::store::Kind::service, "svc1"));
    CHECK(status.runningTasks == 2);
    CHECK(status.desiredTasks == 3);
  }

  SECTION("jobs: only the current iteration counts; completed tasks are counted") {
    auto b = serviceAt("svc1", "batch", 0, 1);
    auto job = b.root().getService().getSpec().getMode().initReplicatedJob();
    job.setMaxConcurrent(2);
    job.setTotalCompletions(5);
    b.root().getService().initJobIteration().setIndex(2);
    REQUIRE(st::create(store, std::move(b)).ok());
    auto jobTask = [&](const std::string& id, uint16_t state, uint64_t iteration) {
      auto t = taskOf(id, "svc1", "batch", "n1", 0, state, kComplete, 1);
      t.root().getTask().initJobIteration().setIndex(iteration);
      return t;
    };
    REQUIRE(st::create(store, jobTask("t1", kComplete, 2)).ok());
    REQUIRE(st::create(store, jobTask("t2", kComplete, 2)).ok());
    REQUIRE(st::create(store, jobTask("t3", kRunning, 2)).ok());
    REQUIRE(st::create(store, jobTask("t4", kComplete, 1)).ok());
    REQUIRE(st::create(store, jobTask("t5", kRunning, 1)).ok());
    auto status = serviceStatus(store, store.get(swarm::store::Kind::service, "svc1"));
    CHECK(status.completedTasks == 2);
    CHECK(status.runningTasks == 1);
    CHECK(status.desiredTasks == 2);  // MaxConcurrent
  }

  SECTION("global job: desired is the tasks still to complete") {
    auto b = serviceAt("svc1", "sweep", 0, 1);
    b.root().getService().getSpec().getMode().setGlobalJob();
    b.root().getService().initJobIteration().setIndex(0);
    REQUIRE(st::create(store, std::move(b)).ok());
    for (auto [id, state] : {std::pair{"t1", kComplete}, {"t2", kRunning}, {"t3", kPending}}) {
      auto t = taskOf(id, "svc1", "sweep", std::string("n") + id, 0, state, kComplete, 1);
      t.root().getTask().initJobIteration().setIndex(0);
      REQUIRE(st::create(store, std::move(t)).ok());
    }
    auto status = serviceStatus(store, store.get(swarm::store::Kind::service, "svc1"));
    CHECK(status.completedTasks == 1);
    CHECK(status.runningTasks == 1);
    CHECK(status.desiredTasks == 2);
  }
}

TEST_CASE("a task is up to date when it carries the service's spec version or its exact task spec") {
  swarm::store::Store store;
  REQUIRE(st::create(store, serviceAt("svc1", "web", 2, 7)).ok());
  auto service = store.get(swarm::store::Kind::service, "svc1")->reader().getService();
  auto task = [](uint64_t version, const std::string& image) {
    return taskOf("t1", "svc1", "web", "n1", 1, kRunning, kRunning, version, image);
  };
  CHECK(taskUpToDate(service, task(7, "nginx:1.25").reader().getTask()));
  CHECK(taskUpToDate(service, task(7, "nginx:1.24").reader().getTask()));  // the version decides
  CHECK(taskUpToDate(service, task(3, "nginx:1.25").reader().getTask()));  // e.g. rolled back to it
  CHECK_FALSE(taskUpToDate(service, task(3, "nginx:1.24").reader().getTask()));
  auto forced = task(3, "nginx:1.25");
  forced.root().getTask().getSpec().setForceUpdate(1);  // --force makes old tasks dirty
  CHECK_FALSE(taskUpToDate(service, forced.reader().getTask()));
}

TEST_CASE("GET /tasks filters as the engine does, _up-to-date included") {
  swarm::store::Store store;
  auto front = serviceAt("svcweb000000000000000000a", "web", 2, 9);
  auto labels = front.root().getService().getSpec().getAnnotations().initLabels(1);
  labels[0].setKey("tier");
  labels[0].setValue("front");
  const std::string web = "svcweb000000000000000000a", db = "svcdb0000000000000000000b";
  // Tasks carry their service's annotations (labels included) from when they were made.
  auto web1 = taskOf("task1", web, "web", "node1", 1, kRunning, kRunning, 9);
  web1.root().getTask().getServiceAnnotations().setLabels(labels.asReader());
  REQUIRE(st::create(store, std::move(front)).ok());
  REQUIRE(st::create(store, serviceAt("svcdb0000000000000000000b", "db", 1, 4)).ok());
  REQUIRE(st::create(store, st::node("node1", "alpha")).ok());
  REQUIRE(st::create(store, st::node("node2", "beta")).ok());
  REQUIRE(st::create(store, std::move(web1)).ok());
  REQUIRE(st::create(store, taskOf("task2", web, "web", "node2", 2, kRunning, kShutdown, 5, "nginx:1.24")).ok());
  REQUIRE(st::create(store, taskOf("task3", web, "web", "node2", 2, kPending, kRunning, 9)).ok());
  REQUIRE(st::create(store, taskOf("task4", db, "db", "node1", 1, kRunning, kRunning, 4)).ok());
  auto find = [&](const std::string& json) { return idsOf(findTasks(store, Filters::parse(json))); };
  using V = std::vector<std::string>;

  CHECK(find("") == V{"task1", "task2", "task3", "task4"});
  // Services and nodes by ID, name or ID prefix.
  CHECK(find(R"({"service":{"web":true}})") == V{"task1", "task2", "task3"});
  CHECK(find(R"({"service":{")" + web + R"(":true}})") == V{"task1", "task2", "task3"});
  CHECK(find(R"({"service":{"svcd":true}})") == V{"task4"});
  CHECK(find(R"({"service":{"web":true,"db":true}})") == V{"task1", "task2", "task3", "task4"});
  CHECK(find(R"({"node":{"beta":true}})") == V{"task2", "task3"});
  CHECK(find(R"({"node":{"node1":true},"service":{"web":true}})") == V{"task1"});
  // Desired state, by Docker's names in any case.
  CHECK(find(R"({"desired-state":{"running":true}})") == V{"task1", "task3", "task4"});
  CHECK(find(R"({"desired-state":{"Shutdown":true}})") == V{"task2"});
  CHECK(find(R"({"desired-state":{"running":true,"shutdown":true}})").size() == 4);
  // Task ID and name prefixes; the service's labels.
  CHECK(find(R"({"id":{"task1":true}})") == V{"task1"});
  CHECK(find(R"({"name":{"web.2.":true}})") == V{"task2", "task3"});
  CHECK(find(R"({"name":{"db":true}})") == V{"task4"});
  CHECK(find(R"({"label":{"tier=front":true}})") == V{"task1"});
  CHECK(find(R"({"label":{"tier=back":true}})").empty());
  // The CLI's progress monitor: only tasks of the current spec.
  CHECK(find(R"({"service":{"web":true},"_up-to-date":{"true":true}})") == V{"task1", "task3"});
  CHECK(find(R"({"_up-to-date":{"true":true}})") == V{"task1", "task3", "task4"});
  // Runtime: every task here runs a container.
  CHECK(find(R"({"runtime":{"container":true}})").size() == 4);
  CHECK(find(R"({"runtime":{"plugin":true}})").empty());

  // Bad filters.
  CHECK(errorStatus([&] { find(R"({"service":{"nosuch":true}})"); }) == 404);
  CHECK(errorStatus([&] { find(R"({"node":{"gamma":true}})"); }) == 404);
  CHECK(errorStatus([&] { find(R"({"desired-state":{"sleeping":true}})"); }) == 400);
  CHECK(errorStatus([&] { find(R"({"colour":{"red":true}})"); }) == 400);
  CHECK(errorStatus([&] { find(R"({"service":{"svc":true}})"); }) == 400);  // ambiguous prefix
}

TEST_CASE("GET /services filters by id, name, label, mode and runtime") {
  swarm::store::Store store;
  auto web = serviceAt("aaa111", "web", 2, 1);
  auto labels = web.root().getService().getSpec().getAnnotations().initLabels(1);
  labels[0].setKey("tier");
  labels[0].setValue("front");
  REQUIRE(st::create(store, std::move(web)).ok());
  auto agent = serviceAt("bbb222", "agent", 0, 1);
  agent.root().getService().getSpec().getMode().setGlobal();
  REQUIRE(st::create(store, std::move(agent)).ok());
  auto matching = [&](const std::string& json) {
    Filters filters = Filters::parse(json);
    swarm::kernel::requireServiceFilters(filters);
    std::vector<std::string> names;
    for (const auto& s : store.list(swarm::store::Kind::service)) {
      if (swarm::kernel::serviceMatches(filters, s)) names.push_back(s->name());
    }
    return names;
  };
  using V = std::vector<std::string>;
  CHECK(matching("") == V{"web", "agent"});
  CHECK(matching(R"({"name":{"we":true}})") == V{"web"});
  CHECK(matching(R"({"id":{"bbb":true}})") == V{"agent"});
  CHECK(matching(R"({"label":{"tier":true}})") == V{"web"});
  CHECK(matching(R"({"label":{"tier=back":true}})").empty());
  CHECK(matching(R"({"mode":{"global":true}})") == V{"agent"});
  CHECK(matching(R"({"mode":{"replicated":true,"global":true}})") == V{"web", "agent"});
  CHECK(matching(R"({"mode":{"replicated-job":true}})").empty());
  CHECK(matching(R"({"runtime":{"container":true}})") == V{"web", "agent"});
  CHECK(errorStatus([&] { matching(R"({"status":{"x":true}})"); }) == 400);
}

TEST_CASE("insertDefaults fills what SwarmKit applies, and jobs get no update config") {
  auto b = serviceAt("svc1", "web", 1, 1);
  auto spec = b.root().getService().getSpec();
  swarm::kernel::insertServiceDefaults(spec);
  auto json = swarm::api::encodeServiceSpec(spec.asReader()).as_object();
  auto& task = json.at("TaskTemplate").as_object();
  CHECK(task.at("ContainerSpec").as_object().at("StopGracePeriod").to_number<int64_t>() == 10'000'000'000);
  CHECK(task.at("RestartPolicy").as_object().at("Condition").as_string() == "any");
  CHECK(task.at("RestartPolicy").as_object().at("Delay").to_number<int64_t>() == 5'000'000'000);
  CHECK(task.contains("Resources"));
  CHECK(task.contains("Placement"));
  for (const char* key : {"UpdateConfig", "RollbackConfig"}) {
    auto& update = json.at(key).as_object();
    CHECK(update.at("Parallelism").to_number<uint64_t>() == 1);
    CHECK(update.at("Monitor").to_number<int64_t>() == 5'000'000'000);
    CHECK(update.at("FailureAction").as_string() == "pause");
    CHECK(update.at("Order").as_string() == "stop-first");
  }

  auto job = serviceAt("svc2", "batch", 1, 1);
  job.root().getService().getSpec().getMode().setGlobalJob();
  swarm::kernel::insertServiceDefaults(job.root().getService().getSpec());
  auto jobJson = swarm::api::encodeServiceSpec(job.reader().getService().getSpec()).as_object();
  CHECK_FALSE(jobJson.contains("UpdateConfig"));
  CHECK(jobJson.at("TaskTemplate").as_object().contains("RestartPolicy"));
}

namespace {

const std::string v = "/v1.41";

std::string specJson(const std::string& name, uint64_t replicas, const std::string& extra = "") {
  return R"({"Name":")" + name + R"(","Labels":{"tier":"front"},"TaskTemplate":{"ContainerSpec":{"Image":"busybox:latest","Args":["sleep","1000"]}},"Mode":{"Replicated":{"Replicas":)" +
         std::to_string(replicas) + "}}" + extra + "}";
}

boost::json::object getService(const Manager& m, const std::string& name, const std::string& query = "") {
  Reply r = raw(m.socket, "GET", v + "/services/" + name + query);
  REQUIRE(r.status == 200);
  return r.json().as_object();
}

uint64_t versionOf(const boost::json::object& object) {
  return object.at("Version").as_object().at("Index").to_number<uint64_t>();
}

uint64_t replicasOf(const boost::json::value& spec) {
  return spec.at("Mode").at("Replicated").at("Replicas").to_number<uint64_t>();
}

std::string filtersQuery(const std::string& json) {
  std::string out;
  for (unsigned char c : json) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.') {
      out += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof(hex), "%%%02X", c);
      out += hex;
    }
  }
  return "filters=" + out;
}

}  // namespace

TEST_CASE("a real manager serves docker service create, ls, inspect, update, rollback and rm") {
  Manager m("service-api");

  // Not a manager yet.
  CHECK(raw(m.socket, "GET", v + "/services").status == 503);
  Reply r = raw(m.socket, "POST", v + "/swarm/init",
                R"({"ListenAddr": "127.0.0.1:23902", "AdvertiseAddr": "127.0.0.1"})");
  REQUIRE(r.status == 200);

  // Create: 201 {ID, Warnings: null}; names are unique, case-insensitively.
  r = raw(m.socket, "POST", v + "/services/create", specJson("web", 2));
  REQUIRE(r.status == 201);
  std::string webId(r.json().at("ID").as_string());
  CHECK(webId.size() == 25);
  CHECK(r.json().at("Warnings").is_null());
  r = raw(m.socket, "POST", v + "/services/create", specJson("WEB", 1));
  CHECK(r.status == 409);
  CHECK(contains(r.message(), "name conflicts with an existing object: service WEB already exists"));
  r = raw(m.socket, "POST", v + "/services/create",
          R"({"Name":"agent","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}},"Mode":{"Global":{}}})");
  REQUIRE(r.status == 201);
  // No name: the engine makes one up.
  r = raw(m.socket, "POST", v + "/services/create", R"({"TaskTemplate":{"ContainerSpec":{"Image":"busybox"}}})");
  REQUIRE(r.status == 201);
  std::string unnamedId(r.json().at("ID").as_string());
  std::string generated(getService(m, unnamedId).at("Spec").at("Name").as_string());
  CHECK(std::regex_match(generated, std::regex("[a-z]+_[a-z]+[0-9]?")));

  // Bad input: Docker's statuses, a message naming the problem, nothing created.
  r = raw(m.socket, "POST", v + "/services/create", R"({"Name": "x", "TaskTemplate": )");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "malformed JSON"));
  r = raw(m.socket, "POST", v + "/services/create", R"({"Name": "x"})");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "TaskTemplate"));
  r = raw(m.socket, "POST", v + "/services/create",
          R"({"Name":"x","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}},"Mode":{"Replicated":{"Replicas":"two"}}})");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "Replicas"));
  r = raw(m.socket, "POST", v + "/services/create", specJson("bad name!", 1));
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "Name"));
  r = raw(m.socket, "POST", v + "/services/create",
          R"({"Name":"secretive","TaskTemplate":{"ContainerSpec":{"Image":"busybox","Secrets":[{"SecretID":"nosuchid","SecretName":"db-pass","File":{"Name":"db-pass"}}]}}})");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "secret not found: db-pass"));
  r = raw(m.socket, "POST", v + "/services/create",
          specJson("published", 1, R"(,"EndpointSpec":{"Ports":[{"TargetPort":80,"PublishedPort":8080}]})"));
  REQUIRE(r.status == 201);
  std::string publishedId(r.json().at("ID").as_string());
  r = raw(m.socket, "POST", v + "/services/create",
          specJson("clash", 1, R"(,"EndpointSpec":{"Ports":[{"TargetPort":81,"PublishedPort":8080}]})"));
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "port '8080' is already in use by service 'published'"));
  CHECK(raw(m.socket, "GET", v + "/services/clash").status == 404);
  CHECK(raw(m.socket, "DELETE", v + "/services/" + publishedId).status == 200);

  // ls: status=true adds ServiceStatus; filters.
  r = raw(m.socket, "GET", v + "/services");
  REQUIRE(r.status == 200);
  REQUIRE(r.json().as_array().size() == 3);
  CHECK_FALSE(r.json().as_array()[0].as_object().contains("ServiceStatus"));
  r = raw(m.socket, "GET", v + "/services?status=true&" + filtersQuery(R"({"name":{"web":true}})"));
  REQUIRE(r.status == 200);
  REQUIRE(r.json().as_array().size() == 1);
  auto status = r.json().as_array()[0].at("ServiceStatus");
  CHECK(status.at("DesiredTasks").to_number<uint64_t>() == 2);
  CHECK(status.at("RunningTasks").to_number<uint64_t>() <= 2);
  r = raw(m.socket, "GET", v + "/services?" + filtersQuery(R"({"mode":{"global":true}})"));
  REQUIRE(r.json().as_array().size() == 1);
  CHECK(r.json().as_array()[0].at("Spec").at("Name").as_string() == "agent");
  r = raw(m.socket, "GET", v + "/services?" + filtersQuery(R"({"label":{"tier=front":true}})"));
  CHECK(r.json().as_array().size() == 1);
  r = raw(m.socket, "GET", v + "/services?" + filtersQuery(R"({"id":{")" + webId.substr(0, 6) + R"(":true}})"));
  CHECK(r.json().as_array().size() == 1);
  r = raw(m.socket, "GET", v + "/services?" + filtersQuery(R"({"colour":{"red":true}})"));
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "colour"));
  CHECK(raw(m.socket, "GET", v + "/services?status=maybe").status == 400);

  // inspect: by name, ID or prefix; insertDefaults.
  auto web = getService(m, "web");
  CHECK(web.at("ID").as_string() == webId);
  CHECK(replicasOf(web.at("Spec")) == 2);
  CHECK_FALSE(web.contains("PreviousSpec"));
  CHECK_FALSE(web.at("Spec").as_object().contains("UpdateConfig"));
  CHECK(getService(m, webId.substr(0, 5)).at("ID").as_string() == webId);
  auto defaults = getService(m, "web", "?insertDefaults=true");
  CHECK(defaults.at("Spec").at("UpdateConfig").at("Parallelism").to_number<uint64_t>() == 1);
  CHECK(defaults.at("Spec").at("TaskTemplate").at("RestartPolicy").at("Condition").as_string() == "any");
  r = raw(m.socket, "GET", v + "/services/nosuch");
  CHECK(r.status == 404);
  CHECK(contains(r.message(), "no such service: nosuch"));

  // update (docker service scale web=3): versions are checked, the previous spec kept.
  uint64_t version = versionOf(web);
  r = raw(m.socket, "POST", v + "/services/web/update", specJson("web", 3));
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "version"));
  r = raw(m.socket, "POST", v + "/services/web/update?version=abc", specJson("web", 3));
  CHECK(r.status == 400);
  r = raw(m.socket, "POST", v + "/services/web/update?version=" + std::to_string(version) +
                                "&registryAuthFrom=spec", specJson("web", 3));
  REQUIRE(r.status == 200);
  CHECK(r.json().at("Warnings").is_null());
  web = getService(m, "web");
  CHECK(replicasOf(web.at("Spec")) == 3);
  CHECK(replicasOf(web.at("PreviousSpec")) == 2);
  CHECK(versionOf(web) > version);
  r = raw(m.socket, "POST", v + "/services/web/update?version=" + std::to_string(version), specJson("web", 4));
  CHECK(r.status == 409);
  CHECK(contains(r.message(), "out of sequence"));
  version = versionOf(web);
  std::string current = "?version=" + std::to_string(version);
  r = raw(m.socket, "POST", v + "/services/web/update" + current, specJson("web2", 3));
  CHECK(r.status == 501);
  CHECK(contains(r.message(), "renaming services is not supported"));
  r = raw(m.socket, "POST", v + "/services/web/update" + current,
          R"({"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}},"Mode":{"Global":{}}})");
  CHECK(r.status == 501);
  CHECK(contains(r.message(), "service mode change is not allowed"));
  r = raw(m.socket, "POST", v + "/services/web/update" + current + "&rollback=sideways", specJson("web", 3));
  CHECK(r.status == 400);
  r = raw(m.socket, "POST", v + "/services/web/update" + current, R"({"Name":"web","TaskTemplate":[]})");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "TaskTemplate"));
  r = raw(m.socket, "POST", v + "/services/nosuch/update" + current, specJson("nosuch", 1));
  CHECK(r.status == 404);
  CHECK(versionOf(getService(m, "web")) == version);

  // rollback (docker service rollback): the specs swap, UpdateStatus says so.
  r = raw(m.socket, "POST", v + "/services/web/update" + current + "&rollback=previous", specJson("web", 3));
  REQUIRE(r.status == 200);
  web = getService(m, "web");
  CHECK(replicasOf(web.at("Spec")) == 2);
  CHECK(replicasOf(web.at("PreviousSpec")) == 3);
  CHECK(web.at("UpdateStatus").at("State").as_string() == "rollback_started");
  CHECK(web.at("UpdateStatus").at("Message").as_string() == "manually requested rollback");
  auto agent = getService(m, "agent");
  r = raw(m.socket, "POST", v + "/services/agent/update?version=" + std::to_string(versionOf(agent)) + "&rollback=previous",
          R"({"Name":"agent","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}},"Mode":{"Global":{}}})");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "does not have a previous spec"));
  // A plain update afterwards clears the rollback status.
  r = raw(m.socket, "POST", v + "/services/web/update?version=" + std::to_string(versionOf(web)), specJson("web", 5));
  REQUIRE(r.status == 200);
  web = getService(m, "web");
  CHECK(replicasOf(web.at("Spec")) == 5);
  CHECK_FALSE(web.contains("UpdateStatus"));

  // tasks: filters are resolved (a name here) and applied, whatever the orchestrator made so far.
  r = raw(m.socket, "GET", v + "/tasks?" + filtersQuery(R"({"service":{"web":true},"_up-to-date":{"true":true}})"));
  CHECK(r.status == 200);
  auto upToDate = r.json();
  for (const auto& task : upToDate.as_array()) CHECK(task.at("ServiceID") == web.at("ID"));
  r = raw(m.socket, "GET", v + "/tasks?" + filtersQuery(R"({"service":{"nosuch":true}})"));
  CHECK(r.status == 404);
  r = raw(m.socket, "GET", v + "/tasks?" + filtersQuery(R"({"desired-state":{"sleeping":true}})"));
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "desired-state"));
  CHECK(raw(m.socket, "GET", v + "/tasks/nosuchtask").status == 404);

  // logs: the engine's multiplexed stream of the tasks' output (the fake runtime prints nothing);
  // no stream chosen is 400, an unknown service 404.
  r = raw(m.socket, "GET", v + "/services/web/logs?stdout=1&stderr=1&details=1");
  CHECK(r.status == 200);
  CHECK(r.body.empty());
  r = raw(m.socket, "GET", v + "/services/web/logs");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "at least one stream"));
  CHECK(raw(m.socket, "GET", v + "/services/nosuch/logs?stdout=1").status == 404);

  // rm: gone at once, and the name is free again.
  CHECK(raw(m.socket, "DELETE", v + "/services/web").status == 200);
  CHECK(raw(m.socket, "GET", v + "/services/web").status == 404);
  CHECK(raw(m.socket, "DELETE", v + "/services/web").status == 404);
  CHECK(raw(m.socket, "POST", v + "/services/create", specJson("web", 1)).status == 201);
  r = raw(m.socket, "GET", v + "/services");
  CHECK(r.json().as_array().size() == 3);

  CHECK(m.alive());
}
