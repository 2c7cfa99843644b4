// Node-to-node byte streams over the transport plugin (sdk/schema/transport.capnp), as
// kj::AsyncIoStreams, so that the kernel can run Cap'n Proto RPC between nodes (swarm join, Raft
// peer messages, the dispatcher) over the plugin's mutual-TLS connections.
//
// A transport connection is two capability flows: the kernel sends with Connection.send (a
// `-> stream` call) and receives through a ByteSink it hands the plugin. TransportStream joins the
// two: write() goes to send(), tryRead() drains what the sink was given. Both directions are
// flow-controlled end to end: a write waits for capnp's stream window, and the sink's write()
// only returns once the read buffer has room, so a slow reader slows its peer through the
// plugin's socket instead of growing memory here.
//
// Running capnp RPC over a stream (all on the kernel's KJ thread):
//   - one-way server (the accepting side only serves):
//       capnp::TwoPartyServer server(kj::heap<MyImpl>());
//       server.accept(kj::mv(stream));            // kj::Own<kj::AsyncIoStream>, lives until EOF
//   - client of it:
//       capnp::TwoPartyClient client(*stream);     // the stream must outlive `client`
//       auto cap = client.bootstrap().castAs<schema::Whatever>();
//   - both ends serving (e.g. a manager calling back a worker): on each side
//       capnp::TwoPartyClient rpc(*stream, kj::heap<MyImpl>(), side);
//     with side = rpc::twoparty::Side::CLIENT on the dialer and SERVER on the acceptor; each
//     side's rpc.bootstrap() is then the other's capability. (TwoPartyVatNetwork plus
//     capnp::makeRpcClient/makeRpcServer is the same thing spelled out.)
// Do not use the AsyncCapabilityStream (fd-passing) overloads: these streams carry no fds.
// The peer's verified identity (from its certificate, never from a claim) is stream->peer();
// check it before handing out capabilities, e.g. only a manager may call Raft, and an anonymous
// (joining) peer only the CA's join service.
#pragma once

#include <swarm/schema/common.capnp.h>
#include <swarm/schema/transport.capnp.h>

#include <kj/async-io.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

namespace swarm::kernel {

// Who is on the other end, copied out of schema::Peer so it outlives the RPC message.
struct PeerIdentity {
  bool anonymous = true;  // a joining node without a certificate (join mode)
  std::string nodeId;     // certificate CN
  schema::NodeRole role = schema::NodeRole::WORKER;  // certificate OU
  std::string clusterId;  // certificate O

  static PeerIdentity from(schema::Peer::Reader peer);
  bool isManager() const { return !anonymous && role == schema::NodeRole::MANAGER; }
  // "node <id> (manager, cluster <id>)" or "an anonymous joining node", for log lines and errors.
  std::string describe() const;
};

struct StreamOptions {
  // Bytes of the peer's data held for the reader before the inbound sink stops taking more. At
  // most one of the plugin's chunks (up to 256 KiB) more: capnp delivers a `-> stream` method's
  // calls one at a time, so the write that crosses the limit is the only one waiting.
  size_t inboundLimit = 1 << 20;
  // Largest Connection.send chunk; the plugin's README recommends 256 KiB.
  size_t sendChunk = 256 * 1024;
};

// The read side's buffer, shared between a stream and its inbound ByteSink server (which capnp
// owns and the plugin may hold longer than the stream lives). Opaque: see transport_stream.cpp.
class InboundBuffer : public kj::Refcounted {
 protected:
  InboundBuffer() = default;
};
class InboundBufferImpl;

class TransportStream final : public kj::AsyncIoStream {
 public:
  // For dialStream and StreamAcceptor; others get streams from them.
  TransportStream(schema::Connection::Client connection, PeerIdentity peer, kj::Own<InboundBuffer> inbound,
                  size_t sendChunk);
  ~TransportStream() noexcept(false);
  KJ_DISALLOW_COPY(TransportStream);

  const PeerIdentity& peer() const { return peerIdentity; }

  // Observability of the read side's flow control: bytes waiting now, the most ever waiting,
  // and how many sink writes had to wait for room.
  struct InboundStats {
    size_t buffered = 0;
    size_t highWater = 0;
    uint64_t stalls = 0;
  };
  InboundStats inboundStats() const;

