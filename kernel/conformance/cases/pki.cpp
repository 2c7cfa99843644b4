// pki cases: root CA, join tokens, node certificates and their verification, held to
// sdk/schema/pki.capnp and SwarmKit's behaviour (shared/reference/swarmkit.md section 4).
//
// Everything a plugin returns is inspected with OpenSSL here, never with the plugin's own help.
// The root digest is the SHA-256 of RootCa.cert (the PEM bytes as returned) written as a base-36
// number, lowercase, zero-padded to 50 characters: exactly the digest part of a join token.
#include "conformance.h"
#include "x509_util.h"

#include <swarm/schema/pki.capnp.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <regex>
#include <set>

namespace swarm::conformance {
namespace {

using namespace x509;
using schema::NodeRole;
using schema::Pki;

constexpr auto CALL_LIMIT = 30 * kj::SECONDS;
constexpr int64_t ROOT_VALIDITY = 630720000;  // 20 years
constexpr int64_t NODE_VALIDITY = 90 * DAY;

void check(bool ok, kj::StringPtr message) {
  if (!ok) fail(kj::str(message));
}

const char* ouOf(NodeRole role) { return role == NodeRole::MANAGER ? "swarm-manager" : "swarm-worker"; }
const char* nameOf(NodeRole role) { return role == NodeRole::MANAGER ? "manager" : "worker"; }

struct Id {
  std::string nodeId;
  NodeRole role;
  std::string clusterId;
};

struct Root {
  std::string cert, key, digest, crossSigned, previous;
};

struct Tokens {
  std::string worker, manager;
};

struct TokenVerdict {
  bool valid = false;
  NodeRole role = NodeRole::WORKER;
  std::string reason;
};

struct Csr {
  std::string csr, key;
};

struct Issued {
  std::string chain;
  int64_t notBefore, notAfter, renewAt;  // ns
};

struct CertVerdict {
  bool valid = false;
  Id identity;
  std::string reason;
};

// The plugin under test, one call per method, results copied out of the capnp messages.
class Driver {
 public:
  explicit Driver(CaseContext& ctx) : ctx(ctx), pki(ctx.as<Pki>()), rng(ctx.seed) {}

  Root generate(const std::string& commonName = {}, int64_t validityNs = 0) {
    auto request = pki.createRootRequest();
    auto generate = request.initRequest().initGenerate();
    if (!commonName.empty()) generate.setCommonName(commonName);
    generate.setValidity(validityNs);
    return rootOf(ctx.within(request.send(), CALL_LIMIT, "pki.createRoot(generate)").getRoot());
  }

  Root provided(const std::string& cert, const std::string& key) {
    auto request = pki.createRootRequest();
    auto provided = request.initRequest().initProvided();
    provided.setCert(data(cert));
    provided.setKey(data(key));
    return rootOf(ctx.within(request.send(), CALL_LIMIT, "pki.createRoot(provided)").getRoot());
  }

  void load(const Root& root) {
    auto request = pki.loadRootRequest();
    auto r = request.initRoot();
    r.setCert(data(root.cert));
    r.setKey(data(root.key));
    r.setDigest(root.digest);
    r.setCrossSignedCert(data(root.crossSigned));
    r.setPreviousCert(data(root.previous));
    ctx.within(request.send(), CALL_LIMIT, "pki.loadRoot");
  }

  Root setUpRoot() {
    Root root = generate();
    load(root);
    return root;
  }

  Root rotate() {
    auto request = pki.startRootRotationRequest();
    request.initRequest().initGenerate();
    return rootOf(ctx.within(request.send(), CALL_LIMIT, "pki.startRootRotation").getRoot());
  }

  Tokens tokens(const std::string& keepWorker = {}, const std::string& keepManager = {}) {
    auto request = pki.makeJoinTokensRequest();
    auto rotate = request.initRotate();
    rotate.setWorker(keepWorker);
    rotate.setManager(keepManager);
    auto response = ctx.within(request.send(), CALL_LIMIT, "pki.makeJoinTokens");
    auto t = response.getTokens();
    return {t.getWorker(), t.getManager()};
  }

  TokenVerdict checkToken(const std::string& token, const Tokens& current) {
    auto request = pki.checkJoinTokenRequest();
    request.setToken(token);
    request.initCurrent().setWorker(current.worker);
    request.getCurrent().setManager(current.manager);
    auto response = ctx.within(request.send(), CALL_LIMIT, "pki.checkJoinToken");
    auto c = response.getCheck();
    if (c.isRole()) return {true, c.getRole(), {}};
    return {false, NodeRole::WORKER, c.getInvalid()};
  }

  std::string digestOfToken(const std::string& token) {
    auto request = pki.rootDigestOfTokenRequest();
    request.setToken(token);
    return ctx.within(request.send(), CALL_LIMIT, "pki.rootDigestOfToken").getDigest();
  }

