#include "decode.h"

#include "text.h"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <map>
#include <optional>
#include <set>

namespace swarm::api {

namespace json = boost::json;
using store::schema::ClusterSpec;

namespace {

// ---- reading JSON with a path -------------------------------------------------------------

std::string join(std::string_view at, std::string_view key) {
  std::string path(at);
  if (!path.empty()) path += '.';
  path += key;
  return path;
}

std::string indexed(std::string_view at, size_t index) {
  return std::string(at) + "[" + std::to_string(index) + "]";
}

std::string kindName(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_: return "a number";
    case json::kind::string: return "a string";
    case json::kind::array: return "an array";
    case json::kind::object: return "an object";
  }
  return "a value";
}

// A double as Go prints it in errors: the shortest decimal, "1.5" (not Boost's "1.5E0").
std::string numberText(double value) {
  char buffer[32];
  auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

std::string quoted(std::string_view s) { return json::serialize(json::string_view(s.data(), s.size())); }

[[noreturn]] void wrongType(const json::value& v, const std::string& path,
                            std::string_view expected) {
  throw BadRequest(path, "expected " + std::string(expected) + ", got " + kindName(v));
}

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// An object in the body; nullptr for null (Go leaves the target alone).
const json::object* asObject(const json::value& v, const std::string& path) {
  if (v.is_null()) return nullptr;
  if (!v.is_object()) wrongType(v, path, "an object");
  return &v.get_object();
}

// A field as Go finds it: the exact name, else the first case-insensitive match. nullptr when
// absent or null.
const json::value* field(const json::object& o, std::string_view key) {
  if (auto it = o.find(key); it != o.end()) return it->value().is_null() ? nullptr : &it->value();
  for (auto& entry : o)
    if (equalsIgnoreCase(std::string_view(entry.key().data(), entry.key().size()), key))
      return entry.value().is_null() ? nullptr : &entry.value();
  return nullptr;
}

const json::object* optObject(const json::object& o, std::string_view key, std::string_view at) {
  const json::value* v = field(o, key);
  return v ? asObject(*v, join(at, key)) : nullptr;
}

std::optional<std::string> optString(const json::object& o, std::string_view key,
                                     std::string_view at) {
  const json::value* v = field(o, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) wrongType(*v, join(at, key), "a string");
  return std::string(v->get_string().data(), v->get_string().size());
}

std::string getString(const json::object& o, std::string_view key, std::string_view at) {
  return optString(o, key, at).value_or("");
}

std::optional<bool> optBool(const json::object& o, std::string_view key, std::string_view at) {
  const json::value* v = field(o, key);
  if (!v) return std::nullopt;
  if (!v->is_bool()) wrongType(*v, join(at, key), "true or false");
  return v->get_bool();
}

bool getBool(const json::object& o, std::string_view key, std::string_view at) {
  return optBool(o, key, at).value_or(false);
}

// Integers as Go's decoder reads them into int64/uint64: no fraction, no exponent, in range.
std::optional<int64_t> optInt(const json::object& o, std::string_view key, std::string_view at,
                              int64_t min = std::numeric_limits<int64_t>::min(),
                              int64_t max = std::numeric_limits<int64_t>::max()) {
  const json::value* v = field(o, key);
  if (!v) return std::nullopt;
  std::string path = join(at, key);
  int64_t value = 0;
  if (v->is_int64()) {
    value = v->get_int64();
  } else if (v->is_uint64()) {
    throw BadRequest(path, std::to_string(v->get_uint64()) + " is too large");
  } else if (v->is_double()) {
    throw BadRequest(path, "expected an integer, got " + numberText(v->get_double()));
  } else {
    wrongType(*v, path, "an integer");
  }
  if (value < min) {
    if (min == 0) throw BadRequest(path, std::to_string(value) + " is negative");
    throw BadRequest(path, std::to_string(value) + " is below the minimum " + std::to_string(min));
  }
  if (value > max)
    throw BadRequest(path, std::to_string(value) + " is above the maximum " + std::to_string(max));
  return value;
}

std::optional<uint64_t> optUint(const json::object& o, std::string_view key, std::string_view at,
                                uint64_t max = std::numeric_limits<uint64_t>::max()) {
  const json::value* v = field(o, key);
  if (!v) return std::nullopt;
  std::string path = join(at, key);
  uint64_t value = 0;
  if (v->is_uint64()) {
    value = v->get_uint64();
  } else if (v->is_int64()) {
    if (v->get_int64() < 0) throw BadRequest(path, std::to_string(v->get_int64()) + " is negative");
    value = static_cast<uint64_t>(v->get_int64());
  } else if (v->is_double()) {
    throw BadRequest(path, "expected an integer, got " + numberText(v->get_double()));
  } else {
    wrongType(*v, path, "an integer");
  }
  if (value > max)
    throw BadRequest(path, std::to_string(value) + " is above the maximum " + std::to_string(max));
  return value;
}

int64_t getInt(const json::object& o, std::string_view key, std::string_view at) {
  return optInt(o, key, at).value_or(0);
}
uint64_t getUint(const json::object& o, std::string_view key, std::string_view at) {
  return optUint(o, key, at).value_or(0);
}
// A duration in nanoseconds that may not be negative.
int64_t getDuration(const json::object& o, std::string_view key, std::string_view at) {
  return optInt(o, key, at, 0).value_or(0);
}

std::optional<double> optNumber(const json::object& o, std::string_view key, std::string_view at) {
  const json::value* v = field(o, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) wrongType(*v, join(at, key), "a number");
  return v->to_number<double>();
}

const json::array* optArray(const json::object& o, std::string_view key, std::string_view at) {
  const json::value* v = field(o, key);
  if (!v) return nullptr;
  if (!v->is_array()) wrongType(*v, join(at, key), "an array");
  return &v->get_array();
}

std::vector<std::string> getStrings(const json::object& o, std::string_view key,
                                    std::string_view at) {
  std::vector<std::string> out;
  const json::array* items = optArray(o, key, at);
  if (!items) return out;
  std::string path = join(at, key);
  for (size_t i = 0; i < items->size(); ++i) {
    const json::value& item = (*items)[i];
    if (item.is_null()) {
      out.emplace_back();  // Go: null into a string element leaves ""
      continue;
    }
    if (!item.is_string()) wrongType(item, indexed(path, i), "a string");
    out.emplace_back(item.get_string().data(), item.get_string().size());
  }
  return out;
}

// A map[string]string; nullopt when absent or null.
std::optional<std::map<std::string, std::string>> optStringMap(const json::object& o,
                                                               std::string_view key,
                                                               std::string_view at) {
  const json::object* map = optObject(o, key, at);
  if (!map) return std::nullopt;
  std::map<std::string, std::string> out;
  std::string path = join(at, key);
  for (auto& entry : *map) {
    std::string name(entry.key().data(), entry.key().size());
    if (entry.value().is_null()) {
      out[name] = "";
      continue;
    }
    if (!entry.value().is_string()) wrongType(entry.value(), join(path, name), "a string");
    out[name] = std::string(entry.value().get_string().data(), entry.value().get_string().size());
  }
  return out;
}

// ---- writing capnp lists --------------------------------------------------------------------

void fill(capnp::List<schema::KeyValue>::Builder list,
          const std::map<std::string, std::string>& values) {
  unsigned i = 0;
  for (auto& [key, value] : values) {
    list[i].setKey(key);
    list[i].setValue(value);
    ++i;
  }
}

void fill(capnp::List<capnp::Text>::Builder list, const std::vector<std::string>& values) {
  for (unsigned i = 0; i < values.size(); ++i) list.set(i, values[i]);
}

// Sets a string-map field only when given: `init(n)` makes the list.
template <typename Init>
void setMap(const json::object& o, std::string_view key, std::string_view at, Init init) {
  if (auto map = optStringMap(o, key, at)) fill(init(static_cast<unsigned>(map->size())), *map);
}

template <typename Init>
void setStrings(const json::object& o, std::string_view key, std::string_view at, Init init) {
  auto values = getStrings(o, key, at);
  if (!values.empty()) fill(init(static_cast<unsigned>(values.size())), values);
}

// ---- enums ----------------------------------------------------------------------------------

// The index of `value` among `names` (case-insensitive, as Docker upper-cases before looking
// up a protobuf enum), or a BadRequest listing them.
template <size_t N>
size_t oneOf(const std::string& value, const std::array<std::string_view, N>& names,
             const std::string& path) {
  for (size_t i = 0; i < N; ++i)
    if (equalsIgnoreCase(value, names[i])) return i;
  std::string list;
  for (size_t i = 0; i < N; ++i) list += (i ? ", " : "") + std::string(names[i]);
  throw BadRequest(path, quoted(value) + " is not one of " + list);
}

schema::NodeAvailability availabilityOf(const std::string& value, const std::string& path) {
  static constexpr std::array<std::string_view, 3> kNames{"active", "pause", "drain"};
  return static_cast<schema::NodeAvailability>(oneOf(value, kNames, path));
}

// ---- names ----------------------------------------------------------------------------------

bool isAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// ---- shared pieces of specs -----------------------------------------------------------------

void decodeDriver(const json::object& o, std::string_view at, schema::Driver::Builder driver) {
  driver.setName(getString(o, "Name", at));
  setMap(o, "Options", at, [&](unsigned n) { return driver.initOptions(n); });
}

// The embedded Annotations of a spec.
std::string decodeAnnotations(const json::object& o, std::string_view at,
                              schema::Annotations::Builder annotations) {
  std::string name = getString(o, "Name", at);
  annotations.setName(name);
  setMap(o, "Labels", at, [&](unsigned n) { return annotations.initLabels(n); });
  return name;
}

std::string decodePayload(const json::object& o, std::string_view at, size_t maxBytes,
                          bool required) {
  std::string path = join(at, "Data");
  auto encoded = optString(o, "Data", at);
  std::string data;
  if (encoded) {
    auto decoded = base64Decode(*encoded);
    if (!decoded) throw BadRequest(path, "is not valid base64 (standard alphabet, padded)");
    data = std::move(*decoded);
  }
  if (data.size() > maxBytes)
    throw BadRequest(path, std::to_string(data.size()) + " bytes is too large: the limit is " +
                               std::to_string(maxBytes) + " bytes (less than " +
                               std::to_string((maxBytes + 1) / 1024) + " KiB)");
  if (required && data.empty()) throw BadRequest(path, "must hold at least 1 byte");
  return data;
}

const json::object& bodyObject(const json::value& body, std::string_view at) {
  if (!body.is_object()) wrongType(body, std::string(at), "a JSON object");
  return body.get_object();
}

}  // namespace

void checkServiceName(std::string_view name, std::string_view path) {
  if (name.size() > 63)
    throw BadRequest(std::string(path), quoted(name) + " is longer than 63 characters");
  bool valid = !name.empty() && isAlnum(name.front()) && isAlnum(name.back()) &&
               std::all_of(name.begin(), name.end(),
                           [](char c) { return isAlnum(c) || c == '-' || c == '_'; });
  if (!valid)
    throw BadRequest(std::string(path),
                     quoted(name) + " is not a valid name: use letters, digits, '-' and '_', "
                                    "starting and ending with a letter or digit");
}

void checkSecretOrConfigName(std::string_view name, std::string_view path) {
  if (name.empty()) throw BadRequest(std::string(path), "a name is required");
  if (name.size() > 64)
    throw BadRequest(std::string(path), quoted(name) + " is longer than 64 characters");
  bool valid = isAlnum(name.front()) && isAlnum(name.back()) &&
               std::all_of(name.begin(), name.end(), [](char c) {
                 return isAlnum(c) || c == '-' || c == '_' || c == '.';
               });
  if (!valid)
    throw BadRequest(std::string(path),
                     quoted(name) + " is not a valid name: use letters, digits, '-', '_' and "
                                    "'.', starting and ending with a letter or digit");
}

// ---- nodes, secrets, configs ------------------------------------------------------------------

void decodeNodeSpec(const json::value& body, schema::NodeSpec::Builder spec) {
  const json::object& o = bodyObject(body, "");
  decodeAnnotations(o, "", spec.getAnnotations());
  static constexpr std::array<std::string_view, 2> kRoles{"worker", "manager"};
  auto role = optString(o, "Role", "");
  if (!role) throw BadRequest("Role", "is required: one of worker, manager");
  spec.setDesiredRole(static_cast<schema::NodeRole>(oneOf(*role, kRoles, "Role")));
  auto availability = optString(o, "Availability", "");
  if (!availability) throw BadRequest("Availability", "is required: one of active, pause, drain");
  spec.setAvailability(availabilityOf(*availability, "Availability"));
  spec.setMembership(schema::NodeMembership::ACCEPTED);
}

void decodeSecretSpec(const json::value& body, schema::SecretSpec::Builder spec, SpecFor use) {
  const json::object& o = bodyObject(body, "");
  checkSecretOrConfigName(decodeAnnotations(o, "", spec.getAnnotations()), "Name");
  bool external = false;
  if (auto* driver = optObject(o, "Driver", "")) {
    decodeDriver(*driver, "Driver", spec.initDriver());
    external = spec.getDriver().getName().size() > 0;
  }
  // A secret kept by an external driver has no value of its own.
  std::string data = decodePayload(o, "", kMaxSecretBytes, !external && use == SpecFor::create);
  spec.setData(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(data.data()), data.size()));
  if (auto* templating = optObject(o, "Templating", ""))
    decodeDriver(*templating, "Templating", spec.initTemplating());
}

