#include "scheduler_server.h"

#include "scheduler.h"

namespace swarm::spread {

kj::Promise<void> SchedulerServer::schedule(ScheduleContext context) {
  auto params = context.getParams();
  Plan plan = spread::schedule(params.getNodes(), params.getTasks());
  writePlan(plan, context.getResults().initPlan());
  // The plan's strings pointed into the request; it is written now, so the request (tens of MiB
  // for a large batch) can go before the reply is sent.
  plan = Plan();
  context.releaseParams();
  return kj::READY_NOW;
}

}  // namespace swarm::spread
