// docker-services-bench: services on the real Docker Engine, swarm-kernel beside Docker Swarm on
// the same machine and the same dockerd, reported as ratios, and beside the raw Engine API.
//
//   ours     one swarm-kernel manager process (bundled plugins in process, runtime-docker) that
//            also runs the tasks; API on a Unix socket; cluster address 127.0.0.1:24101
//   swarm    Docker Swarm on the same dockerd (POST /swarm/init on 127.0.0.1:24199, only when the
//            daemon is in no swarm; POST /swarm/leave?force=1 at the end, also on failure)
//   raw      the same containers created and started straight through the Engine API
//            (POST /containers/create + /start) at several concurrencies, then removed
//   failover two swarm-kernel processes (manager + worker, both runtime-docker on this dockerd),
//            kill -9 of the worker: until it is Down and until its tasks run on the manager
//
// Every service is driven through the Docker Engine API (the same JSON for both systems, the one
// the docker CLI sends for `service create --network host --stop-grace-period 0s`), and watched
// by two pollers at once: the engine's running containers with the service's label, and the
// system's tasks in Running. The image is referenced by its local ID, so neither system asks a
// registry (Docker Swarm's executor skips its pull for an image ID; runtime-docker has pull=never).
// Every container carries io.swarm-kernel.bench=<run>; whatever is left with it is removed at exit.
#include "client.h"

#include <boost/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cctype>
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#ifndef SWARM_BENCH_BUILD_TYPE
#define SWARM_BENCH_BUILD_TYPE "unknown"
#endif

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using swarm::ctl::ApiClient;
using std::chrono::milliseconds;

constexpr const char* kBenchLabel = "io.swarm-kernel.bench";
constexpr const char* kOursClusterAddr = "127.0.0.1:24101";
constexpr const char* kOursWorkerAddr = "127.0.0.1:24102";
constexpr const char* kSwarmListenAddr = "127.0.0.1:24199";
constexpr double kSwarmDeadNodeQuotedS = 15.0;  // swarmkit.md: 3 x 5 s heartbeat period

std::atomic<bool> interrupted{false};
extern "C" void onSignal(int) { interrupted = true; }

struct Interrupted : std::runtime_error {
  Interrupted() : std::runtime_error("interrupted") {}
};
void checkInterrupted() {
  if (interrupted) throw Interrupted();
}

struct Options {
  bool quick = false;
  std::set<std::string> phases{"ours", "raw", "swarm", "failover"};
  std::string dockerSocket = "/var/run/docker.sock";
  std::string image = "swarm-test/busybox:latest";
  std::vector<int> rawConcurrency{1, 4, 8, 16, 32};
  int pollMs = 50;
  int failoverReplicas = 6;
  std::string kernelLogLevel = "info";
  bool keepLogs = false;
  bool diagnose = false;
};

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double loadAverage() {
  double one = 0;
  std::ifstream("/proc/loadavg") >> one;
  return one;
}

std::unique_ptr<ApiClient> unixClient(const std::string& path) {
  return std::make_unique<ApiClient>(swarm::ctl::parseHostAddress("unix://" + path), milliseconds(60000));
}

std::string filters(std::initializer_list<std::pair<std::string, std::string>> pairs) {
  json::object f;
  for (const auto& [key, value] : pairs) {
    if (!f.contains(key)) f[key] = json::object{};
    f[key].as_object()[value] = true;
  }
  return json::serialize(f);
}

const json::value* find(const json::value& v, std::initializer_list<const char*> path) {
  const json::value* at = &v;
  for (const char* key : path) {
    if (!at->is_object()) return nullptr;
    at = at->as_object().if_contains(key);
    if (at == nullptr) return nullptr;
  }
  return at;
}
std::string str(const json::value& v, std::initializer_list<const char*> path) {
  const json::value* at = find(v, path);
  return at != nullptr && at->is_string() ? std::string(at->as_string()) : std::string();
}

// ---- the engine ---------------------------------------------------------------------------------

// Containers with the label (key=value); running ones only unless `all`.
size_t engineContainers(ApiClient& engine, const std::string& label, bool all) {
  std::string f = all ? filters({{"label", label}}) : filters({{"label", label}, {"status", "running"}});
  return engine.get("/containers/json", {{"all", all ? "1" : "0"}, {"filters", f}}).as_array().size();
}

void removeLabelled(ApiClient& engine, const std::string& label) {
  auto list = engine.get("/containers/json", {{"all", "1"}, {"filters", filters({{"label", label}})}});
  for (const auto& c : list.as_array()) {
    try {
      engine.call("DELETE", "/containers/" + str(c, {"Id"}), {{"force", "1"}, {"v", "1"}});
    } catch (const std::exception&) {
      // Already going away.
    }
  }
}

// ---- pollers ------------------------------------------------------------------------------------

struct Observed {
  std::optional<double> ms;  // since t0, when the answer that first met the condition arrived
  std::string error;
};

// Polls `condition` every pollMs until it holds, the deadline passes or the run is interrupted.
Observed poll(const std::function<bool()>& condition, Clock::time_point t0, Clock::duration timeout,
              milliseconds every, const std::atomic<bool>* abandon = nullptr) {
  Observed out;
  try {
    for (;;) {
      if (interrupted) return {std::nullopt, "interrupted"};
      if (abandon != nullptr && *abandon) return {std::nullopt, "abandoned"};
      auto sent = Clock::now();
      if (condition()) {
        out.ms = ms(Clock::now() - t0);
        return out;
      }
      if (Clock::now() - t0 > timeout) {
        out.error = "timeout after " + std::to_string(static_cast<int>(ms(timeout) / 1000)) + " s";
        return out;
      }
      std::this_thread::sleep_until(sent + every);
    }
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

// ---- one system's service steps -----------------------------------------------------------------

// CPU time (user + system) of a process so far, in ms; 0 when it is gone.
double cpuMs(pid_t pid) {
  if (pid <= 0) return 0;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return 0;
  auto close = line.rfind(')');  // the command may hold spaces
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

pid_t pidNamed(const std::string& comm) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::string name = entry.path().filename();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::ifstream in(entry.path() / "comm");
    std::string c;
    if (std::getline(in, c) && c == comm) return static_cast<pid_t>(std::stoi(name));
  }
  return 0;
}

// CPU used during a step by dockerd (which holds Docker Swarm too), containerd and our kernel.
// The shims and runc are short-lived and not counted. Other users of the same dockerd count too.
struct Cpu {
  double dockerd = 0, containerd = 0, kernel = 0;
  static pid_t& kernelPid() {
    static pid_t pid = 0;
    return pid;
  }
  static Cpu now() {
    static pid_t dockerdPid = pidNamed("dockerd"), containerdPid = pidNamed("containerd");
    return Cpu{cpuMs(dockerdPid), cpuMs(containerdPid), cpuMs(kernelPid())};
  }
  Cpu since(const Cpu& before) const {
    return Cpu{dockerd - before.dockerd, containerd - before.containerd, kernel - before.kernel};
  }
  std::string text() const {
    char b[128];
    std::snprintf(b, sizeof b, "CPU ms: dockerd %.0f, containerd %.0f, swarm-kernel %.0f", dockerd, containerd, kernel);
    return b;
  }
};

// RFC 3339 with nanoseconds ("2026-12-04T21:39:38.123456789Z", Docker's and ours) -> Unix ms.
std::optional<double> parseTimeMs(const std::string& text) {
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &consumed) != 6 || tm.tm_year < 2000)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  double fraction = 0, scale = 0.1;
  size_t i = static_cast<size_t>(consumed);
  if (i < text.size() && text[i] == '.')
    for (++i; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i, scale /= 10)
      fraction += (text[i] - '0') * scale;
  return static_cast<double>(timegm(&tm)) * 1000 + fraction * 1000;  // both systems write UTC (Z)
}