void decodeConfigSpec(const json::value& body, schema::ConfigSpec::Builder spec, SpecFor use) {
  const json::object& o = bodyObject(body, "");
  checkSecretOrConfigName(decodeAnnotations(o, "", spec.getAnnotations()), "Name");
  std::string data = decodePayload(o, "", kMaxConfigBytes, use == SpecFor::create);
  spec.setData(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(data.data()), data.size()));
  if (auto* templating = optObject(o, "Templating", ""))
    decodeDriver(*templating, "Templating", spec.initTemplating());
}

// ---- the swarm ------------------------------------------------------------------------------

CaRotationRequest decodeSwarmSpec(const json::value& body, ClusterSpec::Builder spec,
                                  std::string_view at) {
  const json::object* o = asObject(body, std::string(at));
  CaRotationRequest rotation;
  if (!o) return rotation;

  auto name = getString(*o, "Name", at);
  if (!name.empty() && name != "default")
    throw BadRequest(join(at, "Name"),
                     quoted(name) + " is not allowed: the swarm is always named \"default\"");
  spec.getAnnotations().setName("default");
  setMap(*o, "Labels", at, [&](unsigned n) { return spec.getAnnotations().initLabels(n); });

  if (auto* orchestration = optObject(*o, "Orchestration", at)) {
    std::string path = join(at, "Orchestration");
    if (auto limit = optInt(*orchestration, "TaskHistoryRetentionLimit", path))
      spec.setTaskHistoryRetentionLimit(*limit);
  }

  if (auto* raft = optObject(*o, "Raft", at)) {
    std::string path = join(at, "Raft");
    if (uint64_t v = getUint(*raft, "SnapshotInterval", path)) spec.setSnapshotInterval(v);
    if (auto v = optUint(*raft, "KeepOldSnapshots", path)) spec.setKeepOldSnapshots(*v);
    if (uint64_t v = getUint(*raft, "LogEntriesForSlowFollowers", path))
      spec.setLogEntriesForSlowFollowers(v);
    constexpr uint64_t kMaxTick = std::numeric_limits<uint32_t>::max();
    if (uint64_t v = optUint(*raft, "ElectionTick", path, kMaxTick).value_or(0))
      spec.setElectionTick(static_cast<uint32_t>(v));
    if (uint64_t v = optUint(*raft, "HeartbeatTick", path, kMaxTick).value_or(0))
      spec.setHeartbeatTick(static_cast<uint32_t>(v));
    if (spec.getElectionTick() <= spec.getHeartbeatTick())
      throw BadRequest(join(path, "ElectionTick"),
                       std::to_string(spec.getElectionTick()) +
                           " must be greater than HeartbeatTick (" +
                           std::to_string(spec.getHeartbeatTick()) + ")");
  }

  if (auto* dispatcher = optObject(*o, "Dispatcher", at)) {
    std::string path = join(at, "Dispatcher");
    if (int64_t v = getDuration(*dispatcher, "HeartbeatPeriod", path))
      spec.setDispatcherHeartbeatPeriod(v);
  }

  if (auto* ca = optObject(*o, "CAConfig", at)) {
    std::string path = join(at, "CAConfig");
    if (int64_t expiry = getInt(*ca, "NodeCertExpiry", path)) {
      if (expiry < kMinNodeCertExpiry)
        throw BadRequest(join(path, "NodeCertExpiry"),
                         std::to_string(expiry) +
                             "ns is too short: node certificates must last at least 1h "
                             "(3600000000000)");
      spec.setNodeCertExpiry(expiry);
    }
    if (auto* externals = optArray(*ca, "ExternalCAs", path)) {
      std::string listPath = join(path, "ExternalCAs");
      auto list = spec.initExternalCas(static_cast<unsigned>(externals->size()));
      for (size_t i = 0; i < externals->size(); ++i) {
        std::string itemPath = indexed(listPath, i);
        const json::object* item = asObject((*externals)[i], itemPath);
        if (!item) throw BadRequest(itemPath, "expected an object, got null");
        auto protocol = getString(*item, "Protocol", itemPath);
        static constexpr std::array<std::string_view, 1> kProtocols{"cfssl"};
        oneOf(protocol, kProtocols, join(itemPath, "Protocol"));
        auto url = getString(*item, "URL", itemPath);
        if (url.empty()) throw BadRequest(join(itemPath, "URL"), "is required");
        list[unsigned(i)].setUrl(url);
        auto caCert = getString(*item, "CACert", itemPath);
        list[unsigned(i)].setCaCert(
            capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(caCert.data()), caCert.size()));
        setMap(*item, "Options", itemPath,
               [&](unsigned n) { return list[unsigned(i)].initOptions(n); });
      }
    }
    rotation.signingCaCert = getString(*ca, "SigningCACert", path);
    rotation.signingCaKey = getString(*ca, "SigningCAKey", path);
    if (!rotation.signingCaKey.empty() && rotation.signingCaCert.empty())
      throw BadRequest(join(path, "SigningCAKey"), "is given without SigningCACert");
    rotation.forceRotate = getUint(*ca, "ForceRotate", path);
  }

  if (auto* defaults = optObject(*o, "TaskDefaults", at)) {
    std::string path = join(at, "TaskDefaults");
    if (auto* driver = optObject(*defaults, "LogDriver", path))
      decodeDriver(*driver, join(path, "LogDriver"), spec.initTaskDefaultLogDriver());
  }

  if (auto* encryption = optObject(*o, "EncryptionConfig", at)) {
    if (auto autolock = optBool(*encryption, "AutoLockManagers", join(at, "EncryptionConfig")))
      spec.setAutoLockManagers(*autolock);
  }
  return rotation;
}

