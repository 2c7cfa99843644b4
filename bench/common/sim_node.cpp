#include "sim_node.h"

#include "config.h"
#include "errors.h"
#include "plugin_host.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace swarm::bench {

namespace fs = std::filesystem;
namespace schema = swarm::schema;
namespace ss = swarm::store::schema;
using swarm::kernel::DialedStream;
using swarm::kernel::DialExpect;

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }
double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

long rssKiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// /proc/<pid>/stat fields 14 and 15.
long cpuTicks(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return -1;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return utime + stime;
}

long childrenRssKiB(pid_t pid) {
  long total = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::ifstream children(it->path() / "children");
    pid_t child = 0;
    while (children >> child) total += rssKiB(child);
  }
  return total;
}

size_t openFds(pid_t pid) {
  std::error_code ec;
  size_t n = 0;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    ++n;
  }
  return n;
}

double loadAverage() {
  double one = 0;
  std::ifstream("/proc/loadavg") >> one;
  return one;
}

int freeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    ::close(fd);
    throw std::runtime_error(std::string("binding a loopback port: ") + std::strerror(err));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

void raiseFdLimit(int nodes) {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < static_cast<rlim_t>(nodes) + 256) {
    throw std::runtime_error("the open-file limit (" + std::to_string(limit.rlim_cur) + ") is too low for " +
                             std::to_string(nodes) + " nodes; raise it with ulimit -n or lower --nodes");
  }
}

void writePluginsConf(const fs::path& conf) {
  std::ofstream out(conf);
  out << "[consensus]\nlibrary = " << SWARM_BENCH_CONSENSUS << "\n"
      << "[pki]\nlibrary = " << SWARM_BENCH_PKI << "\n"
      << "[scheduler]\nlibrary = " << SWARM_BENCH_SCHEDULER << "\n"
      << "[runtime]\nlibrary = " << SWARM_BENCH_RUNTIME << "\n"
      << "[transport]\nlibrary = " << SWARM_BENCH_TRANSPORT << "\n";
}

pid_t spawnKernel(const char* binary, const fs::path& conf, const fs::path& stateDir, const fs::path& socket,
                  const fs::path& log) {
  // Warnings only, unless SWARM_BENCH_KERNEL_LOG_LEVEL asks for more (a post-mortem).
  const char* level = std::getenv("SWARM_BENCH_KERNEL_LOG_LEVEL");
  std::vector<std::string> args = {binary,         "--plugins",     conf.string(), "--state-dir", stateDir.string(),
                                   "--api-socket", socket.string(), "--log-level", level ? level : "warn"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, binary, &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("starting swarm-kernel failed: " + std::string(std::strerror(rc)));
  return pid;
}

void waitForSocket(const fs::path& socket, pid_t pid) {
  for (int i = 0; i < 400 && !fs::exists(socket); ++i) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) throw std::runtime_error("swarm-kernel exited during start-up");
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
}

std::string tail(const fs::path& file, size_t lines) {
  std::ifstream in(file);
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (last.size() > lines) last.pop_front();
  }
  std::string out;
  for (auto& l : last) out += "  " + l + "\n";
  return out;
}

size_t lineCount(const fs::path& file) {
  std::ifstream in(file);
  size_t n = 0;
  std::string line;
  while (std::getline(in, line)) ++n;
  return n;
}

size_t directoryBytes(const fs::path& dir) {
  size_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  }
  return total;
}

capnp::Data::Reader bytes(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}
std::string text(capnp::Data::Reader d) { return std::string(reinterpret_cast<const char*>(d.begin()), d.size()); }

void SimNode::disconnect() {
  manager = nullptr;
  rpc = nullptr;
  stream = nullptr;
  connectedTo.clear();
}

SimNodeKit::SimNodeKit(kj::AsyncIoContext& io, const char* transportLibrary, const char* pkiLibrary,
                       std::string benchName)
    : io(io), timer(io.provider->getTimer()), benchName(std::move(benchName)),
      connecting(kj::Promise<void>(kj::READY_NOW).fork()) {
  transport = startPlugin(schema::Kind::TRANSPORT, transportLibrary, {{"reuse-connections", "false"}})
                  .castAs<schema::Transport>();
  pki = startPlugin(schema::Kind::PKI, pkiLibrary, {}).castAs<schema::Pki>();
}

SimNodeKit::~SimNodeKit() noexcept(false) {
  transport = nullptr;
  pki = nullptr;
  for (auto& plugin : plugins) {
    kj::runCatchingExceptions([&]() { plugin->stop().wait(io.waitScope); });
  }
}

capnp::Capability::Client SimNodeKit::startPlugin(schema::Kind kind, const char* library,
                                                  std::vector<std::pair<std::string, std::string>> settings) {
  swarm::kernel::PluginConfig config;
  config.kind = kind;
  config.library = library;
  config.onCrash = swarm::kernel::CrashPolicy::stop;
  config.settings = std::move(settings);
  config.sourceFile = benchName;
  plugins.push_back(swarm::kernel::PluginInstance::start(io, config, {}));
  limited(plugins.back()->configure(), 30, library);
  return plugins.back()->bootstrap();
}

