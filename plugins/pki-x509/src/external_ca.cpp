#include "external_ca.h"

#include <swarm/sdk.h>

#include <kj/debug.h>

#include <boost/json.hpp>

#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace swarm::pki {
namespace {

namespace json = boost::json;

constexpr const char* DEFAULT_TARGET = "/api/v1/cfssl/sign";
constexpr const char* URL_FORM = "https://host[:port][/api/v1/cfssl/sign]";

bool startsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

void parseUrl(ExternalCa& ca) {
  const std::string& url = ca.url;
  if (url.empty()) sdk::fail(kj::str("an external CA has an empty URL; give ", URL_FORM));
  for (unsigned char c : url) {
    if (c <= 0x20 || c == 0x7f) {
      sdk::fail(kj::str("external CA URL '", url, "' holds a space or control character; give ",
                        URL_FORM));
    }
  }
  if (!startsWith(url, "https://")) {
    if (startsWith(url, "http://")) {
      sdk::fail(kj::str("external CA URL '", url,
                        "' is plain http; a signer must be reached over https"));
    }
    sdk::fail(kj::str("external CA URL '", url, "' is not an https:// URL; give ", URL_FORM));
  }
  std::string rest = url.substr(8);
  size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  ca.target = slash == std::string::npos ? "" : rest.substr(slash);
  if (ca.target.empty() || ca.target == "/") ca.target = DEFAULT_TARGET;
  if (authority.find('@') != std::string::npos) {
    sdk::fail(kj::str("external CA URL '", url,
                      "' carries user information; authenticate with tls-cert/tls-key"));
  }
  std::string port;
  if (startsWith(authority, "[")) {
    size_t close = authority.find(']');
    if (close == std::string::npos)
      sdk::fail(kj::str("external CA URL '", url, "' has an unclosed [IPv6] host"));
    ca.host = authority.substr(1, close - 1);
    std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after[0] != ':')
        sdk::fail(kj::str("external CA URL '", url, "' has text after its [IPv6] host"));
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.find(':');
    if (colon != std::string::npos && authority.find(':', colon + 1) != std::string::npos) {
      sdk::fail(kj::str("external CA URL '", url,
                        "' has an IPv6 host without brackets; write https://[addr]:port/"));
    }
    ca.host = authority.substr(0, colon);
    if (colon != std::string::npos) port = authority.substr(colon + 1);
  }
  if (ca.host.empty())
    sdk::fail(kj::str("external CA URL '", url, "' has no host; give ", URL_FORM));
  if (port.empty()) {
    ca.port = 443;
  } else {
    unsigned long value = 0;
    bool digits = port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos;
    if (digits) value = std::stoul(port);
    if (!digits || value == 0 || value > 65535) {
      sdk::fail(kj::str("external CA URL '", url, "' has port '", port,
                        "'; use a number from 1 to 65535"));
    }
    ca.port = static_cast<uint16_t>(value);
  }
}

std::string snippet(const std::string& body) {
  std::string out;
  for (char c : body.substr(0, 60)) out += (c >= 0x20 && c < 0x7f) ? c : '.';
  if (body.size() > 60) out += "...";
  return "'" + out + "'";
}

std::string errorMessages(const json::value& value) {
  const json::object* obj = value.if_object();
  if (obj == nullptr) return {};
  const json::value* errors = obj->if_contains("errors");
  if (errors == nullptr || !errors->is_array()) return {};
  std::string out;
  for (auto& error : errors->get_array()) {
    const json::object* e = error.if_object();
    if (e == nullptr) continue;
    const json::value* message = e->if_contains("message");
    if (message == nullptr || !message->is_string()) continue;
    if (!out.empty()) out += "; ";
    out += std::string(message->get_string().c_str());
    const json::value* code = e->if_contains("code");
    if (code != nullptr && code->is_int64())
      out += " (code " + std::to_string(code->get_int64()) + ")";
  }
  return out;
}

}  // namespace

