// A small synchronous Docker Engine API client over HTTP/1.1 (Boost.Beast), on a Unix socket or
// plain loopback TCP. It negotiates the API version with HEAD /_ping once, as the docker CLI does,
// then sends every call to /v<version>/...; error answers become DaemonError with the server's
// {"message"}.
#pragma once

#include <boost/json/value.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace swarm::ctl {

// The API versions swarmctl speaks: it uses min(kMaxApiVersion, the server's Api-Version).
inline constexpr std::string_view kMaxApiVersion = "1.41";
inline constexpr std::string_view kMinApiVersion = "1.40";
inline constexpr std::string_view kDefaultHost = "unix:///var/run/swarm-kernel.sock";

// Where the manager listens: "unix:///path" or "tcp://host:port".
struct HostAddress {
  std::string text;  // as given, for messages
  bool isUnix = true;
  std::string path;  // unix
  std::string host;  // tcp
  std::string port;  // tcp
};

// Throws std::invalid_argument with a message that says what form is expected.
HostAddress parseHostAddress(std::string_view text);

// The manager could not be reached (or the connection broke): names the address.
class ConnectionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The server answered with an error status; what() is its {"message"} (or the raw body).
class DaemonError : public std::runtime_error {
 public:
  DaemonError(unsigned status, const std::string& message)
      : std::runtime_error(message), status(status) {}
  unsigned status;
};

using Query = std::vector<std::pair<std::string, std::string>>;

struct Response {
  unsigned status = 0;
  std::string body;
};

class ApiClient {
 public:
  ApiClient(HostAddress address, std::chrono::milliseconds timeout);
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  // Sends METHOD /v<version><path>?<query> with an optional JSON body. Throws DaemonError for a
  // status >= 400 and ConnectionError when the manager cannot be reached.
  Response call(std::string_view method, std::string_view path, const Query& query = {},
                const std::optional<boost::json::value>& body = std::nullopt);

  // call() whose body is parsed as JSON (null for an empty body).
  boost::json::value get(std::string_view path, const Query& query = {});
  boost::json::value post(std::string_view path, const Query& query = {},
                          const std::optional<boost::json::value>& body = std::nullopt);

  // Streams a GET response body to `onData` as it arrives (service logs). `follow` disables the
  // timeout once the headers are in.
  void stream(std::string_view path, const Query& query, bool follow,
              const std::function<void(std::string_view)>& onData);

  // The negotiated version ("1.41"); pings the manager the first time.
  const std::string& apiVersion();
  const HostAddress& address() const { return target; }

  struct Connection;  // defined in client.cpp

 private:
  HostAddress target;
  std::chrono::milliseconds timeout;
  std::optional<std::string> version;
  std::unique_ptr<Connection> connection;
};

// "a=b&c=d" with RFC 3986 percent-encoding.
std::string encodeQuery(const Query& query);

}  // namespace swarm::ctl
