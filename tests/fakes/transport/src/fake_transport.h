// fake-transport: plain TCP on loopback with a framed, certificate-carrying hello (no TLS).
#pragma once

#include <swarm/sdk.h>

namespace swarm::fakes {

struct CredentialsSlot;  // shared with listeners, so new connections see the latest credentials

class FakeTransport final : public sdk::PluginServer<schema::Transport> {
 public:
  FakeTransport();
  ~FakeTransport() noexcept(false);

  kj::Promise<void> setCredentials(SetCredentialsContext context) override;
  kj::Promise<void> listen(ListenContext context) override;
  kj::Promise<void> dial(DialContext context) override;

 private:
  kj::Own<CredentialsSlot> slot;
};

}  // namespace swarm::fakes
