#include "encode.h"

#include "text.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <charconv>
#include <map>
#include <memory>

namespace swarm::api {

namespace json = boost::json;
using store::schema::Cluster;
using store::schema::ClusterSpec;
using store::schema::Service;

namespace {

std::string text(capnp::Text::Reader value) { return std::string(value.cStr(), value.size()); }

std::string bytes(capnp::Data::Reader value) {
  return std::string(reinterpret_cast<const char*>(value.begin()), value.size());
}

// Go marshals a map with its keys sorted; a repeated key keeps its last value.
json::object labelsObject(capnp::List<schema::KeyValue>::Reader labels) {
  std::map<std::string, std::string> sorted;
  for (auto label : labels) sorted[text(label.getKey())] = text(label.getValue());
  json::object out;
  for (auto& [key, value] : sorted) out[key] = value;
  return out;
}

json::array stringArray(capnp::List<capnp::Text>::Reader values) {
  json::array out;
  for (auto value : values) out.emplace_back(text(value));
  return out;
}

// Setters for `json:",omitempty"` fields.
void putText(json::object& o, std::string_view key, capnp::Text::Reader value) {
  if (value.size() > 0) o[key] = text(value);
}
void putString(json::object& o, std::string_view key, const std::string& value) {
  if (!value.empty()) o[key] = value;
}
void putInt(json::object& o, std::string_view key, int64_t value) {
  if (value != 0) o[key] = value;
}
void putUint(json::object& o, std::string_view key, uint64_t value) {
  if (value != 0) o[key] = value;
}
void putBool(json::object& o, std::string_view key, bool value) {
  if (value) o[key] = true;
}
void putStrings(json::object& o, std::string_view key, capnp::List<capnp::Text>::Reader values) {
  if (values.size() > 0) o[key] = stringArray(values);
}
void putLabels(json::object& o, std::string_view key,
               capnp::List<schema::KeyValue>::Reader labels) {
  if (labels.size() > 0) o[key] = labelsObject(labels);
}
void putBase64(json::object& o, std::string_view key, capnp::Data::Reader value) {
  if (value.size() > 0) o[key] = base64Encode(bytes(value));
}

json::object versionObject(schema::Version::Reader version) {
  json::object out;
  putUint(out, "Index", version.getIndex());
  return out;
}

// The embedded Meta: Version, CreatedAt, UpdatedAt (time.Time is never omitted).
void putMeta(json::object& o, schema::Meta::Reader meta) {
  o["Version"] = versionObject(meta.getVersion());
  o["CreatedAt"] = formatTime(meta.getCreatedAt());
  o["UpdatedAt"] = formatTime(meta.getUpdatedAt());
}

// The embedded Annotations: Name is omitempty, Labels is not (an empty map prints as {}).
void putAnnotations(json::object& o, schema::Annotations::Reader annotations) {
  putText(o, "Name", annotations.getName());
  o["Labels"] = labelsObject(annotations.getLabels());
}

json::object driverObject(schema::Driver::Reader driver) {
  json::object out;
  putText(out, "Name", driver.getName());
  putLabels(out, "Options", driver.getOptions());
  return out;
}

json::array genericResources(capnp::List<schema::GenericResource>::Reader resources) {
  json::array out;
  for (auto resource : resources) {
    json::object spec;
    putText(spec, "Kind", resource.getKind());
    json::object entry;
    if (resource.isNamed()) {
      putText(spec, "Value", resource.getNamed());
      entry["NamedResourceSpec"] = std::move(spec);
    } else {
      putInt(spec, "Value", resource.getDiscrete());
      entry["DiscreteResourceSpec"] = std::move(spec);
    }
    out.emplace_back(std::move(entry));
  }
  return out;
}

json::object platformObject(schema::Platform::Reader platform) {
  json::object out;
  putText(out, "Architecture", platform.getArchitecture());
  putText(out, "OS", platform.getOs());
  return out;
}

json::object portObject(schema::PortConfig::Reader port) {
  static constexpr const char* kProtocols[] = {"tcp", "udp", "sctp"};
  static constexpr const char* kModes[] = {"ingress", "host"};
  json::object out;
  putText(out, "Name", port.getName());
  out["Protocol"] = kProtocols[static_cast<int>(port.getProtocol()) % 3];
  putUint(out, "TargetPort", port.getTargetPort());
  putUint(out, "PublishedPort", port.getPublishedPort());
  out["PublishMode"] = kModes[static_cast<int>(port.getPublishMode()) % 2];
  return out;
}

json::array portArray(capnp::List<schema::PortConfig>::Reader ports) {
  json::array out;
  for (auto port : ports) out.emplace_back(portObject(port));
  return out;
}

json::object endpointSpecObject(schema::EndpointSpec::Reader endpoint) {
  json::object out;
  out["Mode"] = endpoint.getMode() == schema::EndpointSpec::Mode::DNSRR ? "dnsrr" : "vip";
  if (endpoint.getPorts().size() > 0) out["Ports"] = portArray(endpoint.getPorts());
  return out;
}

// A float32 as Go prints it: the shortest decimal that reads back as the same float32.
json::value float32Value(float value) {
  if (value == static_cast<float>(static_cast<int64_t>(value))) return static_cast<int64_t>(value);
  char buffer[32];
  auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  double shortest = 0;
  std::from_chars(buffer, result.ptr, shortest);
  return shortest;
}

json::object updateConfigObject(schema::UpdateConfig::Reader update) {
  using schema::UpdateConfig;
  json::object out;
  out["Parallelism"] = update.getParallelism();
  putInt(out, "Delay", update.getDelay());
  switch (update.getFailureAction()) {
    case UpdateConfig::FailureAction::PAUSE: out["FailureAction"] = "pause"; break;
    case UpdateConfig::FailureAction::CONTINUE: out["FailureAction"] = "continue"; break;
    case UpdateConfig::FailureAction::ROLLBACK: out["FailureAction"] = "rollback"; break;
  }
  putInt(out, "Monitor", update.getMonitor());
  out["MaxFailureRatio"] = float32Value(update.getMaxFailureRatio());
  out["Order"] = update.getOrder() == UpdateConfig::Order::START_FIRST ? "start-first" : "stop-first";
  return out;
}

json::object fileTargetObject(schema::FileTarget::Reader file) {
  json::object out;
  out["Name"] = text(file.getName());
  out["UID"] = text(file.getUid());
  out["GID"] = text(file.getGid());
  out["Mode"] = file.getMode();
  return out;
}

json::object mountObject(schema::Mount::Reader mount) {
  using schema::Mount;
  static constexpr const char* kTypes[] = {"bind", "volume", "tmpfs", "npipe", "cluster"};
  static constexpr const char* kPropagations[] = {"",       "rprivate", "private", "rshared",
                                                  "shared", "rslave",   "slave"};
  json::object out;
  out["Type"] = kTypes[static_cast<int>(mount.getType()) % 5];
  putText(out, "Source", mount.getSource());
  putText(out, "Target", mount.getTarget());
  putBool(out, "ReadOnly", mount.getReadOnly());
  putText(out, "Consistency", mount.getConsistency());
  if (mount.getBindPropagation() != Mount::Propagation::UNSET || mount.getBindNonRecursive()) {
    json::object bind;
    putString(bind, "Propagation", kPropagations[static_cast<int>(mount.getBindPropagation()) % 7]);
    putBool(bind, "NonRecursive", mount.getBindNonRecursive());
    out["BindOptions"] = std::move(bind);
  }
  if (mount.getVolumeNoCopy() || mount.getVolumeLabels().size() > 0 || mount.hasVolumeDriver()) {
    json::object volume;
    putBool(volume, "NoCopy", mount.getVolumeNoCopy());
    putLabels(volume, "Labels", mount.getVolumeLabels());
    if (mount.hasVolumeDriver()) volume["DriverConfig"] = driverObject(mount.getVolumeDriver());
    out["VolumeOptions"] = std::move(volume);
  }
  if (mount.getTmpfsSizeBytes() != 0 || mount.getTmpfsMode() != 0) {
    json::object tmpfs;
    putInt(tmpfs, "SizeBytes", mount.getTmpfsSizeBytes());
    putUint(tmpfs, "Mode", mount.getTmpfsMode());
    out["TmpfsOptions"] = std::move(tmpfs);
  }
  return out;
}

json::object containerSpecObject(schema::ContainerSpec::Reader c) {
  json::object out;
  putText(out, "Image", c.getImage());
  putLabels(out, "Labels", c.getLabels());
  putStrings(out, "Command", c.getCommand());
  putStrings(out, "Args", c.getArgs());
  putText(out, "Hostname", c.getHostname());
  putStrings(out, "Env", c.getEnv());
  putText(out, "Dir", c.getDir());
  putText(out, "User", c.getUser());
  putStrings(out, "Groups", c.getGroups());
  if (c.getNoNewPrivileges()) {
    // Go's Privileges has two pointer fields without omitempty.
    json::object privileges;
    privileges["CredentialSpec"] = nullptr;
    privileges["SELinuxContext"] = nullptr;
    privileges["NoNewPrivileges"] = true;
    out["Privileges"] = std::move(privileges);
  }
  if (c.getInit() != schema::OptionalBool::UNSET)
    out["Init"] = c.getInit() == schema::OptionalBool::YES;
  putText(out, "StopSignal", c.getStopSignal());
  putBool(out, "TTY", c.getTty());
  putBool(out, "OpenStdin", c.getOpenStdin());
  putBool(out, "ReadOnly", c.getReadOnly());
  if (c.getMounts().size() > 0) {
    json::array mounts;
    for (auto mount : c.getMounts()) mounts.emplace_back(mountObject(mount));
    out["Mounts"] = std::move(mounts);
  }
  if (c.getStopGracePeriod() >= 0) out["StopGracePeriod"] = c.getStopGracePeriod();
  if (c.hasHealthcheck()) {
    auto health = c.getHealthcheck();
    json::object h;
    putStrings(h, "Test", health.getTest());
    putInt(h, "Interval", health.getInterval());
    putInt(h, "Timeout", health.getTimeout());
    putInt(h, "StartPeriod", health.getStartPeriod());
    putInt(h, "StartInterval", health.getStartInterval());
    putUint(h, "Retries", health.getRetries());
    out["Healthcheck"] = std::move(h);
  }
  putStrings(out, "Hosts", c.getHosts());
  if (c.hasDnsConfig()) {
    auto dns = c.getDnsConfig();
    json::object d;
    putStrings(d, "Nameservers", dns.getNameservers());
    putStrings(d, "Search", dns.getSearch());
    putStrings(d, "Options", dns.getOptions());
    out["DNSConfig"] = std::move(d);
  }
  if (c.getSecrets().size() > 0) {
    json::array secrets;
    for (auto ref : c.getSecrets()) {
      json::object s;
      s["File"] = fileTargetObject(ref.getFile());
      s["SecretID"] = text(ref.getSecretId());
      s["SecretName"] = text(ref.getSecretName());
      secrets.emplace_back(std::move(s));
    }
    out["Secrets"] = std::move(secrets);
  }
  if (c.getConfigs().size() > 0) {
    json::array configs;
    for (auto ref : c.getConfigs()) {
      json::object s;
      if (ref.getTarget().isFile())
        s["File"] = fileTargetObject(ref.getTarget().getFile());
      else
        s["Runtime"] = json::object();
      s["ConfigID"] = text(ref.getConfigId());
      s["ConfigName"] = text(ref.getConfigName());
      configs.emplace_back(std::move(s));
    }
    out["Configs"] = std::move(configs);
  }
  putText(out, "Isolation", c.getIsolation());
  putLabels(out, "Sysctls", c.getSysctls());
  putStrings(out, "CapabilityAdd", c.getCapabilityAdd());
  putStrings(out, "CapabilityDrop", c.getCapabilityDrop());
  if (c.getUlimits().size() > 0) {
    json::array ulimits;
    for (auto limit : c.getUlimits()) {
      json::object u;
      u["Name"] = text(limit.getName());
      u["Hard"] = limit.getHard();
      u["Soft"] = limit.getSoft();
      ulimits.emplace_back(std::move(u));
    }
    out["Ulimits"] = std::move(ulimits);
  }
  putInt(out, "OomScoreAdj", c.getOomScoreAdj());
  return out;
}

json::object resourcesObject(schema::ResourceRequirements::Reader r) {
  json::object out;
  if (r.hasLimits()) {
    auto limits = r.getLimits();
    json::object l;
    putInt(l, "NanoCPUs", limits.getNanoCpus());
    putInt(l, "MemoryBytes", limits.getMemoryBytes());
    putInt(l, "Pids", limits.getPids());
    out["Limits"] = std::move(l);
  }
  if (r.hasReservations()) {
    auto reservations = r.getReservations();
    json::object l;
    putInt(l, "NanoCPUs", reservations.getNanoCpus());
    putInt(l, "MemoryBytes", reservations.getMemoryBytes());
    if (reservations.getGeneric().size() > 0)
      l["GenericResources"] = genericResources(reservations.getGeneric());
    out["Reservations"] = std::move(l);
  }
  if (r.getSwapBytes() >= 0) out["SwapBytes"] = r.getSwapBytes();
  if (r.getMemorySwappiness() >= 0) out["MemorySwappiness"] = r.getMemorySwappiness();
  return out;
}

json::object restartObject(schema::RestartPolicy::Reader restart) {
  using Condition = schema::RestartPolicy::Condition;
  json::object out;
  switch (restart.getCondition()) {
    case Condition::NONE: out["Condition"] = "none"; break;
    case Condition::ON_FAILURE: out["Condition"] = "on-failure"; break;
    case Condition::ANY: out["Condition"] = "any"; break;
  }
  out["Delay"] = restart.getDelay();
  out["MaxAttempts"] = restart.getMaxAttempts();
  putInt(out, "Window", restart.getWindow());
  return out;
}

json::object placementObject(schema::Placement::Reader placement) {
  json::object out;
  putStrings(out, "Constraints", placement.getConstraints());
  if (placement.getPreferences().size() > 0) {
    json::array preferences;
    for (auto preference : placement.getPreferences()) {
      json::object spread;
      spread["SpreadDescriptor"] = text(preference.getSpreadDescriptor());
      json::object entry;
      entry["Spread"] = std::move(spread);
      preferences.emplace_back(std::move(entry));
    }
    out["Preferences"] = std::move(preferences);
  }
  putUint(out, "MaxReplicas", placement.getMaxReplicas());
  if (placement.getPlatforms().size() > 0) {
    json::array platforms;
    for (auto platform : placement.getPlatforms()) platforms.emplace_back(platformObject(platform));
    out["Platforms"] = std::move(platforms);
  }
  return out;
}

json::array networksArray(capnp::List<schema::NetworkAttachmentConfig>::Reader networks) {
  json::array out;
  for (auto network : networks) {
    json::object n;
    putText(n, "Target", network.getTarget());
    putStrings(n, "Aliases", network.getAliases());
    putLabels(n, "DriverOpts", network.getDriverOpts());
    out.emplace_back(std::move(n));
  }
  return out;
}

json::object tlsInfoFromPem(capnp::Data::Reader pem) {
  json::object out;
  if (pem.size() == 0) return out;
  out["TrustRoot"] = bytes(pem);
  // A root is its own issuer: its subject and public key are what nodes report as the issuer.
  if (auto issuer = issuerOfRoot(pem)) {
    putString(out, "CertIssuerSubject", base64Encode(issuer->subjectDer));
    putString(out, "CertIssuerPublicKey", base64Encode(issuer->publicKeyDer));
  }
  return out;
}

json::object specObject(ClusterSpec::Reader spec, uint64_t forceRotate) {
  json::object out;
  // The cluster is always "default", whatever an old writer stored.
  out["Name"] = spec.getAnnotations().getName().size() > 0 ? text(spec.getAnnotations().getName())
                                                            : std::string("default");
  out["Labels"] = labelsObject(spec.getAnnotations().getLabels());

  json::object orchestration;
  orchestration["TaskHistoryRetentionLimit"] = spec.getTaskHistoryRetentionLimit();
  out["Orchestration"] = std::move(orchestration);

  json::object raft;
  putUint(raft, "SnapshotInterval", spec.getSnapshotInterval());
  raft["KeepOldSnapshots"] = spec.getKeepOldSnapshots();
  putUint(raft, "LogEntriesForSlowFollowers", spec.getLogEntriesForSlowFollowers());
  raft["ElectionTick"] = spec.getElectionTick();
  raft["HeartbeatTick"] = spec.getHeartbeatTick();
  out["Raft"] = std::move(raft);

  json::object dispatcher;
  putInt(dispatcher, "HeartbeatPeriod", spec.getDispatcherHeartbeatPeriod());
  out["Dispatcher"] = std::move(dispatcher);

  json::object ca;
  putInt(ca, "NodeCertExpiry", spec.getNodeCertExpiry());
  if (spec.getExternalCas().size() > 0) {
    json::array cas;
    for (auto external : spec.getExternalCas()) {
      json::object e;
      e["Protocol"] = "cfssl";  // the only protocol Docker knows
      e["URL"] = text(external.getUrl());
      putLabels(e, "Options", external.getOptions());
      e["CACert"] = bytes(external.getCaCert());
      cas.emplace_back(std::move(e));
    }
    ca["ExternalCAs"] = std::move(cas);
  }
  // SigningCACert and SigningCAKey are write-only in Docker: never returned.
  putUint(ca, "ForceRotate", forceRotate);
  out["CAConfig"] = std::move(ca);

  json::object taskDefaults;
  if (spec.hasTaskDefaultLogDriver() && spec.getTaskDefaultLogDriver().getName().size() > 0)
    taskDefaults["LogDriver"] = driverObject(spec.getTaskDefaultLogDriver());
  out["TaskDefaults"] = std::move(taskDefaults);

  json::object encryption;
  encryption["AutoLockManagers"] = spec.getAutoLockManagers();
  out["EncryptionConfig"] = std::move(encryption);
  return out;
}

json::object clusterInfoObject(Cluster::Reader cluster, const NetworkSettings& network) {
  json::object out;
  out["ID"] = text(cluster.getId());
  putMeta(out, cluster.getMeta());
  out["Spec"] = specObject(cluster.getSpec(), cluster.getLastForcedRotation());
  // Only the certificate: rootCa.key never leaves the store through the API.
  out["TLSInfo"] = tlsInfoFromPem(cluster.getRootCa().getCert());
  out["RootRotationInProgress"] = cluster.getRootRotationInProgress();
  json::array pools;
  for (auto& pool : network.defaultAddrPool) pools.emplace_back(pool);
  out["DefaultAddrPool"] = std::move(pools);
  out["SubnetSize"] = network.subnetSize;
  out["DataPathPort"] = network.dataPathPort;
  return out;
}

}  // namespace

std::string nodeRoleName(schema::NodeRole role) {
  return role == schema::NodeRole::MANAGER ? "manager" : "worker";
}

std::string nodeAvailabilityName(schema::NodeAvailability availability) {
  switch (availability) {
    case schema::NodeAvailability::ACTIVE: return "active";
    case schema::NodeAvailability::PAUSE: return "pause";
    case schema::NodeAvailability::DRAIN: return "drain";
  }
  return std::to_string(static_cast<int>(availability));
}

std::string nodeStateName(schema::NodeState state) {
  switch (state) {
    case schema::NodeState::UNKNOWN: return "unknown";
    case schema::NodeState::DOWN: return "down";
    case schema::NodeState::READY: return "ready";
    case schema::NodeState::DISCONNECTED: return "disconnected";
  }
  return std::to_string(static_cast<int>(state));
}

std::string reachabilityName(schema::Reachability reachability) {
  switch (reachability) {
    case schema::Reachability::UNKNOWN: return "unknown";
    case schema::Reachability::UNREACHABLE: return "unreachable";
    case schema::Reachability::REACHABLE: return "reachable";
  }
  return std::to_string(static_cast<int>(reachability));
}

std::string taskStateName(uint16_t state) {
  switch (state) {
    case schema::TASK_STATE_NEW: return "new";
    case 128: return "allocated";  // SwarmKit's legacy ALLOCATED, still in Docker's enum
    case schema::TASK_STATE_PENDING: return "pending";
    case schema::TASK_STATE_ASSIGNED: return "assigned";
    case schema::TASK_STATE_ACCEPTED: return "accepted";
    case schema::TASK_STATE_PREPARING: return "preparing";
    case schema::TASK_STATE_READY: return "ready";
    case schema::TASK_STATE_STARTING: return "starting";
    case schema::TASK_STATE_RUNNING: return "running";
    case schema::TASK_STATE_COMPLETE: return "complete";
    case schema::TASK_STATE_SHUTDOWN: return "shutdown";
    case schema::TASK_STATE_FAILED: return "failed";
    case schema::TASK_STATE_REJECTED: return "rejected";
    case schema::TASK_STATE_REMOVE: return "remove";
    case schema::TASK_STATE_ORPHANED: return "orphaned";
  }
  // Go prints an unnamed protobuf enum value as its number.
  return std::to_string(state);
}

std::string updateStateName(store::schema::UpdateState state) {
  using store::schema::UpdateState;
  switch (state) {
    case UpdateState::NONE: return "";
    case UpdateState::UPDATING: return "updating";
    case UpdateState::PAUSED: return "paused";
    case UpdateState::COMPLETED: return "completed";
    case UpdateState::ROLLBACK_STARTED: return "rollback_started";
    case UpdateState::ROLLBACK_PAUSED: return "rollback_paused";
    case UpdateState::ROLLBACK_COMPLETED: return "rollback_completed";
  }
  return std::to_string(static_cast<int>(state));
}

boost::json::value encodeTlsInfo(schema::TlsInfo::Reader info) {
  json::object out;
  if (info.getTrustRoot().size() > 0) out["TrustRoot"] = bytes(info.getTrustRoot());
  putBase64(out, "CertIssuerSubject", info.getCertIssuerSubject());
  putBase64(out, "CertIssuerPublicKey", info.getCertIssuerPublicKey());
  return out;
}

std::optional<CertIssuer> issuerOfRoot(capnp::Data::Reader pem) {
  if (pem.size() == 0) return std::nullopt;
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.begin(), int(pem.size())),
                                                &BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr, &X509_free);
  if (!cert) return std::nullopt;
  auto derOf = [](auto* object, auto encode) {
    unsigned char* der = nullptr;
    int length = encode(object, &der);
    if (length <= 0) return std::string();
    std::string result(reinterpret_cast<char*>(der), size_t(length));
    OPENSSL_free(der);
    return result;
  };
  return CertIssuer{derOf(X509_get_subject_name(cert.get()), &i2d_X509_NAME),
                    derOf(X509_get_X509_PUBKEY(cert.get()), &i2d_X509_PUBKEY)};
}

