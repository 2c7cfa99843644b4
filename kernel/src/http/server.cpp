#include "http/server.h"

#include "errors.h"
#include "http/router.h"
#include "logging.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <boost/asio/ssl.hpp>

#include <kj/debug.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <cstdio>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <variant>
#include <vector>

namespace swarm::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

std::shared_ptr<spdlog::logger> httpLog() { return kernel::logger("http"); }

// ---- the streamed body's channel between the KJ producer and the asio session

// Thread-safe. The KJ side writes and finishes; the asio side takes, reports what it wrote, and
// closes when the client goes away. Invariant: `buffered` counts bytes written by the KJ side and
// not yet reported consumed by the asio side.
class StreamChannel {
 public:
  StreamChannel(std::size_t limit, std::shared_ptr<const AsioInbox> inbox,
                std::function<void()> wakeAsio)
      : limit(limit), inbox(std::move(inbox)), wakeAsio(std::move(wakeAsio)) {}

  // KJ side.
  kj::Promise<void> write(std::string bytes) {
    std::lock_guard lock(mutex);
    if (closed) return KJ_EXCEPTION(DISCONNECTED, "the HTTP client has gone away");
    if (bytes.empty()) return kj::READY_NOW;  // an empty chunk would end a chunked body
    buffered += bytes.size();
    pending.push_back(std::move(bytes));
    wakeLocked();
    if (buffered < limit) return kj::READY_NOW;
    auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
    roomWaiters.push_back(kj::mv(paf.fulfiller));
    return kj::mv(paf.promise);
  }

  kj::Promise<void> whenClosed() {
    std::lock_guard lock(mutex);
    if (closed) return kj::READY_NOW;
    auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
    closeWaiters.push_back(kj::mv(paf.fulfiller));
    return kj::mv(paf.promise);
  }

  bool isClosed() const {
    std::lock_guard lock(mutex);
    return closed;
  }

  // The producer is done: `ok` ends the body, otherwise the connection is cut.
  void finish(bool ok) {
    std::lock_guard lock(mutex);
    if (ended || failed) return;
    (ok ? ended : failed) = true;
    wakeLocked();
  }

  // Asio side.
  struct Taken {
    std::deque<std::string> chunks;
    bool ended = false;
    bool failed = false;
  };

  Taken take() {
    std::lock_guard lock(mutex);
    wakePosted = false;
    Taken taken{std::move(pending), ended, failed};
    pending.clear();
    return taken;
  }

  void consumed(std::size_t bytes) {
    std::lock_guard lock(mutex);
    buffered -= bytes;
    if (buffered < limit) {
      for (auto& waiter : roomWaiters) waiter->fulfill();
      roomWaiters.clear();
    }
  }

  void close() {
    std::lock_guard lock(mutex);
    if (closed) return;
    closed = true;
    pending.clear();
    for (auto& waiter : roomWaiters) {
      waiter->reject(KJ_EXCEPTION(DISCONNECTED, "the HTTP client has gone away"));
    }
    roomWaiters.clear();
    for (auto& waiter : closeWaiters) waiter->fulfill();
    closeWaiters.clear();
  }

 private:
  void wakeLocked() {
    if (wakePosted || closed) return;
    wakePosted = true;
    inbox->post(wakeAsio);
  }

  const std::size_t limit;
  const std::shared_ptr<const AsioInbox> inbox;
  const std::function<void()> wakeAsio;

  mutable std::mutex mutex;
  std::deque<std::string> pending;
  std::size_t buffered = 0;
  bool ended = false;
  bool failed = false;
  bool closed = false;
  bool wakePosted = false;
  std::vector<kj::Own<kj::CrossThreadPromiseFulfiller<void>>> roomWaiters;
  std::vector<kj::Own<kj::CrossThreadPromiseFulfiller<void>>> closeWaiters;
};

// The asio side's hold on a channel: closing it when dropped, wherever that happens, so a
// producer never waits for a reader that is gone.
class ChannelEnd {
 public:
  ChannelEnd() = default;
  explicit ChannelEnd(std::shared_ptr<StreamChannel> channel) : channel(std::move(channel)) {}
  ChannelEnd(ChannelEnd&&) = default;
  ChannelEnd& operator=(ChannelEnd&& other) {
    reset();
    channel = std::move(other.channel);
    return *this;
  }
  ~ChannelEnd() { reset(); }

  explicit operator bool() const { return channel != nullptr; }
  StreamChannel* operator->() const { return channel.get(); }
  void reset() {
    if (channel) channel->close();
    channel.reset();
  }

 private:
  std::shared_ptr<StreamChannel> channel;
};

