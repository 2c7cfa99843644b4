#include "tls_stream.h"

#include <kj/debug.h>

#include <openssl/err.h>

#include <algorithm>
#include <cstring>

namespace swarm::tls {

namespace {

// Ciphertext read per stream read. An idle connection keeps room for one full TLS record; a
// read that fills the buffer grows it (x4, to 16 records) so bulk transfers need few wake-ups, and
// a run of small reads shrinks it back.
constexpr size_t IN_MIN = 17 * 1024;
constexpr size_t IN_MAX = 256 * 1024 + 1024;
constexpr unsigned SMALL_FILLS_BEFORE_SHRINK = 8;

// The BIO through which OpenSSL reads and writes: it only moves bytes between OpenSSL and the
// TlsStream's buffers. "Retry" tells OpenSSL to return SSL_ERROR_WANT_READ, i.e. wait for fill().
BIO_METHOD* streamBioMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "kj stream");
    KJ_ASSERT(m != nullptr, "BIO_meth_new failed");
    BIO_meth_set_create(m, [](BIO* bio) {
      BIO_set_init(bio, 1);
      return 1;
    });
    BIO_meth_set_destroy(m, [](BIO*) { return 1; });
    BIO_meth_set_read(m, [](BIO* bio, char* out, int length) {
      BIO_clear_retry_flags(bio);
      int n = static_cast<TlsStream*>(BIO_get_data(bio))->bioRead(out, length);
      if (n < 0) BIO_set_retry_read(bio);
      return n;
    });
    BIO_meth_set_write(m, [](BIO* bio, const char* in, int length) {
      BIO_clear_retry_flags(bio);
      return static_cast<TlsStream*>(BIO_get_data(bio))->bioWrite(in, length);
    });
    BIO_meth_set_ctrl(m, [](BIO*, int command, long, void*) -> long {
      // OpenSSL flushes after each flight; the stream writes happen in TlsStream::flush().
      return command == BIO_CTRL_FLUSH ? 1 : 0;
    });
    return m;
  }();
  return method;
}

}  // namespace

TlsStream::TlsStream(kj::Own<kj::AsyncIoStream> stream, SslPtr ssl)
    : stream_(kj::mv(stream)),
      ssl_(kj::mv(ssl)),
      in(kj::heapArray<kj::byte>(IN_MIN)),
      inWanted(IN_MIN),
      writeTail(kj::Promise<void>(kj::READY_NOW).fork()) {
  BIO* bio = BIO_new(streamBioMethod());
  KJ_ASSERT(bio != nullptr, "BIO_new failed");
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_.get(), bio, bio);  // one reference for both directions
}

TlsStream::~TlsStream() noexcept(false) {}

int TlsStream::bioRead(char* dest, int length) {
  size_t available = inEnd - inBegin;
  if (available == 0) return inEof ? 0 : -1;
  size_t n = std::min(available, static_cast<size_t>(length));
  memcpy(dest, in.begin() + inBegin, n);
  inBegin += n;
  return static_cast<int>(n);
}

int TlsStream::bioWrite(const char* data, int length) {
  out.addAll(reinterpret_cast<const kj::byte*>(data), reinterpret_cast<const kj::byte*>(data) + length);
  return length;
}

kj::Promise<void> TlsStream::fill() {
  KJ_ASSERT(inBegin == inEnd, "OpenSSL asked for more input before taking what it had");
  inBegin = inEnd = 0;
  if (inWanted != in.size()) in = kj::heapArray<kj::byte>(inWanted);
  return stream_->tryRead(in.begin(), 1, in.size()).then([this](size_t n) {
    inEnd = n;
    if (n == 0) inEof = true;
    if (n == in.size()) {
      inWanted = std::min(IN_MAX, in.size() * 4);
      smallFills = 0;
    } else if (n < IN_MIN && in.size() > IN_MIN && ++smallFills >= SMALL_FILLS_BEFORE_SHRINK) {
      inWanted = IN_MIN;
      smallFills = 0;
    }
  });
}

kj::Promise<void> TlsStream::flush() {
  if (out.size() > 0) {
    // Hand the filled vector to the write (no copy); write() sizes the next one.
    auto data = kj::mv(out);
    out = kj::Vector<kj::byte>();
    writeTail = writeTail.addBranch()
                    .then([this, data = kj::mv(data)]() mutable {
                      auto bytes = data.asPtr();
                      return stream_->write(bytes.begin(), bytes.size()).attach(kj::mv(data));
                    })
                    .fork();
  }
  return writeTail.addBranch();
}