boost::json::value encodeRootTlsInfo(capnp::Data::Reader rootCertPem) {
  return tlsInfoFromPem(rootCertPem);
}

boost::json::value encodeNode(schema::Node::Reader node) {
  json::object out;
  out["ID"] = text(node.getId());
  putMeta(out, node.getMeta());

  auto spec = node.getSpec();
  json::object s;
  putAnnotations(s, spec.getAnnotations());
  s["Role"] = nodeRoleName(spec.getDesiredRole());
  s["Availability"] = nodeAvailabilityName(spec.getAvailability());
  out["Spec"] = std::move(s);

  auto description = node.getDescription();
  json::object d;
  putText(d, "Hostname", description.getHostname());
  d["Platform"] = platformObject(description.getPlatform());
  json::object resources;
  putInt(resources, "NanoCPUs", description.getResources().getNanoCpus());
  putInt(resources, "MemoryBytes", description.getResources().getMemoryBytes());
  if (description.getResources().getGeneric().size() > 0)
    resources["GenericResources"] = genericResources(description.getResources().getGeneric());
  d["Resources"] = std::move(resources);
  auto engine = description.getEngine();
  json::object e;
  putText(e, "EngineVersion", engine.getEngineVersion());
  putLabels(e, "Labels", engine.getLabels());
  if (engine.getPlugins().size() > 0) {
    json::array plugins;
    for (auto plugin : engine.getPlugins()) {
      json::object p;
      putText(p, "Type", plugin.getType());
      putText(p, "Name", plugin.getName());
      plugins.emplace_back(std::move(p));
    }
    e["Plugins"] = std::move(plugins);
  }
  d["Engine"] = std::move(e);
  d["TLSInfo"] = encodeTlsInfo(description.getTlsInfo());
  out["Description"] = std::move(d);

  auto status = node.getStatus();
  json::object st;
  st["State"] = nodeStateName(status.getState());
  putText(st, "Message", status.getMessage());
  putText(st, "Addr", status.getAddr());
  out["Status"] = std::move(st);

  if (node.getManagerStatus().isManager()) {
    auto manager = node.getManagerStatus().getManager();
    json::object m;
    putBool(m, "Leader", manager.getLeader());
    m["Reachability"] = reachabilityName(manager.getReachability());
    putText(m, "Addr", manager.getAddr());
    out["ManagerStatus"] = std::move(m);
  }
  return out;
}