class StreamWriterImpl final : public StreamWriter {
 public:
  explicit StreamWriterImpl(std::shared_ptr<StreamChannel> channel) : channel(std::move(channel)) {}
  kj::Promise<void> write(std::string bytes) override { return channel->write(std::move(bytes)); }
  kj::Promise<void> whenDisconnected() override { return channel->whenClosed(); }
  bool disconnected() const override { return channel->isClosed(); }

 private:
  std::shared_ptr<StreamChannel> channel;
};

// Ends the stream as failed if the producer's promise is dropped unfinished (the KJ side went
// away).
class ProducerGuard {
 public:
  explicit ProducerGuard(std::shared_ptr<StreamChannel> channel) : channel(std::move(channel)) {}
  ~ProducerGuard() { channel->finish(false); }
  void finish(bool ok) { channel->finish(ok); }

 private:
  std::shared_ptr<StreamChannel> channel;
};

// ---- what travels from the KJ thread back to the session

struct Reply {
  unsigned status = 500;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  ChannelEnd stream;  // set: a streamed body
  StreamFraming framing = StreamFraming::chunked;
};

Reply replyOf(Response response) {
  Reply reply;
  reply.status = response.status;
  reply.headers = std::move(response.headers);
  reply.body = std::move(response.body);
  reply.framing = response.framing;
  return reply;
}

Reply errorReply(unsigned status, std::string_view message) {
  return replyOf(Response::error(status, message));
}

class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  virtual ~SessionBase() = default;
  virtual void start() = 0;
  virtual void onReply(Reply reply) = 0;
  virtual void onStreamReady() = 0;
  virtual void beginStop() = 0;
  virtual void cut() = 0;
};

// Sends one Reply to the session (or "shutting down" if destroyed unsent).
class ReplyGuard {
 public:
  ReplyGuard(std::shared_ptr<const AsioInbox> inbox, std::weak_ptr<SessionBase> session)
      : inbox(std::move(inbox)), session(std::move(session)) {}
  ~ReplyGuard() {
    if (!sent) send(errorReply(503, kShuttingDownMessage));
  }
  ReplyGuard(const ReplyGuard&) = delete;
  ReplyGuard& operator=(const ReplyGuard&) = delete;

  void send(Reply reply) {
    sent = true;
    // If the session is gone, or the inbox closed, the Reply (and its ChannelEnd) is destroyed
    // unused, which closes a streamed body's channel.
    inbox->post([session = session, reply = std::move(reply)]() mutable {
      if (auto target = session.lock()) target->onReply(std::move(reply));
    });
  }
  const std::shared_ptr<const AsioInbox>& replyInbox() const { return inbox; }
  const std::weak_ptr<SessionBase>& target() const { return session; }

 private:
  std::shared_ptr<const AsioInbox> inbox;
  std::weak_ptr<SessionBase> session;
  bool sent = false;
};

void logFailure(const Failure& failure) {
  // 503 is a state the client is told about (not a manager, locked, no leader), not a fault.
  if (failure.status == 503) {
    httpLog()->debug("HTTP 503: {}", failure.message);
  } else if (failure.status >= 500) {
    httpLog()->error("HTTP handler failed: {}", failure.message);
  }
}

// On the KJ thread: runs the handler and sends its Reply; a streamed body goes on producing here.
kj::Promise<void> runHandler(const Handler& handler, Request request, ReplyGuard& guard,
                             std::size_t streamBufferLimit) {
  kj::Promise<Response> pending = nullptr;
  try {
    pending = handler(std::move(request));
  } catch (...) {
    // Caught here, before KJ would flatten it, so an exception's own type decides the status.
    auto failure = failureOf(std::current_exception());
    logFailure(failure);
    guard.send(errorReply(failure.status, failure.message));
    return kj::READY_NOW;
  }
  return pending.then(
      [&guard, streamBufferLimit](Response response) -> kj::Promise<void> {
        KJ_IF_MAYBE(producer, response.producer) {
          std::weak_ptr<SessionBase> session = guard.target();
          auto channel = std::make_shared<StreamChannel>(
              streamBufferLimit, guard.replyInbox(), [session]() {
                if (auto target = session.lock()) target->onStreamReady();
              });
          auto produce = kj::mv(*producer);
          Reply reply = replyOf(kj::mv(response));
          reply.stream = ChannelEnd(channel);
          guard.send(std::move(reply));
          auto writer = kj::heap<StreamWriterImpl>(channel);
          auto finisher = kj::heap<ProducerGuard>(channel);
          auto* finish = finisher.get();
          auto& out = *writer;
          auto closed = channel->whenClosed();
          return kj::evalNow([&produce, &out]() { return produce(out); })
              .exclusiveJoin(kj::mv(closed))
              .then([finish]() { finish->finish(true); },
                    [finish](kj::Exception&& e) {
                      httpLog()->warn("a streamed HTTP response failed: {}", kernel::describe(e));
                      finish->finish(false);
                    })
              .attach(kj::mv(writer), kj::mv(finisher), kj::mv(produce));
        }
        guard.send(replyOf(kj::mv(response)));
        return kj::READY_NOW;
      },
      [&guard](kj::Exception&& e) {
        auto failure = failureOf(e);
        logFailure(failure);
        guard.send(errorReply(failure.status, failure.message));
      });
}

}  // namespace