namespace {

void checkCidr(const std::string& cidr, const std::string& path) {
  // IPv4 a.b.c.d/n; SwarmKit's pools are IPv4 only.
  unsigned a, b, c, d, bits;
  char tail;
  if (std::sscanf(cidr.c_str(), "%u.%u.%u.%u/%u%c", &a, &b, &c, &d, &bits, &tail) != 5 ||
      a > 255 || b > 255 || c > 255 || d > 255 || bits > 32)
    throw BadRequest(path, quoted(cidr) + " is not an IPv4 CIDR such as \"10.0.0.0/8\"");
}

std::string requiredString(const json::object& o, std::string_view key, std::string_view example) {
  auto value = getString(o, key, "");
  if (value.empty())
    throw BadRequest(std::string(key), "is required, e.g. " + std::string(example));
  return value;
}

}  // namespace

InitRequest decodeInitRequest(const json::value& body, ClusterSpec::Builder spec) {
  const json::object& o = bodyObject(body, "");
  InitRequest request;
  request.listenAddr = requiredString(o, "ListenAddr", "\"0.0.0.0:2377\"");
  request.advertiseAddr = getString(o, "AdvertiseAddr", "");
  request.dataPathAddr = getString(o, "DataPathAddr", "");
  request.dataPathPort = static_cast<uint32_t>(getUint(o, "DataPathPort", ""));
  if (request.dataPathPort != 0 && (request.dataPathPort < 1024 || request.dataPathPort > 49151))
    throw BadRequest("DataPathPort", std::to_string(request.dataPathPort) +
                                         " is out of range: use 1024..49151 (0 = 4789)");
  request.defaultAddrPool = getStrings(o, "DefaultAddrPool", "");
  for (size_t i = 0; i < request.defaultAddrPool.size(); ++i)
    checkCidr(request.defaultAddrPool[i], indexed("DefaultAddrPool", i));
  request.subnetSize = static_cast<uint32_t>(optUint(o, "SubnetSize", "", 32).value_or(0));
  request.forceNewCluster = getBool(o, "ForceNewCluster", "");
  request.autoLockManagers = getBool(o, "AutoLockManagers", "");
  if (auto availability = optString(o, "Availability", ""); availability && !availability->empty())
    request.availability = availabilityOf(*availability, "Availability");

  spec.getAnnotations().setName("default");
  if (const json::value* given = field(o, "Spec")) request.ca = decodeSwarmSpec(*given, spec, "Spec");
  if (request.autoLockManagers) spec.setAutoLockManagers(true);
  request.autoLockManagers = spec.getAutoLockManagers();
  return request;
}

