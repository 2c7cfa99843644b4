// Test-side OpenSSL: mints the CAs, certificates, keys and CSRs the tests hand to the plugin
// (expired, future-dated, wrong-key, non-CA ...) and reads what the plugin returns. Written
// independently of the plugin's src/ so a bug there cannot hide itself.
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace swarm::pki::test {

template <typename T, void (*F)(T*)>
struct Free {
  void operator()(T* p) const { F(p); }
};
using X509Ptr = std::unique_ptr<X509, Free<X509, X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY, EVP_PKEY_free>>;

constexpr int64_t NS = 1000000000;
constexpr int64_t HOUR = 3600;
constexpr int64_t DAY = 24 * HOUR;
constexpr int64_t YEAR = 365 * DAY;

int64_t wallSeconds();

enum class KeyType { p256, p384, rsa2048, rsa1024, ed25519 };
PkeyPtr newKey(KeyType type);

struct CertSpec {
  std::string cn, ou, o;
  int64_t notBefore = 0, notAfter = 0;  // Unix seconds; 0 = now - 1 h / now + 1 year
  bool ca = false;
  std::vector<std::string> dns;
  std::vector<std::string> ips;
  bool serverAuth = true, clientAuth = true;  // leaves only
  const EVP_MD* md = nullptr;                 // default SHA-256 (null for Ed25519 keys)
};
// `subjectKey`'s public key certified by issuer/issuerKey (self-signed when issuer is null).
X509Ptr mintCert(const CertSpec& spec, EVP_PKEY* subjectKey, X509* issuer, EVP_PKEY* issuerKey);

struct TestCa {
  X509Ptr cert;
  PkeyPtr key;
  std::string certPem, keyPem;
};
TestCa mintCa(const std::string& cn, KeyType type = KeyType::p256, int64_t notBefore = 0,
              int64_t notAfter = 0);
// An intermediate CA under `parent`.
TestCa mintSubCa(const std::string& cn, const TestCa& parent);

std::string pem(X509* cert);
std::string pem(EVP_PKEY* key);
std::string encryptedPem(EVP_PKEY* key, const std::string& passphrase);
std::string csrPem(EVP_PKEY* key, const std::string& cn, const std::string& ou = {},
                   const std::string& o = {});

// The same CSR with the last bit of its signature flipped.
std::string breakSignature(const std::string& csrPem);

std::vector<X509Ptr> readCerts(const std::string& pem);
X509Ptr readCert(const std::string& pem);  // the first; fails the test when there is none
PkeyPtr readKey(const std::string& pem);
PkeyPtr csrKey(const std::string& csrPem);  // the CSR's public key
bool csrSignatureValid(const std::string& csrPem);

std::vector<std::string> subjectEntries(X509* cert, int nid);
std::vector<std::string> dnsNames(X509* cert);
int64_t notBefore(X509* cert);
int64_t notAfter(X509* cert);
bool isCa(X509* cert);
std::string curveOf(EVP_PKEY* key);  // "prime256v1", or "" for a non-EC key

// SHA-256 of `bytes` as a base-36 number, zero-padded to 50 characters (a token's root digest).
std::string sha256Base36(const std::string& bytes);

// "" when `chainPem` (leaf first) verifies against `rootsPem` at `now`, else OpenSSL's reason.
std::string verifyChain(const std::string& chainPem, const std::vector<std::string>& rootsPem,
                        int64_t now);

}  // namespace swarm::pki::test
