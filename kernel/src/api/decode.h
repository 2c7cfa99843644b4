// Docker Engine API request bodies -> store objects, validated as the engine and SwarmKit do.
//
// As Go's encoding/json: unknown fields are ignored, names match case-insensitively (an exact
// match wins), and null leaves a field as if it were absent. Unlike a silent default, a value of
// the wrong type, an out-of-range number or an unknown enum string is always refused: every
// decoder throws BadRequest (errors.h) naming the JSON path, e.g.
//   Availability: "sleep" is not one of active, pause, drain
#pragma once

#include "errors.h"

#include <swarm/schema/common.capnp.h>
#include <swarm/store/store.capnp.h>

#include <boost/json/value.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace swarm::api {

// Size limits of SwarmKit (swarmkit.md 1.4).
constexpr size_t kMaxSecretBytes = 500 * 1024 - 1;
constexpr size_t kMaxConfigBytes = 1000 * 1024 - 1;
constexpr int64_t kMinNodeCertExpiry = 3600LL * 1'000'000'000;  // one hour, in nanoseconds

// POST /nodes/{id}/update: the whole NodeSpec {Name, Labels, Role, Availability} replaces the
// node's spec (membership is set to accepted). Role and Availability are required, as in Docker.
void decodeNodeSpec(const boost::json::value& body, schema::NodeSpec::Builder spec);

// POST /secrets/create: Name (swarmkit.md 1.4 rules), Labels, Data (base64, 1 B .. < 500 KiB
// unless an external Driver is named), Driver, Templating.
// On update (POST /secrets/{id}/update) Data may be left out: clients cannot read a secret's data
// back, so they send the spec without it.
enum class SpecFor { create, update };
void decodeSecretSpec(const boost::json::value& body, schema::SecretSpec::Builder spec,
                      SpecFor use = SpecFor::create);

// POST /configs/create: as secrets, with Data 1 B .. < 1000 KiB and no Driver.
void decodeConfigSpec(const boost::json::value& body, schema::ConfigSpec::Builder spec,
                      SpecFor use = SpecFor::create);

// The CAConfig fields of a swarm spec that ClusterSpec has no place for: they ask for a root
// rotation (`docker swarm ca --rotate`) rather than describe a setting.
struct CaRotationRequest {
  std::string signingCaCert;  // PEM; empty = none given
  std::string signingCaKey;   // PEM; only with signingCaCert
  uint64_t forceRotate = 0;   // Spec.CAConfig.ForceRotate as sent (0 = not given)
};

// POST /swarm/update (and the Spec of swarm init): merges into `spec`, which holds the current
// (or default) ClusterSpec. A field changes only when given: numbers when non-zero (Go cannot
// tell 0 from absent), pointers, maps and lists (Labels, KeepOldSnapshots,
// TaskHistoryRetentionLimit, ExternalCAs, TaskDefaults.LogDriver) and AutoLockManagers when
// present and not null. Name must be empty or "default"; NodeCertExpiry at least one hour.
// `at` prefixes error paths (e.g. "Spec").
CaRotationRequest decodeSwarmSpec(const boost::json::value& body,
                                  store::schema::ClusterSpec::Builder spec,
                                  std::string_view at = "");

struct InitRequest {
  std::string listenAddr;     // required (the CLI sends "0.0.0.0:2377")
  std::string advertiseAddr;  // may be empty, an address or an interface name
  std::string dataPathAddr;
  uint32_t dataPathPort = 0;                 // 0 = 4789; else 1024..49151
  std::vector<std::string> defaultAddrPool;  // CIDRs; empty = 10.0.0.0/8
  uint32_t subnetSize = 0;                   // 0 = 24
  bool forceNewCluster = false;
  bool autoLockManagers = false;  // also written into the spec
  schema::NodeAvailability availability = schema::NodeAvailability::ACTIVE;
  CaRotationRequest ca;  // Spec.CAConfig.SigningCACert/Key: a root to start with
};

// POST /swarm/init. `spec` holds SwarmKit's defaults (a fresh ClusterSpec); Spec is merged into
// it as decodeSwarmSpec() does, and Name is set to "default".
InitRequest decodeInitRequest(const boost::json::value& body,
                              store::schema::ClusterSpec::Builder spec);

struct JoinRequest {
  std::string listenAddr;  // required
  std::string advertiseAddr;
  std::string dataPathAddr;
  std::vector<std::string> remoteAddrs;  // at least one
  std::string joinToken;                 // required
  schema::NodeAvailability availability = schema::NodeAvailability::ACTIVE;
};

// POST /swarm/join.
JoinRequest decodeJoinRequest(const boost::json::value& body);

// POST /services/create and /services/{id}/update: the whole ServiceSpec with the engine's
// defaults (Replicated{Replicas: 1} without a Mode; ReplicatedJob MaxConcurrent 1 and
// TotalCompletions = MaxConcurrent) and SwarmKit's validation (name rules, exactly one mode, no
// UpdateConfig on jobs, resource minimums, mounts, secret/config references, ports).
void decodeServiceSpec(const boost::json::value& body, schema::ServiceSpec::Builder spec);

// The name checks on their own (for the HTTP layer's "rename" or lookup checks); they throw
// BadRequest at `path`.
void checkServiceName(std::string_view name, std::string_view path);
void checkSecretOrConfigName(std::string_view name, std::string_view path);

}  // namespace swarm::api
