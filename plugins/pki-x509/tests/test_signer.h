// A cfssl-compatible signer for the external-CA tests: HTTPS on 127.0.0.1 (port chosen by the
// kernel), POST /api/v1/cfssl/sign, Boost.Beast on a thread of its own. Its HTTPS certificate
// (IP 127.0.0.1, DNS localhost) comes from `tlsCa`; it signs with `signingCa` the way cfssl does:
// the subject and hosts from the request, the CSR's key, CA:TRUE for profile "CA". Modes make it
// misbehave in one way each.
#pragma once

#include "mint.h"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace swarm::pki::test {

class TestSigner {
 public:
  enum class Mode {
    sign,         // a correct answer
    garbage,      // 200 with a body that is not JSON
    refuse,       // {"success": false, "errors": [{"code": 5300, "message": "policy forbids ..."}]}
    serverError,  // HTTP 500
    noResult,     // {"success": true, "result": {}}
    wrongOrg,     // signs, but with O = "other-cluster"
    wrongKey,     // signs a key of its own instead of the CSR's
    slow,         // answers after `delay`
    hold,         // signs, but answers only after release()
  };

  // With requireClientCert, the TLS handshake needs a client certificate issued by `tlsCa`.
  TestSigner(const TestCa& signingCa, const TestCa& tlsCa, bool requireClientCert = false);
  ~TestSigner();

  uint16_t port() const;
  std::string url() const;  // https://127.0.0.1:<port>/api/v1/cfssl/sign
  void setMode(Mode mode, std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  void release();                   // lets held answers go (and ends hold mode)
  std::string lastRequest() const;  // the last request body received
  unsigned requests() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl;
};

// A loopback port with nothing listening on it (bound, then closed).
uint16_t unusedPort();

}  // namespace swarm::pki::test
