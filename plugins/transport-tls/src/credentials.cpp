#include "credentials.h"

#include <swarm/sdk.h>

#include <kj/debug.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <ctime>

namespace swarm::tls {

namespace {

// AEAD suites only. TLS 1.3's are all AEAD; for TLS 1.2, ECDHE (forward secrecy) with AES-GCM or
// ChaCha20-Poly1305, for ECDSA and RSA keys.
constexpr const char* TLS13_SUITES = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* TLS12_CIPHERS =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* GROUPS = "X25519:P-256:P-384";

struct BioFree {
  void operator()(BIO* bio) const { BIO_free_all(bio); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* ctx) const { X509_STORE_CTX_free(ctx); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * stack) const { sk_X509_free(stack); }
};
struct StoreFree {
  void operator()(X509_STORE* store) const { X509_STORE_free(store); }
};

int verifyStateIndex() {
  static int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

std::string opensslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "no OpenSSL error";
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? reason : "unknown OpenSSL error";
}

// Every value of `nid` in the name: a forged subject could carry two CNs.
std::vector<std::string> nameEntries(const X509_NAME* name, int nid) {
  std::vector<std::string> out;
  for (int i = X509_NAME_get_index_by_NID(name, nid, -1); i >= 0; i = X509_NAME_get_index_by_NID(name, nid, i)) {
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    if (n < 0) continue;
    out.emplace_back(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
    OPENSSL_free(utf8);
  }
  return out;
}

std::string nameText(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string timeText(const ASN1_TIME* t) {
  struct tm tm = {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return "(unreadable time)";
  char text[32];
  strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// The verification hook (SSL_CTX_set_cert_verify_callback): runs the normal chain check with the
// context's roots, then the swarm's rules, and records the verdict for the channel instead of
// failing the handshake. The verdict then travels inside TLS, with its reason in words, to the
// peer (channel.h); a refused peer never gets past that exchange.
int certVerify(X509_STORE_CTX* x509, void* arg) {
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(x509, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* state = ssl == nullptr ? nullptr : static_cast<VerifyState*>(SSL_get_ex_data(ssl, verifyStateIndex()));
  if (state == nullptr) return 0;  // a handshake without a VerifyState is a bug: fail it hard
  state->checked = true;
  if (state->deferred) return 1;
  auto* creds = static_cast<const CredentialSet*>(arg);
  if (X509_verify_cert(x509) != 1) {
    state->refusal = describeVerifyError(X509_STORE_CTX_get_error(x509), X509_STORE_CTX_get_current_cert(x509),
                                         X509_STORE_CTX_get_error_depth(x509));
    ERR_clear_error();
    return 1;
  }
  state->refusal = creds->checkLeaf(X509_STORE_CTX_get0_cert(x509), state->peer);
  return 1;
}

}  // namespace

CredentialInput CredentialInput::from(schema::Credentials::Reader in) {
  CredentialInput out;
  out.chainPem.assign(in.getChain().asChars().begin(), in.getChain().size());
  out.keyPem.assign(in.getKey().asChars().begin(), in.getKey().size());
  for (auto root : in.getRoots()) out.rootPems.emplace_back(root.asChars().begin(), root.size());
  out.clusterId = in.getClusterId();
  out.allowTls12 = in.getMinVersion() == schema::TlsVersion::TLS12;
  for (auto id : in.getRevokedNodeIds()) out.revokedNodeIds.emplace_back(id);
  return out;
}

std::vector<X509Ptr> certsFromPem(const std::string& pem) {
  std::vector<X509Ptr> certs;
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) certs.emplace_back(cert);
  ERR_clear_error();
  return certs;
}

std::string pemOf(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string base36Sha256(const std::string& bytes) {
  unsigned char sum[32];
  unsigned len = 0;
  KJ_ASSERT(EVP_Digest(bytes.data(), bytes.size(), sum, &len, EVP_sha256(), nullptr) == 1);
  std::vector<unsigned char> n(sum, sum + 32);
  std::string out;
  for (bool zero = false; !zero;) {
    unsigned remainder = 0;
    zero = true;
    for (auto& byte : n) {
      unsigned cur = remainder * 256 + byte;
      byte = static_cast<unsigned char>(cur / 36);
      remainder = cur % 36;
      if (byte != 0) zero = false;
    }
    out.insert(out.begin(), "0123456789abcdefghijklmnopqrstuvwxyz"[remainder]);
  }
  return std::string(out.size() < 50 ? 50 - out.size() : 0, '0') + out;
}

bool isRootDigest(kj::StringPtr text) {
  if (text.size() != 50) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'))) return false;
  }
  return true;
}

kj::StringPtr versionName(int version) {
  switch (version) {
    case TLS1_VERSION: return "TLS 1.0";
    case TLS1_1_VERSION: return "TLS 1.1";
    case TLS1_2_VERSION: return "TLS 1.2";
    case TLS1_3_VERSION: return "TLS 1.3";
    default: return "an unknown TLS version";
  }
}

std::string identityOf(X509* leaf, PeerIdentity& out) {
  const X509_NAME* subject = X509_get_subject_name(leaf);
  auto cns = nameEntries(subject, NID_commonName);
  auto ous = nameEntries(subject, NID_organizationalUnitName);
  auto os = nameEntries(subject, NID_organizationName);
  auto refuse = [subject](const char* why) {
    std::string text(1, '\'');
    text += nameText(subject);
    text += "' is not a swarm node certificate: ";
    text += why;
    return text;
  };
  if (cns.size() != 1 || cns[0].empty()) return refuse("it needs exactly one CN (the node ID)");
  if (ous.size() != 1 || (ous[0] != "swarm-manager" && ous[0] != "swarm-worker")) {
    return refuse("it needs exactly one OU, swarm-manager or swarm-worker (the role)");
  }
  if (os.size() != 1 || os[0].empty()) return refuse("it needs exactly one O (the cluster ID)");
  out.nodeId = cns[0];
  out.role = ous[0] == "swarm-manager" ? schema::NodeRole::MANAGER : schema::NodeRole::WORKER;
  out.clusterId = os[0];
  return {};
}

std::string describeVerifyError(int error, X509* at, int depth) {
  std::string which = at == nullptr ? std::string("the certificate")
                                    : (depth == 0 ? "certificate '" : "CA certificate '") +
                                          nameText(X509_get_subject_name(at)) + "'";
  switch (error) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return which + " expired at " + (at ? timeText(X509_get0_notAfter(at)) : "?");
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return which + " is not valid before " + (at ? timeText(X509_get0_notBefore(at)) : "?") +
             " (is a clock wrong?)";
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      return which + " is not signed by a root CA of this swarm (issuer '" +
             (at ? nameText(X509_get_issuer_name(at)) : "?") + "')";
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return which + " has a signature that does not verify";
    case X509_V_ERR_INVALID_PURPOSE:
      return which + " is not for TLS client and server authentication (extended key usage)";
    default:
      return which + " is not trusted: " + X509_verify_cert_error_string(error);
  }
}

kj::Own<CredentialSet> CredentialSet::make(const CredentialInput& input) {
  auto set = kj::refcounted<CredentialSet>();
  for (size_t i = 0; i < input.rootPems.size(); ++i) {
    auto certs = certsFromPem(input.rootPems[i]);
    if (certs.empty()) sdk::fail(kj::str("credentials.roots[", i, "] is not a PEM certificate"));
    for (auto& cert : certs) {
      if (X509_check_ca(cert.get()) == 0) {
        sdk::fail(kj::str("credentials.roots[", i, "] ('", nameText(X509_get_subject_name(cert.get())).c_str(),
                          "') is not a CA certificate; give the cluster's root CA"));
      }
      set->rootCerts.push_back(kj::mv(cert));
    }
    set->roots.push_back(input.rootPems[i]);
  }
  set->cluster = input.clusterId;
  set->allowTls12 = input.allowTls12;
  set->revoked = input.revokedNodeIds;

  if (input.chainPem.empty()) {
    if (!input.keyPem.empty()) sdk::fail("credentials.key is set but credentials.chain is empty; give both or neither");
  } else {
    set->chain = certsFromPem(input.chainPem);
    if (set->chain.empty()) sdk::fail("credentials.chain is not a PEM certificate chain");
    if (set->roots.empty()) {
      sdk::fail("credentials.roots is empty: a node with a certificate needs its cluster's root CA to check peers");
    }
    BioPtr bio(BIO_new_mem_buf(input.keyPem.data(), static_cast<int>(input.keyPem.size())));
    set->key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (set->key == nullptr) {
      sdk::fail(kj::str("credentials.key is not a PEM private key: ", opensslError().c_str()));
    }
    if (X509_check_private_key(set->chain[0].get(), set->key.get()) != 1) {
      ERR_clear_error();
      sdk::fail("credentials.key is not the private key of credentials.chain's first certificate");
    }
    PeerIdentity own;
    std::string why = identityOf(set->chain[0].get(), own);
    if (!why.empty()) sdk::fail(kj::str("credentials.chain: ", why.c_str()));
    if (set->cluster.empty()) {
      set->cluster = own.clusterId;
    } else if (own.clusterId != set->cluster) {
      sdk::fail(kj::str("credentials.chain is for cluster '", own.clusterId.c_str(), "' but credentials.clusterId is '",
                        set->cluster.c_str(), "'"));
    }
    set->self = kj::mv(own);
    set->server = set->newContext(true, true);
    set->client = set->newContext(false, true);

    // Our own certificate as our peers will see it.
    std::unique_ptr<STACK_OF(X509), StackFree> stack(sk_X509_new_null());
    for (auto& cert : set->chain) sk_X509_push(stack.get(), cert.get());
    PeerIdentity ignored;
    set->ownProblem = set->verifyPeerChain(stack.get(), true, ignored);
  }
  set->join = set->newContext(false, false);
  return set;
}

CtxPtr CredentialSet::newContext(bool isServer, bool withCertificate) const {
  CtxPtr ctx(SSL_CTX_new(isServer ? TLS_server_method() : TLS_client_method()));
  KJ_ASSERT(ctx != nullptr, "SSL_CTX_new failed", opensslError());
  SSL_CTX* c = ctx.get();
  KJ_ASSERT(SSL_CTX_set_min_proto_version(c, allowTls12 ? TLS1_2_VERSION : TLS1_3_VERSION) == 1);
  KJ_ASSERT(SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) == 1);
  KJ_ASSERT(SSL_CTX_set_ciphersuites(c, TLS13_SUITES) == 1, opensslError());
  KJ_ASSERT(SSL_CTX_set_cipher_list(c, TLS12_CIPHERS) == 1, opensslError());
  KJ_ASSERT(SSL_CTX_set1_groups_list(c, GROUPS) == 1, opensslError());
  // No resumption: every connection is checked in full against the credentials of the moment
  // (a revocation must not be skipped by a resumed session), and no ticket keys to manage.
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION |
                             SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_num_tickets(c, 0);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  // Send exactly the chain we were given; never one OpenSSL assembles from the trust store.
  SSL_CTX_set_mode(c, SSL_MODE_NO_AUTO_CHAIN);
  SSL_CTX_set_read_ahead(c, 1);
  if (isServer) SSL_CTX_set_session_id_context(c, reinterpret_cast<const unsigned char*>("swarm"), 5);

  if (withCertificate) {
    KJ_ASSERT(SSL_CTX_use_certificate(c, chain[0].get()) == 1, opensslError());
    for (size_t i = 1; i < chain.size(); ++i) KJ_ASSERT(SSL_CTX_add1_chain_cert(c, chain[i].get()) == 1, opensslError());
    KJ_ASSERT(SSL_CTX_use_PrivateKey(c, key.get()) == 1, opensslError());
  }
  X509_STORE* store = SSL_CTX_get_cert_store(c);
  for (auto& root : rootCerts) X509_STORE_add_cert(store, root.get());
  ERR_clear_error();  // a duplicate root is harmless
  // Ask for (listener) and check (both) the peer's certificate; a listener also accepts a client
  // without one, which it reports as anonymous (a joining node).
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_cert_verify_callback(c, certVerify, const_cast<CredentialSet*>(this));
  return ctx;
}

std::string CredentialSet::checkLeaf(X509* leaf, PeerIdentity& out) const {
  std::string why = identityOf(leaf, out);
  if (!why.empty()) return "certificate " + why;
  if (out.clusterId != cluster) {
    return "certificate of node " + out.nodeId + " is for cluster '" + out.clusterId + "', not this cluster '" +
           cluster + "'";
  }
  if (std::find(revoked.begin(), revoked.end(), out.nodeId) != revoked.end()) {
    return "node " + out.nodeId + " is revoked";
  }
  return {};
}

namespace {

std::string verifyWithStore(X509_STORE* store, STACK_OF(X509) * peerChain, bool peerIsServer) {
  if (peerChain == nullptr || sk_X509_num(peerChain) == 0) return "the peer presented no certificate";
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  KJ_ASSERT(X509_STORE_CTX_init(ctx.get(), store, sk_X509_value(peerChain, 0), peerChain) == 1);
  X509_STORE_CTX_set_purpose(ctx.get(), peerIsServer ? X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT);
  if (X509_verify_cert(ctx.get()) == 1) return {};
  std::string why = describeVerifyError(X509_STORE_CTX_get_error(ctx.get()), X509_STORE_CTX_get_current_cert(ctx.get()),
                                        X509_STORE_CTX_get_error_depth(ctx.get()));
  ERR_clear_error();
  return why;
}

}  // namespace

std::string verifyAgainstRoot(const std::string& rootPem, STACK_OF(X509) * chain, PeerIdentity& out) {
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  for (auto& root : certsFromPem(rootPem)) X509_STORE_add_cert(store.get(), root.get());
  std::string why = verifyWithStore(store.get(), chain, true);
  if (!why.empty()) return why;
  why = identityOf(sk_X509_value(chain, 0), out);
  return why.empty() ? why : "certificate " + why;
}

std::string CredentialSet::verifyPeerChain(STACK_OF(X509) * peerChain, bool peerIsServer, PeerIdentity& out) const {
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  for (auto& root : rootCerts) X509_STORE_add_cert(store.get(), root.get());
  std::string why = verifyWithStore(store.get(), peerChain, peerIsServer);
  return why.empty() ? checkLeaf(sk_X509_value(peerChain, 0), out) : why;
}

void attachVerifyState(SSL* ssl, VerifyState& state) {
  KJ_ASSERT(SSL_set_ex_data(ssl, verifyStateIndex(), &state) == 1);
}

}  // namespace swarm::tls
