// What the API handlers (api_routes.cpp, service_routes.cpp) share: Docker's status for bad
// input, the read barrier for GETs, lookups and filters as the engine does them.
#pragma once

#include "api/errors.h"
#include "api/text.h"
#include "http/message.h"
#include "store/store.h"
#include "swarm_node.h"

#include <kj/async.h>

#include <string>
#include <string_view>

namespace swarm::kernel::routes {

inline std::string str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

// Runs a handler body, turning the synchronous failures of decoders and lookups into the
// statuses Docker answers them with.
template <typename Body>
kj::Promise<http::Response> guarded(Body&& body) {
  try {
    return body();
  } catch (const api::BadRequest& e) {
    throw http::Error(400, e.what());
  }
}

// A GET handler's body, run once this manager has applied everything the leader had committed
// (the read barrier): a read on a follower is as fresh as one on the leader.
template <typename Body>
kj::Promise<http::Response> freshRead(SwarmNode& node, Body&& body) {
  return guarded([&]() -> kj::Promise<http::Response> {
    node.requireManager();
    return node.readBarrier().then([body = kj::fwd<Body>(body)]() mutable { return guarded(body); });
  });
}

// Docker's lookup by ID, name or ID prefix; a miss is the store's 404 (or 400 when ambiguous).
inline store::ObjectRef resolve(const store::Store& store, store::Kind kind, std::string_view text) {
  store::Resolution found = store.resolve(kind, text);
  if (!found.ok()) throw http::Error(store::httpStatus(found.status), found.message);
  return found.object;
}

// Docker's filters: a key nobody gave constrains nothing; several values of one key are ORed.
inline bool prefixMatches(const http::Filters& filters, std::string_view key, std::string_view value) {
  if (!filters.has(key)) return true;
  for (const auto& wanted : filters.values(key)) {
    if (value.substr(0, wanted.size()) == wanted) return true;
  }
  return false;
}

// Every label filter under `key` must hold (SwarmKit's filterMatchLabels).
inline bool labelsMatch(const http::Filters& filters, std::string_view key,
                        capnp::List<schema::KeyValue>::Reader labels) {
  for (const auto& wanted : filters.values(key)) {
    if (!api::matchesLabelFilter(labels, wanted)) return false;
  }
  return true;
}

}  // namespace swarm::kernel::routes
