// Unit tests of the pure parts: API versions, target splitting, routing, query/bool/filters
// helpers, the JSON body helper, and how failures become statuses.
#include "http/message.h"
#include "http/router.h"

#include <boost/json.hpp>

#include <kj/async.h>
#include <kj/debug.h>

#include <catch2/catch.hpp>

using namespace swarm::http;

namespace {

// The message of the Error `fn` throws (fails the test if it throws none, or another type).
template <typename Fn>
std::pair<unsigned, std::string> errorOf(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return {e.status(), e.message()};
  }
  FAIL("no swarm::http::Error was thrown");
  return {};
}

Handler named(std::string name) {
  return [name](Request) -> kj::Promise<Response> { return Response::text(200, name); };
}

}  // namespace

TEST_CASE("API versions parse, compare numerically and print") {
  CHECK(ApiVersion::parse("1.41") == ApiVersion{1, 41});
  CHECK(ApiVersion::parse("1") == ApiVersion{1, 0});
  CHECK(*ApiVersion::parse("1.9") < *ApiVersion::parse("1.12"));
  CHECK_FALSE(ApiVersion::parse(""));
  CHECK_FALSE(ApiVersion::parse("1.2.3"));
  CHECK_FALSE(ApiVersion::parse("1."));
  CHECK_FALSE(ApiVersion::parse("v1"));
  CHECK(ApiVersion{1, 24}.toString() == "1.24");
}

TEST_CASE("a target splits into version prefix, path and query") {
  auto plain = splitTarget("/nodes/abc?filters=x");
  CHECK_FALSE(plain.version);
  CHECK(plain.path == "/nodes/abc");
  CHECK(plain.query == "filters=x");
  auto versioned = splitTarget("/v1.41/nodes");
  CHECK(versioned.version == "1.41");
  CHECK(versioned.path == "/nodes");
  CHECK(splitTarget("/v1.41").path == "/");
  // Not a version prefix: a path that merely starts with "v".
  auto other = splitTarget("/volumes/x");
  CHECK_FALSE(other.version);
  CHECK(other.path == "/volumes/x");
  CHECK_FALSE(splitTarget("/v1x/nodes").version);
}

TEST_CASE("routing picks literal segments over parameters and decodes parameters") {
  Router router;
  router.add("GET", "/services/{id}", named("inspect"));
  router.add("POST", "/services/create", named("create"));
  router.add("POST", "/services/{id}/update", named("update"));
  router.add("GET", "/_ping", named("ping"));
  router.add("HEAD", "/_ping", named("ping-head"));

  auto found = std::get<Router::Found>(router.find("GET", "/services/web%20app"));
  CHECK(found.params.at("id") == "web app");
  auto create = router.find("POST", "/services/create");
  REQUIRE(std::holds_alternative<Router::Found>(create));
  CHECK(std::get<Router::Found>(create).params.empty());
  auto update = std::get<Router::Found>(router.find("POST", "/services/abc/update"));
  CHECK(update.params.at("id") == "abc");

  CHECK(std::holds_alternative<Router::NotFound>(router.find("GET", "/nope")));
  CHECK(std::holds_alternative<Router::NotFound>(router.find("GET", "/services/")));
  auto wrong = router.find("DELETE", "/services/abc");
  REQUIRE(std::holds_alternative<Router::WrongMethod>(wrong));
  CHECK(std::get<Router::WrongMethod>(wrong).allowed == std::vector<std::string>{"GET"});
  // HEAD falls back to GET, unless it has its own route.
  CHECK(std::holds_alternative<Router::Found>(router.find("HEAD", "/services/abc")));
  CHECK(std::holds_alternative<Router::Found>(router.find("HEAD", "/_ping")));

  CHECK(errorOf([&]() { router.find("GET", "/services/%zz"); }).first == 400);
  CHECK_THROWS_AS(router.add("GET", "nodes", named("x")), std::invalid_argument);
  CHECK_THROWS_AS(router.add("GET", "/nodes/{}", named("x")), std::invalid_argument);
  CHECK_THROWS_AS(router.add("GET", "/nodes/x{id}", named("x")), std::invalid_argument);
  CHECK_THROWS_AS(router.add("GET", "/_ping", named("x")), std::invalid_argument);
}

TEST_CASE("the query string is percent-decoded and keeps repeated keys") {
  auto query = Query::parse("name=a%20b&name=c+d&empty=&bare&x=%2Fy");
  CHECK(query.get("name") == "a b");
  CHECK(query.all("name") == std::vector<std::string>{"a b", "c d"});
  CHECK(query.get("empty") == "");
  CHECK(query.has("bare"));
  CHECK(query.get("x") == "/y");
  CHECK_FALSE(query.has("missing"));
  auto [status, message] = errorOf([]() { Query::parse("a=%4"); });
  CHECK(status == 400);
  CHECK(message.find("malformed query string") != std::string::npos);
}

TEST_CASE("Docker bool parameters accept 1, true, 0, false or absent and name a bad one") {
  auto query = Query::parse("a=1&b=true&c=0&d=false&e=&f=yes");
  CHECK(query.flag("a"));
  CHECK(query.flag("b"));
  CHECK_FALSE(query.flag("c", true));
  CHECK_FALSE(query.flag("d", true));
  CHECK(query.flag("e", true));
  CHECK(query.flag("absent", true));
  CHECK_FALSE(query.flag("absent"));
  auto [status, message] = errorOf([&]() { query.flag("f"); });
  CHECK(status == 400);
  CHECK(message == "invalid value \"yes\" for query parameter \"f\": use 1, true, 0 or false");
}

