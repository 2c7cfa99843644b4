// The placement language on its own: constraint and spread-descriptor parsing, IP matching.
#include "constraint.h"

#include <catch2/catch.hpp>

#include <string>

namespace swarm::spread {
namespace {

using A = Constraint::Attribute;

Constraint parsed(std::string_view text) {
  Constraint c;
  KJ_IF_MAYBE(error, parseConstraint(text, c)) { FAIL("refused: " << error->cStr()); }
  return c;
}

std::string refusal(std::string_view text) {
  Constraint c;
  KJ_IF_MAYBE(error, parseConstraint(text, c)) { return error->cStr(); }
  FAIL("accepted " << std::string(text));
  return {};
}

IpAddress ip(std::string_view text) {
  IpAddress a;
  REQUIRE(parseIp(text, a));
  return a;
}

TEST_CASE("scheduler-spread: constraint: parses key==value and key!=value, trimming spaces") {
  Constraint c = parsed("  node.labels.zone ==  eu-west ");
  CHECK(c.attribute == A::nodeLabel);
  CHECK(c.equal);
  CHECK(c.key == "node.labels.zone");
  CHECK(c.labelKey == "zone");
  CHECK(c.value == "eu-west");

  c = parsed("node.role!=manager");
  CHECK(c.attribute == A::role);
  CHECK_FALSE(c.equal);
  CHECK(c.value == "manager");
}

TEST_CASE("scheduler-spread: constraint: known keys and label prefixes ignore case, label names keep it") {
  CHECK(parsed("NODE.ID==x").attribute == A::nodeId);
  CHECK(parsed("Node.Hostname==x").attribute == A::hostname);
  CHECK(parsed("node.IP==10.0.0.1").attribute == A::ip);
  CHECK(parsed("node.platform.OS==linux").attribute == A::os);
  CHECK(parsed("node.platform.arch==amd64").attribute == A::arch);
  Constraint c = parsed("Node.Labels.Zone==a");
  CHECK(c.attribute == A::nodeLabel);
  CHECK(c.labelKey == "Zone");
  c = parsed("ENGINE.labels.storage==ssd");
  CHECK(c.attribute == A::engineLabel);
  CHECK(c.labelKey == "storage");
}

TEST_CASE("scheduler-spread: constraint: a well-formed key Swarm does not know parses as unknown") {
  CHECK(parsed("node.name==x").attribute == A::unknown);
  CHECK(parsed("node.labels==x").attribute == A::unknown);  // no label name after the prefix
  CHECK(parsed("engine.labels.==x").attribute == A::unknown);
  CHECK(parsed("zone==a").attribute == A::unknown);
}

TEST_CASE("scheduler-spread: constraint: malformed constraints are refused with the form expected") {
  CHECK(refusal("node.labels.zone=a") == "expected <key>==<value> or <key>!=<value>");
  CHECK(refusal("node.labels.zone") == "expected <key>==<value> or <key>!=<value>");
  CHECK_THAT(refusal("==a"), Catch::Contains("the key \"\" is not a valid key"));
  CHECK_THAT(refusal("node labels==a"), Catch::Contains("the key \"node labels\""));
  CHECK_THAT(refusal("node.id=="), Catch::Contains("the value \"\" is not a valid value"));
  // "==" splits first, so the rest of "a==b==c" is a value with '=' in it.
  CHECK_THAT(refusal("node.id==b==c"), Catch::Contains("the value \"b==c\""));
  CHECK_THAT(refusal("node.id==a,b"), Catch::Contains("the value \"a,b\""));
}

TEST_CASE("scheduler-spread: constraint: values may hold Swarm's punctuation") {
  CHECK(parsed("node.labels.path==/srv/data:1").value == "/srv/data:1");
  CHECK(parsed("node.labels.x==a b").value == "a b");
  CHECK(parsed("node.ip!=10.0.0.0/8").value == "10.0.0.0/8");
}

TEST_CASE("scheduler-spread: constraint: IP addresses and CIDR blocks") {
  IpMatcher one = parseIpMatcher("10.1.2.3");
  REQUIRE(one.valid);
  CHECK(one.matches(ip("10.1.2.3")));
  CHECK(one.matches(ip("::ffff:10.1.2.3")));  // Go's net.IP.Equal: the mapped form is the same
  CHECK_FALSE(one.matches(ip("10.1.2.4")));

  IpMatcher block = parseIpMatcher("10.1.0.0/16");
  REQUIRE(block.valid);
  CHECK(block.matches(ip("10.1.255.7")));
  CHECK_FALSE(block.matches(ip("10.2.0.1")));
  CHECK_FALSE(block.matches(ip("2001:db8::1")));

  IpMatcher odd = parseIpMatcher("192.168.1.128/25");
  CHECK(odd.matches(ip("192.168.1.200")));
  CHECK_FALSE(odd.matches(ip("192.168.1.100")));

  IpMatcher v6 = parseIpMatcher("2001:db8::/32");
  REQUIRE(v6.valid);
  CHECK(v6.matches(ip("2001:db8:ffff::1")));
  CHECK_FALSE(v6.matches(ip("2001:db9::1")));
  CHECK_FALSE(v6.matches(ip("10.0.0.1")));

  CHECK(parseIpMatcher("0.0.0.0/0").matches(ip("203.0.113.9")));
  CHECK_FALSE(parseIpMatcher("10.0.0.0/33").valid);
  CHECK_FALSE(parseIpMatcher("10.0.0/8").valid);
  CHECK_FALSE(parseIpMatcher("300.1.1.1").valid);
  CHECK_FALSE(parseIpMatcher("10.0.0.0/x").valid);
}

TEST_CASE("scheduler-spread: constraint: node addresses may carry a port") {
  IpAddress a;
  REQUIRE(parseNodeAddress("10.0.0.7:2377", a));
  CHECK(a.bytes == ip("10.0.0.7").bytes);
  REQUIRE(parseNodeAddress("[2001:db8::2]:2377", a));
  CHECK(a.bytes == ip("2001:db8::2").bytes);
  REQUIRE(parseNodeAddress("2001:db8::2", a));
  CHECK(a.bytes == ip("2001:db8::2").bytes);
  CHECK_FALSE(parseNodeAddress("", a));
  CHECK_FALSE(parseNodeAddress("node-1:2377", a));
}

TEST_CASE("scheduler-spread: constraint: spread descriptors are node.labels.<key> or engine.labels.<key>") {
  SpreadDescriptor d;
  CHECK(parseSpread("node.labels.zone", d) == nullptr);
  CHECK(d.source == SpreadDescriptor::Source::nodeLabels);
  CHECK(d.key == "zone");
  CHECK(parseSpread("Engine.Labels.Rack", d) == nullptr);
  CHECK(d.source == SpreadDescriptor::Source::engineLabels);
  CHECK(d.key == "Rack");
  for (auto bad : {"node.hostname", "node.labels.", "zone", ""}) {
    KJ_IF_MAYBE(error, parseSpread(bad, d)) {
      CHECK(std::string(error->cStr()) == "spread over node.labels.<key> or engine.labels.<key>");
    } else {
      FAIL("accepted " << bad);
    }
  }
}

}  // namespace
}  // namespace swarm::spread
