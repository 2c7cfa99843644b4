#include "container_files.h"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <kj/io.h>

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <set>

namespace swarm::docker {
namespace {

namespace json = boost::json;

// A numeric uid/gid from the spec ("" = 0); false when it is not a number.
bool parseId(capnp::Text::Reader text, uint32_t& out) {
  if (text.size() == 0) {
    out = 0;
    return true;
  }
  uint64_t v = 0;
  for (char c : std::string_view(text.cStr(), text.size())) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
    if (v > 0xffffffffu) return false;
  }
  out = static_cast<uint32_t>(v);
  return true;
}

// Why `path` is not a usable absolute file path ("" when it is).
std::string checkPath(const std::string& path) {
  if (path.size() < 2 || path[0] != '/' || path.back() == '/') return "is not a file path";
  size_t at = 1;
  while (at <= path.size()) {
    size_t end = path.find('/', at);
    if (end == std::string::npos) end = path.size();
    std::string_view part(path.data() + at, end - at);
    if (part.empty() || part == "." || part == "..") return "has an empty, '.' or '..' component";
    at = end + 1;
  }
  if (path.size() > 255) return "is longer than 255 bytes";
  return {};
}

std::string addFile(FilePlan& plan, const char* what, capnp::Text::Reader name,
                    schema::FileTarget::Reader target, const std::string& path,
                    capnp::Data::Reader data, unsigned index) {
  ContainerFile file;
  file.path = path;
  file.fileName = std::string(what) + "-" + std::to_string(index);
  if (auto why = checkPath(path); !why.empty()) {
    return std::string(what) + " " + name.cStr() + ": its target " + path + " " + why;
  }
  for (auto& other : plan.files) {
    if (other.path == path) {
      return std::string(what) + " " + name.cStr() + ": its target " + path +
             " is already the target of another secret or config; give each its own target";
    }
  }
  if (!parseId(target.getUid(), file.uid) || !parseId(target.getGid(), file.gid)) {
    return std::string(what) + " " + name.cStr() + ": uid '" + target.getUid().cStr() + "' and gid '" +
           target.getGid().cStr() + "' must be numbers";
  }
  file.mode = target.getMode() & 07777;
  file.data.assign(reinterpret_cast<const char*>(data.begin()), data.size());
  plan.files.push_back(std::move(file));
  return {};
}

kj::Maybe<capnp::Data::Reader> findData(capnp::List<schema::FileData>::Reader supplied,
                                        capnp::Text::Reader id) {
  for (auto f : supplied) {
    if (f.getReferenceId() == id) return f.getData();
  }
  return nullptr;
}

}  // namespace

FilePlan planFiles(schema::ContainerSpec::Reader spec, capnp::List<schema::FileData>::Reader secrets,
                   capnp::List<schema::FileData>::Reader configs) {
  FilePlan plan;
  unsigned index = 0;
  for (auto ref : spec.getSecrets()) {
    auto name = ref.getSecretName();
    KJ_IF_MAYBE (data, findData(secrets, ref.getSecretId())) {
      std::string target = ref.getFile().getName().cStr();
      if (target.empty()) target = name.cStr();
      std::string path = target[0] == '/' ? target : "/run/secrets/" + target;
      if (auto why = addFile(plan, "secret", name, ref.getFile(), path, *data, index++); !why.empty()) {
        plan.error = why;
        return plan;
      }
    } else {
      plan.error = std::string("secret ") + name.cStr() + " (" + ref.getSecretId().cStr() +
                   ") is referenced by the spec but its data was not supplied to create()";
      return plan;
    }
  }
  index = 0;
  for (auto ref : spec.getConfigs()) {
    if (!ref.getTarget().isFile()) continue;  // a runtime config is not a file
    auto name = ref.getConfigName();
    KJ_IF_MAYBE (data, findData(configs, ref.getConfigId())) {
      std::string target = ref.getTarget().getFile().getName().cStr();
      if (target.empty()) target = name.cStr();
      std::string path = target[0] == '/' ? target : "/" + target;
      if (auto why = addFile(plan, "config", name, ref.getTarget().getFile(), path, *data, index++);
          !why.empty()) {
        plan.error = why;
        return plan;
      }
    } else {
      plan.error = std::string("config ") + name.cStr() + " (" + ref.getConfigId().cStr() +
                   ") is referenced by the spec but its data was not supplied to create()";
      return plan;
    }
  }
  return plan;
}

std::string addFileMounts(const std::string& body, const std::vector<ContainerFile>& files,
                          const std::string& hostDirectory) {
  if (files.empty()) return body;
  json::value root = json::parse(body);
  auto& host = root.as_object()["HostConfig"];
  if (!host.is_object()) host = json::object();
  auto& mounts = host.as_object()["Mounts"];
  if (!mounts.is_array()) mounts = json::array();
  for (auto& f : files) {
    json::object mount;
    mount["Type"] = "bind";
    mount["Source"] = hostDirectory + "/" + f.fileName;
    mount["Target"] = f.path;
    mount["ReadOnly"] = true;
    mounts.as_array().emplace_back(std::move(mount));
  }
  return json::serialize(root);
}

std::string taskDirectoryName(std::string_view taskId) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : taskId) {
    auto u = static_cast<unsigned char>(c);
    if (isalnum(u) || c == '_' || c == '-') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

std::optional<std::string> decodeTaskDirectory(std::string_view name) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (name.empty()) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    auto u = static_cast<unsigned char>(name[i]);
    if (isalnum(u) || name[i] == '_' || name[i] == '-') {
      out += name[i];
    } else if (name[i] == '%' && i + 2 < name.size() && hex(name[i + 1]) >= 0 && hex(name[i + 2]) >= 0) {
      out += static_cast<char>(hex(name[i + 1]) * 16 + hex(name[i + 2]));
      i += 2;
    } else {
      return std::nullopt;
    }
  }
  if (taskDirectoryName(out) != name) return std::nullopt;  // e.g. %41 for a plain 'A'
  return out;
}

