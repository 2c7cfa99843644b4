// A real manager process (swarm-kernel with the bundled plugins) fed bad requests over its API
// socket: each gets Docker's status and a message saying what is wrong, nothing changes, and the
// process keeps serving.
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;

struct Reply {
  unsigned status = 0;
  std::string body;
  std::string message() const {
    try {
      auto v = boost::json::parse(body);
      if (v.is_object() && v.as_object().contains("message")) {
        return std::string(v.as_object().at("message").as_string());
      }
    } catch (...) {
    }
    return body;
  }
};

// One raw HTTP/1.1 exchange: the bodies here are deliberately not always JSON.
Reply raw(const fs::path& socket, const std::string& method, const std::string& target,
          const std::string& body = "", const std::string& contentType = "application/json") {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket.c_str(), sizeof(addr.sun_path) - 1);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: api\r\nConnection: close\r\n";
  if (!body.empty() || method == "POST") {
    request += "Content-Type: " + contentType + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  request += "\r\n" + body;
  REQUIRE(::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
  std::string response;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof(buffer))) > 0;) response.append(buffer, n);
  ::close(fd);
  Reply reply;
  REQUIRE(response.rfind("HTTP/1.1 ", 0) == 0);
  reply.status = static_cast<unsigned>(std::stoul(response.substr(9, 3)));
  auto split = response.find("\r\n\r\n");
  if (split != std::string::npos) reply.body = response.substr(split + 4);
  if (response.find("Transfer-Encoding: chunked") != std::string::npos) {
    // Enough de-chunking for the short bodies here.
    std::string joined;
    size_t at = 0;
    while (at < reply.body.size()) {
      size_t eol = reply.body.find("\r\n", at);
      size_t n = std::stoul(reply.body.substr(at, eol - at), nullptr, 16);
      if (n == 0) break;
      joined += reply.body.substr(eol + 2, n);
      at = eol + 2 + n + 2;
    }
    reply.body = joined;
  }
  return reply;
}

