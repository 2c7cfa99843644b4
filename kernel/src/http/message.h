// What a handler sees and returns: the request (path parameters, query helpers for Docker's
// bool and `filters` parameters, the JSON body) and the response (JSON, error, empty, or a body
// streamed in chunks from the KJ thread). Handlers run on the KJ thread (docs/http.md).
#pragma once

#include <boost/json/value.hpp>

#include <kj/async.h>
#include <kj/function.h>

#include <compare>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace swarm::http {

// A Docker Engine API version, "1.41".
struct ApiVersion {
  unsigned major = 1;
  unsigned minor = 0;

  // "1.41" or "1"; nullopt for anything else.
  static std::optional<ApiVersion> parse(std::string_view text);
  std::string toString() const;
  friend auto operator<=>(const ApiVersion&, const ApiVersion&) = default;
};

// Thrown by a handler (directly or inside its promise chain) to answer `status` with
// {"message": message}. Its what() carries the status ("HTTP 404: ...") so that it survives
// KJ's conversion of std::exceptions into kj::Exception descriptions.
class Error : public std::runtime_error {
 public:
  Error(unsigned status, std::string message);
  unsigned status() const { return code; }
  const std::string& message() const { return text; }

 private:
  unsigned code;
  std::string text;
};

// The HTTP status and message a failure becomes: Error keeps its own; a kj::Exception of type
// OVERLOADED or DISCONNECTED is 503, UNIMPLEMENTED 501, anything else 500 with its description.
struct Failure {
  unsigned status;
  std::string message;
};
Failure failureOf(const kj::Exception& exception);
Failure failureOf(std::exception_ptr exception);

// Docker's `filters` parameter: {"name":{"web":true}} (also the legacy {"name":["web"]}).
class Filters {
 public:
  // "" gives no filters. Malformed input throws Error 400 saying what is wrong.
  static Filters parse(std::string_view json, std::string_view parameter = "filters");

  bool empty() const { return terms.empty(); }
  bool has(std::string_view key) const;
  // The values given for `key`, sorted; empty when absent.
  std::vector<std::string> values(std::string_view key) const;
  // Throws Error 400 "invalid filter 'x'" for any key outside `accepted` (Docker's wording).
  void requireKnown(std::initializer_list<std::string_view> accepted) const;
  const std::map<std::string, std::set<std::string>, std::less<>>& all() const { return terms; }

 private:
  std::map<std::string, std::set<std::string>, std::less<>> terms;
};

// The query string, percent-decoded ('+' is a space, as in Go's url.ParseQuery).
class Query {
 public:
  // Throws Error 400 on a malformed escape.
  static Query parse(std::string_view raw);

  bool has(std::string_view key) const;
  // The first value of `key`.
  std::optional<std::string> get(std::string_view key) const;
  // Every value of `key`, in order.
  std::vector<std::string> all(std::string_view key) const;
  // Docker's boolean parameters: "1"/"true" are true, "0"/"false" false, absent or empty
  // `fallback`; anything else throws Error 400 naming the parameter.
  bool flag(std::string_view key, bool fallback = false) const;
  // A non-negative integer parameter such as ?version=42; absent or empty is nullopt, anything
  // else but digits throws Error 400 naming the parameter.
  std::optional<std::uint64_t> unsignedInteger(std::string_view key) const;
  // A JSON filters parameter (absent: none); see Filters::parse.
  Filters filters(std::string_view key = "filters") const;

 private:
  std::vector<std::pair<std::string, std::string>> entries;
};

struct Request {
  std::string method;  // "GET", "HEAD", "POST", ...
  std::string path;    // without the version prefix and the query string, as sent
  ApiVersion version;  // from the /v1.NN prefix, or the server's maximum without one
  std::map<std::string, std::string, std::less<>> params;  // "{id}" -> its decoded segment
  Query query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;

  // The path parameter `name` of the route's pattern (std::out_of_range if the pattern has none).
  const std::string& param(std::string_view name) const;
  // Case-insensitive; the first one.
  std::optional<std::string> header(std::string_view name) const;
  // The body as JSON. Throws Error 400 when it is empty, malformed ("malformed JSON in request
  // body: <reason>"), or sent with a Content-Type other than application/json.
  boost::json::value json() const;
  // As json(), but an empty (or all-whitespace) body is nullopt.
  std::optional<boost::json::value> jsonIfAny() const;
};

// The KJ side of a streamed response body. KJ thread only; valid until the producer's promise
// settles.
class StreamWriter {
 public:
  // Queues `bytes` for the client (one chunk). Resolves at once while the buffer is under its
  // limit, else once the client has drained it below; rejects (DISCONNECTED) once the client is
  // gone.
  virtual kj::Promise<void> write(std::string bytes) = 0;
  // Resolves when the client goes away or the server cuts the stream.
  virtual kj::Promise<void> whenDisconnected() = 0;
  virtual bool disconnected() const = 0;

 protected:
  ~StreamWriter() = default;
};

// Produces a streamed body. Its promise resolving ends the body (the terminating chunk); its
// failure cuts the connection (the client sees a truncated body). It is cancelled when the
// client goes away.
using StreamProducer = kj::Function<kj::Promise<void>(StreamWriter&)>;

// chunked: Transfer-Encoding: chunked. raw: the bytes as they are after the headers, the end
// marked by closing the connection (for hijack-like streams).
enum class StreamFraming { chunked, raw };

struct Response {
  unsigned status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  kj::Maybe<StreamProducer> producer;  // set: the body is streamed, `body` is unused
  StreamFraming framing = StreamFraming::chunked;

  static Response json(unsigned status, const boost::json::value& value);
  // {"message": message}
  static Response error(unsigned status, std::string_view message);
  static Response empty(unsigned status);
  static Response text(unsigned status, std::string body,
                       std::string contentType = "text/plain; charset=utf-8");
  static Response stream(unsigned status, std::string contentType, StreamProducer producer,
                         StreamFraming framing = StreamFraming::chunked);

  // Adds a header (e.g. Docker's `Swarm` header on /_ping).
  Response& withHeader(std::string name, std::string value) &;
  Response&& withHeader(std::string name, std::string value) &&;
};

// Runs on the KJ thread. May throw (or reject with) Error for a chosen status.
using Handler = std::function<kj::Promise<Response>(Request)>;

// Percent-decoding; '+' becomes a space only when `plusIsSpace`. nullopt on a malformed escape.
std::optional<std::string> percentDecode(std::string_view text, bool plusIsSpace);

}  // namespace swarm::http
