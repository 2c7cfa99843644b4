#include "fake_pki.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <kj/debug.h>

#include <ctime>
#include <vector>

namespace swarm::fakes {
namespace {

constexpr int64_t NS = 1000000000;
constexpr int64_t HOUR = 3600;
constexpr int64_t ROOT_VALIDITY = 630720000;    // 20 years, as SwarmKit's CreateRootCA
constexpr int64_t NODE_VALIDITY = 90 * 24 * HOUR;
constexpr int64_t BACKDATE = HOUR;
constexpr const char* TOKEN_PREFIX = "SWMTKN-1-";
constexpr size_t DIGEST_CHARS = 50;  // SHA-256 in base 36
constexpr size_t SECRET_CHARS = 25;  // 16 random bytes in base 36
constexpr const char* TOKEN_FORMAT =
    "a join token looks like SWMTKN-1-<50 base36 characters>-<25 base36 characters>; copy the "
    "whole token printed by 'swarm init' or 'swarm join-token'";

struct BioFree {
  void operator()(BIO* p) const { BIO_free_all(p); }
};
struct NameFree {
  void operator()(X509_NAME* p) const { X509_NAME_free(p); }
};
struct ReqFree {
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
};
struct StoreFree {
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
};
struct StackFree {
  void operator()(STACK_OF(X509)* p) const { sk_X509_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using NamePtr = std::unique_ptr<X509_NAME, NameFree>;
using ReqPtr = std::unique_ptr<X509_REQ, ReqFree>;

std::string opensslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  return buf;
}

BioPtr readBio(capnp::Data::Reader data) {
  return BioPtr(BIO_new_mem_buf(data.begin(), static_cast<int>(data.size())));
}

std::string drain(BIO* bio) {
  char* p = nullptr;
  long n = BIO_get_mem_data(bio, &p);
  return std::string(p, static_cast<size_t>(n));
}

std::string certPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  KJ_ASSERT(PEM_write_bio_X509(bio.get(), cert) == 1, opensslError());
  return drain(bio.get());
}

std::string keyPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  KJ_ASSERT(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
            opensslError());
  return drain(bio.get());
}

std::vector<X509Ptr> certsFromPem(capnp::Data::Reader data) {
  std::vector<X509Ptr> certs;
  auto bio = readBio(data);
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) certs.emplace_back(cert);
  ERR_clear_error();  // the read that ends the loop always leaves "no start line"
  return certs;
}

X509Ptr oneCert(capnp::Data::Reader data, kj::StringPtr what) {
  auto certs = certsFromPem(data);
  if (certs.empty()) sdk::fail(kj::str(what, " is not a PEM certificate"));
  return std::move(certs.front());
}

PkeyPtr keyFromPem(capnp::Data::Reader data, kj::StringPtr what) {
  auto bio = readBio(data);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) sdk::fail(kj::str(what, " is not a PEM private key: ", opensslError().c_str()));
  return PkeyPtr(key);
}

PkeyPtr newP256Key() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  KJ_ASSERT(key != nullptr, opensslError());
  return PkeyPtr(key);
}

int64_t wallSeconds() { return static_cast<int64_t>(time(nullptr)); }

int64_t asn1Seconds(const ASN1_TIME* t) {
  struct tm tm = {};
  KJ_ASSERT(ASN1_TIME_to_tm(t, &tm) == 1);
  return static_cast<int64_t>(timegm(&tm));
}

uint64_t randomU64() {
  uint64_t v = 0;
  KJ_ASSERT(RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof(v)) == 1, opensslError());
  return v;
}

// Big-endian bytes as a base-36 number (lowercase), zero-padded to `width` characters.
std::string base36(std::vector<unsigned char> n, size_t width) {
  static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string out;
  bool zero = false;
  while (!zero) {
    unsigned remainder = 0;
    zero = true;
    for (auto& byte : n) {
      unsigned cur = remainder * 256 + byte;
      byte = static_cast<unsigned char>(cur / 36);
      remainder = cur % 36;
      if (byte != 0) zero = false;
    }
    out.insert(out.begin(), digits[remainder]);
  }
  if (out.size() < width) out.insert(0, width - out.size(), '0');
  return out;
}

std::string digestOf(capnp::Data::Reader pem) {
  std::vector<unsigned char> sum(32);
  unsigned len = 0;
  KJ_ASSERT(EVP_Digest(pem.begin(), pem.size(), sum.data(), &len, EVP_sha256(), nullptr) == 1);
  return base36(std::move(sum), DIGEST_CHARS);
}

