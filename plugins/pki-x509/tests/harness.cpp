#include "harness.h"

#include <kj/debug.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace swarm::pki::test {
namespace {

constexpr auto CALL_LIMIT = 30 * kj::SECONDS;

capnp::Data::Reader data(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}
std::string str(capnp::Data::Reader d) {
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}

void setId(schema::Identity::Builder out, const Id& id) {
  out.setNodeId(id.nodeId);
  out.setRole(id.role);
  out.setClusterId(id.clusterId);
}

std::string randomId(std::mt19937_64& rng) {
  static constexpr char DIGITS[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string id;
  for (int i = 0; i < 25; ++i) id += DIGITS[rng() % 36];
  return id;
}

}  // namespace

uint64_t testSeed() {
  const char* env = getenv("PKI_X509_TEST_SEED");
  return env != nullptr ? strtoull(env, nullptr, 10) : 20261125;
}

bool mentions(const std::string& text, const std::string& what) {
  auto lower = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
    return s;
  };
  return lower(text).find(lower(what)) != std::string::npos;
}

namespace {
kj::Own<kernel::PluginInstance> startPlugin(
    kj::AsyncIoContext& io, std::vector<std::pair<std::string, std::string>> settings,
    bool outOfProcess = false) {
  kernel::PluginConfig config;
  config.kind = schema::Kind::PKI;
  config.library = PKI_X509_PLUGIN;
  config.isolation = outOfProcess ? kernel::Isolation::outOfProcess : kernel::Isolation::inProcess;
  config.onCrash = kernel::CrashPolicy::stop;
  config.settings = std::move(settings);
  kernel::PluginInstance::Options options;
  options.runnerPath = SWARM_PLUGIN_RUNNER;
  return kernel::PluginInstance::start(io, config, options);
}
}  // namespace

std::string configureError(std::vector<std::pair<std::string, std::string>> settings) {
  auto io = kj::setupAsyncIo();
  auto instance = startPlugin(io, std::move(settings));
  std::string error;
  KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { instance->configure().wait(io.waitScope); })) {
    error = e->getDescription().cStr();
  }
  instance->stop().wait(io.waitScope);
  return error;
}

Pki::Pki(std::vector<std::pair<std::string, std::string>> settings, Isolation isolation)
    : ioContext(kj::setupAsyncIo()), pki(nullptr), rng(testSeed()) {
  instance = startPlugin(ioContext, std::move(settings), isolation == Isolation::outOfProcess);
  instance->configure().wait(ioContext.waitScope);
  pki = instance->bootstrap().castAs<schema::Pki>();
}

Pki::~Pki() noexcept(false) {
  pki = nullptr;
  if (instance) instance->stop().wait(ioContext.waitScope);
}

template <typename T>
T Pki::wait(kj::Promise<T>&& promise, const char* what) {
  return promise
      .exclusiveJoin(ioContext.provider->getTimer().afterDelay(CALL_LIMIT).then([what]() -> T {
        KJ_FAIL_REQUIRE("no answer within 30 s", what);
      }))
      .wait(ioContext.waitScope);
}

Root Pki::rootOf(schema::RootCa::Reader r) {
  Root root{str(r.getCert()),
            str(r.getKey()),
            r.getDigest(),
            str(r.getCrossSignedCert()),
            str(r.getPreviousCert()),
            {}};
  for (auto ca : r.getExternalCas()) {
    ExternalCaSpec spec{ca.getUrl(), str(ca.getCaCert()), {}};
    for (auto option : ca.getOptions())
      spec.options.emplace_back(option.getKey(), option.getValue());
    root.externalCas.push_back(std::move(spec));
  }
  return root;
}

Root Pki::generate(const std::string& commonName, int64_t validityNs) {
  auto request = pki.createRootRequest();
  auto generate = request.initRequest().initGenerate();
  if (!commonName.empty()) generate.setCommonName(commonName);
  generate.setValidity(validityNs);
  return rootOf(wait(request.send(), "createRoot(generate)").getRoot());
}

Root Pki::provided(const std::string& cert, const std::string& key) {
  auto request = pki.createRootRequest();
  auto provided = request.initRequest().initProvided();
  provided.setCert(data(cert));
  provided.setKey(data(key));
  return rootOf(wait(request.send(), "createRoot(provided)").getRoot());
}

namespace {
void setCas(capnp::List<schema::ExternalCa>::Builder out, const std::vector<ExternalCaSpec>& cas) {
  for (unsigned i = 0; i < cas.size(); ++i) {
    out[i].setUrl(cas[i].url);
    out[i].setCaCert(data(cas[i].caCert));
    auto options = out[i].initOptions(static_cast<unsigned>(cas[i].options.size()));
    for (unsigned j = 0; j < cas[i].options.size(); ++j) {
      options[j].setKey(cas[i].options[j].first);
      options[j].setValue(cas[i].options[j].second);
    }
  }
}
}  // namespace