boost::json::value encodeSecret(schema::Secret::Reader secret) {
  json::object out;
  out["ID"] = text(secret.getId());
  putMeta(out, secret.getMeta());
  auto spec = secret.getSpec();
  json::object s;
  putAnnotations(s, spec.getAnnotations());
  // No Data: Docker never hands a secret's value back over the API.
  if (spec.hasDriver() && spec.getDriver().getName().size() > 0)
    s["Driver"] = driverObject(spec.getDriver());
  if (spec.hasTemplating() && spec.getTemplating().getName().size() > 0)
    s["Templating"] = driverObject(spec.getTemplating());
  out["Spec"] = std::move(s);
  return out;
}

boost::json::value encodeConfig(schema::Config::Reader config) {
  json::object out;
  out["ID"] = text(config.getId());
  putMeta(out, config.getMeta());
  auto spec = config.getSpec();
  json::object s;
  putAnnotations(s, spec.getAnnotations());
  putBase64(s, "Data", spec.getData());
  if (spec.hasTemplating() && spec.getTemplating().getName().size() > 0)
    s["Templating"] = driverObject(spec.getTemplating());
  out["Spec"] = std::move(s);
  return out;
}

boost::json::value encodeSwarmSpec(ClusterSpec::Reader spec) { return specObject(spec, 0); }