capnp::Data::Reader bytesOf(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

const char* roleOu(schema::NodeRole role) {
  return role == schema::NodeRole::MANAGER ? "swarm-manager" : "swarm-worker";
}

NamePtr makeName(kj::StringPtr cn, kj::StringPtr ou, kj::StringPtr o) {
  NamePtr name(X509_NAME_new());
  auto add = [&](const char* field, kj::StringPtr value) {
    if (value.size() == 0) return;
    KJ_ASSERT(X509_NAME_add_entry_by_txt(name.get(), field, MBSTRING_UTF8,
                                         reinterpret_cast<const unsigned char*>(value.cStr()), -1,
                                         -1, 0) == 1,
              opensslError());
  };
  add("O", o);
  add("OU", ou);
  add("CN", cn);
  return name;
}

std::string nameEntry(const X509_NAME* name, int nid) {
  int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) return {};
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index)));
  if (n < 0) return {};
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

void addExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  KJ_ASSERT(ext != nullptr, nid, value, opensslError());
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

struct CertSpec {
  const X509_NAME* subject;
  EVP_PKEY* publicKey;
  X509* issuer;  // null: self-signed
  EVP_PKEY* signingKey;
  int64_t notBefore, notAfter;  // seconds
  bool ca;
  std::string altNames;  // "DNS:a,DNS:b" for leaves
};

X509Ptr buildCert(const CertSpec& spec) {
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  KJ_ASSERT(RAND_bytes(serial, sizeof(serial)) == 1);
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_set_subject_name(cert.get(), spec.subject);
  X509_set_issuer_name(cert.get(),
                       spec.issuer ? X509_get_subject_name(spec.issuer) : spec.subject);
  X509_set_pubkey(cert.get(), spec.publicKey);
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), static_cast<time_t>(spec.notBefore));
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), static_cast<time_t>(spec.notAfter));
  X509* issuer = spec.issuer ? spec.issuer : cert.get();
  addExtension(cert.get(), issuer, NID_subject_key_identifier, "hash");
  if (spec.issuer) addExtension(cert.get(), issuer, NID_authority_key_identifier, "keyid");
  if (spec.ca) {
    addExtension(cert.get(), issuer, NID_basic_constraints, "critical,CA:TRUE");
    addExtension(cert.get(), issuer, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
  } else {
    addExtension(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE");
    addExtension(cert.get(), issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    addExtension(cert.get(), issuer, NID_ext_key_usage, "serverAuth,clientAuth");
    addExtension(cert.get(), issuer, NID_subject_alt_name, spec.altNames.c_str());
  }
  KJ_ASSERT(X509_sign(cert.get(), spec.signingKey, EVP_sha256()) > 0, opensslError());
  return cert;
}

// A root from a generate/provided request. External signing is the part this fake leaves out.
struct NewRoot {
  X509Ptr cert;
  PkeyPtr key;
};

NewRoot rootFromRequest(schema::RootCaRequest::Reader request) {
  switch (request.which()) {
    case schema::RootCaRequest::GENERATE: {
      auto generate = request.getGenerate();
      int64_t validity = generate.getValidity() == 0 ? ROOT_VALIDITY : generate.getValidity() / NS;
      if (validity < HOUR) sdk::fail("root CA validity must be at least 1 hour (0 = 20 years)");
      kj::StringPtr cn = generate.getCommonName();
      if (cn.size() == 0) sdk::fail("root CA common name is empty; leave it unset for 'swarm-ca'");
      auto key = newP256Key();
      auto name = makeName(cn, "", "");
      int64_t now = wallSeconds();
      auto cert = buildCert({name.get(), key.get(), nullptr, key.get(), now - BACKDATE,
                             now + validity, true, {}});
      return {std::move(cert), std::move(key)};
    }
    case schema::RootCaRequest::PROVIDED: {
      auto provided = request.getProvided();
      auto cert = oneCert(provided.getCert(), "the provided root CA certificate");
      auto key = keyFromPem(provided.getKey(), "the provided root CA key");
      if (X509_check_private_key(cert.get(), key.get()) != 1) {
        ERR_clear_error();
        sdk::fail("the provided root CA key does not match its certificate; supply the key of that certificate");
      }
      if (X509_check_ca(cert.get()) < 1) {
        sdk::fail("the provided root certificate is not a CA (basicConstraints CA:TRUE); supply a CA certificate");
      }
      return {std::move(cert), std::move(key)};
    }
    case schema::RootCaRequest::EXTERNAL:
      break;
  }
  sdk::fail("fake-pki has no external CA support; use a generated or provided root");
}

void fillRoot(schema::RootCa::Builder out, const NewRoot& root) {
  auto pem = certPem(root.cert.get());
  out.setCert(bytesOf(pem));
  auto key = keyPem(root.key.get());
  out.setKey(bytesOf(key));
  out.setDigest(digestOf(bytesOf(pem)));
}

struct ParsedToken {
  std::string digest, secret;
};

kj::Maybe<ParsedToken> parseToken(kj::StringPtr token) {
  std::string s(token.cStr());
  std::string prefix(TOKEN_PREFIX);
  if (s.size() != prefix.size() + DIGEST_CHARS + 1 + SECRET_CHARS) return nullptr;
  if (s.compare(0, prefix.size(), prefix) != 0) return nullptr;
  ParsedToken t{s.substr(prefix.size(), DIGEST_CHARS), s.substr(prefix.size() + DIGEST_CHARS + 1)};
  if (s[prefix.size() + DIGEST_CHARS] != '-') return nullptr;
  for (char c : t.digest + t.secret) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'))) return nullptr;
  }
  return t;
}

std::string freshSecret() {
  std::vector<unsigned char> bytes(16);
  KJ_ASSERT(RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) == 1);
  return base36(std::move(bytes), SECRET_CHARS);
}

