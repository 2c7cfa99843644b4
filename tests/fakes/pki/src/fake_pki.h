// fake-pki: the pki schema implemented with OpenSSL 3, keeping nothing but the loaded root.
#pragma once

#include <swarm/sdk.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

namespace swarm::fakes {

struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

class FakePki final : public sdk::PluginServer<schema::Pki> {
 public:
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

 private:
  struct Root {
    X509Ptr cert;
    PkeyPtr key;  // null when the root was loaded without its key
    std::string digest;
    X509Ptr previous;          // during a rotation: the old root, still trusted
    std::string crossSignedPem;  // during a rotation: attached to every issued chain
  };

  const Root& loaded(const char* what) const;
  std::unique_ptr<Root> root;
};

}  // namespace swarm::fakes