// ---- the server's state, on the asio thread unless noted

namespace detail {

struct ServerCore : std::enable_shared_from_this<ServerCore> {
  ServerCore(ServerOptions options, std::shared_ptr<const Mailbox> mailbox)
      : options(std::move(options)),
        mailbox(std::move(mailbox)),
        inbox(std::make_shared<AsioInbox>(context)) {}

  ~ServerCore() {
    inbox->close();
    // Sessions go before the io_context they use (its destructor drops the rest).
    sessions.clear();
  }

  void bindUnix();
  void bindTcp();
  template <typename Acceptor>
  void accept(Acceptor& acceptor);
  void loadTls();
  void handshake(asio::ip::tcp::socket socket);
  void shutdown();
  void forget(SessionBase* session);
  void finish();
  void removeSocketFile();
  void run();

  const ServerOptions options;
  const std::shared_ptr<const Mailbox> mailbox;
  // Written before start() only; then read by both threads (jobs hold it for their handler).
  std::shared_ptr<Router> router = std::make_shared<Router>();

  asio::io_context context;  // before everything that uses it
  const std::shared_ptr<AsioInbox> inbox;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::optional<asio::local::stream_protocol::acceptor> unixAcceptor;
  std::optional<asio::ip::tcp::acceptor> tcpAcceptor;
  std::optional<asio::ssl::context> tls;  // set: TCP connections are mutual TLS
  std::optional<asio::steady_timer> stopTimer;
  std::optional<asio::steady_timer> acceptRetry;
  std::set<std::shared_ptr<SessionBase>> sessions;
  bool stopping = false;
  bool finished = false;
  std::optional<std::pair<dev_t, ino_t>> socketIdentity;  // the socket file we created
  std::optional<std::uint16_t> boundPort;

  // Lifecycle, any thread.
  enum class Phase { created, running, stopping, stopped };
  std::mutex lifecycle;
  Phase phase = Phase::created;
  bool threadEnded = false;
  std::vector<kj::Own<kj::CrossThreadPromiseFulfiller<void>>> stopWaiters;
  std::mutex joining;
  std::thread thread;
};

}  // namespace detail

using detail::ServerCore;

namespace {

// ---- one connection; `Stream` is the socket type (a TLS stream later)

template <typename Stream>
class Session final : public SessionBase {
 public:
  Session(ServerCore& core, Stream stream)
      : core(core), stream(std::move(stream)), timer(core.context) {}

  ~Session() override { channel.reset(); }

  void start() override { readRequest(); }

  void onReply(Reply reply) override {
    if (phase != Phase::awaitingKj) return;  // cut meanwhile; the reply's channel closes itself
    writeReply(std::move(reply));
  }

  void onStreamReady() override {
    if (phase == Phase::streaming && !streamWriting) pump();
  }

  void beginStop() override {
    switch (phase) {
      case Phase::reading:
      case Phase::streaming: cut(); break;
      case Phase::awaitingKj:
      case Phase::writing: closeAfterReply = true; break;
      case Phase::closed: break;
    }
  }

  void cut() override {
    if (phase == Phase::closed) return;
    phase = Phase::closed;
    disarmTimer();
    channel.reset();
    beast::error_code ignored;
    auto& socket = beast::get_lowest_layer(stream);
    socket.shutdown(asio::socket_base::shutdown_both, ignored);
    socket.close(ignored);
    core.forget(this);
  }

 private:
  enum class Phase { reading, awaitingKj, writing, streaming, closed };

  std::shared_ptr<Session> self() {
    return std::static_pointer_cast<Session>(shared_from_this());
  }

  void armTimer(std::chrono::milliseconds after) {
    timer.expires_after(after);
    timer.async_wait([self = self(), generation = ++timerGeneration](beast::error_code ec) {
      if (!ec && generation == self->timerGeneration) self->cut();
    });
  }

  void disarmTimer() {
    ++timerGeneration;
    timer.cancel();
  }

  // ---- reading a request

  void readRequest() {
    if (core.stopping) return cut();
    phase = Phase::reading;
    parser.emplace();
    parser->header_limit(core.options.headerLimit);
    parser->body_limit(core.options.bodyLimit);
    armTimer(core.options.headerTimeout);
    bhttp::async_read_header(stream, buffer, *parser,
                             [self = self()](beast::error_code ec, std::size_t) {
                               self->onHeader(ec);
                             });
  }

