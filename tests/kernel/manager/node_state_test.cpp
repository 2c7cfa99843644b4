#include "errors.h"
#include "node_state.h"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

using namespace swarm::kernel;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "node-state-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

TEST_CASE("the node state file is absent before init, then round-trips with mode 0600") {
  TempDir dir;
  NodeStateFile file(dir.path / "state");
  CHECK_FALSE(file.read().has_value());

  capnp::MallocMessageBuilder message;
  auto state = message.initRoot<swarm::store::schema::NodeState>();
  state.setNodeId("abcdefghijklmnopqrstuvwxy");
  state.setClusterId("cluster");
  state.setRole(swarm::schema::NodeRole::MANAGER);
  state.setRaftMemberId(42);
  state.getTlsKey().setSealed(capnp::Data::Reader(reinterpret_cast<const kj::byte*>("xyz"), 3));
  file.write(state.asReader());

  struct stat st {};
  REQUIRE(::stat(file.path().c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto read = file.read();
  REQUIRE(read.has_value());
  auto back = (*read)->getRoot<swarm::store::schema::NodeState>();
  CHECK(back.getNodeId() == "abcdefghijklmnopqrstuvwxy");
  CHECK(back.getRole() == swarm::schema::NodeRole::MANAGER);
  CHECK(back.getRaftMemberId() == 42);
  CHECK(back.getTlsKey().isSealed());
  CHECK_FALSE(fs::exists(dir.path / "state" / "node-state.bin.tmp"));

  state.setRaftMemberId(43);  // a rewrite replaces the whole file
  file.write(state.asReader());
  CHECK((*file.read())->getRoot<swarm::store::schema::NodeState>().getRaftMemberId() == 43);

  file.remove();
  CHECK_FALSE(file.read().has_value());
  file.remove();  // absent is fine
}

TEST_CASE("a damaged node state file is refused naming the file and what to do") {
  TempDir dir;
  NodeStateFile file(dir.path);
  {
    std::ofstream out(file.path(), std::ios::binary);
    out << "garbage";  // 7 bytes: not whole words
  }
  try {
    file.read();
    FAIL("a damaged file was accepted");
  } catch (const UserError& e) {
    std::string what = e.what();
    CHECK(what.find(file.path().string()) != std::string::npos);
    CHECK(what.find("damaged") != std::string::npos);
    CHECK(what.find("leave the swarm and join again") != std::string::npos);
  }
  {
    std::ofstream out(file.path(), std::ios::binary | std::ios::trunc);
    out << std::string(16, '\xff');  // whole words, but a nonsense segment table
  }
  CHECK_THROWS_AS(file.read(), UserError);
}

TEST_CASE("a PEM bundle splits into its certificates, in order") {
  std::string first = "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----";
  std::string second = "-----BEGIN CERTIFICATE-----\nREVG\n-----END CERTIFICATE-----";
  auto certs = splitPemCertificates("comment\n" + first + "\n\n" + second + "\ntrailing");
  REQUIRE(certs.size() == 2);
  CHECK(certs[0] == first + "\n");
  CHECK(certs[1] == second + "\n");
  CHECK(splitPemCertificates("").empty());
  CHECK(splitPemCertificates("-----BEGIN CERTIFICATE-----\nunterminated").empty());
}
