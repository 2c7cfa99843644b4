#include "container_config.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <cctype>
#include <ctime>

namespace swarm::docker {
namespace {

namespace json = boost::json;
using schema::ContainerState;
using schema::HealthState;

std::string str(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

json::array texts(capnp::List<capnp::Text>::Reader list) {
  json::array out;
  for (auto t : list) out.emplace_back(json::string_view(t.cStr(), t.size()));
  return out;
}

json::object keyValues(capnp::List<schema::KeyValue>::Reader list) {
  json::object out;
  for (auto kv : list) out[json::string_view(kv.getKey().cStr())] = kv.getValue().cStr();
  return out;
}

const char* propagationName(schema::Mount::Propagation p) {
  switch (p) {
    case schema::Mount::Propagation::RPRIVATE:
      return "rprivate";
    case schema::Mount::Propagation::PRIVATE:
      return "private";
    case schema::Mount::Propagation::RSHARED:
      return "rshared";
    case schema::Mount::Propagation::SHARED:
      return "shared";
    case schema::Mount::Propagation::RSLAVE:
      return "rslave";
    case schema::Mount::Propagation::SLAVE:
      return "slave";
    case schema::Mount::Propagation::UNSET:
      break;
  }
  return "";
}

// Fills `mount`, or returns why the mount cannot be made.
std::string translateMount(schema::Mount::Reader m, json::object& mount) {
  if (m.getTarget().size() == 0) return "a mount has no target path";
  mount["Target"] = m.getTarget().cStr();
  mount["ReadOnly"] = m.getReadOnly();
  if (m.getConsistency().size() > 0) mount["Consistency"] = m.getConsistency().cStr();
  switch (m.getType()) {
    case schema::Mount::Type::BIND: {
      if (m.getSource().size() == 0) {
        return "the bind mount at " + str(m.getTarget()) + " has no source path";
      }
      mount["Type"] = "bind";
      mount["Source"] = m.getSource().cStr();
      json::object options;
      if (auto p = propagationName(m.getBindPropagation()); *p != '\0') options["Propagation"] = p;
      if (m.getBindNonRecursive()) options["NonRecursive"] = true;
      if (!options.empty()) mount["BindOptions"] = std::move(options);
      return {};
    }
    case schema::Mount::Type::VOLUME: {
      mount["Type"] = "volume";
      if (m.getSource().size() > 0) mount["Source"] = m.getSource().cStr();
      json::object options;
      if (m.getVolumeNoCopy()) options["NoCopy"] = true;
      if (m.getVolumeLabels().size() > 0) options["Labels"] = keyValues(m.getVolumeLabels());
      if (m.hasVolumeDriver() && m.getVolumeDriver().getName().size() > 0) {
        json::object driver;
        driver["Name"] = m.getVolumeDriver().getName().cStr();
        driver["Options"] = keyValues(m.getVolumeDriver().getOptions());
        options["DriverConfig"] = std::move(driver);
      }
      if (!options.empty()) mount["VolumeOptions"] = std::move(options);
      return {};
    }
    case schema::Mount::Type::TMPFS: {
      if (m.getSource().size() > 0) {
        return "the tmpfs mount at " + str(m.getTarget()) + " has a source; tmpfs takes none";
      }
      mount["Type"] = "tmpfs";
      json::object options;
      if (m.getTmpfsSizeBytes() > 0) options["SizeBytes"] = m.getTmpfsSizeBytes();
      if (m.getTmpfsMode() != 0) options["Mode"] = m.getTmpfsMode();
      if (!options.empty()) mount["TmpfsOptions"] = std::move(options);
      return {};
    }
    case schema::Mount::Type::NPIPE:
      return "the npipe mount at " + str(m.getTarget()) + " needs Windows; this runtime runs Linux containers";
    case schema::Mount::Type::CLUSTER:
      return "the cluster (CSI) volume at " + str(m.getTarget()) + " is not supported by runtime-docker";
  }
  return "a mount has an unknown type";
}

// Seconds for Docker's StopTimeout / stop?t=, rounding up so a grace period is never shortened.
int64_t ceilSeconds(int64_t nanos) { return (nanos + 999999999) / 1000000000; }

std::string upper(std::string_view s) {
  std::string out;
  for (char c : s) out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// Swarm passes assigned generic resources as DOCKER_RESOURCE_<KIND>=<value>[,<value>...].
void genericResourceEnv(capnp::List<schema::GenericResource>::Reader assigned, json::array& env) {
  std::vector<std::pair<std::string, std::string>> byKind;
  for (auto r : assigned) {
    std::string kind = upper(r.getKind().cStr());
    std::string value = r.isNamed() ? str(r.getNamed()) : std::to_string(r.getDiscrete());
    auto it = byKind.begin();
    while (it != byKind.end() && it->first != kind) ++it;
    if (it == byKind.end()) {
      byKind.emplace_back(kind, value);
    } else {
      it->second += "," + value;
    }
  }
  for (auto& [kind, value] : byKind) env.emplace_back("DOCKER_RESOURCE_" + kind + "=" + value);
}

}  // namespace

std::string containerName(schema::Task::Reader task) {
  std::string service = str(task.getServiceAnnotations().getName());
  if (service.empty()) service = str(task.getServiceId());
  std::string slot = task.getSlot() != 0 ? std::to_string(task.getSlot()) : str(task.getNodeId());
  return service + "." + slot + "." + str(task.getId());
}

CreatePlan planCreate(schema::Task::Reader task, std::string_view clusterId,
                      const CreateOptions& options) {
  CreatePlan plan;
  auto refuse = [&plan, &task](std::string why) {
    plan.error = "task " + str(task.getId()) + ": " + why;
    return plan;
  };
  auto runtime = task.getSpec().getRuntime();
  if (!runtime.isContainer()) {
    return refuse("its spec has a generic runtime; runtime-docker runs only container specs");
  }
  auto spec = runtime.getContainer();
  if (spec.getImage().size() == 0) return refuse("it has no container image; set the service's image");

  plan.name = containerName(task);

  json::object config;
  config["Image"] = spec.getImage().cStr();
  if (spec.getCommand().size() > 0) config["Entrypoint"] = texts(spec.getCommand());
  if (spec.getArgs().size() > 0) config["Cmd"] = texts(spec.getArgs());
  json::array env = texts(spec.getEnv());
  genericResourceEnv(task.getAssignedGenericResources(), env);
  if (!env.empty()) config["Env"] = std::move(env);
  if (spec.getUser().size() > 0) config["User"] = spec.getUser().cStr();
  if (spec.getDir().size() > 0) config["WorkingDir"] = spec.getDir().cStr();
  if (spec.getHostname().size() > 0) config["Hostname"] = spec.getHostname().cStr();
  if (spec.getTty()) config["Tty"] = true;
  if (spec.getOpenStdin()) config["OpenStdin"] = true;
  if (spec.getStopSignal().size() > 0) config["StopSignal"] = spec.getStopSignal().cStr();
  if (spec.getStopGracePeriod() >= 0) config["StopTimeout"] = ceilSeconds(spec.getStopGracePeriod());

  // Labels, in Swarm's order: the spec's, then the task's annotations, then the system labels,
  // which override both.
  json::object labels = keyValues(spec.getLabels());
  for (auto kv : task.getAnnotations().getLabels()) labels[kv.getKey().cStr()] = kv.getValue().cStr();
  labels[label::kTask] = "";
  labels[label::kTaskId] = task.getId().cStr();
  labels[label::kTaskName] = plan.name;
  labels[label::kNodeId] = task.getNodeId().cStr();
  labels[label::kServiceId] = task.getServiceId().cStr();
  labels[label::kServiceName] = task.getServiceAnnotations().getName().cStr();
  labels[label::kSlot] = std::to_string(task.getSlot());
  labels[label::kClusterId] = json::string_view(clusterId.data(), clusterId.size());
  labels[label::kRuntime] = label::kRuntimeValue;
  config["Labels"] = std::move(labels);

  if (spec.hasHealthcheck()) {
    auto h = spec.getHealthcheck();
    json::object health;
    health["Test"] = texts(h.getTest());
    if (h.getInterval() > 0) health["Interval"] = h.getInterval();
    if (h.getTimeout() > 0) health["Timeout"] = h.getTimeout();
    if (h.getRetries() > 0) health["Retries"] = h.getRetries();
    if (h.getStartPeriod() > 0) health["StartPeriod"] = h.getStartPeriod();
    // StartInterval needs API 1.44; Debian's engine speaks 1.41, so it is not sent.
    config["Healthcheck"] = std::move(health);
  }

  json::object host;
  switch (spec.getInit()) {
    case schema::OptionalBool::YES:
      host["Init"] = true;
      break;
    case schema::OptionalBool::NO:
      host["Init"] = false;
      break;
    case schema::OptionalBool::UNSET:
      break;
  }

  NetworkMode network = options.defaultNetwork;
  for (auto attachment : task.getSpec().getNetworks()) {
    std::string target = str(attachment.getTarget());
    if (target == "host") {
      network = NetworkMode::host;
    } else if (target == "none") {
      network = NetworkMode::none;
    } else {
      return refuse("it attaches to network '" + target +
                    "'; runtime-docker attaches only the node-local networks host and none");
    }
  }
  host["NetworkMode"] = network == NetworkMode::host ? "host" : "none";

  json::array mounts;
  for (auto m : spec.getMounts()) {
    json::object mount;
    if (auto why = translateMount(m, mount); !why.empty()) return refuse(why);
    mounts.emplace_back(std::move(mount));
  }
  if (!mounts.empty()) host["Mounts"] = std::move(mounts);

  auto resources = task.getSpec().getResources();
  auto limits = resources.getLimits();
  if (limits.getNanoCpus() > 0) host["NanoCpus"] = limits.getNanoCpus();
  if (limits.getMemoryBytes() > 0) host["Memory"] = limits.getMemoryBytes();
  if (limits.getPids() > 0) host["PidsLimit"] = limits.getPids();
  if (resources.getReservations().getMemoryBytes() > 0) {
    host["MemoryReservation"] = resources.getReservations().getMemoryBytes();
  }
  if (resources.getSwapBytes() >= 0) host["MemorySwap"] = resources.getSwapBytes();
  if (resources.getMemorySwappiness() >= 0) host["MemorySwappiness"] = resources.getMemorySwappiness();

  if (spec.getReadOnly()) host["ReadonlyRootfs"] = true;
  if (spec.getGroups().size() > 0) host["GroupAdd"] = texts(spec.getGroups());
  if (spec.getHosts().size() > 0) {
    // Swarm's form is "IP name [alias...]" (an /etc/hosts line); Docker wants "name:IP".
    json::array extra;
    for (auto line : spec.getHosts()) {
      std::vector<std::string> words;
      std::string word;
      for (char c : std::string_view(line.cStr(), line.size())) {
        if (std::isspace(static_cast<unsigned char>(c))) {
          if (!word.empty()) words.push_back(std::move(word));
          word.clear();
        } else {
          word += c;
        }
      }
      if (!word.empty()) words.push_back(std::move(word));
      if (words.size() < 2) {
        return refuse("hosts entry '" + str(line) + "' is not \"<IP> <name> [aliases...]\"");
      }
      for (size_t i = 1; i < words.size(); ++i) extra.emplace_back(words[i] + ":" + words[0]);
    }
    host["ExtraHosts"] = std::move(extra);
  }
  if (spec.hasDnsConfig()) {
    auto dns = spec.getDnsConfig();
    if (dns.getNameservers().size() > 0) host["Dns"] = texts(dns.getNameservers());
    if (dns.getSearch().size() > 0) host["DnsSearch"] = texts(dns.getSearch());
    if (dns.getOptions().size() > 0) host["DnsOptions"] = texts(dns.getOptions());
  }
  if (spec.getSysctls().size() > 0) host["Sysctls"] = keyValues(spec.getSysctls());
  if (spec.getCapabilityAdd().size() > 0) host["CapAdd"] = texts(spec.getCapabilityAdd());
  if (spec.getCapabilityDrop().size() > 0) host["CapDrop"] = texts(spec.getCapabilityDrop());
  if (spec.getUlimits().size() > 0) {
    json::array ulimits;
    for (auto u : spec.getUlimits()) {
      ulimits.emplace_back(json::object{{"Name", u.getName().cStr()}, {"Soft", u.getSoft()}, {"Hard", u.getHard()}});
    }
    host["Ulimits"] = std::move(ulimits);
  }
  if (spec.getOomScoreAdj() != 0) host["OomScoreAdj"] = spec.getOomScoreAdj();
  if (spec.getNoNewPrivileges()) host["SecurityOpt"] = json::array{"no-new-privileges"};
  if (spec.getIsolation().size() > 0 && spec.getIsolation() != "default") {
    host["Isolation"] = spec.getIsolation().cStr();
  }
  auto logDriver = task.getSpec().getLogDriver();
  if (logDriver.getName().size() > 0) {
    host["LogConfig"] =
        json::object{{"Type", logDriver.getName().cStr()}, {"Config", keyValues(logDriver.getOptions())}};
  }
  config["HostConfig"] = std::move(host);

  plan.body = json::serialize(config);
  return plan;
}

ImagePull imagePull(std::string_view reference) {
  if (reference.find('@') != std::string_view::npos) return {std::string(reference), ""};
  // A tag is a ':' after the last '/' (a ':' before it belongs to a registry's port).
  size_t slash = reference.rfind('/');
  size_t colon = reference.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    return {std::string(reference.substr(0, colon)), std::string(reference.substr(colon + 1))};
  }
  return {std::string(reference), "latest"};
}

int64_t parseTime(std::string_view t) {
  // 2026-12-04T18:46:48.949476154Z (or with a +hh:mm offset)
  auto digits = [&t](size_t at, size_t n) -> int {
    int v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (i >= t.size() || !std::isdigit(static_cast<unsigned char>(t[i]))) return -1;
      v = v * 10 + (t[i] - '0');
    }
    return v;
  };
  if (t.size() < 20 || t[4] != '-' || t[7] != '-' || t[10] != 'T') return 0;
  int year = digits(0, 4), month = digits(5, 2), day = digits(8, 2);
  int hour = digits(11, 2), minute = digits(14, 2), second = digits(17, 2);
  if (year <= 1 || month < 1 || day < 1 || hour < 0 || minute < 0 || second < 0) return 0;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  int64_t seconds = static_cast<int64_t>(timegm(&tm));
  size_t at = 19;
  int64_t nanos = 0;
  if (at < t.size() && t[at] == '.') {
    int64_t scale = 100000000;
    for (++at; at < t.size() && std::isdigit(static_cast<unsigned char>(t[at])); ++at) {
      nanos += (t[at] - '0') * scale;
      scale /= 10;
    }
  }
  if (at < t.size() && (t[at] == '+' || t[at] == '-')) {
    int oh = digits(at + 1, 2), om = digits(at + 4, 2);
    if (oh >= 0 && om >= 0) seconds -= (t[at] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
  }
  return seconds * 1000000000 + nanos;
}

ContainerState containerState(std::string_view s) {
  if (s == "created") return ContainerState::CREATED;
  if (s == "running") return ContainerState::RUNNING;
  if (s == "paused") return ContainerState::PAUSED;
  if (s == "restarting") return ContainerState::RESTARTING;
  if (s == "exited") return ContainerState::EXITED;
  if (s == "dead" || s == "removing") return ContainerState::DEAD;
  return ContainerState::MISSING;
}

HealthState healthState(std::string_view s) {
  if (s == "starting") return HealthState::STARTING;
  if (s == "healthy") return HealthState::HEALTHY;
  if (s == "unhealthy") return HealthState::UNHEALTHY;
  return HealthState::NONE;
}

const json::value* member(const json::value& v, std::string_view key) {
  if (!v.is_object()) return nullptr;
  return v.as_object().if_contains(json::string_view(key.data(), key.size()));
}

std::string text(const json::value& v, std::string_view key) {
  auto* m = member(v, key);
  return m != nullptr && m->is_string() ? std::string(m->as_string().c_str()) : std::string();
}

int64_t integer(const json::value& v, std::string_view key) {
  auto* m = member(v, key);
  if (m == nullptr) return 0;
  if (m->is_int64()) return m->as_int64();
  if (m->is_uint64()) return static_cast<int64_t>(m->as_uint64());
  if (m->is_double()) return static_cast<int64_t>(m->as_double());
  return 0;
}

void readInspect(const json::value& inspect, schema::ContainerInfo::Builder info) {
  static const json::value kEmpty = json::object();
  auto* config = member(inspect, "Config");
  auto* labels = config != nullptr ? member(*config, "Labels") : nullptr;
  auto* state = member(inspect, "State");
  const json::value& l = labels != nullptr ? *labels : kEmpty;
  const json::value& s = state != nullptr ? *state : kEmpty;
  info.setTaskId(text(l, label::kTaskId));
  info.setContainerId(text(inspect, "Id"));
  info.setServiceId(text(l, label::kServiceId));
  info.setNodeId(text(l, label::kNodeId));
  std::string slot = text(l, label::kSlot);
  info.setSlot(slot.empty() ? 0 : std::strtoull(slot.c_str(), nullptr, 10));
  info.setState(containerState(text(s, "Status")));
  auto* health = member(s, "Health");
  info.setHealth(health != nullptr ? healthState(text(*health, "Status")) : HealthState::NONE);
  info.setPid(static_cast<int32_t>(integer(s, "Pid")));
  info.setExitCode(static_cast<int32_t>(integer(s, "ExitCode")));
  info.setStartedAt(parseTime(text(s, "StartedAt")));
  info.setFinishedAt(parseTime(text(s, "FinishedAt")));
  std::string error = text(s, "Error");
  if (error.empty() && member(s, "OOMKilled") != nullptr && member(s, "OOMKilled")->is_bool() &&
      member(s, "OOMKilled")->as_bool()) {
    error = "out of memory: the container hit its memory limit and was killed";
  }
  info.setError(error);
  info.setImage(config != nullptr ? text(*config, "Image") : std::string());
}

kj::Maybe<Event> readEvent(const json::value& event) {
  using Action = schema::RuntimeEvent::Action;
  if (text(event, "Type") != "container") return nullptr;
  std::string action = text(event, "Action");
  static const json::value kEmpty = json::object();
  auto* actor = member(event, "Actor");
  auto* attributes = actor != nullptr ? member(*actor, "Attributes") : nullptr;
  const json::value& a = attributes != nullptr ? *attributes : kEmpty;
  Event e;
  constexpr std::string_view kHealth = "health_status: ";
  if (action == "create") {
    e.action = Action::CREATE;
  } else if (action == "start") {
    e.action = Action::START;
  } else if (action == "die") {
    e.action = Action::DIE;
  } else if (action == "stop") {
    e.action = Action::STOP;
  } else if (action == "kill") {
    e.action = Action::KILL;
  } else if (action == "destroy") {
    e.action = Action::DESTROY;
  } else if (action == "oom") {
    e.action = Action::OOM;
  } else if (action.compare(0, kHealth.size(), kHealth) == 0) {
    e.action = Action::HEALTH_CHANGED;
    e.health = healthState(std::string_view(action).substr(kHealth.size()));
  } else {
    return nullptr;
  }
  e.taskId = text(a, label::kTaskId);
  e.containerId = actor != nullptr ? text(*actor, "ID") : std::string();
  e.timeNanos = integer(event, "timeNano");
  if (e.timeNanos == 0) e.timeNanos = integer(event, "time") * 1000000000;
  std::string exitCode = text(a, "exitCode");
  e.exitCode = exitCode.empty() ? 0 : std::atoi(exitCode.c_str());
  return e;
}

void readInfo(const json::value& info, schema::RuntimeDescription::Builder d) {
  d.setEngineVersion(text(info, "ServerVersion"));
  auto platform = d.initPlatform();
  platform.setOs(text(info, "OSType"));
  platform.setArchitecture(text(info, "Architecture"));
  auto resources = d.initResources();
  resources.setNanoCpus(integer(info, "NCPU") * 1000000000);
  resources.setMemoryBytes(integer(info, "MemTotal"));
  d.setHostname(text(info, "Name"));
  // Engine labels come as "key=value" strings.
  std::vector<std::pair<std::string, std::string>> pairs;
  if (auto* labels = member(info, "Labels"); labels != nullptr && labels->is_array()) {
    for (auto& l : labels->as_array()) {
      if (!l.is_string()) continue;
      std::string_view kv(l.as_string().data(), l.as_string().size());
      size_t eq = kv.find('=');
      pairs.emplace_back(std::string(kv.substr(0, eq)),
                         eq == std::string_view::npos ? "" : std::string(kv.substr(eq + 1)));
    }
  }
  auto out = d.initLabels(static_cast<unsigned>(pairs.size()));
  for (unsigned i = 0; i < pairs.size(); ++i) {
    out[i].setKey(pairs[i].first);
    out[i].setValue(pairs[i].second);
  }
}

}  // namespace swarm::docker
