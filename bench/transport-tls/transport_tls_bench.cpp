// transport-tls-bench: mutual-TLS handshakes per second and bulk throughput on one connection,
// over loopback, at two layers:
//
//   tls      the plugin's own code (channel.h over tls_stream.h), both ends on this thread's one
//            event loop: one core does the dialer's and the listener's work, so the figures are
//            per core for a whole connection (both ends).
//   plugin   through the plugin boundary: two nodes, each a kernel-side thread with its own event
//            loop and a transport-tls instance started by the kernel's host code (PluginInstance,
//            which serves it on a thread of its own). The dialer's side calls Transport.dial and
//            Connection.send; the listener's side counts bytes at its acceptor's ByteSink. Figures
//            are wall clock, plus CPU seconds of the whole process (getrusage: all four threads)
//            for a per-core rate.
//
// A handshake is everything a dial costs: TCP connect and accept, the TLS 1.3 handshake with
// client and server certificates (ECDSA P-256, X25519), chain and identity checks on both ends,
// and the verdict exchange. No resumption (transport-tls never resumes).
#include "channel.h"
#include "credentials.h"
#include "test_pki.h"

#include "config.h"
#include "errors.h"
#include "logging.h"
#include "plugin_host.h"

#include <swarm/schema/transport.capnp.h>

#include <kj/async-io.h>
#include <kj/debug.h>

#include <sys/resource.h>

#include <atomic>
#include <charconv>
#include <future>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#ifndef SWARM_BENCH_TLS_PLUGIN
#define SWARM_BENCH_TLS_PLUGIN "transport-tls.so"
#endif
#ifndef SWARM_BENCH_RUNNER
#define SWARM_BENCH_RUNNER ""
#endif
#ifndef SWARM_BENCH_BUILD_TYPE
#define SWARM_BENCH_BUILD_TYPE "unknown"
#endif

namespace swarm::bench {
namespace {

using namespace swarm::tls;
using namespace swarm::tls::testing;
using Clock = std::chrono::steady_clock;

constexpr double TARGET_HANDSHAKES_PER_CORE = 500;
constexpr double TARGET_MIB_PER_S = 500;

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Options {
  bool quick = false;
  size_t handshakes = 2000;
  size_t mib = 1024;
  bool tlsLayer = true;
  bool pluginLayer = true;
  bool outOfProcess = false;
  size_t chunk = 64 * 1024;  // bytes per write (tls) or Connection.send (plugin)
};

const char* USAGE =
    "usage: transport-tls-bench [--quick] [--handshakes=N] [--mib=N] [--chunk=KIB]\n"
    "                           [--layers=tls,plugin] [--out-of-process]\n"
    "Times mutual-TLS handshakes and bulk transfer over loopback, inside transport-tls's own code\n"
    "(tls) and through the plugin boundary (plugin). --quick: 10x fewer handshakes and bytes.\n";

size_t parseCount(std::string_view flag, std::string_view value) {
  size_t n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || end != value.data() + value.size() || n == 0) {
    throw UsageError(std::string(flag) + "=" + std::string(value) + " must be a whole number >= 1");
  }
  return n;
}

Options parseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto eq = arg.find('=');
    std::string_view flag = arg.substr(0, eq), value = eq == std::string_view::npos ? "" : arg.substr(eq + 1);
    if (flag == "--help" || flag == "-h") {
      std::fputs(USAGE, stdout);
      std::exit(0);
    } else if (flag == "--quick") {
      o.quick = true;
    } else if (flag == "--handshakes") {
      o.handshakes = parseCount(flag, value);
    } else if (flag == "--mib") {
      o.mib = parseCount(flag, value);
    } else if (flag == "--chunk") {
      o.chunk = parseCount(flag, value) * 1024;
    } else if (flag == "--out-of-process") {
      o.outOfProcess = true;
    } else if (flag == "--layers") {
      o.tlsLayer = value.find("tls") != std::string_view::npos;
      o.pluginLayer = value.find("plugin") != std::string_view::npos;
      if (!o.tlsLayer && !o.pluginLayer) throw UsageError("--layers takes tls, plugin or tls,plugin");
    } else {
      throw UsageError("unknown argument '" + std::string(arg) + "'\n" + USAGE);
    }
  }
  if (o.quick) {
    o.handshakes = std::max<size_t>(1, o.handshakes / 10);
    o.mib = std::max<size_t>(1, o.mib / 10);
  }
  return o;
}

double cpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

double loadAverage() {
  double load = -1;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &load) != 1) load = -1;
    std::fclose(f);
  }
  return load;
}

struct Measure {
  Clock::time_point start = Clock::now();
  double cpuStart = cpuSeconds();
  double wall() const { return std::chrono::duration<double>(Clock::now() - start).count(); }
  double cpu() const { return cpuSeconds() - cpuStart; }
};

struct Result {
  std::string layer, metric;
  double perSecond;   // wall clock
  double perCpuSecond;
  double target;
  std::string note;
};

// ---- the test swarm ------------------------------------------------------------------------------

struct Pki {
  Pki() : ca(mintCa("swarm-ca")) {
    std::mt19937_64 rng(20261125);
    clusterId = randomId(rng);
    manager = mintNode(ca, randomId(rng), "swarm-manager", clusterId);
    worker = mintNode(ca, randomId(rng), "swarm-worker", clusterId);
  }
  CredentialInput input(const Node& node) const { return {node.chainPem, node.keyPem, {ca.certPem}, clusterId, false, {}}; }

  Ca ca;
  std::string clusterId;
  Node manager, worker;
};

// ---- tls: the plugin's own code on one event loop -------------------------------------------------

struct Pair {
  Established dialer, listener;
};

kj::Promise<Pair> connectPair(kj::AsyncIoContext& io, kj::ConnectionReceiver& receiver, kj::NetworkAddress& address,
                              CredentialSet& server, CredentialSet& client) {
  ChannelLimits limits{io.provider->getTimer(), 10 * kj::SECONDS};
  auto accepted = receiver.accept().then([&server, limits](kj::Own<kj::AsyncIoStream> stream) {
    return acceptChannel(kj::mv(stream), kj::addRef(server), limits);
  });
  auto dialed = address.connect().then([&client, limits](kj::Own<kj::AsyncIoStream> stream) {
    return dialChannel(kj::mv(stream), kj::addRef(client), {}, limits);
  });
  return dialed.then([accepted = kj::mv(accepted)](Established d) mutable {
    return accepted.then([d = kj::mv(d)](Established l) mutable { return Pair{kj::mv(d), kj::mv(l)}; });
  });
}

kj::Promise<void> writeLoop(TlsStream& tls, kj::ArrayPtr<const kj::byte> chunk, size_t left) {
  if (left == 0) return kj::READY_NOW;
  return tls.write(chunk).then([&tls, chunk, left]() { return writeLoop(tls, chunk, left - 1); });
}

kj::Promise<void> readLoop(TlsStream& tls, kj::ArrayPtr<kj::byte> buffer, size_t left) {
  if (left == 0) return kj::READY_NOW;
  return tls.tryRead(buffer.begin(), 1, buffer.size()).then([&tls, buffer, left](size_t n) {
    KJ_REQUIRE(n > 0, "the connection ended early");
    return readLoop(tls, buffer, left - std::min(left, n));
  });
}

