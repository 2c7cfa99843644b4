// Docker-style flag parsing for one verb: "--name value", "--name=value", "-q", repeated flags,
// "--" to end flags, and a generated usage text. Bad usage throws UsageError, which main() prints
// with the verb's usage and exit status 2.
#pragma once

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace swarm::ctl {

class UsageError : public std::runtime_error {
 public:
  UsageError(const std::string& message, std::string usage)
      : std::runtime_error(message), usage(std::move(usage)) {}
  std::string usage;
};

struct Flag {
  std::string name;       // long name without dashes
  char shortName = 0;     // 0 when none
  std::string metavar;    // empty for a boolean flag
  std::string help;
};

class ParsedArgs {
 public:
  bool has(std::string_view name) const;
  // The last value given (flags given twice: the last wins, as with cobra).
  std::optional<std::string> value(std::string_view name) const;
  std::string valueOr(std::string_view name, std::string fallback) const;
  std::vector<std::string> values(std::string_view name) const;
  // A boolean flag: "--force", "--force=true", "--force=false".
  bool flag(std::string_view name) const;

  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>, std::less<>> given;
};

class Command {
 public:
  // usage: "swarmctl node update [OPTIONS] NODE"; summary: one line of what it does.
  Command(std::string usage, std::string summary);

  Command& option(std::string name, char shortName, std::string metavar, std::string help);
  Command& option(std::string name, std::string metavar, std::string help) {
    return option(std::move(name), 0, std::move(metavar), std::move(help));
  }
  Command& boolean(std::string name, char shortName, std::string help);
  Command& boolean(std::string name, std::string help) {
    return boolean(std::move(name), 0, std::move(help));
  }
  // Stop flag parsing at the first positional argument (service create IMAGE ARG...).
  Command& stopAtFirstPositional();
  // Bounds on positional arguments; `max` < 0 means unbounded.
  Command& arguments(int min, int max);

  // Throws UsageError. Returns nullopt when --help was given (the caller prints usageText()).
  std::optional<ParsedArgs> parse(const std::vector<std::string>& args) const;

  std::string usageText() const;
  std::string commandPath() const;
  [[noreturn]] void fail(const std::string& message) const;

 private:
  const Flag* find(std::string_view name) const;
  const Flag* findShort(char name) const;

  std::string usage;
  std::string summary;
  std::vector<Flag> flags;
  bool interspersed = true;
  int minArgs = 0;
  int maxArgs = -1;
};

// Splits "k=v" (value may be empty); nullopt when there is no '='.
std::optional<std::pair<std::string, std::string>> splitKeyValue(std::string_view text);

}  // namespace swarm::ctl
