// A real manager process for API tests: swarm-kernel started with the bundled plugins (paths
// from the test's compile definitions SWARM_KERNEL_BIN, CONSENSUS_PLUGIN, PKI_PLUGIN,
// SCHEDULER_PLUGIN, RUNTIME_PLUGIN, TRANSPORT_PLUGIN) and a temporary state directory, spoken to
// with raw HTTP/1.1 over its API socket. Killed and cleaned up when the Manager goes.
#pragma once

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

namespace swarm::test {

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
  boost::json::value json() const { return boost::json::parse(body); }
};

// One raw HTTP/1.1 exchange: the bodies here are deliberately not always JSON.
inline Reply raw(const fs::path& socket, const std::string& method, const std::string& target,
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
  // `name` prefixes the temporary directory (state, socket, plugins.conf), removed at the end.
  explicit Manager(const std::string& name = "manager") {
    std::string pattern = (fs::temp_directory_path() / (name + "-XXXXXX")).string();
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

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}


}  // namespace swarm::test
