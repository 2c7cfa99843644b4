#include "client.h"

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <cstdio>

namespace swarm::ctl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using Protocol = asio::generic::stream_protocol;

HostAddress parseHostAddress(std::string_view text) {
  HostAddress address;
  address.text = std::string(text);
  if (text.rfind("unix://", 0) == 0) {
    address.path = std::string(text.substr(7));
    if (address.path.empty() || address.path.front() != '/') {
      throw std::invalid_argument("host '" + address.text +
                                  "' must name an absolute socket path, e.g. "
                                  "unix:///var/run/swarm-kernel.sock");
    }
    return address;
  }
  if (text.rfind("tcp://", 0) == 0) {
    std::string_view rest = text.substr(6);
    while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    auto colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == rest.size()) {
      throw std::invalid_argument("host '" + address.text +
                                  "' must be tcp://HOST:PORT, e.g. tcp://127.0.0.1:2375");
    }
    address.isUnix = false;
    address.host = std::string(rest.substr(0, colon));
    if (address.host.size() > 2 && address.host.front() == '[') {
      address.host = address.host.substr(1, address.host.size() - 2);
    }
    address.port = std::string(rest.substr(colon + 1));
    return address;
  }
  throw std::invalid_argument("host '" + address.text +
                              "' is neither unix:///PATH nor tcp://HOST:PORT");
}

std::string encodeQuery(const Query& query) {
  std::string out;
  for (const auto& [key, value] : query) {
    if (!out.empty()) out += '&';
    for (const std::string* part : {&key, &value}) {
      for (unsigned char c : *part) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
          out += static_cast<char>(c);
        } else {
          char hex[4];
          std::snprintf(hex, sizeof hex, "%%%02X", c);
          out += hex;
        }
      }
      if (part == &key) out += '=';
    }
  }
  return out;
}

// One keep-alive connection. Every operation is asynchronous under the hood only so that
// basic_stream's deadline applies; the caller sees blocking calls.
struct ApiClient::Connection {
  asio::io_context io;
  beast::basic_stream<Protocol> stream{io};
  beast::flat_buffer buffer;
  bool open = false;

  template <typename Start>
  void run(Start&& start, beast::error_code& error) {
    bool done = false;
    start([&](beast::error_code result, auto&&...) {
      error = result;
      done = true;
    });
    io.restart();
    io.run();
    if (!done) error = asio::error::operation_aborted;
  }
};

ApiClient::ApiClient(HostAddress address, std::chrono::milliseconds timeout)
    : target(std::move(address)), timeout(timeout) {}

ApiClient::~ApiClient() = default;

namespace {

std::string unreachable(const HostAddress& address, const std::string& reason) {
  return "Cannot connect to the swarm-kernel manager at " + address.text + ": " + reason +
         ". Is the manager running? (choose another address with -H or SWARMCTL_HOST)";
}

std::string errorMessage(const Response& response) {
  std::string message;
  try {
    auto parsed = json::parse(response.body);
    if (parsed.is_object()) {
      if (auto* text = parsed.get_object().if_contains("message"); text && text->is_string()) {
        message = std::string(text->get_string());
      }
    }
  } catch (const std::exception&) {
  }
  if (message.empty()) {
    message = response.body;
    while (!message.empty() && (message.back() == '\n' || message.back() == '\r')) {
      message.pop_back();
    }
  }
  if (message.empty()) message = "HTTP status " + std::to_string(response.status);
  return message;
}

bool versionBelow(std::string_view a, std::string_view b) {
  auto split = [](std::string_view v) {
    auto dot = v.find('.');
    int major = std::atoi(std::string(v.substr(0, dot)).c_str());
    int minor = dot == std::string_view::npos ? 0 : std::atoi(std::string(v.substr(dot + 1)).c_str());
    return std::pair{major, minor};
  };
  return split(a) < split(b);
}

}  // namespace

namespace {

// Sends one request on `connection` (connecting first if needed) and reads the header; the body
// is read by the caller through `parser`.
template <typename Parser>
void exchange(ApiClient::Connection& connection, const HostAddress& target,
              std::chrono::milliseconds timeout, http::request<http::string_body>& request,
              Parser& parser) {
  beast::error_code error;
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool reused = connection.open;
    if (!connection.open) {
      connection.stream.close();
      Protocol::endpoint endpoint;
      if (target.isUnix) {
        endpoint = Protocol::endpoint(asio::local::stream_protocol::endpoint(target.path));
      } else {
        asio::ip::tcp::resolver resolver(connection.io);
        beast::error_code resolveError;
        auto results = resolver.resolve(target.host, target.port, resolveError);
        if (resolveError || results.empty()) {
          throw ConnectionError(unreachable(target, "cannot resolve " + target.host + ": " +
                                                        resolveError.message()));
        }
        endpoint = Protocol::endpoint(results.begin()->endpoint());
      }
      connection.stream.expires_after(timeout);
      connection.run([&](auto handler) { connection.stream.async_connect(endpoint, handler); },
                     error);
      if (error) throw ConnectionError(unreachable(target, error.message()));
      connection.open = true;
      connection.buffer.clear();
    }
    connection.stream.expires_after(timeout);
    connection.run(
        [&](auto handler) { http::async_write(connection.stream, request, handler); }, error);
    if (!error) {
      connection.run(
          [&](auto handler) {
            http::async_read_header(connection.stream, connection.buffer, parser, handler);
          },
          error);
    }
    if (!error) return;
    connection.open = false;
    // A kept-alive connection the server closed in the meantime: retry once on a fresh one.
    if (!reused || error == beast::error::timeout) break;
  }
  if (error == beast::error::timeout) {
    throw ConnectionError("the manager at " + target.text + " did not answer within " +
                          std::to_string(timeout.count()) + " ms (raise --timeout)");
  }
  throw ConnectionError("lost the connection to the manager at " + target.text + ": " +
                        error.message());
}

