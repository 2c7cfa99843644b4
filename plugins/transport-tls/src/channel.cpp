#include "channel.h"

#include <kj/debug.h>

#include <openssl/err.h>

namespace swarm::tls {

namespace {

constexpr kj::byte VERSION = 1;
constexpr size_t MAX_REASON = 2048;
constexpr size_t MAX_ROOTS = 8;
constexpr size_t MAX_ROOT_BYTES = 64 * 1024;

kj::Exception refusal(kj::String text) {
  return kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__, kj::mv(text));
}
kj::Exception lost(kj::String text) {
  return kj::Exception(kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__, kj::mv(text));
}

struct Verdict {
  bool refused = false;
  std::string reason;
  std::vector<std::string> roots;
};

kj::Array<kj::byte> encodeVerdict(const std::string& why, const std::vector<std::string>* roots) {
  kj::Vector<kj::byte> out;
  size_t n = std::min(why.size(), MAX_REASON);
  out.add(VERSION);
  out.add(why.empty() ? 0 : 1);
  out.add(static_cast<kj::byte>(n >> 8));
  out.add(static_cast<kj::byte>(n));
  out.addAll(reinterpret_cast<const kj::byte*>(why.data()), reinterpret_cast<const kj::byte*>(why.data()) + n);
  size_t count = roots == nullptr ? 0 : std::min(roots->size(), MAX_ROOTS);
  out.add(static_cast<kj::byte>(count));
  for (size_t i = 0; i < count; ++i) {
    auto& root = (*roots)[i];
    for (int shift = 24; shift >= 0; shift -= 8) out.add(static_cast<kj::byte>(root.size() >> shift));
    out.addAll(reinterpret_cast<const kj::byte*>(root.data()), reinterpret_cast<const kj::byte*>(root.data()) + root.size());
  }
  return out.releaseAsArray();
}

struct VerdictReader {
  explicit VerdictReader(TlsStream& tls) : tls(tls) {}
  TlsStream& tls;
  Verdict verdict;
  kj::byte header[4] = {};
};

kj::Promise<void> readRoots(VerdictReader& r, size_t left) {
  if (left == 0) return kj::READY_NOW;
  return r.tls.read(r.header, 4).then([&r, left]() {
    size_t n = (size_t(r.header[0]) << 24) | (size_t(r.header[1]) << 16) | (size_t(r.header[2]) << 8) | r.header[3];
    if (n > MAX_ROOT_BYTES) kj::throwFatalException(refusal(kj::str("the listener sent an oversized root (", n, " bytes)")));
    r.verdict.roots.emplace_back(n, '\0');
    return r.tls.read(r.verdict.roots.back().data(), n).then([&r, left]() { return readRoots(r, left - 1); });
  });
}

kj::Promise<Verdict> readVerdict(TlsStream& tls, kj::StringPtr peer) {
  auto reader = kj::heap<VerdictReader>(tls);
  auto& r = *reader;
  return r.tls.read(r.header, 4)
      .then([&r, peer]() {
        if (r.header[0] != VERSION || r.header[1] > 1) {
          kj::throwFatalException(refusal(kj::str(
              peer, " speaks TLS but not transport-tls's protocol (unexpected verdict bytes); is it a swarm node?")));
        }
        r.verdict.refused = r.header[1] == 1;
        size_t n = (size_t(r.header[2]) << 8) | r.header[3];
        r.verdict.reason.assign(n, '\0');
        return r.tls.read(r.verdict.reason.data(), n);
      })
      .then([&r]() { return r.tls.read(r.header, 1); })
      .then([&r, peer]() {
        if (r.header[0] > MAX_ROOTS) kj::throwFatalException(refusal(kj::str(peer, " sent too many roots")));
        return readRoots(r, r.header[0]);
      })
      .then([reader = kj::mv(reader)]() mutable { return kj::mv(reader->verdict); });
}

// A TLS-level failure in words. `peer` is "the dialer" or "the listener".
kj::Exception explain(TlsStream& tls, kj::Exception&& e, kj::StringPtr peer, kj::StringPtr during) {
  // Our own refusals pass through unchanged.
  if (e.getType() == kj::Exception::Type::FAILED && tls.failure() == nullptr) return kj::mv(e);
  KJ_IF_MAYBE(f, tls.failure()) {
    kj::StringPtr minimum = SSL_CTX_get_min_proto_version(SSL_get_SSL_CTX(tls.ssl())) == TLS1_2_VERSION
                                ? "TLS 1.2"_kj
                                : "TLS 1.3"_kj;
    switch (f->reason) {
      case SSL_R_UNSUPPORTED_PROTOCOL:
      case SSL_R_VERSION_TOO_LOW:
      case SSL_R_NO_PROTOCOLS_AVAILABLE:
        return refusal(kj::str(peer, " offers only TLS versions below this node's minimum, ", minimum,
                               " (Credentials.minVersion)"));
      case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
        return refusal(kj::str(peer, " refused this node's TLS version (this node offers ", minimum,
                               " to TLS 1.3; see Credentials.minVersion on both)"));
      case SSL_R_WRONG_VERSION_NUMBER:
      case SSL_R_HTTP_REQUEST:
      case SSL_R_HTTPS_PROXY_REQUEST:
      case SSL_R_PACKET_LENGTH_TOO_LONG:
      case SSL_R_UNKNOWN_PROTOCOL:
      case SSL_R_RECORD_LENGTH_MISMATCH:
        return lost(kj::str(peer, " does not speak TLS (plain TCP or garbage bytes; OpenSSL: ", f->text, ")"));
      case SSL_R_NO_SHARED_CIPHER:
        return refusal(kj::str("no TLS cipher suite in common with ", peer,
                               ": this node accepts only AEAD suites (any of TLS 1.3's; for TLS 1.2, ECDHE with "
                               "AES-GCM or ChaCha20-Poly1305)"));
      case SSL_R_UNEXPECTED_EOF_WHILE_READING:
        return lost(kj::str(peer, " closed the connection ", during));
      default:
        return refusal(kj::str("TLS with ", peer, " failed ", during, ": ", f->text));
    }
  }
  return lost(kj::str("the connection to ", peer, " failed ", during, ": ", e.getDescription()));
}

template <typename T>
kj::Promise<T> withDeadline(kj::Promise<T> work, ChannelLimits limits, kj::StringPtr peer) {
  auto timeout = limits.handshakeTimeout;
  return work.exclusiveJoin(limits.timer.afterDelay(timeout).then([timeout, peer]() -> kj::Promise<T> {
    return lost(kj::str(peer, " did not complete the TLS handshake and verdicts within ", timeout / kj::MILLISECONDS,
                        " ms (setting handshake-timeout-ms)"));
  }));
}

Established established(kj::Own<TlsStream> tls, kj::Maybe<PeerIdentity> peer) {
  SSL* ssl = tls->ssl();
  return {kj::mv(tls), kj::mv(peer), SSL_get_version(ssl), SSL_get_cipher_name(ssl)};
}

struct DialState {
  kj::Own<TlsStream> tls;
  kj::Own<CredentialSet> creds;
  Expectation expect;
  VerifyState verify;
  PeerIdentity peer;
};

// The dialer's verdict on the listener, or "" with s.peer filled.
std::string checkListener(DialState& s, const std::vector<std::string>& roots) {
  if (s.expect.kind == Expectation::JOIN) {
    STACK_OF(X509)* chain = SSL_get_peer_cert_chain(s.tls->ssl());  // the leaf first, on a client
    for (auto& root : roots) {
      if (base36Sha256(root) != s.expect.value) continue;
      std::string why = verifyAgainstRoot(root, chain, s.peer);
      return why.empty() ? why : "the listener is refused: " + why;
    }
    return kj::str("the listener does not hold the root CA of the join token: none of the ", roots.size(),
                   " root(s) it trusts has digest ", s.expect.value.c_str(),
                   " (a wrong or tampered token, or another swarm)")
        .cStr();
  }
  if (!s.verify.checked) return "the listener presented no certificate";
  if (!s.verify.refusal.empty()) return "the listener is refused: " + s.verify.refusal;
  s.peer = s.verify.peer;
  if (s.expect.kind == Expectation::MANAGER && s.peer.role != schema::NodeRole::MANAGER) {
    return "the listener is node " + s.peer.nodeId + ", a worker, but a manager was expected";
  }
  if (s.expect.kind == Expectation::NODE && s.peer.nodeId != s.expect.value) {
    return "the listener is node " + s.peer.nodeId + ", not the expected node " + s.expect.value;
  }
  return {};
}

struct AcceptState {
  kj::Own<TlsStream> tls;
  kj::Own<CredentialSet> creds;
  VerifyState verify;
};

}  // namespace