JoinRequest decodeJoinRequest(const json::value& body) {
  const json::object& o = bodyObject(body, "");
  JoinRequest request;
  request.listenAddr = requiredString(o, "ListenAddr", "\"0.0.0.0:2377\"");
  request.advertiseAddr = getString(o, "AdvertiseAddr", "");
  request.dataPathAddr = getString(o, "DataPathAddr", "");
  request.remoteAddrs = getStrings(o, "RemoteAddrs", "");
  if (request.remoteAddrs.empty())
    throw BadRequest("RemoteAddrs", "at least one manager address is required, e.g. "
                                    "[\"192.168.1.10:2377\"]");
  for (size_t i = 0; i < request.remoteAddrs.size(); ++i)
    if (request.remoteAddrs[i].empty()) throw BadRequest(indexed("RemoteAddrs", i), "is empty");
  request.joinToken = requiredString(o, "JoinToken", "the SWMTKN-1-... token `docker swarm "
                                                     "join-token worker` prints");
  if (auto availability = optString(o, "Availability", ""); availability && !availability->empty())
    request.availability = availabilityOf(*availability, "Availability");
  return request;
}

// ---- services ------------------------------------------------------------------------------

namespace {

constexpr int64_t kMinNanoCpus = 1'000'000;            // 0.001 CPU
constexpr int64_t kMinMemoryBytes = 4LL * 1024 * 1024;  // 4 MiB
constexpr int64_t kMillisecond = 1'000'000;

template <typename T>
capnp::Data::Reader asData(const T& bytes) {
  return capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(bytes.data()), bytes.size());
}

const json::object& requiredObject(const json::value& v, const std::string& path) {
  const json::object* o = asObject(v, path);
  if (!o) throw BadRequest(path, "expected an object, got null");
  return *o;
}

void decodeGenericResources(const json::object& o, std::string_view at,
                            schema::Resources::Builder resources) {
  const json::array* items = optArray(o, "GenericResources", at);
  if (!items) return;
  std::string listPath = join(at, "GenericResources");
  auto list = resources.initGeneric(static_cast<unsigned>(items->size()));
  for (size_t i = 0; i < items->size(); ++i) {
    std::string path = indexed(listPath, i);
    const json::object& item = requiredObject((*items)[i], path);
    const json::object* named = optObject(item, "NamedResourceSpec", path);
    const json::object* discrete = optObject(item, "DiscreteResourceSpec", path);
    if ((named != nullptr) == (discrete != nullptr))
      throw BadRequest(path, "give exactly one of NamedResourceSpec, DiscreteResourceSpec");
    auto out = list[unsigned(i)];
    if (named) {
      std::string inner = join(path, "NamedResourceSpec");
      out.setKind(getString(*named, "Kind", inner));
      out.setNamed(getString(*named, "Value", inner));
    } else {
      std::string inner = join(path, "DiscreteResourceSpec");
      out.setKind(getString(*discrete, "Kind", inner));
      out.setDiscrete(optInt(*discrete, "Value", inner, 0).value_or(0));
    }
    if (out.getKind().size() == 0)
      throw BadRequest(join(join(path, named ? "NamedResourceSpec" : "DiscreteResourceSpec"),
                            "Kind"),
                       "is required, e.g. \"gpu\"");
  }
}

void decodeCpuAndMemory(const json::object& o, std::string_view at,
                        schema::Resources::Builder resources) {
  int64_t cpus = optInt(o, "NanoCPUs", at, 0).value_or(0);
  if (cpus != 0 && cpus < kMinNanoCpus)
    throw BadRequest(join(at, "NanoCPUs"), std::to_string(cpus) +
                                               " is too small: at least 1000000 (0.001 CPU)");
  int64_t memory = optInt(o, "MemoryBytes", at, 0).value_or(0);
  if (memory != 0 && memory < kMinMemoryBytes)
    throw BadRequest(join(at, "MemoryBytes"),
                     std::to_string(memory) + " is too small: at least 4194304 (4 MiB)");
  resources.setNanoCpus(cpus);
  resources.setMemoryBytes(memory);
}

void decodeResources(const json::object& o, std::string_view at,
                     schema::ResourceRequirements::Builder resources) {
  if (auto* limits = optObject(o, "Limits", at)) {
    std::string path = join(at, "Limits");
    auto out = resources.initLimits();
    decodeCpuAndMemory(*limits, path, out);
    out.setPids(optInt(*limits, "Pids", path, 0).value_or(0));
  }
  if (auto* reservations = optObject(o, "Reservations", at)) {
    std::string path = join(at, "Reservations");
    auto out = resources.initReservations();
    decodeCpuAndMemory(*reservations, path, out);
    decodeGenericResources(*reservations, path, out);
  }
  if (auto swap = optInt(o, "SwapBytes", at, 0)) resources.setSwapBytes(*swap);
  if (auto swappiness = optInt(o, "MemorySwappiness", at, 0, 100))
    resources.setMemorySwappiness(*swappiness);
}

