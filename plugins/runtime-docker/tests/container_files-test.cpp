// Secrets and configs as files: their targets and generated names, the bind mounts in the create
// body, the task directory names, and the files written on a tmpfs (/dev/shm) with their modes and
// owners. No daemon needed.
#include "container_files.h"

#include <catch2/catch.hpp>

#include <boost/json/parse.hpp>
#include <capnp/message.h>

#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace swarm::docker {
namespace {

uint64_t testSeed() {
  const char* env = getenv("RUNTIME_DOCKER_TEST_SEED");
  return env != nullptr ? strtoull(env, nullptr, 10) : 20261125;
}

struct Spec {
  capnp::MallocMessageBuilder message;
  schema::ContainerSpec::Builder spec = message.initRoot<schema::ContainerSpec>();
  capnp::MallocMessageBuilder dataMessage;
  capnp::List<schema::FileData>::Builder secrets =
      dataMessage.initRoot<schema::Runtime::CreateParams>().initSecrets(2);
  capnp::List<schema::FileData>::Builder configs =
      dataMessage.getRoot<schema::Runtime::CreateParams>().initConfigs(1);

  Spec() {
    auto refs = spec.initSecrets(2);
    refs[0].setSecretId("s1");
    refs[0].setSecretName("db-password");
    refs[0].initFile().setMode(0400);
    refs[1].setSecretId("s2");
    refs[1].setSecretName("cert");
    refs[1].initFile().setName("/etc/ssl/cert.pem");
    refs[1].getFile().setUid("1000");
    refs[1].getFile().setGid("50");
    auto crefs = spec.initConfigs(1);
    crefs[0].setConfigId("c1");
    crefs[0].setConfigName("app.conf");
    crefs[0].getTarget().initFile().setName("etc/app.conf");
    supply(secrets[0], "s1", "hunter2");
    supply(secrets[1], "s2", "CERT");
    supply(configs[0], "c1", "a=1");
  }
  static void supply(schema::FileData::Builder f, const char* id, const std::string& data) {
    f.setReferenceId(id);
    f.setData(capnp::Data::Reader(reinterpret_cast<const capnp::byte*>(data.data()), data.size()));
  }
  FilePlan plan() { return planFiles(spec.asReader(), secrets.asReader(), configs.asReader()); }
};

TEST_CASE("runtime-docker: files: secrets go under /run/secrets unless absolute, configs under /") {
  Spec s;
  auto plan = s.plan();
  REQUIRE(plan.error.empty());
  REQUIRE(plan.files.size() == 3);
  CHECK(plan.files[0].path == "/run/secrets/db-password");
  CHECK(plan.files[0].data == "hunter2");
  CHECK(plan.files[0].mode == 0400);
  CHECK(plan.files[1].path == "/etc/ssl/cert.pem");
  CHECK(plan.files[1].uid == 1000);
  CHECK(plan.files[1].gid == 50);
  CHECK(plan.files[1].mode == 0444);  // the schema's default
  CHECK(plan.files[2].path == "/etc/app.conf");
}

TEST_CASE("runtime-docker: files: unsupplied data, bad ids and escaping paths are refused") {
  {
    Spec s;
    s.secrets[1].setReferenceId("other");
    CHECK_THAT(s.plan().error, Catch::Contains("secret cert (s2) is referenced by the spec but its data was not supplied"));
  }
  {
    Spec s;
    s.spec.getSecrets()[1].getFile().setUid("www-data");
    CHECK_THAT(s.plan().error, Catch::Contains("must be numbers"));
  }
  {
    Spec s;
    s.spec.getSecrets()[0].getFile().setName("../../etc/passwd");
    CHECK_THAT(s.plan().error, Catch::Contains("'..'"));
  }
}

TEST_CASE("runtime-docker: files: host file names are generated, never the secret's name or target") {
  Spec s;
  s.spec.getSecrets()[0].setSecretName("../../etc/passwd");  // a name that would escape
  s.spec.getSecrets()[0].getFile().setName("db-password");
  auto plan = s.plan();
  REQUIRE(plan.error.empty());
  REQUIRE(plan.files.size() == 3);
  CHECK(plan.files[0].fileName == "secret-0");
  CHECK(plan.files[1].fileName == "secret-1");
  CHECK(plan.files[2].fileName == "config-0");
  CHECK(plan.files[0].path == "/run/secrets/db-password");
}

TEST_CASE("runtime-docker: files: two files on one target are refused") {
  Spec s;
  s.spec.getConfigs()[0].getTarget().getFile().setName("/etc/ssl/cert.pem");
  CHECK_THAT(s.plan().error, Catch::Contains("config app.conf: its target /etc/ssl/cert.pem is already the target"));
}

TEST_CASE("runtime-docker: files: each file becomes a read-only bind mount after the spec's mounts") {
  Spec s;
  auto plan = s.plan();
  REQUIRE(plan.error.empty());
  std::string body = R"({"Image":"x","HostConfig":{"NetworkMode":"none","Mounts":[{"Type":"tmpfs","Target":"/scratch"}]}})";
  auto out = boost::json::parse(addFileMounts(body, plan.files, "/run/tf/task-1"));
  auto& mounts = out.at("HostConfig").at("Mounts").as_array();
  REQUIRE(mounts.size() == 4);
  CHECK(mounts[0].at("Type") == "tmpfs");
  CHECK(mounts[1].at("Type") == "bind");
  CHECK(mounts[1].at("Source") == "/run/tf/task-1/secret-0");
  CHECK(mounts[1].at("Target") == "/run/secrets/db-password");
  CHECK(mounts[1].at("ReadOnly") == true);
  CHECK(mounts[2].at("Source") == "/run/tf/task-1/secret-1");
  CHECK(mounts[2].at("Target") == "/etc/ssl/cert.pem");
  CHECK(mounts[3].at("Source") == "/run/tf/task-1/config-0");
  CHECK(mounts[3].at("Target") == "/etc/app.conf");
  CHECK(out.at("HostConfig").at("NetworkMode") == "none");
  // No Mounts yet: the array is made; no files: the body is unchanged.
  auto bare = boost::json::parse(addFileMounts(R"({"HostConfig":{}})", plan.files, "/d"));
  CHECK(bare.at("HostConfig").at("Mounts").as_array().size() == 3);
  CHECK(addFileMounts(body, {}, "/d") == body);
}

TEST_CASE("runtime-docker: files: a task directory name is one safe component and decodes back") {
  CHECK(taskDirectoryName("abc123XYZ-_") == "abc123XYZ-_");
  CHECK(taskDirectoryName("..") == "%2E%2E");
  CHECK(taskDirectoryName("a/../b") == "a%2F%2E%2E%2Fb");
  CHECK(decodeTaskDirectory("a%2F%2E%2E%2Fb") == std::optional<std::string>("a/../b"));
  // Names this code did not make are not taken for task directories.
  CHECK_FALSE(decodeTaskDirectory("."));
  CHECK_FALSE(decodeTaskDirectory(".."));
  CHECK_FALSE(decodeTaskDirectory(""));
  CHECK_FALSE(decodeTaskDirectory("lost+found"));
  CHECK_FALSE(decodeTaskDirectory("%41"));  // 'A' is never encoded
  CHECK_FALSE(decodeTaskDirectory("%2"));
  uint64_t seed = testSeed();
  INFO("seed " << seed << " (RUNTIME_DOCKER_TEST_SEED replays)");
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 500; ++round) {
    std::string id(1 + rng() % 40, '\0');
    for (auto& c : id) c = static_cast<char>(rng());
    auto name = taskDirectoryName(id);
    CHECK(name.find('/') == std::string::npos);
    CHECK(name.find('.') == std::string::npos);
    CHECK(name.find('\0') == std::string::npos);
    CHECK(decodeTaskDirectory(name) == std::optional<std::string>(id));
  }
}

