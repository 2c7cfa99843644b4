#include "ossl.h"

#include <swarm/sdk.h>

#include <kj/debug.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <ctime>

namespace swarm::pki {
namespace {

BioPtr readBio(Bytes data) {
  BioPtr bio(BIO_new_mem_buf(data.begin(), static_cast<int>(data.size())));
  check(bio != nullptr, "BIO_new_mem_buf");
  return bio;
}

std::string drain(BIO* bio) {
  char* p = nullptr;
  long n = BIO_get_mem_data(bio, &p);
  return std::string(p, static_cast<size_t>(n));
}

// A PEM read that stops only because no further "-----BEGIN" follows leaves PEM_R_NO_START_LINE
// on the queue; anything else means a block was there but broken.
bool endedCleanly() {
  unsigned long code = ERR_peek_last_error();
  bool clean = code == 0 ||
               (ERR_GET_LIB(code) == ERR_LIB_PEM && ERR_GET_REASON(code) == PEM_R_NO_START_LINE);
  return clean;
}

// Refuses to prompt: an encrypted key fails to load instead of reading a passphrase from a tty.
int noPassphrase(char*, int, int, void* asked) {
  *static_cast<bool*>(asked) = true;
  return -1;
}

}  // namespace

std::string opensslError() {
  unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "no detail from OpenSSL";
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? reason : "unknown OpenSSL error";
}

void check(int ok, const char* what) {
  if (!ok) KJ_FAIL_ASSERT("OpenSSL call failed", what, opensslError());
}

std::vector<X509Ptr> readCerts(Bytes data, kj::StringPtr what) {
  if (data.size() == 0)
    sdk::fail(kj::str(what, " is empty; give a PEM certificate (-----BEGIN CERTIFICATE-----)"));
  ERR_clear_error();
  auto bio = readBio(data);
  std::vector<X509Ptr> certs;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr))
    certs.emplace_back(cert);
  if (!endedCleanly()) {
    sdk::fail(kj::str(what, " holds a malformed PEM certificate (", opensslError(),
                      "); give the certificate as written by 'openssl x509 -outform PEM'"));
  }
  ERR_clear_error();
  if (certs.empty()) {
    sdk::fail(kj::str(
        what,
        " is not a PEM certificate (no -----BEGIN CERTIFICATE----- block); give it in PEM form"));
  }
  return certs;
}

X509Ptr readOneCert(Bytes data, kj::StringPtr what) {
  auto certs = readCerts(data, what);
  if (certs.size() != 1) {
    sdk::fail(kj::str(what, " holds ", certs.size(), " certificates; give exactly one"));
  }
  return std::move(certs.front());
}

PkeyPtr readKey(Bytes data, kj::StringPtr what) {
  if (data.size() == 0) sdk::fail(kj::str(what, " is empty; give a PEM private key"));
  ERR_clear_error();
  auto bio = readBio(data);
  bool asked = false;
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio.get(), nullptr, noPassphrase, &asked);
  if (key == nullptr) {
    if (asked) {
      ERR_clear_error();
      sdk::fail(kj::str(
          what,
          " is encrypted; give it without a passphrase (openssl pkey -in key.pem -out plain.pem)"));
    }
    sdk::fail(kj::str(what, " is not a PEM private key (", opensslError(),
                      "); give the key in PEM form"));
  }
  return PkeyPtr(key);
}

ReqPtr readCsr(Bytes data, kj::StringPtr what) {
  if (data.size() == 0) sdk::fail(kj::str(what, " is empty; send the PEM CSR made by makeCsr()"));
  ERR_clear_error();
  auto bio = readBio(data);
  X509_REQ* csr = PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr);
  if (csr == nullptr) {
    sdk::fail(kj::str(what, " is not a PEM certificate request (", opensslError(),
                      "); send the -----BEGIN CERTIFICATE REQUEST----- block made by makeCsr()"));
  }
  return ReqPtr(csr);
}

std::string pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_X509(bio.get(), cert), "PEM_write_bio_X509");
  return drain(bio.get());
}

std::string pem(X509_REQ* csr) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_X509_REQ(bio.get(), csr), "PEM_write_bio_X509_REQ");
  return drain(bio.get());
}

std::string pemPrivate(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr),
        "PEM_write_bio_PrivateKey");
  return drain(bio.get());
}

X509Ptr upRef(X509* cert) {
  check(X509_up_ref(cert), "X509_up_ref");
  return X509Ptr(cert);
}

PkeyPtr newP256Key() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  check(key != nullptr, "EVP_EC_gen(P-256)");
  return PkeyPtr(key);
}