kj::Promise<Established> dialChannel(kj::Own<kj::AsyncIoStream> stream, kj::Own<CredentialSet> creds,
                                     Expectation expect, ChannelLimits limits) {
  bool joining = expect.kind == Expectation::JOIN;
  SSL_CTX* ctx = joining ? creds->joinContext() : creds->clientContext();
  KJ_REQUIRE(ctx != nullptr, "a member dial needs credentials with a certificate");
  SslPtr ssl(SSL_new(ctx));
  KJ_ASSERT(ssl != nullptr, "SSL_new failed");
  auto state = kj::heap<DialState>();
  auto& s = *state;
  s.verify.deferred = joining;
  attachVerifyState(ssl.get(), s.verify);
  SSL_set_connect_state(ssl.get());
  s.tls = kj::heap<TlsStream>(kj::mv(stream), kj::mv(ssl));
  s.creds = kj::mv(creds);
  s.expect = kj::mv(expect);

  auto work =
      s.tls->handshake()
          .catch_([&s](kj::Exception&& e) -> kj::Promise<void> {
            return explain(*s.tls, kj::mv(e), "the listener", "during the TLS handshake");
          })
          .then([&s]() {
            return readVerdict(*s.tls, "the listener").catch_([&s](kj::Exception&& e) -> kj::Promise<Verdict> {
              return explain(*s.tls, kj::mv(e), "the listener", "before sending its verdict");
            });
          })
          .then([&s](Verdict verdict) -> kj::Promise<void> {
            if (verdict.refused) return refusal(kj::str("the listener refused this node: ", verdict.reason.c_str()));
            std::string why = checkListener(s, verdict.roots);
            auto frame = encodeVerdict(why, nullptr);
            return s.tls->write(frame).then([&s, why = kj::mv(why)]() -> kj::Promise<void> {
              if (why.empty()) return kj::READY_NOW;
              // Tell the listener, close cleanly, and report our own reason.
              return s.tls->shutdownWrite().then([why]() -> kj::Promise<void> { return refusal(kj::str(why.c_str())); },
                                                 [why](kj::Exception&&) -> kj::Promise<void> {
                                                   return refusal(kj::str(why.c_str()));
                                                 });
            });
          })
          .then([&s]() { return established(kj::mv(s.tls), s.peer); });
  return withDeadline(kj::mv(work), limits, "the listener").attach(kj::mv(state));
}