class Manager {
 public:
  Manager() {
    std::string pattern = (fs::temp_directory_path() / "api-bad-input-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    dir = pattern;
    socket = dir / "api.sock";
    {
      std::ofstream conf(dir / "plugins.conf");
      conf << "[consensus]\nlibrary = " << CONSENSUS_PLUGIN << "\n[pki]\nlibrary = " << PKI_PLUGIN
           << "\n[scheduler]\nlibrary = " << SCHEDULER_PLUGIN << "\n[runtime]\nlibrary = "
           << RUNTIME_PLUGIN << "\n[transport]\nlibrary = " << TRANSPORT_PLUGIN << "\n";
    }
    std::vector<std::string> args = {SWARM_KERNEL_BIN, "--plugins", (dir / "plugins.conf").string(),
                                     "--state-dir", (dir / "state").string(), "--api-socket",
                                     socket.string(), "--log-level", "error"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    REQUIRE(posix_spawn(&pid, SWARM_KERNEL_BIN, nullptr, nullptr, argv.data(), environ) == 0);
    for (int i = 0; i < 400 && !fs::exists(socket); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    REQUIRE(fs::exists(socket));
  }
  ~Manager() {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  bool alive() const { return kill(pid, 0) == 0; }

  fs::path dir, socket;
  pid_t pid = 0;
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("bad API input gets Docker's status and a clear message, and the manager keeps serving") {
  Manager m;
  const std::string v = "/v1.41";

  // Before init: nothing to manage.
  Reply r = raw(m.socket, "GET", v + "/nodes");
  CHECK(r.status == 503);
  CHECK(contains(r.message(), "not a swarm manager"));

  // Init with broken bodies: nothing is created.
  r = raw(m.socket, "POST", v + "/swarm/init", "{\"ListenAddr\": ");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "malformed JSON"));
  r = raw(m.socket, "POST", v + "/swarm/init", "{\"ListenAddr\": 5}");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "ListenAddr"));
  r = raw(m.socket, "POST", v + "/swarm/init", "{\"ListenAddr\": \"0.0.0.0:2377\", \"Availability\": \"sleep\"}");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "Availability"));
  r = raw(m.socket, "POST", v + "/swarm/init", "{\"ListenAddr\": \"0.0.0.0:2377\"}");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "advertise"));
  r = raw(m.socket, "POST", v + "/swarm/init", "[1,2]");
  CHECK(r.status == 400);
  CHECK(raw(m.socket, "GET", v + "/info").body.find("\"LocalNodeState\":\"inactive\"") != std::string::npos);

  r = raw(m.socket, "POST", v + "/swarm/init",
          "{\"ListenAddr\": \"127.0.0.1:2377\", \"AdvertiseAddr\": \"127.0.0.1\"}");
  REQUIRE(r.status == 200);
  std::string nodeId(boost::json::parse(r.body).as_string());

  // Lookups and filters.
  r = raw(m.socket, "GET", v + "/nodes/nosuchnode");
  CHECK(r.status == 404);
  CHECK(contains(r.message(), "no such node: nosuchnode"));
  r = raw(m.socket, "GET", v + "/nodes?filters=%7Bbad");
  CHECK(r.status == 400);
  r = raw(m.socket, "GET", v + "/nodes?filters=%7B%22colour%22%3A%7B%22x%22%3Atrue%7D%7D");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "colour"));
  r = raw(m.socket, "DELETE", v + "/secrets/nosuchsecret");
  CHECK(r.status == 404);

  // Versions: missing and stale.
  auto node = boost::json::parse(raw(m.socket, "GET", v + "/nodes/" + nodeId).body).as_object();
  uint64_t version = node.at("Version").as_object().at("Index").to_number<uint64_t>();
  std::string spec = "{\"Role\": \"manager\", \"Availability\": \"pause\"}";
  r = raw(m.socket, "POST", v + "/nodes/" + nodeId + "/update", spec);
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "version"));
  r = raw(m.socket, "POST", v + "/nodes/" + nodeId + "/update?version=abc", spec);
  CHECK(r.status == 400);
  r = raw(m.socket, "POST", v + "/nodes/" + nodeId + "/update?version=" + std::to_string(version), spec);
  CHECK(r.status == 200);
  r = raw(m.socket, "POST", v + "/nodes/" + nodeId + "/update?version=" + std::to_string(version), spec);
  CHECK(r.status == 409);
  CHECK(contains(r.message(), "out of sequence"));
  r = raw(m.socket, "POST", v + "/nodes/" + nodeId + "/update?version=" + std::to_string(version + 1),
          "{\"Role\": \"manager\", \"Availability\": 3}");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "Availability"));
  r = raw(m.socket, "POST", v + "/swarm/update?version=1", "{}");
  CHECK(r.status == 409);
  r = raw(m.socket, "POST", v + "/swarm/update?version=1&rotateWorkerToken=maybe", "{}");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "rotateWorkerToken"));

  // Secrets: bad names, data, types, sizes; an empty or non-JSON body.
  r = raw(m.socket, "POST", v + "/secrets/create", "{\"Name\": \"ok\", \"Data\": \"not base64!!\"}");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "Data"));
  r = raw(m.socket, "POST", v + "/secrets/create", "{\"Name\": 42, \"Data\": \"c2VjcmV0\"}");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "Name"));
  r = raw(m.socket, "POST", v + "/secrets/create", "{\"Name\": \"bad name!\", \"Data\": \"c2VjcmV0\"}");
  CHECK(r.status == 400);
  r = raw(m.socket, "POST", v + "/secrets/create", "{\"Name\": \"empty\", \"Data\": \"\"}");
  CHECK(r.status == 400);
  r = raw(m.socket, "POST", v + "/secrets/create", "");
  CHECK(r.status == 400);
  r = raw(m.socket, "POST", v + "/secrets/create", "Name=x", "application/x-www-form-urlencoded");
  CHECK(r.status == 400);
  CHECK(boost::json::parse(raw(m.socket, "GET", v + "/secrets").body).as_array().empty());

  // Only a secret's labels may change.
  r = raw(m.socket, "POST", v + "/secrets/create", "{\"Name\": \"kept\", \"Data\": \"c2VjcmV0\"}");
  REQUIRE(r.status == 201);
  std::string secretId(boost::json::parse(r.body).as_object().at("ID").as_string());
  auto secret = boost::json::parse(raw(m.socket, "GET", v + "/secrets/" + secretId).body).as_object();
  std::string secretVersion = std::to_string(secret.at("Version").as_object().at("Index").to_number<uint64_t>());
  r = raw(m.socket, "POST", v + "/secrets/" + secretId + "/update?version=" + secretVersion,
          "{\"Name\": \"kept\", \"Data\": \"b3RoZXI=\"}");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "only updates to Labels are allowed"));
  r = raw(m.socket, "POST", v + "/secrets/" + secretId + "/update?version=" + secretVersion,
          "{\"Name\": \"kept\", \"Labels\": {\"tier\": \"db\"}}");
  CHECK(r.status == 200);
  secret = boost::json::parse(raw(m.socket, "GET", v + "/secrets/" + secretId).body).as_object();
  CHECK(secret.at("Spec").as_object().at("Labels").as_object().at("tier").as_string() == "db");
  CHECK(raw(m.socket, "DELETE", v + "/secrets/" + secretId).status == 204);

  // Paths, methods and versions.
  r = raw(m.socket, "GET", v + "/no/such/path");
  CHECK(r.status == 404);
  CHECK(contains(r.message(), "page not found"));
  r = raw(m.socket, "PUT", v + "/nodes");
  CHECK(r.status == 405);
  r = raw(m.socket, "GET", "/v1.12/_ping");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "too old"));
  r = raw(m.socket, "POST", v + "/swarm/unlock", "{\"UnlockKey\": \"SWMKEY-1-x\"}");
  CHECK(r.status == 503);
  CHECK(contains(r.message(), "not locked"));

  // Still alive, still the same swarm.
  CHECK(m.alive());
  r = raw(m.socket, "GET", "/_ping");
  CHECK(r.status == 200);
  CHECK(r.body == "OK");
  auto nodes = boost::json::parse(raw(m.socket, "GET", v + "/nodes").body).as_array();
  REQUIRE(nodes.size() == 1);
  CHECK(nodes[0].as_object().at("Spec").as_object().at("Availability").as_string() == "pause");
}
