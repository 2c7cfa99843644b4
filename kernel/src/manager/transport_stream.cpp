#include "transport_stream.h"

#include "errors.h"
#include "logging.h"

#include <kj/debug.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <utility>
#include <vector>

namespace swarm::kernel {

namespace {

kj::Exception disconnected(kj::StringPtr why) {
  return kj::Exception(kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__, kj::str(why));
}

}  // namespace

class PendingRead;

// ---- identity -----------------------------------------------------------------------------------

PeerIdentity PeerIdentity::from(schema::Peer::Reader peer) {
  PeerIdentity out;
  if (peer.isNode()) {
    auto node = peer.getNode();
    out.anonymous = false;
    out.nodeId = node.getNodeId();
    out.role = node.getRole();
    out.clusterId = node.getClusterId();
  }
  return out;
}

std::string PeerIdentity::describe() const {
  if (anonymous) return "an anonymous joining node";
  return "node " + nodeId + " (" + (role == schema::NodeRole::MANAGER ? "manager" : "worker") + ", cluster " +
         clusterId + ")";
}

// ---- the read side ------------------------------------------------------------------------------

// The peer's bytes between the plugin's ByteSink.write calls and the stream's reads. Refcounted
// because capnp owns the sink server, which the plugin may release before or after the stream goes.
class InboundBufferImpl final : public InboundBuffer {
 public:
  explicit InboundBufferImpl(size_t limit) : limit(std::max<size_t>(limit, 1)) {
    auto paf = kj::newPromiseAndFulfiller<void>();
    lostSignal = kj::mv(paf.fulfiller);
    lostPromise = paf.promise.fork();
  }

  // ---- from the sink (the plugin) ----

  kj::Promise<void> write(capnp::Data::Reader chunk) {
    if (readerGone) return disconnected("the kernel closed this stream; the bytes are not wanted");
    KJ_REQUIRE(!eof, "ByteSink.write after done(): the peer's stream has already ended");
    if (chunk.size() == 0) return kj::READY_NOW;
    chunks.push_back(kj::heapArray<kj::byte>(chunk));
    buffered += chunk.size();
    stats.highWater = std::max(stats.highWater, buffered);
    serveReader();
    if (buffered < limit) return kj::READY_NOW;
    // Backpressure: the plugin reads its socket again only once this resolves.
    ++stats.stalls;
    auto paf = kj::newPromiseAndFulfiller<void>();
    roomWaiters.push_back(kj::mv(paf.fulfiller));
    return kj::mv(paf.promise);
  }

  kj::Promise<void> done() {
    eof = true;
    serveReader();
    if (buffered == 0 || readerGone) return kj::READY_NOW;
    // The schema's done(): resolves once the receiver has taken everything.
    auto paf = kj::newPromiseAndFulfiller<void>();
    drainedWaiter = kj::mv(paf.fulfiller);
    return kj::mv(paf.promise);
  }

  // The plugin released the sink. Without done() first, the connection was lost.
  void sinkDropped() {
    if (eof) return;
    lost = true;
    noteDisconnected();
    serveReader();
  }

  // ---- from the stream (the kernel) ----

  kj::Promise<size_t> tryRead(kj::byte* into, size_t minBytes, size_t maxBytes);

  void abandon() {
    readerGone = true;
    chunks.clear();
    frontOffset = 0;
    buffered = 0;
    for (auto& waiter : roomWaiters) waiter->reject(disconnected("the kernel closed this stream"));
    roomWaiters.clear();
    KJ_IF_MAYBE(waiter, drainedWaiter) {
      (*waiter)->fulfill();
      drainedWaiter = nullptr;
    }
    serveReader();  // abortRead() with a read pending: it fails
  }

  void noteDisconnected() {
    if (lostSignal->isWaiting()) lostSignal->fulfill();
  }
  kj::Promise<void> whenDisconnected() { return lostPromise.addBranch(); }

  TransportStream::InboundStats currentStats() const {
    auto out = stats;
    out.buffered = buffered;
    return out;
  }

 private:
  friend class PendingRead;

