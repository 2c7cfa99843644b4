// The placement language, parsed the way Swarm parses it (sk:manager/constraint/constraint.go):
//
//   constraints   "key==value" or "key!=value". Keys: node.id, node.hostname, node.ip, node.role,
//                 node.platform.os, node.platform.arch, node.labels.<k>, engine.labels.<k>. The
//                 known keys and the two label prefixes ignore case; the label name <k> does not.
//                 Values compare ignoring case; a missing attribute is "". A well-formed key that
//                 is none of these never matches (neither == nor !=), as in Swarm.
//   node.ip       the value is one address (10.0.0.7, 2001:db8::2) or a CIDR (10.0.0.0/24); a
//                 malformed one never matches. IPv4 and IPv6 are separate families, as in Go's net.
//   preferences   spread descriptors node.labels.<k> or engine.labels.<k>. Swarm skips any other
//                 descriptor silently; this scheduler refuses it with a reason instead.
//
// Everything here returns views into the text it was given.
#pragma once

#include <kj/common.h>
#include <kj/string.h>

#include <array>
#include <cstdint>
#include <string_view>

namespace swarm::spread {

struct Constraint {
  enum class Attribute : uint8_t {
    nodeId,
    hostname,
    ip,
    role,
    os,
    arch,
    nodeLabel,
    engineLabel,
    unknown,  // well-formed but not a key Swarm knows: never matches
  };
  std::string_view text;      // as written
  std::string_view key;       // trimmed
  std::string_view labelKey;  // nodeLabel / engineLabel: the part after the prefix
  std::string_view value;     // trimmed
  bool equal = true;          // == (true) or != (false)
  Attribute attribute = Attribute::unknown;
};

// Parses one constraint. On bad syntax returns why, naming the form expected (the caller adds
// the constraint's text).
kj::Maybe<kj::String> parseConstraint(std::string_view text, Constraint& out);

// The keys a constraint may use, for messages.
extern const char kKnownConstraintKeys[];

// An IP address as 16 bytes; IPv4 is stored IPv4-mapped (::ffff:a.b.c.d) and flagged.
struct IpAddress {
  std::array<uint8_t, 16> bytes{};
  bool v4 = false;
};

// A literal address ("10.0.0.1", "2001:db8::1").
bool parseIp(std::string_view text, IpAddress& out);
// A node's reported address, which may carry a port ("10.0.0.1:2377", "[2001:db8::1]:2377").
bool parseNodeAddress(std::string_view text, IpAddress& out);

// A node.ip constraint value: one address or a CIDR block.
struct IpMatcher {
  IpAddress address;
  unsigned prefixBits = 0;  // of the 16-byte form; 128 for a single address
  bool valid = false;
  bool single = false;

  bool matches(const IpAddress& ip) const;
};
IpMatcher parseIpMatcher(std::string_view text);

struct SpreadDescriptor {
  enum class Source : uint8_t { nodeLabels, engineLabels };
  Source source = Source::nodeLabels;
  std::string_view key;  // the label name, case-sensitive
};

// Parses a spread descriptor; on anything but node.labels.<k> / engine.labels.<k> returns why.
kj::Maybe<kj::String> parseSpread(std::string_view text, SpreadDescriptor& out);

}  // namespace swarm::spread
