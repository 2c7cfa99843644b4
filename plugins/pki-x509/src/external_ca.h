// External CAs: cfssl-compatible signers reached over HTTPS, as Docker's --external-ca.
//
// Protocol (cfssl's /api/v1/cfssl/sign, as SwarmKit's ca/external.go speaks it):
//   POST {"certificate_request": "<CSR PEM>", "hosts": [...], "subject": {"CN": ..., "names":
//         [{"O": ..., "OU": ...}]}, "profile": "...", "not_before": ..., "not_after": ...}
//   200  {"success": true, "result": {"certificate": "<PEM>"}, "errors": [], "messages": []}
// Each configured CA is asked in turn until one returns a certificate that passes the caller's
// checks; the error when none does names every CA and what went wrong with it.
//
// ExternalCa.options (all optional):
//   tls-ca       PEM of the CA(s) the signer's HTTPS certificate must chain to; default: the root
//                CA and ExternalCa.caCert (SwarmKit trusts the swarm's root for its signer).
//   tls-cert     PEM client certificate (chain) for mutual TLS to the signer; needs tls-key.
//   tls-key      its unencrypted PEM key.
//   server-name  the DNS name or IP the signer's certificate must carry; default: the URL's host.
//   profile      the cfssl signing profile for node certificates; default: the signer's default.
#pragma once

#include "https_client.h"
#include "ossl.h"

#include <swarm/schema/pki.capnp.h>

#include <kj/function.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace swarm::pki {

struct ExternalCa {
  // As given; echoed back in RootCa.externalCas.
  std::string url;
  std::string caCertPem;
  std::vector<std::pair<std::string, std::string>> options;

  std::string host;
  uint16_t port = 443;
  std::string target;            // path (and query) of the sign endpoint
  std::vector<X509Ptr> caCerts;  // what the signer signs with: intermediates of issued chains
  std::vector<X509Ptr> tlsTrust;
  std::vector<X509Ptr> tlsClientChain;
  PkeyPtr tlsClientKey;
  std::string serverName;
  std::string profile;
};

// Checks the URL (https only), caCert and options; `root` is the swarm's root certificate, the
// default trust for the signer's HTTPS certificate.
ExternalCa parseExternalCa(schema::ExternalCa::Reader in, X509* root);
void writeExternalCa(schema::ExternalCa::Builder out, const ExternalCa& ca);

struct SignRequest {
  std::string csrPem;
  std::string commonName;
  std::string ou, o;  // empty when cross-signing a root
  std::vector<std::string> hosts;
  kj::Maybe<std::string> profile;       // overrides the CA's profile option ("CA" to cross-sign)
  int64_t notBefore = 0, notAfter = 0;  // Unix seconds; 0 = the signer's profile decides
};

std::string signRequestJson(const SignRequest& request, const std::string& defaultProfile);

// The certificates (leaf first) in a sign response, or a clear error saying what is wrong with it.
std::vector<X509Ptr> parseSignResponse(const HttpsResponse& response);

class ExternalSigner {
 public:
  explicit ExternalSigner(std::chrono::milliseconds timeout) : timeout(timeout) {}
  void setTimeout(std::chrono::milliseconds t) { timeout = t; }

  // Asks each of `cas` in turn; `accept` throws (sdk::fail) to refuse an answer, which moves on
  // to the next CA. Resolves with the accepted certificates and the CA that signed them. The
  // caller keeps `cas` alive until the promise settles.
  using Accept = kj::Function<void(const ExternalCa& ca, std::vector<X509Ptr>& certs)>;
  kj::Promise<std::vector<X509Ptr>> sign(const std::vector<ExternalCa>& cas, SignRequest request,
                                         Accept accept);

 private:
  kj::Promise<std::vector<X509Ptr>> attempt(const std::vector<ExternalCa>& cas, size_t index,
                                            SignRequest request, Accept accept,
                                            std::string failures);

  std::chrono::milliseconds timeout;
  HttpsClient https;
};

}  // namespace swarm::pki
