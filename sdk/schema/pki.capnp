@0xe3ad581b51a47f76;
# PKI: the swarm's root CA, node certificates and join tokens (plugins/pki-x509).
#
# The plugin is stateless between calls apart from the root it was given with loadRoot(): the
# kernel keeps CA material in the replicated store and hands it back after a restart or a leader
# change. Node private keys are made by makeCsr() on the node itself and never leave it.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("swarm::schema");

using Common = import "common.capnp";
using Plugin = import "plugin.capnp";

struct ExternalCa {
  url @0 :Text;
  # cfssl-compatible signer, https://...
  caCert @1 :Data;
  # PEM of the CA the signer signs with (to check its answers).
  options @2 :List(Common.KeyValue);
}

struct RootCa {
  cert @0 :Data;
  # PEM.
  key @1 :Data;
  # PEM; empty when signing is external.
  digest @2 :Text;
  # SHA-256 of `cert`, as carried in join tokens.
  externalCas @3 :List(ExternalCa);
  crossSignedCert @4 :Data;
  # During a root rotation: the new root signed by the old key.
  previousCert @5 :Data;
  # During a root rotation: the old root, still trusted.
}

struct RootCaRequest {
  union {
    generate :group {
      commonName @0 :Text = "swarm-ca";
      validity @1 :Int64;
      # 0 = 20 years.
    }
    provided :group {
      cert @2 :Data;
      key @3 :Data;
    }
    external :group {
      cas @4 :List(ExternalCa);
      cert @5 :Data;
    }
  }
}

struct JoinTokens {
  worker @0 :Text;
  manager @1 :Text;
}

struct TokenCheck {
  union {
    role @0 :Common.NodeRole;
    # The token is current; join with this role.
    invalid @1 :Text;
    # Why not (malformed, wrong root digest, unknown secret), without revealing secrets.
  }
}

struct IssuedCertificate {
  chain @0 :Data;
  # PEM: leaf, then intermediates (the cross-signed root during rotation).
  notBefore @1 :Int64;
  notAfter @2 :Int64;
  renewAt @3 :Int64;
  # A random point between 50% and 80% of the validity.
}

struct CertificateCheck {
  union {
    valid @0 :Common.Identity;
    invalid @1 :Text;
  }
}

interface Pki extends(Plugin.Plugin) {
  createRoot @0 (request :RootCaRequest) -> (root :RootCa);
  # A new root CA (generated, operator-supplied, or external).
  loadRoot @1 (root :RootCa);
  # Use this root for issuing and checking from now on.
  issue @2 (csr :Data, identity :Common.Identity, validity :Int64, now :Int64)
      -> (certificate :IssuedCertificate);
  # Signs a node CSR with subject CN = identity.nodeId, OU = role, O = clusterId (the CSR's own
  # subject is ignored). validity 0 = 90 days; below 1 hour is refused.
  makeCsr @3 (identity :Common.Identity) -> (csr :Data, key :Data);
  # On the node: a fresh ECDSA P-256 key and a CSR for it.
  makeJoinTokens @4 (rotate :JoinTokens) -> (tokens :JoinTokens);
  # New tokens carrying the loaded root's digest. `rotate` holds the current tokens: an empty
  # field gets a fresh secret, a set field keeps its secret (re-digested for the loaded root).
  checkJoinToken @5 (token :Text, current :JoinTokens) -> (check :TokenCheck);
  # Constant-time comparison against the current tokens.
  rootDigestOfToken @6 (token :Text) -> (digest :Text);
  # For a joining node: the root digest to pin; fails with a clear error on a malformed token.
  verify @7 (chain :Data, now :Int64, revoked :List(Text)) -> (check :CertificateCheck);
  # Chain to the loaded root(s), dates, and not a revoked node ID.
  startRootRotation @8 (request :RootCaRequest) -> (root :RootCa);
  # A new root cross-signed by the current one; load it with loadRoot() and re-issue every node.
  renewalTime @9 (chain :Data, seed :UInt64) -> (renewAt :Int64);
}
