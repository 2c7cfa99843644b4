// The swarm's root CA: making one (generated, operator-supplied or external), checking one,
// cross-signing a new one during a root rotation, and the root the plugin has loaded.
//
// Invariants of a loaded Root:
//   - digest is the SHA-256 (base 36) of certPem, the PEM bytes exactly as the kernel stores them.
//   - key, when present, is cert's private key; without key, issuing needs externalCas.
//   - crossSigned, when present, carries cert's subject and public key, is a CA, and (when
//     previous is present) is signed by previous: nodes that trust only the old root accept
//     certificates from the new one through it.
#pragma once

#include "external_ca.h"
#include "ossl.h"

#include <swarm/schema/pki.capnp.h>

#include <kj/refcount.h>

#include <string>
#include <vector>

namespace swarm::pki {

constexpr int64_t ROOT_VALIDITY = 630720000;           // 20 years, as SwarmKit's CreateRootCA
constexpr int64_t ROOT_BACKDATE = HOUR;                // tolerate clocks an hour behind ours
constexpr int64_t ROTATION_MIN_REMAINING = 365 * DAY;  // SwarmKit: a new root must last a year

// What a certificate is for: the extensions follow from it.
enum class CertUse { rootCa, crossSignedCa, node };

struct CertSpec {
  const X509_NAME* subject;
  EVP_PKEY* publicKey;
  X509* issuer;  // null: self-signed (issuer name = subject)
  EVP_PKEY* signingKey;
  int64_t notBefore, notAfter;  // Unix seconds
  CertUse use;
  std::vector<std::string> dnsNames;                // node certificates only
  const ASN1_OCTET_STRING* subjectKeyId = nullptr;  // keep this SKID instead of hashing the key
};

// A fresh random serial, the extensions for `use`, signed with SHA-256.
X509Ptr buildCertificate(const CertSpec& spec);

// A root just made or adopted, before it is handed to the kernel.
struct NewRoot {
  X509Ptr cert;
  PkeyPtr key;  // null for an external root
  std::vector<ExternalCa> externalCas;
};

NewRoot generateRoot(const std::string& commonName, int64_t validitySeconds, int64_t now);

// An operator's root: one self-signed CA certificate with its key, valid now and for at least
// `minRemaining` seconds more, with an RSA (>= 2048) or ECDSA P-256/384/521 key and a SHA-2
// signature. Each refusal says which of these failed.
NewRoot adoptRoot(Bytes certPem, Bytes keyPem, int64_t now, int64_t minRemaining);

// A root whose key lives with external (cfssl) signers: the same checks as adoptRoot but no key.
NewRoot externalRoot(X509Ptr cert, std::vector<ExternalCa> cas, int64_t now, int64_t minRemaining);

void checkRootCertificate(X509* cert, kj::StringPtr what, int64_t now, int64_t minRemaining);

// `next`'s subject and key as an intermediate under `current`, signed with `currentKey`, valid no
// longer than either root.
X509Ptr crossSign(X509* next, X509* current, EVP_PKEY* currentKey);

// The request an external signer gets to cross-sign `next` (profile "CA"), signed by nextKey.
ReqPtr crossSignRequest(X509* next, EVP_PKEY* nextKey);

// Refuses a cross-signed certificate that is not `next`'s subject and key as a CA under `current`.
void checkCrossSigned(X509* cross, X509* next, X509* current);

// The root in use. Refcounted so that an external signing in flight keeps the root it started
// with even if loadRoot() replaces it meanwhile.
class Root final : public kj::Refcounted {
 public:
  X509Ptr cert;
  std::string certPem;  // as given: the digest is over these bytes
  std::string digest;
  PkeyPtr key;
  std::vector<ExternalCa> externalCas;
  X509Ptr previous;     // rotation: the old root, still trusted
  X509Ptr crossSigned;  // rotation: appended to every issued chain
  std::string crossSignedPem;

  bool canSign() const { return key != nullptr || !externalCas.empty(); }
};

kj::Own<Root> loadRoot(schema::RootCa::Reader root);

}  // namespace swarm::pki
