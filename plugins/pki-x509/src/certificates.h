// Node certificates: the CSR a node makes, the certificate a manager issues for it, checking a
// chain a peer presents, and when to renew.
//
// A node certificate says CN = node ID, OU = swarm-worker | swarm-manager, O = cluster ID, with
// DNS names {OU, CN} (+ swarm-ca for managers), serverAuth + clientAuth, CA:FALSE. Only the
// public key comes from the CSR; everything else from the identity the kernel asks for. The node's
// private key never leaves the node (makeNodeCsr runs there).
#pragma once

#include "ossl.h"

#include <swarm/schema/common.capnp.h>

#include <kj/one-of.h>

#include <string>
#include <vector>

namespace swarm::pki {

constexpr int64_t NODE_VALIDITY = 90 * DAY;  // SwarmKit's DefaultNodeCertExpiration
constexpr int64_t NODE_MIN_VALIDITY = HOUR;  // SwarmKit's MinNodeCertExpiration
constexpr int64_t NODE_BACKDATE = HOUR;      // SwarmKit's CertBackdate

struct NodeIdentity {
  std::string nodeId;
  schema::NodeRole role;
  std::string clusterId;
};

const char* ouOf(schema::NodeRole role);

// Refuses an empty, over-long (X.509 allows 64 characters) or unknown part; `what` names the input.
NodeIdentity readIdentity(schema::Identity::Reader identity, kj::StringPtr what);
void writeIdentity(schema::Identity::Builder out, const NodeIdentity& identity);

// The DNS names a node certificate carries: {OU, CN}, and swarm-ca for managers.
std::vector<std::string> nodeDnsNames(const NodeIdentity& identity);

struct NodeCsr {
  std::string csrPem;
  std::string keyPem;  // PKCS#8; stays on the node
};
NodeCsr makeNodeCsr(const NodeIdentity& identity);

// The CSR's public key, after checking the PEM, the CSR's signature (the requester holds the
// key) and that the key is ECDSA P-256.
PkeyPtr checkNodeCsr(Bytes csrPem);

struct Validity {
  int64_t notBefore, notAfter;  // Unix seconds
};

// From issue()'s arguments: validity 0 = 90 days, below an hour refused; `now` 0 = the wall
// clock. Backdated an hour; capped at the issuer's own expiry (and refused when that leaves less
// than an hour).
Validity nodeValidity(int64_t validityNs, int64_t nowNs, X509* issuer);
int64_t nowSeconds(int64_t nowNs);

X509Ptr signNodeCertificate(EVP_PKEY* publicKey, const NodeIdentity& identity, Validity validity,
                            X509* issuer, EVP_PKEY* issuerKey);

// Why `leaf` (with `intermediates`) does not chain to one of `trusted` at `now`, or nullptr.
kj::Maybe<kj::String> chainProblem(X509* leaf, const std::vector<X509*>& intermediates,
                                   const std::vector<X509*>& trusted, int64_t now);

// The identity in a node certificate's subject, or why it is not one.
kj::OneOf<NodeIdentity, kj::String> identityOf(X509* leaf);

// Refuses a certificate an external signer returned unless it is exactly what was asked for:
// the CSR's key, the identity's subject (O included), a non-CA leaf with serverAuth + clientAuth,
// chaining to `trusted` through `intermediates`, valid at `now` for at least an hour.
void checkSignedNodeCertificate(X509* leaf, EVP_PKEY* requestedKey, const NodeIdentity& identity,
                                const std::vector<X509*>& intermediates,
                                const std::vector<X509*>& trusted, int64_t now);

// verify(): chain to `trusted` at `now`, a node certificate, not a revoked node.
kj::OneOf<NodeIdentity, kj::String> verifyNodeChain(Bytes chainPem,
                                                    const std::vector<X509*>& trusted, int64_t now,
                                                    const std::vector<std::string>& revoked);

// A point between 50% and 80% of [notBefore, notAfter] (SwarmKit's calculateRandomExpiry),
// chosen by `random` (uniform over 64 bits).
int64_t renewalPoint(int64_t notBeforeNs, int64_t notAfterNs, uint64_t random);
// The same random number for the same seed (splitmix64), so renewalTime() can be replayed.
uint64_t seededRandom(uint64_t seed);

}  // namespace swarm::pki