namespace {
std::string groupName(EVP_PKEY* key) {
  char name[64] = {};
  size_t len = 0;
  if (EVP_PKEY_get_group_name(key, name, sizeof(name), &len) != 1) {
    ERR_clear_error();
    return {};
  }
  return std::string(name, len);
}
}  // namespace

bool isP256(EVP_PKEY* key) { return EVP_PKEY_is_a(key, "EC") && groupName(key) == "prime256v1"; }

std::string describeKey(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "EC")) {
    std::string group = groupName(key);
    if (group == "prime256v1") return "ECDSA P-256";
    if (group == "secp384r1") return "ECDSA P-384";
    if (group == "secp521r1") return "ECDSA P-521";
    return "ECDSA " + (group.empty() ? std::string("(unknown curve)") : group);
  }
  if (EVP_PKEY_is_a(key, "RSA")) return "RSA " + std::to_string(EVP_PKEY_get_bits(key));
  const char* type = EVP_PKEY_get0_type_name(key);
  return type != nullptr ? type : "an unknown key type";
}

int64_t unixTime(const ASN1_TIME* t) {
  struct tm tm = {};
  check(ASN1_TIME_to_tm(t, &tm), "ASN1_TIME_to_tm");
  return static_cast<int64_t>(timegm(&tm));
}

std::string isoTime(int64_t unixSeconds) {
  time_t t = static_cast<time_t>(unixSeconds);
  struct tm tm = {};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int64_t wallSeconds() { return static_cast<int64_t>(time(nullptr)); }

std::string durationText(int64_t seconds) {
  if (seconds != 0 && seconds % DAY == 0)
    return std::to_string(seconds / DAY) + (seconds == DAY ? " day" : " days");
  if (seconds != 0 && seconds % HOUR == 0) return std::to_string(seconds / HOUR) + " h";
  if (seconds != 0 && seconds % MINUTE == 0) return std::to_string(seconds / MINUTE) + " min";
  return std::to_string(seconds) + " s";
}

std::vector<std::string> nameEntries(const X509_NAME* name, int nid) {
  std::vector<std::string> out;
  for (int i = X509_NAME_get_index_by_NID(name, nid, -1); i >= 0;
       i = X509_NAME_get_index_by_NID(name, nid, i)) {
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    if (n < 0) {
      ERR_clear_error();
      out.emplace_back();
      continue;
    }
    out.emplace_back(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
    OPENSSL_free(utf8);
  }
  return out;
}

std::string nameText(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
  return drain(bio.get());
}

NamePtr makeName(const std::string& cn, const std::string& ou, const std::string& o) {
  NamePtr name(X509_NAME_new());
  check(name != nullptr, "X509_NAME_new");
  auto add = [&](const char* field, const std::string& value) {
    if (value.empty()) return;
    check(X509_NAME_add_entry_by_txt(name.get(), field, MBSTRING_UTF8,
                                     reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1,
                                     0),
          "X509_NAME_add_entry_by_txt");
  };
  add("O", o);
  add("OU", ou);
  add("CN", cn);
  return name;
}

std::vector<std::string> dnsNames(X509* cert) {
  std::vector<std::string> out;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names, i);
    if (n->type != GEN_DNS) continue;
    const ASN1_IA5STRING* s = n->d.dNSName;
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
  }
  GENERAL_NAMES_free(names);
  return out;
}

std::vector<unsigned char> randomBytes(size_t n) {
  std::vector<unsigned char> out(n);
  check(RAND_bytes(out.data(), static_cast<int>(n)), "RAND_bytes");
  return out;
}

uint64_t randomU64() {
  uint64_t v = 0;
  check(RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof(v)), "RAND_bytes");
  return v;
}

std::string base36(std::vector<unsigned char> number, size_t width) {
  static constexpr char DIGITS[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string out;
  // Long division by 36, most significant byte first, until the quotient is zero.
  for (bool zero = false; !zero;) {
    unsigned remainder = 0;
    zero = true;
    for (auto& byte : number) {
      unsigned current = remainder * 256 + byte;
      byte = static_cast<unsigned char>(current / 36);
      remainder = current % 36;
      if (byte != 0) zero = false;
    }
    out.insert(out.begin(), DIGITS[remainder]);
  }
  if (out.size() < width) out.insert(0, width - out.size(), '0');
  return out;
}

std::string sha256Base36(Bytes bytes) {
  std::vector<unsigned char> sum(32);
  unsigned len = 0;
  check(EVP_Digest(bytes.begin(), bytes.size(), sum.data(), &len, EVP_sha256(), nullptr),
        "EVP_Digest");
  return base36(std::move(sum), 50);
}

}  // namespace swarm::pki
