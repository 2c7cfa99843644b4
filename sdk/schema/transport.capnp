@0xa213ef26b62d5134;
# Transport: mutual-TLS connections between nodes (plugins/transport-tls).
#
# Bytes flow as ByteSink writes in both directions; the kernel runs its own protocol (Cap'n Proto
# RPC) over them. Every connection carries the peer's verified identity.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("swarm::schema");

using Common = import "common.capnp";
using Plugin = import "plugin.capnp";

enum TlsVersion {
  tls12 @0;
  tls13 @1;
}

struct Credentials {
  chain @0 :Data;
  # PEM chain of this node's certificate (empty in join mode).
  key @1 :Data;
  # PEM private key.
  roots @2 :List(Data);
  # Trusted root PEMs: one, or two during a root rotation.
  clusterId @3 :Text;
  # Peers must carry this O.
  minVersion @4 :TlsVersion = tls13;
  revokedNodeIds @5 :List(Text);
  # Certificates with these CNs are refused.
}

struct DialTarget {
  address @0 :Text;
  # host:port
  expect :union {
    anyMember @1 :Void;
    # Any certificate of this cluster.
    manager @2 :Void;
    # The peer must be a manager.
    node @3 :Text;
    # This node ID.
    joinRootDigest @4 :Text;
    # Join mode: no client certificate; the server's root must hash to this digest.
  }
}

interface Connection {
  send @0 (chunk :Data) -> stream;
  close @1 ();
  # Graceful close (TLS close_notify).
}

interface Acceptor {
  # Host capability: receives the listener's authenticated connections.
  accepted @0 (peer :Common.Peer, connection :Connection) -> (inbound :Common.ByteSink);
  rejected @1 (remote :Text, reason :Text);
  # A handshake or verification failure, for the log; the listener keeps serving.
}

interface Listener {
  address @0 () -> (address :Text);
  # The bound host:port (useful after listening on port 0).
  close @1 ();
}

struct DialResult {
  union {
    connected :group {
      peer @0 :Common.Peer;
      connection @1 :Connection;
      reused @3 :Bool;
      # true: an open connection to the same address and peer was returned; its bytes keep
      # flowing to the sink of the dial that opened it, and this dial's `inbound` is released.
    }
    refused @2 :Text;
    # Clear reason: unreachable, handshake failed, certificate refused by peer, wrong identity.
  }
}

interface Transport extends(Plugin.Plugin) {
  setCredentials @0 (credentials :Credentials);
  # First, then again on renewal, root rotation or revocation. Applies to new connections.
  listen @1 (address :Text, acceptor :Acceptor) -> (listener :Listener);
  dial @2 (target :DialTarget, inbound :Common.ByteSink) -> (result :DialResult);
  # Reuses an open, still-valid connection to the same address when the plugin allows it (see
  # DialResult.connected.reused); otherwise opens a new one bound to `inbound`.
}