  Csr makeCsr(const Id& id) {
    auto request = pki.makeCsrRequest();
    setId(request.initIdentity(), id);
    auto response = ctx.within(request.send(), CALL_LIMIT, "pki.makeCsr");
    return {str(response.getCsr()), str(response.getKey())};
  }

  Issued issue(const std::string& csr, const Id& id, int64_t validityNs, int64_t nowNs) {
    auto request = pki.issueRequest();
    request.setCsr(data(csr));
    setId(request.initIdentity(), id);
    request.setValidity(validityNs);
    request.setNow(nowNs);
    auto response = ctx.within(request.send(), CALL_LIMIT, "pki.issue");
    auto c = response.getCertificate();
    return {str(c.getChain()), c.getNotBefore(), c.getNotAfter(), c.getRenewAt()};
  }

  // A fresh node key and certificate for `id` (through makeCsr, as a joining node does).
  Issued issueFor(const Id& id, int64_t validityNs = 0) {
    return issue(makeCsr(id).csr, id, validityNs, wallSeconds() * NS);
  }

  CertVerdict verify(const std::string& chain, int64_t nowNs, const std::vector<std::string>& revoked = {}) {
    auto request = pki.verifyRequest();
    request.setChain(data(chain));
    request.setNow(nowNs);
    auto list = request.initRevoked(static_cast<unsigned>(revoked.size()));
    for (unsigned i = 0; i < revoked.size(); ++i) list.set(i, revoked[i]);
    auto response = ctx.within(request.send(), CALL_LIMIT, "pki.verify");
    auto c = response.getCheck();
    if (c.isValid()) {
      auto v = c.getValid();
      return {true, {v.getNodeId(), v.getRole(), v.getClusterId()}, {}};
    }
    return {false, {}, c.getInvalid()};
  }

  int64_t renewalTime(const std::string& chain, uint64_t seed) {
    auto request = pki.renewalTimeRequest();
    request.setChain(data(chain));
    request.setSeed(seed);
    return ctx.within(request.send(), CALL_LIMIT, "pki.renewalTime").getRenewAt();
  }

  Id identity(NodeRole role) { return {randomId(rng), role, randomId(rng)}; }
  Id identity(NodeRole role, const std::string& clusterId) { return {randomId(rng), role, clusterId}; }

  // Runs `call`, which must fail with an error (not a hang); returns the error's text.
  template <typename F>
  std::string refused(kj::StringPtr what, F&& call) {
    KJ_IF_MAYBE(e, kj::runCatchingExceptions(kj::fwd<F>(call))) {
      std::string text = e->getDescription().cStr();
      if (text.find("no answer within") != std::string::npos) kj::throwFatalException(kj::mv(*e));
      return text;
    }
    fail(kj::str(what, " was accepted; it must be refused with an error"));
  }

 private:
  static Root rootOf(schema::RootCa::Reader r) {
    return {str(r.getCert()), str(r.getKey()), r.getDigest(), str(r.getCrossSignedCert()),
            str(r.getPreviousCert())};
  }

  static void setId(schema::Identity::Builder out, const Id& id) {
    out.setNodeId(id.nodeId);
    out.setRole(id.role);
    out.setClusterId(id.clusterId);
  }

