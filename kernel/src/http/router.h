// Routing: (method, pattern like "/nodes/{id}/update") -> handler, and the split of a request
// target into Docker's optional "/v1.NN" version prefix, the path and the query string.
#pragma once

#include "http/message.h"

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace swarm::http {

struct Target {
  std::optional<std::string> version;  // "1.41" from "/v1.41/...", as written
  std::string path;                    // the rest, "/" at least
  std::string query;                   // after '?', raw
};

Target splitTarget(std::string_view target);

class Router {
 public:
  // `pattern` is "/" followed by segments; a segment "{name}" captures one non-empty segment.
  // Throws std::invalid_argument for a malformed pattern or a duplicate (method, pattern).
  void add(std::string method, std::string_view pattern, Handler handler);

  struct Found {
    const Handler* handler;
    std::map<std::string, std::string, std::less<>> params;
  };
  struct NotFound {};
  struct WrongMethod {
    std::vector<std::string> allowed;  // sorted
  };

  // Among matching routes, literal segments win over parameters, leftmost first. HEAD falls back
  // to GET. Throws Error 400 for a path parameter with a malformed percent-escape.
  std::variant<Found, NotFound, WrongMethod> find(std::string_view method,
                                                  std::string_view path) const;

 private:
  struct Segment {
    std::string text;
    bool capture;
  };
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<Segment> segments;
    Handler handler;
  };
  std::vector<Route> routes;
};

}  // namespace swarm::http
