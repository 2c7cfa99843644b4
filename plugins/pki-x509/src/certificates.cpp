#include "certificates.h"

#include "ca.h"

#include <swarm/sdk.h>

#include <kj/debug.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>

namespace swarm::pki {
namespace {

constexpr size_t MAX_NAME_CHARS = 64;  // RFC 5280 ub-common-name, ub-organization-name...

template <typename T, void (*F)(T*)>
using Owned = std::unique_ptr<T, Deleter<T, F>>;

// sk_X509_free is a macro, so it cannot be a Deleter argument. The stack borrows its certificates.
struct StackFree {
  void operator()(STACK_OF(X509) * stack) const { sk_X509_free(stack); }
};

void checkNamePart(const std::string& value, kj::StringPtr what, kj::StringPtr field) {
  if (value.empty())
    sdk::fail(kj::str(what, ".", field, " is empty; every node certificate needs one"));
  if (value.size() > MAX_NAME_CHARS) {
    sdk::fail(kj::str(what, ".", field, " has ", value.size(),
                      " characters; a certificate name allows ", MAX_NAME_CHARS));
  }
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7f)
      sdk::fail(kj::str(what, ".", field, " holds a control character; use printable text"));
  }
}

kj::String verifyErrorText(int error, X509* cert) {
  switch (error) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return kj::str("the certificate ", nameText(X509_get_subject_name(cert)), " expired on ",
                     isoTime(unixTime(X509_get0_notAfter(cert))), "; renew it");
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return kj::str("the certificate ", nameText(X509_get_subject_name(cert)),
                     " is not valid until ", isoTime(unixTime(X509_get0_notBefore(cert))),
                     "; check the clocks");
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return kj::str("the certificate does not chain to this swarm's root CA (",
                     X509_verify_cert_error_string(error), " at ",
                     nameText(X509_get_subject_name(cert)), ")");
    default:
      return kj::str("the certificate chain is refused: ", X509_verify_cert_error_string(error),
                     " (at ", nameText(X509_get_subject_name(cert)), ")");
  }
}

bool isCa(X509* cert) { return (X509_get_extension_flags(cert) & EXFLAG_CA) != 0; }

}  // namespace

const char* ouOf(schema::NodeRole role) {
  return role == schema::NodeRole::MANAGER ? "swarm-manager" : "swarm-worker";
}

NodeIdentity readIdentity(schema::Identity::Reader in, kj::StringPtr what) {
  NodeIdentity id{in.getNodeId(), in.getRole(), in.getClusterId()};
  checkNamePart(id.nodeId, what, "nodeId");
  checkNamePart(id.clusterId, what, "clusterId");
  if (id.role != schema::NodeRole::WORKER && id.role != schema::NodeRole::MANAGER) {
    sdk::fail(kj::str(what, ".role ", static_cast<unsigned>(id.role),
                      " is not a known role; use worker or manager"));
  }
  return id;
}

void writeIdentity(schema::Identity::Builder out, const NodeIdentity& identity) {
  out.setNodeId(identity.nodeId);
  out.setRole(identity.role);
  out.setClusterId(identity.clusterId);
}

std::vector<std::string> nodeDnsNames(const NodeIdentity& identity) {
  std::vector<std::string> names{ouOf(identity.role), identity.nodeId};
  if (identity.role == schema::NodeRole::MANAGER) names.emplace_back("swarm-ca");
  return names;
}

NodeCsr makeNodeCsr(const NodeIdentity& identity) {
  auto key = newP256Key();
  ReqPtr csr(X509_REQ_new());
  check(csr != nullptr, "X509_REQ_new");
  // The subject is informational: issue() takes the identity from the kernel, not from here.
  auto name = makeName(identity.nodeId, ouOf(identity.role), identity.clusterId);
  check(X509_REQ_set_subject_name(csr.get(), name.get()), "X509_REQ_set_subject_name");
  check(X509_REQ_set_pubkey(csr.get(), key.get()), "X509_REQ_set_pubkey");
  check(X509_REQ_sign(csr.get(), key.get(), EVP_sha256()) > 0, "X509_REQ_sign");
  return {pem(csr.get()), pemPrivate(key.get())};
}

