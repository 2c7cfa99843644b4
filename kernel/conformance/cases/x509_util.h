// OpenSSL 3 helpers for the pki and transport cases: read what a plugin returns, and mint the
// test CAs, node certificates and CSRs the cases hand to plugins. Independent of every plugin.
#pragma once

#include "conformance.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace swarm::conformance::x509 {

template <typename T, void (*F)(T*)>
struct Free {
  void operator()(T* p) const { F(p); }
};
using X509Ptr = std::unique_ptr<X509, Free<X509, X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY, EVP_PKEY_free>>;
using ReqPtr = std::unique_ptr<X509_REQ, Free<X509_REQ, X509_REQ_free>>;
using BioPtr = std::unique_ptr<BIO, Free<BIO, BIO_free_all>>;
using NamePtr = std::unique_ptr<X509_NAME, Free<X509_NAME, X509_NAME_free>>;

constexpr int64_t NS = 1000000000;
constexpr int64_t HOUR = 3600;
constexpr int64_t DAY = 24 * HOUR;

inline int64_t wallSeconds() { return static_cast<int64_t>(time(nullptr)); }

inline std::string str(capnp::Data::Reader data) {
  return std::string(reinterpret_cast<const char*>(data.begin()), data.size());
}
inline capnp::Data::Reader data(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

inline std::string opensslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "no OpenSSL error";
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  return buf;
}

inline std::string drain(BIO* bio) {
  char* p = nullptr;
  long n = BIO_get_mem_data(bio, &p);
  return std::string(p, static_cast<size_t>(n));
}

// ---- reading ----------------------------------------------------------------------------------

inline std::vector<X509Ptr> certsFromPem(const std::string& pem) {
  std::vector<X509Ptr> certs;
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) certs.emplace_back(cert);
  ERR_clear_error();
  return certs;
}

inline X509Ptr certFromPem(const std::string& pem, kj::StringPtr what) {
  auto certs = certsFromPem(pem);
  if (certs.empty()) fail(kj::str(what, " is not a PEM certificate: '", pem.substr(0, 80).c_str(), "'"));
  return std::move(certs.front());
}

inline PkeyPtr keyFromPem(const std::string& pem, kj::StringPtr what) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) fail(kj::str(what, " is not a PEM private key: ", opensslError().c_str()));
  return PkeyPtr(key);
}

inline ReqPtr csrFromPem(const std::string& pem, kj::StringPtr what) {
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  X509_REQ* req = PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr);
  if (req == nullptr) fail(kj::str(what, " is not a PEM certificate request: ", opensslError().c_str()));
  return ReqPtr(req);
}

// Every value of `nid` in the name, in order (a forged subject could carry two CNs).
inline std::vector<std::string> nameEntries(const X509_NAME* name, int nid) {
  std::vector<std::string> out;
  for (int i = X509_NAME_get_index_by_NID(name, nid, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(name, nid, i)) {
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    if (n < 0) continue;
    out.emplace_back(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
    OPENSSL_free(utf8);
  }
  return out;
}

inline std::string nameText(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  return drain(bio.get());
}

inline int64_t seconds(const ASN1_TIME* t) {
  struct tm tm = {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) fail(kj::str("unreadable certificate time"));
  return static_cast<int64_t>(timegm(&tm));
}

inline std::vector<std::string> dnsNames(X509* cert) {
  std::vector<std::string> out;
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS) {
      auto* s = name->d.dNSName;
      out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                       static_cast<size_t>(ASN1_STRING_length(s)));
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

inline std::string groupName(EVP_PKEY* key) {
  char name[64] = "";
  size_t len = 0;
  if (EVP_PKEY_get_group_name(key, name, sizeof(name), &len) != 1) return "(not an EC key)";
  return name;
}

inline bool isCa(X509* cert) { return (X509_get_extension_flags(cert) & EXFLAG_CA) != 0; }

// SHA-256 of `bytes` as a base-36 number (0-9a-z), zero-padded to 50 characters: the root digest
// in join tokens (SwarmKit: digest of the root CA's PEM, big.Int.Text(36)).
inline std::string base36Sha256(const std::string& bytes) {
  unsigned char sum[32];
  unsigned len = 0;
  EVP_Digest(bytes.data(), bytes.size(), sum, &len, EVP_sha256(), nullptr);
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

// Verifies a PEM chain (leaf first) against trusted root PEMs at time `when` (seconds). Returns ""
// or OpenSSL's reason.
inline std::string verifyChain(const std::string& chainPem, const std::vector<std::string>& roots,
                               int64_t when) {
  auto chain = certsFromPem(chainPem);
  if (chain.empty()) return "no certificate in the chain";
  X509_STORE* store = X509_STORE_new();
  for (auto& pem : roots) {
    for (auto& root : certsFromPem(pem)) X509_STORE_add_cert(store, root.get());
  }
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  for (size_t i = 1; i < chain.size(); ++i) sk_X509_push(untrusted, chain[i].get());
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, chain[0].get(), untrusted);
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), static_cast<time_t>(when));
  std::string result;
  if (X509_verify_cert(ctx) != 1) result = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
  X509_STORE_CTX_free(ctx);
  sk_X509_free(untrusted);
  X509_STORE_free(store);
  ERR_clear_error();
  return result;
}