bool sameToken(kj::StringPtr a, kj::StringPtr b) {
  return a.size() == b.size() && a.size() > 0 && CRYPTO_memcmp(a.begin(), b.begin(), a.size()) == 0;
}

// A random point between 50% and 80% of [notBefore, notAfter] (SwarmKit calculateRandomExpiry).
int64_t renewalPoint(int64_t notBefore, int64_t notAfter, uint64_t random) {
  double fraction = 0.5 + 0.3 * (static_cast<double>(random >> 11) / static_cast<double>(1ull << 53));
  return notBefore + static_cast<int64_t>(static_cast<double>(notAfter - notBefore) * fraction);
}

}  // namespace

const FakePki::Root& FakePki::loaded(const char* what) const {
  if (!root) sdk::fail(kj::str(what, " needs a root CA: call loadRoot() first"));
  return *root;
}

kj::Promise<void> FakePki::createRoot(CreateRootContext context) {
  auto made = rootFromRequest(context.getParams().getRequest());
  fillRoot(context.getResults().initRoot(), made);
  return kj::READY_NOW;
}

kj::Promise<void> FakePki::loadRoot(LoadRootContext context) {
  auto in = context.getParams().getRoot();
  auto next = std::make_unique<Root>();
  next->cert = oneCert(in.getCert(), "root.cert");
  if (in.getKey().size() > 0) {
    next->key = keyFromPem(in.getKey(), "root.key");
    if (X509_check_private_key(next->cert.get(), next->key.get()) != 1) {
      ERR_clear_error();
      sdk::fail("root.key does not match root.cert; load the key that belongs to the root certificate");
    }
  }
  next->digest = digestOf(in.getCert());
  if (in.getPreviousCert().size() > 0) next->previous = oneCert(in.getPreviousCert(), "root.previousCert");
  if (in.getCrossSignedCert().size() > 0) {
    next->crossSignedPem = certPem(oneCert(in.getCrossSignedCert(), "root.crossSignedCert").get());
  }
  root = std::move(next);
  return kj::READY_NOW;
}