void SimNodeKit::prepareJoins(const std::string& token) {
  auto digestRequest = pki.rootDigestOfTokenRequest();
  digestRequest.setToken(token);
  digest = limited(digestRequest.send(), 30, "rootDigestOfToken").getDigest();
  // Empty credentials: join mode, as SwarmNode::join sets them; the same for every join.
  auto joinModeRequest = transport.setCredentialsRequest();
  joinModeRequest.initCredentials();
  limited(joinModeRequest.send(), 30, "setCredentials (join mode)");
  joinMode = true;
}

kj::Promise<JoinTiming> SimNodeKit::join(SimNode& node, const std::string& managerAddress, const std::string& token) {
  KJ_REQUIRE(joinMode, "prepareJoins() first");
  auto start = Clock::now();
  auto csr = pki.makeCsrRequest();
  auto identity = csr.initIdentity();
  identity.setNodeId("joining");
  identity.setClusterId("joining");
  return csr.send()
      .then([this, &node, managerAddress, token, start](capnp::Response<schema::Pki::MakeCsrResults>&& made) {
        node.key = text(made.getKey());
        std::string csrPem = text(made.getCsr());
        auto dialStart = Clock::now();
        return swarm::kernel::dialStream(transport, managerAddress, DialExpect::joinRootDigest(digest))
            .then([&node, token, start, dialStart, csrPem = std::move(csrPem)](DialedStream dialed) {
              auto callStart = Clock::now();
              auto rpc = kj::heap<capnp::TwoPartyClient>(*dialed.stream);
              auto call = rpc->bootstrap().castAs<ss::Manager>().joinRequest();
              auto request = call.initRequest();
              request.setToken(token);
              request.setCsr(bytes(csrPem));
              request.setAvailability(schema::NodeAvailability::ACTIVE);
              request.setAdvertiseAddr("127.0.0.1:2377");
              auto description = request.initDescription();
              description.setHostname(node.hostname);
              description.getPlatform().setOs("linux");
              description.getPlatform().setArchitecture("x86_64");
              description.getEngine().setEngineVersion("swarm-bench-sim-node");
              return call.send()
                  .then([&node, start, dialStart, callStart](capnp::Response<ss::Manager::JoinResults>&& answer) {
                    auto response = answer.getResponse();
                    node.nodeId = response.getNodeId();
                    node.clusterId = response.getClusterId();
                    node.chain = text(response.getCertChain());
                    node.roots = text(response.getRootCerts());
                    auto done = Clock::now();
                    return JoinTiming{ms(done - start), ms(callStart - dialStart), ms(done - callStart)};
                  })
                  .attach(kj::mv(rpc), kj::mv(dialed.stream));
            });
      })
      .catch_([this, &node, managerAddress, token](kj::Exception&& e) -> kj::Promise<JoinTiming> {
        std::string why = swarm::kernel::describe(e);
        bool transient = why.find("HTTP 503") != std::string::npos || why.find("backing off") != std::string::npos ||
                         why.find("not dialing again") != std::string::npos;
        if (!transient || ++node.joinRetries > 20) {
          return KJ_EXCEPTION(FAILED, "join failed", node.hostname.c_str(), node.joinRetries, why.c_str());
        }
        return timer.afterDelay(200 * kj::MILLISECONDS).then([this, &node, managerAddress, token]() {
          return join(node, managerAddress, token);
        });
      });
}

kj::Promise<double> SimNodeKit::connect(SimNode& node, const std::string& managerAddress) {
  // Chained after the previous connect, whatever its outcome.
  auto dial = connecting.addBranch().then([this, &node, managerAddress]() { return connectNow(node, managerAddress); });
  auto forked = dial.fork();
  connecting = forked.addBranch().ignoreResult().catch_([](kj::Exception&&) {}).fork();
  joinMode = false;
  return forked.addBranch();
}

kj::Promise<double> SimNodeKit::connectNow(SimNode& node, const std::string& managerAddress) {
  auto set = transport.setCredentialsRequest();
  auto credentials = set.initCredentials();
  credentials.setChain(bytes(node.chain));
  credentials.setKey(bytes(node.key));
  credentials.initRoots(1).set(0, bytes(node.roots));
  credentials.setClusterId(node.clusterId);
  credentials.setMinVersion(schema::TlsVersion::TLS12);
  return set.send()
      .then([this, managerAddress](auto&&) {
        auto dialStart = Clock::now();
        return swarm::kernel::dialStream(transport, managerAddress, DialExpect::manager())
            .then([dialStart](DialedStream dialed) { return std::make_pair(kj::mv(dialed), ms(Clock::now() - dialStart)); });
      })
      .then([&node, managerAddress](std::pair<DialedStream, double> dialed) {
        KJ_REQUIRE(dialed.first.peer.isManager(), "the listener is not a manager", dialed.first.peer.describe().c_str());
        node.disconnect();
        node.stream = kj::mv(dialed.first.stream);
        node.rpc = kj::heap<capnp::TwoPartyClient>(*node.stream);
        node.manager = node.rpc->bootstrap().castAs<ss::Manager>();
        node.connectedTo = managerAddress;
        return dialed.second;
      });
}

}  // namespace swarm::bench