  CaseContext& ctx;
  Pki::Client pki;
  std::mt19937_64 rng;
};

// ---- shared checks ----------------------------------------------------------------------------

const std::regex TOKEN_FORM("^SWMTKN-1-([0-9a-z]{50})-([0-9a-z]{25})$");

std::string secretOf(const std::string& token) { return token.substr(token.rfind('-') + 1); }

void checkTokenForm(const std::string& token, const std::string& digest, kj::StringPtr which) {
  std::smatch m;
  check(std::regex_match(token, m, TOKEN_FORM),
        kj::str("the ", which, " token '", token.c_str(), "' is not SWMTKN-1-<50 base36>-<25 base36>"));
  check(m[1] == digest, kj::str("the ", which, " token carries digest ", std::string(m[1]).c_str(),
                                ", not the root's ", digest.c_str()));
}

void checkRootDigest(const Root& root) {
  std::string expected = base36Sha256(root.cert);
  check(root.digest == expected,
        kj::str("root.digest is '", root.digest.c_str(), "'; expected the SHA-256 of root.cert in ",
                "50-character base 36: '", expected.c_str(), "'"));
}

void checkRefusedToken(Driver& d, const std::string& token, const Tokens& current, kj::StringPtr what) {
  auto verdict = d.checkToken(token, current);
  check(!verdict.valid, kj::str("checkJoinToken accepted ", what, " as a ", nameOf(verdict.role), " token"));
  check(!verdict.reason.empty(), kj::str("checkJoinToken refused ", what, " without a reason"));
  for (auto& secret : {secretOf(current.worker), secretOf(current.manager)}) {
    check(verdict.reason.find(secret) == std::string::npos,
          kj::str("checkJoinToken's reason for ", what, " reveals a current secret: ", verdict.reason.c_str()));
  }
}

void checkSubject(X509* leaf, const Id& id) {
  const X509_NAME* subject = X509_get_subject_name(leaf);
  auto cn = nameEntries(subject, NID_commonName);
  auto ou = nameEntries(subject, NID_organizationalUnitName);
  auto o = nameEntries(subject, NID_organizationName);
  check(cn.size() == 1 && cn[0] == id.nodeId && ou.size() == 1 && ou[0] == ouOf(id.role) &&
            o.size() == 1 && o[0] == id.clusterId,
        kj::str("certificate subject is '", nameText(subject).c_str(), "'; expected CN=", id.nodeId.c_str(),
                ", OU=", ouOf(id.role), ", O=", id.clusterId.c_str(), " (one of each)"));
}

// Certificate timestamps in the result must be the certificate's own (to the second).
void checkTimesMatch(const Issued& issued, X509* leaf) {
  int64_t nb = seconds(X509_get0_notBefore(leaf)), na = seconds(X509_get0_notAfter(leaf));
  check(std::llabs(issued.notBefore / NS - nb) <= 1 && std::llabs(issued.notAfter / NS - na) <= 1,
        kj::str("issue() reported notBefore/notAfter ", issued.notBefore / NS, "/", issued.notAfter / NS,
                " s but the certificate says ", nb, "/", na));
}

void checkRenewal(int64_t renewAt, int64_t notBefore, int64_t notAfter, kj::StringPtr what) {
  // 61 s of slack: an implementation may round the point to whole minutes, as SwarmKit does.
  int64_t life = notAfter - notBefore, slack = 61 * NS;
  int64_t low = notBefore + life / 2 - slack, high = notBefore + life / 10 * 8 + slack;
  check(renewAt >= low && renewAt <= high,
        kj::str(what, " ", renewAt / NS, " s is not between 50% (", (notBefore + life / 2) / NS,
                ") and 80% (", (notBefore + life / 10 * 8) / NS, ") of the certificate's lifetime"));
}

Id expectValid(const CertVerdict& v, const Id& id, kj::StringPtr what) {
  check(v.valid, kj::str("verify refused ", what, ": ", v.reason.c_str()));
  check(v.identity.nodeId == id.nodeId && v.identity.role == id.role && v.identity.clusterId == id.clusterId,
        kj::str("verify of ", what, " gave node ", v.identity.nodeId.c_str(), " (", nameOf(v.identity.role),
                ") in ", v.identity.clusterId.c_str(), "; expected ", id.nodeId.c_str(), " (",
                nameOf(id.role), ") in ", id.clusterId.c_str()));
  return v.identity;
}

void expectInvalid(const CertVerdict& v, kj::StringPtr what) {
  check(!v.valid, kj::str("verify accepted ", what, " as node ", v.identity.nodeId.c_str()));
  check(!v.reason.empty(), kj::str("verify refused ", what, " without a reason"));
}

// ---- cases ------------------------------------------------------------------------------------

void generatedRoot(CaseContext& ctx) {
  Driver d(ctx);
  int64_t before = wallSeconds();
  Root root = d.generate();
  int64_t after = wallSeconds();
  check(certsFromPem(root.cert).size() == 1, "root.cert must hold exactly one PEM certificate");
  auto cert = certFromPem(root.cert, "root.cert");
  const X509_NAME* subject = X509_get_subject_name(cert.get());
  auto cn = nameEntries(subject, NID_commonName);
  check(cn.size() == 1 && cn[0] == "swarm-ca",
        kj::str("the root's subject is '", nameText(subject).c_str(), "'; expected CN=swarm-ca"));
  check(X509_NAME_cmp(subject, X509_get_issuer_name(cert.get())) == 0 &&
            X509_verify(cert.get(), X509_get0_pubkey(cert.get())) == 1,
        "the root is not self-signed (issuer differs or its own key does not verify its signature)");
  check(groupName(X509_get0_pubkey(cert.get())) == "prime256v1",
        kj::str("the root key is ", groupName(X509_get0_pubkey(cert.get())).c_str(), "; expected ECDSA P-256"));
  check(X509_get_signature_nid(cert.get()) == NID_ecdsa_with_SHA256,
        kj::str("the root is signed with ", OBJ_nid2ln(X509_get_signature_nid(cert.get())),
                "; expected ecdsa-with-SHA256"));
  check(isCa(cert.get()), "the root lacks basicConstraints CA:TRUE");
  check((X509_get_key_usage(cert.get()) & KU_KEY_CERT_SIGN) != 0, "the root's key usage lacks keyCertSign");
  auto key = keyFromPem(root.key, "root.key");
  check(X509_check_private_key(cert.get(), key.get()) == 1, "root.key is not the key of root.cert");
  int64_t notBefore = seconds(X509_get0_notBefore(cert.get()));
  int64_t notAfter = seconds(X509_get0_notAfter(cert.get()));
  check(notBefore <= after + 60, kj::str("the root is not valid yet: notBefore ", notBefore, ", now ", after));
  check(notAfter >= before + ROOT_VALIDITY - 2 * DAY && notAfter <= after + ROOT_VALIDITY + 2 * DAY,
        kj::str("the root expires ", (notAfter - before) / DAY, " days from now; expected 20 years (7300 days)"));
  checkRootDigest(root);

  Root other = d.generate();
  auto otherCert = certFromPem(other.cert, "second root.cert");
  check(EVP_PKEY_eq(X509_get0_pubkey(cert.get()), X509_get0_pubkey(otherCert.get())) != 1 &&
            other.digest != root.digest,
        "two createRoot(generate) calls returned the same key or digest; each root needs a fresh key");
}

void requestedAndProvidedRoot(CaseContext& ctx) {
  Driver d(ctx);
  int64_t now = wallSeconds();
  Root custom = d.generate("conformance-ca", 2 * 365 * DAY * NS);
  auto cert = certFromPem(custom.cert, "root.cert");
  auto cn = nameEntries(X509_get_subject_name(cert.get()), NID_commonName);
  check(cn.size() == 1 && cn[0] == "conformance-ca",
        kj::str("asked for CN conformance-ca, got '", nameText(X509_get_subject_name(cert.get())).c_str(), "'"));
  int64_t notAfter = seconds(X509_get0_notAfter(cert.get()));
  check(std::llabs(notAfter - (now + 2 * 365 * DAY)) <= 2 * DAY,
        kj::str("asked for 730 days of validity, got ", (notAfter - now) / DAY));

  // An operator's own CA (made here): adopted as is, and node certificates chain to it.
  TestCa operatorCa = mintCa("operator-ca");
  Root adopted = d.provided(operatorCa.certPem, pem(operatorCa.key.get()));
  auto adoptedCert = certFromPem(adopted.cert, "adopted root.cert");
  check(X509_cmp(adoptedCert.get(), operatorCa.cert.get()) == 0,
        "createRoot(provided) returned a different certificate from the one provided");
  checkRootDigest(adopted);
  d.load(adopted);
  Id id = d.identity(NodeRole::WORKER);
  Issued issued = d.issueFor(id);
  std::string why = verifyChain(issued.chain, {operatorCa.certPem}, wallSeconds());
  check(why.empty(), kj::str("a certificate issued under the provided root does not chain to it: ", why.c_str()));

  auto wrongKey = newP256Key();
  std::string error = d.refused("createRoot(provided) with a key that is not the certificate's",
                                [&] { d.provided(operatorCa.certPem, pem(wrongKey.get())); });
  check(error.find("key") != std::string::npos,
        kj::str("the refusal of a mismatched key should say so: ", error.c_str()));
}

void tokenFormat(CaseContext& ctx) {
  Driver d(ctx);
  Root root = d.setUpRoot();
  checkRootDigest(root);
  Tokens t = d.tokens();
  checkTokenForm(t.worker, root.digest, "worker");
  checkTokenForm(t.manager, root.digest, "manager");
  check(secretOf(t.worker) != secretOf(t.manager), "the worker and manager tokens share a secret");
  Tokens again = d.tokens();
  check(again.worker != t.worker && again.manager != t.manager,
        "makeJoinTokens with empty rotate fields returned an old secret; empty fields must get fresh ones");
  check(d.digestOfToken(t.worker) == root.digest && d.digestOfToken(t.manager) == root.digest,
        "rootDigestOfToken does not return the root's digest for its own tokens");
}

void tokenChecks(CaseContext& ctx) {
  Driver d(ctx);
  Root a = d.setUpRoot();
  Tokens t = d.tokens();
  auto worker = d.checkToken(t.worker, t);
  check(worker.valid && worker.role == NodeRole::WORKER,
        kj::str("the current worker token was not accepted as a worker token: ", worker.reason.c_str()));
  auto manager = d.checkToken(t.manager, t);
  check(manager.valid && manager.role == NodeRole::MANAGER,
        kj::str("the current manager token was not accepted as a manager token: ", manager.reason.c_str()));

  auto flip = [](std::string s, size_t at) {
    s[at] = s[at] == 'a' ? 'b' : 'a';
    return s;
  };
  size_t digestAt = std::string("SWMTKN-1-").size();
  checkRefusedToken(d, flip(t.worker, t.worker.size() - 1), t, "a worker token with a tampered secret");
  checkRefusedToken(d, flip(t.manager, t.manager.size() - 10), t, "a manager token with a tampered secret");
  checkRefusedToken(d, flip(t.worker, digestAt + 7), t, "a worker token with a tampered digest");
  checkRefusedToken(d, "", t, "an empty token");
  checkRefusedToken(d, "hello-swarm", t, "a garbage string");
  checkRefusedToken(d, "SWMTKN-1-", t, "a token prefix alone");
  checkRefusedToken(d, t.worker + "0", t, "a worker token with a character appended");
  std::string upper = t.worker;
  for (auto& c : upper) c = static_cast<char>(toupper(c));
  checkRefusedToken(d, upper, t, "an upper-cased worker token");

  // Tokens of another root: refused against this swarm's tokens, and even when presented as
  // "current", because their digest is not the loaded root's.
  Root b = d.generate();
  d.load(b);
  Tokens foreign = d.tokens();
  d.load(a);
  checkRefusedToken(d, foreign.worker, t, "a worker token of another root");
  checkRefusedToken(d, foreign.manager, foreign, "another root's manager token listed as current");
  std::string swapped = "SWMTKN-1-" + b.digest + "-" + secretOf(t.manager);
  checkRefusedToken(d, swapped, t, "the current manager secret under another root's digest");
}

void tokenRotation(CaseContext& ctx) {
  Driver d(ctx);
  Root root = d.setUpRoot();
  Tokens t = d.tokens();

  Tokens r1 = d.tokens("", t.manager);
  checkTokenForm(r1.worker, root.digest, "rotated worker");
  check(r1.manager == t.manager, "rotating the worker token changed the manager token");
  check(r1.worker != t.worker, "rotating the worker token kept the old worker token");
  checkRefusedToken(d, t.worker, r1, "the worker token from before its rotation");
  auto newWorker = d.checkToken(r1.worker, r1);
  check(newWorker.valid && newWorker.role == NodeRole::WORKER,
        kj::str("the rotated worker token is refused: ", newWorker.reason.c_str()));
  auto keptManager = d.checkToken(t.manager, r1);
  check(keptManager.valid && keptManager.role == NodeRole::MANAGER,
        kj::str("the manager token stopped working when only the worker token rotated: ",
                keptManager.reason.c_str()));

  Tokens r2 = d.tokens(r1.worker, "");
  check(r2.worker == r1.worker, "rotating the manager token changed the worker token");
  check(r2.manager != r1.manager, "rotating the manager token kept the old manager token");
  checkRefusedToken(d, r1.manager, r2, "the manager token from before its rotation");
  auto newManager = d.checkToken(r2.manager, r2);
  check(newManager.valid && newManager.role == NodeRole::MANAGER,
        kj::str("the rotated manager token is refused: ", newManager.reason.c_str()));
}

void issueIdentity(CaseContext& ctx) {
  Driver d(ctx);
  Root root = d.setUpRoot();
  auto rootCert = certFromPem(root.cert, "root.cert");
  std::string clusterId = d.identity(NodeRole::WORKER).clusterId;
  for (NodeRole role : {NodeRole::WORKER, NodeRole::MANAGER}) {
    Id id = d.identity(role, clusterId);
    Csr csr = d.makeCsr(id);
    auto req = csrFromPem(csr.csr, "makeCsr().csr");
    EVP_PKEY* requested = X509_REQ_get0_pubkey(req.get());
    check(requested != nullptr && X509_REQ_verify(req.get(), requested) == 1,
          "makeCsr() returned a CSR whose signature does not verify");
    check(groupName(requested) == "prime256v1",
          kj::str("makeCsr() made a ", groupName(requested).c_str(), " key; expected ECDSA P-256"));
    auto key = keyFromPem(csr.key, "makeCsr().key");
    check(EVP_PKEY_eq(key.get(), requested) == 1, "makeCsr().key is not the key of makeCsr().csr");

    Issued issued = d.issue(csr.csr, id, 0, wallSeconds() * NS);
    auto leaf = certFromPem(issued.chain, "issue().chain");
    checkSubject(leaf.get(), id);
    check(X509_NAME_cmp(X509_get_issuer_name(leaf.get()), X509_get_subject_name(rootCert.get())) == 0,
          kj::str("the issuer is '", nameText(X509_get_issuer_name(leaf.get())).c_str(), "', not the root"));
    check(EVP_PKEY_eq(X509_get0_pubkey(leaf.get()), requested) == 1,
          "the issued certificate does not carry the CSR's public key");
    check(X509_check_private_key(leaf.get(), key.get()) == 1, "the node key does not match its certificate");
    std::string why = verifyChain(issued.chain, {root.cert}, wallSeconds());
    check(why.empty(), kj::str("the issued chain does not verify against the root: ", why.c_str()));
    check(!isCa(leaf.get()), "a node certificate must not be a CA");
    uint32_t eku = X509_get_extended_key_usage(leaf.get());
    check((eku & XKU_SSL_SERVER) && (eku & XKU_SSL_CLIENT),
          "a node certificate needs both serverAuth and clientAuth (it is used both ways in mutual TLS)");
    auto names = dnsNames(leaf.get());
    auto has = [&](const std::string& n) { return std::find(names.begin(), names.end(), n) != names.end(); };
    check(has(id.nodeId) && has(ouOf(role)),
          kj::str("the certificate's DNS names must include the node ID and ", ouOf(role)));
    if (role == NodeRole::MANAGER) check(has("swarm-ca"), "a manager certificate's DNS names must include swarm-ca");
  }
}

void issueValidity(CaseContext& ctx) {
  Driver d(ctx);
  d.setUpRoot();
  Id id = d.identity(NodeRole::WORKER);
  Csr csr = d.makeCsr(id);

  // A `now` ten days back: the plugin must date the certificate from it, not from its clock.
  int64_t now = wallSeconds() - 10 * DAY;
  Issued issued = d.issue(csr.csr, id, 0, now * NS);
  auto leaf = certFromPem(issued.chain, "issue().chain");
  checkTimesMatch(issued, leaf.get());
  int64_t nb = issued.notBefore / NS, na = issued.notAfter / NS;
  check(now - nb >= 50 * 60 && now - nb <= 70 * 60,
        kj::str("notBefore is ", now - nb, " s before `now`; expected a backdate of about one hour"));
  check(na >= now + NODE_VALIDITY - HOUR - 60 && na <= now + NODE_VALIDITY + 60,
        kj::str("the certificate ends ", (na - now) / HOUR, " h after `now`; expected 90 days (2160 h)"));
  checkRenewal(issued.renewAt, issued.notBefore, issued.notAfter, "renewAt");

  int64_t wall = wallSeconds();
  Issued shortLived = d.issue(csr.csr, id, 2 * HOUR * NS, wall * NS);
  auto shortLeaf = certFromPem(shortLived.chain, "issue().chain");
  checkTimesMatch(shortLived, shortLeaf.get());
  int64_t shortEnd = shortLived.notAfter / NS;
  check(shortEnd >= wall + HOUR - 60 && shortEnd <= wall + 2 * HOUR + 60,
        kj::str("asked for 2 h of validity; the certificate ends ", shortEnd - wall, " s after `now`"));
  checkRenewal(shortLived.renewAt, shortLived.notBefore, shortLived.notAfter, "renewAt (2 h certificate)");

  // renewAt is a random point per certificate, so renewals of many nodes do not bunch up.
  std::set<int64_t> points{issued.renewAt};
  for (int i = 0; i < 5; ++i) {
    Issued again = d.issue(csr.csr, id, 0, now * NS);
    checkRenewal(again.renewAt, again.notBefore, again.notAfter, "renewAt");
    points.insert(again.renewAt);
  }
  check(points.size() > 1, "six certificates with the same dates got the same renewAt; it must be random");
}

void issueRefusals(CaseContext& ctx) {
  Driver d(ctx);
  d.setUpRoot();
  Id id = d.identity(NodeRole::WORKER);
  Csr csr = d.makeCsr(id);
  int64_t now = wallSeconds() * NS;
  d.refused("a 59-minute validity", [&] { d.issue(csr.csr, id, 59 * 60 * NS, now); });
  d.refused("a negative validity", [&] { d.issue(csr.csr, id, -HOUR * NS, now); });
  Issued hour = d.issue(csr.csr, id, HOUR * NS, now);  // the minimum itself is fine
  check(hour.notAfter > now, "a one-hour certificate must end after `now`");
  d.refused("a CSR that is not PEM", [&] { d.issue("not a certificate request", id, 0, now); });

  // A CSR whose signature is broken: the requester does not hold the key it asks to certify.
  auto req = csrFromPem(csr.csr, "makeCsr().csr");
  unsigned char* der = nullptr;
  int len = i2d_X509_REQ(req.get(), &der);
  check(len > 10, "cannot re-encode the CSR");
  der[len - 1] ^= 0x01;
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio(bio.get(), "CERTIFICATE REQUEST", "", der, len);
  OPENSSL_free(der);
  std::string tampered = drain(bio.get());
  d.refused("a CSR with a broken signature", [&] { d.issue(tampered, id, 0, now); });
}

void issueIgnoresCsrSubject(CaseContext& ctx) {
  Driver d(ctx);
  Root root = d.setUpRoot();
  // A CSR made here (not by the plugin) asking to be a manager of another cluster, with extra
  // names and CA:TRUE: only its key may be used.
  auto key = newP256Key();
  std::string csr = mintCsr(key.get(), {"mallory", "swarm-manager", "other-cluster"}, "DNS:mallory,DNS:swarm-ca");
  Id id = d.identity(NodeRole::WORKER);
  Issued issued = d.issue(csr, id, 0, wallSeconds() * NS);
  auto leaf = certFromPem(issued.chain, "issue().chain");
  checkSubject(leaf.get(), id);
  check(EVP_PKEY_eq(X509_get0_pubkey(leaf.get()), key.get()) == 1,
        "the certificate does not carry the CSR's public key");
  check(!isCa(leaf.get()), "the CSR's CA:TRUE request was honoured");
  for (auto& name : dnsNames(leaf.get())) {
    check(name != "mallory" && name != "swarm-ca",
          kj::str("the CSR's requested DNS name ", name.c_str(), " made it into a worker certificate"));
  }
  auto verdict = d.verify(issued.chain, wallSeconds() * NS);
  expectValid(verdict, id, "a certificate issued from a foreign CSR");
}

void verifyAccepts(CaseContext& ctx) {
  Driver d(ctx);
  d.setUpRoot();
  std::string clusterId = d.identity(NodeRole::WORKER).clusterId;
  for (NodeRole role : {NodeRole::WORKER, NodeRole::MANAGER}) {
    Id id = d.identity(role, clusterId);
    Issued issued = d.issueFor(id);
    int64_t now = wallSeconds() * NS;
    expectValid(d.verify(issued.chain, now), id, kj::str("a fresh ", nameOf(role), " certificate"));
    expectValid(d.verify(issued.chain, now, {d.identity(role).nodeId, "someone-else"}), id,
                kj::str("a ", nameOf(role), " certificate whose node is not in the revoked list"));
    // Any time inside the validity counts.
    expectValid(d.verify(issued.chain, issued.notAfter - HOUR * NS), id, "a certificate an hour before it expires");
  }
}

void verifyRefuses(CaseContext& ctx) {
  Driver d(ctx);
  Root a = d.setUpRoot();
  Id id = d.identity(NodeRole::MANAGER);
  Issued issued = d.issueFor(id);
  int64_t now = wallSeconds() * NS;

  Root b = d.generate();
  d.load(b);
  Issued foreign = d.issueFor(id);
  d.load(a);
  expectInvalid(d.verify(foreign.chain, now), "a certificate issued by another root");
  expectInvalid(d.verify(issued.chain, issued.notAfter + DAY * NS), "an expired certificate (now after notAfter)");
  expectInvalid(d.verify(issued.chain, issued.notBefore - DAY * NS), "a certificate before its notBefore");
  expectInvalid(d.verify(issued.chain, now, {"unrelated", id.nodeId}), "a certificate of a revoked node");

  // A look-alike CA, also named swarm-ca, signing the same identity.
  TestCa fake = mintCa("swarm-ca");
  NodeCert forged = mintNode(fake, id.nodeId, id.role, id.clusterId);
  expectInvalid(d.verify(forged.chainPem, now), "a certificate from a look-alike swarm-ca");
  expectInvalid(d.verify(forged.chainPem + fake.certPem, now), "a look-alike chain that includes its own CA");
  auto key = newP256Key();
  auto selfSigned = mintCert({id.nodeId, ouOf(id.role), id.clusterId}, key.get(), nullptr, key.get(),
                             wallSeconds() - HOUR, wallSeconds() + DAY, false);
  expectInvalid(d.verify(pem(selfSigned.get()), now), "a self-signed node certificate");

  std::string garbage = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&] {
                expectInvalid(d.verify(garbage, now), "a chain that is not a certificate");
              })) {
    // Refusing garbage with an error instead of `invalid` is fine; accepting it is not.
    std::string text = e->getDescription().cStr();
    check(text.find("verify accepted") == std::string::npos && text.find("no answer within") == std::string::npos,
          kj::str(text.c_str()));
  }
}