  void onHeader(beast::error_code ec) {
    if (phase != Phase::reading) return;
    if (ec) return onReadError(ec);
    if (beast::iequals(parser->get()[bhttp::field::expect], "100-continue")) {
      // curl waits for this before sending a large body.
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      asio::async_write(stream, asio::buffer(kContinue),
                        [self = self()](beast::error_code ec, std::size_t) {
                          if (self->phase != Phase::reading) return;
                          if (ec) return self->cut();
                          self->readBody();
                        });
      return;
    }
    readBody();
  }

  void readBody() {
    armTimer(core.options.bodyTimeout);
    bhttp::async_read(stream, buffer, *parser, [self = self()](beast::error_code ec, std::size_t) {
      if (self->phase != Phase::reading) return;
      self->disarmTimer();
      if (ec) return self->onReadError(ec);
      self->dispatch();
    });
  }

  void onReadError(beast::error_code ec) {
    disarmTimer();
    if (ec == bhttp::error::body_limit) {
      return replyAndClose(413, "request body is larger than the limit of " +
                                    std::to_string(core.options.bodyLimit) + " bytes");
    }
    if (ec == bhttp::error::header_limit) {
      return replyAndClose(431, "request header fields are larger than the limit of " +
                                    std::to_string(core.options.headerLimit) + " bytes");
    }
    if (ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message &&
        ec.category() == bhttp::make_error_code(bhttp::error::end_of_stream).category()) {
      // Only Beast's parse errors get an answer; a closed or reset connection gets none.
      return replyAndClose(400, "malformed HTTP request: " + ec.message());
    }
    cut();
  }

  void replyAndClose(unsigned status, std::string_view message) {
    closeAfterReply = true;
    isHead = false;
    writeReply(errorReply(status, message));
  }

  // ---- routing, then the handler on the KJ thread

  void dispatch() {
    auto request = parser->release();
    parser.reset();
    isHead = request.method() == bhttp::verb::head;
    keepAlive = request.keep_alive();
    Target target =
        splitTarget(std::string_view(request.target().data(), request.target().size()));
    const auto& options = core.options;
    try {
      const std::string method(request.method_string());
      auto found = core.router->find(method, target.path);
      if (std::holds_alternative<Router::NotFound>(found)) {
        return writeReply(errorReply(404, "page not found"));
      }
      if (auto* wrong = std::get_if<Router::WrongMethod>(&found)) {
        std::string allowed;
        for (const auto& method : wrong->allowed) allowed += (allowed.empty() ? "" : ", ") + method;
        auto reply = errorReply(405, "method " + std::string(request.method_string()) +
                                         " is not allowed on " + target.path +
                                         " (allowed: " + allowed + ")");
        reply.headers.emplace_back("Allow", allowed);
        return writeReply(std::move(reply));
      }
      auto& route = std::get<Router::Found>(found);
      ApiVersion version = options.maxApiVersion;
      if (target.version) {
        auto parsed = ApiVersion::parse(*target.version);
        if (!parsed) {
          throw Error(400, "invalid API version \"" + *target.version +
                               "\" in the path: use /v<major>.<minor>/, e.g. /v" +
                               options.maxApiVersion.toString() + "/");
        }
        if (*parsed < options.minApiVersion) {
          throw Error(400, "client version " + *target.version +
                               " is too old. Minimum supported API version is " +
                               options.minApiVersion.toString() +
                               ", please upgrade your client to a newer version");
        }
        if (*parsed > options.maxApiVersion) {
          throw Error(400, "client version " + *target.version +
                               " is too new. Maximum supported API version is " +
                               options.maxApiVersion.toString());
        }
        version = *parsed;
      }
      Request handed;
      handed.method = std::string(request.method_string());
      handed.path = target.path;
      handed.version = version;
      handed.params = std::move(route.params);
      handed.query = Query::parse(target.query);
      for (const auto& field : request) {
        handed.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
      }
      handed.body = std::move(request.body());
      submit(*route.handler, std::move(handed));
    } catch (const Error& e) {
      writeReply(errorReply(e.status(), e.message()));
    }
  }

  void submit(const Handler& handler, Request request) {
    phase = Phase::awaitingKj;
    auto guard = kj::heap<ReplyGuard>(core.inbox, weak_from_this());
    // The job keeps the router, and so `handler`, alive while it runs.
    core.mailbox->post([router = std::shared_ptr<const Router>(core.router), handler = &handler,
                        request = std::move(request), guard = kj::mv(guard),
                        limit = core.options.streamBufferLimit]() mutable -> kj::Promise<void> {
      auto& target = *guard;
      return runHandler(*handler, std::move(request), target, limit)
          .attach(kj::mv(guard), kj::mv(router));
    });
    // Refused (the KJ side is gone): the job's guard has posted "shutting down" to us.
  }

