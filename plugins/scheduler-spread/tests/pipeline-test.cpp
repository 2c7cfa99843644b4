// Every filter of the pipeline, and the explanations it gives, through the pure core: each case
// builds a snapshot and a batch, runs schedule() and asserts on the plan.
#include "harness.h"

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

namespace swarm::spread::test {
namespace {

using schema::NodeAvailability;
using schema::NodeRole;
using schema::NodeState;
using Protocol = schema::PortConfig::Protocol;

TaskDef withConstraints(std::vector<std::string> constraints) {
  TaskDef t;
  t.constraints = std::move(constraints);
  return t;
}

TEST_CASE("scheduler-spread: filter ready: only ready, active nodes take tasks; the reason names each state") {
  auto ns = nodes(7);
  ns[0].state = NodeState::DOWN;
  ns[0].availability = NodeAvailability::DRAIN;  // state is checked first
  ns[1].state = NodeState::DISCONNECTED;
  ns[2].state = NodeState::UNKNOWN;
  ns[3].availability = NodeAvailability::PAUSE;
  ns[4].availability = NodeAvailability::DRAIN;
  ns[5].availability = NodeAvailability::DRAIN;
  auto tasks = replicas("t", "svc-1", 3);
  auto result = runCore(ns, tasks);
  INFO(describe(result));
  CHECK(result.on("node-7") == 3);

  ns.pop_back();
  result = runCore(ns, tasks);
  INFO(describe(result));
  REQUIRE(result.unplaced.size() == 3);
  CHECK(result.reason("t-1") ==
        "no suitable node (2 nodes drained; 1 node down; 1 node disconnected; 1 node not ready; "
        "1 node paused)");
}

TEST_CASE("scheduler-spread: filter resources: CPU and memory against what is available, as the batch fills it") {
  auto ns = nodes(2);
  ns[0].memory = 3 * kGiB;
  ns[1].nanoCpus = kCpu;
  TaskDef shape;
  shape.memory = kGiB;
  shape.nanoCpus = kCpu / 2;
  auto result = runCore(ns, replicas("t", "svc-1", 6, shape));
  INFO(describe(result));
  CHECK(result.on("node-1") == 3);  // 3 GiB
  CHECK(result.on("node-2") == 2);  // 1 CPU
  REQUIRE(result.unplaced.size() == 1);
  CHECK(result.reason("t-6") ==
        "no suitable node (insufficient CPU on 1 node; insufficient memory on 1 node)");
}

TEST_CASE("scheduler-spread: filter resources: a task that reserves nothing is not limited by resources") {
  auto ns = nodes(1);
  ns[0].memory = -kGiB;  // overcommitted
  ns[0].nanoCpus = 0;
  auto result = runCore(ns, replicas("t", "svc-1", 4));
  INFO(describe(result));
  CHECK(result.on("node-1") == 4);
}

TEST_CASE("scheduler-spread: filter resources: discrete generic resources count named units too") {
  auto ns = nodes(3);
  ns[0].generic = {{"gpu", 2, ""}};
  ns[1].generic = {{"gpu", 0, "GPU-a"}, {"gpu", 0, "GPU-b"}, {"gpu", 0, "GPU-c"}, {"ssd", 5, ""}};
  // node-3 has none
  TaskDef shape;
  shape.generic = {{"gpu", 1, ""}};
  auto result = runCore(ns, replicas("t", "svc-1", 6, shape));
  INFO(describe(result));
  CHECK(result.on("node-1") == 2);
  CHECK(result.on("node-2") == 3);
  CHECK(result.on("node-3") == 0);
  CHECK(result.reason("t-6") == "no suitable node (insufficient generic resource gpu on 3 nodes)");

  // Two of a kind in one task, and a kind no node has.
  shape.generic = {{"gpu", 2, ""}};
  TaskDef none;
  none.generic = {{"fpga", 1, ""}};
  result = runCore(ns, concat({replicas("two", "svc-2", 3, shape), replicas("f", "svc-3", 1, none)}));
  INFO(describe(result));
  CHECK(result.nodeOf("two-1") == "node-1");
  CHECK(result.nodeOf("two-2") == "node-2");
  CHECK(result.reason("two-3") == "no suitable node (insufficient generic resource gpu on 3 nodes)");
  CHECK(result.reason("f-1") == "no suitable node (insufficient generic resource fpga on 3 nodes)");
}

TEST_CASE("scheduler-spread: filter resources: named generic resources are claimed by name") {
  auto ns = nodes(2);
  ns[0].generic = {{"gpu", 0, "GPU-a"}, {"gpu", 0, "GPU-b"}};
  ns[1].generic = {{"gpu", 0, "GPU-c"}};
  TaskDef counted = withConstraints({"node.id==node-1"});
  counted.generic = {{"gpu", 1, ""}};  // takes the first free unit by name: GPU-a
  TaskDef wantsA, wantsB, wantsC;
  wantsA.generic = {{"gpu", 0, "GPU-a"}};
  wantsB.generic = {{"gpu", 0, "GPU-b"}};
  wantsC.generic = {{"gpu", 0, "GPU-c"}};
  auto tasks = concat({replicas("counted", "svc-a", 1, counted), replicas("a", "svc-b", 1, wantsA),
                       replicas("b", "svc-c", 2, wantsB), replicas("c", "svc-d", 1, wantsC)});
  auto result = runCore(ns, tasks);
  INFO(describe(result));
  CHECK(result.nodeOf("counted-1") == "node-1");
  CHECK(result.reason("a-1") == "no suitable node (generic resource gpu=GPU-a unavailable on 2 nodes)");
  CHECK(result.nodeOf("b-1") == "node-1");
  CHECK(result.reason("b-2") == "no suitable node (generic resource gpu=GPU-b unavailable on 2 nodes)");
  CHECK(result.nodeOf("c-1") == "node-2");
}

TEST_CASE("scheduler-spread: filter constraints: node.id, node.hostname, node.role, node.platform.os/arch") {
  auto ns = nodes(3);
  ns[0].role = NodeRole::MANAGER;
  ns[0].hostname = "alpha";
  ns[1].hostname = "beta";
  ns[1].os = "windows";
  ns[1].arch = "amd64";
  ns[2].hostname = "gamma";
  ns[2].arch = "aarch64";
  auto tasks = concat({
      replicas("id", "svc-id", 1, withConstraints({"node.id==NODE-2"})),
      replicas("host", "svc-host", 1, withConstraints({"node.hostname==Gamma"})),
      replicas("mgr", "svc-mgr", 2, withConstraints({"node.role==manager"})),
      replicas("wrk", "svc-wrk", 2, withConstraints({"node.role!=manager"})),
      replicas("os", "svc-os", 1, withConstraints({"node.platform.os==windows"})),
      replicas("arch", "svc-arch", 1, withConstraints({"node.platform.arch==aarch64"})),
      // Constraints compare the architecture as reported; only the platform filter aliases it.
      replicas("alias", "svc-alias", 1, withConstraints({"node.platform.arch==arm64"})),
      replicas("both", "svc-both", 1,
               withConstraints({"node.role==manager", "node.hostname!=alpha"})),
  });
  auto result = runCore(ns, tasks);
  INFO(describe(result));
  CHECK(result.nodeOf("id-1") == "node-2");
  CHECK(result.nodeOf("host-1") == "node-3");
  CHECK(result.on("node-1") >= 2);
  CHECK(result.nodeOf("mgr-1") == "node-1");
  CHECK(result.nodeOf("mgr-2") == "node-1");
  CHECK(result.nodeOf("wrk-1") != result.nodeOf("wrk-2"));
  CHECK(result.nodeOf("wrk-1") != "node-1");
  CHECK(result.nodeOf("wrk-2") != "node-1");
  CHECK(result.nodeOf("os-1") == "node-2");
  CHECK(result.nodeOf("arch-1") == "node-3");
  CHECK(result.reason("alias-1") ==
        "no suitable node (constraint \"node.platform.arch==arm64\" not satisfied on 3 nodes)");
  // The first constraint that fails is the one counted.
  CHECK(result.reason("both-1") ==
        "no suitable node (constraint \"node.role==manager\" not satisfied on 2 nodes; constraint "
        "\"node.hostname!=alpha\" not satisfied on 1 node)");
}

TEST_CASE("scheduler-spread: filter constraints: label values ignore case, label keys do not, missing is empty") {
  auto ns = nodes(3);
  ns[0].labels = {{"zone", "EU"}, {"tier", "Gold"}};
  ns[1].labels = {{"Zone", "us"}};
  auto tasks = concat({
      replicas("eu", "svc-eu", 2, withConstraints({"node.labels.zone==eu"})),
      replicas("us", "svc-us", 1, withConstraints({"node.labels.Zone==US"})),
      replicas("lower", "svc-lower", 1, withConstraints({"node.labels.zone==us"})),
      replicas("not-eu", "svc-not-eu", 2, withConstraints({"node.labels.zone!=eu"})),
      replicas("gold", "svc-gold", 1, withConstraints({"node.labels.tier==GOLD"})),
  });
  auto result = runCore(ns, tasks);
  INFO(describe(result));
  CHECK(result.nodeOf("eu-1") == "node-1");
  CHECK(result.nodeOf("eu-2") == "node-1");
  CHECK(result.nodeOf("us-1") == "node-2");
  CHECK(result.reason("lower-1") ==
        "no suitable node (constraint \"node.labels.zone==us\" not satisfied on 3 nodes)");
  // node-2 has "Zone", not "zone"; node-3 has no label: both compare as "" != "eu".
  std::set<std::string> notEu{result.nodeOf("not-eu-1"), result.nodeOf("not-eu-2")};
  CHECK(notEu == std::set<std::string>{"node-2", "node-3"});
  CHECK(result.nodeOf("gold-1") == "node-1");
}

TEST_CASE("scheduler-spread: filter constraints: engine.labels are the engine's, not the node's") {
  auto ns = nodes(2);
  ns[0].engineLabels = {{"storage", "ssd"}};
  ns[1].engineLabels = {{"storage", "hdd"}};
  ns[1].labels = {{"storage", "ssd"}};
  auto tasks = concat({
      replicas("engine", "svc-e", 2, withConstraints({"engine.labels.storage==ssd"})),
      replicas("node", "svc-n", 2, withConstraints({"node.labels.storage==SSD"})),
  });
  auto result = runCore(ns, tasks);
  INFO(describe(result));
  CHECK(result.on("node-1") == 2);
  CHECK(result.nodeOf("engine-1") == "node-1");
  CHECK(result.nodeOf("engine-2") == "node-1");
  CHECK(result.nodeOf("node-1") == "node-2");
  CHECK(result.nodeOf("node-2") == "node-2");
}

TEST_CASE("scheduler-spread: filter constraints: node.ip matches an address or a CIDR block") {
  auto ns = nodes(4);
  ns[0].addr = "10.0.0.5";
  ns[1].addr = "10.1.0.9:2377";
  ns[2].addr = "2001:db8::7";
  // node-4 reports no address
  auto tasks = concat({
      replicas("one", "svc-one", 1, withConstraints({"node.ip==10.0.0.5"})),
      replicas("block", "svc-block", 1, withConstraints({"node.ip==10.1.0.0/16"})),
      replicas("v6", "svc-v6", 1, withConstraints({"node.ip==2001:db8::/32"})),
      replicas("outside", "svc-outside", 2, withConstraints({"node.ip!=10.0.0.0/8"})),
      replicas("bad", "svc-bad", 1, withConstraints({"node.ip!=not-an-ip"})),
  });
  auto result = runCore(ns, tasks);
  INFO(describe(result));
  CHECK(result.nodeOf("one-1") == "node-1");
  CHECK(result.nodeOf("block-1") == "node-2");
  CHECK(result.nodeOf("v6-1") == "node-3");
  std::set<std::string> outside{result.nodeOf("outside-1"), result.nodeOf("outside-2")};
  CHECK(outside == std::set<std::string>{"node-3", "node-4"});
  CHECK(result.reason("bad-1") ==
        "no suitable node (constraint \"node.ip!=not-an-ip\" never holds: not-an-ip is not an IP "
        "address or CIDR block)");
}

TEST_CASE("scheduler-spread: filter constraints: an unknown key never matches, and the reason says so") {
  auto ns = nodes(3);
  ns[2].availability = NodeAvailability::DRAIN;
  auto tasks = concat({replicas("eq", "svc-eq", 1, withConstraints({"node.name==x"})),
                       replicas("ne", "svc-ne", 1, withConstraints({"node.name!=x"}))});
  auto result = runCore(ns, tasks);
  INFO(describe(result));
  CHECK(result.reason("eq-1") ==
        "no suitable node (constraint \"node.name==x\" has an unknown key node.name and never "
        "holds (known keys: node.id, node.hostname, node.ip, node.role, node.platform.os, "
        "node.platform.arch, node.labels.<key>, engine.labels.<key>); 1 node drained)");
  CHECK(contains(result.reason("ne-1"), "\"node.name!=x\" has an unknown key node.name"));
}

TEST_CASE("scheduler-spread: filter constraints: a malformed constraint unplaces its tasks with the reason") {
  auto tasks = concat({replicas("bad", "svc-1", 2, withConstraints({"node.labels.zone=a"})),
                       replicas("good", "svc-1", 2)});
  auto result = runCore(nodes(2), tasks);
  INFO(describe(result));
  CHECK(result.reason("bad-1") ==
        "invalid constraint \"node.labels.zone=a\": expected <key>==<value> or <key>!=<value>");
  CHECK(result.reason("bad-2") == result.reason("bad-1"));
  CHECK(result.assigned.size() == 2);
}

TEST_CASE("scheduler-spread: filter platform: x86_64 is amd64, aarch64 is arm64, an empty field is any") {
  auto ns = nodes(4);
  ns[0].arch = "x86_64";
  ns[1].arch = "aarch64";
  ns[2].os = "windows";
  ns[2].arch = "amd64";
  ns[3].arch = "arm";
  auto platform = [](std::vector<std::pair<std::string, std::string>> p) {
    TaskDef t;
    t.platforms = std::move(p);
    return t;
  };
  auto tasks = concat({
      replicas("amd", "svc-amd", 2, platform({{"linux", "amd64"}})),
      replicas("arm", "svc-arm", 1, platform({{"linux", "arm64"}})),
      replicas("anyos", "svc-anyos", 2, platform({{"", "x86_64"}})),
      replicas("win", "svc-win", 1, platform({{"windows", ""}})),
      replicas("multi", "svc-multi", 2, platform({{"linux", "x86_64"}, {"linux", "aarch64"}})),
      replicas("none", "svc-none", 1, platform({{"linux", "s390x"}})),
      replicas("all", "svc-all", 4, platform({{"", ""}})),
  });
  auto result = runCore(ns, tasks);
  INFO(describe(result));
  CHECK(result.nodeOf("amd-1") == "node-1");
  CHECK(result.nodeOf("amd-2") == "node-1");
  CHECK(result.nodeOf("arm-1") == "node-2");
  std::set<std::string> anyOs{result.nodeOf("anyos-1"), result.nodeOf("anyos-2")};
  CHECK(anyOs == std::set<std::string>{"node-1", "node-3"});
  CHECK(result.nodeOf("win-1") == "node-3");
  std::set<std::string> multi{result.nodeOf("multi-1"), result.nodeOf("multi-2")};
  CHECK(multi == std::set<std::string>{"node-1", "node-2"});
  CHECK(result.reason("none-1") == "no suitable node (unsupported platform on 4 nodes)");
  std::set<std::string> all;
  for (int i = 1; i <= 4; ++i) all.insert(result.nodeOf("all-" + std::to_string(i)));
  CHECK(all.size() == 4);
}

TEST_CASE("scheduler-spread: filter host ports: not in use on the node, and never booked twice by the batch") {
  auto ns = nodes(3);
  ns[0].hostPorts = {{8080, Protocol::TCP}};
  ns[2].hostPorts = {{8080, Protocol::UDP}};
  TaskDef web;
  web.hostPorts = {{8080, Protocol::TCP}};
  TaskDef dns;
  dns.hostPorts = {{8080, Protocol::UDP}, {53, Protocol::UDP}};
  auto tasks = concat({replicas("web", "svc-web", 3, web), replicas("other", "svc-other", 1, web),
                       replicas("dns", "svc-dns", 3, dns)});
  auto result = runCore(ns, tasks);
  INFO(describe(result));
  // 8080/tcp is free on node-2 and node-3 (8080/udp is another port).
  CHECK(result.on("node-1") <= 1);
  std::set<std::string> web2{result.nodeOf("web-1"), result.nodeOf("web-2")};
  CHECK(web2 == std::set<std::string>{"node-2", "node-3"});
  CHECK(result.reason("web-3") ==
        "no suitable node (host-mode port 8080/tcp already in use on 3 nodes)");
  CHECK(result.reason("other-1") == result.reason("web-3"));
  // 8080/udp is taken on node-3 from the start; node-1 and node-2 each take one.
  std::set<std::string> dns2{result.nodeOf("dns-1"), result.nodeOf("dns-2")};
  CHECK(dns2 == std::set<std::string>{"node-1", "node-2"});
  CHECK(result.reason("dns-3") ==
        "no suitable node (host-mode port 8080/udp already in use on 3 nodes)");
}

TEST_CASE("scheduler-spread: filter max replicas: counts the service's tasks already there and this batch's") {
  auto ns = nodes(3);
  ns[0].tasksByService = {{"svc-1", 1}};
  ns[0].totalTasks = 1;
  TaskDef shape;
  shape.maxReplicas = 2;
  auto result = runCore(ns, replicas("t", "svc-1", 6, shape));
  INFO(describe(result));
  CHECK(result.on("node-1") == 1);
  CHECK(result.on("node-2") == 2);
  CHECK(result.on("node-3") == 2);
  CHECK(result.reason("t-6") == "no suitable node (max replicas per node (2) reached on 3 nodes)");
}

TEST_CASE("scheduler-spread: explanation: Swarm style, the parts with the most nodes first") {
  auto ns = nodes(5);
  for (int i = 0; i < 3; ++i) ns[i].memory = kGiB;
  ns[3].availability = NodeAvailability::DRAIN;
  ns[4].availability = NodeAvailability::DRAIN;
  TaskDef big;
  big.memory = 2 * kGiB;
  auto result = runCore(ns, replicas("t", "svc-1", 2, big));
  INFO(describe(result));
  CHECK(result.reason("t-1") == "no suitable node (insufficient memory on 3 nodes; 2 nodes drained)");
  CHECK(result.reason("t-2") == result.reason("t-1"));

  result = runCore({}, replicas("t", "svc-1", 1));
  CHECK(result.reason("t-1") == "no suitable node (the snapshot has no nodes)");
}

}  // namespace
}  // namespace swarm::spread::test
