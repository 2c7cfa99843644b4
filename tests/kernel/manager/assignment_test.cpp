// The node's side of incremental assignments: changes applied to the last complete set.
#include "agent.h"

#include <catch2/catch.hpp>

#include <set>
#include <string>

using namespace swarm::kernel;
namespace ss = swarm::store::schema;

namespace {

std::set<std::string> taskIds(ss::Assignment::Reader a) {
  std::set<std::string> ids;
  for (auto t : a.getTasks()) ids.emplace(t.getId().cStr());
  return ids;
}

}  // namespace

TEST_CASE("an incremental assignment replaces changed tasks, adds new ones and drops removed ones") {
  capnp::MallocMessageBuilder baseMessage;
  auto base = baseMessage.initRoot<ss::Assignment>();
  base.setSequence(1);
  auto tasks = base.initTasks(3);
  tasks[0].setId("a");
  tasks[1].setId("b");
  tasks[1].setDesiredState(swarm::schema::TASK_STATE_RUNNING);
  tasks[2].setId("c");
  auto secrets = base.initSecrets(2);
  secrets[0].setId("s1");
  secrets[1].setId("s2");
  base.initConfigs(1)[0].setId("c1");

  capnp::MallocMessageBuilder changesMessage;
  auto changes = changesMessage.initRoot<ss::Assignment>();
  changes.setSequence(2);
  changes.setIncremental(true);
  auto changed = changes.initTasks(2);
  changed[0].setId("b");
  changed[0].setDesiredState(swarm::schema::TASK_STATE_SHUTDOWN);
  changed[1].setId("d");
  changes.initRemovedTasks(1).set(0, "c");
  auto newSecrets = changes.initSecrets(1);
  newSecrets[0].setId("s2");
  newSecrets[0].initSpec().setData(kj::StringPtr("v2").asBytes());
  changes.initRemovedSecrets(1).set(0, "s1");

  capnp::MallocMessageBuilder outMessage;
  auto out = outMessage.initRoot<ss::Assignment>();
  mergeAssignment(base.asReader(), changes.asReader(), out);
  auto merged = out.asReader();

  CHECK_FALSE(merged.getIncremental());
  CHECK(merged.getSequence() == 2);
  CHECK(taskIds(merged) == std::set<std::string>{"a", "b", "d"});
  for (auto t : merged.getTasks()) {
    if (t.getId() == "b") CHECK(t.getDesiredState() == swarm::schema::TASK_STATE_SHUTDOWN);
  }
  REQUIRE(merged.getSecrets().size() == 1);
  CHECK(merged.getSecrets()[0].getId() == "s2");
  CHECK(merged.getSecrets()[0].getSpec().getData() == kj::StringPtr("v2").asBytes());
  REQUIRE(merged.getConfigs().size() == 1);
  CHECK(merged.getConfigs()[0].getId() == "c1");
  CHECK(merged.getRemovedTasks().size() == 0);
}

TEST_CASE("an empty incremental assignment leaves the set as it was") {
  capnp::MallocMessageBuilder baseMessage;
  auto base = baseMessage.initRoot<ss::Assignment>();
  base.initTasks(2)[0].setId("a");
  base.getTasks()[1].setId("b");
  capnp::MallocMessageBuilder changesMessage;
  auto changes = changesMessage.initRoot<ss::Assignment>();
  changes.setIncremental(true);
  capnp::MallocMessageBuilder outMessage;
  auto out = outMessage.initRoot<ss::Assignment>();
  mergeAssignment(base.asReader(), changes.asReader(), out);
  CHECK(taskIds(out.asReader()) == std::set<std::string>{"a", "b"});
}
