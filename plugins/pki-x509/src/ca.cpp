#include "ca.h"

#include <swarm/sdk.h>

#include <kj/debug.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/x509v3.h>

namespace swarm::pki {
namespace {

void addExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  check(ext != nullptr, OBJ_nid2sn(nid));
  check(X509_add_ext(cert, ext, -1), "X509_add_ext");
  X509_EXTENSION_free(ext);
}

void setSerial(X509* cert) {
  // 127 random bits, never zero: unique without coordination between managers (RFC 5280 4.1.2.2).
  auto bytes = randomBytes(16);
  bytes[0] &= 0x7f;
  bytes[0] |= 0x01;
  BIGNUM* bn = BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr);
  check(bn != nullptr, "BN_bin2bn");
  check(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != nullptr, "BN_to_ASN1_INTEGER");
  BN_free(bn);
}

void setTime(ASN1_TIME* field, int64_t unixSeconds) {
  check(ASN1_TIME_set(field, static_cast<time_t>(unixSeconds)) != nullptr, "ASN1_TIME_set");
}

bool acceptableRootKey(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "RSA")) return EVP_PKEY_get_bits(key) >= 2048;
  std::string what = describeKey(key);
  return what == "ECDSA P-256" || what == "ECDSA P-384" || what == "ECDSA P-521";
}

bool sha2Signature(X509* cert) {
  int md = NID_undef, pk = NID_undef;
  if (OBJ_find_sigid_algs(X509_get_signature_nid(cert), &md, &pk) != 1) return false;
  return md == NID_sha256 || md == NID_sha384 || md == NID_sha512;
}

}  // namespace

