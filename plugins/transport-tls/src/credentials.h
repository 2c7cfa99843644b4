// A node's TLS credentials as OpenSSL contexts, and the swarm's rules for a peer certificate:
// chain to one of the cluster's roots (two during a rotation), within its dates, CN = node ID,
// OU = swarm-manager or swarm-worker, O = this cluster's ID, node ID not revoked.
#pragma once

#include <swarm/schema/common.capnp.h>
#include <swarm/schema/transport.capnp.h>

#include <kj/refcount.h>
#include <kj/string.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <string>
#include <vector>

namespace swarm::tls {

struct PeerIdentity {
  std::string nodeId;
  schema::NodeRole role = schema::NodeRole::WORKER;
  std::string clusterId;
};

struct CtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, CtxFree>;
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

// What a handshake learned about the peer's certificate, filled by the verify callback (member
// mode) and read once the handshake is over. Attached to the SSL with attachVerifyState().
struct VerifyState {
  bool checked = false;    // the callback ran: the peer presented a certificate
  std::string refusal;     // why the peer's certificate is refused; empty when it passed
  PeerIdentity peer;       // valid when checked and refusal is empty
  bool deferred = false;   // join mode: nothing checked during the handshake
};

// setCredentials()' argument in plain C++ (also what the benchmarks build directly).
struct CredentialInput {
  std::string chainPem;  // leaf first; empty in join mode
  std::string keyPem;
  std::vector<std::string> rootPems;
  std::string clusterId;
  bool allowTls12 = false;  // Credentials.minVersion = tls12
  std::vector<std::string> revokedNodeIds;

  static CredentialInput from(schema::Credentials::Reader credentials);
};

// One setCredentials() call, immutable: a handshake keeps the set it started with, so new
// credentials apply to new connections only.
class CredentialSet : public kj::Refcounted {
 public:
  // Throws a clear error (sdk::fail) for a chain, key or root that is not usable.
  static kj::Own<CredentialSet> make(const CredentialInput& input);

  // Contexts for a listener, a member dial and a join-mode dial. The first two are null without
  // a certificate; the join one never sends a certificate and trusts nothing by itself.
  SSL_CTX* serverContext() const { return server.get(); }
  SSL_CTX* clientContext() const { return client.get(); }
  SSL_CTX* joinContext() const { return join.get(); }

  bool hasCertificate() const { return server != nullptr; }
  bool hasRoots() const { return !roots.empty(); }
  const std::vector<std::string>& rootPems() const { return roots; }
  const std::string& clusterId() const { return cluster; }
  // This node's own identity (from its certificate); null in join mode.
  const kj::Maybe<PeerIdentity>& own() const { return self; }
  // Why this node's own certificate would be refused by its peers now (expired, not yet valid,
  // not under the roots), or empty. Worth a warning, not a refusal: the kernel renews it.
  const std::string& ownCertificateProblem() const { return ownProblem; }

  // The swarm's checks of an already chain-verified leaf: identity fields, cluster, revocation.
  std::string checkLeaf(X509* leaf, PeerIdentity& out) const;

  // A full check of a peer's chain (leaf first, as SSL_get_peer_cert_chain gives it on the
  // client) against these roots, now; for reusing a connection made under older credentials.
  std::string verifyPeerChain(STACK_OF(X509) * chain, bool peerIsServer, PeerIdentity& out) const;

  CredentialSet() = default;

 private:
  CtxPtr newContext(bool isServer, bool withCertificate) const;

  std::vector<std::string> roots;
  std::vector<X509Ptr> rootCerts;
  std::vector<X509Ptr> chain;  // own: leaf, then intermediates
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> key{nullptr, EVP_PKEY_free};
  std::string cluster;
  bool allowTls12 = false;
  std::vector<std::string> revoked;
  kj::Maybe<PeerIdentity> self;
  std::string ownProblem;
  CtxPtr server, client, join;
};

// Ties `state` to `ssl` for the verify callback; it must outlive the handshake.
void attachVerifyState(SSL* ssl, VerifyState& state);

// Identity fields of a node certificate, or why it is not one.
std::string identityOf(X509* leaf, PeerIdentity& out);

// Verifies a peer's chain (leaf first) against one root PEM only, now, and reads the leaf's
// identity: how a joining node checks a listener whose root it pinned by digest.
std::string verifyAgainstRoot(const std::string& rootPem, STACK_OF(X509) * chain, PeerIdentity& out);

// Why a chain failed OpenSSL's verification, in words an operator can act on.
std::string describeVerifyError(int error, X509* at, int depth);

std::vector<X509Ptr> certsFromPem(const std::string& pem);
std::string pemOf(X509* cert);

// SHA-256 of `bytes` as a 50-character base-36 number: the root digest in join tokens (SwarmKit:
// the digest of the root CA's PEM).
std::string base36Sha256(const std::string& bytes);
bool isRootDigest(kj::StringPtr text);  // 50 characters of 0-9a-z

// The name of a TLS version number (TLS1_3_VERSION ...) for messages.
kj::StringPtr versionName(int version);

}  // namespace swarm::tls