ExternalCa parseExternalCa(schema::ExternalCa::Reader in, X509* root) {
  ExternalCa ca;
  ca.url = in.getUrl();
  parseUrl(ca);
  kj::String what = kj::str("external CA ", ca.url);
  if (in.getCaCert().size() > 0) {
    ca.caCertPem = stringOf(in.getCaCert());
    ca.caCerts = readCerts(in.getCaCert(), kj::str(what, ": caCert"));
    for (auto& cert : ca.caCerts) {
      if ((X509_get_extension_flags(cert.get()) & EXFLAG_CA) == 0) {
        sdk::fail(kj::str(what, ": caCert ", nameText(X509_get_subject_name(cert.get())),
                          " is not a CA certificate; give the CA the signer signs with"));
      }
    }
  }
  std::string tlsCert, tlsKey;
  bool tlsCa = false;
  for (auto option : in.getOptions()) {
    std::string key = option.getKey(), value = option.getValue();
    for (auto& [seen, unused] : ca.options) {
      if (seen == key) sdk::fail(kj::str(what, ": option ", key, " is given twice; keep one"));
    }
    ca.options.emplace_back(key, value);
    if (key == "tls-ca") {
      ca.tlsTrust = readCerts(bytesOf(value), kj::str(what, ": option tls-ca"));
      tlsCa = true;
    } else if (key == "tls-cert") {
      tlsCert = value;
    } else if (key == "tls-key") {
      tlsKey = value;
    } else if (key == "server-name") {
      if (value.empty())
        sdk::fail(kj::str(what, ": option server-name is empty; remove it to use the URL's host"));
      ca.serverName = value;
    } else if (key == "profile") {
      ca.profile = value;
    } else {
      sdk::fail(kj::str(what, ": unknown option '", key,
                        "'; known: tls-ca, tls-cert, tls-key, server-name, profile"));
    }
  }
  if (tlsCert.empty() != tlsKey.empty()) {
    sdk::fail(kj::str(
        what, ": options tls-cert and tls-key go together; give both for mutual TLS, or neither"));
  }
  if (!tlsCert.empty()) {
    ca.tlsClientChain = readCerts(bytesOf(tlsCert), kj::str(what, ": option tls-cert"));
    ca.tlsClientKey = readKey(bytesOf(tlsKey), kj::str(what, ": option tls-key"));
    if (X509_check_private_key(ca.tlsClientChain.front().get(), ca.tlsClientKey.get()) != 1) {
      ERR_clear_error();
      sdk::fail(
          kj::str(what, ": option tls-key is not the key of tls-cert; give the matching pair"));
    }
  }
  if (!tlsCa) {
    ca.tlsTrust.push_back(upRef(root));
    for (auto& cert : ca.caCerts) ca.tlsTrust.push_back(upRef(cert.get()));
  }
  return ca;
}

void writeExternalCa(schema::ExternalCa::Builder out, const ExternalCa& ca) {
  out.setUrl(ca.url);
  out.setCaCert(bytesOf(ca.caCertPem));
  auto options = out.initOptions(static_cast<unsigned>(ca.options.size()));
  for (unsigned i = 0; i < ca.options.size(); ++i) {
    options[i].setKey(ca.options[i].first);
    options[i].setValue(ca.options[i].second);
  }
}

std::string signRequestJson(const SignRequest& request, const std::string& defaultProfile) {
  json::object name;
  if (!request.o.empty()) name["O"] = request.o;
  if (!request.ou.empty()) name["OU"] = request.ou;
  json::array names;
  if (!name.empty()) names.push_back(std::move(name));
  json::object subject{{"CN", request.commonName}, {"names", std::move(names)}};
  json::array hosts;
  for (auto& host : request.hosts) hosts.push_back(json::string(host));
  json::object body{{"certificate_request", request.csrPem},
                    {"hosts", std::move(hosts)},
                    {"subject", std::move(subject)}};
  std::string profile = defaultProfile;
  KJ_IF_MAYBE(p, request.profile) {
    profile = *p;
  }
  if (!profile.empty()) body["profile"] = profile;
  if (request.notBefore != 0) body["not_before"] = isoTime(request.notBefore);
  if (request.notAfter != 0) body["not_after"] = isoTime(request.notAfter);
  return json::serialize(body);
}

