// A secure channel: a TLS connection whose two ends have checked each other and said so.
//
// Under TLS 1.3 a client's handshake completes before the server has looked at the client's
// certificate, so a refusal would only surface as an alert on some later read. Instead, each side
// checks the other's certificate during the handshake without failing it (credentials.h), and
// then, inside TLS, each sends a verdict frame, the listener first:
//
//   verdict := version:u8 (1) | status:u8 (0 accepted, 1 refused) | length:u16be | reason
//              | rootCount:u8 | { length:u32be | root PEM }*
//
// The listener's verdict carries its trusted root PEMs, exactly as given to setCredentials, when
// the dialer came without a certificate (join mode): the joiner hashes them against its token's
// digest and checks the listener's chain against the root that matches. The dialer answers with
// its own verdict (never with roots). Only when both said "accepted" does either side use the
// connection; a refused side learns the other's reason in words.
#pragma once

#include "credentials.h"
#include "tls_stream.h"

#include <kj/async-io.h>
#include <kj/timer.h>

#include <string>

namespace swarm::tls {

struct Expectation {
  enum Kind { ANY_MEMBER, MANAGER, NODE, JOIN } kind = ANY_MEMBER;
  std::string value;  // the node ID (NODE) or the root digest (JOIN)
};

struct Established {
  kj::Own<TlsStream> tls;
  kj::Maybe<PeerIdentity> peer;  // null only on a listener: a certificate-less (joining) dialer
  kj::StringPtr version;         // "TLSv1.3"
  kj::StringPtr cipher;          // "TLS_AES_128_GCM_SHA256"
};

struct ChannelLimits {
  kj::Timer& timer;
  kj::Duration handshakeTimeout;  // the TLS handshake and both verdicts
};

// Both reject with a kj::Exception whose description is the whole reason, in words:
//   FAILED        a refusal: a certificate, identity, version or protocol one side would not take;
//   DISCONNECTED  no working peer there: closed or reset mid-handshake, not TLS, or too slow.

// The dialer's side, over a connected stream. `creds` must have a certificate unless joining.
kj::Promise<Established> dialChannel(kj::Own<kj::AsyncIoStream> stream, kj::Own<CredentialSet> creds,
                                     Expectation expect, ChannelLimits limits);

// The listener's side, over an accepted stream. `creds` must have a certificate.
kj::Promise<Established> acceptChannel(kj::Own<kj::AsyncIoStream> stream, kj::Own<CredentialSet> creds,
                                       ChannelLimits limits);

}  // namespace swarm::tls
