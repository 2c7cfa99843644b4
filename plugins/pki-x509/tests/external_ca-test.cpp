// External CAs: node certificates signed by a cfssl-compatible signer over HTTPS, here a test
// signer on 127.0.0.1 (test_signer.h), and every way that can go wrong.
#include "harness.h"
#include "test_signer.h"

#include <boost/json.hpp>

#include <openssl/x509v3.h>

namespace swarm::pki::test {
namespace {

namespace json = boost::json;

// The external root (whose key only the signer has), the CA of the signer's HTTPS certificate,
// and the signer itself.
struct Setup {
  TestCa root = mintCa("external-root");
  TestCa tlsCa = mintCa("signer-tls-ca");
  TestSigner signer{root, tlsCa};

  ExternalCaSpec spec(const std::string& url = {}) const {
    return {url.empty() ? signer.url() : url, root.certPem, {{"tls-ca", tlsCa.certPem}}};
  }
};

std::string issueError(Pki& pki, const Root& root) {
  pki.load(root);
  Id id = pki.identity(NodeRole::WORKER);
  Csr csr = pki.makeCsr(id);
  return pki.error([&] { pki.issue(csr.csr, id, 0, wallSeconds() * NS); });
}

TEST_CASE("an external root signs node certificates through the cfssl signer") {
  INFO("seed " << testSeed());
  Setup s;
  Pki pki;
  Root root = pki.external({s.spec()}, s.root.certPem);
  CHECK(root.key.empty());
  CHECK(X509_cmp(readCert(root.cert).get(), s.root.cert.get()) == 0);
  CHECK(root.digest == sha256Base36(root.cert));
  REQUIRE(root.externalCas.size() == 1);
  CHECK(root.externalCas[0].url == s.signer.url());
  CHECK(root.externalCas[0].options == s.spec().options);
  pki.load(root);

  for (NodeRole role : {NodeRole::WORKER, NodeRole::MANAGER}) {
    Id id = pki.identity(role);
    Csr csr = pki.makeCsr(id);
    int64_t now = wallSeconds();
    Issued issued = pki.issue(csr.csr, id, 0, now * NS);
    auto leaf = readCert(issued.chain);
    CHECK(verifyChain(issued.chain, {s.root.certPem}, now) == "");
    CHECK(X509_check_private_key(leaf.get(), readKey(csr.key).get()) == 1);
    CHECK(subjectEntries(leaf.get(), NID_organizationName) ==
          std::vector<std::string>{id.clusterId});
    CHECK(issued.notAfter / NS == now + 90 * DAY);  // the signer honoured not_after
    CertVerdict verdict = pki.verify(issued.chain, now * NS);
    CHECK(verdict.valid);
    CHECK(verdict.identity.role == role);

    // The request cfssl gets: the CSR, hosts {OU, CN (+ swarm-ca)}, the subject, the dates.
    json::object request = json::parse(s.signer.lastRequest()).as_object();
    CHECK(request.at("certificate_request").as_string() == csr.csr.c_str());
    const char* ou = role == NodeRole::MANAGER ? "swarm-manager" : "swarm-worker";
    json::array hosts{json::string(ou), json::string(id.nodeId)};
    if (role == NodeRole::MANAGER) hosts.emplace_back("swarm-ca");
    CHECK(request.at("hosts") == hosts);
    CHECK(request.at("subject") == json::parse(R"({"CN":")" + id.nodeId + R"(","names":[{"O":")" +
                                               id.clusterId + R"(","OU":")" + ou + R"("}]})"));
    CHECK(request.contains("not_after"));
    CHECK_FALSE(request.contains("profile"));
  }
  CHECK(s.signer.requests() == 2);
}

TEST_CASE(
    "external signing works with the plugin out of process too (its HTTPS thread in the runner)") {
  Setup s;
  Pki pki({{"external-ca-timeout-ms", "2000"}}, Pki::Isolation::outOfProcess);
  pki.load(pki.external({s.spec()}, s.root.certPem));
  Issued issued = pki.issueFor(pki.identity(NodeRole::MANAGER));
  CHECK(verifyChain(issued.chain, {s.root.certPem}, wallSeconds()) == "");
  s.signer.setMode(TestSigner::Mode::garbage);
  CHECK(mentions(pki.error([&] { pki.issueFor(pki.identity(NodeRole::WORKER)); }),
                 "not a cfssl JSON response"));
}