  // Moves up to `max` buffered bytes into `into`.
  size_t take(kj::byte* into, size_t max) {
    size_t copied = 0;
    while (copied < max && !chunks.empty()) {
      auto& front = chunks.front();
      size_t n = std::min(max - copied, front.size() - frontOffset);
      memcpy(into + copied, front.begin() + frontOffset, n);
      copied += n;
      frontOffset += n;
      if (frontOffset == front.size()) {
        chunks.pop_front();
        frontOffset = 0;
      }
    }
    buffered -= copied;
    if (buffered < limit) {
      for (auto& waiter : roomWaiters) waiter->fulfill();
      roomWaiters.clear();
    }
    if (buffered == 0 && eof) {
      KJ_IF_MAYBE(waiter, drainedWaiter) {
        (*waiter)->fulfill();
        drainedWaiter = nullptr;
      }
    }
    return copied;
  }

  void serveReader();

  size_t limit;
  std::deque<kj::Array<kj::byte>> chunks;
  size_t frontOffset = 0;  // bytes of chunks.front() already read
  size_t buffered = 0;
  bool eof = false;         // done(): the peer closed its side cleanly
  bool lost = false;        // the sink went without done()
  bool readerGone = false;  // the stream was destroyed or abortRead()
  PendingRead* pending = nullptr;
  std::vector<kj::Own<kj::PromiseFulfiller<void>>> roomWaiters;
  kj::Maybe<kj::Own<kj::PromiseFulfiller<void>>> drainedWaiter;
  kj::Own<kj::PromiseFulfiller<void>> lostSignal;
  kj::ForkedPromise<void> lostPromise = nullptr;
  TransportStream::InboundStats stats;
};

// A read waiting for bytes; unregisters itself when the caller drops the promise.
class PendingRead {
 public:
  PendingRead(kj::PromiseFulfiller<size_t>& fulfiller, InboundBufferImpl& buffer, kj::byte* into, size_t minBytes,
              size_t maxBytes, size_t filled)
      : fulfiller(fulfiller), buffer(kj::addRef(buffer)), into(into), minBytes(minBytes), maxBytes(maxBytes),
        filled(filled) {
    this->buffer->pending = this;
  }
  ~PendingRead() noexcept(false) {
    if (buffer->pending == this) buffer->pending = nullptr;
  }
  KJ_DISALLOW_COPY(PendingRead);

  // Takes what is buffered; settles the read when it has enough or the stream ended.
  void serve() {
    filled += buffer->take(into + filled, maxBytes - filled);
    if (filled >= minBytes || (buffer->buffered == 0 && buffer->eof)) {
      buffer->pending = nullptr;
      fulfiller.fulfill(kj::cp(filled));
    } else if (buffer->buffered == 0 && buffer->lost) {
      buffer->pending = nullptr;
      fulfiller.reject(disconnected("the transport connection was lost before the peer closed it"));
    } else if (buffer->readerGone) {
      buffer->pending = nullptr;
      fulfiller.reject(disconnected("this stream's reading was aborted"));
    }
  }

 private:
  kj::PromiseFulfiller<size_t>& fulfiller;
  kj::Own<InboundBufferImpl> buffer;
  kj::byte* into;
  size_t minBytes, maxBytes, filled;
};

void InboundBufferImpl::serveReader() {
  if (pending != nullptr) pending->serve();
}

kj::Promise<size_t> InboundBufferImpl::tryRead(kj::byte* into, size_t minBytes, size_t maxBytes) {
  if (readerGone) return disconnected("this stream's reading was aborted");
  KJ_REQUIRE(pending == nullptr, "TransportStream: only one read at a time (kj's contract)");
  minBytes = std::min(minBytes, maxBytes);
  size_t filled = take(into, maxBytes);
  if (filled >= minBytes || (buffered == 0 && eof)) return filled;
  if (buffered == 0 && lost) return disconnected("the transport connection was lost before the peer closed it");
  return kj::newAdaptedPromise<size_t, PendingRead>(*this, into, minBytes, maxBytes, filled);
}

namespace {

// The ByteSink handed to the plugin (dial's inbound, accepted's result).
class InboundSink final : public schema::ByteSink::Server {
 public:
  explicit InboundSink(kj::Own<InboundBufferImpl> buffer) : buffer(kj::mv(buffer)) {}
  ~InboundSink() noexcept(false) { buffer->sinkDropped(); }