PkeyPtr checkNodeCsr(Bytes csrPem) {
  auto csr = readCsr(csrPem, "the CSR");
  EVP_PKEY* key = X509_REQ_get0_pubkey(csr.get());
  if (key == nullptr) {
    ERR_clear_error();
    sdk::fail("the CSR's public key is unreadable; make a new CSR with makeCsr()");
  }
  if (X509_REQ_verify(csr.get(), key) != 1) {
    ERR_clear_error();
    sdk::fail(
        "the CSR's signature does not verify with its own public key (the requester does not hold "
        "that key, "
        "or the CSR was altered); make a new CSR with makeCsr()");
  }
  if (!isP256(key)) {
    sdk::fail(kj::str("the CSR's key is ", describeKey(key),
                      "; swarm node keys must be ECDSA P-256: make the CSR with makeCsr()"));
  }
  check(EVP_PKEY_up_ref(key), "EVP_PKEY_up_ref");
  return PkeyPtr(key);
}

int64_t nowSeconds(int64_t nowNs) {
  if (nowNs < 0)
    sdk::fail(kj::str("`now` is negative (", nowNs, " ns); pass nanoseconds since the Unix epoch"));
  return nowNs == 0 ? wallSeconds() : nowNs / NS;
}

Validity nodeValidity(int64_t validityNs, int64_t nowNs, X509* issuer) {
  if (validityNs < 0) {
    sdk::fail(kj::str("certificate validity ", validityNs,
                      " ns is negative; ask for at least one hour (0 = 90 days)"));
  }
  int64_t validity = validityNs == 0 ? NODE_VALIDITY : validityNs / NS;
  if (validity < NODE_MIN_VALIDITY) {
    sdk::fail(kj::str("certificate validity ", durationText(validity),
                      " is below the one hour minimum; ask for at least 3600 s (0 = 90 days)"));
  }
  int64_t now = nowSeconds(nowNs);
  Validity v{now - NODE_BACKDATE, now + validity};
  // A node certificate outliving its root is useless: no verifier accepts it past the root's end.
  int64_t issuerEnd = unixTime(X509_get0_notAfter(issuer));
  v.notAfter = std::min(v.notAfter, issuerEnd);
  if (v.notAfter - now < NODE_MIN_VALIDITY) {
    sdk::fail(kj::str(
        "the root CA expires on ", isoTime(issuerEnd),
        ", leaving less than the one hour minimum for a node certificate; rotate the root CA"));
  }
  return v;
}

X509Ptr signNodeCertificate(EVP_PKEY* publicKey, const NodeIdentity& identity, Validity validity,
                            X509* issuer, EVP_PKEY* issuerKey) {
  auto name = makeName(identity.nodeId, ouOf(identity.role), identity.clusterId);
  return buildCertificate({name.get(), publicKey, issuer, issuerKey, validity.notBefore,
                           validity.notAfter, CertUse::node, nodeDnsNames(identity)});
}

kj::Maybe<kj::String> chainProblem(X509* leaf, const std::vector<X509*>& intermediates,
                                   const std::vector<X509*>& trusted, int64_t now) {
  Owned<X509_STORE, X509_STORE_free> store(X509_STORE_new());
  check(store != nullptr, "X509_STORE_new");
  for (X509* cert : trusted) check(X509_STORE_add_cert(store.get(), cert), "X509_STORE_add_cert");
  std::unique_ptr<STACK_OF(X509), StackFree> untrusted(sk_X509_new_null());
  for (X509* cert : intermediates) check(sk_X509_push(untrusted.get(), cert) > 0, "sk_X509_push");
  Owned<X509_STORE_CTX, X509_STORE_CTX_free> ctx(X509_STORE_CTX_new());
  check(X509_STORE_CTX_init(ctx.get(), store.get(), leaf, untrusted.get()), "X509_STORE_CTX_init");
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(now));
  // Leaf, cross-signed root, root; external signers may add an intermediate or two.
  X509_VERIFY_PARAM_set_depth(param, 4);
  if (X509_verify_cert(ctx.get()) == 1) return nullptr;
  int error = X509_STORE_CTX_get_error(ctx.get());
  X509* at = X509_STORE_CTX_get_current_cert(ctx.get());
  ERR_clear_error();
  return verifyErrorText(error, at != nullptr ? at : leaf);
}

kj::OneOf<NodeIdentity, kj::String> identityOf(X509* leaf) {
  const X509_NAME* subject = X509_get_subject_name(leaf);
  auto cn = nameEntries(subject, NID_commonName);
  auto ou = nameEntries(subject, NID_organizationalUnitName);
  auto o = nameEntries(subject, NID_organizationName);
  if (cn.size() != 1 || ou.size() != 1 || o.size() != 1 || cn[0].empty() || o[0].empty() ||
      (ou[0] != "swarm-worker" && ou[0] != "swarm-manager")) {
    return kj::str(
        "the certificate (", nameText(subject),
        ") is not a swarm node certificate: it needs one CN (node ID), one OU (swarm-worker or "
        "swarm-manager) and one O (cluster ID)");
  }
  if (isCa(leaf))
    return kj::str("the certificate ", nameText(subject), " is a CA certificate, not a node's");
  return NodeIdentity{
      cn[0], ou[0] == "swarm-manager" ? schema::NodeRole::MANAGER : schema::NodeRole::WORKER, o[0]};
}