kj::Promise<void> FakePki::issue(IssueContext context) {
  auto params = context.getParams();
  const Root& r = loaded("issue()");
  if (!r.key) sdk::fail("the loaded root CA has no key, so it cannot sign; load a root with its key");
  auto identity = params.getIdentity();
  if (identity.getNodeId().size() == 0 || identity.getClusterId().size() == 0) {
    sdk::fail("issue() needs identity.nodeId and identity.clusterId");
  }
  int64_t validity = params.getValidity() == 0 ? NODE_VALIDITY : params.getValidity() / NS;
  if (params.getValidity() != 0 && params.getValidity() < HOUR * NS) {
    sdk::fail(kj::str("certificate validity ", params.getValidity() / NS,
                      " s is below the 1 hour minimum; ask for at least 3600 s (0 = 90 days)"));
  }
  int64_t now = params.getNow() == 0 ? wallSeconds() : params.getNow() / NS;

  auto bio = readBio(params.getCsr());
  ReqPtr csr(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!csr) {
    ERR_clear_error();
    sdk::fail("csr is not a PEM certificate request; send the CSR made by makeCsr()");
  }
  EVP_PKEY* csrKey = X509_REQ_get0_pubkey(csr.get());
  if (csrKey == nullptr || X509_REQ_verify(csr.get(), csrKey) != 1) {
    ERR_clear_error();
    sdk::fail("the CSR's signature does not verify against its own key; make a new CSR");
  }

  // Only the public key comes from the CSR; the subject is the identity we were given.
  const char* ou = roleOu(identity.getRole());
  auto name = makeName(identity.getNodeId(), ou, identity.getClusterId());
  std::string altNames = kj::str("DNS:", ou, ",DNS:", identity.getNodeId()).cStr();
  if (identity.getRole() == schema::NodeRole::MANAGER) altNames += ",DNS:swarm-ca";
  int64_t notBefore = now - BACKDATE, notAfter = now + validity;
  auto cert = buildCert({name.get(), csrKey, r.cert.get(), r.key.get(), notBefore, notAfter, false,
                         altNames});

  auto out = context.getResults().initCertificate();
  out.setChain(bytesOf(certPem(cert.get()) + r.crossSignedPem));
  out.setNotBefore(notBefore * NS);
  out.setNotAfter(notAfter * NS);
  out.setRenewAt(renewalPoint(notBefore * NS, notAfter * NS, randomU64()));
  return kj::READY_NOW;
}

kj::Promise<void> FakePki::makeCsr(MakeCsrContext context) {
  auto identity = context.getParams().getIdentity();
  auto key = newP256Key();
  ReqPtr csr(X509_REQ_new());
  auto name = makeName(identity.getNodeId(), roleOu(identity.getRole()), identity.getClusterId());
  X509_REQ_set_subject_name(csr.get(), name.get());
  X509_REQ_set_pubkey(csr.get(), key.get());
  KJ_ASSERT(X509_REQ_sign(csr.get(), key.get(), EVP_sha256()) > 0, opensslError());
  BioPtr bio(BIO_new(BIO_s_mem()));
  KJ_ASSERT(PEM_write_bio_X509_REQ(bio.get(), csr.get()) == 1);
  auto results = context.getResults();
  results.setCsr(bytesOf(drain(bio.get())));
  results.setKey(bytesOf(keyPem(key.get())));
  return kj::READY_NOW;
}

kj::Promise<void> FakePki::makeJoinTokens(MakeJoinTokensContext context) {
  const Root& r = loaded("makeJoinTokens()");
  auto rotate = context.getParams().getRotate();
  auto make = [&](kj::StringPtr current, const char* field) {
    std::string secret;
    if (current.size() == 0) {
      secret = freshSecret();
    } else KJ_IF_MAYBE(t, parseToken(current)) {
      secret = t->secret;
    } else {
      sdk::fail(kj::str("rotate.", field, " is not a join token (", TOKEN_FORMAT,
                        "); leave it empty for a fresh secret"));
    }
    return TOKEN_PREFIX + r.digest + "-" + secret;
  };
  auto tokens = context.getResults().initTokens();
  tokens.setWorker(make(rotate.getWorker(), "worker"));
  tokens.setManager(make(rotate.getManager(), "manager"));
  return kj::READY_NOW;
}

kj::Promise<void> FakePki::checkJoinToken(CheckJoinTokenContext context) {
  const Root& r = loaded("checkJoinToken()");
  auto params = context.getParams();
  auto check = context.getResults().initCheck();
  KJ_IF_MAYBE(t, parseToken(params.getToken())) {
    if (CRYPTO_memcmp(t->digest.data(), r.digest.data(), DIGEST_CHARS) != 0) {
      check.setInvalid("the join token was made for another swarm: its root CA digest does not match this swarm's");
    } else if (sameToken(params.getToken(), params.getCurrent().getManager())) {
      check.setRole(schema::NodeRole::MANAGER);
    } else if (sameToken(params.getToken(), params.getCurrent().getWorker())) {
      check.setRole(schema::NodeRole::WORKER);
    } else {
      check.setInvalid("the join token's secret is not current (unknown or rotated); ask a manager for 'swarm join-token'");
    }
  } else {
    check.setInvalid(kj::str("malformed join token: ", TOKEN_FORMAT));
  }
  return kj::READY_NOW;
}