Root Pki::external(const std::vector<ExternalCaSpec>& cas, const std::string& cert) {
  auto request = pki.createRootRequest();
  auto external = request.initRequest().initExternal();
  setCas(external.initCas(static_cast<unsigned>(cas.size())), cas);
  external.setCert(data(cert));
  return rootOf(wait(request.send(), "createRoot(external)").getRoot());
}

void Pki::load(const Root& root) {
  auto request = pki.loadRootRequest();
  auto r = request.initRoot();
  r.setCert(data(root.cert));
  r.setKey(data(root.key));
  r.setDigest(root.digest);
  r.setCrossSignedCert(data(root.crossSigned));
  r.setPreviousCert(data(root.previous));
  setCas(r.initExternalCas(static_cast<unsigned>(root.externalCas.size())), root.externalCas);
  wait(request.send(), "loadRoot");
}

Root Pki::setUpRoot() {
  Root root = generate();
  load(root);
  return root;
}

Root Pki::rotateGenerated() {
  auto request = pki.startRootRotationRequest();
  request.initRequest().initGenerate();
  return rootOf(wait(request.send(), "startRootRotation(generate)").getRoot());
}

Root Pki::rotateProvided(const std::string& cert, const std::string& key) {
  auto request = pki.startRootRotationRequest();
  auto provided = request.initRequest().initProvided();
  provided.setCert(data(cert));
  provided.setKey(data(key));
  return rootOf(wait(request.send(), "startRootRotation(provided)").getRoot());
}

Tokens Pki::tokens(const std::string& keepWorker, const std::string& keepManager) {
  auto request = pki.makeJoinTokensRequest();
  auto rotate = request.initRotate();
  rotate.setWorker(keepWorker);
  rotate.setManager(keepManager);
  auto response = wait(request.send(), "makeJoinTokens");
  return {response.getTokens().getWorker(), response.getTokens().getManager()};
}

TokenVerdict Pki::checkToken(const std::string& token, const Tokens& current) {
  auto request = pki.checkJoinTokenRequest();
  request.setToken(token);
  request.initCurrent().setWorker(current.worker);
  request.getCurrent().setManager(current.manager);
  auto response = wait(request.send(), "checkJoinToken");
  auto c = response.getCheck();
  if (c.isRole()) return {true, c.getRole(), {}};
  return {false, NodeRole::WORKER, c.getInvalid()};
}

std::string Pki::digestOfToken(const std::string& token) {
  auto request = pki.rootDigestOfTokenRequest();
  request.setToken(token);
  return wait(request.send(), "rootDigestOfToken").getDigest();
}

Csr Pki::makeCsr(const Id& id) {
  auto request = pki.makeCsrRequest();
  setId(request.initIdentity(), id);
  auto response = wait(request.send(), "makeCsr");
  return {str(response.getCsr()), str(response.getKey())};
}

Issued Pki::issue(const std::string& csr, const Id& id, int64_t validityNs, int64_t nowNs) {
  auto request = pki.issueRequest();
  request.setCsr(data(csr));
  setId(request.initIdentity(), id);
  request.setValidity(validityNs);
  request.setNow(nowNs);
  auto response = wait(request.send(), "issue");
  auto c = response.getCertificate();
  return {str(c.getChain()), c.getNotBefore(), c.getNotAfter(), c.getRenewAt()};
}

Issued Pki::issueFor(const Id& id, int64_t validityNs) {
  return issue(makeCsr(id).csr, id, validityNs, wallSeconds() * NS);
}

CertVerdict Pki::verify(const std::string& chain, int64_t nowNs,
                        const std::vector<std::string>& revoked) {
  auto request = pki.verifyRequest();
  request.setChain(data(chain));
  request.setNow(nowNs);
  auto list = request.initRevoked(static_cast<unsigned>(revoked.size()));
  for (unsigned i = 0; i < revoked.size(); ++i) list.set(i, revoked[i]);
  auto response = wait(request.send(), "verify");
  auto c = response.getCheck();
  if (c.isValid()) {
    auto v = c.getValid();
    return {true, {v.getNodeId(), v.getRole(), v.getClusterId()}, {}};
  }
  return {false, {}, c.getInvalid()};
}

int64_t Pki::renewalTime(const std::string& chain, uint64_t seed) {
  auto request = pki.renewalTimeRequest();
  request.setChain(data(chain));
  request.setSeed(seed);
  return wait(request.send(), "renewalTime").getRenewAt();
}

HealthReport Pki::health() {
  auto response = wait(pki.healthRequest().send(), "health");
  return {response.getHealth().getStatus(), response.getHealth().getMessage()};
}

void Pki::shutdown() { wait(pki.shutdownRequest().send(), "shutdown"); }

Id Pki::identity(NodeRole role) { return {randomId(rng), role, randomId(rng)}; }
Id Pki::identity(NodeRole role, const std::string& clusterId) {
  return {randomId(rng), role, clusterId};
}

}  // namespace swarm::pki::test