  // ---- writing the response

  void writeReply(Reply reply) {
    phase = Phase::writing;
    const auto& options = core.options;
    streamed = static_cast<bool>(reply.stream);
    keepOpen = keepAlive && !closeAfterReply && !core.stopping && !streamed;
    response.emplace();
    response->version(11);
    response->result(reply.status);
    response->set("Api-Version", options.maxApiVersion.toString());
    response->set("Docker-Experimental", "false");
    response->set("Ostype", "linux");
    response->set(bhttp::field::server, "swarm-kernel/" + options.serverVersion);
    for (auto& [name, value] : reply.headers) response->insert(name, value);
    if (streamed) {
      channel = std::move(reply.stream);
      framing = reply.framing;
      // A streamed body ends the connection: no request can follow it on this one.
      response->keep_alive(false);
      if (framing == StreamFraming::chunked) response->chunked(true);
    } else {
      const bool bodyless = reply.status < 200 || reply.status == 204 || reply.status == 304;
      if (!bodyless) response->body() = std::move(reply.body);
      response->keep_alive(keepOpen);
      response->prepare_payload();
    }
    serializer.emplace(*response);
    armTimer(options.writeTimeout);
    auto done = [self = self()](beast::error_code ec, std::size_t) { self->onWritten(ec); };
    if (isHead || streamed) {
      bhttp::async_write_header(stream, *serializer, std::move(done));
    } else {
      bhttp::async_write(stream, *serializer, std::move(done));
    }
  }

  void onWritten(beast::error_code ec) {
    if (phase != Phase::writing) return;
    disarmTimer();
    serializer.reset();
    response.reset();
    if (ec) return cut();
    if (streamed) {
      if (isHead) return lingerClose();  // HEAD: headers only; dropping the channel cancels it
      return startStreaming();
    }
    if (keepOpen && !core.stopping) return readRequest();
    lingerClose();
  }

  // ---- a streamed body

  void startStreaming() {
    phase = Phase::streaming;
    watchClient();
    pump();
  }

  // The client sends nothing while a body streams; a read that ends means it went away.
  void watchClient() {
    stream.async_read_some(asio::buffer(scratch),
                           [self = self()](beast::error_code ec, std::size_t) {
                             if (self->phase != Phase::streaming) return;
                             if (ec) return self->cut();
                             self->watchClient();
                           });
  }

  void pump() {
    auto taken = channel->take();
    if (taken.failed) return cut();  // the client sees a truncated body
    outgoing.clear();
    outgoingPayload = 0;
    for (const auto& chunk : taken.chunks) {
      if (framing == StreamFraming::chunked) {
        char size[32];
        int length = std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
        outgoing.append(size, static_cast<std::size_t>(length));
        outgoing += chunk;
        outgoing += "\r\n";
      } else {
        outgoing += chunk;
      }
      outgoingPayload += chunk.size();
    }
    finishing = taken.ended;
    if (finishing && framing == StreamFraming::chunked) outgoing += "0\r\n\r\n";
    if (outgoing.empty()) {
      if (finishing) lingerClose();
      return;  // nothing yet: the next write wakes us
    }
    streamWriting = true;
    armTimer(core.options.writeTimeout);
    asio::async_write(stream, asio::buffer(outgoing),
                      [self = self()](beast::error_code ec, std::size_t) {
                        self->streamWriting = false;
                        if (self->phase != Phase::streaming) return;
                        self->disarmTimer();
                        if (ec) return self->cut();
                        self->channel->consumed(self->outgoingPayload);
                        if (self->finishing) return self->lingerClose();
                        self->pump();
                      });
  }

  // ---- closing after a response: send FIN, then drain what the client still sends for a
  // moment, so unread input (e.g. a refused body) does not turn our close into a reset that
  // destroys the response before the client reads it.
  void lingerClose() {
    if (phase == Phase::closed) return;
    phase = Phase::closed;
    channel.reset();
    beast::error_code ignored;
    beast::get_lowest_layer(stream).shutdown(asio::socket_base::shutdown_send, ignored);
    core.forget(this);
    lingerTimer = std::make_unique<asio::steady_timer>(core.context);
    lingerTimer->expires_after(std::chrono::seconds(2));
    lingerTimer->async_wait([self = self()](beast::error_code) {
      beast::error_code ignored;
      beast::get_lowest_layer(self->stream).close(ignored);
    });
    drainLinger();
  }

  void drainLinger() {
    stream.async_read_some(asio::buffer(scratch),
                           [self = self()](beast::error_code ec, std::size_t) {
                             if (!ec) return self->drainLinger();
                             self->lingerTimer->cancel();
                             beast::error_code ignored;
                             beast::get_lowest_layer(self->stream).close(ignored);
                           });
  }