void tlsLayer(const Options& o, const Pki& pki, std::vector<Result>& results) {
  auto io = kj::setupAsyncIo();
  auto server = CredentialSet::make(pki.input(pki.manager));
  auto client = CredentialSet::make(pki.input(pki.worker));
  auto address = io.provider->getNetwork().parseAddress("127.0.0.1", 0).wait(io.waitScope);
  auto receiver = address->listen();
  auto target = io.provider->getNetwork().parseAddress("127.0.0.1", receiver->getPort()).wait(io.waitScope);

  for (int i = 0; i < 20; ++i) connectPair(io, *receiver, *target, *server, *client).wait(io.waitScope);  // warm-up
  Measure m;
  kj::StringPtr version, cipher;
  for (size_t i = 0; i < o.handshakes; ++i) {
    auto pair = connectPair(io, *receiver, *target, *server, *client).wait(io.waitScope);
    version = pair.dialer.version;
    cipher = pair.dialer.cipher;
  }
  double wall = m.wall(), cpu = m.cpu();
  results.push_back({"tls", "handshakes", o.handshakes / wall, o.handshakes / cpu, TARGET_HANDSHAKES_PER_CORE,
                     kj::str(version, " ", cipher, ", both ends on one thread").cStr()});

  auto pair = connectPair(io, *receiver, *target, *server, *client).wait(io.waitScope);
  auto chunk = kj::heapArray<kj::byte>(o.chunk);
  for (size_t i = 0; i < o.chunk; ++i) chunk[i] = static_cast<kj::byte>(i * 131);
  auto buffer = kj::heapArray<kj::byte>(o.chunk);
  size_t chunks = (o.mib << 20) / o.chunk;
  Measure b;
  auto writing = writeLoop(*pair.dialer.tls, chunk, chunks);
  auto reading = readLoop(*pair.listener.tls, buffer, chunks * o.chunk);
  writing.then([reading = kj::mv(reading)]() mutable { return kj::mv(reading); }).wait(io.waitScope);
  wall = b.wall();
  cpu = b.cpu();
  double mib = double(chunks * o.chunk) / (1 << 20);
  results.push_back({"tls", "bulk MiB", mib / wall, mib / cpu, TARGET_MIB_PER_S,
                     kj::str(pair.dialer.cipher, ", ", o.chunk / 1024, " KiB writes, encrypt + decrypt on one thread").cStr()});
}

// ---- plugin: through the boundary --------------------------------------------------------------
//
// Two nodes: the listener's kernel side (its PluginInstance, acceptor and ByteSinks) runs on a
// thread of its own, as it would on another machine; the dialer's on this one.

struct Counter {
  std::atomic<size_t> bytes{0};
  std::atomic<size_t> accepted{0};
};

class CountingSink final : public schema::ByteSink::Server {
 public:
  explicit CountingSink(Counter& counter) : counter(counter) {}
  kj::Promise<void> write(WriteContext context) override {
    counter.bytes += context.getParams().getChunk().size();
    return kj::READY_NOW;
  }
  kj::Promise<void> done(DoneContext) override { return kj::READY_NOW; }

 private:
  Counter& counter;
};

class CountingAcceptor final : public schema::Acceptor::Server {
 public:
  explicit CountingAcceptor(Counter& counter) : counter(counter) {}
  kj::Promise<void> accepted(AcceptedContext context) override {
    ++counter.accepted;
    // Dropping a Connection closes it: hold the latest one.
    latest = context.getParams().getConnection();
    context.getResults().setInbound(kj::heap<CountingSink>(counter));
    return kj::READY_NOW;
  }
  kj::Promise<void> rejected(RejectedContext context) override {
    std::fprintf(stderr, "transport-tls-bench: unexpected rejection: %s\n", context.getParams().getReason().cStr());
    return kj::READY_NOW;
  }

 private:
  Counter& counter;
  schema::Connection::Client latest = nullptr;
};

void setCredentials(kj::WaitScope& ws, schema::Transport::Client& t, const Pki& pki, const Node& node) {
  auto request = t.setCredentialsRequest();
  auto c = request.initCredentials();
  c.setChain(kj::arrayPtr(reinterpret_cast<const kj::byte*>(node.chainPem.data()), node.chainPem.size()));
  c.setKey(kj::arrayPtr(reinterpret_cast<const kj::byte*>(node.keyPem.data()), node.keyPem.size()));
  c.initRoots(1).set(0, kj::arrayPtr(reinterpret_cast<const kj::byte*>(pki.ca.certPem.data()), pki.ca.certPem.size()));
  c.setClusterId(pki.clusterId);
  request.send().wait(ws);
}

