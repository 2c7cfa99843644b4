// pki-x509: the swarm PKI (sdk/schema/pki.capnp) with OpenSSL 3.
//
// State: only the root handed to loadRoot() (the kernel keeps CA material in the replicated
// store and hands it back after a restart or leader change) and the external-CA HTTPS thread,
// started on first use. Everything else is computed per call; calls that need no network
// answer at once, external signing resolves when a signer answers.
#pragma once

#include "ca.h"
#include "external_ca.h"

#include <swarm/sdk.h>

#include <kj/vector.h>

namespace swarm::pki {

class PkiServer final : public sdk::PluginServer<schema::Pki> {
 public:
  PkiServer();

  kj::Promise<void> createRoot(CreateRootContext context) override;
  kj::Promise<void> loadRoot(LoadRootContext context) override;
  kj::Promise<void> issue(IssueContext context) override;
  kj::Promise<void> makeCsr(MakeCsrContext context) override;
  kj::Promise<void> makeJoinTokens(MakeJoinTokensContext context) override;
  kj::Promise<void> checkJoinToken(CheckJoinTokenContext context) override;
  kj::Promise<void> rootDigestOfToken(RootDigestOfTokenContext context) override;
  kj::Promise<void> verify(VerifyContext context) override;
  kj::Promise<void> startRootRotation(StartRootRotationContext context) override;
  kj::Promise<void> renewalTime(RenewalTimeContext context) override;

  kj::Promise<void> health(HealthContext context) override;
  kj::Promise<void> shutdown(ShutdownContext context) override;

 protected:
  kj::Promise<void> onConfigure(const sdk::Settings& settings) override;

 private:
  // The loaded root, or a clear error naming `call`.
  Root& loaded(kj::StringPtr call);
  void refuseAfterShutdown(kj::StringPtr call) const;
  // Counts `work` as in flight until it settles, so shutdown() can wait for it.
  kj::Promise<void> track(kj::Promise<void> work);

  // A root from a request (generate / provided / external), not yet loaded.
  NewRoot newRoot(schema::RootCaRequest::Reader request, int64_t minRemaining);

  kj::Maybe<kj::Own<Root>> root;
  ExternalSigner signer;
  bool stopping = false;  // after shutdown(): new work is refused
  size_t inFlight = 0;    // external signings not yet settled
  kj::Vector<kj::Own<kj::PromiseFulfiller<void>>> drainWaiters;
};

}  // namespace swarm::pki