  ServerCore& core;
  Stream stream;
  beast::flat_buffer buffer;
  asio::steady_timer timer;
  std::uint64_t timerGeneration = 0;
  Phase phase = Phase::reading;

  std::optional<bhttp::request_parser<bhttp::string_body>> parser;
  std::optional<bhttp::response<bhttp::string_body>> response;
  std::optional<bhttp::response_serializer<bhttp::string_body>> serializer;
  bool isHead = false;
  bool keepAlive = false;
  bool keepOpen = false;
  bool closeAfterReply = false;
  bool streamed = false;

  ChannelEnd channel;
  StreamFraming framing = StreamFraming::chunked;
  std::string outgoing;
  std::size_t outgoingPayload = 0;
  bool streamWriting = false;
  bool finishing = false;
  std::array<char, 4096> scratch{};
  std::unique_ptr<asio::steady_timer> lingerTimer;
};

std::string errnoText(int error) { return std::strerror(error); }

}  // namespace

// ---- ServerCore

namespace detail {

void ServerCore::bindUnix() {
  namespace fs = std::filesystem;
  const fs::path& path = options.unixSocket;
  const std::string shown = path.string();
  fs::path parent = path.parent_path();
  if (parent.empty()) parent = ".";
  std::error_code fsError;
  if (!fs::is_directory(parent, fsError)) {
    throw kernel::UserError("cannot listen on " + shown + ": the directory " + parent.string() +
                            " does not exist; create it first or choose another socket path");
  }
  sockaddr_un address{};
  if (shown.size() >= sizeof address.sun_path) {
    throw kernel::UserError("cannot listen on " + shown + ": a Unix socket path is at most " +
                            std::to_string(sizeof address.sun_path - 1) + " bytes");
  }
  struct stat existing {};
  if (::lstat(shown.c_str(), &existing) == 0) {
    if (!S_ISSOCK(existing.st_mode)) {
      throw kernel::UserError("cannot listen on " + shown +
                              ": it exists and is not a socket; remove it or choose another "
                              "socket path");
    }
    // A socket file: live if something accepts on it, stale (left by a crash) if refused.
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) throw kernel::UserError("cannot create a socket: " + errnoText(errno));
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, shown.c_str(), shown.size() + 1);
    int connected = ::connect(probe, reinterpret_cast<sockaddr*>(&address), sizeof address);
    int error = errno;
    ::close(probe);
    if (connected == 0 || error == EAGAIN) {
      throw kernel::UserError("another process is serving " + shown +
                              "; stop it or choose another socket path");
    }
    if (error != ECONNREFUSED) {
      throw kernel::UserError("cannot check whether " + shown + " is in use: " +
                              errnoText(error));
    }
  }

  using Protocol = asio::local::stream_protocol;
  unixAcceptor.emplace(context);
  auto listenAt = [this](const std::string& at) {
    boost::system::error_code ec;
    unixAcceptor->open(Protocol(), ec);
    if (!ec) unixAcceptor->bind(Protocol::endpoint(at), ec);
    if (!ec) unixAcceptor->listen(asio::socket_base::max_listen_connections, ec);
    return ec;
  };
  auto fail = [&shown](const std::string& what) {
    throw kernel::UserError("cannot listen on " + shown + ": " + what);
  };

  // Bound in a fresh 0700 directory, given its mode, then renamed into place: the socket is never
  // reachable with a looser mode, and a stale file is replaced in one step.
  std::string staging = (parent / ".swarm-http-XXXXXX").string();
  if (staging.size() + 2 < sizeof address.sun_path && ::mkdtemp(staging.data()) != nullptr) {
    const std::string staged = staging + "/s";
    auto cleanup = [&]() {
      ::unlink(staged.c_str());
      ::rmdir(staging.c_str());
    };
    if (auto ec = listenAt(staged)) {
      cleanup();
      fail(ec.message());
    }
    if (::chmod(staged.c_str(), options.unixSocketMode) != 0 ||
        ::rename(staged.c_str(), shown.c_str()) != 0) {
      int error = errno;
      cleanup();
      fail(errnoText(error));
    }
    ::rmdir(staging.c_str());
  } else {
    // No room for the staging path (or the directory is not writable for it): bind in place,
    // then set the mode; the socket is briefly open with the umask's mode.
    ::unlink(shown.c_str());
    if (auto ec = listenAt(shown)) fail(ec.message());
    if (::chmod(shown.c_str(), options.unixSocketMode) != 0) fail(errnoText(errno));
  }
  struct stat created {};
  if (::lstat(shown.c_str(), &created) == 0) {
    socketIdentity = std::make_pair(created.st_dev, created.st_ino);
  }
}

