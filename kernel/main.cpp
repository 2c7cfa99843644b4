// swarm-kernel: the swarm node process. Loads the plugins named in plugins.conf and runs them.
#include "config.h"
#include "errors.h"
#include "kernel.h"
#include "logging.h"
#include "api_routes.h"
#include "http/bridge.h"
#include "http/server.h"
#include "swarm_node.h"

#include <swarm/plugin.h>

#include <kj/async-unix.h>
#include <kj/debug.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include <unistd.h>

#ifndef SWARM_KERNEL_VERSION
#define SWARM_KERNEL_VERSION "0.0.0"
#endif

namespace {

constexpr const char* kUsage =
    "Usage: swarm-kernel --plugins <plugins.conf> [options]\n"
    "\n"
    "Runs a swarm node: loads the plugins named in plugins.conf (one per kind: consensus, pki,\n"
    "scheduler, runtime, transport) and serves until SIGTERM or SIGINT.\n"
    "\n"
    "Options:\n"
    "  --plugins FILE            the plugin configuration (format: docs/plugins-conf.md)\n"
    "  --check                   start, configure and health-check every plugin, then stop;\n"
    "                            exit 0 when all are healthy\n"
    "  --log-level LEVEL         trace, debug, info (default), warn, error, critical, off\n"
    "  --stop-timeout-ms N       time each plugin gets to stop before it is abandoned or killed\n"
    "                            (default 5000)\n"
    "  --health-interval-ms N    time between plugin health checks (default 10000)\n"
    "  --state-dir DIR           the node's state: swarm identity, keys, consensus log\n"
    "                            (default /var/lib/swarm-kernel)\n"
    "  --api-socket PATH         the Docker-compatible API's Unix socket, mode 0600\n"
    "                            (default /var/run/swarm-kernel.sock)\n"
    "  --api-tcp HOST:PORT       also serve the API on TCP, with mutual TLS (all three below)\n"
    "  --api-tls-cert FILE       the API's certificate chain (PEM)\n"
    "  --api-tls-key FILE        its private key (PEM)\n"
    "  --api-tls-ca FILE         the CA clients' certificates must chain to (PEM)\n"
    "  --force-new-cluster       recover a manager that lost its quorum: continue as a\n"
    "                            one-manager swarm with all of its data\n"
    "  --version                 print the version and the plugin ABI version\n"
    "  --help                    print this help\n";

struct Args {
  std::string plugins;
  bool check = false;
  spdlog::level::level_enum logLevel = spdlog::level::info;
  swarm::kernel::KernelOptions options;
  std::string stateDir = "/var/lib/swarm-kernel";
  std::string apiSocket = "/var/run/swarm-kernel.sock";
  bool forceNewCluster = false;
  std::string apiTcp, apiTlsCert, apiTlsKey, apiTlsCa;
};

[[noreturn]] void usageError(const std::string& message) {
  std::fprintf(stderr, "swarm-kernel: %s\nRun 'swarm-kernel --help' for usage.\n",
               message.c_str());
  std::exit(2);
}

unsigned parseMillis(const std::string& flag, const char* value) {
  unsigned result = 0;
  auto [end, ec] = std::from_chars(value, value + std::strlen(value), result);
  if (ec != std::errc() || *end != '\0' || result == 0 || result > 3600000) {
    usageError(flag + " '" + value + "' must be a number of milliseconds from 1 to 3600000");
  }
  return result;
}

Args parseArgs(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usageError(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (arg == "--version") {
      std::printf("swarm-kernel %s (plugin ABI %u)\n", SWARM_KERNEL_VERSION,
                  SWARM_PLUGIN_ABI_VERSION);
      std::exit(0);
    } else if (arg == "--plugins") {
      args.plugins = value();
    } else if (arg == "--check") {
      args.check = true;
    } else if (arg == "--log-level") {
      std::string level = value();
      auto parsed = swarm::kernel::parseLogLevel(level);
      if (!parsed) {
        usageError("unknown log level '" + level +
                   "'; use trace, debug, info, warn, error, critical or off");
      }
      args.logLevel = *parsed;
    } else if (arg == "--stop-timeout-ms") {
      args.options.plugin.stopTimeout = std::chrono::milliseconds(parseMillis(arg, value()));
    } else if (arg == "--health-interval-ms") {
      args.options.healthInterval = std::chrono::milliseconds(parseMillis(arg, value()));
    } else if (arg == "--state-dir") {
      args.stateDir = value();
      if (args.stateDir.empty()) usageError("--state-dir needs a directory");
    } else if (arg == "--api-tcp") {
      args.apiTcp = value();
    } else if (arg == "--api-tls-cert") {
      args.apiTlsCert = value();
    } else if (arg == "--api-tls-key") {
      args.apiTlsKey = value();
    } else if (arg == "--api-tls-ca") {
      args.apiTlsCa = value();
    } else if (arg == "--force-new-cluster") {
      args.forceNewCluster = true;
    } else if (arg == "--api-socket") {
      args.apiSocket = value();
      if (args.apiSocket.empty()) usageError("--api-socket needs a path");
    } else {
      usageError("unknown option '" + arg + "'");
    }
  }
  if (args.plugins.empty()) usageError("--plugins <plugins.conf> is required");
  bool anyTls = !args.apiTlsCert.empty() || !args.apiTlsKey.empty() || !args.apiTlsCa.empty();
  bool allTls = !args.apiTlsCert.empty() && !args.apiTlsKey.empty() && !args.apiTlsCa.empty();
  if (!args.apiTcp.empty() && !allTls) {
    usageError("--api-tcp serves the API with mutual TLS only: give --api-tls-cert, "
               "--api-tls-key and --api-tls-ca too");
  }
  if (args.apiTcp.empty() && anyTls) usageError("--api-tls-* need --api-tcp HOST:PORT");
  if (!args.apiTcp.empty()) {
    auto colon = args.apiTcp.rfind(':');
    unsigned port = 0;
    bool ok = colon != std::string::npos && colon > 0;
    if (ok) {
      auto digits = args.apiTcp.substr(colon + 1);
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
      ok = ec == std::errc() && end == digits.data() + digits.size() && port < 65536;
    }
    if (!ok) usageError("--api-tcp '" + args.apiTcp + "' must be HOST:PORT, e.g. 127.0.0.1:2376 (port 0: any free one)");
  }
  return args;
}

std::string hostname() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "localhost";
  return name;
}

}  // namespace

