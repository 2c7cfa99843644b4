#include "http/router.h"

#include <algorithm>
#include <stdexcept>

namespace swarm::http {

namespace {

std::vector<std::string_view> splitPath(std::string_view path) {
  std::vector<std::string_view> segments;
  // "/" has no segments; "/a/" has "a" and "".
  if (path.size() <= 1) return segments;
  path.remove_prefix(1);
  while (true) {
    auto slash = path.find('/');
    segments.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return segments;
}

}  // namespace

Target splitTarget(std::string_view target) {
  Target result;
  auto question = target.find('?');
  if (question != std::string_view::npos) {
    result.query = std::string(target.substr(question + 1));
    target = target.substr(0, question);
  }
  // Docker's router: "/v{version:[0-9.]+}" in front of every route.
  if (target.size() > 2 && target.starts_with("/v")) {
    std::size_t end = 2;
    while (end < target.size() && (std::isdigit(static_cast<unsigned char>(target[end])) ||
                                   target[end] == '.')) {
      ++end;
    }
    if (end > 2 && (end == target.size() || target[end] == '/')) {
      result.version = std::string(target.substr(2, end - 2));
      target = target.substr(end);
    }
  }
  result.path = target.empty() ? "/" : std::string(target);
  return result;
}

void Router::add(std::string method, std::string_view pattern, Handler handler) {
  if (!pattern.starts_with("/")) {
    throw std::invalid_argument("route pattern \"" + std::string(pattern) +
                                "\" must start with '/'");
  }
  Route route{std::move(method), std::string(pattern), {}, std::move(handler)};
  for (auto segment : splitPath(pattern)) {
    bool capture = segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
    std::string_view text = capture ? segment.substr(1, segment.size() - 2) : segment;
    if ((capture && text.empty()) || text.find_first_of("{}") != std::string_view::npos) {
      throw std::invalid_argument("route pattern \"" + std::string(pattern) +
                                  "\": a parameter is a whole segment like {id}");
    }
    route.segments.push_back({std::string(text), capture});
  }
  for (const auto& existing : routes) {
    if (existing.method == route.method && existing.pattern == route.pattern) {
      throw std::invalid_argument("route " + route.method + " " + route.pattern +
                                  " is registered twice");
    }
  }
  routes.push_back(std::move(route));
}

std::variant<Router::Found, Router::NotFound, Router::WrongMethod> Router::find(
    std::string_view method, std::string_view path) const {
  auto segments = splitPath(path);
  // A route's rank: for each segment, literal (0) before parameter (1); lower is better.
  auto matches = [&segments](const Route& route, std::vector<int>* rank) {
    if (route.segments.size() != segments.size()) return false;
    for (std::size_t i = 0; i < segments.size(); ++i) {
      const auto& segment = route.segments[i];
      if (segment.capture) {
        if (segments[i].empty()) return false;
      } else if (segment.text != segments[i]) {
        return false;
      }
      rank->push_back(segment.capture ? 1 : 0);
    }
    return true;
  };
  const Route* best = nullptr;
  std::vector<int> bestRank;
  std::vector<std::string> allowed;
  auto consider = [&](std::string_view wanted) {
    for (const auto& route : routes) {
      std::vector<int> rank;
      if (!matches(route, &rank)) continue;
      if (route.method != wanted) {
        if (std::find(allowed.begin(), allowed.end(), route.method) == allowed.end()) {
          allowed.push_back(route.method);
        }
        continue;
      }
      if (best == nullptr || rank < bestRank) {
        best = &route;
        bestRank = std::move(rank);
      }
    }
  };
  consider(method);
  if (best == nullptr && method == "HEAD") consider("GET");
  if (best == nullptr) {
    if (allowed.empty()) return NotFound{};
    std::sort(allowed.begin(), allowed.end());
    return WrongMethod{std::move(allowed)};
  }
  Found found{&best->handler, {}};
  for (std::size_t i = 0; i < segments.size(); ++i) {
    if (!best->segments[i].capture) continue;
    auto decoded = percentDecode(segments[i], false);
    if (!decoded) {
      throw Error(400, "malformed path: invalid percent-escape in \"" +
                           std::string(segments[i]) + "\"");
    }
    found.params.emplace(best->segments[i].text, std::move(*decoded));
  }
  return found;
}

}  // namespace swarm::http
