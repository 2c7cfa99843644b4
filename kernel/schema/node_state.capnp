@0xd4a0f3c95b7e2a18;
# What a node keeps in its state directory besides the consensus plugin's data: who it is in
# which swarm, and its keys. Written atomically (node-state.bin, mode 0600). Evolve by Cap'n
# Proto's rules only: an upgraded kernel reads what an older one wrote.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("swarm::store::schema");

using Common = import "/common.capnp";

struct NodeState {
  nodeId @0 :Text;
  clusterId @1 :Text;
  role @2 :Common.NodeRole;
  listenAddr @3 :Text;
  advertiseAddr @4 :Text;
  raftMemberId @5 :UInt64;
  # 0 on a worker.
  certChain @6 :Data;
  # PEM: this node's certificate, then its issuer's when that is not a root.
  rootCerts @7 :Data;
  # PEM: the roots it trusts.
  tlsKey :union {
    clear @8 :Data;
    sealed @9 :Data;
    # Autolock: sealed under the cluster's unlock key (keys.h).
  }
  dataKey :union {
    clear @10 :Data;
    sealed @11 :Data;
  }
  # The 32-byte key the consensus plugin seals its log with.
  managers @12 :List(Text);
  # The managers' addresses a worker last heard of (it heartbeats to them after a restart).
}