void digestOfToken(CaseContext& ctx) {
  Driver d(ctx);
  Root root = d.setUpRoot();
  Tokens t = d.tokens();
  check(d.digestOfToken(t.manager) == root.digest, "rootDigestOfToken(manager token) is not the root digest");
  std::string digest(50, '7'), secret(25, 'k');
  std::vector<std::pair<std::string, const char*>> malformed = {
      {"", "an empty token"},
      {"garbage", "a garbage string"},
      {"SWMTKN-1-", "the prefix alone"},
      {"SWMTKN-1-" + digest.substr(1) + "-" + secret, "a 49-character digest"},
      {"SWMTKN-1-" + digest + "-" + secret + "1", "a 26-character secret"},
      {"SWMTKN-1-" + digest + secret, "a token without the last dash"},
      {"SWMTKN-2-" + digest + "-" + secret, "another token version"},
      {"SWMTKN-1-" + digest.substr(1) + "!-" + secret, "a non-base36 character"},
  };
  for (auto& [token, what] : malformed) {
    std::string error = d.refused(kj::str("rootDigestOfToken on ", what), [&] { d.digestOfToken(token); });
    std::string lower = error;
    for (auto& c : lower) c = static_cast<char>(tolower(c));
    check(lower.find("token") != std::string::npos,
          kj::str("the error for ", what, " should say the token is malformed: '", error.c_str(), "'"));
  }
}

