// Test CAs and node certificates minted with OpenSSL for transport-tls's tests and benchmarks:
// good ones, and the bad shapes a listener must refuse (another CA, expired, not yet valid,
// another cluster). Independent of the plugin's own code.
#pragma once

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
#include <stdexcept>
#include <string>

namespace swarm::tls::testing {

constexpr int64_t HOUR = 3600;
constexpr int64_t DAY = 24 * HOUR;

struct X509Deleter {
  void operator()(X509* p) const { X509_free(p); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using CertPtr = std::unique_ptr<X509, X509Deleter>;
using KeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

inline int64_t now() { return static_cast<int64_t>(time(nullptr)); }

inline std::string pem(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

inline std::string pem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

inline void addExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) throw std::runtime_error("test minting: bad extension " + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

struct Subject {
  std::string cn, ou, o;
};

// Signed by issuer/issuerKey, or self-signed when issuer is null; valid [notBefore, notAfter].
inline CertPtr mintCert(const Subject& subject, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuerKey, int64_t notBefore,
                        int64_t notAfter, bool ca) {
  CertPtr cert(X509_new());
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_NAME* name = X509_NAME_new();
  auto add = [&](const char* field, const std::string& value) {
    if (!value.empty()) {
      X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(value.c_str()),
                                 -1, -1, 0);
    }
  };
  add("O", subject.o);
  add("OU", subject.ou);
  add("CN", subject.cn);
  X509_set_subject_name(cert.get(), name);
  X509_set_issuer_name(cert.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509_NAME_free(name);
  X509_set_pubkey(cert.get(), key);
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
    addExtension(cert.get(), signer, NID_subject_alt_name, "DNS:" + subject.cn);
  }
  if (X509_sign(cert.get(), issuerKey, EVP_sha256()) <= 0) throw std::runtime_error("test minting: signing failed");
  return cert;
}

struct Ca {
  CertPtr cert;
  KeyPtr key;
  std::string certPem;
};

inline Ca mintCa(const std::string& cn) {
  Ca ca;
  ca.key.reset(EVP_EC_gen("P-256"));
  ca.cert = mintCert({cn, "", ""}, ca.key.get(), nullptr, ca.key.get(), now() - HOUR, now() + 365 * DAY, true);
  ca.certPem = pem(ca.cert.get());
  return ca;
}

// During a root rotation: `next`'s subject and key, signed by `current`, so that a chain through it
// reaches either root.
inline std::string crossSign(const Ca& next, const Ca& current) {
  X509_NAME* subject = X509_get_subject_name(next.cert.get());
  int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  unsigned char* cn = nullptr;
  ASN1_STRING_to_UTF8(&cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index)));
  std::string name(reinterpret_cast<char*>(cn));
  OPENSSL_free(cn);
  auto cert = mintCert({name, "", ""}, next.key.get(), current.cert.get(), current.key.get(), now() - HOUR,
                       now() + 365 * DAY, true);
  return pem(cert.get());
}

struct Node {
  std::string nodeId, ou, clusterId;
  std::string chainPem, keyPem;
  bool manager() const { return ou == "swarm-manager"; }
};

// A node certificate: `ou` is the role's OU (swarm-manager / swarm-worker); validity defaults to
// an hour ago until 30 days on.
inline Node mintNode(const Ca& ca, const std::string& nodeId, const std::string& ou, const std::string& clusterId,
                     int64_t notBefore = now() - HOUR, int64_t notAfter = now() + 30 * DAY) {
  KeyPtr key(EVP_EC_gen("P-256"));
  auto cert = mintCert({nodeId, ou, clusterId}, key.get(), ca.cert.get(), ca.key.get(), notBefore, notAfter, false);
  return {nodeId, ou, clusterId, pem(cert.get()), pem(key.get())};
}

// SHA-256 of `bytes` as a 50-character base-36 number: a join token's root digest (SwarmKit: the
// digest of the root CA's PEM).
inline std::string base36Sha256(const std::string& bytes) {
  unsigned char sum[32];
  unsigned len = 0;
  EVP_Digest(bytes.data(), bytes.size(), sum, &len, EVP_sha256(), nullptr);
  std::string out;
  std::string n(reinterpret_cast<char*>(sum), 32);
  for (bool zero = false; !zero;) {
    unsigned remainder = 0;
    zero = true;
    for (auto& c : n) {
      unsigned cur = remainder * 256 + static_cast<unsigned char>(c);
      c = static_cast<char>(cur / 36);
      remainder = cur % 36;
      if (c != 0) zero = false;
    }
    out.insert(out.begin(), "0123456789abcdefghijklmnopqrstuvwxyz"[remainder]);
  }
  return std::string(out.size() < 50 ? 50 - out.size() : 0, '0') + out;
}

// Swarm-style IDs (25 characters of 0-9a-z) from a seeded generator.
inline std::string randomId(std::mt19937_64& rng) {
  static const char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string id;
  for (int i = 0; i < 25; ++i) id += digits[rng() % 36];
  return id;
}

}  // namespace swarm::tls::testing