TEST_CASE("an external CA that is down, answers garbage or refuses gives a clear error") {
  Setup s;
  Pki pki({{"external-ca-timeout-ms", "2000"}});

  SECTION("nothing listening") {
    std::string url = "https://127.0.0.1:" + std::to_string(unusedPort()) + "/api/v1/cfssl/sign";
    std::string error = issueError(pki, pki.external({s.spec(url)}, s.root.certPem));
    CHECK(mentions(error, "the external CA did not sign: " + url));
    CHECK(mentions(error, "cannot connect to 127.0.0.1:"));
  }
  SECTION("an answer that is not JSON") {
    s.signer.setMode(TestSigner::Mode::garbage);
    CHECK(mentions(issueError(pki, pki.external({s.spec()}, s.root.certPem)),
                   "not a cfssl JSON response"));
  }
  SECTION("a refusal") {
    s.signer.setMode(TestSigner::Mode::refuse);
    CHECK(mentions(issueError(pki, pki.external({s.spec()}, s.root.certPem)),
                   "refused to sign: policy forbids this request (code 5300)"));
  }
  SECTION("HTTP 500") {
    s.signer.setMode(TestSigner::Mode::serverError);
    CHECK(mentions(issueError(pki, pki.external({s.spec()}, s.root.certPem)),
                   "answered HTTP 500: signer is broken"));
  }
  SECTION("success without a certificate") {
    s.signer.setMode(TestSigner::Mode::noResult);
    CHECK(mentions(issueError(pki, pki.external({s.spec()}, s.root.certPem)),
                   "without result.certificate"));
  }
  SECTION("a certificate for another cluster") {
    s.signer.setMode(TestSigner::Mode::wrongOrg);
    CHECK(mentions(issueError(pki, pki.external({s.spec()}, s.root.certPem)),
                   "(cluster) 'other-cluster'"));
  }
  SECTION("a certificate for another key") {
    s.signer.setMode(TestSigner::Mode::wrongKey);
    CHECK(
        mentions(issueError(pki, pki.external({s.spec()}, s.root.certPem)), "another public key"));
  }
  SECTION("a signer that signs under a CA outside the swarm") {
    TestCa stranger = mintCa("stranger");
    TestSigner rogue(stranger, s.tlsCa);
    CHECK(mentions(issueError(pki, pki.external({s.spec(rogue.url())}, s.root.certPem)),
                   "does not chain to this swarm's root CA"));
  }
}

TEST_CASE("the signer's HTTPS certificate must be trusted and name the signer") {
  Setup s;
  Pki pki({{"external-ca-timeout-ms", "2000"}});

  SECTION("issued by a CA other than tls-ca") {
    TestCa other = mintCa("other-tls-ca");
    ExternalCaSpec spec = s.spec();
    spec.options = {{"tls-ca", other.certPem}};
    CHECK(mentions(issueError(pki, pki.external({spec}, s.root.certPem)),
                   "refused the TLS certificate"));
  }
  SECTION("without tls-ca the root is the trust, as in SwarmKit") {
    ExternalCaSpec spec = s.spec();
    spec.options.clear();
    CHECK(mentions(issueError(pki, pki.external({spec}, s.root.certPem)),
                   "refused the TLS certificate"));
    TestSigner rootServed(s.root, s.root);  // its HTTPS certificate comes from the root itself
    spec.url = rootServed.url();
    pki.load(pki.external({spec}, s.root.certPem));
    CHECK(pki.verify(pki.issueFor(pki.identity(NodeRole::WORKER)).chain, wallSeconds() * NS).valid);
  }
  SECTION("a certificate for another name") {
    ExternalCaSpec spec = s.spec();
    spec.options.emplace_back("server-name", "ca.example.com");
    CHECK(mentions(issueError(pki, pki.external({spec}, s.root.certPem)), "hostname mismatch"));
    spec.options.back().second = "localhost";  // in the certificate's DNS names
    pki.load(pki.external({spec}, s.root.certPem));
    CHECK(pki.verify(pki.issueFor(pki.identity(NodeRole::WORKER)).chain, wallSeconds() * NS).valid);
  }
}