boost::json::value encodeClusterInfo(Cluster::Reader cluster, const NetworkSettings& network) {
  return clusterInfoObject(cluster, network);
}

boost::json::value encodeSwarm(Cluster::Reader cluster, const NetworkSettings& network) {
  json::object out = clusterInfoObject(cluster, network);
  json::object tokens;
  tokens["Worker"] = text(cluster.getJoinTokens().getWorker());
  tokens["Manager"] = text(cluster.getJoinTokens().getManager());
  out["JoinTokens"] = std::move(tokens);
  return out;
}

boost::json::value encodeTaskSpec(schema::TaskSpec::Reader spec) {
  json::object out;
  if (spec.getRuntime().isContainer())
    out["ContainerSpec"] = containerSpecObject(spec.getRuntime().getContainer());
  if (spec.hasResources()) out["Resources"] = resourcesObject(spec.getResources());
  if (spec.hasRestart()) out["RestartPolicy"] = restartObject(spec.getRestart());
  if (spec.hasPlacement()) out["Placement"] = placementObject(spec.getPlacement());
  if (spec.getNetworks().size() > 0) out["Networks"] = networksArray(spec.getNetworks());
  if (spec.hasLogDriver() && spec.getLogDriver().getName().size() > 0)
    out["LogDriver"] = driverObject(spec.getLogDriver());
  out["ForceUpdate"] = spec.getForceUpdate();
  if (spec.getRuntime().isContainer())
    out["Runtime"] = "container";
  else
    putText(out, "Runtime", spec.getRuntime().getGeneric().getKind());
  return out;
}

