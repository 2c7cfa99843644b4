// Test harness: a real KJ event-loop thread holding a Bridge, a temp directory, and a small
// blocking HTTP client over Unix or loopback TCP sockets whose every wait is bounded (5 s), so a
// bug fails a test instead of hanging it.
#pragma once

#include "http/bridge.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <kj/async-io.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

namespace swarm::http::testing {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/swarm-http-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  std::filesystem::path path;
};

// A thread running a KJ event loop (with async I/O, for its timer) and a Bridge on it.
class KjThread {
 public:
  KjThread() {
    thread = std::thread([this]() {
      auto io = kj::setupAsyncIo();
      auto stop = kj::newPromiseAndCrossThreadFulfiller<void>();
      {
        std::lock_guard lock(mutex);
        bridge = kj::heap<Bridge>();
        box = bridge->mailbox();
        executor = kj::getCurrentThreadExecutor().addRef();
        timer = &io.provider->getTimer();
        stopper = kj::mv(stop.fulfiller);
        id = std::this_thread::get_id();
        ready = true;
      }
      changed.notify_all();
      stop.promise.wait(io.waitScope);
      bridge = nullptr;
    });
    std::unique_lock lock(mutex);
    changed.wait(lock, [this]() { return ready; });
  }
  ~KjThread() { stop(); }

  // Ends the loop (destroying the Bridge first, as the kernel would).
  void stop() {
    if (!thread.joinable()) return;
    stopper->fulfill();
    thread.join();
  }

  // Runs `fn` on the KJ thread and waits for it.
  template <typename Fn>
  auto sync(Fn&& fn) {
    return executor->executeSync(std::forward<Fn>(fn));
  }

  // Destroys the Bridge but keeps the loop running.
  void dropBridge() {
    sync([this]() { bridge = nullptr; });
  }

  std::shared_ptr<const Mailbox> mailbox() const { return box; }
  kj::Timer& kjTimer() const { return *timer; }
  std::thread::id threadId() const { return id; }

 private:
  std::mutex mutex;
  std::condition_variable changed;
  bool ready = false;
  kj::Own<Bridge> bridge;
  std::shared_ptr<const Mailbox> box;
  kj::Own<const kj::Executor> executor;
  kj::Timer* timer = nullptr;
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> stopper;
  std::thread::id id;
  std::thread thread;
};

using ClientResponse = bhttp::response<bhttp::string_body>;

// One client connection; every operation gives up after 5 s.
class Client {
 public:
  explicit Client(const std::filesystem::path& socketPath) : socket(context) {
    asio::local::stream_protocol::endpoint at(socketPath.string());
    socket.connect(asio::generic::stream_protocol::endpoint(at));
  }
  explicit Client(std::uint16_t port) : socket(context) {
    asio::ip::tcp::endpoint at(asio::ip::make_address("127.0.0.1"), port);
    socket.connect(asio::generic::stream_protocol::endpoint(at));
  }

  void send(const std::string& raw) { asio::write(socket, asio::buffer(raw)); }

  // Reads one response. `head`: it has no body whatever its headers say.
  ClientResponse read(bool head = false) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.skip(head);
    parser.body_limit(boost::none);
    boost::system::error_code result;
    bool done = false;
    bhttp::async_read(socket, buffer, parser, [&](boost::system::error_code ec, std::size_t) {
      result = ec;
      done = true;
    });
    runBounded(done);
    if (result) throw std::runtime_error("reading the response failed: " + result.message());
    return parser.release();
  }

  // Reads a chunked response, counting its chunks.
  ClientResponse readChunked(std::size_t& chunks) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(boost::none);
    std::function<void(std::uint64_t, boost::string_view, boost::system::error_code&)> onHeader =
        [&chunks](std::uint64_t, boost::string_view, boost::system::error_code&) { ++chunks; };
    parser.on_chunk_header(onHeader);
    boost::system::error_code result;
    bool done = false;
    bhttp::async_read(socket, buffer, parser, [&](boost::system::error_code ec, std::size_t) {
      result = ec;
      done = true;
    });
    runBounded(done);
    if (result) throw std::runtime_error("reading the response failed: " + result.message());
    return parser.release();
  }

  // Reads just the headers of a response.
  bhttp::response_parser<bhttp::empty_body>& readHeader() {
    headerParser.emplace();
    headerParser->body_limit(boost::none);
    boost::system::error_code result;
    bool done = false;
    bhttp::async_read_header(socket, buffer, *headerParser,
                             [&](boost::system::error_code ec, std::size_t) {
                               result = ec;
                               done = true;
                             });
    runBounded(done);
    if (result) throw std::runtime_error("reading the header failed: " + result.message());
    return *headerParser;
  }

  // Reads some raw bytes (after readHeader(): the body as sent); "" at end of stream.
  std::string readSome() {
    std::string out;
    if (buffer.size() > 0) {
      out.assign(static_cast<const char*>(buffer.data().data()), buffer.size());
      buffer.consume(buffer.size());
      return out;
    }
    char data[65536];
    boost::system::error_code result;
    std::size_t got = 0;
    bool done = false;
    socket.async_read_some(asio::buffer(data), [&](boost::system::error_code ec, std::size_t n) {
      result = ec;
      got = n;
      done = true;
    });
    runBounded(done);
    if (result == asio::error::eof || result == asio::error::connection_reset) return "";
    if (result) throw std::runtime_error("reading failed: " + result.message());
    return std::string(data, got);
  }

  // True when the server closes the connection (within 5 s) without sending more.
  bool closedByServer() {
    try {
      return readSome().empty();
    } catch (const std::exception&) {
      return false;
    }
  }

  ClientResponse request(const std::string& method, const std::string& target,
                         const std::string& body = "", const std::string& extraHeaders = "") {
    std::string raw = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n" + extraHeaders;
    if (!body.empty() || method == "POST") {
      raw += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    raw += "\r\n" + body;
    send(raw);
    return read(method == "HEAD");
  }

  void close() {
    boost::system::error_code ignored;
    socket.close(ignored);
  }

 private:
  void runBounded(bool& done) {
    context.restart();
    context.run_for(std::chrono::seconds(5));
    if (!done) {
      boost::system::error_code ignored;
      socket.cancel(ignored);
      context.restart();
      context.run();
      throw std::runtime_error("the server did not answer within 5 s");
    }
  }

  asio::io_context context;
  asio::generic::stream_protocol::socket socket;
  boost::beast::flat_buffer buffer;
  std::optional<bhttp::response_parser<bhttp::empty_body>> headerParser;
};

// Polls `condition` for up to 5 s.
inline bool eventually(const std::function<bool()>& condition) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return condition();
}

}  // namespace swarm::http::testing
