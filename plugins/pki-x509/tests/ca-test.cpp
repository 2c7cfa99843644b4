// The root CA: generated, operator-supplied (and every way one can be wrong), loaded, rotated.
#include "harness.h"

#include <openssl/x509v3.h>

namespace swarm::pki::test {
namespace {

std::string fieldOf(X509* cert, int nid) {
  auto entries = subjectEntries(cert, nid);
  return entries.size() == 1 ? entries[0] : "(" + std::to_string(entries.size()) + " entries)";
}

TEST_CASE("createRoot(generate) makes a fresh self-signed P-256 swarm-ca valid 20 years") {
  INFO("seed " << testSeed());
  Pki pki;
  int64_t before = wallSeconds();
  Root root = pki.generate();
  auto cert = readCert(root.cert);
  CHECK(fieldOf(cert.get(), NID_commonName) == "swarm-ca");
  CHECK(X509_verify(cert.get(), X509_get0_pubkey(cert.get())) == 1);
  CHECK(curveOf(X509_get0_pubkey(cert.get())) == "prime256v1");
  CHECK(X509_get_signature_nid(cert.get()) == NID_ecdsa_with_SHA256);
  CHECK(isCa(cert.get()));
  CHECK((X509_get_key_usage(cert.get()) & KU_KEY_CERT_SIGN) != 0);
  CHECK(X509_check_private_key(cert.get(), readKey(root.key).get()) == 1);
  CHECK(notBefore(cert.get()) <= before);
  CHECK(notAfter(cert.get()) - before >= 630720000 - 5);
  CHECK(notAfter(cert.get()) - before <= 630720000 + 5);
  CHECK(root.digest == sha256Base36(root.cert));
  CHECK(root.externalCas.empty());

  Root other = pki.generate();
  CHECK(other.digest != root.digest);
  CHECK(EVP_PKEY_eq(X509_get0_pubkey(readCert(other.cert).get()), X509_get0_pubkey(cert.get())) !=
        1);
}

TEST_CASE("createRoot(generate) honours a name and validity and refuses bad ones") {
  Pki pki;
  Root custom = pki.generate("my-ca", 2 * HOUR * NS);
  auto cert = readCert(custom.cert);
  CHECK(fieldOf(cert.get(), NID_commonName) == "my-ca");
  CHECK(notAfter(cert.get()) - wallSeconds() <= 2 * HOUR + 5);

  CHECK(mentions(pki.error([&] { pki.generate("x", 59 * 60 * NS); }), "below one hour"));
  CHECK(mentions(pki.error([&] { pki.generate("x", -NS); }), "negative"));
  CHECK(mentions(pki.error([&] { pki.generate(std::string(65, 'c')); }), "X.509 allows 64"));
}

TEST_CASE("createRoot(provided) adopts P-256, P-384 and RSA-2048 roots, and nodes chain to them") {
  Pki pki;
  for (KeyType type : {KeyType::p256, KeyType::p384, KeyType::rsa2048}) {
    TestCa ca = mintCa("operator-ca", type);
    Root root = pki.provided(ca.certPem, ca.keyPem);
    CHECK(X509_cmp(readCert(root.cert).get(), ca.cert.get()) == 0);
    CHECK(EVP_PKEY_eq(readKey(root.key).get(), ca.key.get()) == 1);
    CHECK(root.digest == sha256Base36(root.cert));
    pki.load(root);
    Id id = pki.identity(NodeRole::WORKER);
    Issued issued = pki.issueFor(id);
    CHECK(verifyChain(issued.chain, {ca.certPem}, wallSeconds()) == "");
    CHECK(pki.verify(issued.chain, wallSeconds() * NS).valid);
  }
}

TEST_CASE("createRoot(provided) refuses a bad operator root, saying what is wrong") {
  Pki pki;
  int64_t now = wallSeconds();
  TestCa good = mintCa("operator-ca");
  auto refusal = [&](const std::string& cert, const std::string& key) {
    return pki.error([&] { pki.provided(cert, key); });
  };

  SECTION("a key that is not the certificate's") {
    auto other = newKey(KeyType::p256);
    CHECK(mentions(refusal(good.certPem, pem(other.get())), "does not match the certificate"));
  }
  SECTION("a certificate that is not a CA") {
    auto key = newKey(KeyType::p256);
    CertSpec spec;
    spec.cn = "not-a-ca";
    auto leaf = mintCert(spec, key.get(), nullptr, key.get());
    CHECK(mentions(refusal(pem(leaf.get()), pem(key.get())), "not a CA certificate"));
  }
  SECTION("an expired root") {
    TestCa old = mintCa("old-ca", KeyType::p256, now - 3 * YEAR, now - DAY);
    std::string error = refusal(old.certPem, old.keyPem);
    CHECK(mentions(error, "expired on"));
  }
  SECTION("a root that is not valid yet") {
    TestCa future = mintCa("future-ca", KeyType::p256, now + DAY, now + 3 * YEAR);
    CHECK(mentions(refusal(future.certPem, future.keyPem), "is not valid until"));
  }
  SECTION("a weak RSA key") {
    TestCa weak = mintCa("weak-ca", KeyType::rsa1024);
    CHECK(mentions(refusal(weak.certPem, weak.keyPem), "RSA 1024"));
  }
  SECTION("an Ed25519 key") {
    TestCa ed = mintCa("ed-ca", KeyType::ed25519);
    CHECK(mentions(refusal(ed.certPem, ed.keyPem), "ED25519"));
  }
  SECTION("a SHA-1 signature") {
    auto key = newKey(KeyType::p256);
    CertSpec spec;
    spec.cn = "sha1-ca";
    spec.ca = true;
    spec.md = EVP_sha1();
    auto cert = mintCert(spec, key.get(), nullptr, key.get());
    CHECK(mentions(refusal(pem(cert.get()), pem(key.get())), "SHA-256, SHA-384 or SHA-512"));
  }
  SECTION("an intermediate instead of a root") {
    TestCa sub = mintSubCa("sub-ca", good);
    CHECK(mentions(refusal(sub.certPem, sub.keyPem), "not a self-signed root"));
  }
  SECTION("two certificates") {
    TestCa other = mintCa("other-ca");
    CHECK(mentions(refusal(good.certPem + other.certPem, good.keyPem), "holds 2 certificates"));
  }
  SECTION("text that is not PEM") {
    CHECK(mentions(refusal("hello", good.keyPem), "not a PEM certificate"));
  }
  SECTION("a malformed PEM block") {
    std::string broken =
        "-----BEGIN CERTIFICATE-----\n!!!!not base64!!!!\n-----END CERTIFICATE-----\n";
    CHECK(mentions(refusal(broken, good.keyPem), "malformed PEM"));
  }
  SECTION("an encrypted key") {
    CHECK(mentions(refusal(good.certPem, encryptedPem(good.key.get(), "secret")), "encrypted"));
  }
  SECTION("no key") { CHECK(mentions(refusal(good.certPem, ""), "root CA key is empty")); }
}

TEST_CASE("loadRoot refuses a digest, key or cross-signature that does not belong to the root") {
  Pki pki;
  Root root = pki.generate();
  Root other = pki.generate();

  Root wrongDigest = root;
  wrongDigest.digest = other.digest;
  CHECK(mentions(pki.error([&] { pki.load(wrongDigest); }),
                 "root.digest is not the SHA-256 of root.cert"));

  Root wrongKey = root;
  wrongKey.key = other.key;
  CHECK(mentions(pki.error([&] { pki.load(wrongKey); }), "root.key does not match root.cert"));

  Root wrongCross = root;
  wrongCross.crossSigned = other.cert;
  CHECK(mentions(pki.error([&] { pki.load(wrongCross); }), "not for the new root"));

  Root garbage = root;
  garbage.cert = "garbage";
  CHECK(mentions(pki.error([&] { pki.load(garbage); }), "root.cert is not a PEM certificate"));

  auto key = newKey(KeyType::p256);
  CertSpec spec;
  spec.cn = "leaf";
  Root leaf{pem(mintCert(spec, key.get(), nullptr, key.get()).get()), "", "", "", "", {}};
  CHECK(mentions(pki.error([&] { pki.load(leaf); }), "not a CA certificate"));

  // Nothing was half-applied: there is still no root.
  CHECK(mentions(pki.error([&] { pki.tokens(); }), "call loadRoot() first"));
}

TEST_CASE("a root loaded without its key verifies certificates but refuses to issue") {
  Pki pki;
  Root root = pki.setUpRoot();
  Id id = pki.identity(NodeRole::WORKER);
  Issued issued = pki.issueFor(id);

  Root verifyOnly = root;
  verifyOnly.key.clear();
  pki.load(verifyOnly);
  CHECK(pki.verify(issued.chain, wallSeconds() * NS).valid);
  CHECK(mentions(pki.error([&] { pki.issueFor(id); }), "cannot sign"));
  CHECK(mentions(pki.error([&] { pki.rotateGenerated(); }), "cannot cross-sign"));
}

TEST_CASE("node certificates never outlive their root") {
  Pki pki;
  Root shortRoot = pki.generate("short-ca", 10 * DAY * NS);
  pki.load(shortRoot);
  Id id = pki.identity(NodeRole::WORKER);
  Issued issued = pki.issueFor(id);  // asks for 90 days
  CHECK(issued.notAfter / NS == notAfter(readCert(shortRoot.cert).get()));

  Root tinyRoot = pki.generate("tiny-ca", 2 * HOUR * NS);
  pki.load(tinyRoot);
  Csr csr = pki.makeCsr(id);
  int64_t late = (wallSeconds() + 90 * 60) * NS;  // 30 minutes before the root ends
  CHECK(mentions(pki.error([&] { pki.issue(csr.csr, id, 0, late); }), "rotate the root CA"));
}

TEST_CASE("a root rotation cross-signs the new root so old and new nodes keep talking") {
  INFO("seed " << testSeed());
  Pki pki;
  Root old = pki.setUpRoot();
  Tokens tokens = pki.tokens();
  Id oldNode = pki.identity(NodeRole::WORKER);
  Issued oldCert = pki.issueFor(oldNode);

  Root next = pki.rotateGenerated();
  CHECK(next.digest == sha256Base36(next.cert));
  CHECK(next.digest != old.digest);
  CHECK(next.previous == old.cert);
  auto oldRoot = readCert(old.cert);
  auto nextRoot = readCert(next.cert);
  auto cross = readCert(next.crossSigned);
  CHECK(X509_NAME_cmp(X509_get_subject_name(cross.get()), X509_get_subject_name(nextRoot.get())) ==
        0);
  CHECK(EVP_PKEY_eq(X509_get0_pubkey(cross.get()), X509_get0_pubkey(nextRoot.get())) == 1);
  CHECK(X509_verify(cross.get(), X509_get0_pubkey(oldRoot.get())) == 1);
  CHECK(isCa(cross.get()));
  CHECK(notAfter(cross.get()) <= notAfter(oldRoot.get()));

  pki.load(next);
  Id newNode = pki.identity(NodeRole::MANAGER, oldNode.clusterId);
  Issued newCert = pki.issueFor(newNode);
  int64_t now = wallSeconds();
  CHECK(readCerts(newCert.chain).size() == 2);  // leaf + cross-signed root
  CHECK(verifyChain(newCert.chain, {old.cert}, now) == "");
  CHECK(verifyChain(newCert.chain, {next.cert}, now) == "");
  CHECK(pki.verify(newCert.chain, now * NS).valid);
  CHECK(pki.verify(oldCert.chain, now * NS).valid);

  // Join tokens follow the new root: same secrets, new digest; the old ones are refused.
  Tokens rotated = pki.tokens(tokens.worker, tokens.manager);
  CHECK(rotated.worker.substr(rotated.worker.size() - 25) ==
        tokens.worker.substr(tokens.worker.size() - 25));
  CHECK(pki.digestOfToken(rotated.worker) == next.digest);
  CHECK(pki.checkToken(rotated.manager, rotated).valid);
  CHECK_FALSE(pki.checkToken(tokens.manager, rotated).valid);

  // The rotation is over once every node has a new certificate: the old root is no longer trusted.
  Root done = next;
  done.previous.clear();
  done.crossSigned.clear();
  pki.load(done);
  CertVerdict stale = pki.verify(oldCert.chain, now * NS);
  CHECK_FALSE(stale.valid);
  CHECK(mentions(stale.reason, "does not chain to this swarm's root CA"));
  CHECK(pki.verify(newCert.chain, now * NS).valid);
  CHECK(readCerts(pki.issueFor(newNode).chain).size() == 1);
}

TEST_CASE("a rotation to an operator's root needs a new key and a year of validity") {
  Pki pki;
  int64_t now = wallSeconds();
  TestCa current = mintCa("current-ca");
  pki.load(pki.provided(current.certPem, current.keyPem));

  CHECK(mentions(pki.error([&] { pki.rotateProvided(current.certPem, current.keyPem); }),
                 "reuses the current root's key"));
  TestCa brief = mintCa("brief-ca", KeyType::p256, now - HOUR, now + 200 * DAY);
  CHECK(mentions(pki.error([&] { pki.rotateProvided(brief.certPem, brief.keyPem); }),
                 "in less than 365 days"));

  TestCa next = mintCa("next-ca", KeyType::p384);
  Root rotated = pki.rotateProvided(next.certPem, next.keyPem);
  auto cross = readCert(rotated.crossSigned);
  CHECK(X509_verify(cross.get(), X509_get0_pubkey(current.cert.get())) == 1);
  pki.load(rotated);
  Issued issued = pki.issueFor(pki.identity(NodeRole::WORKER));
  CHECK(verifyChain(issued.chain, {current.certPem}, now) == "");
  CHECK(verifyChain(issued.chain, {next.certPem}, now) == "");
}

TEST_CASE("root operations without a loaded root say to call loadRoot first") {
  Pki pki;
  CHECK(mentions(pki.error([&] { pki.rotateGenerated(); }), "startRootRotation() needs a root CA"));
  CHECK(mentions(pki.error([&] { pki.verify("x", 0); }), "verify() needs a root CA"));
}

}  // namespace
}  // namespace swarm::pki::test