boost::json::value encodeServiceSpec(schema::ServiceSpec::Reader spec) {
  json::object out;
  putAnnotations(out, spec.getAnnotations());
  out["TaskTemplate"] = encodeTaskSpec(spec.getTask());
  json::object mode;
  switch (spec.getMode().which()) {
    case schema::ServiceSpec::Mode::REPLICATED: {
      json::object replicated;
      replicated["Replicas"] = spec.getMode().getReplicated();
      mode["Replicated"] = std::move(replicated);
      break;
    }
    case schema::ServiceSpec::Mode::GLOBAL: mode["Global"] = json::object(); break;
    case schema::ServiceSpec::Mode::REPLICATED_JOB: {
      json::object job;
      job["MaxConcurrent"] = spec.getMode().getReplicatedJob().getMaxConcurrent();
      job["TotalCompletions"] = spec.getMode().getReplicatedJob().getTotalCompletions();
      mode["ReplicatedJob"] = std::move(job);
      break;
    }
    case schema::ServiceSpec::Mode::GLOBAL_JOB: mode["GlobalJob"] = json::object(); break;
  }
  out["Mode"] = std::move(mode);
  if (spec.hasUpdate()) out["UpdateConfig"] = updateConfigObject(spec.getUpdate());
  if (spec.hasRollback()) out["RollbackConfig"] = updateConfigObject(spec.getRollback());
  if (spec.hasEndpoint()) out["EndpointSpec"] = endpointSpecObject(spec.getEndpoint());
  return out;
}