double wallMs() {
  return std::chrono::duration<double, std::milli>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Where the time of a create or scale went, from the timestamps both systems keep: when the
// orchestrator made each task, when the engine created and started each container, and when the
// node reported each task Running. Milliseconds since the API call: first / median / last.
struct Timeline {
  std::vector<double> taskCreated, containerCreated, containerStarted, runningReported;
  static std::string spread(std::vector<double> v) {
    if (v.empty()) return "-";
    std::sort(v.begin(), v.end());
    char b[64];
    std::snprintf(b, sizeof b, "%.0f/%.0f/%.0f", v.front(), v[v.size() / 2], v.back());
    return b;
  }
  std::string text() const {
    return "tasks created " + spread(taskCreated) + ", containers created " + spread(containerCreated) +
           ", started " + spread(containerStarted) + ", Running reported " + spread(runningReported) +
           " (ms first/median/last)";
  }
};

Timeline timeline(ApiClient& api, ApiClient& engine, const std::string& serviceId, double t0Wall,
                  const std::set<std::string>& before) {
  Timeline t;
  auto tasks = api.get("/tasks", {{"filters", filters({{"service", serviceId}, {"desired-state", "running"}})}});
  for (const auto& task : tasks.as_array()) {
    if (before.count(str(task, {"ID"}))) continue;
    if (auto v = parseTimeMs(str(task, {"CreatedAt"}))) t.taskCreated.push_back(*v - t0Wall);
    if (str(task, {"Status", "State"}) == "running")
      if (auto v = parseTimeMs(str(task, {"Status", "Timestamp"}))) t.runningReported.push_back(*v - t0Wall);
  }
  auto list = engine.get("/containers/json",
                         {{"all", "1"}, {"filters", filters({{"label", "com.docker.swarm.service.id=" + serviceId}})}});
  for (const auto& c : list.as_array()) {
    auto labels = find(c, {"Labels"});
    if (labels && labels->is_object() && before.count(str(*labels, {"com.docker.swarm.task.id"}))) continue;
    auto inspected = engine.get("/containers/" + str(c, {"Id"}) + "/json");
    if (auto v = parseTimeMs(str(inspected, {"Created"}))) t.containerCreated.push_back(*v - t0Wall);
    if (auto v = parseTimeMs(str(inspected, {"State", "StartedAt"}))) t.containerStarted.push_back(*v - t0Wall);
  }
  return t;
}

std::set<std::string> taskIds(ApiClient& api, const std::string& serviceId) {
  std::set<std::string> ids;
  auto tasks = api.get("/tasks", {{"filters", filters({{"service", serviceId}})}});
  for (const auto& task : tasks.as_array()) ids.insert(str(task, {"ID"}));
  return ids;
}

struct StepResult {
  std::string step;
  int replicas = 0;
  Observed engine, api;
  std::optional<Timeline> timeline;
  Cpu cpu;
  std::optional<double> both() const {
    if (!engine.ms) return std::nullopt;
    if (api.error.empty() && !api.ms) return engine.ms;  // step with no API condition (rm)
    if (!api.ms) return std::nullopt;
    return std::max(*engine.ms, *api.ms);
  }
  std::string error() const { return !engine.error.empty() ? "engine: " + engine.error : !api.error.empty() ? "api: " + api.error : ""; }
};

json::object serviceSpec(const std::string& name, int replicas, const std::string& image, const std::string& run) {
  json::object labels{{kBenchLabel, run}};
  return json::object{
      {"Name", name},
      {"Labels", labels},
      {"TaskTemplate",
       json::object{{"ContainerSpec", json::object{{"Image", image},
                                                   {"Args", json::array{"sleep", "1d"}},
                                                   {"Labels", labels},
                                                   {"StopGracePeriod", 0}}},
                    {"Networks", json::array{json::object{{"Target", "host"}}}}}},
      {"Mode", json::object{{"Replicated", json::object{{"Replicas", replicas}}}}}};
}

// Running tasks of a service, desired and observed; optionally only those on one node.
size_t runningTasks(ApiClient& api, const std::string& serviceId, const std::string& nodeId = "") {
  auto tasks = api.get("/tasks", {{"filters", filters({{"service", serviceId}, {"desired-state", "running"}})}});
  size_t n = 0;
  for (const auto& t : tasks.as_array()) {
    if (str(t, {"Status", "State"}) != "running") continue;
    if (!nodeId.empty() && str(t, {"NodeID"}) != nodeId) continue;
    ++n;
  }
  return n;
}

class ServiceDriver {
 public:
  ServiceDriver(std::string apiSocket, const Options& o, std::string image, std::string run)
      : apiSocket(std::move(apiSocket)), o(o), image(std::move(image)), run(std::move(run)) {}

  std::vector<StepResult> runAll(const std::vector<int>& sizes, bool scale) {
    std::vector<StepResult> results;
    for (int n : sizes) {
      std::string name = "dsbench-" + std::to_string(n);
      std::string id;
      results.push_back(create(name, n, id));
      int now = n;
      if (scale && n == sizes.back()) {
        results.push_back(scaleTo(id, n, 2 * n));
        now = 2 * n;
      }
      results.push_back(remove(id, now));
      std::this_thread::sleep_for(std::chrono::seconds(1));  // let the last reports settle
    }
    return results;
  }

  StepResult create(const std::string& name, int n, std::string& id) {
    auto api = unixClient(apiSocket);
    Cpu cpu0 = Cpu::now();
    double t0Wall = wallMs();
    auto t0 = Clock::now();
    auto created = api->post("/services/create", {}, serviceSpec(name, n, image, run));
    id = str(created, {"ID"});
    return watchRunning("create-" + std::to_string(n), id, n, t0, t0Wall, {}, cpu0);
  }

  StepResult scaleTo(const std::string& id, int from, int to) {
    auto api = unixClient(apiSocket);
    auto service = api->get("/services/" + id);
    json::value spec = *find(service, {"Spec"});
    spec.as_object()["Mode"] = json::object{{"Replicated", json::object{{"Replicas", to}}}};
    auto version = find(service, {"Version", "Index"});
    std::string v = version != nullptr ? json::serialize(*version) : "0";
    std::set<std::string> before = o.diagnose ? taskIds(*api, id) : std::set<std::string>{};
    Cpu cpu0 = Cpu::now();
    double t0Wall = wallMs();
    auto t0 = Clock::now();
    api->post("/services/" + id + "/update", {{"version", v}}, spec);
    return watchRunning("scale-" + std::to_string(from) + "-" + std::to_string(to), id, to, t0, t0Wall, before, cpu0);
  }

  StepResult remove(const std::string& id, int n) {
    auto api = unixClient(apiSocket);
    auto engine = unixClient(o.dockerSocket);
    std::string label = "com.docker.swarm.service.id=" + id;
    Cpu cpu0 = Cpu::now();
    auto t0 = Clock::now();
    api->call("DELETE", "/services/" + id);
    StepResult r;
    r.step = "rm-" + std::to_string(n);
    r.replicas = n;
    r.engine = poll([&]() { return engineContainers(*engine, label, true) == 0; }, t0, timeoutFor(n),
                    milliseconds(o.pollMs));
    r.cpu = Cpu::now().since(cpu0);
    return r;
  }

 private:
  Clock::duration timeoutFor(int n) const { return std::chrono::seconds(60 + 2 * n); }

  StepResult watchRunning(const std::string& step, const std::string& id, int n, Clock::time_point t0,
                          double t0Wall, const std::set<std::string>& before, const Cpu& cpu0) {
    auto engine = unixClient(o.dockerSocket);
    auto api = unixClient(apiSocket);
    std::string label = "com.docker.swarm.service.id=" + id;
    auto every = milliseconds(o.pollMs);
    auto engineDone = std::async(std::launch::async, [&]() {
      return poll([&]() { return engineContainers(*engine, label, false) >= static_cast<size_t>(n); }, t0,
                  timeoutFor(n), every);
    });
    auto apiDone = std::async(std::launch::async, [&]() {
      return poll([&]() { return runningTasks(*api, id) >= static_cast<size_t>(n); }, t0, timeoutFor(n), every);
    });
    StepResult r;
    r.step = step;
    r.replicas = n;
    r.engine = engineDone.get();
    r.api = apiDone.get();
    r.cpu = Cpu::now().since(cpu0);
    if (o.diagnose && r.engine.ms && r.api.ms) {
      try {
        r.timeline = timeline(*api, *engine, id, t0Wall, before);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "docker-services-bench: %s timeline: %s\n", step.c_str(), e.what());
      }
    }
    return r;
  }

  std::string apiSocket;
  const Options& o;
  std::string image, run;
};

