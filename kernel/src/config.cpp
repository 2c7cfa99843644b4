#include "config.h"

#include "errors.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <cstring>
#include <map>
#include <set>
#include <sstream>

namespace swarm::kernel {

namespace {

struct KindEntry {
  const char* name;
  schema::Kind kind;
};

constexpr KindEntry kKinds[] = {
    {"consensus", schema::Kind::CONSENSUS}, {"pki", schema::Kind::PKI},
    {"scheduler", schema::Kind::SCHEDULER}, {"runtime", schema::Kind::RUNTIME},
    {"transport", schema::Kind::TRANSPORT},
};

std::string trim(const std::string& s) {
  auto begin = s.find_first_not_of(" \t\r");
  if (begin == std::string::npos) return "";
  auto end = s.find_last_not_of(" \t\r");
  return s.substr(begin, end - begin + 1);
}

class Parser {
 public:
  Parser(const std::string& path) : path(path) {}

  [[noreturn]] void fail(unsigned line, const std::string& what) {
    throw UserError(path + ":" + std::to_string(line) + ": " + what);
  }

  unsigned parseUnsigned(unsigned line, const std::string& key, const std::string& value,
                         unsigned max) {
    unsigned result = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), result);
    if (ec != std::errc() || end != value.data() + value.size() || result > max) {
      fail(line, "'" + key + " = " + value + "': expected a whole number from 0 to " +
                     std::to_string(max));
    }
    return result;
  }

  void setKey(PluginConfig& plugin, unsigned line, const std::string& key,
              const std::string& value) {
    if (key.rfind("setting.", 0) == 0) {
      std::string name = key.substr(8);
      if (name.empty()) fail(line, "'setting.' needs a name, e.g. 'setting.image = busybox'");
      for (auto& [k, v] : plugin.settings) {
        if (k == name) fail(line, "setting '" + name + "' is given twice; keep one");
      }
      plugin.settings.emplace_back(name, value);
      return;
    }
    if (!seenKeys.insert(key).second) {
      fail(line, "'" + key + "' is given twice in [" + kindName(plugin.kind) + "]; keep one");
    }
    if (key == "library") {
      if (value.empty()) fail(line, "'library' is empty; give the path of the plugin's .so");
      std::filesystem::path p(value);
      if (p.is_relative()) p = std::filesystem::path(path).parent_path() / p;
      plugin.library = p.lexically_normal().string();
    } else if (key == "isolation") {
      if (value == "in-process") {
        plugin.isolation = Isolation::inProcess;
      } else if (value == "out-of-process") {
        plugin.isolation = Isolation::outOfProcess;
      } else {
        fail(line, "isolation '" + value + "' is not known; use in-process or out-of-process");
      }
    } else if (key == "on-crash") {
      if (value == "restart") {
        plugin.onCrash = CrashPolicy::restart;
      } else if (value == "stop") {
        plugin.onCrash = CrashPolicy::stop;
      } else {
        fail(line, "on-crash '" + value + "' is not known; use restart or stop");
      }
    } else if (key == "restart-backoff-ms") {
      plugin.restartBackoff = std::chrono::milliseconds(parseUnsigned(line, key, value, 600000));
    } else if (key == "max-restarts") {
      plugin.maxRestarts = parseUnsigned(line, key, value, 1000);
    } else {
      fail(line, "unknown key '" + key +
                     "'; known keys: library, isolation, on-crash, restart-backoff-ms, "
                     "max-restarts, setting.<name>");
    }
  }

  KernelConfig parse(const std::string& text) {
    KernelConfig config;
    config.path = path;
    std::istringstream in(text);
    std::string raw;
    unsigned lineNo = 0;
    PluginConfig* current = nullptr;
    std::map<schema::Kind, unsigned> sectionLine;
    while (std::getline(in, raw)) {
      ++lineNo;
      std::string line = trim(raw);
      if (line.empty() || line[0] == '#' || line[0] == ';') continue;
      if (line[0] == '[') {
        if (line.back() != ']') fail(lineNo, "section header '" + line + "' is missing its ']'");
        std::string name = trim(line.substr(1, line.size() - 2));
        schema::Kind kind = kindFromName(name);
        if (kind == schema::Kind::UNSPECIFIED) {
          fail(lineNo, "unknown plugin kind '" + name + "'; use one of: " + kindNames());
        }
        if (auto seen = sectionLine.find(kind); seen != sectionLine.end()) {
          fail(lineNo, "duplicate kind [" + name + "] (first at line " +
                           std::to_string(seen->second) + "); each kind is served by one plugin");
        }
        sectionLine[kind] = lineNo;
        PluginConfig plugin;
        plugin.kind = kind;
        plugin.sourceFile = path;
        plugin.sourceLine = lineNo;
        config.plugins.push_back(std::move(plugin));
        current = &config.plugins.back();
        seenKeys.clear();
        continue;
      }
      auto eq = line.find('=');
      if (eq == std::string::npos) {
        fail(lineNo, "expected 'key = value' or '[kind]', got '" + line + "'");
      }
      std::string key = trim(line.substr(0, eq));
      std::string value = trim(line.substr(eq + 1));
      if (key.empty()) fail(lineNo, "missing key before '='");
      if (current == nullptr) {
        fail(lineNo, "'" + key + "' is outside any section; start with a [kind] line, one of: " +
                         kindNames());
      }
      setKey(*current, lineNo, key, value);
    }
    for (auto& plugin : config.plugins) {
      if (plugin.library.empty()) {
        fail(plugin.sourceLine, std::string("[") + kindName(plugin.kind) +
                                    "] has no 'library = <path to .so>' line");
      }
    }
    for (schema::Kind kind : requiredKinds()) {
      if (sectionLine.count(kind) == 0) {
        throw UserError(path + ": missing required kind [" + kindName(kind) +
                        "]; add a section naming the plugin library that serves it");
      }
    }
    return config;
  }

 private:
  std::string path;
  std::set<std::string> seenKeys;
};

}  // namespace

const std::vector<schema::Kind>& requiredKinds() {
  static const std::vector<schema::Kind> kinds = {
      schema::Kind::CONSENSUS, schema::Kind::PKI, schema::Kind::SCHEDULER,
      schema::Kind::RUNTIME, schema::Kind::TRANSPORT};
  return kinds;
}

const char* kindName(schema::Kind kind) {
  for (auto& entry : kKinds) {
    if (entry.kind == kind) return entry.name;
  }
  return "unspecified";
}

schema::Kind kindFromName(const std::string& name) {
  for (auto& entry : kKinds) {
    if (name == entry.name) return entry.kind;
  }
  return schema::Kind::UNSPECIFIED;
}

std::string kindNames() {
  std::string names;
  for (auto& entry : kKinds) {
    if (!names.empty()) names += ", ";
    names += entry.name;
  }
  return names;
}

KernelConfig parseConfig(const std::string& text, const std::string& path) {
  return Parser(path).parse(text);
}

KernelConfig loadConfig(const std::string& path) {
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    throw UserError(path + ": config file not found; pass an existing file to --plugins");
  }
  if (std::filesystem::is_directory(status)) {
    throw UserError(path + ": is a directory; pass the plugins.conf file to --plugins");
  }
  std::ifstream in(path);
  if (!in) {
    throw UserError(path + ": cannot read the config file (" + std::strerror(errno) +
                    "); check its permissions");
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw UserError(path + ": read error; check the file");
  return parseConfig(text.str(), path);
}

}  // namespace swarm::kernel