TEST_CASE("a signer that needs a client certificate gets the tls-cert option's") {
  Setup s;
  TestSigner strict(s.root, s.tlsCa, /*requireClientCert=*/true);
  Pki pki({{"external-ca-timeout-ms", "2000"}});
  ExternalCaSpec spec = s.spec(strict.url());
  std::string error = issueError(pki, pki.external({spec}, s.root.certPem));
  CHECK(mentions(error, strict.url()));
  CHECK(mentions(error, "set the tls-cert and tls-key options"));
  CHECK(strict.requests() == 0);

  auto clientKey = newKey(KeyType::p256);
  CertSpec client;
  client.cn = "manager-1";
  client.serverAuth = false;
  auto clientCert = mintCert(client, clientKey.get(), s.tlsCa.cert.get(), s.tlsCa.key.get());
  spec.options.emplace_back("tls-cert", pem(clientCert.get()));
  spec.options.emplace_back("tls-key", pem(clientKey.get()));
  pki.load(pki.external({spec}, s.root.certPem));
  CHECK(pki.verify(pki.issueFor(pki.identity(NodeRole::MANAGER)).chain, wallSeconds() * NS).valid);
  CHECK(strict.requests() == 1);
}

TEST_CASE("a signer slower than external-ca-timeout-ms fails the request in time") {
  Setup s;
  s.signer.setMode(TestSigner::Mode::slow, std::chrono::milliseconds(5000));
  Pki pki({{"external-ca-timeout-ms", "300"}});
  CHECK(mentions(issueError(pki, pki.external({s.spec()}, s.root.certPem)),
                 "no answer from 127.0.0.1:"));
}

TEST_CASE("external CAs are tried in turn until one signs") {
  Setup s;
  Pki pki({{"external-ca-timeout-ms", "2000"}});
  std::string down = "https://127.0.0.1:" + std::to_string(unusedPort()) + "/api/v1/cfssl/sign";
  TestSigner refusing(s.root, s.tlsCa);
  refusing.setMode(TestSigner::Mode::refuse);

  pki.load(pki.external({s.spec(down), s.spec(refusing.url()), s.spec()}, s.root.certPem));
  CHECK(pki.verify(pki.issueFor(pki.identity(NodeRole::WORKER)).chain, wallSeconds() * NS).valid);
  CHECK(refusing.requests() == 1);

  std::string error =
      issueError(pki, pki.external({s.spec(down), s.spec(refusing.url())}, s.root.certPem));
  CHECK(mentions(error, "no external CA signed: " + down));
  CHECK(mentions(error, refusing.url() + ": it refused to sign"));
}

TEST_CASE("createRoot(external) refuses a bad external CA configuration") {
  Setup s;
  Pki pki;
  auto refusal = [&](ExternalCaSpec spec) {
    return pki.error([&] { pki.external({spec}, s.root.certPem); });
  };
  auto with = [&](std::string key, std::string value) {
    ExternalCaSpec spec = s.spec();
    spec.options.emplace_back(std::move(key), std::move(value));
    return spec;
  };
  CHECK(mentions(refusal(s.spec("http://127.0.0.1:1/api/v1/cfssl/sign")), "plain http"));
  CHECK(mentions(refusal(s.spec("ftp://x")), "not an https:// URL"));
  CHECK(mentions(refusal(s.spec("https://127.0.0.1:99999/")), "use a number from 1 to 65535"));
  CHECK(mentions(refusal(s.spec("https://user:pw@127.0.0.1/")), "user information"));
  CHECK(mentions(refusal(s.spec("https://::1:8888/")), "without brackets"));
  CHECK(mentions(refusal(s.spec("https:///x")), "has no host"));
  CHECK(mentions(refusal(with("colour", "blue")), "unknown option 'colour'"));
  ExternalCaSpec badTrust = s.spec();
  badTrust.options = {{"tls-ca", "nope"}};
  CHECK(mentions(refusal(badTrust), "option tls-ca is not a PEM certificate"));
  CHECK(mentions(refusal(with("tls-cert", s.tlsCa.certPem)), "go together"));
  ExternalCaSpec mismatched = with("tls-cert", s.tlsCa.certPem);
  mismatched.options.emplace_back("tls-key", s.root.keyPem);
  CHECK(mentions(refusal(mismatched), "not the key of tls-cert"));
  ExternalCaSpec twice = with("profile", "a");
  twice.options.emplace_back("profile", "b");
  CHECK(mentions(refusal(twice), "given twice"));
  auto leafKey = newKey(KeyType::p256);
  CertSpec leaf;
  leaf.cn = "leaf";
  ExternalCaSpec notCa = s.spec();
  notCa.caCert = pem(mintCert(leaf, leafKey.get(), s.root.cert.get(), s.root.key.get()).get());
  CHECK(mentions(refusal(notCa), "caCert CN = leaf is not a CA"));
  CHECK(mentions(pki.error([&] { pki.external({}, s.root.certPem); }), "at least one external CA"));
  CHECK(mentions(pki.error([&] { pki.external({s.spec()}, ""); }),
                 "external root CA certificate is empty"));
}

