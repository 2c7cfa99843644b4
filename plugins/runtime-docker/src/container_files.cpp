#include "container_files.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>

namespace swarm::docker {
namespace {

constexpr size_t kBlock = 512;

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
                    capnp::Data::Reader data) {
  ContainerFile file;
  file.path = path;
  if (auto why = checkPath(path); !why.empty()) {
    return std::string(what) + " " + name.cStr() + ": its target " + path + " " + why;
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

void octal(char* field, size_t width, uint64_t value) {
  // width-1 zero-padded octal digits and a NUL, as ustar writes them.
  field[width - 1] = '\0';
  for (size_t i = width - 1; i-- > 0;) {
    field[i] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
}

void header(std::string& out, const std::string& relative, bool directory, uint64_t size,
            uint32_t mode, uint32_t uid, uint32_t gid) {
  char h[kBlock];
  memset(h, 0, sizeof(h));
  // Names over 100 bytes are split at a '/' into prefix (155) and name (100).
  std::string name = relative, prefix;
  if (name.size() > 100) {
    // The first '/' that leaves at most 100 bytes after it and at most 155 before it.
    for (size_t cut = name.find('/'); cut != std::string::npos && cut <= 155; cut = name.find('/', cut + 1)) {
      if (name.size() - cut - 1 <= 100 && cut + 1 < name.size()) {
        prefix = name.substr(0, cut);
        name = name.substr(cut + 1);
        break;
      }
    }
  }
  memcpy(h, name.data(), std::min<size_t>(name.size(), 100));
  octal(h + 100, 8, mode);
  octal(h + 108, 8, uid);
  octal(h + 116, 8, gid);
  octal(h + 124, 12, size);
  octal(h + 136, 12, 0);  // mtime: the epoch, so the archive is the same every time
  h[156] = directory ? '5' : '0';
  memcpy(h + 257, "ustar", 6);
  memcpy(h + 263, "00", 2);
  memcpy(h + 345, prefix.data(), std::min<size_t>(prefix.size(), 155));
  memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  snprintf(h + 148, 8, "%06o", sum);  // six digits, NUL, and the space already there
  h[155] = ' ';
  out.append(h, sizeof(h));
}

}  // namespace

FilePlan planFiles(schema::ContainerSpec::Reader spec, capnp::List<schema::FileData>::Reader secrets,
                   capnp::List<schema::FileData>::Reader configs) {
  FilePlan plan;
  for (auto ref : spec.getSecrets()) {
    auto name = ref.getSecretName();
    KJ_IF_MAYBE (data, findData(secrets, ref.getSecretId())) {
      std::string target = ref.getFile().getName().cStr();
      if (target.empty()) target = name.cStr();
      std::string path = target[0] == '/' ? target : "/run/secrets/" + target;
      if (auto why = addFile(plan, "secret", name, ref.getFile(), path, *data); !why.empty()) {
        plan.error = why;
        return plan;
      }
    } else {
      plan.error = std::string("secret ") + name.cStr() + " (" + ref.getSecretId().cStr() +
                   ") is referenced by the spec but its data was not supplied to create()";
      return plan;
    }
  }
  for (auto ref : spec.getConfigs()) {
    if (!ref.getTarget().isFile()) continue;  // a runtime config is not a file
    auto name = ref.getConfigName();
    KJ_IF_MAYBE (data, findData(configs, ref.getConfigId())) {
      std::string target = ref.getTarget().getFile().getName().cStr();
      if (target.empty()) target = name.cStr();
      std::string path = target[0] == '/' ? target : "/" + target;
      if (auto why = addFile(plan, "config", name, ref.getTarget().getFile(), path, *data);
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

std::string tarArchive(const std::vector<ContainerFile>& files) {
  std::string out;
  std::set<std::string> directories;
  for (auto& f : files) {
    std::string relative = f.path.substr(1);
    for (size_t slash = relative.find('/'); slash != std::string::npos;
         slash = relative.find('/', slash + 1)) {
      std::string dir = relative.substr(0, slash + 1);
      if (directories.insert(dir).second) header(out, dir, true, 0, 0755, 0, 0);
    }
    header(out, relative, false, f.data.size(), f.mode, f.uid, f.gid);
    out += f.data;
    out.append((kBlock - f.data.size() % kBlock) % kBlock, '\0');
  }
  out.append(2 * kBlock, '\0');  // end of archive
  return out;
}

}  // namespace swarm::docker
