#include "test_signer.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>

#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <ctime>
#include <mutex>
#include <vector>
#include <thread>

namespace swarm::pki::test {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

int64_t parseTime(const std::string& text) {
  struct tm tm = {};
  if (strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) == nullptr) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

std::string stringField(const json::object& obj, const char* key) {
  const json::value* v = obj.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string().c_str()) : std::string();
}

std::string failure(int code, const std::string& message) {
  return json::serialize(
      json::object{{"success", false},
                   {"result", nullptr},
                   {"errors", json::array{json::object{{"code", code}, {"message", message}}}}});
}

}  // namespace

struct TestSigner::Impl {
  asio::io_context io;
  asio::ssl::context tls{asio::ssl::context::tls_server};
  tcp::acceptor acceptor{io};
  std::thread thread;
  X509Ptr caCert;
  PkeyPtr caKey;

  mutable std::mutex mutex;
  Mode mode = Mode::sign;
  std::chrono::milliseconds delay{0};
  std::string last;
  unsigned count = 0;
  std::vector<asio::steady_timer*> held;  // io thread only

  // The status and body for one request body.
  std::pair<http::status, std::string> answer(const std::string& body) {
    std::lock_guard<std::mutex> lock(mutex);
    last = body;
    ++count;
    switch (mode) {
      case Mode::garbage:
        return {http::status::ok, "<html>hello, this is not a signer</html>"};
      case Mode::refuse:
        return {http::status::ok, failure(5300, "policy forbids this request")};
      case Mode::serverError:
        return {http::status::internal_server_error, failure(1000, "signer is broken")};
      case Mode::noResult:
        return {http::status::ok, R"({"success": true, "result": {}, "errors": []})"};
      default:
        break;
    }
    boost::system::error_code ec;
    json::value request = json::parse(body, ec);
    if (ec || !request.is_object()) return {http::status::bad_request, failure(1002, "bad JSON")};
    const json::object& req = request.get_object();
    std::string csr = stringField(req, "certificate_request");
    auto bio = BIO_new_mem_buf(csr.data(), static_cast<int>(csr.size()));
    X509_REQ* parsed = PEM_read_bio_X509_REQ(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (parsed == nullptr) return {http::status::bad_request, failure(2000, "bad CSR")};
    PkeyPtr key(X509_REQ_get_pubkey(parsed));
    X509_REQ_free(parsed);

    CertSpec spec;
    const json::value* subject = req.if_contains("subject");
    if (subject != nullptr && subject->is_object()) {
      spec.cn = stringField(subject->get_object(), "CN");
      const json::value* names = subject->get_object().if_contains("names");
      if (names != nullptr && names->is_array() && !names->get_array().empty() &&
          names->get_array()[0].is_object()) {
        spec.o = stringField(names->get_array()[0].get_object(), "O");
        spec.ou = stringField(names->get_array()[0].get_object(), "OU");
      }
    }
    const json::value* hosts = req.if_contains("hosts");
    if (hosts != nullptr && hosts->is_array()) {
      for (auto& h : hosts->get_array()) {
        if (h.is_string()) spec.dns.emplace_back(h.get_string().c_str());
      }
    }
    spec.ca = stringField(req, "profile") == "CA";
    spec.notBefore = parseTime(stringField(req, "not_before"));
    spec.notAfter = parseTime(stringField(req, "not_after"));
    if (spec.notAfter == 0) spec.notAfter = wallSeconds() + 90 * DAY;
    if (mode == Mode::wrongOrg) spec.o = "other-cluster";
    PkeyPtr own;
    if (mode == Mode::wrongKey) own = newKey(KeyType::p256);
    auto cert = mintCert(spec, own ? own.get() : key.get(), caCert.get(), caKey.get());
    return {http::status::ok,
            json::serialize(json::object{{"success", true},
                                         {"result", json::object{{"certificate", pem(cert.get())}}},
                                         {"errors", json::array{}},
                                         {"messages", json::array{}}})};
  }

  asio::awaitable<void> serve(tcp::socket socket) {
    beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), tls);
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(20));
    boost::system::error_code ec;
    co_await stream.async_handshake(asio::ssl::stream_base::server,
                                    asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    co_await http::async_read(stream, buffer, request,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    auto [status, body] =
        request.target() == "/api/v1/cfssl/sign" && request.method() == http::verb::post
            ? answer(request.body())
            : std::pair{http::status::not_found, failure(404, "no such endpoint")};
    Mode now;
    std::chrono::milliseconds wait;
    {
      std::lock_guard<std::mutex> lock(mutex);
      now = mode;
      wait = mode == Mode::slow ? delay : std::chrono::milliseconds(0);
    }
    if (now == Mode::hold) {
      asio::steady_timer timer(co_await asio::this_coro::executor,
                               asio::steady_timer::time_point::max());
      held.push_back(&timer);
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      std::erase(held, &timer);
    } else if (wait.count() > 0) {
      asio::steady_timer timer(co_await asio::this_coro::executor, wait);
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    http::response<http::string_body> response{status, 11};
    response.set(http::field::content_type, "application/json");
    response.body() = std::move(body);
    response.prepare_payload();
    co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
    beast::get_lowest_layer(stream).close();
  }

  asio::awaitable<void> acceptLoop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      asio::co_spawn(io, serve(std::move(socket)), asio::detached);
    }
  }
};

