// Secrets and configs as files inside a container, the way Swarm's executor does it: each file is
// written to a per-task directory on a host tmpfs and bind-mounted read-only onto its target in
// the container, so the data never reaches a disk in clear (not the host's, not the container's
// writable layer).
//
// planFiles and addFileMounts are pure (tests/container_files-test.cpp); TaskFiles does the host
// I/O under the `files-dir` setting.
#pragma once

#include <swarm/schema/runtime.capnp.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace swarm::docker {

struct ContainerFile {
  std::string path;      // absolute, inside the container
  std::string fileName;  // in the task's host directory: generated (secret-0, config-1...), never
                         // the secret's name, so no name can escape the directory
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
// config's to /<target> (runtime-target configs get no file). Two files on one target are refused.
FilePlan planFiles(schema::ContainerSpec::Reader spec, capnp::List<schema::FileData>::Reader secrets,
                   capnp::List<schema::FileData>::Reader configs);

// The create body `body` (JSON for POST /containers/create) with one read-only bind mount per
// file, from `hostDirectory`/<fileName> onto the file's path, appended to HostConfig.Mounts.
std::string addFileMounts(const std::string& body, const std::vector<ContainerFile>& files,
                          const std::string& hostDirectory);

// The name of a task's directory: the task ID with every byte outside [A-Za-z0-9_-] as %XX, so it
// is one path component that is never "." or "..". decodeTaskDirectory reverses it (nullopt for a
// name this code did not make).
std::string taskDirectoryName(std::string_view taskId);
std::optional<std::string> decodeTaskDirectory(std::string_view name);

// Whether the filesystem type from statfs() keeps its data in memory only (tmpfs or ramfs).
bool inMemoryFilesystem(int64_t statfsType);

// The per-task file directories under one base directory (the `files-dir` setting) on the host.
class TaskFiles {
 public:
  explicit TaskFiles(std::string baseDirectory) : base(std::move(baseDirectory)) {}

  const std::string& baseDirectory() const { return base; }
  std::string directoryOf(std::string_view taskId) const { return base + "/" + taskDirectoryName(taskId); }

  // Writes `files` into the task's directory (created 0700, emptied first when it exists), each
  // with its mode, uid and gid. Refuses when the base directory is not on a tmpfs or ramfs.
  // Returns why it failed ("" on success); on failure nothing of the task is left behind.
  std::string write(std::string_view taskId, const std::vector<ContainerFile>& files) const;

  // Removes the task's directory and its files; a missing one is fine. Returns why it failed.
  std::string remove(std::string_view taskId) const;

  struct Entry {
    std::string taskId;
    int64_t modifiedNanos = 0;  // the directory's mtime
  };
  // The task directories under the base directory (none when it does not exist).
  std::vector<Entry> list() const;

 private:
  std::string base;
};

}  // namespace swarm::docker