bool inMemoryFilesystem(int64_t statfsType) {
  return statfsType == static_cast<int64_t>(TMPFS_MAGIC) || statfsType == static_cast<int64_t>(RAMFS_MAGIC);
}

namespace {

std::string failure(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + strerror(errno);
}

// Removes `name` under `parent`: a directory with everything in it, or a file. Symbolic links
// are removed, never followed. Returns why it failed ("" also when it is not there).
std::string removeEntry(int parent, const std::string& name, const std::string& shownPath) {
  kj::AutoCloseFd dir(openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (dir.get() < 0) {
    if (errno == ENOENT) return {};
    if (errno != ENOTDIR && errno != ELOOP) return failure("opening", shownPath);
    if (unlinkat(parent, name.c_str(), 0) != 0 && errno != ENOENT) return failure("removing", shownPath);
    return {};
  }
  DIR* listing = fdopendir(dup(dir.get()));
  if (listing == nullptr) return failure("listing", shownPath);
  std::vector<std::string> names;
  while (auto* e = readdir(listing)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(listing);
  for (auto& n : names) {
    if (auto why = removeEntry(dir.get(), n, shownPath + "/" + n); !why.empty()) return why;
  }
  if (unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) return failure("removing", shownPath);
  return {};
}

std::string notInMemory(const std::string& base, const char* type) {
  return "files-dir " + base + " is on " + type +
         ", not on a tmpfs: secrets and configs would be written to disk in clear. Point the "
         "runtime-docker setting files-dir at a directory on a tmpfs (e.g. under /run or /dev/shm)";
}

// Creates `path` and its missing parents with mode 0700, refusing before creating anything when
// the filesystem they would be on is not in memory.
std::string makeBase(const std::string& path) {
  // The nearest existing ancestor tells which filesystem new directories would land on.
  std::string existing = path;
  struct statfs fs;
  while (statfs(existing.c_str(), &fs) != 0) {
    if (errno != ENOENT) return failure("checking the filesystem of", existing);
    auto slash = existing.rfind('/');
    existing = slash == 0 ? "/" : existing.substr(0, slash);
  }
  if (!inMemoryFilesystem(static_cast<int64_t>(fs.f_type))) return notInMemory(path, "a disk filesystem");
  for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    std::string prefix = slash == std::string::npos ? path : path.substr(0, slash);
    if (mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) return failure("creating", prefix);
    if (slash == std::string::npos) break;
  }
  return {};
}

}  // namespace

std::string TaskFiles::write(std::string_view taskId, const std::vector<ContainerFile>& files) const {
  if (auto why = makeBase(base); !why.empty()) return why;
  kj::AutoCloseFd baseFd(open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (baseFd.get() < 0) return failure("opening", base);
  // Checked again on the directory itself: it may be a mount point of its own.
  struct statfs fs;
  if (fstatfs(baseFd.get(), &fs) != 0) return failure("checking the filesystem of", base);
  if (!inMemoryFilesystem(static_cast<int64_t>(fs.f_type))) return notInMemory(base, "a disk filesystem");

  std::string name = taskDirectoryName(taskId);
  std::string dirPath = base + "/" + name;
  if (name.size() > 255) return "task ID " + std::string(taskId) + " is too long to name a directory";
  // A directory left by an earlier create() that did not finish: start from nothing.
  if (auto why = removeEntry(baseFd.get(), name, dirPath); !why.empty()) return why;
  if (mkdirat(baseFd.get(), name.c_str(), 0700) != 0) return failure("creating", dirPath);
  auto undo = [&](std::string why) {
    removeEntry(baseFd.get(), name, dirPath);
    return why;
  };
  kj::AutoCloseFd dir(openat(baseFd.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (dir.get() < 0) return undo(failure("opening", dirPath));
  if (fchmod(dir.get(), 0700) != 0) return undo(failure("setting the mode of", dirPath));  // umask
  for (auto& f : files) {
    std::string path = dirPath + "/" + f.fileName;
    kj::AutoCloseFd file(openat(dir.get(), f.fileName.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (file.get() < 0) return undo(failure("creating", path));
    for (size_t at = 0; at < f.data.size();) {
      ssize_t n = ::write(file.get(), f.data.data() + at, f.data.size() - at);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return undo(failure("writing", path));
      at += static_cast<size_t>(n);
    }
    // Owner before mode: chown clears set-id bits.
    if (fchown(file.get(), f.uid, f.gid) != 0) {
      return undo(failure("setting owner " + std::to_string(f.uid) + ":" + std::to_string(f.gid) + " of", path));
    }
    if (fchmod(file.get(), f.mode) != 0) return undo(failure("setting the mode of", path));
  }
  return {};
}

std::string TaskFiles::remove(std::string_view taskId) const {
  kj::AutoCloseFd baseFd(open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (baseFd.get() < 0) return errno == ENOENT ? std::string() : failure("opening", base);
  std::string name = taskDirectoryName(taskId);
  return removeEntry(baseFd.get(), name, base + "/" + name);
}

std::vector<TaskFiles::Entry> TaskFiles::list() const {
  std::vector<Entry> out;
  DIR* listing = opendir(base.c_str());
  if (listing == nullptr) return out;
  while (auto* e = readdir(listing)) {
    auto taskId = decodeTaskDirectory(e->d_name);
    if (!taskId) continue;  // ".", "..", or not ours
    struct stat st;
    if (fstatat(dirfd(listing), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) continue;
    out.push_back({*taskId, static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec});
  }
  closedir(listing);
  return out;
}

}  // namespace swarm::docker