// ---- the raw engine -----------------------------------------------------------------------------

// One raw step: `containers` created and started (or removed) straight through the Engine API by
// `concurrency` clients. callsMs: until every call returned; observedMs: until the same engine
// poller the services get saw them all running (or gone), so both sides carry the same resolution.
struct RawResult {
  std::string step;  // create-N, scale-N-2N (N more beside N running), rm-N
  int containers = 0, concurrency = 0;
  double callsMs = 0;
  std::optional<double> observedMs;
  Cpu cpu;
  std::string error;
};

class RawEngine {
 public:
  RawEngine(const Options& o, std::string image, std::string run) : o(o), image(std::move(image)), run(std::move(run)) {}

  // Creates and starts n containers; their IDs join `ids`.
  RawResult create(const std::string& step, int n, int concurrency, std::vector<std::string>& ids) {
    std::string batch = run + "-" + std::to_string(++batches);
    json::object labels{{kBenchLabel, run}, {"io.swarm-kernel.bench.batch", batch}};
    std::vector<std::string> made(static_cast<size_t>(n));
    RawResult r = timed(step, n, concurrency, "io.swarm-kernel.bench.batch=" + batch, false, [&](int i, ApiClient& engine) {
      json::object body{{"Image", image},
                        {"Cmd", json::array{"sleep", "1d"}},
                        {"Labels", labels},
                        {"StopTimeout", 0},
                        {"HostConfig", json::object{{"NetworkMode", "host"}}}};
      auto created = engine.post("/containers/create", {{"name", "dsbench-raw-" + batch + "-" + std::to_string(i)}}, body);
      made[static_cast<size_t>(i)] = str(created, {"Id"});
      engine.call("POST", "/containers/" + made[static_cast<size_t>(i)] + "/start");
    });
    for (auto& id : made)
      if (!id.empty()) ids.push_back(id);
    return r;
  }

  RawResult remove(const std::string& step, const std::vector<std::string>& ids, int concurrency) {
    return timed(step, static_cast<int>(ids.size()), concurrency, std::string(kBenchLabel) + "=" + run, true,
                 [&](int i, ApiClient& engine) {
                   engine.call("DELETE", "/containers/" + ids[static_cast<size_t>(i)], {{"force", "1"}, {"v", "1"}});
                 });
  }