http::request<http::string_body> makeRequest(const HostAddress& target, std::string_view method,
                                             const std::string& url,
                                             const std::optional<json::value>& body) {
  http::request<http::string_body> request;
  request.method_string(std::string(method));
  request.target(url);
  request.version(11);
  // Go's net/http (and so dockerd) refuses requests without a Host header.
  request.set(http::field::host, target.isUnix ? "swarm-kernel" : target.host + ":" + target.port);
  request.set(http::field::user_agent, "swarmctl");
  if (body) {
    request.set(http::field::content_type, "application/json");
    request.body() = json::serialize(*body);
  }
  request.prepare_payload();
  return request;
}

}  // namespace

const std::string& ApiClient::apiVersion() {
  if (version) return *version;
  if (!connection) connection = std::make_unique<Connection>();
  std::string serverVersion;
  for (std::string_view method : {"HEAD", "GET"}) {
    auto request = makeRequest(target, method, "/_ping", std::nullopt);
    http::response_parser<http::string_body> parser;
    if (method == "HEAD") parser.skip(true);
    exchange(*connection, target, timeout, request, parser);
    beast::error_code error;
    if (method != "HEAD") {
      connection->run([&](auto handler) {
        http::async_read(connection->stream, connection->buffer, parser, handler);
      }, error);
      if (error) {
        connection->open = false;
        throw ConnectionError("lost the connection to the manager at " + target.text + ": " +
                              error.message());
      }
    }
    auto& response = parser.get();
    if (!response.keep_alive()) connection->open = false;
    if (auto header = response.find("Api-Version"); header != response.end()) {
      serverVersion = std::string(header->value());
      break;
    }
    if (response.result_int() < 400) break;
  }
  // As the docker CLI: without the header, assume our own maximum.
  if (serverVersion.empty() || !versionBelow(serverVersion, kMaxApiVersion)) {
    serverVersion = std::string(kMaxApiVersion);
  }
  if (versionBelow(serverVersion, kMinApiVersion)) {
    throw DaemonError(400, "the manager at " + target.text + " speaks API version " +
                               serverVersion + " but swarmctl needs at least " +
                               std::string(kMinApiVersion) + "; upgrade the manager");
  }
  version = serverVersion;
  return *version;
}

Response ApiClient::call(std::string_view method, std::string_view path, const Query& query,
                         const std::optional<json::value>& body) {
  std::string url = "/v" + apiVersion() + std::string(path);
  if (!query.empty()) url += "?" + encodeQuery(query);
  auto request = makeRequest(target, method, url, body);
  http::response_parser<http::string_body> parser;
  parser.body_limit(256 * 1024 * 1024);
  if (method == "HEAD") parser.skip(true);
  exchange(*connection, target, timeout, request, parser);
  beast::error_code error;
  connection->stream.expires_after(timeout);
  connection->run([&](auto handler) {
    http::async_read(connection->stream, connection->buffer, parser, handler);
  }, error);
  if (error) {
    connection->open = false;
    throw ConnectionError("lost the connection to the manager at " + target.text + ": " +
                          error.message());
  }
  auto& message = parser.get();
  if (!message.keep_alive()) connection->open = false;
  Response response{message.result_int(), std::move(message.body())};
  if (response.status >= 400) throw DaemonError(response.status, errorMessage(response));
  return response;
}

namespace {

json::value parseBody(const Response& response, std::string_view path) {
  if (response.body.empty()) return nullptr;
  try {
    return json::parse(response.body);
  } catch (const std::exception& e) {
    throw DaemonError(response.status, "the manager answered " + std::string(path) +
                                           " with malformed JSON: " + e.what());
  }
}

}  // namespace

json::value ApiClient::get(std::string_view path, const Query& query) {
  return parseBody(call("GET", path, query), path);
}

json::value ApiClient::post(std::string_view path, const Query& query,
                            const std::optional<json::value>& body) {
  return parseBody(call("POST", path, query, body), path);
}

void ApiClient::stream(std::string_view path, const Query& query, bool follow,
                       const std::function<void(std::string_view)>& onData) {
  std::string url = "/v" + apiVersion() + std::string(path);
  if (!query.empty()) url += "?" + encodeQuery(query);
  auto request = makeRequest(target, "GET", url, std::nullopt);
  http::response_parser<http::string_body> parser;
  parser.body_limit(boost::none);
  exchange(*connection, target, timeout, request, parser);
  if (parser.get().result_int() >= 400) {
    beast::error_code error;
    connection->run([&](auto handler) {
      http::async_read(connection->stream, connection->buffer, parser, handler);
    }, error);
    connection->open = false;
    Response response{parser.get().result_int(), parser.get().body()};
    throw DaemonError(response.status, errorMessage(response));
  }
  if (follow) connection->stream.expires_never();
  while (!parser.is_done()) {
    if (!follow) connection->stream.expires_after(timeout);
    beast::error_code error;
    connection->run([&](auto handler) {
      http::async_read_some(connection->stream, connection->buffer, parser, handler);
    }, error);
    auto& body = parser.get().body();
    if (!body.empty()) {
      onData(body);
      body.clear();
    }
    if (error == http::error::end_of_stream || error == asio::error::eof) break;
    if (error) {
      connection->open = false;
      throw ConnectionError("lost the connection to the manager at " + target.text + ": " +
                            error.message());
    }
  }
  // A streamed response ends its connection (the server closes it after the body).
  connection->open = false;
}

}  // namespace swarm::ctl
