// The HTTP server over real Unix and loopback TCP sockets, with handlers on a real KJ loop thread.
#include "errors.h"
#include "harness.h"
#include "http/server.h"

#include <boost/json.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <future>

using namespace swarm::http;
using namespace swarm::http::testing;

namespace {

struct Fixture {
  Fixture() {
    options.serverVersion = "0.1.0-test";
    options.unixSocket = dir.path / "api.sock";
  }

  Server& make() {
    server = std::make_unique<Server>(options, kj.mailbox());
    return *server;
  }

  // The usual routes, then start().
  Server& startWithRoutes() {
    auto& s = make();
    auto kjThread = kj.threadId();
    s.route("GET", "/nodes/{id}", [kjThread](Request request) -> kj::Promise<Response> {
      boost::json::object body;
      body["id"] = request.param("id");
      body["version"] = request.version.toString();
      body["method"] = request.method;
      body["onKjThread"] = std::this_thread::get_id() == kjThread;
      return Response::json(200, body);
    });
    s.route("POST", "/nodes/{id}/update", [](Request request) -> kj::Promise<Response> {
      auto version = request.query.unsignedInteger("version");
      if (!version) throw Error(400, "missing version");
      return Response::empty(200);
    });
    s.route("POST", "/echo", [](Request request) -> kj::Promise<Response> {
      return Response::text(200, request.body);
    });
    s.route("POST", "/json", [](Request request) -> kj::Promise<Response> {
      auto body = request.json();
      return Response::json(200, boost::json::object{{"name", body.at("Name")}});
    });
    s.route("POST", "/optional", [](Request request) -> kj::Promise<Response> {
      auto body = request.jsonIfAny();
      return Response::text(200, body ? "something" : "nothing");
    });
    s.route("GET", "/flags", [](Request request) -> kj::Promise<Response> {
      bool force = request.query.flag("force");
      auto filters = request.query.filters();
      filters.requireKnown({"name", "role"});
      boost::json::object body;
      body["force"] = force;
      boost::json::array names;
      for (const auto& name : filters.values("name")) names.emplace_back(name.c_str());
      body["names"] = names;
      return Response::json(200, body);
    });
    s.route("GET", "/throws", [](Request) -> kj::Promise<Response> {
      throw std::runtime_error("the store is on fire");
    });
    s.route("GET", "/throws-later", [this](Request) -> kj::Promise<Response> {
      return kj.kjTimer().afterDelay(1 * kj::MILLISECONDS).then([]() -> Response {
        throw Error(409, "name conflicts with an existing object");
      });
    });
    s.route("GET", "/kj-fails", [](Request) -> kj::Promise<Response> {
      return kj::evalLater([]() -> Response { KJ_FAIL_REQUIRE("invariant broken"); });
    });
    s.start();
    return s;
  }

  Client client() { return Client(options.unixSocket); }