void decodeRestart(const json::object& o, std::string_view at,
                   schema::RestartPolicy::Builder restart) {
  static constexpr std::array<std::string_view, 3> kConditions{"none", "on-failure", "any"};
  auto condition = getString(o, "Condition", at);
  if (!condition.empty())
    restart.setCondition(static_cast<schema::RestartPolicy::Condition>(
        oneOf(condition, kConditions, join(at, "Condition"))));
  if (auto delay = optInt(o, "Delay", at, 0)) restart.setDelay(*delay);
  restart.setMaxAttempts(getUint(o, "MaxAttempts", at));
  restart.setWindow(getDuration(o, "Window", at));
}

void checkConstraint(const std::string& constraint, const std::string& path) {
  size_t op = constraint.find("==");
  if (op == std::string::npos) op = constraint.find("!=");
  auto trimmed = [](std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
  };
  if (op == std::string::npos || trimmed(std::string_view(constraint).substr(0, op)).empty() ||
      trimmed(std::string_view(constraint).substr(op + 2)).empty())
    throw BadRequest(path, quoted(constraint) +
                               " is not a constraint: use key==value or key!=value, e.g. "
                               "\"node.role==manager\"");
}

void decodePlacement(const json::object& o, std::string_view at,
                     schema::Placement::Builder placement) {
  auto constraints = getStrings(o, "Constraints", at);
  for (size_t i = 0; i < constraints.size(); ++i)
    checkConstraint(constraints[i], indexed(join(at, "Constraints"), i));
  if (!constraints.empty())
    fill(placement.initConstraints(static_cast<unsigned>(constraints.size())), constraints);

  if (auto* preferences = optArray(o, "Preferences", at)) {
    std::string listPath = join(at, "Preferences");
    auto list = placement.initPreferences(static_cast<unsigned>(preferences->size()));
    for (size_t i = 0; i < preferences->size(); ++i) {
      std::string path = indexed(listPath, i);
      const json::object& item = requiredObject((*preferences)[i], path);
      const json::object* spread = optObject(item, "Spread", path);
      if (!spread) throw BadRequest(path, "only Spread preferences exist: {\"Spread\": "
                                          "{\"SpreadDescriptor\": \"node.labels.zone\"}}");
      std::string inner = join(path, "Spread");
      auto descriptor = getString(*spread, "SpreadDescriptor", inner);
      if (descriptor.rfind("node.labels.", 0) != 0 && descriptor.rfind("engine.labels.", 0) != 0)
        throw BadRequest(join(inner, "SpreadDescriptor"),
                         quoted(descriptor) +
                             " is not a spread descriptor: use node.labels.<key> or "
                             "engine.labels.<key>");
      list[unsigned(i)].setSpreadDescriptor(descriptor);
    }
  }
  placement.setMaxReplicas(getUint(o, "MaxReplicas", at));
  if (auto* platforms = optArray(o, "Platforms", at)) {
    std::string listPath = join(at, "Platforms");
    auto list = placement.initPlatforms(static_cast<unsigned>(platforms->size()));
    for (size_t i = 0; i < platforms->size(); ++i) {
      std::string path = indexed(listPath, i);
      const json::object& item = requiredObject((*platforms)[i], path);
      list[unsigned(i)].setArchitecture(getString(item, "Architecture", path));
      list[unsigned(i)].setOs(getString(item, "OS", path));
    }
  }
}

void decodeNetworks(const json::array& items, const std::string& listPath,
                    capnp::List<schema::NetworkAttachmentConfig>::Builder list) {
  for (size_t i = 0; i < items.size(); ++i) {
    std::string path = indexed(listPath, i);
    const json::object& item = requiredObject(items[i], path);
    auto target = getString(item, "Target", path);
    if (target.empty()) throw BadRequest(join(path, "Target"), "is required: a network name or ID");
    auto out = list[unsigned(i)];
    out.setTarget(target);
    setStrings(item, "Aliases", path, [&](unsigned n) { return out.initAliases(n); });
    setMap(item, "DriverOpts", path, [&](unsigned n) { return out.initDriverOpts(n); });
  }
}

void decodeMount(const json::object& o, const std::string& at, schema::Mount::Builder mount) {
  using schema::Mount;
  static constexpr std::array<std::string_view, 5> kTypes{"bind", "volume", "tmpfs", "npipe",
                                                          "cluster"};
  auto type = getString(o, "Type", at);
  if (type.empty()) throw BadRequest(join(at, "Type"), "is required: one of bind, volume, tmpfs, "
                                                       "npipe, cluster");
  auto kind = static_cast<Mount::Type>(oneOf(type, kTypes, join(at, "Type")));
  mount.setType(kind);
  auto source = getString(o, "Source", at);
  auto target = getString(o, "Target", at);
  if (target.empty()) throw BadRequest(join(at, "Target"), "is required: the path in the container");
  if (kind == Mount::Type::BIND && source.empty())
    throw BadRequest(join(at, "Source"), "is required for a bind mount: the path on the host");
  if (kind == Mount::Type::TMPFS && !source.empty())
    throw BadRequest(join(at, "Source"), "must be empty for a tmpfs mount");
  mount.setSource(source);
  mount.setTarget(target);
  mount.setReadOnly(getBool(o, "ReadOnly", at));
  mount.setConsistency(getString(o, "Consistency", at));

  auto onlyFor = [&](std::string_view key, Mount::Type wanted, std::string_view wantedName) {
    const json::object* options = optObject(o, key, at);
    if (options && kind != wanted)
      throw BadRequest(join(at, key), "is only for a " + std::string(wantedName) +
                                          " mount, not " + type);
    return options;
  };
  if (auto* bind = onlyFor("BindOptions", Mount::Type::BIND, "bind")) {
    std::string path = join(at, "BindOptions");
    static constexpr std::array<std::string_view, 7> kPropagations{
        "", "rprivate", "private", "rshared", "shared", "rslave", "slave"};
    auto propagation = getString(*bind, "Propagation", path);
    if (!propagation.empty()) {
      size_t index = oneOf(propagation, kPropagations, join(path, "Propagation"));
      mount.setBindPropagation(static_cast<Mount::Propagation>(index));
    }
    mount.setBindNonRecursive(getBool(*bind, "NonRecursive", path));
  }
  if (auto* volume = onlyFor("VolumeOptions", Mount::Type::VOLUME, "volume")) {
    std::string path = join(at, "VolumeOptions");
    mount.setVolumeNoCopy(getBool(*volume, "NoCopy", path));
    setMap(*volume, "Labels", path, [&](unsigned n) { return mount.initVolumeLabels(n); });
    if (auto* driver = optObject(*volume, "DriverConfig", path))
      decodeDriver(*driver, join(path, "DriverConfig"), mount.initVolumeDriver());
  }
  if (auto* tmpfs = onlyFor("TmpfsOptions", Mount::Type::TMPFS, "tmpfs")) {
    std::string path = join(at, "TmpfsOptions");
    mount.setTmpfsSizeBytes(optInt(*tmpfs, "SizeBytes", path, 0).value_or(0));
    mount.setTmpfsMode(static_cast<uint32_t>(
        optUint(*tmpfs, "Mode", path, std::numeric_limits<uint32_t>::max()).value_or(0)));
  }
}

