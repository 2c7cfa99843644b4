#include "mint.h"

#include <catch2/catch.hpp>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <ctime>

namespace swarm::pki::test {
namespace {

using BioPtr = std::unique_ptr<BIO, Free<BIO, BIO_free_all>>;
using ReqPtr = std::unique_ptr<X509_REQ, Free<X509_REQ, X509_REQ_free>>;

std::string drain(BIO* bio) {
  char* p = nullptr;
  long n = BIO_get_mem_data(bio, &p);
  return std::string(p, static_cast<size_t>(n));
}

BioPtr memBio(const std::string& s) {
  return BioPtr(BIO_new_mem_buf(s.data(), static_cast<int>(s.size())));
}

void must(bool ok, const char* what) {
  if (!ok) FAIL("OpenSSL: " << what << ": " << ERR_error_string(ERR_get_error(), nullptr));
}

void addExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  must(ext != nullptr, value.c_str());
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

}  // namespace

int64_t wallSeconds() { return static_cast<int64_t>(time(nullptr)); }

PkeyPtr newKey(KeyType type) {
  EVP_PKEY* key = nullptr;
  switch (type) {
    case KeyType::p256:
      key = EVP_EC_gen("P-256");
      break;
    case KeyType::p384:
      key = EVP_EC_gen("P-384");
      break;
    case KeyType::rsa2048:
      key = EVP_RSA_gen(2048);
      break;
    case KeyType::rsa1024:
      key = EVP_RSA_gen(1024);
      break;
    case KeyType::ed25519:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
      break;
  }
  must(key != nullptr, "key generation");
  return PkeyPtr(key);
}

X509Ptr mintCert(const CertSpec& spec, EVP_PKEY* subjectKey, X509* issuer, EVP_PKEY* issuerKey) {
  int64_t now = wallSeconds();
  X509Ptr cert(X509_new());
  X509_set_version(cert.get(), X509_VERSION_3);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;
  serial[0] |= 1;
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_NAME* name = X509_NAME_new();
  auto add = [&](const char* field, const std::string& value) {
    if (!value.empty()) {
      X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0);
    }
  };
  add("O", spec.o);
  add("OU", spec.ou);
  add("CN", spec.cn);
  X509_set_subject_name(cert.get(), name);
  X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name);
  X509_NAME_free(name);
  X509_set_pubkey(cert.get(), subjectKey);
  ASN1_TIME_set(X509_getm_notBefore(cert.get()),
                static_cast<time_t>(spec.notBefore != 0 ? spec.notBefore : now - HOUR));
  ASN1_TIME_set(X509_getm_notAfter(cert.get()),
                static_cast<time_t>(spec.notAfter != 0 ? spec.notAfter : now + YEAR));
  X509* signer = issuer != nullptr ? issuer : cert.get();
  addExt(cert.get(), signer, NID_subject_key_identifier, "hash");
  if (issuer != nullptr) addExt(cert.get(), signer, NID_authority_key_identifier, "keyid");
  if (spec.ca) {
    addExt(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    addExt(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
  } else {
    addExt(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    addExt(cert.get(), signer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    std::string eku;
    if (spec.serverAuth) eku += "serverAuth";
    if (spec.clientAuth) eku += eku.empty() ? "clientAuth" : ",clientAuth";
    if (!eku.empty()) addExt(cert.get(), signer, NID_ext_key_usage, eku);
  }
  std::string sans;
  for (auto& d : spec.dns) sans += (sans.empty() ? "DNS:" : ",DNS:") + d;
  for (auto& ip : spec.ips) sans += (sans.empty() ? "IP:" : ",IP:") + ip;
  if (!sans.empty()) addExt(cert.get(), signer, NID_subject_alt_name, sans);
  const EVP_MD* md = spec.md;
  if (md == nullptr && !EVP_PKEY_is_a(issuerKey, "ED25519")) md = EVP_sha256();
  must(X509_sign(cert.get(), issuerKey, md) > 0, "X509_sign");
  return cert;
}

TestCa mintCa(const std::string& cn, KeyType type, int64_t notBefore, int64_t notAfter) {
  auto key = newKey(type);
  CertSpec spec;
  spec.cn = cn;
  spec.ca = true;
  spec.notBefore = notBefore;
  spec.notAfter = notAfter != 0 ? notAfter : wallSeconds() + 10 * YEAR;
  auto cert = mintCert(spec, key.get(), nullptr, key.get());
  std::string certPem = pem(cert.get()), keyPem = pem(key.get());
  return {std::move(cert), std::move(key), certPem, keyPem};
}

TestCa mintSubCa(const std::string& cn, const TestCa& parent) {
  auto key = newKey(KeyType::p256);
  CertSpec spec;
  spec.cn = cn;
  spec.ca = true;
  spec.notAfter = wallSeconds() + 5 * YEAR;
  auto cert = mintCert(spec, key.get(), parent.cert.get(), parent.key.get());
  std::string certPem = pem(cert.get()), keyPem = pem(key.get());
  return {std::move(cert), std::move(key), certPem, keyPem};
}

std::string pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  return drain(bio.get());
}

std::string pem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  return drain(bio.get());
}

std::string encryptedPem(EVP_PKEY* key, const std::string& passphrase) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PKCS8PrivateKey(bio.get(), key, EVP_aes_256_cbc(), passphrase.data(),
                                static_cast<int>(passphrase.size()), nullptr, nullptr);
  return drain(bio.get());
}

