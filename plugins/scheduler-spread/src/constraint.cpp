#include "constraint.h"

#include "intern.h"

#include <arpa/inet.h>

#include <cstring>

namespace swarm::spread {
namespace {

constexpr std::string_view kNodeLabelPrefix = "node.labels.";
constexpr std::string_view kEngineLabelPrefix = "engine.labels.";

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && isSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && isSpace(s.back())) s.remove_suffix(1);
  return s;
}

bool isAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool isDigit(char c) { return c >= '0' && c <= '9'; }

// Swarm's key pattern: ^(?i)[a-z_][a-z0-9\-_.]+$
bool validKey(std::string_view key) {
  if (key.size() < 2) return false;
  if (!isAlpha(key[0]) && key[0] != '_') return false;
  for (char c : key.substr(1)) {
    if (!isAlpha(c) && !isDigit(c) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

// Swarm's value pattern: ^(?i)[a-z0-9:\-_\s\.\*\(\)\?\+\[\]\\\^\$\|\/]+$ (no operators, no '=').
bool validValue(std::string_view value) {
  if (value.empty()) return false;
  for (char c : value) {
    if (isAlpha(c) || isDigit(c) || isSpace(c)) continue;
    if (std::string_view(":-_.*()?+[]\\^$|/").find(c) == std::string_view::npos) return false;
  }
  return true;
}

bool hasPrefixFolded(std::string_view s, std::string_view prefix) {
  return s.size() > prefix.size() && equalsFolded(s.substr(0, prefix.size()), prefix);
}

kj::String quoted(std::string_view s) { return kj::str("\"", kj::ArrayPtr<const char>(s.data(), s.size()), "\""); }

}  // namespace

const char kKnownConstraintKeys[] =
    "node.id, node.hostname, node.ip, node.role, node.platform.os, node.platform.arch, "
    "node.labels.<key>, engine.labels.<key>";

kj::Maybe<kj::String> parseConstraint(std::string_view text, Constraint& out) {
  // "==" is looked for first, as Swarm does, so "a!=b==c" splits at "==".
  size_t op = text.find("==");
  bool equal = true;
  if (op == std::string_view::npos) {
    op = text.find("!=");
    equal = false;
  }
  if (op == std::string_view::npos) {
    return kj::str("expected <key>==<value> or <key>!=<value>");
  }
  std::string_view key = trim(text.substr(0, op));
  std::string_view value = trim(text.substr(op + 2));
  if (!validKey(key)) {
    return kj::str("the key ", quoted(key),
                   " is not a valid key (letters, digits, '-', '_' and '.'; e.g. node.labels.zone)");
  }
  if (!validValue(value)) {
    return kj::str("the value ", quoted(value),
                   " is not a valid value (letters, digits, spaces and :-_.*()?+[]\\^$|/ only, not "
                   "empty)");
  }
  out.text = text;
  out.key = key;
  out.value = value;
  out.equal = equal;
  out.labelKey = {};
  using A = Constraint::Attribute;
  if (equalsFolded(key, "node.id")) {
    out.attribute = A::nodeId;
  } else if (equalsFolded(key, "node.hostname")) {
    out.attribute = A::hostname;
  } else if (equalsFolded(key, "node.ip")) {
    out.attribute = A::ip;
  } else if (equalsFolded(key, "node.role")) {
    out.attribute = A::role;
  } else if (equalsFolded(key, "node.platform.os")) {
    out.attribute = A::os;
  } else if (equalsFolded(key, "node.platform.arch")) {
    out.attribute = A::arch;
  } else if (hasPrefixFolded(key, kNodeLabelPrefix)) {
    out.attribute = A::nodeLabel;
    out.labelKey = key.substr(kNodeLabelPrefix.size());
  } else if (hasPrefixFolded(key, kEngineLabelPrefix)) {
    out.attribute = A::engineLabel;
    out.labelKey = key.substr(kEngineLabelPrefix.size());
  } else {
    out.attribute = A::unknown;
  }
  return nullptr;
}

bool parseIp(std::string_view text, IpAddress& out) {
  char buf[64];
  if (text.empty() || text.size() >= sizeof(buf)) return false;
  memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  out = IpAddress{};
  in_addr v4;
  if (inet_pton(AF_INET, buf, &v4) == 1) {
    out.bytes[10] = 0xff;
    out.bytes[11] = 0xff;
    memcpy(out.bytes.data() + 12, &v4, 4);
    out.v4 = true;
    return true;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, buf, &v6) == 1) {
    memcpy(out.bytes.data(), &v6, 16);
    // Go's net.IP treats an IPv4-mapped IPv6 address as IPv4.
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    out.v4 = memcmp(out.bytes.data(), kMapped, 12) == 0;
    return true;
  }
  return false;
}

bool parseNodeAddress(std::string_view text, IpAddress& out) {
  if (parseIp(text, out)) return true;
  if (!text.empty() && text.front() == '[') {  // [v6]:port
    size_t close = text.find(']');
    return close != std::string_view::npos && parseIp(text.substr(1, close - 1), out);
  }
  size_t colon = text.rfind(':');  // v4:port (a bare v6 address was handled above)
  return colon != std::string_view::npos && text.find(':') == colon &&
         parseIp(text.substr(0, colon), out);
}

bool IpMatcher::matches(const IpAddress& ip) const {
  if (!valid) return false;
  if (single) return ip.bytes == address.bytes;
  if (ip.v4 != address.v4) return false;
  unsigned full = prefixBits / 8, rest = prefixBits % 8;
  if (memcmp(ip.bytes.data(), address.bytes.data(), full) != 0) return false;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (ip.bytes[full] & mask) == (address.bytes[full] & mask);
}

IpMatcher parseIpMatcher(std::string_view text) {
  IpMatcher m;
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) {
    m.valid = parseIp(text, m.address);
    m.single = true;
    m.prefixBits = 128;
    return m;
  }
  std::string_view bits = text.substr(slash + 1);
  if (bits.empty() || bits.size() > 3) return m;
  unsigned prefix = 0;
  for (char c : bits) {
    if (!isDigit(c)) return m;
    prefix = prefix * 10 + static_cast<unsigned>(c - '0');
  }
  if (!parseIp(text.substr(0, slash), m.address)) return m;
  // The family is the one written: "10.0.0.0/8" is IPv4 even though it is stored mapped.
  std::string_view literal = text.substr(0, slash);
  m.address.v4 = literal.find(':') == std::string_view::npos;
  unsigned width = m.address.v4 ? 32 : 128;
  if (prefix > width) return m;
  m.prefixBits = prefix + (128 - width);
  m.valid = true;
  return m;
}

kj::Maybe<kj::String> parseSpread(std::string_view text, SpreadDescriptor& out) {
  if (hasPrefixFolded(text, kNodeLabelPrefix)) {
    out.source = SpreadDescriptor::Source::nodeLabels;
    out.key = text.substr(kNodeLabelPrefix.size());
    return nullptr;
  }
  if (hasPrefixFolded(text, kEngineLabelPrefix)) {
    out.source = SpreadDescriptor::Source::engineLabels;
    out.key = text.substr(kEngineLabelPrefix.size());
    return nullptr;
  }
  return kj::str("spread over node.labels.<key> or engine.labels.<key>");
}

}  // namespace swarm::spread