// File targets of secrets and configs; two references may not write the same file.
void decodeFileTarget(const json::object& o, const std::string& at,
                      schema::FileTarget::Builder file, std::set<std::string>& targets) {
  auto name = getString(o, "Name", at);
  if (name.empty()) throw BadRequest(join(at, "Name"), "is required: the file name in the container");
  if (!targets.insert(name).second)
    throw BadRequest(join(at, "Name"), quoted(name) + " is the target of another reference");
  file.setName(name);
  file.setUid(getString(o, "UID", at));
  file.setGid(getString(o, "GID", at));
  if (auto mode = optUint(o, "Mode", at, std::numeric_limits<uint32_t>::max()))
    file.setMode(static_cast<uint32_t>(*mode));
}

void decodeHealthcheck(const json::object& o, const std::string& at,
                       schema::HealthConfig::Builder health) {
  auto test = getStrings(o, "Test", at);
  if (!test.empty() && test[0] != "NONE" && test[0] != "CMD" && test[0] != "CMD-SHELL")
    throw BadRequest(indexed(join(at, "Test"), 0),
                     quoted(test[0]) + " is not one of NONE, CMD, CMD-SHELL");
  if (!test.empty()) fill(health.initTest(static_cast<unsigned>(test.size())), test);
  auto duration = [&](std::string_view key) {
    int64_t value = getDuration(o, key, at);
    if (value != 0 && value < kMillisecond)
      throw BadRequest(join(at, key), std::to_string(value) + "ns is too short: at least 1ms "
                                                              "(1000000), or 0 for the default");
    return value;
  };
  health.setInterval(duration("Interval"));
  health.setTimeout(duration("Timeout"));
  health.setStartPeriod(duration("StartPeriod"));
  health.setStartInterval(duration("StartInterval"));
  health.setRetries(static_cast<uint32_t>(
      optUint(o, "Retries", at, std::numeric_limits<int32_t>::max()).value_or(0)));
}

void decodePrivileges(const json::object& o, const std::string& at,
                      schema::ContainerSpec::Builder container) {
  for (std::string_view unsupported : {"CredentialSpec", "SELinuxContext"})
    if (field(o, unsupported))
      throw BadRequest(join(at, unsupported), "is not supported by this swarm yet");
  for (std::string_view profile : {"Seccomp", "AppArmor"}) {
    if (const json::object* options = optObject(o, profile, at)) {
      auto mode = getString(*options, "Mode", join(at, profile));
      if (!mode.empty() && mode != "default")
        throw BadRequest(join(join(at, profile), "Mode"),
                         quoted(mode) + " is not supported by this swarm yet: only \"default\"");
    }
  }
  container.setNoNewPrivileges(getBool(o, "NoNewPrivileges", at));
}