int main(int argc, char** argv) {
  Args args = parseArgs(argc, argv);
  // Before any thread exists, so plugin threads inherit the blocked mask and the kernel's event
  // loop alone receives these signals.
  kj::UnixEventPort::captureSignal(SIGTERM);
  kj::UnixEventPort::captureSignal(SIGINT);
  swarm::kernel::initLogging(args.logLevel);
  auto log = swarm::kernel::logger("kernel");

  try {
    auto config = swarm::kernel::loadConfig(args.plugins);
    auto io = kj::setupAsyncIo();
    swarm::kernel::Kernel kernel(io, std::move(config), args.options);
    log->info("swarm-kernel {} starting with {}", SWARM_KERNEL_VERSION, args.plugins);
    kernel.start();
    if (args.check) {
      bool healthy = kernel.checkHealth();
      kernel.stop();
      if (!healthy) {
        std::fprintf(stderr, "swarm-kernel: error: a plugin reported failing health; see above\n");
        return 1;
      }
      log->info("check passed: every plugin started, configured and reported healthy");
      return 0;
    }
    // The manager: its state, then the API. Handlers run on this thread's event loop, reached
    // from the HTTP thread through the bridge.
    swarm::http::Bridge bridge;
    swarm::kernel::SwarmNodeOptions nodeOptions;
    nodeOptions.stateDir = args.stateDir;
    nodeOptions.hostname = hostname();
    nodeOptions.engineVersion = SWARM_KERNEL_VERSION;
    nodeOptions.forceNewCluster = args.forceNewCluster;
    swarm::kernel::SwarmNode node(io, kernel, nodeOptions);
    node.resume().wait(io.waitScope);

    swarm::http::ServerOptions serverOptions;
    serverOptions.serverVersion = SWARM_KERNEL_VERSION;
    serverOptions.unixSocket = args.apiSocket;
    if (!args.apiTcp.empty()) {
      auto colon = args.apiTcp.rfind(':');
      std::string host = args.apiTcp.substr(0, colon);
      if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
      serverOptions.tcp = swarm::http::TcpEndpoint{
          host, static_cast<std::uint16_t>(std::stoul(args.apiTcp.substr(colon + 1)))};
      serverOptions.tcpTls = swarm::http::ServerOptions::TlsFiles{args.apiTlsCert, args.apiTlsKey, args.apiTlsCa};
    }
    swarm::http::Server server(serverOptions, bridge.mailbox());
    swarm::kernel::addApiRoutes(server, node, {SWARM_KERNEL_VERSION, nodeOptions.hostname, args.stateDir});
    server.start();
    log->info("serving the Docker-compatible API on unix://{}", args.apiSocket);
    if (auto port = server.tcpPort()) {
      log->info("and on tcp://{}:{} with mutual TLS", serverOptions.tcp->address, *port);
    }

    auto outcome = kernel.run([&]() { server.stopAsync().wait(io.waitScope); });
    if (outcome.exitCode != 0) {
      std::fprintf(stderr, "swarm-kernel: error: %s\n", outcome.why.c_str());
    }
    return outcome.exitCode;
  } catch (const swarm::kernel::UserError& e) {
    std::fprintf(stderr, "swarm-kernel: error: %s\n", e.what());
    return 1;
  } catch (const kj::Exception& e) {
    std::fprintf(stderr, "swarm-kernel: error: %s\n", e.getDescription().cStr());
    return 1;
  }
}
