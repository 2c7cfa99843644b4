#include "cli.h"

#include "text.h"

#include <boost/json/serialize.hpp>

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <thread>

#ifndef SWARM_KERNEL_VERSION
#define SWARM_KERNEL_VERSION "0.0.0"
#endif

namespace swarm::ctl {

namespace json = boost::json;

namespace {

// Errors already worded in full (several per-argument failures), printed as they are.
class ReportedErrors : public CliError {
 public:
  using CliError::CliError;
};

constexpr const char* kUsage =
    "Usage:  swarmctl [OPTIONS] COMMAND\n"
    "\n"
    "The swarm-kernel CLI: manages a swarm through a manager's Docker Engine API.\n"
    "\n"
    "Options:\n"
    "  -H, --host ADDRESS    the manager: unix:///PATH or tcp://HOST:PORT\n"
    "                        (default $SWARMCTL_HOST, else unix:///var/run/swarm-kernel.sock)\n"
    "      --format FORMAT   json (the raw API objects as one JSON array) or table (default)\n"
    "      --timeout DUR     time each request may take, e.g. 30s (default 30s)\n"
    "      --version         print the version\n"
    "      --help            print this help\n"
    "\n"
    "Commands:\n";

std::vector<VerbEntry> allVerbs() {
  std::vector<VerbEntry> verbs;
  for (auto group : {swarmVerbs(), nodeVerbs(), serviceVerbs(), secretVerbs()}) {
    for (auto& entry : group) verbs.push_back(std::move(entry));
  }
  return verbs;
}

std::string nounHelp(const std::vector<VerbEntry>& verbs, const std::string& noun) {
  std::string text = "Usage:  swarmctl " + noun + " COMMAND\n\nCommands:\n";
  std::size_t width = 0;
  for (const auto& entry : verbs) {
    if (entry.noun == noun) width = std::max(width, entry.verb.size());
  }
  for (const auto& entry : verbs) {
    if (entry.noun != noun) continue;
    text += "  " + entry.verb + std::string(width - entry.verb.size() + 3, ' ') + entry.summary +
            "\n";
  }
  return text + "\nRun 'swarmctl " + noun + " COMMAND --help' for more information.\n";
}

std::string globalHelp(const std::vector<VerbEntry>& verbs) {
  std::string text = kUsage;
  std::vector<std::string> nouns;
  for (const auto& entry : verbs) {
    if (std::find(nouns.begin(), nouns.end(), entry.noun) == nouns.end()) {
      nouns.push_back(entry.noun);
    }
  }
  for (const auto& noun : nouns) {
    text += "  " + noun + std::string(10 - noun.size(), ' ');
    std::string verbList;
    for (const auto& entry : verbs) {
      if (entry.noun == noun) verbList += (verbList.empty() ? "" : ", ") + entry.verb;
    }
    text += verbList + "\n";
  }
  return text + "\nRun 'swarmctl COMMAND --help' for more information on a command.\n";
}

void applyFormat(Context& context, const std::string& value, const std::string& usage) {
  if (value == "json") {
    context.format = OutputFormat::Json;
  } else if (value == "table") {
    context.format = OutputFormat::Table;
  } else {
    throw UsageError("--format '" + value + "' must be json or table", usage);
  }
}

}  // namespace

Context::Context(std::ostream& out, std::ostream& err, std::istream& in)
    : out(out), err(err), in(in) {
  sleep = [](std::chrono::milliseconds pause) { std::this_thread::sleep_for(pause); };
}

ApiClient& Context::api() {
  if (!client) {
    HostAddress address;
    try {
      address = parseHostAddress(host.empty() ? std::string(kDefaultHost) : host);
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what(), kUsage);
    }
    client = std::make_unique<ApiClient>(std::move(address), timeout);
  }
  return *client;
}

std::optional<ParsedArgs> parseArgs(Context& context, const Command& command,
                                     const std::vector<std::string>& args) {
  auto parsed = command.parse(args);
  if (!parsed) {
    context.out << command.usageText();
    return std::nullopt;
  }
  if (auto format = parsed->value("format")) applyFormat(context, *format, command.usageText());
  return parsed;
}

std::string encodeFilters(const Command& command, const std::vector<std::string>& filters) {
  json::object encoded;
  for (const auto& filter : filters) {
    auto pair = splitKeyValue(filter);
    if (!pair || pair->first.empty()) {
      command.fail("bad filter '" + filter + "': expected KEY=VALUE, e.g. name=web");
    }
    auto& values = encoded[pair->first];
    if (!values.is_object()) values = json::object();
    values.get_object()[pair->second] = true;
  }
  return json::serialize(encoded);
}

std::string resolveNode(Context& context, const std::string& nameOrId) {
  if (nameOrId != "self") return nameOrId;
  auto info = context.api().get("/info");
  std::string id = str(info, {"Swarm", "NodeID"});
  if (id.empty()) throw CliError("this node is not part of a swarm, so 'self' names no node");
  return id;
}

void printList(Context& context, const json::array& items, const std::function<void()>& table) {
  if (context.format == OutputFormat::Json) {
    printJson(context.out, items);
  } else {
    table();
  }
}

const json::value& at(const json::value& value, std::initializer_list<std::string_view> path) {
  static const json::value kNull;
  const json::value* current = &value;
  for (auto key : path) {
    if (!current->is_object()) return kNull;
    current = current->get_object().if_contains(key);
    if (!current) return kNull;
  }
  return *current;
}