kj::Promise<Established> acceptChannel(kj::Own<kj::AsyncIoStream> stream, kj::Own<CredentialSet> creds,
                                       ChannelLimits limits) {
  KJ_REQUIRE(creds->serverContext() != nullptr, "a listener needs credentials with a certificate");
  SslPtr ssl(SSL_new(creds->serverContext()));
  KJ_ASSERT(ssl != nullptr, "SSL_new failed");
  auto state = kj::heap<AcceptState>();
  auto& s = *state;
  attachVerifyState(ssl.get(), s.verify);
  SSL_set_accept_state(ssl.get());
  s.tls = kj::heap<TlsStream>(kj::mv(stream), kj::mv(ssl));
  s.creds = kj::mv(creds);

  auto work =
      s.tls->handshake()
          .catch_([&s](kj::Exception&& e) -> kj::Promise<void> {
            return explain(*s.tls, kj::mv(e), "the dialer", "during the TLS handshake");
          })
          .then([&s]() {
            // No certificate: a joining node, accepted as anonymous; it gets our roots to pin.
            bool anonymous = !s.verify.checked;
            std::string why = anonymous ? std::string() : s.verify.refusal;
            auto frame = encodeVerdict(why, anonymous ? &s.creds->rootPems() : nullptr);
            return s.tls->write(frame).then([&s, why = kj::mv(why)]() -> kj::Promise<void> {
              if (why.empty()) return kj::READY_NOW;
              auto reason = kj::str("refused the dialer: ", why.c_str());
              return s.tls->shutdownWrite().then(
                  [reason = kj::str(reason)]() mutable -> kj::Promise<void> { return refusal(kj::mv(reason)); },
                  [reason = kj::str(reason)](kj::Exception&&) mutable -> kj::Promise<void> { return refusal(kj::mv(reason)); });
            });
          })
          .then([&s]() {
            return readVerdict(*s.tls, "the dialer").catch_([&s](kj::Exception&& e) -> kj::Promise<Verdict> {
              return explain(*s.tls, kj::mv(e), "the dialer", "before sending its verdict");
            });
          })
          .then([&s](Verdict verdict) -> kj::Promise<Established> {
            if (verdict.refused) return refusal(kj::str("the dialer refused this node: ", verdict.reason.c_str()));
            kj::Maybe<PeerIdentity> peer;
            if (s.verify.checked) peer = s.verify.peer;
            return established(kj::mv(s.tls), kj::mv(peer));
          });
  return withDeadline(kj::mv(work), limits, "the dialer").attach(kj::mv(state));
}

}  // namespace swarm::tls