void ServerCore::bindTcp() {
  const auto& endpoint = *options.tcp;
  const std::string shown = endpoint.address + ":" + std::to_string(endpoint.port);
  boost::system::error_code ec;
  auto address = asio::ip::make_address(endpoint.address, ec);
  if (ec) {
    throw kernel::UserError("cannot listen on " + shown + ": \"" + endpoint.address +
                            "\" is not an IP address");
  }
  asio::ip::tcp::endpoint at(address, endpoint.port);
  tcpAcceptor.emplace(context);
  tcpAcceptor->open(at.protocol(), ec);
  if (!ec) tcpAcceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) tcpAcceptor->bind(at, ec);
  if (!ec) tcpAcceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw kernel::UserError("cannot listen on " + shown + ": " + ec.message());
  boundPort = tcpAcceptor->local_endpoint().port();
}

template <typename Acceptor>
void ServerCore::accept(Acceptor& acceptor) {
  acceptor.async_accept([this, &acceptor](boost::system::error_code ec, auto socket) {
    if (stopping || ec == asio::error::operation_aborted) return;
    if (ec) {
      // Out of descriptors, most likely: try again shortly rather than spin.
      httpLog()->warn("accepting an HTTP connection failed: {}", ec.message());
      acceptRetry.emplace(context, std::chrono::milliseconds(100));
      acceptRetry->async_wait([this, &acceptor](boost::system::error_code waitError) {
        if (!waitError && !stopping) accept(acceptor);
      });
      return;
    }
    if constexpr (std::is_same_v<decltype(socket), asio::ip::tcp::socket>) {
      boost::system::error_code ignored;
      socket.set_option(asio::ip::tcp::no_delay(true), ignored);
      if (tls) {
        handshake(std::move(socket));
        accept(acceptor);
        return;
      }
    }
    auto session = std::make_shared<Session<decltype(socket)>>(*this, std::move(socket));
    sessions.insert(session);
    session->start();
    accept(acceptor);
  });
}

void ServerCore::loadTls() {
  const auto& files = *options.tcpTls;
  tls.emplace(asio::ssl::context::tls_server);
  auto fail = [&](const std::string& what, const std::filesystem::path& file,
                  const boost::system::error_code& ec) {
    throw kernel::UserError("API TLS: cannot load the " + what + " " + file.string() + ": " +
                            ec.message() + "; give PEM files");
  };
  boost::system::error_code ec;
  tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                   ec);
  // TLS 1.2 at least, as every node-to-node connection.
  SSL_CTX_set_min_proto_version(tls->native_handle(), TLS1_2_VERSION);
  tls->use_certificate_chain_file(files.cert.string(), ec);
  if (ec) fail("certificate", files.cert, ec);
  tls->use_private_key_file(files.key.string(), asio::ssl::context::pem, ec);
  if (ec) fail("private key", files.key, ec);
  tls->load_verify_file(files.ca.string(), ec);
  if (ec) fail("CA certificate", files.ca, ec);
  tls->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
}

void ServerCore::handshake(asio::ip::tcp::socket socket) {
  using TlsStream = asio::ssl::stream<asio::ip::tcp::socket>;
  auto stream = std::make_shared<TlsStream>(std::move(socket), *tls);
  auto timer = std::make_shared<asio::steady_timer>(context, options.handshakeTimeout);
  // A client that never finishes its handshake holds nothing but its own socket, until this.
  timer->async_wait([stream](boost::system::error_code ec) {
    if (!ec) {
      boost::system::error_code ignored;
      stream->lowest_layer().close(ignored);
    }
  });
  stream->async_handshake(asio::ssl::stream_base::server,
                          [this, stream, timer](boost::system::error_code ec) {
                            timer->cancel();
                            if (stopping) return;
                            if (ec) {
                              httpLog()->info("API TLS handshake refused: {}", ec.message());
                              return;
                            }
                            auto session = std::make_shared<Session<TlsStream>>(*this, std::move(*stream));
                            sessions.insert(session);
                            session->start();
                          });
}

void ServerCore::removeSocketFile() {
  if (!socketIdentity) return;
  // Only our own file: a successor may already have replaced it.
  struct stat current {};
  const std::string path = options.unixSocket.string();
  if (::lstat(path.c_str(), &current) == 0 && current.st_dev == socketIdentity->first &&
      current.st_ino == socketIdentity->second) {
    ::unlink(path.c_str());
  }
  socketIdentity.reset();
}

