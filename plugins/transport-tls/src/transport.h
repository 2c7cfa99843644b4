// transport-tls: the Transport plugin (sdk/schema/transport.capnp) over channel.h's mutual TLS.
//
// Everything runs on the plugin's own KJ event loop (the SDK's serve() thread): listeners,
// handshakes, each connection's read pump and writes. Per connection, one read is in flight and
// the next one starts only when the kernel's ByteSink has taken the previous chunk, so a slow
// kernel sink slows its peer through TCP and never grows a buffer here; a stalled or silent peer
// holds only its own promises (handshakes have a deadline).
#pragma once

#include "channel.h"
#include "credentials.h"

#include <swarm/sdk.h>

#include <kj/async.h>
#include <kj/refcount.h>

#include <map>
#include <string>

namespace swarm::tls {

class ConnectionImpl;

struct TransportSettings {
  kj::Duration handshakeTimeout = 10 * kj::SECONDS;
  kj::Duration backoffInitial = 100 * kj::MILLISECONDS;  // 0: no backoff
  kj::Duration backoffMax = 10 * kj::SECONDS;
  unsigned maxHandshakes = 128;  // per listener, in progress at once
  bool reuseConnections = true;
};

// State shared by the transport, its listeners and its connections, which the kernel may hold
// longer than the bootstrap capability.
struct Shared : public kj::Refcounted, private kj::TaskSet::ErrorHandler {
  explicit Shared(kj::Timer& timer) : timer(timer), closing(*this) {}

  kj::Timer& timer;
  TransportSettings settings;
  kj::Maybe<kj::Own<CredentialSet>> credentials;

  // Dialed connections that may be handed out again, by the address dialed.
  std::multimap<std::string, ConnectionImpl*> reusable;

  // Addresses whose dials keep failing to reach a working peer.
  struct Backoff {
    unsigned failures = 0;
    kj::TimePoint retryAt = kj::origin<kj::TimePoint>();
    std::string lastError;
  };
  std::map<std::string, Backoff> backoff;

  // Graceful closes of connections whose capability was dropped (close_notify, bounded wait).
  kj::TaskSet closing;

  void closeInBackground(kj::Own<TlsStream> tls);

 private:
  void taskFailed(kj::Exception&&) override {}  // a close to a peer that is already gone
};

class TlsTransport final : public sdk::PluginServer<schema::Transport> {
 public:
  TlsTransport();
  ~TlsTransport() noexcept(false);

  kj::Promise<void> setCredentials(SetCredentialsContext context) override;
  kj::Promise<void> listen(ListenContext context) override;
  kj::Promise<void> dial(DialContext context) override;

 protected:
  kj::Promise<void> onConfigure(const sdk::Settings& s) override;

 private:
  // A reusable open connection to `address` that satisfies `expect` under the current
  // credentials, if any.
  kj::Maybe<ConnectionImpl&> findReusable(const std::string& address, const Expectation& expect,
                                          const CredentialSet& creds, PeerIdentity& peer);

  kj::Own<Shared> shared;
};

}  // namespace swarm::tls