std::vector<X509Ptr> parseSignResponse(const HttpsResponse& response) {
  boost::system::error_code ec;
  json::value value = json::parse(response.body, ec);
  if (response.status != 200) {
    std::string detail = ec ? std::string() : errorMessages(value);
    sdk::fail(kj::str("it answered HTTP ", response.status, ": ",
                      detail.empty() ? snippet(response.body) : detail));
  }
  const json::object* obj = ec ? nullptr : value.if_object();
  if (obj == nullptr) {
    sdk::fail(kj::str("it answered something that is not a cfssl JSON response (",
                      snippet(response.body),
                      "); check that the URL is a cfssl /api/v1/cfssl/sign endpoint"));
  }
  const json::value* success = obj->if_contains("success");
  if (success == nullptr || !success->is_bool()) {
    sdk::fail(kj::str("its JSON answer lacks a boolean 'success' (", snippet(response.body),
                      "); check that the URL is a cfssl /api/v1/cfssl/sign endpoint"));
  }
  if (!success->get_bool()) {
    std::string detail = errorMessages(value);
    sdk::fail(
        kj::str("it refused to sign: ", detail.empty() ? std::string("no reason given") : detail));
  }
  const json::value* result = obj->if_contains("result");
  const json::value* certificate = result != nullptr && result->is_object()
                                       ? result->get_object().if_contains("certificate")
                                       : nullptr;
  if (certificate == nullptr || !certificate->is_string() || certificate->get_string().empty()) {
    sdk::fail(
        "it answered success without result.certificate; check the signer's version and "
        "configuration");
  }
  std::string pemText(certificate->get_string().c_str(), certificate->get_string().size());
  return readCerts(bytesOf(pemText), "the certificate it answered");
}

kj::Promise<std::vector<X509Ptr>> ExternalSigner::sign(const std::vector<ExternalCa>& cas,
                                                       SignRequest request, Accept accept) {
  if (cas.empty())
    sdk::fail("no external CA is configured to sign with; add one or load a root with its key");
  return attempt(cas, 0, kj::mv(request), kj::mv(accept), {});
}

kj::Promise<std::vector<X509Ptr>> ExternalSigner::attempt(const std::vector<ExternalCa>& cas,
                                                          size_t index, SignRequest request,
                                                          Accept accept, std::string failures) {
  const ExternalCa& ca = cas[index];
  auto response = kj::evalNow([&]() {
    HttpsRequest http;
    http.host = ca.host;
    http.port = ca.port;
    http.target = ca.target;
    http.body = signRequestJson(request, ca.profile);
    for (auto& cert : ca.tlsTrust) http.trust.push_back(upRef(cert.get()));
    http.serverName = ca.serverName;
    if (ca.tlsClientKey != nullptr) {
      check(EVP_PKEY_up_ref(ca.tlsClientKey.get()), "EVP_PKEY_up_ref");
      http.clientKey = PkeyPtr(ca.tlsClientKey.get());
      for (auto& cert : ca.tlsClientChain) http.clientChain.push_back(upRef(cert.get()));
    }
    http.timeout = timeout;
    return https.post(kj::mv(http));
  });
  // Both continuations need `accept`; it lives in this heap box until the attempt settles.
  auto box = kj::heap<Accept>(kj::mv(accept));
  Accept& acceptRef = *box;
  return response
      .then([&ca, &acceptRef](kj::Own<HttpsResponse> answer) {
        auto certs = parseSignResponse(*answer);
        acceptRef(ca, certs);
        return certs;
      })
      .then(
          [](std::vector<X509Ptr> certs) -> kj::Promise<std::vector<X509Ptr>> {
            return kj::mv(certs);
          },
          [this, &cas, index, request = kj::mv(request), box = kj::mv(box),
           failures =
               kj::mv(failures)](kj::Exception&& e) mutable -> kj::Promise<std::vector<X509Ptr>> {
            failures +=
                (failures.empty() ? "" : "; ") + cas[index].url + ": " + e.getDescription().cStr();
            if (index + 1 == cas.size()) {
              sdk::fail(kj::str(
                  cas.size() == 1 ? "the external CA did not sign: " : "no external CA signed: ",
                  failures));
            }
            return attempt(cas, index + 1, kj::mv(request), kj::mv(*box), kj::mv(failures));
          });
}

}  // namespace swarm::pki
