// A real manager process (swarm-kernel with the bundled plugins) fed bad requests over its API
// socket: each gets Docker's status and a message saying what is wrong, nothing changes, and the
// process keeps serving.
#include "manager_process.h"

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <cstdint>
#include <string>

using namespace swarm::test;

TEST_CASE("bad API input gets Docker's status and a clear message, and the manager keeps serving") {
  Manager m("api-bad-input");
  const std::string v = "/v1.41";

  // Before init: nothing to manage.
  Reply r = raw(m.socket, "GET", v + "/nodes");
  CHECK(r.status == 503);
  CHECK(contains(r.message(), "not a swarm manager"));

  // Init with broken bodies: nothing is created.
  r = raw(m.socket, "POST", v + "/swarm/init", "{\"ListenAddr\": ");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "malformed JSON"));
  r = raw(m.socket, "POST", v + "/swarm/init", "{\"ListenAddr\": 5}");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "ListenAddr"));
  r = raw(m.socket, "POST", v + "/swarm/init", "{\"ListenAddr\": \"0.0.0.0:2377\", \"Availability\": \"sleep\"}");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "Availability"));
  r = raw(m.socket, "POST", v + "/swarm/init", "{\"ListenAddr\": \"0.0.0.0:2377\"}");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "advertise"));
  r = raw(m.socket, "POST", v + "/swarm/init", "[1,2]");
  CHECK(r.status == 400);
  CHECK(raw(m.socket, "GET", v + "/info").body.find("\"LocalNodeState\":\"inactive\"") != std::string::npos);

  r = raw(m.socket, "POST", v + "/swarm/init",
          "{\"ListenAddr\": \"127.0.0.1:23901\", \"AdvertiseAddr\": \"127.0.0.1\"}");
  REQUIRE(r.status == 200);
  std::string nodeId(boost::json::parse(r.body).as_string());

  // Lookups and filters.
  r = raw(m.socket, "GET", v + "/nodes/nosuchnode");
  CHECK(r.status == 404);
  CHECK(contains(r.message(), "no such node: nosuchnode"));
  r = raw(m.socket, "GET", v + "/nodes?filters=%7Bbad");
  CHECK(r.status == 400);
  r = raw(m.socket, "GET", v + "/nodes?filters=%7B%22colour%22%3A%7B%22x%22%3Atrue%7D%7D");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "colour"));
  r = raw(m.socket, "DELETE", v + "/secrets/nosuchsecret");
  CHECK(r.status == 404);

  // Versions: missing and stale.
  auto node = boost::json::parse(raw(m.socket, "GET", v + "/nodes/" + nodeId).body).as_object();
  uint64_t version = node.at("Version").as_object().at("Index").to_number<uint64_t>();
  std::string spec = "{\"Role\": \"manager\", \"Availability\": \"pause\"}";
  r = raw(m.socket, "POST", v + "/nodes/" + nodeId + "/update", spec);
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "version"));
  r = raw(m.socket, "POST", v + "/nodes/" + nodeId + "/update?version=abc", spec);
  CHECK(r.status == 400);
  r = raw(m.socket, "POST", v + "/nodes/" + nodeId + "/update?version=" + std::to_string(version), spec);
  CHECK(r.status == 200);
  r = raw(m.socket, "POST", v + "/nodes/" + nodeId + "/update?version=" + std::to_string(version), spec);
  CHECK(r.status == 409);
  CHECK(contains(r.message(), "out of sequence"));
  r = raw(m.socket, "POST", v + "/nodes/" + nodeId + "/update?version=" + std::to_string(version + 1),
          "{\"Role\": \"manager\", \"Availability\": 3}");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "Availability"));
  r = raw(m.socket, "POST", v + "/swarm/update?version=1", "{}");
  CHECK(r.status == 409);
  r = raw(m.socket, "POST", v + "/swarm/update?version=1&rotateWorkerToken=maybe", "{}");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "rotateWorkerToken"));

  // Secrets: bad names, data, types, sizes; an empty or non-JSON body.
  r = raw(m.socket, "POST", v + "/secrets/create", "{\"Name\": \"ok\", \"Data\": \"not base64!!\"}");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "Data"));
  r = raw(m.socket, "POST", v + "/secrets/create", "{\"Name\": 42, \"Data\": \"c2VjcmV0\"}");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "Name"));
  r = raw(m.socket, "POST", v + "/secrets/create", "{\"Name\": \"bad name!\", \"Data\": \"c2VjcmV0\"}");
  CHECK(r.status == 400);
  r = raw(m.socket, "POST", v + "/secrets/create", "{\"Name\": \"empty\", \"Data\": \"\"}");
  CHECK(r.status == 400);
  r = raw(m.socket, "POST", v + "/secrets/create", "");
  CHECK(r.status == 400);
  r = raw(m.socket, "POST", v + "/secrets/create", "Name=x", "application/x-www-form-urlencoded");
  CHECK(r.status == 400);
  CHECK(boost::json::parse(raw(m.socket, "GET", v + "/secrets").body).as_array().empty());

  // Only a secret's labels may change.
  r = raw(m.socket, "POST", v + "/secrets/create", "{\"Name\": \"kept\", \"Data\": \"c2VjcmV0\"}");
  REQUIRE(r.status == 201);
  std::string secretId(boost::json::parse(r.body).as_object().at("ID").as_string());
  auto secret = boost::json::parse(raw(m.socket, "GET", v + "/secrets/" + secretId).body).as_object();
  std::string secretVersion = std::to_string(secret.at("Version").as_object().at("Index").to_number<uint64_t>());
  r = raw(m.socket, "POST", v + "/secrets/" + secretId + "/update?version=" + secretVersion,
          "{\"Name\": \"kept\", \"Data\": \"b3RoZXI=\"}");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "only updates to Labels are allowed"));
  r = raw(m.socket, "POST", v + "/secrets/" + secretId + "/update?version=" + secretVersion,
          "{\"Name\": \"kept\", \"Labels\": {\"tier\": \"db\"}}");
  CHECK(r.status == 200);
  secret = boost::json::parse(raw(m.socket, "GET", v + "/secrets/" + secretId).body).as_object();
  CHECK(secret.at("Spec").as_object().at("Labels").as_object().at("tier").as_string() == "db");
  CHECK(raw(m.socket, "DELETE", v + "/secrets/" + secretId).status == 204);

  // Paths, methods and versions.
  r = raw(m.socket, "GET", v + "/no/such/path");
  CHECK(r.status == 404);
  CHECK(contains(r.message(), "page not found"));
  r = raw(m.socket, "PUT", v + "/nodes");
  CHECK(r.status == 405);
  r = raw(m.socket, "GET", "/v1.12/_ping");
  CHECK(r.status == 400);
  CHECK(contains(r.message(), "too old"));
  r = raw(m.socket, "POST", v + "/swarm/unlock", "{\"UnlockKey\": \"SWMKEY-1-x\"}");
  CHECK(r.status == 503);
  CHECK(contains(r.message(), "not locked"));

  // Still alive, still the same swarm.
  CHECK(m.alive());
  r = raw(m.socket, "GET", "/_ping");
  CHECK(r.status == 200);
  CHECK(r.body == "OK");
  auto nodes = boost::json::parse(raw(m.socket, "GET", v + "/nodes").body).as_array();
  REQUIRE(nodes.size() == 1);
  CHECK(nodes[0].as_object().at("Spec").as_object().at("Availability").as_string() == "pause");
}