kj::Promise<void> FakePki::rootDigestOfToken(RootDigestOfTokenContext context) {
  KJ_IF_MAYBE(t, parseToken(context.getParams().getToken())) {
    context.getResults().setDigest(t->digest);
    return kj::READY_NOW;
  }
  sdk::fail(kj::str("malformed join token: ", TOKEN_FORMAT));
}

kj::Promise<void> FakePki::verify(VerifyContext context) {
  const Root& r = loaded("verify()");
  auto params = context.getParams();
  auto check = context.getResults().initCheck();
  auto chain = certsFromPem(params.getChain());
  if (chain.empty()) {
    check.setInvalid("the chain holds no PEM certificate");
    return kj::READY_NOW;
  }

  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), r.cert.get());
  if (r.previous) X509_STORE_add_cert(store.get(), r.previous.get());
  std::unique_ptr<STACK_OF(X509), StackFree> untrusted(sk_X509_new_null());
  for (size_t i = 1; i < chain.size(); ++i) sk_X509_push(untrusted.get(), chain[i].get());
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].get(), untrusted.get());
  int64_t now = params.getNow() == 0 ? wallSeconds() : params.getNow() / NS;
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()), static_cast<time_t>(now));
  if (X509_verify_cert(ctx.get()) != 1) {
    int error = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    check.setInvalid(kj::str("certificate refused: ", X509_verify_cert_error_string(error)));
    return kj::READY_NOW;
  }

  const X509_NAME* subject = X509_get_subject_name(chain[0].get());
  std::string cn = nameEntry(subject, NID_commonName), ou = nameEntry(subject, NID_organizationalUnitName),
              o = nameEntry(subject, NID_organizationName);
  if (cn.empty() || o.empty() || (ou != "swarm-worker" && ou != "swarm-manager")) {
    check.setInvalid("certificate is not a swarm node certificate (needs CN, OU swarm-worker/swarm-manager, O)");
    return kj::READY_NOW;
  }
  for (auto id : params.getRevoked()) {
    if (id == cn.c_str()) {
      check.setInvalid(kj::str("node ", cn.c_str(), " is revoked"));
      return kj::READY_NOW;
    }
  }
  auto identity = check.initValid();
  identity.setNodeId(cn);
  identity.setRole(ou == "swarm-manager" ? schema::NodeRole::MANAGER : schema::NodeRole::WORKER);
  identity.setClusterId(o);
  return kj::READY_NOW;
}

kj::Promise<void> FakePki::startRootRotation(StartRootRotationContext context) {
  const Root& current = loaded("startRootRotation()");
  if (!current.key) sdk::fail("the loaded root CA has no key, so it cannot cross-sign a new root");
  auto next = rootFromRequest(context.getParams().getRequest());
  if (EVP_PKEY_eq(next.key.get(), current.key.get()) == 1) {
    sdk::fail("the new root CA reuses the current root's key; a rotation needs a new key");
  }
  // The new root's subject and key, signed by the current root: nodes that trust only the current
  // root accept certificates from the new one through this intermediate.
  auto crossSigned = buildCert({X509_get_subject_name(next.cert.get()), next.key.get(),
                                current.cert.get(), current.key.get(),
                                asn1Seconds(X509_get0_notBefore(next.cert.get())),
                                asn1Seconds(X509_get0_notAfter(next.cert.get())), true, {}});
  auto out = context.getResults().initRoot();
  fillRoot(out, next);
  out.setCrossSignedCert(bytesOf(certPem(crossSigned.get())));
  out.setPreviousCert(bytesOf(certPem(current.cert.get())));
  return kj::READY_NOW;
}

kj::Promise<void> FakePki::renewalTime(RenewalTimeContext context) {
  auto params = context.getParams();
  auto leaf = oneCert(params.getChain(), "chain");
  int64_t notBefore = asn1Seconds(X509_get0_notBefore(leaf.get())) * NS;
  int64_t notAfter = asn1Seconds(X509_get0_notAfter(leaf.get())) * NS;
  // splitmix64: the same seed always gives the same point.
  uint64_t z = params.getSeed() + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  context.getResults().setRenewAt(renewalPoint(notBefore, notAfter, z ^ (z >> 31)));
  return kj::READY_NOW;
}

}  // namespace swarm::fakes
