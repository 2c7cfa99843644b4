#include "flags.h"

#include <cctype>
#include <cstdio>

namespace swarm::ctl {

bool ParsedArgs::has(std::string_view name) const { return given.find(name) != given.end(); }

std::optional<std::string> ParsedArgs::value(std::string_view name) const {
  auto found = given.find(name);
  if (found == given.end() || found->second.empty()) return std::nullopt;
  return found->second.back();
}

std::string ParsedArgs::valueOr(std::string_view name, std::string fallback) const {
  auto found = value(name);
  return found ? *found : fallback;
}

std::vector<std::string> ParsedArgs::values(std::string_view name) const {
  auto found = given.find(name);
  return found == given.end() ? std::vector<std::string>{} : found->second;
}

bool ParsedArgs::flag(std::string_view name) const {
  auto found = value(name);
  return found && *found != "false";
}

Command::Command(std::string usage, std::string summary)
    : usage(std::move(usage)), summary(std::move(summary)) {
  boolean("help", "print this help");
}

Command& Command::option(std::string name, char shortName, std::string metavar,
                         std::string help) {
  flags.push_back(Flag{std::move(name), shortName, std::move(metavar), std::move(help)});
  return *this;
}

Command& Command::boolean(std::string name, char shortName, std::string help) {
  flags.push_back(Flag{std::move(name), shortName, "", std::move(help)});
  return *this;
}

Command& Command::stopAtFirstPositional() {
  interspersed = false;
  return *this;
}

Command& Command::arguments(int min, int max) {
  minArgs = min;
  maxArgs = max;
  return *this;
}

const Flag* Command::find(std::string_view name) const {
  for (const auto& flag : flags) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

const Flag* Command::findShort(char name) const {
  for (const auto& flag : flags) {
    if (flag.shortName == name) return &flag;
  }
  return nullptr;
}

void Command::fail(const std::string& message) const { throw UsageError(message, usageText()); }

std::optional<ParsedArgs> Command::parse(const std::vector<std::string>& args) const {
  ParsedArgs parsed;
  bool flagsDone = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flagsDone || arg.size() < 2 || arg[0] != '-') {
      parsed.positional.push_back(arg);
      if (!interspersed) flagsDone = true;
      continue;
    }
    if (arg == "--") {
      flagsDone = true;
      continue;
    }
    auto takeValue = [&](const Flag& flag, std::optional<std::string> inlineValue,
                         const std::string& spelled) {
      if (flag.metavar.empty()) {
        std::string value = inlineValue.value_or("true");
        if (value != "true" && value != "false" && value != "1" && value != "0") {
          fail("flag " + spelled + " takes no value or true/false, not '" + value + "'");
        }
        parsed.given[flag.name].push_back(value == "1" ? "true" : value == "0" ? "false" : value);
        return;
      }
      if (!inlineValue) {
        if (i + 1 >= args.size()) fail("flag " + spelled + " needs a value (" + flag.metavar + ")");
        inlineValue = args[++i];
      }
      parsed.given[flag.name].push_back(*inlineValue);
    };
    if (arg.rfind("--", 0) == 0) {
      std::string name = arg.substr(2);
      std::optional<std::string> inlineValue;
      if (auto eq = name.find('='); eq != std::string::npos) {
        inlineValue = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      const Flag* flag = find(name);
      if (!flag) fail("unknown flag: --" + name);
      takeValue(*flag, inlineValue, "--" + name);
    } else {
      // A cluster of short flags ("-qf"); a value flag must come last ("-fvalue" or "-f value").
      for (std::size_t j = 1; j < arg.size(); ++j) {
        const Flag* flag = findShort(arg[j]);
        if (!flag) fail(std::string("unknown shorthand flag: '") + arg[j] + "' in " + arg);
        std::optional<std::string> inlineValue;
        if (!flag->metavar.empty() && j + 1 < arg.size()) {
          inlineValue = arg.substr(j + 1 + (arg[j + 1] == '=' ? 1 : 0));
          takeValue(*flag, inlineValue, std::string("-") + arg[j]);
          break;
        }
        takeValue(*flag, std::nullopt, std::string("-") + arg[j]);
      }
    }
  }
  if (parsed.flag("help")) return std::nullopt;
  int count = static_cast<int>(parsed.positional.size());
  auto plural = [](int n) { return std::to_string(n) + (n == 1 ? " argument" : " arguments"); };
  if (count < minArgs || (maxArgs >= 0 && count > maxArgs)) {
    std::string expected = minArgs == maxArgs ? "exactly " + plural(minArgs)
                           : maxArgs < 0      ? "at least " + plural(minArgs)
                           : minArgs == 0     ? "at most " + plural(maxArgs)
                                              : "between " + std::to_string(minArgs) + " and " +
                                                plural(maxArgs);
    fail("\"" + commandPath() + "\" requires " + expected + ", got " + std::to_string(count));
  }
  return parsed;
}

std::string Command::commandPath() const {
  // "swarmctl node update [OPTIONS] NODE" -> "swarmctl node update"
  std::string path;
  std::size_t start = 0;
  while (start < usage.size()) {
    std::size_t end = usage.find(' ', start);
    std::string word = usage.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (word.empty() || word[0] == '[' || std::isupper(static_cast<unsigned char>(word[0]))) break;
    path += (path.empty() ? "" : " ") + word;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return path;
}

std::string Command::usageText() const {
  std::string text = "Usage:  " + usage + "\n\n" + summary + "\n";
  if (flags.empty()) return text;
  text += "\nOptions:\n";
  std::vector<std::pair<std::string, std::string>> lines;
  std::size_t width = 0;
  for (const auto& flag : flags) {
    std::string left = flag.shortName ? std::string("  -") + flag.shortName + ", " : "      ";
    left += "--" + flag.name;
    if (!flag.metavar.empty()) left += " " + flag.metavar;
    width = std::max(width, left.size());
    lines.emplace_back(left, flag.help);
  }
  for (const auto& [left, help] : lines) {
    text += left + std::string(width - left.size() + 3, ' ') + help + "\n";
  }
  return text;
}

std::optional<std::pair<std::string, std::string>> splitKeyValue(std::string_view text) {
  auto eq = text.find('=');
  if (eq == std::string_view::npos) return std::nullopt;
  return std::pair{std::string(text.substr(0, eq)), std::string(text.substr(eq + 1))};
}

}  // namespace swarm::ctl