// A scratch base directory on /dev/shm (a tmpfs), removed afterwards.
struct TmpfsBase {
  std::string dir;
  TmpfsBase() {
    char dirTemplate[] = "/dev/shm/rdt-files-XXXXXX";
    REQUIRE(mkdtemp(dirTemplate) != nullptr);
    dir = std::string(dirTemplate) + "/task-files";  // not there yet: write() makes it
  }
  ~TmpfsBase() { system(("rm -rf " + dir.substr(0, dir.rfind('/'))).c_str()); }
};

std::string readAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

TEST_CASE("runtime-docker: files: written on a tmpfs with their modes and owners, then removed") {
  struct statfs fs;
  REQUIRE(statfs("/dev/shm", &fs) == 0);
  REQUIRE(inMemoryFilesystem(static_cast<int64_t>(fs.f_type)));
  TmpfsBase base;
  TaskFiles store(base.dir);
  // Changing a file's owner needs root; otherwise the files stay ours.
  uint32_t uid = geteuid() == 0 ? 1000 : geteuid(), gid = geteuid() == 0 ? 50 : getegid();
  std::string big(70000, '\0');
  std::mt19937_64 rng(testSeed());
  for (auto& c : big) c = static_cast<char>(rng());
  std::vector<ContainerFile> files{{"/run/secrets/a", "secret-0", "hunter2", 0400, uid, gid},
                                   {"/run/secrets/empty", "secret-1", "", 0444, 0, 0},
                                   {"/etc/big.bin", "config-0", big, 0640, 0, gid}};
  std::string taskId = "task/../1";
  REQUIRE(store.write(taskId, files) == "");
  std::string dir = store.directoryOf(taskId);
  CHECK(dir == base.dir + "/task%2F%2E%2E%2F1");
  struct stat st;
  REQUIRE(stat(base.dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  REQUIRE(stat(dir.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0700);
  CHECK(st.st_uid == geteuid());
  for (auto& f : files) {
    INFO(f.fileName);
    std::string path = dir + "/" + f.fileName;
    REQUIRE(stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == f.mode);
    CHECK(st.st_uid == (geteuid() == 0 ? f.uid : geteuid()));
    CHECK(st.st_gid == (geteuid() == 0 ? f.gid : getegid()));
    CHECK(readAll(path) == f.data);
  }
  auto listed = store.list();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].taskId == taskId);
  CHECK(listed[0].modifiedNanos > 0);

  // Written again (a create() that did not finish before): only the new files are there.
  REQUIRE(store.write(taskId, {files[0]}) == "");
  CHECK(access((dir + "/secret-0").c_str(), F_OK) == 0);
  CHECK(access((dir + "/config-0").c_str(), F_OK) != 0);

  CHECK(store.remove(taskId) == "");
  CHECK(access(dir.c_str(), F_OK) != 0);
  CHECK(store.list().empty());
  CHECK(store.remove(taskId) == "");  // missing is fine
  CHECK(TaskFiles(base.dir + "/absent").remove(taskId) == "");
}

TEST_CASE("runtime-docker: files: a files-dir that is not on a tmpfs is refused before anything is written") {
  // A directory on a disk filesystem: /var/tmp, or else the build directory.
  std::string disk;
  for (std::string candidate : {std::string("/var/tmp"), std::filesystem::current_path().string()}) {
    struct statfs fs;
    if (statfs(candidate.c_str(), &fs) == 0 && !inMemoryFilesystem(static_cast<int64_t>(fs.f_type))) {
      disk = candidate;
      break;
    }
  }
  if (disk.empty()) {
    WARN("no disk filesystem found to try (/var/tmp and the working directory are in memory)");
    return;
  }
  std::string base = disk + "/rdt-not-tmpfs-" + std::to_string(getpid()) + "/task-files";
  auto why = TaskFiles(base).write("t1", {{"/run/secrets/a", "secret-0", "hunter2", 0400, 0, 0}});
  CHECK_THAT(why, Catch::Contains("files-dir " + base + " is on a disk filesystem, not on a tmpfs"));
  CHECK_THAT(why, Catch::Contains("point the runtime-docker setting files-dir at a directory on a tmpfs") ||
                      Catch::Contains("Point the runtime-docker setting files-dir at a directory on a tmpfs"));
  CHECK(access(base.substr(0, base.rfind('/')).c_str(), F_OK) != 0);  // nothing was created
}

}  // namespace
}  // namespace swarm::docker