void renewalTimes(CaseContext& ctx) {
  Driver d(ctx);
  d.setUpRoot();
  Issued issued = d.issueFor(d.identity(NodeRole::WORKER));
  std::set<int64_t> points;
  std::mt19937_64 rng(ctx.seed);
  for (int i = 0; i < 8; ++i) {
    uint64_t seed = rng();
    int64_t first = d.renewalTime(issued.chain, seed);
    check(d.renewalTime(issued.chain, seed) == first,
          kj::str("renewalTime gave two answers for seed ", seed, "; it must be deterministic per seed"));
    checkRenewal(first, issued.notBefore, issued.notAfter, kj::str("renewalTime(seed ", seed, ")"));
    points.insert(first);
  }
  check(points.size() > 1, "renewalTime gave the same point for eight different seeds");
}

void rootRotation(CaseContext& ctx) {
  Driver d(ctx);
  Root old = d.setUpRoot();
  Id before = d.identity(NodeRole::WORKER);
  Issued oldChain = d.issueFor(before);

  Root next = d.rotate();
  checkRootDigest(next);
  check(next.digest != old.digest, "the rotated root has the old root's digest");
  auto oldCert = certFromPem(old.cert, "old root");
  auto nextCert = certFromPem(next.cert, "rotated root.cert");
  auto cross = certFromPem(next.crossSigned, "rotated root.crossSignedCert");
  check(EVP_PKEY_eq(X509_get0_pubkey(nextCert.get()), X509_get0_pubkey(oldCert.get())) != 1,
        "the rotated root reuses the old key");
  check(X509_cmp(certFromPem(next.previous, "rotated root.previousCert").get(), oldCert.get()) == 0,
        "root.previousCert of a rotation must be the current root");
  check(X509_NAME_cmp(X509_get_subject_name(cross.get()), X509_get_subject_name(nextCert.get())) == 0 &&
            EVP_PKEY_eq(X509_get0_pubkey(cross.get()), X509_get0_pubkey(nextCert.get())) == 1 &&
            X509_verify(cross.get(), X509_get0_pubkey(oldCert.get())) == 1 && isCa(cross.get()),
        "crossSignedCert must be a CA certificate for the new root's subject and key, signed by the old root");

  d.load(next);
  Id after = d.identity(NodeRole::MANAGER, before.clusterId);
  Issued newChain = d.issueFor(after);
  int64_t now = wallSeconds();
  std::string viaOld = verifyChain(newChain.chain, {old.cert}, now);
  check(viaOld.empty(), kj::str("a node that trusts only the old root cannot verify a new certificate: ", viaOld.c_str()));
  std::string viaNew = verifyChain(newChain.chain, {next.cert}, now);
  check(viaNew.empty(), kj::str("the new root does not verify a new certificate: ", viaNew.c_str()));
  expectValid(d.verify(newChain.chain, now * NS), after, "a certificate issued after the rotation");
  expectValid(d.verify(oldChain.chain, now * NS), before, "a certificate of the old root during the rotation");
  Tokens t = d.tokens();
  checkTokenForm(t.worker, next.digest, "post-rotation worker");
}

}  // namespace

