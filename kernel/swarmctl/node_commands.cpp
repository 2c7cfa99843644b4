// swarmctl node ls|inspect|update|promote|demote|rm|ps.
#include "cli.h"
#include "tasks.h"
#include "text.h"

#include <algorithm>

namespace swarm::ctl {

namespace json = boost::json;

namespace {

Command& withFormat(Command& command) {
  return command.option("format", "FORMAT", "json or table");
}

std::string managerStatus(const json::value& node) {
  const auto& manager = at(node, {"ManagerStatus"});
  if (!manager.is_object()) return "";
  if (at(manager, {"Leader"}).is_bool() && at(manager, {"Leader"}).get_bool()) return "Leader";
  return capitalize(str(manager, {"Reachability"}));
}

void ls(Context& context, const std::vector<std::string>& raw) {
  Command command("swarmctl node ls [OPTIONS]", "List the nodes of the swarm.");
  command.option("filter", 'f', "KEY=VALUE", "filter: id, label, membership, name, node.label, role")
      .boolean("quiet", 'q', "print only IDs");
  withFormat(command).arguments(0, 0);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  Query query;
  if (args->has("filter")) query.emplace_back("filters", encodeFilters(command, args->values("filter")));
  auto nodes = context.api().get("/nodes", query);
  json::array list = nodes.is_array() ? nodes.get_array() : json::array();
  std::stable_sort(list.begin(), list.end(), [](const json::value& a, const json::value& b) {
    return std::pair(str(a, {"Description", "Hostname"}), str(a, {"ID"})) <
           std::pair(str(b, {"Description", "Hostname"}), str(b, {"ID"}));
  });
  if (args->flag("quiet")) {
    for (const auto& node : list) context.out << str(node, {"ID"}) << "\n";
    return;
  }
  printList(context, list, [&]() {
    std::string self;
    if (!list.empty()) self = str(context.api().get("/info"), {"Swarm", "NodeID"});
    Table table({"ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ENGINE VERSION"});
    for (const auto& node : list) {
      std::string id = str(node, {"ID"});
      table.add({id == self && !self.empty() ? id + " *" : id, str(node, {"Description", "Hostname"}),
                 capitalize(str(node, {"Status", "State"})),
                 capitalize(str(node, {"Spec", "Availability"})), managerStatus(node),
                 str(node, {"Description", "Engine", "EngineVersion"})});
    }
    table.print(context.out);
  });
}

void printPretty(Context& context, const json::value& node) {
  auto line = [&](const std::string& label, const std::string& value) {
    context.out << label << std::string(label.size() < 24 ? 24 - label.size() : 1, ' ') << value
                << "\n";
  };
  line("ID:", str(node, {"ID"}));
  if (!str(node, {"Spec", "Name"}).empty()) line("Name:", str(node, {"Spec", "Name"}));
  const auto& labels = at(node, {"Spec", "Labels"});
  if (labels.is_object() && !labels.get_object().empty()) {
    context.out << "Labels:\n";
    for (const auto& [key, value] : labels.get_object()) {
      context.out << " - " << std::string(key) << " = "
                  << (value.is_string() ? std::string(value.get_string()) : "") << "\n";
    }
  }
  line("Hostname:", str(node, {"Description", "Hostname"}));
  line("Joined at:", str(node, {"CreatedAt"}));
  context.out << "Status:\n";
  line(" State:", capitalize(str(node, {"Status", "State"})));
  if (!str(node, {"Status", "Message"}).empty()) line(" Message:", str(node, {"Status", "Message"}));
  line(" Availability:", capitalize(str(node, {"Spec", "Availability"})));
  line(" Address:", str(node, {"Status", "Addr"}));
  if (at(node, {"ManagerStatus"}).is_object()) {
    context.out << "Manager Status:\n";
    line(" Address:", str(node, {"ManagerStatus", "Addr"}));
    line(" Raft Status:", capitalize(str(node, {"ManagerStatus", "Reachability"})));
    bool leader = at(node, {"ManagerStatus", "Leader"}).is_bool() &&
                  at(node, {"ManagerStatus", "Leader"}).get_bool();
    line(" Leader:", leader ? "Yes" : "No");
  }
  context.out << "Platform:\n";
  line(" Operating System:", str(node, {"Description", "Platform", "OS"}));
  line(" Architecture:", str(node, {"Description", "Platform", "Architecture"}));
  context.out << "Resources:\n";
  char cpus[32];
  std::snprintf(cpus, sizeof cpus, "%g", double(num(node, {"Description", "Resources", "NanoCPUs"})) / 1e9);
  line(" CPUs:", cpus);
  char memory[32];
  std::snprintf(memory, sizeof memory, "%.4gGiB",
                double(num(node, {"Description", "Resources", "MemoryBytes"})) / (1024.0 * 1024 * 1024));
  line(" Memory:", memory);
  line("Engine Version:", str(node, {"Description", "Engine", "EngineVersion"}));
}

void inspect(Context& context, const std::vector<std::string>& raw) {
  Command command("swarmctl node inspect [OPTIONS] self|NODE [NODE...]",
                  "Print nodes as JSON (or a readable summary with --pretty).");
  command.boolean("pretty", "print a readable summary instead of JSON");
  withFormat(command).arguments(1, -1);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  json::array nodes;
  ErrorList errors;
  for (const auto& name : args->positional) {
    try {
      nodes.push_back(context.api().get("/nodes/" + resolveNode(context, name)));
    } catch (const std::exception& e) {
      errors.add(e);
    }
  }
  if (args->flag("pretty")) {
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (i > 0) context.out << "\n";
      printPretty(context, nodes[i]);
    }
  } else if (!nodes.empty() || errors.empty()) {
    printJson(context.out, nodes);
  }
  errors.throwIfAny();
}

// GET the node, let `change` edit its spec, POST it back with ?version=.
void updateNode(Context& context, const std::string& id,
                const std::function<bool(json::value& node, json::value& spec)>& change) {
  auto node = context.api().get("/nodes/" + id);
  json::value spec = at(node, {"Spec"});
  if (!spec.is_object()) spec = json::object();
  if (!change(node, spec)) return;
  context.api().post("/nodes/" + str(node, {"ID"}) + "/update",
                     {{"version", std::to_string(num(node, {"Version", "Index"}))}}, spec);
}

void update(Context& context, const std::vector<std::string>& raw) {
  Command command("swarmctl node update [OPTIONS] NODE", "Update a node's availability, role or labels.");
  command.option("availability", "STATE", "active, pause or drain")
      .option("role", "ROLE", "worker or manager")
      .option("label-add", "KEY=VALUE", "add or change a node label (repeatable)")
      .option("label-rm", "KEY", "remove a node label (repeatable)")
      .arguments(1, 1);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  if (auto availability = args->value("availability");
      availability && *availability != "active" && *availability != "pause" && *availability != "drain") {
    command.fail("--availability '" + *availability + "' must be active, pause or drain");
  }
  if (auto role = args->value("role"); role && *role != "worker" && *role != "manager") {
    command.fail("--role '" + *role + "' must be worker or manager");
  }
  for (const auto& label : args->values("label-add")) {
    if (!splitKeyValue(label) && label.empty()) command.fail("--label-add needs KEY=VALUE");
  }
  std::string id = resolveNode(context, args->positional[0]);
  updateNode(context, id, [&](json::value&, json::value& spec) {
    if (auto availability = args->value("availability")) spec.get_object()["Availability"] = *availability;
    if (auto role = args->value("role")) spec.get_object()["Role"] = *role;
    if (args->has("label-add") || args->has("label-rm")) {
      auto& labels = ensure(spec, {"Labels"});
      for (const auto& label : args->values("label-add")) {
        auto pair = splitKeyValue(label);
        labels[pair ? pair->first : label] = pair ? pair->second : "";
      }
      for (const auto& key : args->values("label-rm")) {
        if (!labels.contains(key)) throw CliError("key " + key + " doesn't exist in node's labels");
        labels.erase(key);
      }
    }
    return true;
  });
  context.out << args->positional[0] << "\n";
}

void changeRole(Context& context, const std::vector<std::string>& raw, const std::string& role) {
  bool promote = role == "manager";
  Command command(std::string("swarmctl node ") + (promote ? "promote" : "demote") + " NODE [NODE...]",
                  promote ? "Promote nodes to managers." : "Demote managers to workers.");
  command.arguments(1, -1);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  ErrorList errors;
  for (const auto& name : args->positional) {
    try {
      bool changed = false;
      updateNode(context, resolveNode(context, name), [&](json::value&, json::value& spec) {
        if (str(spec, {"Role"}) == role) {
          context.out << "Node " << name << " is already a " << role << ".\n";
          return false;
        }
        spec.get_object()["Role"] = role;
        changed = true;
        return true;
      });
      if (!changed) continue;
      if (promote) {
        context.out << "Node " << name << " promoted to a manager in the swarm.\n";
      } else {
        context.out << "Manager " << name << " demoted in the swarm.\n";
      }
    } catch (const std::exception& e) {
      errors.add(e);
    }
  }
  errors.throwIfAny();
}

void rm(Context& context, const std::vector<std::string>& raw) {
  Command command("swarmctl node rm [OPTIONS] NODE [NODE...]", "Remove nodes from the swarm.");
  command.boolean("force", 'f', "remove even a node that is not down").arguments(1, -1);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  Query query;
  if (args->flag("force")) query.emplace_back("force", "1");
  ErrorList errors;
  for (const auto& name : args->positional) {
    try {
      context.api().call("DELETE", "/nodes/" + name, query);
      context.out << name << "\n";
    } catch (const std::exception& e) {
      errors.add(e);
    }
  }
  errors.throwIfAny();
}

void ps(Context& context, const std::vector<std::string>& raw) {
  Command command("swarmctl node ps [OPTIONS] [self|NODE...]", "List the tasks on nodes (default self).");
  command.option("filter", 'f', "KEY=VALUE", "filter: desired-state, id, label, name")
      .boolean("no-trunc", "do not truncate IDs and errors")
      .boolean("quiet", 'q', "print only task IDs");
  withFormat(command).arguments(0, -1);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  std::vector<std::string> names = args->positional;
  if (names.empty()) names.push_back("self");
  json::array tasks;
  ErrorList errors;
  for (const auto& name : names) {
    try {
      auto node = context.api().get("/nodes/" + resolveNode(context, name));
      std::vector<std::string> filters = args->values("filter");
      filters.push_back("node=" + str(node, {"ID"}));
      auto found = context.api().get("/tasks", {{"filters", encodeFilters(command, filters)}});
      if (found.is_array()) {
        for (auto& task : found.get_array()) tasks.push_back(task);
      }
    } catch (const std::exception& e) {
      errors.add(e);
    }
  }
  printTasks(context, tasks, args->flag("quiet"), args->flag("no-trunc"));
  errors.throwIfAny();
}

}  // namespace

std::vector<VerbEntry> nodeVerbs() {
  return {{"node", "ls", "List nodes", ls},
          {"node", "inspect", "Print nodes as JSON", inspect},
          {"node", "update", "Update a node", update},
          {"node", "promote", "Promote nodes to managers",
           [](Context& c, const std::vector<std::string>& a) { changeRole(c, a, "manager"); }},
          {"node", "demote", "Demote managers to workers",
           [](Context& c, const std::vector<std::string>& a) { changeRole(c, a, "worker"); }},
          {"node", "rm", "Remove nodes", rm},
          {"node", "ps", "List tasks on nodes", ps}};
}

}  // namespace swarm::ctl
