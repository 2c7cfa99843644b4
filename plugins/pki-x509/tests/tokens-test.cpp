// Join tokens: format, rotation, checks, and the errors for malformed ones.
#include "harness.h"

#include <regex>

namespace swarm::pki::test {
namespace {

std::string secretOf(const std::string& token) { return token.substr(token.rfind('-') + 1); }
std::string digestPart(const std::string& token) { return token.substr(9, 50); }

TEST_CASE(
    "makeJoinTokens makes SWMTKN-1-<root digest>-<secret> tokens with fresh, distinct secrets") {
  Pki pki;
  Root root = pki.setUpRoot();
  Tokens t = pki.tokens();
  const std::regex form("^SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$");
  CHECK(std::regex_match(t.worker, form));
  CHECK(std::regex_match(t.manager, form));
  CHECK(digestPart(t.worker) == sha256Base36(root.cert));
  CHECK(digestPart(t.manager) == root.digest);
  CHECK(secretOf(t.worker) != secretOf(t.manager));
  Tokens again = pki.tokens();
  CHECK(again.worker != t.worker);
  CHECK(again.manager != t.manager);
  CHECK(pki.digestOfToken(t.worker) == root.digest);
}

TEST_CASE("rotating one join token leaves the other untouched and invalidates the old one") {
  Pki pki;
  pki.setUpRoot();
  Tokens t = pki.tokens();

  Tokens newWorker = pki.tokens("", t.manager);
  CHECK(newWorker.manager == t.manager);
  CHECK(newWorker.worker != t.worker);
  CHECK_FALSE(pki.checkToken(t.worker, newWorker).valid);
  CHECK(pki.checkToken(newWorker.worker, newWorker).role == NodeRole::WORKER);
  CHECK(pki.checkToken(t.manager, newWorker).role == NodeRole::MANAGER);

  Tokens newManager = pki.tokens(newWorker.worker, "");
  CHECK(newManager.worker == newWorker.worker);
  CHECK(newManager.manager != newWorker.manager);
  CHECK_FALSE(pki.checkToken(t.manager, newManager).valid);
  CHECK(pki.checkToken(newManager.manager, newManager).role == NodeRole::MANAGER);
  CHECK(pki.checkToken(newWorker.worker, newManager).role == NodeRole::WORKER);
}

TEST_CASE("checkJoinToken gives the role and refuses others without revealing a secret") {
  Pki pki;
  Root a = pki.setUpRoot();
  Tokens t = pki.tokens();
  auto worker = pki.checkToken(t.worker, t);
  CHECK((worker.valid && worker.role == NodeRole::WORKER));
  auto manager = pki.checkToken(t.manager, t);
  CHECK((manager.valid && manager.role == NodeRole::MANAGER));

  std::string digest(50, '7'), secret(25, 'k');
  struct Bad {
    std::string token;
    std::string says;
  };
  std::string tampered = t.worker;
  tampered.back() = tampered.back() == 'a' ? 'b' : 'a';
  std::string foreignDigest = t.manager;
  foreignDigest[12] = foreignDigest[12] == 'a' ? 'b' : 'a';
  std::vector<Bad> bad = {
      {tampered, "secret is not current"},
      {foreignDigest, "belongs to another swarm"},
      {"", "token is empty"},
      {"hello", "does not start with SWMTKN-1-"},
      {"SWMTKN-2-1-" + digest + "-" + secret, "version"},
      {"SWMTKN-1-" + digest.substr(1) + "-" + secret, "root digest part has 49 characters"},
      {"SWMTKN-1-" + digest + "-" + secret + "x", "secret part has 26 characters"},
      {"SWMTKN-1-" + digest + secret, "lacks the dash"},
      {"SWMTKN-1-" + digest + "-" + secret + "-x", "more than"},
      {"SWMTKN-1-" + digest.substr(1) + "A-" + secret, "lowercase a-z"},
  };
  for (auto& b : bad) {
    INFO("token '" << b.token << "'");
    auto verdict = pki.checkToken(b.token, t);
    CHECK_FALSE(verdict.valid);
    CHECK(mentions(verdict.reason, b.says));
    CHECK(verdict.reason.find(secretOf(t.worker)) == std::string::npos);
    CHECK(verdict.reason.find(secretOf(t.manager)) == std::string::npos);
  }

  // Another swarm's tokens are refused, even when passed as current.
  Root b = pki.generate();
  pki.load(b);
  Tokens foreign = pki.tokens();
  pki.load(a);
  CHECK_FALSE(pki.checkToken(foreign.worker, t).valid);
  CHECK(mentions(pki.checkToken(foreign.manager, foreign).reason, "belongs to another swarm"));
  CHECK_FALSE(pki.checkToken("SWMTKN-1-" + b.digest + "-" + secretOf(t.manager), t).valid);
}

TEST_CASE("rootDigestOfToken needs no root and names the malformed part") {
  Pki pki;  // a joining node: nothing loaded
  std::string digest(50, '3'), secret(25, 'z');
  CHECK(pki.digestOfToken("SWMTKN-1-" + digest + "-" + secret) == digest);
  CHECK(
      mentions(pki.error([&] { pki.digestOfToken("SWMTKN-1-" + digest + "-" + secret.substr(2)); }),
               "secret part has 23 characters"));
  CHECK(mentions(pki.error([&] { pki.digestOfToken("SWMTKN-1-" + digest + "0-" + secret); }),
                 "root digest part has 51 characters"));
  CHECK(mentions(pki.error([&] { pki.digestOfToken("swmtkn-1-" + digest + "-" + secret); }),
                 "SWMTKN-1-"));
}

TEST_CASE("makeJoinTokens refuses what it cannot keep") {
  Pki pki;
  CHECK(mentions(pki.error([&] { pki.tokens(); }), "makeJoinTokens() needs a root CA"));
  pki.setUpRoot();
  Tokens t = pki.tokens();
  CHECK(mentions(pki.error([&] { pki.tokens("not-a-token", ""); }), "rotate.worker"));
  CHECK(mentions(pki.error([&] { pki.tokens("", "SWMTKN-1-short-secret"); }), "rotate.manager"));
  CHECK(mentions(pki.error([&] { pki.tokens(t.worker, t.worker); }), "same secret"));
}

}  // namespace
}  // namespace swarm::pki::test