boost::json::value encodeService(Service::Reader service) {
  json::object out;
  out["ID"] = text(service.getId());
  putMeta(out, service.getMeta());
  out["Spec"] = encodeServiceSpec(service.getSpec());
  if (service.getPreviousSpec().isPrevious())
    out["PreviousSpec"] = encodeServiceSpec(service.getPreviousSpec().getPrevious());

  json::object endpoint;
  endpoint["Spec"] = service.getSpec().hasEndpoint()
                         ? endpointSpecObject(service.getSpec().getEndpoint())
                         : json::object();
  if (service.getEndpointPorts().size() > 0)
    endpoint["Ports"] = portArray(service.getEndpointPorts());
  out["Endpoint"] = std::move(endpoint);

  auto update = service.getUpdateStatus();
  if (update.getState() != store::schema::UpdateState::NONE) {
    json::object u;
    u["State"] = updateStateName(update.getState());
    if (update.getStartedAt() != 0) u["StartedAt"] = formatTime(update.getStartedAt());
    if (update.getCompletedAt() != 0) u["CompletedAt"] = formatTime(update.getCompletedAt());
    putText(u, "Message", update.getMessage());
    out["UpdateStatus"] = std::move(u);
  }

  auto mode = service.getSpec().getMode().which();
  if (mode == schema::ServiceSpec::Mode::REPLICATED_JOB ||
      mode == schema::ServiceSpec::Mode::GLOBAL_JOB) {
    json::object job;
    job["JobIteration"] = versionObject(service.getJobIteration());
    job["LastExecution"] = formatTime(service.getJobLastExecution());
    out["JobStatus"] = std::move(job);
  }
  return out;
}

