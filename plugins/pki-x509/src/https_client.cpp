#include "https_client.h"

#include <swarm/sdk.h>

#include <kj/debug.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <stdexcept>
#include <thread>

namespace swarm::pki {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr size_t MAX_RESPONSE_BYTES = 1 << 20;

// What the Asio thread needs for one request; built on the KJ thread.
struct Exchange {
  asio::ssl::context tls{asio::ssl::context::tls_client};
  std::string host, serverName, target, body;
  uint16_t port = 443;
  std::chrono::milliseconds timeout{};
};

[[noreturn]] void failWith(const std::string& message) { throw std::runtime_error(message); }

bool isIpLiteral(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

std::string hostPort(const Exchange& x) {
  return (x.host.find(':') != std::string::npos ? "[" + x.host + "]" : x.host) + ":" +
         std::to_string(x.port);
}

// Under TLS 1.3 a server's refusal of our client certificate only shows on the first read or write.
std::string tlsHint(const error_code& ec) {
  return ec.message().find("certificate required") != std::string::npos
             ? "; the signer wants a client certificate: set the tls-cert and tls-key options"
             : "";
}

asio::awaitable<HttpsResponse> run(std::unique_ptr<Exchange> x) {
  auto executor = co_await asio::this_coro::executor;
  std::string where = hostPort(*x);
  std::string within = std::to_string(x->timeout.count()) + " ms";
  error_code ec;

  // An IP literal needs no lookup; a name goes through the system resolver (its own timeouts).
  tcp::resolver resolver(executor);
  auto endpoints = co_await resolver.async_resolve(x->host, std::to_string(x->port),
                                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) failWith("cannot resolve " + x->host + ": " + ec.message());

  beast::ssl_stream<beast::tcp_stream> stream(executor, x->tls);
  // One deadline for connect, handshake, request and response together.
  beast::get_lowest_layer(stream).expires_after(x->timeout);
  SSL* ssl = stream.native_handle();
  if (isIpLiteral(x->serverName)) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), x->serverName.c_str());
  } else {
    SSL_set1_host(ssl, x->serverName.c_str());
    SSL_set_tlsext_host_name(ssl, x->serverName.c_str());
  }

  co_await beast::get_lowest_layer(stream).async_connect(
      endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec == beast::error::timeout) failWith("no connection to " + where + " within " + within);
  if (ec) failWith("cannot connect to " + where + ": " + ec.message());

  co_await stream.async_handshake(asio::ssl::stream_base::client,
                                  asio::redirect_error(asio::use_awaitable, ec));
  if (ec == beast::error::timeout) failWith("no TLS handshake with " + where + " within " + within);
  if (ec) {
    long verify = SSL_get_verify_result(ssl);
    ERR_clear_error();
    if (verify != X509_V_OK) {
      failWith("refused the TLS certificate of " + where + ": " +
               X509_verify_cert_error_string(verify) + " (expected a certificate for " +
               x->serverName +
               " issued by the tls-ca option's CA, or by the root CA when tls-ca is unset)");
    }
    failWith("TLS handshake with " + where + " failed: " + ec.message());
  }

  http::request<http::string_body> request{http::verb::post, x->target, 11};
  request.set(http::field::host, where);
  request.set(http::field::content_type, "application/json");
  request.set(http::field::accept, "application/json");
  request.set(http::field::connection, "close");
  request.body() = std::move(x->body);
  request.prepare_payload();
  co_await http::async_write(stream, request, asio::redirect_error(asio::use_awaitable, ec));
  if (ec == beast::error::timeout)
    failWith("could not send the request to " + where + " within " + within);
  if (ec) failWith("sending the request to " + where + " failed: " + ec.message() + tlsHint(ec));

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(MAX_RESPONSE_BYTES);
  co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
  if (ec == beast::error::timeout) failWith("no answer from " + where + " within " + within);
  if (ec == http::error::body_limit)
    failWith(where + " answered with more than 1 MiB; that is not a sign response");
  if (ec) failWith("reading the answer of " + where + " failed: " + ec.message() + tlsHint(ec));

  HttpsResponse response;
  response.status = parser.get().result_int();
  response.body = std::move(parser.get().body());
  beast::get_lowest_layer(stream).close();
  co_return response;
}

}  // namespace

struct HttpsClient::Worker {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
  std::thread thread{[this] {
    // Handlers do not throw (run() catches everything into the fulfiller); this only guards
    // against a bug taking the process down.
    for (;;) {
      try {
        io.run();
        return;
      } catch (const std::exception& e) {
        KJ_LOG(ERROR, "pki-x509: unexpected exception on the HTTPS thread", e.what());
      }
    }
  }};

  ~Worker() noexcept {
    guard.reset();
    io.stop();
    thread.join();
  }
};

HttpsClient::HttpsClient() = default;
HttpsClient::~HttpsClient() noexcept = default;

kj::Promise<kj::Own<HttpsResponse>> HttpsClient::post(HttpsRequest request) {
  auto x = std::make_unique<Exchange>();
  SSL_CTX* ctx = x->tls.native_handle();
  check(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION), "SSL_CTX_set_min_proto_version");
  x->tls.set_verify_mode(asio::ssl::verify_peer);
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  for (auto& cert : request.trust)
    check(X509_STORE_add_cert(store, cert.get()), "X509_STORE_add_cert");
  if (request.clientKey != nullptr) {
    KJ_REQUIRE(!request.clientChain.empty(), "a client key needs its certificate");
    check(SSL_CTX_use_certificate(ctx, request.clientChain.front().get()),
          "SSL_CTX_use_certificate");
    for (size_t i = 1; i < request.clientChain.size(); ++i) {
      check(SSL_CTX_add1_chain_cert(ctx, request.clientChain[i].get()), "SSL_CTX_add1_chain_cert");
    }
    check(SSL_CTX_use_PrivateKey(ctx, request.clientKey.get()), "SSL_CTX_use_PrivateKey");
  }
  x->host = std::move(request.host);
  x->serverName = request.serverName.empty() ? x->host : std::move(request.serverName);
  x->target = std::move(request.target);
  x->body = std::move(request.body);
  x->port = request.port;
  x->timeout = request.timeout;

  if (!worker) worker = std::make_unique<Worker>();
  auto paf = kj::newPromiseAndCrossThreadFulfiller<kj::Own<HttpsResponse>>();
  asio::io_context& io = worker->io;
  asio::post(io, [&io, x = std::move(x), fulfiller = kj::mv(paf.fulfiller)]() mutable {
    asio::co_spawn(
        io, run(std::move(x)),
        [fulfiller = kj::mv(fulfiller)](std::exception_ptr error, HttpsResponse response) mutable {
          if (!error) {
            fulfiller->fulfill(kj::heap(kj::mv(response)));
            return;
          }
          kj::String message;
          try {
            std::rethrow_exception(error);
          } catch (const std::exception& e) {
            message = kj::str(e.what());
          } catch (...) {
            message = kj::str("unknown failure on the HTTPS thread");
          }
          fulfiller->reject(
              kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__, kj::mv(message)));
        });
  });
  return kj::mv(paf.promise);
}

}  // namespace swarm::pki