TEST_CASE("the profile option reaches the signer, and an intermediate caCert completes the chain") {
  TestCa root = mintCa("external-root");
  TestCa intermediate = mintSubCa("external-intermediate", root);
  TestCa tlsCa = mintCa("signer-tls-ca");
  TestSigner signer(intermediate, tlsCa);
  Pki pki;
  ExternalCaSpec spec{
      signer.url(), intermediate.certPem, {{"tls-ca", tlsCa.certPem}, {"profile", "node"}}};
  pki.load(pki.external({spec}, root.certPem));
  Issued issued = pki.issueFor(pki.identity(NodeRole::WORKER));
  CHECK(json::parse(signer.lastRequest()).as_object().at("profile") == "node");
  CHECK(readCerts(issued.chain).size() == 2);  // leaf + intermediate
  CHECK(verifyChain(issued.chain, {root.certPem}, wallSeconds()) == "");
  CHECK(pki.verify(issued.chain, wallSeconds() * NS).valid);
}

TEST_CASE("rotating away from an external root has the signer cross-sign the new root") {
  Setup s;
  Pki pki;
  Root old = pki.external({s.spec()}, s.root.certPem);
  pki.load(old);
  Issued oldCert = pki.issueFor(pki.identity(NodeRole::WORKER));

  Root next = pki.rotateGenerated();
  CHECK(json::parse(s.signer.lastRequest()).as_object().at("profile") == "CA");
  auto cross = readCert(next.crossSigned);
  CHECK(X509_verify(cross.get(), X509_get0_pubkey(s.root.cert.get())) == 1);
  CHECK(isCa(cross.get()));
  CHECK(X509_cmp(readCert(next.previous).get(), s.root.cert.get()) == 0);

  pki.load(next);
  Issued newCert = pki.issueFor(pki.identity(NodeRole::MANAGER));
  int64_t now = wallSeconds();
  CHECK(verifyChain(newCert.chain, {s.root.certPem}, now) == "");
  CHECK(verifyChain(newCert.chain, {next.cert}, now) == "");
  CHECK(pki.verify(oldCert.chain, now * NS).valid);
  CHECK(pki.verify(newCert.chain, now * NS).valid);

  // The signer must really cross-sign: a refusal fails the rotation clearly.
  pki.load(old);
  s.signer.setMode(TestSigner::Mode::refuse);
  CHECK(mentions(pki.error([&] { pki.rotateGenerated(); }), "refused to sign"));
}

TEST_CASE("an external root handed to a fresh plugin instance signs again (no state kept)") {
  Setup s;
  Root root;
  {
    Pki first;
    root = first.external({s.spec()}, s.root.certPem);
  }
  Pki second;
  second.load(root);
  CHECK(second.verify(second.issueFor(second.identity(NodeRole::WORKER)).chain, wallSeconds() * NS)
            .valid);
}

}  // namespace
}  // namespace swarm::pki::test
