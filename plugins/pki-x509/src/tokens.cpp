#include "tokens.h"

#include "ossl.h"

#include <swarm/sdk.h>

#include <openssl/crypto.h>

namespace swarm::pki {
namespace {

constexpr kj::StringPtr PREFIX = "SWMTKN-1-"_kj;
constexpr kj::StringPtr WHAT_TO_DO =
    "; copy the whole token printed by 'docker swarm join-token worker' (or manager)"_kj;

bool isBase36(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'); }

kj::Maybe<kj::String> partProblem(kj::StringPtr part, size_t chars, kj::StringPtr name) {
  if (part.size() != chars) {
    return kj::str("malformed join token: its ", name, " part has ", part.size(),
                   " characters, expected ", chars, WHAT_TO_DO);
  }
  for (char c : part) {
    if (!isBase36(c)) {
      return kj::str("malformed join token: its ", name,
                     " part holds a character other than 0-9 and lowercase a-z", WHAT_TO_DO);
    }
  }
  return nullptr;
}

// Equal-length, constant-time comparison of two whole tokens; an empty `current` matches nothing.
bool sameToken(kj::StringPtr presented, kj::StringPtr current) {
  return current.size() == presented.size() && current.size() > 0 &&
         CRYPTO_memcmp(presented.begin(), current.begin(), presented.size()) == 0;
}

}  // namespace

kj::OneOf<JoinToken, kj::String> parseJoinToken(kj::StringPtr token) {
  if (token.size() == 0) return kj::str("the join token is empty", WHAT_TO_DO);
  if (!token.startsWith("SWMTKN-")) {
    return kj::str("malformed join token: it does not start with SWMTKN-1-", WHAT_TO_DO);
  }
  if (!token.startsWith(PREFIX)) {
    return kj::str(
        "unsupported join token version: only SWMTKN-1- tokens are understood (not FIPS SWMTKN-2-)",
        WHAT_TO_DO);
  }
  kj::StringPtr rest = token.slice(PREFIX.size());
  KJ_IF_MAYBE(dash, rest.findFirst('-')) {
    kj::String digest = kj::heapString(rest.slice(0, *dash));
    kj::StringPtr secret = rest.slice(*dash + 1);
    if (secret.findFirst('-') != nullptr) {
      return kj::str("malformed join token: it has more than SWMTKN-1-<digest>-<secret>",
                     WHAT_TO_DO);
    }
    KJ_IF_MAYBE(problem, partProblem(digest, TOKEN_DIGEST_CHARS, "root digest")) {
      return kj::mv(*problem);
    }
    KJ_IF_MAYBE(problem, partProblem(secret, TOKEN_SECRET_CHARS, "secret")) {
      return kj::mv(*problem);
    }
    return JoinToken{std::string(digest.cStr()), std::string(secret.cStr())};
  }
  return kj::str("malformed join token: it lacks the dash between the root digest and the secret",
                 WHAT_TO_DO);
}

std::string newTokenSecret() { return base36(randomBytes(16), TOKEN_SECRET_CHARS); }

std::string formatJoinToken(const std::string& digest, const std::string& secret) {
  return std::string(PREFIX.cStr()) + digest + "-" + secret;
}

std::string makeJoinToken(kj::StringPtr current, const std::string& digest, kj::StringPtr field) {
  if (current.size() == 0) return formatJoinToken(digest, newTokenSecret());
  KJ_SWITCH_ONEOF(parseJoinToken(current)) {
    KJ_CASE_ONEOF(token, JoinToken) { return formatJoinToken(digest, token.secret); }
    KJ_CASE_ONEOF(problem, kj::String) {
      sdk::fail(kj::str(field, ": ", problem, "; or leave ", field, " empty for a fresh secret"));
    }
  }
  KJ_UNREACHABLE;
}

kj::OneOf<schema::NodeRole, kj::String> checkJoinToken(kj::StringPtr token,
                                                       kj::StringPtr currentWorker,
                                                       kj::StringPtr currentManager,
                                                       const std::string& rootDigest) {
  JoinToken parsed;
  KJ_SWITCH_ONEOF(parseJoinToken(token)) {
    KJ_CASE_ONEOF(t, JoinToken) { parsed = kj::mv(t); }
    KJ_CASE_ONEOF(problem, kj::String) { return kj::mv(problem); }
  }
  if (rootDigest.size() != TOKEN_DIGEST_CHARS ||
      CRYPTO_memcmp(parsed.digest.data(), rootDigest.data(), TOKEN_DIGEST_CHARS) != 0) {
    return kj::str(
        "the join token belongs to another swarm: its root CA digest is not this swarm's; "
        "get a token from this swarm's manager with 'docker swarm join-token'");
  }
  // Both comparisons always run, so the time taken does not tell which role matched.
  bool manager = sameToken(token, currentManager);
  bool worker = sameToken(token, currentWorker);
  if (manager) return schema::NodeRole::MANAGER;
  if (worker) return schema::NodeRole::WORKER;
  return kj::str(
      "a valid join token is necessary to join this swarm: this token's secret is not current "
      "(it may have been rotated); get the current one with 'docker swarm join-token'");
}

}  // namespace swarm::pki
