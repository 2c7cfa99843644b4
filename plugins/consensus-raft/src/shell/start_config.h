// StartConfig (sdk/schema/consensus.capnp) read into plain values and checked, so that start()
// refuses a bad configuration with one clear line before it touches the storage directory.
#pragma once

#include "raft/core.h"

#include <swarm/schema/consensus.capnp.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace swarm::raft::shell {

enum class Boot { newCluster, join, restart, forceNewCluster };
const char* bootName(Boot boot);

struct StartSettings {
  MemberId memberId = 0;
  std::string storageDir;
  std::array<uint8_t, 32> dataKey{};
  Boot boot = Boot::restart;
  std::vector<Member> initialMembers;  // newCluster only
  uint32_t tickMillis = 100;
  uint32_t electionTicks = 10;
  uint32_t heartbeatTicks = 1;
  uint64_t snapshotInterval = 10000;
  uint64_t logEntriesForSlowFollowers = 500;
  uint64_t maxMessageBytes = 1u << 20;
  uint32_t maxInflightMessages = 256;
  uint64_t randomSeed = 0;  // 0 = pick one

  Config coreConfig() const;
};

std::string readStartConfig(schema::StartConfig::Reader config, StartSettings& out);
// "" when usable; otherwise one line naming the field, what is wrong and what to do. The data
// key is copied out and nothing else of the reader is kept.

Member fromSchema(schema::Member::Reader member);
void toSchema(const Member& member, schema::Member::Builder out);

}  // namespace swarm::raft::shell