std::string str(const json::value& value, std::initializer_list<std::string_view> path) {
  const auto& found = at(value, path);
  return found.is_string() ? std::string(found.get_string()) : std::string();
}

std::int64_t num(const json::value& value, std::initializer_list<std::string_view> path) {
  const auto& found = at(value, path);
  if (found.is_int64()) return found.get_int64();
  if (found.is_uint64()) return static_cast<std::int64_t>(found.get_uint64());
  if (found.is_double()) return static_cast<std::int64_t>(found.get_double());
  return 0;
}

json::object& ensure(json::value& value, std::initializer_list<std::string_view> path) {
  json::value* current = &value;
  if (!current->is_object()) *current = json::object();
  for (auto key : path) {
    json::value& next = current->get_object()[key];
    if (!next.is_object()) next = json::object();
    current = &next;
  }
  return current->get_object();
}

std::string readFileOrStdin(Context& context, const std::string& path) {
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(context.in), {});
  }
  std::ifstream file(path, std::ios::binary);
  if (!file) throw CliError("cannot read " + path + ": " + std::strerror(errno));
  return std::string(std::istreambuf_iterator<char>(file), {});
}

void ErrorList::add(const std::exception& error) {
  if (dynamic_cast<const DaemonError*>(&error)) {
    messages.push_back(std::string("Error response from daemon: ") + error.what());
  } else if (dynamic_cast<const ConnectionError*>(&error)) {
    throw;  // Nothing else will reach the manager either.
  } else {
    messages.push_back(std::string("Error: ") + error.what());
  }
}

void ErrorList::throwIfAny() const {
  if (messages.empty()) return;
  std::string text;
  for (const auto& message : messages) text += (text.empty() ? "" : "\n") + message;
  throw ReportedErrors(text);
}

int run(Context& context, const std::vector<std::string>& args) {
  auto verbs = allVerbs();
  std::size_t index = 0;
  try {
    // Global options come before the command.
    for (; index < args.size(); ++index) {
      const std::string& arg = args[index];
      if (arg.empty() || arg[0] != '-') break;
      auto value = [&](const std::string& name) -> std::string {
        auto eq = arg.find('=');
        if (arg.rfind("--", 0) == 0 && eq != std::string::npos) return arg.substr(eq + 1);
        if (index + 1 >= args.size()) throw UsageError(name + " needs a value", kUsage);
        return args[++index];
      };
      if (arg == "--help" || arg == "-h") {
        context.out << globalHelp(verbs);
        return 0;
      } else if (arg == "--version" || arg == "-v") {
        context.out << "swarmctl version " << SWARM_KERNEL_VERSION << " (API "
                    << kMaxApiVersion << ")\n";
        return 0;
      } else if (arg == "-H" || arg == "--host" || arg.rfind("--host=", 0) == 0) {
        context.host = value("--host");
      } else if (arg == "--format" || arg.rfind("--format=", 0) == 0) {
        applyFormat(context, value("--format"), kUsage);
      } else if (arg == "--timeout" || arg.rfind("--timeout=", 0) == 0) {
        std::string text = value("--timeout");
        auto parsed = parseDuration(text);
        if (!parsed || *parsed <= 0) {
          throw UsageError("--timeout '" + text + "' must be a positive duration like 30s or 2m",
                           kUsage);
        }
        context.timeout = std::chrono::milliseconds(std::max<std::int64_t>(1, *parsed / 1000000));
      } else {
        throw UsageError("unknown flag: " + arg, kUsage);
      }
    }
    if (index >= args.size()) {
      throw UsageError("a command is required", globalHelp(verbs));
    }
    std::string noun = args[index++];
    bool knownNoun = false;
    for (const auto& entry : verbs) knownNoun = knownNoun || entry.noun == noun;
    if (!knownNoun) throw UsageError("unknown command '" + noun + "'", globalHelp(verbs));
    if (index >= args.size() || args[index] == "--help" || args[index] == "-h") {
      if (index >= args.size()) throw UsageError("'swarmctl " + noun + "' needs a command",
                                                 nounHelp(verbs, noun));
      context.out << nounHelp(verbs, noun);
      return 0;
    }
    std::string verb = args[index++];
    // docker's aliases
    if (verb == "list") verb = "ls";
    if (verb == "remove") verb = "rm";
    for (const auto& entry : verbs) {
      if (entry.noun == noun && entry.verb == verb) {
        entry.run(context, std::vector<std::string>(args.begin() + static_cast<long>(index),
                                                    args.end()));
        return 0;
      }
    }
    throw UsageError("unknown command 'swarmctl " + noun + " " + verb + "'",
                     nounHelp(verbs, noun));
  } catch (const UsageError& e) {
    context.out.flush();
    context.err << "swarmctl: " << e.what() << "\n\n" << e.usage;
    return 2;
  } catch (const DaemonError& e) {
    context.out.flush();
    context.err << "Error response from daemon: " << e.what() << "\n";
    return 1;
  } catch (const ConnectionError& e) {
    context.out.flush();
    context.err << e.what() << "\n";
    return 1;
  } catch (const ReportedErrors& e) {
    context.out.flush();
    context.err << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    context.out.flush();
    context.err << "Error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace swarm::ctl
