// bench-echo: the smallest real plugin call. Runtime.inspect(taskId) answers with a ContainerInfo
// whose `error` carries taskId back, so a call moves the payload both ways through the real kind
// interface and does no other work. Every other Runtime method stays unimplemented.
#include <swarm/sdk.h>

namespace {

class BenchEcho final : public swarm::sdk::PluginServer<swarm::schema::Runtime> {
 public:
  kj::Promise<void> inspect(InspectContext context) override {
    auto info = context.getResults().initInfo();
    info.setError(context.getParams().getTaskId());
    info.setState(swarm::schema::ContainerState::MISSING);
    return kj::READY_NOW;
  }
};

}  // namespace

SWARM_PLUGIN(SWARM_PLUGIN_KIND_RUNTIME, "bench-echo", "0.1.0", BenchEcho)