std::string csrPem(EVP_PKEY* key, const std::string& cn, const std::string& ou,
                   const std::string& o) {
  ReqPtr req(X509_REQ_new());
  X509_NAME* name = X509_NAME_new();
  if (!o.empty())
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(o.c_str()), -1, -1, 0);
  if (!ou.empty())
    X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(ou.c_str()), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_REQ_set_subject_name(req.get(), name);
  X509_NAME_free(name);
  X509_REQ_set_pubkey(req.get(), key);
  must(X509_REQ_sign(req.get(), key, EVP_PKEY_is_a(key, "ED25519") ? nullptr : EVP_sha256()) > 0,
       "X509_REQ_sign");
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_REQ(bio.get(), req.get());
  return drain(bio.get());
}

std::string breakSignature(const std::string& text) {
  auto bio = memBio(text);
  ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!req) FAIL("not a PEM CSR");
  unsigned char* der = nullptr;
  int len = i2d_X509_REQ(req.get(), &der);
  der[len - 1] ^= 0x01;
  BioPtr out(BIO_new(BIO_s_mem()));
  PEM_write_bio(out.get(), "CERTIFICATE REQUEST", "", der, len);
  OPENSSL_free(der);
  return drain(out.get());
}

std::vector<X509Ptr> readCerts(const std::string& text) {
  std::vector<X509Ptr> out;
  auto bio = memBio(text);
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr))
    out.emplace_back(cert);
  ERR_clear_error();
  return out;
}

X509Ptr readCert(const std::string& text) {
  auto certs = readCerts(text);
  if (certs.empty()) FAIL("not a PEM certificate: '" << text.substr(0, 80) << "'");
  return std::move(certs.front());
}

PkeyPtr readKey(const std::string& text) {
  auto bio = memBio(text);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  if (key == nullptr) FAIL("not a PEM private key: '" << text.substr(0, 80) << "'");
  return PkeyPtr(key);
}

PkeyPtr csrKey(const std::string& text) {
  auto bio = memBio(text);
  ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!req) FAIL("not a PEM CSR: '" << text.substr(0, 80) << "'");
  EVP_PKEY* key = X509_REQ_get_pubkey(req.get());
  return PkeyPtr(key);
}

bool csrSignatureValid(const std::string& text) {
  auto bio = memBio(text);
  ReqPtr req(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  if (!req) return false;
  bool ok = X509_REQ_verify(req.get(), X509_REQ_get0_pubkey(req.get())) == 1;
  ERR_clear_error();
  return ok;
}

std::vector<std::string> subjectEntries(X509* cert, int nid) {
  std::vector<std::string> out;
  const X509_NAME* name = X509_get_subject_name(cert);
  for (int i = X509_NAME_get_index_by_NID(name, nid, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(name, nid, i)) {
    const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
  }
  return out;
}

std::vector<std::string> dnsNames(X509* cert) {
  std::vector<std::string> out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type == GEN_DNS) {
      out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(n->d.dNSName)),
                       static_cast<size_t>(ASN1_STRING_length(n->d.dNSName)));
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

namespace {
int64_t seconds(const ASN1_TIME* t) {
  struct tm tm = {};
  ASN1_TIME_to_tm(t, &tm);
  return static_cast<int64_t>(timegm(&tm));
}
}  // namespace

int64_t notBefore(X509* cert) { return seconds(X509_get0_notBefore(cert)); }
int64_t notAfter(X509* cert) { return seconds(X509_get0_notAfter(cert)); }
bool isCa(X509* cert) { return (X509_get_extension_flags(cert) & EXFLAG_CA) != 0; }

std::string curveOf(EVP_PKEY* key) {
  char name[64] = {};
  size_t len = 0;
  if (!EVP_PKEY_is_a(key, "EC") || EVP_PKEY_get_group_name(key, name, sizeof(name), &len) != 1)
    return {};
  return std::string(name, len);
}

std::string sha256Base36(const std::string& bytes) {
  unsigned char sum[32];
  unsigned len = 0;
  EVP_Digest(bytes.data(), bytes.size(), sum, &len, EVP_sha256(), nullptr);
  BIGNUM* n = BN_bin2bn(sum, 32, nullptr);
  std::string out;
  while (!BN_is_zero(n))
    out.insert(out.begin(), "0123456789abcdefghijklmnopqrstuvwxyz"[BN_div_word(n, 36)]);
  BN_free(n);
  return std::string(50 - out.size(), '0') + out;
}

std::string verifyChain(const std::string& chainPem, const std::vector<std::string>& rootsPem,
                        int64_t now) {
  auto chain = readCerts(chainPem);
  if (chain.empty()) return "no certificate in the chain";
  X509_STORE* store = X509_STORE_new();
  std::vector<X509Ptr> roots;
  for (auto& r : rootsPem) {
    roots.push_back(readCert(r));
    X509_STORE_add_cert(store, roots.back().get());
  }
  STACK_OF(X509)* untrusted = sk_X509_new_null();
  for (size_t i = 1; i < chain.size(); ++i) sk_X509_push(untrusted, chain[i].get());
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, chain[0].get(), untrusted);
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), static_cast<time_t>(now));
  std::string result;
  if (X509_verify_cert(ctx) != 1)
    result = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx));
  X509_STORE_CTX_free(ctx);
  sk_X509_free(untrusted);
  X509_STORE_free(store);
  ERR_clear_error();
  return result;
}

}  // namespace swarm::pki::test