kj::Own<kernel::PluginInstance> startPlugin(kj::AsyncIoContext& io, const Options& o,
                                            std::vector<std::pair<std::string, std::string>> settings) {
  kernel::PluginConfig config;
  config.kind = schema::Kind::TRANSPORT;
  config.library = SWARM_BENCH_TLS_PLUGIN;
  config.isolation = o.outOfProcess ? kernel::Isolation::outOfProcess : kernel::Isolation::inProcess;
  config.onCrash = kernel::CrashPolicy::stop;
  config.settings = kj::mv(settings);
  config.sourceFile = "transport-tls-bench";
  kernel::PluginInstance::Options options;
  options.runnerPath = SWARM_BENCH_RUNNER;
  auto instance = kernel::PluginInstance::start(io, config, options);
  instance->configure().wait(io.waitScope);
  return instance;
}

// The listening node, on its own thread until stop().
class ListeningNode {
 public:
  ListeningNode(const Options& o, const Pki& pki) {
    std::promise<std::string> bound;
    auto boundFuture = bound.get_future();
    std::promise<const kj::CrossThreadPromiseFulfiller<void>*> stopper;
    auto stopperFuture = stopper.get_future();
    thread = std::thread([&o, &pki, this, &bound, &stopper]() {
      auto io = kj::setupAsyncIo();
      auto stopped = kj::newPromiseAndCrossThreadFulfiller<void>();
      auto instance = startPlugin(io, o, {});
      auto transport = instance->bootstrap().castAs<schema::Transport>();
      setCredentials(io.waitScope, transport, pki, pki.manager);
      auto listen = transport.listenRequest();
      listen.setAddress("127.0.0.1:0");
      listen.setAcceptor(kj::heap<CountingAcceptor>(counter));
      auto listener = listen.send().wait(io.waitScope).getListener();
      bound.set_value(listener.addressRequest().send().wait(io.waitScope).getAddress());
      stopper.set_value(stopped.fulfiller.get());
      stopped.promise.wait(io.waitScope);
      instance->stop().wait(io.waitScope);
    });
    address = boundFuture.get();
    stop = stopperFuture.get();
  }
  ~ListeningNode() {
    stop->fulfill();
    thread.join();
  }

  Counter counter;
  std::string address;

 private:
  std::thread thread;
  const kj::CrossThreadPromiseFulfiller<void>* stop = nullptr;
};

schema::Connection::Client dialOnce(kj::WaitScope& ws, schema::Transport::Client& t, const std::string& address,
                                    Counter& inbound) {
  auto request = t.dialRequest();
  request.initTarget().setAddress(address);
  request.setInbound(kj::heap<CountingSink>(inbound));
  auto response = request.send().wait(ws);
  auto result = response.getResult();
  KJ_REQUIRE(result.isConnected(), "the bench's dial was refused", result.getRefused());
  return result.getConnected().getConnection();
}

kj::Promise<void> sendLoop(schema::Connection::Client connection, kj::ArrayPtr<const kj::byte> chunk, size_t left) {
  if (left == 0) return kj::READY_NOW;
  auto request = connection.sendRequest(capnp::MessageSize{chunk.size() / sizeof(capnp::word) + 8, 0});
  request.setChunk(chunk);
  return request.send().then([connection, chunk, left]() mutable { return sendLoop(kj::mv(connection), chunk, left - 1); });
}

