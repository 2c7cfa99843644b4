#include "start_config.h"

#include "raft/message.h"

#include <kj/string.h>

#include <algorithm>
#include <cstring>
#include <random>

namespace swarm::raft::shell {

namespace {

std::string text(capnp::Text::Reader t) {
  return std::string(t.cStr(), t.size());
}

std::string problem(const kj::String& s) {
  return std::string(s.cStr());
}

}  // namespace

const char* bootName(Boot boot) {
  switch (boot) {
    case Boot::newCluster: return "newCluster";
    case Boot::join: return "join";
    case Boot::restart: return "restart";
    case Boot::forceNewCluster: return "forceNewCluster";
  }
  return "?";
}

Member fromSchema(schema::Member::Reader m) {
  return Member{m.getId(), text(m.getNodeId()), text(m.getAddress()), m.getVoter()};
}

void toSchema(const Member& member, schema::Member::Builder out) {
  out.setId(member.id);
  out.setNodeId(member.nodeId);
  out.setAddress(member.address);
  out.setVoter(member.voter);
}

Config StartSettings::coreConfig() const {
  Config c;
  c.id = memberId;
  c.electionTicks = electionTicks;
  c.heartbeatTicks = heartbeatTicks;
  c.maxMessageBytes = maxMessageBytes;
  c.maxInflightMessages = maxInflightMessages;
  c.logEntriesForSlowFollowers = logEntriesForSlowFollowers;
  c.randomSeed = randomSeed;
  return c;
}

std::string readStartConfig(schema::StartConfig::Reader config, StartSettings& out) {
  out = StartSettings{};
  out.memberId = config.getMemberId();
  out.storageDir = text(config.getStorageDir());
  if (out.storageDir.empty()) {
    return "start(): storageDir is empty; give the plugin a directory of its own for the Raft log";
  }
  if (out.storageDir.find('\0') != std::string::npos) {
    return "start(): storageDir contains a NUL byte; pass a plain path";
  }
  auto key = config.getDataKey();
  if (key.size() != out.dataKey.size()) {
    return problem(kj::str("start(): dataKey is ", key.size(),
                           " bytes; it must be exactly 32 (the node's data key)"));
  }
  memcpy(out.dataKey.data(), key.begin(), key.size());

  auto bootstrap = config.getBootstrap();
  switch (bootstrap.which()) {
    case schema::StartConfig::Bootstrap::NEW_CLUSTER: {
      out.boot = Boot::newCluster;
      auto list = bootstrap.getNewCluster();
      if (list.size() == 0) {
        return "start(): bootstrap.newCluster lists no members; list the initial members, this "
               "node included";
      }
      for (auto m : list) {
        Member member = fromSchema(m);
        if (member.id == 0) {
          return "start(): bootstrap.newCluster has a member with ID 0; give every initial "
                 "member a non-zero random ID";
        }
        for (const Member& seen : out.initialMembers) {
          if (seen.id == member.id) {
            return problem(kj::str("start(): bootstrap.newCluster lists member ID ", member.id,
                                   " twice; member IDs must be unique"));
          }
        }
        out.initialMembers.push_back(std::move(member));
      }
      break;
    }
    case schema::StartConfig::Bootstrap::JOIN: out.boot = Boot::join; break;
    case schema::StartConfig::Bootstrap::RESTART: out.boot = Boot::restart; break;
    case schema::StartConfig::Bootstrap::FORCE_NEW_CLUSTER: out.boot = Boot::forceNewCluster; break;
    default:
      return "start(): bootstrap is not one this plugin knows (newCluster, join, restart, "
             "forceNewCluster); update the plugin";
  }

  if (out.memberId == 0) {
    if (out.boot == Boot::join) {
      return "start(): bootstrap.join with memberId 0; call addMember on the leader first (id 0 "
             "assigns one) and start with the member ID it returns";
    }
    return "start(): memberId is 0; pass this node's non-zero member ID";
  }
  if (out.boot == Boot::newCluster &&
      std::none_of(out.initialMembers.begin(), out.initialMembers.end(),
                   [&](const Member& m) { return m.id == out.memberId; })) {
    return problem(kj::str("start(): memberId ", out.memberId,
                           " is not in bootstrap.newCluster; list this node among the initial "
                           "members"));
  }

  out.tickMillis = config.getTickMillis();
  out.electionTicks = config.getElectionTicks();
  out.heartbeatTicks = config.getHeartbeatTicks();
  if (out.tickMillis == 0 || out.tickMillis > 60000) {
    return problem(kj::str("start(): tickMillis is ", out.tickMillis,
                           "; it must be from 1 to 60000 (default 100)"));
  }
  if (out.heartbeatTicks == 0) {
    return "start(): heartbeatTicks is 0; it must be at least 1 (default 1)";
  }
  if (out.electionTicks <= out.heartbeatTicks) {
    return problem(kj::str("start(): electionTicks (", out.electionTicks,
                           ") must be larger than heartbeatTicks (", out.heartbeatTicks,
                           "); the defaults are 10 and 1"));
  }
  if (uint64_t(out.electionTicks) * out.tickMillis > 3600000) {
    return problem(kj::str("start(): electionTicks x tickMillis is ",
                           uint64_t(out.electionTicks) * out.tickMillis,
                           " ms; keep the election timeout under an hour"));
  }
  out.snapshotInterval = config.getSnapshotInterval();
  if (out.snapshotInterval == 0) {
    return "start(): snapshotInterval is 0; it must be at least 1 applied entry (default 10000)";
  }
  out.logEntriesForSlowFollowers = config.getLogEntriesForSlowFollowers();
  out.maxMessageBytes = config.getMaxMessageBytes();
  if (out.maxMessageBytes < 4096 || out.maxMessageBytes > kDefaultMaxDecodeBytes) {
    return problem(kj::str("start(): maxMessageBytes is ", out.maxMessageBytes,
                           "; it must be from 4096 to ", kDefaultMaxDecodeBytes,
                           " (default 1048576)"));
  }
  out.maxInflightMessages = config.getMaxInflightMessages();
  if (out.maxInflightMessages == 0) {
    return "start(): maxInflightMessages is 0; it must be at least 1 (default 256)";
  }
  out.randomSeed = config.getRandomSeed();
  if (out.randomSeed == 0) {
    std::random_device device;
    out.randomSeed = (uint64_t(device()) << 32) | device();
    if (out.randomSeed == 0) out.randomSeed = 1;
  }
  std::string why = out.coreConfig().validate();
  if (!why.empty()) return "start(): " + why;
  return {};
}

}  // namespace swarm::raft::shell
