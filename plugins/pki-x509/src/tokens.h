// Join tokens: SWMTKN-1-<root digest>-<secret>.
//
// The digest (50 base-36 characters, the SHA-256 of the root certificate's PEM bytes) lets a
// joining node pin the root before it trusts any manager; the secret (16 random bytes, 25 base-36
// characters) is what the manager checks. Worker and manager tokens differ only in their secret.
// Checks compare whole tokens of equal length with CRYPTO_memcmp, and their reasons never quote a
// secret.
#pragma once

#include <swarm/schema/common.capnp.h>

#include <kj/one-of.h>
#include <kj/string.h>

#include <string>

namespace swarm::pki {

constexpr size_t TOKEN_DIGEST_CHARS = 50;
constexpr size_t TOKEN_SECRET_CHARS = 25;

struct JoinToken {
  std::string digest;  // 50 base-36 characters
  std::string secret;  // 25 base-36 characters
};

// The token, or why it is malformed (naming the part that is wrong, never quoting the token).
kj::OneOf<JoinToken, kj::String> parseJoinToken(kj::StringPtr token);

std::string newTokenSecret();
std::string formatJoinToken(const std::string& digest, const std::string& secret);

// makeJoinTokens: an empty `current` gets a fresh secret; a set one keeps its secret under
// `digest` (re-digested after a root rotation). `field` names it in errors ("rotate.worker").
std::string makeJoinToken(kj::StringPtr current, const std::string& digest, kj::StringPtr field);

// checkJoinToken: the role whose current token `token` is, or why it is refused.
kj::OneOf<schema::NodeRole, kj::String> checkJoinToken(kj::StringPtr token,
                                                       kj::StringPtr currentWorker,
                                                       kj::StringPtr currentManager,
                                                       const std::string& rootDigest);

}  // namespace swarm::pki
