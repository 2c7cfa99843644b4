// swarmctl service create|ls|ps|inspect|scale|update|rollback|rm|logs.
#include "cli.h"
#include "tasks.h"
#include "text.h"

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cstring>
#include <map>
#include <sstream>

namespace swarm::ctl {

namespace json = boost::json;

namespace {

// ---- flag values -> spec fields ------------------------------------------------------------

std::int64_t duration(const Command& command, const std::string& flag, const std::string& text) {
  auto parsed = parseDuration(text);
  if (!parsed || *parsed < 0) {
    command.fail("--" + flag + " '" + text + "' is not a duration; use Go's form, e.g. 10s, 1m30s");
  }
  return *parsed;
}

std::int64_t whole(const Command& command, const std::string& flag, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || value < 0) {
    command.fail("--" + flag + " '" + text + "' must be a whole number >= 0");
  }
  return value;
}

std::vector<std::pair<std::string, std::string>> csvFields(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> fields;
  std::stringstream stream(text);
  std::string field;
  while (std::getline(stream, field, ',')) {
    auto pair = splitKeyValue(field);
    fields.push_back(pair ? *pair : std::pair{field, std::string()});
  }
  return fields;
}

bool truthy(const std::string& value) { return value.empty() || value == "true" || value == "1"; }

json::object parseMount(const Command& command, const std::string& text) {
  json::object mount{{"Type", "volume"}};
  for (const auto& [key, value] : csvFields(text)) {
    if (key == "type") {
      if (value != "bind" && value != "volume" && value != "tmpfs" && value != "npipe") {
        command.fail("--mount type '" + value + "' must be bind, volume or tmpfs");
      }
      mount["Type"] = value;
    } else if (key == "source" || key == "src") {
      mount["Source"] = value;
    } else if (key == "target" || key == "destination" || key == "dst") {
      mount["Target"] = value;
    } else if (key == "readonly" || key == "ro") {
      mount["ReadOnly"] = truthy(value);
    } else if (key == "bind-propagation") {
      mount["BindOptions"] = json::object{{"Propagation", value}};
    } else if (key == "volume-nocopy") {
      json::value options = mount.contains("VolumeOptions") ? mount["VolumeOptions"] : json::object();
      options.get_object()["NoCopy"] = truthy(value);
      mount["VolumeOptions"] = options;
    } else if (key == "volume-driver" || key == "volume-opt" || key == "volume-label") {
      json::value options = mount.contains("VolumeOptions") ? mount["VolumeOptions"] : json::object();
      if (key == "volume-driver") {
        ensure(options, {"DriverConfig"})["Name"] = value;
      } else {
        auto pair = splitKeyValue(value);
        if (!pair) command.fail("--mount " + key + " must be " + key + "=KEY=VALUE");
        if (key == "volume-opt") {
          ensure(options, {"DriverConfig", "Options"})[pair->first] = pair->second;
        } else {
          ensure(options, {"Labels"})[pair->first] = pair->second;
        }
      }
      mount["VolumeOptions"] = options;
    } else if (key == "tmpfs-size") {
      auto bytes = parseBytes(value);
      if (!bytes) command.fail("--mount tmpfs-size '" + value + "' is not a size like 64m");
      json::value options = mount.contains("TmpfsOptions") ? mount["TmpfsOptions"] : json::object();
      options.get_object()["SizeBytes"] = *bytes;
      mount["TmpfsOptions"] = options;
    } else if (key == "tmpfs-mode") {
      json::value options = mount.contains("TmpfsOptions") ? mount["TmpfsOptions"] : json::object();
      options.get_object()["Mode"] = std::strtol(value.c_str(), nullptr, 8);
      mount["TmpfsOptions"] = options;
    } else {
      command.fail("--mount: unknown field '" + key + "' in '" + text + "'");
    }
  }
  if (!mount.contains("Target")) command.fail("--mount '" + text + "' needs target=PATH");
  if (mount["Type"] == "bind" && !mount.contains("Source")) {
    command.fail("--mount '" + text + "' is a bind mount and needs source=PATH");
  }
  return mount;
}

json::object parsePort(const Command& command, const std::string& text) {
  json::object port{{"Protocol", "tcp"}, {"PublishMode", "ingress"}};
  auto number = [&](const std::string& value) {
    char* end = nullptr;
    long parsed = std::strtol(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || parsed < 1 || parsed > 65535) {
      command.fail("--publish '" + text + "': port '" + value + "' must be 1-65535");
    }
    return parsed;
  };
  if (text.find('=') != std::string::npos) {
    for (const auto& [key, value] : csvFields(text)) {
      if (key == "published") port["PublishedPort"] = number(value);
      else if (key == "target") port["TargetPort"] = number(value);
      else if (key == "protocol") port["Protocol"] = value;
      else if (key == "mode") port["PublishMode"] = value;
      else command.fail("--publish: unknown field '" + key + "' in '" + text + "'");
    }
  } else {
    std::string spec = text;
    if (auto slash = spec.find('/'); slash != std::string::npos) {
      port["Protocol"] = spec.substr(slash + 1);
      spec.erase(slash);
    }
    auto colon = spec.find(':');
    if (colon == std::string::npos) {
      port["TargetPort"] = number(spec);
    } else {
      port["PublishedPort"] = number(spec.substr(0, colon));
      port["TargetPort"] = number(spec.substr(colon + 1));
    }
  }
  if (!port.contains("TargetPort")) command.fail("--publish '" + text + "' needs a target port");
  std::string protocol(port["Protocol"].get_string());
  if (protocol != "tcp" && protocol != "udp" && protocol != "sctp") {
    command.fail("--publish '" + text + "': protocol must be tcp, udp or sctp");
  }
  return port;
}

// --secret / --config: "NAME" or "source=NAME,target=FILE,uid=0,gid=0,mode=0444"; the ID is
// looked up by exact name, as docker does.
json::object parseReference(Context& context, const Command& command, const std::string& kind,
                            const std::string& text) {
  std::string source, target, uid = "0", gid = "0";
  std::int64_t mode = 0444;
  if (text.find('=') == std::string::npos) {
    source = text;
  } else {
    for (const auto& [key, value] : csvFields(text)) {
      if (key == "source" || key == "src") source = value;
      else if (key == "target") target = value;
      else if (key == "uid") uid = value;
      else if (key == "gid") gid = value;
      else if (key == "mode") mode = std::strtol(value.c_str(), nullptr, 8);
      else command.fail("--" + kind + ": unknown field '" + key + "' in '" + text + "'");
    }
  }
  if (source.empty()) command.fail("--" + kind + " '" + text + "' needs source=NAME");
  std::string filters = json::serialize(json::object{{"name", json::object{{source, true}}}});
  auto found = context.api().get("/" + kind + "s", {{"filters", filters}});
  std::string id;
  if (found.is_array()) {
    for (const auto& item : found.get_array()) {
      if (str(item, {"Spec", "Name"}) == source || str(item, {"ID"}) == source) id = str(item, {"ID"});
    }
  }
  if (id.empty()) throw CliError(kind + " not found: " + source + " (create it with swarmctl " + kind + " create)");
  std::string capitalized = kind == "secret" ? "Secret" : "Config";
  return json::object{
      {"File", json::object{{"Name", target.empty() ? source : target}, {"UID", uid}, {"GID", gid}, {"Mode", mode}}},
      {capitalized + "ID", id},
      {capitalized + "Name", source}};
}

void addCommonFlags(Command& command) {
  command.option("replicas", "N", "number of tasks (replicated) or completions (replicated-job)")
      .option("max-concurrent", "N", "tasks of a replicated job running at once")
      .option("max-replicas", "N", "maximum tasks per node (0 = unlimited)")
      .option("reserve-cpu", "CPUS", "CPUs reserved per task, e.g. 0.5")
      .option("reserve-memory", "BYTES", "memory reserved per task, e.g. 256m")
      .option("limit-cpu", "CPUS", "CPU limit per task")
      .option("limit-memory", "BYTES", "memory limit per task")
      .option("limit-pids", "N", "process limit per task (0 = unlimited)")
      .option("restart-condition", "COND", "none, on-failure or any")
      .option("restart-delay", "DUR", "delay between restarts, e.g. 5s")
      .option("restart-max-attempts", "N", "restarts before giving up (0 = unlimited)")
      .option("restart-window", "DUR", "window used to evaluate the restart policy")
      .option("update-parallelism", "N", "tasks updated at once (0 = all)")
      .option("update-delay", "DUR", "delay between updates")
      .option("update-failure-action", "ACTION", "pause, continue or rollback")
      .option("update-monitor", "DUR", "time to watch each updated task for failure")
      .option("update-max-failure-ratio", "RATIO", "tolerated failure ratio, 0 to 1")
      .option("update-order", "ORDER", "stop-first or start-first")
      .option("rollback-parallelism", "N", "tasks rolled back at once (0 = all)")
      .option("rollback-delay", "DUR", "delay between rollbacks")
      .option("rollback-failure-action", "ACTION", "pause or continue")
      .option("rollback-monitor", "DUR", "time to watch each rolled back task for failure")
      .option("rollback-max-failure-ratio", "RATIO", "tolerated failure ratio, 0 to 1")
      .option("rollback-order", "ORDER", "stop-first or start-first")
      .option("hostname", "NAME", "container hostname")
      .option("user", 'u', "USER", "user[:group] to run as")
      .option("workdir", 'w', "DIR", "working directory in the container")
      .option("stop-grace-period", "DUR", "time to wait before killing a task")
      .option("stop-signal", "SIGNAL", "signal that stops a task")
      .option("endpoint-mode", "MODE", "vip or dnsrr")
      .boolean("init", "run an init inside each task's container")
      .boolean("tty", 't', "allocate a TTY")
      .boolean("detach", 'd', "exit at once instead of waiting for the service to converge")
      .boolean("quiet", 'q', "print no progress")
      .boolean("with-registry-auth", "accepted for docker compatibility (no registry auth is sent)")
      .boolean("no-resolve-image", "accepted for docker compatibility (images are never resolved)");
}

void applyUpdateConfig(const Command& command, const ParsedArgs& args, json::value& spec,
                       const std::string& prefix, const std::string& field) {
  static const char* kNames[] = {"parallelism", "delay", "failure-action", "monitor",
                                 "max-failure-ratio", "order"};
  bool any = false;
  for (const char* name : kNames) any = any || args.has(prefix + "-" + name);
  if (!any) return;
  auto& config = ensure(spec, {field});
  // Unset fields take SwarmKit's defaults, as docker fills them.
  if (!config.contains("Parallelism")) config["Parallelism"] = 1;
  if (!config.contains("FailureAction")) config["FailureAction"] = "pause";
  if (!config.contains("Monitor")) config["Monitor"] = 5000000000LL;
  if (!config.contains("MaxFailureRatio")) config["MaxFailureRatio"] = 0;
  if (!config.contains("Order")) config["Order"] = "stop-first";
  auto flag = [&](const char* name) { return prefix + "-" + name; };
  if (auto v = args.value(flag("parallelism"))) config["Parallelism"] = whole(command, flag("parallelism"), *v);
  if (auto v = args.value(flag("delay"))) config["Delay"] = duration(command, flag("delay"), *v);
  if (auto v = args.value(flag("monitor"))) config["Monitor"] = duration(command, flag("monitor"), *v);
  if (auto v = args.value(flag("failure-action"))) {
    bool valid = *v == "pause" || *v == "continue" || (prefix == "update" && *v == "rollback");
    if (!valid) {
      command.fail("--" + flag("failure-action") + " '" + *v + "' must be pause, continue" +
                   (prefix == "update" ? " or rollback" : ""));
    }
    config["FailureAction"] = *v;
  }
  if (auto v = args.value(flag("max-failure-ratio"))) {
    char* end = nullptr;
    double ratio = std::strtod(v->c_str(), &end);
    if (v->empty() || *end != '\0' || ratio < 0 || ratio > 1) {
      command.fail("--" + flag("max-failure-ratio") + " '" + *v + "' must be a number from 0 to 1");
    }
    config["MaxFailureRatio"] = ratio;
  }
  if (auto v = args.value(flag("order"))) {
    if (*v != "stop-first" && *v != "start-first") {
      command.fail("--" + flag("order") + " '" + *v + "' must be stop-first or start-first");
    }
    config["Order"] = *v;
  }
}

void applyCommon(const Command& command, const ParsedArgs& args, json::value& spec) {
  auto& task = ensure(spec, {"TaskTemplate"});
  json::value taskValue = task;
  auto resources = [&](const char* flag, const char* group, const char* field, bool cpu) {
    auto text = args.value(flag);
    if (!text) return;
    auto parsed = cpu ? parseNanoCpus(*text) : parseBytes(*text);
    if (!parsed) {
      command.fail(std::string("--") + flag + " '" + *text + "' is not " +
                   (cpu ? "a CPU count like 0.5" : "a size like 256m or 1g"));
    }
    ensure(taskValue, {"Resources", group})[field] = *parsed;
  };
  resources("reserve-cpu", "Reservations", "NanoCPUs", true);
  resources("reserve-memory", "Reservations", "MemoryBytes", false);
  resources("limit-cpu", "Limits", "NanoCPUs", true);
  resources("limit-memory", "Limits", "MemoryBytes", false);
  if (auto v = args.value("limit-pids")) ensure(taskValue, {"Resources", "Limits"})["Pids"] = whole(command, "limit-pids", *v);
  if (auto v = args.value("restart-condition")) {
    if (*v != "none" && *v != "on-failure" && *v != "any") {
      command.fail("--restart-condition '" + *v + "' must be none, on-failure or any");
    }
    ensure(taskValue, {"RestartPolicy"})["Condition"] = *v;
  }
  if (auto v = args.value("restart-delay")) ensure(taskValue, {"RestartPolicy"})["Delay"] = duration(command, "restart-delay", *v);
  if (auto v = args.value("restart-max-attempts")) ensure(taskValue, {"RestartPolicy"})["MaxAttempts"] = whole(command, "restart-max-attempts", *v);
  if (auto v = args.value("restart-window")) ensure(taskValue, {"RestartPolicy"})["Window"] = duration(command, "restart-window", *v);
  if (auto v = args.value("max-replicas")) ensure(taskValue, {"Placement"})["MaxReplicas"] = whole(command, "max-replicas", *v);
  auto& container = ensure(taskValue, {"ContainerSpec"});
  if (auto v = args.value("hostname")) container["Hostname"] = *v;
  if (auto v = args.value("user")) container["User"] = *v;
  if (auto v = args.value("workdir")) container["Dir"] = *v;
  if (auto v = args.value("stop-signal")) container["StopSignal"] = *v;
  if (auto v = args.value("stop-grace-period")) container["StopGracePeriod"] = duration(command, "stop-grace-period", *v);
  if (args.has("init")) container["Init"] = args.flag("init");
  if (args.has("tty")) container["TTY"] = args.flag("tty");
  spec.get_object()["TaskTemplate"] = taskValue;
  if (auto v = args.value("endpoint-mode")) {
    if (*v != "vip" && *v != "dnsrr") command.fail("--endpoint-mode '" + *v + "' must be vip or dnsrr");
    ensure(spec, {"EndpointSpec"})["Mode"] = *v;
  }
  applyUpdateConfig(command, args, spec, "update", "UpdateConfig");
  applyUpdateConfig(command, args, spec, "rollback", "RollbackConfig");
}

void addListEntries(json::value& spec, std::initializer_list<std::string_view> path,
                    const std::vector<std::string>& values) {
  if (values.empty()) return;
  json::value* current = &spec;
  for (auto it = path.begin(); it + 1 != path.end(); ++it) {
    current = &current->get_object()[*it];
    if (!current->is_object()) *current = json::object();
  }
  json::value& list = current->get_object()[*(path.end() - 1)];
  if (!list.is_array()) list = json::array();
  for (const auto& value : values) list.get_array().push_back(json::value(value));
}

json::object labelsFrom(const std::vector<std::string>& values, json::object labels = {}) {
  for (const auto& label : values) {
    auto pair = splitKeyValue(label);
    labels[pair ? pair->first : label] = pair ? pair->second : "";
  }
  return labels;
}

json::value placementPreference(const Command& command, const std::string& text) {
  auto pair = splitKeyValue(text);
  if (!pair || pair->first != "spread" || pair->second.empty()) {
    command.fail("--placement-pref '" + text + "' must be spread=node.labels.KEY");
  }
  return json::object{{"Spread", json::object{{"SpreadDescriptor", pair->second}}}};
}

void printWarnings(Context& context, const json::value& response) {
  const auto& warnings = at(response, {"Warnings"});
  if (!warnings.is_array()) return;
  for (const auto& warning : warnings.get_array()) {
    if (warning.is_string()) context.err << std::string(warning.get_string()) << "\n";
  }
}

bool wantsProgress(const ParsedArgs& args) { return !args.flag("detach"); }

void waitUnlessQuiet(Context& context, const ParsedArgs& args, const std::string& id, bool rollback) {
  if (!wantsProgress(args)) return;
  if (args.flag("quiet")) {
    // Still wait, only print nothing: docker's -q without -d.
    std::ostringstream discard;
    Context silent(discard, context.err, context.in);
    silent.host = context.host;
    silent.timeout = context.timeout;
    silent.sleep = context.sleep;
    waitForService(silent, id, rollback);
    return;
  }
  waitForService(context, id, rollback);
}

// ---- verbs ---------------------------------------------------------------------------------

void create(Context& context, const std::vector<std::string>& raw) {
  Command command("swarmctl service create [OPTIONS] IMAGE [COMMAND] [ARG...]", "Create a service.");
  command.option("name", "NAME", "service name")
      .option("mode", "MODE", "replicated (default), global, replicated-job or global-job")
      .option("env", 'e', "KEY=VALUE", "environment variable (repeatable)")
      .option("label", 'l', "KEY=VALUE", "service label (repeatable)")
      .option("container-label", "KEY=VALUE", "container label (repeatable)")
      .option("constraint", "EXPR", "placement constraint, e.g. node.role==manager (repeatable)")
      .option("placement-pref", "PREF", "placement preference spread=node.labels.KEY (repeatable)")
      .option("network", "NETWORK", "network to attach: host or none")
      .option("mount", "SPEC", "mount: type=bind|volume|tmpfs,source=...,target=... (repeatable)")
      .option("secret", "SPEC", "secret to expose: NAME or source=NAME,target=FILE (repeatable)")
      .option("config", "SPEC", "config to expose: NAME or source=NAME,target=FILE (repeatable)")
      .option("publish", 'p', "PORT", "publish a port: PUBLISHED:TARGET[/PROTO] or published=,target=")
      .option("entrypoint", "CMD", "override the image's entrypoint");
  addCommonFlags(command);
  command.stopAtFirstPositional().arguments(1, -1);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  std::string mode = args->valueOr("mode", "replicated");
  json::object modeValue;
  if (mode == "replicated") {
    json::object replicated;
    if (auto v = args->value("replicas")) replicated["Replicas"] = whole(command, "replicas", *v);
    modeValue["Replicated"] = replicated;
  } else if (mode == "global") {
    modeValue["Global"] = json::object();
  } else if (mode == "replicated-job") {
    json::object job;
    if (auto v = args->value("max-concurrent")) job["MaxConcurrent"] = whole(command, "max-concurrent", *v);
    if (auto v = args->value("replicas")) job["TotalCompletions"] = whole(command, "replicas", *v);
    modeValue["ReplicatedJob"] = job;
  } else if (mode == "global-job") {
    modeValue["GlobalJob"] = json::object();
  } else {
    command.fail("--mode '" + mode + "' must be replicated, global, replicated-job or global-job");
  }
  if (args->has("replicas") && (mode == "global" || mode == "global-job")) {
    command.fail("--replicas can only be used with replicated or replicated-job mode");
  }
  if (args->has("max-concurrent") && mode != "replicated-job") {
    command.fail("--max-concurrent can only be used with replicated-job mode");
  }
  bool job = mode == "replicated-job" || mode == "global-job";
  for (const char* name : {"update-parallelism", "update-delay", "update-failure-action",
                           "update-monitor", "update-max-failure-ratio", "update-order"}) {
    if (job && args->has(name)) command.fail(std::string("--") + name + " cannot be used with jobs");
  }

  json::value spec = json::object();
  if (auto name = args->value("name")) spec.get_object()["Name"] = *name;
  spec.get_object()["Labels"] = labelsFrom(args->values("label"));
  json::object container{{"Image", args->positional[0]}};
  if (args->positional.size() > 1) {
    json::array argv;
    for (std::size_t i = 1; i < args->positional.size(); ++i) argv.push_back(json::value(args->positional[i]));
    container["Args"] = argv;
  }
  if (auto entrypoint = args->value("entrypoint")) {
    json::array words;
    std::stringstream stream(*entrypoint);
    std::string word;
    while (stream >> word) words.push_back(json::value(word));
    container["Command"] = words;
  }
  if (args->has("container-label")) container["Labels"] = labelsFrom(args->values("container-label"));
  spec.get_object()["TaskTemplate"] = json::object{{"ContainerSpec", container}};
  addListEntries(spec, {"TaskTemplate", "ContainerSpec", "Env"}, args->values("env"));
  addListEntries(spec, {"TaskTemplate", "Placement", "Constraints"}, args->values("constraint"));
  for (const auto& pref : args->values("placement-pref")) {
    auto& placement = ensure(spec, {"TaskTemplate", "Placement"});
    if (!placement["Preferences"].is_array()) placement["Preferences"] = json::array();
    placement["Preferences"].get_array().push_back(placementPreference(command, pref));
  }
  for (const auto& mount : args->values("mount")) {
    auto& containerSpec = ensure(spec, {"TaskTemplate", "ContainerSpec"});
    if (!containerSpec["Mounts"].is_array()) containerSpec["Mounts"] = json::array();
    containerSpec["Mounts"].get_array().push_back(parseMount(command, mount));
  }
  for (const auto& port : args->values("publish")) {
    auto& endpoint = ensure(spec, {"EndpointSpec"});
    if (!endpoint["Ports"].is_array()) endpoint["Ports"] = json::array();
    endpoint["Ports"].get_array().push_back(parsePort(command, port));
  }
  for (const auto& network : args->values("network")) {
    auto& task = ensure(spec, {"TaskTemplate"});
    if (!task["Networks"].is_array()) task["Networks"] = json::array();
    task["Networks"].get_array().push_back(json::object{{"Target", network}});
  }
  spec.get_object()["Mode"] = modeValue;
  applyCommon(command, *args, spec);
  for (const char* kind : {"secret", "config"}) {
    for (const auto& reference : args->values(kind)) {
      auto& containerSpec = ensure(spec, {"TaskTemplate", "ContainerSpec"});
      std::string field = std::strcmp(kind, "secret") == 0 ? "Secrets" : "Configs";
      if (!containerSpec[field].is_array()) containerSpec[field] = json::array();
      containerSpec[field].get_array().push_back(parseReference(context, command, kind, reference));
    }
  }
  auto created = context.api().post("/services/create", {}, spec);
  printWarnings(context, created);
  std::string id = str(created, {"ID"});
  context.out << id << "\n" << std::flush;
  waitUnlessQuiet(context, *args, id, false);
}

std::string modeName(const json::value& service) {
  const auto& mode = at(service, {"Spec", "Mode"});
  if (!mode.is_object()) return "replicated";
  if (mode.get_object().contains("Global")) return "global";
  if (mode.get_object().contains("ReplicatedJob")) return "replicated job";
  if (mode.get_object().contains("GlobalJob")) return "global job";
  return "replicated";
}

std::string replicas(const json::value& service) {
  std::string running = std::to_string(num(service, {"ServiceStatus", "RunningTasks"}));
  std::string desired = std::to_string(num(service, {"ServiceStatus", "DesiredTasks"}));
  std::string mode = modeName(service);
  std::string text = running + "/" + desired;
  if (mode == "replicated") {
    if (auto max = num(service, {"Spec", "TaskTemplate", "Placement", "MaxReplicas"}); max > 0) {
      text += " (max " + std::to_string(max) + " per node)";
    }
  } else if (mode == "replicated job") {
    auto total = num(service, {"Spec", "Mode", "ReplicatedJob", "TotalCompletions"});
    text += " (" + std::to_string(num(service, {"ServiceStatus", "CompletedTasks"})) + "/" +
            std::to_string(total ? total : 1) + " completed)";
  } else if (mode == "global job") {
    text += " (" + std::to_string(num(service, {"ServiceStatus", "CompletedTasks"})) + "/" +
            desired + " completed)";
  }
  return text;
}

std::string servicePorts(const json::value& service) {
  const auto* ports = &at(service, {"Endpoint", "Ports"});
  if (!ports->is_array() || ports->get_array().empty()) ports = &at(service, {"Spec", "EndpointSpec", "Ports"});
  std::string text;
  if (!ports->is_array()) return text;
  for (const auto& port : ports->get_array()) {
    if (!text.empty()) text += ", ";
    auto published = num(port, {"PublishedPort"});
    text += "*:" + (published ? std::to_string(published) : std::string()) + "->" +
            std::to_string(num(port, {"TargetPort"})) + "/" +
            (str(port, {"Protocol"}).empty() ? "tcp" : str(port, {"Protocol"}));
  }
  return text;
}

void ls(Context& context, const std::vector<std::string>& raw) {
  Command command("swarmctl service ls [OPTIONS]", "List services.");
  command.option("filter", 'f', "KEY=VALUE", "filter: id, label, mode, name")
      .boolean("quiet", 'q', "print only IDs")
      .option("format", "FORMAT", "json or table")
      .arguments(0, 0);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  Query query;
  if (args->has("filter")) query.emplace_back("filters", encodeFilters(command, args->values("filter")));
  query.emplace_back("status", "true");
  auto found = context.api().get("/services", query);
  json::array list = found.is_array() ? found.get_array() : json::array();
  std::stable_sort(list.begin(), list.end(), [](const json::value& a, const json::value& b) {
    return str(a, {"Spec", "Name"}) < str(b, {"Spec", "Name"});
  });
  if (args->flag("quiet")) {
    for (const auto& item : list) context.out << str(item, {"ID"}) << "\n";
    return;
  }
  printList(context, list, [&]() {
    Table table({"ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"});
    for (const auto& service : list) {
      std::string image = str(service, {"Spec", "TaskTemplate", "ContainerSpec", "Image"});
      if (auto digest = image.find('@'); digest != std::string::npos) image.erase(digest);
      table.add({shortId(str(service, {"ID"})), str(service, {"Spec", "Name"}), modeName(service),
                 replicas(service), image, servicePorts(service)});
    }
    table.print(context.out);
  });
}

void ps(Context& context, const std::vector<std::string>& raw) {
  Command command("swarmctl service ps [OPTIONS] SERVICE [SERVICE...]", "List the tasks of services.");
  command.option("filter", 'f', "KEY=VALUE", "filter: desired-state, id, name, node")
      .boolean("no-trunc", "do not truncate IDs and errors")
      .boolean("quiet", 'q', "print only task IDs")
      .option("format", "FORMAT", "json or table")
      .arguments(1, -1);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  json::array tasks;
  ErrorList errors;
  for (const auto& name : args->positional) {
    try {
      auto service = context.api().get("/services/" + name);
      std::vector<std::string> filters = args->values("filter");
      filters.push_back("service=" + str(service, {"ID"}));
      auto found = context.api().get("/tasks", {{"filters", encodeFilters(command, filters)}});
      if (found.is_array()) {
        for (auto& task : found.get_array()) tasks.push_back(task);
      }
    } catch (const std::exception& e) {
      errors.add(e);
    }
  }
  if (!tasks.empty() || errors.empty()) printTasks(context, tasks, args->flag("quiet"), args->flag("no-trunc"));
  errors.throwIfAny();
}

void inspect(Context& context, const std::vector<std::string>& raw) {
  Command command("swarmctl service inspect [OPTIONS] SERVICE [SERVICE...]", "Print services as JSON.");
  command.option("format", "FORMAT", "json").arguments(1, -1);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  json::array services;
  ErrorList errors;
  for (const auto& name : args->positional) {
    try {
      services.push_back(context.api().get("/services/" + name, {{"insertDefaults", "true"}}));
    } catch (const std::exception& e) {
      errors.add(e);
    }
  }
  if (!services.empty()) printJson(context.out, services);
  errors.throwIfAny();
}

json::value postUpdate(Context& context, const json::value& service, const json::value& spec,
                       bool rollback) {
  Query query{{"version", std::to_string(num(service, {"Version", "Index"}))}};
  if (rollback) query.emplace_back("rollback", "previous");
  auto response = context.api().post("/services/" + str(service, {"ID"}) + "/update", query, spec);
  printWarnings(context, response);
  return response;
}

void scale(Context& context, const std::vector<std::string>& raw) {
  Command command("swarmctl service scale [OPTIONS] SERVICE=REPLICAS [SERVICE=REPLICAS...]",
                  "Scale replicated services (or replicated jobs' completions).");
  command.boolean("detach", 'd', "exit at once instead of waiting for the services to converge")
      .arguments(1, -1);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  std::vector<std::pair<std::string, std::int64_t>> targets;
  for (const auto& arg : args->positional) {
    auto pair = splitKeyValue(arg);
    if (!pair || pair->first.empty()) command.fail("invalid scale specifier '" + arg + "': use SERVICE=REPLICAS");
    char* end = nullptr;
    long long count = std::strtoll(pair->second.c_str(), &end, 10);
    if (pair->second.empty() || *end != '\0' || count < 0) {
      command.fail("invalid replicas value '" + pair->second + "' for " + pair->first + ": use a whole number >= 0");
    }
    targets.emplace_back(pair->first, count);
  }
  ErrorList errors;
  std::vector<std::string> scaled;
  for (const auto& [name, count] : targets) {
    try {
      auto service = context.api().get("/services/" + name);
      json::value spec = at(service, {"Spec"});
      if (at(spec, {"Mode", "Replicated"}).is_object()) {
        ensure(spec, {"Mode", "Replicated"})["Replicas"] = count;
      } else if (at(spec, {"Mode", "ReplicatedJob"}).is_object()) {
        ensure(spec, {"Mode", "ReplicatedJob"})["TotalCompletions"] = count;
      } else {
        throw CliError("scale can only be used with replicated or replicated-job mode (" + name + " is not)");
      }
      postUpdate(context, service, spec, false);
      context.out << name << " scaled to " << count << "\n" << std::flush;
      scaled.push_back(str(service, {"ID"}));
    } catch (const std::exception& e) {
      errors.add(e);
    }
  }
  if (!args->flag("detach")) {
    for (const auto& id : scaled) waitForService(context, id, false);
  }
  errors.throwIfAny();
}

std::vector<std::string> withoutKeys(const json::value& list, const std::vector<std::string>& remove,
                                     bool byKeyBeforeEquals) {
  std::vector<std::string> kept;
  if (!list.is_array()) return kept;
  for (const auto& item : list.get_array()) {
    if (!item.is_string()) continue;
    std::string text(item.get_string());
    std::string key = byKeyBeforeEquals ? text.substr(0, text.find('=')) : text;
    if (std::find(remove.begin(), remove.end(), key) == remove.end()) kept.push_back(text);
  }
  return kept;
}

json::array toArray(const std::vector<std::string>& values) {
  json::array array;
  for (const auto& value : values) array.push_back(json::value(value));
  return array;
}

void update(Context& context, const std::vector<std::string>& raw) {
  Command command("swarmctl service update [OPTIONS] SERVICE", "Update a service.");
  command.option("image", "IMAGE", "new image")
      .option("args", "ARGS", "new command arguments (split on spaces)")
      .option("env-add", "KEY=VALUE", "add or change an environment variable")
      .option("env-rm", "KEY", "remove an environment variable")
      .option("label-add", "KEY=VALUE", "add or change a service label")
      .option("label-rm", "KEY", "remove a service label")
      .option("container-label-add", "KEY=VALUE", "add or change a container label")
      .option("container-label-rm", "KEY", "remove a container label")
      .option("constraint-add", "EXPR", "add a placement constraint")
      .option("constraint-rm", "EXPR", "remove a placement constraint")
      .option("placement-pref-add", "PREF", "add a placement preference spread=node.labels.KEY")
      .option("placement-pref-rm", "PREF", "remove a placement preference")
      .option("mount-add", "SPEC", "add a mount")
      .option("mount-rm", "TARGET", "remove the mount at TARGET")
      .option("secret-add", "SPEC", "expose a secret")
      .option("secret-rm", "NAME", "stop exposing a secret")
      .option("config-add", "SPEC", "expose a config")
      .option("config-rm", "NAME", "stop exposing a config")
      .option("publish-add", "PORT", "publish a port")
      .option("publish-rm", "TARGET", "unpublish the port with this target")
      .option("network-add", "NETWORK", "attach a network (host or none)")
      .option("network-rm", "NETWORK", "detach a network")
      .boolean("force", "restart every task even without a change")
      .boolean("rollback", "roll back to the previous spec");
  addCommonFlags(command);
  command.arguments(1, 1);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  std::string name = args->positional[0];
  auto service = context.api().get("/services/" + name);
  json::value spec = at(service, {"Spec"});
  if (!spec.is_object()) spec = json::object();
  bool rollback = args->flag("rollback");
  if (!rollback) {
    if (auto v = args->value("replicas")) {
      auto count = whole(command, "replicas", *v);
      if (at(spec, {"Mode", "Replicated"}).is_object()) ensure(spec, {"Mode", "Replicated"})["Replicas"] = count;
      else if (at(spec, {"Mode", "ReplicatedJob"}).is_object()) ensure(spec, {"Mode", "ReplicatedJob"})["TotalCompletions"] = count;
      else command.fail("--replicas can only be used with replicated or replicated-job mode");
    }
    if (auto v = args->value("max-concurrent")) {
      if (!at(spec, {"Mode", "ReplicatedJob"}).is_object()) command.fail("--max-concurrent can only be used with replicated-job mode");
      ensure(spec, {"Mode", "ReplicatedJob"})["MaxConcurrent"] = whole(command, "max-concurrent", *v);
    }
    auto& container = ensure(spec, {"TaskTemplate", "ContainerSpec"});
    if (auto v = args->value("image")) container["Image"] = *v;
    if (auto v = args->value("args")) {
      json::array words;
      std::stringstream stream(*v);
      std::string word;
      while (stream >> word) words.push_back(json::value(word));
      container["Args"] = words;
    }
    if (args->has("env-add") || args->has("env-rm")) {
      std::vector<std::string> removed = args->values("env-rm");
      for (const auto& env : args->values("env-add")) removed.push_back(env.substr(0, env.find('=')));
      auto env = withoutKeys(container["Env"], removed, true);
      for (const auto& added : args->values("env-add")) env.push_back(added);
      container["Env"] = toArray(env);
    }
    if (args->has("container-label-add") || args->has("container-label-rm")) {
      json::object labels = container["Labels"].is_object() ? container["Labels"].get_object() : json::object();
      for (const auto& key : args->values("container-label-rm")) labels.erase(key);
      container["Labels"] = labelsFrom(args->values("container-label-add"), labels);
    }
    if (args->has("label-add") || args->has("label-rm")) {
      auto& labels = ensure(spec, {"Labels"});
      for (const auto& key : args->values("label-rm")) labels.erase(key);
      labels = labelsFrom(args->values("label-add"), labels);
    }
    if (args->has("constraint-add") || args->has("constraint-rm")) {
      auto& placement = ensure(spec, {"TaskTemplate", "Placement"});
      auto constraints = withoutKeys(placement["Constraints"], args->values("constraint-rm"), false);
      for (const auto& added : args->values("constraint-add")) constraints.push_back(added);
      placement["Constraints"] = toArray(constraints);
    }
    if (args->has("placement-pref-add") || args->has("placement-pref-rm")) {
      auto& placement = ensure(spec, {"TaskTemplate", "Placement"});
      json::array kept;
      if (placement["Preferences"].is_array()) {
        for (const auto& pref : placement["Preferences"].get_array()) {
          std::string descriptor = str(pref, {"Spread", "SpreadDescriptor"});
          auto removed = args->values("placement-pref-rm");
          if (std::find(removed.begin(), removed.end(), "spread=" + descriptor) == removed.end()) kept.push_back(pref);
        }
      }
      for (const auto& added : args->values("placement-pref-add")) kept.push_back(placementPreference(command, added));
      placement["Preferences"] = kept;
    }
    if (args->has("mount-add") || args->has("mount-rm")) {
      json::array kept;
      auto removed = args->values("mount-rm");
      if (container["Mounts"].is_array()) {
        for (const auto& mount : container["Mounts"].get_array()) {
          if (std::find(removed.begin(), removed.end(), str(mount, {"Target"})) == removed.end()) kept.push_back(mount);
        }
      }
      for (const auto& added : args->values("mount-add")) kept.push_back(parseMount(command, added));
      container["Mounts"] = kept;
    }
    for (const char* kind : {"secret", "config"}) {
      std::string field = std::strcmp(kind, "secret") == 0 ? "Secrets" : "Configs";
      std::string nameField = std::strcmp(kind, "secret") == 0 ? "SecretName" : "ConfigName";
      std::string add = std::string(kind) + "-add", rm = std::string(kind) + "-rm";
      if (!args->has(add) && !args->has(rm)) continue;
      json::array kept;
      auto removed = args->values(rm);
      if (container[field].is_array()) {
        for (const auto& ref : container[field].get_array()) {
          if (std::find(removed.begin(), removed.end(), str(ref, {nameField})) == removed.end()) kept.push_back(ref);
        }
      }
      for (const auto& added : args->values(add)) kept.push_back(parseReference(context, command, kind, added));
      container[field] = kept;
    }
    if (args->has("publish-add") || args->has("publish-rm")) {
      auto& endpoint = ensure(spec, {"EndpointSpec"});
      json::array kept;
      auto removed = args->values("publish-rm");
      if (endpoint["Ports"].is_array()) {
        for (const auto& port : endpoint["Ports"].get_array()) {
          std::string target = std::to_string(num(port, {"TargetPort"}));
          if (std::find(removed.begin(), removed.end(), target) == removed.end()) kept.push_back(port);
        }
      }
      for (const auto& added : args->values("publish-add")) kept.push_back(parsePort(command, added));
      endpoint["Ports"] = kept;
    }
    if (args->has("network-add") || args->has("network-rm")) {
      auto& task = ensure(spec, {"TaskTemplate"});
      json::array kept;
      auto removed = args->values("network-rm");
      if (task["Networks"].is_array()) {
        for (const auto& network : task["Networks"].get_array()) {
          if (std::find(removed.begin(), removed.end(), str(network, {"Target"})) == removed.end()) kept.push_back(network);
        }
      }
      for (const auto& added : args->values("network-add")) kept.push_back(json::object{{"Target", added}});
      task["Networks"] = kept;
    }
    applyCommon(command, *args, spec);
    if (args->flag("force")) {
      auto& task = ensure(spec, {"TaskTemplate"});
      task["ForceUpdate"] = num(spec, {"TaskTemplate", "ForceUpdate"}) + 1;
    }
  }
  postUpdate(context, service, spec, rollback);
  context.out << name << "\n" << std::flush;
  waitUnlessQuiet(context, *args, str(service, {"ID"}), rollback);
}

void rollback(Context& context, const std::vector<std::string>& raw) {
  Command command("swarmctl service rollback [OPTIONS] SERVICE", "Roll a service back to its previous spec.");
  command.boolean("detach", 'd', "exit at once instead of waiting for the rollback to converge")
      .boolean("quiet", 'q', "print no progress")
      .arguments(1, 1);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  auto service = context.api().get("/services/" + args->positional[0]);
  postUpdate(context, service, at(service, {"Spec"}), true);
  context.out << args->positional[0] << "\n" << std::flush;
  waitUnlessQuiet(context, *args, str(service, {"ID"}), true);
}

void rm(Context& context, const std::vector<std::string>& raw) {
  Command command("swarmctl service rm SERVICE [SERVICE...]", "Remove services.");
  command.arguments(1, -1);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  ErrorList errors;
  for (const auto& name : args->positional) {
    try {
      context.api().call("DELETE", "/services/" + name);
      context.out << name << "\n";
    } catch (const std::exception& e) {
      errors.add(e);
    }
  }
  errors.throwIfAny();
}

// Splits the multiplexed log stream (8-byte stdcopy headers) and prefixes each line with
// "service.slot.task@node | " from the details docker asks for with details=1.
class LogPrinter {
 public:
  LogPrinter(Context& context, std::string serviceName, bool raw, bool tty)
      : context(context), serviceName(std::move(serviceName)), raw(raw), tty(tty) {}

