// A scheduler that stops serving on its own STOP_AFTER_MS after it starts: serve() returns
// SWARM_SERVE_FAILED while the kernel still expects it to run. Written without the SDK's serve
// helper, as a plugin author may, to show the kernel reports an in-process plugin that dies.
#include <swarm/sdk.h>

#include <capnp/rpc-twoparty.h>
#include <kj/async-io.h>

#include <cstring>

namespace {

constexpr int kStopAfterMs = 1500;

class StopsServing final : public swarm::sdk::PluginServer<swarm::schema::Scheduler> {
 public:
  kj::Promise<void> schedule(ScheduleContext) override {
    return KJ_EXCEPTION(UNIMPLEMENTED, "this test plugin schedules nothing");
  }
};

int32_t serveBriefly(int fd, char* error, size_t size);

constexpr swarm_plugin_descriptor descriptor = {
    sizeof(swarm_plugin_descriptor), SWARM_PLUGIN_ABI_VERSION, SWARM_PLUGIN_KIND_SCHEDULER, 0,
    "bad-stops-serving", "0.0.1", &serveBriefly};

int32_t serveBriefly(int fd, char* error, size_t size) {
  auto io = kj::setupAsyncIo();
  auto stream = io.lowLevelProvider->wrapSocketFd(fd, kj::LowLevelAsyncIoProvider::TAKE_OWNERSHIP);
  capnp::TwoPartyVatNetwork network(*stream, capnp::rpc::twoparty::Side::SERVER);
  auto server = kj::heap<StopsServing>();
  server->setDescriptor(descriptor);
  auto rpc = capnp::makeRpcServer(network, kj::mv(server));
  bool disconnected = network.onDisconnect()
                          .then([]() { return true; })
                          .exclusiveJoin(io.provider->getTimer()
                                             .afterDelay(kStopAfterMs * kj::MILLISECONDS)
                                             .then([]() { return false; }))
                          .wait(io.waitScope);
  if (disconnected) return SWARM_SERVE_OK;
  std::strncpy(error, "simulated crash: stopped serving on its own", size - 1);
  error[size - 1] = '\0';
  return SWARM_SERVE_FAILED;
}

}  // namespace

extern "C" SWARM_PLUGIN_EXPORT const swarm_plugin_descriptor* swarm_plugin_entry(uint32_t) {
  return &descriptor;
}
