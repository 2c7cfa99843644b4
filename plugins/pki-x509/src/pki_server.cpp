#include "pki_server.h"

#include "certificates.h"
#include "tokens.h"

#include <kj/debug.h>

#include <openssl/err.h>

namespace swarm::pki {
namespace {

constexpr int64_t DEFAULT_EXTERNAL_TIMEOUT_MS = 5000;  // SwarmKit's external CA request timeout
constexpr int64_t HEALTH_WARN_BEFORE = 30 * DAY;

void writeRoot(schema::RootCa::Builder out, const NewRoot& root) {
  std::string certPem = pem(root.cert.get());
  out.setCert(bytesOf(certPem));
  if (root.key != nullptr) out.setKey(bytesOf(pemPrivate(root.key.get())));
  out.setDigest(sha256Base36(bytesOf(certPem)));
  auto cas = out.initExternalCas(static_cast<unsigned>(root.externalCas.size()));
  for (unsigned i = 0; i < root.externalCas.size(); ++i)
    writeExternalCa(cas[i], root.externalCas[i]);
}

void writeIssued(schema::IssuedCertificate::Builder out, X509* leaf, const std::string& chainPem) {
  int64_t notBefore = unixTime(X509_get0_notBefore(leaf)) * NS;
  int64_t notAfter = unixTime(X509_get0_notAfter(leaf)) * NS;
  out.setChain(bytesOf(chainPem));
  out.setNotBefore(notBefore);
  out.setNotAfter(notAfter);
  // A fresh random point per certificate, so that nodes issued together do not renew together.
  out.setRenewAt(renewalPoint(notBefore, notAfter, randomU64()));
}

bool contains(const std::vector<X509Ptr>& certs, X509* cert) {
  for (auto& c : certs) {
    if (X509_cmp(c.get(), cert) == 0) return true;
  }
  return false;
}

}  // namespace

PkiServer::PkiServer() : signer(std::chrono::milliseconds(DEFAULT_EXTERNAL_TIMEOUT_MS)) {}

kj::Promise<void> PkiServer::onConfigure(const sdk::Settings& s) {
  s.requireOnly({"external-ca-timeout-ms"});
  signer.setTimeout(std::chrono::milliseconds(
      s.getInt("external-ca-timeout-ms", DEFAULT_EXTERNAL_TIMEOUT_MS, 100, 10 * 60 * 1000)));
  return kj::READY_NOW;
}

kj::Promise<void> PkiServer::health(HealthContext context) {
  auto health = context.getResults().initHealth();
  KJ_IF_MAYBE(r, root) {
    int64_t now = wallSeconds();
    int64_t end = unixTime(X509_get0_notAfter((*r)->cert.get()));
    if (end <= now) {
      health.setStatus(schema::Health::Status::DEGRADED);
      health.setMessage(kj::str("the root CA expired on ", isoTime(end),
                                "; no certificate verifies: rotate the root CA"));
    } else if (end - now < HEALTH_WARN_BEFORE) {
      health.setStatus(schema::Health::Status::DEGRADED);
      health.setMessage(
          kj::str("the root CA expires on ", isoTime(end), "; rotate the root CA before then"));
    } else {
      health.setStatus(schema::Health::Status::OK);
      health.setMessage(
          kj::str("root CA ", (*r)->digest.substr(0, 12), "... loaded, valid until ", isoTime(end),
                  (*r)->canSign() ? "" : " (verify only: no key and no external CA)"));
    }
  } else {
    health.setStatus(schema::Health::Status::DEGRADED);
    health.setMessage(
        "no root CA loaded yet: the kernel loads one with loadRoot() after swarm init or join");
  }
  return kj::READY_NOW;
}

kj::Promise<void> PkiServer::shutdown(ShutdownContext) {
  stopping = true;
  if (inFlight == 0) return kj::READY_NOW;
  auto paf = kj::newPromiseAndFulfiller<void>();
  drainWaiters.add(kj::mv(paf.fulfiller));
  return kj::mv(paf.promise);
}

void PkiServer::refuseAfterShutdown(kj::StringPtr call) const {
  if (stopping) sdk::fail(kj::str(call, " refused: pki-x509 is shutting down"));
}

kj::Promise<void> PkiServer::track(kj::Promise<void> work) {
  ++inFlight;
  return work.attach(kj::defer([this]() {
    if (--inFlight > 0) return;
    auto waiters = kj::mv(drainWaiters);
    for (auto& waiter : waiters) waiter->fulfill();
  }));
}

Root& PkiServer::loaded(kj::StringPtr call) {
  KJ_IF_MAYBE(r, root) {
    return **r;
  }
  sdk::fail(kj::str(call, " needs a root CA, and none is loaded: call loadRoot() first"));
}

NewRoot PkiServer::newRoot(schema::RootCaRequest::Reader request, int64_t minRemaining) {
  int64_t now = wallSeconds();
  switch (request.which()) {
    case schema::RootCaRequest::GENERATE: {
      auto generate = request.getGenerate();
      int64_t validity = generate.getValidity();
      if (validity < 0) {
        sdk::fail(kj::str("root CA validity ", validity,
                          " ns is negative; ask for at least an hour (0 = 20 years)"));
      }
      if (validity > 0 && validity < HOUR * NS) {
        sdk::fail(kj::str("root CA validity ", durationText(validity / NS),
                          " is below one hour; ask for at least 3600 s (0 = 20 years)"));
      }
      return generateRoot(generate.getCommonName(), validity / NS, now);
    }
    case schema::RootCaRequest::PROVIDED: {
      auto provided = request.getProvided();
      return adoptRoot(provided.getCert(), provided.getKey(), now, minRemaining);
    }
    case schema::RootCaRequest::EXTERNAL: {
      auto external = request.getExternal();
      auto cert = readOneCert(external.getCert(), "the external root CA certificate");
      std::vector<ExternalCa> cas;
      for (auto ca : external.getCas()) cas.push_back(parseExternalCa(ca, cert.get()));
      return externalRoot(kj::mv(cert), kj::mv(cas), now, minRemaining);
    }
  }
  sdk::fail("the root CA request is of an unknown kind; use generate, provided or external");
}

kj::Promise<void> PkiServer::createRoot(CreateRootContext context) {
  refuseAfterShutdown("createRoot()");
  auto made = newRoot(context.getParams().getRequest(), NODE_MIN_VALIDITY);
  writeRoot(context.getResults().initRoot(), made);
  return kj::READY_NOW;
}

kj::Promise<void> PkiServer::loadRoot(LoadRootContext context) {
  refuseAfterShutdown("loadRoot()");
  root = pki::loadRoot(context.getParams().getRoot());
  return kj::READY_NOW;
}

kj::Promise<void> PkiServer::issue(IssueContext context) {
  refuseAfterShutdown("issue()");
  auto params = context.getParams();
  Root& r = loaded("issue()");
  auto identity = readIdentity(params.getIdentity(), "identity");
  auto publicKey = checkNodeCsr(params.getCsr());
  if (!r.canSign()) {
    sdk::fail(
        "the loaded root CA has neither its key nor an external CA, so it cannot sign; load the "
        "root with "
        "its key on managers, or configure an external CA");
  }
  Validity validity = nodeValidity(params.getValidity(), params.getNow(), r.cert.get());
  int64_t now = nowSeconds(params.getNow());

  // As SwarmKit: an external CA, when configured, signs; otherwise the local key.
  if (r.externalCas.empty()) {
    auto leaf = signNodeCertificate(publicKey.get(), identity, validity, r.cert.get(), r.key.get());
    writeIssued(context.getResults().initCertificate(), leaf.get(),
                pem(leaf.get()) + r.crossSignedPem);
    return kj::READY_NOW;
  }

  SignRequest request;
  request.csrPem = stringOf(params.getCsr());
  request.commonName = identity.nodeId;
  request.ou = ouOf(identity.role);
  request.o = identity.clusterId;
  request.hosts = nodeDnsNames(identity);
  request.notBefore = validity.notBefore;
  request.notAfter = validity.notAfter;
  auto pinned =
      kj::addRef(r);  // the root this issue started with, even if loadRoot() runs meanwhile
  Root& signing = *pinned;
  EVP_PKEY* requestedKey = publicKey.get();
  auto accept = [&signing, requestedKey, identity, now](const ExternalCa& ca,
                                                        std::vector<X509Ptr>& certs) {
    // The chain handed out: the signer's answer, then the CA it signs with when that is an
    // intermediate under the root.
    for (auto& cert : ca.caCerts) {
      if (X509_cmp(cert.get(), signing.cert.get()) != 0 && !contains(certs, cert.get()))
        certs.push_back(upRef(cert.get()));
    }
    std::vector<X509*> intermediates;
    for (size_t i = 1; i < certs.size(); ++i) intermediates.push_back(certs[i].get());
    checkSignedNodeCertificate(certs.front().get(), requestedKey, identity, intermediates,
                               {signing.cert.get()}, now);
  };
  auto work = signer.sign(signing.externalCas, kj::mv(request), kj::mv(accept))
                  .then([context, &signing](std::vector<X509Ptr> certs) mutable {
                    std::string chain;
                    for (auto& cert : certs) {
                      if (X509_cmp(cert.get(), signing.cert.get()) != 0) chain += pem(cert.get());
                    }
                    chain += signing.crossSignedPem;
                    writeIssued(context.getResults().initCertificate(), certs.front().get(), chain);
                  })
                  .attach(kj::mv(pinned), kj::mv(publicKey));
  return track(kj::mv(work));
}

kj::Promise<void> PkiServer::makeCsr(MakeCsrContext context) {
  auto identity = readIdentity(context.getParams().getIdentity(), "identity");
  auto csr = makeNodeCsr(identity);
  auto results = context.getResults();
  results.setCsr(bytesOf(csr.csrPem));
  results.setKey(bytesOf(csr.keyPem));
  return kj::READY_NOW;
}

kj::Promise<void> PkiServer::makeJoinTokens(MakeJoinTokensContext context) {
  Root& r = loaded("makeJoinTokens()");
  auto rotate = context.getParams().getRotate();
  std::string worker = makeJoinToken(rotate.getWorker(), r.digest, "rotate.worker");
  std::string manager = makeJoinToken(rotate.getManager(), r.digest, "rotate.manager");
  if (worker == manager) {
    sdk::fail(
        "rotate.worker and rotate.manager carry the same secret; the roles need different tokens: "
        "leave one "
        "empty for a fresh secret");
  }
  auto tokens = context.getResults().initTokens();
  tokens.setWorker(worker);
  tokens.setManager(manager);
  return kj::READY_NOW;
}

kj::Promise<void> PkiServer::checkJoinToken(CheckJoinTokenContext context) {
  Root& r = loaded("checkJoinToken()");
  auto params = context.getParams();
  auto current = params.getCurrent();
  auto check = context.getResults().initCheck();
  KJ_SWITCH_ONEOF(
      pki::checkJoinToken(params.getToken(), current.getWorker(), current.getManager(), r.digest)) {
    KJ_CASE_ONEOF(role, schema::NodeRole) { check.setRole(role); }
    KJ_CASE_ONEOF(reason, kj::String) { check.setInvalid(reason); }
  }
  return kj::READY_NOW;
}

kj::Promise<void> PkiServer::rootDigestOfToken(RootDigestOfTokenContext context) {
  KJ_SWITCH_ONEOF(parseJoinToken(context.getParams().getToken())) {
    KJ_CASE_ONEOF(token, JoinToken) { context.getResults().setDigest(token.digest); }
    KJ_CASE_ONEOF(problem, kj::String) { sdk::fail(problem); }
  }
  return kj::READY_NOW;
}

kj::Promise<void> PkiServer::verify(VerifyContext context) {
  Root& r = loaded("verify()");
  auto params = context.getParams();
  int64_t now = nowSeconds(params.getNow());
  std::vector<X509*> trusted{r.cert.get()};
  if (r.previous != nullptr) trusted.push_back(r.previous.get());
  std::vector<std::string> revoked;
  for (auto id : params.getRevoked()) revoked.emplace_back(id.cStr());
  auto check = context.getResults().initCheck();
  KJ_SWITCH_ONEOF(verifyNodeChain(params.getChain(), trusted, now, revoked)) {
    KJ_CASE_ONEOF(identity, NodeIdentity) { writeIdentity(check.initValid(), identity); }
    KJ_CASE_ONEOF(reason, kj::String) { check.setInvalid(reason); }
  }
  return kj::READY_NOW;
}

kj::Promise<void> PkiServer::startRootRotation(StartRootRotationContext context) {
  refuseAfterShutdown("startRootRotation()");
  Root& current = loaded("startRootRotation()");
  auto next = kj::heap(newRoot(context.getParams().getRequest(), ROTATION_MIN_REMAINING));
  if (EVP_PKEY_eq(X509_get0_pubkey(next->cert.get()), X509_get0_pubkey(current.cert.get())) == 1) {
    sdk::fail("the new root CA reuses the current root's key; a rotation needs a new key");
  }
  ERR_clear_error();

  if (current.key != nullptr) {
    auto cross = crossSign(next->cert.get(), current.cert.get(), current.key.get());
    auto out = context.getResults().initRoot();
    writeRoot(out, *next);
    out.setCrossSignedCert(bytesOf(pem(cross.get())));
    out.setPreviousCert(bytesOf(current.certPem));
    return kj::READY_NOW;
  }
  if (current.externalCas.empty()) {
    sdk::fail(
        "the loaded root CA has neither its key nor an external CA, so it cannot cross-sign a new "
        "root; "
        "load the root with its key");
  }
  if (next->key == nullptr) {
    sdk::fail(
        "both the current and the new root CA are external, so no key here can make the "
        "cross-signing "
        "request; rotate to a generated or provided root, or cross-sign outside the swarm");
  }
  // The current root's external CA cross-signs the new root (cfssl profile "CA"), as SwarmKit does.
  auto csr = crossSignRequest(next->cert.get(), next->key.get());
  SignRequest request;
  request.csrPem = pem(csr.get());
  auto cn = nameEntries(X509_get_subject_name(next->cert.get()), NID_commonName);
  request.commonName = cn.empty() ? std::string() : cn.front();
  request.profile = std::string("CA");
  request.notBefore = unixTime(X509_get0_notBefore(next->cert.get()));
  request.notAfter = unixTime(X509_get0_notAfter(next->cert.get()));
  auto pinned = kj::addRef(current);
  Root& old = *pinned;
  X509* nextCert = next->cert.get();
  auto accept = [&old, nextCert](const ExternalCa&, std::vector<X509Ptr>& certs) {
    checkCrossSigned(certs.front().get(), nextCert, old.cert.get());
  };
  auto work = signer.sign(old.externalCas, kj::mv(request), kj::mv(accept))
                  .then([context, &old, &next = *next](std::vector<X509Ptr> certs) mutable {
                    auto out = context.getResults().initRoot();
                    writeRoot(out, next);
                    out.setCrossSignedCert(bytesOf(pem(certs.front().get())));
                    out.setPreviousCert(bytesOf(old.certPem));
                  })
                  .attach(kj::mv(pinned), kj::mv(next));
  return track(kj::mv(work));
}

kj::Promise<void> PkiServer::renewalTime(RenewalTimeContext context) {
  auto params = context.getParams();
  auto chain = readCerts(params.getChain(), "chain");
  int64_t notBefore = unixTime(X509_get0_notBefore(chain.front().get())) * NS;
  int64_t notAfter = unixTime(X509_get0_notAfter(chain.front().get())) * NS;
  context.getResults().setRenewAt(
      renewalPoint(notBefore, notAfter, seededRandom(params.getSeed())));
  return kj::READY_NOW;
}

}  // namespace swarm::pki