TestSigner::TestSigner(const TestCa& signingCa, const TestCa& tlsCa, bool requireClientCert)
    : impl(std::make_unique<Impl>()) {
  X509_up_ref(signingCa.cert.get());
  impl->caCert.reset(signingCa.cert.get());
  EVP_PKEY_up_ref(signingCa.key.get());
  impl->caKey.reset(signingCa.key.get());

  auto serverKey = newKey(KeyType::p256);
  CertSpec spec;
  spec.cn = "test-signer";
  spec.dns = {"localhost"};
  spec.ips = {"127.0.0.1"};
  spec.clientAuth = false;
  auto serverCert = mintCert(spec, serverKey.get(), tlsCa.cert.get(), tlsCa.key.get());
  SSL_CTX* ctx = impl->tls.native_handle();
  SSL_CTX_use_certificate(ctx, serverCert.get());
  SSL_CTX_use_PrivateKey(ctx, serverKey.get());
  if (requireClientCert) {
    X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), tlsCa.cert.get());
    impl->tls.set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
  }

  tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
  impl->acceptor.open(endpoint.protocol());
  impl->acceptor.bind(endpoint);
  impl->acceptor.listen();
  asio::co_spawn(impl->io, impl->acceptLoop(), asio::detached);
  impl->thread = std::thread([this] { impl->io.run(); });
}

TestSigner::~TestSigner() {
  impl->io.stop();
  impl->thread.join();
}

uint16_t TestSigner::port() const { return impl->acceptor.local_endpoint().port(); }

std::string TestSigner::url() const {
  return "https://127.0.0.1:" + std::to_string(port()) + "/api/v1/cfssl/sign";
}

void TestSigner::setMode(Mode mode, std::chrono::milliseconds delay) {
  std::lock_guard<std::mutex> lock(impl->mutex);
  impl->mode = mode;
  impl->delay = delay;
}

void TestSigner::release() {
  setMode(Mode::sign);
  asio::post(impl->io, [impl = impl.get()] {
    for (auto* timer : impl->held) timer->cancel();
  });
}

std::string TestSigner::lastRequest() const {
  std::lock_guard<std::mutex> lock(impl->mutex);
  return impl->last;
}

unsigned TestSigner::requests() const {
  std::lock_guard<std::mutex> lock(impl->mutex);
  return impl->count;
}

uint16_t unusedPort() {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

}  // namespace swarm::pki::test
