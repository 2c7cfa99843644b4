#include "tasks.h"

#include "text.h"

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <map>

namespace swarm::ctl {

namespace json = boost::json;

namespace {

std::string imageWithoutDigest(std::string image) {
  if (auto at = image.find('@'); at != std::string::npos) image.erase(at);
  return image;
}

std::string quotedError(std::string error, bool noTrunc) {
  if (error.empty()) return "";
  constexpr std::size_t kMaxErrorLength = 30;  // docker's ps column
  if (!noTrunc && error.size() > kMaxErrorLength) {
    error = error.substr(0, kMaxErrorLength - 1) + "\xE2\x80\xA6";
  }
  return "\"" + error + "\"";
}

std::string ports(const json::value& list) {
  std::string text;
  if (!list.is_array()) return text;
  for (const auto& port : list.get_array()) {
    if (!text.empty()) text += ", ";
    auto published = num(port, {"PublishedPort"});
    text += "*:" + (published ? std::to_string(published) : std::string()) + "->" +
            std::to_string(num(port, {"TargetPort"})) + "/" +
            (str(port, {"Protocol"}).empty() ? "tcp" : str(port, {"Protocol"}));
  }
  return text;
}

std::string lowerFirst(std::string text) {
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

}  // namespace

void printTasks(Context& context, json::array tasks, bool quiet, bool noTrunc) {
  if (quiet) {
    for (const auto& task : tasks) context.out << str(task, {"ID"}) << "\n";
    return;
  }
  if (context.format == OutputFormat::Json) {
    printJson(context.out, tasks);
    return;
  }
  std::map<std::string, std::string> serviceNames;
  std::map<std::string, std::string> nodeNames;
  auto lookup = [&](std::map<std::string, std::string>& cache, const std::string& kind,
                    const std::string& id, std::initializer_list<std::string_view> field) {
    if (id.empty()) return std::string();
    auto found = cache.find(id);
    if (found != cache.end()) return found->second;
    std::string name = id;
    try {
      name = str(context.api().get("/" + kind + "/" + id), field);
      if (name.empty()) name = id;
    } catch (const DaemonError&) {
      // A deleted node or service: show its ID, as docker does.
    }
    cache[id] = name;
    return name;
  };
  struct Row {
    std::string group;
    std::string created;
    const json::value* task;
    std::string name;
  };
  std::vector<Row> rows;
  for (const auto& task : tasks) {
    std::string service = lookup(serviceNames, "services", str(task, {"ServiceID"}), {"Spec", "Name"});
    auto slot = num(task, {"Slot"});
    std::string name = service + "." + (slot > 0 ? std::to_string(slot) : str(task, {"NodeID"}));
    rows.push_back(Row{name, str(task, {"CreatedAt"}), &task, name});
  }
  // Each slot's newest task first, its history below it.
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    if (a.group != b.group) return a.group < b.group;
    return a.created > b.created;
  });
  Table table({"ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "ERROR", "PORTS"});
  auto now = context.now();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const json::value& task = *rows[i].task;
    bool history = i > 0 && rows[i - 1].group == rows[i].group;
    std::string id = str(task, {"ID"});
    std::string image = str(task, {"Spec", "ContainerSpec", "Image"});
    std::string state = capitalize(str(task, {"Status", "State"}));
    std::string since = timeAgo(str(task, {"Status", "Timestamp"}), now);
    table.add({noTrunc ? id : shortId(id), history ? " \\_ " + rows[i].name : rows[i].name,
               noTrunc ? image : imageWithoutDigest(image),
               lookup(nodeNames, "nodes", str(task, {"NodeID"}), {"Description", "Hostname"}),
               capitalize(str(task, {"DesiredState"})),
               since.empty() ? state : state + " " + lowerFirst(since),
               quotedError(str(task, {"Status", "Err"}), noTrunc),
               ports(at(task, {"Status", "PortStatus", "Ports"}))});
  }
  table.print(context.out);
}

namespace {

// Order of the states a task goes through on its way to running; 0 for the ones after it.
int stateRank(const std::string& state) {
  static const std::map<std::string, int> kRanks = {
      {"new", 1},       {"allocated", 2}, {"pending", 3}, {"assigned", 4}, {"accepted", 5},
      {"preparing", 6}, {"ready", 7},     {"starting", 8}, {"running", 9}};
  auto found = kRanks.find(state);
  return found == kRanks.end() ? 0 : found->second;
}

int jobStateRank(const std::string& state) {
  return state == "complete" ? 10 : stateRank(state);
}

bool terminal(const std::string& state) { return stateRank(state) == 0 && state != "complete"; }

// Progress lines keyed by ID ("overall progress", "1/3", "verify"), in the order first written.
class ProgressDisplay {
 public:
  ProgressDisplay(Context& context) : context(context) {}

