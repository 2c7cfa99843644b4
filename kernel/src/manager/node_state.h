// The node's own state file (<state-dir>/node-state.bin): identity, role, certificate and keys.
// Written atomically (temporary file, fsync, rename, fsync of the directory) with mode 0600, so
// a kill -9 leaves either the old file or the new one. Absent means: not in a swarm.
#pragma once

#include <swarm/store/node_state.capnp.h>

#include <capnp/message.h>
#include <kj/memory.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace swarm::kernel {

class NodeStateFile {
 public:
  explicit NodeStateFile(std::filesystem::path stateDir);

  const std::filesystem::path& path() const { return file; }

  // nullopt when the file does not exist. A damaged file throws UserError naming it.
  std::optional<kj::Own<capnp::MessageReader>> read() const;
  void write(store::schema::NodeState::Reader state) const;
  // Leaving the swarm: the file goes (absent is fine).
  void remove() const;

 private:
  std::filesystem::path dir;
  std::filesystem::path file;
};

// The certificates of a PEM bundle (NodeState.rootCerts holds every root the node trusts), one
// PEM block each, in order; text outside the blocks is dropped.
std::vector<std::string> splitPemCertificates(std::string_view bundle);

}  // namespace swarm::kernel