TEST_CASE("unsigned integer parameters are checked") {
  auto query = Query::parse("version=42&bad=-1");
  CHECK(query.unsignedInteger("version") == 42u);
  CHECK_FALSE(query.unsignedInteger("absent"));
  auto [status, message] = errorOf([&]() { query.unsignedInteger("bad"); });
  CHECK(status == 400);
  CHECK(message.find("\"bad\"") != std::string::npos);
}

TEST_CASE("filters parse in both Docker forms") {
  auto modern = Query::parse(
                    "filters=%7B%22name%22%3A%7B%22web%22%3Atrue%2C%22db%22%3Atrue%7D%2C%22role%22"
                    "%3A%7B%22manager%22%3Atrue%7D%7D")
                    .filters();
  CHECK(modern.values("name") == std::vector<std::string>{"db", "web"});
  CHECK(modern.values("role") == std::vector<std::string>{"manager"});
  CHECK(modern.has("role"));
  CHECK_FALSE(modern.has("id"));
  modern.requireKnown({"name", "role"});
  auto [status, message] = errorOf([&]() { modern.requireKnown({"name"}); });
  CHECK(status == 400);
  CHECK(message == "invalid filter 'role'");

  auto legacy = Filters::parse(R"({"label":["a=b","c"]})");
  CHECK(legacy.values("label") == std::vector<std::string>{"a=b", "c"});
  CHECK(Filters::parse("").empty());
  CHECK(Query::parse("").filters().empty());
}

TEST_CASE("malformed filters say what is wrong") {
  auto check = [](const std::string& json, const std::string& expected) {
    auto [status, message] = errorOf([&]() { Filters::parse(json); });
    CHECK(status == 400);
    INFO(message);
    CHECK(message.find(expected) != std::string::npos);
  };
  check("{not json", "malformed JSON in filters parameter");
  check("[1,2]", "filters parameter must be a JSON object");
  check(R"({"name":"web"})", "\"name\" must map to an object");
  check(R"({"name":{"web":"yes"}})", "\"name\".\"web\" must be true or false");
  check(R"({"name":["web",3]})", "\"name\"[1] must be a string");
}

TEST_CASE("the JSON body helper refuses malformed JSON, wrong content types and missing bodies") {
  Request request;
  request.body = R"({"Name":"web"})";
  request.headers.emplace_back("content-type", "application/json; charset=utf-8");
  CHECK(request.json().at("Name").as_string() == "web");

  request.body = R"({"Name": )";
  auto [status, message] = errorOf([&]() { request.json(); });
  CHECK(status == 400);
  CHECK(message.starts_with("malformed JSON in request body: "));

  request.body = R"({"a":1} trailing)";
  CHECK(errorOf([&]() { request.json(); }).first == 400);

  request.body = "  \n";
  CHECK_FALSE(request.jsonIfAny());
  CHECK(errorOf([&]() { request.json(); }).second.find("missing request body") == 0);

  request.body = "{}";
  request.headers = {{"Content-Type", "text/plain"}};
  CHECK(errorOf([&]() { request.json(); }).second ==
        "unsupported Content-Type header (text/plain): must be 'application/json'");
}

TEST_CASE("failures map to statuses, also after crossing a KJ continuation") {
  CHECK(failureOf(std::make_exception_ptr(Error(404, "no such node: x"))).status == 404);
  auto plain = failureOf(std::make_exception_ptr(std::runtime_error("disk full")));
  CHECK(plain.status == 500);
  CHECK(plain.message == "disk full");

  kj::EventLoop loop;
  kj::WaitScope waitScope(loop);
  auto viaKj = [&](auto thrower) {
    kj::Maybe<kj::Exception> caught;
    kj::evalLater(thrower).then([]() {}, [&caught](kj::Exception&& e) { caught = kj::mv(e); })
        .wait(waitScope);
    KJ_IF_MAYBE(e, caught) { return failureOf(*e); }
    FAIL("nothing was thrown");
    return Failure{};
  };
  auto error = viaKj([]() { throw Error(409, "name conflicts with an existing object"); });
  CHECK(error.status == 409);
  CHECK(error.message == "name conflicts with an existing object");
  auto standard = viaKj([]() { throw std::runtime_error("boom"); });
  CHECK(standard.status == 500);
  CHECK(standard.message == "boom");
  CHECK(viaKj([]() { KJ_FAIL_REQUIRE("bad"); }).status == 500);
  CHECK(viaKj([]() { kj::throwFatalException(KJ_EXCEPTION(OVERLOADED, "busy")); }).status == 503);
  CHECK(viaKj([]() { kj::throwFatalException(KJ_EXCEPTION(UNIMPLEMENTED, "no")); }).status ==
        501);
}

TEST_CASE("response helpers build Docker's JSON shapes") {
  auto error = Response::error(404, "page not found");
  CHECK(error.status == 404);
  CHECK(boost::json::parse(error.body).at("message").as_string() == "page not found");
  CHECK(error.headers.at(0) == std::pair<std::string, std::string>("Content-Type",
                                                                   "application/json"));
  auto empty = Response::empty(204);
  CHECK(empty.body.empty());
  CHECK(empty.headers.empty());
  auto json = Response::json(201, boost::json::object{{"ID", "abc"}}).withHeader("X-A", "b");
  CHECK(boost::json::parse(json.body).at("ID").as_string() == "abc");
  CHECK(json.headers.back().first == "X-A");
}