  // kj::AsyncInputStream. After the peer's close (ByteSink.done) reads return what is left, then
  // short/0. If the connection is lost without a close (the plugin dropped the sink), reads
  // return what is left, then fail DISCONNECTED: a truncated stream must not pass for a whole one.
  kj::Promise<size_t> tryRead(void* buffer, size_t minBytes, size_t maxBytes) override;
  void abortRead() override;

  // kj::AsyncOutputStream. One write at a time (kj's contract); chunks go out in order as
  // Connection.send calls, each waiting for capnp's flow-control window. Fails DISCONNECTED once
  // the connection is lost.
  kj::Promise<void> write(const void* buffer, size_t size) override;
  kj::Promise<void> write(kj::ArrayPtr<const kj::ArrayPtr<const kj::byte>> pieces) override;
  // Resolves when a send failed or the plugin dropped the inbound sink without a close.
  kj::Promise<void> whenWriteDisconnected() override;
  // Connection.close: TLS close_notify after everything written; the peer reads EOF. Reading
  // goes on until the peer closes its side.
  void shutdownWrite() override;

 private:
  kj::Promise<void> sendFrom(const kj::byte* data, size_t size);
  kj::Promise<void> checked(kj::Promise<void> promise);
  InboundBufferImpl& reader();
  const InboundBufferImpl& reader() const;

  schema::Connection::Client connection;
  PeerIdentity peerIdentity;
  kj::Own<InboundBuffer> inbound;
  size_t sendChunk;
  bool writeShut = false;
  kj::Maybe<kj::Exception> sendFailure;
  kj::Promise<void> closing = nullptr;
};

// Makes the inbound sink for one connection and the stream that reads it; exposed so that a
// caller with its own dial or accept logic can build streams too.
struct StreamParts {
  kj::Own<InboundBuffer> inbound;
  schema::ByteSink::Client sink;
};
StreamParts makeStreamParts(const StreamOptions& options);

// What dialStream expects the listener to be (DialTarget.expect).
struct DialExpect {
  enum class Kind { anyMember, manager, node, joinRootDigest };
  Kind kind = Kind::anyMember;
  std::string value;  // the node ID, or the join token's root digest

  static DialExpect anyMember() { return {}; }
  static DialExpect manager() { return {Kind::manager, {}}; }
  static DialExpect node(std::string nodeId) { return {Kind::node, std::move(nodeId)}; }
  static DialExpect joinRootDigest(std::string digest) { return {Kind::joinRootDigest, std::move(digest)}; }
};

struct DialedStream {
  kj::Own<TransportStream> stream;
  PeerIdentity peer;  // the same as stream->peer()
};

// Transport.dial with a fresh inbound sink. Rejects (FAILED) with the plugin's refusal text
// ("<address>: ...") when refused. Also rejects when the plugin hands back a reused connection
// (DialResult.connected.reused): its bytes keep flowing to the session that opened it, so a new
// stream over it would never read anything; keep one session per peer, or set the plugin's
// `reuse-connections = false`.
kj::Promise<DialedStream> dialStream(schema::Transport::Client transport, kj::StringPtr address, DialExpect expect,
                                     StreamOptions options = {});

// The host's Acceptor for Transport.listen: each accepted connection becomes a TransportStream,
// handed with the peer's identity to `onStream` (on the kernel's KJ thread, inside the plugin's
// accepted() call: keep it short, start the RPC session and return). Rejections go to
// `onRejected`, or to the log at warn when none is given.
class StreamAcceptor final : public schema::Acceptor::Server {
 public:
  using OnStream = std::function<void(kj::Own<TransportStream>, PeerIdentity)>;
  using OnRejected = std::function<void(const std::string& remote, const std::string& reason)>;

  explicit StreamAcceptor(OnStream onStream, StreamOptions options = {}, OnRejected onRejected = {});

  kj::Promise<void> accepted(AcceptedContext context) override;
  kj::Promise<void> rejected(RejectedContext context) override;

 private:
  OnStream onStream;
  StreamOptions options;
  OnRejected onRejected;
};

}  // namespace swarm::kernel