void checkSignedNodeCertificate(X509* leaf, EVP_PKEY* requestedKey, const NodeIdentity& identity,
                                const std::vector<X509*>& intermediates,
                                const std::vector<X509*>& trusted, int64_t now) {
  if (EVP_PKEY_eq(X509_get0_pubkey(leaf), requestedKey) != 1) {
    ERR_clear_error();
    sdk::fail("it returned a certificate for another public key than the CSR's");
  }
  KJ_SWITCH_ONEOF(identityOf(leaf)) {
    KJ_CASE_ONEOF(got, NodeIdentity) {
      if (got.clusterId != identity.clusterId) {
        sdk::fail(kj::str("it returned a certificate for organisation (cluster) '", got.clusterId,
                          "', not '", identity.clusterId,
                          "'; its signing profile must keep the requested subject"));
      }
      if (got.nodeId != identity.nodeId || got.role != identity.role) {
        sdk::fail(kj::str("it returned a certificate for ", nameText(X509_get_subject_name(leaf)),
                          ", not CN=", identity.nodeId, ", OU=", ouOf(identity.role),
                          "; its signing profile must keep the requested subject"));
      }
    }
    KJ_CASE_ONEOF(problem, kj::String) {
      sdk::fail(kj::str("it returned an unusable certificate: ", problem));
    }
  }
  uint32_t eku = X509_get_extended_key_usage(leaf);
  if ((eku & XKU_SSL_SERVER) == 0 || (eku & XKU_SSL_CLIENT) == 0) {
    sdk::fail(
        "it returned a certificate without both serverAuth and clientAuth usages; node "
        "certificates serve "
        "both ends of mutual TLS: fix its signing profile");
  }
  auto names = dnsNames(leaf);
  for (auto& wanted : nodeDnsNames(identity)) {
    if (std::find(names.begin(), names.end(), wanted) == names.end()) {
      sdk::fail(kj::str("it returned a certificate without the DNS name ", wanted,
                        "; its signing profile must keep the requested hosts"));
    }
  }
  KJ_IF_MAYBE(problem, chainProblem(leaf, intermediates, trusted, now)) {
    sdk::fail(kj::str("it returned a certificate that fails verification: ", *problem));
  }
  int64_t notAfter = unixTime(X509_get0_notAfter(leaf));
  if (notAfter - now < NODE_MIN_VALIDITY) {
    sdk::fail(
        kj::str("it returned a certificate that expires on ", isoTime(notAfter),
                ", less than the one hour minimum from now; fix its signing profile's expiry"));
  }
}

kj::OneOf<NodeIdentity, kj::String> verifyNodeChain(Bytes chainPem,
                                                    const std::vector<X509*>& trusted, int64_t now,
                                                    const std::vector<std::string>& revoked) {
  std::vector<X509Ptr> chain;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { chain = readCerts(chainPem, "the chain"); })) {
    return kj::str(e->getDescription());
  }
  std::vector<X509*> intermediates;
  for (size_t i = 1; i < chain.size(); ++i) intermediates.push_back(chain[i].get());
  KJ_IF_MAYBE(problem, chainProblem(chain[0].get(), intermediates, trusted, now)) {
    return kj::mv(*problem);
  }
  KJ_SWITCH_ONEOF(identityOf(chain[0].get())) {
    KJ_CASE_ONEOF(problem, kj::String) { return kj::mv(problem); }
    KJ_CASE_ONEOF(identity, NodeIdentity) {
      if (std::find(revoked.begin(), revoked.end(), identity.nodeId) != revoked.end()) {
        return kj::str("node ", identity.nodeId,
                       " is revoked (removed from the swarm); it must join again");
      }
      return kj::mv(identity);
    }
  }
  KJ_UNREACHABLE;
}

int64_t renewalPoint(int64_t notBeforeNs, int64_t notAfterNs, uint64_t random) {
  int64_t life = notAfterNs - notBeforeNs;
  long double fraction =
      0.5L + 0.3L * (static_cast<long double>(random >> 11) / static_cast<long double>(1ULL << 53));
  return notBeforeNs + static_cast<int64_t>(static_cast<long double>(life) * fraction);
}

uint64_t seededRandom(uint64_t seed) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace swarm::pki
