// swarmctl's entry point and the context every verb runs in. main() only builds a Context on the
// process's streams and calls run(); tests can run verbs in-process with their own streams.
#pragma once

#include "client.h"
#include "flags.h"

#include <boost/json/value.hpp>

#include <chrono>
#include <functional>
#include <iosfwd>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace swarm::ctl {

// A failure detected by swarmctl itself (not the server): printed as "Error: <message>", exit 1.
class CliError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class OutputFormat { Table, Json };

class Context {
 public:
  Context(std::ostream& out, std::ostream& err, std::istream& in);

  // The client for --host / SWARMCTL_HOST, created on first use.
  ApiClient& api();

  std::ostream& out;
  std::ostream& err;
  std::istream& in;
  std::string host;                                   // -H, SWARMCTL_HOST, or kDefaultHost
  std::chrono::milliseconds timeout{30000};           // --timeout, per request
  OutputFormat format = OutputFormat::Table;          // --format
  bool terminal = false;                              // stdout is a terminal (progress redraws)
  bool stdinTerminal = false;                         // prompt for the unlock key
  std::function<std::chrono::system_clock::time_point()> now = std::chrono::system_clock::now;
  std::function<void(std::chrono::milliseconds)> sleep;  // progress polling pause

 private:
  std::unique_ptr<ApiClient> client;
};

// Runs one swarmctl command line (without argv[0]); returns the exit status: 0 success,
// 1 failure (server error, unreachable manager, client-side error), 2 bad usage.
int run(Context& context, const std::vector<std::string>& args);

// Shared by the verb implementations.
using Verb = std::function<void(Context&, const std::vector<std::string>&)>;
struct VerbEntry {
  std::string noun;
  std::string verb;
  std::string summary;
  Verb run;
};
std::vector<VerbEntry> swarmVerbs();
std::vector<VerbEntry> nodeVerbs();
std::vector<VerbEntry> serviceVerbs();
std::vector<VerbEntry> secretVerbs();  // secret and config

// Parses `args` for `command`; prints the usage and returns nullopt for --help. Applies
// --format when the command declared it.
std::optional<ParsedArgs> parseArgs(Context& context, const Command& command,
                                    const std::vector<std::string>& args);

// {"key":{"value":true},...} from repeated --filter key=value flags.
std::string encodeFilters(const Command& command, const std::vector<std::string>& filters);

// The node ID for "self" (from GET /info) or the argument unchanged.
std::string resolveNode(Context& context, const std::string& nameOrId);

// Prints a list of API objects: the JSON array with --format json, else calls `table`.
void printList(Context& context, const boost::json::array& items,
               const std::function<void()>& table);

// Member access that tolerates absent fields: at(v, {"Spec","Name"}) -> value or null.
const boost::json::value& at(const boost::json::value& value,
                             std::initializer_list<std::string_view> path);
std::string str(const boost::json::value& value, std::initializer_list<std::string_view> path);
std::int64_t num(const boost::json::value& value, std::initializer_list<std::string_view> path);
// The object at `path`, created (with intermediate objects) when absent or null.
boost::json::object& ensure(boost::json::value& value,
                            std::initializer_list<std::string_view> path);

std::string readFileOrStdin(Context& context, const std::string& path);

// Collects per-argument errors of multi-argument verbs (rm, inspect) so every argument is tried;
// throws a CliError listing them at the end.
class ErrorList {
 public:
  void add(const std::exception& error);
  void throwIfAny() const;
  bool empty() const { return messages.empty(); }

 private:
  std::vector<std::string> messages;
};

}  // namespace swarm::ctl