  kj::Promise<void> write(WriteContext context) override { return buffer->write(context.getParams().getChunk()); }
  kj::Promise<void> done(DoneContext) override { return buffer->done(); }

 private:
  kj::Own<InboundBufferImpl> buffer;
};

}  // namespace

StreamParts makeStreamParts(const StreamOptions& options) {
  auto buffer = kj::refcounted<InboundBufferImpl>(options.inboundLimit);
  schema::ByteSink::Client sink = kj::heap<InboundSink>(kj::addRef(*buffer));
  return {kj::mv(buffer), kj::mv(sink)};
}

// ---- the stream ---------------------------------------------------------------------------------

TransportStream::TransportStream(schema::Connection::Client connection, PeerIdentity peer,
                                 kj::Own<InboundBuffer> inbound, size_t sendChunk)
    : connection(kj::mv(connection)),
      peerIdentity(kj::mv(peer)),
      inbound(kj::mv(inbound)),
      sendChunk(std::max<size_t>(sendChunk, 1)) {}

InboundBufferImpl& TransportStream::reader() { return static_cast<InboundBufferImpl&>(*inbound); }
const InboundBufferImpl& TransportStream::reader() const {
  return static_cast<const InboundBufferImpl&>(*inbound);
}

TransportStream::~TransportStream() noexcept(false) {
  // Dropping `connection` closes it in the plugin; bytes still arriving are refused.
  reader().abandon();
}

TransportStream::InboundStats TransportStream::inboundStats() const { return reader().currentStats(); }

kj::Promise<size_t> TransportStream::tryRead(void* buffer, size_t minBytes, size_t maxBytes) {
  return reader().tryRead(static_cast<kj::byte*>(buffer), minBytes, maxBytes);
}

void TransportStream::abortRead() { reader().abandon(); }

kj::Promise<void> TransportStream::write(const void* buffer, size_t size) {
  return checked(sendFrom(static_cast<const kj::byte*>(buffer), size));
}

kj::Promise<void> TransportStream::write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) {
  // capnp writes a message as several small pieces (segment table, segments): coalesce them into
  // sendChunk-sized sends rather than one call per piece.
  size_t total = 0;
  for (auto& piece : pieces) total += piece.size();
  if (total == 0) return kj::READY_NOW;
  if (pieces.size() == 1) return write(pieces[0].begin(), pieces[0].size());
  auto joined = kj::heapArray<kj::byte>(total);
  size_t at = 0;
  for (auto& piece : pieces) {
    memcpy(joined.begin() + at, piece.begin(), piece.size());
    at += piece.size();
  }
  auto promise = sendFrom(joined.begin(), total);
  return checked(promise.attach(kj::mv(joined)));
}

kj::Promise<void> TransportStream::sendFrom(const kj::byte* data, size_t size) {
  KJ_IF_MAYBE(failure, sendFailure) { return kj::cp(*failure); }
  KJ_REQUIRE(!writeShut, "TransportStream: write() after shutdownWrite()");
  if (size == 0) return kj::READY_NOW;
  size_t n = std::min(size, sendChunk);
  auto request = connection.sendRequest(capnp::MessageSize{n / sizeof(capnp::word) + 8, 0});
  request.setChunk(kj::arrayPtr(data, n));
  // A `-> stream` call: the promise resolves when capnp's flow-control window has room (not when
  // the plugin answered), and calls on one capability are delivered in order.
  return request.send().then([this, data, n, size]() { return sendFrom(data + n, size - n); });
}

kj::Promise<void> TransportStream::checked(kj::Promise<void> promise) {
  return promise.catch_([this](kj::Exception&& e) -> kj::Promise<void> {
    if (sendFailure == nullptr) sendFailure = kj::cp(e);
    reader().noteDisconnected();
    return kj::mv(e);
  });
}