  void feed(std::string_view data) {
    if (tty) {
      context.out << data << std::flush;
      return;
    }
    pending.append(data);
    while (pending.size() >= 8) {
      std::size_t size = (std::size_t(std::uint8_t(pending[4])) << 24) |
                         (std::size_t(std::uint8_t(pending[5])) << 16) |
                         (std::size_t(std::uint8_t(pending[6])) << 8) | std::uint8_t(pending[7]);
      if (pending.size() < 8 + size) break;
      bool toStderr = pending[0] == 2;
      line(toStderr ? context.err : context.out, pending.substr(8, size));
      pending.erase(0, 8 + size);
    }
  }

 private:
  void line(std::ostream& out, std::string text) {
    std::string details;
    if (auto space = text.find(' '); space != std::string::npos && text.find("com.docker.swarm") == 0) {
      details = text.substr(0, space);
      text = text.substr(space + 1);
    }
    if (!raw && !details.empty()) {
      std::map<std::string, std::string> fields;
      std::stringstream stream(details);
      std::string field;
      while (std::getline(stream, field, ',')) {
        if (auto pair = splitKeyValue(field)) fields[pair->first] = pair->second;
      }
      std::string taskId = fields["com.docker.swarm.task.id"];
      std::string nodeId = fields["com.docker.swarm.node.id"];
      out << prefix(taskId, nodeId) << " | ";
    }
    out << text;
    if (text.empty() || text.back() != '\n') out << "\n";
    out.flush();
  }

