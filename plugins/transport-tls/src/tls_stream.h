// TLS over a KJ byte stream, driven on the calling thread's event loop (decision 0003).
//
// OpenSSL never touches the socket: a small custom BIO lends it ciphertext that this class read
// from the stream, and collects the records it writes, which this class then writes to the stream
// in order. So the handshake, reads and writes are ordinary KJ promises on the plugin's own loop:
// no second thread, no blocking call, and a stalled peer stalls only its own promises.
#pragma once

#include <kj/async-io.h>
#include <kj/vector.h>

#include <openssl/ssl.h>

#include <memory>

namespace swarm::tls {

struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;

// The reason code (ERR_GET_REASON) and text of the OpenSSL error that ended an operation, kept
// so that callers can explain well-known failures (wrong TLS version, not TLS at all) in words.
struct TlsFailure {
  int reason = 0;
  kj::String text;
};

class TlsStream {
 public:
  // `ssl` must be new, with SSL_set_connect_state() or SSL_set_accept_state() already called.
  TlsStream(kj::Own<kj::AsyncIoStream> stream, SslPtr ssl);
  ~TlsStream() noexcept(false);
  KJ_DISALLOW_COPY(TlsStream);

  // Runs the handshake to completion. On failure, the alert OpenSSL made is sent to the peer first,
  // failure() says why, and the promise rejects with that text.
  kj::Promise<void> handshake();

  // Reads at least minBytes (unless the peer ended its side), at most maxBytes. 0 (or fewer than
  // minBytes) means the peer sent close_notify. Rejects when the stream ends without close_notify
  // (a truncation) or on a TLS error. One read at a time.
  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes);

  // Reads exactly `bytes`; rejects if the peer ends its side first.
  kj::Promise<void> read(void* buffer, size_t bytes);

  // Encrypts `data` at once (the caller may reuse it immediately) and resolves when the records
  // have been written to the stream. Writes keep their order; a read never waits for a write.
  kj::Promise<void> write(kj::ArrayPtr<const kj::byte> data);

  // Sends close_notify, then shuts down the stream's write side. Idempotent. Reading goes on: the
  // peer may still send until its own close_notify (TLS 1.3 half-close).
  kj::Promise<void> shutdownWrite();

  SSL* ssl() const { return ssl_.get(); }
  kj::AsyncIoStream& stream() { return *stream_; }
  bool peerClosed() const { return peerClosed_; }
  bool writeShut() const { return writeShut_; }
  const kj::Maybe<TlsFailure>& failure() const { return failure_; }

  // The BIO's callbacks; not for callers.
  int bioRead(char* out, int length);
  int bioWrite(const char* in, int length);

 private:
  kj::Promise<void> fill();
  kj::Promise<void> flush();
  kj::Promise<size_t> readLoop(kj::byte* buffer, size_t minBytes, size_t maxBytes, size_t got);
  // Records the current OpenSSL error for failure() and returns an exception describing it.
  kj::Exception fail(int sslError, kj::StringPtr during);

  kj::Own<kj::AsyncIoStream> stream_;
  SslPtr ssl_;

  // Ciphertext read from the stream, not yet consumed by OpenSSL: [inBegin, inEnd).
  kj::Array<kj::byte> in;
  size_t inBegin = 0;
  size_t inEnd = 0;
  bool inEof = false;
  size_t inWanted;  // the size of `in` from the next fill() on
  unsigned smallFills = 0;

  // Records OpenSSL produced, not yet handed to the stream.
  kj::Vector<kj::byte> out;

  bool peerClosed_ = false;
  bool writeShut_ = false;
  kj::Maybe<TlsFailure> failure_;

  // The tail of the ordered chain of stream writes. Last member: it references the ones above.
  kj::ForkedPromise<void> writeTail;
};

}  // namespace swarm::tls
