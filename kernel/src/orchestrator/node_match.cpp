#include "node_match.h"

#include <constraint.h>  // scheduler-spread's core: the constraint parser

#include <string_view>

namespace swarm::orchestrator {
namespace {

std::string_view view(capnp::Text::Reader text) { return {text.begin(), text.size()}; }

bool equalsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto fold = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (fold(a[i]) != fold(b[i])) return false;
  }
  return true;
}

std::string_view labelValue(capnp::List<schema::KeyValue>::Reader labels, std::string_view key) {
  for (auto label : labels) {
    if (view(label.getKey()) == key) return view(label.getValue());  // label keys are case-sensitive
  }
  return {};
}

bool holds(const spread::Constraint& c, schema::Node::Reader node) {
  using A = spread::Constraint::Attribute;
  std::string_view have;
  switch (c.attribute) {
    case A::nodeId: have = view(node.getId()); break;
    case A::hostname: have = view(node.getDescription().getHostname()); break;
    case A::role: have = node.getRole() == schema::NodeRole::MANAGER ? "manager" : "worker"; break;
    case A::os: have = view(node.getDescription().getPlatform().getOs()); break;
    case A::arch: have = view(node.getDescription().getPlatform().getArchitecture()); break;
    case A::nodeLabel: have = labelValue(node.getSpec().getAnnotations().getLabels(), c.labelKey); break;
    case A::engineLabel: have = labelValue(node.getDescription().getEngine().getLabels(), c.labelKey); break;
    case A::ip: {
      auto matcher = spread::parseIpMatcher(c.value);
      if (!matcher.valid) return false;  // Swarm: a malformed address never matches
      spread::IpAddress ip;
      bool within = spread::parseNodeAddress(view(node.getStatus().getAddr()), ip) && matcher.matches(ip);
      return within == c.equal;
    }
    case A::unknown: return false;
  }
  return equalsIgnoringCase(have, c.value) == c.equal;
}

}  // namespace

bool nodeMatchesConstraints(schema::Node::Reader node, capnp::List<capnp::Text>::Reader constraints) {
  for (auto text : constraints) {
    spread::Constraint parsed;
    if (spread::parseConstraint(view(text), parsed) != nullptr) return false;
    if (!holds(parsed, node)) return false;
  }
  return true;
}

}  // namespace swarm::orchestrator