boost::json::value encodeTask(schema::Task::Reader task) {
  json::object out;
  out["ID"] = text(task.getId());
  putMeta(out, task.getMeta());
  putAnnotations(out, task.getAnnotations());
  out["Spec"] = encodeTaskSpec(task.getSpec());
  putText(out, "ServiceID", task.getServiceId());
  putUint(out, "Slot", task.getSlot());
  putText(out, "NodeID", task.getNodeId());

  auto status = task.getStatus();
  json::object s;
  s["Timestamp"] = formatTime(status.getTimestamp());
  s["State"] = taskStateName(status.getState());
  putText(s, "Message", status.getMessage());
  putText(s, "Err", status.getErr());
  if (status.getContainer().getContainerId().size() > 0) {
    json::object container;
    container["ContainerID"] = text(status.getContainer().getContainerId());
    container["PID"] = status.getContainer().getPid();
    container["ExitCode"] = status.getContainer().getExitCode();
    s["ContainerStatus"] = std::move(container);
  }
  json::object portStatus;
  if (status.getPorts().size() > 0) portStatus["Ports"] = portArray(status.getPorts());
  s["PortStatus"] = std::move(portStatus);
  out["Status"] = std::move(s);

  out["DesiredState"] = taskStateName(task.getDesiredState());
  if (task.getAssignedGenericResources().size() > 0)
    out["GenericResources"] = genericResources(task.getAssignedGenericResources());
  if (task.hasJobIteration()) out["JobIteration"] = versionObject(task.getJobIteration());
  // Go's Task.Volumes has no omitempty: a task with no cluster volumes says null.
  out["Volumes"] = nullptr;
  return out;
}

}  // namespace swarm::api
