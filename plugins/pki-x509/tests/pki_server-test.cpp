// The plugin as a whole: settings, health, shutdown.
#include "harness.h"
#include "test_signer.h"

namespace swarm::pki::test {
namespace {

capnp::Data::Reader bytes(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

TEST_CASE("settings: only external-ca-timeout-ms, as a whole number of milliseconds") {
  CHECK(configureError({}) == "");
  CHECK(configureError({{"external-ca-timeout-ms", "1500"}}) == "");
  CHECK(mentions(configureError({{"colour", "blue"}}),
                 "unknown setting colour; this plugin accepts: external-ca-timeout-ms"));
  CHECK(mentions(configureError({{"external-ca-timeout-ms", "soon"}}),
                 "must be a whole number from 100 to 600000"));
  CHECK(mentions(configureError({{"external-ca-timeout-ms", "5"}}), "from 100"));
}

TEST_CASE("health is degraded until a root is loaded, and near or after the root's end") {
  Pki pki;
  HealthReport none = pki.health();
  CHECK(none.status == schema::Health::Status::DEGRADED);
  CHECK(mentions(none.message, "no root CA loaded"));

  Root root = pki.setUpRoot();
  HealthReport ok = pki.health();
  CHECK(ok.status == schema::Health::Status::OK);
  CHECK(mentions(ok.message, root.digest.substr(0, 12)));

  pki.load(pki.generate("ending-ca", 10 * DAY * NS));
  HealthReport ending = pki.health();
  CHECK(ending.status == schema::Health::Status::DEGRADED);
  CHECK(mentions(ending.message, "rotate the root CA before then"));

  // A root that has expired meanwhile (loadRoot takes what the kernel stored).
  int64_t now = wallSeconds();
  TestCa expired = mintCa("expired-ca", KeyType::p256, now - 2 * YEAR, now - DAY);
  pki.load(Root{expired.certPem, expired.keyPem, "", "", "", {}});
  HealthReport gone = pki.health();
  CHECK(gone.status == schema::Health::Status::DEGRADED);
  CHECK(mentions(gone.message, "expired on"));
  Id id = pki.identity(NodeRole::WORKER);
  CHECK(mentions(pki.error([&] { pki.issueFor(id); }), "rotate the root CA"));
}

TEST_CASE("shutdown waits for an external signing in flight and refuses new work") {
  TestCa root = mintCa("external-root");
  TestCa tlsCa = mintCa("signer-tls-ca");
  TestSigner signer(root, tlsCa);
  signer.setMode(TestSigner::Mode::hold);
  Pki pki;
  pki.load(pki.external({{signer.url(), root.certPem, {{"tls-ca", tlsCa.certPem}}}}, root.certPem));
  Id id = pki.identity(NodeRole::WORKER);
  Csr csr = pki.makeCsr(id);
  auto& waitScope = pki.io().waitScope;
  auto& timer = pki.io().provider->getTimer();

  auto issue = pki.client().issueRequest();
  issue.setCsr(bytes(csr.csr));
  auto identity = issue.initIdentity();
  identity.setNodeId(id.nodeId);
  identity.setRole(id.role);
  identity.setClusterId(id.clusterId);
  auto issued = issue.send();
  for (int i = 0; i < 3000 && signer.requests() == 0; ++i)
    timer.afterDelay(10 * kj::MILLISECONDS).wait(waitScope);
  REQUIRE(signer.requests() == 1);

  auto shutdown = pki.client().shutdownRequest().send();
  CHECK(mentions(pki.error([&] { pki.issueFor(id); }), "shutting down"));
  CHECK_FALSE(shutdown.poll(waitScope));  // the signer still holds its answer

  signer.release();
  auto response = issued.wait(waitScope);
  CHECK(verifyChain(
            std::string(reinterpret_cast<const char*>(response.getCertificate().getChain().begin()),
                        response.getCertificate().getChain().size()),
            {root.certPem}, wallSeconds()) == "");
  shutdown.wait(waitScope);
}

}  // namespace
}  // namespace swarm::pki::test