X509Ptr buildCertificate(const CertSpec& spec) {
  X509Ptr cert(X509_new());
  check(cert != nullptr, "X509_new");
  check(X509_set_version(cert.get(), X509_VERSION_3), "X509_set_version");
  setSerial(cert.get());
  check(X509_set_subject_name(cert.get(), spec.subject), "X509_set_subject_name");
  X509* issuer = spec.issuer != nullptr ? spec.issuer : cert.get();
  check(X509_set_issuer_name(
            cert.get(), spec.issuer != nullptr ? X509_get_subject_name(spec.issuer) : spec.subject),
        "X509_set_issuer_name");
  check(X509_set_pubkey(cert.get(), spec.publicKey), "X509_set_pubkey");
  setTime(X509_getm_notBefore(cert.get()), spec.notBefore);
  setTime(X509_getm_notAfter(cert.get()), spec.notAfter);

  if (spec.subjectKeyId != nullptr) {
    check(
        X509_add1_ext_i2d(cert.get(), NID_subject_key_identifier,
                          const_cast<ASN1_OCTET_STRING*>(spec.subjectKeyId), 0, X509V3_ADD_REPLACE),
        "X509_add1_ext_i2d(SKID)");
  } else {
    addExtension(cert.get(), issuer, NID_subject_key_identifier, "hash");
  }
  // The authority key ID is what lets a verifier pick the right "swarm-ca" during a rotation, when
  // the old root, the new root and the cross-signed certificate share one subject name.
  if (spec.issuer != nullptr && X509_get0_subject_key_id(spec.issuer) != nullptr) {
    addExtension(cert.get(), issuer, NID_authority_key_identifier, "keyid:always");
  }
  switch (spec.use) {
    case CertUse::rootCa:
    case CertUse::crossSignedCa:
      addExtension(cert.get(), issuer, NID_basic_constraints, "critical,CA:TRUE");
      addExtension(cert.get(), issuer, NID_key_usage,
                   "critical,keyCertSign,cRLSign,digitalSignature");
      break;
    case CertUse::node: {
      addExtension(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE");
      addExtension(cert.get(), issuer, NID_key_usage, "critical,digitalSignature,keyEncipherment");
      addExtension(cert.get(), issuer, NID_ext_key_usage, "serverAuth,clientAuth");
      std::string names;
      for (auto& name : spec.dnsNames) names += (names.empty() ? "DNS:" : ",DNS:") + name;
      if (!names.empty()) addExtension(cert.get(), issuer, NID_subject_alt_name, names);
      break;
    }
  }
  check(X509_sign(cert.get(), spec.signingKey, EVP_sha256()) > 0, "X509_sign");
  return cert;
}

NewRoot generateRoot(const std::string& commonName, int64_t validitySeconds, int64_t now) {
  if (commonName.empty())
    sdk::fail("the root CA's common name is empty; leave it unset for 'swarm-ca'");
  if (commonName.size() > 64) {
    sdk::fail(kj::str("the root CA's common name has ", commonName.size(),
                      " characters; X.509 allows 64"));
  }
  int64_t validity = validitySeconds == 0 ? ROOT_VALIDITY : validitySeconds;
  if (validity < HOUR) {
    sdk::fail(kj::str("root CA validity ", validitySeconds,
                      " s is below one hour; ask for at least 3600 s "
                      "(0 = 20 years)"));
  }
  auto key = newP256Key();
  auto name = makeName(commonName);
  auto cert = buildCertificate({name.get(),
                                key.get(),
                                nullptr,
                                key.get(),
                                now - ROOT_BACKDATE,
                                now + validity,
                                CertUse::rootCa,
                                {}});
  return {std::move(cert), std::move(key), {}};
}

void checkRootCertificate(X509* cert, kj::StringPtr what, int64_t now, int64_t minRemaining) {
  if (X509_self_signed(cert, 1) != 1) {
    ERR_clear_error();
    sdk::fail(kj::str(
        what, " (", nameText(X509_get_subject_name(cert)),
        ") is not a self-signed root: give the root CA certificate itself (issuer = subject, "
        "signed by its own key)"));
  }
  uint32_t flags = X509_get_extension_flags(cert);
  if ((flags & EXFLAG_CA) == 0) {
    sdk::fail(kj::str(
        what,
        " is not a CA certificate (it lacks basicConstraints CA:TRUE); give a CA certificate"));
  }
  if ((flags & EXFLAG_KUSAGE) != 0 && (X509_get_key_usage(cert) & KU_KEY_CERT_SIGN) == 0) {
    sdk::fail(kj::str(
        what,
        "'s key usage lacks keyCertSign, so it may not sign certificates; give a CA certificate"));
  }
  EVP_PKEY* key = X509_get0_pubkey(cert);
  if (key == nullptr || !acceptableRootKey(key)) {
    sdk::fail(
        kj::str(what, " has a ", key != nullptr ? describeKey(key) : std::string("unreadable"),
                " key; a swarm root needs RSA (2048 bits or more) or ECDSA P-256, P-384 or P-521"));
  }
  if (!sha2Signature(cert)) {
    sdk::fail(kj::str(what, " is signed with ", OBJ_nid2ln(X509_get_signature_nid(cert)),
                      "; a swarm root must be signed with SHA-256, SHA-384 or SHA-512"));
  }
  int64_t notBefore = unixTime(X509_get0_notBefore(cert));
  int64_t notAfter = unixTime(X509_get0_notAfter(cert));
  if (notAfter <= now) {
    sdk::fail(
        kj::str(what, " expired on ", isoTime(notAfter), "; give a root CA that is still valid"));
  }
  if (notBefore > now + 5 * MINUTE) {
    sdk::fail(kj::str(what, " is not valid until ", isoTime(notBefore),
                      "; check this machine's clock or give a root that is valid now"));
  }
  if (notAfter - now < minRemaining) {
    sdk::fail(kj::str(what, " expires on ", isoTime(notAfter), ", in less than ",
                      durationText(minRemaining), "; give a root CA that is valid for longer"));
  }
}

NewRoot adoptRoot(Bytes certPem, Bytes keyPem, int64_t now, int64_t minRemaining) {
  auto cert = readOneCert(certPem, "the provided root CA certificate");
  auto key = readKey(keyPem, "the provided root CA key");
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    sdk::fail(kj::str("the provided root CA key (", describeKey(key.get()),
                      ") does not match the certificate's public key; give the key that belongs to "
                      "that certificate"));
  }
  checkRootCertificate(cert.get(), "the provided root CA certificate", now, minRemaining);
  return {std::move(cert), std::move(key), {}};
}

