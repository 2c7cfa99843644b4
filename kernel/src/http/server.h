// The manager's HTTP server: Boost.Asio/Beast on its own thread, on a Unix socket and optionally
// one TCP endpoint, speaking the Docker Engine API's conventions (version prefix, Docker's
// headers, {"message": ...} errors). Handlers run on the KJ thread through the Bridge's Mailbox
// and return kj::Promise<Response>. See docs/http.md for the invariants.
#pragma once

#include "http/bridge.h"
#include "http/message.h"

#include <kj/async.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace swarm::http {

struct TcpEndpoint {
  std::string address;     // "127.0.0.1", "::1", "0.0.0.0"
  std::uint16_t port = 0;  // 0: any free port (see Server::tcpPort())
};

struct ServerOptions {
  std::string serverVersion;  // "Server: swarm-kernel/<serverVersion>"
  ApiVersion minApiVersion{1, 24};
  ApiVersion maxApiVersion{1, 41};  // also the Api-Version header and the version without prefix

  // Empty: no Unix socket. Its directory must exist. Created with `unixSocketMode`.
  std::filesystem::path unixSocket;
  unsigned unixSocketMode = 0600;
  std::optional<TcpEndpoint> tcp;
  // Mutual TLS on the TCP endpoint, as dockerd --tlsverify: clients must present a certificate
  // signed by `ca`. Without it the TCP endpoint is plain (tests only; the kernel never starts one).
  struct TlsFiles {
    std::filesystem::path cert, key, ca;  // PEM
  };
  std::optional<TlsFiles> tcpTls;
  std::chrono::milliseconds handshakeTimeout{10'000};

  std::size_t bodyLimit = 16 * 1024 * 1024;  // larger bodies get 413
  std::uint32_t headerLimit = 1024 * 1024;   // larger headers get 431 (Go's default)
  // Waiting for a request's headers, including an idle keep-alive connection's next request.
  std::chrono::milliseconds headerTimeout{30'000};
  std::chrono::milliseconds bodyTimeout{60'000};
  // One write (a response, or one batch of a streamed body) to a client that does not read.
  std::chrono::milliseconds writeTimeout{60'000};
  // How long stop() lets in-flight requests finish before cutting them.
  std::chrono::milliseconds stopTimeout{5'000};
  // Bytes a streamed body may queue before StreamWriter::write() waits for the client.
  std::size_t streamBufferLimit = 1024 * 1024;
};

namespace detail {
struct ServerCore;
}

class Server {
 public:
  // `mailbox` is the Bridge's, from the KJ thread the handlers run on.
  Server(ServerOptions options, std::shared_ptr<const Mailbox> mailbox);
  // stop(): see its caveat about the KJ thread.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Before start(). `method` is "GET", "POST", ...; a GET route also answers HEAD (no body).
  // Throws std::invalid_argument for a malformed pattern or a duplicate.
  void route(std::string method, std::string_view pattern, Handler handler);

  // Binds and starts the server thread. Throws kernel::UserError naming the problem (missing
  // directory, a live server on the socket, a path that is not a socket, a TCP bind failure).
  // A stale socket file (nothing answers on it) is replaced.
  void start();

  // Stops accepting, removes the socket file, lets in-flight requests finish for up to
  // stopTimeout (their responses close the connection), cuts the rest and streams at once, and
  // joins the thread. Idempotent; any thread but the server's. On the KJ thread it blocks the
  // handlers in-flight requests wait for, so they are cut at stopTimeout: use stopAsync() there.
  void stop();
  // stop() for the KJ thread: resolves once the server thread has ended (and is joined).
  kj::Promise<void> stopAsync();

  // The bound TCP port (after start(); useful with port 0).
  std::optional<std::uint16_t> tcpPort() const;
  const ServerOptions& options() const;

 private:
  std::shared_ptr<detail::ServerCore> core;
};

}  // namespace swarm::http
