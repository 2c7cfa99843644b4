// swarmctl secret|config create|ls|inspect|rm: the two share everything but the path and a few
// fields (secrets have a driver; ls shows it).
#include "cli.h"
#include "text.h"

#include <algorithm>

namespace swarm::ctl {

namespace json = boost::json;

namespace {

struct Kind {
  std::string noun;    // "secret"
  std::string path;    // "/secrets"
  bool secret;
};

void create(Context& context, const Kind& kind, const std::vector<std::string>& raw) {
  Command command("swarmctl " + kind.noun + " create [OPTIONS] NAME FILE|-",
                  "Create a " + kind.noun + " from a file or from stdin ('-').");
  command.option("label", 'l', "KEY=VALUE", kind.noun + " label (repeatable)")
      .option("template-driver", "NAME", "template driver, e.g. golang");
  if (kind.secret) command.option("driver", 'd', "NAME", "secret driver");
  command.arguments(2, 2);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  json::object labels;
  for (const auto& label : args->values("label")) {
    auto pair = splitKeyValue(label);
    labels[pair ? pair->first : label] = pair ? pair->second : "";
  }
  json::object spec{{"Name", args->positional[0]}, {"Labels", labels}};
  if (kind.secret && args->has("driver")) {
    spec["Driver"] = json::object{{"Name", *args->value("driver")}};
  } else {
    std::string data = readFileOrStdin(context, args->positional[1]);
    if (data.empty()) throw CliError(kind.noun + " data is empty: give a non-empty file or stdin");
    spec["Data"] = base64Encode(data);
  }
  if (args->has("template-driver")) {
    spec["Templating"] = json::object{{"Name", *args->value("template-driver")}};
  }
  auto created = context.api().post(kind.path + "/create", {}, json::value(spec));
  context.out << str(created, {"ID"}) << "\n";
}

void ls(Context& context, const Kind& kind, const std::vector<std::string>& raw) {
  Command command("swarmctl " + kind.noun + " ls [OPTIONS]", "List " + kind.noun + "s.");
  command.option("filter", 'f', "KEY=VALUE", "filter: id, label, name")
      .boolean("quiet", 'q', "print only IDs")
      .option("format", "FORMAT", "json or table")
      .arguments(0, 0);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  Query query;
  if (args->has("filter")) query.emplace_back("filters", encodeFilters(command, args->values("filter")));
  auto found = context.api().get(kind.path, query);
  json::array list = found.is_array() ? found.get_array() : json::array();
  std::stable_sort(list.begin(), list.end(), [](const json::value& a, const json::value& b) {
    return str(a, {"Spec", "Name"}) < str(b, {"Spec", "Name"});
  });
  if (args->flag("quiet")) {
    for (const auto& item : list) context.out << str(item, {"ID"}) << "\n";
    return;
  }
  printList(context, list, [&]() {
    auto now = context.now();
    std::vector<std::string> headers{"ID", "NAME"};
    if (kind.secret) headers.push_back("DRIVER");
    headers.insert(headers.end(), {"CREATED", "UPDATED"});
    Table table(headers);
    for (const auto& item : list) {
      std::vector<std::string> row{str(item, {"ID"}), str(item, {"Spec", "Name"})};
      if (kind.secret) row.push_back(str(item, {"Spec", "Driver", "Name"}));
      row.push_back(timeAgo(str(item, {"CreatedAt"}), now));
      row.push_back(timeAgo(str(item, {"UpdatedAt"}), now));
      table.add(row);
    }
    table.print(context.out);
  });
}

void inspect(Context& context, const Kind& kind, const std::vector<std::string>& raw) {
  Command command("swarmctl " + kind.noun + " inspect NAME|ID [NAME|ID...]",
                  "Print " + kind.noun + "s as JSON.");
  command.option("format", "FORMAT", "json").arguments(1, -1);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  json::array items;
  ErrorList errors;
  for (const auto& name : args->positional) {
    try {
      items.push_back(context.api().get(kind.path + "/" + name));
    } catch (const std::exception& e) {
      errors.add(e);
    }
  }
  if (!items.empty() || args->positional.empty()) printJson(context.out, items);
  errors.throwIfAny();
}

void rm(Context& context, const Kind& kind, const std::vector<std::string>& raw) {
  Command command("swarmctl " + kind.noun + " rm NAME|ID [NAME|ID...]", "Remove " + kind.noun + "s.");
  command.arguments(1, -1);
  auto args = parseArgs(context, command, raw);
  if (!args) return;
  ErrorList errors;
  for (const auto& name : args->positional) {
    try {
      context.api().call("DELETE", kind.path + "/" + name);
      context.out << name << "\n";
    } catch (const std::exception& e) {
      errors.add(e);
    }
  }
  errors.throwIfAny();
}

}  // namespace

std::vector<VerbEntry> secretVerbs() {
  std::vector<VerbEntry> verbs;
  for (const Kind& kind : {Kind{"secret", "/secrets", true}, Kind{"config", "/configs", false}}) {
    verbs.push_back({kind.noun, "create", "Create a " + kind.noun,
                     [kind](Context& c, const std::vector<std::string>& a) { create(c, kind, a); }});
    verbs.push_back({kind.noun, "ls", "List " + kind.noun + "s",
                     [kind](Context& c, const std::vector<std::string>& a) { ls(c, kind, a); }});
    verbs.push_back({kind.noun, "inspect", "Print " + kind.noun + "s as JSON",
                     [kind](Context& c, const std::vector<std::string>& a) { inspect(c, kind, a); }});
    verbs.push_back({kind.noun, "rm", "Remove " + kind.noun + "s",
                     [kind](Context& c, const std::vector<std::string>& a) { rm(c, kind, a); }});
  }
  return verbs;
}

}  // namespace swarm::ctl
