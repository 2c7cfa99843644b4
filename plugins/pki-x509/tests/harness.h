// Drives pki-x509.so through the real plugin boundary: the kernel's PluginInstance loads the
// library and serves it on a socketpair (in process by default, or in swarm-plugin-runner), and
// every call below is a Cap'n Proto call on the Pki capability. Results are copied out into plain
// structs.
#pragma once

#include "mint.h"

#include "plugin_host.h"

#include <swarm/schema/pki.capnp.h>

#include <kj/async-io.h>

#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace swarm::pki::test {

using schema::NodeRole;

// The seed for the tests' random choices (node IDs...): PKI_X509_TEST_SEED, or a fixed default.
// Printed with every failure through Catch's INFO in the fixture.
uint64_t testSeed();

struct Id {
  std::string nodeId;
  NodeRole role;
  std::string clusterId;
};

struct ExternalCaSpec {
  std::string url;
  std::string caCert;
  std::vector<std::pair<std::string, std::string>> options;
};

struct Root {
  std::string cert, key, digest, crossSigned, previous;
  std::vector<ExternalCaSpec> externalCas;
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
  int64_t notBefore = 0, notAfter = 0, renewAt = 0;  // ns
};

struct CertVerdict {
  bool valid = false;
  Id identity;
  std::string reason;
};

struct HealthReport {
  schema::Health::Status status;
  std::string message;
};

class Pki {
 public:
  enum class Isolation { inProcess, outOfProcess };
  explicit Pki(std::vector<std::pair<std::string, std::string>> settings = {},
               Isolation isolation = Isolation::inProcess);
  ~Pki() noexcept(false);

  Root generate(const std::string& commonName = {}, int64_t validityNs = 0);
  Root provided(const std::string& cert, const std::string& key);
  Root external(const std::vector<ExternalCaSpec>& cas, const std::string& cert);
  void load(const Root& root);
  Root setUpRoot();  // generate + load

  Root rotateGenerated();
  Root rotateProvided(const std::string& cert, const std::string& key);

  Tokens tokens(const std::string& keepWorker = {}, const std::string& keepManager = {});
  TokenVerdict checkToken(const std::string& token, const Tokens& current);
  std::string digestOfToken(const std::string& token);

  Csr makeCsr(const Id& id);
  Issued issue(const std::string& csr, const Id& id, int64_t validityNs, int64_t nowNs);
  Issued issueFor(const Id& id, int64_t validityNs = 0);  // makeCsr + issue at the wall clock
  CertVerdict verify(const std::string& chain, int64_t nowNs,
                     const std::vector<std::string>& revoked = {});
  int64_t renewalTime(const std::string& chain, uint64_t seed);
  HealthReport health();
  void shutdown();

  Id identity(NodeRole role);
  Id identity(NodeRole role, const std::string& clusterId);

  // Runs `call`, which must fail with an error; returns the error's text.
  template <typename F>
  std::string error(F&& call) {
    KJ_IF_MAYBE(e, kj::runCatchingExceptions(kj::fwd<F>(call))) {
      // PKI_X509_SHOW_ERRORS=1 prints every refusal, to review the wording.
      if (getenv("PKI_X509_SHOW_ERRORS") != nullptr) WARN(e->getDescription().cStr());
      return e->getDescription().cStr();
    }
    FAIL("the call succeeded; it should have been refused");
    return {};
  }

  kj::AsyncIoContext& io() { return ioContext; }
  schema::Pki::Client& client() { return pki; }

 private:
  template <typename T>
  T wait(kj::Promise<T>&& promise, const char* what);
  Root rootOf(schema::RootCa::Reader r);

  kj::AsyncIoContext ioContext;
  kj::Own<kernel::PluginInstance> instance;
  schema::Pki::Client pki;
  std::mt19937_64 rng;
};

// Starts the plugin with `settings` and returns why configure() refused them ("" if it did not).
std::string configureError(std::vector<std::pair<std::string, std::string>> settings);

// Case-insensitive substring check, for error texts.
bool mentions(const std::string& text, const std::string& what);

}  // namespace swarm::pki::test