kj::Exception TlsStream::fail(int sslError, kj::StringPtr during) {
  // The last queued error is the most specific one ("unsupported protocol", "unknown ca" ...).
  unsigned long code = 0;
  for (unsigned long next; (next = ERR_get_error()) != 0;) code = next;
  TlsFailure failure;
  if (code != 0) {
    const char* reason = ERR_reason_error_string(code);
    failure.reason = ERR_GET_REASON(code);
    failure.text = kj::str(reason != nullptr ? reason : "unknown OpenSSL error");
  } else if (inEof || sslError == SSL_ERROR_SYSCALL) {
    failure.reason = SSL_R_UNEXPECTED_EOF_WHILE_READING;
    failure.text = kj::str("unexpected eof while reading");
  } else {
    failure.text = kj::str("OpenSSL error ", sslError);
  }
  auto exception = kj::Exception(kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__,
                                 kj::str("TLS ", during, " failed: ", failure.text));
  failure_ = kj::mv(failure);
  return exception;
}

kj::Promise<void> TlsStream::handshake() {
  ERR_clear_error();
  int result = SSL_do_handshake(ssl_.get());
  if (result == 1) return flush();
  int error = SSL_get_error(ssl_.get(), result);
  if (error == SSL_ERROR_WANT_READ) {
    // Send this flight while waiting for the peer's; nobody needs to wait for the write itself.
    flush().detach([](kj::Exception&&) {});
    return fill().then([this]() { return handshake(); });
  }
  auto exception = fail(error, "handshake");
  // Send the alert OpenSSL made, so the peer learns why too; the failure stands either way.
  return flush().then([exception]() mutable -> kj::Promise<void> { return kj::mv(exception); },
                      [exception](kj::Exception&&) mutable -> kj::Promise<void> { return kj::mv(exception); });
}

kj::Promise<size_t> TlsStream::tryRead(void* buffer, size_t minBytes, size_t maxBytes) {
  return readLoop(static_cast<kj::byte*>(buffer), minBytes, maxBytes, 0);
}

kj::Promise<size_t> TlsStream::readLoop(kj::byte* buffer, size_t minBytes, size_t maxBytes, size_t got) {
  KJ_IF_MAYBE(f, failure_) {
    return kj::Exception(kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__, kj::str("TLS read failed: ", f->text));
  }
  while (got < maxBytes && !peerClosed_) {
    ERR_clear_error();
    size_t n = 0;
    int result = SSL_read_ex(ssl_.get(), buffer + got, maxBytes - got, &n);
    if (result == 1) {
      got += n;
      continue;
    }
    int error = SSL_get_error(ssl_.get(), result);
    // Alerts or a KeyUpdate reply: sent out of band, never waited for by a read.
    if (out.size() > 0) flush().detach([](kj::Exception&&) {});
    if (error == SSL_ERROR_WANT_READ) {
      if (got >= minBytes) return got;
      return fill().then([this, buffer, minBytes, maxBytes, got]() { return readLoop(buffer, minBytes, maxBytes, got); });
    }
    if (error == SSL_ERROR_ZERO_RETURN) {
      peerClosed_ = true;
      break;
    }
    auto exception = fail(error, "read");
    if (got > 0) return got;  // the next read reports the failure
    return kj::mv(exception);
  }
  return got;
}

kj::Promise<void> TlsStream::read(void* buffer, size_t bytes) {
  return tryRead(buffer, bytes, bytes).then([bytes](size_t n) {
    if (n < bytes) {
      kj::throwFatalException(kj::Exception(kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__,
                                            kj::str("the peer closed the TLS connection mid-message")));
    }
  });
}

kj::Promise<void> TlsStream::write(kj::ArrayPtr<const kj::byte> data) {
  if (data.size() == 0) return writeTail.addBranch();
  KJ_IF_MAYBE(f, failure_) {
    return kj::Exception(kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__, kj::str("TLS write failed: ", f->text));
  }
  if (writeShut_) {
    return kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                         kj::str("write after close: this side of the connection is closed"));
  }
  // Room for the records: 16 KiB of payload each, plus header, tag and padding.
  out.reserve(out.size() + data.size() + (data.size() / 16384 + 1) * 64);
  ERR_clear_error();
  size_t written = 0;
  int result = SSL_write_ex(ssl_.get(), data.begin(), data.size(), &written);
  if (result != 1) {
    auto exception = fail(SSL_get_error(ssl_.get(), result), "write");
    flush().detach([](kj::Exception&&) {});
    return kj::mv(exception);
  }
  KJ_ASSERT(written == data.size(), "SSL_write_ex wrote part of the data", written, data.size());
  return flush();
}

kj::Promise<void> TlsStream::shutdownWrite() {
  if (writeShut_) return writeTail.addBranch();
  writeShut_ = true;
  ERR_clear_error();
  if (failure_ == nullptr) SSL_shutdown(ssl_.get());  // queues close_notify; never blocks here
  ERR_clear_error();
  return flush().then([this]() { stream_->shutdownWrite(); });
}

}  // namespace swarm::tls
