// Node certificates: CSRs, issuing, validity, verification and renewal times.
#include "harness.h"

#include <openssl/x509v3.h>

#include <algorithm>
#include <set>

namespace swarm::pki::test {
namespace {

bool has(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

void checkRenewAt(int64_t renewAt, int64_t notBefore, int64_t notAfter) {
  int64_t life = notAfter - notBefore;
  CHECK(renewAt >= notBefore + life / 2);
  CHECK(renewAt <= notBefore + life / 10 * 8);
}

TEST_CASE("makeCsr makes a P-256 key and a CSR signed by it, and only the CSR names no secret") {
  Pki pki;
  Id id = pki.identity(NodeRole::WORKER);
  Csr csr = pki.makeCsr(id);
  CHECK(csrSignatureValid(csr.csr));
  auto requested = csrKey(csr.csr);
  CHECK(curveOf(requested.get()) == "prime256v1");
  CHECK(EVP_PKEY_eq(readKey(csr.key).get(), requested.get()) == 1);
  CHECK(csr.csr.find("PRIVATE KEY") == std::string::npos);
  CHECK(csr.key.find("-----BEGIN PRIVATE KEY-----") == 0);  // PKCS#8
  CHECK(pki.makeCsr(id).key != csr.key);
}

TEST_CASE("issue certifies the CSR's key as CN = node ID, OU = role, O = cluster ID") {
  INFO("seed " << testSeed());
  Pki pki;
  Root root = pki.setUpRoot();
  auto rootCert = readCert(root.cert);
  for (NodeRole role : {NodeRole::WORKER, NodeRole::MANAGER}) {
    Id id = pki.identity(role);
    Csr csr = pki.makeCsr(id);
    Issued issued = pki.issue(csr.csr, id, 0, wallSeconds() * NS);
    auto leaf = readCert(issued.chain);
    const char* ou = role == NodeRole::MANAGER ? "swarm-manager" : "swarm-worker";
    CHECK(subjectEntries(leaf.get(), NID_commonName) == std::vector<std::string>{id.nodeId});
    CHECK(subjectEntries(leaf.get(), NID_organizationalUnitName) == std::vector<std::string>{ou});
    CHECK(subjectEntries(leaf.get(), NID_organizationName) ==
          std::vector<std::string>{id.clusterId});
    CHECK(X509_NAME_cmp(X509_get_issuer_name(leaf.get()), X509_get_subject_name(rootCert.get())) ==
          0);
    CHECK(X509_check_private_key(leaf.get(), readKey(csr.key).get()) == 1);
    CHECK_FALSE(isCa(leaf.get()));
    uint32_t eku = X509_get_extended_key_usage(leaf.get());
    CHECK((eku & XKU_SSL_SERVER) != 0);
    CHECK((eku & XKU_SSL_CLIENT) != 0);
    auto names = dnsNames(leaf.get());
    CHECK(has(names, ou));
    CHECK(has(names, id.nodeId));
    CHECK(has(names, "swarm-ca") == (role == NodeRole::MANAGER));
    CHECK(verifyChain(issued.chain, {root.cert}, wallSeconds()) == "");
  }
}

TEST_CASE(
    "issue dates certificates from `now`: 90 days by default, backdated an hour, one hour "
    "minimum") {
  Pki pki;
  pki.setUpRoot();
  Id id = pki.identity(NodeRole::WORKER);
  Csr csr = pki.makeCsr(id);
  int64_t now = wallSeconds() - 10 * DAY;

  Issued issued = pki.issue(csr.csr, id, 0, now * NS);
  auto leaf = readCert(issued.chain);
  CHECK(notBefore(leaf.get()) == now - HOUR);
  CHECK(notAfter(leaf.get()) == now + 90 * DAY);
  CHECK(issued.notBefore == notBefore(leaf.get()) * NS);
  CHECK(issued.notAfter == notAfter(leaf.get()) * NS);
  checkRenewAt(issued.renewAt, issued.notBefore, issued.notAfter);

  Issued hour = pki.issue(csr.csr, id, HOUR * NS, now * NS);
  CHECK(hour.notAfter / NS == now + HOUR);
  Issued month = pki.issue(csr.csr, id, 30 * DAY * NS, now * NS);
  CHECK(month.notAfter / NS == now + 30 * DAY);

  int64_t before = wallSeconds();
  Issued wall = pki.issue(csr.csr, id, 0, 0);  // now = 0: the plugin's clock
  CHECK(wall.notBefore / NS >= before - HOUR);
  CHECK(wall.notBefore / NS <= wallSeconds() - HOUR);

  CHECK(mentions(pki.error([&] { pki.issue(csr.csr, id, 59 * 60 * NS, now * NS); }),
                 "below the one hour minimum"));
  CHECK(mentions(pki.error([&] { pki.issue(csr.csr, id, -HOUR * NS, now * NS); }), "negative"));
  CHECK(mentions(pki.error([&] { pki.issue(csr.csr, id, 0, -1); }), "`now` is negative"));

  // Each certificate gets its own random renewal point.
  std::set<int64_t> points;
  for (int i = 0; i < 6; ++i) points.insert(pki.issue(csr.csr, id, 0, now * NS).renewAt);
  CHECK(points.size() > 1);
}

TEST_CASE("issue refuses a CSR that is not PEM, forged, or not for a P-256 key") {
  Pki pki;
  pki.setUpRoot();
  Id id = pki.identity(NodeRole::WORKER);
  int64_t now = wallSeconds() * NS;
  auto refusal = [&](const std::string& csr) {
    return pki.error([&] { pki.issue(csr, id, 0, now); });
  };

  CHECK(mentions(refusal("not a csr"), "not a PEM certificate request"));
  CHECK(mentions(refusal(""), "CSR is empty"));

  // Forged: one bit of the signature flipped, as if the requester did not hold the key.
  std::string forged = breakSignature(csrPem(newKey(KeyType::p256).get(), "node"));
  CHECK_FALSE(csrSignatureValid(forged));
  CHECK(mentions(refusal(forged), "signature does not verify"));

  CHECK(mentions(refusal(csrPem(newKey(KeyType::p384).get(), "node")), "ECDSA P-384"));
  CHECK(mentions(refusal(csrPem(newKey(KeyType::rsa2048).get(), "node")), "RSA 2048"));
  CHECK(mentions(refusal(csrPem(newKey(KeyType::ed25519).get(), "node")), "must be ECDSA P-256"));
}

TEST_CASE("issue ignores the CSR's subject and refuses a bad identity") {
  Pki pki;
  Root root = pki.setUpRoot();
  auto key = newKey(KeyType::p256);
  std::string csr = csrPem(key.get(), "mallory", "swarm-manager", "other-cluster");
  Id id = pki.identity(NodeRole::WORKER);
  Issued issued = pki.issue(csr, id, 0, wallSeconds() * NS);
  auto leaf = readCert(issued.chain);
  CHECK(subjectEntries(leaf.get(), NID_commonName) == std::vector<std::string>{id.nodeId});
  CHECK(subjectEntries(leaf.get(), NID_organizationalUnitName) ==
        std::vector<std::string>{"swarm-worker"});
  CHECK(subjectEntries(leaf.get(), NID_organizationName) == std::vector<std::string>{id.clusterId});

  int64_t now = wallSeconds() * NS;
  Id empty{"", NodeRole::WORKER, "cluster"};
  CHECK(mentions(pki.error([&] { pki.issue(csr, empty, 0, now); }), "identity.nodeId is empty"));
  Id noCluster{"node", NodeRole::WORKER, ""};
  CHECK(mentions(pki.error([&] { pki.issue(csr, noCluster, 0, now); }),
                 "identity.clusterId is empty"));
  Id longId{std::string(65, 'n'), NodeRole::WORKER, "cluster"};
  CHECK(mentions(pki.error([&] { pki.issue(csr, longId, 0, now); }), "has 65 characters"));
  Id control{"node\nid", NodeRole::WORKER, "cluster"};
  CHECK(mentions(pki.error([&] { pki.issue(csr, control, 0, now); }), "control character"));
  Id badRole{"node", static_cast<NodeRole>(7), "cluster"};
  CHECK(mentions(pki.error([&] { pki.issue(csr, badRole, 0, now); }), "not a known role"));
}

TEST_CASE("a role change re-issues the node's certificate with the new identity") {
  Pki pki;
  pki.setUpRoot();
  Id worker = pki.identity(NodeRole::WORKER);
  Csr csr = pki.makeCsr(worker);
  int64_t now = wallSeconds() * NS;
  Issued asWorker = pki.issue(csr.csr, worker, 0, now);
  Id promoted{worker.nodeId, NodeRole::MANAGER, worker.clusterId};
  Issued asManager = pki.issue(csr.csr, promoted, 0, now);
  auto leaf = readCert(asManager.chain);
  CHECK(subjectEntries(leaf.get(), NID_organizationalUnitName) ==
        std::vector<std::string>{"swarm-manager"});
  CHECK(has(dnsNames(leaf.get()), "swarm-ca"));
  CHECK(pki.verify(asManager.chain, now).identity.role == NodeRole::MANAGER);
  CHECK(pki.verify(asWorker.chain, now).identity.role == NodeRole::WORKER);
}

TEST_CASE(
    "verify accepts issued chains and refuses expired, future, revoked, foreign and forged ones") {
  INFO("seed " << testSeed());
  Pki pki;
  // A provided root, so this test can also sign certificates with the swarm's own key.
  TestCa ca = mintCa("swarm-ca");
  pki.load(pki.provided(ca.certPem, ca.keyPem));
  Id id = pki.identity(NodeRole::MANAGER);
  Issued issued = pki.issueFor(id);
  int64_t now = wallSeconds();

  CertVerdict ok = pki.verify(issued.chain, now * NS);
  REQUIRE(ok.valid);
  CHECK(ok.identity.nodeId == id.nodeId);
  CHECK(ok.identity.role == NodeRole::MANAGER);
  CHECK(ok.identity.clusterId == id.clusterId);
  CHECK(pki.verify(issued.chain, issued.notAfter - HOUR * NS).valid);
  CHECK(pki.verify(issued.chain, 0).valid);  // now = 0: the plugin's clock

  auto refused = [&](const std::string& chain, int64_t at, const std::string& says,
                     const std::vector<std::string>& revoked = {}) {
    CertVerdict v = pki.verify(chain, at * NS, revoked);
    INFO("expected a refusal saying '" << says << "', got: " << (v.valid ? "valid" : v.reason));
    CHECK_FALSE(v.valid);
    CHECK(mentions(v.reason, says));
  };
  refused(issued.chain, issued.notAfter / NS + DAY, "expired on");
  refused(issued.chain, issued.notBefore / NS - DAY, "is not valid until");
  refused(issued.chain, now, "is revoked", {"someone", id.nodeId});

  // Certificates minted here with the swarm's own key, but dated wrong.
  auto nodeKey = newKey(KeyType::p256);
  CertSpec spec;
  spec.cn = id.nodeId;
  spec.ou = "swarm-manager";
  spec.o = id.clusterId;
  spec.notBefore = now - 100 * DAY;
  spec.notAfter = now - 10 * DAY;
  refused(pem(mintCert(spec, nodeKey.get(), ca.cert.get(), ca.key.get()).get()), now, "expired on");
  spec.notBefore = now + DAY;
  spec.notAfter = now + 10 * DAY;
  refused(pem(mintCert(spec, nodeKey.get(), ca.cert.get(), ca.key.get()).get()), now,
          "is not valid until");

  // Not a node certificate: wrong OU, two CNs' worth of nothing, or a CA.
  CertSpec other = spec;
  other.notBefore = now - HOUR;
  other.notAfter = now + DAY;
  other.ou = "swarm-admin";
  refused(pem(mintCert(other, nodeKey.get(), ca.cert.get(), ca.key.get()).get()), now,
          "not a swarm node certificate");
  CertSpec subCa = other;
  subCa.ou = "swarm-manager";
  subCa.ca = true;
  refused(pem(mintCert(subCa, nodeKey.get(), ca.cert.get(), ca.key.get()).get()), now,
          "is a CA certificate");

  // Another root, a look-alike swarm-ca, a self-signed node certificate.
  TestCa lookalike = mintCa("swarm-ca");
  CertSpec forged = other;
  forged.ou = "swarm-manager";
  std::string forgedChain =
      pem(mintCert(forged, nodeKey.get(), lookalike.cert.get(), lookalike.key.get()).get());
  refused(forgedChain, now, "does not chain to this swarm's root CA");
  refused(forgedChain + lookalike.certPem, now, "does not chain to this swarm's root CA");
  refused(pem(mintCert(forged, nodeKey.get(), nullptr, nodeKey.get()).get()), now,
          "does not chain");

  refused("", now, "empty");
  refused("garbage", now, "not a PEM certificate");
  refused("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n", now,
          "malformed PEM");
}

TEST_CASE("renewalTime is deterministic per seed and between 50 % and 80 % of the lifetime") {
  INFO("seed " << testSeed());
  Pki pki;
  pki.setUpRoot();
  Issued issued = pki.issueFor(pki.identity(NodeRole::WORKER));
  std::set<int64_t> points;
  for (uint64_t seed : {testSeed(), testSeed() + 1, uint64_t{0}, ~uint64_t{0}, uint64_t{42}}) {
    int64_t at = pki.renewalTime(issued.chain, seed);
    CHECK(pki.renewalTime(issued.chain, seed) == at);
    checkRenewAt(at, issued.notBefore, issued.notAfter);
    points.insert(at);
  }
  CHECK(points.size() == 5);
  CHECK(mentions(pki.error([&] { pki.renewalTime("nope", 1); }), "chain is not a PEM certificate"));
}

}  // namespace
}  // namespace swarm::pki::test
