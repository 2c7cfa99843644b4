// swarmctl swarm init|join|leave|join-token|update|unlock|unlock-key|ca|inspect.
#include "cli.h"
#include "text.h"

#include <termios.h>
#include <unistd.h>

#include <boost/json/serialize.hpp>

#include <iostream>

namespace swarm::ctl {

namespace json = boost::json;

namespace {

constexpr const char* kUnlockAdvice =
    "To unlock a swarm manager after it restarts, run the `swarmctl swarm unlock`\n"
    "command and provide the following key:\n\n    ";
constexpr const char* kUnlockReminder =
    "\n\nPlease remember to store this key in a password manager, since without it you\n"
    "will not be able to restart the manager.\n";

// Flags shared by init and update that change the cluster spec.
void addSpecFlags(Command& command) {
  command.option("cert-expiry", "DUR", "validity period of node certificates, e.g. 2160h")
      .option("dispatcher-heartbeat", "DUR", "dispatcher heartbeat period, e.g. 5s")
      .option("snapshot-interval", "N", "raft log entries between snapshots")
      .option("max-snapshots", "N", "old raft snapshots to keep")
      .option("task-history-limit", "N", "task history retention limit")
      .option("external-ca", "SPEC",
              "external CA: protocol=cfssl,url=URL[,cacert=FILE] (repeatable)");
}

std::int64_t durationFlag(const Command& command, const ParsedArgs& args, const char* name) {
  std::string text = *args.value(name);
  auto parsed = parseDuration(text);
  if (!parsed || *parsed < 0) {
    command.fail(std::string("--") + name + " '" + text +
                 "' is not a duration; use Go's form, e.g. 90s, 1h30m, 5m");
  }
  return *parsed;
}

std::int64_t countFlag(const Command& command, const ParsedArgs& args, const char* name) {
  std::string text = *args.value(name);
  char* end = nullptr;
  errno = 0;
  long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || value < 0) {
    command.fail(std::string("--") + name + " '" + text + "' must be a whole number >= 0");
  }
  return value;
}

std::string availabilityFlag(const Command& command, const ParsedArgs& args) {
  std::string value = args.valueOr("availability", "active");
  if (value != "active" && value != "pause" && value != "drain") {
    command.fail("--availability '" + value + "' must be active, pause or drain");
  }
  return value;
}

json::array externalCas(Context& context, const Command& command, const ParsedArgs& args) {
  json::array cas;
  for (const auto& spec : args.values("external-ca")) {
    json::object ca;
    json::object options;
    std::stringstream fields(spec);
    std::string field;
    while (std::getline(fields, field, ',')) {
      auto pair = splitKeyValue(field);
      if (!pair) command.fail("--external-ca field '" + field + "' must be KEY=VALUE");
      if (pair->first == "protocol") {
        if (pair->second != "cfssl") {
          command.fail("--external-ca protocol '" + pair->second + "' is not supported: use cfssl");
        }
        ca["Protocol"] = pair->second;
      } else if (pair->first == "url") {
        ca["URL"] = pair->second;
      } else if (pair->first == "cacert") {
        ca["CACert"] = readFileOrStdin(context, pair->second);
      } else {
        options[pair->first] = pair->second;
      }
    }
    if (!ca.contains("Protocol") || !ca.contains("URL")) {
      command.fail("--external-ca '" + spec + "' needs protocol=cfssl and url=URL");
    }
    if (!options.empty()) ca["Options"] = options;
    cas.push_back(std::move(ca));
  }
  return cas;
}

// Applies the spec flags to `spec` (a swarm Spec object). Returns whether anything changed.
bool applySpecFlags(Context& context, const Command& command, const ParsedArgs& args,
                    json::value& spec) {
  bool changed = false;
  if (args.has("cert-expiry")) {
    ensure(spec, {"CAConfig"})["NodeCertExpiry"] = durationFlag(command, args, "cert-expiry");
    changed = true;
  }
  if (args.has("external-ca")) {
    ensure(spec, {"CAConfig"})["ExternalCAs"] = externalCas(context, command, args);
    changed = true;
  }
  if (args.has("dispatcher-heartbeat")) {
    ensure(spec, {"Dispatcher"})["HeartbeatPeriod"] =
        durationFlag(command, args, "dispatcher-heartbeat");
    changed = true;
  }
  if (args.has("snapshot-interval")) {
    ensure(spec, {"Raft"})["SnapshotInterval"] = countFlag(command, args, "snapshot-interval");
    changed = true;
  }
  if (args.has("max-snapshots")) {
    ensure(spec, {"Raft"})["KeepOldSnapshots"] = countFlag(command, args, "max-snapshots");
    changed = true;
  }
  if (args.has("task-history-limit")) {
    ensure(spec, {"Orchestration"})["TaskHistoryRetentionLimit"] =
        countFlag(command, args, "task-history-limit");
    changed = true;
  }
  if (args.has("autolock")) {
    ensure(spec, {"EncryptionConfig"})["AutoLockManagers"] = args.flag("autolock");
    changed = true;
  }
  return changed;
}

std::string withDefaultPort(const std::string& address) {
  if (address.empty() || address.find(':') != std::string::npos) return address;
  return address + ":2377";
}

void printUnlockKey(Context& context) {
  auto key = context.api().get("/swarm/unlockkey");
  context.out << kUnlockAdvice << str(key, {"UnlockKey"}) << kUnlockReminder;
}

void printJoinCommand(Context& context, const std::string& role, const json::value& swarm) {
  auto info = context.api().get("/info");
  std::string nodeId = str(info, {"Swarm", "NodeID"});
  auto node = context.api().get("/nodes/" + nodeId);
  std::string token = str(swarm, {"JoinTokens", role == "worker" ? "Worker" : "Manager"});
  context.out << "To add a " << role << " to this swarm, run the following command:\n\n"
              << "    swarmctl swarm join --token " << token << " "
              << str(node, {"ManagerStatus", "Addr"}) << "\n\n";
}

void init(Context& context, const std::vector<std::string>& raw) {
  Command command("swarmctl swarm init [OPTIONS]", "Initialize a swarm with this node as its first manager.");
  command.option("listen-addr", "ADDR", "listen address for the cluster API (default 0.0.0.0:2377)")
      .option("advertise-addr", "ADDR", "address advertised to other nodes")
      .boolean("autolock", "lock managers at restart: print an unlock key to keep")
      .option("availability", "STATE", "active (default), pause or drain")
      .boolean("force-new-cluster", "force a new cluster from the current state");
  addSpecFlags(command);
  command.arguments(0, 0);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  json::value spec = json::object();
  applySpecFlags(context, command, *args, spec);
  json::object request{
      {"ListenAddr", withDefaultPort(args->valueOr("listen-addr", "0.0.0.0:2377"))},
      {"AdvertiseAddr", withDefaultPort(args->valueOr("advertise-addr", ""))},
      {"ForceNewCluster", args->flag("force-new-cluster")},
      {"Spec", spec},
      {"AutoLockManagers", args->flag("autolock")},
      {"Availability", availabilityFlag(command, *args)}};
  auto nodeId = context.api().post("/swarm/init", {}, json::value(request));
  std::string id = nodeId.is_string() ? std::string(nodeId.get_string()) : "";
  auto node = context.api().get("/nodes/" + id);
  auto swarm = context.api().get("/swarm");
  context.out << "Swarm initialized: current node (" << id << ") is now a manager.\n\n"
              << "To add a worker to this swarm, run the following command:\n\n"
              << "    swarmctl swarm join --token " << str(swarm, {"JoinTokens", "Worker"}) << " "
              << str(node, {"ManagerStatus", "Addr"}) << "\n\n"
              << "To add a manager to this swarm, run 'swarmctl swarm join-token manager' and "
                 "follow the instructions.\n\n";
  if (args->flag("autolock")) printUnlockKey(context);
}

void join(Context& context, const std::vector<std::string>& raw) {
  Command command("swarmctl swarm join [OPTIONS] HOST:PORT", "Join a swarm as a worker or a manager.");
  command.option("token", "TOKEN", "the join token (swarmctl swarm join-token on a manager)")
      .option("listen-addr", "ADDR", "listen address (default 0.0.0.0:2377)")
      .option("advertise-addr", "ADDR", "address advertised to other nodes")
      .option("availability", "STATE", "active (default), pause or drain")
      .arguments(1, 1);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  if (!args->has("token")) command.fail("--token is required: get one with 'swarmctl swarm join-token worker' on a manager");
  json::object request{
      {"ListenAddr", withDefaultPort(args->valueOr("listen-addr", "0.0.0.0:2377"))},
      {"AdvertiseAddr", withDefaultPort(args->valueOr("advertise-addr", ""))},
      {"RemoteAddrs", json::array{json::value(withDefaultPort(args->positional[0]))}},
      {"JoinToken", *args->value("token")},
      {"Availability", availabilityFlag(command, *args)}};
  context.api().post("/swarm/join", {}, json::value(request));
  auto info = context.api().get("/info");
  bool manager = at(info, {"Swarm", "ControlAvailable"}).is_bool() &&
                 at(info, {"Swarm", "ControlAvailable"}).get_bool();
  context.out << "This node joined a swarm as a " << (manager ? "manager" : "worker") << ".\n";
}

void leave(Context& context, const std::vector<std::string>& raw) {
  Command command("swarmctl swarm leave [OPTIONS]", "Leave the swarm.");
  command.boolean("force", 'f', "leave even as a manager (may break quorum or erase the swarm)")
      .arguments(0, 0);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  Query query;
  if (args->flag("force")) query.emplace_back("force", "1");
  context.api().call("POST", "/swarm/leave", query);
  context.out << "Node left the swarm.\n";
}

Query rotation(std::int64_t version, bool worker, bool manager, bool unlockKey) {
  auto flag = [](bool on) { return std::string(on ? "true" : "false"); };
  return {{"version", std::to_string(version)},
          {"rotateWorkerToken", flag(worker)},
          {"rotateManagerToken", flag(manager)},
          {"rotateManagerUnlockKey", flag(unlockKey)}};
}

void joinToken(Context& context, const std::vector<std::string>& raw) {
  Command command("swarmctl swarm join-token [OPTIONS] (worker|manager)",
                  "Print (or rotate) the command that joins a node as a worker or a manager.");
  command.boolean("rotate", "rotate the join token first")
      .boolean("quiet", 'q', "print only the token")
      .arguments(1, 1);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  std::string role = args->positional[0];
  if (role != "worker" && role != "manager") {
    command.fail("unknown role '" + role + "': use worker or manager");
  }
  auto swarm = context.api().get("/swarm");
  if (args->flag("rotate")) {
    context.api().post("/swarm/update",
                       rotation(num(swarm, {"Version", "Index"}), role == "worker",
                                role == "manager", false),
                       at(swarm, {"Spec"}));
    if (!args->flag("quiet")) {
      context.out << "Successfully rotated " << role << " join token.\n\n";
    }
    swarm = context.api().get("/swarm");
  }
  if (args->flag("quiet")) {
    context.out << str(swarm, {"JoinTokens", role == "worker" ? "Worker" : "Manager"}) << "\n";
    return;
  }
  printJoinCommand(context, role, swarm);
}

void update(Context& context, const std::vector<std::string>& raw) {
  Command command("swarmctl swarm update [OPTIONS]", "Update the swarm's settings.");
  addSpecFlags(command);
  command.boolean("autolock", "lock managers at restart (--autolock=false to stop)").arguments(0, 0);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  auto swarm = context.api().get("/swarm");
  bool wasLocked = at(swarm, {"Spec", "EncryptionConfig", "AutoLockManagers"}).is_bool() &&
                   at(swarm, {"Spec", "EncryptionConfig", "AutoLockManagers"}).get_bool();
  json::value spec = at(swarm, {"Spec"});
  if (!applySpecFlags(context, command, *args, spec)) {
    command.fail("nothing to update: give at least one option");
  }
  context.api().post("/swarm/update", rotation(num(swarm, {"Version", "Index"}), false, false, false),
                     spec);
  context.out << "Swarm updated.\n";
  if (args->flag("autolock") && !wasLocked) printUnlockKey(context);
}

std::string readUnlockKey(Context& context) {
  std::string key;
  if (context.stdinTerminal) {
    context.out << "Enter unlock key: " << std::flush;
    termios saved{};
    bool restore = ::tcgetattr(STDIN_FILENO, &saved) == 0;
    if (restore) {
      termios silent = saved;
      silent.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      ::tcsetattr(STDIN_FILENO, TCSANOW, &silent);
    }
    std::getline(context.in, key);
    if (restore) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    context.out << "\n";
  } else {
    std::getline(context.in, key);
  }
  while (!key.empty() && (key.back() == '\r' || key.back() == ' ')) key.pop_back();
  return key;
}

void unlock(Context& context, const std::vector<std::string>& raw) {
  Command command("swarmctl swarm unlock",
                  "Unlock a locked manager with the unlock key (read from stdin or a prompt).");
  command.arguments(0, 0);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  auto info = context.api().get("/info");
  std::string state = str(info, {"Swarm", "LocalNodeState"});
  if (state == "inactive") throw CliError("this node is not part of a swarm");
  if (state == "active") throw CliError("swarm is not locked");
  std::string key = readUnlockKey(context);
  if (key.empty()) throw CliError("no unlock key given: pipe it on stdin or type it at the prompt");
  context.api().post("/swarm/unlock", {}, json::value(json::object{{"UnlockKey", key}}));
}

void unlockKey(Context& context, const std::vector<std::string>& raw) {
  Command command("swarmctl swarm unlock-key [OPTIONS]", "Print (or rotate) the manager unlock key.");
  command.boolean("rotate", "rotate the unlock key first")
      .boolean("quiet", 'q', "print only the key")
      .arguments(0, 0);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  if (args->flag("rotate")) {
    auto swarm = context.api().get("/swarm");
    if (!at(swarm, {"Spec", "EncryptionConfig", "AutoLockManagers"}).is_bool() ||
        !at(swarm, {"Spec", "EncryptionConfig", "AutoLockManagers"}).get_bool()) {
      throw CliError("cannot rotate because autolock is not turned on (swarmctl swarm update --autolock)");
    }
    context.api().post("/swarm/update", rotation(num(swarm, {"Version", "Index"}), false, false, true),
                       at(swarm, {"Spec"}));
    if (!args->flag("quiet")) context.out << "Successfully rotated manager unlock key.\n\n";
  }
  auto key = context.api().get("/swarm/unlockkey");
  std::string text = str(key, {"UnlockKey"});
  if (text.empty()) throw CliError("no unlock key is set (turn on autolock with swarmctl swarm update --autolock)");
  if (args->flag("quiet")) {
    context.out << text << "\n";
  } else {
    context.out << kUnlockAdvice << text << kUnlockReminder;
  }
}

void ca(Context& context, const std::vector<std::string>& raw) {
  Command command("swarmctl swarm ca [OPTIONS]", "Print or rotate the swarm's root CA.");
  command.boolean("rotate", "rotate the root CA (a new one, or --ca-cert/--ca-key)")
      .option("ca-cert", "FILE", "PEM certificate of the new root CA")
      .option("ca-key", "FILE", "PEM key of the new root CA")
      .option("cert-expiry", "DUR", "validity period of node certificates")
      .option("external-ca", "SPEC", "external CA: protocol=cfssl,url=URL[,cacert=FILE]")
      .boolean("detach", 'd', "do not wait for the rotation to finish")
      .boolean("quiet", 'q', "print only the root CA certificate")
      .arguments(0, 0);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  bool changing = args->flag("rotate") || args->has("ca-cert") || args->has("ca-key") ||
                  args->has("cert-expiry") || args->has("external-ca");
  auto swarm = context.api().get("/swarm");
  if (!changing) {
    context.out << str(swarm, {"TLSInfo", "TrustRoot"});
    return;
  }
  if (!args->flag("rotate") && (args->has("ca-cert") || args->has("ca-key"))) {
    command.fail("--ca-cert and --ca-key need --rotate");
  }
  if (args->has("ca-key") && !args->has("ca-cert")) command.fail("--ca-key needs --ca-cert");
  json::value spec = at(swarm, {"Spec"});
  auto& caConfig = ensure(spec, {"CAConfig"});
  if (args->has("cert-expiry")) caConfig["NodeCertExpiry"] = durationFlag(command, *args, "cert-expiry");
  if (args->has("external-ca")) caConfig["ExternalCAs"] = externalCas(context, command, *args);
  if (args->flag("rotate")) {
    if (args->has("ca-cert")) caConfig["SigningCACert"] = readFileOrStdin(context, *args->value("ca-cert"));
    if (args->has("ca-key")) caConfig["SigningCAKey"] = readFileOrStdin(context, *args->value("ca-key"));
    caConfig["ForceRotate"] = num(spec, {"CAConfig", "ForceRotate"}) + 1;
  }
  context.api().post("/swarm/update", rotation(num(swarm, {"Version", "Index"}), false, false, false),
                     spec);
  if (args->flag("detach")) return;
  // Wait until every node has a certificate from the new root and the rotation is over.
  std::string lastLine;
  while (true) {
    swarm = context.api().get("/swarm");
    auto nodes = context.api().get("/nodes");
    std::size_t total = nodes.is_array() ? nodes.get_array().size() : 0;
    std::size_t rotated = 0;
    for (const auto& node : nodes.is_array() ? nodes.get_array() : json::array()) {
      if (at(node, {"Description", "TLSInfo"}) == at(swarm, {"TLSInfo"})) ++rotated;
    }
    bool inProgress = at(swarm, {"RootRotationInProgress"}).is_bool() &&
                      at(swarm, {"RootRotationInProgress"}).get_bool();
    std::string line = "rotated TLS certificates: " + std::to_string(rotated) + "/" +
                       std::to_string(total) + " nodes";
    if (!args->flag("quiet") && line != lastLine) context.out << line << "\n" << std::flush;
    lastLine = line;
    if (!inProgress && rotated == total) break;
    context.sleep(std::chrono::milliseconds(200));
  }
  context.out << str(swarm, {"TLSInfo", "TrustRoot"});
}

void inspect(Context& context, const std::vector<std::string>& raw) {
  Command command("swarmctl swarm inspect", "Print the swarm object (GET /swarm) as JSON.");
  command.arguments(0, 0);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  printJson(context.out, json::array{context.api().get("/swarm")});
}

}  // namespace

std::vector<VerbEntry> swarmVerbs() {
  return {{"swarm", "init", "Initialize a swarm", init},
          {"swarm", "join", "Join a swarm as a node", join},
          {"swarm", "leave", "Leave the swarm", leave},
          {"swarm", "join-token", "Print or rotate join tokens", joinToken},
          {"swarm", "update", "Update the swarm", update},
          {"swarm", "unlock", "Unlock a locked manager", unlock},
          {"swarm", "unlock-key", "Print or rotate the unlock key", unlockKey},
          {"swarm", "ca", "Print or rotate the root CA", ca},
          {"swarm", "inspect", "Print the swarm object", inspect}};
}

}  // namespace swarm::ctl