void decodeContainerSpec(const json::object& o, const std::string& at,
                         schema::ContainerSpec::Builder c) {
  auto image = getString(o, "Image", at);
  if (image.empty())
    throw BadRequest(join(at, "Image"), "is required: the image to run, e.g. \"nginx:latest\"");
  c.setImage(image);
  setMap(o, "Labels", at, [&](unsigned n) { return c.initLabels(n); });
  setStrings(o, "Command", at, [&](unsigned n) { return c.initCommand(n); });
  setStrings(o, "Args", at, [&](unsigned n) { return c.initArgs(n); });
  c.setHostname(getString(o, "Hostname", at));
  auto env = getStrings(o, "Env", at);
  for (size_t i = 0; i < env.size(); ++i)
    if (env[i].empty() || env[i][0] == '=')
      throw BadRequest(indexed(join(at, "Env"), i),
                       quoted(env[i]) + " is not an environment variable: use NAME=VALUE");
  if (!env.empty()) fill(c.initEnv(static_cast<unsigned>(env.size())), env);
  c.setDir(getString(o, "Dir", at));
  c.setUser(getString(o, "User", at));
  setStrings(o, "Groups", at, [&](unsigned n) { return c.initGroups(n); });
  if (auto* privileges = optObject(o, "Privileges", at))
    decodePrivileges(*privileges, join(at, "Privileges"), c);
  if (auto init = optBool(o, "Init", at))
    c.setInit(*init ? schema::OptionalBool::YES : schema::OptionalBool::NO);
  c.setStopSignal(getString(o, "StopSignal", at));
  c.setTty(getBool(o, "TTY", at));
  c.setOpenStdin(getBool(o, "OpenStdin", at));
  c.setReadOnly(getBool(o, "ReadOnly", at));

  if (auto* mounts = optArray(o, "Mounts", at)) {
    std::string listPath = join(at, "Mounts");
    auto list = c.initMounts(static_cast<unsigned>(mounts->size()));
    std::set<std::string> targets;
    for (size_t i = 0; i < mounts->size(); ++i) {
      std::string path = indexed(listPath, i);
      decodeMount(requiredObject((*mounts)[i], path), path, list[unsigned(i)]);
      std::string target = list[unsigned(i)].getTarget().cStr();
      if (!targets.insert(target).second)
        throw BadRequest(join(path, "Target"), quoted(target) + " is mounted twice");
    }
  }
  if (auto grace = optInt(o, "StopGracePeriod", at, 0)) c.setStopGracePeriod(*grace);
  if (auto* health = optObject(o, "Healthcheck", at))
    decodeHealthcheck(*health, join(at, "Healthcheck"), c.initHealthcheck());
  setStrings(o, "Hosts", at, [&](unsigned n) { return c.initHosts(n); });
  if (auto* dns = optObject(o, "DNSConfig", at)) {
    std::string path = join(at, "DNSConfig");
    auto out = c.initDnsConfig();
    setStrings(*dns, "Nameservers", path, [&](unsigned n) { return out.initNameservers(n); });
    setStrings(*dns, "Search", path, [&](unsigned n) { return out.initSearch(n); });
    setStrings(*dns, "Options", path, [&](unsigned n) { return out.initOptions(n); });
  }

  std::set<std::string> fileTargets;
  if (auto* secrets = optArray(o, "Secrets", at)) {
    std::string listPath = join(at, "Secrets");
    auto list = c.initSecrets(static_cast<unsigned>(secrets->size()));
    for (size_t i = 0; i < secrets->size(); ++i) {
      std::string path = indexed(listPath, i);
      const json::object& item = requiredObject((*secrets)[i], path);
      auto out = list[unsigned(i)];
      out.setSecretId(getString(item, "SecretID", path));
      out.setSecretName(getString(item, "SecretName", path));
      if (out.getSecretId().size() == 0) throw BadRequest(join(path, "SecretID"), "is required");
      if (out.getSecretName().size() == 0)
        throw BadRequest(join(path, "SecretName"), "is required");
      const json::object* file = optObject(item, "File", path);
      if (!file) throw BadRequest(join(path, "File"), "is required: where the secret appears");
      decodeFileTarget(*file, join(path, "File"), out.getFile(), fileTargets);
    }
  }
  if (auto* configs = optArray(o, "Configs", at)) {
    std::string listPath = join(at, "Configs");
    auto list = c.initConfigs(static_cast<unsigned>(configs->size()));
    for (size_t i = 0; i < configs->size(); ++i) {
      std::string path = indexed(listPath, i);
      const json::object& item = requiredObject((*configs)[i], path);
      auto out = list[unsigned(i)];
      out.setConfigId(getString(item, "ConfigID", path));
      out.setConfigName(getString(item, "ConfigName", path));
      if (out.getConfigId().size() == 0) throw BadRequest(join(path, "ConfigID"), "is required");
      if (out.getConfigName().size() == 0)
        throw BadRequest(join(path, "ConfigName"), "is required");
      const json::object* file = optObject(item, "File", path);
      const json::object* runtime = optObject(item, "Runtime", path);
      if ((file != nullptr) == (runtime != nullptr))
        throw BadRequest(path, "give exactly one of File, Runtime");
      if (file)
        decodeFileTarget(*file, join(path, "File"), out.getTarget().initFile(), fileTargets);
      else
        out.getTarget().setRuntime();
    }
  }

  static constexpr std::array<std::string_view, 4> kIsolations{"", "default", "process", "hyperv"};
  auto isolation = getString(o, "Isolation", at);
  oneOf(isolation, kIsolations, join(at, "Isolation"));
  c.setIsolation(isolation);
  setMap(o, "Sysctls", at, [&](unsigned n) { return c.initSysctls(n); });
  setStrings(o, "CapabilityAdd", at, [&](unsigned n) { return c.initCapabilityAdd(n); });
  setStrings(o, "CapabilityDrop", at, [&](unsigned n) { return c.initCapabilityDrop(n); });
  if (auto* ulimits = optArray(o, "Ulimits", at)) {
    std::string listPath = join(at, "Ulimits");
    auto list = c.initUlimits(static_cast<unsigned>(ulimits->size()));
    for (size_t i = 0; i < ulimits->size(); ++i) {
      std::string path = indexed(listPath, i);
      const json::object& item = requiredObject((*ulimits)[i], path);
      auto name = getString(item, "Name", path);
      if (name.empty()) throw BadRequest(join(path, "Name"), "is required, e.g. \"nofile\"");
      int64_t soft = getInt(item, "Soft", path);
      int64_t hard = getInt(item, "Hard", path);
      if (soft > hard)
        throw BadRequest(join(path, "Soft"), std::to_string(soft) +
                                                 " is above the hard limit " + std::to_string(hard));
      list[unsigned(i)].setName(name);
      list[unsigned(i)].setSoft(soft);
      list[unsigned(i)].setHard(hard);
    }
  }
  c.setOomScoreAdj(optInt(o, "OomScoreAdj", at, -1000, 1000).value_or(0));
}

void decodeTaskSpec(const json::object& o, const std::string& at, schema::TaskSpec::Builder task) {
  for (std::string_view other : {"PluginSpec", "NetworkAttachmentSpec"})
    if (field(o, other))
      throw BadRequest(join(at, other),
                       "is not supported by this swarm: services run containers (ContainerSpec)");
  auto runtime = getString(o, "Runtime", at);
  if (!runtime.empty() && runtime != "container")
    throw BadRequest(join(at, "Runtime"),
                     quoted(runtime) + " is not supported: only \"container\"");
  const json::object* container = optObject(o, "ContainerSpec", at);
  if (!container)
    throw BadRequest(join(at, "ContainerSpec"), "is required: it names the Image to run");
  decodeContainerSpec(*container, join(at, "ContainerSpec"), task.getRuntime().initContainer());
  if (auto* resources = optObject(o, "Resources", at))
    decodeResources(*resources, join(at, "Resources"), task.initResources());
  if (auto* restart = optObject(o, "RestartPolicy", at))
    decodeRestart(*restart, join(at, "RestartPolicy"), task.initRestart());
  if (auto* placement = optObject(o, "Placement", at))
    decodePlacement(*placement, join(at, "Placement"), task.initPlacement());
  if (auto* networks = optArray(o, "Networks", at))
    decodeNetworks(*networks, join(at, "Networks"),
                   task.initNetworks(static_cast<unsigned>(networks->size())));
  if (auto* driver = optObject(o, "LogDriver", at))
    decodeDriver(*driver, join(at, "LogDriver"), task.initLogDriver());
  task.setForceUpdate(getUint(o, "ForceUpdate", at));
}

void decodeUpdateConfig(const json::object& o, const std::string& at,
                        schema::UpdateConfig::Builder update) {
  using schema::UpdateConfig;
  // As Go: a field left out is zero (Parallelism 0 = all at once, Monitor 0).
  update.setParallelism(getUint(o, "Parallelism", at));
  update.setDelay(getDuration(o, "Delay", at));
  static constexpr std::array<std::string_view, 3> kActions{"pause", "continue", "rollback"};
  auto action = getString(o, "FailureAction", at);
  update.setFailureAction(action.empty() ? UpdateConfig::FailureAction::PAUSE
                                         : static_cast<UpdateConfig::FailureAction>(oneOf(
                                               action, kActions, join(at, "FailureAction"))));
  update.setMonitor(getDuration(o, "Monitor", at));
  double ratio = optNumber(o, "MaxFailureRatio", at).value_or(0);
  if (ratio < 0 || ratio > 1)
    throw BadRequest(join(at, "MaxFailureRatio"),
                     numberText(ratio) + " is not between 0 and 1");
  update.setMaxFailureRatio(static_cast<float>(ratio));
  static constexpr std::array<std::string_view, 2> kOrders{"stop-first", "start-first"};
  auto order = getString(o, "Order", at);
  update.setOrder(order.empty() ? UpdateConfig::Order::STOP_FIRST
                                : static_cast<UpdateConfig::Order>(
                                      oneOf(order, kOrders, join(at, "Order"))));
}

