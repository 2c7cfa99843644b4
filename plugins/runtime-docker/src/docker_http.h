// HTTP/1.1 to the Docker Engine API over its Unix socket, on the plugin's own KJ event loop.
//
// Each call opens its own connection (`Connection: close`): a Unix connect costs well under a
// millisecond, long polls (wait, events, logs with follow) never hold up other calls, and there is
// no keep-alive state to go stale when the daemon restarts. Responses are parsed with Beast's
// parser fed from KJ reads, so no Asio thread and no cross-thread hop are needed.
//
// Failures are KJ exceptions: DISCONNECTED when the daemon is unreachable or drops the connection
// (see DaemonFailure), FAILED with Docker's own message for an error status (see HttpError).
#pragma once

#include <kj/async-io.h>
#include <kj/async.h>
#include <kj/function.h>
#include <kj/refcount.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace swarm::docker {

struct Response {
  unsigned status = 0;
  std::string body;
};

// Why a call to the daemon failed, for the error kinds callers report (TaskError).
enum class DaemonFailure {
  none,
  down,       // nothing answers on the socket (refused, or no socket file)
  restarted,  // the connection dropped before the response ended
};

// Reads the failure kind back from an exception thrown by DockerHttp.
DaemonFailure daemonFailureOf(const kj::Exception& e);

class DockerHttp final : public kj::Refcounted {
 public:
  // `socketPath`: e.g. /var/run/docker.sock. `apiPrefix`: e.g. /v1.41 (stack.md §6).
  DockerHttp(kj::Network& network, std::string socketPath, std::string apiPrefix);

  const std::string& socketPath() const { return socket; }

  // One request; resolves with the status and the whole body (any status: callers decide).
  kj::Promise<Response> call(kj::StringPtr method, std::string target, std::string body = {},
                             kj::StringPtr contentType = "application/json");

  // A request whose body is delivered as it arrives: onData runs for each batch of body bytes and
  // the next read waits for its promise (back-pressure). Only a 2xx body is streamed; for another
  // status the body is collected into the result instead. Resolves when the body ends; dropping
  // the promise closes the connection.
  kj::Promise<Response> stream(kj::StringPtr method, std::string target,
                               kj::Function<kj::Promise<void>(std::string_view)> onData,
                               std::string body = {});

 private:
  kj::Promise<Response> exchange(kj::StringPtr method, std::string target, std::string body,
                                 kj::StringPtr contentType,
                                 kj::Maybe<kj::Function<kj::Promise<void>(std::string_view)>> onData);

  kj::Network& network;
  std::string socket;
  std::string prefix;
};

// Percent-encodes a query parameter value.
std::string urlEncode(std::string_view text);

// Docker's error body is {"message": "..."}; returns the message, or the raw body trimmed.
std::string errorMessage(const Response& r);

// Throws a FAILED exception "<what>: docker answered <status>: <message>".
[[noreturn]] void throwHttpError(std::string_view what, const Response& r);

}  // namespace swarm::docker
