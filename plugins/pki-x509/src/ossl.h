// Small OpenSSL 3 helpers shared by the pki-x509 sources: owning pointers, PEM in and out, times,
// subject names, digests and base 36. Bad input is refused with sdk::fail (one line saying what
// is wrong and what to do); OpenSSL's own reason is appended where it helps.
#pragma once

#include <kj/array.h>
#include <kj/common.h>
#include <kj/string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace swarm::pki {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using ReqPtr = std::unique_ptr<X509_REQ, Deleter<X509_REQ, X509_REQ_free>>;
using NamePtr = std::unique_ptr<X509_NAME, Deleter<X509_NAME, X509_NAME_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

using Bytes = kj::ArrayPtr<const kj::byte>;

inline Bytes bytesOf(const std::string& s) {
  return Bytes(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}
inline std::string stringOf(Bytes b) {
  return std::string(reinterpret_cast<const char*>(b.begin()), b.size());
}

constexpr int64_t NS = 1000000000;
constexpr int64_t MINUTE = 60;
constexpr int64_t HOUR = 3600;
constexpr int64_t DAY = 24 * HOUR;

// The reason of the most recent OpenSSL error ("bad decrypt"), clearing the queue.
std::string opensslError();

// Asserts an OpenSSL call that can only fail on our own bug or memory exhaustion.
void check(int ok, const char* what);

// Every certificate in `pem`, in order. Refuses malformed PEM blocks and text without any
// certificate; `what` names the input in the error ("root.cert").
std::vector<X509Ptr> readCerts(Bytes pem, kj::StringPtr what);
// Exactly one certificate.
X509Ptr readOneCert(Bytes pem, kj::StringPtr what);
// An unencrypted private key (PKCS#8 or the traditional forms); an encrypted key is refused
// rather than prompting for a passphrase.
PkeyPtr readKey(Bytes pem, kj::StringPtr what);
ReqPtr readCsr(Bytes pem, kj::StringPtr what);

std::string pem(X509* cert);
std::string pem(X509_REQ* csr);
std::string pemPrivate(EVP_PKEY* key);  // PKCS#8

X509Ptr upRef(X509* cert);
PkeyPtr newP256Key();
bool isP256(EVP_PKEY* key);
// "ECDSA P-256", "RSA 2048", "ED25519": for error messages.
std::string describeKey(EVP_PKEY* key);

int64_t unixTime(const ASN1_TIME* t);
std::string isoTime(int64_t unixSeconds);  // 2026-11-25T10:00:00Z
int64_t wallSeconds();
std::string durationText(int64_t seconds);  // "90 days", "2 h", "59 min", "30 s"

// The values of every `nid` entry in `name`, as UTF-8.
std::vector<std::string> nameEntries(const X509_NAME* name, int nid);
std::string nameText(const X509_NAME* name);  // "CN=a, OU=b, O=c"
// A subject with the non-empty ones of O, OU, CN (in that order, most significant first).
NamePtr makeName(const std::string& cn, const std::string& ou = {}, const std::string& o = {});

std::vector<std::string> dnsNames(X509* cert);

// Cryptographically random bytes and numbers.
std::vector<unsigned char> randomBytes(size_t n);
uint64_t randomU64();

// Big-endian bytes as a base-36 number (0-9a-z), left-padded with '0' to `width` characters.
std::string base36(std::vector<unsigned char> number, size_t width);
// The SHA-256 of `bytes` in base 36, 50 characters: a join token's root digest.
std::string sha256Base36(Bytes bytes);

}  // namespace swarm::pki