  std::string prefix(const std::string& taskId, const std::string& nodeId) {
    std::string key = taskId + "@" + nodeId;
    if (auto found = prefixes.find(key); found != prefixes.end()) return found->second;
    std::string slot = shortId(nodeId);
    std::string node = nodeId;
    try {
      auto task = context.api().get("/tasks/" + taskId);
      if (auto number = num(task, {"Slot"}); number > 0) slot = std::to_string(number);
      node = str(context.api().get("/nodes/" + nodeId), {"Description", "Hostname"});
    } catch (const std::exception&) {
      // Gone since: keep the IDs.
    }
    std::string text = serviceName + "." + slot + "." + shortId(taskId) + "@" + node;
    prefixes[key] = text;
    return text;
  }

  Context& context;
  std::string serviceName;
  bool raw;
  bool tty;
  std::string pending;
  std::map<std::string, std::string> prefixes;
};

void logs(Context& context, const std::vector<std::string>& raw) {
  Command command("swarmctl service logs [OPTIONS] SERVICE", "Print the logs of a service's tasks.");
  command.boolean("follow", 'f', "keep printing new output")
      .option("tail", 'n', "N", "lines from the end of each log (default all)")
      .option("since", "TIME", "only logs since this time or duration (e.g. 10m)")
      .boolean("timestamps", 't', "print timestamps")
      .boolean("raw", "print only the log lines, no task prefix")
      .arguments(1, 1);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  auto service = context.api().get("/services/" + args->positional[0]);
  Query query{{"stdout", "1"}, {"stderr", "1"}, {"tail", args->valueOr("tail", "all")}, {"details", "1"}};
  if (args->flag("follow")) query.emplace_back("follow", "1");
  if (auto since = args->value("since")) query.emplace_back("since", *since);
  if (args->flag("timestamps")) query.emplace_back("timestamps", "1");
  bool tty = at(service, {"Spec", "TaskTemplate", "ContainerSpec", "TTY"}).is_bool() &&
             at(service, {"Spec", "TaskTemplate", "ContainerSpec", "TTY"}).get_bool();
  LogPrinter printer(context, str(service, {"Spec", "Name"}), args->flag("raw"), tty);
  context.api().stream("/services/" + str(service, {"ID"}) + "/logs", query, args->flag("follow"),
                       [&](std::string_view data) { printer.feed(data); });
}

}  // namespace

std::vector<VerbEntry> serviceVerbs() {
  return {{"service", "create", "Create a service", create},
          {"service", "ls", "List services", ls},
          {"service", "ps", "List the tasks of services", ps},
          {"service", "inspect", "Print services as JSON", inspect},
          {"service", "scale", "Scale services", scale},
          {"service", "update", "Update a service", update},
          {"service", "rollback", "Roll a service back", rollback},
          {"service", "rm", "Remove services", rm},
          {"service", "logs", "Print a service's logs", logs}};
}

}  // namespace swarm::ctl