NewRoot externalRoot(X509Ptr cert, std::vector<ExternalCa> cas, int64_t now, int64_t minRemaining) {
  if (cas.empty()) {
    sdk::fail(
        "an external root needs at least one external CA (a cfssl signer URL); add one or use a "
        "generated root");
  }
  checkRootCertificate(cert.get(), "the external root CA certificate", now, minRemaining);
  return {std::move(cert), nullptr, std::move(cas)};
}

X509Ptr crossSign(X509* next, X509* current, EVP_PKEY* currentKey) {
  int64_t notBefore = unixTime(X509_get0_notBefore(next));
  int64_t notAfter =
      std::min(unixTime(X509_get0_notAfter(next)), unixTime(X509_get0_notAfter(current)));
  // Same SKID as the new root, so node certificates' authority key ID matches both.
  return buildCertificate({X509_get_subject_name(next),
                           X509_get0_pubkey(next),
                           current,
                           currentKey,
                           notBefore,
                           notAfter,
                           CertUse::crossSignedCa,
                           {},
                           X509_get0_subject_key_id(next)});
}

ReqPtr crossSignRequest(X509* next, EVP_PKEY* nextKey) {
  ReqPtr csr(X509_REQ_new());
  check(csr != nullptr, "X509_REQ_new");
  check(X509_REQ_set_subject_name(csr.get(), X509_get_subject_name(next)),
        "X509_REQ_set_subject_name");
  check(X509_REQ_set_pubkey(csr.get(), nextKey), "X509_REQ_set_pubkey");
  check(X509_REQ_sign(csr.get(), nextKey, EVP_sha256()) > 0, "X509_REQ_sign");
  return csr;
}

void checkCrossSigned(X509* cross, X509* next, X509* current) {
  if (X509_NAME_cmp(X509_get_subject_name(cross), X509_get_subject_name(next)) != 0 ||
      EVP_PKEY_eq(X509_get0_pubkey(cross), X509_get0_pubkey(next)) != 1) {
    ERR_clear_error();
    sdk::fail(
        "the cross-signed root certificate is not for the new root (its subject or key differs); "
        "cross-sign the new root's own key");
  }
  if ((X509_get_extension_flags(cross) & EXFLAG_CA) == 0) {
    sdk::fail(
        "the cross-signed root certificate is not a CA (basicConstraints CA:TRUE); sign it with a "
        "CA profile");
  }
  if (current != nullptr && X509_verify(cross, X509_get0_pubkey(current)) != 1) {
    ERR_clear_error();
    sdk::fail(
        "the cross-signed root certificate is not signed by the previous root's key; cross-sign it "
        "with the "
        "root being replaced");
  }
}

kj::Own<Root> loadRoot(schema::RootCa::Reader in) {
  auto root = kj::refcounted<Root>();
  root->cert = readOneCert(in.getCert(), "root.cert");
  root->certPem = stringOf(in.getCert());
  root->digest = sha256Base36(in.getCert());
  if (in.getDigest().size() > 0 && in.getDigest() != root->digest.c_str()) {
    sdk::fail(
        "root.digest is not the SHA-256 of root.cert; pass the root exactly as createRoot() "
        "returned it");
  }
  if ((X509_get_extension_flags(root->cert.get()) & EXFLAG_CA) == 0) {
    sdk::fail(
        "root.cert is not a CA certificate (basicConstraints CA:TRUE); load the swarm's root CA");
  }
  if (in.getKey().size() > 0) {
    root->key = readKey(in.getKey(), "root.key");
    if (X509_check_private_key(root->cert.get(), root->key.get()) != 1) {
      ERR_clear_error();
      sdk::fail(
          "root.key does not match root.cert; load the key that belongs to the root certificate");
    }
  }
  for (auto ca : in.getExternalCas()) {
    root->externalCas.push_back(parseExternalCa(ca, root->cert.get()));
  }
  if (in.getPreviousCert().size() > 0)
    root->previous = readOneCert(in.getPreviousCert(), "root.previousCert");
  if (in.getCrossSignedCert().size() > 0) {
    root->crossSigned = readOneCert(in.getCrossSignedCert(), "root.crossSignedCert");
    checkCrossSigned(root->crossSigned.get(), root->cert.get(), root->previous.get());
    root->crossSignedPem = pem(root->crossSigned.get());
  }
  return root;
}

}  // namespace swarm::pki