 private:
  RawResult timed(const std::string& step, int n, int concurrency, const std::string& label, bool gone,
                  const std::function<void(int, ApiClient&)>& one) {
    RawResult r;
    r.step = step;
    r.containers = n;
    r.concurrency = concurrency;
    std::atomic<int> next{0};
    std::atomic<bool> failed{false};
    std::mutex errorMutex;
    auto watcher = unixClient(o.dockerSocket);
    Cpu cpu0 = Cpu::now();
    auto t0 = Clock::now();
    auto observed = std::async(std::launch::async, [&]() {
      return poll([&]() {
        size_t count = engineContainers(*watcher, label, gone);
        return gone ? count == 0 : count >= static_cast<size_t>(n);
      }, t0, std::chrono::seconds(60 + 2 * n), milliseconds(o.pollMs), &failed);
    });
    std::vector<std::thread> threads;
    for (int c = 0; c < concurrency; ++c) {
      threads.emplace_back([&]() {
        auto engine = unixClient(o.dockerSocket);
        for (int i = next++; i < n && !interrupted; i = next++) {
          try {
            one(i, *engine);
          } catch (const std::exception& e) {
            std::lock_guard lock(errorMutex);
            if (r.error.empty()) r.error = e.what();
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    r.callsMs = ms(Clock::now() - t0);
    if (!r.error.empty()) failed = true;  // the poller would wait for containers that never come
    auto seen = observed.get();
    r.cpu = Cpu::now().since(cpu0);
    r.observedMs = seen.ms;
    if (r.error.empty() && !seen.error.empty()) r.error = "poller: " + seen.error;
    checkInterrupted();
    return r;
  }

  const Options& o;
  std::string image, run;
  int batches = 0;
};

// ---- swarm-kernel processes ---------------------------------------------------------------------

struct Kernel {
  pid_t pid = 0;
  fs::path socket, log;
};

// Starts the process into `k` (so its pid is known to the cleanup even when it fails to serve).
void spawnKernel(Kernel& k, const fs::path& dir, const fs::path& conf, const std::string& name, const Options& o) {
  k = Kernel{0, dir / (name + ".sock"), dir / (name + ".log")};
  std::vector<std::string> args = {SWARM_BENCH_KERNEL, "--plugins", conf.string(), "--state-dir",
                                   (dir / (name + "-state")).string(), "--api-socket", k.socket.string(),
                                   "--log-level", o.kernelLogLevel};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // fork + exec rather than posix_spawn: the child asks for SIGTERM when the bench dies, so a
  // crashed or killed bench leaves no kernel behind holding the cluster port.
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("starting swarm-kernel failed: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    int log = open(k.log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int null = open("/dev/null", O_RDONLY);
    if (log < 0 || null < 0) _exit(127);
    dup2(null, 0);
    dup2(log, 1);
    dup2(log, 2);
    execv(SWARM_BENCH_KERNEL, argv.data());
    _exit(127);
  }
  k.pid = pid;
  for (int i = 0; i < 200; ++i) {
    checkInterrupted();
    if (fs::exists(k.socket)) {
      try {
        unixClient(k.socket.string())->apiVersion();
        return;
      } catch (const std::exception&) {
        // Not serving yet.
      }
    }
    if (waitpid(k.pid, nullptr, WNOHANG) == k.pid) {
      k.pid = 0;
      throw std::runtime_error("swarm-kernel '" + name + "' exited at start; see " + k.log.string());
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  throw std::runtime_error("swarm-kernel '" + name + "' did not serve its API within 10 s; see " + k.log.string());
}

void stopKernel(Kernel& k, int signal = SIGTERM) {
  if (k.pid <= 0) return;
  kill(k.pid, signal);
  for (int i = 0; i < 100; ++i) {
    if (waitpid(k.pid, nullptr, WNOHANG) == k.pid) {
      k.pid = 0;
      return;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  kill(k.pid, SIGKILL);
  waitpid(k.pid, nullptr, 0);
  k.pid = 0;
}

std::string nodeIdOf(ApiClient& api) { return str(api.get("/info"), {"Swarm", "NodeID"}); }

void waitReadyNodes(ApiClient& api, size_t count) {
  auto t0 = Clock::now();
  for (;;) {
    checkInterrupted();
    size_t ready = 0;
    auto nodes = api.get("/nodes");  // kept: a range-for over a temporary's member would dangle
    for (const auto& n : nodes.as_array()) ready += str(n, {"Status", "State"}) == "ready";
    if (ready >= count) return;
    if (Clock::now() - t0 > std::chrono::seconds(30))
      throw std::runtime_error(std::to_string(count) + " nodes not Ready within 30 s");
    std::this_thread::sleep_for(milliseconds(100));
  }
}

// Everything the run made, undone at exit (also after a failure or SIGINT/SIGTERM).
struct Cleanup {
  Cleanup(const Options& o, std::string runLabel, fs::path dir) : o(o), runLabel(std::move(runLabel)), dir(std::move(dir)) {}
  Cleanup(const Cleanup&) = delete;
  Cleanup& operator=(const Cleanup&) = delete;
  const Options& o;
  std::string runLabel;
  fs::path dir;
  std::map<std::string, Kernel> kernels;  // by name; a stopped one has pid 0
  bool swarmJoined = false, gwbridgeWasThere = true;
  bool keepDir = false;

  ~Cleanup() {
    for (auto& [name, k] : kernels) stopKernel(k);
    try {
      auto engine = unixClient(o.dockerSocket);
      if (swarmJoined) {
        try {
          engine->call("POST", "/swarm/leave", {{"force", "1"}});
        } catch (const std::exception& e) {
          std::fprintf(stderr, "docker-services-bench: POST /swarm/leave?force=1 failed: %s; run "
                               "`docker swarm leave --force`\n", e.what());
        }
      }
      removeLabelled(*engine, runLabel);
      if (swarmJoined && !gwbridgeWasThere) {
        // Docker Swarm made it at init; it was not there before the run.
        try {
          engine->call("DELETE", "/networks/docker_gwbridge");
        } catch (const std::exception&) {
        }
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "docker-services-bench: cleanup on the engine failed: %s; remove containers "
                           "labelled %s by hand\n", e.what(), runLabel.c_str());
    }
    std::error_code ec;
    if (keepDir || o.keepLogs) {
      std::fprintf(stderr, "docker-services-bench: kernel logs kept in %s\n", dir.c_str());
    } else {
      fs::remove_all(dir, ec);
    }
  }
};

fs::path writePluginsConf(const fs::path& dir, const Options& o) {
  fs::path conf = dir / "plugins.conf";
  std::ofstream out(conf);
  out << "[consensus]\nlibrary = " << SWARM_BENCH_CONSENSUS << "\n"
      << "[pki]\nlibrary = " << SWARM_BENCH_PKI << "\n"
      << "[scheduler]\nlibrary = " << SWARM_BENCH_SCHEDULER << "\n"
      << "[runtime]\nlibrary = " << SWARM_BENCH_RUNTIME << "\n"
      << "setting.socket = " << o.dockerSocket << "\n"
      << "setting.network = host\n"
      << "setting.pull = never\n"
      << "[transport]\nlibrary = " << SWARM_BENCH_TRANSPORT << "\n";
  return conf;
}

// ---- failover -----------------------------------------------------------------------------------

struct FailoverResult {
  double heartbeatPeriodMs = 0;
  int replicas = 0;
  size_t onWorker = 0;
  Observed down, rescheduledApi, rescheduledEngine;
  std::string error;
};

FailoverResult failover(const Options& o, Cleanup& cleanup, const fs::path& conf, const std::string& image,
                        const std::string& run) {
  FailoverResult r;
  r.replicas = o.failoverReplicas;
  Kernel& manager = cleanup.kernels["fo-manager"];
  Kernel& worker = cleanup.kernels["fo-worker"];
  auto finish = [&]() {
    stopKernel(worker);
    stopKernel(manager);
  };
  try {
    spawnKernel(manager, cleanup.dir, conf, "fo-manager", o);
    spawnKernel(worker, cleanup.dir, conf, "fo-worker", o);
    auto api = unixClient(manager.socket.string());
    api->post("/swarm/init", {}, json::object{{"ListenAddr", kOursClusterAddr}, {"AdvertiseAddr", kOursClusterAddr}});
    std::string token = str(api->get("/swarm"), {"JoinTokens", "Worker"});
    auto swarmInfo = api->get("/swarm");
    std::string clusterId = str(swarmInfo, {"ID"});
    if (auto* hb = find(swarmInfo, {"Spec", "Dispatcher", "HeartbeatPeriod"}); hb && hb->is_int64())
      r.heartbeatPeriodMs = static_cast<double>(hb->as_int64()) / 1e6;
    std::string managerId = nodeIdOf(*api);
    auto workerApi = unixClient(worker.socket.string());
    workerApi->post("/swarm/join", {},
                    json::object{{"ListenAddr", kOursWorkerAddr}, {"AdvertiseAddr", kOursWorkerAddr},
                                 {"RemoteAddrs", json::array{kOursClusterAddr}}, {"JoinToken", token}});
    std::string workerId = nodeIdOf(*workerApi);
    waitReadyNodes(*api, 2);

    auto created = api->post("/services/create", {}, serviceSpec("dsbench-failover", r.replicas, image, run));
    std::string id = str(created, {"ID"});
    auto up = poll([&]() { return runningTasks(*api, id) >= static_cast<size_t>(r.replicas); }, Clock::now(),
                   std::chrono::seconds(60), milliseconds(o.pollMs));
    if (!up.ms) throw std::runtime_error("the failover service did not converge: " + up.error);
    r.onWorker = runningTasks(*api, id, workerId);
    if (r.onWorker == 0) throw std::runtime_error("no task of the failover service runs on the worker");

    auto t0 = Clock::now();
    kill(worker.pid, SIGKILL);
    waitpid(worker.pid, nullptr, 0);
    worker.pid = 0;
    auto every = milliseconds(o.pollMs);
    auto timeout = std::chrono::seconds(60);
    auto nodeApi = unixClient(manager.socket.string());
    auto taskApi = unixClient(manager.socket.string());
    auto engine = unixClient(o.dockerSocket);
    std::string onManager = "com.docker.swarm.node.id=" + managerId;
    auto down = std::async(std::launch::async, [&]() {
      return poll([&]() { return str(nodeApi->get("/nodes/" + workerId), {"Status", "State"}) == "down"; }, t0,
                  timeout, every);
    });
    auto moved = std::async(std::launch::async, [&]() {
      return poll([&]() { return runningTasks(*taskApi, id, managerId) >= static_cast<size_t>(r.replicas); }, t0,
                  timeout, every);
    });
    r.rescheduledEngine = poll(
        [&]() {
          auto list = engine->get("/containers/json",
                                  {{"filters", filters({{"label", "com.docker.swarm.service.id=" + id},
                                                        {"label", onManager},
                                                        {"status", "running"}})}});
          return list.as_array().size() >= static_cast<size_t>(r.replicas);
        },
        t0, timeout, every);
    r.down = down.get();
    r.rescheduledApi = moved.get();
    try {
      api->call("DELETE", "/services/" + id);
    } catch (const std::exception&) {
    }
    // The worker's containers outlive it (dockerd owns them): remove this swarm's containers.
    auto e = unixClient(o.dockerSocket);
    auto cleanupStart = Clock::now();
    while (engineContainers(*e, "com.docker.swarm.node.id=" + managerId, true) > 0 &&
           Clock::now() - cleanupStart < std::chrono::seconds(20)) {
      std::this_thread::sleep_for(milliseconds(100));
    }
    removeLabelled(*e, "io.swarm-kernel.cluster.id=" + clusterId);
  } catch (const Interrupted&) {
    throw;  // the cleanup stops the kernels
  } catch (const std::exception& e) {
    r.error = e.what();
    cleanup.keepDir = true;
  }
  finish();
  return r;
}

// ---- output -------------------------------------------------------------------------------------

std::string fmtMs(const std::optional<double>& v) {
  if (!v) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.0f", *v);
  return b;
}
std::string fmtRatio(const std::optional<double>& a, const std::optional<double>& b) {
  if (!a || !b || *b <= 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2fx", *a / *b);
  return buf;
}
json::value jnum(const std::optional<double>& v) {
  if (!v) return nullptr;
  return std::round(*v * 10) / 10;
}
json::value jratio(const std::optional<double>& a, const std::optional<double>& b) {
  if (!a || !b || *b <= 0) return nullptr;
  return std::round(*a / *b * 1000) / 1000;
}

// One JSON line with plain decimals (boost::json writes doubles as 9.733E2).
std::string jsonLine(const json::object& o) {
  std::string out = "{";
  for (const auto& kv : o) {
    if (out.size() > 1) out += ",";
    out += json::serialize(json::string(kv.key())) + ":";
    if (kv.value().is_double()) {
      char b[40];
      std::snprintf(b, sizeof b, "%.10g", kv.value().as_double());
      out += b;
    } else {
      out += json::serialize(kv.value());
    }
  }
  return out + "}";
}

const StepResult* findStep(const std::vector<StepResult>& steps, const std::string& name) {
  for (const auto& s : steps)
    if (s.step == name) return &s;
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* prefix) -> std::optional<std::string> {
      std::string p = prefix;
      if (a.rfind(p, 0) == 0) return a.substr(p.size());
      return std::nullopt;
    };
    if (a == "--quick") {
      o.quick = true;
    } else if (auto v = value("--phases=")) {
      o.phases.clear();
      for (size_t s = 0, e; s <= v->size(); s = e + 1) {
        e = v->find(',', s);
        if (e == std::string::npos) e = v->size();
        std::string p = v->substr(s, e - s);
        if (p != "ours" && p != "raw" && p != "swarm" && p != "failover") {
          std::fprintf(stderr, "docker-services-bench: unknown phase '%s'; phases: ours,raw,swarm,failover\n", p.c_str());
          return 2;
        }
        o.phases.insert(p);
      }
    } else if (auto v = value("--docker-socket=")) {
      o.dockerSocket = *v;
    } else if (auto v = value("--image=")) {
      o.image = *v;
    } else if (auto v = value("--poll-ms=")) {
      o.pollMs = std::max(1, std::stoi(*v));
    } else if (auto v = value("--failover-replicas=")) {
      o.failoverReplicas = std::max(2, std::stoi(*v));
    } else if (auto v = value("--kernel-log-level=")) {
      o.kernelLogLevel = *v;
    } else if (a == "--keep-logs") {
      o.keepLogs = true;
    } else if (a == "--diagnose") {
      o.diagnose = true;
    } else if (a == "--help") {
      std::puts(
          "usage: docker-services-bench [--quick] [--phases=ours,raw,swarm,failover] [--docker-socket=PATH]\n"
          "         [--image=REF] [--poll-ms=50] [--failover-replicas=6] [--kernel-log-level=info] [--keep-logs]\n"
          "         [--diagnose]\n"
          "  --quick     10 replicas only (create, rm), raw engine at concurrency 1,4,8 with 10 containers\n"
          "  --diagnose  after each create/scale, where the time went: task created, container created and\n"
          "              started, Running reported (from both systems' timestamps; not timed itself)\n"
          "  Needs a dockerd on the socket and the local image (tests/docker/start-dockerd.sh,\n"
          "  tests/docker/test-image.sh); without them it prints why and exits 0 (skipped).");
      return 0;
    } else {
      std::fprintf(stderr, "docker-services-bench: unknown option '%s'; see --help\n", a.c_str());
      return 2;
    }
  }
  std::vector<int> sizes = o.quick ? std::vector<int>{10} : std::vector<int>{10, 50, 100};
  if (o.quick) o.rawConcurrency = {1, 4, 8};

  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // ---- preflight: skip (exit 0) without a daemon or the image ----
  std::string imageId, engineVersion, swarmState;
  int ncpu = 0;
  try {
    auto engine = unixClient(o.dockerSocket);
    auto info = engine->get("/info");
    engineVersion = str(info, {"ServerVersion"});
    swarmState = str(info, {"Swarm", "LocalNodeState"});
    if (auto* n = find(info, {"NCPU"}); n && n->is_int64()) ncpu = static_cast<int>(n->as_int64());
  } catch (const std::exception& e) {
    std::printf("docker-services-bench: SKIPPED: no Docker daemon answers on %s (%s); start one with "
                "tests/docker/start-dockerd.sh\n", o.dockerSocket.c_str(), e.what());
    return 0;
  }
  try {
    imageId = str(unixClient(o.dockerSocket)->get("/images/" + o.image + "/json"), {"Id"});
  } catch (const std::exception& e) {
    std::printf("docker-services-bench: SKIPPED: the image %s is not on the daemon (%s); make it with "
                "tests/docker/test-image.sh (this bench never pulls)\n", o.image.c_str(), e.what());
    return 0;
  }
  if (o.phases.count("swarm") && swarmState != "inactive") {
    std::printf("docker-services-bench: the daemon is already in a swarm (LocalNodeState %s): the Docker "
                "Swarm phase is skipped and the swarm left alone\n", swarmState.c_str());
    o.phases.erase("swarm");
  }

  char pattern[] = "/tmp/docker-services-bench.XXXXXX";
  if (mkdtemp(pattern) == nullptr) {
    std::perror("docker-services-bench: mkdtemp");
    return 1;
  }
  std::string run = "dsb" + std::to_string(getpid());
  Cleanup cleanup{o, std::string(kBenchLabel) + "=" + run, fs::path(pattern)};
  fs::path conf = writePluginsConf(cleanup.dir, o);

  double loadBefore = loadAverage();
  std::vector<StepResult> ours, swarm;
  std::string oursError, swarmError, rawError;
  std::vector<RawResult> raw;
  std::optional<FailoverResult> fo;
  int status = 0;
  auto logStep = [](const char* who, const StepResult& s) {
    std::fprintf(stderr, "docker-services-bench: %-6s %-16s engine %s ms, api %s ms %s\n", who, s.step.c_str(),
                 fmtMs(s.engine.ms).c_str(), fmtMs(s.api.ms).c_str(), s.error().c_str());
    std::fprintf(stderr, "docker-services-bench:        %s\n", s.cpu.text().c_str());
    if (s.timeline) std::fprintf(stderr, "docker-services-bench:        %s\n", s.timeline->text().c_str());
  };
  try {
    // ---- ours: one manager that runs the tasks ----
    if (o.phases.count("ours")) {
      Kernel& manager = cleanup.kernels["manager"];
      try {
        spawnKernel(manager, cleanup.dir, conf, "manager", o);
        Cpu::kernelPid() = manager.pid;
        auto api = unixClient(manager.socket.string());
        api->post("/swarm/init", {}, json::object{{"ListenAddr", kOursClusterAddr}, {"AdvertiseAddr", kOursClusterAddr}});
        waitReadyNodes(*api, 1);
        ServiceDriver driver(manager.socket.string(), o, imageId, run);
        ours = driver.runAll(sizes, !o.quick);
        for (const auto& s : ours) logStep("ours", s);
      } catch (const Interrupted&) {
        throw;
      } catch (const std::exception& e) {
        oursError = e.what();
        cleanup.keepDir = true;
      }
      Cpu::kernelPid() = 0;
      stopKernel(manager);
      removeLabelled(*unixClient(o.dockerSocket), cleanup.runLabel);
    }

    // ---- raw engine: a sweep over concurrency at the largest size, the best one for the rest ----
    if (o.phases.count("raw")) {
      try {
        RawEngine engine(o, imageId, run);
        auto note = [&](const RawResult& r) {
          std::fprintf(stderr, "docker-services-bench: raw    %-16s %d containers at concurrency %d: calls %.0f ms, "
                       "observed %s ms, %s %s\n", r.step.c_str(), r.containers, r.concurrency, r.callsMs,
                       fmtMs(r.observedMs).c_str(), r.cpu.text().c_str(), r.error.c_str());
        };
        int largest = sizes.back();
        std::string big = std::to_string(largest);
        for (int c : o.rawConcurrency) {
          std::vector<std::string> ids;
          raw.push_back(engine.create("create-" + big, largest, c, ids));
          note(raw.back());
          raw.push_back(engine.remove("rm-" + big, ids, c));
          note(raw.back());
        }
        int best = 0;
        double bestMs = 1e300;
        for (const auto& r : raw)
          if (r.error.empty() && r.step == "create-" + big && r.observedMs && *r.observedMs < bestMs)
            bestMs = *r.observedMs, best = r.concurrency;
        if (best > 0) {
          for (int n : sizes) {
            if (n == largest) continue;
            std::vector<std::string> ids;
            raw.push_back(engine.create("create-" + std::to_string(n), n, best, ids));
            note(raw.back());
            raw.push_back(engine.remove("rm-" + std::to_string(n), ids, best));
            note(raw.back());
          }
          if (!o.quick) {
            // As the services do it: N more beside N running, then all 2N removed.
            std::vector<std::string> ids;
            raw.push_back(engine.create("create-" + big, largest, best, ids));
            note(raw.back());
            raw.push_back(engine.create("scale-" + big + "-" + std::to_string(2 * largest), largest, best, ids));
            note(raw.back());
            raw.push_back(engine.remove("rm-" + std::to_string(2 * largest), ids, best));
            note(raw.back());
          }
        }
      } catch (const Interrupted&) {
        throw;
      } catch (const std::exception& e) {
        rawError = e.what();
      }
      removeLabelled(*unixClient(o.dockerSocket), cleanup.runLabel);
    }

    // ---- Docker Swarm on the same dockerd ----
    if (o.phases.count("swarm")) {
      try {
        auto engine = unixClient(o.dockerSocket);
        cleanup.gwbridgeWasThere = false;
        auto networks = engine->get("/networks");
        for (const auto& n : networks.as_array())
          if (str(n, {"Name"}) == "docker_gwbridge") cleanup.gwbridgeWasThere = true;
        cleanup.swarmJoined = true;  // leave even when init fails half-way
        engine->post("/swarm/init", {}, json::object{{"ListenAddr", kSwarmListenAddr}, {"AdvertiseAddr", "127.0.0.1"}});
        waitReadyNodes(*engine, 1);
        ServiceDriver driver(o.dockerSocket, o, imageId, run);
        swarm = driver.runAll(sizes, !o.quick);
        for (const auto& s : swarm) logStep("swarm", s);
      } catch (const Interrupted&) {
        throw;
      } catch (const std::exception& e) {
        swarmError = e.what();
      }
      try {
        auto engine = unixClient(o.dockerSocket);
        engine->call("POST", "/swarm/leave", {{"force", "1"}});
        cleanup.swarmJoined = false;
        removeLabelled(*engine, cleanup.runLabel);
        if (!cleanup.gwbridgeWasThere) engine->call("DELETE", "/networks/docker_gwbridge");
      } catch (const std::exception&) {
        // The destructor tries again.
      }
    }

    // ---- dead worker detection (ours only) ----
    if (o.phases.count("failover")) {
      fo = failover(o, cleanup, conf, imageId, run);
    }
  } catch (const Interrupted&) {
    std::fprintf(stderr, "docker-services-bench: interrupted; cleaning up\n");
    return 130;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "docker-services-bench: %s\n", e.what());
    cleanup.keepDir = true;
    return 1;
  }
  double loadAfter = loadAverage();

  // ---- table ----
  // The raw figure for a step: the same step straight on the engine, the best observed time.
  auto rawFor = [&](const std::string& step) -> const RawResult* {
    const RawResult* best = nullptr;
    for (const auto& r : raw) {
      if (r.step != step || !r.error.empty() || !r.observedMs) continue;
      if (best == nullptr || *r.observedMs < *best->observedMs) best = &r;
    }
    return best;
  };

  std::printf("docker-services-bench (%s build, load average %.2f before, %.2f after)\n", SWARM_BENCH_BUILD_TYPE,
              loadBefore, loadAfter);
  std::printf("one node on dockerd %s (%d CPUs); network host; image %s (%s) by ID; `sleep 1d`; stop grace 0 s\n",
              engineVersion.c_str(), ncpu, o.image.c_str(), imageId.substr(0, 19).c_str());
  std::printf("ours: one swarm-kernel manager (runtime-docker, in process) running the tasks; swarm: Docker Swarm\n"
              "on the same dockerd; raw: POST /containers/create + /start (rm: DELETE ?force=1) at the best concurrency\n");
  std::printf("times in ms from the API call; engine = running containers seen, api = tasks Running seen, both = the\n"
              "later of the two; polled every %d ms by two pollers at once\n\n", o.pollMs);
  std::printf("%-14s %8s %8s %8s | %8s %8s %8s | %10s | %9s %5s | %8s\n", "step", "ours-eng", "ours-api", "ours",
              "swarm-eng", "swarm-api", "swarm", "swarm/ours", "raw", "conc", "ours/raw");
  json::array jsonLines;
  std::string cpuRows;
  std::vector<std::string> stepNames;
  for (const auto& s : ours) stepNames.push_back(s.step);
  for (const auto& s : swarm)
    if (std::find(stepNames.begin(), stepNames.end(), s.step) == stepNames.end()) stepNames.push_back(s.step);
  for (const auto& name : stepNames) {
    const StepResult* a = findStep(ours, name);
    const StepResult* b = findStep(swarm, name);
    int n = a ? a->replicas : b->replicas;
    const RawResult* r = rawFor(name);
    std::optional<double> rawMs;
    if (r) rawMs = r->observedMs;
    std::optional<double> oursMs = a ? a->both() : std::nullopt;
    std::optional<double> swarmMs = b ? b->both() : std::nullopt;
    std::printf("%-14s %8s %8s %8s | %8s %8s %8s | %10s | %9s %5s | %8s\n", name.c_str(),
                a ? fmtMs(a->engine.ms).c_str() : "-", a ? fmtMs(a->api.ms).c_str() : "-", fmtMs(oursMs).c_str(),
                b ? fmtMs(b->engine.ms).c_str() : "-", b ? fmtMs(b->api.ms).c_str() : "-", fmtMs(swarmMs).c_str(),
                fmtRatio(swarmMs, oursMs).c_str(), fmtMs(rawMs).c_str(), r ? std::to_string(r->concurrency).c_str() : "-",
                fmtRatio(oursMs, rawMs).c_str());
    if (a && !a->error().empty()) std::printf("  ours %s: %s\n", name.c_str(), a->error().c_str());
    if (b && !b->error().empty()) std::printf("  swarm %s: %s\n", name.c_str(), b->error().c_str());
    json::object line{{"bench", "docker-services"}, {"record", "result"}, {"step", name}, {"replicas", n},
                      {"oursEngineMs", a ? jnum(a->engine.ms) : nullptr}, {"oursApiMs", a ? jnum(a->api.ms) : nullptr},
                      {"oursMs", jnum(oursMs)}, {"swarmEngineMs", b ? jnum(b->engine.ms) : nullptr},
                      {"swarmApiMs", b ? jnum(b->api.ms) : nullptr}, {"swarmMs", jnum(swarmMs)},
                      {"swarmOverOurs", jratio(swarmMs, oursMs)}, {"rawMs", jnum(rawMs)},
                      {"rawConcurrency", r ? json::value(r->concurrency) : nullptr},
                      {"oursOverRaw", jratio(oursMs, rawMs)}};
    auto whole = [](double v) { return static_cast<int64_t>(std::llround(v)); };
    const Cpu* rawCpu = r ? &r->cpu : nullptr;
    if (a) line["oursCpuMs"] = json::object{{"dockerd", whole(a->cpu.dockerd)}, {"containerd", whole(a->cpu.containerd)}, {"kernel", whole(a->cpu.kernel)}};
    if (b) line["swarmCpuMs"] = json::object{{"dockerd", whole(b->cpu.dockerd)}, {"containerd", whole(b->cpu.containerd)}};
    if (rawCpu) line["rawCpuMs"] = json::object{{"dockerd", whole(rawCpu->dockerd)}, {"containerd", whole(rawCpu->containerd)}};
    char cpuRow[256];
    std::snprintf(cpuRow, sizeof cpuRow, "  %-14s %8s %8s %8s | %8s %8s | %8s %8s\n", name.c_str(),
                  a ? std::to_string(whole(a->cpu.dockerd)).c_str() : "-", a ? std::to_string(whole(a->cpu.containerd)).c_str() : "-",
                  a ? std::to_string(whole(a->cpu.kernel)).c_str() : "-", b ? std::to_string(whole(b->cpu.dockerd)).c_str() : "-",
                  b ? std::to_string(whole(b->cpu.containerd)).c_str() : "-", rawCpu ? std::to_string(whole(rawCpu->dockerd)).c_str() : "-",
                  rawCpu ? std::to_string(whole(rawCpu->containerd)).c_str() : "-");
    cpuRows += cpuRow;
    if (a && !a->error().empty()) line["oursError"] = a->error();
    if (b && !b->error().empty()) line["swarmError"] = b->error();
    jsonLines.push_back(line);
  }
  if (!cpuRows.empty()) {
    std::printf("\nCPU ms during each step (dockerd also serves Docker Swarm and anyone else's calls; shims and runc\n"
                "not counted):\n  %-14s %8s %8s %8s | %8s %8s | %8s %8s\n%s", "step", "ours:dkd", "ctrd", "kernel",
                "swarm:dkd", "ctrd", "raw:dkd", "ctrd", cpuRows.c_str());
  }
  if (o.diagnose) std::printf("\nwhere the time went (ms since the API call, first/median/last):\n");
  for (const auto* steps : {&ours, &swarm}) {
    for (const auto& st : *steps) {
      if (!st.timeline) continue;
      std::printf("  %s %s: %s\n", steps == &ours ? "ours" : "swarm", st.step.c_str(), st.timeline->text().c_str());
      auto pct = [](std::vector<double> v, double p) -> json::value {
        if (v.empty()) return nullptr;
        std::sort(v.begin(), v.end());
        return std::round(v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))] * 10) / 10;
      };
      const Timeline& t = *st.timeline;
      jsonLines.push_back(json::object{{"bench", "docker-services"}, {"record", "timeline"},
                                       {"system", steps == &ours ? "ours" : "swarm"}, {"step", st.step},
                                       {"taskCreatedLastMs", pct(t.taskCreated, 1)},
                                       {"containerCreatedFirstMs", pct(t.containerCreated, 0)},
                                       {"containerCreatedMedianMs", pct(t.containerCreated, 0.5)},
                                       {"containerCreatedLastMs", pct(t.containerCreated, 1)},
                                       {"containerStartedMedianMs", pct(t.containerStarted, 0.5)},
                                       {"containerStartedLastMs", pct(t.containerStarted, 1)},
                                       {"runningReportedLastMs", pct(t.runningReported, 1)}});
    }
  }
  if (!oursError.empty()) std::printf("ours: FAILED: %s\n", oursError.c_str()), status = 1;
  if (!swarmError.empty()) std::printf("swarm: FAILED: %s\n", swarmError.c_str()), status = 1;
  if (!rawError.empty()) std::printf("raw: FAILED: %s\n", rawError.c_str()), status = 1;

  if (!raw.empty()) {
    std::printf("\nraw engine (step@concurrency: calls returned / observed ms):");
    for (const auto& r : raw) {
      std::printf(" %s@c%d %.0f/%s%s", r.step.c_str(), r.concurrency, r.callsMs, fmtMs(r.observedMs).c_str(),
                  r.error.empty() ? "" : " (error)");
      json::object line{{"bench", "docker-services"}, {"record", "raw"}, {"step", r.step}, {"containers", r.containers},
                        {"concurrency", r.concurrency}, {"callsMs", std::round(r.callsMs * 10) / 10},
                        {"observedMs", jnum(r.observedMs)}};
      if (!r.error.empty()) line["error"] = r.error;
      jsonLines.push_back(line);
    }
    std::printf("\n");
  }
  if (fo) {
    std::printf("\ndead worker (2 swarm-kernel nodes on this dockerd, our default heartbeat period %.0f ms, %d replicas, "
                "%zu on the worker, kill -9 of the worker):\n", fo->heartbeatPeriodMs, fo->replicas, fo->onWorker);
    std::printf("  marked Down after %s ms; its tasks Running on the manager after %s ms (api), %s ms (engine); "
                "target <= 5000 ms; Docker Swarm: ~%.0f s (down after 3 x its 5 s heartbeat; quoted from swarmkit, not measured)\n",
                fmtMs(fo->down.ms).c_str(), fmtMs(fo->rescheduledApi.ms).c_str(),
                fmtMs(fo->rescheduledEngine.ms).c_str(), kSwarmDeadNodeQuotedS);
    std::string err = !fo->error.empty() ? fo->error
                      : !fo->down.error.empty() ? "down: " + fo->down.error
                      : !fo->rescheduledApi.error.empty() ? "rescheduled: " + fo->rescheduledApi.error
                      : !fo->rescheduledEngine.error.empty() ? "engine: " + fo->rescheduledEngine.error : "";
    if (!err.empty()) std::printf("  FAILED: %s\n", err.c_str()), status = 1;
    json::object line{{"bench", "docker-services"}, {"record", "failover"}, {"heartbeatPeriodMs", fo->heartbeatPeriodMs}, {"replicas", fo->replicas},
                      {"onWorker", fo->onWorker}, {"downMs", jnum(fo->down.ms)},
                      {"rescheduledApiMs", jnum(fo->rescheduledApi.ms)},
                      {"rescheduledEngineMs", jnum(fo->rescheduledEngine.ms)},
                      {"swarmQuotedDownMs", kSwarmDeadNodeQuotedS * 1000}};
    if (!err.empty()) line["error"] = err;
    jsonLines.push_back(line);
  }
  std::printf("\n");
  json::object setup{{"bench", "docker-services"}, {"record", "setup"}, {"buildType", SWARM_BENCH_BUILD_TYPE},
                     {"quick", o.quick}, {"engineVersion", engineVersion}, {"cpus", ncpu},
                     {"network", "host"}, {"image", o.image}, {"imageId", imageId}, {"pollMs", o.pollMs},
                     {"loadBefore", loadBefore}, {"loadAfter", loadAfter}};
  std::printf("%s\n", jsonLine(setup).c_str());
  for (const auto& l : jsonLines) std::printf("%s\n", jsonLine(l.as_object()).c_str());
  if (status != 0) cleanup.keepDir = true;
  std::fflush(stdout);  // before the cleanup's messages on stderr
  return status;
}
