#include "docker_http.h"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <kj/debug.h>

namespace swarm::docker {
namespace {

namespace http = boost::beast::http;

// Exception descriptions start with these, so callers can tell the two daemon failures apart
// (capnp 0.9.2's kj::Exception has no detail slots).
constexpr std::string_view kDownPrefix = "docker daemon not reachable";
constexpr std::string_view kDroppedPrefix = "docker daemon closed the connection";

constexpr size_t kReadChunk = 64 * 1024;

struct Exchange {
  kj::Own<kj::AsyncIoStream> connection;
  http::response_parser<http::string_body> parser;
  std::string unparsed;  // bytes read but not yet taken by the parser
  kj::Array<char> buffer = kj::heapArray<char>(kReadChunk);
  kj::Maybe<kj::Function<kj::Promise<void>(std::string_view)>> onData;
  std::string describe;  // "GET /containers/json", for messages

  bool streaming() const { return onData != nullptr && parser.get().result_int() < 300; }
};

[[noreturn]] void throwDropped(const Exchange& ex, std::string_view why) {
  kj::throwFatalException(KJ_EXCEPTION(DISCONNECTED, kj::str(kDroppedPrefix.data(), " during ",
                                                               ex.describe.c_str(), ": ",
                                                               why.data())));
}

// Feeds what has been read to the parser; returns whether the message is complete.
bool feed(Exchange& ex) {
  while (!ex.parser.is_done() && !ex.unparsed.empty()) {
    boost::system::error_code ec;
    size_t used = ex.parser.put(boost::asio::buffer(ex.unparsed), ec);
    ex.unparsed.erase(0, used);
    if (ec == http::error::need_more) break;
    if (ec) {
      kj::throwFatalException(KJ_EXCEPTION(
          FAILED, kj::str("docker sent a malformed HTTP response to ", ex.describe.c_str(), ": ",
                          ec.message().c_str())));
    }
    if (used == 0) break;
  }
  return ex.parser.is_done();
}

kj::Promise<void> pump(Exchange& ex) {
  return ex.connection->tryRead(ex.buffer.begin(), 1, ex.buffer.size())
      .then([&ex](size_t n) -> kj::Promise<void> {
        bool done;
        if (n == 0) {
          boost::system::error_code ec;
          ex.parser.put_eof(ec);  // ends a body delimited by the connection closing
          if (ec) throwDropped(ex, "the response was cut short");
          done = true;
        } else {
          ex.unparsed.append(ex.buffer.begin(), n);
          done = feed(ex);
        }
        kj::Promise<void> delivered = kj::READY_NOW;
        if (ex.parser.is_header_done() && ex.streaming()) {
          auto& body = ex.parser.get().body();
          if (!body.empty()) {
            // string_body appends at the string's current end, so handing the bytes over and
            // clearing them between reads is safe.
            std::string batch = std::move(body);
            body.clear();
            KJ_IF_MAYBE (f, ex.onData) {
              delivered = (*f)(batch).attach(kj::mv(batch));
            }
          }
        }
        if (done) return delivered;
        return delivered.then([&ex]() { return pump(ex); });
      },
      [&ex](kj::Exception&& e) -> kj::Promise<void> {
        // A read fails only when the connection breaks (reset by a stopping daemon).
        throwDropped(ex, e.getDescription().cStr());
      });
}

}  // namespace

DaemonFailure daemonFailureOf(const kj::Exception& e) {
  std::string_view d(e.getDescription().cStr());
  if (d.substr(0, kDownPrefix.size()) == kDownPrefix) return DaemonFailure::down;
  if (d.substr(0, kDroppedPrefix.size()) == kDroppedPrefix) return DaemonFailure::restarted;
  return DaemonFailure::none;
}

DockerHttp::DockerHttp(kj::Network& network, std::string socketPath, std::string apiPrefix)
    : network(network), socket(std::move(socketPath)), prefix(std::move(apiPrefix)) {}

kj::Promise<Response> DockerHttp::call(kj::StringPtr method, std::string target, std::string body,
                                       kj::StringPtr contentType) {
  return exchange(method, std::move(target), std::move(body), contentType, nullptr);
}

kj::Promise<Response> DockerHttp::stream(kj::StringPtr method, std::string target,
                                         kj::Function<kj::Promise<void>(std::string_view)> onData,
                                         std::string body) {
  return exchange(method, std::move(target), std::move(body), "application/json", kj::mv(onData));
}

kj::Promise<Response> DockerHttp::exchange(
    kj::StringPtr method, std::string target, std::string body, kj::StringPtr contentType,
    kj::Maybe<kj::Function<kj::Promise<void>(std::string_view)>> onData) {
  auto ex = kj::heap<Exchange>();
  ex->parser.body_limit(boost::none);  // event and log streams are unbounded (stack.md §6)
  ex->parser.eager(true);
  ex->onData = kj::mv(onData);
  ex->describe = std::string(method.cStr()) + " " + target;

  // Go's net/http refuses a request without Host (stack.md §6).
  std::string head = std::string(method.cStr()) + " " + prefix + target +
                     " HTTP/1.1\r\nHost: docker\r\nUser-Agent: swarm-kernel-runtime-docker\r\n"
                     "Connection: close\r\n";
  if (!body.empty()) head += "Content-Type: " + std::string(contentType.cStr()) + "\r\n";
  head += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  head += body;

  auto& exRef = *ex;
  std::string socketPath = socket;
  return network.parseAddress(kj::str("unix:", socket.c_str()))
      .then([](kj::Own<kj::NetworkAddress> address) {
        return address->connect().attach(kj::mv(address));
      })
      .then(
          [&exRef, head = std::move(head)](kj::Own<kj::AsyncIoStream> connection) mutable {
            exRef.connection = kj::mv(connection);
            auto bytes = kj::heapString(head.data(), head.size());
            auto write = exRef.connection->write(bytes.begin(), bytes.size());
            return write.attach(kj::mv(bytes));
          },
          [socketPath](kj::Exception&& e) -> kj::Promise<void> {
            kj::throwFatalException(KJ_EXCEPTION(
                DISCONNECTED,
                kj::str(kDownPrefix.data(), " at unix:", socketPath.c_str(), " (",
                        e.getDescription(),
                        "); start dockerd (tests/docker/start-dockerd.sh does) or point the "
                        "runtime's `socket` setting at it")));
          })
      .then([&exRef]() { return pump(exRef); })
      .then([&exRef]() {
        auto& message = exRef.parser.get();
        Response r;
        r.status = message.result_int();
        if (!exRef.streaming()) r.body = std::move(message.body());
        return r;
      })
      .attach(kj::mv(ex));
}

std::string urlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string errorMessage(const Response& r) {
  boost::system::error_code ec;
  auto value = boost::json::parse(r.body, ec);
  if (!ec && value.is_object()) {
    if (auto* m = value.as_object().if_contains("message"); m != nullptr && m->is_string()) {
      return std::string(m->as_string().c_str());
    }
  }
  std::string text = r.body;
  while (!text.empty() && isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text.empty() ? "(no message)" : text;
}

void throwHttpError(std::string_view what, const Response& r) {
  kj::throwFatalException(KJ_EXCEPTION(FAILED, kj::str(std::string(what).c_str(), ": docker answered ",
                                                       r.status, ": ", errorMessage(r).c_str())));
}

}  // namespace swarm::docker