// ---- minting ----------------------------------------------------------------------------------

inline PkeyPtr newP256Key() { return PkeyPtr(EVP_EC_gen("P-256")); }

inline std::string pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  return drain(bio.get());
}

inline std::string pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  return drain(bio.get());
}

inline NamePtr makeName(const std::string& cn, const std::string& ou, const std::string& o) {
  NamePtr name(X509_NAME_new());
  auto add = [&](const char* field, const std::string& value) {
    if (value.empty()) return;
    X509_NAME_add_entry_by_txt(name.get(), field, MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0);
  };
  add("O", o);
  add("OU", ou);
  add("CN", cn);
  return name;
}

inline void addExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) fail(kj::str("test minting: bad extension ", value.c_str(), ": ", opensslError().c_str()));
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

struct Subject {
  std::string cn, ou, o;
};

// A certificate for `subject` and `publicKey`, signed by `issuer`/`issuerKey` (self-signed when
// issuer is null), valid [notBefore, notAfter] in seconds.
inline X509Ptr mintCert(const Subject& subject, EVP_PKEY* publicKey, X509* issuer, EVP_PKEY* issuerKey,
                        int64_t notBefore, int64_t notAfter, bool ca) {
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  auto name = makeName(subject.cn, subject.ou, subject.o);
  X509_set_subject_name(cert.get(), name.get());
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name.get());
  X509_set_pubkey(cert.get(), publicKey);
  ASN1_TIME_set(X509_getm_notBefore(cert.get()), static_cast<time_t>(notBefore));
  ASN1_TIME_set(X509_getm_notAfter(cert.get()), static_cast<time_t>(notAfter));
  X509* signer = issuer ? issuer : cert.get();
  addExtension(cert.get(), signer, NID_subject_key_identifier, "hash");
  if (issuer) addExtension(cert.get(), signer, NID_authority_key_identifier, "keyid");
  if (ca) {
    addExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    addExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
  } else {
    addExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    addExtension(cert.get(), signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    addExtension(cert.get(), signer, NID_ext_key_usage, "serverAuth,clientAuth");
    std::string san = "DNS:" + subject.cn;
    if (!subject.ou.empty()) san += ",DNS:" + subject.ou;
    if (subject.ou == "swarm-manager") san += ",DNS:swarm-ca";
    addExtension(cert.get(), signer, NID_subject_alt_name, san);
  }
  if (X509_sign(cert.get(), issuerKey, EVP_sha256()) <= 0) {
    fail(kj::str("test minting: signing failed: ", opensslError().c_str()));
  }
  return cert;
}

// A CSR for `key` with `subject`, optionally asking for DNS alt names (which an issuer must ignore).
inline std::string mintCsr(EVP_PKEY* key, const Subject& subject, const std::string& requestedSan = {}) {
  ReqPtr req(X509_REQ_new());
  auto name = makeName(subject.cn, subject.ou, subject.o);
  X509_REQ_set_subject_name(req.get(), name.get());
  X509_REQ_set_pubkey(req.get(), key);
  if (!requestedSan.empty()) {
    STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
    sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, requestedSan.c_str()));
    sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(nullptr, nullptr, NID_basic_constraints, "critical,CA:TRUE"));
    X509_REQ_add_extensions(req.get(), exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  }
  X509_REQ_sign(req.get(), key, EVP_sha256());
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(bio.get(), req.get());
  return drain(bio.get());
}

// A test CA and node certificates under it, as a transport's credentials need them.
struct TestCa {
  X509Ptr cert;
  PkeyPtr key;
  std::string certPem;
};

inline TestCa mintCa(const std::string& cn) {
  TestCa ca;
  ca.key = newP256Key();
  int64_t now = wallSeconds();
  ca.cert = mintCert({cn, "", ""}, ca.key.get(), nullptr, ca.key.get(), now - HOUR, now + 365 * DAY, true);
  ca.certPem = pem(ca.cert.get());
  return ca;
}

struct NodeCert {
  std::string nodeId, clusterId;
  schema::NodeRole role;
  std::string chainPem, keyPem;
};

inline NodeCert mintNode(const TestCa& ca, const std::string& nodeId, schema::NodeRole role,
                         const std::string& clusterId) {
  auto key = newP256Key();
  int64_t now = wallSeconds();
  const char* ou = role == schema::NodeRole::MANAGER ? "swarm-manager" : "swarm-worker";
  auto cert = mintCert({nodeId, ou, clusterId}, key.get(), ca.cert.get(), ca.key.get(), now - HOUR,
                       now + 30 * DAY, false);
  return {nodeId, clusterId, role, pem(cert.get()), pem(key.get())};
}

// Swarm-style IDs (25 characters of 0-9a-z) from the case's seeded generator.
inline std::string randomId(std::mt19937_64& rng) {
  static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string id;
  for (int i = 0; i < 25; ++i) id += digits[rng() % 36];
  return id;
}

}  // namespace swarm::conformance::x509
