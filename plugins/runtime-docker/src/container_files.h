// Secrets and configs as files inside a container: where each goes (Swarm's targets) and the tar
// stream, built in memory, that PUT /containers/{id}/archive unpacks into the created container.
// Neither the plugin nor this code ever writes the data to the host's disk.
#pragma once

#include <swarm/schema/runtime.capnp.h>

#include <cstdint>
#include <string>
#include <vector>

namespace swarm::docker {

struct ContainerFile {
  std::string path;  // absolute, inside the container
  std::string data;
  uint32_t mode = 0444;
  uint32_t uid = 0;
  uint32_t gid = 0;
};

struct FilePlan {
  std::string error;  // non-empty: the spec is refused with this message
  std::vector<ContainerFile> files;
};

// Matches the spec's secret and config references with the data the caller supplied (by
// referenceId). A secret's file goes to /run/secrets/<target> unless the target is absolute; a
// config's to /<target> (runtime-target configs get no file).
FilePlan planFiles(schema::ContainerSpec::Reader spec, capnp::List<schema::FileData>::Reader secrets,
                   capnp::List<schema::FileData>::Reader configs);

// A POSIX ustar archive of `files` relative to /, with their parent directories (0755, root).
std::string tarArchive(const std::vector<ContainerFile>& files);

}  // namespace swarm::docker