std::vector<Case> pkiCases() {
  return {
      {"pki: createRoot(generate) makes a self-signed ECDSA P-256 CA named swarm-ca, valid 20 years", generatedRoot},
      {"pki: createRoot honours a requested name and validity, and adopts a provided CA with its own key", requestedAndProvidedRoot},
      {"pki: makeJoinTokens makes distinct SWMTKN-1 worker and manager tokens carrying the root digest", tokenFormat},
      {"pki: checkJoinToken gives each token's role and refuses tampered, malformed and foreign tokens", tokenChecks},
      {"pki: rotating one join token changes only that one, and the old one is refused", tokenRotation},
      {"pki: issue certifies the CSR's key as CN = node ID, OU = role, O = cluster ID under the root", issueIdentity},
      {"pki: issue defaults to 90 days from `now`, backdates an hour and renews at a random 50-80 %", issueValidity},
      {"pki: issue refuses a validity under one hour and a bad or forged CSR", issueRefusals},
      {"pki: issue ignores the CSR's subject and requested extensions", issueIgnoresCsrSubject},
      {"pki: verify accepts issued chains and returns their identity", verifyAccepts},
      {"pki: verify refuses another root's, expired, not-yet-valid, forged and revoked certificates", verifyRefuses},
      {"pki: rootDigestOfToken returns the digest and fails clearly on malformed tokens", digestOfToken},
      {"pki: renewalTime is deterministic per seed and between 50 % and 80 % of the lifetime", renewalTimes},
      {"pki: a root rotation cross-signs the new root so old and new trust both verify new certificates", rootRotation},
  };
}

}  // namespace swarm::conformance
