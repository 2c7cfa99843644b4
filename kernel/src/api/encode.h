// Store objects -> the Docker Engine API's JSON (moby api/types/swarm), field for field.
//
// Shapes follow Go's encoding/json over moby's types: fields in struct order, `omitempty` fields
// left out when zero (but a struct-valued field is never left out, as in Go), maps as objects
// with sorted keys, []byte as base64, durations as integer nanoseconds, times as formatTime().
// Secrets never carry Spec.Data and the swarm never carries the CA key.
#pragma once

#include <optional>
#include <string>

#include <swarm/schema/common.capnp.h>
#include <swarm/store/store.capnp.h>

#include <boost/json/value.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace swarm::api {

// Cluster fields the store has no place for yet (see the report of issue 5): the overlay
// allocator's settings as `docker swarm init` took them. Defaults are Docker's.
struct NetworkSettings {
  std::vector<std::string> defaultAddrPool{"10.0.0.0/8"};
  uint32_t subnetSize = 24;
  uint32_t dataPathPort = 4789;
};

// A root certificate's DER subject and public key: what a node it issued reports as its issuer
// (Description.TLSInfo.CertIssuerSubject / CertIssuerPublicKey). nullopt if the PEM is no cert.
struct CertIssuer {
  std::string subjectDer;
  std::string publicKeyDer;
};
std::optional<CertIssuer> issuerOfRoot(capnp::Data::Reader rootCertPem);

boost::json::value encodeNode(schema::Node::Reader node);
boost::json::value encodeSecret(schema::Secret::Reader secret);
boost::json::value encodeConfig(schema::Config::Reader config);

// GET /swarm: ClusterInfo plus JoinTokens.
boost::json::value encodeSwarm(store::schema::Cluster::Reader cluster,
                               const NetworkSettings& network = {});
// GET /info's Swarm.Cluster: the same without JoinTokens.
boost::json::value encodeClusterInfo(store::schema::Cluster::Reader cluster,
                                     const NetworkSettings& network = {});
boost::json::value encodeSwarmSpec(store::schema::ClusterSpec::Reader spec);
// TLSInfo of a root CA certificate (PEM): the trust root and the DER subject and public key of
// the issuer, as nodes report them. Subject and key stay empty if the PEM does not parse.
boost::json::value encodeTlsInfo(schema::TlsInfo::Reader info);
boost::json::value encodeRootTlsInfo(capnp::Data::Reader rootCertPem);

boost::json::value encodeService(store::schema::Service::Reader service);
boost::json::value encodeServiceSpec(schema::ServiceSpec::Reader spec);
boost::json::value encodeTaskSpec(schema::TaskSpec::Reader spec);
boost::json::value encodeTask(schema::Task::Reader task);

// Docker's enum spellings.
std::string nodeRoleName(schema::NodeRole role);                      // worker, manager
std::string nodeAvailabilityName(schema::NodeAvailability availability);  // active, pause, drain
std::string nodeStateName(schema::NodeState state);  // unknown, down, ready, disconnected
std::string reachabilityName(schema::Reachability reachability);  // unknown, unreachable, reachable
std::string taskStateName(uint16_t state);  // new, allocated, pending, ... orphaned
std::string updateStateName(store::schema::UpdateState state);  // "" for none, updating, ...

}  // namespace swarm::api
