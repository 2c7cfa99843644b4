// HTTPS POSTs for the external CA, made with Boost.Beast on an Asio thread of their own so the
// plugin's KJ event loop never blocks on the network.
//
// The only crossing between the two threads: post() builds the TLS context on the KJ thread
// (so bad trust material fails at once), hands the request to the Asio thread with asio::post,
// and the Asio thread answers through a kj cross-thread fulfiller. The thread starts on the first
// request; the destructor stops it, and requests still in flight then reject.
#pragma once

#include "ossl.h"

#include <kj/async.h>
#include <kj/memory.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace swarm::pki {

struct HttpsRequest {
  std::string host;  // DNS name or IP literal (IPv6 without brackets)
  uint16_t port = 443;
  std::string target;          // "/api/v1/cfssl/sign"
  std::string body;            // sent as application/json
  std::vector<X509Ptr> trust;  // the server's certificate must chain to one of these
  std::string serverName;      // the name (or IP) its certificate must carry; empty = host
  PkeyPtr clientKey;           // optional client certificate for mutual TLS
  std::vector<X509Ptr> clientChain;
  std::chrono::milliseconds timeout{5000};  // for the whole exchange
};

struct HttpsResponse {
  unsigned status = 0;
  std::string body;
};

class HttpsClient {
 public:
  HttpsClient();
  ~HttpsClient() noexcept;
  KJ_DISALLOW_COPY(HttpsClient);

  // Resolves with any HTTP answer (the caller judges the status); rejects with a one-line reason
  // when there is none: cannot resolve or connect, TLS refused (with the verification error),
  // no answer within the timeout, or a reply that is not HTTP.
  // (Owned, so the promise machinery moves a pointer rather than the body.)
  kj::Promise<kj::Own<HttpsResponse>> post(HttpsRequest request);

 private:
  struct Worker;
  std::unique_ptr<Worker> worker;
};

}  // namespace swarm::pki