  void set(const std::string& id, const std::string& text) {
    Line* line = nullptr;
    for (auto& existing : lines) {
      if (existing.id == id) line = &existing;
    }
    if (!line) line = &lines.emplace_back(Line{id, "", ""});
    line->text = text;
    // Plain output prints changes in the order they happened.
    if (text != line->printed && std::find(changed.begin(), changed.end(), id) == changed.end()) {
      changed.push_back(id);
    }
  }

  // Plain output prints each line whose text changed; a terminal gets the block redrawn.
  void flush() {
    if (context.terminal) {
      if (drawn > 0) context.out << "\x1b[" << drawn << "A";
      for (const auto& line : lines) {
        context.out << "\x1b[2K\r" << line.id << ": " << line.text << "\n";
      }
      drawn = lines.size();
    } else {
      for (const auto& id : changed) {
        for (auto& line : lines) {
          if (line.id != id || line.text.empty() || line.text == line.printed) continue;
          std::string text = line.text;
          while (!text.empty() && text.back() == ' ') text.pop_back();
          context.out << line.id << ": " << text << "\n";
          line.printed = line.text;
        }
      }
    }
    changed.clear();
    context.out.flush();
  }

 private:
  struct Line {
    std::string id;
    std::string text;
    std::string printed;
  };
  Context& context;
  std::vector<Line> lines;
  std::vector<std::string> changed;
  std::size_t drawn = 0;
};

std::string taskText(const json::value& task, bool terminalOutput, int (*rank)(const std::string&)) {
  std::string error = str(task, {"Status", "Err"});
  if (!error.empty()) {
    return error.size() > 50 ? error.substr(0, 49) + "\xE2\x80\xA6" : error;
  }
  std::string state = str(task, {"Status", "State"});
  if (!terminalOutput) return state;
  int done = rank(state);
  int total = rank == jobStateRank ? 10 : 9;
  int filled = done * 50 / total;
  std::string padded = state + std::string(state.size() < 9 ? 9 - state.size() : 0, ' ');
  return padded + " [" + std::string(static_cast<std::size_t>(std::max(0, filled - 1)), '=') +
         (filled > 0 ? ">" : "") + std::string(static_cast<std::size_t>(50 - filled), ' ') + "]";
}

// The most advanced task of each key (slot or node), as docker's progress picks them.
std::map<std::string, const json::value*> bestTasks(const json::array& tasks,
                                                    const std::map<std::string, bool>& activeNodes,
                                                    bool bySlot, int (*rank)(const std::string&)) {
  std::map<std::string, const json::value*> best;
  for (const auto& task : tasks) {
    std::string desired = str(task, {"DesiredState"});
    std::string observed = str(task, {"Status", "State"});
    if (rank(desired) == 0 || rank(observed) == 0) continue;
    std::string node = str(task, {"NodeID"});
    if (!node.empty() && !activeNodes.count(node)) continue;
    std::string key = bySlot ? std::to_string(num(task, {"Slot"})) : node;
    if (auto found = best.find(key); found != best.end()) {
      int oldDesired = rank(str(*found->second, {"DesiredState"}));
      int oldObserved = rank(str(*found->second, {"Status", "State"}));
      if (oldDesired > rank(desired)) continue;
      if (oldDesired == rank(desired) && oldObserved >= rank(observed)) continue;
    }
    best[key] = &task;
  }
  return best;
}

}  // namespace

void waitForService(Context& context, const std::string& serviceId, bool rollback) {
  ProgressDisplay display(context);
  std::map<std::string, std::size_t> slotNumbers;  // API slot -> 1..N as first seen
  // GCC 12 warns (wrongly) about an optional<time_point> here; a flag keeps it quiet.
  std::chrono::steady_clock::time_point convergedAt{};
  bool convergedSeen = false;
  bool previouslyConverged = false;
  bool overallDone = false;
  std::string filters = json::serialize(json::object{
      {"service", json::object{{serviceId, true}}}, {"_up-to-date", json::object{{"true", true}}}});
  while (true) {
    auto service = context.api().get("/services/" + serviceId);
    std::string updateState = str(service, {"UpdateStatus", "State"});
    std::string updateMessage = str(service, {"UpdateStatus", "Message"});
    if (updateState == "updating") {
      rollback = false;
    } else if (updateState == "paused") {
      display.flush();
      throw CliError("service update paused: " + updateMessage);
    } else if (updateState == "rollback_started") {
      if (!rollback && !updateMessage.empty()) display.set("rollback", updateMessage);
      rollback = true;
    } else if (updateState == "rollback_paused") {
      display.flush();
      throw CliError("service rollback paused: " + updateMessage);
    } else if (updateState == "rollback_completed" && !rollback && !previouslyConverged) {
      display.flush();
      throw CliError("service rolled back: " + updateMessage);
    }

    std::int64_t monitor = 5000000000LL;
    if (auto configured = num(service, {"Spec", "UpdateConfig", "Monitor"}); configured > 0) {
      monitor = configured;
    }
    auto now = std::chrono::steady_clock::now();
    if (previouslyConverged && convergedSeen &&
        now - convergedAt >= std::chrono::nanoseconds(monitor)) {
      display.set("verify", "Service converged");
      display.flush();
      return;
    }

    auto taskList = context.api().get("/tasks", {{"filters", filters}});
    json::array tasks = taskList.is_array() ? taskList.get_array() : json::array();
    auto nodeList = context.api().get("/nodes");
    std::map<std::string, bool> activeNodes;
    if (nodeList.is_array()) {
      for (const auto& node : nodeList.get_array()) {
        if (str(node, {"Status", "State"}) != "down") activeNodes[str(node, {"ID"})] = true;
      }
    }
    const auto& mode = at(service, {"Spec", "Mode"});
    std::string overallLabel = rollback ? "rolling back update" : "overall progress";
    bool converged = false;
    if (mode.is_object() && mode.get_object().contains("Global")) {
      auto best = bestTasks(tasks, activeNodes, false, stateRank);
      std::size_t running = 0;
      for (const auto& [node, task] : best) {
        if (!terminal(str(*task, {"DesiredState"})) && str(*task, {"Status", "State"}) == "running") {
          ++running;
        }
        display.set(shortId(node), taskText(*task, context.terminal, stateRank));
      }
      if (best.empty()) {
        display.set("overall progress", "waiting for new tasks");
      } else if (!overallDone) {
        display.set("overall progress", std::to_string(running) + " out of " +
                                            std::to_string(best.size()) + " tasks");
        overallDone = running == best.size();
      }
      converged = !best.empty() && running == best.size();
    } else if (mode.is_object() && (mode.get_object().contains("ReplicatedJob") ||
                                    mode.get_object().contains("GlobalJob"))) {
      bool replicatedJob = mode.get_object().contains("ReplicatedJob");
      auto iteration = num(service, {"JobStatus", "JobIteration", "Index"});
      json::array current;
      for (const auto& task : tasks) {
        if (num(task, {"JobIteration", "Index"}) == iteration) current.push_back(task);
      }
      auto best = bestTasks(current, activeNodes, replicatedJob, jobStateRank);
      std::size_t complete = 0;
      for (const auto& [key, task] : best) {
        if (str(*task, {"Status", "State"}) == "complete") ++complete;
      }
      std::size_t total = replicatedJob
                              ? static_cast<std::size_t>(num(mode, {"ReplicatedJob", "TotalCompletions"}))
                              : best.size();
      if (replicatedJob && total == 0) total = 1;
      display.set("job progress", std::to_string(complete) + " out of " + std::to_string(total) +
                                      " complete");
      for (const auto& [key, task] : best) {
        std::string id = replicatedJob ? key : shortId(key);
        display.set(id, taskText(*task, context.terminal, jobStateRank));
      }
      converged = total > 0 && complete >= total;
      if (converged) {
        display.flush();
        context.out << "job complete\n";
        return;
      }
    } else {
      std::size_t replicas = static_cast<std::size_t>(num(mode, {"Replicated", "Replicas"}));
      if (!overallDone && slotNumbers.empty()) {
        display.set(overallLabel, "0 out of " + std::to_string(replicas) + " tasks");
      }
      auto best = bestTasks(tasks, activeNodes, true, stateRank);
      std::size_t running = 0;
      for (const auto& [slot, task] : best) {
        auto [entry, added] = slotNumbers.emplace(slot, slotNumbers.size() + 1);
        (void)added;
        if (!terminal(str(*task, {"DesiredState"})) && str(*task, {"Status", "State"}) == "running") {
          ++running;
        }
        if (replicas <= 100) {
          display.set(std::to_string(entry->second) + "/" + std::to_string(replicas),
                      taskText(*task, context.terminal, stateRank));
        }
      }
      if (!overallDone) {
        display.set(overallLabel,
                    std::to_string(running) + " out of " + std::to_string(replicas) + " tasks");
        overallDone = running == replicas;
      }
      converged = running == replicas;
    }

    if (converged) {
      if (!convergedSeen) convergedAt = now;
      convergedSeen = true;
      auto wait = std::chrono::nanoseconds(monitor) - (now - convergedAt);
      if (wait.count() >= 0) {
        display.set("verify", "Waiting " +
                                  std::to_string(std::chrono::duration_cast<std::chrono::seconds>(wait).count() + 1) +
                                  " seconds to verify that tasks are stable...");
      }
    } else {
      if (convergedSeen) display.set("verify", "Detected task failure");
      convergedSeen = false;
    }
    previouslyConverged = converged;
    display.flush();
    context.sleep(std::chrono::milliseconds(200));
  }
}

}  // namespace swarm::ctl