void decodeEndpointSpec(const json::object& o, const std::string& at,
                        schema::EndpointSpec::Builder endpoint) {
  using schema::EndpointSpec;
  using schema::PortConfig;
  static constexpr std::array<std::string_view, 2> kModes{"vip", "dnsrr"};
  auto mode = getString(o, "Mode", at);
  if (!mode.empty())
    endpoint.setMode(static_cast<EndpointSpec::Mode>(oneOf(mode, kModes, join(at, "Mode"))));
  const json::array* ports = optArray(o, "Ports", at);
  if (!ports) return;
  std::string listPath = join(at, "Ports");
  auto list = endpoint.initPorts(static_cast<unsigned>(ports->size()));
  std::set<std::pair<uint32_t, PortConfig::Protocol>> published;
  for (size_t i = 0; i < ports->size(); ++i) {
    std::string path = indexed(listPath, i);
    const json::object& item = requiredObject((*ports)[i], path);
    auto out = list[unsigned(i)];
    out.setName(getString(item, "Name", path));
    static constexpr std::array<std::string_view, 3> kProtocols{"tcp", "udp", "sctp"};
    auto protocol = getString(item, "Protocol", path);
    if (!protocol.empty())
      out.setProtocol(
          static_cast<PortConfig::Protocol>(oneOf(protocol, kProtocols, join(path, "Protocol"))));
    auto target = optUint(item, "TargetPort", path, 65535).value_or(0);
    if (target == 0) throw BadRequest(join(path, "TargetPort"), "is required: 1..65535");
    out.setTargetPort(static_cast<uint32_t>(target));
    out.setPublishedPort(static_cast<uint32_t>(optUint(item, "PublishedPort", path, 65535).value_or(0)));
    static constexpr std::array<std::string_view, 2> kPublishModes{"ingress", "host"};
    auto publishMode = getString(item, "PublishMode", path);
    if (!publishMode.empty())
      out.setPublishMode(static_cast<PortConfig::PublishMode>(
          oneOf(publishMode, kPublishModes, join(path, "PublishMode"))));
    bool ingress = out.getPublishMode() == PortConfig::PublishMode::INGRESS;
    if (ingress && endpoint.getMode() == EndpointSpec::Mode::DNSRR)
      throw BadRequest(path, "a port published in ingress mode cannot be used with dnsrr; use "
                             "PublishMode \"host\" or EndpointSpec.Mode \"vip\"");
    if (ingress && out.getPublishedPort() != 0 &&
        !published.insert({out.getPublishedPort(), out.getProtocol()}).second)
      throw BadRequest(join(path, "PublishedPort"),
                       std::to_string(out.getPublishedPort()) + "/" +
                           std::string(kProtocols[static_cast<size_t>(out.getProtocol())]) +
                           " is published twice");
  }
}

}  // namespace

void decodeServiceSpec(const json::value& body, schema::ServiceSpec::Builder spec) {
  const json::object& o = bodyObject(body, "");
  // An empty name is allowed here: like the engine, the caller then picks one.
  std::string name = decodeAnnotations(o, "", spec.getAnnotations());
  if (!name.empty()) checkServiceName(name, "Name");

  const json::object* task = optObject(o, "TaskTemplate", "");
  if (!task) throw BadRequest("TaskTemplate", "is required: it holds the ContainerSpec to run");
  decodeTaskSpec(*task, "TaskTemplate", spec.getTask());
  // The deprecated ServiceSpec.Networks still counts when TaskTemplate has none.
  if (auto* networks = optArray(o, "Networks", ""); networks && spec.getTask().getNetworks().size() == 0)
    decodeNetworks(*networks, "Networks",
                   spec.getTask().initNetworks(static_cast<unsigned>(networks->size())));

  auto mode = spec.getMode();
  mode.setReplicated(1);  // the engine's default
  bool job = false;
  if (auto* given = optObject(o, "Mode", "")) {
    std::vector<std::string> kinds;
    for (std::string_view kind : {"Replicated", "Global", "ReplicatedJob", "GlobalJob"})
      if (optObject(*given, kind, "Mode")) kinds.emplace_back(kind);
    if (kinds.size() > 1)
      throw BadRequest("Mode", "give exactly one of Replicated, Global, ReplicatedJob, GlobalJob "
                               "(got " + kinds[0] + " and " + kinds[1] + ")");
    if (auto* replicated = optObject(*given, "Replicated", "Mode")) {
      mode.setReplicated(optUint(*replicated, "Replicas", "Mode.Replicated").value_or(1));
    } else if (optObject(*given, "Global", "Mode")) {
      mode.setGlobal();
    } else if (auto* replicatedJob = optObject(*given, "ReplicatedJob", "Mode")) {
      uint64_t maxConcurrent =
          optUint(*replicatedJob, "MaxConcurrent", "Mode.ReplicatedJob").value_or(1);
      uint64_t total =
          optUint(*replicatedJob, "TotalCompletions", "Mode.ReplicatedJob").value_or(maxConcurrent);
      auto group = mode.initReplicatedJob();
      group.setMaxConcurrent(maxConcurrent);
      group.setTotalCompletions(total);
      job = true;
    } else if (optObject(*given, "GlobalJob", "Mode")) {
      mode.setGlobalJob();
      job = true;
    }
  }

  if (auto* update = optObject(o, "UpdateConfig", "")) {
    if (job) throw BadRequest("UpdateConfig", "jobs do not take an UpdateConfig; leave it out");
    decodeUpdateConfig(*update, "UpdateConfig", spec.initUpdate());
  }
  if (auto* rollback = optObject(o, "RollbackConfig", ""))
    decodeUpdateConfig(*rollback, "RollbackConfig", spec.initRollback());
  if (auto* endpoint = optObject(o, "EndpointSpec", ""))
    decodeEndpointSpec(*endpoint, "EndpointSpec", spec.initEndpoint());
}

}  // namespace swarm::api