kj::Promise<void> TransportStream::whenWriteDisconnected() { return reader().whenDisconnected(); }

void TransportStream::shutdownWrite() {
  if (writeShut) return;
  writeShut = true;
  // Delivered after every send() before it (E-order on one capability). A connection that is
  // already gone needs no close; its failure is reported by reads and sends.
  closing = connection.closeRequest().send().ignoreResult().eagerlyEvaluate([](kj::Exception&&) {});
}

// ---- dialing ------------------------------------------------------------------------------------

kj::Promise<DialedStream> dialStream(schema::Transport::Client transport, kj::StringPtr address, DialExpect expect,
                                     StreamOptions options) {
  if (address.size() == 0) {
    return KJ_EXCEPTION(FAILED, "dialStream: empty address; give the peer as host:port, e.g. 10.0.0.2:2377");
  }
  if ((expect.kind == DialExpect::Kind::node || expect.kind == DialExpect::Kind::joinRootDigest) &&
      expect.value.empty()) {
    return kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                         kj::str("dialStream to ", address, ": ",
                                 expect.kind == DialExpect::Kind::node
                                     ? "expected a node ID but none was given"
                                     : "join mode needs the join token's root digest but none was given"));
  }
  auto parts = makeStreamParts(options);
  auto request = transport.dialRequest();
  auto target = request.initTarget();
  target.setAddress(address);
  switch (expect.kind) {
    case DialExpect::Kind::anyMember: target.getExpect().setAnyMember(); break;
    case DialExpect::Kind::manager: target.getExpect().setManager(); break;
    case DialExpect::Kind::node: target.getExpect().setNode(expect.value); break;
    case DialExpect::Kind::joinRootDigest: target.getExpect().setJoinRootDigest(expect.value); break;
  }
  request.setInbound(kj::mv(parts.sink));
  return request.send().then(
      [inbound = kj::mv(parts.inbound), sendChunk = options.sendChunk,
       address = kj::str(address)](capnp::Response<schema::Transport::DialResults>&& response) mutable {
        auto result = response.getResult();
        if (result.isRefused()) {
          kj::throwFatalException(kj::Exception(kj::Exception::Type::FAILED, __FILE__, __LINE__,
                                                kj::str("dial refused: ", result.getRefused())));
        }
        auto connected = result.getConnected();
        if (connected.getReused()) {
          kj::throwFatalException(kj::Exception(
              kj::Exception::Type::FAILED, __FILE__, __LINE__,
              kj::str("dial to ", address,
                      ": the transport reused an open connection whose bytes go to the session that opened "
                      "it; keep one session per peer, or set the transport's reuse-connections = false")));
        }
        auto peer = PeerIdentity::from(connected.getPeer());
        auto stream = kj::heap<TransportStream>(connected.getConnection(), peer, kj::mv(inbound), sendChunk);
        return DialedStream{kj::mv(stream), kj::mv(peer)};
      });
}

// ---- accepting ----------------------------------------------------------------------------------

StreamAcceptor::StreamAcceptor(OnStream onStream, StreamOptions options, OnRejected onRejected)
    : onStream(kj::mv(onStream)), options(options), onRejected(kj::mv(onRejected)) {}

kj::Promise<void> StreamAcceptor::accepted(AcceptedContext context) {
  auto params = context.getParams();
  auto peer = PeerIdentity::from(params.getPeer());
  auto parts = makeStreamParts(options);
  context.getResults().setInbound(kj::mv(parts.sink));
  auto stream = kj::heap<TransportStream>(params.getConnection(), peer, kj::mv(parts.inbound), options.sendChunk);
  onStream(kj::mv(stream), kj::mv(peer));
  return kj::READY_NOW;
}

kj::Promise<void> StreamAcceptor::rejected(RejectedContext context) {
  auto params = context.getParams();
  std::string remote = params.getRemote();
  std::string reason = params.getReason();
  if (onRejected) {
    onRejected(remote, reason);
  } else {
    logger("kernel")->warn("transport: refused a connection from {}: {}", remote, reason);
  }
  return kj::READY_NOW;
}

}  // namespace swarm::kernel
