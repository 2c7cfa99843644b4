// Secrets and configs as files: their targets and the in-memory tar, checked by unpacking it with
// GNU tar (an independent reader).
#include "container_files.h"

#include <catch2/catch.hpp>

#include <capnp/message.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

namespace swarm::docker {
namespace {

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

TEST_CASE("runtime-docker: files: the archive unpacks with GNU tar to the same files and modes") {
  std::mt19937_64 rng(20261125);
  std::vector<ContainerFile> files;
  files.push_back({"/run/secrets/a", "hunter2", 0400, 0, 0});
  files.push_back({"/run/secrets/empty", "", 0444, 0, 0});
  std::string big(70000, '\0');
  for (auto& c : big) c = static_cast<char>(rng());
  files.push_back({"/etc/big.bin", big, 0640, 0, 0});
  // A long path needs ustar's prefix field.
  std::string deep = "/" + std::string(90, 'd') + "/" + std::string(60, 'e') + "/file";
  files.push_back({deep, "deep", 0444, 0, 0});

  char dirTemplate[] = "/tmp/rdt-tar-XXXXXX";
  REQUIRE(mkdtemp(dirTemplate) != nullptr);
  std::string dir = dirTemplate;
  std::string archive = dir + ".tar";
  { std::ofstream(archive, std::ios::binary) << tarArchive(files); }
  REQUIRE(system(("tar -xf " + archive + " -C " + dir + " --no-same-owner").c_str()) == 0);
  for (auto& f : files) {
    INFO(f.path);
    std::ifstream in(dir + f.path, std::ios::binary);
    REQUIRE(in.good());
    std::stringstream content;
    content << in.rdbuf();
    CHECK(content.str() == f.data);
    struct stat st;
    REQUIRE(stat((dir + f.path).c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == f.mode);
  }
  system(("rm -rf " + dir + " " + archive).c_str());
}

}  // namespace
}  // namespace swarm::docker