  TempDir dir;
  KjThread kj;
  ServerOptions options;
  std::unique_ptr<Server> server;
};

boost::json::value jsonOf(const ClientResponse& response) {
  return boost::json::parse(response.body());
}

std::string messageOf(const ClientResponse& response) {
  return std::string(jsonOf(response).at("message").as_string());
}

std::string header(const ClientResponse& response, const char* name) {
  return std::string(response[name]);
}

// A socket file at `path` that nothing listens on (what a crashed server leaves).
void makeStaleSocket(const std::filesystem::path& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strcpy(address.sun_path, path.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  ::close(fd);
}

// A listening socket at `path`: another live server. Closed (not unlinked) on destruction.
struct LiveSocket {
  explicit LiveSocket(const std::filesystem::path& path) {
    fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strcpy(address.sun_path, path.c_str());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(fd, 4) == 0);
  }
  ~LiveSocket() { ::close(fd); }
  int fd;
};

std::string startError(Fixture& fixture) {
  try {
    fixture.make().start();
  } catch (const swarm::kernel::UserError& e) {
    return e.what();
  }
  FAIL("start() did not refuse");
  return "";
}

unsigned modeOf(const std::filesystem::path& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

}  // namespace

TEST_CASE("requests reach their handler on the KJ thread with path parameters and the version") {
  Fixture f;
  f.startWithRoutes();
  auto client = f.client();
  auto response = client.request("GET", "/v1.30/nodes/abc%2Fd");
  REQUIRE(response.result_int() == 200);
  auto body = jsonOf(response);
  CHECK(body.at("id").as_string() == "abc/d");
  CHECK(body.at("version").as_string() == "1.30");
  CHECK(body.at("onKjThread").as_bool());
  CHECK(header(response, "Content-Type") == "application/json");

  auto unversioned = client.request("GET", "/nodes/x");
  CHECK(jsonOf(unversioned).at("version").as_string() == "1.41");
  auto update = client.request("POST", "/v1.41/nodes/x/update?version=7", "{}");
  CHECK(update.result_int() == 200);
  CHECK(update.body().empty());
}

TEST_CASE("every response carries Docker's headers") {
  Fixture f;
  f.startWithRoutes();
  auto client = f.client();
  for (const char* target : {"/nodes/x", "/nothing", "/v1.2/nodes/x"}) {
    auto response = client.request("GET", target);
    INFO(target);
    CHECK(header(response, "Api-Version") == "1.41");
    CHECK(header(response, "Docker-Experimental") == "false");
    CHECK(header(response, "Ostype") == "linux");
    CHECK(header(response, "Server") == "swarm-kernel/0.1.0-test");
  }
}

TEST_CASE("a version below the minimum or above the maximum gets Docker's 400") {
  Fixture f;
  f.startWithRoutes();
  auto client = f.client();
  auto old = client.request("GET", "/v1.12/nodes/x");
  CHECK(old.result_int() == 400);
  CHECK(messageOf(old) ==
        "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade "
        "your client to a newer version");
  auto future = client.request("GET", "/v1.99/nodes/x");
  CHECK(future.result_int() == 400);
  CHECK(messageOf(future) ==
        "client version 1.99 is too new. Maximum supported API version is 1.41");
  auto bad = client.request("GET", "/v1.2.3/nodes/x");
  CHECK(bad.result_int() == 400);
  CHECK(messageOf(bad).find("invalid API version \"1.2.3\"") == 0);
}

TEST_CASE("an unknown path is 404 page not found, a known one with the wrong method 405") {
  Fixture f;
  f.startWithRoutes();
  auto client = f.client();
  auto missing = client.request("GET", "/v1.41/nothing/here");
  CHECK(missing.result_int() == 404);
  CHECK(missing.body() == "{\"message\":\"page not found\"}\n");
  auto wrong = client.request("DELETE", "/nodes/x");
  CHECK(wrong.result_int() == 405);
  CHECK(header(wrong, "Allow") == "GET");
  CHECK(messageOf(wrong) == "method DELETE is not allowed on /nodes/x (allowed: GET)");
}

TEST_CASE("HEAD answers with the GET headers and no body, on a kept-alive connection") {
  Fixture f;
  f.startWithRoutes();
  auto client = f.client();
  auto get = client.request("GET", "/nodes/x");
  auto head = client.request("HEAD", "/nodes/x");
  CHECK(head.result_int() == 200);
  CHECK(head.body().empty());
  CHECK(header(head, "Content-Type") == "application/json");
  // Same length as GET's body (whose method field differs by the method's length).
  CHECK(std::stoul(header(head, "Content-Length")) ==
        get.body().size() + std::string("HEAD").size() - std::string("GET").size());
  // Had a body been sent, this response would be garbled.
  auto after = client.request("GET", "/nodes/y");
  CHECK(jsonOf(after).at("id").as_string() == "y");
}

TEST_CASE("keep-alive serves several requests on one connection") {
  Fixture f;
  f.startWithRoutes();
  auto client = f.client();
  for (int i = 0; i < 10; ++i) {
    auto response = client.request("POST", "/echo", "message " + std::to_string(i));
    REQUIRE(response.result_int() == 200);
    CHECK(response.body() == "message " + std::to_string(i));
    CHECK(response.keep_alive());
  }
  // Pipelined: two requests in one write, two answers in order.
  client.send("GET /nodes/a HTTP/1.1\r\nHost: x\r\n\r\nGET /nodes/b HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(jsonOf(client.read()).at("id").as_string() == "a");
  CHECK(jsonOf(client.read()).at("id").as_string() == "b");
}

TEST_CASE("a body over the limit is refused with 413 and a JSON message") {
  Fixture f;
  f.options.bodyLimit = 1024;
  f.startWithRoutes();
  {
    auto client = f.client();
    CHECK(client.request("POST", "/echo", std::string(1024, 'a')).result_int() == 200);
    auto tooBig = client.request("POST", "/echo", std::string(4096, 'a'));
    CHECK(tooBig.result_int() == 413);
    CHECK(messageOf(tooBig) == "request body is larger than the limit of 1024 bytes");
    CHECK_FALSE(tooBig.keep_alive());
    CHECK(client.closedByServer());
  }
  {
    // A chunked body has no length up front: refused as it crosses the limit.
    auto client = f.client();
    std::string chunk(800, 'b');
    client.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n320\r\n" +
                chunk + "\r\n320\r\n" + chunk + "\r\n0\r\n\r\n");
    CHECK(client.read().result_int() == 413);
  }
}

TEST_CASE("malformed JSON is a 400, an empty body is fine where the handler allows it") {
  Fixture f;
  f.startWithRoutes();
  auto client = f.client();
  auto ok = client.request("POST", "/json", R"({"Name":"web"})",
                           "Content-Type: application/json\r\n");
  CHECK(jsonOf(ok).at("name").as_string() == "web");
  auto bad = client.request("POST", "/json", "{\"Name\": ");
  CHECK(bad.result_int() == 400);
  CHECK(messageOf(bad).starts_with("malformed JSON in request body: "));
  auto missing = client.request("POST", "/json", "");
  CHECK(missing.result_int() == 400);
  CHECK(client.request("POST", "/optional", "").body() == "nothing");
  CHECK(client.request("POST", "/optional", "{}").body() == "something");
}

TEST_CASE("bool and filters query parameters over HTTP, good and bad") {
  Fixture f;
  f.startWithRoutes();
  auto client = f.client();
  auto good = client.request("GET", "/flags?force=1&filters=%7B%22name%22%3A%7B%22web%22%3Atrue%7D%7D");
  REQUIRE(good.result_int() == 200);
  CHECK(jsonOf(good).at("force").as_bool());
  CHECK(jsonOf(good).at("names").as_array().at(0).as_string() == "web");
  auto legacy = client.request("GET", "/flags?filters=%7B%22name%22%3A%5B%22db%22%5D%7D");
  CHECK(jsonOf(legacy).at("names").as_array().at(0).as_string() == "db");
  auto badBool = client.request("GET", "/flags?force=yes");
  CHECK(badBool.result_int() == 400);
  CHECK(messageOf(badBool).find("query parameter \"force\"") != std::string::npos);
  auto badFilters = client.request("GET", "/flags?filters=%5B%5D");
  CHECK(badFilters.result_int() == 400);
  CHECK(messageOf(badFilters).find("filters parameter must be a JSON object") == 0);
  auto unknownFilter = client.request("GET", "/flags?filters=%7B%22color%22%3A%7B%22red%22%3Atrue%7D%7D");
  CHECK(unknownFilter.result_int() == 400);
  CHECK(messageOf(unknownFilter) == "invalid filter 'color'");
  CHECK(client.request("GET", "/flags?force=%zz").result_int() == 400);
}

TEST_CASE("a handler's exception becomes its status, or 500, and the server keeps serving") {
  Fixture f;
  f.startWithRoutes();
  auto client = f.client();
  auto thrown = client.request("GET", "/throws");
  CHECK(thrown.result_int() == 500);
  CHECK(messageOf(thrown) == "the store is on fire");
  auto later = client.request("GET", "/throws-later");
  CHECK(later.result_int() == 409);
  CHECK(messageOf(later) == "name conflicts with an existing object");
  auto kjFailure = client.request("GET", "/kj-fails");
  CHECK(kjFailure.result_int() == 500);
  CHECK(messageOf(kjFailure).find("invariant broken") != std::string::npos);
  auto missingVersion = client.request("POST", "/nodes/x/update", "{}");
  CHECK(missingVersion.result_int() == 400);
  CHECK(messageOf(missingVersion) == "missing version");
  CHECK(client.request("GET", "/nodes/x").result_int() == 200);
  CHECK(f.client().request("GET", "/nodes/y").result_int() == 200);
}

TEST_CASE("a client that sends nothing blocks no one and is closed at the header timeout") {
  Fixture f;
  f.options.headerTimeout = std::chrono::milliseconds(300);
  f.startWithRoutes();
  auto silent = f.client();
  auto partial = f.client();
  partial.send("GET /nodes/x HT");
  for (int i = 0; i < 3; ++i) {
    CHECK(f.client().request("GET", "/nodes/x").result_int() == 200);
  }
  CHECK(silent.closedByServer());
  CHECK(partial.closedByServer());
}

TEST_CASE("a streamed response delivers its chunks, then ends") {
  Fixture f;
  auto& server = f.make();
  server.route("GET", "/events", [&f](Request) -> kj::Promise<Response> {
    return Response::stream(200, "application/json", [&f](StreamWriter& out) {
      return out.write("one")
          .then([&f]() { return f.kj.kjTimer().afterDelay(1 * kj::MILLISECONDS); })
          .then([&out]() { return out.write("two"); })
          .then([&out]() { return out.write("three"); });
    });
  });
  server.start();
  auto client = f.client();
  client.send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
  std::size_t chunks = 0;
  auto response = client.readChunked(chunks);
  CHECK(response.result_int() == 200);
  CHECK(response.body() == "onetwothree");
  CHECK(chunks == 4);  // three, then the last (empty) chunk
  CHECK(header(response, "Content-Type") == "application/json");
  CHECK(header(response, "Api-Version") == "1.41");
  CHECK(client.closedByServer());
}

TEST_CASE("a large raw stream through a small buffer arrives whole and in order") {
  Fixture f;
  f.options.streamBufferLimit = 4096;
  auto& server = f.make();
  constexpr int kChunks = 2000;
  server.route("GET", "/logs", [](Request) -> kj::Promise<Response> {
    return Response::stream(
        200, "application/vnd.docker.raw-stream",
        [](StreamWriter& out) {
          // Each write waits for room: the producer follows the client's pace.
          auto next = std::make_shared<int>(0);
          auto step = std::make_shared<std::function<kj::Promise<void>()>>();
          *step = [&out, next, step]() -> kj::Promise<void> {
            if (*next == kChunks) return kj::READY_NOW;
            char line[32];
            std::snprintf(line, sizeof line, "line %06d\n", (*next)++);
            return out.write(std::string(line) + std::string(1000, '.') + "\n")
                .then([step]() { return (*step)(); });
          };
          return (*step)().attach(kj::defer([step]() { *step = nullptr; }));
        },
        StreamFraming::raw);
  });
  server.start();
  auto client = f.client();
  client.send("GET /logs HTTP/1.1\r\nHost: x\r\n\r\n");
  auto& head = client.readHeader();
  CHECK(head.get().result_int() == 200);
  CHECK(head.get()[bhttp::field::transfer_encoding].empty());
  std::string body;
  for (std::string piece = client.readSome(); !piece.empty(); piece = client.readSome()) {
    body += piece;
  }
  REQUIRE(body.size() == kChunks * (12 + 1001));
  for (int i = 0; i < kChunks; i += 397) {
    char line[32];
    std::snprintf(line, sizeof line, "line %06d\n", i);
    CHECK(body.substr(static_cast<std::size_t>(i) * 1013, 12) == line);
  }
}

TEST_CASE("a streamed response is cancelled when the client goes away") {
  Fixture f;
  f.options.streamBufferLimit = 1024;
  auto& server = f.make();
  std::promise<void> producerCancelled;
  std::atomic<bool> sawDisconnect{false};
  server.route("GET", "/follow", [&](Request) -> kj::Promise<Response> {
    return Response::stream(200, "text/plain", [&](StreamWriter& out) {
      out.whenDisconnected()
          .then([&sawDisconnect]() { sawDisconnect = true; })
          .detach([](kj::Exception&&) {});
      auto step = std::make_shared<std::function<kj::Promise<void>()>>();
      *step = [&out, &f, step]() -> kj::Promise<void> {
        return out.write("tick\n")
            .then([&f]() { return f.kj.kjTimer().afterDelay(1 * kj::MILLISECONDS); })
            .then([step]() { return (*step)(); });
      };
      return (*step)().attach(kj::defer([step, &producerCancelled]() {
        *step = nullptr;
        producerCancelled.set_value();
      }));
    });
  });
  server.start();
  {
    auto client = f.client();
    client.send("GET /follow HTTP/1.1\r\nHost: x\r\n\r\n");
    client.readHeader();
    CHECK(client.readSome().find("tick") != std::string::npos);
    client.close();
  }
  CHECK(producerCancelled.get_future().wait_for(std::chrono::seconds(5)) ==
        std::future_status::ready);
  CHECK(eventually([&]() { return sawDisconnect.load(); }));
}

TEST_CASE("the socket file is created with mode 0600, or the configured mode") {
  {
    Fixture f;
    f.startWithRoutes();
    CHECK(modeOf(f.options.unixSocket) == 0600);
    // No staging directory is left behind.
    CHECK(std::distance(std::filesystem::directory_iterator(f.dir.path),
                        std::filesystem::directory_iterator()) == 1);
  }
  {
    Fixture f;
    f.options.unixSocketMode = 0660;
    f.startWithRoutes();
    CHECK(modeOf(f.options.unixSocket) == 0660);
  }
}

TEST_CASE("a stale socket file is replaced, a live one refused") {
  Fixture f;
  SECTION("stale") {
    makeStaleSocket(f.options.unixSocket);
    f.startWithRoutes();
    CHECK(f.client().request("GET", "/nodes/x").result_int() == 200);
  }
  SECTION("live, another process") {
    LiveSocket other(f.options.unixSocket);
    CHECK(startError(f) == "another process is serving " + f.options.unixSocket.string() +
                               "; stop it or choose another socket path");
    // Its file is left alone.
    CHECK(std::filesystem::exists(f.options.unixSocket));
  }
  SECTION("live, another server") {
    f.startWithRoutes();
    Server second(f.options, f.kj.mailbox());
    CHECK_THROWS_WITH(second.start(), Catch::Contains("another process is serving"));
    CHECK(f.client().request("GET", "/nodes/x").result_int() == 200);
  }
}

TEST_CASE("a missing directory or a path that is not a socket is a clear error") {
  Fixture f;
  SECTION("missing directory") {
    f.options.unixSocket = f.dir.path / "no-such-dir" / "api.sock";
    CHECK(startError(f).find("the directory " + (f.dir.path / "no-such-dir").string() +
                             " does not exist; create it first") != std::string::npos);
  }
  SECTION("not a socket") {
    std::ofstream(f.options.unixSocket) << "data";
    CHECK(startError(f).find("it exists and is not a socket") != std::string::npos);
  }
  SECTION("neither socket nor TCP") {
    f.options.unixSocket.clear();
    CHECK(startError(f) == "the HTTP server needs a Unix socket path or a TCP endpoint");
  }
}

TEST_CASE("TCP on 127.0.0.1 port 0 serves next to the Unix socket") {
  Fixture f;
  f.options.tcp = TcpEndpoint{"127.0.0.1", 0};
  f.startWithRoutes();
  REQUIRE(f.server->tcpPort());
  CHECK(*f.server->tcpPort() != 0);
  Client tcp(*f.server->tcpPort());
  CHECK(jsonOf(tcp.request("GET", "/nodes/t")).at("id").as_string() == "t");
  CHECK(f.client().request("GET", "/nodes/u").result_int() == 200);
}

TEST_CASE("a bad TCP address is a clear error") {
  Fixture f;
  f.options.tcp = TcpEndpoint{"not-an-ip", 0};
  CHECK(startError(f).find("\"not-an-ip\" is not an IP address") != std::string::npos);
  // The Unix socket bound first is cleaned up.
  CHECK_FALSE(std::filesystem::exists(f.options.unixSocket));
}

namespace {

// A /slow route whose response the test releases from the KJ thread.
struct SlowRoute {
  explicit SlowRoute(KjThread& kj) : kj(kj) {}
  // The fulfiller belongs to the KJ thread.
  ~SlowRoute() {
    kj.sync([this]() { fulfiller = nullptr; });
  }
  void install(Server& server) {
    server.route("GET", "/slow", [this](Request) -> kj::Promise<Response> {
      auto paf = kj::newPromiseAndFulfiller<Response>();
      fulfiller = kj::mv(paf.fulfiller);
      arrived.set_value();
      return kj::mv(paf.promise);
    });
  }
  bool waitArrived() {
    return arrived.get_future().wait_for(std::chrono::seconds(5)) == std::future_status::ready;
  }
  void release() {
    kj.sync([this]() { fulfiller->fulfill(Response::text(200, "done")); });
  }
  KjThread& kj;
  kj::Own<kj::PromiseFulfiller<Response>> fulfiller;  // KJ thread only
  std::promise<void> arrived;
};

}  // namespace

TEST_CASE("stop() lets a request in flight finish, then closes, removes the socket, and repeats") {
  Fixture f;
  SlowRoute slow(f.kj);
  slow.install(f.make());
  f.server->start();
  auto client = f.client();
  auto idle = f.client();
  client.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(slow.waitArrived());
  std::thread stopper([&]() { f.server->stop(); });
  // Stopping has begun: no more connections, the idle one is closed.
  CHECK(eventually([&]() { return !std::filesystem::exists(f.options.unixSocket); }));
  CHECK(idle.closedByServer());
  slow.release();
  auto response = client.read();
  CHECK(response.result_int() == 200);
  CHECK(response.body() == "done");
  CHECK_FALSE(response.keep_alive());
  CHECK(client.closedByServer());
  stopper.join();
  f.server->stop();  // idempotent
  CHECK_THROWS(f.client());
}

TEST_CASE("stop() cuts a request that does not finish within the stop timeout") {
  Fixture f;
  f.options.stopTimeout = std::chrono::milliseconds(200);
  SlowRoute slow(f.kj);
  slow.install(f.make());
  f.server->start();
  auto client = f.client();
  client.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(slow.waitArrived());
  f.server->stop();
  CHECK(client.closedByServer());
}

TEST_CASE("stopAsync() on the KJ thread keeps serving in-flight requests until they finish") {
  Fixture f;
  SlowRoute slow(f.kj);
  slow.install(f.make());
  f.server->start();
  auto client = f.client();
  client.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(slow.waitArrived());
  f.kj.sync([&]() {
    // Released from the KJ loop itself while the stop is pending.
    auto release = f.kj.kjTimer().afterDelay(20 * kj::MILLISECONDS).then([&]() {
      slow.fulfiller->fulfill(Response::text(200, "done"));
    }).eagerlyEvaluate(nullptr);
    return f.server->stopAsync().attach(kj::mv(release));
  });
  auto response = client.read();
  CHECK(response.body() == "done");
  CHECK_FALSE(std::filesystem::exists(f.options.unixSocket));
}

TEST_CASE("50 concurrent clients are all in flight at once and all answered") {
  Fixture f;
  constexpr int kClients = 50;
  auto& server = f.make();
  std::vector<kj::Own<kj::PromiseFulfiller<Response>>> waiting;  // KJ thread only
  server.route("GET", "/gather/{n}", [&waiting](Request request) -> kj::Promise<Response> {
    auto paf = kj::newPromiseAndFulfiller<Response>();
    waiting.push_back(kj::mv(paf.fulfiller));
    if (waiting.size() == kClients) {
      // Only now, with every request in flight together, does anyone get an answer.
      for (auto& fulfiller : waiting) fulfiller->fulfill(Response::text(200, "together"));
      waiting.clear();
    }
    auto n = request.param("n");
    return paf.promise.then([n](Response response) {
      response.body += " " + n;
      return response;
    });
  });
  server.start();
  std::vector<std::string> bodies(kClients);
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i]() {
      try {
        bodies[i] = f.client().request("GET", "/gather/" + std::to_string(i)).body();
      } catch (const std::exception& e) {
        bodies[i] = e.what();
      }
    });
  }
  for (auto& thread : clients) thread.join();
  for (int i = 0; i < kClients; ++i) CHECK(bodies[i] == "together " + std::to_string(i));
}

TEST_CASE("requests get 503 when the KJ side has gone") {
  Fixture f;
  f.startWithRoutes();
  auto client = f.client();
  CHECK(client.request("GET", "/nodes/x").result_int() == 200);
  f.kj.dropBridge();
  auto response = client.request("GET", "/nodes/x");
  CHECK(response.result_int() == 503);
  CHECK(messageOf(response) == "the manager is shutting down");
  f.kj.stop();
  CHECK(f.client().request("GET", "/nodes/y").result_int() == 503);
}

TEST_CASE("a malformed request line gets 400") {
  Fixture f;
  f.startWithRoutes();
  auto client = f.client();
  client.send("THIS IS NOT HTTP\r\n\r\n");
  auto response = client.read();
  CHECK(response.result_int() == 400);
  CHECK(messageOf(response).find("malformed HTTP request") == 0);
}

TEST_CASE("Expect: 100-continue gets its interim response before the body is sent") {
  Fixture f;
  f.startWithRoutes();
  auto client = f.client();
  client.send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  CHECK(client.read().result_int() == 100);
  client.send("hello");
  auto response = client.read();
  CHECK(response.result_int() == 200);
  CHECK(response.body() == "hello");
}