void ServerCore::shutdown() {
  if (stopping) return;
  stopping = true;
  boost::system::error_code ignored;
  if (unixAcceptor) unixAcceptor->close(ignored);
  if (tcpAcceptor) tcpAcceptor->close(ignored);
  if (acceptRetry) acceptRetry->cancel();
  removeSocketFile();
  auto current = sessions;
  for (const auto& session : current) session->beginStop();
  if (sessions.empty()) return finish();
  stopTimer.emplace(context, options.stopTimeout);
  stopTimer->async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    auto remaining = sessions;
    for (const auto& session : remaining) session->cut();
    finish();
  });
}

void ServerCore::forget(SessionBase* session) {
  for (auto it = sessions.begin(); it != sessions.end(); ++it) {
    if (it->get() == session) {
      sessions.erase(it);
      break;
    }
  }
  if (stopping && sessions.empty()) finish();
}

void ServerCore::finish() {
  if (finished) return;
  finished = true;
  if (stopTimer) stopTimer->cancel();
  work.reset();
  context.stop();
}

void ServerCore::run() {
  while (true) {
    try {
      context.run();
      break;
    } catch (const std::exception& e) {
      // A bug in a completion handler; the connection it served is lost, the server goes on.
      httpLog()->error("HTTP server thread: {}", e.what());
    }
  }
  std::lock_guard lock(lifecycle);
  threadEnded = true;
  for (auto& waiter : stopWaiters) waiter->fulfill();
  stopWaiters.clear();
}

}  // namespace detail

// ---- Server

Server::Server(ServerOptions options, std::shared_ptr<const Mailbox> mailbox)
    : core(std::make_shared<ServerCore>(std::move(options), std::move(mailbox))) {}

Server::~Server() { stop(); }

void Server::route(std::string method, std::string_view pattern, Handler handler) {
  std::lock_guard lock(core->lifecycle);
  if (core->phase != ServerCore::Phase::created) {
    throw std::logic_error("routes are added before the HTTP server starts");
  }
  core->router->add(std::move(method), pattern, std::move(handler));
}

void Server::start() {
  std::lock_guard lock(core->lifecycle);
  if (core->phase != ServerCore::Phase::created) {
    throw std::logic_error("the HTTP server can be started once");
  }
  const auto& options = core->options;
  if (options.unixSocket.empty() && !options.tcp) {
    throw kernel::UserError("the HTTP server needs a Unix socket path or a TCP endpoint");
  }
  if (options.minApiVersion > options.maxApiVersion) {
    throw kernel::UserError("the minimum API version " + options.minApiVersion.toString() +
                            " is above the maximum " + options.maxApiVersion.toString());
  }
  if (!options.unixSocket.empty()) core->bindUnix();
  if (options.tcp) {
    try {
      if (core->options.tcpTls) core->loadTls();
      core->bindTcp();
    } catch (...) {
      core->removeSocketFile();
      throw;
    }
  }
  core->work.emplace(core->context.get_executor());
  if (core->unixAcceptor) core->accept(*core->unixAcceptor);
  if (core->tcpAcceptor) core->accept(*core->tcpAcceptor);
  core->phase = ServerCore::Phase::running;
  core->thread = std::thread([core = core.get()]() { core->run(); });
}

namespace {

// Asks the server thread to stop; true if there is a thread to join.
bool beginStop(ServerCore& core) {
  std::lock_guard lock(core.lifecycle);
  switch (core.phase) {
    case ServerCore::Phase::created: core.phase = ServerCore::Phase::stopped; return false;
    case ServerCore::Phase::running:
      core.phase = ServerCore::Phase::stopping;
      asio::post(core.context, [&core]() { core.shutdown(); });
      return true;
    case ServerCore::Phase::stopping: return true;
    case ServerCore::Phase::stopped: return false;
  }
  return false;
}

void join(ServerCore& core) {
  if (std::this_thread::get_id() == core.thread.get_id()) {
    throw std::logic_error("the HTTP server cannot be stopped from its own thread");
  }
  std::lock_guard joinLock(core.joining);
  if (core.thread.joinable()) core.thread.join();
  core.inbox->close();
  std::lock_guard lock(core.lifecycle);
  core.phase = ServerCore::Phase::stopped;
}

}  // namespace

void Server::stop() {
  if (beginStop(*core)) join(*core);
}

kj::Promise<void> Server::stopAsync() {
  if (!beginStop(*core)) return kj::READY_NOW;
  auto paf = kj::newPromiseAndCrossThreadFulfiller<void>();
  {
    std::lock_guard lock(core->lifecycle);
    if (core->threadEnded) {
      paf.fulfiller->fulfill();
    } else {
      core->stopWaiters.push_back(kj::mv(paf.fulfiller));
    }
  }
  return paf.promise.then([core = core]() { join(*core); });
}

std::optional<std::uint16_t> Server::tcpPort() const { return core->boundPort; }

const ServerOptions& Server::options() const { return core->options; }

}  // namespace swarm::http
