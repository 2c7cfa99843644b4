// FakeDockerApi: a real HTTP/1.1 server (Boost.Beast, synchronous, one thread) on a Unix socket
// under a temp directory, answering canned Docker-shaped JSON and recording every request. It
// stands in for a swarm-kernel manager so swarmctl's requests and output can be checked exactly.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace swarm::ctl::testing {

struct RecordedRequest {
  std::string method;
  std::string target;  // path and query as sent: "/v1.41/nodes/abc/update?version=7"
  std::string path;    // without the query
  std::map<std::string, std::string> query;  // decoded
  std::string body;

  boost::json::value json() const { return body.empty() ? nullptr : boost::json::parse(body); }
};

struct Reply {
  unsigned status = 200;
  std::string body;  // JSON text (or empty)
};

inline Reply jsonReply(const boost::json::value& value, unsigned status = 200) {
  return Reply{status, boost::json::serialize(value)};
}

inline Reply errorReply(unsigned status, const std::string& message) {
  return jsonReply(boost::json::object{{"message", message}}, status);
}

class FakeDockerApi {
 public:
  using Handler = std::function<Reply(const RecordedRequest&)>;

  FakeDockerApi() {
    std::string pattern = "/tmp/swarmctl-test-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir = pattern;
    socketPath = (dir / "fake-docker-api.sock").string();
    acceptor.open(boost::asio::local::stream_protocol());
    acceptor.bind(boost::asio::local::stream_protocol::endpoint(socketPath));
    acceptor.listen();
    thread = std::thread([this]() { serve(); });
  }

  ~FakeDockerApi() {
    stopping = true;
    // Wake the blocking accept() with a throwaway connection.
    boost::system::error_code ignored;
    boost::asio::io_context io;
    boost::asio::local::stream_protocol::socket waker(io);
    waker.connect(boost::asio::local::stream_protocol::endpoint(socketPath), ignored);
    thread.join();
    std::error_code removeError;
    std::filesystem::remove_all(dir, removeError);
  }

  // Answers "METHOD /path" (path without the /v1.xx prefix and without the query).
  void on(const std::string& method, const std::string& path, Handler handler) {
    std::lock_guard lock(mutex);
    routes[method + " " + path] = std::move(handler);
  }
  void on(const std::string& method, const std::string& path, Reply reply) {
    on(method, path, [reply](const RecordedRequest&) { return reply; });
  }

  // Every request except the version pings.
  std::vector<RecordedRequest> requests() const {
    std::lock_guard lock(mutex);
    std::vector<RecordedRequest> result;
    for (const auto& request : recorded) {
      if (request.path != "/_ping") result.push_back(request);
    }
    return result;
  }
  std::vector<RecordedRequest> pings() const {
    std::lock_guard lock(mutex);
    std::vector<RecordedRequest> result;
    for (const auto& request : recorded) {
      if (request.path == "/_ping") result.push_back(request);
    }
    return result;
  }

  std::string host() const { return "unix://" + socketPath; }

  std::string apiVersion = "1.41";
  std::filesystem::path dir;
  std::string socketPath;

 private:
  static std::string decode(const std::string& text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '%' && i + 2 < text.size()) {
        out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        out += text[i] == '+' ? ' ' : text[i];
      }
    }
    return out;
  }

  void serve() {
    namespace http = boost::beast::http;
    while (!stopping) {
      boost::asio::local::stream_protocol::socket socket(io);
      boost::system::error_code error;
      acceptor.accept(socket, error);
      if (error || stopping) break;
      boost::beast::flat_buffer buffer;
      while (true) {
        http::request<http::string_body> request;
        http::read(socket, buffer, request, error);
        if (error) break;
        RecordedRequest recorded{std::string(request.method_string()), std::string(request.target()),
                                 "", {}, request.body()};
        std::string target = recorded.target;
        auto question = target.find('?');
        std::string path = target.substr(0, question);
        if (question != std::string::npos) {
          std::string query = target.substr(question + 1);
          std::size_t start = 0;
          while (start <= query.size()) {
            auto end = query.find('&', start);
            std::string pair = query.substr(start, end == std::string::npos ? std::string::npos : end - start);
            auto eq = pair.find('=');
            if (!pair.empty()) recorded.query[decode(pair.substr(0, eq))] = eq == std::string::npos ? "" : decode(pair.substr(eq + 1));
            if (end == std::string::npos) break;
            start = end + 1;
          }
        }
        // Strip "/v1.41" as the Engine does.
        if (path.rfind("/v1.", 0) == 0) {
          auto slash = path.find('/', 1);
          path = slash == std::string::npos ? "/" : path.substr(slash);
        }
        recorded.path = path;
        Reply reply;
        {
          std::lock_guard lock(mutex);
          recorded_push(recorded);
        }
        if (path == "/_ping") {
          reply = Reply{200, "OK"};
        } else {
          Handler handler;
          {
            std::lock_guard lock(mutex);
            auto found = routes.find(recorded.method + " " + path);
            if (found != routes.end()) handler = found->second;
          }
          reply = handler ? handler(recorded) : errorReply(404, "page not found");
        }
        http::response<http::string_body> response{static_cast<http::status>(reply.status), 11};
        response.set("Api-Version", apiVersion);
        response.set("Ostype", "linux");
        response.set(http::field::content_type, path == "/_ping" ? "text/plain" : "application/json");
        response.body() = reply.body;
        response.keep_alive(request.keep_alive());
        response.prepare_payload();
        if (request.method() == http::verb::head) {
          http::response<http::empty_body> head{response.result(), 11};
          for (const auto& field : response) head.set(field.name_string(), field.value());
          http::write(socket, head, error);
        } else {
          http::write(socket, response, error);
        }
        if (error || !request.keep_alive()) break;
      }
    }
  }

  void recorded_push(const RecordedRequest& request) { recorded.push_back(request); }

  boost::asio::io_context io;
  boost::asio::local::stream_protocol::acceptor acceptor{io};
  std::thread thread;
  std::atomic<bool> stopping{false};
  mutable std::mutex mutex;
  std::map<std::string, Handler> routes;
  std::vector<RecordedRequest> recorded;
};

}  // namespace swarm::ctl::testing