void pluginLayer(const Options& o, const Pki& pki, std::vector<Result>& results) {
  ListeningNode node(o, pki);
  auto io = kj::setupAsyncIo();
  auto dialerNode = startPlugin(io, o, {{"reuse-connections", "false"}});
  auto dialer = dialerNode->bootstrap().castAs<schema::Transport>();
  setCredentials(io.waitScope, dialer, pki, pki.worker);
  Counter inbound;

  for (int i = 0; i < 20; ++i) dialOnce(io.waitScope, dialer, node.address, inbound);  // warm-up
  Measure m;
  for (size_t i = 0; i < o.handshakes; ++i) dialOnce(io.waitScope, dialer, node.address, inbound);
  double wall = m.wall(), cpu = m.cpu();
  results.push_back({"plugin", "handshakes", o.handshakes / wall, o.handshakes / cpu, TARGET_HANDSHAKES_PER_CORE,
                     o.outOfProcess ? "sequential dials, two nodes; plugins out of process (CPU: this process only)"
                                    : "sequential dials, two nodes (a kernel thread and a plugin each)"});

  size_t acceptedBefore = node.counter.accepted;
  auto connection = dialOnce(io.waitScope, dialer, node.address, inbound);
  auto& timer = io.provider->getTimer();
  while (node.counter.accepted == acceptedBefore) timer.afterDelay(1 * kj::MILLISECONDS).wait(io.waitScope);
  auto chunk = kj::heapArray<kj::byte>(o.chunk);
  for (size_t i = 0; i < o.chunk; ++i) chunk[i] = static_cast<kj::byte>(i * 131);
  size_t chunks = (o.mib << 20) / o.chunk;
  size_t before = node.counter.bytes;
  Measure b;
  auto sending = sendLoop(connection, chunk, chunks).eagerlyEvaluate(nullptr);
  while (node.counter.bytes - before < chunks * o.chunk) timer.afterDelay(100 * kj::MICROSECONDS).wait(io.waitScope);
  wall = b.wall();
  cpu = b.cpu();
  sending.wait(io.waitScope);
  double mib = double(chunks * o.chunk) / (1 << 20);
  results.push_back({"plugin", "bulk MiB", mib / wall, mib / cpu, TARGET_MIB_PER_S,
                     kj::str("Connection.send ", o.chunk / 1024, " KiB -> TLS -> the other node's ByteSink").cStr()});
  connection = nullptr;
  dialerNode->stop().wait(io.waitScope);
}

int run(int argc, char** argv) {
  Options o = parseOptions(argc, argv);
  kernel::initLogging(spdlog::level::warn);
  Pki pki;
  double loadBefore = loadAverage();
  std::vector<Result> results;
  if (o.tlsLayer) tlsLayer(o, pki, results);
  if (o.pluginLayer) pluginLayer(o, pki, results);
  double loadAfter = loadAverage();

  std::printf("\ntransport-tls: %zu mTLS handshakes, %zu MiB bulk on one connection, loopback; %s build\n"
              "%u CPUs, load average %.2f before, %.2f after\n\n",
              o.handshakes, o.mib, SWARM_BENCH_BUILD_TYPE, std::thread::hardware_concurrency(), loadBefore, loadAfter);
  std::printf("%-7s %-11s %12s %14s %8s  %s\n", "layer", "metric", "per s", "per CPU-s", "target", "note");
  for (auto& r : results) {
    bool met = r.perCpuSecond >= r.target;
    std::printf("%-7s %-11s %12.0f %14.0f %8.0f  %s%s\n", r.layer.c_str(), r.metric.c_str(), r.perSecond,
                r.perCpuSecond, r.target, met ? "" : "[below target per CPU-s] ", r.note.c_str());
  }
  std::printf("\n{\"bench\":\"transport-tls\",\"record\":\"setup\",\"buildType\":\"%s\",\"quick\":%s,\"cpus\":%u,"
              "\"loadBefore\":%.2f,\"loadAfter\":%.2f,\"handshakes\":%zu,\"mib\":%zu,\"chunk\":%zu,"
              "\"isolation\":\"%s\"}\n",
              SWARM_BENCH_BUILD_TYPE, o.quick ? "true" : "false", std::thread::hardware_concurrency(), loadBefore,
              loadAfter, o.handshakes, o.mib, o.chunk, o.outOfProcess ? "out-of-process" : "in-process");
  for (auto& r : results) {
    std::printf("{\"bench\":\"transport-tls\",\"record\":\"result\",\"layer\":\"%s\",\"metric\":\"%s\","
                "\"perSecond\":%.1f,\"perCpuSecond\":%.1f,\"target\":%.0f}\n",
                r.layer.c_str(), r.metric.c_str(), r.perSecond, r.perCpuSecond, r.target);
  }
  return 0;
}

}  // namespace
}  // namespace swarm::bench

int main(int argc, char** argv) {
  try {
    return swarm::bench::run(argc, argv);
  } catch (const swarm::bench::UsageError& e) {
    std::fprintf(stderr, "transport-tls-bench: %s\n", e.what());
    return 2;
  } catch (const kj::Exception& e) {
    std::fprintf(stderr, "transport-tls-bench: %s\n", e.getDescription().cStr());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "transport-tls-bench: %s\n", e.what());
    return 1;
  }
}
