// What the runtime does when dockerd is not there or goes away: daemonDown task errors, a failing
// health, and an events() stream that says daemonRestarted when the daemon comes back. The
// "daemon" here is a scripted fake on a Unix socket in a scratch directory, served by the test's
// own event loop (the plugin runs on its own thread).
#include "harness.h"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>

namespace swarm::docker::test {
namespace {

using Action = schema::RuntimeEvent::Action;

int64_t nowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string scratchSocket() {
  char dirTemplate[] = "/tmp/rdt-fake-XXXXXX";
  REQUIRE(mkdtemp(dirTemplate) != nullptr);
  return std::string(dirTemplate) + "/docker.sock";
}

std::string eventLine(const char* action, const char* taskId, int64_t timeNano, int exitCode) {
  return std::string(R"({"Type":"container","Action":")") + action +
         R"(","Actor":{"ID":"c-1","Attributes":{"com.docker.swarm.task.id":")" + taskId +
         R"(","exitCode":")" + std::to_string(exitCode) + R"("}},"timeNano":)" +
         std::to_string(timeNano) + "}\n";
}

std::string chunk(const std::string& data) {
  char size[20];
  snprintf(size, sizeof(size), "%zx\r\n", data.size());
  return size + data + "\r\n";
}

// Answers /_ping; the first /events stream sends one event and then drops the connection (the
// daemon died), the second sends another and stays open.
class FakeDaemon {
 public:
  FakeDaemon(kj::AsyncIoContext& io, std::string path) : path(std::move(path)) {
    auto address = io.provider->getNetwork().parseAddress(kj::str("unix:", this->path.c_str())).wait(io.waitScope);
    listener = address->listen();
    acceptLoop = accept().eagerlyEvaluate([](kj::Exception&& e) { KJ_LOG(ERROR, e); });
  }
  ~FakeDaemon() { unlink(path.c_str()); rmdir(path.substr(0, path.rfind('/')).c_str()); }

  std::vector<std::string> targets;  // request lines seen, in order
  // The events' times: after the subscription starts, as a real daemon's would be.
  const int64_t firstEventTime = nowNanos() + 1000000000;
  const int64_t secondEventTime = firstEventTime + 1000000000;

 private:
  struct Connection {
    kj::Own<kj::AsyncIoStream> stream;
    std::string request;
    char buffer[4096];
  };

  kj::Promise<void> accept() {
    return listener->accept().then([this](kj::Own<kj::AsyncIoStream> stream) {
      auto c = kj::heap<Connection>();
      c->stream = kj::mv(stream);
      auto& ref = *c;
      open.add(readRequest(ref).attach(kj::mv(c)));
      return accept();
    });
  }

  kj::Promise<void> readRequest(Connection& c) {
    return c.stream->tryRead(c.buffer, 1, sizeof(c.buffer)).then([this, &c](size_t n) -> kj::Promise<void> {
      if (n == 0) return kj::READY_NOW;
      c.request.append(c.buffer, n);
      if (c.request.find("\r\n\r\n") == std::string::npos) return readRequest(c);
      std::string line = c.request.substr(0, c.request.find("\r\n"));
      targets.push_back(line);
      if (line.find(" /v1.41/_ping ") != std::string::npos) {
        return send(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK");
      }
      if (line.find(" /v1.41/events?") != std::string::npos) {
        const char* head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
        if (++eventStreams == 1) {
          // One event, then the connection breaks mid-stream.
          return send(c, head + chunk(eventLine("start", "t-1", firstEventTime, 0)));
        }
        return send(c, head + chunk(eventLine("die", "t-1", secondEventTime, 3))).then([]() {
          return kj::Promise<void>(kj::NEVER_DONE);  // stays open
        });
      }
      return send(c, "HTTP/1.1 404 Not Found\r\nContent-Length: 21\r\n\r\n{\"message\":\"no fake\"}");
    });
  }

  kj::Promise<void> send(Connection& c, std::string bytes) {
    auto owned = kj::heapString(bytes.data(), bytes.size());
    auto write = c.stream->write(owned.begin(), owned.size());
    return write.attach(kj::mv(owned));
  }

  std::string path;
  kj::Own<kj::ConnectionReceiver> listener;
  int eventStreams = 0;
  class Errors final : public kj::TaskSet::ErrorHandler {
    void taskFailed(kj::Exception&&) override {}
  } errors;
  kj::TaskSet open{errors};
  kj::Promise<void> acceptLoop = nullptr;
};

TEST_CASE("runtime-docker: with no daemon, create is daemonDown and health is failing") {
  std::string socket = scratchSocket();  // the directory exists, the socket does not
  Runtime rt({{"socket", socket}});
  TaskDef t;
  t.id = rt.taskId("down");
  auto outcome = rt.create(t);
  CHECK_FALSE(outcome.ok);
  CHECK(outcome.errorKind == schema::TaskError::Kind::DAEMON_DOWN);
  CHECK_THAT(outcome.message, Catch::Contains("docker daemon not reachable at unix:" + socket));
  std::string message;
  CHECK(rt.health(&message) == schema::Health::Status::FAILING);
  CHECK_THAT(message, Catch::Contains(socket));
  auto error = kj::runCatchingExceptions([&]() { rt.inspect(t.id); });
  KJ_IF_MAYBE (e, error) {
    CHECK_THAT(std::string(e->getDescription().cStr()), Catch::Contains("docker daemon not reachable"));
  } else {
    FAIL("inspect() succeeded with no daemon");
  }
  rmdir(socket.substr(0, socket.rfind('/')).c_str());
}

TEST_CASE("runtime-docker: events say daemonRestarted when the daemon drops the stream and returns") {
  std::string socket = scratchSocket();
  Runtime rt({{"socket", socket}});
  FakeDaemon daemon(rt.io, socket);
  auto [handle, seen] = rt.subscribe();
  REQUIRE(rt.waitFor([&, &seen = seen]() { return seen->size() >= 3; }, 20));
  CHECK((*seen)[0].action == Action::START);
  CHECK((*seen)[0].taskId == "t-1");
  CHECK((*seen)[1].action == Action::DAEMON_RESTARTED);
  CHECK((*seen)[2].action == Action::DIE);
  CHECK((*seen)[2].exitCode == 3);
  // The second stream resumes from the last event it delivered.
  std::vector<std::string> eventRequests;
  for (auto& t : daemon.targets) {
    if (t.find("/events?") != std::string::npos) eventRequests.push_back(t);
  }
  REQUIRE(eventRequests.size() >= 2);
  char since[40];
  snprintf(since, sizeof(since), "since=%lld.%09lld", static_cast<long long>(daemon.firstEventTime / 1000000000),
           static_cast<long long>(daemon.firstEventTime % 1000000000));
  CHECK_THAT(eventRequests[1], Catch::Contains(since));
  handle = nullptr;
}

}  // namespace
}  // namespace swarm::docker::test
